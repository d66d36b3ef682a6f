"""Cost-sized Dask tasks: units (series, ROI, image-type group) packed into one Dask task.

Packing changes how units reach the workers, never what a unit is: keys, rows and
error rows are those of a run with one Dask task per unit; a failure inside a pack
fails its unit only; a worker killed in the middle of a pack loses nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.io.records import LabelMap
from radflow.params.pyradiomics_params import load_params
from radflow.pipeline import run as run_module
from radflow.pipeline import tasks as tasks_module
from radflow.pipeline.clusters import worker_config
from radflow.pipeline.plan import Task, cost_per_voxel, make_plan, pack
from radflow.pipeline.run import DEFAULT_TASK_SECONDS, TASK_SECONDS_SETTING, run
from radflow.pipeline.table import read_errors, read_table, verify
from radflow.store.write import write_series

PARAMS = {
    "imageType": {"Original": {}, "Square": {}},
    "featureClass": {"firstorder": None, "shape": ["VoxelVolume"], "glcm": ["Contrast"]},
    "setting": {"binWidth": 25},
}
CASES = 4
#: Two ROIs per series, two image-type groups.
UNITS = CASES * 2 * 2
#: Boxes of the two ROIs (z, y, x slices) and their voxels, counted by hand.
GTV_BOX = (slice(3, 11), slice(4, 15), slice(5, 16))  # 8 x 11 x 11
NODE_BOX = (slice(2, 6), slice(15, 19), slice(15, 20))  # 4 x 4 x 5
GTV_VOXELS, NODE_VOXELS = 968, 80
#: Runs never provenance: they differ between any two runs.
PER_RUN = ["run_id", "extracted_at"]
KEY = ["series_id", "label_key", "label", "image_type"]


def _write_case(store: Path, i: int) -> None:
    rng = np.random.default_rng(i)
    values = rng.normal(40, 30, size=(14, 20, 22))
    values[4:10, 5:14, 6:15] += 80 * rng.random((6, 9, 9))
    image = sitk.GetImageFromArray(values.astype(np.int16))
    image.SetSpacing((0.8, 0.9, 2.0))
    label = np.zeros(values.shape, np.uint8)
    label[GTV_BOX] = 1
    label[NODE_BOX] = 2
    mask = sitk.GetImageFromArray(label)
    mask.CopyInformation(image)
    write_series(
        store,
        f"P{i:03d}",
        f"CT-{i}",
        image,
        [LabelMap("gtv", "labelmap", mask, {1: "GTV", 2: "Node"})],
        attrs={"modality": "CT", "institution": "INST_A"},
        fingerprint=f"fp-{i}",
    )


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    for i in range(CASES):
        _write_case(root, i)
    return root


def _run(store, table, scheduler, **kwargs):
    kwargs.setdefault("retries", 1)
    return run(store, PARAMS, table, scheduler=scheduler, progress=False, **kwargs)


def _frame(table):
    frame = read_table(table).to_pandas().drop(columns=PER_RUN)
    return frame.sort_values(KEY).reset_index(drop=True)


def _errors(table):
    frame = read_errors(table).to_pandas().drop(columns=["run_id", "failed_at"])
    return frame.sort_values("task_key").reset_index(drop=True)


# -- the planner's side ------------------------------------------------------------


def _unit(i: int, cost: float) -> Task:
    return Task(
        key=f"radflow-extract-{i:032x}",
        store="/s",
        case=f"C{i}",
        series="S",
        study=None,
        institution="I",
        modality="CT",
        label_key="gtv",
        label=1,
        roi="gtv",
        group="Original",
        params=load_params(PARAMS),
        cost_s=cost,
    )


def test_pack_fills_to_the_target_then_shrinks_with_the_remaining_work():
    units = [_unit(i, 1.0) for i in range(10)]
    packs = list(pack(units, 4.0, threads=1))
    # Remaining 10 -> 4 units (the target); 6 -> 3 (6 / 2); then 3, 2, 1 left -> one each.
    assert [len(p.tasks) for p in packs] == [4, 3, 1, 1, 1]
    assert [t.key for p in packs for t in p.tasks] == [u.key for u in units]  # order, once
    assert [p.cost_s for p in packs] == [4.0, 3.0, 1.0, 1.0, 1.0]
    # A pack of several units has a key of its own, deterministic; a single unit keeps its key.
    assert packs[0].key.startswith("radflow-pack-") and packs[2].key == units[7].key
    assert [p.key for p in pack(units, 4.0, threads=1)] == [p.key for p in packs]
    # Two threads: packs of the remaining work over 4.
    assert [len(p.tasks) for p in pack(units, 4.0, threads=2)] == [2, 2, 1, 1, 1, 1, 1, 1]
    # Target 0: one Dask task per unit, under the unit's own key (the unpacked run).
    assert [p.key for p in pack(units, 0, threads=1)] == [u.key for u in units]
    # Units without an estimate (cost 0) still count: no single pack of everything.
    free = [_unit(i, 0.0) for i in range(100)]
    assert len(list(pack(free, 0.1, threads=1))) > 1
    # A unit costlier than the target goes alone.
    big = [_unit(0, 1.0), _unit(1, 9.0), _unit(2, 1.0), _unit(3, 1.0)]
    assert [len(p.tasks) for p in pack(big, 2.0, threads=1)] == [1, 1, 1, 1]


def test_units_carry_their_box_voxels_and_a_cost_that_follows_them(store):
    plan = make_plan(store, PARAMS)
    assert len(plan.tasks) == UNITS
    voxels = {(t.label, t.group): t.voxels for t in plan.tasks}
    assert voxels == {
        (1, "Original"): GTV_VOXELS,
        (1, "Square"): GTV_VOXELS,
        (2, "Original"): NODE_VOXELS,
        (2, "Square"): NODE_VOXELS,
    }
    cost = {(t.label, t.group): t.cost_s for t in plan.tasks}
    assert cost[(1, "Original")] > cost[(2, "Original")] > 0
    # More classes cost more.
    fewer = load_params({"featureClass": {"firstorder": None}})
    assert cost_per_voxel(load_params({"featureClass": PARAMS["featureClass"]})) > cost_per_voxel(
        fewer
    )
    # LoG counts its sigmas, Wavelet its eight decompositions.
    one = load_params({"imageType": {"LoG": {"sigma": [1.0]}}, "featureClass": {"glcm": None}})
    two = load_params({"imageType": {"LoG": {"sigma": [1.0, 2.0]}}, "featureClass": {"glcm": None}})
    original = load_params({"featureClass": {"glcm": None}})
    wavelet = load_params({"imageType": {"Wavelet": {}}, "featureClass": {"glcm": None}})
    assert cost_per_voxel(two) > cost_per_voxel(one) > cost_per_voxel(original)
    assert cost_per_voxel(wavelet) == pytest.approx(8 * cost_per_voxel(original))


def test_first_wave_is_one_pack_of_the_cheapest_unit_per_group_per_machine(store):
    todo = make_plan(store, PARAMS).tasks

    class Client:  # three workers: two processes on machine a, one on b
        def scheduler_info(self, n_workers):
            assert n_workers == -1
            workers = {"tcp://a:2": "a", "tcp://a:1": "a", "tcp://b:1": "b"}
            return {"workers": {w: {"host": h} for w, h in workers.items()}}

    wave = run_module._first_wave(todo, Client())
    assert len(wave) == 1  # machine b has one process: nothing to share a cache with
    first, worker = wave[0]
    assert worker == "tcp://a:1"
    assert sorted((t.group, t.label) for t in first.tasks) == [("Original", 2), ("Square", 2)]


# -- runs --------------------------------------------------------------------------


def test_keys_rows_and_errors_are_those_of_an_unpacked_run(store, tmp_path, scheduler):
    (store / "P003" / "CT-3" / "labels" / "gtv" / "zarr.json").write_text("[]")  # a plan failure
    unpacked = _run(store, tmp_path / "unpacked", scheduler, task_seconds=0)
    packed = _run(store, tmp_path / "packed", scheduler, task_seconds=60)
    assert unpacked.dask_tasks == unpacked.tasks == UNITS - 4
    assert packed.dask_tasks < packed.tasks == UNITS - 4  # several units per Dask task
    assert "units each; target 60 s" in packed.report()
    for summary in (unpacked, packed):
        assert (summary.extracted, summary.failed) == (UNITS - 4, 1)
    a, b = _frame(tmp_path / "unpacked"), _frame(tmp_path / "packed")
    assert list(a.columns) == list(b.columns)
    assert a.equals(b)  # the same keys, rows and values (NaN where NaN)
    assert set(a.task_key) == {t.key for t in make_plan(store, PARAMS).tasks}
    assert _errors(tmp_path / "unpacked").equals(_errors(tmp_path / "packed"))
    assert verify(tmp_path / "packed").ok

    # Incremental: a packed run over an unpacked table has nothing to do, and vice versa.
    again = _run(store, tmp_path / "unpacked", scheduler, task_seconds=60, incremental=True)
    assert (again.extracted, again.skipped, again.dask_tasks) == (0, UNITS - 4, 0)


def _fail_on(monkeypatch, unit: tuple[str, int, str], error: type[Exception], times=None):
    """Make the extraction of one (series, label, group) raise ``error`` (``times`` times)."""
    real = tasks_module.extract
    calls = []

    def extract(image, mask, params, *, label, **kwargs):
        group = next(iter(params.image_types))
        if (image.attrs["series"], label, group) == unit and (times is None or len(calls) < times):
            calls.append(unit)
            raise error(f"{unit} fails")
        return real(image, mask, params, label=label, **kwargs)

    monkeypatch.setattr(tasks_module, "extract", extract)
    return calls


def test_a_failing_unit_in_a_pack_fails_alone(store, tmp_path, scheduler, monkeypatch):
    plan = make_plan(store, PARAMS)
    bad = next(t for t in plan.tasks if (t.series, t.label, t.group) == ("CT-1", 2, "Square"))
    _fail_on(monkeypatch, ("CT-1", 2, "Square"), lambda m: InputError("store", m))
    summary = _run(store, tmp_path / "t", scheduler, task_seconds=60)
    assert summary.dask_tasks < UNITS
    assert (summary.extracted, summary.failed) == (UNITS - 1, 1)
    errors = read_errors(tmp_path / "t").to_pandas()
    assert list(errors.task_key) == [bad.key]
    assert list(errors.error_type) == ["InputError"] and errors.permanent.all()
    rows = read_table(tmp_path / "t").to_pandas()
    assert len(rows) == UNITS - 1 and bad.key not in set(rows.task_key)


def test_an_unexpected_error_in_a_pack_is_retried_alone(store, tmp_path, scheduler, monkeypatch):
    plan = make_plan(store, PARAMS)
    bad = next(t for t in plan.tasks if (t.series, t.label, t.group) == ("CT-2", 1, "Original"))
    # Raised once: the unit runs again on its own, and is extracted.
    calls = _fail_on(monkeypatch, ("CT-2", 1, "Original"), OSError, times=1)
    healed = _run(store, tmp_path / "healed", scheduler, task_seconds=60)
    assert len(calls) == 1 and healed.dask_tasks < UNITS
    assert (healed.extracted, healed.failed) == (UNITS, 0)
    assert read_errors(tmp_path / "healed").num_rows == 0
    # Raised every time: recorded for that unit only, as a failure that may be transient.
    monkeypatch.undo()
    calls = _fail_on(monkeypatch, ("CT-2", 1, "Original"), OSError)
    failed = _run(store, tmp_path / "failed", scheduler, task_seconds=60, retries=2)
    assert len(calls) == 3  # in its pack, then alone: once and its one retry left
    assert (failed.extracted, failed.failed) == (UNITS - 1, 1)
    errors = read_errors(tmp_path / "failed").to_pandas()
    assert list(errors.task_key) == [bad.key] and list(errors.error_type) == ["OSError"]
    assert not errors.permanent.any() and "fails" in errors.message[0]
    # Without retries: recorded from the pack at once, with the worker's traceback.
    calls = _fail_on(monkeypatch, ("CT-2", 1, "Original"), OSError)
    once = _run(store, tmp_path / "once", scheduler, task_seconds=60, retries=0)
    assert len(calls) == 1 and once.failed == 1
    assert list(read_errors(tmp_path / "once").to_pandas().task_key) == [bad.key]


def test_a_pack_that_fails_as_a_whole_runs_its_units_alone(store, tmp_path, scheduler, monkeypatch):
    """What a pack whose workers kept dying (KilledWorker) or that was cancelled gives the
    client: an exception for the whole pack. Its units then run one by one."""

    def lost(pack):  # every pack of several units fails; units alone run extract_task
        raise RuntimeError("the pack's workers died")

    monkeypatch.setattr(run_module, "extract_pack", lost)
    summary = _run(store, tmp_path / "t", scheduler, task_seconds=60, retries=0)
    assert summary.dask_tasks < UNITS  # there were packs, and each failed
    assert (summary.extracted, summary.failed) == (UNITS, 0)
    assert read_table(tmp_path / "t").num_rows == UNITS
    assert read_errors(tmp_path / "t").num_rows == 0


def test_task_seconds_is_checked(store, tmp_path, scheduler):
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(SettingsError, match="task_seconds"):
            _run(store, tmp_path / "t", scheduler, task_seconds=bad)
        with (
            dask.config.set({TASK_SECONDS_SETTING: bad}),
            pytest.raises(SettingsError, match="radflow.task-seconds"),
        ):
            _run(store, tmp_path / "t", scheduler)


def test_task_seconds_from_dask_configuration(store, tmp_path, scheduler):
    # What `radflow run` uses: DASK_RADFLOW__TASK_SECONDS=0 gives one Dask task per unit.
    config = dask.config.collect_env({"DASK_RADFLOW__TASK_SECONDS": "0"})
    with dask.config.set(config):
        assert dask.config.get(TASK_SECONDS_SETTING) == 0
        unpacked = _run(store, tmp_path / "a", scheduler)
    assert unpacked.task_seconds == 0 and unpacked.dask_tasks == UNITS
    packed = _run(store, tmp_path / "b", scheduler)
    assert packed.task_seconds == DEFAULT_TASK_SECONDS


def test_the_chosen_task_size_is_printed(store, tmp_path, scheduler, capsys):
    run(store, PARAMS, tmp_path / "t", scheduler=scheduler, progress=True, task_seconds=60)
    err = capsys.readouterr().err
    assert f"{UNITS} units of ~" in err and "Dask tasks of up to ~60 s" in err


# -- a worker killed in the middle of a pack --------------------------------------

#: Delay slow_worker.py adds to every extraction (s).
SLOW_S = 0.25


def _executing(dask_worker) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def _executing_on(client, worker: str) -> list[str]:
    return client.run(_executing, workers=[worker])[worker]


def test_a_worker_killed_mid_pack_loses_nothing(store, tmp_path, scheduler, monkeypatch):
    """Two worker processes (nannies restart them), every unit slowed by 0.25 s; the worker
    running a pack is SIGKILLed once it has been inside the pack longer than a unit takes:
    the run ends with every row once, equal to an undisturbed run."""
    from distributed import Client, LocalCluster

    for i in range(CASES, 3 * CASES):  # 48 units: packs of several units
        _write_case(store, i)
    units = 3 * UNITS
    undisturbed = _run(store, tmp_path / "undisturbed", scheduler, task_seconds=0)
    assert undisturbed.extracted == units
    preload = str(Path(__file__).with_name("slow_worker.py"))
    outcome = {}
    # Dask's nannies set their pre-spawn environment in this process (os.environ.update):
    # radflow's worker settings as `radflow run` starts them, and whatever leaks undone after.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with (
        dask.config.set(worker_config()),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            preload=[preload],
        ) as cluster,
        Client(cluster, set_as_default=False) as monitor,
    ):

        def client_run():
            try:
                outcome["summary"] = run(
                    store,
                    PARAMS,
                    tmp_path / "t",
                    scheduler=cluster.scheduler_address,
                    progress=False,
                    task_seconds=60,
                    commit_interval_s=0,
                )
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=client_run, daemon=True)
        thread.start()
        # Once a case is committed the first wave is over: the packs running are the run's
        # first, largest ones (~12 units, ~3 s each here).
        table = tmp_path / "t"
        seen: dict[tuple[str, str], float] = {}  # (worker, pack) -> first seen executing
        pids = {w: pid for w, pid in monitor.run(os.getpid).items()}
        killed = None
        deadline = time.monotonic() + 240
        while killed is None:
            assert thread.is_alive() and time.monotonic() < deadline, outcome
            now = time.monotonic()
            committed = any(table.rglob("*.parquet"))
            for worker, keys in monitor.run(_executing).items():
                for key in keys:
                    if not (key.startswith("radflow-pack-") and committed):
                        continue
                    started = seen.setdefault((worker, key), now)
                    # Inside it longer than a unit takes, and still inside it right now.
                    if now - started > 1.5 * SLOW_S and key in _executing_on(monitor, worker):
                        os.kill(pids[worker], signal.SIGKILL)
                        killed = worker, key
                        break
                if killed:
                    break
            time.sleep(0.05)
        thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert summary.dask_tasks < units
    assert (summary.extracted, summary.failed, summary.rows) == (units, 0, units)
    assert _frame(tmp_path / "t").equals(_frame(tmp_path / "undisturbed"))
    assert verify(tmp_path / "t").ok
