"""Batch extraction from a CSV of cases, as PyRadiomics' command line does it.

The input CSV has PyRadiomics' batch columns: ``Image`` and ``Mask`` (file
paths, relative ones read from the CSV's folder), optionally ``Label`` and
``Label_channel``; every other column is passed through to the output. The
output has one row per input row, in input order: the input columns as
given, an ``error`` column (empty when the row succeeded), then the feature
columns (the first successful row's keys in order, then any others sorted,
as PyRadiomics orders them).

With ``voxel_based`` (PyRadiomics' ``--mode voxel``) each row's feature maps
are written as ``<out_dir>/Case-<row>_<key>.nrrd`` (``<row>`` counts the data
rows from 1, as PyRadiomics numbers its cases) and the CSV holds their paths.

A row whose extraction fails gets its one-line error recorded and the batch
goes on; so does a row whose worker process dies (killed, out of memory): the
rows it shared the pool with are run again one at a time on a new pool, and
the one that kills its worker alone is recorded as failed.

Workers and streaming
---------------------
With ``jobs`` > 1 the rows go to a pool of ``jobs`` worker processes started
once per batch, each handed the next row when it finishes one (no process per
row). Rows are written as they complete, in input order (a row finished early
waits for the rows above it), and flushed, into a hidden temporary file beside
the output that is renamed into place when every row is done: the file is the
same whatever ``jobs`` and whatever order the rows finish in, and it is never
seen half-written (an error or Ctrl-C deletes the temporary; a process killed
outright leaves a hidden ``.<name>.tmp-*`` that the next write of that output
removes). Only rows that finished ahead of a slower row above them are held in
memory. A row whose keys include some the first successful row lacks (rare:
diagnostics of a step only some cases need) makes the file be rewritten once at
the end with those columns added, sorted, as the batch always ordered them.

The workers are spawned, not forked. A forked worker would inherit whatever
kernels this process had compiled, but forking copies a process that may run
threads (the extraction's whole-volume thread pool, once used, would be
inherited without its threads, and a forked worker's first whole-volume pass
would wait for ever); forking a threaded process is unsafe in general (Python
3.12 warns, 3.14 no longer forks by default, macOS and Windows do not fork).
A spawned worker imports radflow and loads the kernels it uses from numba's
cache once, about a second, paid once per worker, not per row.

Cold kernel cache: each worker starts by compiling its share of the kernels the
parameters enable (:func:`radflow.extraction.extractor.warmup` of the feature
classes dealt out by compile time: the shape class's mesh kernels take longer
than all the texture classes together) and waits for the other workers before
taking a row; it then loads the others' kernels from the cache. So each kernel
is compiled once per machine, in parallel, instead of once in every worker
(checked with ``NUMBA_DEBUG_CACHE``: PyRadiomics' defaults save 12 kernels, each
once). The kernels' argument types do not depend on the image's voxel type (a
warm-up on int16 serves int16 CT, float32 MR and filtered images). With a warm
cache the same step only loads each share.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TextIO

from radflow._atomic import atomic_file
from radflow.errors import InputError, SettingsError
from radflow.extraction.extractor import extract, warmup
from radflow.extraction.output import cell, write_maps
from radflow.params.extraction import ExtractionParams
from radflow.params.pyradiomics_params import load_params

__all__ = ["BatchSummary", "extract_batch", "progress_printer"]

log = logging.getLogger("radflow.batch")

ERROR_COLUMN = "error"
_REQUIRED = ("Image", "Mask")
#: Rows queued per worker beyond the one it runs, so that a worker never waits for the next.
_QUEUED_PER_WORKER = 1
#: Seconds to compile each feature class's kernels (warmup() of the class alone after the
#: others, 2-core machine under load ~4; shape alone in a fresh process 2.6 s, the six
#: others together 1.7 s), for sharing the warm-up among workers; classes not listed: 0.5.
_COMPILE_S = {
    "shape": 2.8,
    "ngtdm": 0.45,
    "gldm": 0.4,
    "glszm": 0.3,
    "glcm": 0.2,
    "glrlm": 0.2,
    "firstorder": 0.0,
}
#: Longest wait of a warmed-up worker for the others before it goes on alone.
_WARMUP_WAIT_S = 600.0
WORKER_DIED = (
    "the worker process extracting this row died (killed, out of memory or crashed); "
    "the row was run again alone and killed its worker again"
)

#: (input line, {key: value} or None, error message or None, id of the process that ran it;
#: None for a row whose worker died)
Outcome = tuple[int, "dict[str, Any] | None", "str | None", "int | None"]


@dataclass(frozen=True)
class BatchSummary:
    """What :func:`extract_batch` did.

    Attributes
    ----------
    out_csv : Path
        The file written.
    rows : int
        Input rows (= output rows).
    failed : tuple of (int, str)
        (input line number, error message) for each row that failed, in input order.
    processes : int
        Distinct processes that extracted rows (1 with ``jobs=1``; at most ``jobs``
        with a pool, more only when a worker died and the pool was replaced).
    """

    out_csv: Path
    rows: int
    failed: tuple[tuple[int, str], ...]
    processes: int = 1

    @property
    def succeeded(self) -> int:
        return self.rows - len(self.failed)

    def report(self) -> str:
        """A short human-readable report, one line per failure."""
        lines = [f"{self.succeeded} of {self.rows} cases extracted -> {self.out_csv}"]
        lines += [f"  line {line}: {message}" for line, message in self.failed]
        return "\n".join(lines)


def extract_batch(
    csv_path: str | PathLike,
    params: Any,
    out_csv: str | PathLike,
    *,
    jobs: int = 1,
    voxel_based: bool = False,
    out_dir: str | PathLike | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> BatchSummary:
    """Extract features for every row of a PyRadiomics batch CSV.

    Parameters
    ----------
    csv_path : str or path-like
        Batch file with columns ``Image``, ``Mask`` [, ``Label``, ``Label_channel``, ...].
    params : str, path-like, mapping, ExtractionParams or None
        PyRadiomics parameter file or its content (checked before any row runs).
    out_csv : str or path-like
        Output CSV: rows streamed, in input order, to a hidden temporary file beside it,
        which replaces it atomically when the batch is done.
    jobs : int
        Worker processes (>= 1); 1 extracts every row in this process.
    voxel_based : bool
        PyRadiomics' voxel mode: feature maps, written under `out_dir`.
    out_dir : str, path-like or None
        Folder of the maps in voxel mode (None: the current folder, as PyRadiomics).
    progress : callable, optional
        Called as ``progress(done, total, failed)`` each time a row completes
        (:func:`progress_printer` prints a line now and then).

    Returns
    -------
    BatchSummary

    Raises
    ------
    InputError
        The batch file is missing, unreadable or lacks a required column.
    SettingsError
        Invalid parameters or `jobs`.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SettingsError(f"jobs must be an integer >= 1, got {jobs!r}")
    params = params if isinstance(params, ExtractionParams) else load_params(params)
    csv_path = Path(csv_path)
    columns, rows = _read_batch(csv_path)
    tasks = [
        (line, _resolve(row, csv_path.parent), params, (out_dir, index) if voxel_based else None)
        for index, (line, row) in enumerate(rows, start=1)
    ]
    if jobs == 1 or len(tasks) <= 1:
        outcomes = ((index, _extract_row(task)) for index, task in enumerate(tasks))
    else:
        outcomes = _pooled(tasks, min(jobs, len(tasks)))

    out_csv = Path(out_csv)
    failed: list[tuple[int, str]] = []
    processes: set[int] = set()
    with (
        contextlib.closing(outcomes),  # on an error or Ctrl-C: the workers stop
        atomic_file(out_csv) as tmp,
        open(tmp, "w+", newline="", encoding="utf-8") as stream,
    ):
        writer = _RowWriter(stream, columns, [row for _, row in rows])
        for done, (index, (line, result, error, pid)) in enumerate(outcomes, start=1):
            if pid is not None:
                processes.add(pid)
            if error is not None:
                failed.append((line, error))
            writer.add(index, result, error)
            if progress is not None:
                progress(done, len(tasks), len(failed))
        writer.finish()
    summary = BatchSummary(
        out_csv=out_csv, rows=len(rows), failed=tuple(sorted(failed)), processes=len(processes)
    )
    log.info("%s", summary.report())
    return summary


def progress_printer(
    stream: TextIO, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic
) -> Callable[[int, int, int], None]:
    """A `progress` callback for :func:`extract_batch` that prints a line every `every_s` seconds.

    Lines read ``batch: 12 of 24 rows done (1 failed), 35 s, about 35 s left``; the
    last row always gets its line when the batch ran longer than `every_s`.
    """
    start = clock()
    last = start

    def report(done: int, total: int, failed: int) -> None:
        nonlocal last
        now = clock()
        if now - last < every_s and not (done == total and now - start >= every_s):
            return
        last = now
        elapsed = now - start
        left = f", about {elapsed / done * (total - done):.0f} s left" if done < total else ""
        print(
            f"batch: {done} of {total} rows done ({failed} failed), {elapsed:.0f} s{left}",
            file=stream,
            flush=True,
        )

    return report


class _RowWriter:
    """Writes outcomes arriving in any order as CSV rows in input order, flushing each.

    The header is known at the first successful row in input order (the rows above it
    failed and have no features): its keys are the feature columns. Keys a later row
    adds are kept aside and the file is rewritten once with them in :meth:`finish`.
    """

    def __init__(self, stream: TextIO, columns: list[str], rows: list[dict[str, str]]):
        self.stream = stream
        self.columns = columns
        self.rows = rows
        self.writer = csv.writer(stream, lineterminator="\n")  # PyRadiomics' dialect
        self.header: list[str] | None = None
        self.known: set[str] = set()
        self.waiting: dict[int, tuple[dict[str, Any] | None, str | None]] = {}
        self.held: list[tuple[int, str | None]] = []  # failed rows above the first success
        self.next = 0
        self.late: dict[int, dict[str, str]] = {}  # row -> its cells of columns found late

    def add(self, index: int, result: dict[str, Any] | None, error: str | None) -> None:
        self.waiting[index] = (result, error)
        while self.next in self.waiting:
            result, error = self.waiting.pop(self.next)
            if self.header is not None:
                self._write(self.next, result, error)
            elif result is None:
                self.held.append((self.next, error))
            else:
                self._start(list(result))
                self._write(self.next, result, error)
            self.next += 1
        self.stream.flush()

    def finish(self) -> None:
        if self.header is None:  # no row succeeded
            self._start([])
        if self.late:
            names = sorted({key for cells in self.late.values() for key in cells})
            self.stream.seek(0)
            lines = list(csv.reader(self.stream))
            self.stream.seek(0)
            self.stream.truncate()
            self.writer.writerow(lines[0] + names)
            for index, line in enumerate(lines[1:]):
                cells = self.late.get(index, {})
                self.writer.writerow(line + [cells.get(key, "") for key in names])
        self.stream.flush()

    def _start(self, features: list[str]) -> None:
        self.header = [*self.columns, ERROR_COLUMN, *features]
        self.known = set(features)
        self.writer.writerow(self.header)
        for index, error in self.held:
            self._write(index, None, error)
        self.held = []

    def _write(self, index: int, result: dict[str, Any] | None, error: str | None) -> None:
        merged = {**self.rows[index], ERROR_COLUMN: error or "", **(result or {})}
        self.writer.writerow([cell(merged.get(column)) for column in self.header])
        late = {key: cell(value) for key, value in (result or {}).items() if key not in self.known}
        if late:
            self.late[index] = late


def _pooled(
    tasks: list, workers: int, run: Callable[[Any], Outcome] | None = None
) -> Iterator[tuple[int, Outcome]]:
    """(index, outcome) of `tasks` from `workers` spawned processes, as rows complete.

    `run` (a module-level function; default :func:`_extract_row`) runs one task. The
    workers start at once and first compile (or load) their share of the kernels the
    parameters enable, then wait for each other; each then takes a row at a time, with
    one more queued per worker. A pool that breaks (a worker died) is replaced; the
    rows it held are run again one at a time, and a row that breaks a pool while alone
    in it a second time is recorded as failed. Closing the generator (an error, Ctrl-C)
    terminates the workers.
    """
    context = multiprocessing.get_context("spawn")
    plan = None  # the warm-up's (params, voxel_based, classes of each worker)
    _, _, params, maps = tasks[0]
    if isinstance(params, ExtractionParams):  # (tests run other functions on other tasks)
        plan = (params, maps is not None, _shares(list(params.feature_classes), workers))
    run = _extract_row if run is None else run
    queue = collections.deque(range(len(tasks)))
    alone: collections.deque[int] = collections.deque()  # rows to run one at a time
    strikes: collections.Counter[int] = collections.Counter()
    in_flight: dict[Future, int] = {}
    limit = workers * (1 + _QUEUED_PER_WORKER)
    pool, started = _new_pool(context, workers, plan)
    # every worker process a pool started: a broken pool's executor forgets its processes
    # (its own thread terminates and joins them), so _stop could miss one still exiting
    seen: dict[int, Any] = {}

    def fill() -> None:
        while True:
            if alone:
                if not in_flight:
                    index = alone.popleft()
                    in_flight[pool.submit(run, tasks[index])] = index
                return
            if not queue or len(in_flight) >= limit:
                return
            index = queue.popleft()
            in_flight[pool.submit(run, tasks[index])] = index

    try:
        fill()  # starts the workers
        while in_flight:
            seen.update(getattr(pool, "_processes", None) or {})
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                done, _ = wait(in_flight)  # every row of a broken pool ends at once
            lost = []
            for future in done:
                index = in_flight.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    lost.append(index)
                elif exc is not None:  # the outcome could not come back (pickling)
                    yield index, (tasks[index][0], None, _message(exc), None)
                else:
                    yield index, future.result()
            if lost:
                _stop(pool, seen.values())
                if not started.value:
                    raise RuntimeError(
                        "the batch's worker processes died before taking a row (see their "
                        "error above); a script that calls extract_batch with jobs > 1 must "
                        "do so under `if __name__ == '__main__':`"
                    )
                for index in sorted(lost):
                    strikes[index] += 1
                    if len(lost) == 1 and strikes[index] > 1:
                        yield index, (tasks[index][0], None, WORKER_DIED, None)
                    else:
                        alone.append(index)
                log.warning(
                    "a worker process died; %d row(s) left to run one at a time", len(alone)
                )
                pool, started = _new_pool(context, workers, None)  # kernels in the cache
            fill()
    finally:
        _stop(pool, seen.values())


def _new_pool(context, workers: int, plan: tuple | None) -> tuple[ProcessPoolExecutor, Any]:
    """`workers` spawned processes; with a warm-up `plan`, each compiles a share of the kernels.

    Also returns the count of workers that finished starting (a shared integer).
    """
    started = context.Value("i", 0)
    shared = (context.Value("i", 0), context.Barrier(workers)) if plan else (None, None)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(plan, started, *shared),
    )
    return pool, started


def _start_worker(plan: tuple | None, started, counter, barrier) -> None:
    """Initializer of a worker: compile its share of the kernels, then wait for the others.

    Ctrl-C is left to the parent, which terminates the workers. A worker that waits
    longer than :data:`_WARMUP_WAIT_S` for the others goes on alone (it compiles
    what it lacks on first use, as it would without the warm-up).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if plan is not None:
        _warm_up(plan, counter, barrier)
    with started.get_lock():
        started.value += 1


def _warm_up(plan: tuple, counter, barrier) -> None:
    """Compile the next share of the classes of `plan`, one class at a time, then wait."""
    params, voxel_based, shares = plan
    with counter.get_lock():
        share = counter.value
        counter.value += 1
    for name in shares[share] if share < len(shares) else ():
        classes = {name: params.feature_classes[name]}
        try:
            warmup(dataclasses.replace(params, feature_classes=classes), voxel_based=voxel_based)
        except Exception:  # a shortcut only: the worker compiles what it lacks on first use
            log.warning("kernel warm-up of %s failed", name, exc_info=True)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=_WARMUP_WAIT_S)


def _shares(classes: list[str], workers: int) -> list[list[str]]:
    """The feature classes dealt out to `workers` by compile time, longest first.

    >>> _shares(["firstorder", "shape", "glcm", "glrlm"], 2)
    [['shape'], ['firstorder', 'glcm', 'glrlm']]
    """
    count = max(1, min(workers, len(classes)))
    shares: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for name in sorted(classes, key=lambda c: -_COMPILE_S.get(c, 0.5)):
        least = loads.index(min(loads))
        shares[least].append(name)
        loads[least] += _COMPILE_S.get(name, 0.5)
    return [sorted(share, key=classes.index) for share in shares]


def _stop(pool: ProcessPoolExecutor, seen=()) -> None:
    """Shut `pool` down and terminate its workers, running or idle, and the processes `seen`.

    Idle workers at the end of a batch are terminated too rather than waited for: their
    interpreter's shutdown (0.5-1 s) is of no use, and they hold no output.
    """
    # No public way to stop the workers before Python 3.14's terminate_workers().
    current = list((getattr(pool, "_processes", None) or {}).values())
    processes = list({id(p): p for p in [*current, *seen]}.values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def _read_batch(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if not path.is_file():
        raise InputError(path, "batch file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            columns = list(reader.fieldnames or [])
            rows = [(line, dict(row)) for line, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read the batch file ({exc})") from None
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {', '.join(map(repr, missing))}; a batch file needs "
            "'Image' and 'Mask' (optional 'Label', 'Label_channel')",
        )
    if ERROR_COLUMN in columns:
        raise InputError(
            path, f"the batch file has a column named {ERROR_COLUMN!r}, which the output uses"
        )
    return columns, rows


def _resolve(row: dict[str, str], folder: Path) -> dict[str, Any]:
    """The extraction arguments of one row (paths relative to the batch file's folder)."""

    def path(value):
        if not value:
            return None
        value = Path(value)
        return value if value.is_absolute() else folder / value

    return {
        "image": path(row.get("Image")),
        "mask": path(row.get("Mask")),
        "label": (row.get("Label") or "").strip(),
        "label_channel": (row.get("Label_channel") or "").strip(),
    }


def _integer(text: str, column: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"column {column!r}: {text!r} is not an integer") from None


def _extract_row(task) -> Outcome:
    """Extract one row; a failure is returned as its message, never raised.

    Module level, so that it pickles into worker processes.
    """
    line, args, params, maps = task
    try:
        if args["image"] is None or args["mask"] is None:
            raise InputError(f"line {line}", "Image or Mask is empty")
        result = extract(
            args["image"],
            args["mask"],
            params,
            label=_integer(args["label"], "Label"),
            label_channel=_integer(args["label_channel"], "Label_channel"),
            voxel_based=maps is not None,
        )
        if maps is not None:  # written here: worker processes return paths, not images
            result = write_maps(result, *maps)
        return line, result, None, os.getpid()
    except Exception as exc:  # the row's failure goes to the error column; the batch goes on
        log.debug("line %d failed", line, exc_info=True)
        return line, None, _message(exc), os.getpid()


def _message(exc: Exception) -> str:
    """One line: radflow's errors as they read (they name the file), others with their type."""
    message = (
        str(exc) if isinstance(exc, (InputError, SettingsError)) else f"{type(exc).__name__}: {exc}"
    )
    return " ".join(message.split())
