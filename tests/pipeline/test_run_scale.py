"""What keeps `radflow run` cheap on large stores: the table's file index, metadata-only no-ops.

An incremental no-op opens no data file of the table (the writer's index of the files,
``TABLE/.radflow-files.json``, checked by inode, size and modification time) and starts
no cluster; the index is a cache: a file changed behind its back, or an index that is
damaged or missing, is read as it is.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet
import pytest
import SimpleITK as sitk

from radflow.io.records import LabelMap
from radflow.pipeline.run import run
from radflow.pipeline.table import INDEX_FILE, read_table, verify
from radflow.store.write import write_series

PARAMS = {"featureClass": {"firstorder": ["Mean", "Energy"]}, "setting": {"binWidth": 25}}
CASES, ROIS = 3, 3


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    for i in range(CASES):
        values = np.random.default_rng(i).normal(0, 40, (6, 12, 30)).astype(np.int16)
        label = np.zeros(values.shape, np.uint8)
        for k in range(ROIS):  # 2 x 4 x 6 boxes side by side
            label[2:4, 4:8, 2 + 9 * k : 8 + 9 * k] = k + 1
        image = sitk.GetImageFromArray(values)
        mask = sitk.GetImageFromArray(label)
        mask.CopyInformation(image)
        write_series(
            root,
            f"P{i}",
            f"CT-{i}",
            image,
            [LabelMap("rois", "labelmap", mask, {k + 1: f"R{k}" for k in range(ROIS)})],
            attrs={"modality": "CT", "institution": "A"},
            fingerprint=f"fp-{i}",
        )
    return root


@pytest.fixture
def opened(monkeypatch):
    """Paths of the Parquet files the table code opens with ``pyarrow.parquet.ParquetFile``."""
    paths = []
    real = pyarrow.parquet.ParquetFile

    def counting(source, *args, **kwargs):
        paths.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pyarrow.parquet, "ParquetFile", counting)
    return paths


def _run(store, table, **kwargs):
    # No scheduler reachable: a run with work to do would fail to connect.
    kwargs.setdefault("scheduler", "tcp://127.0.0.1:9")
    return run(store, PARAMS, table, progress=False, retries=0, **kwargs)


def test_a_no_op_opens_no_data_file_and_starts_no_cluster(store, tmp_path, scheduler, opened):
    table = tmp_path / "t"
    first = run(store, PARAMS, table, scheduler=scheduler, progress=False, commit_interval_s=0)
    assert first.extracted == CASES * ROIS
    files = sorted(table.rglob("*.parquet"))
    assert len(files) >= 1
    index = json.loads((table / INDEX_FILE).read_text())
    assert sorted(index["files"]) == sorted(p.relative_to(table).as_posix() for p in files)
    opened.clear()
    before = (table / INDEX_FILE).stat()
    noop = _run(store, table, incremental=True)
    assert (noop.extracted, noop.skipped, noop.dask_tasks) == (0, CASES * ROIS, 0)
    assert [p for p in opened if p.endswith(".parquet") and "errors" not in p] == []
    after = (table / INDEX_FILE).stat()  # not even the index is written again
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert verify(table).ok  # readers' globs do not see the index
    assert len(read_table(table)) == CASES * ROIS


def test_the_index_is_only_a_cache(store, tmp_path, scheduler, opened):
    table = tmp_path / "t"
    run(store, PARAMS, table, scheduler=scheduler, progress=False, commit_interval_s=0)
    # A file rewritten behind the index's back (here: one case's rows dropped) is read as
    # it is: the run extracts that case again.
    path = next(
        p
        for p in table.rglob("*.parquet")
        if "P1" in pyarrow.parquet.read_table(p)["case_id"].to_pylist()
    )
    data = pyarrow.parquet.read_table(path)
    keep = [c != "P1" for c in data["case_id"].to_pylist()]
    pyarrow.parquet.write_table(data.filter(keep), path)
    again = run(store, PARAMS, table, scheduler=scheduler, progress=False, incremental=True)
    assert (again.extracted, again.skipped) == (ROIS, (CASES - 1) * ROIS)
    assert sorted(read_table(table)["case_id"].to_pylist()) == sorted(
        f"P{i}" for i in range(CASES) for _ in range(ROIS)
    )
    # A damaged index, then none: ignored, every file read, the no-op still a no-op.
    for damage in ("{not json", None):
        if damage is None:
            (table / INDEX_FILE).unlink()
        else:
            (table / INDEX_FILE).write_text(damage)
        opened.clear()
        noop = _run(store, table, incremental=True)
        assert (noop.extracted, noop.skipped) == (0, CASES * ROIS)
        assert any(p.endswith(".parquet") for p in opened)
        assert json.loads((table / INDEX_FILE).read_text())["version"] == 1
