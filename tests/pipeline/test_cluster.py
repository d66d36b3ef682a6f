"""radflow run on a real cluster: `dask scheduler` and two `dask worker` processes on 127.0.0.1.

A worker SIGKILLed mid-run, and a client SIGKILLed mid-run then run again, both end
with every (series, ROI, image type) row exactly once, equal to a single-process
extraction. Also: how `connect` finds or starts a cluster, and SLURM job scripts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import duckdb
import pytest

from radflow.demo.synthetic import write_demo_archive
from radflow.errors import InputError, SettingsError
from radflow.extraction.extractor import extract
from radflow.pipeline import clusters
from radflow.pipeline.clusters import connect, load_cluster_config, open_cluster
from radflow.pipeline.ingest import ingest_archive
from radflow.pipeline.plan import make_plan
from radflow.pipeline.run import run
from radflow.pipeline.table import verify
from radflow.store.read import open_label, open_volume

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
PARAMS = {"featureClass": {"firstorder": None, "glcm": None}, "setting": {"binWidth": 25}}
START_TIMEOUT_S = 120


class RealCluster:
    """A scheduler and workers as separate processes, torn down whatever happens."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.processes: dict[str, subprocess.Popen] = {}
        self._spawn(
            "scheduler",
            [
                str(DASK),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.file),
                "--idle-timeout",
                "900",
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.file.is_file():
            if time.monotonic() > deadline or self.processes["scheduler"].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give it a moment
        self.address = json.loads(self.file.read_text())["address"]

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        self.processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def start_worker(self, name: str) -> None:
        # No nanny: the worker is this process, so SIGKILL kills it for good. Slowed
        # tasks (slow_worker.py): a run lasts long enough to be interrupted mid-way.
        self._spawn(
            name,
            [
                str(DASK),
                "worker",
                "--scheduler-file",
                str(self.file),
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                name,
                "--death-timeout",
                "60",
                "--local-directory",
                str(self.folder / name),
                "--preload",
                str(Path(__file__).with_name("slow_worker.py")),
            ],
        )

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT_S)

    def worker_address(self, client, name: str) -> str:
        return next(
            a
            for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
            if w["name"] == name
        )

    def close(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory):
    cluster = RealCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_worker("w0")
        cluster.start_worker("w1")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The synthetic archive (3 patients: CT, PET, MR), ingested: (store, archive)."""
    mp = pytest.MonkeyPatch()  # module scope: outside the function-scoped key fixture
    mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
    root = tmp_path_factory.mktemp("demo")
    archive = write_demo_archive(root / "archive", patients=3, seed=3)
    summary = ingest_archive(root / "archive", root / "store", progress=False)
    mp.undo()
    assert summary.failed == 0, summary.report()
    return root / "store", archive


@pytest.fixture(scope="module")
def store(demo) -> Path:
    return demo[0]


def _table_rows(table: Path):
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{table}/**/*.parquet', hive_partitioning=true)"
    ).df()


def _assert_exactly_once_and_equal_to_single_process(store: Path, table: Path) -> None:
    plan = make_plan(store, PARAMS)
    glob = f"read_parquet('{table}/**/*.parquet', hive_partitioning=true)"
    repeated = duckdb.sql(
        f"SELECT series_id, label_key, label, image_type, count(*) AS n FROM {glob} "
        "GROUP BY ALL HAVING n <> 1"
    ).fetchall()
    assert repeated == []
    keys = duckdb.sql(f"SELECT series_id, label_key, label, image_type FROM {glob}").fetchall()
    assert sorted(keys) == sorted((t.series, t.label_key, t.label, "original") for t in plan.tasks)
    assert verify(table).ok
    rows = _table_rows(table).set_index(["series_id", "label_key", "label"])
    for task in plan.tasks:
        expected = extract(
            open_volume(store, task.case, task.series),
            open_label(store, task.case, task.series, task.label_key),
            PARAMS,
            label=task.label,
        )
        row = rows.loc[(task.series, task.label_key, task.label)]
        assert (row.case_id, row.study_id, row.roi, row.institution, row.modality) == (
            task.case,
            task.study,
            task.roi,
            task.institution,
            task.modality,
        )
        assert (task.study is None) == (task.modality == "MR")  # DICOM studies, NIfTI MR
        features = {
            k.removeprefix("original_"): v for k, v in expected.items() if k.startswith("original_")
        }
        assert features and {k: row[k] for k in features} == features


def _wait(condition, timeout: float, what: str, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or not alive():
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_worker_killed_mid_run_costs_only_time(real_cluster, demo, tmp_path):
    from distributed import Client

    store, archive = demo
    table = tmp_path / "features"
    tasks = len(make_plan(store, PARAMS).tasks)
    assert tasks == 12  # 3 patients x (CT: GTV, lung; MR: GTV, lung)
    outcome = {}

    def client_run():
        try:
            outcome["summary"] = run(
                store,
                PARAMS,
                table,
                scheduler=real_cluster.address,
                progress=False,
                commit_interval_s=0,
            )
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=client_run, daemon=True)
    thread.start()
    with Client(real_cluster.address, timeout=30) as monitor:
        victim = real_cluster.worker_address(monitor, "w0")

        def committed_and_victim_busy():
            return any(table.rglob("*.parquet")) and bool(
                monitor.processing(workers=[victim]).get(victim)
            )

        _wait(committed_and_victim_busy, 240, "a commit while w0 works", alive=thread.is_alive)
        real_cluster.processes["w0"].send_signal(signal.SIGKILL)
        real_cluster.processes["w0"].wait(timeout=30)
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert (summary.extracted, summary.failed, summary.rows) == (tasks, 0, tasks)
    _assert_exactly_once_and_equal_to_single_process(store, table)
    real_cluster.start_worker("w2")  # two workers again for what follows

    # No patient identifier reaches the table (the archive's headers do hold some).
    needles = [s.encode() for s in archive.identifiers if len(s) >= 5]
    assert needles
    leaks = [
        (p.name, n) for p in table.rglob("*") if p.is_file() for n in needles if n in p.read_bytes()
    ]
    assert leaks == []
    real_cluster.wait_for_workers(2)


def test_client_killed_mid_run_then_run_again(real_cluster, store, tmp_path):
    table = tmp_path / "features"
    code = (
        "import json, sys\nfrom radflow.pipeline.run import run\n"
        "run(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], scheduler=sys.argv[4],\n"
        "    progress=False, commit_interval_s=0)\n"
    )  # each case committed on its own
    env = {**os.environ, "RADFLOW_PSEUDONYM_KEY": "radflow-test-key"}
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            str(store),
            json.dumps(PARAMS),
            str(table),
            real_cluster.address,
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(
            lambda: any(table.rglob("*.parquet")),
            240,
            "the first commit",
            alive=lambda: client.poll() is None,
        )
        client.send_signal(signal.SIGKILL)
        assert client.wait(timeout=30) == -signal.SIGKILL
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
    partial = _table_rows(table)
    assert 0 < len(partial) < 12  # killed mid-run: some cases committed, not all
    assert not partial.duplicated(["series_id", "label_key", "label", "image_type"]).any()

    again = run(
        store, PARAMS, table, scheduler=real_cluster.address, progress=False, incremental=True
    )
    assert again.failed == 0, again.report()
    assert (again.skipped, again.extracted) == (len(partial), 12 - len(partial)), (
        again.report(),
        sorted(p.name for p in table.rglob("*")),
    )
    _assert_exactly_once_and_equal_to_single_process(store, table)


# -- connect -------------------------------------------------------------------


def test_connect_to_the_scheduler_named_in_dask_config(real_cluster):
    with dask.config.set({"scheduler-address": real_cluster.address}):
        with connect() as client:
            assert client.scheduler.address == real_cluster.address
    with connect(scheduler=real_cluster.address, workers=2) as client:
        assert len(client.nthreads()) >= 2


def test_embedded_cluster_is_one_single_threaded_process_per_core(monkeypatch):
    monkeypatch.setattr(clusters, "available_cores", lambda: 2)
    with connect() as client:
        assert sorted(client.nthreads().values()) == [1, 1]
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        profiling = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
        assert set(profiling.values()) == {False}
        # The rest of radflow/pipeline/dask.yaml, in the worker processes themselves.
        ticks = client.run(lambda: dask.config.get("distributed.admin.tick.interval"))
        assert set(ticks.values()) == {"200ms"}
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(trim.values()) == {None}
    assert dask.config.get("distributed.admin.tick.interval") != "200ms"  # only for the cluster


def test_worker_config_file_is_flattened_for_dask_config():
    config = clusters.worker_config()
    assert config["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] is None
    assert config["distributed.worker.profile.enabled"] is False
    with dask.config.set(config):  # dotted keys leave the rest of each section alone
        assert dask.config.get("distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS") == 1
        assert dask.config.get("distributed.scheduler.work-stealing") is not None


def test_connect_errors(monkeypatch, tmp_path):
    monkeypatch.setattr(clusters, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        with connect(scheduler="tcp://127.0.0.1:9"):
            pass
    with pytest.raises(SettingsError, match="either --scheduler or --cluster"):
        with connect(scheduler="tcp://127.0.0.1:9", cluster="slurm"):
            pass
    with pytest.raises(SettingsError, match="--workers"):
        with connect(workers=0):
            pass
    with pytest.raises(SettingsError, match="not known"):
        with connect(cluster="pbs"):
            pass
    try:
        import dask_kubernetes  # noqa: F401
    except ImportError:
        with pytest.raises(SettingsError, match="pip install dask-kubernetes"):
            with connect(cluster="kubernetes"):
                pass


def test_slurm_job_script_from_cluster_config(tmp_path):
    pytest.importorskip("dask_jobqueue")
    config = tmp_path / "slurm.yaml"
    config.write_text(
        "queue: cpu\ncores: 1\nprocesses: 1\nmemory: 4GB\nwalltime: '02:00:00'\n"
        "job_extra_directives: ['--qos=normal']\n"
        "scheduler_options: {host: 127.0.0.1, dashboard_address: ':0'}\n"
        "scale: {jobs: 8}\n"
    )
    kwargs, scale, adapt = load_cluster_config(config)
    assert scale == {"jobs": 8} and adapt is None and "scale" not in kwargs
    with open_cluster("slurm", config) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p cpu" in script
    assert "#SBATCH -t 02:00:00" in script
    assert "#SBATCH --qos=normal" in script
    assert "#SBATCH --mem=4G" in script
    assert "--nthreads 1" in script and "--memory-limit 3.73GiB" in script  # 4 GB

    bad = tmp_path / "bad.yaml"
    bad.write_text("queue: cpu\ncores: 1\nmemory: 1GB\nnot_an_option: 3\n")
    with pytest.raises(SettingsError, match="bad.yaml"):
        open_cluster("slurm", bad)


def test_deploy_slurm_config_renders_a_job_script(tmp_path, monkeypatch):
    pytest.importorskip("dask_jobqueue")
    config = REPO / "deploy" / "slurm.yaml"
    if not config.is_file():
        pytest.skip("deploy/slurm.yaml is not in this checkout")
    monkeypatch.chdir(tmp_path)  # the job's log_directory is relative to the client
    kwargs, scale, adapt = load_cluster_config(config)
    assert scale is not None or adapt is not None  # connect() refuses a cluster of no size
    with open_cluster("slurm", config) as cluster:
        script = cluster.job_script()
    assert f"#SBATCH -p {kwargs['queue']}" in script
    assert "--nthreads 1" in script  # cores / processes: one single-threaded worker per core


@pytest.mark.parametrize(
    "text, message",
    [
        ("scale: 2\nadapt: {maximum_jobs: 4}\n", "not both"),
        ("scale: many\n", "'scale' must be"),
        ("adapt: 3\n", "'adapt' must be"),
        ("- queue\n", "expected a mapping"),
    ],
)
def test_cluster_config_is_validated(tmp_path, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_cluster_config(config)
    with pytest.raises(SettingsError, match="not found"):
        load_cluster_config(tmp_path / "missing.yaml")


def test_cluster_config_refuses_a_duplicated_key_with_its_line(tmp_path):
    # plain yaml.safe_load let the last one silently win
    config = tmp_path / "slurm.yaml"
    config.write_text("queue: cpu\ncores: 1\ncores: 4\n")
    with pytest.raises(SettingsError, match=r"slurm\.yaml: line 3: duplicate key 'cores'"):
        load_cluster_config(config)
