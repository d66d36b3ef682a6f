r"""IBSI neighbouring grey level dependence matrix (NGLDM) features, with the IBSI aggregation
methods.

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
(:func:`radflow.features.ibsi._texture.size_features`): low / high dependence
emphasis, low / high grey level count emphasis, the four joint emphases, grey
level and dependence count non-uniformity (plain and normalised), dependence
count percentage :math:`N_s/N_v` (1), grey level and dependence count
variance, dependence count entropy; then dependence count energy
:math:`\sum_{ij} p_{ij}^2`, :math:`p_{ij} = s_{ij}/N_s`.

Dependences are counted by the GLDM kernel shared with PyRadiomics mode
(:func:`radflow.features._shared_kernels.dependence_counts`), whose definition agrees.

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
from radflow.features._native import dependence_counts
from radflow.features.ibsi._texture import size_features
from radflow.features.ibsi.aggregation import document, slice_blocks, tagged_features, texture_input
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "dependence_matrices"]

FEATURES = features("ngl")


@document
def dependence_matrices(
    index: np.ndarray, n_levels: int, dimension: str, *, distance: int = 1, coarseness: int = 0
) -> np.ndarray:
    """NGLDMs, one per slice (2D) or for the volume (3D).

    Parameters
    ----------
    %(index)s
    %(neighbourhood)s
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
            dependence_counts(block.ravel(), grey, steps, coarseness)
            for block in slice_blocks(index, dimension)
        ],
        dtype=np.float64,
    )


@document
def compute(
    levels,
    *,
    intensity_mask,
    n_levels,
    aggregations=("3D",),
    distance: int = 1,
    coarseness: int = 0,
) -> dict[str, float]:
    """IBSI NGLDM features of one ROI.

    Parameters
    ----------
    %(image)s
    %(n_levels)s
    %(zone)s
    %(distance)s
    coarseness : int
        Coarseness parameter :math:`\\alpha` (grey levels), default 0.

    Returns
    -------
    dict of str to float
        ``{"ngl_lde_3D": ..., ...}``: every NGLDM tag of the requested
        aggregations, dimensionless.

    %(raises)s
    """
    if not isinstance(coarseness, Integral) or isinstance(coarseness, bool) or coarseness < 0:
        raise SettingsError(
            f"coarseness: expected an integer >= 0 (grey levels), got {coarseness!r}"
        )
    given = texture_input(
        levels, intensity_mask, n_levels, aggregations, directional=False, distance=distance
    )

    def build(dimension):
        matrices = dependence_matrices(
            given.index, n_levels, dimension, distance=given.distance, coarseness=int(coarseness)
        )
        counts = np.arange(1, matrices.shape[-1] + 1)

        def values(matrix):
            n_s = matrix.sum()
            return np.append(size_features(matrix, counts, n_s), np.sum((matrix / n_s) ** 2))

        return (matrices,), values

    return tagged_features(FEATURES, given.aggregations, build)
