"""Image processing as the IBSI 1 reference manual defines it (chapter "Image processing").

Plain functions on numpy arrays in (z, y, x) order (``sitk.GetArrayFromImage``
order), spacings in mm, boolean masks:

- :func:`interpolation_grid`: the "align grid centers" interpolation grid
  (size rounded up, new grid centred on the old one);
- :func:`interpolate_image` (nearest, linear, cubic spline; intensities
  beyond the image are those at its boundary, as the manual recommends;
  optional rounding), :func:`interpolate_mask` (partial-volume threshold);
- :func:`resegment_range` (open ends allowed), :func:`outlier_bounds` and
  :func:`filter_outliers` (mean +- k sigma of the ROI);
- :func:`discretise_fixed_bin_size` (bins from a set minimum, normally the
  lower bound of the re-segmentation range), :func:`discretise_fixed_bin_number`;
- :func:`ivh_intensities`: the intensity-volume histogram's own discretisation.

This differs from radflow's PyRadiomics mode (:mod:`radflow.preprocess.resample`,
:mod:`radflow.preprocess.discretise`), which aligns grid corners and starts
fixed-width bins at a multiple of the bin width.

References
----------
Zwanenburg A, Vallières M, et al. The Image Biomarker Standardization
Initiative. Radiology 2020;295:328-338. doi:10.1148/radiol.2020191145;
reference manual arXiv:1612.07003.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radflow._geometry import SpacingError, spacing_mm
from radflow.params.names import INTERPOLATION_ORDERS

__all__ = [
    "INTERPOLATION_ORDERS",
    "InterpolationGrid",
    "IvhIntensities",
    "discretise_fixed_bin_number",
    "discretise_fixed_bin_size",
    "filter_outliers",
    "interpolate_image",
    "interpolate_mask",
    "interpolation_grid",
    "ivh_intensities",
    "outlier_bounds",
    "resegment_range",
]

# Interpolated mask values are rounded to this many decimals before the
# threshold: a voxel centre exactly between ROI and background gives 0.5 in
# exact arithmetic, and float round-off must not decide which side it falls.
_MASK_DECIMALS = 9


@dataclass(frozen=True)
class InterpolationGrid:
    """An interpolation grid, in the original grid's voxel coordinates.

    New voxel ``k`` along an axis lies at original (fractional) index
    ``start_zyx[axis] + k * step_zyx[axis]``.

    Attributes
    ----------
    shape_zyx : tuple of int
        Number of voxels of the new grid.
    spacing_zyx : tuple of float
        Spacing of the new grid in mm.
    start_zyx : tuple of float
        Position of the new voxel 0 in original voxel indices.
    step_zyx : tuple of float
        New spacing in original voxel units (new spacing / old spacing).
    """

    shape_zyx: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    start_zyx: tuple[float, float, float]
    step_zyx: tuple[float, float, float]

    def origin_shift_zyx(self, spacing_zyx) -> tuple[float, float, float]:
        """Shift in mm of the new voxel 0 from the original voxel 0, along each grid axis."""
        return tuple(float(s * a) for s, a in zip(self.start_zyx, spacing_zyx))


@dataclass(frozen=True)
class IvhIntensities:
    """Input of the intensity-volume histogram (IBSI 1, section IVH).

    Attributes
    ----------
    values : numpy.ndarray of float
        Discretised intensities X_d,gl (same shape as the image; meaningful
        inside the intensity mask only).
    value_range : tuple of float
        Total range G = (min, max) of the intensity fraction.
    value_step : float
        Discretisation interval w_d.
    """

    values: np.ndarray
    value_range: tuple[float, float]
    value_step: float


def interpolation_grid(shape_zyx, *, spacing_zyx, new_spacing_zyx) -> InterpolationGrid:
    """The IBSI "align grid centers" interpolation grid.

    Along each axis with ``n_a`` voxels of spacing ``s_a`` and new spacing
    ``s_b``, the new grid has ``n_b = ceil(n_a s_a / s_b)`` voxels and its
    voxel 0 lies at original index ``(n_a - 1 - (s_b / s_a)(n_b - 1)) / 2``, so
    that both grids share their centre.

    Parameters
    ----------
    shape_zyx : sequence of 3 int
        Shape of the original image.
    spacing_zyx : sequence of 3 float
        Original spacing in mm.
    new_spacing_zyx : sequence of 3 (float or None)
        New spacing in mm; None keeps an axis as it is (2D, in-plane
        interpolation: ``(None, 2.0, 2.0)``).

    Returns
    -------
    InterpolationGrid

    Examples
    --------
    The manual's example: 4 voxels of 3 mm to 2 mm gives 6 voxels; the grids
    span 9 and 10 mm between their first and last centres, so the new voxel 0
    lies 0.5 mm (1/6 of an original voxel) before the original voxel 0.

    >>> grid = interpolation_grid((1, 1, 4), spacing_zyx=(1, 1, 3), new_spacing_zyx=(None, None, 2))
    >>> grid.shape_zyx, round(grid.start_zyx[2], 6), round(grid.origin_shift_zyx((1, 1, 3))[2], 6)
    ((1, 1, 6), -0.166667, -0.5)
    """
    shape = _check_shape(shape_zyx)
    spacing = _check_spacing(spacing_zyx, "spacing_zyx", allow_none=False)
    new_spacing = _check_spacing(new_spacing_zyx, "new_spacing_zyx", allow_none=True)
    shape_b, spacing_b, start, step = [], [], [], []
    for n_a, s_a, s_b in zip(shape, spacing, new_spacing):
        if s_b is None:
            shape_b.append(n_a), spacing_b.append(s_a), start.append(0.0), step.append(1.0)
            continue
        # Rounded before the ceiling: 60 x 3 mm / 2 mm must give 90 voxels even
        # when the spacing read from a file carries float round-off.
        n_b = max(1, math.ceil(round(n_a * s_a / s_b, 6)))
        step_g = s_b / s_a
        shape_b.append(n_b)
        spacing_b.append(s_b)
        start.append(0.5 * (n_a - 1 - step_g * (n_b - 1)))
        step.append(step_g)
    return InterpolationGrid(tuple(shape_b), tuple(spacing_b), tuple(start), tuple(step))


def interpolate_image(
    image, grid: InterpolationGrid, *, method: str, round_intensities: bool = False
) -> np.ndarray:
    """Interpolate an image onto an IBSI grid.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
        Intensities (HU, SUV, ...).
    grid : InterpolationGrid
        From :func:`interpolation_grid` for this image's shape.
    method : {"nearest", "linear", "cubic_spline"}
        Nearest neighbour, (tri/bi)linear or cubic B-spline interpolation
        (``scipy.ndimage`` spline orders 0, 1, 3, with the spline prefilter).
        Points beyond the original grid take the boundary intensities.
    round_intensities : bool, optional
        Round to the nearest integer afterwards (CT: HU are integers).

    Returns
    -------
    numpy.ndarray of float64, shape ``grid.shape_zyx``
    """
    order = _check_method(method, "method", INTERPOLATION_ORDERS)
    values = _check_volume(image, "image").astype(np.float64)
    out = _resample(values, grid, order)
    return np.round(out) if round_intensities else out


def interpolate_mask(
    mask, grid: InterpolationGrid, *, method: str = "linear", threshold: float = 0.5
) -> np.ndarray:
    """Interpolate an ROI mask onto an IBSI grid and apply the partial-volume threshold.

    Parameters
    ----------
    mask : array_like of bool, shape (z, y, x)
    grid : InterpolationGrid
    method : {"linear", "nearest"}, optional
    threshold : float, optional
        Voxels whose interpolated mask value is >= `threshold` are in the ROI
        (0 < threshold <= 1; IBSI configurations use 0.5).

    Returns
    -------
    numpy.ndarray of bool, shape ``grid.shape_zyx``
    """
    order = _check_method(method, "method", {"nearest": 0, "linear": 1})
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    values = _check_mask(mask, "mask").astype(np.float64)
    out = _resample(values, grid, order)
    return np.round(out, _MASK_DECIMALS) >= threshold


def _resample(values: np.ndarray, grid: InterpolationGrid, order: int) -> np.ndarray:
    if (
        grid.shape_zyx == values.shape
        and grid.step_zyx == (1.0, 1.0, 1.0)
        and grid.start_zyx == (0.0, 0.0, 0.0)
    ):
        return values.copy()
    # The grid maps output index k to input index start + step * k on each
    # axis: a diagonal affine map, evaluated without coordinate arrays.
    return ndimage.affine_transform(
        values,
        np.asarray(grid.step_zyx, dtype=np.float64),
        offset=np.asarray(grid.start_zyx, dtype=np.float64),
        output_shape=grid.shape_zyx,
        order=order,
        mode="nearest",
        prefilter=order > 1,
    )


def resegment_range(
    image, mask, *, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """Keep the ROI voxels whose intensity lies in ``[low, high]`` (closed interval).

    Parameters
    ----------
    image : array_like, shape (z, y, x)
    mask : array_like of bool, same shape
    low, high : float or None
        Bounds in image units; None leaves that end open.

    Returns
    -------
    numpy.ndarray of bool
        The re-segmented intensity mask.
    """
    values, roi = _check_pair(image, mask)
    low = _check_bound(low, "low")
    high = _check_bound(high, "high")
    if low is not None and high is not None and low > high:
        raise ValueError(f"re-segmentation range: low {low} is above high {high}")
    out = roi.copy()
    if low is not None:
        out &= values >= low
    if high is not None:
        out &= values <= high
    return out


def outlier_bounds(values, *, sigma: float = 3.0) -> tuple[float, float]:
    """``(mean - sigma * std, mean + sigma * std)`` of the values (population std).

    Parameters
    ----------
    values : array_like
        ROI intensities, at least one.
    sigma : float, optional
        Number of standard deviations (> 0).

    Examples
    --------
    >>> outlier_bounds([1, 2, 3, 4], sigma=2)
    (0.2639320225002102, 4.73606797749979)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("outlier bounds of an empty ROI")
    if not np.all(np.isfinite(values)):
        raise ValueError("outlier bounds: values contain NaN or infinity")
    if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    mean, std = float(values.mean()), float(values.std())
    return mean - sigma * std, mean + sigma * std


def filter_outliers(image, mask, *, sigma: float = 3.0) -> np.ndarray:
    """Remove from the mask the voxels outside :func:`outlier_bounds` of the ROI intensities.

    Returns
    -------
    numpy.ndarray of bool
        The filtered intensity mask.
    """
    values, roi = _check_pair(image, mask)
    _check_not_empty(roi)
    low, high = outlier_bounds(values[roi], sigma=sigma)
    return roi & (values >= low) & (values <= high)


def discretise_fixed_bin_size(
    image, mask, *, bin_width: float, minimum: float | None = None
) -> np.ndarray:
    """IBSI fixed bin size discretisation: ``floor((x - minimum) / bin_width) + 1``.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
    mask : array_like of bool, same shape
        Intensity mask; intensities below `minimum` must not be in it.
    bin_width : float
        Bin width in image units (> 0).
    minimum : float or None, optional
        Lower edge of bin 1: the lower bound of the re-segmentation range
        (recommended); None takes the ROI minimum.

    Returns
    -------
    numpy.ndarray of int32
        Grey levels 1, 2, ... inside the mask, 0 outside.

    Examples
    --------
    Bin edges -500, -475, ...: an intensity on an edge opens the next bin.

    >>> discretise_fixed_bin_size(
    ...     [[[-500, -475.5, -475, 400]]], [[[1, 1, 1, 1]]], bin_width=25, minimum=-500
    ... )
    array([[[ 1,  1,  2, 37]]], dtype=int32)
    """
    values, roi = _check_pair(image, mask)
    _check_not_empty(roi)
    if not (isinstance(bin_width, (int, float)) and bin_width > 0 and math.isfinite(bin_width)):
        raise ValueError(f"bin_width must be a finite number > 0, got {bin_width!r}")
    inside = values[roi]
    if minimum is None:
        minimum = float(inside.min())
    elif inside.min() < minimum:
        raise ValueError(
            f"ROI intensity {inside.min()} is below the bin minimum {minimum}; "
            "re-segment to the range first"
        )
    out = np.zeros(values.shape, dtype=np.int32)
    out[roi] = np.floor((inside - minimum) / bin_width).astype(np.int32) + 1
    return out


def discretise_fixed_bin_number(image, mask, *, bin_count: int) -> np.ndarray:
    """IBSI fixed bin number discretisation over the ROI's intensity range.

    ``floor(N_g (x - min) / (max - min)) + 1``, with the maximum in bin N_g;
    min and max are those of the ROI. A constant ROI is all bin 1.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
    mask : array_like of bool, same shape
    bin_count : int
        Number of bins N_g (>= 1).

    Returns
    -------
    numpy.ndarray of int32
        Grey levels 1..bin_count inside the mask, 0 outside.

    Examples
    --------
    >>> discretise_fixed_bin_number([[[0, 1, 2, 3, 4]]], [[[1, 1, 1, 1, 1]]], bin_count=2)
    array([[[1, 1, 2, 2, 2]]], dtype=int32)
    """
    values, roi = _check_pair(image, mask)
    _check_not_empty(roi)
    if not isinstance(bin_count, (int, np.integer)) or isinstance(bin_count, bool) or bin_count < 1:
        raise ValueError(f"bin_count must be a whole number >= 1, got {bin_count!r}")
    inside = values[roi]
    low, high = float(inside.min()), float(inside.max())
    out = np.zeros(values.shape, dtype=np.int32)
    if high == low:
        out[roi] = 1
        return out
    levels = np.floor(bin_count * (inside - low) / (high - low)).astype(np.int64) + 1
    out[roi] = np.minimum(levels, bin_count)
    return out


def ivh_intensities(
    image,
    mask,
    *,
    method: str,
    bin_width: float | None = None,
    bin_count: int | None = None,
    value_range: tuple[float | None, float | None] | None = None,
) -> IvhIntensities:
    """The discretised intensities, total range G and interval w_d of the IVH.

    As the IBSI 1 manual (intensity-volume histogram) defines them:

    - ``"none"`` (discrete calibrated intensities, e.g. CT in HU): the
      intensities as they are; G is the re-segmentation range (an open end
      taken from the ROI), else the ROI's range; w_d = 1;
    - ``"fixed_bin_size"`` (continuous calibrated, e.g. SUV): bins of
      `bin_width` from the range's lower bound (else the ROI minimum),
      replaced by their centres; G = [min + w/2, max - w/2]; w_d = w;
    - ``"fixed_bin_number"`` (arbitrary units): bins 1..`bin_count` over the
      ROI's range; G = [1, bin_count]; w_d = 1.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
    mask : array_like of bool, same shape
        Intensity mask (after re-segmentation).
    method : {"none", "fixed_bin_size", "fixed_bin_number"}
    bin_width, bin_count : optional
        For the fixed bin size and fixed bin number methods.
    value_range : (low, high) or None, optional
        The re-segmentation range (None for an open end).

    Returns
    -------
    IvhIntensities
    """
    values, roi = _check_pair(image, mask)
    _check_not_empty(roi)
    low, high = value_range if value_range is not None else (None, None)
    low, high = _check_bound(low, "value_range low"), _check_bound(high, "value_range high")
    inside = values[roi]
    low = float(inside.min()) if low is None else low
    high = float(inside.max()) if high is None else high
    if method == "none":
        return IvhIntensities(np.where(roi, values, 0.0), (low, high), 1.0)
    if method == "fixed_bin_size":
        if bin_width is None:
            raise ValueError("fixed_bin_size IVH discretisation needs bin_width")
        bins = discretise_fixed_bin_size(values, roi, bin_width=bin_width, minimum=low)
        centres = np.where(roi, low + (bins - 0.5) * bin_width, 0.0)
        return IvhIntensities(
            centres, (low + 0.5 * bin_width, high - 0.5 * bin_width), float(bin_width)
        )
    if method == "fixed_bin_number":
        if bin_count is None:
            raise ValueError("fixed_bin_number IVH discretisation needs bin_count")
        bins = discretise_fixed_bin_number(values, roi, bin_count=bin_count)
        return IvhIntensities(bins.astype(np.float64), (1.0, float(bin_count)), 1.0)
    raise ValueError(
        f"method must be one of none, fixed_bin_size, fixed_bin_number, got {method!r}"
    )


def _check_shape(shape_zyx) -> tuple[int, int, int]:
    shape = tuple(shape_zyx)
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"shape_zyx must be 3 whole numbers >= 1, got {shape_zyx!r}")
    return tuple(int(n) for n in shape)


def _check_spacing(spacing, name: str, *, allow_none: bool) -> tuple:
    spacing = tuple(spacing)
    try:
        return spacing_mm(spacing, allow_none=allow_none)
    except SpacingError as error:
        if error.reason == "length":
            raise ValueError(f"{name} must have 3 values (z, y, x), got {spacing!r}") from None
        raise ValueError(f"{name} must be finite numbers > 0 (mm), got {spacing!r}") from None


def _check_method(method, name: str, choices: dict) -> int:
    if method not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {method!r}")
    return choices[method]


def _check_volume(image, name: str) -> np.ndarray:
    values = np.asarray(image)
    if values.ndim != 3:
        raise ValueError(f"{name} must be 3-D (z, y, x), got shape {values.shape}")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {values.dtype}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinity")
    return values


def _check_mask(mask, name: str) -> np.ndarray:
    values = _check_volume(mask, name)
    if values.dtype != bool:
        if not np.all((values == 0) | (values == 1)):
            raise ValueError(f"{name} must be boolean (0/1), got values other than 0 and 1")
        values = values.astype(bool)
    return values


def _check_pair(image, mask) -> tuple[np.ndarray, np.ndarray]:
    values = _check_volume(image, "image").astype(np.float64, copy=False)
    roi = _check_mask(mask, "mask")
    if roi.shape != values.shape:
        raise ValueError(f"mask shape {roi.shape} differs from image shape {values.shape}")
    return values, roi


def _check_not_empty(roi: np.ndarray) -> None:
    if not roi.any():
        raise ValueError("the ROI (intensity mask) is empty")


def _check_bound(value, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    return float(value)
