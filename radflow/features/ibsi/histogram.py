r"""IBSI intensity histogram features (``ih_*``, IBSI 1 family ZVCW).

Computed on the *discretised* intensities :math:`X_d \in \{1..N_g\}` of the
ROI intensity mask. :math:`n_i` is the number of voxels with grey level
:math:`i`, :math:`p_i = n_i / N_v`; the histogram runs over every level
:math:`1..N_g`, empty ones included.

- ``ih_mean`` ... ``ih_qcod`` except ``ih_mode``: the statistics of
  :mod:`radflow.features.ibsi.statistics` computed on :math:`X_d` (mean
  X6K6, variance CH89, skewness 88K1, excess kurtosis C3I7, median WIFQ,
  minimum 1PR8, P10 GPMT, P90 OZ0C, maximum 3NCY, IQR WR0O, range 5Z3W, MAD
  D2ZX, robust MAD WRZB, median AD 4RNL, CoV CWYJ, QCoD SLWD).
- ``ih_mode`` (AMMC): the level with the highest count; of several, the one
  closest to ``ih_mean``, and of two equidistant ones the lower.
- ``ih_entropy`` :math:`-\sum p_i \log_2 p_i` over non-empty levels (TLU2),
  ``ih_uniformity`` :math:`\sum p_i^2` (BJ5W).
- Histogram gradient :math:`H'_1 = n_2 - n_1`, :math:`H'_i = (n_{i+1} -
  n_{i-1}) / 2`, :math:`H'_{N_g} = n_{N_g} - n_{N_g - 1}` (:math:`H' = 0` for
  :math:`N_g = 1`); ``ih_max_grad`` / ``ih_min_grad`` its maximum / minimum
  (12CE / VQB3) and ``ih_max_grad_g`` / ``ih_min_grad_g`` the level where it
  is reached, the lowest such level on ties (8E6O / RHQZ).

References
----------
Zwanenburg A et al. The Image Biomarker Standardisation Initiative: reference
manual, section "Intensity histogram features". arXiv:1612.07003.
"""

from __future__ import annotations

import numpy as np

from radflow.features.ibsi.registry import features
from radflow.features.ibsi.statistics import checked_mask, distribution_statistics

__all__ = ["FEATURES", "compute"]

FAMILY = "ih"
FEATURES = features(FAMILY)


def compute(levels, *, intensity_mask=None, n_levels: int | None = None) -> dict[str, float]:
    """Intensity histogram features of the discretised ROI intensities.

    Parameters
    ----------
    levels : array of int
        Discretised image, grey levels 1..Ng inside the mask, (z, y, x) or any
        shape.
    intensity_mask : array of bool or int, optional
        The ROI intensity mask, same shape as ``levels`` (non-zero inside).
        Default: every element of ``levels``.
    n_levels : int, optional
        :math:`N_g`, the number of grey levels of the discretisation. Default:
        the highest level in the ROI (what fixed bin number always reaches,
        and the last non-empty bin of fixed bin size). Only the gradient at
        the top of the histogram depends on it.

    Returns
    -------
    dict of str to float
        IBSI tag -> value, in the order of :data:`FEATURES`; levels and counts
        (gradients) are numbers of voxels per level.

    Raises
    ------
    ValueError, TypeError
        Non-integer levels, levels < 1 or > ``n_levels`` in the ROI, a mask of
        another shape, an empty ROI.

    Examples
    --------
    >>> out = compute(np.array([1, 1, 1, 2, 4]))
    >>> out["ih_mode"], out["ih_max_grad"], out["ih_min_grad_g"]
    (1.0, 1.0, 1.0)
    """
    x = _roi_levels(levels, intensity_mask, n_levels)
    top = int(x.max()) if n_levels is None else int(n_levels)
    counts = np.bincount(x, minlength=top + 1)[1:].astype(np.float64)
    values = x.astype(np.float64)
    stats = distribution_statistics(values)

    p = counts / x.size
    occupied = p[p > 0]
    stats["entropy"] = float(-np.sum(occupied * np.log2(occupied)))
    stats["uniformity"] = float(np.sum(p * p))

    grey = np.arange(1, top + 1, dtype=np.float64)
    modes = grey[counts == counts.max()]
    # Closest to the mean; argmin takes the first, i.e. the lower of two equidistant.
    stats["mode"] = float(modes[np.argmin(np.abs(modes - stats["mean"]))])

    gradient = np.gradient(counts) if top > 1 else np.zeros(1)
    stats["max_grad"] = float(gradient.max())
    stats["max_grad_g"] = float(grey[np.argmax(gradient)])
    stats["min_grad"] = float(gradient.min())
    stats["min_grad_g"] = float(grey[np.argmin(gradient)])
    return {f.tag_stem: stats[f.tag_stem.removeprefix("ih_")] for f in FEATURES}


def _roi_levels(levels, mask, n_levels) -> np.ndarray:
    """The int64 grey levels in the ROI, checked to lie in 1..n_levels."""
    array = np.asarray(levels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"levels must be an integer array (grey levels 1..Ng), got dtype {array.dtype}"
        )
    x = array.ravel() if mask is None else array[checked_mask(mask, array.shape, "intensity_mask")]
    if x.size == 0:
        raise ValueError("intensity_mask is empty: no voxel to compute features from")
    x = x.astype(np.int64)
    lowest, highest = int(x.min()), int(x.max())
    if lowest < 1:
        raise ValueError(f"levels must be >= 1 inside the ROI, found {lowest}")
    if n_levels is not None:
        if (
            isinstance(n_levels, bool)
            or not isinstance(n_levels, (int, np.integer))
            or n_levels < 1
        ):
            raise ValueError(f"n_levels must be a positive integer, got {n_levels!r}")
        if highest > n_levels:
            raise ValueError(f"levels reach {highest} inside the ROI, above n_levels={n_levels}")
    return x
