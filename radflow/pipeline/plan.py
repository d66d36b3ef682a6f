"""The extraction plan: which tasks a run over the store consists of.

One :class:`Task` per (series, ROI, image-type group). An image-type group is
one entry of the parameter file's ``imageType`` section (``Original``,
``LoG`` with all its sigmas, ``Wavelet`` with its eight decompositions ...):
the unit PyRadiomics filters in one go. The shape classes are computed on the
original image whatever the image type, so they travel with the ``Original``
group (or the first group when Original is not enabled).

Units are packed into Dask tasks by estimated cost (:func:`pack`): box voxels
(recorded by the store at write time) x image types x feature classes, calibrated
by measurement, to a target duration, so that Dask's fixed cost per task (a few
ms) is paid per pack, not per small ROI. Keys, rows and the errors table stay per
unit.

A task holds only small, picklable values: the store path, the ids, the label
image key and value, and the PyRadiomics parameter mapping of its group. Its
key is a digest of everything its result depends on: the series' content
fingerprint, the ids and partition values, the ROI, the group's parameters and
the feature set (hash of the whole parameter file). The same key therefore
means the same result, which is what makes keys usable as Dask keys (pure
work is shared) and as the record of what the feature table already holds.

Planning reads only metadata (``zarr.json``), never voxels: the ROI's box size
for the cost estimate is what the store recorded when it wrote the label, and
the worker reads the box itself, so that the client's work stays small however
large the archive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radflow.errors import InputError, SettingsError
from radflow.extraction import map_summary
from radflow.features.habitat import FAMILY as HABITAT
from radflow.features.habitat import feature_names as habitat_names
from radflow.features.registry import FAMILY_MODULES, features
from radflow.io.records import roi_key
from radflow.params.extraction import ExtractionParams
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict
from radflow.store import ome
from radflow.store.catalogue import label_keys, list_series
from radflow.store.habitats import HABITATS, habitat_key
from radflow.store.read import open_volume

__all__ = [
    "FEATURE_SET_PREFIX",
    "Pack",
    "Plan",
    "PlanFailure",
    "Task",
    "cost_per_voxel",
    "estimate_seconds",
    "feature_columns",
    "feature_set_name",
    "image_type_groups",
    "make_plan",
    "pack",
]

#: Partition values are prefixed so that readers never infer a number from a
#: hex digest (``12345678`` or ``1234e567`` would become INTEGER / DOUBLE).
FEATURE_SET_PREFIX = "fs-"
#: Classes computed once per ROI, whatever the image type: they travel with one group.
_SHAPE_CLASSES = ("shape", "shape2D", "skeleton", HABITAT)
_SAFE = re.compile(r"^[0-9A-Za-z_-]+$")
#: Partition value for a series whose store attributes lack one.
UNKNOWN = "unknown"
_METADATA_ERRORS = (InputError, OSError, KeyError, TypeError, ValueError)


@dataclass(frozen=True, slots=True)
class Task:
    """One extraction: a (series, ROI, image-type group), in small picklable values.

    Attributes
    ----------
    key : str
        Deterministic Dask key, ``"radflow-extract-<32 hex>"``.
    store : str
        Root folder of the volume store.
    case, series : str
        Pseudonymised ids of the series in the store.
    study : str or None
        Pseudonymised study id, when the store records one.
    institution, modality : str
        Partition values of the series' rows.
    label_key : str
        Label image of the series holding the ROI.
    label : int
        Label value of the ROI in that image.
    roi : str
        ROI name, normalised (:func:`radflow.io.records.roi_key`).
    group : str
        Image-type group (``"Original"``, ``"LoG"`` ...).
    params : ExtractionParams
        The group's parameters, validated once when planned (frozen; they
        pickle, so workers use them as they are).
    fingerprint : str
        Content fingerprint of the series' input files.
    params_hash : str
        Hash of the whole parameter file (:func:`params_hash`).
    voxels : int
        Voxels in the ROI's box, as the store recorded it (0: not recorded).
    cost_s : float
        Estimated extraction time in seconds (:func:`estimate_seconds`): what
        :func:`pack` sizes Dask tasks by. Neither is part of the key.
    """

    key: str
    store: str
    case: str
    series: str
    study: str | None
    institution: str
    modality: str
    label_key: str
    label: int
    roi: str
    group: str
    params: ExtractionParams = field(hash=False, compare=False)
    fingerprint: str = ""
    params_hash: str = ""
    voxels: int = field(default=0, compare=False)
    cost_s: float = field(default=0.0, compare=False)

    @property
    def partition(self) -> tuple[str, str, str]:
        """(institution, modality, case): the unit committed to the table at once."""
        return self.institution, self.modality, self.case


@dataclass(frozen=True)
class PlanFailure:
    """A series that could not be planned (unreadable metadata): recorded, not run.

    ``permanent`` unless the metadata could not be read (an ``OSError``): the
    same metadata gives the same failure (see :class:`~radflow.pipeline.tasks.TaskError`).
    """

    case: str
    series: str
    institution: str
    modality: str
    message: str
    error_type: str
    key: str
    permanent: bool = True


@dataclass
class Plan:
    """Every task of a run over a store with one parameter file.

    Attributes
    ----------
    store : pathlib.Path
    params_hash : str
        16 hex digits, :func:`radflow.params.pyradiomics_params.params_hash`.
    feature_set : str
        Partition value of the feature set, ``"fs-" + params_hash``.
    params : dict
        The normalised parameter mapping (written beside the table).
    columns : tuple of str
        Feature columns of the rows, ``"<class>_<feature>"`` in canonical order.
    tasks : list of Task
        Sorted by case, so that a case's tasks finish close together.
    failures : list of PlanFailure
    series : int
        Number of series planned (including those without ROIs).
    """

    store: Path
    params_hash: str
    feature_set: str
    params: dict
    columns: tuple[str, ...]
    tasks: list[Task]
    failures: list[PlanFailure]
    series: int


def feature_set_name(params: ExtractionParams) -> str:
    """Partition value of a parameter file's feature set: ``"fs-<params_hash>"``."""
    return FEATURE_SET_PREFIX + params_hash(params)


def feature_columns(params: ExtractionParams) -> tuple[str, ...]:
    """The feature columns a parameter file produces, in a canonical order.

    ``"<class>_<feature>"`` (``"glcm_Contrast"``, ``"shape_MeshVolume"``):
    PyRadiomics' key without the image-type prefix. A class enabled without a
    feature list yields its default features, as in PyRadiomics. Classes
    follow the registry's order and features their names, so that two
    parameter files of one feature set (same hash, other order) give the same
    schema. The ``habitat`` class's names carry habitat numbers: its columns are those
    of ``habitatCount`` habitats (:func:`habitat_columns`), so that the parameter file
    alone fixes the table's schema.
    """
    columns = []
    for family in FAMILY_MODULES:
        if family not in params.feature_classes:
            continue
        names = params.feature_classes[family]
        if names is None:
            names = [f.name for f in features(family) if f.default]
        columns.extend(f"{family}_{name}" for name in sorted(names))
    if HABITAT in params.feature_classes:
        columns.extend(f"{HABITAT}_{name}" for name in habitat_columns(params))
    columns.extend(map_summary.feature_columns(params))  # mapSummary: <class>map_<F>_<Stat>
    return tuple(columns)


def habitat_columns(params: ExtractionParams) -> tuple[str, ...]:
    """The ``habitat`` class's feature names in a feature table, fixed by the parameter file.

    Those of ``habitatCount`` habitats (radflow's setting: the habitat model's K), or, without
    it, the numbered names the file lists (``Volume_1``, ``MSIPairs_1_2``).

    Raises
    ------
    radflow.errors.SettingsError
        The class is enabled by stems (``Volume``) or without a list, and ``habitatCount`` is
        not set: the number of columns would depend on the data.
    """
    names = params.feature_classes[HABITAT]
    count = params.settings.habitat_count
    if count is not None:
        return habitat_names(count, names)
    numbers = [re.findall(r"\d+", name) for name in names or ()]
    if names is None or not all(numbers):
        raise SettingsError(
            "featureClass habitat: set `setting: {habitatCount: K}` (the habitat model's number "
            "of habitats), or list numbered features (Volume_1, Fraction_2): a feature table's "
            "columns must follow from the parameter file"
        )
    return habitat_names(max(int(n) for found in numbers for n in found), names)


def image_type_groups(params: ExtractionParams) -> list[tuple[str, dict]]:
    """Split a parameter file into one parameter mapping per image-type group.

    Returns
    -------
    list of (str, dict)
        ``(image type, PyRadiomics mapping)`` in file order. Each mapping
        enables that one image type, with the settings of the whole file; the
        shape classes are enabled only in the ``Original`` group (or the first
        one). A group left without any class (only shape enabled) is dropped.
    """
    whole = params_to_dict(params)
    classes = whole["featureClass"]
    shape = {c: n for c, n in classes.items() if c in _SHAPE_CLASSES}
    other = {c: n for c, n in classes.items() if c not in _SHAPE_CLASSES}
    names = list(whole["imageType"])
    shape_group = "Original" if "Original" in names else names[0]
    groups = []
    for name in names:
        enabled = {**shape, **other} if name == shape_group else dict(other)
        if not enabled:
            continue
        # Class order as in the file: it is the order of PyRadiomics' keys.
        ordered = {c: enabled[c] for c in classes if c in enabled}
        groups.append(
            (
                name,
                {**whole, "imageType": {name: whole["imageType"][name]}, "featureClass": ordered},
            )
        )
    return groups


# -- cost and packing ------------------------------------------------------------

#: Cost model of one unit (seconds), fitted on this project's 2-core VM (warm kernels,
#: SimpleITK on one thread, CPU time) by ``.venv/bin/python benchmarks/bench_pipeline.py
#: --parts calibrate`` (least squares, relative errors, over the units of 40 x 80 x 80 and
#: 120 x 256 x 256 CT cases with boxes of 14,000-29,000 voxels; figures in RESULTS.md):
#: ``FIXED + box voxels x sum over the group's images of (FILTER[type] + CLASS x classes)``.
#: Only the ratio of units' costs and their order of magnitude matter: tasks are packed
#: to a target duration, not scheduled to the millisecond.
COST_FIXED_S = 0.007
COST_CLASS_S = 4.7e-8
#: Seconds per box voxel of computing one image of a filter type (LoG: per sigma).
#: The wavelet transform itself fitted to ~0 (its cost lies in the classes over its
#: eight images); types not measured get ``_COST_OTHER_FILTER_S``.
COST_FILTER_S = {"Original": 0.0, "LoG": 1.9e-6, "Wavelet": 0.0}
_COST_OTHER_FILTER_S = 2.0e-7
#: Box voxels assumed for a ROI whose box the store did not record.
_DEFAULT_VOXELS = 30_000
#: Packs shrink towards the end of a run so that workers finish together: a pack
#: holds at most the remaining work divided by this many times the worker threads.
_GUIDED = 2


def _images(params: ExtractionParams, name: str) -> int:
    """Images an enabled image type yields: LoG one per sigma, Wavelet eight per level,
    LBP3D its levels plus the kurtosis image, any other one."""
    if name == "LoG":
        return max(1, len(params.settings_for(name).sigma))
    if name == "Wavelet":
        return 8 * max(1, params.settings_for(name).level)
    if name == "LBP3D":
        return params.settings_for(name).lbp_3d_levels + 1
    return 1


def cost_per_voxel(params: ExtractionParams) -> float:
    """Estimated seconds per box voxel of one image-type group (see :data:`COST_FIXED_S`)."""
    classes = len(params.feature_classes)
    total = 0.0
    for name in params.image_types:
        per_image = COST_FILTER_S.get(name, _COST_OTHER_FILTER_S) + COST_CLASS_S * classes
        total += _images(params, name) * per_image
    return total


def estimate_seconds(voxels: int | None, per_voxel: float) -> float:
    """Estimated seconds of one unit: ``FIXED + voxels x per_voxel`` (:func:`cost_per_voxel`).

    ``voxels`` None or 0 (not recorded by the store): a typical box is assumed.
    """
    return COST_FIXED_S + (voxels or _DEFAULT_VOXELS) * per_voxel


@dataclass(frozen=True)
class Pack:
    """Several units run by one Dask task, one after the other.

    Attributes
    ----------
    key : str
        Dask key: the unit's own key for a pack of one, else
        ``"radflow-pack-<32 hex>"``, a digest of its units' keys.
    tasks : tuple of Task
        The units; each keeps its key, rows and error row (a failure fails its unit only).
    cost_s : float
        Their estimated seconds together.
    """

    key: str
    tasks: tuple[Task, ...]
    cost_s: float


def _make_pack(tasks: list[Task], cost: float) -> Pack:
    if len(tasks) == 1:
        return Pack(tasks[0].key, (tasks[0],), cost)
    return Pack(f"radflow-pack-{_digest('pack', [t.key for t in tasks])}", tuple(tasks), cost)


def pack(
    tasks: Sequence[Task], target_s: float, threads: int = 1, *, guided: bool = True
) -> Iterator[Pack]:
    """Pack consecutive units into Dask tasks of about ``target_s`` estimated seconds.

    Lazily, in the units' order (the plan's: a case's units together). Towards
    the end packs shrink to the remaining work over ``2 x threads``, down to
    single units, so that no worker is left with a large pack while the others
    idle (guided self-scheduling).

    Parameters
    ----------
    tasks : sequence of Task
    target_s : float
        Target duration of one Dask task, in estimated seconds (``Task.cost_s``);
        0: one unit per Dask task.
    threads : int
        Worker threads of the cluster.
    guided : bool
        Shrink packs towards the end (False: every pack up to ``target_s``).

    Yields
    ------
    Pack
    """
    costs = [t.cost_s if t.cost_s > 0 else COST_FIXED_S for t in tasks]  # none is free
    remaining = sum(costs) if guided else float("inf")
    current: list[Task] = []
    cost = 0.0
    limit = 0.0
    for task, task_cost in zip(tasks, costs):
        if not current:
            limit = min(target_s, remaining / (_GUIDED * max(1, threads)))
        elif cost + task_cost > limit:
            yield _make_pack(current, cost)
            current, cost = [], 0.0
            limit = min(target_s, remaining / (_GUIDED * max(1, threads)))
        current.append(task)
        cost += task_cost
        remaining -= task_cost
    if current:
        yield _make_pack(current, cost)


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _partition_value(value, what: str, path) -> str:
    if value is None or value == "":
        return UNKNOWN
    value = str(value)
    if not _SAFE.match(value):
        raise InputError(
            path,
            f"{what} {value!r} is not usable as a partition value "
            "(letters, digits, '_' and '-' only): ingest the series again",
        )
    return value


def _store_series(store: Path):
    """(case, series) of every complete series: folders holding a ``zarr.json``.

    Skips what :func:`radflow.store.catalogue.list_series` skips (hidden entries,
    unfinished writes).
    """
    for case_dir in sorted(store.iterdir()):
        if case_dir.name.startswith(".") or not case_dir.is_dir():
            continue
        for series_dir in sorted(case_dir.iterdir()):
            if not series_dir.name.startswith(".") and (series_dir / "zarr.json").is_file():
                yield case_dir.name, series_dir.name


def _series_metadata(store: Path):
    """(case, series, attrs, label keys) of every series, or (case, series, exception, ()).

    :func:`~radflow.store.catalogue.list_series` reads the whole store at once
    but stops at the first series with broken metadata; then each series is
    read on its own, so that one bad series does not hide the others.
    """
    try:
        infos = list_series(store)
    except _METADATA_ERRORS:
        for case, series in _store_series(store):
            try:
                attrs = open_volume(store, case, series).attrs
                yield case, series, attrs, tuple(label_keys(store, case, series))
            except _METADATA_ERRORS as exc:
                yield case, series, exc, ()
        return
    for info in infos:
        yield info.case, info.series, info.attrs, info.label_keys


def _label_rois(series_dir: Path, key: str) -> tuple[dict[int, str], str | None, dict[int, int]]:
    """Label value -> ROI name of one label image, its voxels' hash, and its ROIs' box voxels.

    Read with the store's own OME parser from the label's ``zarr.json``:
    :func:`~radflow.store.read.open_label` would build a lazy array per
    label, and planning reads every label of the archive on the client. The
    hash and the boxes are those the store recorded when it wrote the label
    (None and no boxes for labels written before radflow recorded them).
    """
    path = series_dir / "labels" / key
    meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes"), dict):
        raise InputError(path / "zarr.json", "not zarr group metadata (no attributes)")
    radflow = meta["attributes"].get("radflow") or {}
    summary = radflow.get("summary") or {}
    return ome.parse_label(meta["attributes"], path)[2], summary.get("hash"), _box_voxels(radflow)


def _box_voxels(radflow: dict) -> dict[int, int]:
    """Label value -> voxels of its recorded box (``[[start, stop]] * 3``).

    Unreadable boxes are left out (the estimate assumes a typical box for them).
    """
    voxels = {}
    boxes = radflow.get("boxes")
    for value, box in boxes.items() if isinstance(boxes, dict) else ():
        try:
            voxels[int(value)] = math.prod(max(0, int(b) - int(a)) for a, b in box)
        except (TypeError, ValueError):
            continue  # cost only: the extraction finds the box itself
    return voxels


def _habitat_maps(series_dir: Path, keys) -> dict[str, tuple[str | None, str]]:
    """Label key -> (hash, ROI) of the habitat maps of a series (``radflow habitats apply``).

    Metadata only: the labels named ``<roi>_habitats`` whose attributes record a habitat model.
    """
    found = {}
    for key in keys:
        if not key.endswith("_habitats"):
            continue
        path = series_dir / "labels" / key
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
        radflow = (meta.get("attributes") or {}).get("radflow") or {}
        record = radflow.get(HABITATS)
        if isinstance(record, dict):
            found[key] = ((radflow.get("summary") or {}).get("hash"), str(record.get("roi")))
    return found


def _habitat_scope(store: Path, metadata) -> frozenset[tuple[str, str | None]]:
    """(ROI, modality) of every habitat map of the store: where the habitat class applies.

    A ROI of that name in a series of that modality without a map fails (``radflow habitats
    apply`` has not run for it); other ROIs (organs, other modalities) leave the class out.
    """
    scope = set()
    for case, series, attrs, keys in metadata:
        if isinstance(attrs, Exception):
            continue
        try:
            maps = _habitat_maps(store / case / series, keys)
        except _METADATA_ERRORS:
            continue  # the series fails when planned
        scope.update((roi, attrs.get("modality")) for _, roi in maps.values())
    return frozenset(scope)


def _without_habitat(params: ExtractionParams) -> ExtractionParams | None:
    """``params`` without the habitat class; None when no other class is left."""
    classes = {c: n for c, n in params.feature_classes.items() if c != HABITAT}
    return dataclasses.replace(params, feature_classes=classes) if classes else None


def _series_tasks(
    store: Path,
    case: str,
    series: str,
    attrs: dict,
    keys,
    groups: list[tuple[str, dict, ExtractionParams]],
    fs: str,
    ph: str,
    habitat_scope: frozenset = frozenset(),
) -> list[Task]:
    path = store / case / series
    institution = _partition_value(attrs.get("institution"), "institution", path)
    modality = _partition_value(attrs.get("modality"), "modality", path)
    fingerprint = attrs["fingerprint"]
    habitat_maps = _habitat_maps(path, keys) if habitat_scope else {}
    without_habitat = {
        group: _without_habitat(p) for group, _, p in groups if HABITAT in p.feature_classes
    }
    weights = {group: cost_per_voxel(p) for group, _, p in groups}
    store_text = str(store)  # one string shared by the series' tasks
    tasks = []
    for key in keys:
        rois, label_hash, box_voxels = _label_rois(path, key)
        # The label's own hash: a label replaced in an unchanged series (a new threshold
        # segmentation) changes its tasks' keys. Left out when the store has none, so
        # that keys of tables made from older stores stay as they were.
        label_part = [label_hash] if label_hash else []
        for value, name in sorted(rois.items()):
            # The habitat class reads the ROI's habitat map (a new map changes the key); it
            # applies where the store holds habitat maps of the ROI (name and modality), not
            # to the habitats themselves.
            applies = (
                key not in habitat_maps and (roi_key(name), attrs.get("modality")) in habitat_scope
            )
            habitat_map = habitat_maps.get(habitat_key(name)) if applies else None
            for group, mapping, group_params in groups:
                habitat_part = []
                if group in without_habitat:
                    if habitat_map is not None:
                        habitat_part = ["habitats", habitat_map[0]]
                    elif not applies:
                        group_params = without_habitat[group]
                        if group_params is None:
                            continue  # only the habitat class was enabled
                token = _digest(
                    "extract",
                    case,
                    series,
                    institution,
                    modality,
                    fingerprint,
                    key,
                    int(value),
                    group,
                    mapping,
                    fs,
                    *label_part,
                    *habitat_part,
                )
                tasks.append(
                    Task(
                        key=f"radflow-extract-{token}",
                        store=store_text,
                        case=case,
                        series=series,
                        study=attrs.get("study"),
                        institution=institution,
                        modality=modality,
                        label_key=key,
                        label=int(value),
                        roi=roi_key(name),
                        group=group,
                        params=group_params,
                        fingerprint=fingerprint,
                        params_hash=ph,
                        voxels=box_voxels.get(int(value), 0),
                        cost_s=estimate_seconds(box_voxels.get(int(value)), weights[group]),
                    )
                )
    return tasks


def make_plan(
    store: str | os.PathLike, params: str | os.PathLike | Mapping | ExtractionParams | None
) -> Plan:
    """Plan a run: every (series, ROI, image-type group) of the store.

    Parameters
    ----------
    store : str or path-like
        Root folder of the volume store (:mod:`radflow.store`).
    params : str, path-like, mapping, ExtractionParams or None
        PyRadiomics parameter file or mapping (:func:`load_params`).

    Returns
    -------
    Plan
        A series whose metadata cannot be read becomes a :class:`PlanFailure`
        (the rest is planned).

    Raises
    ------
    radflow.errors.InputError
        ``store`` is not a folder.
    radflow.errors.SettingsError
        Invalid parameters.
    """
    params = load_params(params)
    store = Path(store).resolve()
    if not store.is_dir():
        raise InputError(store, "no such store folder")
    ph = params_hash(params)
    fs = FEATURE_SET_PREFIX + ph
    # The keys digest each group's normalised mapping (as they always have: tables made by
    # earlier versions stay incremental); the tasks carry the same group typed.
    groups = [(name, mapping, load_params(mapping)) for name, mapping in image_type_groups(params)]
    tasks: list[Task] = []
    failures: list[PlanFailure] = []
    count = 0
    metadata = list(_series_metadata(store))
    scope = frozenset()
    if any(HABITAT in p.feature_classes for _, _, p in groups):
        scope = _habitat_scope(store, metadata)
        if not scope:
            raise InputError(
                store,
                "featureClass habitat: the store holds no habitat map; run `radflow habitats "
                "fit` and `radflow habitats apply` first (or remove habitat from featureClass)",
            )
    for case, series, attrs, keys in metadata:
        count += 1
        error = attrs if isinstance(attrs, Exception) else None
        if error is None:
            try:
                tasks.extend(_series_tasks(store, case, series, attrs, keys, groups, fs, ph, scope))
            except _METADATA_ERRORS as exc:  # one unreadable series must not stop the others
                error = exc
        if error is not None:
            message = str(error) if isinstance(error, InputError) else f"{case}/{series}: {error}"
            failures.append(
                PlanFailure(
                    case=case,
                    series=series,
                    institution=UNKNOWN,
                    modality=UNKNOWN,
                    message=message,
                    error_type=type(error).__name__,
                    key=f"radflow-plan-{_digest('plan', case, series, fs)}",
                    permanent=not isinstance(error, OSError),
                )
            )
    return Plan(
        store=store,
        params_hash=ph,
        feature_set=fs,
        params=params_to_dict(params),
        columns=feature_columns(params),
        tasks=tasks,
        failures=failures,
        series=count,
    )
