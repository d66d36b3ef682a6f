"""radflow run on a tiny store: plan, values against single-process extraction, incremental
runs, a corrupt case, progress and the CLI commands (an in-process Dask cluster)."""

from __future__ import annotations

import argparse
import pickle
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli.pipeline import add_commands
from radflow.extraction.extractor import extract
from radflow.io.records import LabelMap
from radflow.params.pyradiomics_params import load_params, params_to_dict
from radflow.pipeline.outcomes import traceback_digest
from radflow.pipeline.plan import feature_columns, feature_set_name, image_type_groups, make_plan
from radflow.pipeline.run import run
from radflow.pipeline.table import TableWriter, read_errors, read_table, table_lock, verify
from radflow.store.read import open_label, open_volume
from radflow.store.write import add_label, write_series

PARAMS = {
    "imageType": {"Original": {}, "Square": {}},
    "featureClass": {
        "firstorder": None,
        "shape": ["VoxelVolume", "Sphericity"],
        "glcm": ["Contrast", "JointEntropy"],
    },
    "setting": {"binWidth": 25},
}
#: (case, series, institution, modality, label maps {key: {value: name}})
SERIES = [
    ("P001", "CT-1", "INST_A", "CT", {"gtv": {1: "GTV", 2: "Node 1"}}),
    ("P001", "MR-1", "INST_A", "MR", {"t1_label": {1: "GTV"}}),
    ("P002", "CT-2", "INST_B", "CT", {"gtv": {1: "GTV", 2: "Node 1"}}),
    ("P003", "CT-3", "INST_A", "CT", {"gtv": {1: "GTV", 2: "Node 1"}}),
]
TASKS = 2 * 7  # 7 ROIs x 2 image-type groups


def _image(seed: int, modality: str) -> sitk.Image:
    rng = np.random.default_rng(seed)
    values = rng.normal(40, 30, size=(14, 20, 22))
    values[4:10, 5:14, 6:15] += 80 * rng.random((6, 9, 9))
    image = sitk.GetImageFromArray(values.astype(np.int16 if modality == "CT" else np.float32))
    image.SetSpacing((0.8, 0.9, 2.0))
    image.SetOrigin((-10.0, 5.0, 30.0))
    return image


def _labels(image: sitk.Image, maps: dict) -> list[LabelMap]:
    out = []
    for key, rois in maps.items():
        values = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
        values[3:11, 4:15, 5:16] = 1
        if 2 in rois:
            values[2:6, 15:19, 15:20] = 2
        label = sitk.GetImageFromArray(values)
        label.CopyInformation(image)
        out.append(LabelMap(key, "labelmap", label, rois))
    return out


def _write(store: Path, case, series, institution, modality, maps, seed, version="v1"):
    image = _image(seed, modality)
    write_series(
        store,
        case,
        series,
        image,
        _labels(image, maps),
        attrs={"modality": modality, "institution": institution, "case": case},
        fingerprint=f"fp-{series}-{version}",
    )


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    for seed, spec in enumerate(SERIES):
        _write(root, *spec, seed=seed)
    return root


def _run(store, table, scheduler, **kwargs):
    return run(store, PARAMS, table, scheduler=scheduler, progress=False, retries=1, **kwargs)


def _rows(table, where="true"):
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{table}/**/*.parquet', hive_partitioning=true) "
        f"WHERE {where} ORDER BY series_id, label_key, label, image_type"
    ).df()


# -- plan ----------------------------------------------------------------------


def test_plan_has_one_small_deterministic_task_per_series_roi_and_group(store):
    plan = make_plan(store, PARAMS)
    assert plan.series == 4 and not plan.failures
    assert len(plan.tasks) == TASKS
    assert {(t.series, t.label_key, t.label, t.group) for t in plan.tasks} == {
        (series, key, value, group)
        for _, series, _, _, maps in SERIES
        for key, rois in maps.items()
        for value in rois
        for group in ("Original", "Square")
    }
    node = next(t for t in plan.tasks if t.label == 2)
    assert (node.roi, node.institution, node.modality) == ("node_1", "INST_A", "CT")
    # Small, array-free arguments; the same store and parameters give the same keys.
    assert max(len(pickle.dumps(t)) for t in plan.tasks) < 4000
    assert [t.key for t in make_plan(store, PARAMS).tasks] == [t.key for t in plan.tasks]
    assert len({t.key for t in plan.tasks}) == TASKS
    other = make_plan(store, {**PARAMS, "setting": {"binWidth": 10}})
    assert other.feature_set != plan.feature_set
    assert not {t.key for t in other.tasks} & {t.key for t in plan.tasks}


def test_units_are_compact_rows_whose_tasks_are_built_on_demand(store):
    units = make_plan(store, PARAMS).units
    tasks = list(units)
    assert len(units) == len(tasks) == TASKS
    assert units[3] == tasks[3] and units[-1] == tasks[-1] and units[2:5] == tasks[2:5]
    with pytest.raises(IndexError):
        units[TASKS]
    # The plan is sorted by case; each unit's partition is its series' (the SERIES table).
    partitions = {series: (inst, mod, case) for case, series, inst, mod, _ in SERIES}
    assert [t.partition for t in tasks] == [partitions[t.series] for t in tasks]
    assert [t.case for t in tasks] == sorted(t.case for t in tasks)
    # Units per partition: the ROIs of its series x 2 image-type groups.
    assert units.count(("INST_A", "CT", "P001")) == 4
    assert units.count(("INST_A", "MR", "P001")) == 2
    assert units.count(("INST_B", "CT", "P002")) == 4
    assert units.count(("INST_A", "CT", "P002")) == 0  # another institution's
    assert units.count(("INST_A", "CT", "P000")) == 0  # no such case
    assert units.find(tasks[5].key) == 5
    assert units.find("radflow-extract-" + "0" * 32) is None and units.find("k1") is None
    # A selection keeps plan order and every field, counts included.
    mask = np.array([t.group == "Square" or t.case == "P002" for t in tasks])
    chosen = units.select(mask)
    assert list(chosen) == [t for t, m in zip(tasks, mask) if m]
    assert [t.cost_s for t in chosen] == [t.cost_s for t, m in zip(tasks, mask) if m]
    assert chosen.count(("INST_A", "CT", "P001")) == 2
    assert chosen.count(("INST_B", "CT", "P002")) == 4


def test_groups_put_shape_with_original_only():
    groups = dict(image_type_groups(load_params(PARAMS)))
    assert list(groups) == ["Original", "Square"]
    assert list(groups["Original"]["featureClass"]) == ["firstorder", "shape", "glcm"]
    assert list(groups["Square"]["featureClass"]) == ["firstorder", "glcm"]
    only_log = load_params(
        {"imageType": {"LoG": {"sigma": [1.0]}}, "featureClass": {"shape": None}}
    )
    assert [name for name, _ in image_type_groups(only_log)] == ["LoG"]


def test_params_beside_the_table_name_its_feature_set(tmp_path):
    params = {
        "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.5]}, "Wavelet": {"binWidth": 5}},
        "featureClass": {"glcm": ["Contrast"], "firstorder": None},
        "setting": {
            "binWidth": 10,
            "resampledPixelSpacing": [1, 1, 2],
            "normalize": True,
            "resegmentRange": [-100, 200],
            "distances": [1, 2],
            "geometryTolerance": 1e-5,
        },
    }
    loaded = load_params(params)
    with table_lock(tmp_path / "t"):
        TableWriter(
            tmp_path / "t",
            feature_set_name(loaded),
            feature_columns(loaded),
            params_to_dict(loaded),
            "r",
        )
    written = tmp_path / "t" / f"feature_set={feature_set_name(loaded)}" / "_params.yaml"
    assert feature_set_name(load_params(written)) == feature_set_name(loaded)
    assert verify(tmp_path / "t").ok


def test_unreadable_series_is_a_plan_failure(store):
    (store / "P001" / "MR-1" / "labels" / "t1_label" / "zarr.json").write_text("[]")
    plan = make_plan(store, PARAMS)
    assert [(f.case, f.series) for f in plan.failures] == [("P001", "MR-1")]
    assert len(plan.tasks) == TASKS - 2
    (store / "P002" / "CT-2" / "zarr.json").write_text("{not json")  # the store listing fails
    plan = make_plan(store, PARAMS)
    assert [(f.case, f.series) for f in plan.failures] == [("P001", "MR-1"), ("P002", "CT-2")]
    assert "P002/CT-2" in plan.failures[1].message
    assert len(plan.tasks) == TASKS - 6


# -- a full run ------------------------------------------------------------------


def test_rows_match_single_process_extraction(store, tmp_path, scheduler):
    table = tmp_path / "features"
    summary = _run(store, table, scheduler)
    assert (summary.tasks, summary.extracted, summary.failed, summary.rows) == (
        TASKS,
        TASKS,
        0,
        TASKS,
    )
    rows = _rows(table)
    assert len(rows) == TASKS
    columns = feature_columns(load_params(PARAMS))
    produced = set()
    for (case, series, key, label), group in rows.groupby(
        ["case_id", "series_id", "label_key", "label"]
    ):
        expected = extract(
            open_volume(store, case, series),
            open_label(store, case, series, key),
            PARAMS,
            label=int(label),
        )
        features = {k: v for k, v in expected.items() if not k.startswith("diagnostics_")}
        assert sorted(group["image_type"]) == ["original", "square"]
        for row in group.itertuples():
            mine = {c: getattr(row, c) for c in columns if not np.isnan(getattr(row, c))}
            theirs = {
                k.split("_", 1)[1]: v
                for k, v in features.items()
                if k.startswith(row.image_type + "_")
            }
            assert mine == theirs  # bit-identical, same keys
            produced |= set(theirs)
    # The schema, known before any extraction, is exactly what the extractor produces.
    assert set(columns) == produced
    # Shape is computed once per ROI, on the original image.
    assert rows.loc[rows.image_type == "square", "shape_VoxelVolume"].isna().all()
    # Provenance.
    first = rows.iloc[0]
    assert first.feature_set == summary.feature_set == "fs-" + first.params_hash
    assert set(rows.run_id) == {summary.run_id}
    assert set(rows.input_fingerprint) == {f"fp-{s[1]}-v1" for s in SERIES}
    assert rows.task_key.nunique() == TASKS
    assert set(rows.roi) == {"gtv", "node_1"}
    assert '"Mask-original_VoxelNum"' in first.diagnostics
    assert (table / f"feature_set={summary.feature_set}" / "_params.yaml").is_file()
    assert verify(table).ok


def test_each_partition_is_committed_once_with_all_its_rows(
    store, tmp_path, scheduler, monkeypatch
):
    """A partition's bookkeeping starts with its first finished unit and ends at its commit.

    Units finish in any order (one Dask task each, committed as soon as complete): each
    partition is committed exactly once, with the rows of all its units.
    """
    committed = []
    real = TableWriter.commit_many

    def spy(self, items, keep):
        items = list(items)
        committed.extend((where, len(rows)) for where, rows, _ in items if rows)
        return real(self, items, keep)

    monkeypatch.setattr(TableWriter, "commit_many", spy)
    table = tmp_path / "features"
    summary = _run(store, table, scheduler, commit_interval_s=0, task_seconds=0)
    assert summary.extracted == TASKS
    # Rows per partition: its ROIs x 2 image types (the SERIES table).
    assert sorted(committed) == [
        (("INST_A", "CT", "P001"), 4),
        (("INST_A", "CT", "P003"), 4),
        (("INST_A", "MR", "P001"), 2),
        (("INST_B", "CT", "P002"), 4),
    ]
    committed.clear()
    again = _run(store, table, scheduler, incremental=True)
    assert (again.extracted, again.skipped, committed) == (0, TASKS, [])
    assert len(_rows(table)) == TASKS and verify(table).ok


def test_incremental_runs_redo_only_what_changed(store, tmp_path, scheduler):
    table = tmp_path / "features"
    first = _run(store, table, scheduler)

    again = _run(store, table, scheduler, incremental=True)
    assert (again.extracted, again.skipped, again.rows, again.removed) == (0, TASKS, 0, 0)
    assert "nothing to extract" in again.report()
    assert set(_rows(table).run_id) == {first.run_id}

    # One series re-ingested with other voxels: only its four tasks run again.
    _write(store, *SERIES[2], seed=99, version="v2")
    changed = _run(store, table, scheduler, incremental=True)
    assert (changed.extracted, changed.skipped, changed.removed) == (4, TASKS - 4, 4)
    rows = _rows(table)
    assert len(rows) == TASKS
    assert set(rows.loc[rows.series_id == "CT-2", "run_id"]) == {changed.run_id}
    assert set(rows.loc[rows.series_id == "CT-2", "input_fingerprint"]) == {"fp-CT-2-v2"}
    assert set(rows.loc[rows.series_id != "CT-2", "run_id"]) == {first.run_id}

    # A series deleted from the store: its rows go, nothing is extracted.
    shutil.rmtree(store / "P003")
    deleted = _run(store, table, scheduler, incremental=True)
    assert (deleted.extracted, deleted.removed) == (0, 4)
    assert "P003" not in set(_rows(table).case_id)
    assert not any(table.rglob("case-P003.parquet"))

    # A new ROI of an unchanged series (threshold segmentation) is extracted.
    image = open_volume(store, "P001", "CT-1")
    thr = sitk.GetImageFromArray((np.asarray(image.values) > 100).astype(np.uint8))
    thr.CopyInformation(_image(0, "CT"))
    add_label(store, "P001", "CT-1", LabelMap("thr", "threshold", thr, {1: "Thr"}))
    added = _run(store, table, scheduler, incremental=True)
    assert (added.extracted, added.removed) == (2, 0)
    assert len(_rows(table, "label_key = 'thr'")) == 2
    assert verify(table).ok

    # That label replaced (another threshold) in the unchanged series: its tasks run again.
    before = _rows(table, "label_key = 'thr'")
    thr = sitk.GetImageFromArray((np.asarray(image.values) > 60).astype(np.uint8))
    thr.CopyInformation(_image(0, "CT"))
    add_label(store, "P001", "CT-1", LabelMap("thr", "threshold", thr, {1: "Thr"}), replace=True)
    replaced = _run(store, table, scheduler, incremental=True)
    assert (replaced.extracted, replaced.removed) == (2, 2)
    after = _rows(table, "label_key = 'thr'")
    assert len(after) == 2 and set(after.run_id) == {replaced.run_id}
    assert (after.firstorder_Mean.to_numpy() != before.firstorder_Mean.to_numpy()).all()
    assert verify(table).ok


def test_corrupt_case_is_recorded_and_the_rest_extracted(store, tmp_path, scheduler, capsys):
    chunks = sorted(p for p in (store / "P002" / "CT-2" / "0" / "c").rglob("*") if p.is_file())
    assert chunks
    for chunk in chunks:
        chunk.write_bytes(b"\x00garbage" * 8)
    table = tmp_path / "features"
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    params_file = tmp_path / "params.yaml"
    params_file.write_text(
        "imageType: {Original: {}, Square: {}}\n"
        "featureClass: {firstorder: null, shape: [VoxelVolume, Sphericity], "
        "glcm: [Contrast, JointEntropy]}\nsetting: {binWidth: 25}\n"
    )
    args = parser.parse_args(
        [
            "run",
            str(store),
            "-p",
            str(params_file),
            "--table",
            str(table),
            "--scheduler",
            scheduler,
            "--retries",
            "1",
        ]
    )
    assert args.func(args) == 1  # the run finishes; the exit code says that tasks failed
    out = capsys.readouterr()
    assert "failed                4" in out.out
    assert f"{TASKS - 4}/{TASKS} tasks" not in out.err and f"{TASKS}/{TASKS} tasks" in out.err

    rows = _rows(table)
    assert len(rows) == TASKS - 4 and "P002" not in set(rows.case_id)
    errors = read_errors(table).to_pandas()
    assert sorted(errors.series_id) == ["CT-2"] * 4
    assert set(errors.institution) == {"INST_B"} and set(errors.modality) == {"CT"}
    assert errors.message.str.len().min() > 0
    assert errors.traceback_digest.str.fullmatch("[0-9a-f]{16}").all()
    assert errors.traceback_digest.nunique() == 1  # one failure site, four tasks
    # Not inside the feature table's glob.
    assert not any("errors" in str(p) for p in table.rglob("*.parquet"))

    # The case repaired (re-ingested): an incremental run extracts it and clears its errors.
    _write(store, *SERIES[2], seed=2, version="v2")
    repaired = _run(store, table, scheduler, incremental=True)
    assert (repaired.extracted, repaired.failed) == (4, 0)
    assert read_errors(table).num_rows == 0
    assert len(_rows(table)) == TASKS


def test_cli_table_commands_and_plan_failures(store, tmp_path, scheduler, capsys):
    (store / "P003" / "CT-3" / "zarr.json").write_text("{not json")
    table = tmp_path / "features"
    summary = _run(store, table, scheduler)
    assert (summary.failed, summary.extracted) == (1, TASKS - 4)
    errors = read_errors(table).to_pandas()
    assert list(errors.series_id) == ["CT-3"] and list(errors.modality) == ["unknown"]

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["table", "compact", str(table)])
    assert args.func(args) == 0
    args = parser.parse_args(["table", "verify", str(table)])
    assert args.func(args) == 0
    assert "OK" in capsys.readouterr().out
    assert read_table(table).num_rows == TASKS - 4


def test_progress_lines_and_summary(store, tmp_path, scheduler, capsys):
    summary = run(store, PARAMS, tmp_path / "t", scheduler=scheduler, progress=True)
    err = capsys.readouterr().err
    assert f"{TASKS}/{TASKS} tasks" in err and "ETA" in err and "/s" in err
    report = summary.report()
    for word in ("extracted", "skipped (unchanged)", "failed", "time"):
        assert word in report


def test_traceback_digest_ignores_the_message():
    a = 'Traceback:\n  File "/x/radflow/a.py", line 3, in f\nValueError: case P001'
    b = 'Traceback:\n  File "/y/radflow/a.py", line 3, in f\nValueError: case P002'
    c = 'Traceback:\n  File "/y/radflow/a.py", line 4, in f\nValueError: case P002'
    assert traceback_digest(a) == traceback_digest(b) != traceback_digest(c)


# -- known failures (nightly runs) ------------------------------------------------


def _write_tiny(store: Path, voxels: int, version: str) -> None:
    """P009/CT-9: a GTV of one voxel (refused by any extraction), or a 2 x 2 x ``voxels`` box."""
    image = _image(9, "CT")
    values = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    if voxels == 1:
        values[5, 8, 8] = 1
    else:
        values[5:7, 8:10, 8 : 8 + voxels] = 1
    label = sitk.GetImageFromArray(values)
    label.CopyInformation(image)
    write_series(
        store,
        "P009",
        "CT-9",
        image,
        [LabelMap("gtv", "labelmap", label, {1: "GTV"})],
        attrs={"modality": "CT", "institution": "INST_A", "case": "P009"},
        fingerprint=f"fp-CT-9-{version}",
    )


def _cli_run(tmp_path, store, table, scheduler, *extra):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(
        "imageType: {Original: {}, Square: {}}\n"
        "featureClass: {firstorder: null, shape: [VoxelVolume, Sphericity], "
        "glcm: [Contrast, JointEntropy]}\nsetting: {binWidth: 25}\n"
    )
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["run", str(store), "-p", str(params_file), "--table", str(table)]
        + ["--scheduler", scheduler, "--retries", "1", "-q", *extra]
    )
    return args.func(args)


def test_known_failures_are_recorded_once_and_not_retried(store, tmp_path, scheduler, capsys):
    _write_tiny(store, 1, "v1")  # a one-voxel ROI: InputError, whatever the run
    table = tmp_path / "features"
    assert _cli_run(tmp_path, store, table, scheduler) == 1  # new failures: exit 1
    out = capsys.readouterr().out
    assert "new failures" in out and "known failures" not in out
    first = read_errors(table).to_pandas()
    assert sorted(first.series_id) == ["CT-9", "CT-9"] and first.permanent.all()
    assert set(first.error_type) == {"InputError"}

    # The nightly run: nothing new, the known failures reported, exit 0, not extracted again.
    assert _cli_run(tmp_path, store, table, scheduler, "--incremental") == 0
    out = capsys.readouterr().out
    assert "known failures, not retried" in out and "CT-9" in out
    assert "failed                2  (new 0, known 2)" in out
    again = _run(store, table, scheduler, incremental=True)
    assert (again.extracted, again.failed, again.known_failed, again.new_failures) == (0, 2, 2, 0)
    assert again.skipped == TASKS
    kept = read_errors(table).to_pandas()
    assert list(kept.run_id) == list(first.run_id) and list(kept.failed_at) == list(first.failed_at)
    assert len(_rows(table)) == TASKS

    # A full run tries them again; failing the same way, they are still known.
    full = _run(store, table, scheduler)
    assert (full.extracted, full.failed, full.known_failed) == (TASKS, 2, 2)

    # The input changes (a larger GTV re-ingested): retried, extracted, the errors cleared.
    _write_tiny(store, 6, "v2")
    fixed = _run(store, table, scheduler, incremental=True)
    assert (fixed.extracted, fixed.failed, fixed.known_failed) == (2, 0, 0)
    assert read_errors(table).num_rows == 0
    assert len(_rows(table)) == TASKS + 2


def test_transient_failures_are_retried(store, tmp_path, scheduler, monkeypatch):
    from radflow.pipeline import tasks

    real = tasks.extract

    def flaky(image, mask, params, **kwargs):
        if image.attrs.get("case") == "P002":
            raise OSError("NFS went away")
        return real(image, mask, params, **kwargs)

    monkeypatch.setattr(tasks, "extract", flaky)
    table = tmp_path / "features"
    first = _run(store, table, scheduler)
    assert (first.failed, first.known_failed, first.new_failures) == (4, 0, 4)
    errors = read_errors(table).to_pandas()
    assert set(errors.error_type) == {"OSError"} and not errors.permanent.any()
    again = _run(store, table, scheduler, incremental=True)  # still failing: new again
    assert (again.extracted, again.failed, again.new_failures) == (0, 4, 4)
    monkeypatch.setattr(tasks, "extract", real)
    healed = _run(store, table, scheduler, incremental=True)
    assert (healed.extracted, healed.failed) == (4, 0)
    assert read_errors(table).num_rows == 0


def test_tables_of_an_older_radflow_are_migrated(store, tmp_path, scheduler):
    """Files with the old id columns (`case` is an SQL keyword) are refused by readers with the
    command that migrates them; the next run renames them and keeps the rows."""
    import pyarrow.parquet as pq

    from radflow.errors import InputError
    from radflow.pipeline.table import RENAMED_COLUMNS, compact, errors_path

    (store / "P003" / "CT-3" / "zarr.json").write_text("{not json")  # one error row too
    table = tmp_path / "features"
    first = _run(store, table, scheduler)
    old_names = {new: old for old, new in RENAMED_COLUMNS.items()}
    files = sorted(table.rglob("*.parquet")) + sorted(errors_path(table).rglob("*.parquet"))
    for path in files:
        data = pq.read_table(path)
        data = data.rename_columns([old_names.get(n, n) for n in data.column_names])
        if "permanent" in data.column_names:  # errors of the older version had no such column
            data = data.drop_columns(["permanent"])
        pq.write_table(data, path)
    with pytest.raises(InputError, match=r"radflow table compact .*features"):
        read_table(table)
    report = verify(table)
    assert not report.ok and "case_id" in report.problems[0]

    again = _run(store, table, scheduler, incremental=True)
    assert (again.extracted, again.skipped, again.removed) == (0, TASKS - 4, 0)
    assert verify(table).ok
    assert set(_rows(table).run_id) == {first.run_id}
    rows = duckdb.sql(
        f"select case_id, series_id, study_id, roi from read_parquet('{table}/**/*.parquet', "
        "hive_partitioning=true) order by all"
    ).fetchall()
    assert len(rows) == TASKS - 4 and rows[0][:2] == ("P001", "CT-1")
    assert list(read_errors(table).to_pandas().series_id) == ["CT-3"]

    # `radflow table compact` migrates too.
    for path in sorted(table.rglob("*.parquet")):
        data = pq.read_table(path)
        pq.write_table(data.rename_columns(["case"] + data.column_names[1:]), path)
    assert compact(table).migrated == len(list(table.rglob("*.parquet")))
    assert verify(table).ok


def test_sql_needs_no_quotes_for_the_id_columns(store, tmp_path, scheduler):
    table = tmp_path / "features"
    _run(store, table, scheduler)
    glob = f"read_parquet('{table}/**/*.parquet', hive_partitioning=true)"
    rows = duckdb.sql(
        f"select case_id, roi, count(*) as n from {glob} group by case_id, roi order by all"
    ).fetchall()
    assert rows[0] == ("P001", "gtv", 4)
