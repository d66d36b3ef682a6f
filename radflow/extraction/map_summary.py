"""Per-ROI statistics of voxel-based feature maps, as a feature class of segment mode.

A parameter file's ``mapSummary`` section (radflow's, beside PyRadiomics' four)::

    mapSummary:
      classes: {glcm: [Contrast, JointEntropy], firstorder: [Entropy]}   # null: the defaults
      statistics: [Mean, StandardDeviation, 10Percentile, 25Percentile, Median,
                   75Percentile, 90Percentile]                            # the default list

makes a segment extraction (``radflow.extract``, ``radflow extract``, batch CSV, ``radflow run``)
compute, for every enabled image type, the maps of those features in the ROI with the file's
``voxelSetting`` (``kernelRadius``, ``maskedKernel``; the machinery of voxel mode,
:func:`radflow.extraction.voxel.map_values`, on the ROI box padded by ``kernelRadius`` exactly
as PyRadiomics' voxel mode crops it), and summarise each map over the ROI's voxels. Keys:
``<imageType>_<class>map_<Feature>_<Statistic>`` (``original_glcmmap_Contrast_Mean``), so that
a feature table gets columns ``glcmmap_Contrast_Mean`` and the modelling layer reads
heterogeneity maps like any other feature.

Statistics, over the map's values at the ROI voxels (NumPy's definitions):

========================  ===============================================================
``Mean``                  ``np.mean``
``StandardDeviation``     ``np.std`` (``ddof=0``, as PyRadiomics' first-order StandardDeviation)
``Minimum``, ``Maximum``  ``np.min``, ``np.max``
``<p>Percentile``         ``np.percentile(values, p)`` (linear interpolation), p = 10, 25, 75, 90
``Median``                ``np.median``
========================  ===============================================================

Voxels where a map is NaN (a kernel without pairs in some direction, a flat kernel ...) are left
out; their number per map is in ``diagnostics_MapSummary_NaNVoxels`` (maps with none are not
listed), the ROI's voxel count in ``diagnostics_MapSummary_Voxels``. A map with no finite value
gives NaN for every statistic. Voxel mode (``voxel_based=True``, ``radflow maps``) returns the
maps themselves and ignores the section.

Errors (:class:`~radflow.errors.SettingsError`, when the file is read or before anything is
computed): an unknown section key, class, feature or statistic (with "did you mean"), a shape
class (no map), a deprecated feature PyRadiomics' voxel mode declines
(:data:`radflow.extraction.voxel.DECLINED`), maps over the memory budget
(:func:`radflow.extraction.voxel.check_memory`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from radflow.errors import SettingsError
from radflow.extraction import voxel
from radflow.features.registry import FAMILY_MODULES, family_module
from radflow.params.extraction import ExtractionParams, Settings
from radflow.params.names import MAP_SUMMARY_STATISTICS

__all__ = [
    "NAN_KEY",
    "STATISTICS",
    "VOXELS_KEY",
    "check",
    "check_memory",
    "diagnostics",
    "feature_columns",
    "summarise",
]

#: Statistic name -> function of a 1-D float64 array of finite values.
STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "Mean": np.mean,
    "StandardDeviation": np.std,
    "Minimum": np.min,
    "10Percentile": lambda v: np.percentile(v, 10),
    "25Percentile": lambda v: np.percentile(v, 25),
    "Median": np.median,
    "75Percentile": lambda v: np.percentile(v, 75),
    "90Percentile": lambda v: np.percentile(v, 90),
    "Maximum": np.max,
}

#: Diagnostics entry: map key -> number of ROI voxels where the map is NaN (only maps with some).
NAN_KEY = "diagnostics_MapSummary_NaNVoxels"
#: Diagnostics entry: ROI voxels each map is summarised over (before NaN voxels are left out).
VOXELS_KEY = "diagnostics_MapSummary_Voxels"


def _names(cls: str, names: Sequence[str] | None) -> list[str]:
    """The features of a class, as given or its defaults in PyRadiomics' order."""
    if names is not None:
        return list(names)
    return sorted(
        (f.name for f in family_module(cls).FEATURES if f.default),
        key="get{}FeatureValue".format,
    )


def _default_names(cls: str, _names_given: None) -> list[str]:
    return _names(cls, None)


def check(params: ExtractionParams) -> None:
    """Refuse a ``mapSummary`` voxel mode cannot compute, before anything is read.

    Raises
    ------
    SettingsError
        A deprecated feature voxel mode declines, or a class without a voxel module.
    """
    summary = params.map_summary
    if summary is None:
        return
    for cls, names in summary.classes.items():
        declined = sorted(set(names or ()) & voxel.DECLINED.get(cls, frozenset()))
        if declined:
            raise SettingsError(
                f"mapSummary class {cls!r}: {', '.join(declined)} deprecated in PyRadiomics, "
                "which computes no map of it; summarise the feature it duplicates instead"
            )
    voxel.check(
        ExtractionParams(
            image_types=params.image_types,
            feature_classes=dict(summary.classes),
            settings=params.settings,
            voxel_settings=params.voxel_settings,
        )
    )


def feature_columns(params: ExtractionParams) -> tuple[str, ...]:
    """The table columns of the summaries, ``<class>map_<Feature>_<Statistic>``, canonical order.

    Classes in the registry's order, features sorted, statistics in
    :data:`~radflow.params.names.MAP_SUMMARY_STATISTICS` order (as
    :func:`radflow.pipeline.plan.feature_columns` orders the other columns).
    """
    summary = params.map_summary
    if summary is None:
        return ()
    stats = [s for s in MAP_SUMMARY_STATISTICS if s in summary.statistics]
    return tuple(
        f"{cls}map_{name}_{stat}"
        for cls in FAMILY_MODULES
        if cls in summary.classes
        for name in sorted(_names(cls, summary.classes[cls]))
        for stat in stats
    )


def check_memory(box_zyx: Sequence[int], params: ExtractionParams) -> None:
    """Refuse summaries whose maps (one image type at a time) exceed the memory budget."""
    summary = params.map_summary
    if summary is not None:
        voxel.check_memory(
            box_zyx,
            params,
            summary.classes,
            _default_names,
            images_at_once=1,
            what="mapSummary",
        )


def summarise(
    image_type: str,
    values: np.ndarray,
    roi: np.ndarray,
    settings: Settings,
    params: ExtractionParams,
    spacing_zyx: Sequence[float],
    nan_voxels: dict[str, int] | None = None,
) -> dict[str, float]:
    """The summaries of one (filtered) image's maps: ``{key: value}`` in file order.

    Parameters
    ----------
    image_type : str
        The image type's name in the keys (``original``, ``log-sigma-1-0-mm-3D`` ...).
    values : (z, y, x) array
        The filtered intensities of the ROI box padded by ``kernelRadius`` (clipped to the
        image): :func:`radflow.extraction.voxel.padded_box`.
    roi : (z, y, x) array of bool
        The ROI in that box.
    settings : Settings
        The settings in force for this image type (binning, force2D, distances ...).
    params : ExtractionParams
        For ``mapSummary`` and ``voxelSetting``.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm.
    nan_voxels : dict, optional
        Filled with ``{map key: number of NaN voxels}`` for the maps that have some.

    Returns
    -------
    dict of str to float
        ``<imageType>_<class>map_<Feature>_<Statistic>`` -> value (NaN when the map has no
        finite value).
    """
    summary = params.map_summary
    if summary is None:
        return {}
    maps = voxel.map_values(
        values, roi, settings, params, summary.classes, _default_names, spacing_zyx
    )
    out: dict[str, float] = {}
    for (cls, name), result in maps.items():
        key = f"{image_type}_{cls}map_{name}"
        result = np.asarray(result, dtype=np.float64)
        nan = np.isnan(result)
        kept = result[~nan]
        if nan_voxels is not None and nan.any():
            nan_voxels[key] = int(nan.sum())
        for stat in summary.statistics:
            out[f"{key}_{stat}"] = float(STATISTICS[stat](kept)) if kept.size else float("nan")
    return out


def diagnostics(roi_voxels: int, nan_voxels: Mapping[str, int]) -> dict[str, Any]:
    """The summaries' diagnostics entries (:data:`VOXELS_KEY`, :data:`NAN_KEY`)."""
    return {VOXELS_KEY: int(roi_voxels), NAN_KEY: dict(nan_voxels)}
