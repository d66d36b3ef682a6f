"""``radflow run``: extract every ROI of the store on a Dask cluster into the feature table.

The client plans the units, one per (series, ROI, image-type group)
(:mod:`radflow.pipeline.plan`), and packs consecutive units into Dask tasks of
about ``task_seconds`` of estimated work (0.5 s by default; smaller at the end
of the run), so that Dask's fixed cost per task (~4 ms here) is paid per pack:
keys, rows, the errors table and incremental bookkeeping stay per unit. A unit
that fails inside a pack fails alone (bad input: its error row; an unexpected
exception: it runs again on its own with ``retries``); a pack whose workers died
runs again, and is split into its units if that keeps failing. On a machine
with several worker processes, a first pack (the cheapest unit of each
image-type group) runs on one of them before the others start, so that a cold
numba cache is filled once per machine rather than once per process.

The client submits the tasks with deterministic keys and streams results back with
``as_completed(...).batches()``: whatever finished since the last pass is
fetched with one ``gather`` and replaced by as many new tasks in one
submission, so the client's and scheduler's messages per task fall as the
cluster grows. Rows are
buffered per (institution, modality, case) and committed to the table as soon
as that case's tasks are all done, each case by one rename
(:mod:`radflow.pipeline.table`). Cases completed within ``commit_interval_s``
(5 s; at most 256) are committed together, so that one file write serves many
cases: the client's CPU stays small beside the workers' (writing Parquet was
its largest cost at 1 s), it keeps up with large clusters, and the table
gets fewer, larger files. At most a bounded window of tasks is in flight, so the
client's memory does not grow with the archive.

Only the client writes. A worker that dies costs time only: the scheduler
runs its tasks again elsewhere and the client still receives each result once.
A client that dies leaves every case either committed or not: running again
(``--incremental`` or not) ends with every row present exactly once.

Incremental runs skip tasks whose key the table already holds (the key is a
digest of the series' content fingerprint, the ROI and the parameters), and
every run removes rows whose key is no longer planned: rows of series deleted
from the store, changed, or moved.

Known failures. A task that failed for a deterministic reason (bad input such
as an ROI below ``minimumROISize``: a :class:`~radflow.pipeline.tasks.TaskError`,
``permanent`` in the errors table) fails again as long as its key is the same.
Incremental runs therefore do not run it again: its error row stays in the
errors table, and the summary lists it as a known failure, until its input, its
ROI or the parameters change (a new key) or radflow is upgraded. Failures that
may be transient (I/O, a lost worker, memory) are retried by every run. A failure
is *new* unless the errors table held the same permanent error for the same key:
:attr:`RunSummary.new_failures` is what ``radflow run`` turns into exit code 1, so
that a nightly job alarms on new failures only. A run without ``--incremental``
runs every task again, known failures included. The error rows, the known-failure
test and the failure part of the summary are :mod:`radflow.pipeline.outcomes`'s, as
for ``radflow maps`` and ``radflow habitats apply``.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Container, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import SettingsError
from radflow.params.extraction import ExtractionParams
from radflow.pipeline.keys import KeySet
from radflow.pipeline.outcomes import (
    ClusterSummary,
    check_retries,
    dask_session,
    document,
    error_row,
    failure_message,
    is_known,
    roi_place,
)
from radflow.pipeline.plan import Pack, PlanFailure, Task, Units, make_plan, pack
from radflow.pipeline.progress import KNOWN_FAILURES
from radflow.pipeline.table import TableWriter, errors_path, table_lock
from radflow.pipeline.tasks import Raised, TaskError, extract_pack, extract_task

dask = load("dask")
distributed = load("distributed")

__all__ = ["DEFAULT_TASK_SECONDS", "TASK_SECONDS_SETTING", "RunSummary", "run"]

#: Target duration of one Dask task (estimated seconds): units are packed up to it.
#: Dask costs ~4 ms per task here (benchmarks/RESULTS.md), under 1 % of 0.5 s; shorter
#: packs balance the workers better, longer ones lose more when a worker dies.
DEFAULT_TASK_SECONDS = 0.5
#: Dask configuration key of the default (``DASK_RADFLOW__TASK_SECONDS=1`` in the environment).
TASK_SECONDS_SETTING = "radflow.task-seconds"
#: Tasks in flight per worker thread, one unit each; more only adds scheduler bookkeeping.
_WINDOW_PER_THREAD = 8
_MIN_WINDOW = 64
#: Packs in flight per worker thread: one running, the next ones queued on it.
_PACKS_PER_THREAD = 3
_MIN_PACK_WINDOW = 4
#: Completed cases committed together at most.
_BATCH_CASES = 256
#: Longest wait for more finished tasks to gather together (s).
_GATHER_WAIT_S = 0.2


@dataclass
class RunSummary(ClusterSummary):
    """What one run did.

    Failures and time: :class:`~radflow.pipeline.outcomes.ClusterSummary` (``radflow run``
    exits 1 when ``new_failures`` > 0); ``failed`` counts the series that could not be planned
    too, ``known_failed`` the permanent errors the errors table already held for the same
    task key (not run again by incremental runs, or failing again the same way).

    Attributes
    ----------
    tasks : int
        Planned tasks: (series, ROI, image-type group).
    extracted : int
        Tasks run successfully in this run; ``rows`` rows written.
    skipped : int
        Tasks whose rows the table already held (incremental runs).
    removed : int
        Rows removed because their series changed or left the store.
    task_seconds : float
        Target duration of one Dask task (0: one unit per Dask task).
    dask_tasks, units_per_dask_task : int, float
        Dask tasks the units to extract were packed into (those run again alone
        after a failure not counted), and their mean number of units.
    """

    table: Path
    feature_set: str
    run_id: str
    series: int = 0
    tasks: int = 0
    extracted: int = 0
    rows: int = 0
    skipped: int = 0
    removed: int = 0
    task_seconds: float = 0.0
    dask_tasks: int = 0
    units_per_dask_task: float = 0.0

    def task_size(self) -> str | None:
        """The Dask task size this run chose, in words (None when nothing was extracted)."""
        if not self.dask_tasks:
            return None
        target = f"target {self.task_seconds:g} s" if self.task_seconds else "one unit each"
        return f"{self.dask_tasks}  ({self.units_per_dask_task:.1f} units each; {target})"

    def report(self) -> str:
        idle = (
            f"nothing to extract: all {self.skipped} task(s) of {self.series} series are up to date"
        )
        return self.compose_report(
            f"feature table: {self.table}  (feature_set={self.feature_set}, run {self.run_id})",
            [
                ("series in store", self.series),
                ("tasks planned", self.tasks),
                ("extracted", self.extracted),
                ("rows written", self.rows),
                ("skipped (unchanged)", self.skipped),
                ("failed", self.failed_text),
                ("rows removed", self.removed),
                ("dask tasks", self.task_size()),
            ],
            idle=None if self.extracted else idle,
            record=errors_path(self.table),
            titles=("new failures", KNOWN_FAILURES),
            record_name="errors table",
        )


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _error_row(task: Task | PlanFailure, error: TaskError) -> dict:
    """The errors table's row of a task's failure, or of a series that could not be planned."""
    if isinstance(task, PlanFailure):
        place = {"case_id": task.case, "series_id": task.series, "roi": None, "label_key": None}
        place |= {"label": None, "image_type_group": None}
        inputs = {"input_fingerprint": None, "params_hash": None}
    else:
        place = roi_place(task, image_type_group=task.group)
        inputs = {"input_fingerprint": task.fingerprint, "params_hash": task.params_hash}
    return error_row(place, task.key, error, inputs)


def _outcome(result, task: Task, columns):
    """(rows, error row or None) of what a task's future gave (see :func:`_results`)."""
    if isinstance(result, TaskError):
        return [], _error_row(task, result)
    if isinstance(result, list):
        unknown = sorted(set().union(*result) - columns)
        if unknown:  # the extractor and feature_columns disagree: a radflow bug, kept per task
            message = f"unexpected feature columns {unknown[:5]}"
            return [], _error_row(task, TaskError("SchemaError", message, "", False))
        return result, None
    exc, tb = result  # raised on the worker, or cancelled (the scheduler lost the task)
    if isinstance(exc, _RaisedInPack):  # raised in a pack: as the worker formatted it
        raised = exc.raised
        error = TaskError(raised.error_type, raised.message, raised.traceback, False)
        return [], _error_row(task, error)
    text = "".join(traceback.format_exception(type(exc), exc, tb)) if tb is not None else repr(exc)
    return [], _error_row(task, TaskError(type(exc).__name__, str(exc) or repr(exc), text, False))


def _known_failures(
    recorded: Mapping[tuple[str, str, str], list[dict]], planned: Container[str]
) -> dict[str, dict]:
    """Task key -> error row of the recorded permanent failures an incremental run skips.

    Those of a planned key (same input fingerprint, ROI and parameters) recorded by this
    radflow version.
    """
    return {
        row["task_key"]: row
        for rows in recorded.values()
        for row in rows
        if row.get("permanent")
        and row["task_key"] in planned
        and row.get("radflow_version") == __version__
    }


@document
def run(
    store: str | Path,
    params: str | Path | Mapping[str, Any] | ExtractionParams,
    table: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    incremental: bool = False,
    progress: bool = True,
    retries: int = 2,
    commit_interval_s: float = 5.0,
    task_seconds: float | None = None,
) -> RunSummary:
    """Extract the features of every ROI in a store into a Parquet feature table.

    Parameters
    ----------
    store : str or path-like
        Volume store (``radflow ingest``).
    params : str, path-like, mapping or ExtractionParams
        PyRadiomics parameter file or mapping; its hash names the feature set.
    table : str or path-like
        Feature table folder (created if missing); failures go to
        ``<table>.errors``.
    %(where)s
    incremental : bool
        Extract only tasks whose rows the table does not hold yet (new or
        changed series, new ROIs, earlier failures that may be transient);
        known permanent failures are not run again (see the module docstring).
        Every run removes rows of series no longer in the store.
    progress : bool
        Progress bar (terminal) or periodic lines (logs) on stderr.
    retries : int
        Extra attempts of a task after an unexpected exception (I/O, a lost
        worker's task is re-run by Dask in any case). Bad input is not retried.
    commit_interval_s : float
        Longest time a completed case waits to be committed with others (0:
        each case as soon as it is done). A client killed meanwhile loses
        only that much work, which the next run redoes.
    task_seconds : float, optional
        Target duration of one Dask task, in seconds of estimated extraction time
        (:func:`radflow.pipeline.plan.pack`): units (series, ROI, image-type
        group) are packed up to it, so that Dask's cost per task is paid per
        pack. 0: one Dask task per unit. Keys, rows and failures stay per unit.
        Default: dask's setting ``radflow.task-seconds`` (so ``radflow run`` takes
        it from ``DASK_RADFLOW__TASK_SECONDS`` or a dask configuration file), else
        :data:`DEFAULT_TASK_SECONDS`.

    Returns
    -------
    RunSummary
        ``failed`` counts the tasks recorded in the errors table,
        ``new_failures`` those not known before this run.

    Raises
    ------
    radflow.errors.InputError
        No store; the table is being written by another process.
    radflow.errors.SettingsError
        Invalid parameters or cluster options.
    """
    check_retries(retries)
    if not (isinstance(commit_interval_s, (int, float)) and commit_interval_s >= 0):
        raise SettingsError(f"commit_interval_s must be >= 0 seconds, got {commit_interval_s!r}")
    what = "task_seconds"
    if task_seconds is None:
        what = f"dask setting {TASK_SECONDS_SETTING!r}"
        task_seconds = dask.config.get(TASK_SECONDS_SETTING, DEFAULT_TASK_SECONDS)
    if not (
        isinstance(task_seconds, (int, float))
        and not isinstance(task_seconds, bool)
        and 0 <= task_seconds < float("inf")
    ):
        raise SettingsError(f"{what} must be >= 0 seconds, got {task_seconds!r}")
    started = time.monotonic()
    run_id = f"{_now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    plan = make_plan(store, params)
    units = plan.units
    table = Path(table)
    summary = RunSummary(
        table=table,
        feature_set=plan.feature_set,
        run_id=run_id,
        series=plan.series,
        tasks=len(units),
        task_seconds=float(task_seconds),
    )
    with table_lock(table):
        writer = TableWriter(table, plan.feature_set, plan.columns, plan.params, run_id)
        recorded = writer.recorded_errors()
        previous = {r["task_key"]: r for rows in recorded.values() for r in rows if r["permanent"]}
        # Keys as arrays of 16-byte digests (radflow.pipeline.keys): no set of all keys.
        is_done = np.zeros(len(units), bool)
        known = {}
        if incremental:
            is_done = writer.task_keys().contains(units.digests)
            known = _known_failures(recorded, KeySet(units.digests[~is_done]))
        is_todo = ~is_done & ~KeySet.from_keys(known).contains(units.digests)
        todo = units.select(is_todo) if not is_todo.all() else units
        keep = KeySet(units.digests[is_done])
        todo_keys = KeySet(todo.digests)
        del is_done, is_todo
        summary.skipped = len(units) - len(todo) - len(known)
        touched: set[tuple[str, str, str]] = set()

        def commit(items):
            result = writer.commit_many(items, keep)
            touched.update(where for where, _, _ in items)
            summary.rows += result.written
            summary.removed += sum(1 for k in result.removed_keys if k not in todo_keys)

        failures = defaultdict(list)
        for key, row in known.items():  # kept in the errors table as they are
            failures[units.partition(units.find(key))].append(row)
            summary.count_failure(failure_message(row), known=True)
        for failure in plan.failures:
            error = TaskError(failure.error_type, failure.message, "", failure.permanent)
            row = _error_row(failure, error)
            failures[(failure.institution, failure.modality, failure.case)].append(row)
            summary.count_failure(
                f"{failure.case}/{failure.series}: {failure.message}",
                known=is_known(row, previous),
            )
        idle = sorted(w for w in writer.stale(keep) | set(failures) if not todo.count(w))
        commit([(where, [], failures.pop(where, [])) for where in idle])
        del plan, units
        if len(todo):
            _execute(
                todo,
                writer.row_columns,
                failures,
                previous,
                commit,
                summary,
                scheduler=scheduler,
                workers=workers,
                cluster=cluster,
                cluster_config=cluster_config,
                progress=progress,
                retries=retries,
                commit_interval_s=commit_interval_s,
                task_seconds=task_seconds,
            )
        writer.prune_errors(touched)
        writer.save_index()
    summary.seconds = time.monotonic() - started
    return summary


def _execute(
    todo: Units,
    columns,
    failures,
    previous: Mapping[str, dict],
    commit,
    summary,
    *,
    progress,
    retries,
    commit_interval_s,
    task_seconds,
    **cluster_options,
) -> None:
    """Run ``todo`` on the cluster, packed into Dask tasks, and commit cases as they finish.

    Units that raised inside a pack, and the units of a pack that failed as a
    whole (its workers died, it was cancelled), run again one by one with
    Dask's ``retries``: a failure is recorded for its unit only.

    The client's state per unit is ``todo``'s compact row: :class:`Task` objects exist
    for the packs in flight, and a case's bookkeeping (its units still pending, its rows)
    from its first finished unit until it is committed.
    """
    submitted: dict[str, tuple[Pack, bool]] = {}  # Dask key -> (pack, first attempt)
    rows = defaultdict(list)
    pending: dict[tuple[str, str, str], int] = {}  # units left, of the partitions in flight
    session = dask_session(len(todo), "tasks", progress=progress, **cluster_options)
    with session as (client, bar):
        threads = max(1, sum(client.nthreads().values()))
        if task_seconds:
            window = max(_MIN_PACK_WINDOW, _PACKS_PER_THREAD * threads)
        else:
            window = max(_MIN_WINDOW, _WINDOW_PER_THREAD * threads)
        first = _first_wave(todo, client)
        rest = todo
        if first:
            rest = todo.select(
                ~KeySet.from_keys(t.key for p, _ in first for t in p.tasks).contains(todo.digests)
            )
        packs = pack(rest, task_seconds, threads)
        if bar:
            bar.note(_task_size_note(todo, task_seconds, threads))
        again: deque[tuple[Pack, int]] = deque()  # units to run alone, with their retries
        stream = distributed.as_completed(loop=client.loop)

        def add(items: list[Pack], tries: int, **where) -> None:
            singles = [p for p in items if len(p.tasks) == 1]
            packed = [p for p in items if len(p.tasks) > 1]
            # One message to the scheduler for each kind.
            if singles:
                stream.update(
                    client.map(
                        extract_task,
                        [p.tasks[0] for p in singles],
                        key=[p.key for p in singles],
                        retries=tries,
                        pure=False,
                        **where,
                    )
                )
            if packed:  # a pack never retries as a whole: its units handle their own errors
                stream.update(
                    client.map(
                        extract_pack, packed, key=[p.key for p in packed], pure=False, **where
                    )
                )

        def submit(n: int) -> None:
            while again and n > 0:  # rare: one by one
                unit, tries = again.popleft()
                submitted[unit.key] = (unit, False)
                add([unit], tries)
                n -= 1
            items = list(islice(packs, max(0, n)))
            for item in items:
                submitted[item.key] = (item, True)
            summary.dask_tasks += len(items)
            add(items, retries)

        for item, worker in first:  # kernels compiled once per machine, then the rest
            submitted[item.key] = (item, True)
            summary.dask_tasks += 1
            add([item], retries, workers=[worker], allow_other_workers=True)
        waiting = {item.key for item, _ in first}
        if not waiting:
            submit(window)
        ready, since = [], 0.0
        # Whatever finished since the last pass, fetched in one gather: when the
        # client falls behind, batches grow and its cost per task shrinks.
        while not stream.is_empty():
            batch = _next_batch(stream, max(1, window // 4))
            results = _results(client, batch)
            for future in batch:
                item, first_attempt = submitted.pop(future.key)
                result = results[future]
                future.release()
                if len(item.tasks) > 1 and not isinstance(result, list):
                    # The pack failed as a whole (its workers died too often, or it was
                    # cancelled): its units run again one by one, so that only a unit
                    # that fails on its own is recorded.
                    again.extend((_alone(t), retries) for t in item.tasks)
                    continue
                outcomes = result if len(item.tasks) > 1 else [result]
                for task, outcome in zip(item.tasks, outcomes):
                    if isinstance(outcome, Raised):
                        if retries > 0:  # maybe transient: alone, with the retries left
                            again.append((_alone(task), retries - 1))
                            continue
                        outcome = (_RaisedInPack(outcome), None)
                    new_rows, error = _outcome(outcome, task, columns)
                    where = task.partition
                    if where not in pending:  # its first unit: never seen again once done
                        pending[where] = todo.count(where)
                    rows[where].extend(new_rows)
                    if error is None:
                        summary.extracted += 1
                    else:
                        failures[where].append(error)
                        summary.count_failure(
                            failure_message(error), known=is_known(error, previous)
                        )
                    pending[where] -= 1
                    if pending[where] == 0:
                        del pending[where]
                        since = since if ready else time.monotonic()
                        ready.append((where, rows.pop(where), failures.pop(where, [])))
                    if bar:
                        bar.update(failed=int(error is not None), note=task.case)
            if waiting:
                waiting -= {f.key for f in batch}
                if not waiting:
                    submit(window)
            else:
                submit(len(batch))
            if ready and (
                len(ready) >= _BATCH_CASES or time.monotonic() - since >= commit_interval_s
            ):
                commit(ready)
                ready = []
        if ready:
            commit(ready)
    if summary.dask_tasks:
        summary.units_per_dask_task = len(todo) / summary.dask_tasks


class _RaisedInPack(Exception):
    """A :class:`~radflow.pipeline.tasks.Raised` outcome as the exception it stands for."""

    def __init__(self, raised: Raised):
        super().__init__(raised.message)
        self.raised = raised


def _alone(task: Task) -> Pack:
    return Pack(task.key, (task,), task.cost_s)


def _first_wave(todo: Units, client) -> list[tuple[Pack, str]]:
    """One pack per machine running several worker processes, pinned to one of them.

    It holds the cheapest unit of each image-type group, so that a machine whose
    numba cache is empty compiles the kernels the parameters enable once, in
    that worker, while the machine's other workers wait (they then load the
    kernels from the cache, which the processes of a machine share, instead of
    each compiling them: ~10-20 s of CPU per process). Machines with one worker
    process, and runs of one unit per group, need no such wave.
    """
    hosts = defaultdict(list)
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        hosts[info.get("host", address)].append(address)
    machines = [
        sorted(addresses)[0] for _, addresses in sorted(hosts.items()) if len(addresses) > 1
    ]
    if not machines:
        return []
    # Units by estimated cost (stable: plan order among equals), per group, the groups in
    # the order their cheapest unit comes.
    order = np.argsort(todo.cost, kind="stable")
    groups = todo.group_index[order]
    _, first = np.unique(groups, return_index=True)
    cheapest = [order[groups == g] for g in groups[np.sort(first)]]
    wave = []
    for n, worker in enumerate(machines):
        units = [todo.task(rows[n]) for rows in cheapest if len(rows) > n]
        if not units:
            break
        wave.append((_first_pack(units), worker))
    return wave


def _first_pack(units: list[Task]) -> Pack:
    return next(pack(units, float("inf"), guided=False))


def _task_size_note(todo: Units, task_seconds: float, threads: int) -> str:
    """One line saying how ``todo`` is packed into Dask tasks (printed when a run starts)."""
    mean = sum(map(float, todo.cost)) / len(todo)
    if not task_seconds:
        return f"{len(todo)} units of ~{1000 * mean:.0f} ms (estimated), one Dask task each"
    per = min(max(1.0, task_seconds / mean) if mean > 0 else 1.0, len(todo))
    return (
        f"{len(todo)} units of ~{1000 * mean:.0f} ms (estimated) -> Dask tasks of up to "
        f"~{task_seconds:g} s, ~{per:.0f} units each, smaller towards the end ({threads} threads)"
    )


def _next_batch(stream, size: int) -> list:
    """Finished futures: at least one, and up to ``size`` of them.

    Those that finish within ``_GATHER_WAIT_S`` join the batch.

    Every gather is a round trip through the scheduler and a request each
    worker must serve between tasks; fetching results a few at a time cuts
    that cost per task several-fold, while the tasks still in flight keep
    the workers busy.
    """
    batch = stream.next_batch(block=True)
    deadline = time.monotonic() + _GATHER_WAIT_S
    while len(batch) < size and stream.count() and time.monotonic() < deadline:
        time.sleep(_GATHER_WAIT_S / 10)
        batch += stream.next_batch(block=False)
    return batch


def _results(client, futures) -> dict:
    """Future -> its result, or (exception, traceback) when it failed or was cancelled.

    The finished ones are fetched in one gather; should that fail (a worker
    holding a result died meanwhile), each is fetched on its own, Dask
    recomputing what was lost.
    """
    out = {}
    finished = [f for f in futures if f.status == "finished"]
    try:
        out.update(zip(finished, client.gather(finished)))
    except Exception:
        pass
    for future in futures:
        if future in out:
            continue
        try:
            out[future] = future.result()
        except CancelledError as exc:
            out[future] = (exc, None)
        except Exception as exc:
            out[future] = (
                exc,
                future.traceback() if future.status == "error" else exc.__traceback__,
            )
    return out
