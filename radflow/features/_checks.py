"""Input checks shared by the feature families: names, spacing, ROI box."""

from __future__ import annotations

import numpy as np

from radflow.errors import SettingsError


def check_spacing(spacing_zyx) -> np.ndarray:
    """Voxel spacing as float64 (z, y, x) in mm; SettingsError unless 3 positive finite numbers."""
    try:
        spacing = np.asarray(spacing_zyx, dtype=np.float64)
    except (TypeError, ValueError):
        spacing = np.empty(0)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise SettingsError(f"spacing_zyx must be 3 positive voxel sizes in mm, (z, y, x) order; got {spacing_zyx!r}")
    return spacing


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
            f"unknown {family} feature(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
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
    box = []
    for axis in range(ndim):
        hit = np.flatnonzero(roi.any(axis=tuple(a for a in range(ndim) if a != axis)))
        if hit.size == 0:
            raise ValueError(f"{name} is empty: no non-zero voxel")
        box.append(slice(hit[0], hit[-1] + 1))
    box = tuple(box)
    return roi[box], box
