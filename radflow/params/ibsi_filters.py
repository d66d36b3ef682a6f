"""Typed settings of the IBSI 2 filter image types (``Mean``, ``LoGIBSI``, ``Laws``, ``Gabor``...).

Besides PyRadiomics' image types, radflow has its own: the IBSI 2
convolutional filters (:data:`~radflow.params.names.IBSI_FILTER_TYPES`).
Their parameters are typed :class:`FilterSettings` (one class per type, keys
as the keyword arguments of the :mod:`radflow.filters.ibsi` functions) given
in the type's ``imageType`` entry only, never in the ``setting`` section; the
entry may also override the settings that apply after filtering
(``binWidth``, ``distances``...). The same objects are the ``filter`` section
of an IBSI configuration (:mod:`radflow.params.ibsi`). Keys, defaults and the
feature-name prefixes are documented in :mod:`radflow.filters.image_types`.
Values are checked with the rules of :mod:`radflow._config`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from radflow._config import Rule, check_value, suggest
from radflow.errors import SettingsError
from radflow.params.schema import (
    BOUNDARY,
    DECOMPOSITION,
    GLOBAL_ONLY,
    LAWS_KERNEL,
    PYRADIOMICS_FILTER_KEYS,
    SETTING_KEYS,
    WAVELET,
)

__all__ = [
    "FILTER_SETTINGS",
    "FilterSettings",
    "GaborFilter",
    "LawsFilter",
    "LoGIBSIFilter",
    "MeanFilter",
    "SimoncelliFilter",
    "WaveletIBSIFilter",
    "filter_settings",
]


@dataclass(frozen=True)
class _Param:
    """One parameter of an IBSI filter image type."""

    rule: Rule
    sweep: bool = False  # a list of values gives one response map per value
    only_if: tuple[str, bool] | None = (
        None  # applies only while this boolean parameter has this value
    )
    required: bool = False  # no default (when it applies)


def _token(value: float) -> str:
    """A number as written in an image-type name: shortest digits, positional, 'p' for the point."""
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

    def __post_init__(self) -> None:
        fields = self.__dataclass_fields__
        given = {
            attr: getattr(self, attr)
            for attr in self._PARAMS
            if fields[attr].default is dataclasses.MISSING
            or getattr(self, attr) != fields[attr].default
        }
        for attr, value in self._checked(given, f"{self.image_type} setting").items():
            object.__setattr__(self, attr, value)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any] | None, *, where: str | None = None
    ) -> FilterSettings:
        """Settings from ``{key: value}``: an ``imageType`` entry's filter keys, an IBSI ``filter``.

        `where` names the section in error messages.
        """
        where = where or f"{cls.image_type} setting"
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise SettingsError(f"{where}s must be a mapping of key to value, got {mapping!r}")
        for key in mapping:
            if key not in cls._PARAMS:
                raise SettingsError(
                    f"{where}: unknown key {key!r}{suggest(str(key), cls._PARAMS)}; "
                    f"{cls.image_type} keys: {', '.join(cls._PARAMS)}"
                )
        return cls(**cls._checked(dict(mapping), where))

    @classmethod
    def _checked(cls, given: dict[str, Any], where: str) -> dict[str, Any]:
        """Every parameter, normalised: the given ones checked, the others at their default."""
        fields = cls.__dataclass_fields__
        out: dict[str, Any] = {}
        for attr, param in cls._PARAMS.items():
            applies = param.only_if is None or out[param.only_if[0]] == param.only_if[1]
            condition = (
                ""
                if param.only_if is None
                else f" when {param.only_if[0]} is {str(param.only_if[1]).lower()}"
            )
            if attr in given:
                if not applies:
                    raise SettingsError(
                        f"{where} {attr!r}: {given[attr]!r} has no effect unless "
                        f"{param.only_if[0]} is {str(param.only_if[1]).lower()}; leave it out"
                    )
                value = given[attr]
                if param.sweep:
                    values = value if isinstance(value, (list, tuple)) else (value,)
                    if len(values) == 0:
                        raise SettingsError(
                            f"{where} {attr!r}: [] is not allowed; expected one value or a "
                            "non-empty list (one response map each)"
                        )
                    out[attr] = tuple(
                        dict.fromkeys(
                            check_value(param.rule, v, f"{where} {attr!r}") for v in values
                        )
                    )
                else:
                    out[attr] = check_value(param.rule, value, f"{where} {attr!r}")
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
        """``{key: value}`` of the parameters that apply (sweeps as tuples).

        :meth:`from_mapping` reads it back.
        """
        out: dict[str, Any] = {}
        for attr, param in self._PARAMS.items():
            if param.only_if is None or out[param.only_if[0]] == param.only_if[1]:
                out[attr] = getattr(self, attr)
        return out

    def images(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """``(image name, filter function's keyword arguments)`` of each response map, in order.

        The image name is the prefix of its feature names; the keyword
        arguments exclude the image and ``spacing_zyx``. Sweeps vary in
        parameter order, the last fastest.
        """
        sweeps = [attr for attr, param in self._PARAMS.items() if param.sweep]
        default_boundary = self.__dataclass_fields__["boundary"].default
        out = []
        for combination in itertools.product(*(getattr(self, attr) for attr in sweeps)):
            values = {attr: getattr(self, attr) for attr in self._PARAMS} | dict(
                zip(sweeps, combination)
            )
            name, kwargs = self._image(values)
            if values["boundary"] != default_boundary:
                name += f"-{values['boundary']}"
            out.append((name, kwargs))
        return tuple(out)

    def _image(self, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError


_DIMENSIONS = Rule("int", low=2, high=3)
_ROTATION_INVARIANT = Rule("bool")


def _pooling(*choices: str) -> _Param:
    return _Param(Rule("str", choices=choices), only_if=("rotation_invariant", True))


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
        "support_voxels": _Param(Rule("int", low=1), sweep=True, required=True),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(BOUNDARY),
    }
    support_voxels: tuple[int, ...]
    dimensions: int = 3
    boundary: str = "mirror"

    @classmethod
    def _check(cls, values, where):
        even = [m for m in values["support_voxels"] if m % 2 == 0]
        if even:
            raise SettingsError(
                f"{where} 'support_voxels': {even[0]} is not allowed; expected an odd number "
                "of voxels (the neighbourhood is centred on the voxel)"
            )

    def _image(self, v):
        kwargs = {
            "support_voxels": v["support_voxels"],
            "boundary": v["boundary"],
            "dimensions": v["dimensions"],
        }
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
        "sigma_mm": _Param(Rule("float", low=0, low_exclusive=True), sweep=True, required=True),
        "truncate": _Param(Rule("float", low=0, low_exclusive=True)),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(BOUNDARY),
    }
    sigma_mm: tuple[float, ...]
    truncate: float = 4.0
    dimensions: int = 3
    boundary: str = "mirror"

    def _image(self, v):
        kwargs = {
            "sigma_mm": v["sigma_mm"],
            "truncate": v["truncate"],
            "boundary": v["boundary"],
            "dimensions": v["dimensions"],
        }
        return (
            f"logibsi-s{_token(v['sigma_mm'])}mm-t{_token(v['truncate'])}-{v['dimensions']}D",
            kwargs,
        )


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
        "kernel": _Param(LAWS_KERNEL, sweep=True, required=True),
        "energy_distance": _Param(Rule("int", nullable=True, low=0)),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "pooling": _pooling("max", "average"),
        "boundary": _Param(BOUNDARY),
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
        kwargs = {
            key: v[key]
            for key in ("kernel", "boundary", "rotation_invariant", "pooling", "energy_distance")
        }
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
        "sigma_mm": _Param(Rule("float", low=0, low_exclusive=True), sweep=True, required=True),
        "wavelength_mm": _Param(
            Rule("float", low=0, low_exclusive=True), sweep=True, required=True
        ),
        "gamma": _Param(Rule("float", low=0, low_exclusive=True), sweep=True),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "theta_deg": _Param(
            Rule("float", low=0, high=360, high_exclusive=True),
            only_if=("rotation_invariant", False),
        ),
        "theta_step_deg": _Param(
            Rule("float", low=0, low_exclusive=True, high=360),
            only_if=("rotation_invariant", True),
            required=True,
        ),
        "pooling": _pooling("average", "max"),
        "response": _Param(Rule("str", choices=("modulus", "real"))),
        "orthogonal_planes": _Param(Rule("bool")),
        "boundary": _Param(BOUNDARY),
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
        name = (
            f"gabor-s{_token(v['sigma_mm'])}mm-g{_token(v['gamma'])}"
            f"-l{_token(v['wavelength_mm'])}mm"
        )
        kwargs = {
            "sigma_mm": v["sigma_mm"],
            "wavelength_mm": v["wavelength_mm"],
            "gamma": v["gamma"],
            "theta_rad": math.radians(v["theta_deg"]),
            "rotation_invariant": v["rotation_invariant"],
            "theta_step_rad": None,
            "pooling": v["pooling"],
            "response": v["response"],
            "orthogonal_planes": v["orthogonal_planes"],
            "boundary": v["boundary"],
        }
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
        "wavelet": _Param(WAVELET, required=True),
        "decomposition": _Param(DECOMPOSITION, sweep=True, required=True),
        "level": _Param(Rule("int", low=1), sweep=True),
        "rotation_invariant": _Param(_ROTATION_INVARIANT),
        "pooling": _pooling("average", "max"),
        "boundary": _Param(BOUNDARY),
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
        kwargs = {
            key: v[key]
            for key in (
                "wavelet",
                "decomposition",
                "level",
                "boundary",
                "rotation_invariant",
                "pooling",
            )
        }
        return name, kwargs


@dataclass(frozen=True)
class SimoncelliFilter(FilterSettings):
    """``Simoncelli``: :func:`radflow.filters.ibsi.simoncelli_filter` (non-separable, by FFT).

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
        "level": _Param(Rule("int", low=1), sweep=True),
        "dimensions": _Param(_DIMENSIONS),
        "boundary": _Param(BOUNDARY),
        "frequency_grid": _Param(Rule("str", choices=("ibsi", "dft"))),
    }
    level: tuple[int, ...] = (1,)
    dimensions: int = 3
    boundary: str = "periodic"
    frequency_grid: str = "ibsi"

    def _image(self, v):
        name = f"simoncelli-level{v['level']}-{v['dimensions']}D" + (
            "-dft" if v["frequency_grid"] == "dft" else ""
        )
        return name, {key: v[key] for key in ("level", "dimensions", "boundary", "frequency_grid")}


#: IBSI filter image type -> its settings class.
FILTER_SETTINGS: dict[str, type[FilterSettings]] = {
    cls.image_type: cls
    for cls in (
        MeanFilter,
        LoGIBSIFilter,
        LawsFilter,
        GaborFilter,
        WaveletIBSIFilter,
        SimoncelliFilter,
    )
}


def filter_settings(
    image_type: str, entry: Mapping[str, Any] | None, *, where: str | None = None
) -> FilterSettings:
    """The typed filter settings of an IBSI filter type's ``imageType`` entry.

    Parameters
    ----------
    image_type : str
        One of :data:`~radflow.params.names.IBSI_FILTER_TYPES`.
    entry : mapping or None
        The entry: the filter's keys, and optionally settings that apply
        after filtering (``binWidth``, ``distances``...), which are checked
        by :class:`~radflow.params.extraction.ExtractionParams` and skipped here.
    where : str, optional
        Section named in error messages (default ``imageType '<type>'``).

    Raises
    ------
    SettingsError
        Unknown type; unknown key, a PyRadiomics filter's key or one applied
        before filtering; a missing or invalid value.
    """
    if image_type not in FILTER_SETTINGS:
        raise SettingsError(
            f"{image_type!r} is not an IBSI filter image type; known: {', '.join(FILTER_SETTINGS)}"
        )
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
        elif key in GLOBAL_ONLY:
            raise SettingsError(
                f"{where}: setting {key!r} cannot differ per image type (it is applied before "
                "any filter); move it to the setting section"
            )
        elif key not in SETTING_KEYS or key in PYRADIOMICS_FILTER_KEYS:
            raise SettingsError(
                f"{where}: unknown key {key!r}{suggest(str(key), cls._PARAMS)}; "
                f"{image_type} keys: {', '.join(cls._PARAMS)} (and the settings applied after "
                "filtering, e.g. binWidth)"
            )
    return cls.from_mapping(own, where=f"{where} setting")
