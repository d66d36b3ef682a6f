"""ROI checks and cropping, as PyRadiomics 3.0.1's ``checkMask`` and ``cropToTumorMask``.

These take and return SimpleITK images: geometry (origin, spacing,
direction) is what they check and keep. Voxel indices are in SimpleITK's
(x, y, z) order, as in PyRadiomics' bounding box;
:meth:`BoundingBox.slices_zyx` gives the matching numpy slices for arrays in
(z, y, x) order (``sitk.GetArrayFromImage``).

Each failed check raises :class:`~radflow.errors.InputError` naming the
mask (``source``) and the reason in PyRadiomics' words, on one line.

:func:`check_label_values` is radflow's own check, not PyRadiomics': it
refuses a "mask" that cannot be a label map (an image given as the mask),
which would otherwise give features of scattered one-voxel "ROIs".
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

import numpy as np
import SimpleITK as sitk

from radflow import _geometry
from radflow.errors import InputError, SettingsError

__all__ = [
    "BoundingBox",
    "check_label_values",
    "check_mask",
    "check_roi_inside_image",
    "crop_to_roi",
    "geometry_mismatch",
    "roi_bounding_box",
]

#: SimpleITK's default coordinate and direction tolerance (geometryTolerance None).
DEFAULT_GEOMETRY_TOLERANCE = 1e-6
# PyRadiomics' slack when testing that an ROI lies inside the image (voxels).
_INSIDE_TOLERANCE = 1e-3
#: More distinct non-zero values than this and a "mask" is taken for an image
#: (a uint8 label map holds at most 255 labels).
MAX_LABEL_VALUES = 255
#: A "mask" with more distinct non-zero values than this whose non-zero voxels
#: cover more than :data:`MAX_LABELLED_FRACTION` of the volume is an image too
#: (an image of modest dynamic range: almost no voxel is exactly 0).
MANY_LABEL_VALUES = 32
MAX_LABELLED_FRACTION = 0.9
# Value span up to which distinct values are counted with a histogram (else sorted).
_HISTOGRAM_SPAN = 1 << 20


@dataclass(frozen=True)
class BoundingBox:
    """Inclusive voxel-index bounds of an ROI, in SimpleITK (x, y, z) order.

    Attributes
    ----------
    lower_xyz, upper_xyz : tuple of int
        First and last index holding the ROI, per axis.
    """

    lower_xyz: tuple[int, ...]
    upper_xyz: tuple[int, ...]

    @property
    def size_xyz(self) -> tuple[int, ...]:
        """Extent in voxels per axis."""
        return tuple(u - lo + 1 for lo, u in zip(self.lower_xyz, self.upper_xyz))

    @property
    def n_extended_axes(self) -> int:
        """Axes along which the ROI spans more than one voxel (0: a single voxel)."""
        return sum(size > 1 for size in self.size_xyz)

    def slices_zyx(self, pad_distance: int = 0, shape_zyx=None) -> tuple[slice, ...]:
        """Numpy slices of the box grown by `pad_distance` voxels, for (z, y, x) arrays.

        With `shape_zyx` the slices stop at the array bounds, like
        PyRadiomics' cropping.
        """
        lower = [max(lo - pad_distance, 0) for lo in self.lower_xyz[::-1]]
        upper = [u + pad_distance + 1 for u in self.upper_xyz[::-1]]
        if shape_zyx is not None:
            upper = [min(u, s) for u, s in zip(upper, shape_zyx)]
        return tuple(slice(lo, u) for lo, u in zip(lower, upper))

    def as_pyradiomics(self) -> np.ndarray:
        """PyRadiomics' form: ``[L_x, U_x, L_y, U_y, L_z, U_z]``."""
        return np.array([b for pair in zip(self.lower_xyz, self.upper_xyz) for b in pair])


def roi_bounding_box(
    mask: sitk.Image, *, label: int = 1, source: str | PathLike = "mask"
) -> BoundingBox:
    """Bounding box of the voxels of `mask` equal to `label`.

    Raises
    ------
    InputError
        Nothing is segmented, or `label` is absent (the message lists the
        labels present).
    """
    _check_label(label)
    _check_scalar_mask(mask, source)
    roi = sitk.GetArrayViewFromImage(mask) == label
    box = _box(roi)
    if box is None:
        raise InputError(source, _label_absent(mask, label))
    return box


def check_label_values(
    labels: np.ndarray | sitk.Image,
    *,
    source: str | PathLike = "mask",
    whole_volume: bool = True,
) -> None:
    """Refuse a mask whose values cannot be those of a label map.

    A label map holds whole numbers, a few distinct values, and background
    (0) on much of the volume. An image given as the mask (image and mask
    swapped) breaks one of these; extracting it would give features of the
    scattered voxels that happen to equal the label. Refused:

    - values that are not whole numbers (a float mask with fractional
      values, NaN or infinity): PyRadiomics would truncate them silently;
    - more than :data:`MAX_LABEL_VALUES` (255) distinct non-zero values;
    - with `whole_volume`, more than :data:`MANY_LABEL_VALUES` (32) distinct
      non-zero values on more than 90 % of the voxels
      (:data:`MAX_LABELLED_FRACTION`).

    Masks of 0/1 and label maps of a few ROIs pass after a minimum and a
    maximum; the distinct values are counted (one pass, slice by slice) only
    when the values span more than 0..32.

    Parameters
    ----------
    labels : numpy.ndarray or SimpleITK.Image
        The mask's values (one component per voxel).
    source : str or path-like
        Named in the error (the mask file or store key).
    whole_volume : bool
        `labels` is the whole mask, not a box of it (the coverage test
        applies only then).

    Raises
    ------
    InputError
        The message names `source`, what was found and the likely cause.
    """
    if isinstance(labels, sitk.Image):
        labels = sitk.GetArrayViewFromImage(labels)
    labels = np.asarray(labels)
    if labels.size == 0 or labels.dtype == bool:
        return
    slices = labels.reshape((-1, *labels.shape[-2:])) if labels.ndim >= 2 else labels[None]
    swapped = "are image and mask swapped?"
    if np.issubdtype(labels.dtype, np.floating):
        for part in slices:
            if not np.isfinite(part).all():
                raise InputError(source, f"not a label map: it holds NaN or infinity; {swapped}")
            fractional = part != np.round(part)
            if fractional.any():
                example = float(part[fractional].flat[0])
                raise InputError(
                    source,
                    f"not a label map: it holds values that are not whole numbers "
                    f"(e.g. {example:g}); {swapped}",
                )
    elif not np.issubdtype(labels.dtype, np.integer):
        raise InputError(source, f"not a label map: values of type {labels.dtype}")
    low, high = labels.min(), labels.max()
    if low >= 0 and high <= MANY_LABEL_VALUES:
        return
    distinct = _distinct_nonzero(slices, int(low), int(high))
    if distinct > MAX_LABEL_VALUES:
        raise InputError(
            source,
            f"not a label map: {distinct} distinct non-zero values (more than "
            f"{MAX_LABEL_VALUES}); {swapped} (a label map with more labels: save the ROI "
            "as a mask of its own)",
        )
    if whole_volume and distinct > MANY_LABEL_VALUES:
        labelled = sum(int(np.count_nonzero(part)) for part in slices) / labels.size
        if labelled > MAX_LABELLED_FRACTION:
            raise InputError(
                source,
                f"not a label map: {distinct} distinct non-zero values on {labelled:.0%} of "
                f"the voxels (a label map with more than {MANY_LABEL_VALUES} labels leaves "
                f"background); {swapped}",
            )


def _distinct_nonzero(slices: np.ndarray, low: int, high: int) -> int:
    """Number of distinct non-zero values (whole numbers) of (n, y, x) `slices`."""
    if high - low >= _HISTOGRAM_SPAN:
        values = np.unique(slices)
        return int(np.count_nonzero(values))
    counts = np.zeros(high - low + 1, dtype=np.int64)
    for part in slices:
        counts += np.bincount((part.astype(np.int64) - low).ravel(), minlength=counts.size)
    if low <= 0 <= high:
        counts[-low] = 0
    return int(np.count_nonzero(counts))


def check_mask(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    label: int = 1,
    geometry_tolerance: float | None = None,
    correct_mask: bool = False,
    minimum_roi_dimensions: int = 2,
    minimum_roi_size: int | None = None,
    source: str | PathLike = "mask",
) -> tuple[BoundingBox, sitk.Image | None]:
    """Check that `mask` holds a usable ROI for `image`, as PyRadiomics' ``checkMask``.

    In order: the label is present; image and mask share size, origin,
    spacing and direction within `geometry_tolerance` (else, with
    `correct_mask`, the mask is resampled onto the image grid by nearest
    neighbour, provided the ROI lies inside the image); the ROI spans more
    than one voxel along at least `minimum_roi_dimensions` axes; it holds
    more than `minimum_roi_size` voxels.

    Parameters
    ----------
    image, mask : SimpleITK.Image
        Image and integer label image, same dimension.
    label : int
        ROI label value, > 0.
    geometry_tolerance : float, optional
        Allowed difference of origin and spacing, relative to the image's
        first spacing, and of direction cosines (absolute), as SimpleITK
        compares them. None: SimpleITK's default 1e-6.
    correct_mask : bool
        Resample a mismatched mask onto the image grid instead of failing.
    minimum_roi_dimensions : {1, 2, 3}
        A single voxel is always refused.
    minimum_roi_size : int, optional
        The ROI must hold *more* than this many voxels (PyRadiomics' test).
    source : str or path-like
        Named in error messages (the mask file or store key).

    Returns
    -------
    bounding_box : BoundingBox
        Of the ROI on the image grid.
    corrected_mask : SimpleITK.Image or None
        The mask resampled onto the image grid, when that was needed.

    Raises
    ------
    InputError
        A check failed; the message gives the reason.
    """
    _check_label(label)
    tolerance = _check_options(geometry_tolerance, minimum_roi_dimensions, minimum_roi_size)
    _check_scalar_mask(mask, source)
    roi = sitk.GetArrayViewFromImage(mask) == label
    box = _box(roi)
    if box is None:
        raise InputError(source, _label_absent(mask, label))

    corrected = None
    if image.GetDimension() != mask.GetDimension():
        raise InputError(
            source,
            f"Image/Mask dimension mismatch: image is {image.GetDimension()}D, "
            f"mask {mask.GetDimension()}D",
        )
    mismatch = _geometry_mismatch(image, mask, tolerance)
    if mismatch is not None:
        if not correct_mask:
            raise InputError(
                source,
                f"Image/Mask geometry mismatch ({mismatch}). Potential fix: increase "
                "geometryTolerance, or enable correctMask to resample the mask",
            )
        check_roi_inside_image(image, mask, bounding_box=box, source=source)
        corrected = sitk.Resample(
            mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID()
        )
        roi = sitk.GetArrayViewFromImage(corrected) == label
        box = _box(roi)
        if box is None:
            raise InputError(
                source,
                f"Label ({label}) not present in the mask after resampling it "
                "onto the image grid (correctMask): the ROI is smaller than a voxel",
            )

    dimensions = box.n_extended_axes
    if dimensions == 0:
        raise InputError(
            source,
            "mask only contains 1 segmented voxel! Cannot extract features for a single voxel.",
        )
    if dimensions < minimum_roi_dimensions:
        raise InputError(
            source,
            f"mask has too few dimensions (number of dimensions {dimensions}, "
            f"minimum required {minimum_roi_dimensions})",
        )
    if minimum_roi_size is not None:
        size = int(np.count_nonzero(roi))
        if size <= minimum_roi_size:
            raise InputError(
                source,
                f"Size of the ROI is too small (minimum size: {minimum_roi_size}, "
                f"ROI size: {size})",
            )
    return box, corrected


def crop_to_roi(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    bounding_box: BoundingBox | None = None,
    label: int = 1,
    pad_distance: int = 0,
) -> tuple[sitk.Image, sitk.Image]:
    """Crop image and mask to the ROI box grown by `pad_distance` voxels, as ``cropToTumorMask``.

    Parameters
    ----------
    image, mask : SimpleITK.Image
        Same grid (check it with :func:`check_mask` first).
    bounding_box : BoundingBox, optional
        From :func:`check_mask`; computed from `mask` and `label` when None.
    label : int
        Used only when `bounding_box` is None.
    pad_distance : int
        Voxels kept on each side of the box, >= 0, clipped at the image bounds.

    Returns
    -------
    image, mask : SimpleITK.Image
        Cropped; origins moved so that physical positions are unchanged.
    """
    _check_pad_distance(pad_distance)
    if bounding_box is None:
        bounding_box = roi_bounding_box(mask, label=label)
    size = np.array(mask.GetSize())
    if len(bounding_box.lower_xyz) != len(size):
        raise SettingsError(
            f"bounding_box has {len(bounding_box.lower_xyz)} axes, the mask {len(size)}"
        )
    lower = np.maximum(np.array(bounding_box.lower_xyz) - pad_distance, 0)
    upper = np.maximum(size - np.array(bounding_box.upper_xyz) - pad_distance - 1, 0)
    lower, upper = lower.tolist(), upper.tolist()
    return sitk.Crop(image, lower, upper), sitk.Crop(mask, lower, upper)


def geometry_mismatch(
    image: sitk.Image, mask: sitk.Image, *, geometry_tolerance: float | None = None
) -> str | None:
    """How the grids of `image` and `mask` differ, or None when they match.

    Dimension and size must be equal; origin and spacing may differ by
    `geometry_tolerance` times the image's first spacing (mm), direction
    cosines by `geometry_tolerance`: SimpleITK's own comparison, which
    PyRadiomics' ``checkMask`` relies on. None: SimpleITK's default 1e-6.

    Returns
    -------
    str or None
        E.g. ``"origin differs by 2e-05 mm, tolerance 7e-07 mm"``.
    """
    tolerance = _check_tolerance(geometry_tolerance)
    if image.GetDimension() != mask.GetDimension():
        return f"image is {image.GetDimension()}D, mask {mask.GetDimension()}D"
    return _geometry_mismatch(image, mask, tolerance)


def _box(roi: np.ndarray) -> BoundingBox | None:
    """Inclusive bounds of the True voxels of a (z, y, x) array, in (x, y, z) order."""
    box = _geometry.bounding_box(roi)
    if box is None:
        return None
    return BoundingBox(tuple(s.start for s in box[::-1]), tuple(s.stop - 1 for s in box[::-1]))


def _label_absent(mask: sitk.Image, label: int) -> str:
    labels = np.unique(sitk.GetArrayViewFromImage(mask))
    labels = labels[labels != 0]
    if labels.size == 0:
        return "No labels found in this mask (i.e. nothing is segmented)!"
    return f"Label ({label}) not present in mask. Choose from {labels.tolist()}"


def _geometry_mismatch(image: sitk.Image, mask: sitk.Image, tolerance: float) -> str | None:
    """How mask and image grids (same dimension) differ beyond SimpleITK's tolerance, or None."""
    # ITK (ImageSink::VerifyInputInformation): origin and spacing within
    # tolerance * first spacing of the image, direction cosines within tolerance.
    coordinate = abs(tolerance * image.GetSpacing()[0])
    found = _geometry.grid_difference(
        image, mask, {"origin": coordinate, "spacing": coordinate, "direction": tolerance}
    )
    if found is None:
        return None
    if found.what == "dimension":
        return f"image is {image.GetDimension()}D, mask {mask.GetDimension()}D"
    if found.what == "size":
        return f"size {mask.GetSize()} differs from the image size {image.GetSize()}"
    unit = "" if found.what == "direction" else " mm"
    return (
        f"{found.what} differs by {found.difference:.3g}{unit}, "
        f"tolerance {found.tolerance:.3g}{unit}"
    )


def check_roi_inside_image(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    bounding_box: BoundingBox,
    source: str | PathLike = "mask",
) -> None:
    """Raise InputError unless the ROI box of `mask` lies inside `image`'s extent.

    PyRadiomics' ``_checkROI``: the outer corners of the first and last ROI
    voxels, mapped into the image's continuous index space, must lie within
    the image's voxel edges (1e-3 voxel slack). Grids may differ.
    """
    lower = np.array(bounding_box.lower_xyz, dtype=float) - 0.5
    upper = np.array(bounding_box.upper_xyz, dtype=float) + 0.5
    corners = np.array(
        [
            image.TransformPhysicalPointToContinuousIndex(
                mask.TransformContinuousIndexToPhysicalPoint(c.tolist())
            )
            for c in (lower, upper)
        ]
    )
    size = np.array(image.GetSize())
    if (corners.min(axis=0) < -0.5 - _INSIDE_TOLERANCE).any() or (
        corners.max(axis=0) > size - 0.5 + _INSIDE_TOLERANCE
    ).any():
        raise InputError(
            source,
            "Bounding box of ROI is larger than image space: ROI bounds (x, y, z image "
            f"coordinate space) {np.round(corners, 3).tolist()}, image size {list(size)}",
        )


def _check_pad_distance(pad_distance) -> None:
    if (
        isinstance(pad_distance, bool)
        or not isinstance(pad_distance, (int, np.integer))
        or pad_distance < 0
    ):
        raise SettingsError(f"pad_distance must be an integer >= 0, got {pad_distance!r}")


def _check_label(label) -> None:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 1:
        raise SettingsError(f"label must be an integer > 0, got {label!r}")


def _check_scalar_mask(mask: sitk.Image, source) -> None:
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            source,
            f"mask has {mask.GetNumberOfComponentsPerPixel()} components per voxel; "
            "select one (label_channel) first",
        )


def _check_tolerance(geometry_tolerance) -> float:
    if geometry_tolerance is None:
        return DEFAULT_GEOMETRY_TOLERANCE
    if (
        isinstance(geometry_tolerance, bool)
        or not isinstance(geometry_tolerance, (int, float))
        or not (geometry_tolerance > 0)
    ):
        raise SettingsError(
            f"geometry_tolerance must be a number > 0 or None, got {geometry_tolerance!r}"
        )
    return float(geometry_tolerance)


def _check_options(geometry_tolerance, minimum_roi_dimensions, minimum_roi_size) -> float:
    tolerance = _check_tolerance(geometry_tolerance)
    if minimum_roi_dimensions not in (1, 2, 3) or isinstance(minimum_roi_dimensions, bool):
        raise SettingsError(
            f"minimum_roi_dimensions must be 1, 2 or 3, got {minimum_roi_dimensions!r}"
        )
    if minimum_roi_size is not None and (
        isinstance(minimum_roi_size, bool)
        or not isinstance(minimum_roi_size, (int, np.integer))
        or minimum_roi_size < 1
    ):
        raise SettingsError(
            f"minimum_roi_size must be an integer > 0 or None, got {minimum_roi_size!r}"
        )
    return tolerance
