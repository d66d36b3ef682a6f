r"""IBSI grey level size zone matrix (GLSZM) features, with the IBSI aggregation methods.

A zone is a set of ROI voxels of one grey level linked by 26-connectivity in
3D, 8-connectivity within a slice in 2D. Element :math:`s_{ij}` of the
:math:`N_g \times N_z` matrix counts the zones of grey level :math:`i` and
size :math:`j` voxels; :math:`N_v` is the number of ROI voxels (summed over
slices when the 2D matrices are merged). IBSI 1 reference manual, section
"Grey level size zone based features" (9SAK). The sixteen features are the
GLRLM definitions with the run length read as zone size
(:func:`radflow.features.ibsi._texture.size_features`): small / large zone
emphasis, low / high grey level (zone) emphasis, the four joint emphases,
grey level and zone size non-uniformity (plain and normalised), zone
percentage :math:`N_s/N_v`, grey level and zone size variance, zone size
entropy.

Zones are found by the flood fill shared with PyRadiomics mode
(:func:`radflow.features._shared_kernels.label_zones`), whose definition agrees.

References
----------
Thibault G et al. Texture indexes and gray level size zone matrix:
application to cell nuclei classification. Pattern Recognition and
Information Processing (PRIP) 2009:140-145.

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

import numpy as np

from radflow.features._directions import flat_steps, offsets
from radflow.features._native import label_zones
from radflow.features.ibsi._texture import size_features
from radflow.features.ibsi.aggregation import document, slice_blocks, tagged_features, texture_input
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "compute", "size_zone_matrices"]

FEATURES = features("szm")


@document
def size_zone_matrices(index: np.ndarray, n_levels: int, dimension: str):
    """Size zone matrices, one per slice (2D) or for the volume (3D).

    Parameters
    ----------
    %(index)s
    dimension : {"2D", "3D"}
        Zones within each slice (8-connected) or in the volume (26-connected).

    Returns
    -------
    matrices : ndarray of float64, shape (n_slices, n_levels, n_sizes)
        Zone counts by grey level (row ``i``: level ``i + 1``) and size.
    sizes : ndarray of int64, shape (n_sizes,)
        Zone size (voxels) of each column: the sizes that occur, ascending.
    """
    linked = offsets((1,), force2d=dimension == "2D", bidirectional=True)
    steps = flat_steps(linked, index.shape)
    zones = []
    for block in slice_blocks(index, dimension):
        flat = block.ravel().copy()  # the flood fill consumes it
        zones.append(label_zones(flat, steps, int(np.count_nonzero(flat >= 0))))
    sizes = np.unique(np.concatenate([size for _, size in zones]))
    out = np.zeros((len(zones), n_levels, sizes.size))
    for matrix, (level, size) in zip(out, zones):
        np.add.at(matrix, (level, np.searchsorted(sizes, size)), 1.0)
    return out, sizes


@document
def compute(levels, *, intensity_mask, n_levels, aggregations=("3D",)) -> dict[str, float]:
    """IBSI GLSZM features of one ROI.

    Parameters
    ----------
    %(image)s
    %(n_levels)s
    %(zone)s

    Returns
    -------
    dict of str to float
        ``{"szm_sze_3D": ..., ...}``: every GLSZM tag of the requested
        aggregations, dimensionless.

    %(raises)s
    """
    given = texture_input(levels, intensity_mask, n_levels, aggregations, directional=False)

    def build(dimension):
        matrices, sizes = size_zone_matrices(given.index, n_levels, dimension)
        # every ROI voxel lies in one zone: N_v = sum_ij j s_ij
        return (matrices,), lambda matrix: size_features(matrix, sizes, (matrix @ sizes).sum())

    return tagged_features(FEATURES, given.aggregations, build)
