r"""IBSI intensity-based statistics (``stat_*``, IBSI 1 family UHIW).

Let :math:`X` be the :math:`N_v` intensities (HU, SUV, ...) of the voxels in
the ROI intensity mask, after re-segmentation, :math:`\mu` their mean,
:math:`M` their median and :math:`P_q` their q-th percentile (linear
interpolation between order statistics, NumPy's default). Central moments
:math:`m_k = \frac{1}{N_v}\sum (X - \mu)^k`, without bias correction.

- ``stat_mean`` :math:`\mu` (Q4LE), ``stat_var`` :math:`m_2` (ECT3),
  ``stat_skew`` :math:`m_3 / m_2^{3/2}` (KE2A), ``stat_kurt`` the *excess*
  kurtosis :math:`m_4 / m_2^2 - 3` (IPH6); skewness and kurtosis are 0 when
  :math:`m_2 = 0`, as the IBSI defines.
- ``stat_median`` :math:`M` (Y12H), ``stat_min`` (1GSF), ``stat_p10`` (QG58),
  ``stat_p90`` (8DWT), ``stat_max`` (84IY), ``stat_iqr`` :math:`P_{75} - P_{25}`
  (SALO), ``stat_range`` max - min (2OJQ).
- ``stat_mad`` :math:`\frac{1}{N_v}\sum |X - \mu|` (4FUA); ``stat_rmad`` the
  same over the voxels with :math:`P_{10} \le X \le P_{90}`, about their own
  mean (1128; NaN when no value lies in that range, as for two distinct
  values); ``stat_medad`` :math:`\frac{1}{N_v}\sum |X - M|` (N72L).
- ``stat_cov`` :math:`\sqrt{m_2} / \mu` (7TET; NaN when :math:`\mu = 0`),
  ``stat_qcod`` :math:`(P_{75} - P_{25}) / (P_{75} + P_{25})` (9S40; NaN when
  the denominator is 0).
- ``stat_energy`` :math:`\sum X^2` (N8CA), ``stat_rms``
  :math:`\sqrt{\sum X^2 / N_v}` (5ZWQ).

The same distribution statistics of the *discretised* intensities are the
intensity histogram family (:mod:`radflow.features.ibsi.histogram`), which
uses :func:`distribution_statistics` of this module.

References
----------
Zwanenburg A et al. The Image Biomarker Standardisation Initiative: reference
manual, section "Intensity-based statistical features". arXiv:1612.07003.
"""

from __future__ import annotations

import numpy as np

from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "distribution_statistics", "roi_values"]

FAMILY = "stat"
FEATURES = features(FAMILY)


def compute(image, *, intensity_mask=None) -> dict[str, float]:
    """Intensity-based statistics of the ROI intensities.

    Parameters
    ----------
    image : array of real
        Intensities (HU, SUV, ...), (z, y, x) or any shape; re-segmented ROI
        voxels are those of ``intensity_mask``.
    intensity_mask : array of bool or int, optional
        The ROI intensity mask, same shape as ``image`` (non-zero inside).
        Default: every element of ``image`` (e.g. the ROI values as 1D array).

    Returns
    -------
    dict of str to float
        IBSI tag -> value, in the order of :data:`FEATURES`; intensities in the
        image's unit (squared for ``stat_var`` and ``stat_energy``).

    Raises
    ------
    ValueError, TypeError
        A mask of another shape or dtype, an empty ROI, non-finite ROI values.

    Examples
    --------
    >>> compute([1.0, 2.0, 3.0, 6.0])["stat_medad"]
    1.5
    """
    values = roi_values(image, intensity_mask)
    stats = distribution_statistics(values)
    energy = float(np.dot(values, values))
    stats["energy"] = energy
    stats["rms"] = float(np.sqrt(energy / values.size))
    return {f.tag_stem: stats[f.tag_stem.removeprefix("stat_")] for f in FEATURES}


def distribution_statistics(values: np.ndarray) -> dict[str, float]:
    """Moments, order statistics and dispersions of ``values`` (float64 1D, finite, non-empty).

    Keys are the IBSI tag stems without family prefix: ``mean, var, skew,
    kurt, median, min, p10, p90, max, iqr, range, mad, rmad, medad, cov, qcod``.
    """
    mean = float(np.mean(values))
    deviation = values - mean
    squared = deviation * deviation
    m2 = float(np.mean(squared))
    p10, p25, median, p75, p90 = np.percentile(values, [10, 25, 50, 75, 90])
    robust = values[(values >= p10) & (values <= p90)]
    lowest, highest = float(values.min()), float(values.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "mean": mean,
            "var": m2,
            # IBSI: skewness and kurtosis of a flat distribution (m2 = 0) are 0.
            "skew": float(np.mean(squared * deviation) / m2**1.5) if m2 > 0 else 0.0,
            "kurt": float(np.mean(squared * squared) / m2**2 - 3.0) if m2 > 0 else 0.0,
            "median": float(median),
            "min": lowest,
            "p10": float(p10),
            "p90": float(p90),
            "max": highest,
            "iqr": float(p75 - p25),
            "range": highest - lowest,
            "mad": float(np.mean(np.abs(deviation))),
            # Undefined (NaN) when no value lies in [P10, P90], e.g. two distinct values.
            "rmad": float(np.mean(np.abs(robust - np.mean(robust)))) if robust.size else np.nan,
            "medad": float(np.mean(np.abs(values - median))),
            "cov": float(np.sqrt(m2) / mean) if mean != 0 else np.nan,
            "qcod": float((p75 - p25) / (p75 + p25)) if p75 + p25 != 0 else np.nan,
        }


def roi_values(
    image, mask, *, name: str = "image", mask_name: str = "intensity_mask"
) -> np.ndarray:
    """The finite float64 values of ``image`` where ``mask`` is non-zero (all when None).

    Raises ValueError naming ``name``/``mask_name`` for a shape mismatch, an
    empty ROI or non-finite values inside it, TypeError for non-real data.
    """
    array = np.asarray(image)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if mask is None:
        values = array.ravel()
    else:
        values = array[checked_mask(mask, array.shape, mask_name)]
    if values.size == 0:
        raise ValueError(f"{mask_name} is empty: no voxel to compute features from")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has non-finite values (NaN or inf) inside {mask_name}")
    return values


def checked_mask(mask, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``mask`` as a bool array, checked to be bool/integer and of ``shape``."""
    mask = np.asarray(mask)
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"{name} must be a bool or integer array, got dtype {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} shape {mask.shape} differs from the image shape {tuple(shape)}")
    return mask != 0
