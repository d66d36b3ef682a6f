"""The feature table: layout readable by four Parquet readers, atomic case replacement,
compaction that changes no query, verification of the one-row-per-key invariant."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from radflow.errors import InputError
from radflow.pipeline import table as table_mod
from radflow.pipeline.table import (
    TableWriter,
    compact,
    errors_path,
    read_errors,
    read_table,
    table_lock,
    verify,
)

COLUMNS = ("firstorder_Mean", "glcm_Contrast")
PARAMS = {"featureClass": {"firstorder": ["Mean"], "glcm": ["Contrast"]}}
#: (institution, modality, case) of the cases used below.
CASES = [
    ("INST_A", "CT", "P001"),
    ("INST_A", "MR", "P001"),
    ("INST_B", "CT", "P002"),
    ("INST_B", "CT", "P003"),
    ("INST_A", "CT", "P004"),
]


def _params_mapping():
    from radflow.params.pyradiomics_params import load_params, params_to_dict

    return params_to_dict(load_params(PARAMS))


def _fs():
    from radflow.params.pyradiomics_params import load_params
    from radflow.pipeline.plan import feature_set_name

    return feature_set_name(load_params(PARAMS))


def _rows(case, modality, version=0, rois=2):
    """Two ROIs x two image types of one series; values encode (case, roi, version)."""
    out = []
    for label in range(1, rois + 1):
        for i, image_type in enumerate(("original", "square")):
            out.append(
                {
                    "case_id": case,
                    "study_id": None,
                    "series_id": f"{modality}-{case}",
                    "roi": f"roi{label}",
                    "label_key": "gtv",
                    "label": label,
                    "image_type": image_type,
                    "firstorder_Mean": 1000 * int(case[1:]) + 10 * label + i + 0.5 * version,
                    "glcm_Contrast": float(version),
                    "diagnostics": "{}",
                    "input_fingerprint": f"fp{version}",
                    "params_hash": _fs()[3:],
                    "task_key": f"k-{case}-{modality}-{label}-v{version}",
                    "radflow_version": "test",
                    "extracted_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                }
            )
    return out


def _writer(table, run_id="run1"):
    return TableWriter(table, _fs(), COLUMNS, _params_mapping(), run_id)


@pytest.fixture
def filled(tmp_path) -> Path:
    table = tmp_path / "features"
    with table_lock(table):
        writer = _writer(table)
        for inst, mod, case in CASES:
            writer.commit(inst, mod, case, _rows(case, mod), keep=set())
    return table


def _duckdb(table, where=""):
    glob = f"{table}/**/*.parquet"
    return duckdb.sql(
        f"SELECT feature_set, institution, modality, case_id, series_id, label, image_type, "
        "firstorder_Mean, glcm_Contrast, run_id "
        f"FROM read_parquet('{glob}', hive_partitioning=true) "
        f"{where} ORDER BY ALL"
    ).fetchall()


def test_layout_is_hive_partitioned_with_params_beside(filled):
    fs_dir = filled / f"feature_set={_fs()}"
    assert (fs_dir / "_params.yaml").is_file()
    files = sorted(p.relative_to(filled).as_posix() for p in filled.rglob("*.parquet"))
    assert files == sorted(
        f"feature_set={_fs()}/institution={i}/modality={m}/case-{c}.parquet" for i, m, c in CASES
    )
    # The lock file and the parameters are invisible to the readers' glob.
    assert (filled / ".radflow.lock").exists()
    assert not errors_path(filled).exists()


def test_four_readers_read_the_same_rows(filled):
    expected = sorted(
        (
            inst,
            mod,
            row["case_id"],
            row["series_id"],
            row["label"],
            row["image_type"],
            row["firstorder_Mean"],
        )
        for inst, mod, case in CASES
        for row in _rows(case, mod)
    )
    assert len(expected) == 20

    rows = duckdb.sql(
        f"SELECT institution, modality, case_id, series_id, label, image_type, firstorder_Mean "
        f"FROM read_parquet('{filled}/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert sorted(rows) == expected

    frame = pl.scan_parquet(f"{filled}/**/*.parquet", hive_partitioning=True).collect()
    got = frame.select(
        "institution", "modality", "case_id", "series_id", "label", "image_type", "firstorder_Mean"
    ).rows()
    assert sorted(got) == expected
    assert set(frame["feature_set"]) == {_fs()}

    pdf = pd.read_parquet(filled)
    got = [
        (
            str(r.institution),
            str(r.modality),
            r.case_id,
            r.series_id,
            int(r.label),
            r.image_type,
            r.firstorder_Mean,
        )
        for r in pdf.itertuples()
    ]
    assert sorted(got) == expected

    data = ds.dataset(filled, format="parquet", partitioning="hive").to_table()
    got = list(
        zip(
            *(
                data.column(c).to_pylist()
                for c in (
                    "institution",
                    "modality",
                    "case_id",
                    "series_id",
                    "label",
                    "image_type",
                    "firstorder_Mean",
                )
            )
        )
    )
    assert sorted(got) == expected
    # Types survive: timestamps in UTC, labels as integers, features as doubles.
    assert data.schema.field("extracted_at").type == pa.timestamp("us", tz="UTC")
    assert data.schema.field("glcm_Contrast").type == pa.float64()
    assert read_table(filled).num_rows == 20


def test_replacing_a_case_keeps_valid_rows_and_drops_the_rest(filled):
    with table_lock(filled):
        writer = _writer(filled, run_id="run2")
        # P002: ROI 1 re-extracted (v1); ROI 2's old rows stay valid.
        new = [r for r in _rows("P002", "CT", version=1) if r["label"] == 1]
        result = writer.commit("INST_B", "CT", "P002", new, keep={"k-P002-CT-2-v0"})
        assert result.written == 2 and result.removed_keys == ["k-P002-CT-1-v0"] * 2
        # P003: series deleted from the store: nothing valid, nothing new.
        writer.commit("INST_B", "CT", "P003", [], keep=set())
    rows = _duckdb(filled, "WHERE case_id = 'P002'")
    assert [(r[5], r[6], r[8], r[9]) for r in rows] == [
        (1, "original", 1.0, "run2"),
        (1, "square", 1.0, "run2"),
        (2, "original", 0.0, "run1"),
        (2, "square", 0.0, "run1"),
    ]
    assert _duckdb(filled, "WHERE case_id = 'P003'") == []
    assert not any(filled.rglob("case-P003.parquet"))
    assert verify(filled).ok


def test_readers_never_see_a_case_half_replaced(filled):
    """A reader polling while the case is replaced again and again always sees 4 rows."""
    stop = threading.Event()
    seen = []

    def reader():
        con = duckdb.connect()
        while not stop.is_set():
            seen.append(
                con.sql(
                    f"SELECT count(*), count(DISTINCT glcm_Contrast) FROM read_parquet("
                    f"'{filled}/**/*.parquet', hive_partitioning=true) WHERE case_id = 'P002'"
                ).fetchall()[0]
            )

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with table_lock(filled):
            writer = _writer(filled)
            for version in range(1, 40):
                writer.commit("INST_B", "CT", "P002", _rows("P002", "CT", version), keep=set())
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(seen) > 5
    assert set(seen) == {(4, 1)}  # never 0 rows, never 8, never old and new mixed


def test_commit_many_writes_each_file_once_and_keeps_cases_whole(tmp_path):
    table = tmp_path / "t"
    with table_lock(table):
        writer = _writer(table)
        writer.commit_many(
            [(("INST_A", "CT", c), _rows(c, "CT"), []) for c in ("P001", "P002", "P003")]
            + [(("INST_B", "CT", "P004"), _rows("P004", "CT"), [])],
            keep=(),
        )
        folder = table / f"feature_set={_fs()}" / "institution=INST_A" / "modality=CT"
        (shared,) = list(folder.iterdir())  # three new cases, one new file
        assert shared.name.startswith("part-")
        # P002 replaced (in the shared file) and P005 added (a file of its own), in one call.
        result = writer.commit_many(
            [
                (("INST_A", "CT", "P002"), _rows("P002", "CT", 1), []),
                (("INST_A", "CT", "P005"), _rows("P005", "CT"), []),
            ],
            keep=(),
        )
    assert result.written == 8 and len(result.removed_keys) == 4
    assert sorted(p.name for p in folder.iterdir()) == sorted([shared.name, "case-P005.parquet"])
    rows = _duckdb(table)
    assert len(rows) == 20
    assert {r[9] for r in rows if r[3] == "P002"} == {"run1"} and {
        r[8] for r in rows if r[3] == "P002"
    } == {1.0}
    assert verify(table).ok


def test_a_failed_write_leaves_the_old_rows(filled, monkeypatch):
    before = _duckdb(filled)

    def broken(data, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(table_mod.pq, "write_table", broken)
    with table_lock(filled):
        writer = _writer(filled)
        with pytest.raises(OSError, match="disk full"):
            writer.commit("INST_B", "CT", "P002", _rows("P002", "CT", 1), keep=set())
    monkeypatch.undo()
    assert _duckdb(filled) == before
    assert [p.name for p in filled.rglob("*") if p.name.startswith(".") and "tmp" in p.name] == []


def test_errors_table_lies_outside_the_feature_glob(filled):
    error = {
        "case_id": "P002",
        "series_id": "CT-P002",
        "roi": "roi1",
        "label_key": "gtv",
        "label": 1,
        "image_type_group": "Original",
        "task_key": "k",
        "error_type": "InputError",
        "message": "empty ROI",
        "traceback_digest": "0" * 16,
        "input_fingerprint": "fp",
        "params_hash": "ph",
        "radflow_version": "test",
        "failed_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    }
    with table_lock(filled):
        writer = _writer(filled)
        writer.commit("INST_B", "CT", "P002", [], keep=set(), errors=[error])
        assert writer.prune_errors({("INST_B", "CT", "P002")}) == 0
    errors = read_errors(filled)
    assert errors.column("message").to_pylist() == ["empty ROI"]
    assert errors.column("institution").to_pylist() == ["INST_B"]
    assert _duckdb(filled, "WHERE case_id = 'P002'") == []  # the glob holds features only
    with table_lock(filled):
        assert _writer(filled).prune_errors(set()) == 1
    assert read_errors(filled).num_rows == 0


def test_compact_changes_no_query_and_keeps_one_rename_per_case(filled):
    before = _duckdb(filled)
    summary = compact(filled)
    assert summary.atomic and summary.rows == 20
    # INST_A/CT (P001, P004) and INST_B/CT (P002, P003) each become one file.
    assert (summary.files_before, summary.files_after) == (5, 3)
    assert _duckdb(filled) == before
    assert verify(filled).ok
    merged = list(
        (filled / f"feature_set={_fs()}" / "institution=INST_A" / "modality=CT").iterdir()
    )
    assert [p.name.startswith("part-") for p in merged] == [True]
    assert [p.name for p in filled.parent.iterdir() if p.name.startswith(".")] == []

    # Replacing a case inside a compacted file rewrites that one file, in place.
    with table_lock(filled):
        _writer(filled).commit("INST_A", "CT", "P004", _rows("P004", "CT", 2), keep=set())
    assert [p.name for p in merged[0].parent.iterdir()] == [merged[0].name]
    after = _duckdb(filled)
    assert [r for r in after if r[3] != "P004"] == [r for r in before if r[3] != "P004"]
    assert {r[8] for r in after if r[3] == "P004"} == {2.0}
    assert verify(filled).ok


def test_compact_small_files_limit_and_fallback(filled, monkeypatch):
    before = _duckdb(filled)
    monkeypatch.setattr(table_mod, "_exchange", lambda a, b: False)
    summary = compact(filled, max_rows=1)  # every case its own file, never split
    assert not summary.atomic
    assert _duckdb(filled) == before
    assert verify(filled).ok
    with pytest.raises(ValueError, match="max_rows"):
        compact(filled, max_rows=0)


def test_compact_during_reads_returns_the_same_count(tmp_path):
    table = tmp_path / "t"
    with table_lock(table):
        writer = _writer(table)
        for i in range(30):
            writer.commit("INST_A", "CT", f"P{i:03d}", _rows(f"P{i:03d}", "CT"), keep=set())
    stop, seen = threading.Event(), []

    def reader():
        con = duckdb.connect()
        while not stop.is_set():
            try:
                seen.append(
                    con.sql(
                        f"SELECT count(*) FROM read_parquet('{table}/**/*.parquet', "
                        "hive_partitioning=true)"
                    ).fetchall()[0][0]
                )
            except duckdb.IOException:
                # A file listed just before the swap and opened after it is gone: an error, never
                # a wrong answer (a reader retries).
                seen.append("retry")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        while not seen:
            time.sleep(0.01)
        compact(table)
        done = len(seen)
        while len(seen) < done + 2:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert seen[0] == 120 and seen[-1] == 120
    assert set(seen) - {"retry"} == {120}
    assert read_table(table).num_rows == 120


def test_verify_reports_duplicates_split_cases_and_hidden_files(filled):
    assert verify(filled).ok
    folder = filled / f"feature_set={_fs()}" / "institution=INST_B" / "modality=CT"
    pq.write_table(
        pq.ParquetFile(folder / "case-P002.parquet").read(), folder / "part-copy.parquet"
    )
    hidden = filled / ".backup" / "x.parquet"
    hidden.parent.mkdir()
    pq.write_table(pa.table({"x": [1]}), hidden)
    report = verify(filled)
    assert not report.ok
    assert "6 problem(s)" in report.report()
    duplicates = [p for p in report.problems if "2 rows for" in p]
    assert len(duplicates) == 4  # 2 ROIs x 2 image types of P002, each twice
    assert any("rows of case P002 in 2 files" in p for p in report.problems)
    assert any(".backup/x.parquet" in p for p in report.problems)
    # The writer refuses to work on a table whose case lies in two files.
    with table_lock(filled), pytest.raises(InputError, match="also in"):
        _writer(filled)


def test_verify_checks_params_file(filled):
    (filled / f"feature_set={_fs()}" / "_params.yaml").write_text(
        "featureClass: {firstorder: [Median]}\n"
    )
    report = verify(filled)
    assert [p for p in report.problems if "does not hash" in p]


def test_one_writer_at_a_time(tmp_path):
    with table_lock(tmp_path / "t"):
        with pytest.raises(InputError, match="another radflow run"):
            with table_lock(tmp_path / "t"):
                pass
    with table_lock(tmp_path / "t"):  # released on exit
        pass


def test_rows_with_unknown_columns_are_refused(tmp_path):
    with table_lock(tmp_path / "t"):
        writer = _writer(tmp_path / "t")
        row = {**_rows("P001", "CT")[0], "glcm_Bogus": 1.0}
        with pytest.raises(ValueError, match="glcm_Bogus"):
            writer.commit("INST_A", "CT", "P001", [row], keep=set())


def test_the_writers_index_keeps_task_keys_of_every_form(tmp_path, monkeypatch):
    """Keys held as 16-byte digests (radflow's form) or as strings (any other) round-trip
    through the table's file index: a new writer knows them without opening a data file."""
    table = tmp_path / "t"
    radflow_keys = [f"radflow-extract-{n:032x}" for n in (7, 255, 2**120)]
    with table_lock(table):
        writer = _writer(table)
        rows = _rows("P001", "CT")  # 4 rows of keys k-P001-CT-<label>-v0
        for row, key in zip(rows, radflow_keys + ["k-odd"]):
            row["task_key"] = key
        writer.commit("INST_A", "CT", "P001", rows, keep=set())
        writer.commit("INST_B", "CT", "P002", _rows("P002", "CT"), keep=set())
        writer.save_index()
    written = set(radflow_keys) | {"k-odd", "k-P002-CT-1-v0", "k-P002-CT-2-v0"}
    opened = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda path, *a, **k: opened.append(path) or real(path))
    with table_lock(table):
        writer = _writer(table)
        assert opened == []
        held = writer.task_keys()
        assert sorted(held) == sorted(written) and len(held) == len(written)
        # The same answers for a KeySet of valid keys and for a Python set of them.
        valid = {radflow_keys[0], "k-odd", "k-P002-CT-1-v0", "k-P002-CT-2-v0"}
        expected = {("INST_A", "CT", "P001")}
        assert writer.stale(table_mod.KeySet.from_keys(valid)) == expected
        assert writer.stale(valid) == expected
        assert writer.stale(held) == set()
        # A commit keeps exactly the rows whose key the KeySet holds.
        result = writer.commit("INST_A", "CT", "P001", [], keep=table_mod.KeySet.from_keys(valid))
        writer.save_index()
    assert sorted(result.removed_keys) == sorted(radflow_keys[1:])
    assert set(read_table(table)["task_key"].to_pylist()) == valid
    index = json.loads((table / table_mod.INDEX_FILE).read_text())
    (case,) = [c for entry in index["files"].values() for c in entry[1].items() if c[0] == "P001"]
    assert case[1] == sorted([radflow_keys[0], "k-odd"])  # written out as strings, sorted
    assert verify(table).ok
