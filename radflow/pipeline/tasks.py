"""The functions Dask runs on workers: one extraction unit, a pack of them, the worker set-up.

They are module-level so that they pickle by reference, and take a
:class:`~radflow.pipeline.plan.Task` (ids, paths, the group's frozen
:class:`~radflow.params.extraction.ExtractionParams`), never arrays: each
worker opens the store itself and reads only the ROI's box.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import traceback
from dataclasses import dataclass

import SimpleITK as sitk
from distributed.diagnostics.plugin import WorkerPlugin

from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import RadflowError
from radflow.extraction.extractor import extract
from radflow.features.habitat import FAMILY as HABITAT
from radflow.pipeline.plan import Pack, Task
from radflow.store.catalogue import label_keys
from radflow.store.chunks import DamagedChunkError
from radflow.store.habitats import habitat_key
from radflow.store.read import open_label, open_volume

dask = load("dask")

__all__ = ["Raised", "SingleThreadedLibraries", "TaskError", "extract_pack", "extract_task"]

_DIAGNOSTICS = "diagnostics_"
#: Diagnostics left out of the rows: the same for every row of a feature set
#: (the parameters are stored beside the table, the version in a column).
_CONSTANT_DIAGNOSTICS = ("diagnostics_Versions_", "diagnostics_Configuration_")


@dataclass(frozen=True)
class TaskError:
    """A task that failed for a reason that running it again cannot change.

    Bad input (:class:`radflow.errors.RadflowError`: corrupt ROI, geometry
    mismatch, an ROI below ``minimumROISize``, invalid settings) is returned
    rather than raised, so that Dask's ``retries`` are spent only on errors that
    may be transient (I/O, memory, a lost worker).

    ``permanent``: the same input gives the same error, so the errors table
    records it as a known failure that incremental runs do not retry until the
    task's input or parameters change (see :mod:`radflow.pipeline.run`).
    """

    error_type: str
    message: str
    traceback: str
    permanent: bool = True


def _plain(value):
    """A diagnostics value as JSON: numpy scalars and tuples become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows_from_result(task: Task, result: dict) -> list[dict]:
    """Split one extraction's PyRadiomics keys into one row per image type.

    ``original_glcm_Contrast`` becomes column ``glcm_Contrast`` of the row
    whose ``image_type`` is ``"original"``. ``diagnostics_*`` entries (less
    versions and configuration) go, as one JSON object, into the
    ``diagnostics`` column of every row of the task.
    """
    extracted_at = _dt.datetime.now(_dt.UTC)
    diagnostics = {
        k[len(_DIAGNOSTICS) :]: _plain(v)
        for k, v in result.items()
        if k.startswith(_DIAGNOSTICS) and not k.startswith(_CONSTANT_DIAGNOSTICS)
    }
    diagnostics_json = json.dumps(diagnostics, sort_keys=True, separators=(",", ":"))
    rows: dict[str, dict] = {}
    for name, value in result.items():
        if name.startswith(_DIAGNOSTICS):
            continue
        # Image type names hold '-' but never '_' ("wavelet-LLH", "log-sigma-1-0-mm-3D").
        image_type, column = name.split("_", 1)
        row = rows.get(image_type)
        if row is None:
            row = rows[image_type] = {
                "case_id": task.case,
                "study_id": task.study,
                "series_id": task.series,
                "roi": task.roi,
                "label_key": task.label_key,
                "label": task.label,
                "image_type": image_type,
                "diagnostics": diagnostics_json,
                "input_fingerprint": task.fingerprint,
                "params_hash": task.params_hash,
                "task_key": task.key,
                "radflow_version": __version__,
                "extracted_at": extracted_at,
            }
        row[column] = float(value)
    return list(rows.values())


def extract_task(task: Task, opened: dict | None = None) -> list[dict] | TaskError:
    """Extract one task's features on a worker.

    Opens the series and the label image lazily from the store and calls
    :func:`radflow.extract` with the group's parameters, computing on the
    calling thread only (a worker runs one task per thread).

    ``opened``: the lazy image and label of the series opened last, kept by
    :func:`extract_pack` for the pack's next units of the same series (opening
    them costs about 2 ms of a unit's 6-25 ms).

    Returns
    -------
    list of dict or TaskError
        One row per image type of the group (see :func:`rows_from_result`),
        or the :class:`TaskError` of bad input (a damaged store chunk: not
        ``permanent``, since restoring the file mends it under the same key). Any
        other exception (I/O, memory) is raised, for Dask to retry and then report.
    """
    try:
        image, mask = _inputs(task, {} if opened is None else opened)
        habitats = _habitat_map(task)
        with dask.config.set(scheduler="synchronous"):
            result = extract(image, mask, task.params, label=task.label, habitats=habitats)
        return rows_from_result(task, result)
    except RadflowError as exc:
        permanent = not isinstance(exc, DamagedChunkError)
        return TaskError(type(exc).__name__, str(exc), traceback.format_exc(), permanent)


def _inputs(task: Task, opened: dict):
    """The unit's lazy image and label, from ``opened`` when it holds its series."""
    series = (task.store, task.case, task.series)
    if opened.get("series") != series:
        opened.clear()
        image = open_volume(task.store, task.case, task.series)
        opened.update(series=series, image=image)  # only once opened
    label = ("label", task.label_key)
    if label not in opened:
        opened[label] = open_label(task.store, task.case, task.series, task.label_key)
    return opened["image"], opened[label]


@dataclass(frozen=True)
class Raised:
    """A unit of a pack that raised an unexpected exception (I/O, memory ...): maybe transient.

    :func:`extract_pack` returns it in the unit's place instead of failing the
    whole pack; the client runs that unit again on its own, with Dask's
    ``retries``, and records it only if it fails then too.
    """

    error_type: str
    message: str
    traceback: str


def extract_pack(pack: Pack) -> list[list[dict] | TaskError | Raised]:
    """Extract a pack's units one after the other on a worker, each on its own.

    Returns
    -------
    list
        One outcome per unit, in the pack's order: its rows, its
        :class:`TaskError` (bad input, as :func:`extract_task`), or
        :class:`Raised` (any other exception), so that one unit's failure
        fails that unit only. A worker lost mid-pack loses the pack's results:
        Dask runs the whole pack again elsewhere (nothing of it was committed).
    """
    outcomes = []
    opened: dict = {}
    for task in pack.tasks:
        try:
            outcomes.append(extract_task(task, opened))
        except Exception as exc:
            message = str(exc) or repr(exc)
            outcomes.append(Raised(type(exc).__name__, message, traceback.format_exc()))
    return outcomes


def _habitat_map(task: Task):
    """The ROI's habitat map for the ``habitat`` feature class, when the task computes it.

    The label ``<roi>_habitats`` of the series (``radflow habitats apply``); None when the
    series has none (the extraction then fails naming the commands to run). The plan leaves
    the class out of the tasks it does not apply to (:func:`radflow.pipeline.plan.make_plan`).
    """
    if HABITAT not in task.params.feature_classes:
        return None
    key = habitat_key(task.roi)
    if key not in label_keys(task.store, task.case, task.series):
        return None
    return open_label(task.store, task.case, task.series, key)


class SingleThreadedLibraries(WorkerPlugin):
    """Limit SimpleITK to one thread per task on every worker, present and future.

    Each worker thread runs one task, and there is one such thread per core:
    ITK's default of one thread per core inside every task would
    oversubscribe the machine (and the numbers do not depend on it).
    """

    name = "radflow-single-threaded-libraries"

    def setup(self, worker):
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
