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

The functions take the frozen, validated
:class:`~radflow.params.extraction.ExtractionParams` (``image_types(image,
mask, params)``); for direct use they also take PyRadiomics' ``imageType`` and
``setting`` mappings (``image_types(image, mask, {"LoG": {"sigma": [1.0]}},
{"binWidth": 5})``), which are validated once into the same typed objects
(:class:`~radflow.params.extraction.Settings`,
:class:`~radflow.params.ibsi_filters.FilterSettings`) before any image is
computed. The filters read these settings, with PyRadiomics' defaults
(``imageType`` entries override the global ``setting`` ones):

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
:class:`radflow.params.ibsi_filters.FilterSettings`; they are read from the type's
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
      Gabor: {sigma_mm: 5, wavelength_mm: 2, gamma: 1.5, rotation_invariant: true,
              theta_step_deg: 22.5}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow._geometry import SpacingError, spacing_mm
from radflow.errors import InputError, SettingsError
from radflow.filters import _checks, gradient, ibsi, intensity, lbp, log, wavelet
from radflow.filters.ibsi.boundary import check_spacing, check_volume
from radflow.filters.ibsi.gabor import gabor_kernel
from radflow.filters.ibsi.wavelets import wavelet_filters
from radflow.params.extraction import ExtractionParams, Settings, check_image_type
from radflow.params.ibsi_filters import FILTER_SETTINGS, FilterSettings, filter_settings

__all__ = [
    "WHOLE_AXIS",
    "filter_responses",
    "image_types",
    "read_box",
    "required_margin_voxels",
]

#: Margin of a filter that needs the whole axis (larger than any volume;
#: :func:`read_box` and the store's readers clip margins to the volume).
WHOLE_AXIS = 2**31 - 1

# (row axis, column axis) of the axial, coronal and sagittal planes of a (z, y, x) array.
_GABOR_PLANES = ((1, 2), (0, 2), (0, 1))

_INTENSITY = {
    "Square": ("square", intensity.square_image),
    "SquareRoot": ("squareroot", intensity.squareroot_image),
    "Logarithm": ("logarithm", intensity.logarithm_image),
    "Exponential": ("exponential", intensity.exponential_image),
}

_FILTER_FUNCTIONS = {
    "Mean": ibsi.mean_filter,
    "LoGIBSI": ibsi.laplacian_of_gaussian,
    "Laws": ibsi.laws_filter,
    "Gabor": ibsi.gabor_filter,
    "WaveletIBSI": ibsi.wavelet_filter,
    "Simoncelli": ibsi.simoncelli_filter,
}

Params = ExtractionParams | Mapping[str, Any]


def _plan(
    params: Params, settings: Mapping[str, Any] | None, types: Iterable[str] | None = None
) -> list[tuple[str, Settings, FilterSettings | None, Settings | dict[str, Any]]]:
    """Each enabled type, checked: ``(image type, settings in force, IBSI filter settings or
    None, the settings in force as given: Settings, or a PyRadiomics mapping)``."""
    if isinstance(params, ExtractionParams):
        if settings is not None:
            raise SettingsError("setting: ExtractionParams carry their own settings; pass None")
        plan = []
        for image_type in params.image_types:
            s = params.settings_for(image_type)
            own = params.filter_settings(image_type) if image_type in FILTER_SETTINGS else None
            plan.append((image_type, s, own, s))
    else:
        plan = _plan_from_mappings(params, settings)
    if types is not None:
        wanted = set(types)
        unknown = wanted - {step[0] for step in plan}
        if unknown:
            raise SettingsError(f"image type(s) {', '.join(sorted(unknown))} not enabled")
        plan = [step for step in plan if step[0] in wanted]
    for image_type, s, _, _ in plan:
        if image_type == "LoG":
            _require_sigma(s)
    return plan


def _require_sigma(s: Settings) -> None:
    if not s.sigma:
        raise SettingsError(
            "imageType 'LoG' setting 'sigma' is required (e.g. sigma: [1.0, 3.0], in mm)"
        )


def _plan_from_mappings(
    enabled, settings
) -> list[tuple[str, Settings, FilterSettings | None, dict]]:
    """The typed plan of PyRadiomics ``imageType`` and ``setting`` mappings."""
    if not isinstance(enabled, Mapping):
        raise SettingsError(
            f"imageType must be a mapping of image type to settings, got {type(enabled).__name__}"
        )
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise SettingsError(
            f"setting must be a mapping of key to value, got {type(settings).__name__}"
        )
    plan = []
    for image_type, custom in enabled.items():
        check_image_type(image_type)
        where = f"imageType {image_type!r} setting"
        if isinstance(custom, FilterSettings):
            if custom.image_type != image_type:
                raise SettingsError(
                    f"imageType {image_type!r}: given the settings of {custom.image_type!r}"
                )
            plan.append(
                (image_type, Settings.from_mapping(settings, where=where), custom, dict(settings))
            )
            continue
        if custom is not None and not isinstance(custom, Mapping):
            raise SettingsError(
                f"imageType {image_type!r}: custom settings must be a mapping, got {custom!r}"
            )
        in_force = {**settings, **(custom or {})}
        if image_type in FILTER_SETTINGS:
            own = filter_settings(image_type, custom)  # from the entry alone
            rest = {key: value for key, value in in_force.items() if key not in own._PARAMS}
            plan.append((image_type, Settings.from_mapping(rest, where=where), own, in_force))
        else:
            plan.append((image_type, Settings.from_mapping(in_force, where=where), None, in_force))
    return plan


def _fixed_axis(s: Settings) -> int | None:
    return s.force_2d_dimension if s.force_2d else None


def image_types(
    image: sitk.Image,
    mask: sitk.Image,
    params: Params,
    settings: Mapping[str, Any] | None = None,
    *,
    types: Iterable[str] | None = None,
    source_shape_zyx: Sequence[int] | None = None,
    source_max_abs: float | None = None,
) -> Iterator[tuple[str, sitk.Image, Settings]]:
    """Filtered images of every enabled image type, lazily, in PyRadiomics' order.

    All settings are checked before the first image is computed.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image after resampling/normalisation: the whole volume, or
        a crop of it from :func:`read_box`.
    mask : SimpleITK.Image
        Label map on the grid of `image` (LBP 3D computes ROI voxels only).
    params : ExtractionParams or mapping of str to mapping
        The extraction parameters; or the enabled image types in order
        (``{"Original": {}, "LoG": {"sigma": [1.0, 3.0]}}``) with their own
        settings, as PyRadiomics' ``imageType`` section; the IBSI filter
        types (module docstring) with their parameters or their
        :class:`~radflow.params.ibsi_filters.FilterSettings`.
    settings : mapping, optional
        With a mapping of image types only: the global PyRadiomics settings
        (``setting`` section).
    types : iterable of str, optional
        Compute only these enabled image types (in the order of `params`).
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
    settings : Settings or dict
        The settings in force for it (global ones updated with the type's own):
        :meth:`ExtractionParams.settings_for` with ExtractionParams, else the
        PyRadiomics mapping.
    """
    _checks.check_image(image)
    _checks.check_same_grid(image, mask)
    plan = _plan(params, settings, types)
    if (
        source_shape_zyx is not None
        and source_max_abs is None
        and any(step[0] in _INTENSITY for step in plan)
    ):
        raise InputError(
            "source_max_abs",
            "the image is a crop (source_shape_zyx given): pass the whole "
            "volume's max |intensity|, which square/squareroot/logarithm/"
            "exponential scale by",
        )
    for image_type, s, own, shown in plan:
        for name, filtered in _generate(
            image_type, s, own, image, mask, source_shape_zyx, source_max_abs
        ):
            yield name, filtered, shown if isinstance(shown, Settings) else dict(shown)


def _generate(image_type, s: Settings, own, image, mask, source_shape_zyx, source_max_abs):
    if image_type == "Original":
        yield "original", image
    elif image_type == "LoG":
        yield from log.log_images(image, sigmas_mm=s.sigma, source_shape_zyx=source_shape_zyx)
    elif image_type == "Wavelet":
        yield from wavelet.wavelet_images(
            image,
            wavelet=s.wavelet,
            start_level=s.start_level,
            level=s.level,
            fixed_axis=_fixed_axis(s),
        )
    elif image_type in _INTENSITY:
        name, transform = _INTENSITY[image_type]
        yield name, transform(image, max_abs=source_max_abs)
    elif image_type == "Gradient":
        yield "gradient", gradient.gradient_image(image, use_spacing=s.gradient_use_spacing)
    elif image_type == "LBP2D":
        if not s.force_2d:
            warnings.warn(
                "LBP2D: local binary patterns computed per slice while features are extracted "
                "in 3D (force2D false), as PyRadiomics allows; use with caution",
                stacklevel=3,
            )
        yield (
            "lbp-2D",
            lbp.lbp2d_image(
                image,
                radius=s.lbp_2d_radius,
                samples=s.lbp_2d_samples,
                method=s.lbp_2d_method,
                axis=s.force_2d_dimension,
            ),
        )
    elif image_type == "LBP3D":
        if s.force_2d:
            warnings.warn(
                "LBP3D: local binary patterns computed in 3D while features are extracted per "
                "slice (force2D true), as PyRadiomics allows; use with caution",
                stacklevel=3,
            )
        yield from lbp.lbp3d_images(
            image,
            mask,
            label=s.label,
            levels=s.lbp_3d_levels,
            icosphere_radius=s.lbp_3d_icosphere_radius,
            icosphere_subdivision=s.lbp_3d_icosphere_subdivision,
        )
    elif image_type in FILTER_SETTINGS:
        values = sitk.GetArrayFromImage(image)
        for name, response in filter_responses(values, own, spacing_zyx=image.GetSpacing()[::-1]):
            filtered = sitk.GetImageFromArray(response)
            filtered.CopyInformation(image)
            yield name, filtered
    else:  # pragma: no cover - check_image_type guards
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
    settings : radflow.params.ibsi_filters.FilterSettings
        The type's settings (:func:`radflow.params.ibsi_filters.filter_settings`).
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
    if not isinstance(settings, FilterSettings):
        raise SettingsError(
            f"settings must be a FilterSettings (radflow.params.ibsi_filters.filter_settings), "
            f"got {type(settings).__name__}"
        )
    values = check_volume(image)
    spacing = check_spacing(tuple(spacing_zyx))
    function = _FILTER_FUNCTIONS[settings.image_type]
    metric = settings.image_type in ("LoGIBSI", "Gabor")  # the filters with scales in mm
    for name, kwargs in settings.images():
        yield name, function(values, **kwargs, **({"spacing_zyx": spacing} if metric else {}))


def required_margin_voxels(
    image_type: str,
    settings: Settings | FilterSettings | Mapping[str, Any],
    spacing_zyx: Sequence[float],
) -> tuple[int, int, int]:
    """Voxels (z, y, x) to read beyond the ROI box for `image_type` to filter like the whole image.

    Parameters
    ----------
    image_type : str
        Image type (``"LoG"``, ``"Laws"`` ...).
    settings : Settings, FilterSettings or mapping
        Settings in force for it (:meth:`ExtractionParams.settings_for`), or for an IBSI
        filter type its :class:`FilterSettings`; or a mapping of PyRadiomics keys (an IBSI
        filter type's ``imageType`` entry).
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm.

    Notes
    -----
    Wavelet images, and IBSI filters with the periodic boundary condition,
    also need the whole axis wherever the margin leaves the volume (the
    transform wraps around the image); :func:`read_box` applies that. The
    Simoncelli filter needs every axis it filters whole (:data:`WHOLE_AXIS`).
    """
    check_image_type(image_type)
    spacing_zyx = _spacing(spacing_zyx)
    if image_type in FILTER_SETTINGS:
        if not isinstance(settings, FilterSettings):
            settings = filter_settings(image_type, settings)
        return _filter_margin_voxels(settings, spacing_zyx)
    if not isinstance(settings, Settings):
        [(_, settings, _, _)] = _plan_from_mappings({image_type: {}}, settings)
    s = settings
    if image_type == "LoG":
        _require_sigma(s)
        return log.log_margin_voxels(s.sigma, spacing_zyx)
    if image_type == "Wavelet":
        return wavelet.wavelet_margin_voxels(s.wavelet, s.start_level, s.level, _fixed_axis(s))
    if image_type == "Gradient":
        return (gradient.MARGIN_VOXELS,) * 3
    if image_type == "LBP2D":
        return lbp.lbp2d_margin_voxels(s.lbp_2d_radius, s.force_2d_dimension)
    if image_type == "LBP3D":
        return lbp.lbp3d_margin_voxels(s.lbp_3d_icosphere_radius)
    return (0, 0, 0)  # Original and the voxel-wise intensity transforms


def _spacing(spacing_zyx) -> tuple[float, float, float]:
    try:
        return spacing_mm(spacing_zyx)
    except SpacingError as error:
        if error.reason == "length":
            raise InputError(
                "spacing_zyx", f"expected 3 values (z, y, x), got {spacing_zyx!r}"
            ) from None
        raise SettingsError(
            f"spacing_zyx: {error.value!r} is not allowed; expected a finite number > 0"
        ) from None


def _filter_margin_voxels(settings: FilterSettings, spacing_zyx) -> tuple[int, int, int]:
    """Largest margin (z, y, x) over the response maps of an IBSI filter type."""
    margin = [0, 0, 0]
    for _, kwargs in settings.images():
        for axis, m in enumerate(_response_margin_voxels(settings.image_type, kwargs, spacing_zyx)):
            margin[axis] = max(margin[axis], m)
    return tuple(margin)


def _response_margin_voxels(
    image_type: str, kw: Mapping[str, Any], spacing_zyx
) -> tuple[int, int, int]:
    """Voxels beyond a voxel that one IBSI response at that voxel depends on, per axis (z, y, x)."""
    if image_type == "Mean":
        half = kw["support_voxels"] // 2
        return (half if kw["dimensions"] == 3 else 0, half, half)
    if image_type == "LoGIBSI":
        # The kernel's half-width in radflow.filters.ibsi.log: floor(truncate * sigma + 0.5),
        # sigma in voxels.
        half = [math.floor(kw["truncate"] * kw["sigma_mm"] / s + 0.5) for s in spacing_zyx]
        return (half[0] if kw["dimensions"] == 3 else 0, half[1], half[2])
    if image_type == "Laws":
        pieces = [kw["kernel"][i : i + 2] for i in range(0, len(kw["kernel"]), 2)]
        # Rotations move every 1D kernel to every axis; the energy map averages |response|
        # further out.
        half = max(ibsi.LAWS_KERNELS[p].size // 2 for p in pieces) + (kw["energy_distance"] or 0)
        return (half if len(pieces) == 3 else 0, half, half)
    if image_type == "Gabor":
        half = [0, 0, 0]
        for rows, cols in _GABOR_PLANES if kw["orthogonal_planes"] else _GABOR_PLANES[:1]:
            # The kernel's extent does not depend on its orientation.
            shape = gabor_kernel(
                spacing_yx=(spacing_zyx[rows], spacing_zyx[cols]),
                sigma_mm=kw["sigma_mm"],
                wavelength_mm=kw["wavelength_mm"],
                gamma=kw["gamma"],
                theta_rad=0.0,
            ).shape
            half[rows], half[cols] = max(half[rows], shape[0] // 2), max(half[cols], shape[1] // 2)
        return tuple(half)
    if image_type == "WaveletIBSI":
        # Levels 1..j filter one after the other (à trous): their half-widths add up.
        half = sum(
            wavelet_filters(kw["wavelet"], j)["L"].size // 2 for j in range(1, kw["level"] + 1)
        )
        return (half if len(kw["decomposition"]) == 3 else 0, half, half)
    if image_type == "Simoncelli":
        return (WHOLE_AXIS if kw["dimensions"] == 3 else 0, WHOLE_AXIS, WHOLE_AXIS)
    raise AssertionError(image_type)  # pragma: no cover - FILTER_SETTINGS lists the types above


def read_box(
    params: Params,
    settings: Mapping[str, Any] | None,
    bbox_zyx: Sequence[slice],
    shape_zyx: Sequence[int],
    spacing_zyx: Sequence[float],
    *,
    types: Iterable[str] | None = None,
) -> tuple[slice, slice, slice]:
    """The part of the volume to read so that every enabled type filters like the whole image.

    Parameters
    ----------
    params, settings, types
        As for :func:`image_types`: ``read_box(params, None, ...)`` with
        :class:`~radflow.params.extraction.ExtractionParams`.
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
    if (
        len(box) != 3
        or len(shape_zyx) != 3
        or not all(
            isinstance(s, slice)
            and s.start is not None
            and s.stop is not None
            and 0 <= s.start < s.stop <= n
            for s, n in zip(box, shape_zyx)
        )
    ):
        raise InputError(
            "bbox_zyx",
            f"{bbox_zyx!r} is not 3 non-empty slices with explicit bounds inside "
            f"the volume of shape {shape_zyx}",
        )
    low = [s.start for s in box]
    high = [s.stop for s in box]
    for image_type, in_force, own, _ in _plan(params, settings, types):
        if own is not None:
            margin = _filter_margin_voxels(own, _spacing(spacing_zyx))
            periodic = [axis for axis in range(3) if margin[axis] and own.boundary == "periodic"]
        else:
            margin = required_margin_voxels(image_type, in_force, spacing_zyx)
            periodic = (
                wavelet.wavelet_axes(_fixed_axis(in_force)) if image_type == "Wavelet" else ()
            )
        for axis, (s, m, n) in enumerate(zip(box, margin, shape_zyx)):
            lo, hi = s.start - m, s.stop + m
            if axis in periodic and (lo < 0 or hi > n):
                lo, hi = 0, n
            low[axis] = min(low[axis], max(lo, 0))
            high[axis] = max(high[axis], min(hi, n))
    return tuple(slice(lo, hi) for lo, hi in zip(low, high))
