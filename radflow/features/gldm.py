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
- DependenceEntropy: :math:`-\\sum_{i,j} p(i,j) \\log_2(p(i,j) + \\epsilon)`,
  :math:`\\epsilon` = machine epsilon
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

from collections.abc import Iterable
from numbers import Integral

import numpy as np

from radflow.errors import SettingsError
from radflow.features import _texture
from radflow.features._checks import requested_features
from radflow.features._directions import flat_steps, offsets, roi_levels
from radflow.features._native import dependence_counts
from radflow.features._texture import SizeMatrices, document, evaluate
from radflow.features.registry import declare

__all__ = ["FAMILY", "FEATURES", "compute", "dependence_matrix"]

FAMILY = "gldm"


def _check_gldm_a(gldm_a) -> int:
    if not isinstance(gldm_a, Integral) or isinstance(gldm_a, bool) or gldm_a < 0:
        raise SettingsError(
            f"gldm_a: expected an integer >= 0 (grey-level difference, bins), got {gldm_a!r}"
        )
    return int(gldm_a)


def dependence_matrix(
    binned, mask, *, distances=(1,), gldm_a=0, force2d=False, force2d_dimension=0
):
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
    counts = dependence_counts(index.ravel(), levels, flat_steps(neighbours, index.shape), alpha)
    present = np.flatnonzero(counts.sum(axis=0))
    return (
        counts[:, present].astype(np.float64),
        levels.astype(np.float64),
        (present + 1).astype(np.float64),
    )


# name -> (formula, IBSI id, default). Order: PyRadiomics' documentation.
# Formulas: :mod:`radflow.features._texture` with j the dependence size.
_DEFINITIONS = {
    "SmallDependenceEmphasis": (_texture.small_emphasis, "SODN", True),
    "LargeDependenceEmphasis": (_texture.large_emphasis, "IMOQ", True),
    "GrayLevelNonUniformity": (_texture.grey_non_uniformity, "FP8K", True),
    "GrayLevelNonUniformityNormalized": (_texture.grey_non_uniformity_normalized, "5SPA", False),
    "DependenceNonUniformity": (_texture.size_non_uniformity, "Z87G", True),
    "DependenceNonUniformityNormalized": (_texture.size_non_uniformity_normalized, "OKJI", True),
    "DependencePercentage": (_texture.percentage, "6XV8", False),
    "GrayLevelVariance": (_texture.grey_variance, "1PFV", True),
    "DependenceVariance": (_texture.size_variance, "DNX2", True),
    "DependenceEntropy": (_texture.entropy, "FCBV", True),
    "LowGrayLevelEmphasis": (_texture.low_grey_emphasis, "TL9H", True),
    "HighGrayLevelEmphasis": (_texture.high_grey_emphasis, "OAE7", True),
    "SmallDependenceLowGrayLevelEmphasis": (_texture.small_low_grey_emphasis, "EQ3F", True),
    "SmallDependenceHighGrayLevelEmphasis": (_texture.small_high_grey_emphasis, "JA6D", True),
    "LargeDependenceLowGrayLevelEmphasis": (_texture.large_low_grey_emphasis, "NBZI", True),
    "LargeDependenceHighGrayLevelEmphasis": (_texture.large_high_grey_emphasis, "9QMG", True),
}

FEATURES = declare(FAMILY, _DEFINITIONS)


@document
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
    %(image)s
    %(distances)s
    gldm_a : int
        Largest grey-level difference, in bins, of a dependent neighbour
        (PyRadiomics ``gldm_a``, IBSI coarseness :math:`\\alpha`).
    %(force2d)s

    Returns
    -------
    dict of str to float
        Dimensionless feature values keyed by PyRadiomics name; formulas in
        the module docstring.

    %(raises)s
    """
    names = requested_features(features, FEATURES, FAMILY)
    matrix, levels, sizes = dependence_matrix(
        binned,
        mask,
        distances=distances,
        gldm_a=gldm_a,
        force2d=force2d,
        force2d_dimension=force2d_dimension,
    )
    counts = matrix[None]
    n_voxels = counts.sum(axis=(1, 2))  # one matrix entry per ROI voxel: N_p = N_z
    return evaluate(names, _DEFINITIONS, SizeMatrices(counts, levels, sizes, n_voxels))
