"""Threshold segmentation of a stored series into a new label map.

The method must suit the series: the SUV methods need a PET series (modality
``PT``), the HU window a CT series, so that a CT thresholded "at 2.5 SUV" does
not silently become a litre-sized ROI. What was written is returned
(:class:`Segmentation`: key, voxels, volume in mL) for the caller to report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.io.records import LabelMap, roi_key
from radflow.preprocess import threshold
from radflow.store.read import open_label, open_volume
from radflow.store.write import add_label

__all__ = ["METHODS", "MODALITIES", "Segmentation", "segment_series"]

METHODS = ("hu", "suv", "suv-relative")

#: The series modalities each method applies to (DICOM Modality values).
MODALITIES = {"hu": ("CT",), "suv": ("PT",), "suv-relative": ("PT",)}


@dataclass(frozen=True)
class Segmentation:
    """What :func:`segment_series` wrote.

    Attributes
    ----------
    key : str
        The new label map's key (``STORE/<case>/<series>/labels/<key>``).
    name : str
        Its ROI name (label value 1).
    voxels : int
        Voxels in the ROI.
    volume_ml : float
        ROI volume in mL (voxels x voxel volume).
    rule : str
        The threshold applied, in words ("at or above 40 % of SUVmax").
    """

    key: str
    name: str
    voxels: int
    volume_ml: float
    rule: str

    def report(self, case: str, series: str) -> str:
        """One line: where the label map went, its size and the rule."""
        return (
            f"label map written: {case}/{series}/labels/{self.key} "
            f"({self.name}: {self.voxels} voxels, {self.volume_ml:.4g} mL, {self.rule})"
        )


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
) -> Segmentation:
    """Segment a stored series by threshold and add the result as a label map.

    Parameters
    ----------
    store, case, series : str
        The series (see ``radflow ls``).
    method : {"hu", "suv", "suv-relative"}
        CT HU window ``[low, high]``, PET absolute SUV threshold, or a fraction
        of SUVmax inside the region. The series' modality must be CT for
        ``hu``, PT for the SUV methods (:data:`MODALITIES`).
    fraction : float
        ``suv-relative``: fraction of SUVmax in (0, 1] (0.4 for 40 %).
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
    Segmentation
        The new label map's key, size (voxels, mL) and the rule applied.

    Raises
    ------
    radflow.errors.InputError
        No such series or ROI, the series' modality does not suit `method`,
        non-finite values in the region, or nothing segmented.
    radflow.errors.SettingsError
        An invalid parameter (method, bounds, threshold, fraction, box, seed...).
    """
    if method not in METHODS:
        raise SettingsError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "hu" and (low is None or high is None):
        raise SettingsError("method 'hu' needs --low and --high (HU)")
    volume = open_volume(store, case, series)
    modality = volume.attrs.get("modality")
    if modality not in MODALITIES[method]:
        kind = "a CT series (HU)" if method == "hu" else "a PET series (SUV)"
        raise InputError(
            f"{case}/{series}",
            f"method {method!r} needs {kind}, this series' modality is {modality!r}; "
            "choose the series with `radflow ls` or another --method",
        )
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
    try:
        if method == "hu":
            mask = threshold.segment_hu(image, low_hu=low, high_hu=high, **common)
            rule = f"{low:g} to {high:g} HU"
        elif method == "suv":
            mask = threshold.segment_suv(image, threshold_suv=threshold_suv, **common)
            rule = f"at or above {threshold_suv:g} SUV"
        else:
            mask = threshold.segment_suv_relative(image, fraction=fraction, **common)
            rule = f"at or above {100 * fraction:g} % of SUVmax"
    except SettingsError as exc:
        raise SettingsError(f"{case}/{series}: {exc}") from exc

    roi_name = name or f"{method}_threshold"
    label_image = sitk.GetImageFromArray(mask.astype(np.uint8))
    label_image.SetSpacing(tuple(volume.attrs["spacing_zyx"][::-1]))
    label_image.SetOrigin(tuple(volume.attrs["origin_zyx"][::-1]))
    label_image.SetDirection(tuple(volume.attrs["direction_xyz"]))
    key = roi_key(roi_name)
    add_label(store, case, series, LabelMap(key, "threshold", label_image, {1: roi_name}))
    voxels = int(np.count_nonzero(mask))
    voxel_mm3 = math.prod(float(s) for s in volume.attrs["spacing_zyx"])
    return Segmentation(key, roi_name, voxels, voxels * voxel_mm3 / 1000.0, rule)
