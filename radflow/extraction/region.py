"""The part of a volume one PyRadiomics-mode extraction reads.

PyRadiomics filters and resamples the whole volume; radflow reads only the box
around the ROI that gives the same numbers. :func:`read_region` decides that
box, for the extractor (:mod:`radflow.extraction.extractor`) and for every
caller that must read what the extractor will read (the stability study,
:mod:`radflow.model.stability`, which reads a box once and perturbs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from radflow._geometry import grow_box
from radflow.errors import SettingsError
from radflow.filters.image_types import read_box
from radflow.params.extraction import ExtractionParams

__all__ = ["INTERPOLATOR_REACH_VOXELS", "ReadRegion", "interpolator_reach_voxels", "read_region"]

#: Voxels read beyond the region being resampled: the interpolator's reach. For
#: the B-spline, its prefilter is recursive over the whole image (pole sqrt(3) - 2,
#: 0.268 ** 20 < 1e-11); windowed sincs and Gaussians reach a few voxels.
INTERPOLATOR_REACH_VOXELS = {"sitkNearestNeighbor": 1, "sitkLinear": 1, "sitkBSpline": 20}
_OTHER_INTERPOLATOR_REACH_VOXELS = 8


class ReadRegion(NamedTuple):
    """What :func:`read_region` returns (unpacks as ``box_zyx, needs_grid``)."""

    #: The box of the volume to read: 3 slices (z, y, x), clipped to the volume.
    box_zyx: tuple[slice, slice, slice]
    #: True when resampling aligns its grid on the whole mask grid (voxel 0),
    #: so that the caller must be able to give the mask's whole grid.
    needs_grid: bool


def interpolator_reach_voxels(interpolator: str) -> int:
    """Voxels beyond a resampled point that SimpleITK's ``interpolator`` reads."""
    return INTERPOLATOR_REACH_VOXELS.get(interpolator, _OTHER_INTERPOLATOR_REACH_VOXELS)


def read_region(
    params: ExtractionParams,
    bbox_zyx: Sequence[slice],
    shape_zyx: Sequence[int],
    spacing_zyx: Sequence[float],
) -> ReadRegion:
    """The box of the volume to read so that the extraction equals one on the whole volume.

    Parameters
    ----------
    params : ExtractionParams
        The extraction's settings and enabled image types.
    bbox_zyx : sequence of 3 slice
        The ROI's bounding box in the volume, voxel indices (z, y, x), explicit
        start and stop.
    shape_zyx : sequence of 3 int
        Shape of the volume, voxels.
    spacing_zyx : sequence of 3 float
        Voxel spacing of the volume, mm.

    Returns
    -------
    ReadRegion
        With ``resampledPixelSpacing``: the ROI box grown by the resampled
        ``padDistance`` (+1 voxel) in original voxels plus the interpolator's
        reach, and ``needs_grid``; else with ``preCrop``: the box grown by
        ``padDistance``; else the box grown by the margin every enabled image
        type's filter needs (:func:`radflow.filters.image_types.read_box`).

    Raises
    ------
    radflow.errors.SettingsError
        ``resampledPixelSpacing`` does not have 3 values.
    """
    s = params.settings
    if s.resampling:
        if len(s.resampled_spacing_xyz) != 3:
            raise SettingsError(
                f"resampledPixelSpacing: {list(s.resampled_spacing_xyz)} has "
                f"{len(s.resampled_spacing_xyz)} values; a 3D image needs 3 (x, y, z, mm)"
            )
        spacing = np.asarray(spacing_zyx, dtype=float)
        # 0 keeps the volume's spacing along that axis.
        new = np.array(
            [v if v > 0 else old for v, old in zip(s.resampled_spacing_xyz[::-1], spacing)]
        )
        reach = interpolator_reach_voxels(s.interpolator)
        margin = np.ceil((s.pad_distance + 1) * new / spacing).astype(int) + reach
        return ReadRegion(grow_box(bbox_zyx, margin, shape_zyx), True)
    if s.pre_crop:
        return ReadRegion(grow_box(bbox_zyx, s.pad_distance, shape_zyx), False)
    return ReadRegion(read_box(params, None, bbox_zyx, shape_zyx, spacing_zyx), False)
