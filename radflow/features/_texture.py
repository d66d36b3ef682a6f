r"""What the PyRadiomics-mode texture families share.

Every texture family (:mod:`~radflow.features.glcm`, :mod:`~radflow.features.glrlm`,
:mod:`~radflow.features.glszm`, :mod:`~radflow.features.gldm`,
:mod:`~radflow.features.ngtdm`) is built the same way:

1. a compiled kernel from :mod:`radflow.features._shared_kernels` (no checks);
2. a checked public matrix builder returning raw counts over the grey levels
   present in the ROI (``cooccurrence``, ``run_lengths``, ``size_zone_matrix``,
   ``dependence_matrix``, ``tone_difference_matrix``);
3. a *stack* of matrices, one per direction (GLCM, GLRLM without weighting)
   or a single one, wrapped in an object holding the sums its features share
   (:class:`SizeMatrices` for GLRLM, GLSZM and GLDM);
4. ``_DEFINITIONS``, ``{name: (formula, IBSI id, default)}``, each formula
   giving one value per matrix of the stack, from which
   :func:`radflow.features.registry.declare` makes the family's ``FEATURES``;
5. ``compute``: :func:`check_directional` (or
   :func:`radflow.features._checks.requested_features`), the matrices, then
   :func:`evaluate`, which averages each feature over the matrices.

This module holds what steps 3-5 repeat: the weighting and dropping of
directions (:func:`combine_directions`), the matrix totals (:func:`totals`),
the averaging over matrices (:func:`evaluate`), and the sixteen formulas that
GLRLM, GLSZM and GLDM share (:class:`SizeMatrices`), written as PyRadiomics
writes them.

Notation of the shared formulas: :math:`\mathbf{P}(i, j)` counts, per grey
level :math:`i` (rows) and *size* :math:`j` (columns: run length for GLRLM,
zone size for GLSZM, dependence size for GLDM), :math:`N_z = \sum_{i,j}
\mathbf{P}(i,j)` the total, :math:`N_p` the number of voxels,
:math:`p(i,j) = \mathbf{P}(i,j)/N_z`, :math:`p_g(i) = \sum_j p(i,j)`,
:math:`p_s(j) = \sum_i p(i,j)`, :math:`\epsilon` the float64 machine epsilon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property

import numpy as np

from radflow._docstrings import filler
from radflow.features._checks import check_spacing, requested_features
from radflow.features._directions import check_weighting_norm, nanmean

__all__ = [
    "SizeMatrices",
    "check_directional",
    "combine_directions",
    "document",
    "entropy",
    "evaluate",
    "grey_non_uniformity",
    "grey_non_uniformity_normalized",
    "grey_variance",
    "high_grey_emphasis",
    "large_emphasis",
    "large_high_grey_emphasis",
    "large_low_grey_emphasis",
    "low_grey_emphasis",
    "mean",
    "percentage",
    "size_non_uniformity",
    "size_non_uniformity_normalized",
    "size_variance",
    "small_emphasis",
    "small_high_grey_emphasis",
    "small_low_grey_emphasis",
    "totals",
]

_EPS = np.spacing(1)

#: Parameter and error descriptions the families' ``compute`` share (:func:`document`).
_DOCS = {
    "image": """binned : ndarray of int, shape (z, y, x)
        Discretised image (PyRadiomics ``binImage``): grey levels >= 1 inside
        the ROI; values outside are ignored. Cropped or not: same result.
    mask : ndarray of bool or {0, 1} int, shape (z, y, x)
        ROI mask, non-empty.""",
    "distances": """distances : sequence of int
        Neighbour distances in voxels, infinity (Chebyshev) norm (``distances``).""",
    "weighting": """weighting_norm : {None, "manhattan", "euclidean", "infinity", "no_weighting"}
        ``weightingNorm``: None averages the features over the directions;
        otherwise the matrices are summed, each weighted by a function of the
        offset's length in mm under that norm (module docstring; 1 for
        ``"no_weighting"``).
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm, (z, y, x); used only for weighting.""",
    "force2d": """force2d : bool
        Neighbours, directions and zones within the slices normal to
        ``force2d_dimension`` only (``force2D``).
    force2d_dimension : {0, 1, 2}
        Array axis held fixed when ``force2d`` (``force2Ddimension``): 0 = z
        (axial slices), 1 = y, 2 = x.
    features : iterable of str, optional
        Names to compute (see ``FEATURES``); default those with
        ``default=True``, as PyRadiomics' ``enableAllFeatures``.""",
    "raises": """Raises
    ------
    SettingsError
        Unknown feature name or invalid setting.
    InputError
        Bad ``binned`` / ``mask``: shape, dtype, empty ROI, grey level < 1
        (:func:`radflow.features._directions.roi_levels`).""",
}


#: Fills the shared ``%(image)s``, ``%(force2d)s`` ... descriptions of a ``compute`` docstring.
document = filler(_DOCS)


def check_directional(
    features, family_features, family: str, weighting_norm, spacing_zyx
) -> list[str]:
    """Checks of a family with per-direction matrices (GLCM, GLRLM); the names to compute."""
    names = requested_features(features, family_features, family)
    check_weighting_norm(weighting_norm)
    check_spacing(spacing_zyx)
    return names


def combine_directions(counts: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The matrices features are computed on, from one matrix per direction.

    Parameters
    ----------
    counts : ndarray of float64, shape (n_directions, ...)
        Raw counts per direction.
    weights : ndarray of float64, shape (n_directions,), optional
        With weights (PyRadiomics ``weightingNorm``), the single weighted sum
        of the matrices; without, the matrices of the directions.

    Returns
    -------
    ndarray of float64, shape (n_matrices, ...)
        Directions whose matrix is empty are dropped, unless only one matrix
        is left, as PyRadiomics does.
    """
    if weights is not None:
        counts = np.tensordot(weights, counts, axes=1)[None]
    sums = counts.sum(axis=(1, 2))
    if len(sums) > 1:
        counts = counts[sums != 0]
    return counts


def totals(counts: np.ndarray) -> np.ndarray:
    """Sum of each matrix of a (n_matrices, rows, columns) stack; NaN for an empty matrix."""
    out = counts.sum(axis=(1, 2))
    out[out == 0] = np.nan
    return out


def mean(values) -> float:
    """Plain mean over the matrices, NaN values included (NaN for none)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


def evaluate(
    names: Iterable[str],
    definitions: Mapping[str, tuple[Callable, str | None, bool]],
    matrices,
    averages: Mapping[str, Callable] | None = None,
) -> dict[str, float]:
    """``{name: value}``: each feature's per-matrix values averaged over the matrices.

    The average skips NaN values (:func:`radflow.features._directions.nanmean`,
    as PyRadiomics' ``nanmean`` over angles) unless ``averages`` names
    another function for the feature.
    """
    averages = averages or {}
    return {name: averages.get(name, nanmean)(definitions[name][0](matrices)) for name in names}


class SizeMatrices:
    """A stack of (grey level x size) matrices and the sums its features start from.

    Parameters
    ----------
    counts : ndarray of float64, shape (n_matrices, N_g, N_s)
        :math:`\\mathbf{P}`, one matrix per direction or a single one.
    levels : ndarray, shape (N_g,)
        Grey level :math:`i` of each row.
    sizes : ndarray, shape (N_s,)
        Size :math:`j` of each column (run length, zone size, dependence size).
    n_voxels : ndarray of float64, shape (n_matrices,), optional
        :math:`N_p`; default :math:`\\sum_{i,j} j\\,\\mathbf{P}(i,j)` (every
        voxel in one run or zone).
    """

    def __init__(self, counts, levels, sizes, n_voxels=None):
        self.P = counts
        self.i = np.asarray(levels, dtype=np.float64)
        self.j = np.asarray(sizes, dtype=np.float64)
        self.Nz = totals(counts)
        self._n_voxels = n_voxels

    @cached_property
    def pg(self):
        """:math:`\\sum_j \\mathbf{P}(i,j)`, shape (n_matrices, N_g)."""
        return self.P.sum(axis=2)

    @cached_property
    def ps(self):
        """:math:`\\sum_i \\mathbf{P}(i,j)`, shape (n_matrices, N_s)."""
        return self.P.sum(axis=1)

    @cached_property
    def Np(self):
        """:math:`N_p`, shape (n_matrices,)."""
        if self._n_voxels is not None:
            return self._n_voxels
        return np.sum(self.ps * self.j, axis=1)


def _variance(margin, values, total):
    p = margin / total[:, None]
    centre = np.sum(p * values, axis=1, keepdims=True)
    return np.sum(p * (values - centre) ** 2, axis=1)


def small_emphasis(m):
    r"""Small (short) emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j) / j^2 / N_z`."""
    return np.sum(m.ps / m.j**2, axis=1) / m.Nz


def large_emphasis(m):
    r"""Large (long) emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j)\, j^2 / N_z`."""
    return np.sum(m.ps * m.j**2, axis=1) / m.Nz


def grey_non_uniformity(m):
    r"""Grey level non-uniformity: :math:`\sum_i (\sum_j \mathbf{P}(i,j))^2 / N_z`."""
    return np.sum(m.pg**2, axis=1) / m.Nz


def grey_non_uniformity_normalized(m):
    r"""Grey level non-uniformity normalised: :math:`\sum_i (\sum_j \mathbf{P}(i,j))^2 / N_z^2`."""
    return np.sum(m.pg**2, axis=1) / m.Nz**2


def size_non_uniformity(m):
    r"""Size non-uniformity: :math:`\sum_j (\sum_i \mathbf{P}(i,j))^2 / N_z`."""
    return np.sum(m.ps**2, axis=1) / m.Nz


def size_non_uniformity_normalized(m):
    r"""Size non-uniformity normalised: :math:`\sum_j (\sum_i \mathbf{P}(i,j))^2 / N_z^2`."""
    return np.sum(m.ps**2, axis=1) / m.Nz**2


def percentage(m):
    r"""Percentage: :math:`N_z / N_p`."""
    return m.Nz / m.Np


def grey_variance(m):
    r"""Grey level variance: :math:`\sum_i p_g(i)(i - \mu)^2`, :math:`\mu = \sum_i p_g(i)\, i`."""
    return _variance(m.pg, m.i, m.Nz)


def size_variance(m):
    r"""Size variance: :math:`\sum_j p_s(j)(j - \mu)^2`, :math:`\mu = \sum_j p_s(j)\, j`."""
    return _variance(m.ps, m.j, m.Nz)


def entropy(m):
    r"""Entropy: :math:`-\sum_{i,j} p(i,j) \log_2(p(i,j) + \epsilon)`."""
    p = m.P / m.Nz[:, None, None]
    return -np.sum(p * np.log2(p + _EPS), axis=(1, 2))


def low_grey_emphasis(m):
    r"""Low grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j) / i^2 / N_z`."""
    return np.sum(m.pg / m.i**2, axis=1) / m.Nz


def high_grey_emphasis(m):
    r"""High grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j)\, i^2 / N_z`."""
    return np.sum(m.pg * m.i**2, axis=1) / m.Nz


def small_low_grey_emphasis(m):
    r"""Small, low grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j) / (i^2 j^2) / N_z`."""
    return np.sum(m.P / (m.i[:, None] ** 2 * m.j**2), axis=(1, 2)) / m.Nz


def small_high_grey_emphasis(m):
    r"""Small, high grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j)\, i^2 / j^2 / N_z`."""
    return np.sum(m.P * m.i[:, None] ** 2 / m.j**2, axis=(1, 2)) / m.Nz


def large_low_grey_emphasis(m):
    r"""Large, low grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j)\, j^2 / i^2 / N_z`."""
    return np.sum(m.P * m.j**2 / m.i[:, None] ** 2, axis=(1, 2)) / m.Nz


def large_high_grey_emphasis(m):
    r"""Large, high grey level emphasis: :math:`\sum_{i,j} \mathbf{P}(i,j)\, i^2 j^2 / N_z`."""
    return np.sum(m.P * m.i[:, None] ** 2 * m.j**2, axis=(1, 2)) / m.Nz
