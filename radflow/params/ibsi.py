"""IBSI configurations: typed, validated settings of radflow's IBSI mode.

A configuration is a small YAML file; radflow ships the digital phantom's and
the CT phantom's configurations A-E of the IBSI 1 reference manual
(``radflow/params/ibsi/{phantom,A,B,C,D,E}.yaml``) and the IBSI 2 phase-2
configurations (``phase2_<filter>_<A|B>.yaml``, filters 2-9). Keys::

    name: C                       # free text, shown in reports
    aggregation: 3D               # texture aggregation: 2D (slice-wise: 2D and
                                  # 2.5D tags), 3D (3D tags) or all (every tag)
    interpolation:                # null or absent: the image grid is kept
      spacing_xyz_mm: [2, 2, 2]   # new spacing in mm, (x, y, z); null for an
                                  # axis keeps it (2D: [2, 2, null])
      image: linear               # nearest | linear | cubic_spline
      round_intensities: true     # round interpolated intensities (CT: HU)
      roi: linear                 # nearest | linear (mask interpolation)
      partial_volume_threshold: 0.5
    resegmentation:               # null or absent: none
      range: [-1000, 400]         # [low, high] in image units; null for an
                                  # open end; null: no range
      outlier_sigma: null         # exclude voxels beyond mean +- k sigma
    discretisation:               # texture matrices and intensity histogram
      method: fixed_bin_size      # fixed_bin_size | fixed_bin_number | none
      bin_width: 25               # fixed_bin_size (image units)
      bin_count: 32               # fixed_bin_number
    ivh_discretisation:           # intensity-volume histogram, same keys;
      method: none                # none: intensities are already discrete

A configuration with a ``filter`` section is an IBSI 2 configuration: the
image (interpolated when asked) is filtered and the 18 intensity statistics
(``stat_*``) of the response map are computed in the intensity mask, which is
re-segmented on the *unfiltered* intensities, as in IBSI 2 phase 2 (the
reference values are only standardised for that family). Its keys are
``name``, ``interpolation``, ``resegmentation`` and::

    filter:
      type: Laws                  # Mean | LoGIBSI | Laws | Gabor | WaveletIBSI | Simoncelli
      kernel: L5E5                # the type's parameters: those of its imageType
      rotation_invariant: true    # entry in PyRadiomics mode (one value each: IBSI
      pooling: max                # mode computes one response map), documented in
      energy_distance: 7          # radflow.filters.image_types
      boundary: mirror

``aggregation``, ``discretisation`` and ``ivh_discretisation`` are refused
there (no texture, histogram or IVH feature is computed on a response map).

Fixed bin size bins start at the lower bound of the re-segmentation range
(the ROI minimum when the range has no lower bound); ``none`` takes the
(integer) intensities as they are. An unknown or misspelt key, a missing
one, a value of the wrong type or out of range raises
:class:`~radflow.errors.SettingsError` naming the file, the key and what is
allowed.

Examples
--------
>>> config = load_ibsi_config("C")
>>> config.interpolation.spacing_zyx_mm, config.resegment_range, config.discretisation.bin_width
((2.0, 2.0, 2.0), (-1000.0, 400.0), 25.0)
>>> config.aggregations
('3D_avg', '3D_comb', '3D')
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from os import PathLike
from pathlib import Path
from typing import Any

from radflow.errors import SettingsError
from radflow.params.pyradiomics_params import _read
from radflow.params.ibsi_filters import FILTER_SETTINGS, FilterSettings
from radflow.params.names import INTERPOLATION_ORDERS

__all__ = [
    "CONFIG_DIR",
    "CONFIG_NAMES",
    "PHASE2_CONFIG_NAMES",
    "Discretisation",
    "IbsiConfig",
    "Interpolation",
    "load_ibsi_config",
]

#: Folder of the configurations shipped with radflow.
CONFIG_DIR = Path(__file__).with_name("ibsi")
#: Names of the shipped IBSI 1 configurations.
CONFIG_NAMES = ("phantom", "A", "B", "C", "D", "E")
#: Names of the shipped IBSI 2 phase-2 configurations: filter 2-9, configuration A (2D) or B (3D).
PHASE2_CONFIG_NAMES = tuple(f"phase2_{number}_{config}" for config in "AB" for number in range(2, 10))

#: Texture aggregation -> tag suffixes it produces.
_AGGREGATIONS = {
    "2D": ("2D_avg", "2D_comb", "2_5D_avg", "2_5D_comb", "2D", "2_5D"),
    "3D": ("3D_avg", "3D_comb", "3D"),
    "all": ("2D_avg", "2D_comb", "2_5D_avg", "2_5D_comb", "3D_avg", "3D_comb", "2D", "2_5D", "3D"),
}
_DISCRETISATION_METHODS = ("fixed_bin_size", "fixed_bin_number", "none")


@dataclass(frozen=True)
class Interpolation:
    """How image and ROI are moved to a new grid (IBSI "align grid centers").

    Attributes
    ----------
    spacing_zyx_mm : tuple of (float or None)
        New spacing in mm in (z, y, x) order; None keeps an axis as it is.
    image : str
        ``"nearest"``, ``"linear"`` or ``"cubic_spline"``.
    round_intensities : bool
        Round interpolated intensities to integers.
    roi : str
        ``"nearest"`` or ``"linear"``.
    partial_volume_threshold : float
        Interpolated mask values >= this are in the ROI (0 < value <= 1).
    """

    spacing_zyx_mm: tuple[float | None, float | None, float | None]
    image: str
    round_intensities: bool
    roi: str
    partial_volume_threshold: float = 0.5


@dataclass(frozen=True)
class Discretisation:
    """A discretisation: ``method`` with its ``bin_width`` or ``bin_count``."""

    method: str
    bin_width: float | None = None
    bin_count: int | None = None


@dataclass(frozen=True)
class IbsiConfig:
    """One IBSI configuration (see the module docstring for the YAML keys).

    Attributes
    ----------
    name : str
    aggregation : str or None
        ``"2D"``, ``"3D"`` or ``"all"``; None with a `filter`.
    interpolation : Interpolation or None
    resegment_range : tuple of (float or None) or None
        (low, high) in image units; None for an open end.
    outlier_sigma : float or None
    discretisation : Discretisation or None
        For the texture matrices and the intensity histogram; None with a `filter`.
    ivh_discretisation : Discretisation or None
        None with a `filter`.
    filter : radflow.params.ibsi_filters.FilterSettings or None
        IBSI 2 filter (one response map) whose intensity statistics are
        computed instead of the IBSI 1 families; None: no filter.
    """

    name: str
    aggregation: str | None
    interpolation: Interpolation | None
    resegment_range: tuple[float | None, float | None] | None
    outlier_sigma: float | None
    discretisation: Discretisation | None
    ivh_discretisation: Discretisation | None
    filter: FilterSettings | None = None

    @property
    def aggregations(self) -> tuple[str, ...]:
        """Texture tag suffixes computed under this configuration (none with a filter)."""
        return () if self.aggregation is None else _AGGREGATIONS[self.aggregation]


def load_ibsi_config(source: str | PathLike | IbsiConfig) -> IbsiConfig:
    """A validated IBSI configuration.

    Parameters
    ----------
    source : str, path-like or IbsiConfig
        A shipped configuration's name (``"phantom"``, ``"A"`` .. ``"E"``,
        ``"phase2_4_A"`` ..., case-insensitive), the path of a YAML file, or a
        configuration (returned as it is).

    Raises
    ------
    radflow.errors.SettingsError
        Unknown name, unreadable file, unknown/missing key or bad value.
    """
    if isinstance(source, IbsiConfig):
        return source
    text = str(source)
    by_name = {name.lower(): name for name in CONFIG_NAMES + PHASE2_CONFIG_NAMES}
    if text.lower() in by_name:
        path = CONFIG_DIR / f"{by_name[text.lower()]}.yaml"
    else:
        path = Path(source)
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise SettingsError(
                f"{text}: not an IBSI configuration; give one of {', '.join(CONFIG_NAMES)}, "
                "phase2_<2-9>_<A|B> or a .yaml file"
            )
    data = _read(path)
    if not isinstance(data, Mapping):
        raise SettingsError(f"{path}: an IBSI configuration is a mapping of keys, got {type(data).__name__}")
    return _parse(data, str(path))


def _parse(data: Mapping[str, Any], where: str) -> IbsiConfig:
    if "filter" in data:
        for key in ("aggregation", "discretisation", "ivh_discretisation"):
            if key in data:
                raise SettingsError(f"{where}: {key!r} is not used with a filter (IBSI 2 computes the intensity "
                                    "statistics of the response map only); remove it")
        _check_keys(data, where, required=("name", "filter"), optional=("interpolation", "resegmentation"))
    else:
        _check_keys(data, where, required=("name", "aggregation", "discretisation", "ivh_discretisation"),
                    optional=("interpolation", "resegmentation", "filter"))
    name = data["name"]
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise SettingsError(f"{where}: name must be text, got {name!r}")
    filter_ = None if "filter" not in data else _filter(data["filter"], f"{where}: filter")
    aggregation = None
    if filter_ is None:
        aggregation = _choice(data["aggregation"], f"{where}: aggregation", tuple(_AGGREGATIONS))
    interpolation = None
    if data.get("interpolation") is not None:
        interpolation = _interpolation(data["interpolation"], f"{where}: interpolation")
    resegment_range, outlier_sigma = None, None
    if data.get("resegmentation") is not None:
        reseg = data["resegmentation"]
        context = f"{where}: resegmentation"
        _check_mapping(reseg, context)
        _check_keys(reseg, context, required=(), optional=("range", "outlier_sigma"))
        if reseg.get("range") is not None:
            resegment_range = _range(reseg["range"], f"{context}.range")
        if reseg.get("outlier_sigma") is not None:
            outlier_sigma = _number(reseg["outlier_sigma"], f"{context}.outlier_sigma", positive=True)
    if filter_ is not None:
        return IbsiConfig(str(name), None, interpolation, resegment_range, outlier_sigma, None, None, filter_)
    return IbsiConfig(
        name=str(name),
        aggregation=aggregation,
        interpolation=interpolation,
        resegment_range=resegment_range,
        outlier_sigma=outlier_sigma,
        discretisation=_discretisation(data["discretisation"], f"{where}: discretisation"),
        ivh_discretisation=_discretisation(data["ivh_discretisation"], f"{where}: ivh_discretisation"),
    )


def _filter(value, context: str) -> FilterSettings:
    """The ``filter`` section: ``type`` and the type's parameters, one response map."""
    _check_mapping(value, context)
    kind = value.get("type")
    if kind not in FILTER_SETTINGS:
        raise SettingsError(f"{context}.type must be one of {', '.join(FILTER_SETTINGS)}, got {kind!r}")
    settings = FILTER_SETTINGS[kind].from_mapping({k: v for k, v in value.items() if k != "type"}, where=context)
    swept = [key for key, v in settings.to_mapping().items() if isinstance(v, tuple) and len(v) > 1]
    if swept:
        raise SettingsError(f"{context} {swept[0]!r}: give one value; IBSI mode computes one response map")
    return settings


def _interpolation(value, context: str) -> Interpolation:
    _check_mapping(value, context)
    _check_keys(value, context, required=("spacing_xyz_mm", "image", "round_intensities", "roi"),
                optional=("partial_volume_threshold",))
    spacing = value["spacing_xyz_mm"]
    if not isinstance(spacing, (list, tuple)) or len(spacing) != 3:
        raise SettingsError(f"{context}.spacing_xyz_mm must be a list of 3 values (x, y, z), got {spacing!r}")
    spacing_xyz = tuple(
        None if s is None else _number(s, f"{context}.spacing_xyz_mm[{i}]", positive=True)
        for i, s in enumerate(spacing)
    )
    if all(s is None for s in spacing_xyz):
        raise SettingsError(f"{context}.spacing_xyz_mm: every axis is null; leave interpolation out instead")
    round_intensities = value["round_intensities"]
    if not isinstance(round_intensities, bool):
        raise SettingsError(f"{context}.round_intensities must be true or false, got {round_intensities!r}")
    threshold = _number(value.get("partial_volume_threshold", 0.5), f"{context}.partial_volume_threshold",
                        positive=True)
    if threshold > 1:
        raise SettingsError(f"{context}.partial_volume_threshold must be in (0, 1], got {threshold}")
    return Interpolation(
        spacing_zyx_mm=spacing_xyz[::-1],
        image=_choice(value["image"], f"{context}.image", tuple(INTERPOLATION_ORDERS)),
        round_intensities=round_intensities,
        roi=_choice(value["roi"], f"{context}.roi", ("nearest", "linear")),
        partial_volume_threshold=threshold,
    )


def _discretisation(value, context: str) -> Discretisation:
    _check_mapping(value, context)
    method = _choice(value.get("method"), f"{context}.method", _DISCRETISATION_METHODS)
    if method == "fixed_bin_size":
        _check_keys(value, context, required=("method", "bin_width"), optional=())
        return Discretisation(method, bin_width=_number(value["bin_width"], f"{context}.bin_width", positive=True))
    if method == "fixed_bin_number":
        _check_keys(value, context, required=("method", "bin_count"), optional=())
        count = value["bin_count"]
        if not isinstance(count, Integral) or isinstance(count, bool) or count < 1:
            raise SettingsError(f"{context}.bin_count must be a whole number >= 1, got {count!r}")
        return Discretisation(method, bin_count=int(count))
    _check_keys(value, context, required=("method",), optional=())
    return Discretisation(method)


def _range(value, context: str) -> tuple[float | None, float | None]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SettingsError(f"{context} must be [low, high] (null for an open end), got {value!r}")
    low, high = (None if v is None else _number(v, context) for v in value)
    if low is None and high is None:
        raise SettingsError(f"{context}: both ends open; write `range: null` for no range")
    if low is not None and high is not None and low > high:
        raise SettingsError(f"{context}: low {low} is above high {high}")
    return low, high


def _number(value, context: str, *, positive: bool = False) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise SettingsError(f"{context} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise SettingsError(f"{context} must be > 0, got {value!r}")
    return float(value)


def _choice(value, context: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"{context} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_mapping(value, context: str) -> None:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{context} must be a mapping of keys, got {value!r}")


def _check_keys(data: Mapping, context: str, *, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    allowed = required + optional
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            raise SettingsError(f"{context}: unknown key {key!r}{hint}")
    missing = [key for key in required if key not in data]
    if missing:
        raise SettingsError(f"{context}: missing key {missing[0]!r}")
