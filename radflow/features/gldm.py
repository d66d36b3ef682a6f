"""Grey Level Dependence Matrix (GLDM) features, numerically as PyRadiomics 3.0.1.

A neighbour of a ROI voxel is a ROI voxel at one of the Chebyshev distances
``distances`` (both directions; with ``force2d`` only within the slice); it
is *dependent* when its grey level differs by at most ``gldm_a``. The matrix
:math:`\\mathbf{P}(i, j)` counts the voxels of grey level :math:`i` with
:math:`j - 1` dependent neighbours, so every ROI voxel is counted once and
:math:`j \\ge 1`. Grey levels and dependence sizes that do not occur are left
out, as PyRadiomics does. With ``distances=(1,)`` this is the IBSI's NGLDM
(coarseness parameter :math:`\\alpha` = ``gldm_a``); other distances take only
the voxels at exactly those Chebyshev distances, not all within them.

Notation: :math:`N_z = \\sum_{i,j} \\mathbf{P}(i,j)` (= :math:`N_p`, the
number of ROI voxels), :math:`p(i,j) = \\mathbf{P}(i,j)/N_z`,
:math:`p_g(i) = \\sum_j p(i,j)`, :math:`p_d(j) = \\sum_i p(i,j)`.

Features (PyRadiomics name: formula):

- SmallDependenceEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / j^2 / N_z`
- LargeDependenceEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, j^2 / N_z`
- GrayLevelNonUniformity: :math:`\\sum_i (\\sum_j \\mathbf{P}(i,j))^2 / N_z`
- DependenceNonUniformity: :math:`\\sum_j (\\sum_i \\mathbf{P}(i,j))^2 / N_z`
- DependenceNonUniformityNormalized: :math:`\\sum_j (\\sum_i \\mathbf{P}(i,j))^2 / N_z^2`
- GrayLevelVariance: :math:`\\sum_i p_g(i)(i - \\mu_i)^2`, :math:`\\mu_i = \\sum_i p_g(i)\\, i`
- DependenceVariance: :math:`\\sum_j p_d(j)(j - \\mu_j)^2`, :math:`\\mu_j = \\sum_j p_d(j)\\, j`
- DependenceEntropy: :math:`-\\sum_{i,j} p(i,j) \\log_2(p(i,j) + \\epsilon)`, :math:`\\epsilon` = machine epsilon
- LowGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / i^2 / N_z`
- HighGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 / N_z`
- SmallDependenceLowGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j) / (i^2 j^2) / N_z`
- SmallDependenceHighGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 / j^2 / N_z`
- LargeDependenceLowGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, j^2 / i^2 / N_z`
- LargeDependenceHighGrayLevelEmphasis: :math:`\\sum_{i,j} \\mathbf{P}(i,j)\\, i^2 j^2 / N_z`

Deprecated in PyRadiomics, which returns no value for them; computed here
only on request (``default=False``):

- GrayLevelNonUniformityNormalized: :math:`\\sum_i (\\sum_j \\mathbf{P}(i,j))^2 / N_z^2`,
  equal to first-order Uniformity since :math:`N_z = N_p`.
- DependencePercentage: :math:`N_z / N_p`, always 1.

References
----------
Sun C., Wee W. G. (1983) Neighboring gray level dependence matrix for texture
classification. Comput. Vision Graph. Image Process. 23: 341-352.
https://doi.org/10.1016/0734-189X(83)90032-4
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Integral

import numba
import numpy as np

from radflow.errors import SettingsError
from radflow.features._checks import requested_features
from radflow.features._directions import flat_steps, offsets, roi_levels
from radflow.features.glszm import _entropy, _variance
from radflow.features.registry import Feature

FAMILY = "gldm"

FEATURES = (
    Feature("SmallDependenceEmphasis", FAMILY, "SODN"),
    Feature("LargeDependenceEmphasis", FAMILY, "IMOQ"),
    Feature("GrayLevelNonUniformity", FAMILY, "FP8K"),
    Feature("GrayLevelNonUniformityNormalized", FAMILY, "5SPA", default=False),
    Feature("DependenceNonUniformity", FAMILY, "Z87G"),
    Feature("DependenceNonUniformityNormalized", FAMILY, "OKJI"),
    Feature("DependencePercentage", FAMILY, "6XV8", default=False),
    Feature("GrayLevelVariance", FAMILY, "1PFV"),
    Feature("DependenceVariance", FAMILY, "DNX2"),
    Feature("DependenceEntropy", FAMILY, "FCBV"),
    Feature("LowGrayLevelEmphasis", FAMILY, "TL9H"),
    Feature("HighGrayLevelEmphasis", FAMILY, "OAE7"),
    Feature("SmallDependenceLowGrayLevelEmphasis", FAMILY, "EQ3F"),
    Feature("SmallDependenceHighGrayLevelEmphasis", FAMILY, "JA6D"),
    Feature("LargeDependenceLowGrayLevelEmphasis", FAMILY, "NBZI"),
    Feature("LargeDependenceHighGrayLevelEmphasis", FAMILY, "9QMG"),
)


@numba.njit(cache=True)
def _dependence_counts(index, levels, flat_offsets, alpha):
    """Voxel counts per (level index, number of dependent neighbours).

    ``index`` is raveled, -1 outside the ROI, with a margin of -1 at least as
    wide as the longest offset.
    """
    counts = np.zeros((levels.shape[0], flat_offsets.shape[0] + 1), np.int64)
    for i in range(index.shape[0]):
        li = index[i]
        if li < 0:
            continue
        dependent = 0
        if alpha == 0:
            # Same level index, same level; no gather, no branch (~3x faster).
            for a in range(flat_offsets.shape[0]):
                dependent += index[i + flat_offsets[a]] == li
        else:
            level = levels[li]
            for a in range(flat_offsets.shape[0]):
                lj = index[i + flat_offsets[a]]
                if lj >= 0 and abs(levels[lj] - level) <= alpha:
                    dependent += 1
        counts[li, dependent] += 1
    return counts


def _check_gldm_a(gldm_a) -> int:
    if not isinstance(gldm_a, Integral) or isinstance(gldm_a, bool) or gldm_a < 0:
        raise SettingsError(
            f"gldm_a: expected an integer >= 0 (grey-level difference, bins), got {gldm_a!r}"
        )
    return int(gldm_a)


def dependence_matrix(binned, mask, *, distances=(1,), gldm_a=0, force2d=False, force2d_dimension=0):
    """The GLDM over the grey levels and dependence sizes present in the ROI.

    Parameters
    ----------
    binned, mask, distances, gldm_a, force2d, force2d_dimension
        As for :func:`compute`.

    Returns
    -------
    matrix : ndarray of float64, shape (N_g, N_d)
        Number of voxels per grey level (row) and dependence size (column).
    levels : ndarray of float64, shape (N_g,)
        Grey level of each row.
    sizes : ndarray of float64, shape (N_d,)
        Dependence size of each column: 1 + number of dependent neighbours.
    """
    alpha = _check_gldm_a(gldm_a)
    neighbours = offsets(distances, bool(force2d), force2d_dimension, bidirectional=True)
    index, levels = roi_levels(binned, mask, pad=int(np.abs(neighbours).max(initial=0)))
    counts = _dependence_counts(
        index.ravel(), levels, flat_steps(neighbours, index.shape), alpha
    )
    present = np.flatnonzero(counts.sum(axis=0))
    return (
        counts[:, present].astype(np.float64),
        levels.astype(np.float64),
        (present + 1).astype(np.float64),
    )


class _Coefficients:
    """The matrix and the sums every feature starts from (PyRadiomics' names)."""

    def __init__(self, matrix, levels, sizes):
        self.P = matrix
        self.i = levels
        self.j = sizes
        self.pg = matrix.sum(axis=1)
        self.pd = matrix.sum(axis=0)
        self.Nz = matrix.sum()
        self.Np = self.Nz  # one matrix entry per ROI voxel


_FORMULAS: dict[str, Callable[[_Coefficients], float]] = {
    "SmallDependenceEmphasis": lambda c: np.sum(c.pd / c.j**2) / c.Nz,
    "LargeDependenceEmphasis": lambda c: np.sum(c.pd * c.j**2) / c.Nz,
    "GrayLevelNonUniformity": lambda c: np.sum(c.pg**2) / c.Nz,
    "GrayLevelNonUniformityNormalized": lambda c: np.sum(c.pg**2) / c.Nz**2,
    "DependenceNonUniformity": lambda c: np.sum(c.pd**2) / c.Nz,
    "DependenceNonUniformityNormalized": lambda c: np.sum(c.pd**2) / c.Nz**2,
    "DependencePercentage": lambda c: c.Nz / c.Np,
    "GrayLevelVariance": lambda c: _variance(c.pg, c.i, c.Nz),
    "DependenceVariance": lambda c: _variance(c.pd, c.j, c.Nz),
    "DependenceEntropy": _entropy,
    "LowGrayLevelEmphasis": lambda c: np.sum(c.pg / c.i**2) / c.Nz,
    "HighGrayLevelEmphasis": lambda c: np.sum(c.pg * c.i**2) / c.Nz,
    "SmallDependenceLowGrayLevelEmphasis": lambda c: np.sum(c.P / (c.i[:, None] ** 2 * c.j**2)) / c.Nz,
    "SmallDependenceHighGrayLevelEmphasis": lambda c: np.sum(c.P * c.i[:, None] ** 2 / c.j**2) / c.Nz,
    "LargeDependenceLowGrayLevelEmphasis": lambda c: np.sum(c.P * c.j**2 / c.i[:, None] ** 2) / c.Nz,
    "LargeDependenceHighGrayLevelEmphasis": lambda c: np.sum(c.P * c.i[:, None] ** 2 * c.j**2) / c.Nz,
}


def compute(
    binned,
    mask,
    *,
    distances: Iterable[int] = (1,),
    gldm_a: int = 0,
    force2d: bool = False,
    force2d_dimension: int = 0,
    features: Iterable[str] | None = None,
) -> dict[str, float]:
    """GLDM features of one ROI, as PyRadiomics' ``RadiomicsGLDM``.

    Parameters
    ----------
    binned : ndarray of int, shape (Z, Y, X)
        Discretised image (``sitk.GetArrayFromImage`` order), grey levels
        >= 1 inside the ROI; values outside the ROI are ignored. Cropped or
        not, the result is the same.
    mask : ndarray of bool or 0/1 int, shape (Z, Y, X)
        The ROI, non-empty.
    distances : sequence of int
        Chebyshev distances of the neighbours, voxels (PyRadiomics
        ``distances``).
    gldm_a : int
        Largest grey-level difference, in bins, of a dependent neighbour
        (PyRadiomics ``gldm_a``, IBSI coarseness :math:`\\alpha`).
    force2d : bool
        Neighbours within the slice only (PyRadiomics ``force2D``).
    force2d_dimension : {0, 1, 2}
        Axis across which slices are taken: 0 = z (axial), 1 = y, 2 = x.
    features : iterable of str, optional
        Names to compute (see ``FEATURES``); default those with
        ``default=True``, as PyRadiomics' ``enableAllFeatures``.

    Returns
    -------
    dict of str to float
        Dimensionless feature values keyed by PyRadiomics name; formulas in
        the module docstring.

    Raises
    ------
    InputError
        Bad array (shape, dtype, empty ROI, grey level < 1).
    SettingsError
        Bad setting or unknown feature name.
    """
    names = requested_features(features, FEATURES, FAMILY)
    coefficients = _Coefficients(
        *dependence_matrix(
            binned,
            mask,
            distances=distances,
            gldm_a=gldm_a,
            force2d=force2d,
            force2d_dimension=force2d_dimension,
        )
    )
    return {name: float(_FORMULAS[name](coefficients)) for name in names}
