r"""First order: statistics of the intensities in the ROI, as PyRadiomics 3.0.1 ``firstorder``.

Let :math:`X` be the :math:`N_p` intensities of the ROI voxels (image units:
HU, SUV, ...), :math:`\bar X` their mean, :math:`c` the ``voxel_array_shift``,
:math:`V_{voxel}` the voxel volume in mm^3 and :math:`p(i)` the fraction of
ROI voxels in grey level :math:`i` of the *discretised* image (:math:`N_g`
levels present). Central moments :math:`\mu_k = \frac{1}{N_p}\sum (X - \bar X)^k`.

- ``Energy`` :math:`\sum (X + c)^2` (IBSI N8CA when :math:`c = 0`);
  ``TotalEnergy`` :math:`V_{voxel} \sum (X + c)^2`;
  ``RootMeanSquared`` :math:`\sqrt{\frac{1}{N_p} \sum (X + c)^2}` (5ZWQ when :math:`c = 0`).
- ``Entropy`` :math:`-\sum_i p(i) \log_2 (p(i) + \epsilon)`, :math:`\epsilon` the
  float64 machine epsilon (TLU2); ``Uniformity`` :math:`\sum_i p(i)^2` (BJ5W).
- ``Minimum`` (1GSF), ``Maximum`` (84IY), ``Range`` = max - min (2OJQ),
  ``Mean`` :math:`\bar X` (Q4LE), ``Median`` (Y12H), ``10Percentile`` (QG58),
  ``90Percentile`` (8DWT), ``InterquartileRange`` :math:`P_{75} - P_{25}` (SALO);
  percentiles interpolate linearly between order statistics (NumPy's default).
- ``MeanAbsoluteDeviation`` :math:`\frac{1}{N_p} \sum |X - \bar X|` (4FUA);
  ``RobustMeanAbsoluteDeviation``: the same over the voxels with
  :math:`P_{10} \le X \le P_{90}`, about their own mean (1128).
- ``Variance`` :math:`\mu_2` (ECT3); ``StandardDeviation`` :math:`\sqrt{\mu_2}`
  (deprecated in PyRadiomics: equivalent to the variance).
- ``Skewness`` :math:`\mu_3 / \mu_2^{3/2}` (KE2A) and ``Kurtosis``
  :math:`\mu_4 / \mu_2^2`; both 0 for a flat ROI (:math:`\mu_2 = 0`). The
  kurtosis is *not* the IBSI excess kurtosis (IPH6), which is 3 lower.

Voxels whose intensity is NaN are left out of every intensity statistic, as
PyRadiomics' ``nan``-functions do; the histogram uses the discretised image.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real

import numpy as np

from radflow.features._checks import check_spacing, requested_features, roi_box
from radflow.features.registry import Feature

__all__ = ["FEATURES", "compute"]

FAMILY = "firstorder"

FEATURES = (
    Feature("Energy", FAMILY, "N8CA", "intensity^2"),
    Feature("TotalEnergy", FAMILY, None, "intensity^2 mm^3"),
    Feature("Entropy", FAMILY, "TLU2", "bits"),
    Feature("Minimum", FAMILY, "1GSF", "intensity"),
    Feature("10Percentile", FAMILY, "QG58", "intensity"),
    Feature("90Percentile", FAMILY, "8DWT", "intensity"),
    Feature("Maximum", FAMILY, "84IY", "intensity"),
    Feature("Mean", FAMILY, "Q4LE", "intensity"),
    Feature("Median", FAMILY, "Y12H", "intensity"),
    Feature("InterquartileRange", FAMILY, "SALO", "intensity"),
    Feature("Range", FAMILY, "2OJQ", "intensity"),
    Feature("MeanAbsoluteDeviation", FAMILY, "4FUA", "intensity"),
    Feature("RobustMeanAbsoluteDeviation", FAMILY, "1128", "intensity"),
    Feature("RootMeanSquared", FAMILY, "5ZWQ", "intensity"),
    Feature("StandardDeviation", FAMILY, None, "intensity", default=False),
    Feature("Skewness", FAMILY, "KE2A", ""),
    Feature("Kurtosis", FAMILY, None, ""),
    Feature("Variance", FAMILY, "ECT3", "intensity^2"),
    Feature("Uniformity", FAMILY, "BJ5W", ""),
)

_HISTOGRAM = {"Entropy", "Uniformity"}


def compute(
    image,
    mask,
    binned=None,
    *,
    spacing_zyx,
    voxel_array_shift: float = 0.0,
    features: Iterable[str] | None = None,
) -> dict[str, float]:
    """First-order features of an ROI, equal to PyRadiomics' ``RadiomicsFirstOrder``.

    Parameters
    ----------
    image : (z, y, x) array of real
        Intensities (HU, SUV, filtered values...), the image PyRadiomics'
        class receives (after any resampling, normalisation and filtering).
    mask : (z, y, x) array of bool or int
        The ROI: non-zero voxels. Same shape as ``image``.
    binned : (z, y, x) array of int, optional
        The discretised image (PyRadiomics' ``binImage``: grey levels from 1
        inside the ROI; values outside the ROI are ignored). Needed only for
        ``Entropy`` and ``Uniformity``.
    spacing_zyx : sequence of 3 float
        Voxel size in mm, (z, y, x) order (for ``TotalEnergy``).
    voxel_array_shift : float
        PyRadiomics' ``voxelArrayShift``, added to the intensities in
        ``Energy``, ``TotalEnergy`` and ``RootMeanSquared``.
    features : iterable of str, optional
        PyRadiomics feature names to compute (default: all of :data:`FEATURES`).

    Returns
    -------
    dict of str to float
        Feature name -> value, in the order of :data:`FEATURES`. NaN for the
        intensity statistics when every ROI intensity is NaN.

    Raises
    ------
    SettingsError
        An unknown feature name.
    ValueError, TypeError
        Arrays of other shapes or dtypes, an empty mask, ``binned`` missing
        when Entropy or Uniformity is asked for, a bad spacing or shift.

    Examples
    --------
    >>> image = np.array([[[1, 2], [3, 4]]], dtype=np.int16)
    >>> compute(image, image > 1, image, spacing_zyx=(1, 1, 1), features=["Mean", "Entropy"])
    {'Entropy': 1.5849625007211552, 'Mean': 3.0}
    """
    wanted = set(requested_features(features, FEATURES, FAMILY))
    roi, box = roi_box(mask, ndim=3)
    image = _same_shape(image, mask, "image")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise TypeError(f"image must hold real numbers, got dtype {image.dtype}")
    volume = np.multiply.reduce(check_spacing(spacing_zyx)[::-1])  # x*y*z as PyRadiomics
    if isinstance(voxel_array_shift, bool) or not isinstance(voxel_array_shift, Real | np.number):
        raise TypeError(f"voxel_array_shift must be a number, got {voxel_array_shift!r}")
    if not np.isfinite(voxel_array_shift):
        raise ValueError(f"voxel_array_shift must be finite, got {voxel_array_shift!r}")

    values: dict[str, float] = {}
    if wanted & _HISTOGRAM:
        if binned is None:
            raise ValueError("binned (the discretised image) is needed for Entropy and Uniformity")
        binned = _same_shape(binned, mask, "binned")
        if not np.issubdtype(binned.dtype, np.integer):
            raise TypeError(f"binned must be an integer array of grey levels, got {binned.dtype}")
        levels = binned[box][roi].astype(np.int64)
        counts = np.bincount(levels - levels.min())
        p = counts[counts > 0] / float(levels.size)
        values["Entropy"] = -1.0 * np.sum(p * np.log2(p + np.spacing(1)))
        values["Uniformity"] = np.sum(p**2)
    if wanted - _HISTOGRAM:
        x = image[box][roi].astype(np.float64)
        nan = np.isnan(x)
        if nan.any():
            x = x[~nan]
        values.update(_intensity_statistics(x, float(voxel_array_shift), volume))
    return {f.name: float(values[f.name]) for f in FEATURES if f.name in wanted}


def _intensity_statistics(x: np.ndarray, shift: float, voxel_volume: float) -> dict[str, float]:
    """Every statistic of the ROI intensities ``x`` (float64, no NaN), as PyRadiomics does."""
    if x.size == 0:
        stats = {f.name: np.nan for f in FEATURES}
        stats["Energy"] = stats["TotalEnergy"] = 0.0
        return stats
    energy = np.sum((x + shift) ** 2)
    ordered = np.sort(x)
    p10, p25, p75, p90 = (_percentile(ordered, q) for q in (10, 25, 75, 90))
    mean = np.mean(x)
    deviation = x - mean
    squared = deviation * deviation
    m2 = np.mean(squared)
    robust = x[(x >= p10) & (x <= p90)]
    return {
        "Energy": energy,
        "TotalEnergy": energy * voxel_volume,
        "Minimum": ordered[0],
        "10Percentile": p10,
        "90Percentile": p90,
        "Maximum": ordered[-1],
        "Mean": mean,
        "Median": _percentile(ordered, 50, median=True),
        "InterquartileRange": p75 - p25,
        "Range": ordered[-1] - ordered[0],
        "MeanAbsoluteDeviation": np.mean(np.abs(deviation)),
        "RobustMeanAbsoluteDeviation": np.mean(np.abs(robust - np.mean(robust))),
        "RootMeanSquared": np.sqrt(energy / x.size),
        "StandardDeviation": np.sqrt(m2),
        # A flat ROI has mu_2 = 0 = mu_3 = mu_4: 0 by PyRadiomics' convention.
        "Skewness": np.mean(squared * deviation) / (m2**1.5 if m2 else 1.0),
        "Kurtosis": np.mean(squared * squared) / (m2**2.0 if m2 else 1.0),
        "Variance": m2,
    }


def _percentile(ordered: np.ndarray, q: float, median: bool = False) -> float:
    """Percentile ``q`` of sorted values, with the arithmetic of ``numpy.percentile``
    (linear method); ``median`` averages the middle pair as ``numpy.median``."""
    n = ordered.size
    if median:
        half = n // 2
        return ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
    virtual = (n - 1) * (q / 100)
    below = int(np.floor(virtual))
    if below >= n - 1:
        return ordered[-1]
    gamma = virtual - below
    low, high = ordered[below], ordered[below + 1]
    if gamma >= 0.5:
        return high - (high - low) * (1 - gamma)
    return low + (high - low) * gamma


def _same_shape(array, mask, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != np.shape(mask):
        raise ValueError(f"{name} shape {array.shape} differs from mask shape {np.shape(mask)}")
    return array
