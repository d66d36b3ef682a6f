"""The feature table: Hive-partitioned Parquet that any Parquet reader can query.

Layout, for a table folder ``TABLE``::

    TABLE/feature_set=fs-<params hash>/_params.yaml         the parameters, normalised
    TABLE/feature_set=fs-<h>/institution=<i>/modality=<m>/case-<case>.parquet
    TABLE/feature_set=fs-<h>/institution=<i>/modality=<m>/part-<digest>.parquet  (compacted)
    TABLE.errors/feature_set=fs-<h>/institution=<i>/modality=<m>/case-<case>.parquet

``TABLE/**/*.parquet`` matches only live data: temporaries are hidden and do
not end in ``.parquet``, the parameters file does not either, and the errors
table lies beside ``TABLE``, not in it. Every file of a feature set has the
same schema (see :func:`feature_schema`).

The unit of update is a case's rows in one partition (one patient, one
institution, one modality): they always lie in exactly one file. Replacing
them rewrites that file under a temporary name and renames it over the old
one, so a reader sees the old rows or the new ones, never both or neither.
:func:`compact` keeps each case whole in one file, so the same holds after
compaction, and publishes a compacted partition folder by one atomic exchange
of folders (``renameat2(RENAME_EXCHANGE)`` on Linux).

Only one process writes a table at a time (a lock file, ``TABLE/.radflow.lock``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import sys
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from radflow._atomic import atomic_file, is_temporary
from radflow._lazy import load
from radflow.errors import InputError
from radflow.params.pyradiomics_params import load_params, params_hash
from radflow.pipeline.keys import DIGEST, KeySet, pack, unpack

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one writer assumed
    fcntl = None

pa = load("pyarrow")
pc = load("pyarrow.compute")
pq = load("pyarrow.parquet")
ds = load("pyarrow.dataset")

__all__ = [
    "CompactSummary",
    "KEY_COLUMNS",
    "TableWriter",
    "VerifyReport",
    "compact",
    "error_schema",
    "migrate",
    "errors_path",
    "feature_schema",
    "read_errors",
    "read_table",
    "table_lock",
    "verify",
]

#: A row is identified, within its feature set, by these columns.
KEY_COLUMNS = ("series_id", "label_key", "label", "image_type")
#: Id columns renamed so that SQL needs no quotes (``case`` is a keyword): old name -> new.
#: Files written with the old names are migrated by :func:`migrate`.
RENAMED_COLUMNS = {"case": "case_id", "study": "study_id", "series": "series_id"}
PARTITIONS = ("feature_set", "institution", "modality")
PARAMS_FILE = "_params.yaml"
LOCK_FILE = ".radflow.lock"
#: The writer's record of the table's files (``TABLE/.radflow-files.json``): for each data
#: file its inode, size and modification time, and the task keys of its cases. A cache,
#: never the truth: a file that does not match it is read, so a stale or missing index
#: costs time only. It spares a run (an incremental no-op above all) opening every file of
#: the table: on a shared file system, one stat per file instead of an open and a read.
INDEX_FILE = ".radflow-files.json"
_INDEX_VERSION = 1
_FILE_ID = struct.Struct("<Qqq")
_CASE_FILE = "case-{}.parquet"
_PART_FILE = "part-{}.parquet"
_SAFE = re.compile(r"^[0-9A-Za-z_-]+$")


# Column lists and schemas are built on first use: pyarrow loads only when a table is
# read or written, not when this module is imported.
@functools.cache
def _id_columns() -> list[tuple[str, pa.DataType]]:
    return [
        ("case_id", pa.string()),
        ("study_id", pa.string()),
        ("series_id", pa.string()),
        ("roi", pa.string()),
        ("label_key", pa.string()),
        ("label", pa.int32()),
        ("image_type", pa.string()),
    ]


@functools.cache
def _provenance_columns() -> list[tuple[str, pa.DataType]]:
    return [
        ("diagnostics", pa.string()),
        ("input_fingerprint", pa.string()),
        ("params_hash", pa.string()),
        ("task_key", pa.string()),
        ("radflow_version", pa.string()),
        ("extracted_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]


@functools.cache
def error_schema() -> pa.Schema:
    """Schema of the errors table (partition columns come from the folders).

    ``permanent`` is True for a deterministic failure of the input (bad input, an
    ROI below ``minimumROISize``): incremental runs do not retry it until the
    task's key (input fingerprint, ROI, parameters) or the radflow version changes.
    False (or null, in files of older versions) for failures that may be transient.
    """
    return pa.schema(
        [
            ("case_id", pa.string()),
            ("series_id", pa.string()),
            ("roi", pa.string()),
            ("label_key", pa.string()),
            ("label", pa.int32()),
            ("image_type_group", pa.string()),
            ("task_key", pa.string()),
            ("error_type", pa.string()),
            ("message", pa.string()),
            ("traceback_digest", pa.string()),
            ("permanent", pa.bool_()),
            ("input_fingerprint", pa.string()),
            ("params_hash", pa.string()),
            ("radflow_version", pa.string()),
            ("failed_at", pa.timestamp("us", tz="UTC")),
            ("run_id", pa.string()),
        ]
    )


@functools.cache
def _partitioning_schema() -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in PARTITIONS])


def feature_schema(columns: Iterable[str]) -> pa.Schema:
    """Schema of a feature set's files: ids, the float64 feature columns, provenance.

    Parameters
    ----------
    columns : sequence of str
        Feature columns (:func:`radflow.pipeline.plan.feature_columns`).
    """
    clash = {name for name, _ in _id_columns() + _provenance_columns()} & set(columns)
    if clash:
        raise ValueError(f"feature columns {sorted(clash)} clash with the table's own columns")
    return pa.schema(_id_columns() + [(c, pa.float64()) for c in columns] + _provenance_columns())


def errors_path(table: str | Path) -> Path:
    """The errors table of ``table``: the sibling folder ``<TABLE>.errors``."""
    table = Path(table)
    return table.with_name(table.name + ".errors")


def _partition_dir(root: Path, feature_set: str, institution: str, modality: str) -> Path:
    for what, value in (
        ("feature_set", feature_set),
        ("institution", institution),
        ("modality", modality),
    ):
        if not _SAFE.match(value):
            raise ValueError(f"{what} {value!r} is not a safe partition value")
    return (
        root / f"feature_set={feature_set}" / f"institution={institution}" / f"modality={modality}"
    )


def _case_file(case: str) -> str:
    if not _SAFE.match(case):
        raise ValueError(f"case id {case!r} is not a safe file name")
    return _CASE_FILE.format(case)


def _data_files(folder: Path) -> list[Path]:
    """The live Parquet files of a partition folder (what readers' globs match)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith(".")
    )


def _leaf_dirs(root: Path, feature_set: str | None = None) -> Iterator[tuple[str, str, str, Path]]:
    """(feature_set, institution, modality, folder) of every partition folder."""
    if not root.is_dir():
        return
    pattern = f"feature_set={feature_set or '*'}/institution=*/modality=*"
    for folder in sorted(root.glob(pattern)):
        if folder.is_dir():
            fs, inst, mod = (part.split("=", 1)[1] for part in folder.parts[-3:])
            yield fs, inst, mod, folder


def _relative(table: Path, path: Path) -> str:
    return path.relative_to(table).as_posix()


def _file_id(path: Path) -> bytes:
    """Inode, size and modification time (ns): what tells that a file was replaced.

    Packed in 24 bytes (:data:`INDEX_FILE` writes them as a list of three numbers).
    """
    st = os.stat(path)
    return _FILE_ID.pack(st.st_ino, st.st_size, st.st_mtime_ns)


def _recorded_id(value) -> bytes | None:
    """A file's identity as :data:`INDEX_FILE` records it, packed; None if malformed."""
    try:
        return _FILE_ID.pack(*value)
    except (struct.error, TypeError):
        return None


def _packed_cases(mapping: dict) -> dict:
    """A JSON object as it is read: a case's task keys ``{case: [keys]}`` packed at once.

    So that the keys of the whole index are never Python strings all at the same
    time (:func:`radflow.pipeline.keys.pack`: 16 bytes each).
    """
    if all(
        isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        for keys in mapping.values()
    ):
        return {case: pack(keys) for case, keys in mapping.items()}
    return mapping


def _packed_keys(cases) -> bool:
    """Whether ``cases`` is a file's ``{case: task keys}`` as :func:`_packed_cases` made it."""
    return isinstance(cases, dict) and all(
        isinstance(keys, (bytes, frozenset)) for keys in cases.values()
    )


def _load_index(table: Path) -> dict[str, list]:
    """The files :data:`INDEX_FILE` records; empty when it is missing, unreadable or older.

    Each case's task keys in :func:`radflow.pipeline.keys.pack`'s form.
    """
    try:
        with open(table / INDEX_FILE, encoding="utf-8") as fh:
            data = json.load(fh, object_hook=_packed_cases)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _read(path: Path) -> pa.Table:
    # ParquetFile: the file's own columns, without partition columns inferred from the path.
    return pq.ParquetFile(path).read()


def _write(path: Path, data: pa.Table) -> None:
    # Dictionary encoding pays for the repeated ids, not for the feature values.
    strings = [f.name for f in data.schema if pa.types.is_string(f.type)]
    with atomic_file(path) as tmp:
        pq.write_table(data, tmp, compression="zstd", use_dictionary=strings)


def _sorted(data: pa.Table) -> pa.Table:
    return data.sort_by([("case_id", "ascending")] + [(c, "ascending") for c in KEY_COLUMNS])


# -- migration ---------------------------------------------------------------


def old_columns(names: Iterable[str]) -> list[str]:
    """The id columns of ``names`` that have been renamed (see :data:`RENAMED_COLUMNS`)."""
    names = set(names)
    return [old for old, new in RENAMED_COLUMNS.items() if old in names and new not in names]


def _outdated(table: Path) -> str:
    """The message naming a table with the old id columns and the command that migrates it."""
    return (
        f"written by an older radflow: its id columns {', '.join(RENAMED_COLUMNS)} are now "
        f"{', '.join(RENAMED_COLUMNS.values())} (`case` is an SQL keyword); rename them with "
        f"`radflow table compact {table}` (the next `radflow run` on the table does it too)"
    )


def migrate(table: str | Path) -> int:
    """Rename the old id columns in every file of a table and its errors table.

    Files written before the rename (columns ``case``, ``study``, ``series``)
    are rewritten with ``case_id``, ``study_id``, ``series_id``, each by one
    rename, so that a reader sees a file before or after, never half of it;
    error files also get the columns added since (``permanent``, null). Files
    already migrated are not touched. The caller holds :func:`table_lock`
    (:class:`TableWriter` and :func:`compact` call this).

    Returns
    -------
    int
        Files rewritten.
    """
    table = Path(table)
    return _migrate_root(table, is_errors=False) + _migrate_root(errors_path(table), is_errors=True)


def _migrate_root(root: Path, *, is_errors: bool) -> int:
    """:func:`migrate` for the files of one folder: a feature table or an errors table."""
    rewritten = 0
    for _, _, _, folder in _leaf_dirs(root):
        for path in _data_files(folder):
            names = pq.read_schema(path).names
            if not old_columns(names) and not (is_errors and "permanent" not in names):
                continue
            data = _read(path)
            data = data.rename_columns([RENAMED_COLUMNS.get(n, n) for n in data.column_names])
            if is_errors:
                schema = error_schema()
                data = pa.table(
                    {
                        f.name: data.column(f.name).cast(f.type)
                        if f.name in data.column_names
                        else pa.nulls(data.num_rows, f.type)
                        for f in schema
                    },
                    schema=schema,
                )
            _write(path, data)
            rewritten += 1
    return rewritten


# -- lock --------------------------------------------------------------------


@contextmanager
def table_lock(table: str | Path) -> Iterator[Path]:
    """Hold the table's writer lock (``TABLE/.radflow.lock``) for the block.

    The lock is an advisory ``flock``: the operating system releases it when
    the process ends, however it ends, so a killed run never leaves the table
    locked.

    Raises
    ------
    radflow.errors.InputError
        Another process (a run or a compaction) holds the lock, or the table
        or its errors table (``TABLE.errors``) is a file.
    """
    table = Path(table)
    for folder in (table, errors_path(table)):
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, "is a file, not a folder: give a feature table folder")
    table.mkdir(parents=True, exist_ok=True)
    path = table / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(
                    table,
                    "another radflow run or compaction is writing this "
                    "table; wait for it to finish",
                ) from None
        yield path
    finally:
        os.close(fd)  # closing releases the lock


# -- writing -----------------------------------------------------------------


@dataclass
class CommitResult:
    """What one commit changed: rows written, and the task key of each old row removed."""

    written: int = 0
    removed_keys: list[str] = field(default_factory=list)


class TableWriter:
    """Commits one feature set's rows to a table, a case and partition at a time.

    The caller holds :func:`table_lock`. Creating the writer writes the
    normalised parameters beside the feature set and reads which task keys
    the table holds, and in which file each case's rows lie.

    Parameters
    ----------
    table : str or path-like
        Table folder (created if missing).
    feature_set : str
        Partition value (``"fs-<params hash>"``).
    columns : sequence of str
        Feature columns (:func:`radflow.pipeline.plan.feature_columns`).
    params : dict
        The normalised PyRadiomics mapping, written to ``_params.yaml``.
    run_id : str
        Written into every row and error of this run.
    """

    def __init__(self, table, feature_set: str, columns, params: dict, run_id: str):
        self.table = Path(table)
        self.errors = errors_path(self.table)
        self.feature_set = feature_set
        self.schema = feature_schema(columns)
        self.run_id = run_id
        #: Columns a row may have (``run_id`` is added on commit).
        self.row_columns = frozenset(self.schema.names) - {"run_id"}
        fs_dir = self.table / f"feature_set={feature_set}"
        params_text = yaml.safe_dump(params, sort_keys=False)
        if (
            not (fs_dir / PARAMS_FILE).is_file()
            or (fs_dir / PARAMS_FILE).read_text() != params_text
        ):
            with atomic_file(fs_dir / PARAMS_FILE) as tmp:
                tmp.write_text(params_text)
        _migrate_root(self.errors, is_errors=True)  # few files: those of failed cases
        #: Every data file of the table: relative path -> [[inode, size, mtime_ns], {case:
        #: task keys} for this feature set's files, None for others'] (see :data:`INDEX_FILE`;
        #: keys in :func:`radflow.pipeline.keys.pack`'s form, 16 bytes each).
        self._files = self._scan()
        if self._files is None:  # a file with the old id columns: the whole table migrated
            migrate(self.table)
            self._files = self._scan()
        #: (institution, modality, case) -> (file relative to the table, task keys of the
        #: case's rows, packed)
        self.index: dict[tuple[str, str, str], tuple[str, bytes | frozenset[str]]] = {}
        mine = f"feature_set={feature_set}"
        share = {}.setdefault  # one string per institution and modality
        for rel, (_, cases) in self._files.items():  # as scanned: folders and files sorted
            fs, inst, mod, _ = rel.split("/")
            if fs != mine:
                continue
            inst, mod = (share(v, v) for v in (inst.split("=", 1)[1], mod.split("=", 1)[1]))
            for case, keys in sorted(cases.items()):
                where = (inst, mod, case)
                if where in self.index and self.index[where][0] != rel:
                    raise InputError(
                        self.table / rel,
                        f"rows of case {case!r} are also in "
                        f"{Path(self.index[where][0]).name}; run `radflow table "
                        "verify` and remove one of the files",
                    )
                self.index[where] = (rel, keys)
        if self._changed:
            self.save_index()

    def _scan(self) -> dict[str, tuple] | None:
        """Every data file of the table, validated against :data:`INDEX_FILE`; None if old.

        A file whose inode, size and modification time are those the index recorded
        is not opened (a write replaces a file by a rename, which gives it a new
        inode); any other is read: its schema (None is returned when it has the old
        id columns: :func:`migrate`) and, in this feature set, its cases' task keys.
        """
        recorded = _load_index(self.table)
        files: dict[str, tuple] = {}
        #: Whether the index on disk differs from what this writer knows.
        self._changed = False
        for fs, _, _, folder in _leaf_dirs(self.table):
            for path in _data_files(folder):
                rel = _relative(self.table, path)
                ident = _file_id(path)
                known = recorded.pop(rel, None)  # its JSON freed as it is replaced
                mine = fs == self.feature_set
                if (
                    isinstance(known, list)
                    and len(known) == 2
                    and _recorded_id(known[0]) == ident
                    and (not mine or _packed_keys(known[1]))
                ):
                    files[rel] = (ident, known[1] if mine else None)
                    continue
                self._changed = True
                parquet = pq.ParquetFile(path)
                if old_columns(parquet.schema_arrow.names):
                    return None
                cases = None
                if mine:
                    data = parquet.read(columns=["case_id", "task_key"])
                    cases = defaultdict(list)
                    for case, key in zip(
                        data.column("case_id").to_pylist(), data.column("task_key").to_pylist()
                    ):
                        cases[case].append(key)
                    cases = {c: pack(k) for c, k in cases.items()}
                files[rel] = (ident, cases)
        self._changed |= bool(recorded)  # files gone since
        return files

    def save_index(self) -> None:
        """Write :data:`INDEX_FILE` from what this writer knows of the table's files.

        Only when it changed: an incremental no-op writes nothing.
        """
        if not self._changed:
            return
        dump = functools.partial(json.dumps, separators=(",", ":"))
        with atomic_file(self.table / INDEX_FILE, fsync=False) as tmp:  # a cache: no fsync
            with open(tmp, "w", encoding="utf-8") as fh:  # file by file: keys unpacked briefly
                fh.write(f'{{"version":{_INDEX_VERSION},"files":{{')
                for n, (rel, (ident, cases)) in enumerate(self._files.items()):
                    if cases is not None:
                        cases = {case: unpack(keys) for case, keys in cases.items()}
                    entry = [list(_FILE_ID.unpack(ident)), cases]
                    fh.write(f"{',' if n else ''}{dump(rel)}:{dump(entry)}")
                fh.write("}}")
        self._changed = False

    def task_keys(self) -> KeySet:
        """Task keys of every row the feature set holds (16 bytes each)."""
        return KeySet.union(keys for _, keys in self.index.values())

    def recorded_errors(self) -> dict[tuple[str, str, str], list[dict]]:
        """The feature set's errors table: (institution, modality, case) -> its error rows.

        Each row is a dict of :func:`error_schema` columns (``run_id`` included).
        """
        out: dict[tuple[str, str, str], list[dict]] = {}
        for _, inst, mod, folder in _leaf_dirs(self.errors, self.feature_set):
            for path in _data_files(folder):
                rows = _read(path).to_pylist()
                if rows:
                    out[(inst, mod, path.stem.removeprefix("case-"))] = rows
        return out

    def stale(self, valid: Container[str]) -> set[tuple[str, str, str]]:
        """Partitions ``(institution, modality, case)`` holding rows whose key is not ``valid``.

        ``valid`` a :class:`~radflow.pipeline.keys.KeySet`: all the cases' keys at once.
        """
        if not isinstance(valid, KeySet):
            return {
                where
                for where, (_, keys) in self.index.items()
                if any(k not in valid for k in unpack(keys))
            }
        found = {
            where
            for where, (_, keys) in self.index.items()
            if not isinstance(keys, bytes) and any(k not in valid for k in keys)
        }
        packed = [
            (where, keys) for where, (_, keys) in self.index.items() if isinstance(keys, bytes)
        ]
        sizes = np.fromiter((len(keys) // 16 for _, keys in packed), np.int64, len(packed))
        digests = np.frombuffer(b"".join(keys for _, keys in packed), DIGEST)
        missing = np.concatenate([[0], np.cumsum(~valid.contains(digests))])
        ends = np.cumsum(sizes)
        bad = (missing[ends] - missing[ends - sizes]) > 0
        found.update(packed[i][0] for i in np.flatnonzero(bad).tolist())
        return found

    def _table(self, rows: list[dict]) -> pa.Table:
        for row in rows:
            unknown = set(row) - self.row_columns
            if unknown:
                raise ValueError(
                    f"case {row.get('case_id')}: unexpected columns {sorted(unknown)[:5]} "
                    f"for feature set {self.feature_set}"
                )
        # Feature columns through one float64 matrix: pa.Table.from_pylist costs
        # ~10 ms for a row of ~100 columns, this well under 1 ms.
        features = [f.name for f in self.schema if f.type == pa.float64()]
        values = np.array(
            [[row.get(c, np.nan) for c in features] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(features))
        missing = np.array([[c not in row for c in features] for row in rows], dtype=bool).reshape(
            values.shape
        )
        columns = {c: pa.array(values[:, j], mask=missing[:, j]) for j, c in enumerate(features)}
        for f in self.schema:
            if f.name not in columns and f.name != "run_id":
                columns[f.name] = pa.array([row.get(f.name) for row in rows], f.type)
        columns["run_id"] = pa.array([self.run_id] * len(rows), pa.string())
        return pa.table({f.name: columns[f.name] for f in self.schema}, schema=self.schema)

    def commit(
        self,
        institution: str,
        modality: str,
        case: str,
        rows: list[dict],
        keep: Container[str],
        errors: list[dict] = (),
    ) -> CommitResult:
        """Replace a case's rows in one partition, in one rename.

        Parameters
        ----------
        institution, modality, case : str
            The partition and the case.
        rows : list of dict
            New rows (as from :func:`radflow.pipeline.tasks.rows_from_result`).
        keep : container of str
            Task keys whose old rows stay; every other old row of the case in
            this partition is removed (re-extracted, or no longer in the store).
        errors : list of dict
            The case's failures in this run (:func:`error_schema` columns);
            they replace its entry in the errors table.
        """
        return self.commit_many([((institution, modality, case), rows, list(errors))], keep)

    def commit_many(
        self,
        items: Iterable[tuple[tuple[str, str, str], list[dict], list[dict]]],
        keep: Container[str],
    ) -> CommitResult:
        """Commit several cases as :meth:`commit` does, writing each file once.

        Cases whose rows already lie in a file are rewritten together with
        the other cases of that file; new cases of one partition share one new
        file. Each case is still whole in one file, published by one rename.

        Parameters
        ----------
        items : iterable of ((institution, modality, case), rows, errors)
        keep : container of str
        """
        items = list(items)
        result = CommitResult()
        by_file: dict[Path, list] = defaultdict(list)
        for where, rows, _ in items:
            if where in self.index:
                by_file[self.table / self.index[where][0]].append((where, rows))
            else:
                folder = _partition_dir(self.table, self.feature_set, *where[:2])
                by_file[folder].append((where, rows))  # new cases: one new file per partition
        for target, cases in by_file.items():
            new = self._table([r for _, rows in cases for r in rows])
            result.written += new.num_rows
            if target.suffix != ".parquet":  # a partition folder: new cases only
                names = sorted({c for (_, _, c), rows in cases if rows})
                if not names:
                    continue
                target = target / (
                    _case_file(names[0])
                    if len(names) == 1
                    else _PART_FILE.format(secrets.token_hex(8))
                )
                data = new
            else:
                removed = len(result.removed_keys)
                data = self._replace(target, {c for (_, _, c), _ in cases}, new, keep, result)
                if not new.num_rows and len(result.removed_keys) == removed:
                    continue  # nothing changes in this file (a case with known failures only)
            rel = _relative(self.table, target)
            if data.num_rows:
                _write(target, _sorted(data))
            elif target.exists():
                target.unlink()
            present = defaultdict(set)
            for case, key in zip(
                data.column("case_id").to_pylist(), data.column("task_key").to_pylist()
            ):
                present[case].add(key)
            packed = {c: pack(k) for c, k in present.items()}
            if data.num_rows:
                self._files[rel] = (_file_id(target), packed)
            else:
                self._files.pop(rel, None)
            self._changed = True
            for where, _ in cases:
                keys = packed.get(where[2])
                if keys:
                    self.index[where] = (rel, keys)
                else:
                    self.index.pop(where, None)
        for where, _, errors in items:
            self._commit_errors(*where, list(errors))
        return result

    def _replace(
        self, path: Path, cases: set[str], new: pa.Table, keep: Container[str], result: CommitResult
    ) -> pa.Table:
        """The content of ``path``, the rows of ``cases`` not in ``keep`` replaced by ``new``."""
        if not path.is_file():
            return new
        old = _read(path)
        if old.schema != self.schema:
            raise InputError(
                path,
                f"schema differs from feature set {self.feature_set}'s; run `radflow table verify`",
            )
        mine = pc.is_in(old.column("case_id"), value_set=pa.array(sorted(cases), pa.string()))
        valid = pc.is_in(old.column("task_key"), value_set=pa.array(_in(keep, old), pa.string()))
        dropped = pc.and_(mine, pc.invert(valid))
        result.removed_keys += old.filter(dropped).column("task_key").to_pylist()
        return pa.concat_tables([old.filter(pc.invert(dropped)), new])

    def _commit_errors(
        self, institution: str, modality: str, case: str, errors: list[dict]
    ) -> None:
        path = _partition_dir(self.errors, self.feature_set, institution, modality) / _case_file(
            case
        )
        if errors:
            # Rows carried over from an earlier run (known failures) keep their run id.
            rows = [{"run_id": self.run_id, **e} for e in errors]
            _write(path, pa.Table.from_pylist(rows, schema=error_schema()))  # rare, few columns
        elif path.exists():
            path.unlink()

    def prune_errors(self, touched: Container[tuple[str, str, str]]) -> int:
        """Delete the error entries of cases this run did not touch; return how many.

        After a complete run, a case that needed no work has all its rows, so
        any failure recorded for it earlier is obsolete.
        """
        removed = 0
        for _, inst, mod, folder in _leaf_dirs(self.errors, self.feature_set):
            for path in _data_files(folder):
                case = path.stem.removeprefix("case-")
                if (inst, mod, case) not in touched:
                    path.unlink()
                    removed += 1
        return removed


def _in(keep: Container[str], old: pa.Table) -> list[str]:
    """The old task keys that ``keep`` contains (``keep`` may be any container)."""
    keys = set(old.column("task_key").to_pylist())
    if isinstance(keep, KeySet):
        return keep.members(keys)
    return [k for k in keys if k in keep]


# -- reading -----------------------------------------------------------------


def _dataset_table(root: Path, feature_set: str | None) -> pa.Table:
    if not root.is_dir():
        raise InputError(root, "no such table folder")
    partitioning = ds.partitioning(_partitioning_schema(), flavor="hive")
    sets = sorted(p.name.split("=", 1)[1] for p in root.glob("feature_set=*") if p.is_dir())
    if feature_set is not None:
        sets = [s for s in sets if s == feature_set]
    tables = []
    for fs in sets:
        files = [str(p) for *_, folder in _leaf_dirs(root, fs) for p in _data_files(folder)]
        if files:
            dataset = ds.dataset(
                files, format="parquet", partitioning=partitioning, partition_base_dir=str(root)
            )
            if any(old_columns(pq.read_schema(f).names) for f in files):
                raise InputError(root, _outdated(_table_of(root)))
            tables.append(dataset.to_table())
    if not tables:
        return pa.table({})
    # Feature sets may have different feature columns: missing ones become null.
    return pa.concat_tables(tables, promote_options="default")


def _table_of(root: Path) -> Path:
    """The feature table of ``root``, which may be its errors table."""
    return (
        root.with_name(root.name.removesuffix(".errors")) if root.name.endswith(".errors") else root
    )


def read_table(table: str | Path, *, feature_set: str | None = None) -> pa.Table:
    """Read the feature table (or one feature set of it) with its partition columns.

    Equivalent to ``duckdb.read_parquet('TABLE/**/*.parquet', hive_partitioning=true,
    union_by_name=true)``; provided for tests and small tables.
    """
    return _dataset_table(Path(table), feature_set)


def read_errors(table: str | Path, *, feature_set: str | None = None) -> pa.Table:
    """Read the errors table of ``table`` (empty when no task failed)."""
    root = errors_path(table)
    if not root.is_dir():
        return error_schema().empty_table()
    return _dataset_table(root, feature_set)


# -- compaction --------------------------------------------------------------


@dataclass
class CompactSummary:
    """Files before and after :func:`compact`, per table."""

    table: Path
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    partitions: int = 0
    atomic: bool = True
    migrated: int = 0

    def report(self) -> str:
        how = "" if self.atomic else " (folders swapped in two renames: exchange unsupported here)"
        text = (
            f"compacted {self.table}: {self.partitions} partition(s), {self.files_before} -> "
            f"{self.files_after} files, {self.rows} rows unchanged{how}"
        )
        if self.migrated:
            text += (
                f"\n{self.migrated} file(s) of an older radflow migrated: id columns renamed to "
                f"{', '.join(RENAMED_COLUMNS.values())}"
            )
        return text


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pack(data: pa.Table, max_rows: int) -> list[pa.Table]:
    """Split rows into files of at most ``max_rows``, each case whole in one file."""
    data = _sorted(data)
    counts = Counter(data.column("case_id").to_pylist())
    chunks, start, size = [], 0, 0
    for case in sorted(counts):
        if size and size + counts[case] > max_rows:
            chunks.append(data.slice(start, size))
            start, size = start + size, 0
        size += counts[case]
    if size:
        chunks.append(data.slice(start, size))
    return chunks


def compact(table: str | Path, *, max_rows: int = 100_000) -> CompactSummary:
    """Merge each partition's small files into few large ones; queries return the same rows.

    Each partition folder is rebuilt outside the table (a hidden sibling of
    ``TABLE``, so that no reader's glob sees it) and swapped with the live one
    in one atomic exchange. Every case stays whole in one file, so later runs
    still replace a case's rows with one rename. Left-over temporaries of
    killed writers are removed. Files of an older radflow get the current id
    column names first (:func:`migrate`).

    Parameters
    ----------
    table : str or path-like
    max_rows : int
        Largest file, in rows (a case with more rows gets a file of its own).

    Returns
    -------
    CompactSummary

    Raises
    ------
    radflow.errors.InputError
        No such table, or another process is writing it.
    """
    table = Path(table)
    if not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
    if not table.is_dir():
        raise InputError(table, "no such table folder")
    summary = CompactSummary(table=table)
    with table_lock(table):
        summary.migrated = migrate(table)
        for _, _, _, folder in _leaf_dirs(table):
            files = _data_files(folder)
            leftovers = [p for p in folder.iterdir() if is_temporary(p.name)]
            summary.files_before += len(files)
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
            summary.rows += rows
            if len(files) <= 1 and not leftovers and rows <= max_rows:
                summary.files_after += len(files)
                continue
            data = pa.concat_tables([_read(p) for p in files])
            staging = table.parent / f".{table.name}.compact-{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                for chunk in _pack(data, max_rows) if data.num_rows else []:
                    cases = sorted(set(chunk.column("case_id").to_pylist()))
                    name = _PART_FILE.format(
                        hashlib.sha256("\0".join(cases).encode()).hexdigest()[:16]
                    )
                    pq.write_table(chunk, staging / name, compression="zstd")
                    summary.files_after += 1
                for path in staging.iterdir():
                    with open(path, "rb") as fh:
                        os.fsync(fh.fileno())
                if not _exchange(staging, folder):
                    summary.atomic = False
                    old = staging.with_name(staging.name + "-old")
                    os.rename(folder, old)
                    os.rename(staging, folder)
                    staging = old
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            summary.partitions += 1
    return summary


# -- verification ------------------------------------------------------------


@dataclass
class VerifyReport:
    """What :func:`verify` found. ``ok`` when ``problems`` is empty."""

    table: Path
    feature_sets: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        lines = [
            f"table {self.table}: {len(self.feature_sets)} feature set(s), {self.files} files, "
            f"{self.rows} rows: " + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        ]
        lines += [f"  problem: {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        if self.leftovers:
            lines.append(
                f"  {len(self.leftovers)} temporary file(s) of interrupted writes "
                "(invisible to readers; `radflow table compact` removes them)"
            )
        return "\n".join(lines)


def verify(table: str | Path) -> VerifyReport:
    """Check the table's invariants; report every violation.

    Checks that each feature set has its ``_params.yaml`` (whose hash names
    the feature set), that every file of a feature set has its schema and
    rows of that parameter hash, that each (series, label_key, label,
    image_type) has exactly one row per feature set, that a case's rows in a
    partition lie in one file, and that no Parquet file hides where readers'
    globs would find it (in a hidden folder).

    Returns
    -------
    VerifyReport
    """
    table = Path(table)
    out = VerifyReport(table=table)
    if not table.is_dir():
        out.problems.append(f"{table}: no such table folder")
        return out
    for path in table.rglob("*"):
        rel = path.relative_to(table)
        hidden = any(part.startswith(".") for part in rel.parts)
        if is_temporary(path.name):
            out.leftovers.append(path)
        elif hidden and path.suffix == ".parquet":
            out.problems.append(
                f"{rel}: a Parquet file in a hidden folder: readers' globs include it"
            )
    for fs_dir in sorted(table.glob("feature_set=*")):
        fs = fs_dir.name.split("=", 1)[1]
        out.feature_sets.append(fs)
        params_file = fs_dir / PARAMS_FILE
        if not params_file.is_file():
            out.problems.append(f"{fs_dir.name}: {PARAMS_FILE} is missing")
        else:
            try:
                if "fs-" + params_hash(load_params(params_file)) != fs:
                    out.problems.append(f"{fs_dir.name}: {PARAMS_FILE} does not hash to {fs}")
            except Exception as exc:
                out.problems.append(f"{fs_dir.name}/{PARAMS_FILE}: unreadable ({exc})")
        _verify_feature_set(table, fs, out)
    return out


def _verify_feature_set(table: Path, fs: str, out: VerifyReport) -> None:
    schema = None
    keys: Counter = Counter()
    homes: dict[tuple[str, str, str], list[str]] = {}
    for _, inst, mod, folder in _leaf_dirs(table, fs):
        for path in _data_files(folder):
            rel = path.relative_to(table)
            out.files += 1
            wanted = ["case_id", "params_hash", *KEY_COLUMNS]
            try:
                file = pq.ParquetFile(path)
                if old_columns(file.schema_arrow.names):
                    out.problems.append(f"{rel}: {_outdated(table)}")
                    continue
                missing = set(wanted) - set(file.schema_arrow.names)
                if missing:
                    out.problems.append(f"{rel}: missing columns {sorted(missing)}")
                    continue
                data = file.read(columns=wanted)
            except Exception as exc:
                out.problems.append(f"{rel}: unreadable Parquet ({exc})")
                continue
            out.rows += data.num_rows
            if schema is None:
                schema = file.schema_arrow
            elif file.schema_arrow != schema:
                out.problems.append(f"{rel}: schema differs from the rest of feature set {fs}")
                continue
            hashes = set(data.column("params_hash").to_pylist())
            if hashes - {fs.removeprefix("fs-")}:
                out.problems.append(
                    f"{rel}: rows of params hash {sorted(hashes)} in feature set {fs}"
                )
            for case in set(data.column("case_id").to_pylist()):
                homes.setdefault((inst, mod, case), []).append(path.name)
            columns = [data.column(c).to_pylist() for c in KEY_COLUMNS]
            keys.update(zip(*columns))
    for key, count in sorted(keys.items(), key=lambda kv: tuple(map(str, kv[0]))):
        if count > 1:
            out.problems.append(
                f"{fs}: {count} rows for (series, label_key, label, image_type) = {key}"
            )
    for (inst, mod, case), names in sorted(homes.items()):
        if len(names) > 1:
            out.problems.append(
                f"{fs}/institution={inst}/modality={mod}: rows of case {case} in "
                f"{len(names)} files {sorted(names)}"
            )
