"""Typed, validated extraction parameters in PyRadiomics mode.

:class:`ExtractionParams` holds what a PyRadiomics parameter file holds: the
enabled image types with their custom settings, the enabled feature classes,
the global :class:`Settings` and the :class:`VoxelSettings`. Everything is
checked when built, with the rules of :mod:`radflow.params.schema`: an unknown
key, a value of the wrong type (``binWidth: '25'``) or outside its range
raises :class:`~radflow.errors.SettingsError` naming the key, the value and
what is allowed. Nothing is silently ignored. The objects are frozen and
pickle, so that pipeline tasks ship them as they are.

Keys are PyRadiomics' own (``binWidth``); attributes are snake_case
(``bin_width``). :data:`~radflow.params.schema.SETTING_KEYS` and
:data:`~radflow.params.schema.VOXEL_SETTING_KEYS` map one to the other. Types,
ranges and defaults are those of PyRadiomics 3.0.1
(``radiomics/schemas/paramSchema.yaml`` and the ``kwargs.get`` defaults of
``featureextractor.py``, ``imageoperations.py`` and the feature classes),
with these deliberate differences, each of which turns a late crash or a
silent no-op of PyRadiomics into an early error:

- ``null`` is accepted only where it means "disabled" (``binCount``,
  ``resampledPixelSpacing``, ``interpolator``, ``removeOutliers``,
  ``resegmentRange``, ``minimumROISize``, ``geometryTolerance``,
  ``weightingNorm``; ``binWidth`` when ``binCount`` is set);
- a number written as a string (``binWidth: '25'``) is refused;
- list lengths are checked (``resegmentRange`` 1 or 2 values,
  ``resampledPixelSpacing`` 2 or 3, ``distances`` at least one);
- ``wavelet`` must be a discrete wavelet (continuous ones pass PyRadiomics'
  check but fail in its filter);
- per-image-type settings that PyRadiomics applies before any filter
  (resampling, normalisation, re-segmentation, mask checks, label) are
  refused inside ``imageType``, where PyRadiomics ignores them.

Besides PyRadiomics' image types, the IBSI 2 filter types (``Mean``,
``LoGIBSI``, ``Laws``, ``Gabor``, ``WaveletIBSI``, ``Simoncelli``) have typed
parameters, :class:`~radflow.params.ibsi_filters.FilterSettings`, given in
their ``imageType`` entry (:meth:`ExtractionParams.filter_settings`).

Integer interpolator codes 1-10 mean what PyRadiomics documents
(SimpleITK 1.x numbering: 1 nearest neighbour, 2 linear, 3 B-spline, ...);
they are stored as the name (``"sitkBSpline"``), since SimpleITK 2 renumbered
its B-spline constant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radflow._config import Rule, check_mapping, check_value, suggest
from radflow.errors import SettingsError
from radflow.params.ibsi_filters import FILTER_SETTINGS, FilterSettings, filter_settings
from radflow.params.names import (
    FEATURE_CLASSES,
    FEATURE_NAME_PATTERNS,
    FEATURE_NAMES,
    IBSI_FILTER_TYPES,
    IMAGE_TYPES,
    MAP_SUMMARY_STATISTICS,
    RADFLOW_FEATURE_NAMES,
    feature_name_pattern,
)
from radflow.params.schema import (
    GLOBAL_ONLY,
    MAP_SUMMARY_RULES,
    SETTING_EXTENSION_KEYS,
    SETTING_EXTENSION_RULES,
    SETTING_KEYS,
    SETTING_RULES,
    VOXEL_EXTENSION_KEYS,
    VOXEL_EXTENSION_RULES,
    VOXEL_SETTING_KEYS,
    VOXEL_SETTING_RULES,
    check_fields,
    fields_to_mapping,
)

__all__ = [
    "DEFAULT_MAP_STATISTICS",
    "ExtractionParams",
    "MapSummarySettings",
    "Settings",
    "VoxelSettings",
    "all_feature_classes",
    "check_image_type",
]


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
    skeleton_spacing : float or None (``skeletonSpacing``, radflow's)
        Isotropic voxel size in mm of the grid the ``skeleton`` class thins the ROI on
        (:mod:`radflow.features.skeleton`). None: the smallest voxel size of the mask.
    habitat_count : int or None (``habitatCount``, radflow's)
        K, the number of habitats of the ``habitat`` class (:mod:`radflow.features.habitat`):
        its features for k = 1..K (a habitat absent from a ROI gives 0), and the columns of
        ``radflow run``'s table. None: K of each ROI's habitat map.
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
    skeleton_spacing: float | None = None
    habitat_count: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, SETTING_RULES, SETTING_KEYS, "setting")
        check_fields(self, SETTING_EXTENSION_RULES, SETTING_EXTENSION_KEYS, "setting")
        if self.bin_width is None and self.bin_count is None:
            raise SettingsError(
                "setting 'binWidth': null is allowed only with binCount set; "
                "omit binWidth for the default 25, or set binCount"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, where: str = "setting") -> Settings:
        """Settings from a PyRadiomics ``setting`` mapping; absent keys keep their default.

        `where` names the section in error messages. radflow's own keys
        (``skeletonSpacing``) are accepted too.
        """
        checked = check_mapping(
            mapping,
            {**SETTING_RULES, **SETTING_EXTENSION_RULES},
            where,
            hint=_hint(SETTING_KEYS, where),
        )
        keys = {**SETTING_KEYS, **SETTING_EXTENSION_KEYS}
        return cls(**{keys[key]: value for key, value in checked.items()})

    @property
    def resampling(self) -> bool:
        """True when PyRadiomics resamples: spacing and interpolator both set."""
        return self.resampled_spacing_xyz is not None and self.interpolator is not None

    def to_mapping(self) -> dict[str, Any]:
        """``{PyRadiomics key: value}`` for every setting, JSON-serialisable.

        radflow's own keys only when set, so that files without them keep their mapping and hash.
        """
        mapping = fields_to_mapping(self, SETTING_KEYS)
        extension = fields_to_mapping(self, SETTING_EXTENSION_KEYS)
        mapping.update({key: value for key, value in extension.items() if value is not None})
        return mapping


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
    memory_budget_mib : float or None (``memoryBudget``, radflow's)
        Most memory one voxel-based extraction may hold, MiB (its maps and filtered boxes,
        estimated before computing: :func:`radflow.extraction.voxel.check_memory`). None: half
        the machine's available memory, or the Dask worker's memory limit in ``radflow maps``.
    """

    kernel_radius: int = 1
    masked_kernel: bool = True
    init_value: float = 0.0
    voxel_batch: int | None = None
    memory_budget_mib: float | None = None

    def __post_init__(self) -> None:
        check_fields(self, VOXEL_SETTING_RULES, VOXEL_SETTING_KEYS, "voxelSetting")
        check_fields(self, VOXEL_EXTENSION_RULES, VOXEL_EXTENSION_KEYS, "voxelSetting")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> VoxelSettings:
        """VoxelSettings from a PyRadiomics ``voxelSetting`` mapping (plus ``memoryBudget``)."""
        rules = {**VOXEL_SETTING_RULES, **VOXEL_EXTENSION_RULES}
        keys = {**VOXEL_SETTING_KEYS, **VOXEL_EXTENSION_KEYS}
        return cls(**_attributes(mapping, rules, keys, "voxelSetting"))

    def to_mapping(self) -> dict[str, Any]:
        """``{PyRadiomics key: value}``, JSON-serialisable (NaN as the string "nan").

        ``memoryBudget`` only when set, so that files without it keep their mapping and hash.
        """
        mapping = fields_to_mapping(self, VOXEL_SETTING_KEYS)
        if self.memory_budget_mib is not None:
            mapping.update(fields_to_mapping(self, VOXEL_EXTENSION_KEYS))
        return mapping


#: The classes that have voxel-based maps (PyRadiomics' voxel mode): what ``mapSummary`` takes.
_MAP_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")

#: The statistics ``mapSummary`` computes when its file names none.
DEFAULT_MAP_STATISTICS = (
    "Mean", "StandardDeviation", "10Percentile", "25Percentile", "Median", "75Percentile",
    "90Percentile",
)  # fmt: skip


@dataclass(frozen=True)
class MapSummarySettings:
    """radflow's ``mapSummary`` section: per-ROI statistics of voxel-based maps as features.

    In segment mode the maps of the named features are computed in the ROI (with the file's
    ``voxelSetting``) and summarised over its voxels
    (:mod:`radflow.extraction.map_summary`).

    Attributes
    ----------
    classes : dict of str to tuple of str or None (``classes``)
        Feature class (not shape) -> the features whose maps are summarised, or None for the
        class's default features.
    statistics : tuple of str (``statistics``)
        Names from :data:`~radflow.params.names.MAP_SUMMARY_STATISTICS`; default
        :data:`DEFAULT_MAP_STATISTICS`.
    """

    classes: dict[str, tuple[str, ...] | None]
    statistics: tuple[str, ...] = DEFAULT_MAP_STATISTICS

    def __post_init__(self) -> None:
        where = "mapSummary"
        if not isinstance(self.classes, Mapping) or not self.classes:
            raise SettingsError(
                f"{where} 'classes': expected a non-empty mapping of feature class to feature "
                f"list (null: the default features), got {self.classes!r}"
            )
        classes: dict[str, tuple[str, ...] | None] = {}
        for name, names in self.classes.items():
            if name not in _MAP_CLASSES:
                known = _MAP_CLASSES
                what = "has no voxel-based map" if name in FEATURE_CLASSES else "is not known"
                raise SettingsError(
                    f"{where} class {name!r} {what}{suggest(str(name), known)}; "
                    f"known: {', '.join(known)}"
                )
            if names is None or (isinstance(names, (list, tuple)) and len(names) == 0):
                classes[name] = None
                continue
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise SettingsError(
                    f"{where} class {name!r}: expected a list of feature names, got {names!r}"
                )
            classes[name] = tuple(dict.fromkeys(names))
            _check_feature_names(name, classes[name], where=f"{where} class")
        statistics = check_value(
            MAP_SUMMARY_RULES["statistics"], self.statistics, f"{where} 'statistics'"
        )
        for stat in statistics:
            if stat not in MAP_SUMMARY_STATISTICS:
                raise SettingsError(
                    f"{where} 'statistics': unknown statistic {stat!r}"
                    f"{suggest(stat, MAP_SUMMARY_STATISTICS)}; valid: "
                    f"{', '.join(MAP_SUMMARY_STATISTICS)}"
                )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "statistics", tuple(dict.fromkeys(statistics)))

    @classmethod
    def from_mapping(cls, mapping: Any) -> MapSummarySettings:
        """MapSummarySettings from a ``mapSummary`` mapping; unknown keys refused."""
        checked = check_mapping(mapping, MAP_SUMMARY_RULES, "mapSummary")
        return cls(**checked)

    def to_mapping(self) -> dict[str, Any]:
        """``{"classes": {class: list or None}, "statistics": [...]}``, JSON-serialisable."""
        return {
            "classes": {c: None if n is None else list(n) for c, n in self.classes.items()},
            "statistics": list(self.statistics),
        }


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
    map_summary : MapSummarySettings or None
        radflow's ``mapSummary`` section (None: no map summaries).
    """

    image_types: dict[str, dict[str, Any]] = field(default_factory=lambda: {"Original": {}})
    feature_classes: dict[str, tuple[str, ...] | None] = field(
        default_factory=_default_feature_classes
    )
    settings: Settings = field(default_factory=Settings)
    voxel_settings: VoxelSettings = field(default_factory=VoxelSettings)
    map_summary: MapSummarySettings | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_types", _check_image_types(self.image_types))
        object.__setattr__(self, "feature_classes", _check_feature_classes(self.feature_classes))
        if not isinstance(self.settings, Settings):
            raise SettingsError(f"settings must be a Settings, got {type(self.settings).__name__}")
        if not isinstance(self.voxel_settings, VoxelSettings):
            raise SettingsError(
                f"voxel_settings must be a VoxelSettings, got {type(self.voxel_settings).__name__}"
            )
        if self.map_summary is not None and not isinstance(self.map_summary, MapSummarySettings):
            raise SettingsError(
                "map_summary must be a MapSummarySettings or None, got "
                f"{type(self.map_summary).__name__}"
            )

    def filter_settings(self, image_type: str) -> FilterSettings:
        """The typed parameters of an enabled IBSI filter type (``"Laws"``, ``"Gabor"``...)."""
        if image_type not in FILTER_SETTINGS:
            raise SettingsError(
                f"{image_type!r} is not an IBSI filter image type; known: "
                f"{', '.join(FILTER_SETTINGS)}"
            )
        self._check_enabled(image_type)
        cls = FILTER_SETTINGS[image_type]
        return cls(**{k: v for k, v in self.image_types[image_type].items() if k in cls._PARAMS})

    def _check_enabled(self, image_type: str) -> None:
        if image_type not in self.image_types:
            raise SettingsError(
                f"image type {image_type!r} is not enabled; enabled: {', '.join(self.image_types)}"
            )

    def settings_for(self, image_type: str) -> Settings:
        """The settings in force for one enabled image type (global + its custom ones)."""
        # Built and validated once per image type: an extraction asks for them per class and
        # filter (144 times for a CT with LoG and wavelets); both objects are frozen.
        cache = self.__dict__.get("_settings_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_settings_cache", cache)
        if image_type not in cache:
            self._check_enabled(image_type)
            custom = self.image_types[image_type]
            own = FILTER_SETTINGS[image_type]._PARAMS if image_type in FILTER_SETTINGS else {}
            cache[image_type] = dataclasses.replace(
                self.settings, **{SETTING_KEYS[k]: v for k, v in custom.items() if k not in own}
            )
        return cache[image_type]

    def __getstate__(self) -> dict:
        # what a Dask task ships: the fields, not the per-process cache of settings_for
        return {k: v for k, v in self.__dict__.items() if k != "_settings_cache"}

    def with_settings(self, overrides: Mapping[str, Any]) -> ExtractionParams:
        """A copy with some global settings replaced, given by PyRadiomics key.

        Like the keyword arguments of PyRadiomics' ``RadiomicsFeatureExtractor``.
        """
        attrs = _attributes(overrides, SETTING_RULES, SETTING_KEYS, "setting override")
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **attrs))


def _check_image_types(image_types) -> dict[str, dict[str, Any]]:
    if not isinstance(image_types, Mapping):
        raise SettingsError(
            f"imageType must be a mapping of image type to settings, got {image_types!r}"
        )
    out = {}
    for name, custom in image_types.items():
        check_image_type(name)
        where = f"imageType {name!r} setting"
        if custom is None:
            raise SettingsError(
                f"imageType {name!r}: custom settings are null; write `{name}: {{}}` for none"
            )
        if not isinstance(custom, Mapping):
            raise SettingsError(
                f"imageType {name!r}: custom settings must be a mapping, got {custom!r}"
            )
        if name in FILTER_SETTINGS:
            # The filter's own keys, typed; the rest are settings applied after filtering.
            params = filter_settings(name, custom).to_mapping()
            rest = {key: value for key, value in custom.items() if key not in params}
            out[name] = {**params, **_checked_settings(rest, where)}
            continue
        for key in custom:
            if key in GLOBAL_ONLY:
                raise SettingsError(
                    f"imageType {name!r}: setting {key!r} cannot differ per image type "
                    "(it is applied before "
                    "any filter); move it to the setting section"
                )
        out[name] = _checked_settings(custom, where)
    return out


def _check_feature_classes(feature_classes) -> dict[str, tuple[str, ...] | None]:
    if not isinstance(feature_classes, Mapping):
        raise SettingsError(
            f"featureClass must be a mapping of class to feature list, got {feature_classes!r}"
        )
    out: dict[str, tuple[str, ...] | None] = {}
    # radflow's only when named; the habitat class's names carry habitat numbers (patterns)
    known = FEATURE_CLASSES + tuple(RADFLOW_FEATURE_NAMES) + tuple(FEATURE_NAME_PATTERNS)
    for name, names in feature_classes.items():
        if name not in known:
            raise SettingsError(
                f"featureClass {name!r} is not known{suggest(name, known)}; "
                f"known: {', '.join(known)}"
            )
        if names is None or (isinstance(names, (list, tuple)) and len(names) == 0):
            out[name] = None  # PyRadiomics: null and [] both mean the default features
            continue
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise SettingsError(
                f"featureClass {name!r}: expected a list of feature names, got {names!r}"
            )
        out[name] = tuple(dict.fromkeys(names))
        _check_feature_names(name, out[name])
    return out


def _check_feature_names(family: str, names: tuple[str, ...], where: str = "featureClass") -> None:
    if family in FEATURE_NAME_PATTERNS:  # Volume_2 or Volume: whether K >= 2 shows in the data
        patterns = FEATURE_NAME_PATTERNS[family]
        for name in names:
            if feature_name_pattern(family, name) is None:
                raise SettingsError(
                    f"{where} {family!r}: unknown feature {name!r}; valid: {', '.join(patterns)} "
                    "(numbers filled in, or the stem for every number)"
                )
        return
    known = FEATURE_NAMES[family] if family in FEATURE_NAMES else RADFLOW_FEATURE_NAMES[family]
    for name in names:
        if name not in known:
            raise SettingsError(
                f"{where} {family!r}: unknown feature {name!r}"
                f"{suggest(name, known)}; valid: {', '.join(known)}"
            )


def check_image_type(name: Any) -> None:
    """Refuse an image type that is neither PyRadiomics' nor an IBSI filter type."""
    known = IMAGE_TYPES + IBSI_FILTER_TYPES
    if name not in known:
        raise SettingsError(
            f"imageType {name!r} is not known; known: {', '.join(known)}{suggest(str(name), known)}"
        )


def _checked_settings(mapping: Any, where: str) -> dict[str, Any]:
    """``{PyRadiomics setting key: checked value}``; unknown keys refused with a hint."""
    return check_mapping(mapping, SETTING_RULES, where, hint=_hint(SETTING_KEYS, where))


def _attributes(
    mapping: Any, rules: dict[str, Rule], keys: dict[str, str], where: str
) -> dict[str, Any]:
    """Map PyRadiomics keys to attributes, checking every key and value."""
    checked = check_mapping(mapping, rules, where, hint=_hint(keys, where))
    return {keys[key]: value for key, value in checked.items()}


def _hint(keys: dict[str, str], where: str):
    """The message for a key of another section, of an IBSI filter, or an attribute name."""

    def hint(key) -> str | None:
        other = (
            {**VOXEL_SETTING_KEYS, **VOXEL_EXTENSION_KEYS} if keys is SETTING_KEYS else SETTING_KEYS
        )
        if key in other:
            section = "voxelSetting" if keys is SETTING_KEYS else "setting"
            return f"{where}: {key!r} belongs in the {section} section"
        owners = [name for name, cls in FILTER_SETTINGS.items() if key in cls._PARAMS]
        if owners:
            return (
                f"{where}: {key!r} is a key of the image type(s) {', '.join(owners)}; "
                "put it in that imageType entry"
            )
        by_attr = {attr: k for k, attr in keys.items()}
        if key in by_attr:
            return f"{where}: unknown key {key!r}; the file key is {by_attr[key]!r}"
        return None

    return hint
