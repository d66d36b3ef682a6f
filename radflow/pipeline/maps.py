"""``radflow maps``: the voxel-based feature maps of every ROI of the store, on a Dask cluster.

The planning units are ``radflow run``'s (:func:`radflow.pipeline.plan.make_plan`: one per
series, ROI and image-type group); each unit's key is derived from the run task's key (the
series' content fingerprint, the label's hash, the ROI, the group's parameters and the feature
set), so a changed series, label or parameter file recomputes, and an unchanged one is skipped
by ``--incremental``; the maps of an ROI no longer planned (removed from its label) are deleted
(a series ingested again is replaced, maps included). Each unit runs PyRadiomics' voxel mode
(:mod:`radflow.extraction.voxel`) on a worker; the client writes every map into the store on
the series' grid (:mod:`radflow.store.maps`):
``STORE/<case>/<series>/maps/<feature set>/<roi>/<map>``, float32, NaN outside the ROI and
where PyRadiomics gives NaN.

Large regions. A unit whose ROI box spans more than one chunk of the series (or of
``piece_zyx``) is split into chunk-aligned pieces, one task each: a piece computes the maps at
the ROI voxels inside its chunk only, and reads only its chunk plus a halo of
``max(kernelRadius, largest distance)`` voxels (clipped to the ROI box padded by
``kernelRadius``): every kernel of its voxels, and every GLCM offset the padded box keeps. What
belongs to the whole region (PyRadiomics' bin edges and ``Ng``, the grey levels present, the
GLCM offsets empty in every kernel) comes from one small task per unit, :func:`unit_stats`,
that reads the padded ROI box once; the stitched maps equal those of one piece exactly. (A
piece whose own box holds one grey level of a ROI that has more is computed on the padded box:
GLCM's MCC is 1 for a ROI of one level, which the piece alone cannot tell.) Splitting needs the
maps on the stored grid with the stored intensities, so it applies to the ``Original`` image
type without resampling, ``preCrop``, normalisation or re-segmentation; other units run in one
piece (filters read their own margin there).

Maps with ``resampledPixelSpacing`` would not lie on the series' grid: such units fail (a
settings error in the errors record). Each unit's pieces are kept by the client until the last
one arrives, then stitched and written (the client is the only writer).

Memory. A task refuses maps above ``voxelSetting: memoryBudget`` (default here: the Dask
worker's memory limit) before computing them (:func:`radflow.extraction.voxel.check_memory`),
a failure that is not permanent (a larger worker may run it).

Errors. A unit that fails (bad input: a :class:`~radflow.pipeline.tasks.TaskError`; or an
exception on the worker) is recorded in the errors record
``STORE/.maps-errors/<feature set>.json`` (one row per failed unit, the fields of ``radflow
run``'s errors table: :mod:`radflow.pipeline.outcomes`) and never stops the others; its maps
are left as they were. As in ``radflow run``, a ``permanent`` failure (bad input) is *known* to
the next run while the unit's key (series fingerprint, label, ROI, parameters) and radflow's
version are the same: an incremental run does not retry it and keeps its row;
:attr:`MapsSummary.new_failures` counts the others (``radflow maps`` exits 1 on those). The
record is rewritten by every run with the rows of its planned units only, so rows of series
ingested again or ROIs removed do not linger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
import traceback
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow._atomic import temporary_path
from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import RadflowError, SettingsError
from radflow.extraction.extractor import extract
from radflow.extraction.voxel import (
    DECLINED,
    SHAPE_CLASSES,
    MemoryBudgetError,
    check_memory,
    padded_box,
)
from radflow.features import voxel as voxel_features
from radflow.features._directions import offsets
from radflow.features.registry import features
from radflow.features.voxel._kernel import half_widths
from radflow.params.extraction import ExtractionParams
from radflow.pipeline.outcomes import (
    ClusterSummary,
    ErrorsRecord,
    check_retries,
    dask_session,
    document,
    error_row,
    finished,
    roi_place,
)
from radflow.pipeline.plan import Task, make_plan
from radflow.pipeline.progress import KNOWN_FAILURES
from radflow.pipeline.tasks import TaskError
from radflow.preprocess.discretise import discretise
from radflow.store import layout, ome
from radflow.store.chunks import DamagedChunkError
from radflow.store.maps import MAPS, map_tasks, maps_path, roi_folder, write_maps
from radflow.store.read import open_label, open_volume
from radflow.store.source import box_image

dask = load("dask")
distributed = load("distributed")

__all__ = [
    "MapTask",
    "MapsSummary",
    "RegionStats",
    "compute_maps",
    "errors_file",
    "maps",
    "plan_maps",
    "region_stats",
    "unit_stats",
]

_ERRORS = ".maps-errors"


@dataclass(frozen=True)
class MapTask:
    """One unit (``piece`` None) or one chunk-aligned piece of a unit's ROI box.

    ``unit`` is the run's :class:`~radflow.pipeline.plan.Task`; ``key`` the unit's maps key
    (pieces share it: ``piece_key`` tells them apart); ``roi_box`` the ROI's recorded box.
    """

    key: str
    unit: Task
    roi_box: tuple[tuple[int, int], ...] | None = None
    piece: tuple[tuple[int, int], ...] | None = None
    pieces: int = 1

    @property
    def piece_key(self) -> str:
        if self.piece is None:
            return self.key
        text = "-".join(f"{a}_{b}" for a, b in self.piece)
        return f"{self.key}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class MapsSummary(ClusterSummary):
    """What one ``radflow maps`` run did (``units``: series x ROI x image-type group).

    Failures and time: :class:`~radflow.pipeline.outcomes.ClusterSummary` (``radflow maps``
    exits 1 when ``new_failures`` > 0).
    """

    store: Path
    feature_set: str
    series: int = 0
    units: int = 0
    tasks: int = 0
    computed: int = 0
    maps_written: int = 0
    skipped: int = 0
    removed: int = 0

    def report(self) -> str:
        idle = f"nothing to compute: all {self.skipped} unit(s) are up to date"
        return self.compose_report(
            f"feature maps in {self.store}  (feature_set={self.feature_set})",
            [
                ("series in store", self.series),
                ("units planned", self.units),
                ("tasks (pieces)", self.tasks),
                ("computed", self.computed),
                ("maps written", self.maps_written),
                ("skipped (unchanged)", self.skipped),
                ("failed", self.failed_text),
                ("ROI maps removed", self.removed),
            ],
            idle=None if self.computed else idle,
            record=errors_file(self.store, self.feature_set),
            titles=("failures", KNOWN_FAILURES),
        )


def errors_file(store: str | Path, feature_set: str) -> Path:
    """The errors record of a feature set's maps: ``STORE/.maps-errors/<feature set>.json``."""
    return Path(store) / _ERRORS / f"{feature_set}.json"


def _splittable(params: ExtractionParams) -> bool:
    s = params.settings
    return (
        list(params.image_types) == ["Original"]
        and not (s.resampling or s.pre_crop or s.normalize)
        and s.resegment_range is None
    )


def _label_box(unit: Task):
    folder = Path(unit.store) / unit.case / unit.series / "labels" / unit.label_key
    boxes = (layout.node_json(folder).get("attributes", {}).get("radflow") or {}).get("boxes")
    box = (boxes or {}).get(str(unit.label))
    return tuple((int(a), int(b)) for a, b in box) if box else None


def _pieces(roi_box, chunks) -> list[tuple[tuple[int, int], ...]]:
    """The chunk-aligned parts of ``roi_box``: its intersections with the chunk grid."""
    axes = []
    for (start, stop), edge in zip(roi_box, chunks):
        first = start // edge * edge
        axes.append([(max(a, start), min(a + edge, stop)) for a in range(first, stop, edge)])
    return [tuple(p) for p in product(*axes)]


def plan_maps(
    store: str | Path,
    params,
    *,
    incremental: bool = False,
    piece_zyx: tuple[int, int, int] | None = None,
):
    """The plan of a maps run: ``(plan, todo MapTasks, skipped units, units)``.

    ``piece_zyx``: the piece shape (default: the series' chunks).
    """
    plan = make_plan(store, params)
    todo, skipped, units = [], 0, 0
    for unit in plan.tasks:
        units += 1
        key = "radflow-maps-" + hashlib.sha256(unit.key.encode()).hexdigest()[:32]
        folder = maps_path(
            unit.store,
            unit.case,
            unit.series,
            plan.feature_set,
            roi_folder(unit.label_key, unit.label),
        )
        if incremental and map_tasks(folder).get(unit.group, {}).get("key") == key:
            skipped += 1
            continue
        roi_box = _label_box(unit) if _splittable(unit.params) else None
        pieces = []
        if roi_box is not None:
            level = layout.node_json(Path(unit.store) / unit.case / unit.series / ome.LEVEL)
            chunks = piece_zyx or level["chunk_grid"]["configuration"]["chunk_shape"]
            pieces = _pieces(roi_box, chunks)
        if len(pieces) > 1:
            todo += [MapTask(key, unit, roi_box, p, len(pieces)) for p in pieces]
        else:
            todo.append(MapTask(key, unit, roi_box))
    return plan, todo, skipped, units


def _classes(params: ExtractionParams) -> dict:
    return {c: n for c, n in params.feature_classes.items() if c not in SHAPE_CLASSES}


def _grid_index(store, case, series, image: sitk.Image) -> tuple[int, int, int]:
    """The series' voxel index (z, y, x) of a map's first voxel."""
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    ref = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    ref.SetSpacing(attrs["spacing_zyx"][::-1])
    ref.SetOrigin(attrs["origin_zyx"][::-1])
    ref.SetDirection(attrs["direction_xyz"])
    index = ref.TransformPhysicalPointToContinuousIndex(image.GetOrigin())
    return tuple(round(v) for v in index[::-1])


def _whole(task: MapTask, params: ExtractionParams | None = None):
    """A unit in one piece: ``radflow.extract(..., voxel_based=True)`` on the store."""
    unit = task.unit
    params = unit.params if params is None else params
    if params.settings.resampling:
        raise SettingsError(
            "radflow maps writes the maps on the series' grid: remove resampledPixelSpacing "
            "(or use radflow extract --mode voxel for resampled maps)"
        )
    image = open_volume(unit.store, unit.case, unit.series)
    mask = open_label(unit.store, unit.case, unit.series, unit.label_key)
    result = extract(image, mask, params, label=unit.label, voxel_based=True)
    maps = {k: v for k, v in result.items() if isinstance(v, sitk.Image)}
    if not maps:
        return None, {}
    first = next(iter(maps.values()))
    start = _grid_index(unit.store, unit.case, unit.series, first)
    box = tuple(slice(a, a + n) for a, n in zip(start, first.GetSize()[::-1]))
    roi = sitk.GetArrayFromImage(box_image(mask, box)) == unit.label
    out = {}
    for name, img in maps.items():
        values = sitk.GetArrayFromImage(img).astype(np.float32)
        values[~roi] = np.nan
        out[name] = values
    return box, out


def _empty_offsets(kernel_mask, centres, steps, half) -> np.ndarray:
    """Per offset: True where no kernel of any centre holds a pair (both ends in the mask).

    A pair ``(p, p + o)`` lies in the kernel of centre ``c`` when along every axis
    ``max(p, p + o) - half <= c <= min(p, p + o) + half``: the centres in that box are counted
    from a summed-volume table.
    """
    shape = np.array(kernel_mask.shape)
    cmask = np.zeros(kernel_mask.shape, dtype=np.int64)
    cmask[tuple(centres.T)] = 1
    table = np.zeros(tuple(shape + 1), dtype=np.int64)
    table[1:, 1:, 1:] = cmask.cumsum(0).cumsum(1).cumsum(2)
    half = np.asarray(half)
    empty = np.ones(len(steps), dtype=bool)
    for a, step in enumerate(np.asarray(steps)):
        lo_src = np.maximum(0, -step)
        hi_src = np.minimum(shape, shape - step)
        if np.any(hi_src <= lo_src):
            continue
        src = tuple(slice(int(a0), int(b0)) for a0, b0 in zip(lo_src, hi_src))
        dst = tuple(slice(int(a0 + s), int(b0 + s)) for a0, b0, s in zip(lo_src, hi_src, step))
        p = np.argwhere(kernel_mask[src] & kernel_mask[dst]) + lo_src
        if not len(p):
            continue
        lo = np.clip(np.maximum(p, p + step) - half, 0, shape)
        hi = np.clip(np.minimum(p, p + step) + half + 1, 0, shape)
        hi = np.maximum(hi, lo)
        total = np.zeros(len(p), dtype=np.int64)
        for corner in product((0, 1), repeat=3):
            idx = tuple(np.where(c, hi[:, i], lo[:, i]) for i, c in enumerate(corner))
            sign = (-1) ** (3 - sum(corner))
            total += sign * table[idx]
        empty[a] = not np.any(total > 0)
    return empty


@dataclass(frozen=True)
class RegionStats:
    """What every piece of a split unit takes from the whole ROI (small; one task per unit).

    ``box``: the ROI box padded by ``kernelRadius`` (the maps' box). Per discretisation (key:
    whether the float64 copy is binned, as PyRadiomics' firstorder does, or the stored dtype):
    the bin ``edges``, ``n_levels`` (PyRadiomics' ROI-level Ng) and ``n_present`` (grey levels
    present in the kernel region). ``empty_steps``: GLCM offset ``(dz, dy, dx)`` -> True when no
    kernel of the ROI holds a pair along it (None without GLCM or with ``weightingNorm``).
    """

    box: tuple[tuple[int, int], ...]
    edges: dict[bool, np.ndarray]
    n_levels: dict[bool, int]
    n_present: dict[bool, int]
    empty_steps: dict[tuple[int, int, int], bool] | None = None


def _as64(cls: str, dtype) -> bool:
    """Whether a class bins the float64 copy (PyRadiomics' firstorder) or the stored values."""
    return cls == "firstorder" or dtype == np.float64


def region_stats(task: MapTask, params: ExtractionParams) -> RegionStats:
    """The whole-ROI properties the pieces of ``task``'s unit share (reads the padded ROI box)."""
    unit = task.unit
    vs = params.voxel_settings
    s = params.settings_for("Original")
    image = open_volume(unit.store, unit.case, unit.series)
    mask = open_label(unit.store, unit.case, unit.series, unit.label_key)
    shape = tuple(int(n) for n in image.shape)
    box = padded_box(tuple(slice(a, b) for a, b in task.roi_box), shape, params)
    values = sitk.GetArrayFromImage(box_image(image, box))
    roi = sitk.GetArrayFromImage(box_image(mask, box)) == unit.label
    kernel_mask = roi if vs.masked_kernel else np.ones(roi.shape, dtype=bool)
    edges, n_levels, n_present = {}, {}, {}
    classes = _classes(params)
    for cls in classes:
        as64 = _as64(cls, values.dtype)
        if as64 in edges:
            continue
        levels, edges[as64] = discretise(
            values.astype(np.float64) if as64 else values,
            kernel_mask,
            bin_width=s.bin_width,
            bin_count=s.bin_count,
        )
        n_levels[as64] = int(levels.max())
        n_present[as64] = len(np.unique(levels[kernel_mask]))
    empty = None
    if "glcm" in classes and s.weighting_norm is None:
        steps = offsets(
            s.distances, bool(s.force_2d), s.force_2d_dimension, False, size_zyx=roi.shape
        )
        half = half_widths(vs.kernel_radius, bool(s.force_2d), s.force_2d_dimension)
        flags = _empty_offsets(kernel_mask, np.argwhere(roi), steps, half)
        empty = {tuple(int(v) for v in step): bool(f) for step, f in zip(steps, flags)}
    return RegionStats(tuple((b.start, b.stop) for b in box), edges, n_levels, n_present, empty)


def _piece(task: MapTask, stats: RegionStats, params: ExtractionParams, *, whole: bool = False):
    """One chunk-aligned piece of a unit (see the module docstring).

    Reads the piece grown by a halo of ``max(kernelRadius, largest distance)`` voxels, clipped to
    the maps' box (``whole``: the maps' box itself); the discretisation and the GLCM offsets
    come from ``stats``.
    """
    unit = task.unit
    vs = params.voxel_settings
    s = params.settings_for("Original")
    classes = _classes(params)
    box = tuple(slice(a, b) for a, b in stats.box)
    # The halo holds every kernel of the piece's voxels, and is wider than the longest offset
    # unless the maps' box itself is not: the offsets PyRadiomics keeps for the box are kept.
    halo = max(vs.kernel_radius, *s.distances)
    read = (
        box
        if whole
        else tuple(
            slice(max(a - halo, b.start), min(c + halo, b.stop))
            for (a, c), b in zip(task.piece, box)
        )
    )
    check_memory(
        tuple(r.stop - r.start for r in read),
        params,
        classes,
        lambda cls, _: _default_names(cls),
        images_at_once=1,
        what="radflow maps",
        box_name="one chunk-aligned piece of the ROI with its halo",
    )
    image = open_volume(unit.store, unit.case, unit.series)
    mask = open_label(unit.store, unit.case, unit.series, unit.label_key)
    values = sitk.GetArrayFromImage(box_image(image, read))
    roi = sitk.GetArrayFromImage(box_image(mask, read)) == unit.label
    kernel_mask = roi if vs.masked_kernel else np.ones(roi.shape, dtype=bool)
    spacing_zyx = _spacing(unit)
    piece_local = tuple(slice(a - r.start, c - r.start) for (a, c), r in zip(task.piece, read))
    in_piece = np.zeros(roi.shape, dtype=bool)
    in_piece[piece_local] = True
    centres = np.argwhere(roi & in_piece)
    image64 = values.astype(np.float64)
    binned: dict[bool, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    piece_roi = roi[piece_local]
    for cls, names in classes.items():
        requested = list(names) if names is not None else _default_names(cls)
        computed = [n for n in requested if n not in DECLINED.get(cls, frozenset())]
        as64 = _as64(cls, values.dtype)
        if as64 not in binned:
            levels = np.zeros(roi.shape, dtype=np.int32)
            source = image64 if as64 else values
            levels[kernel_mask] = np.digitize(source[kernel_mask], stats.edges[as64])
            binned[as64] = levels
        levels, n_levels = binned[as64], stats.n_levels[as64]
        extra = {}
        if cls == "glcm" and computed and len(centres) and not whole:
            # GLCM's MCC is 1 everywhere for a ROI of one grey level: a piece whose own box
            # holds one level while the ROI holds more is computed on the whole box.
            if len(np.unique(levels[kernel_mask])) < 2 <= stats.n_present[as64]:
                return _piece(task, stats, params, whole=True)
        if cls == "glcm" and stats.empty_steps is not None:
            steps = offsets(
                s.distances, bool(s.force_2d), s.force_2d_dimension, False, size_zyx=levels.shape
            )
            extra["empty_offsets"] = np.array(
                [stats.empty_steps[tuple(int(v) for v in step)] for step in steps], dtype=bool
            )
        result = (
            getattr(voxel_features, cls).compute_maps(
                image64,
                levels,
                kernel_mask,
                centres,
                n_levels=n_levels,
                kernel_radius=vs.kernel_radius,
                settings=s,
                spacing_zyx=spacing_zyx,
                features=tuple(computed),
                **extra,
            )
            if computed and len(centres)
            else {}
        )
        for name in requested:
            full = np.full(roi.shape, np.nan, dtype=np.float32)
            full[roi] = vs.init_value
            if name in result:
                full[tuple(centres.T)] = result[name]
            out[f"original_{cls}_{name}"] = np.where(piece_roi, full[piece_local], np.nan).astype(
                np.float32
            )
    return tuple(slice(a, b) for a, b in task.piece), out


def _spacing(unit: Task) -> tuple[float, float, float]:
    path, attributes = layout.open_series(unit.store, unit.case, unit.series)
    attrs = layout.series_attrs(attributes, path, unit.case, unit.series)
    return tuple(float(v) for v in attrs["spacing_zyx"])


def _default_names(cls: str) -> list[str]:
    return [f.name for f in features(cls) if f.default]


def _worker_params(params: ExtractionParams) -> ExtractionParams:
    """``params`` with the Dask worker's memory limit as the budget, when the file sets none."""
    if params.voxel_settings.memory_budget_mib is not None:
        return params
    try:
        worker = distributed.get_worker()
    except ValueError:  # not on a worker (a direct call)
        return params
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if not limit:
        return params
    vs = dataclasses.replace(params.voxel_settings, memory_budget_mib=limit / 2**20)
    return dataclasses.replace(params, voxel_settings=vs)


def _task_error(exc: RadflowError) -> TaskError:
    # A damaged chunk may be restored, a worker with more memory may run it: not permanent.
    permanent = not isinstance(exc, (DamagedChunkError, MemoryBudgetError))
    return TaskError(type(exc).__name__, str(exc), traceback.format_exc(), permanent)


def unit_stats(task: MapTask) -> RegionStats | TaskError:
    """Run :func:`region_stats` on a worker (bad input returned as a TaskError)."""
    try:
        with dask.config.set(scheduler="synchronous"):
            return region_stats(task, _worker_params(task.unit.params))
    except RadflowError as exc:
        return _task_error(exc)


def compute_maps(task: MapTask, stats: RegionStats | TaskError | None = None):
    """Run one map task on a worker: ``(box on the series grid, {name: float32 array})``.

    A piece takes its unit's :func:`unit_stats` (computed here when not given). Bad input is
    returned as a :class:`~radflow.pipeline.tasks.TaskError` (not retried); anything else is
    raised, for Dask to retry and then report.
    """
    if isinstance(stats, TaskError):  # the unit's stats failed: so do its pieces
        return stats
    try:
        params = _worker_params(task.unit.params)
        with dask.config.set(scheduler="synchronous"):
            if task.piece is None:
                return _whole(task, params)
            if stats is None:
                stats = region_stats(task, params)
            return _piece(task, stats, params)
    except RadflowError as exc:
        return _task_error(exc)


def _error_row(task: MapTask, error: TaskError) -> dict:
    unit = task.unit
    inputs = {"input_fingerprint": unit.fingerprint, "params_hash": unit.params_hash}
    return error_row(roi_place(unit, image_type_group=unit.group), task.key, error, inputs)


@document
def maps(
    store: str | Path,
    params: str | Path | Mapping[str, Any] | ExtractionParams,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    incremental: bool = False,
    progress: bool = True,
    retries: int = 2,
    piece_zyx: tuple[int, int, int] | None = None,
) -> MapsSummary:
    """Compute the feature maps of every ROI of a store and write them into it.

    Parameters
    ----------
    store : str or path-like
        Volume store (``radflow ingest``); the maps are written into it (:mod:`radflow.store.maps`).
    params : str, path-like, mapping or ExtractionParams
        PyRadiomics parameter file with ``voxelSetting``; its hash names the feature set.
    %(where)s
    incremental : bool
        Compute only the units whose maps the store does not hold for the same key.
    %(progress)s
    piece_zyx : tuple of 3 int, optional
        Shape of the pieces large regions are split into (default: the series' chunks).

    Returns
    -------
    MapsSummary
    """
    started = time.monotonic()
    check_retries(retries)
    plan, todo, skipped, units = plan_maps(
        store, params, incremental=incremental, piece_zyx=piece_zyx
    )
    summary = MapsSummary(
        store=plan.store,
        feature_set=plan.feature_set,
        series=plan.series,
        units=units,
        tasks=len(todo),
        skipped=skipped,
    )
    # Permanent failures recorded by this radflow version, by task key: a unit whose key is
    # unchanged (same series, label, ROI and parameters) fails again the same way.
    record = ErrorsRecord(errors_file(plan.store, plan.feature_set))
    if incremental:
        keys = dict.fromkeys(t.key for t in todo)  # pieces share their unit's key
        known = {key for key in keys if record.keep_known(key, summary)}
        todo = [t for t in todo if t.key not in known]
        summary.tasks = len(todo)
    for failure in plan.failures:
        row = {
            "case_id": failure.case,
            "series_id": failure.series,
            "task_key": failure.key,
            "error_type": failure.error_type,
            "message": failure.message,
            "permanent": failure.permanent,
            "radflow_version": __version__,
        }
        record.add(row, summary, f"{failure.case}/{failure.series}: {failure.message}")
    if todo:
        _execute(
            todo,
            plan.feature_set,
            summary,
            record,
            progress=progress,
            retries=retries,
            scheduler=scheduler,
            workers=workers,
            cluster=cluster,
            cluster_config=cluster_config,
        )
    summary.removed = _remove_stale(plan)
    record.write()
    summary.seconds = time.monotonic() - started
    return summary


def _remove_stale(plan) -> int:
    """Delete the maps of this feature set whose ROI is no longer planned; their number.

    As ``radflow run`` removes the rows of ROIs gone from the store: within each series that
    has planned units, an ROI folder of the feature set that no unit names (its label or label
    value removed) is renamed to a hidden name, then deleted.
    """
    planned: dict[Path, set[str]] = defaultdict(set)
    for unit in plan.tasks:
        series_dir = Path(unit.store) / unit.case / unit.series
        planned[series_dir].add(roi_folder(unit.label_key, unit.label))
    removed = 0
    for series_dir, rois in planned.items():
        folder = series_dir / MAPS / plan.feature_set
        if not folder.is_dir():
            continue
        for roi_dir in sorted(folder.iterdir()):
            if roi_dir.name.startswith(".") or not roi_dir.is_dir() or roi_dir.name in rois:
                continue
            hidden = temporary_path(roi_dir)
            os.rename(roi_dir, hidden)
            shutil.rmtree(hidden, ignore_errors=True)
            removed += 1
    return removed


def _execute(todo, feature_set, summary, record, *, progress, retries, **where) -> None:
    by_key = {t.piece_key: t for t in todo}
    parts: dict[str, list] = defaultdict(list)
    failed_units: set[str] = set()
    with dask_session(len(todo), "tasks", progress=progress, **where) as (client, bar):
        # One task per split unit reads its whole ROI for what the pieces share; each piece
        # then reads its own chunk and halo only.
        first = {t.key: t for t in reversed(todo) if t.piece is not None}
        stats = {
            key: client.submit(unit_stats, t, key=f"{key}-stats", retries=retries, pure=False)
            for key, t in first.items()
        }
        futures = client.map(
            compute_maps,
            todo,
            [stats.get(t.key) for t in todo],
            key=[t.piece_key for t in todo],
            retries=retries,
            pure=False,
        )
        for key, result in finished(futures, client):
            task = by_key[key]
            failed = isinstance(result, TaskError)
            if bar:
                bar.update(failed=int(failed), note=task.unit.case)
            if failed:
                if task.key not in failed_units:
                    failed_units.add(task.key)
                    record.add(_error_row(task, result), summary)
                parts.pop(task.key, None)
                continue
            if task.key in failed_units:
                continue
            parts[task.key].append(result)
            if len(parts[task.key]) == task.pieces:
                _write_unit(task, feature_set, parts.pop(task.key), summary)


def _write_unit(task: MapTask, feature_set: str, results: list, summary: MapsSummary) -> None:
    """Stitch a unit's pieces and write its maps (the client is the only writer)."""
    unit = task.unit
    results = [(b, m) for b, m in results if b is not None]
    if results:
        lo = [min(b[i].start for b, _ in results) for i in range(3)]
        hi = [max(b[i].stop for b, _ in results) for i in range(3)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        names = list(results[0][1])
        stitched = {}
        for name in names:
            full = np.full(tuple(b - a for a, b in zip(lo, hi)), np.nan, dtype=np.float32)
            for b, m in results:
                full[tuple(slice(s.start - a, s.stop - a) for s, a in zip(b, lo))] = m[name]
            stitched[name] = full
    else:
        box, stitched = (slice(0, 0),) * 3, {}
    write_maps(
        unit.store,
        unit.case,
        unit.series,
        feature_set,
        roi_folder(unit.label_key, unit.label),
        unit.group,
        task.key,
        box,
        stitched,
        attrs={
            "roi": unit.roi,
            "input_fingerprint": unit.fingerprint,
            "params_hash": unit.params_hash,
            "radflow_version": __version__,
        },
    )
    summary.computed += 1
    summary.maps_written += len(stitched)
