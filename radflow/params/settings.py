"""Typed, validated extraction settings in PyRadiomics mode.

:class:`ExtractionParams` holds what a PyRadiomics parameter file holds: the
enabled image types with their custom settings, the enabled feature classes,
the global :class:`Settings` and the :class:`VoxelSettings`. Everything is
checked when built: an unknown key, a value of the wrong type or outside its
range raises :class:`~radflow.errors.SettingsError` naming the key, the value
and what is allowed. Nothing is silently ignored.

Keys are PyRadiomics' own (``binWidth``); attributes are snake_case
(``bin_width``). :data:`SETTING_KEYS` and :data:`VOXEL_SETTING_KEYS` map one to
the other. Types, ranges and defaults are those of PyRadiomics 3.0.1
(``radiomics/schemas/paramSchema.yaml`` and the ``kwargs.get`` defaults of
``featureextractor.py``, ``imageoperations.py`` and the feature classes),
with these deliberate differences, each of which turns a late crash or a
silent no-op of PyRadiomics into an early error:

- ``null`` is accepted only where it means "disabled" (``binCount``,
  ``resampledPixelSpacing``, ``interpolator``, ``removeOutliers``,
  ``resegmentRange``, ``minimumROISize``, ``geometryTolerance``,
  ``weightingNorm``; ``binWidth`` when ``binCount`` is set);
- list lengths are checked (``resegmentRange`` 1 or 2 values,
  ``resampledPixelSpacing`` 2 or 3, ``distances`` at least one);
- ``wavelet`` must be a discrete wavelet (continuous ones pass PyRadiomics'
  check but fail in its filter);
- per-image-type settings that PyRadiomics applies before any filter
  (resampling, normalisation, re-segmentation, mask checks, label) are
  refused inside ``imageType``, where PyRadiomics ignores them.

Besides PyRadiomics' image types, radflow has its own: the IBSI 2
convolutional filters (:data:`IBSI_FILTER_TYPES`: ``Mean``, ``LoGIBSI``,
``Laws``, ``Gabor``, ``WaveletIBSI``, ``Simoncelli``). Their parameters are
typed :class:`FilterSettings` (one class per type, keys as the keyword
arguments of the :mod:`radflow.filters.ibsi` functions) given in the type's
``imageType`` entry only, never in the ``setting`` section; the entry may
also override the settings that apply after filtering (``binWidth``,
``distances``...). The same objects are the ``filter`` section of an IBSI
configuration (:mod:`radflow.params.ibsi`). Keys, defaults and the
feature-name prefixes are documented in :mod:`radflow.filters.image_types`.

Integer interpolator codes 1-10 mean what PyRadiomics documents
(SimpleITK 1.x numbering: 1 nearest neighbour, 2 linear, 3 B-spline, ...);
they are stored as the name (``"sitkBSpline"``), since SimpleITK 2 renumbered
its B-spline constant.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from numbers import Integral, Real
from typing import Any, ClassVar

from radflow.errors import SettingsError
from radflow.params.names import (
    BOUNDARIES,
    FEATURE_CLASSES,
    FEATURE_NAMES,
    IBSI_FILTER_TYPES,
    IMAGE_TYPES,
    INTERPOLATORS,
    LAWS_KERNEL_NAMES,
)

__all__ = [
    "FILTER_SETTINGS",
    "SETTING_KEYS",
    "VOXEL_SETTING_KEYS",
    "ExtractionParams",
    "FilterSettings",
    "GaborFilter",
    "LawsFilter",
    "LoGIBSIFilter",
    "MeanFilter",
    "Settings",
    "SimoncelliFilter",
    "VoxelSettings",
    "WaveletIBSIFilter",
    "all_feature_classes",
    "filter_settings",
]

_INTERPOLATOR_BY_CODE = {code: name for name, code in INTERPOLATORS.items()}

_WEIGHTING_NORMS = ("manhattan", "euclidean", "infinity", "no_weighting")


@dataclass(frozen=True)
class _Rule:
    """How one PyRadiomics key is typed and checked."""

    key: str
    kind: str  # int, float, bool, str, int_seq, float_seq, interpolator, wavelet
    nullable: bool = False
    low: float | None = None
    low_exclusive: bool = False
    high: float | None = None
    high_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    lengths: tuple[int, ...] | None = None  # allowed sequence lengths, None: any
    min_length: int = 0
    finite: bool = True


_RULES = {
    # mask and ROI checks
    "label": _Rule("label", "int", low=0, low_exclusive=True),
    "label_channel": _Rule("label_channel", "int", low=0),
    "minimum_roi_dimensions": _Rule("minimumROIDimensions", "int", low=1, high=3),
    "minimum_roi_size": _Rule("minimumROISize", "int", nullable=True, low=0, low_exclusive=True),
    "geometry_tolerance": _Rule("geometryTolerance", "float", nullable=True, low=0, low_exclusive=True),
    "correct_mask": _Rule("correctMask", "bool"),
    "additional_info": _Rule("additionalInfo", "bool"),
    # discretisation
    "bin_width": _Rule("binWidth", "float", nullable=True, low=0, low_exclusive=True),
    "bin_count": _Rule("binCount", "int", nullable=True, low=0, low_exclusive=True),
    # normalisation, resampling, cropping
    "normalize": _Rule("normalize", "bool"),
    "normalize_scale": _Rule("normalizeScale", "float", low=0, low_exclusive=True),
    "remove_outliers": _Rule("removeOutliers", "float", nullable=True, low=0, low_exclusive=True),
    "resampled_spacing_xyz": _Rule("resampledPixelSpacing", "float_seq", nullable=True, low=0, lengths=(2, 3)),
    "interpolator": _Rule("interpolator", "interpolator", nullable=True),
    "pad_distance": _Rule("padDistance", "int", low=0),
    "pre_crop": _Rule("preCrop", "bool"),
    # re-segmentation
    "resegment_range": _Rule("resegmentRange", "float_seq", nullable=True, lengths=(1, 2)),
    "resegment_mode": _Rule("resegmentMode", "str", choices=("absolute", "relative", "sigma")),
    "resegment_shape": _Rule("resegmentShape", "bool"),
    # texture
    "distances": _Rule("distances", "int_seq", low=0, low_exclusive=True, min_length=1),
    "force_2d": _Rule("force2D", "bool"),
    "force_2d_dimension": _Rule("force2Ddimension", "int", low=0, high=2),
    "symmetrical_glcm": _Rule("symmetricalGLCM", "bool"),
    "weighting_norm": _Rule("weightingNorm", "str", nullable=True, choices=_WEIGHTING_NORMS),
    "gldm_a": _Rule("gldm_a", "int", low=0),
    "voxel_array_shift": _Rule("voxelArrayShift", "int"),
    # image types (filters)
    "sigma": _Rule("sigma", "float_seq", low=0, low_exclusive=True),
    "start_level": _Rule("start_level", "int", low=0),
    "level": _Rule("level", "int", low=0, low_exclusive=True),
    "wavelet": _Rule("wavelet", "wavelet"),
    "gradient_use_spacing": _Rule("gradientUseSpacing", "bool"),
    "lbp_2d_radius": _Rule("lbp2DRadius", "float", low=0, low_exclusive=True),
    "lbp_2d_samples": _Rule("lbp2DSamples", "int", low=1),
    "lbp_2d_method": _Rule("lbp2DMethod", "str", choices=("default", "ror", "uniform", "var")),
    "lbp_3d_levels": _Rule("lbp3DLevels", "int", low=1),
    "lbp_3d_icosphere_radius": _Rule("lbp3DIcosphereRadius", "float", low=0, low_exclusive=True),
    "lbp_3d_icosphere_subdivision": _Rule("lbp3DIcosphereSubdivision", "int", low=0),
}

_VOXEL_RULES = {
    "kernel_radius": _Rule("kernelRadius", "int", low=0, low_exclusive=True),
    "masked_kernel": _Rule("maskedKernel", "bool"),
    "init_value": _Rule("initValue", "float", finite=False),
    "voxel_batch": _Rule("voxelBatch", "int", nullable=True, low=0, low_exclusive=True),
}

#: PyRadiomics ``setting`` key -> :class:`Settings` attribute.
SETTING_KEYS = {rule.key: attr for attr, rule in _RULES.items()}
#: PyRadiomics ``voxelSetting`` key -> :class:`VoxelSettings` attribute.
VOXEL_SETTING_KEYS = {rule.key: attr for attr, rule in _VOXEL_RULES.items()}

# Used by PyRadiomics before any filter runs, so an imageType entry cannot change them.
_GLOBAL_ONLY = frozenset({
    "label", "label_channel", "minimumROIDimensions", "minimumROISize", "geometryTolerance",
    "correctMask", "additionalInfo", "normalize", "normalizeScale", "removeOutliers",
    "resampledPixelSpacing", "interpolator", "padDistance", "preCrop",
    "resegmentRange", "resegmentMode", "resegmentShape",
})  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Every PyRadiomics ``setting``, typed, with PyRadiomics' defaults.

    Build it from a PyRadiomics mapping with :meth:`from_mapping`, or with
    attributes directly; both are validated. Attribute (key in the file):

    Attributes
    ----------
    label : int (``label``)
        Label value of the ROI in the mask. Default 1.
    label_channel : int (``label_channel``)
        Component of a vector-valued mask holding the ROI. Default 0.
    minimum_roi_dimensions : {1, 2, 3} (``minimumROIDimensions``)
        Number of axes along which the ROI must span more than one voxel. Default 2.
    minimum_roi_size : int or None (``minimumROISize``)
        The ROI must hold *more* than this many voxels; None skips the check.
    geometry_tolerance : float or None (``geometryTolerance``)
        Tolerance of the image/mask geometry comparison (relative to the
        first spacing for origin and spacing, absolute for direction cosines);
        None keeps SimpleITK's 1e-6.
    correct_mask : bool (``correctMask``)
        Resample a mask whose geometry differs onto the image grid. Default False.
    additional_info : bool (``additionalInfo``)
        Emit diagnostic columns. Default True.
    bin_width : float or None (``binWidth``)
        Fixed bin width in image units (HU, SUV). Default 25.
    bin_count : int or None (``binCount``)
        Fixed number of bins; takes precedence over `bin_width`. Default None.
    normalize : bool (``normalize``)
        z-score the whole image before anything else. Default False.
    normalize_scale : float (``normalizeScale``)
        Factor applied after normalisation. Default 1.
    remove_outliers : float or None (``removeOutliers``)
        Clip normalised values to +/- this many standard deviations.
    resampled_spacing_xyz : tuple of float or None (``resampledPixelSpacing``)
        Output spacing in mm, (x, y, z) order as in the file; 0 keeps the
        input spacing along that axis. None: no resampling.
    interpolator : str or None (``interpolator``)
        SimpleITK interpolator name for the image. Default ``"sitkBSpline"``.
        None disables resampling.
    pad_distance : int (``padDistance``)
        Voxels of padding kept around the ROI when resampling/pre-cropping. Default 5.
    pre_crop : bool (``preCrop``)
        Crop to the padded ROI box before filtering. Default False.
    resegment_range : tuple of float or None (``resegmentRange``)
        One (lower) or two (lower, upper) thresholds. None: no re-segmentation.
    resegment_mode : {"absolute", "relative", "sigma"} (``resegmentMode``)
        How `resegment_range` is read. Default ``"absolute"``.
    resegment_shape : bool (``resegmentShape``)
        Use the re-segmented mask for shape features too. Default False.
    distances : tuple of int (``distances``)
        Neighbour distances (infinity norm, voxels) for GLCM, GLDM, NGTDM. Default (1,).
    force_2d : bool (``force2D``)
        Texture matrices per 2D slice. Default False.
    force_2d_dimension : {0, 1, 2} (``force2Ddimension``)
        Axis of the (z, y, x) array held fixed when `force_2d`: 0 = axial. Default 0.
    symmetrical_glcm : bool (``symmetricalGLCM``)
        Count each GLCM pair in both directions. Default True.
    weighting_norm : str or None (``weightingNorm``)
        Distance weighting of GLCM/GLRLM angles: ``"manhattan"``,
        ``"euclidean"``, ``"infinity"``, ``"no_weighting"`` or None (no weighting).
    gldm_a : int (``gldm_a``)
        GLDM dependence cut-off alpha. Default 0.
    voxel_array_shift : int (``voxelArrayShift``)
        Shift added before first-order Energy/RMS (image units). Default 0.
    sigma : tuple of float (``sigma``)
        LoG sigmas in mm. Default () (no LoG image).
    start_level, level : int (``start_level``, ``level``)
        Wavelet levels: first (0-based) and number. Defaults 0 and 1.
    wavelet : str (``wavelet``)
        PyWavelets discrete wavelet name. Default ``"coif1"``.
    gradient_use_spacing : bool (``gradientUseSpacing``)
        Gradient in image units per mm rather than per voxel. Default True.
    lbp_2d_radius : float (``lbp2DRadius``)
        LBP 2D sampling radius, voxels. Default 1.
    lbp_2d_samples : int (``lbp2DSamples``)
        LBP 2D sampling points. Default 8.
    lbp_2d_method : str (``lbp2DMethod``)
        ``"default"``, ``"ror"``, ``"uniform"`` (default) or ``"var"``.
    lbp_3d_levels : int (``lbp3DLevels``)
        LBP 3D spherical-harmonic levels. Default 2.
    lbp_3d_icosphere_radius : float (``lbp3DIcosphereRadius``)
        LBP 3D sampling radius, voxels. Default 1.
    lbp_3d_icosphere_subdivision : int (``lbp3DIcosphereSubdivision``)
        LBP 3D icosphere subdivisions. Default 1.
    """

    label: int = 1
    label_channel: int = 0
    minimum_roi_dimensions: int = 2
    minimum_roi_size: int | None = None
    geometry_tolerance: float | None = None
    correct_mask: bool = False
    additional_info: bool = True
    bin_width: float | None = 25.0
    bin_count: int | None = None
    normalize: bool = False
    normalize_scale: float = 1.0
    remove_outliers: float | None = None
    resampled_spacing_xyz: tuple[float, ...] | None = None
    interpolator: str | None = "sitkBSpline"
    pad_distance: int = 5
    pre_crop: bool = False
    resegment_range: tuple[float, ...] | None = None
    resegment_mode: str = "absolute"
    resegment_shape: bool = False
    distances: tuple[int, ...] = (1,)
    force_2d: bool = False
    force_2d_dimension: int = 0
    symmetrical_glcm: bool = True
    weighting_norm: str | None = None
    gldm_a: int = 0
    voxel_array_shift: int = 0
    sigma: tuple[float, ...] = ()
    start_level: int = 0
    level: int = 1
    wavelet: str = "coif1"
    gradient_use_spacing: bool = True
    lbp_2d_radius: float = 1.0
    lbp_2d_samples: int = 8
    lbp_2d_method: str = "uniform"
    lbp_3d_levels: int = 2
    lbp_3d_icosphere_radius: float = 1.0
    lbp_3d_icosphere_subdivision: int = 1

    def __post_init__(self):
        _normalise_fields(self, _RULES, "setting")
        if self.bin_width is None and self.bin_count is None:
            raise SettingsError(
                "setting 'binWidth': null is allowed only with binCount set; "
                "omit binWidth for the default 25, or set binCount"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, where: str = "setting") -> Settings:
        """Settings from a PyRadiomics ``setting`` mapping; absent keys keep their default.

        `where` names the section in error messages.
        """
        return cls(**_attributes(mapping, _RULES, SETTING_KEYS, where))

    @property
    def resampling(self) -> bool:
        """True when PyRadiomics resamples: spacing and interpolator both set."""
        return self.resampled_spacing_xyz is not None and self.interpolator is not None

    def to_mapping(self) -> dict[str, Any]:
        """``{PyRadiomics key: value}`` for every setting, JSON-serialisable."""
        return _to_mapping(self, _RULES)


@dataclass(frozen=True)
class VoxelSettings:
    """PyRadiomics ``voxelSetting`` (voxel-based extraction), with its defaults.

    Attributes
    ----------
    kernel_radius : int (``kernelRadius``)
        Half-size of the cubic neighbourhood, voxels. Default 1.
    masked_kernel : bool (``maskedKernel``)
        Use only ROI voxels inside each kernel. Default True.
    init_value : float (``initValue``)
        Value of voxels outside the ROI in the feature maps (may be NaN). Default 0.
    voxel_batch : int or None (``voxelBatch``)
        Voxels computed per batch; None: all at once (PyRadiomics' -1).
    """

    kernel_radius: int = 1
    masked_kernel: bool = True
    init_value: float = 0.0
    voxel_batch: int | None = None

    def __post_init__(self):
        _normalise_fields(self, _VOXEL_RULES, "voxelSetting")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> VoxelSettings:
        """VoxelSettings from a PyRadiomics ``voxelSetting`` mapping."""
        return cls(**_attributes(mapping, _VOXEL_RULES, VOXEL_SETTING_KEYS, "voxelSetting"))

    def to_mapping(self) -> dict[str, Any]:
        """``{PyRadiomics key: value}``, JSON-serialisable (NaN as the string "nan")."""
        return _to_mapping(self, _VOXEL_RULES)


# --- radflow image types: the IBSI 2 filters ---------------------------------

# Keys of PyRadiomics' own filters: meaningless in an IBSI filter's entry.
_PYRADIOMICS_FILTER_KEYS = frozenset({
    "sigma", "start_level", "level", "wavelet", "gradientUseSpacing", "lbp2DRadius", "lbp2DSamples",
    "lbp2DMethod", "lbp3DLevels", "lbp3DIcosphereRadius", "lbp3DIcosphereSubdivision",
})  # fmt: skip


@dataclass(frozen=True)
class _Param:
    """One parameter of an IBSI filter image type."""

    rule: _Rule
    sweep: bool = False  # a list of values gives one response map per value
    only_if: tuple[str, bool] | None = None  # applies only while this boolean parameter has this value
    required: bool = False  # no default (when it applies)


def _token(value: float) -> str:
    """A number as it appears in an image-type name: shortest digits, positional, 'p' for the point."""
    text = format(Decimal(repr(float(value))).normalize(), "f")
    return text.replace(".", "p")


@dataclass(frozen=True)
class FilterSettings:
    """Settings of one IBSI 2 filter image type (base class; one subclass per type).

    Attributes are the keyword arguments of the filter function (angles of
    the Gabor filter in degrees). A *sweep* parameter holds a tuple and the
    type yields one response map per combination of its values (a scalar
    given for it becomes a 1-tuple). A parameter that applies only with
    ``rotation_invariant`` on (or off) must keep its default otherwise.
    Everything is checked when built; :meth:`from_mapping` also refuses
    unknown keys and keys that would have no effect.
    """

    image_type: ClassVar[str] = ""
    _PARAMS: ClassVar[dict[str, _Param]] = {}

    def __post_init__(self):
        fields = self.__dataclass_fields__
        given = {attr: getattr(self, attr) for attr in self._PARAMS
                 if fields[attr].default is dataclasses.MISSING or getattr(self, attr) != fields[attr].default}
        for attr, value in self._checked(given, f"{self.image_type} setting").items():
            object.__setattr__(self, attr, value)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, where: str | None = None) -> FilterSettings:
        """Settings from ``{key: value}`` (an ``imageType`` entry's filter keys, or an IBSI ``filter`` section).

        `where` names the section in error messages.
        """
        where = where or f"{cls.image_type} setting"
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise SettingsError(f"{where}s must be a mapping of key to value, got {mapping!r}")
        for key in mapping:
            if key not in cls._PARAMS:
                raise SettingsError(f"{where}: unknown key {key!r}{_suggest(str(key), cls._PARAMS)}; "
                                    f"{cls.image_type} keys: {', '.join(cls._PARAMS)}")
        return cls(**cls._checked(dict(mapping), where))

    @classmethod
    def _checked(cls, given: dict[str, Any], where: str) -> dict[str, Any]:
        """Every parameter, normalised: the given ones checked, the others at their default."""
        fields = cls.__dataclass_fields__
        out: dict[str, Any] = {}
        for attr, param in cls._PARAMS.items():
            applies = param.only_if is None or out[param.only_if[0]] == param.only_if[1]
            condition = "" if param.only_if is None else f" when {param.only_if[0]} is {str(param.only_if[1]).lower()}"
            if attr in given:
                if not applies:
                    raise SettingsError(f"{where} {attr!r}: {given[attr]!r} has no effect unless "
                                        f"{param.only_if[0]} is {str(param.only_if[1]).lower()}; leave it out")
                value = given[attr]
                if param.sweep:
                    values = value if isinstance(value, (list, tuple)) else (value,)
                    if len(values) == 0:
                        raise SettingsError(f"{where} {attr!r}: [] is not allowed; expected one value or a "
                                            "non-empty list (one response map each)")
                    out[attr] = tuple(dict.fromkeys(_normalise(param.rule, v, where) for v in values))
                else:
                    out[attr] = _normalise(param.rule, value, where)
            elif applies and param.required:
                raise SettingsError(f"{where} {attr!r} is required{condition}")
            else:
                out[attr] = fields[attr].default
        cls._check(out, where)
        return out

    @classmethod
    def _check(cls, values: dict[str, Any], where: str) -> None:
        """Checks across parameters (subclasses)."""

    def to_mapping(self) -> dict[str, Any]:
        """``{key: value}`` of the parameters that apply (sweeps as tuples); :meth:`from_mapping` reads it back."""
        out: dict[str, Any] = {}
        for attr, param in self._PARAMS.items():
            if param.only_if is None or out[param.only_if[0]] == param.only_if[1]:
                out[attr] = getattr(self, attr)
        return out

    def images(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """``(image name, keyword arguments of the filter function)`` of each response map, in order.

        The image name is the prefix of its feature names; the keyword
        arguments exclude the image and ``spacing_zyx``. Sweeps vary in
        parameter order, the last fastest.
        """
        sweeps = [attr for attr, param in self._PARAMS.items() if param.sweep]
        default_boundary = self.__dataclass_fields__["boundary"].default
        out = []
        for combination in itertools.product(*(getattr(self, attr) for attr in sweeps)):
            values = {attr: getattr(self, attr) for attr in self._PARAMS} | dict(zip(sweeps, combination))
            name, kwargs = self._image(values)
            if values["boundary"] != default_boundary:
                name += f"-{values['boundary']}"
            out.append((name, kwargs))
        return tuple(out)

    def _image(self, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError


_BOUNDARY = _Rule("boundary", "boundary")
_DIMENSIONS = _Rule("dimensions", "int", low=2, high=3)
_ROTATION_INVARIANT = _Rule("rotation_invariant", "bool")


def _pooling(*choices: str) -> _Param:
    return _Param(_Rule("pooling", "str", choices=choices), only_if=("rotation_invariant", True))


@dataclass(frozen=True)
class MeanFilter(FilterSettings):
    """``Mean``: :func:`radflow.filters.ibsi.mean_filter`.

    Attributes
    ----------
    support_voxels : tuple of int
        Odd support :math:`M` in voxels (sweep; required).
    dimensions : {3, 2}
        3: cubic neighbourhood; 2: square in each (y, x) slice. Default 3.
    boundary : str
        IBSI boundary condition. Default ``"mirror"``.
    """

    image_type: ClassVar[str] = "Mean"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "support_voxels": _Param(_Rule("support_voxels", "int", low=1), sweep=True, required=True),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(_BOUNDARY),
    }
    support_voxels: tuple[int, ...]
    dimensions: int = 3
    boundary: str = "mirror"

    @classmethod
    def _check(cls, values, where):
        even = [m for m in values["support_voxels"] if m % 2 == 0]
        if even:
            raise SettingsError(f"{where} 'support_voxels': {even[0]} is not allowed; expected an odd number "
                                "of voxels (the neighbourhood is centred on the voxel)")

    def _image(self, v):
        kwargs = {"support_voxels": v["support_voxels"], "boundary": v["boundary"], "dimensions": v["dimensions"]}
        return f"mean-m{v['support_voxels']}-{v['dimensions']}D", kwargs


@dataclass(frozen=True)
class LoGIBSIFilter(FilterSettings):
    """``LoGIBSI``: :func:`radflow.filters.ibsi.laplacian_of_gaussian` (IBSI kernel, truncated).

    Attributes
    ----------
    sigma_mm : tuple of float
        Gaussian standard deviation in mm (sweep; required).
    truncate : float
        Kernel half-width in standard deviations. Default 4 (IBSI).
    dimensions : {3, 2}
        Default 3.
    boundary : str
        Default ``"mirror"``.
    """

    image_type: ClassVar[str] = "LoGIBSI"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "sigma_mm": _Param(_Rule("sigma_mm", "float", low=0, low_exclusive=True), sweep=True, required=True),
        "truncate": _Param(_Rule("truncate", "float", low=0, low_exclusive=True)),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(_BOUNDARY),
    }
    sigma_mm: tuple[float, ...]
    truncate: float = 4.0
    dimensions: int = 3
    boundary: str = "mirror"

    def _image(self, v):
        kwargs = {"sigma_mm": v["sigma_mm"], "truncate": v["truncate"], "boundary": v["boundary"],
                  "dimensions": v["dimensions"]}
        return f"logibsi-s{_token(v['sigma_mm'])}mm-t{_token(v['truncate'])}-{v['dimensions']}D", kwargs


@dataclass(frozen=True)
class LawsFilter(FilterSettings):
    """``Laws``: :func:`radflow.filters.ibsi.laws_filter`.

    Attributes
    ----------
    kernel : tuple of str
        1D kernels in axis order x, y[, z] (``"L5E5E5"`` 3D, ``"L5E5"`` 2D
        per slice) (sweep; required).
    energy_distance : int or None
        Chebyshev distance in voxels of the energy map; None: the response
        map itself. Default None.
    rotation_invariant : bool
        Pool over the right-angle rotations. Default False.
    pooling : {"max", "average"}
        Only with `rotation_invariant`. Default ``"max"``.
    boundary : str
        Default ``"mirror"``.
    """

    image_type: ClassVar[str] = "Laws"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "kernel": _Param(_Rule("kernel", "laws_kernel"), sweep=True, required=True),
        "energy_distance": _Param(_Rule("energy_distance", "int", nullable=True, low=0)),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "pooling": _pooling("max", "average"),
        "boundary": _Param(_BOUNDARY),
    }
    kernel: tuple[str, ...]
    energy_distance: int | None = None
    rotation_invariant: bool = False
    pooling: str = "max"
    boundary: str = "mirror"

    def _image(self, v):
        name = f"laws-{v['kernel']}"
        if v["energy_distance"] is not None:
            name += f"-energy{v['energy_distance']}"
        if v["rotation_invariant"]:
            name += "-rinv-" + _POOLING_TOKENS[v["pooling"]]
        kwargs = {key: v[key] for key in ("kernel", "boundary", "rotation_invariant", "pooling", "energy_distance")}
        return name, kwargs


_POOLING_TOKENS = {"max": "max", "average": "avg"}


@dataclass(frozen=True)
class GaborFilter(FilterSettings):
    """``Gabor``: :func:`radflow.filters.ibsi.gabor_filter` (2D, in-plane).

    Attributes
    ----------
    sigma_mm : tuple of float
        Standard deviation of the Gaussian envelope in mm (sweep; required).
    wavelength_mm : tuple of float
        Wavelength lambda in mm (sweep; required).
    gamma : tuple of float
        Spatial aspect ratio (sweep). Default (1,).
    rotation_invariant : bool
        Pool over the orientations ``k * theta_step_deg`` in [0, 360). Default False.
    theta_deg : float
        Orientation of a single filter, degrees in [0, 360), from x towards y;
        only without `rotation_invariant`. Default 0.
    theta_step_deg : float
        Orientation step in degrees (0, 360]; required with `rotation_invariant`.
    pooling : {"average", "max"}
        Only with `rotation_invariant`. Default ``"average"``.
    response : {"modulus", "real"}
        Default ``"modulus"`` (IBSI).
    orthogonal_planes : bool
        Average over the axial, coronal and sagittal planes (IBSI 3D);
        else each axial slice. Default False.
    boundary : str
        Default ``"mirror"``.
    """

    image_type: ClassVar[str] = "Gabor"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "sigma_mm": _Param(_Rule("sigma_mm", "float", low=0, low_exclusive=True), sweep=True, required=True),
        "wavelength_mm": _Param(_Rule("wavelength_mm", "float", low=0, low_exclusive=True), sweep=True,
                                required=True),
        "gamma": _Param(_Rule("gamma", "float", low=0, low_exclusive=True), sweep=True),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "theta_deg": _Param(_Rule("theta_deg", "float", low=0, high=360, high_exclusive=True),
                            only_if=("rotation_invariant", False)),
        "theta_step_deg": _Param(_Rule("theta_step_deg", "float", low=0, low_exclusive=True, high=360),
                                 only_if=("rotation_invariant", True), required=True),
        "pooling": _pooling("average", "max"),
        "response": _Param(_Rule("response", "str", choices=("modulus", "real"))),
        "orthogonal_planes": _Param(_Rule("orthogonal_planes", "bool")),
        "boundary": _Param(_BOUNDARY),
    }
    sigma_mm: tuple[float, ...]
    wavelength_mm: tuple[float, ...]
    gamma: tuple[float, ...] = (1.0,)
    rotation_invariant: bool = False
    theta_deg: float = 0.0
    theta_step_deg: float | None = None
    pooling: str = "average"
    response: str = "modulus"
    orthogonal_planes: bool = False
    boundary: str = "mirror"

    def _image(self, v):
        name = f"gabor-s{_token(v['sigma_mm'])}mm-g{_token(v['gamma'])}-l{_token(v['wavelength_mm'])}mm"
        kwargs = {"sigma_mm": v["sigma_mm"], "wavelength_mm": v["wavelength_mm"], "gamma": v["gamma"],
                  "theta_rad": math.radians(v["theta_deg"]), "rotation_invariant": v["rotation_invariant"],
                  "theta_step_rad": None, "pooling": v["pooling"], "response": v["response"],
                  "orthogonal_planes": v["orthogonal_planes"], "boundary": v["boundary"]}
        if v["rotation_invariant"]:
            kwargs["theta_step_rad"] = math.radians(v["theta_step_deg"])
            name += f"-rinv{_token(v['theta_step_deg'])}deg-{_POOLING_TOKENS[v['pooling']]}"
        else:
            name += f"-th{_token(v['theta_deg'])}deg"
        if v["response"] == "real":
            name += "-real"
        return name + ("-3D" if v["orthogonal_planes"] else "-2D"), kwargs


@dataclass(frozen=True)
class WaveletIBSIFilter(FilterSettings):
    """``WaveletIBSI``: :func:`radflow.filters.ibsi.wavelet_filter` (undecimated, separable).

    Attributes
    ----------
    wavelet : str
        PyWavelets discrete wavelet (``"haar"``, ``"db3"``, ``"coif1"``...; required).
    decomposition : tuple of str
        ``L``/``H`` per axis in order x, y[, z]: ``"LLH"`` 3D, ``"HH"`` 2D
        per slice (sweep; required).
    level : tuple of int
        Decomposition level >= 1 (sweep). Default (1,).
    rotation_invariant : bool
        Average over the right-angle rotations of the cascade. Default False.
    pooling : {"average", "max"}
        Only with `rotation_invariant`. Default ``"average"`` (IBSI).
    boundary : str
        Default ``"mirror"``.
    """

    image_type: ClassVar[str] = "WaveletIBSI"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "wavelet": _Param(_Rule("wavelet", "wavelet"), required=True),
        "decomposition": _Param(_Rule("decomposition", "decomposition"), sweep=True, required=True),
        "level": _Param(_Rule("level", "int", low=1), sweep=True),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "pooling": _pooling("average", "max"),
        "boundary": _Param(_BOUNDARY),
    }
    wavelet: str
    decomposition: tuple[str, ...]
    level: tuple[int, ...] = (1,)
    rotation_invariant: bool = False
    pooling: str = "average"
    boundary: str = "mirror"

    def _image(self, v):
        name = f"waveletibsi-{v['wavelet']}-{v['decomposition']}-level{v['level']}"
        if v["rotation_invariant"]:
            name += "-rinv-" + _POOLING_TOKENS[v["pooling"]]
        kwargs = {key: v[key] for key in ("wavelet", "decomposition", "level", "boundary", "rotation_invariant",
                                          "pooling")}
        return name, kwargs


@dataclass(frozen=True)
class SimoncelliFilter(FilterSettings):
    """``Simoncelli``: :func:`radflow.filters.ibsi.simoncelli_filter` (non-separable wavelet, by FFT).

    Attributes
    ----------
    level : tuple of int
        Decomposition level >= 1 (sweep). Default (1,).
    dimensions : {3, 2}
        Default 3.
    boundary : str
        Default ``"periodic"`` (the FFT's, as the IBSI consensus).
    frequency_grid : {"ibsi", "dft"}
        Frequency sampling of the transfer function. Default ``"ibsi"``.
    """

    image_type: ClassVar[str] = "Simoncelli"
    _PARAMS: ClassVar[dict[str, _Param]] = {
        "level": _Param(_Rule("level", "int", low=1), sweep=True),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(_BOUNDARY),
        "frequency_grid": _Param(_Rule("frequency_grid", "str", choices=("ibsi", "dft"))),
    }
    level: tuple[int, ...] = (1,)
    dimensions: int = 3
    boundary: str = "periodic"
    frequency_grid: str = "ibsi"

    def _image(self, v):
        name = f"simoncelli-level{v['level']}-{v['dimensions']}D" + ("-dft" if v["frequency_grid"] == "dft" else "")
        return name, {key: v[key] for key in ("level", "dimensions", "boundary", "frequency_grid")}


#: IBSI filter image type -> its settings class.
FILTER_SETTINGS: dict[str, type[FilterSettings]] = {
    cls.image_type: cls
    for cls in (MeanFilter, LoGIBSIFilter, LawsFilter, GaborFilter, WaveletIBSIFilter, SimoncelliFilter)
}


def filter_settings(image_type: str, entry: Mapping[str, Any] | None, *, where: str | None = None) -> FilterSettings:
    """The typed filter settings of an IBSI filter type's ``imageType`` entry.

    Parameters
    ----------
    image_type : str
        One of :data:`IBSI_FILTER_TYPES`.
    entry : mapping or None
        The entry: the filter's keys, and optionally settings that apply
        after filtering (``binWidth``, ``distances``...), which are checked
        by :class:`ExtractionParams` and skipped here.
    where : str, optional
        Section named in error messages (default ``imageType '<type>'``).

    Raises
    ------
    SettingsError
        Unknown type; unknown key, a PyRadiomics filter's key or one applied
        before filtering; a missing or invalid value.
    """
    if image_type not in FILTER_SETTINGS:
        raise SettingsError(f"{image_type!r} is not an IBSI filter image type; known: {', '.join(FILTER_SETTINGS)}")
    where = where or f"imageType {image_type!r}"
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping):
        raise SettingsError(f"{where}: custom settings must be a mapping, got {entry!r}")
    cls = FILTER_SETTINGS[image_type]
    own = {}
    for key, value in entry.items():
        if key in cls._PARAMS:
            own[key] = value
        elif key in _GLOBAL_ONLY:
            raise SettingsError(f"{where}: setting {key!r} cannot differ per image type (it is applied before "
                                "any filter); move it to the setting section")
        elif key not in SETTING_KEYS or key in _PYRADIOMICS_FILTER_KEYS:
            raise SettingsError(f"{where}: unknown key {key!r}{_suggest(str(key), cls._PARAMS)}; "
                                f"{image_type} keys: {', '.join(cls._PARAMS)} (and the settings applied after "
                                "filtering, e.g. binWidth)")
    return cls.from_mapping(own, where=f"{where} setting")


def all_feature_classes(*, shape2d: bool = True) -> dict[str, None]:
    """Every feature class with its default features, in PyRadiomics' (alphabetical) order.

    PyRadiomics enables these for an empty ``featureClass`` section, and all
    but shape2D when it has no parameter file.
    """
    return {name: None for name in sorted(FEATURE_CLASSES) if shape2d or name != "shape2D"}


def _default_feature_classes() -> dict[str, tuple[str, ...] | None]:
    return all_feature_classes(shape2d=False)


@dataclass(frozen=True)
class ExtractionParams:
    """A whole PyRadiomics parameter file, validated.

    The defaults are PyRadiomics' when it is given no parameter file:
    the Original image only, every feature class but shape2D.

    Attributes
    ----------
    image_types : dict of str to dict
        Enabled image types in file order (``"Original"``, ``"LoG"`` ...) ->
        their custom settings as ``{PyRadiomics key: normalised value}``;
        see :meth:`settings_for`. For an IBSI filter type the entry holds
        every parameter that applies (defaults filled in, sweeps as tuples;
        :meth:`FilterSettings.to_mapping`) and its setting overrides.
    feature_classes : dict of str to tuple of str or None
        Enabled feature classes in file order -> feature names to compute,
        or None for the class's default-enabled features.
    settings : Settings
    voxel_settings : VoxelSettings
    """

    image_types: dict[str, dict[str, Any]] = field(default_factory=lambda: {"Original": {}})
    feature_classes: dict[str, tuple[str, ...] | None] = field(default_factory=_default_feature_classes)
    settings: Settings = field(default_factory=Settings)
    voxel_settings: VoxelSettings = field(default_factory=VoxelSettings)

    def __post_init__(self):
        object.__setattr__(self, "image_types", _check_image_types(self.image_types))
        object.__setattr__(self, "feature_classes", _check_feature_classes(self.feature_classes))
        if not isinstance(self.settings, Settings):
            raise SettingsError(f"settings must be a Settings, got {type(self.settings).__name__}")
        if not isinstance(self.voxel_settings, VoxelSettings):
            raise SettingsError(f"voxel_settings must be a VoxelSettings, got {type(self.voxel_settings).__name__}")

    def settings_for(self, image_type: str) -> Settings:
        """The settings in force for one enabled image type (global + its custom ones)."""
        if image_type not in self.image_types:
            raise SettingsError(
                f"image type {image_type!r} is not enabled; enabled: {', '.join(self.image_types)}"
            )
        custom = self.image_types[image_type]
        own = FILTER_SETTINGS[image_type]._PARAMS if image_type in FILTER_SETTINGS else {}
        return dataclasses.replace(self.settings, **{SETTING_KEYS[k]: v for k, v in custom.items() if k not in own})

    def with_settings(self, overrides: Mapping[str, Any]) -> ExtractionParams:
        """A copy with some global settings replaced, given by PyRadiomics key.

        Like the keyword arguments of PyRadiomics' ``RadiomicsFeatureExtractor``.
        """
        attrs = _attributes(overrides, _RULES, SETTING_KEYS, "setting override")
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **attrs))


def _check_image_types(image_types) -> dict[str, dict[str, Any]]:
    if not isinstance(image_types, Mapping):
        raise SettingsError(f"imageType must be a mapping of image type to settings, got {image_types!r}")
    out = {}
    known = IMAGE_TYPES + IBSI_FILTER_TYPES
    for name, custom in image_types.items():
        if name not in known:
            raise SettingsError(f"imageType {name!r} is not known{_suggest(str(name), known)}; "
                                f"known: {', '.join(known)}")
        where = f"imageType {name!r} setting"
        if custom is None:
            raise SettingsError(f"imageType {name!r}: custom settings are null; write `{name}: {{}}` for none")
        if not isinstance(custom, Mapping):
            raise SettingsError(f"imageType {name!r}: custom settings must be a mapping, got {custom!r}")
        if name in FILTER_SETTINGS:
            # The filter's own keys, typed; the rest are settings applied after filtering.
            params = filter_settings(name, custom).to_mapping()
            rest = {key: value for key, value in custom.items() if key not in params}
            attrs = _attributes(rest, _RULES, SETTING_KEYS, where)
            out[name] = {**params, **{_RULES[attr].key: value for attr, value in attrs.items()}}
            continue
        for key in custom:
            if key in _GLOBAL_ONLY:
                raise SettingsError(
                    f"imageType {name!r}: setting {key!r} cannot differ per image type (it is applied before "
                    "any filter); move it to the setting section"
                )
        attrs = _attributes(custom, _RULES, SETTING_KEYS, where)
        out[name] = {_RULES[attr].key: value for attr, value in attrs.items()}
    return out


def _check_feature_classes(feature_classes) -> dict[str, tuple[str, ...] | None]:
    if not isinstance(feature_classes, Mapping):
        raise SettingsError(f"featureClass must be a mapping of class to feature list, got {feature_classes!r}")
    out: dict[str, tuple[str, ...] | None] = {}
    for name, names in feature_classes.items():
        if name not in FEATURE_CLASSES:
            raise SettingsError(f"featureClass {name!r} is not known{_suggest(name, FEATURE_CLASSES)}; "
                                f"known: {', '.join(FEATURE_CLASSES)}")
        if names is None or (isinstance(names, (list, tuple)) and len(names) == 0):
            out[name] = None  # PyRadiomics: null and [] both mean the default features
            continue
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise SettingsError(f"featureClass {name!r}: expected a list of feature names, got {names!r}")
        out[name] = tuple(dict.fromkeys(names))
        _check_feature_names(name, out[name])
    return out


def _check_feature_names(family: str, names: tuple[str, ...]) -> None:
    known = FEATURE_NAMES[family]
    for name in names:
        if name not in known:
            raise SettingsError(f"featureClass {family!r}: unknown feature {name!r}"
                                f"{_suggest(name, known)}; valid: {', '.join(known)}")


def _suggest(word: str, candidates) -> str:
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _attributes(mapping, rules: dict[str, _Rule], keys: dict[str, str], where: str) -> dict[str, Any]:
    """Map PyRadiomics keys to attributes, checking every key and value."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"{where} must be a mapping of setting name to value, got {mapping!r}")
    attrs = {}
    for key, value in mapping.items():
        if key not in keys:
            raise SettingsError(_unknown_key_message(key, keys, where))
        attr = keys[key]
        attrs[attr] = _normalise(rules[attr], value, where)
    return attrs


def _unknown_key_message(key, keys: dict[str, str], where: str) -> str:
    other = VOXEL_SETTING_KEYS if keys is SETTING_KEYS else SETTING_KEYS
    if key in other:
        section = "voxelSetting" if other is VOXEL_SETTING_KEYS else "setting"
        return f"{where}: {key!r} belongs in the {section} section"
    owners = [name for name, cls in FILTER_SETTINGS.items() if key in cls._PARAMS]
    if owners:
        return f"{where}: {key!r} is a key of the image type(s) {', '.join(owners)}; put it in that imageType entry"
    by_attr = {attr: k for k, attr in keys.items()}
    if key in by_attr:
        return f"{where}: unknown key {key!r}; the file key is {by_attr[key]!r}"
    return f"{where}: unknown key {key!r}{_suggest(str(key), keys)}; valid keys: {', '.join(keys)}"


def _normalise_fields(obj, rules: dict[str, _Rule], where: str) -> None:
    for attr, rule in rules.items():
        object.__setattr__(obj, attr, _normalise(rule, getattr(obj, attr), where))


def _normalise(rule: _Rule, value, where: str):
    """The checked, canonical form of one value (tuples, floats, interpolator names)."""
    def fail(expected: str):
        raise SettingsError(f"{where} {rule.key!r}: {value!r} is not allowed; expected {expected}")

    if value is None:
        if rule.nullable:
            return None
        fail(f"{_describe(rule)} (null is not allowed here; omit the key for the default)")
    kind = rule.kind
    if kind == "bool":
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if kind in ("int", "float"):
        return _number(rule, value, fail)
    if kind in ("int_seq", "float_seq"):
        if not isinstance(value, (list, tuple)):
            fail(_describe(rule))
        if len(value) < rule.min_length or (rule.lengths and len(value) not in rule.lengths):
            fail(_describe(rule))
        item = dataclasses.replace(rule, kind=kind[:-4])
        return tuple(_number(item, v, fail, _describe(rule)) for v in value)
    if kind == "str":
        if not isinstance(value, str) or value not in rule.choices:
            fail(_describe(rule))
        return value
    if kind == "interpolator":
        if isinstance(value, str) and value in INTERPOLATORS:
            return value
        if isinstance(value, Integral) and not isinstance(value, bool) and int(value) in _INTERPOLATOR_BY_CODE:
            return _INTERPOLATOR_BY_CODE[int(value)]
        fail(_describe(rule))
    if kind == "wavelet":
        import pywt  # only needed when a wavelet is named

        if not isinstance(value, str) or value not in pywt.wavelist(kind="discrete"):
            fail("a discrete PyWavelets wavelet name (pywt.wavelist(kind='discrete'), e.g. 'coif1', 'haar', 'db2')")
        return value
    if kind == "boundary":
        if not isinstance(value, str) or value not in BOUNDARIES:
            fail(_describe(rule))
        return value
    if kind == "laws_kernel":
        if not isinstance(value, str) or len(value) not in (4, 6) or any(
            value[i : i + 2] not in LAWS_KERNEL_NAMES for i in range(0, len(value), 2)
        ):
            fail(_describe(rule))
        return value
    if kind == "decomposition":
        if not isinstance(value, str) or not re.fullmatch(r"[LH]{2,3}", value):
            fail(_describe(rule))
        return value
    raise AssertionError(kind)


def _number(rule: _Rule, value, fail, expected: str | None = None):
    expected = expected or _describe(rule)
    if isinstance(value, bool):
        fail(expected)
    if rule.kind == "int":
        if not isinstance(value, Integral):
            fail(expected)
        number = int(value)
    else:
        if isinstance(value, str):  # pykwalify reads numeric strings ("nan", "1e-5") as floats
            try:
                value = float(value)
            except ValueError:
                fail(expected)
        if not isinstance(value, Real):
            fail(expected)
        # An integer stays one: PyRadiomics names images from values as written
        # (sigma 1 -> "log-sigma-1-mm-3D", 1.0 -> "log-sigma-1-0-mm-3D").
        number = int(value) if isinstance(value, Integral) else float(value)
        if rule.finite and not math.isfinite(number):
            fail(expected)
    if rule.low is not None and (number <= rule.low if rule.low_exclusive else number < rule.low):
        fail(expected)
    if rule.high is not None and (number >= rule.high if rule.high_exclusive else number > rule.high):
        fail(expected)
    return number


def _describe(rule: _Rule) -> str:
    kind = {"int": "an integer", "float": "a number", "int_seq": "a list of integers",
            "float_seq": "a list of numbers", "bool": "true or false"}.get(rule.kind)
    if rule.kind == "interpolator":
        return (f"one of {', '.join(INTERPOLATORS)} or an integer code 1-10"
                + (", or null" if rule.nullable else ""))
    if rule.kind == "str":
        return "one of " + ", ".join(repr(c) for c in rule.choices) + (", or null" if rule.nullable else "")
    if rule.kind == "boundary":
        return "one of " + ", ".join(repr(c) for c in BOUNDARIES)
    if rule.kind == "laws_kernel":
        return (f"2 (2D) or 3 (3D) of {', '.join(LAWS_KERNEL_NAMES)} in axis order x, y[, z], "
                "e.g. 'L5E5E5'")
    if rule.kind == "decomposition":
        return "'L' or 'H' for each of 2 or 3 axes in order x, y[, z], e.g. 'LLH'"
    bounds = []
    if rule.low is not None:
        bounds.append(f"{'>' if rule.low_exclusive else '>='} {rule.low:g}")
    if rule.high is not None:
        bounds.append(f"{'<' if rule.high_exclusive else '<='} {rule.high:g}")
    text = kind + (" " + " and ".join(bounds) if bounds else "")
    if rule.kind.endswith("_seq"):
        text = text.replace("integers >", "integers, each >").replace("numbers >", "numbers, each >")
        if rule.min_length:
            text = "a non-empty " + text[2:]
        if rule.lengths:
            text += f", of length {' or '.join(str(n) for n in rule.lengths)}"
    if rule.nullable:
        text += ", or null"
    return text


def _to_mapping(obj, rules: dict[str, _Rule]) -> dict[str, Any]:
    return {rule.key: _plain(getattr(obj, attr)) for attr, rule in rules.items()}


def _plain(value):
    """JSON-serialisable form; non-finite floats as strings, which load back as floats."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
