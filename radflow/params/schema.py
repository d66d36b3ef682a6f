"""The rules of PyRadiomics' ``setting`` and ``voxelSetting`` sections (radflow._config.Rule).

Keys are PyRadiomics' own (``binWidth``); the typed objects of
:mod:`radflow.params.extraction` have snake_case attributes (``bin_width``).
:data:`SETTING_KEYS` and :data:`VOXEL_SETTING_KEYS` map one to the other,
:data:`SETTING_RULES` and :data:`VOXEL_SETTING_RULES` say what each key may hold.
Types, ranges and defaults are those of PyRadiomics 3.0.1
(``radiomics/schemas/paramSchema.yaml``), with the stricter differences listed
in :mod:`radflow.params.extraction`.

The value kinds PyRadiomics' schema has no word for are rules here too, shared
with the IBSI filter settings (:mod:`radflow.params.ibsi_filters`):
:data:`INTERPOLATOR` (a SimpleITK interpolator name or its PyRadiomics integer
code 1-10, stored as the name), :data:`WAVELET` (a discrete PyWavelets
wavelet), :data:`BOUNDARY`, :data:`LAWS_KERNEL`, :data:`DECOMPOSITION`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from numbers import Integral
from typing import Any

from radflow._config import Rule, check_value
from radflow._lazy import load
from radflow.params.names import BOUNDARIES, INTERPOLATORS, LAWS_KERNEL_NAMES

pywt = load("pywt")  # only needed when a wavelet is named

__all__ = [
    "BOUNDARY",
    "DECOMPOSITION",
    "GLOBAL_ONLY",
    "INTERPOLATOR",
    "LAWS_KERNEL",
    "MAP_SUMMARY_RULES",
    "PYRADIOMICS_FILTER_KEYS",
    "SETTING_EXTENSION_KEYS",
    "SETTING_EXTENSION_RULES",
    "SETTING_KEYS",
    "SETTING_RULES",
    "VOXEL_EXTENSION_KEYS",
    "VOXEL_EXTENSION_RULES",
    "VOXEL_SETTING_KEYS",
    "VOXEL_SETTING_RULES",
    "WAVELET",
    "check_fields",
    "fields_to_mapping",
]

_INTERPOLATOR_BY_CODE = {code: name for name, code in INTERPOLATORS.items()}


def _interpolator(value: Any) -> str:
    if isinstance(value, str) and value in INTERPOLATORS:
        return value
    if (
        isinstance(value, Integral)
        and not isinstance(value, bool)
        and int(value) in _INTERPOLATOR_BY_CODE
    ):
        return _INTERPOLATOR_BY_CODE[int(value)]
    raise ValueError(value)


def _discrete_wavelet(value: str) -> str:
    if value not in pywt.wavelist(kind="discrete"):
        raise ValueError(value)
    return value


def _laws_kernel(value: str) -> str:
    if len(value) not in (4, 6) or any(
        value[i : i + 2] not in LAWS_KERNEL_NAMES for i in range(0, len(value), 2)
    ):
        raise ValueError(value)
    return value


def _decomposition(value: str) -> str:
    if not re.fullmatch(r"[LH]{2,3}", value):
        raise ValueError(value)
    return value


#: A SimpleITK interpolator name, or PyRadiomics' integer code 1-10 (SimpleITK 1.x numbering).
INTERPOLATOR = Rule(
    "any",
    nullable=True,
    convert=_interpolator,
    expected=f"one of {', '.join(INTERPOLATORS)} or an integer code 1-10",
)
#: A discrete PyWavelets wavelet (continuous ones pass PyRadiomics' check but fail in its filter).
WAVELET = Rule(
    "str",
    convert=_discrete_wavelet,
    expected="a discrete PyWavelets wavelet name (pywt.wavelist(kind='discrete'), "
    "e.g. 'coif1', 'haar', 'db2')",
)
#: An IBSI boundary condition.
BOUNDARY = Rule("str", choices=BOUNDARIES)
#: Laws 1D kernels, one per axis in order x, y[, z].
LAWS_KERNEL = Rule(
    "str",
    convert=_laws_kernel,
    expected=f"2 (2D) or 3 (3D) of {', '.join(LAWS_KERNEL_NAMES)} in axis order x, y[, z], "
    "e.g. 'L5E5E5'",
)
#: A wavelet decomposition, ``L`` or ``H`` per axis in order x, y[, z].
DECOMPOSITION = Rule(
    "str",
    convert=_decomposition,
    expected="'L' or 'H' for each of 2 or 3 axes in order x, y[, z], e.g. 'LLH'",
)

_WEIGHTING_NORMS = ("manhattan", "euclidean", "infinity", "no_weighting")
_POSITIVE = {"low": 0, "low_exclusive": True}

#: PyRadiomics ``setting`` key -> its rule.
SETTING_RULES: dict[str, Rule] = {
    # mask and ROI checks
    "label": Rule("int", **_POSITIVE),
    "label_channel": Rule("int", low=0),
    "minimumROIDimensions": Rule("int", low=1, high=3),
    "minimumROISize": Rule("int", nullable=True, **_POSITIVE),
    "geometryTolerance": Rule("float", nullable=True, **_POSITIVE),
    "correctMask": Rule("bool"),
    "additionalInfo": Rule("bool"),
    # discretisation
    "binWidth": Rule("float", nullable=True, **_POSITIVE),
    "binCount": Rule("int", nullable=True, **_POSITIVE),
    # normalisation, resampling, cropping
    "normalize": Rule("bool"),
    "normalizeScale": Rule("float", **_POSITIVE),
    "removeOutliers": Rule("float", nullable=True, **_POSITIVE),
    "resampledPixelSpacing": Rule("float", sequence=True, nullable=True, low=0, lengths=(2, 3)),
    "interpolator": INTERPOLATOR,
    "padDistance": Rule("int", low=0),
    "preCrop": Rule("bool"),
    # re-segmentation
    "resegmentRange": Rule("float", sequence=True, nullable=True, lengths=(1, 2)),
    "resegmentMode": Rule("str", choices=("absolute", "relative", "sigma")),
    "resegmentShape": Rule("bool"),
    # texture
    "distances": Rule("int", sequence=True, min_length=1, **_POSITIVE),
    "force2D": Rule("bool"),
    "force2Ddimension": Rule("int", low=0, high=2),
    "symmetricalGLCM": Rule("bool"),
    "weightingNorm": Rule("str", nullable=True, choices=_WEIGHTING_NORMS),
    "gldm_a": Rule("int", low=0),
    "voxelArrayShift": Rule("int"),
    # image types (filters)
    "sigma": Rule("float", sequence=True, **_POSITIVE),
    "start_level": Rule("int", low=0),
    "level": Rule("int", **_POSITIVE),
    "wavelet": WAVELET,
    "gradientUseSpacing": Rule("bool"),
    "lbp2DRadius": Rule("float", **_POSITIVE),
    "lbp2DSamples": Rule("int", low=1),
    "lbp2DMethod": Rule("str", choices=("default", "ror", "uniform", "var")),
    "lbp3DLevels": Rule("int", low=1),
    "lbp3DIcosphereRadius": Rule("float", **_POSITIVE),
    "lbp3DIcosphereSubdivision": Rule("int", low=0),
}

#: PyRadiomics ``setting`` key -> :class:`~radflow.params.extraction.Settings` attribute.
SETTING_KEYS: dict[str, str] = {
    "label": "label",
    "label_channel": "label_channel",
    "minimumROIDimensions": "minimum_roi_dimensions",
    "minimumROISize": "minimum_roi_size",
    "geometryTolerance": "geometry_tolerance",
    "correctMask": "correct_mask",
    "additionalInfo": "additional_info",
    "binWidth": "bin_width",
    "binCount": "bin_count",
    "normalize": "normalize",
    "normalizeScale": "normalize_scale",
    "removeOutliers": "remove_outliers",
    "resampledPixelSpacing": "resampled_spacing_xyz",
    "interpolator": "interpolator",
    "padDistance": "pad_distance",
    "preCrop": "pre_crop",
    "resegmentRange": "resegment_range",
    "resegmentMode": "resegment_mode",
    "resegmentShape": "resegment_shape",
    "distances": "distances",
    "force2D": "force_2d",
    "force2Ddimension": "force_2d_dimension",
    "symmetricalGLCM": "symmetrical_glcm",
    "weightingNorm": "weighting_norm",
    "gldm_a": "gldm_a",
    "voxelArrayShift": "voxel_array_shift",
    "sigma": "sigma",
    "start_level": "start_level",
    "level": "level",
    "wavelet": "wavelet",
    "gradientUseSpacing": "gradient_use_spacing",
    "lbp2DRadius": "lbp_2d_radius",
    "lbp2DSamples": "lbp_2d_samples",
    "lbp2DMethod": "lbp_2d_method",
    "lbp3DLevels": "lbp_3d_levels",
    "lbp3DIcosphereRadius": "lbp_3d_icosphere_radius",
    "lbp3DIcosphereSubdivision": "lbp_3d_icosphere_subdivision",
}

#: radflow's own ``setting`` keys (not PyRadiomics'): rule, and attribute of
#: :class:`~radflow.params.extraction.Settings`. Written out only when set (hash unchanged).
SETTING_EXTENSION_RULES: dict[str, Rule] = {
    "skeletonSpacing": Rule("float", nullable=True, **_POSITIVE),  # mm, skeleton class
    "habitatCount": Rule("int", nullable=True, **_POSITIVE),  # K, habitat class
}
SETTING_EXTENSION_KEYS: dict[str, str] = {
    "skeletonSpacing": "skeleton_spacing",
    "habitatCount": "habitat_count",
}

#: PyRadiomics ``voxelSetting`` key -> its rule.
VOXEL_SETTING_RULES: dict[str, Rule] = {
    "kernelRadius": Rule("int", **_POSITIVE),
    "maskedKernel": Rule("bool"),
    "initValue": Rule("float", finite=False),
    "voxelBatch": Rule("int", nullable=True, **_POSITIVE),
}

#: PyRadiomics ``voxelSetting`` key -> :class:`~radflow.params.extraction.VoxelSettings` attribute.
VOXEL_SETTING_KEYS: dict[str, str] = {
    "kernelRadius": "kernel_radius",
    "maskedKernel": "masked_kernel",
    "initValue": "init_value",
    "voxelBatch": "voxel_batch",
}

#: radflow's own ``voxelSetting`` keys (not PyRadiomics'): rule, and attribute.
VOXEL_EXTENSION_RULES: dict[str, Rule] = {
    "memoryBudget": Rule("float", nullable=True, **_POSITIVE),  # MiB
}
VOXEL_EXTENSION_KEYS: dict[str, str] = {"memoryBudget": "memory_budget_mib"}

#: radflow's ``mapSummary`` section (statistics of voxel maps as a feature class) -> its rule.
MAP_SUMMARY_RULES: dict[str, Rule] = {
    "classes": Rule("mapping", required=True),
    "statistics": Rule("str", sequence=True, min_length=1),
}

#: Settings PyRadiomics uses before any filter runs: an ``imageType`` entry cannot change them.
GLOBAL_ONLY = frozenset({
    "label", "label_channel", "minimumROIDimensions", "minimumROISize", "geometryTolerance",
    "correctMask", "additionalInfo", "normalize", "normalizeScale", "removeOutliers",
    "resampledPixelSpacing", "interpolator", "padDistance", "preCrop",
    "resegmentRange", "resegmentMode", "resegmentShape", "skeletonSpacing",
})  # fmt: skip

#: Keys of PyRadiomics' own filters: meaningless in an IBSI filter's entry.
PYRADIOMICS_FILTER_KEYS = frozenset({
    "sigma", "start_level", "level", "wavelet", "gradientUseSpacing", "lbp2DRadius", "lbp2DSamples",
    "lbp2DMethod", "lbp3DLevels", "lbp3DIcosphereRadius", "lbp3DIcosphereSubdivision",
})  # fmt: skip


def check_fields(obj: Any, rules: Mapping[str, Rule], keys: Mapping[str, str], where: str) -> None:
    """Check and normalise in place the attributes of a frozen dataclass, named by file key."""
    for key, attr in keys.items():
        object.__setattr__(
            obj, attr, check_value(rules[key], getattr(obj, attr), f"{where} {key!r}")
        )


def fields_to_mapping(obj: Any, keys: Mapping[str, str]) -> dict[str, Any]:
    """``{file key: value}`` of `obj`'s attributes, JSON-serialisable."""
    return {key: _plain(getattr(obj, attr)) for key, attr in keys.items()}


def _plain(value):
    """JSON-serialisable form; non-finite floats as strings, which load back as floats."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
