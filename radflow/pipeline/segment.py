"""Threshold segmentation of a stored series into a new label map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow.errors import SettingsError
from radflow.io.records import LabelMap, roi_key
from radflow.preprocess import threshold
from radflow.store.read import open_label, open_volume
from radflow.store.write import add_label

__all__ = ["METHODS", "segment_series"]

METHODS = ("hu", "suv", "suv-relative")


def segment_series(
    store: str | Path,
    case: str,
    series: str,
    *,
    method: str,
    low: float | None = None,
    high: float | None = None,
    threshold_suv: float = 2.5,
    fraction: float = 0.4,
    within: str | None = None,
    box: Sequence[tuple[int, int]] | None = None,
    seed: tuple[int, int, int] | None = None,
    keep: str | None = None,
    min_size_mm3: float = 0.0,
    name: str | None = None,
) -> str:
    """Segment a stored series by threshold and add the result as a label map.

    Parameters
    ----------
    store, case, series : str
        The series (see ``radflow ls``).
    method : {"hu", "suv", "suv-relative"}
        CT HU window ``[low, high]``, PET absolute SUV threshold, or a fraction
        of SUVmax inside the region.
    within : str, optional
        Key of an existing label map used as the seed region.
    box : tuple of 3 (start, stop) pairs, optional
        Voxel box (z, y, x) to search in.
    seed : tuple of 3 int, optional
        Voxel (z, y, x) whose component is kept.
    keep, min_size_mm3
        See :mod:`radflow.preprocess.threshold`.
    name : str, optional
        ROI name; default ``"<method>_threshold"``.

    Returns
    -------
    str
        The new label map's key.
    """
    if method not in METHODS:
        raise SettingsError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    volume = open_volume(store, case, series)
    image = np.asarray(volume.values)
    common = {
        "region": (
            None
            if within is None
            else np.asarray(open_label(store, case, series, within).values) > 0
        ),
        "box_zyx": None if box is None else tuple(slice(a, b) for a, b in box),
        "seed_zyx": seed,
        "keep": keep,
        "min_size_mm3": min_size_mm3,
        "spacing_zyx": tuple(volume.attrs["spacing_zyx"]),
        "source": f"{case}/{series}",
    }
    if method == "hu":
        if low is None or high is None:
            raise SettingsError("method 'hu' needs --low and --high (HU)")
        mask = threshold.segment_hu(image, low_hu=low, high_hu=high, **common)
    elif method == "suv":
        mask = threshold.segment_suv(image, threshold_suv=threshold_suv, **common)
    else:
        mask = threshold.segment_suv_relative(image, fraction=fraction, **common)

    roi_name = name or f"{method}_threshold"
    label_image = sitk.GetImageFromArray(mask.astype(np.uint8))
    label_image.SetSpacing(tuple(volume.attrs["spacing_zyx"][::-1]))
    label_image.SetOrigin(tuple(volume.attrs["origin_zyx"][::-1]))
    label_image.SetDirection(tuple(volume.attrs["direction_xyz"]))
    key = roi_key(roi_name)
    add_label(store, case, series, LabelMap(key, "threshold", label_image, {1: roi_name}))
    return key
