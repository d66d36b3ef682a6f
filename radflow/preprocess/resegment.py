"""Re-segmentation of the ROI by grey level, as PyRadiomics 3.0.1's ``resegmentMask``.

SimpleITK images in, a SimpleITK mask (same grid and pixel type) out.
"""

from __future__ import annotations

import math
from numbers import Real
from os import PathLike

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.preprocess.roi_checks import _check_label

__all__ = ["resegment"]

MODES = ("absolute", "relative", "sigma")


def resegment(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    range_,
    mode: str = "absolute",
    label: int = 1,
    source: str | PathLike = "mask",
) -> sitk.Image:
    r"""Keep the ROI voxels whose grey level lies in a range.

    With thresholds :math:`T_1 \le T_2` (the values of `range_`, sorted) the
    ROI keeps voxels with :math:`X \ge T_1`, and :math:`X \le T_2` when two
    are given. `mode` says how they are read:

    - ``"absolute"``: grey levels (HU, SUV);
    - ``"relative"``: fractions of the ROI maximum, :math:`T_i = r_i \max X`
      (sorted before multiplying, as PyRadiomics does: with a negative
      maximum the two thresholds come out reversed and nothing is kept);
    - ``"sigma"``: :math:`T_i = \mu + r_i \sigma` with the ROI mean and
      (population) standard deviation.

    Statistics and comparisons are computed in the image's dtype, as in
    PyRadiomics.

    Parameters
    ----------
    image : SimpleITK.Image
        Grey levels.
    mask : SimpleITK.Image
        Integer label image on the same grid as `image`.
    range_ : sequence of 1 or 2 float
        PyRadiomics' ``resegmentRange``.
    mode : {"absolute", "relative", "sigma"}
        PyRadiomics' ``resegmentMode``.
    label : int
        ROI label value, > 0.
    source : str or path-like
        Named in error messages.

    Returns
    -------
    SimpleITK.Image
        The new mask: `label` where kept, 0 elsewhere (other labels dropped),
        the pixel type and geometry of `mask`.

    Raises
    ------
    InputError
        The label is absent, the grids differ, or at most one voxel is left.
    """
    thresholds = _check_range(range_)
    if mode not in MODES:
        raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    _check_label(label)
    if image.GetSize() != mask.GetSize():
        raise InputError(
            source, f"mask size {mask.GetSize()} differs from the image size {image.GetSize()}"
        )

    grey = sitk.GetArrayViewFromImage(image)
    roi = sitk.GetArrayViewFromImage(mask) == label
    values = grey[roi]
    if values.size == 0:
        raise InputError(source, f"Label ({label}) not present in mask")
    if mode == "relative":
        maximum = np.max(values)
        thresholds = [maximum * t for t in thresholds]
    elif mode == "sigma":
        mean, sd = np.mean(values), np.std(values)
        thresholds = [mean + sd * t for t in thresholds]

    keep = values >= thresholds[0]
    if len(thresholds) == 2:
        keep &= values <= thresholds[1]
    retained = int(np.count_nonzero(keep))
    if retained <= 1:
        raise InputError(
            source,
            f"Resegmentation excluded too many voxels with label {label} "
            f"(retained {retained} voxel(s))! Cannot extract features",
        )
    roi[roi] = keep
    labels = np.zeros(roi.shape, dtype=sitk.GetArrayViewFromImage(mask).dtype)
    labels[roi] = label
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(mask)
    return out


def _check_range(range_) -> list[float]:
    try:
        values = list(range_)
    except TypeError:
        raise SettingsError(
            f"range_ must be a sequence of 1 or 2 numbers, got {range_!r}"
        ) from None
    if len(values) not in (1, 2) or not all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise SettingsError(
            f"range_ must be 1 or 2 finite numbers (lower[, upper]), got {range_!r}"
        )
    return sorted(values)
