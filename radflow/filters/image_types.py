"""PyRadiomics image types: which filtered images to compute, and the crop each needs.

:func:`image_types` is what PyRadiomics' ``featureextractor`` does with the
``imageType`` section of a parameter file: for each enabled type, in the
file's order, it yields the filtered images with their PyRadiomics names
(``original``, ``log-sigma-3-0-mm-3D``, ``wavelet-LLH`` ...) and the settings
in force for them (global settings updated with the type's own).

PyRadiomics filters the whole image (``preCrop`` false, its default);
radflow filters only the ROI's bounding box plus the margin each filter
needs, :func:`required_margin_voxels`, read from the volume with
:func:`read_box`. Inside the ROI the values are then PyRadiomics': exactly,
except LoG (within 2e-7 of the largest value: float32 rounding of a
recursive filter) and LBP 3D (within 1e-9: recursive spline prefilter); see
each module. The caller must pass what PyRadiomics reads from the whole
image: its shape (LoG's size check) and its largest absolute intensity
(square, squareroot, logarithm, exponential). To filter without cropping,
pass the whole volume.

Images are computed one at a time as they are consumed, except that one
``swtn`` call gives all the decompositions of a wavelet level together.

Settings read, with PyRadiomics' defaults (``imageType`` entries override
the global ``setting`` ones; other keys are left to the other stages):

========== ===================================================================
Type       Keys
========== ===================================================================
Original   none
LoG        ``sigma`` (mm, required, each > 0)
Wavelet    ``wavelet`` ("coif1"), ``start_level`` (0), ``level`` (1),
           ``force2D`` (False), ``force2Ddimension`` (0)
Square,    none
SquareRoot,
Logarithm,
Exponential
Gradient   ``gradientUseSpacing`` (True)
LBP2D      ``lbp2DRadius`` (1, voxels), ``lbp2DSamples`` (8),
           ``lbp2DMethod`` ("uniform"), ``force2D``, ``force2Ddimension``
LBP3D      ``lbp3DLevels`` (2), ``lbp3DIcosphereRadius`` (1, voxels),
           ``lbp3DIcosphereSubdivision`` (1), ``label`` (1), ``force2D``
========== ===================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.filters import _checks, gradient, intensity, lbp, log, wavelet

__all__ = ["IMAGE_TYPES", "image_types", "read_box", "required_margin_voxels", "type_settings"]

#: PyRadiomics image types (``imageoperations.get<Type>Image``).
IMAGE_TYPES = (
    "Original", "LoG", "Wavelet", "Square", "SquareRoot", "Logarithm",
    "Exponential", "Gradient", "LBP2D", "LBP3D",
)  # fmt: skip

# PyRadiomics key -> (check, default). A default of None: the key is required.
_KEYS = {
    "sigma": (_checks.positive_list, None),
    "wavelet": (_checks.discrete_wavelet, "coif1"),
    "start_level": (lambda v, name: _checks.integer(v, name, 0), 0),
    "level": (lambda v, name: _checks.integer(v, name, 1), 1),
    "force2D": (_checks.boolean, False),
    "force2Ddimension": (lambda v, name: _checks.integer(v, name, 0, 2), 0),
    "gradientUseSpacing": (_checks.boolean, True),
    "lbp2DRadius": (_checks.positive, 1),
    "lbp2DSamples": (lambda v, name: _checks.integer(v, name, 1), 8),
    "lbp2DMethod": (lambda v, name: _checks.choice(v, name, lbp.LBP2D_METHODS), "uniform"),
    "lbp3DLevels": (lambda v, name: _checks.integer(v, name, 1), 2),
    "lbp3DIcosphereRadius": (_checks.positive, 1),
    "lbp3DIcosphereSubdivision": (lambda v, name: _checks.integer(v, name, 0), 1),
    "label": (lambda v, name: _checks.integer(v, name, 1), 1),
}

_TYPE_KEYS = {
    "Original": (),
    "LoG": ("sigma",),
    "Wavelet": ("wavelet", "start_level", "level", "force2D", "force2Ddimension"),
    "Square": (),
    "SquareRoot": (),
    "Logarithm": (),
    "Exponential": (),
    "Gradient": ("gradientUseSpacing",),
    "LBP2D": ("lbp2DRadius", "lbp2DSamples", "lbp2DMethod", "force2D", "force2Ddimension"),
    "LBP3D": ("lbp3DLevels", "lbp3DIcosphereRadius", "lbp3DIcosphereSubdivision", "label", "force2D"),
}

_INTENSITY = {
    "Square": ("square", intensity.square_image),
    "SquareRoot": ("squareroot", intensity.squareroot_image),
    "Logarithm": ("logarithm", intensity.logarithm_image),
    "Exponential": ("exponential", intensity.exponential_image),
}


def _check_type(image_type: str) -> None:
    if image_type not in IMAGE_TYPES:
        raise SettingsError(f"imageType {image_type!r} is not known; known: {', '.join(IMAGE_TYPES)}")


def type_settings(image_type: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The filter parameters `image_type` reads from `settings`, checked, defaults filled in.

    `settings` are those in force for the type (global ones updated with the
    ``imageType`` entry's), keyed as in PyRadiomics. Raises SettingsError
    naming the type and the key.
    """
    _check_type(image_type)
    if not isinstance(settings, Mapping):
        raise SettingsError(f"imageType {image_type!r}: settings must be a mapping, got {type(settings).__name__}")
    params = {}
    for key in _TYPE_KEYS[image_type]:
        check, default = _KEYS[key]
        where = f"imageType {image_type!r} setting {key!r}"
        if key not in settings or settings[key] is None:
            if default is None:
                raise SettingsError(f"{where} is required (e.g. sigma: [1.0, 3.0], in mm)")
            params[key] = default
        else:
            params[key] = check(settings[key], where)
    return params


def _fixed_axis(params: Mapping[str, Any]) -> int | None:
    return params["force2Ddimension"] if params["force2D"] else None


def image_types(
    image: sitk.Image,
    mask: sitk.Image,
    enabled: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
    *,
    source_shape_zyx: Sequence[int] | None = None,
    source_max_abs: float | None = None,
) -> Iterator[tuple[str, sitk.Image, dict[str, Any]]]:
    """Filtered images of every enabled image type, lazily, in PyRadiomics' order.

    All settings are checked before the first image is computed.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image after resampling/normalisation: the whole volume, or
        a crop of it from :func:`read_box`.
    mask : SimpleITK.Image
        Label map on the grid of `image` (LBP 3D computes ROI voxels only).
    enabled : mapping of str to mapping
        Enabled image types in order (``{"Original": {}, "LoG": {"sigma": [1.0, 3.0]}}``)
        with their own settings, as PyRadiomics' ``imageType`` section.
    settings : mapping
        Global PyRadiomics settings (``setting`` section).
    source_shape_zyx : sequence of 3 int, optional
        Shape of the whole volume when `image` is a crop (LoG's size check).
    source_max_abs : float, optional
        Largest absolute intensity of the whole volume (image units); required
        with `source_shape_zyx` when Square, SquareRoot, Logarithm or
        Exponential is enabled.

    Yields
    ------
    name : str
        PyRadiomics image type name (``"original"``, ``"wavelet2-HHL"`` ...),
        the prefix of its feature names.
    image : SimpleITK.Image
        The filtered image on the grid of `image`.
    settings : dict
        The settings in force for it (`settings` updated with the type's own).
    """
    _checks.check_image(image)
    _checks.check_same_grid(image, mask)
    if not isinstance(enabled, Mapping):
        raise SettingsError(f"imageType must be a mapping of image type to settings, got {type(enabled).__name__}")
    if not isinstance(settings, Mapping):
        raise SettingsError(f"setting must be a mapping of key to value, got {type(settings).__name__}")
    plan = []
    for image_type, custom in enabled.items():
        _check_type(image_type)
        if custom is not None and not isinstance(custom, Mapping):
            raise SettingsError(f"imageType {image_type!r}: custom settings must be a mapping, got {custom!r}")
        in_force = {**settings, **(custom or {})}
        plan.append((image_type, type_settings(image_type, in_force), in_force))
    if (source_shape_zyx is not None and source_max_abs is None
            and any(image_type in _INTENSITY for image_type, _, _ in plan)):
        raise InputError("source_max_abs", "the image is a crop (source_shape_zyx given): pass the whole "
                                           "volume's max |intensity|, which square/squareroot/logarithm/"
                                           "exponential scale by")
    for image_type, params, in_force in plan:
        for name, filtered in _generate(image_type, params, image, mask, source_shape_zyx, source_max_abs):
            yield name, filtered, dict(in_force)


def _generate(image_type, params, image, mask, source_shape_zyx, source_max_abs):
    if image_type == "Original":
        yield "original", image
    elif image_type == "LoG":
        yield from log.log_images(image, sigmas_mm=params["sigma"], source_shape_zyx=source_shape_zyx)
    elif image_type == "Wavelet":
        yield from wavelet.wavelet_images(image, wavelet=params["wavelet"], start_level=params["start_level"],
                                          level=params["level"], fixed_axis=_fixed_axis(params))
    elif image_type in _INTENSITY:
        name, transform = _INTENSITY[image_type]
        yield name, transform(image, max_abs=source_max_abs)
    elif image_type == "Gradient":
        yield "gradient", gradient.gradient_image(image, use_spacing=params["gradientUseSpacing"])
    elif image_type == "LBP2D":
        if not params["force2D"]:
            warnings.warn("LBP2D: local binary patterns computed per slice while features are extracted "
                          "in 3D (force2D false), as PyRadiomics allows; use with caution", stacklevel=3)
        yield "lbp-2D", lbp.lbp2d_image(image, radius=params["lbp2DRadius"], samples=params["lbp2DSamples"],
                                        method=params["lbp2DMethod"], axis=params["force2Ddimension"])
    elif image_type == "LBP3D":
        if params["force2D"]:
            warnings.warn("LBP3D: local binary patterns computed in 3D while features are extracted per "
                          "slice (force2D true), as PyRadiomics allows; use with caution", stacklevel=3)
        yield from lbp.lbp3d_images(image, mask, label=params["label"], levels=params["lbp3DLevels"],
                                    icosphere_radius=params["lbp3DIcosphereRadius"],
                                    icosphere_subdivision=params["lbp3DIcosphereSubdivision"])
    else:  # pragma: no cover - _check_type guards
        raise AssertionError(image_type)


def required_margin_voxels(
    image_type: str, settings: Mapping[str, Any], spacing_zyx: Sequence[float]
) -> tuple[int, int, int]:
    """Voxels (z, y, x) to read beyond the ROI box for `image_type` to filter like the whole image.

    Parameters
    ----------
    image_type : str
        PyRadiomics image type (``"LoG"`` ...).
    settings : mapping
        Settings in force for it, PyRadiomics keys.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm.

    Notes
    -----
    Wavelet images also need the whole axis wherever the margin leaves the
    volume (PyRadiomics' transform wraps around the image); :func:`read_box`
    applies that.
    """
    params = type_settings(image_type, settings)
    spacing_zyx = tuple(_checks.positive(float(s), "spacing_zyx") for s in spacing_zyx)
    if len(spacing_zyx) != 3:
        raise InputError("spacing_zyx", f"expected 3 values (z, y, x), got {len(spacing_zyx)}")
    if image_type == "LoG":
        return log.log_margin_voxels(params["sigma"], spacing_zyx)
    if image_type == "Wavelet":
        return wavelet.wavelet_margin_voxels(params["wavelet"], params["start_level"], params["level"],
                                             _fixed_axis(params))
    if image_type == "Gradient":
        return (gradient.MARGIN_VOXELS,) * 3
    if image_type == "LBP2D":
        return lbp.lbp2d_margin_voxels(params["lbp2DRadius"], params["force2Ddimension"])
    if image_type == "LBP3D":
        return lbp.lbp3d_margin_voxels(params["lbp3DIcosphereRadius"])
    return (0, 0, 0)  # Original and the voxel-wise intensity transforms


def read_box(
    enabled: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
    bbox_zyx: Sequence[slice],
    shape_zyx: Sequence[int],
    spacing_zyx: Sequence[float],
) -> tuple[slice, slice, slice]:
    """The part of the volume to read so that every enabled type filters like the whole image.

    Parameters
    ----------
    enabled, settings
        As for :func:`image_types`.
    bbox_zyx : sequence of 3 slice
        The ROI's bounding box in the volume (``scipy.ndimage.find_objects``
        style, explicit start and stop).
    shape_zyx : sequence of 3 int
        Shape of the volume.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm.

    Returns
    -------
    tuple of 3 slice
        The union over the enabled types of ``bbox_zyx`` grown by each type's
        margin and clipped to the volume; along an axis a wavelet filters, the
        whole axis where its margin does not fit.
    """
    shape_zyx = tuple(int(n) for n in shape_zyx)
    box = tuple(bbox_zyx)
    if len(box) != 3 or len(shape_zyx) != 3 or not all(
        isinstance(s, slice) and s.start is not None and s.stop is not None and 0 <= s.start < s.stop <= n
        for s, n in zip(box, shape_zyx)
    ):
        raise InputError("bbox_zyx", f"{bbox_zyx!r} is not 3 non-empty slices with explicit bounds inside "
                                     f"the volume of shape {shape_zyx}")
    low = [s.start for s in box]
    high = [s.stop for s in box]
    for image_type, custom in enabled.items():
        _check_type(image_type)
        in_force = {**settings, **(custom or {})}
        margin = required_margin_voxels(image_type, in_force, spacing_zyx)
        periodic = (
            wavelet.wavelet_axes(_fixed_axis(type_settings(image_type, in_force)))
            if image_type == "Wavelet" else ()
        )
        for axis, (s, m, n) in enumerate(zip(box, margin, shape_zyx)):
            lo, hi = s.start - m, s.stop + m
            if axis in periodic and (lo < 0 or hi > n):
                lo, hi = 0, n
            low[axis] = min(low[axis], max(lo, 0))
            high[axis] = max(high[axis], min(hi, n))
    return tuple(slice(lo, hi) for lo, hi in zip(low, high))
