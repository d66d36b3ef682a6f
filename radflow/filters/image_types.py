"""Image types: which filtered images to compute, and the crop each needs.

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

radflow image types: the IBSI 2 filters
---------------------------------------
Six more types apply the IBSI 2 convolutional filters of
:mod:`radflow.filters.ibsi` (checked against the IBSI 2 phase-1 response maps
and phase-2 values, ``docs/ibsi2_filters.md``). PyRadiomics does not know
them; radflow computes every feature class on their response maps as on
PyRadiomics' filtered images. Their parameters are the keyword arguments of
the filter functions (Gabor angles in degrees), typed and validated by
:class:`radflow.params.settings.FilterSettings`; they are read from the type's
``imageType`` entry only (no global ``setting`` reaches them), which may also
override the settings applied after filtering (``binWidth``, ``binCount``,
``distances``...): response maps are not in HU, so set their bin width.
Parameters marked *sweep* take one value or a list, and the type yields one
response map per combination (the later parameter varying fastest).
``boundary`` is the IBSI boundary condition, ``"constant"`` (zero padding),
``"nearest"``, ``"periodic"`` or ``"mirror"`` (default; Simoncelli:
``"periodic"``). An unknown key, a wrong value or a key without effect (a
pooling without ``rotation_invariant``) is a SettingsError naming it.

Each image name (the prefix of its feature names) is built from the
parameters, deterministically, from ASCII letters, digits and ``-`` only (no
``_``, which separates the prefix from the class, and no ``.``, which
separates study columns); numbers are written in their shortest form with
``p`` for the decimal point (1.5 -> ``1p5``); the boundary condition is
appended (``-constant``) only when it is not the default.

``Mean``
    Mean over an :math:`M^d` neighbourhood. ``support_voxels`` (odd, sweep,
    required), ``dimensions`` (3; 2 = each (y, x) slice), ``boundary``.
    Name ``mean-m5-2D``. Margin :math:`(M-1)/2` voxels per filtered axis.
``LoGIBSI``
    The IBSI Laplacian of Gaussian: kernel sampled in voxels, not
    scale-normalised, truncated (unlike PyRadiomics' ``LoG``).
    ``sigma_mm`` (mm, sweep, required), ``truncate`` (4 sigma),
    ``dimensions`` (3), ``boundary``. Name ``logibsi-s1p5mm-t4-3D``.
    Margin: the kernel's half-width, ``floor(truncate sigma / spacing + 0.5)``.
``Laws``
    Laws kernel response or energy map. ``kernel`` (``"L5E5E5"``: 1D
    kernels in axis order x, y[, z]; two for 2D per slice; sweep, required),
    ``energy_distance`` (voxels; null: the response map itself),
    ``rotation_invariant`` (false; 24 rotations in 3D, 4 in 2D), ``pooling``
    (``"max"``; ``"average"``), ``boundary``. Name
    ``laws-L5E5E5-energy7-rinv-max`` (``-energy``, ``-rinv-max``/``-rinv-avg``
    only when set). Margin: half the longest 1D kernel plus the energy distance.
``Gabor``
    In-plane Gabor filter, modulus of the complex response. ``sigma_mm``,
    ``wavelength_mm`` (mm, sweep, required), ``gamma`` (aspect ratio, sweep,
    1), then either ``theta_deg`` (one orientation, degrees in [0, 360), 0)
    or ``rotation_invariant: true`` with ``theta_step_deg`` (required) and
    ``pooling`` (``"average"``; ``"max"``); ``response`` (``"modulus"``;
    ``"real"``), ``orthogonal_planes`` (false: axial slices; true: average of
    the axial, coronal and sagittal responses, IBSI 3D), ``boundary``. Name
    ``gabor-s5mm-g1p5-l2mm-rinv22p5deg-avg-2D`` or
    ``gabor-s5mm-g1p5-l2mm-th60deg-3D`` (``-real`` for the real part).
    Margin: the kernel's half-width along each axis of the filtered planes.
``WaveletIBSI``
    Undecimated separable wavelet (à trous). ``wavelet`` (PyWavelets
    discrete name, required), ``decomposition`` (``"LLH"``: ``L``/``H`` per
    axis in order x, y[, z]; two letters for 2D per slice; sweep, required),
    ``level`` (sweep, 1), ``rotation_invariant`` (false), ``pooling``
    (``"average"``; ``"max"``), ``boundary``. Name
    ``waveletibsi-db3-LLH-level1-rinv-avg``. Margin: the half-widths of the
    cascade's dilated filters, summed over the levels.
``Simoncelli``
    Non-separable isotropic Simoncelli wavelet, by FFT. ``level`` (sweep, 1),
    ``dimensions`` (3), ``boundary`` (``"periodic"``), ``frequency_grid``
    (``"ibsi"``; ``"dft"``). Name ``simoncelli-level1-3D`` (``-dft``). Its
    kernel has no finite support: it needs the whole volume (3D) or the whole
    (y, x) plane (2D), :data:`WHOLE_AXIS`.

With the periodic boundary condition a filter wraps around the volume: along
an axis it filters, :func:`read_box` then reads the whole axis wherever the
margin leaves the volume. Cropped that way, the values inside the ROI are
those of the whole image up to floating-point rounding (the running sums of
the mean filters and the FFTs of the Gabor filter differ in the last bits).
Example parameter file entry::

    imageType:
      Laws: {kernel: [L5E5E5, E5E5E5], energy_distance: 7, rotation_invariant: true, binWidth: 5}
      Gabor: {sigma_mm: 5, wavelength_mm: 2, gamma: 1.5, rotation_invariant: true, theta_step_deg: 22.5}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.filters import _checks, gradient, intensity, lbp, log, wavelet
from radflow.params.names import IBSI_FILTER_TYPES, IMAGE_TYPES
from radflow.params.settings import (
    FILTER_SETTINGS,
    FilterSettings,
    filter_settings,
)

__all__ = [
    "WHOLE_AXIS",
    "filter_responses",
    "image_types",
    "read_box",
    "required_margin_voxels",
    "type_settings",
]

#: Margin of a filter that needs the whole axis (larger than any volume;
#: :func:`read_box` and the store's readers clip margins to the volume).
WHOLE_AXIS = 2**31 - 1

# (row axis, column axis) of the axial, coronal and sagittal planes of a (z, y, x) array.
_GABOR_PLANES = ((1, 2), (0, 2), (0, 1))

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
    if image_type not in IMAGE_TYPES and image_type not in IBSI_FILTER_TYPES:
        raise SettingsError(f"imageType {image_type!r} is not known; known: "
                            f"{', '.join(IMAGE_TYPES + IBSI_FILTER_TYPES)}")


def type_settings(image_type: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The filter parameters `image_type` reads from `settings`, checked, defaults filled in.

    `settings` are those in force for the type (global ones updated with the
    ``imageType`` entry's), keyed as in PyRadiomics. An IBSI filter type
    reads its own keys only (those of its entry: pass the entry), and
    returns every parameter that applies. Raises SettingsError naming the
    type and the key.
    """
    _check_type(image_type)
    if not isinstance(settings, Mapping):
        raise SettingsError(f"imageType {image_type!r}: settings must be a mapping, got {type(settings).__name__}")
    if image_type in FILTER_SETTINGS:
        return dict(_own_filter_settings(image_type, settings).to_mapping())
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


def _own_filter_settings(image_type: str, settings: Mapping[str, Any]) -> FilterSettings:
    """An IBSI filter type's settings from the keys of `settings` that are its own."""
    cls = FILTER_SETTINGS[image_type]
    own = {key: value for key, value in settings.items() if key in cls._PARAMS}
    return cls.from_mapping(own, where=f"imageType {image_type!r} setting")


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
        with their own settings, as PyRadiomics' ``imageType`` section; the
        IBSI filter types (module docstring) with their parameters.
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
        Image name (PyRadiomics': ``"original"``, ``"wavelet2-HHL"`` ...;
        IBSI filters': ``"laws-L5E5E5-energy7-rinv-max"`` ...), the prefix of
        its feature names.
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
        if image_type in FILTER_SETTINGS:
            params = filter_settings(image_type, custom)  # from the entry alone
        else:
            params = type_settings(image_type, in_force)
        plan.append((image_type, params, in_force))
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
    elif image_type in FILTER_SETTINGS:
        values = sitk.GetArrayFromImage(image)
        for name, response in filter_responses(values, params, spacing_zyx=image.GetSpacing()[::-1]):
            filtered = sitk.GetImageFromArray(response)
            filtered.CopyInformation(image)
            yield name, filtered
    else:  # pragma: no cover - _check_type guards
        raise AssertionError(image_type)


def filter_responses(
    image, settings: FilterSettings, *, spacing_zyx: Sequence[float]
) -> Iterator[tuple[str, np.ndarray]]:
    """Response maps of an IBSI filter image type, lazily, in the order of ``settings.images()``.

    Parameters
    ----------
    image : array_like, shape (z, y, x)
        Intensities (HU, SUV, ...): the whole volume or a box of it read
        with :func:`read_box`.
    settings : radflow.params.settings.FilterSettings
        The type's settings (:func:`radflow.params.settings.filter_settings`).
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm.

    Yields
    ------
    name : str
        Image name, the prefix of its feature names (``"laws-L5E5-energy7-rinv-max"``).
    response : numpy.ndarray of float64, shape (z, y, x)

    Raises
    ------
    InputError
        `image` is not a finite real 3D array, or `spacing_zyx` is invalid.
    SettingsError
        `settings` is not a FilterSettings.
    """
    from radflow.filters import ibsi
    from radflow.filters.ibsi.boundary import check_spacing, check_volume

    if not isinstance(settings, FilterSettings):
        raise SettingsError(f"settings must be a FilterSettings (radflow.params.settings.filter_settings), "
                            f"got {type(settings).__name__}")
    values = check_volume(image)
    spacing = check_spacing(tuple(spacing_zyx))
    function = {
        "Mean": ibsi.mean_filter, "LoGIBSI": ibsi.laplacian_of_gaussian, "Laws": ibsi.laws_filter,
        "Gabor": ibsi.gabor_filter, "WaveletIBSI": ibsi.wavelet_filter, "Simoncelli": ibsi.simoncelli_filter,
    }[settings.image_type]  # fmt: skip
    metric = settings.image_type in ("LoGIBSI", "Gabor")  # the filters with scales in mm
    for name, kwargs in settings.images():
        yield name, function(values, **kwargs, **({"spacing_zyx": spacing} if metric else {}))


def required_margin_voxels(
    image_type: str, settings: Mapping[str, Any], spacing_zyx: Sequence[float]
) -> tuple[int, int, int]:
    """Voxels (z, y, x) to read beyond the ROI box for `image_type` to filter like the whole image.

    Parameters
    ----------
    image_type : str
        Image type (``"LoG"``, ``"Laws"`` ...).
    settings : mapping
        Settings in force for it, PyRadiomics keys.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm.

    Notes
    -----
    Wavelet images, and IBSI filters with the periodic boundary condition,
    also need the whole axis wherever the margin leaves the volume (the
    transform wraps around the image); :func:`read_box` applies that. An IBSI
    filter type reads its own keys only (pass its ``imageType`` entry); the
    Simoncelli filter needs every axis it filters whole (:data:`WHOLE_AXIS`).
    """
    params = type_settings(image_type, settings)
    spacing_zyx = _spacing(spacing_zyx)
    if image_type in FILTER_SETTINGS:
        return _filter_margin_voxels(FILTER_SETTINGS[image_type](**params), spacing_zyx)
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


def _spacing(spacing_zyx) -> tuple[float, float, float]:
    spacing_zyx = tuple(_checks.positive(float(s), "spacing_zyx") for s in spacing_zyx)
    if len(spacing_zyx) != 3:
        raise InputError("spacing_zyx", f"expected 3 values (z, y, x), got {len(spacing_zyx)}")
    return spacing_zyx


def _filter_margin_voxels(settings: FilterSettings, spacing_zyx) -> tuple[int, int, int]:
    """Largest margin (z, y, x) over the response maps of an IBSI filter type."""
    margin = [0, 0, 0]
    for _, kwargs in settings.images():
        for axis, m in enumerate(_response_margin_voxels(settings.image_type, kwargs, spacing_zyx)):
            margin[axis] = max(margin[axis], m)
    return tuple(margin)


def _response_margin_voxels(image_type: str, kw: Mapping[str, Any], spacing_zyx) -> tuple[int, int, int]:
    """Voxels beyond a voxel that one IBSI response at that voxel depends on, per axis (z, y, x)."""
    from radflow.filters.ibsi import LAWS_KERNELS
    from radflow.filters.ibsi.gabor import gabor_kernel
    from radflow.filters.ibsi.wavelets import wavelet_filters

    if image_type == "Mean":
        half = kw["support_voxels"] // 2
        return (half if kw["dimensions"] == 3 else 0, half, half)
    if image_type == "LoGIBSI":
        # The kernel's half-width in radflow.filters.ibsi.log: floor(truncate * sigma + 0.5), sigma in voxels.
        half = [math.floor(kw["truncate"] * kw["sigma_mm"] / s + 0.5) for s in spacing_zyx]
        return (half[0] if kw["dimensions"] == 3 else 0, half[1], half[2])
    if image_type == "Laws":
        pieces = [kw["kernel"][i : i + 2] for i in range(0, len(kw["kernel"]), 2)]
        # Rotations move every 1D kernel to every axis; the energy map averages |response| further out.
        half = max(LAWS_KERNELS[p].size // 2 for p in pieces) + (kw["energy_distance"] or 0)
        return (half if len(pieces) == 3 else 0, half, half)
    if image_type == "Gabor":
        half = [0, 0, 0]
        for rows, cols in _GABOR_PLANES if kw["orthogonal_planes"] else _GABOR_PLANES[:1]:
            # The kernel's extent does not depend on its orientation.
            shape = gabor_kernel(spacing_yx=(spacing_zyx[rows], spacing_zyx[cols]), sigma_mm=kw["sigma_mm"],
                                 wavelength_mm=kw["wavelength_mm"], gamma=kw["gamma"], theta_rad=0.0).shape
            half[rows], half[cols] = max(half[rows], shape[0] // 2), max(half[cols], shape[1] // 2)
        return tuple(half)
    if image_type == "WaveletIBSI":
        # Levels 1..j filter one after the other (à trous): their half-widths add up.
        half = sum(wavelet_filters(kw["wavelet"], j)["L"].size // 2 for j in range(1, kw["level"] + 1))
        return (half if len(kw["decomposition"]) == 3 else 0, half, half)
    if image_type == "Simoncelli":
        return (WHOLE_AXIS if kw["dimensions"] == 3 else 0, WHOLE_AXIS, WHOLE_AXIS)
    raise AssertionError(image_type)  # pragma: no cover - FILTER_SETTINGS lists the types above


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
        if image_type in FILTER_SETTINGS:
            filter_params = filter_settings(image_type, custom)
            margin = _filter_margin_voxels(filter_params, _spacing(spacing_zyx))
            periodic = [axis for axis in range(3) if margin[axis] and filter_params.boundary == "periodic"]
        else:
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
