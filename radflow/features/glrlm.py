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
float64 machine epsilon. The sixteen features are the formulas GLRLM shares
with GLSZM and GLDM (:mod:`radflow.features._texture`, :math:`j` read as run
length), per direction:

- ShortRunEmphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{j^2}`;
  LongRunEmphasis: :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,j^2`
- GrayLevelNonUniformity: :math:`\frac{1}{N_r}\sum_i \big(\sum_j \mathbf{P}(i,j)\big)^2`
  (Normalized: :math:`/N_r^2`)
- RunLengthNonUniformity: :math:`\frac{1}{N_r}\sum_j \big(\sum_i \mathbf{P}(i,j)\big)^2`
  (Normalized: :math:`/N_r^2`)
- RunPercentage: :math:`N_r / N_p` (with weighting both are weighted sums over directions)
- GrayLevelVariance: :math:`\sum_{i,j} p(i,j)(i-\mu)^2`, :math:`\mu = \sum_{i,j} p(i,j)\,i`;
  RunVariance likewise with :math:`j`
- RunEntropy: :math:`-\sum_{i,j} p(i,j) \log_2(p(i,j)+\epsilon)`
- LowGrayLevelRunEmphasis: :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{i^2}`;
  HighGrayLevelRunEmphasis: :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,i^2`
- ShortRunLowGrayLevelEmphasis :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)}{i^2 j^2}`,
  ShortRunHighGrayLevelEmphasis :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)\,i^2}{j^2}`,
  LongRunLowGrayLevelEmphasis :math:`\frac{1}{N_r}\sum_{i,j} \frac{\mathbf{P}(i,j)\,j^2}{i^2}`,
  LongRunHighGrayLevelEmphasis :math:`\frac{1}{N_r}\sum_{i,j} \mathbf{P}(i,j)\,i^2 j^2`

References
----------
Galloway MM. Texture analysis using gray level run lengths. Comput Graph
Image Process 1975;4(2):172-179. doi:10.1016/S0146-664X(75)80008-6

van Griethuysen JJM et al. Computational radiomics system to decode the
radiographic phenotype. Cancer Res 2017;77(21):e104-e107.
doi:10.1158/0008-5472.CAN-17-0339
"""

from __future__ import annotations

import numpy as np

from radflow.features import _texture
from radflow.features._directions import flat_steps, offset_lengths_mm, offsets, roi_levels
from radflow.features._native import count_runs
from radflow.features._texture import (
    SizeMatrices,
    check_directional,
    combine_directions,
    document,
    evaluate,
)
from radflow.features.registry import declare

__all__ = ["FAMILY", "FEATURES", "compute", "run_lengths"]

FAMILY = "glrlm"


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
    count_runs(index.reshape(-1), flat_steps(directions_zyx, index.shape), counts)
    # PyRadiomics drops a direction along which no line meets the ROI twice
    # (e.g. across the slices of a single-slice ROI). Only runs of one voxel
    # leave that open, and then lines may still meet the ROI twice, apart.
    for a in np.flatnonzero(~counts[:, :, 1:].any(axis=(1, 2))):
        if not _meets_roi_twice(index >= 0, directions_zyx[a]):
            counts[a] = 0.0
    return counts, levels, directions_zyx


# name -> (per-direction formula, IBSI id, default). Order: PyRadiomics' documentation.
# Formulas: :mod:`radflow.features._texture` with j the run length, N_z = N_r.
_DEFINITIONS = {
    "ShortRunEmphasis": (_texture.small_emphasis, "22OV", True),
    "LongRunEmphasis": (_texture.large_emphasis, "W4KF", True),
    "GrayLevelNonUniformity": (_texture.grey_non_uniformity, "R5YN", True),
    "GrayLevelNonUniformityNormalized": (_texture.grey_non_uniformity_normalized, "OVBL", True),
    "RunLengthNonUniformity": (_texture.size_non_uniformity, "W92Y", True),
    "RunLengthNonUniformityNormalized": (_texture.size_non_uniformity_normalized, "IC23", True),
    "RunPercentage": (_texture.percentage, "9ZK5", True),
    "GrayLevelVariance": (_texture.grey_variance, "8CE5", True),
    "RunVariance": (_texture.size_variance, "SXLW", True),
    "RunEntropy": (_texture.entropy, "HJ9O", True),
    "LowGrayLevelRunEmphasis": (_texture.low_grey_emphasis, "V3SW", True),
    "HighGrayLevelRunEmphasis": (_texture.high_grey_emphasis, "G3QZ", True),
    "ShortRunLowGrayLevelEmphasis": (_texture.small_low_grey_emphasis, "HTZT", True),
    "ShortRunHighGrayLevelEmphasis": (_texture.small_high_grey_emphasis, "GD3A", True),
    "LongRunLowGrayLevelEmphasis": (_texture.large_low_grey_emphasis, "IVPO", True),
    "LongRunHighGrayLevelEmphasis": (_texture.large_high_grey_emphasis, "3KUM", True),
}

FEATURES = declare(FAMILY, _DEFINITIONS)


@document
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
    %(image)s
    %(weighting)s
    %(force2d)s

    Returns
    -------
    dict of str to float
        PyRadiomics feature name -> value; NaN where PyRadiomics gives NaN
        (e.g. a one-voxel ROI: no direction crosses it twice).

    %(raises)s

    Examples
    --------
    >>> import numpy as np
    >>> binned = np.array([[[1, 1, 2], [2, 2, 1]]])  # one slice, (z, y, x)
    >>> compute(binned, binned > 0, force2d=True, features=["ShortRunEmphasis"])
    {'ShortRunEmphasis': 0.83125}
    """
    names = check_directional(features, FEATURES, "GLRLM", weighting_norm, spacing_zyx)
    counts, levels, directions_zyx = run_lengths(
        binned, mask, force2d=force2d, force2d_dimension=force2d_dimension
    )
    weights = None  # with weighting, a direction's matrix weighs its step length in mm
    if weighting_norm is not None:
        weights = offset_lengths_mm(directions_zyx, spacing_zyx, weighting_norm)
    counts = combine_directions(counts, weights)
    # run lengths that occur in no direction add nothing; dropping them as
    # PyRadiomics does keeps the arrays small
    lengths = np.flatnonzero(counts.sum(axis=(0, 1))) + 1.0
    matrices = SizeMatrices(counts[:, :, lengths.astype(np.int64) - 1], levels, lengths)
    return evaluate(names, _DEFINITIONS, matrices)
