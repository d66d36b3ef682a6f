r"""IBSI grey level distance zone matrix (GLDZM) features, with the IBSI aggregation methods.

Zones are those of the GLSZM (ROI voxels of one grey level linked by
26-connectivity in 3D, 8-connectivity within a slice in 2D), found in the
intensity mask. The distance of a voxel is the least number of 6-connected
(3D) or 4-connected (2D, within the slice) steps to a voxel outside the
*morphological* mask, 1 for a voxel on its edge: the taxicab distance
transform of the morphological mask, which the manual's iterated erosion
computes. A zone's distance is the least distance of its voxels. Element
:math:`d_{ij}` of the :math:`N_g \times N_d` matrix counts the zones of grey
level :math:`i` and distance :math:`j`; :math:`N_v` is the number of voxels
of the intensity mask (summed over slices when the 2D matrices are merged).
IBSI 1 reference manual, section "Grey level distance zone based features"
(VMDZ). The sixteen features are the GLRLM definitions with the run length
read as zone distance (:func:`radflow.features.ibsi._texture.size_features`).

Zones and distances come from :func:`scipy.ndimage.label` and
:func:`scipy.ndimage.distance_transform_cdt`; no kernel of its own.

References
----------
Thibault G, Angulo J, Meyer F. Advanced statistical matrices for texture
characterization: application to cell classification. IEEE Trans Biomed Eng
2014;61(3):630-637. doi:10.1109/TBME.2013.2284600

Zwanenburg A et al. The Image Biomarker Standardization Initiative.
Radiology 2020;295(2):328-338. doi:10.1148/radiol.2020191145
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from radflow.errors import InputError
from radflow.features.ibsi._texture import size_features
from radflow.features.ibsi.aggregation import (
    bounding_box,
    check_mask,
    document,
    tagged_features,
    texture_input,
)
from radflow.features.ibsi.registry import features

__all__ = ["FEATURES", "border_distance", "compute", "distance_zone_matrices"]

FEATURES = features("dzm")


def border_distance(morph_mask, dimension: str) -> np.ndarray:
    """Distance of each voxel of a mask to its border, in voxel steps.

    Parameters
    ----------
    morph_mask : ndarray of bool, shape (z, y, x)
        The morphological mask.
    dimension : {"2D", "3D"}
        4-connected steps within each slice, or 6-connected steps in the volume.

    Returns
    -------
    ndarray of int32, shape (z, y, x)
        1 on the mask's edge (a face neighbour outside the mask or beyond the
        array), growing inwards; 0 outside the mask.
    """
    out = np.zeros(morph_mask.shape, dtype=np.int32)
    box = bounding_box(morph_mask)
    if box is None:
        return out
    padded = np.pad(morph_mask[box], 1)  # the array's border counts as outside
    if dimension == "3D":
        distance = ndimage.distance_transform_cdt(padded, metric="taxicab")
    else:
        distance = np.stack(
            [ndimage.distance_transform_cdt(plane, metric="taxicab") for plane in padded]
        )
    out[box] = distance[1:-1, 1:-1, 1:-1]
    return out


def distance_zone_matrices(index: np.ndarray, distance: np.ndarray, n_levels: int, dimension: str):
    """Distance zone matrices, one per slice (2D) or for the volume (3D).

    Parameters
    ----------
    index : ndarray of int32, shape (z, y, x)
        From :func:`radflow.features.ibsi.aggregation.level_index`: grey
        level - 1 inside the intensity mask, -1 elsewhere.
    distance : ndarray of int, shape (z, y, x)
        :func:`border_distance` of the morphological mask on the same grid,
        >= 1 at every voxel of the intensity mask.
    n_levels : int
        :math:`N_g`.
    dimension : {"2D", "3D"}
        Zones within each slice (8-connected) or in the volume (26-connected).

    Returns
    -------
    matrices : ndarray of float64, shape (n_slices, n_levels, max_distance)
        ``[s, i, j - 1]``: zones of grey level ``i + 1`` at distance ``j``.
    n_voxels : ndarray of float64, shape (n_slices,)
        Voxels of the intensity mask in each slice (or the volume).
    """
    linked = np.ones((3, 3, 3), dtype=bool)
    if dimension == "2D":
        linked[[0, 2]] = False  # 8-connected within each slice, never across slices
        planes = np.flatnonzero((index >= 0).any(axis=(1, 2)))
    else:
        planes = np.arange(index.shape[0])
    plane_of = np.zeros(index.shape[0], dtype=np.int64)  # every zone of the volume in plane 0 (3D)
    if dimension == "2D":
        plane_of[planes] = np.arange(planes.size)
    roi = index >= 0
    voxel_level, voxel_distance = index[roi], distance[roi]
    voxel_plane = plane_of[np.nonzero(roi)[0]]
    zone_plane, zone_level, zone_distance = [], [], []
    for level in np.unique(voxel_level):
        labels, n_zones = ndimage.label(index == level, structure=linked)
        mine = voxel_level == level
        zone = labels[roi][mine] - 1
        nearest = np.full(n_zones, np.iinfo(np.int64).max)
        np.minimum.at(nearest, zone, voxel_distance[mine])
        plane = np.empty(n_zones, dtype=np.int64)
        plane[zone] = voxel_plane[mine]  # a zone lies in one plane (2D) or plane 0 (3D)
        zone_distance.append(nearest)
        zone_plane.append(plane)
        zone_level.append(np.full(n_zones, level))
    zone_distance = np.concatenate(zone_distance)
    n_planes = planes.size if dimension == "2D" else 1
    matrices = np.zeros((n_planes, n_levels, zone_distance.max()))
    np.add.at(
        matrices, (np.concatenate(zone_plane), np.concatenate(zone_level), zone_distance - 1), 1.0
    )
    voxels = (index >= 0).sum(axis=(1, 2))
    n_voxels = (
        voxels[planes].astype(np.float64)
        if dimension == "2D"
        else np.array([voxels.sum()], dtype=np.float64)
    )
    return matrices, n_voxels


@document
def compute(
    levels, *, intensity_mask, morph_mask, n_levels, aggregations=("3D",)
) -> dict[str, float]:
    """IBSI GLDZM features of one ROI.

    Parameters
    ----------
    %(image)s
    morph_mask : ndarray of bool, shape (z, y, x)
        ROI morphological mask: distances are measured to its border. It
        must hold every voxel of ``intensity_mask`` (re-segmentation only
        removes voxels).
    %(n_levels)s
    %(zone)s

    Returns
    -------
    dict of str to float
        ``{"dzm_sde_3D": ..., ...}``: every GLDZM tag of the requested
        aggregations, dimensionless.

    Raises
    ------
    InputError
        Bad arrays (shape, dtype, empty ROI, level outside 1..n_levels), or
        an intensity-mask voxel outside the morphological mask.
    SettingsError
        Bad ``n_levels`` or aggregation.
    """
    given = texture_input(levels, intensity_mask, n_levels, aggregations, directional=False, pad=0)
    index, box = given.index, given.box
    morph = check_mask(morph_mask, "morph_mask", np.shape(levels))
    if not morph[box][index >= 0].all():
        raise InputError(
            "morph_mask",
            "does not hold every voxel of intensity_mask; distances to its border are undefined",
        )

    def build(dimension):
        matrices, n_voxels = distance_zone_matrices(
            index, border_distance(morph, dimension)[box], n_levels, dimension
        )
        distances = np.arange(1, matrices.shape[-1] + 1)
        return (matrices, n_voxels), lambda matrix, n: size_features(matrix, distances, n)

    return tagged_features(FEATURES, given.aggregations, build)
