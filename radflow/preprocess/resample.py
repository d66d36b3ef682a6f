"""Resampling to a new voxel spacing, as PyRadiomics 3.0.1's ``resampleImage``.

Only the ROI's neighbourhood is resampled. The new grid keeps the mask's
direction and is aligned on the mask's grid: its voxel 0 would have its
corner on the corner of the mask's voxel 0 (origin moved by half the change
of spacing), and it covers the ROI bounding box grown by `pad_distance` new
voxels, clipped to the mask's extent. The image is interpolated with the
given interpolator in its own pixel type, the mask by nearest neighbour.
This is PyRadiomics' alignment, not the IBSI's (which centres the new grid
on the old one).

SimpleITK images in and out: spacing and indices are in SimpleITK's
(x, y, z) order, as ``resampledPixelSpacing`` in a parameter file.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import SimpleITK as sitk

from radflow._geometry import SpacingError, spacing_mm
from radflow.errors import InputError, SettingsError
from radflow.params.names import INTERPOLATORS
from radflow.preprocess.roi_checks import (
    _check_pad_distance,
    check_roi_inside_image,
    crop_to_roi,
    roi_bounding_box,
)

__all__ = ["resample_image_and_mask"]


def resample_image_and_mask(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    spacing_xyz,
    interpolator: str = "sitkBSpline",
    label: int = 1,
    pad_distance: int = 5,
    source: str | PathLike = "mask",
) -> tuple[sitk.Image, sitk.Image]:
    """Resample image and mask around the ROI to `spacing_xyz`, as PyRadiomics does.

    Parameters
    ----------
    image : SimpleITK.Image
        Grey-level image; may have another grid than `mask` if the ROI lies
        inside it.
    mask : SimpleITK.Image
        Integer label image; its grid defines the new one.
    spacing_xyz : sequence of float
        New spacing in mm, one per axis in (x, y, z) order; 0 keeps the
        mask's spacing on that axis. Axes where the ROI is one voxel thick
        keep the mask's spacing too.
    interpolator : str
        SimpleITK interpolator name for the image (one of
        :data:`radflow.params.names.INTERPOLATORS`); the mask always uses
        nearest neighbour.
    label : int
        ROI label value, > 0.
    pad_distance : int
        New voxels kept around the ROI box, >= 0.
    source : str or path-like
        Named in error messages.

    Returns
    -------
    image, mask : SimpleITK.Image
        On the new, cropped grid, in the input pixel types. When the new
        spacing equals the image's (within numpy.allclose), the image is
        not interpolated: the mask is moved onto the image grid and both are
        cropped to the padded ROI box.

    Raises
    ------
    InputError
        The label is absent, or the ROI reaches outside the image.
    SettingsError
        Bad `spacing_xyz`, `interpolator` or `pad_distance`.
    """
    dimension = mask.GetDimension()
    if image.GetDimension() != dimension:
        raise InputError(source, f"image is {image.GetDimension()}D, mask {dimension}D")
    new_spacing = _check_spacing(spacing_xyz, dimension)
    if interpolator not in INTERPOLATORS:
        raise SettingsError(
            f"interpolator must be one of {', '.join(INTERPOLATORS)}, got {interpolator!r}"
        )
    _check_pad_distance(pad_distance)

    mask_spacing = np.array(mask.GetSpacing())
    new_spacing = np.where(new_spacing == 0, mask_spacing, new_spacing)
    box = roi_bounding_box(mask, label=label, source=source)
    check_roi_inside_image(image, mask, bounding_box=box, source=source)
    # No resampling across a one-voxel-thick ROI (e.g. one slice): it would be lost.
    new_spacing = np.where(np.array(box.size_xyz) != 1, new_spacing, mask_spacing)

    if np.allclose(np.array(image.GetSpacing()), new_spacing):
        on_image_grid = sitk.Resample(
            mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID()
        )
        return crop_to_roi(
            image,
            on_image_grid,
            bounding_box=roi_bounding_box(on_image_grid, label=label, source=source),
            pad_distance=int(pad_distance),
        )

    ratio = mask_spacing / new_spacing
    lower_xyz = np.array(box.lower_xyz, dtype=float)
    end_xyz = lower_xyz + np.array(box.size_xyz)
    # Round outwards so no part of the ROI is lost; +-0.5: voxel centre to corner.
    new_lower = np.floor((lower_xyz - 0.5) * ratio - pad_distance)
    new_upper = np.ceil((end_xyz - 0.5) * ratio + pad_distance)
    new_lower = np.where(new_lower < 0, 0, new_lower)
    last = np.ceil(np.array(mask.GetSize()) * ratio) - 1
    new_upper = np.where(new_upper > last, last, new_upper)
    size = np.array(new_upper - new_lower + 1, dtype=int).tolist()

    # The new grid's voxel 0, in old continuous indices: corners aligned, then shifted to the crop.
    origin_index = 0.5 * (new_spacing - mask_spacing) / mask_spacing + new_lower / ratio
    origin = mask.TransformContinuousIndexToPhysicalPoint(origin_index.tolist())
    spacing = new_spacing.tolist()
    direction = mask.GetDirection()
    resampled_image = sitk.Resample(
        image,
        size,
        sitk.Transform(),
        getattr(sitk, interpolator),
        origin,
        spacing,
        direction,
        0,
        image.GetPixelID(),
    )
    resampled_mask = sitk.Resample(
        mask,
        size,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        origin,
        spacing,
        direction,
        0,
        mask.GetPixelID(),
    )
    return resampled_image, resampled_mask


def _check_spacing(spacing_xyz, dimension: int) -> np.ndarray:
    try:
        values = list(spacing_xyz)
    except TypeError:
        raise SettingsError(
            f"spacing_xyz must be a sequence of {dimension} numbers, got {spacing_xyz!r}"
        ) from None
    try:
        return np.array(spacing_mm(values, ndim=dimension, allow_zero=True), dtype=float)
    except SpacingError:
        raise SettingsError(
            f"spacing_xyz must be {dimension} finite numbers >= 0 "
            "(mm, x y z order; 0 keeps the spacing), "
            f"got {spacing_xyz!r}"
        ) from None
