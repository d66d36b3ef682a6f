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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from radflow._config import Rule, Wording, check_mapping, check_value, closest, load_config
from radflow.errors import SettingsError
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
PHASE2_CONFIG_NAMES = tuple(
    f"phase2_{number}_{config}" for config in "AB" for number in range(2, 10)
)

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
    data = load_config(path, what="IBSI configuration", suffixes=(".yaml", ".yml"))
    if not isinstance(data, Mapping):
        raise SettingsError(
            f"{path}: an IBSI configuration is a mapping of keys, got {type(data).__name__}"
        )
    return _parse(data, str(path))


# Messages as IBSI configurations have always worded them: "<file>: discretisation.bin_width must
# be > 0 (a finite number), got -1".
_TOP = Wording(
    key="{where}: {key}",
    value="{name} must be {expected}, got {value!r}",
    missing="{where}: missing key {key!r}",
    not_mapping="{where} must be a mapping of keys, got {value!r}",
    null="",
)
_NESTED = dataclasses.replace(_TOP, key="{where}.{key}")


def _one_of(choices) -> str:
    return "one of " + ", ".join(choices)


def _name(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(value)
    return str(value)


def _positive(**kwargs) -> Rule:
    return Rule(
        "float",
        low=0,
        low_exclusive=True,
        convert=float,
        expected="> 0 (a finite number)",
        **kwargs,
    )


_SECTIONS = {
    "name": Rule("any", required=True, convert=_name, expected="text"),
    "aggregation": Rule(
        "str", required=True, choices=tuple(_AGGREGATIONS), expected=_one_of(_AGGREGATIONS)
    ),
    "interpolation": Rule("mapping", nullable=True),
    "resegmentation": Rule("mapping", nullable=True),
    "discretisation": Rule("mapping", required=True),
    "ivh_discretisation": Rule("mapping", required=True),
}
_FILTER_SECTIONS = {
    "name": _SECTIONS["name"],
    "filter": Rule("mapping", required=True),
    "interpolation": _SECTIONS["interpolation"],
    "resegmentation": _SECTIONS["resegmentation"],
}
_INTERPOLATION = {
    "spacing_xyz_mm": Rule(
        "float",
        sequence=True,
        lengths=(3,),
        item_nullable=True,
        low=0,
        low_exclusive=True,
        required=True,
        expected="a list of 3 values (x, y, z), each > 0 or null",
    ),
    "image": Rule(
        "str",
        required=True,
        choices=tuple(INTERPOLATION_ORDERS),
        expected=_one_of(INTERPOLATION_ORDERS),
    ),
    "round_intensities": Rule("bool", required=True),
    "roi": Rule(
        "str", required=True, choices=("nearest", "linear"), expected=_one_of(("nearest", "linear"))
    ),
    "partial_volume_threshold": Rule(
        "float", low=0, low_exclusive=True, high=1, convert=float, expected="in (0, 1]"
    ),
}
_RESEGMENTATION = {
    "range": Rule(
        "float",
        sequence=True,
        lengths=(2,),
        item_nullable=True,
        nullable=True,
        expected="[low, high] (null for an open end)",
    ),
    "outlier_sigma": _positive(nullable=True),
}
_METHOD = Rule("str", choices=_DISCRETISATION_METHODS, expected=_one_of(_DISCRETISATION_METHODS))
_DISCRETISATION = {
    "fixed_bin_size": {"method": _METHOD, "bin_width": _positive(required=True)},
    "fixed_bin_number": {
        "method": _METHOD,
        "bin_count": Rule("int", required=True, low=1, expected="a whole number >= 1"),
    },
    "none": {"method": _METHOD},
}
_FILTER_TYPE = Rule("str", choices=tuple(FILTER_SETTINGS), expected=_one_of(FILTER_SETTINGS))


def _section(
    value, rules: dict[str, Rule], where: str, wording: Wording = _NESTED
) -> dict[str, Any]:
    """`value` checked against `rules`; an unknown key suggests the closest one."""

    def hint(key) -> str:
        match = closest(str(key), rules)
        return f"{where}: unknown key {key!r}" + (
            f"; did you mean {match!r}?" if match is not None else f"; allowed: {', '.join(rules)}"
        )

    return check_mapping(value, rules, where, hint=hint, wording=wording)


def _parse(data: Mapping[str, Any], where: str) -> IbsiConfig:
    if "filter" in data:
        for key in ("aggregation", "discretisation", "ivh_discretisation"):
            if key in data:
                raise SettingsError(
                    f"{where}: {key!r} is not used with a filter (IBSI 2 computes the intensity "
                    "statistics of the response map only); remove it"
                )
        top = _section(data, _FILTER_SECTIONS, where, _TOP)
    else:
        top = _section(data, _SECTIONS, where, _TOP)
    interpolation = None
    if top.get("interpolation") is not None:
        interpolation = _interpolation(top["interpolation"], f"{where}: interpolation")
    resegment_range, outlier_sigma = None, None
    if top.get("resegmentation") is not None:
        reseg = _section(top["resegmentation"], _RESEGMENTATION, f"{where}: resegmentation")
        if reseg.get("range") is not None:
            resegment_range = _range(reseg["range"], f"{where}: resegmentation.range")
        outlier_sigma = reseg.get("outlier_sigma")
    if "filter" in top:
        filter_ = _filter(top["filter"], f"{where}: filter")
        return IbsiConfig(
            top["name"], None, interpolation, resegment_range, outlier_sigma, None, None, filter_
        )
    return IbsiConfig(
        name=top["name"],
        aggregation=top["aggregation"],
        interpolation=interpolation,
        resegment_range=resegment_range,
        outlier_sigma=outlier_sigma,
        discretisation=_discretisation(top["discretisation"], f"{where}: discretisation"),
        ivh_discretisation=_discretisation(
            top["ivh_discretisation"], f"{where}: ivh_discretisation"
        ),
    )


def _filter(value: Mapping[str, Any], context: str) -> FilterSettings:
    """The ``filter`` section: ``type`` and the type's parameters, one response map."""
    kind = check_value(_FILTER_TYPE, value.get("type"), f"{context}.type", wording=_NESTED)
    settings = FILTER_SETTINGS[kind].from_mapping(
        {k: v for k, v in value.items() if k != "type"}, where=context
    )
    swept = [key for key, v in settings.to_mapping().items() if isinstance(v, tuple) and len(v) > 1]
    if swept:
        raise SettingsError(
            f"{context} {swept[0]!r}: give one value; IBSI mode computes one response map"
        )
    return settings


def _interpolation(value: Mapping[str, Any], context: str) -> Interpolation:
    checked = _section(value, _INTERPOLATION, context)
    spacing_xyz = tuple(None if s is None else float(s) for s in checked["spacing_xyz_mm"])
    if all(s is None for s in spacing_xyz):
        raise SettingsError(
            f"{context}.spacing_xyz_mm: every axis is null; leave interpolation out instead"
        )
    return Interpolation(
        spacing_zyx_mm=spacing_xyz[::-1],
        image=checked["image"],
        round_intensities=checked["round_intensities"],
        roi=checked["roi"],
        partial_volume_threshold=checked.get("partial_volume_threshold", 0.5),
    )


def _discretisation(value: Mapping[str, Any], context: str) -> Discretisation:
    method = check_value(_METHOD, value.get("method"), f"{context}.method", wording=_NESTED)
    checked = _section(value, _DISCRETISATION[method], context)
    return Discretisation(
        method, bin_width=checked.get("bin_width"), bin_count=checked.get("bin_count")
    )


def _range(value: tuple, context: str) -> tuple[float | None, float | None]:
    low, high = (None if v is None else float(v) for v in value)
    if low is None and high is None:
        raise SettingsError(f"{context}: both ends open; write `range: null` for no range")
    if low is not None and high is not None and low > high:
        raise SettingsError(f"{context}: low {low} is above high {high}")
    return low, high
