"""Input checks shared by the feature families: names, spacing, ROI box."""

from __future__ import annotations

import numpy as np

from radflow._geometry import SpacingError, bounding_box, spacing_mm
from radflow.errors import SettingsError


def check_spacing(spacing_zyx) -> np.ndarray:
    """Voxel spacing as float64 (z, y, x) in mm; SettingsError unless 3 positive finite numbers."""
    try:
        return np.asarray(spacing_mm(spacing_zyx), dtype=np.float64)
    except SpacingError:
        raise SettingsError(
            "spacing_zyx must be 3 positive voxel sizes in mm, (z, y, x) order; "
            f"got {spacing_zyx!r}"
        ) from None


def check_feature_names(features, valid, family: str) -> list[str]:
    """The requested feature names (all of ``valid`` when ``features`` is None).

    Raises SettingsError naming the unknown names and listing the valid ones.
    """
    if features is None:
        return list(valid)
    names = [features] if isinstance(features, str) else list(features)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise SettingsError(
            f"unknown {family} feature(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(valid)}"
        )
    return names


def requested_features(features, family_features, family: str) -> list[str]:
    """Names to compute, checked; without ``features`` those PyRadiomics enables by default.

    ``family_features`` is the family's ``FEATURES`` tuple (see
    :mod:`radflow.features.registry`); deprecated features (``default=False``)
    are computed only when asked for by name, as in PyRadiomics.
    """
    if features is None:
        return [f.name for f in family_features if f.default]
    return check_feature_names(features, [f.name for f in family_features], family)


def roi_box(mask, *, ndim: int, name: str = "mask") -> tuple[np.ndarray, tuple[slice, ...]]:
    """The bool ROI of ``mask`` (non-zero voxels) cropped to its bounding box, and the box."""
    mask = np.asarray(mask)
    if mask.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}D array, got shape {mask.shape}")
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"{name} must be a bool or integer array, got dtype {mask.dtype}")
    roi = mask != 0
    box = bounding_box(roi)
    if box is None:
        raise ValueError(f"{name} is empty: no non-zero voxel")
    return roi[box], box
