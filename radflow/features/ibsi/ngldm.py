r"""IBSI neighbouring grey level dependence matrix (NGLDM) features, with the IBSI aggregation methods.

The neighbourhood of a ROI voxel :math:`k` is the ROI voxels within
Chebyshev distance :math:`\delta` (in 2D only those in its slice); a
neighbour is dependent when its grey level differs from :math:`k`'s by at
most the coarseness :math:`\alpha`. The dependence count
:math:`j_k` is 1 plus the number of dependent neighbours. Element
:math:`s_{ij}` of the :math:`N_g \times N_n` matrix counts the voxels of
grey level :math:`i` with dependence count :math:`j`; every ROI voxel
counts, so :math:`N_s = N_v`. Merging 2D matrices sums them over the slices.
IBSI 1 reference manual, section "Neighbouring grey level dependence based
features" (REK0). The first sixteen features are the GLRLM definitions with
the run length read as dependence count
(:func:`radflow.features.ibsi.glrlm.matrix_features`): low / high dependence
emphasis, low / high grey level count emphasis, the four joint emphases, grey
level and dependence count non-uniformity (plain and normalised), dependence
count percentage :math:`N_s/N_v` (1), grey level and dependence count
variance, dependence count entropy; then dependence count energy
:math:`\sum_{ij} p_{ij}^2`, :math:`p_{ij} = s_{ij}/N_s`.

Dependences are counted by PyRadiomics mode's GLDM kernel
(:func:`radflow.features.gldm._dependence_counts`), whose definition agrees.

References
----------
Sun C, Wee WG. Neighboring gray level dependence matrix for texture
classification. Comput Vis Graph Image Process 1983;23(3):341-352.
doi:10.1016/0734-189X(83)90032-4

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from radflow.errors import SettingsError
from radflow.features._directions import flat_steps, offsets
from radflow.features.gldm import _dependence_counts
from radflow.features.ibsi.aggregation import (
    check_aggregations,
    check_distance,
    level_index,
    slice_blocks,
    tagged_features,
)
from radflow.features.ibsi.glrlm import matrix_features
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "dependence_matrices"]

FEATURES = features("ngl")


def dependence_matrices(
    index: np.ndarray, n_levels: int, dimension: str, *, distance: int = 1, coarseness: int = 0
) -> np.ndarray:
    """NGLDMs, one per slice (2D) or for the volume (3D).

    Parameters
    ----------
    index : ndarray of int32, shape (z, y, x)
        From :func:`radflow.features.ibsi.aggregation.level_index` with
        ``pad=distance``: grey level - 1 inside the ROI, -1 elsewhere.
    n_levels : int
        :math:`N_g`.
    dimension : {"2D", "3D"}
        Neighbourhoods within each slice, or in the volume.
    distance : int
        :math:`\\delta`, Chebyshev radius of the neighbourhood in voxels.
    coarseness : int
        :math:`\\alpha`, largest grey level difference of dependent voxels.

    Returns
    -------
    ndarray of float64, shape (n_slices, n_levels, n_neighbours + 1)
        ``[s, i, j - 1]``: voxels of grey level ``i + 1`` with dependence count ``j``.
    """
    neighbours = offsets(range(1, distance + 1), force2d=dimension == "2D", bidirectional=True)
    steps = flat_steps(neighbours, index.shape)
    grey = np.arange(1, n_levels + 1, dtype=np.int64)
    return np.array(
        [
            _dependence_counts(block.ravel(), grey, steps, coarseness)
            for block in slice_blocks(index, dimension)
        ],
        dtype=np.float64,
    )


def compute(
    levels, *, intensity_mask, n_levels, aggregations=("3D",), distance: int = 1, coarseness: int = 0
) -> dict[str, float]:
    """IBSI NGLDM features of one ROI.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Discretised image, grey levels 1..``n_levels`` inside the ROI.
    intensity_mask : ndarray of bool, shape (z, y, x)
        ROI intensity mask.
    n_levels : int
        Number of grey levels of the discretisation, :math:`N_g`.
    aggregations : sequence of str
        Suffixes of ``registry.ZONE_AGGREGATIONS``: ``"2D"`` (per slice,
        averaged), ``"2_5D"`` (slices merged), ``"3D"``.
    distance : int
        Chebyshev radius :math:`\\delta` of the neighbourhood in voxels, default 1.
    coarseness : int
        Coarseness parameter :math:`\\alpha` (grey levels), default 0.

    Returns
    -------
    dict of str to float
        ``{"ngl_lde_3D": ..., ...}``: every NGLDM tag of the requested
        aggregations, dimensionless.

    Raises
    ------
    InputError
        Bad arrays (shape, dtype, empty ROI, level outside 1..n_levels).
    SettingsError
        Bad ``n_levels``, ``distance``, ``coarseness`` or aggregation.
    """
    aggregations = check_aggregations(aggregations, directional=False)
    distance = check_distance(distance)
    if not isinstance(coarseness, Integral) or isinstance(coarseness, bool) or coarseness < 0:
        raise SettingsError(f"coarseness: expected an integer >= 0 (grey levels), got {coarseness!r}")
    index, _ = level_index(levels, intensity_mask, n_levels, pad=distance)

    def build(dimension):
        matrices = dependence_matrices(
            index, n_levels, dimension, distance=distance, coarseness=int(coarseness)
        )
        counts = np.arange(1, matrices.shape[-1] + 1)

        def values(matrix):
            n_s = matrix.sum()
            return np.append(matrix_features(matrix, counts, n_s), np.sum((matrix / n_s) ** 2))

        return (matrices,), values

    return tagged_features([f.tag_stem for f in FEATURES], aggregations, build)
