"""Batch CSV with a pool of workers: rows streamed in input order, failures per row, no
partial file on interruption, a worker that dies costs only its row, the pool reused."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk

import radflow
from radflow.errors import InputError
from radflow.extraction import batch
from radflow.extraction.batch import extract_batch, progress_printer
from radflow.extraction.output import cell

PARAMS = {
    "setting": {"binWidth": 25},
    "featureClass": {"firstorder": ["Mean", "Entropy"], "glcm": ["Contrast"], "shape": None},
}


def _assert_no_worker_left(seconds=5.0):
    """No worker process of a pool is left: the batch terminated and joined them. A worker
    that a broken pool's own thread is still reaping may need a moment to be gone (seen once
    in ~10 runs in CI), hence the bounded wait; a leaked worker stays and fails."""
    deadline = time.monotonic() + seconds
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


def _write_case(folder, name, seed, radius):
    """A 16 x 20 x 20 int16 CT-like cube with a ball ROI of `radius` voxels (label 1)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-100, 200, size=(16, 20, 20)).astype(np.int16)
    z, y, x = np.ogrid[:16, :20, :20]
    roi = ((z - 8) ** 2 + (y - 10) ** 2 + (x - 9) ** 2 <= radius**2).astype(np.uint8)
    image, mask = sitk.GetImageFromArray(values), sitk.GetImageFromArray(roi)
    for item in (image, mask):
        item.SetSpacing((0.8, 0.8, 2.0))
    sitk.WriteImage(image, str(folder / f"{name}.nrrd"))
    sitk.WriteImage(mask, str(folder / f"{name}_roi.nrrd"))


@pytest.fixture
def cases(tmp_path):
    """Seven rows: five good cases, a missing image (line 3) and an absent label (line 6)."""
    for seed in range(5):
        _write_case(tmp_path, f"c{seed}", seed, radius=3 + seed % 3)
    rows = [
        ("c0.nrrd", "c0_roi.nrrd", "", "P0"),
        ("gone.nrrd", "c0_roi.nrrd", "", "P1"),
        ("c1.nrrd", "c1_roi.nrrd", "", "P2"),
        ("c2.nrrd", "c2_roi.nrrd", "", "P3"),
        ("c3.nrrd", "c3_roi.nrrd", "4", "P4"),
        ("c3.nrrd", "c3_roi.nrrd", "", "P5"),
        ("c4.nrrd", "c4_roi.nrrd", "1", "P6"),
    ]
    path = tmp_path / "batch.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Image", "Mask", "Label", "Patient"])
        writer.writerows(rows)
    return path


def _expected_table(path, params):
    """The batch output as documented, assembled from radflow.extract row by row.

    Input columns, ``error``, then the first successful row's keys; every value written
    as ``str`` (PyRadiomics' CSV), rows in input order.
    """
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        columns, rows = list(reader.fieldnames), list(reader)
    results = []
    for row in rows:
        try:
            label = int(row["Label"]) if row["Label"] else None
            image, mask = path.parent / row["Image"], path.parent / row["Mask"]
            results.append(radflow.extract(image, mask, params, label=label))
        except InputError:
            results.append(None)
    keys = list(next(r for r in results if r is not None))
    header = [*columns, "error", *keys]
    table = [header]
    for row, result in zip(rows, results):
        table.append([row[c] for c in columns] + ["x" if result is None else ""])
        table[-1] += [cell(result[k]) if result else "" for k in keys]
    return table


def _read(path):
    with open(path, newline="") as stream:
        return list(csv.reader(stream))


def _same_apart_from_errors(table, expected):
    """Equal cells, except that the reference marks an error cell by 'x' (any text there)."""
    assert table[0] == expected[0]
    assert len(table) == len(expected)
    error = expected[0].index("error")
    for got, want in zip(table[1:], expected[1:]):
        assert bool(got[error]) == bool(want[error])
        assert got[:error] + got[error + 1 :] == want[:error] + want[error + 1 :]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_streamed_rows_equal_row_by_row_extraction(cases, tmp_path, jobs):
    out = tmp_path / f"out{jobs}.csv"
    calls = []
    summary = extract_batch(cases, PARAMS, out, jobs=jobs, progress=lambda *a: calls.append(a))
    _same_apart_from_errors(_read(out), _expected_table(cases, PARAMS))
    assert [line for line, _ in summary.failed] == [3, 6]
    assert summary.failed[0][1].endswith("gone.nrrd: no such file")
    assert "Label (4) not present in mask" in summary.failed[1][1]
    # one progress call per row, counting up to every row, failures as they came
    assert [done for done, _, _ in calls] == list(range(1, 8))
    assert {total for _, total, _ in calls} == {7} and calls[-1][2] == 2


def test_the_file_is_the_same_whatever_the_jobs(cases, tmp_path):
    extract_batch(cases, PARAMS, tmp_path / "one.csv", jobs=1)
    extract_batch(cases, PARAMS, tmp_path / "two.csv", jobs=2)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


def test_a_pool_of_fewer_processes_than_rows(cases, tmp_path):
    summary = extract_batch(cases, PARAMS, tmp_path / "out.csv", jobs=2)
    assert summary.rows == 7 and 1 <= summary.processes <= 2
    # the rows ran in the workers, not here; each worker took several rows
    tasks = [(line, {"image": None}, None, None) for line in range(2, 9)]
    outcomes = dict(batch._pooled(tasks, 2, run=_pid_of_row))
    pids = {pid for _, _, _, pid in outcomes.values()}
    assert sorted(outcomes) == list(range(7))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    _assert_no_worker_left()


def _pid_of_row(task):
    return task[0], {"pid": os.getpid()}, None, os.getpid()


def _dies_on_line_4(task):
    """Kills its worker process on line 4, as a crash or the kernel's OOM killer would."""
    if task[0] == 4:
        os._exit(9)
    return task[0], {"line": task[0]}, None, os.getpid()


def test_a_row_that_kills_its_worker_fails_alone(tmp_path):
    tasks = [(line, {"image": None}, None, None) for line in range(2, 9)]
    outcomes = dict(batch._pooled(tasks, 2, run=_dies_on_line_4))
    assert sorted(outcomes) == list(range(7))
    for index, (line, result, error, _) in outcomes.items():
        assert line == index + 2
        if line == 4:
            assert result is None and error == batch.WORKER_DIED
        else:
            assert result == {"line": line} and error is None
    _assert_no_worker_left()


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_batch_leaves_no_partial_file(cases, tmp_path, jobs):
    out = tmp_path / "out" / "features.csv"
    out.parent.mkdir()
    out.write_text("an earlier batch\n")

    def interrupt(done, total, failed):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_batch(cases, PARAMS, out, jobs=jobs, progress=interrupt)
    assert [p.name for p in out.parent.iterdir()] == ["features.csv"]
    assert out.read_text() == "an earlier batch\n"
    _assert_no_worker_left()


def test_rows_in_input_order_and_late_columns_added_at_the_end():
    stream = io.StringIO()
    rows = [{"Image": f"i{n}", "Mask": f"m{n}"} for n in range(4)]
    writer = batch._RowWriter(stream, ["Image", "Mask"], rows)
    writer.add(2, {"a": 3.0, "b": 1, "z": 9}, None)  # finished first, waits for rows 0 and 1
    assert stream.getvalue() == ""
    writer.add(0, None, "line 2: bad")  # failed: no header yet
    assert stream.getvalue() == ""
    writer.add(1, {"b": 2, "a": 1.5}, None)  # the first success fixes the columns
    assert stream.getvalue() == (
        "Image,Mask,error,b,a\ni0,m0,line 2: bad,,\ni1,m1,,2,1.5\ni2,m2,,1,3.0\n"
    )
    writer.add(3, {"b": 4, "a": 0.5, "c": "x, y"}, None)
    writer.finish()
    assert stream.getvalue() == (
        "Image,Mask,error,b,a,c,z\n"
        "i0,m0,line 2: bad,,,,\n"
        "i1,m1,,2,1.5,,\n"
        "i2,m2,,1,3.0,,9\n"
        'i3,m3,,4,0.5,"x, y",\n'
    )


def test_no_row_succeeded():
    stream = io.StringIO()
    writer = batch._RowWriter(stream, ["Image", "Mask"], [{"Image": "i", "Mask": "m"}])
    writer.add(0, None, "i: no such file")
    writer.finish()
    assert stream.getvalue() == "Image,Mask,error\ni,m,i: no such file\n"


def test_progress_lines_every_interval():
    now = [0.0]
    stream = io.StringIO()
    report = progress_printer(stream, every_s=10.0, clock=lambda: now[0])
    for done, t in enumerate([2.0, 11.0, 15.0, 30.0], start=1):
        now[0] = t
        report(done, 4, 1 if done > 2 else 0)
    assert stream.getvalue().splitlines() == [
        "batch: 2 of 4 rows done (0 failed), 11 s, about 11 s left",
        "batch: 4 of 4 rows done (1 failed), 30 s",
    ]


def test_voxel_mode_batch_with_workers(cases, tmp_path):
    params = {
        **PARAMS,
        "featureClass": {"firstorder": ["Mean"]},
        "voxelSetting": {"kernelRadius": 1},
    }
    maps = tmp_path / "maps"
    summary = extract_batch(
        cases, params, tmp_path / "v.csv", jobs=2, voxel_based=True, out_dir=maps
    )
    assert [line for line, _ in summary.failed] == [3, 6]
    rows = list(csv.DictReader(open(tmp_path / "v.csv", newline="")))
    for n, row in enumerate(rows, start=1):
        if row["error"]:
            assert not list(maps.glob(f"Case-{n}_*"))
            continue
        path = maps / f"Case-{n}_original_firstorder_Mean.nrrd"
        assert row["original_firstorder_Mean"] == str(path)
        label = int(row["Label"]) if row["Label"] else None
        expected = radflow.extract(
            cases.parent / row["Image"],
            cases.parent / row["Mask"],
            params,
            label=label,
            voxel_based=True,
        )["original_firstorder_Mean"]
        assert np.array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(path))), sitk.GetArrayFromImage(expected)
        )


def test_kernel_warm_up_shares():
    # every class compiled by exactly one worker; the shape class (the longest) alone
    classes = ["firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]
    assert batch._shares(classes, 2) == [
        ["shape"],
        ["firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"],
    ]
    three = batch._shares(classes, 3)
    assert sorted(c for share in three for c in share) == sorted(classes)
    assert three[0] == ["shape"] and len(three) == 3
    assert batch._shares(["glcm"], 4) == [["glcm"]]


def test_workers_that_cannot_start_stop_the_batch(cases, tmp_path):
    # A script without the `__main__` guard: each spawned worker re-runs it and dies on start.
    script = tmp_path / "unguarded.py"
    out = tmp_path / "never.csv"
    script.write_text(
        "from radflow.extraction.batch import extract_batch\n"
        f"extract_batch({str(cases)!r}, None, {str(out)!r}, jobs=2)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode != 0
    assert "must do so under `if __name__ == '__main__':`" in done.stderr
    assert not out.exists()
