"""``radflow habitats fit|apply``: habitat models of a ROI over the store, and habitat maps into it.

Channels. A habitat model reads, per ROI, a few channels on one grid: the first names the
modality of the series that carries the ROI (the reference grid, e.g. ``CT``); each other names
the modality of another series of the same case (e.g. ``PT``), whose intensities (SUV, HU as
stored) are resampled onto the reference grid inside the ROI's box with SimpleITK's linear
interpolator. Where a case holds several series of a channel's modality, the one of the
reference's study is taken; a case left with none, or with several, is *missing* that channel.

Planning (:func:`plan_units`, metadata only): one :class:`HabitatUnit` per reference series
carrying the ROI (by name, :func:`radflow.io.records.roi_key`) whose case has every channel;
every other case is listed in :class:`Missing` with the reason, never dropped silently.

Fit (:func:`fit`) reads the ROI voxels of every unit (on this machine: the reads are small
boxes), stacks them (one group per ROI, for the two-stage method) and fits the given estimator
(:class:`radflow.model.habitat.HabitatModel`, built by the command line: the model layer sits
above this one); the model file (joblib, written atomically) holds the fitted estimator with
the channels, the ROI, the model's fingerprint and radflow's version (:func:`load_model`).

Apply (:func:`apply`) runs one Dask task per unit (:func:`habitat_task`: the worker reads the
channels and calls ``predict_roi``); the client, the only writer, stores each habitat map as
the label ``<roi>_habitats`` of the reference series (:mod:`radflow.store.habitats`), atomically
(:func:`radflow.store.write.add_label`). Each unit's task key digests the model's fingerprint
and what the unit reads (the series' content fingerprints, the label's hash, the ROI), and the
map records it: ``incremental`` skips units whose map holds the same key. A unit that fails is
recorded in ``STORE/.habitats-errors/<roi>_habitats.json`` (the fields of ``radflow run``'s
errors table) and never stops the others. As in ``radflow run``, a permanent failure (bad
input) is *known* to the next run: ``incremental`` does not run its unit again while its key is
the same (same model and inputs, same radflow), and only new failures count in
:attr:`ApplySummary.new_failures` (the command's exit code 1).
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import InputError, RadflowError, SettingsError
from radflow.io.records import LabelMap, roi_key
from radflow.pipeline.outcomes import (
    ClusterSummary,
    ErrorsRecord,
    check_retries,
    dask_session,
    document,
    error_row,
    finished,
    listed,
    roi_place,
)
from radflow.pipeline.tasks import TaskError
from radflow.store import layout
from radflow.store.catalogue import SeriesInfo, label_rois, list_series
from radflow.store.chunks import DamagedChunkError
from radflow.store.convert import to_sitk
from radflow.store.habitats import (
    SOURCE,
    habitat_attrs,
    habitat_key,
    habitat_record,
    habitat_rois,
)
from radflow.store.read import read_box, roi_bbox
from radflow.store.write import add_label

dask = load("dask")
distributed = load("distributed")
joblib = load("joblib")

__all__ = [
    "ApplySummary",
    "FitSummary",
    "HabitatUnit",
    "Missing",
    "apply",
    "errors_file",
    "fit",
    "habitat_task",
    "load_model",
    "plan_units",
    "read_channels",
]

#: ``format`` of the model files :func:`fit` writes.
MODEL_FORMAT = "radflow-habitat-model-1"
_ERRORS = ".habitats-errors"
_KNOWN = "known failures, not retried until their input or the model change"


@dataclass(frozen=True)
class HabitatUnit:
    """One ROI of one case with every channel: small, picklable ids (a Dask task's argument).

    Attributes
    ----------
    store : str
    case, series : str
        The reference series (first channel), which carries the ROI and receives the map.
    label_key : str
        Label image of the reference series holding the ROI.
    label : int
        The ROI's label value.
    roi : str
        The ROI's name, normalised (:func:`radflow.io.records.roi_key`).
    channel_series : tuple of str
        The series of each channel, in channel order (the first is ``series``).
    fingerprints : tuple of str
        Their content fingerprints.
    label_hash : str or None
        The hash of the label image, as the store recorded it.
    """

    store: str
    case: str
    series: str
    label_key: str
    label: int
    roi: str
    channel_series: tuple[str, ...]
    fingerprints: tuple[str, ...]
    label_hash: str | None = None

    def task_key(self, model_fingerprint: str) -> str:
        """Digest of what the unit's habitat map depends on: ``radflow-habitats-<32 hex>``."""
        text = json.dumps(
            [
                "habitats",
                model_fingerprint,
                self.case,
                self.series,
                self.label_key,
                self.label,
                self.roi,
                list(self.channel_series),
                list(self.fingerprints),
                self.label_hash,
            ],
            separators=(",", ":"),
        )
        return "radflow-habitats-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Missing:
    """A case (or one of its series) that has no unit, and why."""

    case: str
    series: str | None
    reason: str

    def __str__(self) -> str:
        where = self.case if self.series is None else f"{self.case}/{self.series}"
        return f"{where}: {self.reason}"


def _check_channels(channels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(channels, str) or not channels:
        raise SettingsError(f"channels must be a list of modalities (e.g. CT PT), got {channels!r}")
    channels = tuple(str(c) for c in channels)
    if any(not c for c in channels) or len(set(channels)) != len(channels):
        raise SettingsError(f"channels must be distinct modalities, got {list(channels)}")
    return channels


def _store_path(store: str | Path) -> Path:
    root = Path(store)
    if not root.is_dir():
        reason = "is a file, not" if root.exists() else "no such"
        raise InputError(root, f"{reason} store folder (written by `radflow ingest`)")
    return root.resolve()


def _roi_labels(store: Path, info: SeriesInfo, roi: str) -> list[tuple[str, int]]:
    """(label key, value) of every ROI named ``roi`` in the series' labels (habitat maps aside)."""
    found = []
    for key, rois in label_rois(store, info.case, info.series).items():
        if habitat_record(store, info.case, info.series, key) is not None:
            continue
        found += [(key, value) for value, name in rois.items() if roi_key(name) == roi]
    return found


def _label_hash(store: Path, case: str, series: str, key: str) -> str | None:
    folder = layout.series_path(store, case, series) / "labels" / key
    radflow = layout.node_json(folder).get("attributes", {}).get("radflow") or {}
    return (radflow.get("summary") or {}).get("hash")


def _channel_series(
    reference: SeriesInfo, others: list[SeriesInfo], channel: str
) -> tuple[SeriesInfo | None, str]:
    """The series of ``channel`` for a reference series, or None and why not."""
    found = [i for i in others if i.modality == channel and i.series != reference.series]
    study = reference.attrs.get("study")
    same_study = [i for i in found if study is not None and i.attrs.get("study") == study]
    found = same_study or found
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no {channel} series"
    names = ", ".join(i.series for i in found)
    return None, f"several {channel} series ({names}): cannot tell which to use"


def plan_units(
    store: str | Path, roi: str, channels: Sequence[str]
) -> tuple[list[HabitatUnit], list[Missing]]:
    """Every ROI named ``roi`` with all ``channels``, and the cases that lack something.

    Parameters
    ----------
    store : str or path-like
        Volume store (``radflow ingest``).
    roi : str
        ROI name (normalised with :func:`radflow.io.records.roi_key`: ``GTV`` finds ``gtv``).
    channels : sequence of str
        Modalities; the first is the reference series' (the one carrying the ROI).

    Returns
    -------
    units : list of HabitatUnit
        Sorted by case and series.
    missing : list of Missing
        Each case without a unit (no reference series with the ROI, a channel missing or
        ambiguous), and each reference series whose ROI is ambiguous.
    """
    root = _store_path(store)
    channels = _check_channels(channels)
    name = roi_key(roi)
    by_case: dict[str, list[SeriesInfo]] = defaultdict(list)
    for info in list_series(root):
        by_case[info.case].append(info)
    units, missing = [], []
    for case, infos in sorted(by_case.items()):
        references = [i for i in infos if i.modality == channels[0]]
        found_roi = False
        for ref in references:
            labels = _roi_labels(root, ref, name)
            if not labels:
                continue
            found_roi = True
            if len(labels) > 1:
                where = ", ".join(f"{k}:{v}" for k, v in labels)
                missing.append(
                    Missing(case, ref.series, f"ROI {name!r} in several labels ({where})")
                )
                continue
            chosen, reasons = [ref], []
            for channel in channels[1:]:
                series, reason = _channel_series(ref, infos, channel)
                if series is None:
                    reasons.append(reason)
                else:
                    chosen.append(series)
            if reasons:
                missing.append(Missing(case, ref.series, "; ".join(reasons)))
                continue
            key, value = labels[0]
            units.append(
                HabitatUnit(
                    store=str(root),
                    case=case,
                    series=ref.series,
                    label_key=key,
                    label=int(value),
                    roi=name,
                    channel_series=tuple(i.series for i in chosen),
                    fingerprints=tuple(str(i.attrs.get("fingerprint")) for i in chosen),
                    label_hash=_label_hash(root, case, ref.series, key),
                )
            )
        if not found_roi:
            reason = (
                f"no {channels[0]} series"
                if not references
                else f"no ROI {name!r} in its {channels[0]} series"
            )
            missing.append(Missing(case, None, reason))
    return units, missing


def _covering_box(reference: sitk.Image, shape_zyx, other: sitk.Image) -> tuple | None:
    """The (z, y, x) index box of ``other``'s grid around ``reference``'s extent, +1 voxel."""
    size = reference.GetSize()
    corners = [
        reference.TransformIndexToPhysicalPoint(
            [c[0] * (size[0] - 1), c[1] * (size[1] - 1), c[2] * (size[2] - 1)]
        )
        for c in np.ndindex(2, 2, 2)
    ]
    index = np.array([other.TransformPhysicalPointToContinuousIndex(p) for p in corners])[:, ::-1]
    low = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 2, shape_zyx)
    if np.any(high <= low):
        return None
    return tuple((int(a), int(b)) for a, b in zip(low, high))


def _grid_image(store: str, case: str, series: str) -> tuple[sitk.Image, tuple[int, int, int]]:
    """A one-voxel image with a series' grid (spacing, origin, direction), and its shape."""
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    grid = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    grid.SetSpacing(attrs["spacing_zyx"][::-1])
    grid.SetOrigin(attrs["origin_zyx"][::-1])
    grid.SetDirection(attrs["direction_xyz"])
    shape = layout.node_json(path / "0").get("shape")
    return grid, tuple(int(n) for n in shape)


def read_channels(
    unit: HabitatUnit, channels: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], tuple[slice, slice, slice]]:
    """The channels of a unit on the reference grid, inside the ROI's box.

    Parameters
    ----------
    unit : HabitatUnit
    channels : sequence of str, optional
        The channels' names, for messages.

    Returns
    -------
    values : ndarray of float64, shape (n_channels, z, y, x)
        The reference series' box, then each other channel resampled onto it (linear).
    roi : ndarray of bool, shape (z, y, x)
        The ROI in the box.
    spacing_zyx : tuple of 3 float
        The reference grid's spacing (mm).
    box : tuple of 3 slice
        Where the box lies on the reference series' grid.

    Raises
    ------
    radflow.errors.InputError
        A channel does not cover every voxel of the ROI.
    """
    names = list(channels) or [f"channel {n + 1}" for n in range(len(unit.channel_series))]
    box = roi_bbox(unit.store, unit.case, unit.series, unit.label_key, unit.label)
    reference = read_box(unit.store, unit.case, unit.series, box)
    labels = read_box(unit.store, unit.case, unit.series, box, key=unit.label_key)
    roi = np.asarray(labels.values) == unit.label
    grid = to_sitk(reference)
    values = [np.asarray(reference.values, dtype=np.float64)]
    for name, series in zip(names[1:], unit.channel_series[1:]):
        where = f"{unit.store}/{unit.case}/{series}"
        other_grid, shape = _grid_image(unit.store, unit.case, series)
        other_box = _covering_box(grid, shape, other_grid)
        if other_box is None:
            raise InputError(where, f"the {name} series does not overlap the ROI {unit.roi!r}")
        other = to_sitk(read_box(unit.store, unit.case, series, other_box))
        # SimpleITK's linear interpolation onto the reference box; NaN where other has no voxel.
        moved = sitk.Resample(
            other, grid, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat64
        )
        array = sitk.GetArrayFromImage(moved)
        outside = int(np.count_nonzero(~np.isfinite(array[roi])))
        if outside:
            raise InputError(
                where,
                f"the {name} series does not cover the ROI {unit.roi!r}: {outside} ROI voxel(s) "
                "lie outside it",
            )
        values.append(array)
    spacing = tuple(float(s) for s in reference.attrs["spacing_zyx"])
    return np.stack(values), roi, spacing, box


# -- fit ----------------------------------------------------------------------


@dataclass
class FitSummary:
    """What :func:`fit` did."""

    model: Path
    roi: str
    channels: tuple[str, ...]
    fingerprint: str
    n_habitats: int
    cases: list[str] = field(default_factory=list)
    voxels: int = 0
    missing: list[Missing] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        lines = [
            f"habitat model: {self.model}  (ROI {self.roi}, channels {' '.join(self.channels)})",
            f"  {'habitats (K)':<22}{self.n_habitats}",
            f"  {'ROIs fitted':<22}{len(self.cases)}",
            f"  {'voxels':<22}{self.voxels}",
            f"  {'cases left out':<22}{len(self.missing)}",
            f"  {'fingerprint':<22}{self.fingerprint}",
            f"  {'time':<22}{self.seconds:.1f} s",
        ]
        if self.missing:
            lines += ["left out (not fitted on):", *listed(self.missing)]
        return "\n".join(lines)


def model_fingerprint(estimator: Any, channels: Sequence[str], roi: str) -> str:
    """32 hex digits of SHA-256 over the fitted estimator's pickle, its channels and its ROI."""
    digest = hashlib.sha256(pickle.dumps(estimator, protocol=5))
    digest.update(json.dumps([list(channels), roi]).encode())
    return digest.hexdigest()[:32]


def fit(
    store: str | Path,
    roi: str,
    channels: Sequence[str],
    estimator: Any,
    out: str | Path,
) -> FitSummary:
    """Fit a habitat model on the ROI voxels of every case of a store, and save it.

    Parameters
    ----------
    store : str or path-like
        Volume store.
    roi : str
        ROI name (normalised: ``GTV`` finds ``gtv``).
    channels : sequence of str
        Modalities, the first the reference series' (see the module docstring).
    estimator : object
        An unfitted habitat estimator (:class:`radflow.model.habitat.HabitatModel`): ``fit(X,
        groups=...)`` on the stacked ROI voxels (``(n_voxels, n_channels)``, one group per ROI)
        and, once fitted, ``n_habitats_`` and ``predict_roi``.
    out : str or path-like
        The model file to write (joblib).

    Returns
    -------
    FitSummary
        The cases left out are listed with the reason.

    Raises
    ------
    radflow.errors.InputError
        No case has the ROI with every channel.
    """
    started = time.monotonic()
    channels = _check_channels(channels)
    units, missing = plan_units(store, roi, channels)
    blocks, groups, cases = [], [], []
    for unit in units:
        try:
            values, mask, _, _ = read_channels(unit, channels)
        except InputError as exc:
            missing.append(Missing(unit.case, unit.series, str(exc)))
            continue
        blocks.append(values[:, mask].T)
        groups.append(np.full(int(mask.sum()), len(cases), dtype=np.int64))
        cases.append(f"{unit.case}/{unit.series}")
    if not blocks:
        reasons = "; ".join(str(m) for m in missing[:3]) or "the store has no series"
        raise InputError(
            Path(store),
            f"no ROI {roi_key(roi)!r} with channels {' '.join(channels)} to fit on ({reasons})",
        )
    X = np.concatenate(blocks)
    estimator.fit(X, groups=np.concatenate(groups))
    fingerprint = model_fingerprint(estimator, channels, roi_key(roi))
    artefact = {
        "format": MODEL_FORMAT,
        "model": estimator,
        "roi": roi_key(roi),
        "channels": list(channels),
        "n_habitats": int(estimator.n_habitats_),
        "fingerprint": fingerprint,
        "radflow_version": __version__,
        "cases": cases,
        "missing": [str(m) for m in missing],
    }
    out = Path(out)
    with atomic_file(out) as tmp:
        joblib.dump(artefact, tmp)
    return FitSummary(
        model=out,
        roi=roi_key(roi),
        channels=channels,
        fingerprint=fingerprint,
        n_habitats=int(estimator.n_habitats_),
        cases=cases,
        voxels=int(X.shape[0]),
        missing=missing,
        seconds=time.monotonic() - started,
    )


def load_model(path: str | Path) -> dict:
    """A model file :func:`fit` wrote: ``{"model", "roi", "channels", "n_habitats",
    "fingerprint", "radflow_version", ...}``.

    Raises
    ------
    radflow.errors.InputError
        Not a file, or not a habitat model of radflow.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a folder, not" if path.exists() else "no such"
        raise InputError(path, f"{reason} habitat model file (written by `radflow habitats fit`)")
    try:
        artefact = joblib.load(path)
    except Exception as exc:  # any unpickling failure means "not a model file"
        raise InputError(
            path, f"not a habitat model written by `radflow habitats fit` ({type(exc).__name__})"
        ) from None
    if not isinstance(artefact, dict) or artefact.get("format") != MODEL_FORMAT:
        raise InputError(path, "not a habitat model written by `radflow habitats fit`")
    return artefact


@functools.lru_cache(maxsize=4)
def _worker_model(path: str, fingerprint: str):
    """The estimator of a model file, loaded once per worker process and file."""
    artefact = load_model(path)
    if artefact["fingerprint"] != fingerprint:
        raise InputError(path, "the habitat model file changed during the run: run apply again")
    return artefact["model"]


# -- apply --------------------------------------------------------------------


def habitat_task(unit: HabitatUnit, model: str, fingerprint: str, channels: tuple[str, ...]):
    """Run one unit on a worker: ``((z, y, x) (start, stop) box, uint8 habitat map of the box)``.

    Bad input is returned as a :class:`~radflow.pipeline.tasks.TaskError` (not retried);
    anything else is raised, for Dask to retry and then report.
    """
    try:
        estimator = _worker_model(model, fingerprint)
        values, roi, spacing, box = read_channels(unit, channels)
        habitats = np.asarray(estimator.predict_roi(values, roi, spacing), dtype=np.uint8)
        return tuple((b.start, b.stop) for b in box), habitats
    except RadflowError as exc:
        permanent = not isinstance(exc, DamagedChunkError)
        return TaskError(type(exc).__name__, str(exc), traceback.format_exc(), permanent)


@dataclass
class ApplySummary(ClusterSummary):
    """What :func:`apply` did.

    Failures and time: :class:`~radflow.pipeline.outcomes.ClusterSummary` (``radflow habitats
    apply`` exits 1 when ``new_failures`` > 0).
    """

    store: Path
    model: Path
    roi: str
    n_habitats: int
    units: int = 0
    written: int = 0
    skipped: int = 0
    missing: list[Missing] = field(default_factory=list)

    def report(self) -> str:
        idle = f"nothing to compute: all {self.skipped} map(s) are up to date"
        return self.compose_report(
            f"habitat maps {habitat_key(self.roi)} in {self.store}  (model {self.model})",
            [
                ("ROIs planned", self.units),
                ("maps written", self.written),
                ("skipped (unchanged)", self.skipped),
                ("failed", self.failed_text),
                ("cases left out", len(self.missing)),
            ],
            idle=None if self.written else idle,
            record=errors_file(self.store, self.roi),
            titles=("new failures", _KNOWN),
            notes=["left out (no habitat map):", *listed(self.missing)] if self.missing else (),
        )


def errors_file(store: str | Path, roi: str) -> Path:
    """The errors record of a ROI's habitat maps: ``STORE/.habitats-errors/<roi>_habitats.json``."""
    return Path(store) / _ERRORS / f"{habitat_key(roi)}.json"


def _error_row(unit: HabitatUnit, key: str, error: TaskError) -> dict:
    inputs = {"input_fingerprint": ",".join(unit.fingerprints)}
    return error_row(roi_place(unit), key, error, inputs)


@document
def apply(
    store: str | Path,
    model: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    incremental: bool = False,
    progress: bool = True,
    retries: int = 2,
) -> ApplySummary:
    """Write the habitat map of every ROI of a store the model applies to, on a Dask cluster.

    Parameters
    ----------
    store : str or path-like
        Volume store; each map becomes the label ``<roi>_habitats`` of the ROI's series.
    model : str or path-like
        A model file of :func:`fit`. Workers read it, as they read the store.
    %(where)s
    incremental : bool
        Compute only the maps the store does not hold for the same model and inputs.
    %(progress)s

    Returns
    -------
    ApplySummary
    """
    started = time.monotonic()
    check_retries(retries)
    root = _store_path(store)
    model_path = Path(model).resolve()
    artefact = load_model(model_path)
    channels = tuple(artefact["channels"])
    roi, fingerprint = artefact["roi"], artefact["fingerprint"]
    units, missing = plan_units(root, roi, channels)
    summary = ApplySummary(
        store=root,
        model=model_path,
        roi=roi,
        n_habitats=int(artefact["n_habitats"]),
        units=len(units),
        missing=missing,
    )
    # Permanent failures recorded by this radflow version, by task key: a unit whose key is
    # unchanged (same model, series, label and ROI) fails again the same way.
    record = ErrorsRecord(errors_file(root, roi))
    todo = []
    for unit in units:
        key = unit.task_key(fingerprint)
        stored = habitat_record(root, unit.case, unit.series, habitat_key(roi))
        if incremental and stored is not None and stored.get("task_key") == key:
            summary.skipped += 1
        elif not (incremental and record.keep_known(key, summary)):
            todo.append((key, unit))
    if todo:
        _execute(
            todo,
            str(model_path),
            artefact,
            summary,
            record,
            scheduler=scheduler,
            workers=workers,
            cluster=cluster,
            cluster_config=cluster_config,
            progress=progress,
            retries=retries,
        )
    record.write()
    summary.seconds = time.monotonic() - started
    return summary


def _execute(todo, model, artefact, summary, record, *, progress, retries, **where) -> None:
    by_key = dict(todo)
    with dask_session(len(todo), "ROIs", progress=progress, **where) as (client, bar):
        futures = client.map(
            habitat_task,
            [unit for _, unit in todo],
            model=model,
            fingerprint=artefact["fingerprint"],
            channels=tuple(artefact["channels"]),
            key=[key for key, _ in todo],
            retries=retries,
            pure=False,
        )
        for key, result in finished(futures, client):
            unit = by_key[key]
            if not isinstance(result, TaskError):
                try:
                    _write_map(unit, key, artefact, *result)
                except RadflowError as exc:
                    result = TaskError(type(exc).__name__, str(exc), traceback.format_exc())
            if isinstance(result, TaskError):
                record.add(_error_row(unit, key, result), summary)
            else:
                summary.written += 1
            if bar:
                bar.update(failed=int(isinstance(result, TaskError)), note=unit.case)


def _write_map(unit: HabitatUnit, key: str, artefact: dict, box, habitats: np.ndarray) -> None:
    """Store one habitat map as the label ``<roi>_habitats`` of the unit's series (client side)."""
    grid, shape = _grid_image(unit.store, unit.case, unit.series)
    whole = np.zeros(shape, dtype=np.uint8)
    whole[tuple(slice(a, b) for a, b in box)] = habitats
    image = sitk.GetImageFromArray(whole)
    image.SetSpacing(grid.GetSpacing())
    image.SetOrigin(grid.GetOrigin())
    image.SetDirection(grid.GetDirection())
    n_habitats = int(artefact["n_habitats"])
    # Only the habitats present in this ROI are its label's ROIs (radflow run extracts each).
    present = {int(k) for k in np.unique(habitats) if k}
    rois = {k: name for k, name in habitat_rois(unit.roi, n_habitats).items() if k in present}
    label = LabelMap(key=habitat_key(unit.roi), source=SOURCE, image=image, rois=rois)
    attrs = habitat_attrs(
        unit.roi,
        n_habitats,
        artefact["channels"],
        artefact["fingerprint"],
        key,
        __version__,
        unit.channel_series,
    )
    add_label(unit.store, unit.case, unit.series, label, replace=True, attrs=attrs)
