"""radflow maps: whole-store voxel feature maps on a real two-worker cluster, into the store.

A large region split into chunk-aligned pieces stitches to exactly the one-piece maps
(``radflow.extract(..., voxel_based=True)``); the maps open with the ``ome-zarr`` reader; an
incremental re-run computes nothing, a changed series recomputes; ``radflow ls`` lists them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.io.records import LabelMap
from radflow.pipeline.maps import MapTask, _whole, compute_maps, errors_file, maps, plan_maps
from radflow.pipeline.tasks import TaskError
from radflow.store.maps import list_maps, read_map, roi_folder
from radflow.store.write import add_label, write_series

DASK = Path(sys.executable).with_name("dask")
CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
PARAMS = {
    "featureClass": {c: None for c in CLASSES},
    "setting": {"binWidth": 25},
    "voxelSetting": {"kernelRadius": 1},
}
PIECE = (6, 12, 12)


def _series(store: Path, case: str, series: str, seed: int, version: str = "v1") -> None:
    rng = np.random.default_rng(seed)
    shape = (14, 30, 30)
    values = (rng.normal(40, 60, shape)).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.8, 0.8, 2.0))
    image.SetOrigin((-10.0, 5.0, 3.0))
    zz, yy, xx = np.indices(shape)
    ball = ((zz - 7) / 4.5) ** 2 + ((yy - 14) / 9) ** 2 + ((xx - 15) / 8) ** 2 <= 1
    ball &= rng.random(shape) > 0.08  # holes: empty GLCM offsets in some kernels
    mask = np.zeros(shape, dtype=np.uint8)
    mask[ball] = 1
    # A patch in one plane, in a piece of its own: there the GLCM offsets across planes are empty in
    # every kernel of the piece but not of the whole ROI (JointAverage: NaN, as in one piece).
    mask[12, 26:29, 24:27] = 1
    mask[1:3, 2:5, 2:6] = 2  # a small second ROI (one piece)
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    write_series(
        store,
        case,
        series,
        image,
        [LabelMap("gtv", "labelmap", label, {1: "tumour", 2: "node"})],
        attrs={"modality": "CT", "institution": "inst", "case": case},
        fingerprint=f"fp-{series}-{version}",
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1: its address."""
    folder = tmp_path_factory.mktemp("cluster")
    file = folder / "scheduler.json"
    common = {"cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    procs = [
        subprocess.Popen(
            [
                str(DASK),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(file),
            ],
            **common,
        )
    ]
    try:
        deadline = time.monotonic() + 120
        while not file.is_file():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)
        for name in ("w0", "w1"):
            procs.append(
                subprocess.Popen(
                    [
                        str(DASK),
                        "worker",
                        "--scheduler-file",
                        str(file),
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        name,
                        "--local-directory",
                        str(folder / name),
                    ],
                    **common,
                )
            )
        address = json.loads(file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in procs[::-1]:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("maps") / "store"
    _series(root, "c1", "s1", seed=1)
    _series(root, "c2", "s2", seed=2)
    return root


@pytest.fixture(scope="module")
def first_run(store, cluster):
    return maps(store, PARAMS, scheduler=cluster, progress=False, piece_zyx=PIECE)


def test_whole_store_maps_split_and_stitched_equal_one_piece(store, first_run):
    summary = first_run
    assert summary.failed == 0, summary.report()
    assert summary.units == summary.computed == 4  # 2 series x 2 ROIs x Original
    assert summary.tasks > summary.units + 2  # the tumours were split into several pieces
    _, todo, _, _ = plan_maps(store, PARAMS, piece_zyx=PIECE)
    fs = summary.feature_set
    for unit in {t.key: t.unit for t in todo}.values():
        box, expected = _whole(MapTask("k", unit))
        roi = roi_folder(unit.label_key, unit.label)
        assert len(expected) > 90
        for name, values in expected.items():
            stored = read_map(store, unit.case, unit.series, fs, roi, name)
            assert stored.dtype == np.float32 and stored.shape == (14, 30, 30)
            one_piece = np.full(stored.shape, np.nan, dtype=np.float32)
            one_piece[box] = values
            np.testing.assert_array_equal(stored, one_piece, err_msg=f"{unit.series} {name}")
    # JointAverage is NaN on the patch, whose kernels lack offsets other ROI kernels have
    ja = read_map(store, "c1", "s1", fs, "gtv-1", "original_glcm_JointAverage")
    assert np.isnan(ja[12, 26:29, 24:27]).all() and np.isfinite(ja).any()
    assert not errors_file(store, fs).exists()


def test_maps_open_with_the_ome_zarr_reader(store, first_run):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    fs = first_run.feature_set
    path = store / "c1" / "s1" / "maps" / fs / "gtv-1" / "original_firstorder_Mean"
    nodes = list(Reader(parse_url(str(path)))())
    data = nodes[0].data[0]
    assert tuple(data.shape) == (14, 30, 30)
    values = np.asarray(data)
    np.testing.assert_array_equal(
        values, read_map(store, "c1", "s1", fs, "gtv-1", "original_firstorder_Mean")
    )
    scale = nodes[0].metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == [2.0, 0.8, 0.8]
    # chunks outside the ROI's boxes hold no file (NaN fill)
    files = [p for p in (path / "0").rglob("*") if p.is_file()]
    assert 0 < len(files) < 3 * 3 * 3 * 4


def test_incremental_rerun_computes_nothing_and_a_changed_series_recomputes(
    store, cluster, first_run
):
    again = maps(store, PARAMS, scheduler=cluster, progress=False, incremental=True)
    assert (again.computed, again.tasks, again.skipped) == (0, 0, 4), again.report()
    assert "nothing to compute" in again.report()
    _series(store, "c2", "s2", seed=5, version="v2")
    changed = maps(store, PARAMS, scheduler=cluster, progress=False, incremental=True)
    assert (changed.computed, changed.skipped, changed.failed) == (2, 2, 0), changed.report()


def test_a_bad_roi_is_recorded_and_does_not_stop_the_run(store, cluster, first_run):
    params = {**PARAMS, "setting": {"binWidth": 25, "minimumROISize": 100}}  # the nodes fail
    summary = maps(store, params, scheduler=cluster, progress=False)
    assert (summary.computed, summary.failed) == (2, 2), summary.report()
    rows = json.loads(errors_file(store, summary.feature_set).read_text())
    assert sorted(r["label"] for r in rows) == [2, 2]
    assert all(r["permanent"] for r in rows)


def test_radflow_ls_lists_the_maps(store, first_run, capsys):
    assert main(["ls", str(store)]) == 0
    out = capsys.readouterr().out
    fs = first_run.feature_set
    assert f"maps {fs}/gtv-1: " in out and f"maps {fs}/gtv-2: " in out
    assert set(list_maps(store, "c1", "s1")[fs]) == {"gtv-1", "gtv-2"}


@pytest.mark.parametrize(
    "voxel, setting",
    [
        ({"kernelRadius": 2, "maskedKernel": False}, {"binCount": 16}),
        ({"kernelRadius": 1}, {"binWidth": 25, "force2D": True, "distances": [1, 2]}),
        ({"kernelRadius": 1}, {"binWidth": 25, "weightingNorm": "euclidean"}),
    ],
    ids=["unmasked-r2-bincount", "force2d-distances", "weighted"],
)
def test_pieces_equal_one_piece_for_other_settings(tmp_path, voxel, setting):
    _series(tmp_path / "store", "c1", "s1", seed=3)
    params = {
        "featureClass": {"firstorder": None, "glcm": None, "ngtdm": None},
        "setting": setting,
        "voxelSetting": voxel,
    }
    _, todo, _, _ = plan_maps(tmp_path / "store", params, piece_zyx=PIECE)
    tumour = [t for t in todo if t.unit.label == 1]
    assert len(tumour) > 4
    stitched = {}
    for task in tumour:
        box, values = compute_maps(task)
        for name, array in values.items():
            stitched.setdefault(name, np.full((14, 30, 30), np.nan, np.float32))[box] = array
    with dask.config.set(scheduler="synchronous"):
        box, expected = _whole(MapTask("k", tumour[0].unit))
    assert set(stitched) == set(expected)
    for name, values in expected.items():
        one_piece = np.full((14, 30, 30), np.nan, dtype=np.float32)
        one_piece[box] = values
        np.testing.assert_array_equal(stitched[name], one_piece, err_msg=name)


def test_radflow_maps_command(tmp_path, cluster, capsys):
    _series(tmp_path / "store", "c1", "s1", seed=4)
    params = tmp_path / "params.yaml"
    params.write_text("featureClass:\n  firstorder: [Mean]\nvoxelSetting:\n  kernelRadius: 1\n")
    argv = ["maps", str(tmp_path / "store"), "-p", str(params), "--scheduler", cluster, "-q"]
    assert main(argv) == 0
    assert "maps written          2" in capsys.readouterr().out
    assert main([*argv, "--incremental"]) == 0
    assert "nothing to compute: all 2 unit(s) are up to date" in capsys.readouterr().out


def test_maps_of_a_removed_roi_are_removed(tmp_path, cluster):
    root = tmp_path / "store"
    _series(root, "c1", "s1", seed=6)
    params = {"featureClass": {"firstorder": ["Mean"]}, "voxelSetting": {"kernelRadius": 1}}
    first = maps(root, params, scheduler=cluster, progress=False)
    assert set(list_maps(root, "c1", "s1")[first.feature_set]) == {"gtv-1", "gtv-2"}
    # the label rewritten without ROI 2 (the series itself unchanged)
    reference = sitk.Image([30, 30, 14], sitk.sitkUInt8)
    reference.SetSpacing((0.8, 0.8, 2.0))
    reference.SetOrigin((-10.0, 5.0, 3.0))
    mask = np.zeros((14, 30, 30), np.uint8)
    mask[4:9, 10:15, 10:15] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(reference)
    add_label(root, "c1", "s1", LabelMap("gtv", "labelmap", label, {1: "tumour"}), replace=True)
    again = maps(root, params, scheduler=cluster, progress=False, incremental=True)
    assert (again.computed, again.removed) == (1, 1), again.report()
    assert set(list_maps(root, "c1", "s1")[first.feature_set]) == {"gtv-1"}


def test_known_permanent_failures_are_not_retried_until_their_input_changes(
    tmp_path, cluster, capsys
):
    root = tmp_path / "store"
    _series(root, "c1", "s1", seed=7)
    params = {
        "featureClass": {"firstorder": ["Mean"]},
        "setting": {"binWidth": 25, "minimumROISize": 100},  # the node (ROI 2) fails
        "voxelSetting": {"kernelRadius": 1},
    }
    first = maps(root, params, scheduler=cluster, progress=False)
    assert (first.failed, first.known_failed, first.new_failures) == (1, 0, 1), first.report()
    record = errors_file(root, first.feature_set)
    row = json.loads(record.read_text())[0]
    assert row["label"] == 2 and row["permanent"]
    again = maps(root, params, scheduler=cluster, progress=False, incremental=True)
    assert (again.tasks, again.computed, again.skipped) == (0, 0, 1), again.report()
    assert (again.failed, again.known_failed, again.new_failures) == (1, 1, 0)
    assert "known failures, not retried" in again.report()
    assert json.loads(record.read_text()) == [row]  # kept as it was
    # the command: a known failure is listed, exit 0
    params_file = tmp_path / "params.yaml"
    params_file.write_text(json.dumps(params))
    argv = ["maps", str(root), "-p", str(params_file), "--scheduler", cluster, "-q"]
    assert main([*argv, "--incremental"]) == 0
    assert "known 1" in capsys.readouterr().out
    # a run without --incremental retries it: same failure, still known
    full = maps(root, params, scheduler=cluster, progress=False)
    assert (full.computed, full.failed, full.known_failed) == (1, 1, 1), full.report()
    # the series ingested again (new content fingerprint): a new key, so it runs again, and the
    # record keeps nothing of the old key
    _series(root, "c1", "s1", seed=7, version="v2")
    changed = maps(root, params, scheduler=cluster, progress=False, incremental=True)
    assert (changed.computed, changed.failed, changed.new_failures) == (1, 1, 1)
    rows = json.loads(record.read_text())
    _, todo, _, _ = plan_maps(root, params)
    assert [r["task_key"] for r in rows] != [row["task_key"]]
    assert {r["task_key"] for r in rows} <= {t.key for t in todo}
    assert main(argv) == 0  # retried without --incremental: the same, known, failure
    assert "known 1" in capsys.readouterr().out


def test_pieces_read_only_their_chunk_and_halo(tmp_path, monkeypatch):
    import radflow.pipeline.maps as pipeline_maps

    _series(tmp_path / "store", "c1", "s1", seed=8)
    params = {
        "featureClass": {"glcm": ["JointAverage", "MCC"], "firstorder": ["Entropy"]},
        "setting": {"binWidth": 25, "distances": [1, 2]},
        "voxelSetting": {"kernelRadius": 1},
    }
    _, todo, _, _ = plan_maps(tmp_path / "store", params, piece_zyx=PIECE)
    tumour = [t for t in todo if t.unit.label == 1]
    stats = pipeline_maps.region_stats(tumour[0], tumour[0].unit.params)
    reads = []
    real = pipeline_maps.box_image

    def recording(array, box):
        reads.append(tuple((b.start, b.stop) for b in box))
        return real(array, box)

    monkeypatch.setattr(pipeline_maps, "box_image", recording)
    for task in tumour:
        reads.clear()
        compute_maps(task, stats)
        assert len(reads) == 2  # image and mask
        for box in reads:
            for (a, b), (p, q), (lo, hi) in zip(box, task.piece, stats.box):
                # halo: max(kernelRadius 1, longest distance 2), clipped to the maps' box
                assert (a, b) == (max(p - 2, lo), min(q + 2, hi))


def test_a_piece_of_one_grey_level_in_a_roi_of_several_equals_one_piece(tmp_path):
    """GLCM MCC is 1 only for a whole ROI of one level: such a piece uses the whole box."""
    rng = np.random.default_rng(9)
    shape = (14, 30, 30)
    values = np.full(shape, 40, np.int16)
    values[:, :, :12] = rng.normal(40, 80, (14, 30, 12)).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    mask = np.zeros(shape, np.uint8)
    mask[2:12, 4:26, 3:27] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    write_series(
        tmp_path / "store",
        "c1",
        "s1",
        image,
        [LabelMap("gtv", "labelmap", label, {1: "tumour"})],
        attrs={"modality": "CT", "institution": "inst", "case": "c1"},
        fingerprint="fp",
    )
    params = {
        "featureClass": {"glcm": ["MCC", "Contrast"]},
        "setting": {"binWidth": 25},
        "voxelSetting": {"kernelRadius": 1},
    }
    _, todo, _, _ = plan_maps(tmp_path / "store", params, piece_zyx=PIECE)
    assert len(todo) > 4
    stitched = {}
    for task in todo:
        box, values_ = compute_maps(task)
        for name, array in values_.items():
            stitched.setdefault(name, np.full(shape, np.nan, np.float32))[box] = array
    box, expected = _whole(MapTask("k", todo[0].unit))
    mcc = np.full(shape, np.nan, np.float32)
    mcc[box] = expected["original_glcm_MCC"]
    assert np.nanmax(mcc[:, :, 20:]) == 0.0  # one level there: 0, not the flat-ROI 1
    for name, values_ in expected.items():
        one_piece = np.full(shape, np.nan, dtype=np.float32)
        one_piece[box] = values_
        np.testing.assert_array_equal(stitched[name], one_piece, err_msg=name)


def test_maps_over_the_memory_budget_fail_clearly_and_not_permanently(tmp_path):
    _series(tmp_path / "store", "c1", "s1", seed=10)
    params = {
        "featureClass": {"glcm": None},
        "voxelSetting": {"kernelRadius": 1, "memoryBudget": 0.01},
    }
    _, todo, _, _ = plan_maps(tmp_path / "store", params, piece_zyx=PIECE)
    whole = next(t for t in todo if t.piece is None)
    piece = next(t for t in todo if t.piece is not None)
    for task in (whole, piece):
        error = compute_maps(task)
        assert isinstance(error, TaskError), task
        assert error.error_type == "MemoryBudgetError" and not error.permanent
        assert "24 map(s) of" in error.message and "memory budget of 0.010 MiB" in error.message
