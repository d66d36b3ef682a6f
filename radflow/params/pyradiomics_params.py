"""Read PyRadiomics parameter files (YAML or JSON) unchanged.

A parameter file has up to four sections, read as PyRadiomics 3.0.1 reads
them (``RadiomicsFeatureExtractor._applyParams``):

- ``imageType``: image type -> custom settings; absent or ``{}``: Original only;
- ``featureClass``: class -> list of features (``null`` or ``[]``: the
  class's default features); absent or ``{}``: every class, shape2D included;
- ``setting``: global settings (:class:`~radflow.params.extraction.Settings`);
- ``voxelSetting``: voxel-based extraction settings;
- ``mapSummary`` (radflow's own): per-ROI statistics of voxel-based maps as a feature class
  (:class:`~radflow.params.extraction.MapSummarySettings`).

YAML is read with the YAML 1.2 core schema that PyRadiomics' reader
(ruamel.yaml through pykwalify) uses, so ``1e-5`` is a number and ``yes`` is
a string, and duplicate keys are an error as they are there. A section
written but left empty (``setting:`` with nothing under it) is an error, as
in PyRadiomics: write ``{}`` or leave the section out.

Examples
--------
>>> params = load_params({"setting": {"binWidth": 10}, "featureClass": {"glcm": None}})
>>> params.settings.bin_width, list(params.feature_classes), list(params.image_types)
(10, ['glcm'], ['Original'])
>>> params_hash(params) == params_hash(load_params({"setting": {"binWidth": 10.0},
...                                                 "featureClass": {"glcm": []}}))
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from os import PathLike
from typing import Any

from radflow._config import load_config
from radflow.errors import SettingsError
from radflow.params.extraction import (
    ExtractionParams,
    MapSummarySettings,
    Settings,
    VoxelSettings,
    all_feature_classes,
)

__all__ = ["load_params", "params_hash", "params_to_dict"]

_SECTIONS = ("imageType", "featureClass", "setting", "voxelSetting", "mapSummary")
_OLD_SECTION_NAMES = {
    "inputImage": "imageType",
    "enabledImageTypes": "imageType",
    "enabledFeatures": "featureClass",
    "settings": "setting",
}


def load_params(
    source: str | PathLike | Mapping[str, Any] | ExtractionParams | None = None,
) -> ExtractionParams:
    """Validated extraction parameters from a PyRadiomics parameter file or mapping.

    Parameters
    ----------
    source : str, path-like, mapping, ExtractionParams or None
        Path of a ``.yaml``/``.yml`` or ``.json`` parameter file, a mapping
        with the same sections, parameters already loaded (returned as
        they are), or None for PyRadiomics' defaults without a parameter
        file (Original image, every class but shape2D).

    Returns
    -------
    ExtractionParams

    Raises
    ------
    SettingsError
        The file is missing or unreadable, or a section, key or value is
        invalid; the message names the file, the key, the value and what is
        allowed.
    """
    if source is None:
        return ExtractionParams()
    if isinstance(source, ExtractionParams):
        return source
    if isinstance(source, Mapping):
        origin, data = "parameters", source
    elif isinstance(source, (str, PathLike)):
        origin, data = str(source), load_config(source, what="parameter file")
    else:
        raise SettingsError(
            f"parameters must be a file path, a mapping or None, got {type(source).__name__}"
        )
    try:
        return _from_mapping(data)
    except SettingsError as exc:
        raise SettingsError(f"{origin}: {exc}") from None


def params_to_dict(params: ExtractionParams) -> dict[str, Any]:
    """The parameters as a normalised, JSON-serialisable PyRadiomics mapping.

    Every setting is written out with its value in force (defaults
    included), floats as floats, interpolators by name, so two files that
    mean the same give the same dict. ``load_params`` reads it back.
    """
    out = {
        "imageType": {
            name: {key: list(v) if isinstance(v, tuple) else v for key, v in custom.items()}
            for name, custom in params.image_types.items()
        },
        "featureClass": {
            name: None if names is None else list(names)
            for name, names in params.feature_classes.items()
        },
        "setting": params.settings.to_mapping(),
        "voxelSetting": params.voxel_settings.to_mapping(),
    }
    if params.map_summary is not None:  # only when given: files without it keep their hash
        out["mapSummary"] = params.map_summary.to_mapping()
    return out


def params_hash(params: ExtractionParams) -> str:
    """Short stable hash (16 hex digits of SHA-256) of the normalised parameters.

    It ignores the order of image types, classes and feature names, which
    change only the order of output columns, and whether a number is written
    ``25`` or ``25.0`` — except a LoG ``sigma``, whose spelling names the
    image type (``log-sigma-1-mm-3D`` vs ``log-sigma-1-0-mm-3D``).
    """
    normalised = _floats(params_to_dict(params))
    # How much memory a voxel extraction may use changes no value.
    normalised["voxelSetting"].pop("memoryBudget", None)
    normalised["featureClass"] = {
        name: None if names is None else sorted(names)
        for name, names in normalised["featureClass"].items()
    }
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _floats(value, key=None):
    """``value`` with every integer written as a float, LoG sigmas excepted."""
    if isinstance(value, dict):
        return {k: _floats(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v, key) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and key != "sigma":
        return float(value)
    return value


def _from_mapping(data: Any) -> ExtractionParams:
    if data is None:
        raise SettingsError(
            f"the parameter file is empty; expected sections {', '.join(_SECTIONS)}"
        )
    if not isinstance(data, Mapping):
        raise SettingsError(
            f"expected a mapping with sections {', '.join(_SECTIONS)}, got {type(data).__name__}"
        )
    for key in data:
        if key not in _SECTIONS:
            hint = (
                f"; {key!r} is an old name of {_OLD_SECTION_NAMES[key]!r}"
                if key in _OLD_SECTION_NAMES
                else ""
            )
            raise SettingsError(f"unknown section {key!r}{hint}; sections: {', '.join(_SECTIONS)}")
        if not isinstance(data[key], Mapping):
            shown = "empty (null)" if data[key] is None else f"a {type(data[key]).__name__}"
            raise SettingsError(f"section {key!r} is {shown}; write `{key}: {{}}` or leave it out")
    image_types = data.get("imageType") or {"Original": {}}
    feature_classes = data.get("featureClass") or all_feature_classes()
    return ExtractionParams(
        image_types=dict(image_types),
        feature_classes=dict(feature_classes),
        settings=Settings.from_mapping(data.get("setting")),
        voxel_settings=VoxelSettings.from_mapping(data.get("voxelSetting")),
        map_summary=(
            MapSummarySettings.from_mapping(data["mapSummary"]) if "mapSummary" in data else None
        ),
    )
