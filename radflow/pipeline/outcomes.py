"""Failure bookkeeping of the Dask commands: ``radflow run`` (:mod:`radflow.pipeline.run`), and
those that write into the store (``radflow maps``, ``radflow habitats apply``): error rows,
known failures, the failure part of their summaries; for the latter two also their errors
record and the gathering of task results.

Error rows. ``radflow run`` keeps its rows in the errors table beside the feature table
(Parquet, :func:`radflow.pipeline.table.error_schema`). Each output of the other commands (a
feature set's maps, a ROI's habitat maps) has a JSON file of error rows
(:class:`ErrorsRecord`), one per failed unit. A row has the same fields in the three commands
(:func:`error_row`): where the unit lies (case, series, ROI, label, ...), its ``task_key``,
``error_type``, ``message`` (first 2000 characters), ``traceback_digest``, ``permanent``, the
input's fingerprint (and the parameters' hash), ``radflow_version`` and ``failed_at`` (ISO 8601
text in a JSON file). Every run rewrites the JSON file with the rows of the units it planned,
so rows of inputs gone from the store do not linger.

Known failures. A *permanent* failure (bad input: a :class:`~radflow.pipeline.tasks.TaskError`
returned by the task) fails again as long as the unit's key (its input, its parameters or
model) and radflow's version are the same: an incremental run does not run the unit again and
keeps its row (:meth:`ErrorsRecord.keep_known`; ``radflow run`` keeps it in its errors table);
a failure is *new* unless the record held the same permanent error for the same key
(:func:`is_known`, :meth:`ErrorsRecord.add`). :attr:`ClusterSummary.new_failures` is what each
command turns into exit code 1, so that a nightly job alarms on new failures only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radflow._atomic import atomic_file
from radflow._docstrings import filler
from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import SettingsError
from radflow.pipeline.clusters import connect
from radflow.pipeline.progress import Progress
from radflow.pipeline.tasks import SingleThreadedLibraries, TaskError

distributed = load("distributed")

__all__ = [
    "ClusterSummary",
    "ErrorsRecord",
    "check_retries",
    "dask_session",
    "document",
    "error_row",
    "failure_message",
    "finished",
    "is_known",
    "listed",
    "roi_place",
    "traceback_digest",
]

_MESSAGE_CHARS = 2000
#: Failure messages a summary keeps of each kind (the errors record has them all).
_MAX_MESSAGES = 100
#: Items a report lists of each kind.
_SHOWN = 20
_WIDTH = 22
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')

#: Fills ``%(where)s`` (scheduler, workers, cluster, cluster_config) and ``%(progress)s``
#: (progress, retries) in the docstring of a command's function.
document = filler(
    {
        "where": """scheduler, workers, cluster, cluster_config
        Where to run: see :func:`radflow.pipeline.clusters.connect`.""",
        "progress": """progress : bool
        Progress output on stderr.
    retries : int
        Extra attempts of a task after an unexpected exception.""",
    }
)


def listed(items: Sequence[Any], total: int | None = None) -> list[str]:
    """Report lines of the first 20 ``items``, then ``... and N more`` (``total``: all of them)."""
    total = len(items) if total is None else total
    shown = items[:_SHOWN]
    lines = [f"  {item}" for item in shown]
    if total > len(shown):
        lines.append(f"  ... and {total - len(shown)} more")
    return lines


@dataclass(kw_only=True)
class ClusterSummary:
    """What a command that runs units on a Dask cluster did: the base of its summary class.

    Attributes
    ----------
    failed : int
        Units that failed (see the errors record), known failures included.
    known_failed : int
        Of ``failed``, the permanent failures the errors record already held for the same key.
    messages, known_messages : list of str
        One line per new failure, and per known failure (the first 100 of each).
    seconds : float
        How long the run took.
    """

    failed: int = 0
    known_failed: int = 0
    messages: list[str] = field(default_factory=list)
    known_messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def new_failures(self) -> int:
        """Failures not known before this run: the command exits 1 when > 0."""
        return self.failed - self.known_failed

    def count_failure(self, message: str, *, known: bool) -> None:
        """Count a failure; keep its message (the first 100 of each kind)."""
        self.failed += 1
        self.known_failed += int(known)
        messages = self.known_messages if known else self.messages
        if len(messages) < _MAX_MESSAGES:
            messages.append(message)

    @property
    def failed_text(self) -> int | str:
        """The ``failed`` row of a report: the count, new and known apart when some are known."""
        if not self.known_failed:
            return self.failed
        return f"{self.failed}  (new {self.new_failures}, known {self.known_failed})"

    def compose_report(
        self,
        header: str,
        rows: Iterable[tuple[str, Any]],
        *,
        idle: str | None,
        record: Path,
        titles: tuple[str, str],
        notes: Sequence[str] = (),
        record_name: str = "errors record",
    ) -> str:
        """A summary's report: ``header``; ``idle`` (the "nothing to do" line, given when
        nothing was computed) unless a new failure happened; a line per ``(name, value)`` of
        ``rows`` whose value is not None, and the time; ``notes``; the new and the known
        failures under ``titles``, with where they are recorded (``record_name``: ``record``).
        """
        lines = [header]
        if idle is not None and self.new_failures == 0:
            known = f" ({self.known_failed} known failure(s))" if self.known_failed else ""
            lines.append(f"{idle}{known}")
        rows = [*rows, ("time", f"{self.seconds:.1f} s")]
        lines += [f"  {name:<{_WIDTH}}{value}" for name, value in rows if value is not None]
        lines += notes
        sections = (self.new_failures, self.messages), (self.known_failed, self.known_messages)
        for title, (count, messages) in zip(titles, sections):
            if count:
                lines.append(f"{title} ({record_name}: {record}):")
                lines += listed(messages, count)
        return "\n".join(lines)


def failure_message(row: Mapping[str, Any]) -> str:
    """A failure's line in a report: ``case/series[/label:value [group]]: type: message``."""
    where = f"{row['case_id']}/{row['series_id']}"
    if row.get("label_key") is not None:
        where += f"/{row['label_key']}:{row['label']}"
        if "image_type_group" in row:
            where += f" [{row['image_type_group']}]"
    return f"{where}: {row['error_type']}: {row['message']}"


def traceback_digest(text: str) -> str:
    """16 hex digits of SHA-256 over a traceback's frames (file name, line, function).

    The message is left out, so the same failure in different cases has the
    same digest (``GROUP BY traceback_digest`` in the errors table).
    """
    frames = [f"{Path(f).name}:{line}:{func}" for f, line, func in _FRAME.findall(text)]
    return hashlib.sha256("\n".join(frames).encode()).hexdigest()[:16]


def is_known(error: Mapping[str, Any], previous: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``previous`` (task key -> recorded row) held this permanent error already (same
    key, type, message)."""
    before = previous.get(error["task_key"])
    return bool(
        error["permanent"]
        and before is not None
        and (before["error_type"], before["message"]) == (error["error_type"], error["message"])
    )


def roi_place(unit: Any, **more: Any) -> dict:
    """Where a unit of one ROI lies, as error row fields: ``case_id``, ``series_id``, ``roi``,
    ``label_key``, ``label`` of the unit's ``case``, ``series``, ... attributes, then ``more``
    (``image_type_group``)."""
    return {
        "case_id": unit.case,
        "series_id": unit.series,
        "roi": unit.roi,
        "label_key": unit.label_key,
        "label": unit.label,
        **more,
    }


def error_row(
    place: Mapping[str, Any], task_key: str, error: TaskError, inputs: Mapping[str, Any]
) -> dict:
    """The error row of a unit's failure.

    ``place`` says where the unit lies (:func:`roi_place`); ``inputs`` what it read (its
    ``input_fingerprint``, the parameters' ``params_hash``). ``failed_at`` is a UTC datetime.
    """
    return {
        **place,
        "task_key": task_key,
        "error_type": error.error_type,
        "message": error.message[:_MESSAGE_CHARS],
        "traceback_digest": traceback_digest(error.traceback),
        "permanent": bool(error.permanent),
        **inputs,
        "radflow_version": __version__,
        "failed_at": _dt.datetime.now(_dt.UTC),
    }


class ErrorsRecord:
    """The errors record of one output of a command: a JSON list of error rows at ``path``.

    ``previous`` holds the permanent failures it recorded with this radflow version, by task
    key (a missing or unreadable file holds none); ``rows`` this run's rows, which
    :meth:`write` puts in the file's place.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.previous = {
            row["task_key"]: row
            for row in self.read()
            if row.get("permanent") and row.get("radflow_version") == __version__
        }
        self.rows: list[dict] = []

    def read(self) -> list[dict]:
        """The rows of the file (none when it is missing or unreadable)."""
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(rows, list):
            return []
        return [r for r in rows if isinstance(r, dict) and "task_key" in r]

    def keep_known(self, key: str, failures: ClusterSummary) -> bool:
        """Keep the recorded permanent failure of ``key``, if any, as a known failure.

        An incremental run does not run such a unit again (same key, same radflow: the same
        error). Returns whether there was one.
        """
        row = self.previous.get(key)
        if row is None:
            return False
        self.rows.append(row)
        failures.count_failure(failure_message(row), known=True)
        return True

    def add(self, row: dict, failures: ClusterSummary, message: str | None = None) -> None:
        """Record a failure of this run: known if the record held the same permanent error."""
        self.rows.append(row)
        known = is_known(row, self.previous)
        failures.count_failure(message or failure_message(row), known=known)

    def write(self) -> None:
        """Replace the file with this run's rows (atomically; nothing written for none)."""
        if not self.rows and not self.path.exists():
            return
        with atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps(self.rows, indent=1, default=_json_value))


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, _dt.datetime) else str(value)


def check_retries(retries: int) -> None:
    """``retries`` (extra attempts of a task) must be a whole number >= 0, as ``radflow run``'s."""
    if type(retries) is not int or retries < 0:
        raise SettingsError(f"retries must be a whole number >= 0, got {retries!r}")


@contextmanager
def dask_session(
    total: int,
    label: str,
    *,
    progress: bool,
    scheduler: str | None,
    workers: int | None,
    cluster: str | None,
    cluster_config: str | Path | None,
) -> Iterator[tuple[Any, Progress | None]]:
    """A client (see :func:`radflow.pipeline.clusters.connect`) whose workers run one thread
    per library, and a progress bar of ``total`` ``label`` (None without ``progress``)."""
    bar = Progress(total, label) if progress else None
    with connect(
        scheduler=scheduler, workers=workers, cluster=cluster, cluster_config=cluster_config
    ) as client:
        client.register_plugin(SingleThreadedLibraries())
        yield client, bar
    if bar:
        bar.close()


def finished(futures, client) -> Iterator[tuple[str, Any]]:
    """``(key, result)`` of each future as it finishes, released at once.

    A task that raised (after its retries) gives a TaskError that is not permanent: it may
    succeed in another run.
    """
    for future in distributed.as_completed(futures, loop=client.loop):
        try:
            result = future.result()
        except Exception as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            result = TaskError(type(exc).__name__, str(exc) or repr(exc), text, False)
        future.release()
        yield future.key, result
