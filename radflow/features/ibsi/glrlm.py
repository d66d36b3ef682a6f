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

The sixteen features are the definitions the GLSZM, GLDZM and NGLDM share
with the run length :math:`j` read as zone size, zone distance or dependence
count (:func:`radflow.features.ibsi._texture.size_features`, where they are
written out): short / long runs emphasis, low / high grey level run emphasis,
the four joint emphases, grey level and run length non-uniformity (plain and
normalised), run percentage :math:`N_s/N_v`, grey level and run length
variance, run entropy.

Runs are counted by the kernel shared with PyRadiomics mode
(:func:`radflow.features._shared_kernels.count_runs`), without PyRadiomics' dropping
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
from radflow.features._native import count_runs
from radflow.features.ibsi._texture import size_features
from radflow.features.ibsi.aggregation import document, slice_blocks, tagged_features, texture_input
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "run_length_matrices"]

FEATURES = features("rlm")


@document
def run_length_matrices(index: np.ndarray, n_levels: int, dimension: str) -> np.ndarray:
    """Run length matrices, one per slice (2D) or for the volume (3D), per direction.

    Parameters
    ----------
    %(index)s
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
        count_runs(block.ravel(), steps, matrices)
    return out


@document
def compute(
    levels, *, intensity_mask, n_levels, aggregations=("3D_avg", "3D_comb")
) -> dict[str, float]:
    """IBSI GLRLM features of one ROI.

    Parameters
    ----------
    %(image)s
    %(n_levels)s
    %(directional)s

    Returns
    -------
    dict of str to float
        ``{"rlm_sre_3D_avg": ..., ...}``: every GLRLM tag of the requested
        aggregations, dimensionless.

    %(raises)s
    """
    given = texture_input(levels, intensity_mask, n_levels, aggregations, directional=True)

    def build(dimension):
        matrices = run_length_matrices(given.index, n_levels, dimension)
        lengths = np.arange(1, matrices.shape[-1] + 1)
        # every ROI voxel lies in one run per direction: N_v = sum_ij j r_ij
        return (matrices,), lambda matrix: size_features(matrix, lengths, (matrix @ lengths).sum())

    return tagged_features(FEATURES, given.aggregations, build)
