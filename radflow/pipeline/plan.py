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
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radflow.errors import InputError, SettingsError
from radflow.extraction import map_summary
from radflow.features.habitat import FAMILY as HABITAT
from radflow.features.habitat import feature_names as habitat_names
from radflow.features.registry import FAMILY_MODULES, features
from radflow.io.records import roi_key
from radflow.params.extraction import ExtractionParams
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict
from radflow.pipeline.keys import DIGEST, PREFIX, KeySet, keys_of
from radflow.store import ome
from radflow.store.catalogue import label_keys, series_info
from radflow.store.habitats import HABITATS, habitat_key
from radflow.store.read import open_volume

__all__ = [
    "FEATURE_SET_PREFIX",
    "Pack",
    "Plan",
    "PlanFailure",
    "Task",
    "Units",
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


@dataclass(frozen=True, slots=True)
class SeriesUnits:
    """What the units of one series share, held once for them (see :class:`Units`)."""

    case: str
    series: str
    study: str | None
    institution: str
    modality: str
    fingerprint: str

    @property
    def partition(self) -> tuple[str, str, str]:
        """(institution, modality, case), as :attr:`Task.partition`."""
        return self.institution, self.modality, self.case


class Units(Sequence):
    """The units of a plan, one compact row each; a :class:`Task` is built when asked.

    A sequence of :class:`Task` (``len``, indexing, iteration, in plan order). It holds
    per unit only numbers: the key's 16-byte digest, the unit's series, label image,
    label value, ROI name, group, box voxels and estimated seconds (about 50 bytes,
    against ~0.5 KiB for a :class:`Task`); what a series' units share
    (:class:`SeriesUnits`), the names and the groups' parameters are held once. So the
    client's memory grows by tens of bytes per ROI, and Tasks exist only for the units in
    flight (:func:`radflow.pipeline.run.run` builds them as it submits).

    Attributes
    ----------
    digests : numpy.ndarray of ``S16``
        Key digests (the key is ``"radflow-extract-" + digest.hex()``).
    series_index : numpy.ndarray of int32
        Each unit's series, an index into ``series``.
    cost : numpy.ndarray of float64
        Estimated seconds (:attr:`Task.cost_s`).
    """

    def __init__(
        self,
        store: str,
        params_hash: str,
        series: Sequence[SeriesUnits],
        names: Sequence[str],
        groups: Sequence[str],
        params: Sequence[ExtractionParams],
        columns: Mapping[str, np.ndarray],
    ):
        self.store = store
        self.params_hash = params_hash
        self.series = series
        self.names = names
        self.groups = groups
        self.params = params
        self.digests = columns["digests"]
        self.series_index = columns["series_index"]
        self.label_key_index = columns["label_key_index"]
        self.label = columns["label"]
        self.roi_index = columns["roi_index"]
        self.group_index = columns["group_index"]
        self.params_index = columns["params_index"]
        self.voxels = columns["voxels"]
        self.cost = columns["cost"]
        self._order: np.ndarray | None = None  # digests' sort order and the sorted digests,
        self._sorted: np.ndarray | None = None  # built by the first find()

    def __len__(self) -> int:
        return len(self.digests)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.task(i) for i in range(*index.indices(len(self)))]
        return self.task(index)

    def __iter__(self) -> Iterator[Task]:
        for i in range(len(self)):
            yield self.task(i)

    def task(self, i: int) -> Task:
        """The :class:`Task` of unit ``i``."""
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"unit {i} of {len(self)}")
        s = self.series[self.series_index[i]]
        return Task(
            key=PREFIX + self.digests[i : i + 1].tobytes().hex(),
            store=self.store,
            case=s.case,
            series=s.series,
            study=s.study,
            institution=s.institution,
            modality=s.modality,
            label_key=self.names[self.label_key_index[i]],
            label=int(self.label[i]),
            roi=self.names[self.roi_index[i]],
            group=self.groups[self.group_index[i]],
            params=self.params[self.params_index[i]],
            fingerprint=s.fingerprint,
            params_hash=self.params_hash,
            voxels=int(self.voxels[i]),
            cost_s=float(self.cost[i]),
        )

    def keys(self) -> Iterator[str]:
        """The units' keys, in plan order."""
        return keys_of(self.digests)

    def key_set(self) -> KeySet:
        return KeySet(self.digests)

    def partition(self, i: int) -> tuple[str, str, str]:
        """(institution, modality, case) of unit ``i``."""
        return self.series[self.series_index[i]].partition

    def find(self, key: str) -> int | None:
        """The row of the unit whose key is ``key`` (None when no unit has it)."""
        if self._order is None:  # once: a run looks up every known failure's key
            self._order = np.argsort(self.digests, kind="stable")
            self._sorted = self.digests[self._order]
        where = KeySet.from_keys([key]).digests
        if not len(where) or not len(self):
            return None
        at = int(np.searchsorted(self._sorted, where[0]))
        return int(self._order[at]) if at < len(self) and self._sorted[at] == where[0] else None

    def select(self, mask: np.ndarray) -> Units:
        """The units where ``mask`` (bool, or row numbers in order) holds, in plan order."""
        columns = {
            name: getattr(self, name)[mask]
            for name in (
                "digests",
                "series_index",
                "label_key_index",
                "label",
                "roi_index",
                "group_index",
                "params_index",
                "voxels",
                "cost",
            )
        }
        return Units(
            self.store, self.params_hash, self.series, self.names, self.groups, self.params, columns
        )

    def count(self, partition: tuple[str, str, str]) -> int:
        """Units in ``partition`` (institution, modality, case).

        The units of a case are consecutive (plan order: by case), so this reads only
        that case's rows.
        """
        cases = _CaseView(self)
        start, stop = bisect_left(cases, partition[2]), bisect_right(cases, partition[2])
        found, counts = np.unique(self.series_index[start:stop], return_counts=True)
        return sum(
            n
            for index, n in zip(found.tolist(), counts.tolist(), strict=True)
            if self.series[index].partition == partition
        )


class _CaseView(Sequence):
    """The case id of each unit, for :mod:`bisect` (units are sorted by case)."""

    def __init__(self, units: Units):
        self.units = units

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i):
        return self.units.series[self.units.series_index[i]].case


@dataclass
class Plan:
    """Every unit of a run over a store with one parameter file.

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
    units : Units
        Sorted by case, so that a case's units finish close together; a sequence of
        :class:`Task`, each built when asked (:attr:`tasks` is the same).
    failures : list of PlanFailure
    series : int
        Number of series planned (including those without ROIs).
    """

    store: Path
    params_hash: str
    feature_set: str
    params: dict
    columns: tuple[str, ...]
    units: Units
    failures: list[PlanFailure]
    series: int

    @property
    def tasks(self) -> Units:
        """The units as a sequence of :class:`Task` (:attr:`units`)."""
        return self.units


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

    Lazily, in the units' order (the plan's: a case's units together), building each
    unit's :class:`Task` of a :class:`Units` only when its pack is made. Towards
    the end packs shrink to the remaining work over ``2 x threads``, down to
    single units, so that no worker is left with a large pack while the others
    idle (guided self-scheduling).

    Parameters
    ----------
    tasks : sequence of Task (a list, or :class:`Units`)
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
    if isinstance(tasks, Units):  # the plan's costs, without building its Tasks
        costs = tasks.cost
    else:
        costs = np.fromiter((t.cost_s for t in tasks), float, len(tasks))
    costs = np.where(costs > 0, costs, COST_FIXED_S)  # none is free
    remaining = sum(map(float, costs)) if guided else float("inf")
    current: list[Task] = []
    cost = 0.0
    limit = 0.0
    for i in range(len(costs)):
        task, task_cost = tasks[i], float(costs[i])
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


#: ``json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)``, with one
#: encoder (``json.dumps`` makes one per call, which leaves a reference cycle behind).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _digest(*parts: Any) -> str:
    text = _ENCODER.encode(parts)
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
    unfinished writes). Names, not paths, are listed: the store's case list is the one
    thing planning holds for every case at once.
    """
    for case in sorted(os.listdir(store)):
        if case.startswith(".") or not os.path.isdir(store / case):
            continue
        for series in sorted(os.listdir(store / case)):
            if not series.startswith(".") and os.path.isfile(store / case / series / "zarr.json"):
                yield case, series


def _series_metadata(store: Path):
    """(case, series, attrs, label keys) of every series, or (case, series, exception, ()).

    One series at a time, so that the client never holds the whole store's metadata:
    what :func:`~radflow.store.catalogue.list_series` reads of a series (its group
    attributes, checked; its label keys; its image's shape), or, when that fails, the
    series opened as a worker opens it, whose error names what is wrong.
    """
    for case, series in _store_series(store):
        path = store / case / series
        try:
            info = series_info(path, case, series)
            yield case, series, info.attrs, info.label_keys
            continue
        except _METADATA_ERRORS:
            pass
        try:
            attrs = open_volume(store, case, series).attrs
            yield case, series, attrs, tuple(label_keys(store, case, series))
        except _METADATA_ERRORS as exc:
            yield case, series, exc, ()


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


def _habitat_free(groups) -> dict[str, ExtractionParams | None]:
    """Group -> its parameters without the habitat class, for the groups that enable it."""
    return {group: _without_habitat(p) for group, _, p in groups if HABITAT in p.feature_classes}


def _series_units(
    store: Path,
    case: str,
    series: str,
    attrs: dict,
    keys,
    groups: list[tuple[str, dict, ExtractionParams]],
    fs: str,
    habitat_scope: frozenset,
    without_habitat: Mapping[str, ExtractionParams | None],
) -> tuple[tuple, list[tuple]]:
    """The series' shared values and one row per unit (see :class:`Units`).

    Rows: (digest, label key, label value, ROI, group number, params (the group's, or
    ``without_habitat[group]``: without the habitat class), box voxels, estimated seconds).
    """
    path = store / case / series
    institution = _partition_value(attrs.get("institution"), "institution", path)
    modality = _partition_value(attrs.get("modality"), "modality", path)
    fingerprint = attrs["fingerprint"]
    habitat_maps = _habitat_maps(path, keys) if habitat_scope else {}
    weights = [cost_per_voxel(p) for _, _, p in groups]
    rows = []
    for key in keys:
        rois, label_hash, box_voxels = _label_rois(path, key)
        # The label's own hash: a label replaced in an unchanged series (a new threshold
        # segmentation) changes its units' keys. Left out when the store has none, so
        # that keys of tables made from older stores stay as they were.
        label_part = [label_hash] if label_hash else []
        for value, name in sorted(rois.items()):
            # The habitat class reads the ROI's habitat map (a new map changes the key); it
            # applies where the store holds habitat maps of the ROI (name and modality), not
            # to the habitats themselves.
            roi = roi_key(name)
            applies = key not in habitat_maps and (roi, attrs.get("modality")) in habitat_scope
            habitat_map = habitat_maps.get(habitat_key(name)) if applies else None
            for number, (group, mapping, group_params) in enumerate(groups):
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
                voxels = box_voxels.get(int(value))
                rows.append(
                    (
                        bytes.fromhex(token),
                        key,
                        int(value),
                        roi,
                        number,
                        group_params,
                        voxels or 0,
                        estimate_seconds(voxels, weights[number]),
                    )
                )
    return (case, series, attrs.get("study"), institution, modality, fingerprint), rows


class _Columns:
    """The plan's units as they are planned: typed arrays, shared names and parameters."""

    def __init__(self):
        self.digests = bytearray()
        self.columns = {
            "series_index": array("i"),
            "label_key_index": array("i"),
            "label": array("q"),
            "roi_index": array("i"),
            "group_index": array("h"),
            "params_index": array("h"),
            "voxels": array("q"),
            "cost": array("d"),
        }
        self.series: list[SeriesUnits] = []
        self.names: dict[str, int] = {}
        self.params: dict[int, int] = {}
        self.params_list: list[ExtractionParams] = []
        self.strings: dict[str, str] = {}  # one object per distinct id or partition value

    def _name(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))

    def _params(self, params: ExtractionParams) -> int:
        number = self.params.get(id(params))
        if number is None:
            number = self.params[id(params)] = len(self.params_list)
            self.params_list.append(params)
        return number

    def add(self, shared: tuple, rows: list[tuple]) -> None:
        if not rows:
            return
        share = self.strings.setdefault
        case, series, study, institution, modality, fingerprint = (
            share(v, v) if isinstance(v, str) else v for v in shared
        )
        number = len(self.series)
        self.series.append(SeriesUnits(case, series, study, institution, modality, fingerprint))
        c = self.columns
        for digest, key, value, roi, group, params, voxels, cost in rows:
            self.digests += digest
            c["series_index"].append(number)
            c["label_key_index"].append(self._name(key))
            c["label"].append(value)
            c["roi_index"].append(self._name(roi))
            c["group_index"].append(group)
            c["params_index"].append(self._params(params))
            c["voxels"].append(voxels)
            c["cost"].append(cost)

    def units(self, store: str, ph: str, groups: list[str]) -> Units:
        columns = {name: np.frombuffer(a, a.typecode).copy() for name, a in self.columns.items()}
        columns["digests"] = np.frombuffer(bytes(self.digests), DIGEST)
        return Units(
            store, ph, tuple(self.series), tuple(self.names), groups, self.params_list, columns
        )


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
    units = _Columns()
    free = _habitat_free(groups)
    failures: list[PlanFailure] = []
    count = 0
    scope = frozenset()
    if any(HABITAT in p.feature_classes for _, _, p in groups):
        scope = _habitat_scope(store, _series_metadata(store))
        if not scope:
            raise InputError(
                store,
                "featureClass habitat: the store holds no habitat map; run `radflow habitats "
                "fit` and `radflow habitats apply` first (or remove habitat from featureClass)",
            )
    for case, series, attrs, keys in _series_metadata(store):
        count += 1
        error = attrs if isinstance(attrs, Exception) else None
        if error is None:
            try:
                units.add(*_series_units(store, case, series, attrs, keys, groups, fs, scope, free))
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
        units=units.units(str(store), ph, [name for name, _, _ in groups]),
        failures=failures,
        series=count,
    )
