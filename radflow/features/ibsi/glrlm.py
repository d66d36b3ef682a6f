r"""IBSI grey level run length matrix (GLRLM) features, with the IBSI aggregation methods.

For a direction :math:`\mathbf{m}` (the 13 unit directions of the 26-neighbourhood
in 3D, the 4 in-plane ones in 2D), element :math:`r_{ij}` of the
:math:`N_g \times N_r` matrix counts the runs of :math:`j` consecutive ROI
voxels of grey level :math:`i` along :math:`\mathbf{m}` (a voxel outside the
ROI ends a run). Rows run over all :math:`N_g` levels of the discretisation.
:math:`N_s = \sum_{ij} r_{ij}` is the number of runs, :math:`N_v` the number
of ROI voxels (summed over the matrices when matrices are merged, which is
:math:`\sum_{ij} j\,r_{ij}`), :math:`r_{i.}`, :math:`r_{.j}` the marginal
sums, :math:`p_{ij} = r_{ij}/N_s`. IBSI 1 reference manual, section "Grey
level run length based features" (TP0I).

The same sixteen definitions serve the GLSZM, GLDZM and NGLDM with the run
length :math:`j` read as zone size, zone distance or dependence count
(:func:`matrix_features`):

- short / long runs emphasis :math:`\frac{1}{N_s}\sum_j r_{.j}/j^2`,
  :math:`\frac{1}{N_s}\sum_j j^2 r_{.j}`
- low / high grey level run emphasis :math:`\frac{1}{N_s}\sum_i r_{i.}/i^2`,
  :math:`\frac{1}{N_s}\sum_i i^2 r_{i.}`
- short run low / high grey level emphasis :math:`\frac{1}{N_s}\sum_{ij} r_{ij}/(i^2 j^2)`,
  :math:`\frac{1}{N_s}\sum_{ij} i^2 r_{ij}/j^2`
- long run low / high grey level emphasis :math:`\frac{1}{N_s}\sum_{ij} j^2 r_{ij}/i^2`,
  :math:`\frac{1}{N_s}\sum_{ij} i^2 j^2 r_{ij}`
- grey level non-uniformity :math:`\frac{1}{N_s}\sum_i r_{i.}^2` (normalised: :math:`/N_s^2`)
- run length non-uniformity :math:`\frac{1}{N_s}\sum_j r_{.j}^2` (normalised: :math:`/N_s^2`)
- run percentage :math:`N_s/N_v`
- grey level variance :math:`\sum_{ij}(i-\mu)^2 p_{ij}`, :math:`\mu=\sum_{ij} i\,p_{ij}`;
  run length variance likewise with :math:`j`
- run entropy :math:`-\sum_{ij} p_{ij}\log_2 p_{ij}`

Runs are counted by PyRadiomics mode's kernel
(:func:`radflow.features.glrlm._count_runs`), without PyRadiomics' dropping
of directions along which no line meets the ROI twice: the IBSI counts those
runs of length 1.

References
----------
Galloway MM. Texture analysis using gray level run lengths. Comput Graph
Image Process 1975;4(2):172-179. doi:10.1016/S0146-664X(75)80008-6

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

import numpy as np

from radflow.features._directions import flat_steps, offsets
from radflow.features.glrlm import _count_runs
from radflow.features.ibsi.aggregation import (
    check_aggregations,
    level_index,
    slice_blocks,
    tagged_features,
)
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "matrix_features", "run_length_matrices"]

FEATURES = features("rlm")


def run_length_matrices(index: np.ndarray, n_levels: int, dimension: str) -> np.ndarray:
    """Run length matrices, one per slice (2D) or for the volume (3D), per direction.

    Parameters
    ----------
    index : ndarray of int32, shape (z, y, x)
        From :func:`radflow.features.ibsi.aggregation.level_index` with
        ``pad=1``: grey level - 1 inside the ROI, -1 elsewhere.
    n_levels : int
        :math:`N_g`.
    dimension : {"2D", "3D"}
        In-plane directions per slice (4), or the 13 directions of the volume.

    Returns
    -------
    ndarray of float64, shape (n_slices, n_directions, n_levels, max_run)
        ``[s, d, i, j - 1]`` = :math:`r_{ij}`; n_slices is 1 in 3D, else the
        slices holding ROI voxels.
    """
    directions = offsets((1,), force2d=dimension == "2D")
    steps = flat_steps(directions, index.shape)
    blocks = slice_blocks(index, dimension)
    max_run = max(blocks[0].shape) - 2  # the longest side of the ROI's box
    out = np.zeros((len(blocks), len(directions), n_levels, max_run))
    for block, matrices in zip(blocks, out):
        _count_runs(block.ravel(), steps, matrices)
    return out


def matrix_features(matrix: np.ndarray, lengths: np.ndarray, n_voxels: float) -> np.ndarray:
    """The sixteen run-length-type features of one matrix, in IBSI order.

    Parameters
    ----------
    matrix : ndarray, shape (N_g, N_j)
        Counts; row ``i`` is grey level ``i + 1``, column ``k`` has
        run length (zone size, distance, dependence count) ``lengths[k]``.
    lengths : ndarray, shape (N_j,)
        The value :math:`j` of each column (>= 1).
    n_voxels : float
        :math:`N_v`.

    Returns
    -------
    ndarray of float64, shape (16,)
        Short, long emphasis; low, high grey level emphasis; short-low,
        short-high, long-low, long-high emphasis; grey level
        non-uniformity (plain, normalised); length non-uniformity (plain,
        normalised); percentage; grey level variance; length variance;
        entropy. The order of every such family in the IBSI registry.
    """
    n_s = matrix.sum()
    i2 = np.arange(1, matrix.shape[0] + 1, dtype=np.float64) ** 2
    j = np.asarray(lengths, dtype=np.float64)
    j2 = j**2
    by_level = matrix.sum(axis=1)
    by_length = matrix.sum(axis=0)
    p = matrix / n_s
    p_level = by_level / n_s
    p_length = by_length / n_s
    mean_level = p_level @ np.sqrt(i2)
    mean_length = p_length @ j
    nonzero = p[p > 0]
    return np.array(
        [
            p_length @ (1.0 / j2),
            p_length @ j2,
            p_level @ (1.0 / i2),
            p_level @ i2,
            (1.0 / i2) @ p @ (1.0 / j2),
            i2 @ p @ (1.0 / j2),
            (1.0 / i2) @ p @ j2,
            i2 @ p @ j2,
            by_level @ by_level / n_s,
            p_level @ p_level,
            by_length @ by_length / n_s,
            p_length @ p_length,
            n_s / n_voxels,
            p_level @ (np.sqrt(i2) - mean_level) ** 2,
            p_length @ (j - mean_length) ** 2,
            -nonzero @ np.log2(nonzero),
        ]
    )


def compute(levels, *, intensity_mask, n_levels, aggregations=("3D_avg", "3D_comb")) -> dict[str, float]:
    """IBSI GLRLM features of one ROI.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Discretised image, grey levels 1..``n_levels`` inside the ROI.
    intensity_mask : ndarray of bool, shape (z, y, x)
        ROI intensity mask.
    n_levels : int
        Number of grey levels of the discretisation, :math:`N_g`.
    aggregations : sequence of str
        Suffixes of ``registry.DIRECTIONAL_AGGREGATIONS`` (``"2D_avg"``,
        ``"2D_comb"``, ``"2_5D_avg"``, ``"2_5D_comb"``, ``"3D_avg"``,
        ``"3D_comb"``); slices are planes of constant z.

    Returns
    -------
    dict of str to float
        ``{"rlm_sre_3D_avg": ..., ...}``: every GLRLM tag of the requested
        aggregations, dimensionless.

    Raises
    ------
    InputError
        Bad arrays (shape, dtype, empty ROI, level outside 1..n_levels).
    SettingsError
        Bad ``n_levels`` or aggregation.
    """
    aggregations = check_aggregations(aggregations, directional=True)
    index, _ = level_index(levels, intensity_mask, n_levels, pad=1)

    def build(dimension):
        matrices = run_length_matrices(index, n_levels, dimension)
        lengths = np.arange(1, matrices.shape[-1] + 1)
        # every ROI voxel lies in one run per direction: N_v = sum_ij j r_ij
        return (matrices,), lambda matrix: matrix_features(matrix, lengths, (matrix @ lengths).sum())

    return tagged_features([f.tag_stem for f in FEATURES], aggregations, build)
