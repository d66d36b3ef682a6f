r"""Grey Level Run Length Matrix (GLRLM) features, as PyRadiomics 3.0.1 computes them.

For each direction :math:`\theta` (13 in 3D, 4 with ``force2d``; one of each
+/- pair, see :func:`radflow.features._directions.offsets`),
:math:`\mathbf{P}(i, j|\theta)` counts the runs of :math:`j` consecutive ROI
voxels of grey level :math:`i` along :math:`\theta`. As in PyRadiomics: a
voxel outside the ROI ends a run; a direction in which no line crosses the ROI
more than once (e.g. across the slices of a single-slice ROI) gets an empty
matrix; grey levels absent from the ROI get no row; with a
``weighting_norm`` the matrices are summed with weights equal to the
direction's step length in mm; directions with an empty matrix are dropped
(unless only one matrix is left); each feature is computed per matrix and
averaged over them (NaN skipped, like ``numpy.nanmean``).

Notation: :math:`N_r(\theta) = \sum_{i,j} \mathbf{P}(i,j|\theta)` the number
of runs, :math:`N_p(\theta) = \sum_{i,j} j\,\mathbf{P}(i,j|\theta)` the
number of voxels, :math:`p(i,j|\theta) = \mathbf{P}(i,j|\theta)/N_r(\theta)`,
:math:`i` grey levels, :math:`j` run lengths (voxels), :math:`\epsilon` the
float64 machine epsilon. Each feature's formula is in the docstring of its
function below.

References
----------
Galloway MM. Texture analysis using gray level run lengths. Comput Graph
Image Process 1975;4(2):172-179. doi:10.1016/S0146-664X(75)80008-6

van Griethuysen JJM et al. Computational radiomics system to decode the
radiographic phenotype. Cancer Res 2017;77(21):e104-e107.
doi:10.1158/0008-5472.CAN-17-0339
"""

from __future__ import annotations

from functools import cached_property

import numba
import numpy as np

from radflow.features._checks import check_spacing, requested_features
from radflow.features._directions import (
    check_weighting_norm,
    flat_steps,
    nanmean,
    offset_lengths_mm,
    offsets,
    roi_levels,
)
from radflow.features.registry import Feature

__all__ = ["FEATURES", "compute", "run_lengths"]


@numba.njit(cache=True)
def _count_runs(index, steps, out):
    # index: flattened (z, y, x) box of level positions, -1 outside the ROI,
    # padded by one -1 voxel on every side so that runs stop there.
    # steps: the directions as flat index steps. out: (n_directions, N,
    # max_run), added to.
    for v in range(index.size):
        level = index[v]
        if level < 0:
            continue
        for a in range(steps.size):
            step = steps[a]
            if index[v - step] == level:
                continue  # not the first voxel of its run
            run = 1
            w = v + step
            while index[w] == level:
                run += 1
                w += step
            out[a, level, run - 1] += 1.0


def _meets_roi_twice(roi, direction) -> bool:
    """Does some line along ``direction`` (z, y, x steps) cross ``roi`` at two voxels?"""
    k = 1
    while True:
        shift = k * np.asarray(direction)
        if np.any(np.abs(shift) >= roi.shape):
            return False
        ahead = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(shift, roi.shape))
        behind = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(shift, roi.shape))
        if np.any(roi[ahead] & roi[behind]):
            return True
        k += 1


def run_lengths(binned, mask, *, force2d=False, force2d_dimension=0):
    """Raw run-length counts, one matrix per direction.

    Parameters
    ----------
    binned : ndarray of int, shape (z, y, x)
        Discretised image: grey levels >= 1 inside the ROI.
    mask : ndarray of bool or {0, 1} int, shape (z, y, x)
        ROI mask.
    force2d : bool
        Only directions within planes normal to axis ``force2d_dimension``.
    force2d_dimension : {0, 1, 2}
        Axis of the (z, y, x) array held fixed (0: axial slices).

    Returns
    -------
    counts : ndarray of float64, shape (n_directions, n_levels, max_run)
        ``counts[a, i, r]``: runs of level ``levels[i]`` and length ``r + 1``
        voxels along ``directions_zyx[a]``; all zero for a direction along
        which no line meets the ROI twice. ``max_run`` is the longest side of
        the ROI's bounding box.
    levels : ndarray of int64, shape (n_levels,)
        Grey levels present in the ROI, ascending.
    directions_zyx : ndarray of int64, shape (n_directions, 3)
        Unit steps, in PyRadiomics' angle order.
    """
    directions_zyx = offsets((1,), bool(force2d), force2d_dimension, False)
    index, levels = roi_levels(binned, mask, pad=1)
    counts = np.zeros((len(directions_zyx), len(levels), max(index.shape) - 2))
    _count_runs(index.reshape(-1), flat_steps(directions_zyx, index.shape), counts)
    # PyRadiomics drops a direction along which no line meets the ROI twice
    # (e.g. across the slices of a single-slice ROI). Only runs of one voxel
    # leave that open, and then lines may still meet the ROI twice, apart.
    for a in np.flatnonzero(~counts[:, :, 1:].any(axis=(1, 2))):
        if not _meets_roi_twice(index >= 0, directions_zyx[a]):
            counts[a] = 0.0
    return counts, levels, directions_zyx


class _Matrices:
    """Run-length matrices (n_angles, N, R), unnormalised, and their marginals."""

    def __init__(self, counts, levels, run_lengths):
        self.P = counts
        self.i = levels.astype(np.float64)
        self.j = run_lengths
        totals = counts.sum(axis=(1, 2))
        totals[totals == 0] = np.nan
        self.nr = totals

    @cached_property
    def pr(self):
        return self.P.sum(axis=1)

    @cached_property
    def pg(self):
        return self.P.sum(axis=2)

    def weighted(self, wi, wj):
        # sum_ij P(i,j) wi(i) wj(j) / Nr, per angle
        return ((self.P @ wj) @ wi) / self.nr


def _short_run_emphasis(m):
    r"""Short Run Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{j^2}`."""
    return (m.pr @ (1 / m.j**2)) / m.nr


def _long_run_emphasis(m):
    r"""Long Run Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,j^2`."""
    return (m.pr @ m.j**2) / m.nr


def _gray_level_non_uniformity(m):
    r"""Gray Level Non-Uniformity: :math:`\frac{1}{N_r}\sum_i \big(\sum_j \mathbf{P}(i,j)\big)^2`."""
    return np.sum(m.pg**2, axis=1) / m.nr


def _gray_level_non_uniformity_normalized(m):
    r"""Gray Level Non-Uniformity Normalized: :math:`\frac{1}{N_r^2}\sum_i \big(\sum_j \mathbf{P}(i,j)\big)^2`."""
    return np.sum(m.pg**2, axis=1) / m.nr**2


def _run_length_non_uniformity(m):
    r"""Run Length Non-Uniformity: :math:`\frac{1}{N_r}\sum_j \big(\sum_i \mathbf{P}(i,j)\big)^2`."""
    return np.sum(m.pr**2, axis=1) / m.nr


def _run_length_non_uniformity_normalized(m):
    r"""Run Length Non-Uniformity Normalized: :math:`\frac{1}{N_r^2}\sum_j \big(\sum_i \mathbf{P}(i,j)\big)^2`."""
    return np.sum(m.pr**2, axis=1) / m.nr**2


def _run_percentage(m):
    r"""Run Percentage: :math:`N_r / N_p` (with weighting both are weighted sums over directions)."""
    return m.nr / (m.pr @ m.j)


def _gray_level_variance(m):
    r"""Gray Level Variance: :math:`\sum_{i,j} p(i,j)(i-\mu)^2`, :math:`\mu = \sum_{i,j} p(i,j)\,i`."""
    pg = m.pg / m.nr[:, None]
    mu = pg @ m.i
    return np.sum(pg * (m.i[None, :] - mu[:, None]) ** 2, axis=1)


def _run_variance(m):
    r"""Run Variance: :math:`\sum_{i,j} p(i,j)(j-\mu)^2`, :math:`\mu = \sum_{i,j} p(i,j)\,j`."""
    pr = m.pr / m.nr[:, None]
    mu = pr @ m.j
    return np.sum(pr * (m.j[None, :] - mu[:, None]) ** 2, axis=1)


def _run_entropy(m):
    r"""Run Entropy: :math:`-\sum_{i,j} p(i,j) \log_2(p(i,j)+\epsilon)`."""
    p = m.P / m.nr[:, None, None]
    return -np.sum(p * np.log2(p + np.spacing(1)), axis=(1, 2))


def _low_gray_level_run_emphasis(m):
    r"""Low Gray Level Run Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{i^2}`."""
    return (m.pg @ (1 / m.i**2)) / m.nr


def _high_gray_level_run_emphasis(m):
    r"""High Gray Level Run Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,i^2`."""
    return (m.pg @ m.i**2) / m.nr


def _short_run_low_gray_level_emphasis(m):
    r"""Short Run Low Gray Level Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{i^2 j^2}`."""
    return m.weighted(1 / m.i**2, 1 / m.j**2)


def _short_run_high_gray_level_emphasis(m):
    r"""Short Run High Gray Level Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)\,i^2}{j^2}`."""
    return m.weighted(m.i**2, 1 / m.j**2)


def _long_run_low_gray_level_emphasis(m):
    r"""Long Run Low Gray Level Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)\,j^2}{i^2}`."""
    return m.weighted(1 / m.i**2, m.j**2)


def _long_run_high_gray_level_emphasis(m):
    r"""Long Run High Gray Level Emphasis: :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,i^2 j^2`."""
    return m.weighted(m.i**2, m.j**2)


# name -> (per-angle function, IBSI id). Order: PyRadiomics' documentation.
_DEFINITIONS = {
    "ShortRunEmphasis": (_short_run_emphasis, "22OV"),
    "LongRunEmphasis": (_long_run_emphasis, "W4KF"),
    "GrayLevelNonUniformity": (_gray_level_non_uniformity, "R5YN"),
    "GrayLevelNonUniformityNormalized": (_gray_level_non_uniformity_normalized, "OVBL"),
    "RunLengthNonUniformity": (_run_length_non_uniformity, "W92Y"),
    "RunLengthNonUniformityNormalized": (_run_length_non_uniformity_normalized, "IC23"),
    "RunPercentage": (_run_percentage, "9ZK5"),
    "GrayLevelVariance": (_gray_level_variance, "8CE5"),
    "RunVariance": (_run_variance, "SXLW"),
    "RunEntropy": (_run_entropy, "HJ9O"),
    "LowGrayLevelRunEmphasis": (_low_gray_level_run_emphasis, "V3SW"),
    "HighGrayLevelRunEmphasis": (_high_gray_level_run_emphasis, "G3QZ"),
    "ShortRunLowGrayLevelEmphasis": (_short_run_low_gray_level_emphasis, "HTZT"),
    "ShortRunHighGrayLevelEmphasis": (_short_run_high_gray_level_emphasis, "GD3A"),
    "LongRunLowGrayLevelEmphasis": (_long_run_low_gray_level_emphasis, "IVPO"),
    "LongRunHighGrayLevelEmphasis": (_long_run_high_gray_level_emphasis, "3KUM"),
}

FEATURES = tuple(Feature(name, "glrlm", ibsi_id, "", True) for name, (_, ibsi_id) in _DEFINITIONS.items())


def compute(
    binned,
    mask,
    *,
    weighting_norm=None,
    spacing_zyx=(1.0, 1.0, 1.0),
    force2d=False,
    force2d_dimension=0,
    features=None,
) -> dict[str, float]:
    """GLRLM features of one ROI, equal to PyRadiomics' ``RadiomicsGLRLM``.

    Parameters
    ----------
    binned : ndarray of int, shape (z, y, x)
        Discretised image (PyRadiomics ``binImage``): grey levels >= 1 inside
        the ROI; values outside are ignored. Cropped or not: same result.
    mask : ndarray of bool or {0, 1} int, shape (z, y, x)
        ROI mask.
    weighting_norm : {None, "manhattan", "euclidean", "infinity", "no_weighting"}
        ``weightingNorm``: None averages features over the directions;
        otherwise the matrices are summed, weighted by the direction's step
        length in mm under that norm (1 for ``"no_weighting"``).
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm, (z, y, x); used only for weighting.
    force2d : bool
        Only directions within planes normal to ``force2d_dimension`` (``force2D``).
    force2d_dimension : {0, 1, 2}
        Array axis held fixed when ``force2d`` (0: axial slices).
    features : iterable of str, optional
        Feature names to compute (default: all of :data:`FEATURES`).

    Returns
    -------
    dict of str to float
        PyRadiomics feature name -> value; NaN where PyRadiomics gives NaN
        (e.g. a one-voxel ROI: no direction crosses it twice).

    Raises
    ------
    SettingsError
        Unknown feature name or invalid setting.
    InputError
        Bad ``binned`` / ``mask`` (see :func:`radflow.features._directions.roi_levels`).

    Examples
    --------
    >>> import numpy as np
    >>> binned = np.array([[[1, 1, 2], [2, 2, 1]]])  # one slice, (z, y, x)
    >>> compute(binned, binned > 0, force2d=True, features=["ShortRunEmphasis"])
    {'ShortRunEmphasis': 0.83125}
    """
    names = requested_features(features, FEATURES, "GLRLM")
    check_weighting_norm(weighting_norm)
    check_spacing(spacing_zyx)
    counts, levels, directions_zyx = run_lengths(
        binned, mask, force2d=force2d, force2d_dimension=force2d_dimension
    )
    if weighting_norm is not None:
        weights = offset_lengths_mm(directions_zyx, spacing_zyx, weighting_norm)
        counts = np.tensordot(weights, counts, axes=1)[None]
    totals = counts.sum(axis=(1, 2))
    if len(totals) > 1:
        counts = counts[totals != 0]
    # run lengths that occur in no direction add nothing; dropping them as
    # PyRadiomics does keeps the arrays small
    lengths = np.flatnonzero(counts.sum(axis=(0, 1))) + 1.0
    m = _Matrices(counts[:, :, lengths.astype(np.int64) - 1], levels, lengths)
    out = {}
    for name in names:
        out[name] = nanmean(_DEFINITIONS[name][0](m))
    return out

