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
goes on. The output file is written under a temporary name and renamed when
complete, so it is never seen half-written.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from radflow._atomic import atomic_file
from radflow.errors import InputError, SettingsError
from radflow.extraction.extractor import extract
from radflow.extraction.output import write_maps, write_rows
from radflow.params.extraction import ExtractionParams
from radflow.params.pyradiomics_params import load_params

__all__ = ["BatchSummary", "extract_batch"]

log = logging.getLogger("radflow.batch")

ERROR_COLUMN = "error"
_REQUIRED = ("Image", "Mask")


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
        (input line number, error message) for each row that failed.
    """

    out_csv: Path
    rows: int
    failed: tuple[tuple[int, str], ...]

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
) -> BatchSummary:
    """Extract features for every row of a PyRadiomics batch CSV.

    Parameters
    ----------
    csv_path : str or path-like
        Batch file with columns ``Image``, ``Mask`` [, ``Label``, ``Label_channel``, ...].
    params : str, path-like, mapping, ExtractionParams or None
        PyRadiomics parameter file or its content (checked before any row runs).
    out_csv : str or path-like
        Output CSV; replaced atomically when the batch is done.
    jobs : int
        Rows extracted in parallel, each in its own process (>= 1).
    voxel_based : bool
        PyRadiomics' voxel mode: feature maps, written under `out_dir`.
    out_dir : str, path-like or None
        Folder of the maps in voxel mode (None: the current folder, as PyRadiomics).

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
        outcomes = [_extract_row(task) for task in tasks]
    else:
        # spawn: workers start clean (no inherited locks or thread pools) and load the numba cache.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
            outcomes = list(pool.map(_extract_row, tasks))

    feature_columns: list[str] = []
    extra: set[str] = set()
    for _, result, _ in outcomes:
        if result is None:
            continue
        if not feature_columns:
            feature_columns = list(result)
        else:
            extra.update(k for k in result if k not in feature_columns)
    header = list(columns) + [ERROR_COLUMN] + feature_columns + sorted(extra)

    out_rows = []
    failed = []
    for (line, row), (_, result, error) in zip(rows, outcomes):
        out_rows.append({**row, ERROR_COLUMN: error or "", **(result or {})})
        if error is not None:
            failed.append((line, error))

    out_csv = Path(out_csv)
    with atomic_file(out_csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as stream:
        write_rows(stream, out_rows, header)
    summary = BatchSummary(out_csv=out_csv, rows=len(rows), failed=tuple(failed))
    log.info("%s", summary.report())
    return summary


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


def _extract_row(task) -> tuple[int, dict[str, Any] | None, str | None]:
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
        return line, result, None
    except Exception as exc:  # the row's failure goes to the error column; the batch goes on
        log.debug("line %d failed", line, exc_info=True)
        message = (
            str(exc)
            if isinstance(exc, (InputError, SettingsError))
            else f"{type(exc).__name__}: {exc}"
        )
        return line, None, " ".join(message.split())
