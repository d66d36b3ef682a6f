"""Deployment files under deploy/: structure, cross-file consistency, rendered SLURM job script.

No cluster is contacted. Kubernetes manifests are checked against what their
kind needs and what the dask-kubernetes operator / dask Helm chart read;
the SLURM configuration goes through the real ``dask_jobqueue.SLURMCluster``
(its local scheduler is started on 127.0.0.1 and closed, no job is submitted).
"""

from __future__ import annotations

import configparser
import inspect
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})

#: Keyword arguments of dask_kubernetes.operator.KubeCluster (dask-kubernetes
#: 2024.9-2025.x; not installed here, so written out from its signature).
KUBECLUSTER_KWARGS = {
    "name",
    "namespace",
    "image",
    "n_workers",
    "resources",
    "env",
    "worker_command",
    "port_forward_cluster_ip",
    "create_mode",
    "shutdown_on_close",
    "idle_timeout",
    "resource_timeout",
    "scheduler_service_type",
    "custom_cluster_spec",
    "scheduler_forward_port",
    "jupyter",
    "loop",
    "asynchronous",
    "quiet",
}
#: The API version each kind of manifest here is served under.
API_VERSIONS = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "PersistentVolumeClaim": "v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "CronJob": "batch/v1",
    "DaskCluster": "kubernetes.dask.org/v1",
}
#: The permissions KubeCluster uses while creating, scaling and deleting a cluster.
OPERATOR_CLIENT_NEEDS = {
    ("kubernetes.dask.org", "daskclusters"): {"get", "list", "watch", "create", "patch", "delete"},
    ("kubernetes.dask.org", "daskworkergroups"): {"get", "list", "create", "patch", "delete"},
    ("kubernetes.dask.org", "daskworkergroups/scale"): {"patch"},
    # scale() deletes the autoscaler adapt() may have created; a 403 would raise.
    ("kubernetes.dask.org", "daskautoscalers"): {"get", "create", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "services"): {"get", "list", "watch"},
}


# -- helpers -----------------------------------------------------------------


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _manifests() -> list[tuple[Path, dict]]:
    return [(p, d) for p in sorted(K8S.glob("*.yaml")) for d in _docs(p) if "apiVersion" in d]


def _one(kind: str) -> dict:
    found = [d for _, d in _manifests() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} under {K8S}, found {len(found)}"
    return found[0]


def _cronjob_container() -> dict:
    spec = _one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return container


def _argv(container: dict) -> list[str]:
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


def _option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def _run_argv(argv: list[str]) -> list[str]:
    """The words after ``radflow run`` (the executable may be a full path)."""
    for i, word in enumerate(argv[:-1]):
        if PurePosixPath(word).name == "radflow" and argv[i + 1] == "run":
            return argv[i + 2 :]
    raise AssertionError(f"no `radflow run` in {argv}")


def _mount_of(container: dict, volumes: list[dict], path: str) -> tuple[dict, dict]:
    """The volume mount holding ``path`` (longest mount path wins) and its volume."""
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if PurePosixPath(path).is_relative_to(m["mountPath"])
    ]
    assert mounts, f"{path} is not on any volume mount of container {container['name']!r}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    return mount, volume


def _secret_env(env: list[dict], name: str) -> dict:
    (entry,) = [e for e in env or [] if e["name"] == name]
    return entry["valueFrom"]["secretKeyRef"]


def _ini(path: Path) -> configparser.ConfigParser:
    # systemd units: case-sensitive keys, '%' specifiers, no interpolation.
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def _cron_lines(path: Path) -> list[list[str]]:
    """Schedule lines (not comments, not VAR=value), split into words."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", line):
            continue
        lines.append(shlex.split(line))
    return lines


def _check_cron_fields(fields: list[str]) -> None:
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for field, (low, high) in zip(fields, ranges, strict=True):
        for part in field.split(","):
            base, _, step = part.partition("/")
            assert not step or step.isdigit(), f"bad step in cron field {field!r}"
            if base == "*":
                continue
            bounds = [int(v) for v in base.split("-")]
            assert all(low <= v <= high for v in bounds), (
                f"cron field {field!r} outside {low}-{high}"
            )


# -- every YAML file ---------------------------------------------------------


def test_yaml_files_exist_and_parse():
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {
        "slurm.yaml",
        "helm/values.yaml",
        "kubernetes/cronjob.yaml",
        "kubernetes/daskcluster.yaml",
        "kubernetes/rbac.yaml",
    } <= names
    for path in YAML_FILES:
        docs = _docs(path)
        assert docs, f"{path}: no YAML document"
        assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"


@pytest.mark.parametrize(
    "path, doc", _manifests(), ids=lambda v: v.name if isinstance(v, Path) else v.get("kind")
)
def test_kubernetes_manifest_has_identity(path, doc):
    assert API_VERSIONS.get(doc["kind"]) == doc["apiVersion"], (
        f"{path}: {doc['kind']} {doc['apiVersion']}"
    )
    name = doc["metadata"]["name"]
    # RFC 1123 names, as the API server requires.
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"{path}: bad name {name!r}"
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "radflow", (
            f"{path}: {doc['kind']} outside namespace radflow"
        )


def test_every_kubernetes_file_is_a_manifest_or_a_cluster_config():
    kinds = {d["kind"] for _, d in _manifests()}
    assert {
        "CronJob",
        "DaskCluster",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PersistentVolumeClaim",
    } <= kinds
    loose = [p.name for p in K8S.glob("*.yaml") if not any("apiVersion" in d for d in _docs(p))]
    assert loose == ["cluster.yaml"]


# -- CronJob -----------------------------------------------------------------


def test_cronjob_schedule_and_policies():
    cron = _one("CronJob")
    assert cron["apiVersion"] == "batch/v1"
    spec = cron["spec"]
    fields = spec["schedule"].split()
    assert len(fields) == 5
    _check_cron_fields(fields)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int) and spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert isinstance(job["backoffLimit"], int) and 0 <= job["backoffLimit"] <= 3
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] in {"Never", "OnFailure"}
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_cronjob_runs_incremental_radflow_on_the_operator():
    container = _cronjob_container()
    # args, not command: the image's ENTRYPOINT (tini) must stay PID 1.
    assert "command" not in container
    argv = _argv(container)
    run = _run_argv(argv)
    assert "--incremental" in run
    assert _option(run, "--cluster") == "kubernetes"
    assert _option(run, "--cluster-config") == "/etc/radflow/cluster.yaml"


def test_cronjob_mounts_store_table_and_config():
    pod = _one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = _cronjob_container()
    run = _run_argv(_argv(container))
    store, table = run[0], _option(run, "--table")

    mount, volume = _mount_of(container, pod["volumes"], store)
    assert mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["claimName"] == "radflow-store"
    # The errors table is TABLE's sibling folder: it must be on the same volume.
    errors = str(PurePosixPath(table).with_name(PurePosixPath(table).name + ".errors"))
    mount, volume = _mount_of(container, pod["volumes"], table)
    assert _mount_of(container, pod["volumes"], errors)[0] is mount
    assert not mount.get("readOnly", False)
    assert volume["persistentVolumeClaim"]["claimName"] == "radflow-tables"
    for path in (_option(run, "-p"), _option(run, "--cluster-config")):
        assert "configMap" in _mount_of(container, pod["volumes"], path)[1]

    claims = {
        d["metadata"]["name"]: d["spec"]
        for _, d in _manifests()
        if d["kind"] == "PersistentVolumeClaim"
    }
    assert set(claims) == {"radflow-store", "radflow-tables"}
    for spec in claims.values():
        assert re.fullmatch(r"\d+(Mi|Gi|Ti)", spec["resources"]["requests"]["storage"])
    # Every worker pod mounts the store: it needs a many-node access mode.
    assert set(claims["radflow-store"]["accessModes"]) & {"ReadWriteMany", "ReadOnlyMany"}


def test_cronjob_reads_pseudonym_key_from_secret():
    ref = _secret_env(_cronjob_container()["env"], "RADFLOW_PSEUDONYM_KEY")
    assert ref == {"name": "radflow-pseudonym-key", "key": "key"}


def test_rbac_grants_what_the_operator_client_uses():
    pod = _one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    account, role, binding = _one("ServiceAccount"), _one("Role"), _one("RoleBinding")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert {
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": account["metadata"]["namespace"],
    } in binding["subjects"]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for key, verbs in OPERATOR_CLIENT_NEEDS.items():
        missing = verbs - granted.get(key, set())
        assert not missing, f"Role lacks {sorted(missing)} on {key}"
    # Least privilege: nothing outside the operator's resources and read-only core objects.
    assert {g for g, _ in granted} <= {"kubernetes.dask.org", ""}
    assert set().union(*(v for (g, _), v in granted.items() if g == "")) <= {"get", "list", "watch"}


# -- DaskCluster and its KubeCluster configuration ---------------------------


def test_daskcluster_structure():
    cluster = _one("DaskCluster")
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    spec = cluster["spec"]
    worker, scheduler = spec["worker"], spec["scheduler"]
    assert isinstance(worker["replicas"], int) and worker["replicas"] >= 1
    (w,) = worker["spec"]["containers"]
    (s,) = scheduler["spec"]["containers"]
    assert w["args"][:2] == ["dask", "worker"] and s["args"][:2] == ["dask", "scheduler"]
    assert _option(w["args"], "--nthreads") == "1"
    # The operator finds the scheduler's ports by these names.
    assert {p["name"] for p in s["ports"]} >= {"tcp-comm", "http-dashboard"}
    service_ports = {p["name"]: p["port"] for p in scheduler["service"]["ports"]}
    assert service_ports["tcp-comm"] == 8786
    assert scheduler["service"]["selector"] == {
        "dask.org/cluster-name": cluster["metadata"]["name"],
        "dask.org/component": "scheduler",
    }
    # One image for client, scheduler and workers: the scheduler unpickles radflow's tasks.
    assert w["image"] == s["image"] == _cronjob_container()["image"]
    assert _secret_env(w["env"], "RADFLOW_PSEUDONYM_KEY")["name"] == "radflow-pseudonym-key"


def test_daskcluster_workers_see_the_store_where_the_client_plans_it():
    spec = _one("DaskCluster")["spec"]["worker"]["spec"]
    (worker,) = spec["containers"]
    store = _run_argv(_argv(_cronjob_container()))[0]
    mount, volume = _mount_of(worker, spec["volumes"], store)
    assert mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["claimName"] == "radflow-store"


def test_kubecluster_config_matches_cronjob_and_clusters_module():
    from radflow.pipeline.clusters import load_cluster_config

    kwargs, scale, adapt = load_cluster_config(K8S / "cluster.yaml")
    unknown = set(kwargs) - KUBECLUSTER_KWARGS
    assert not unknown, f"not KubeCluster arguments: {sorted(unknown)}"
    assert (scale is None) != (adapt is None)
    assert kwargs["namespace"] == _one("DaskCluster")["metadata"]["namespace"]
    # custom_cluster_spec is read inside the client pod, from the same ConfigMap
    # mount as cluster.yaml itself, under the file's own name.
    config = PurePosixPath(_option(_run_argv(_argv(_cronjob_container())), "--cluster-config"))
    spec_path = PurePosixPath(kwargs["custom_cluster_spec"])
    assert spec_path.parent == config.parent
    assert spec_path.name == "daskcluster.yaml" and (K8S / spec_path.name).is_file()


# -- Helm values for the dask/dask chart --------------------------------------


def test_helm_values_use_the_chart_keys():
    (values,) = _docs(DEPLOY / "helm" / "values.yaml")
    cron_image = _cronjob_container()["image"]
    for role in ("scheduler", "worker"):
        image = values[role]["image"]
        assert f"{image['repository']}:{image['tag']}" == cron_image, f"{role} image differs"
        assert isinstance(image["tag"], str), "quote the tag: YAML would read 1.10 as a float"
    worker = values["worker"]
    assert isinstance(worker["replicas"], int) and worker["replicas"] >= 1
    assert worker["threads_per_worker"] == 1
    assert worker["image"]["dask_worker"] == "dask-worker"  # shim provided by the Dockerfile
    assert set(worker["resources"]["limits"]) >= {"cpu", "memory"}
    assert values["scheduler"]["servicePort"] == 8786
    assert values["jupyter"]["enabled"] is False
    assert _secret_env(worker["env"], "RADFLOW_PSEUDONYM_KEY")["name"] == "radflow-pseudonym-key"
    store = _run_argv(_argv(_cronjob_container()))[0]
    container = {"name": "worker", "volumeMounts": worker["mounts"]["volumeMounts"]}
    mount, volume = _mount_of(container, worker["mounts"]["volumes"], store)
    assert mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["claimName"] == "radflow-store"


# -- SLURM (dask-jobqueue) ---------------------------------------------------


def _slurm_config():
    from radflow.pipeline.clusters import load_cluster_config

    return load_cluster_config(DEPLOY / "slurm.yaml")


def test_slurm_keys_are_slurmcluster_arguments():
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.slurm import SLURMJob
    from distributed.deploy.adaptive import Adaptive

    kwargs, scale, adapt = _slurm_config()
    accepted = set()
    for function in (SLURMCluster.__init__, SLURMJob.__init__, Job.__init__):
        accepted |= {
            name
            for name, p in inspect.signature(function).parameters.items()
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
        }
    accepted -= {"self", "scheduler", "name", "config_name"}
    unknown = set(kwargs) - accepted
    assert not unknown, f"not SLURMCluster arguments: {sorted(unknown)}"
    deprecated = {"env_extra", "extra", "job_extra", "header_skip"} & set(kwargs)
    assert not deprecated, f"deprecated dask-jobqueue arguments: {sorted(deprecated)}"
    assert scale is None and set(adapt) == {"minimum", "maximum"}
    adapt_args = set(inspect.signature(JobQueueCluster.adapt).parameters) | set(
        inspect.signature(Adaptive.__init__).parameters
    )
    assert set(adapt) <= adapt_args
    assert 0 <= adapt["minimum"] <= adapt["maximum"]


def test_slurm_job_script_renders(tmp_path):
    from dask_jobqueue import SLURMCluster

    kwargs, _, _ = _slurm_config()
    # Constructing the cluster starts its scheduler in this process: keep it on
    # the loopback without a dashboard, and the log folder in tmp_path.
    kwargs |= {
        "log_directory": str(tmp_path / "logs"),
        "scheduler_options": {
            **kwargs.get("scheduler_options", {}),
            "host": "127.0.0.1",
            "dashboard_address": None,
        },
    }
    with SLURMCluster(**kwargs) as cluster:
        script = cluster.job_script()
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert not cluster.workers  # nothing submitted
    directives = [
        line.removeprefix("#SBATCH ").strip()
        for line in script.splitlines()
        if line.startswith("#SBATCH")
    ]
    assert f"-p {kwargs['queue']}" in directives
    assert f"--cpus-per-task={kwargs['cores']}" in directives
    assert f"-t {kwargs['walltime']}" in directives
    assert any(re.fullmatch(r"--mem=\d+G", d) for d in directives)
    for extra in kwargs["job_extra_directives"]:
        assert extra in directives
    assert any(d.startswith("-o " + str(tmp_path / "logs")) for d in directives)
    body = script.splitlines()
    for variable in ("NUMBA_CACHE_DIR", "RADFLOW_PSEUDONYM_KEY_FILE"):
        assert any(line.startswith(f"export {variable}=") for line in body), variable
    (worker_line,) = [line for line in body if "distributed.cli.dask_worker" in line]
    # One single-threaded worker process per core.
    assert kwargs["cores"] == kwargs["processes"]
    assert "--nthreads 1" in worker_line and f"--nworkers {kwargs['processes']}" in worker_line
    # Workers retire (at lifetime +- stagger) before SLURM ends the job at its walltime.
    from dask.utils import parse_timedelta

    args = kwargs["worker_extra_args"]
    lifetime_s = parse_timedelta(_option(args, "--lifetime"))
    stagger_s = parse_timedelta(_option(args, "--lifetime-stagger"))
    hours, minutes, seconds = (int(v) for v in kwargs["walltime"].split(":"))
    assert 0 < lifetime_s + stagger_s < 3600 * hours + 60 * minutes + seconds
    assert f"--lifetime {args[args.index('--lifetime') + 1]}" in worker_line


def test_scrontab_runs_incremental_slurm_run():
    path = DEPLOY / "slurm" / "scrontab"
    (line,) = _cron_lines(path)
    _check_cron_fields(line[:5])
    run = _run_argv(line[5:])
    assert "--incremental" in run and _option(run, "--cluster") == "slurm"
    assert _option(run, "--cluster-config").endswith("slurm.yaml")
    lines = path.read_text(encoding="utf-8").splitlines()
    scron = [row for row in lines if row.startswith("#SCRON")]
    assert any("--time=" in s for s in scron) and any("--partition=" in s for s in scron)


# -- single server: systemd and cron -----------------------------------------


def test_systemd_timer():
    timer = _ini(DEPLOY / "systemd" / "radflow-nightly.timer")
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "radflow-nightly.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    calendar = timer["Timer"]["OnCalendar"]
    if shutil.which("systemd-analyze"):
        analyze = subprocess.run(
            ["systemd-analyze", "calendar", calendar], capture_output=True, text=True, check=False
        )
        assert analyze.returncode == 0, analyze.stderr
    assert re.fullmatch(r"(\*-\*-\*|daily) ?(\d\d:\d\d(:\d\d)?)?", calendar), calendar


def test_systemd_service_runs_incremental_under_flock():
    service = _ini(DEPLOY / "systemd" / "radflow-nightly.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] not in {"root", "0"}
    argv = shlex.split(service["ExecStart"])
    assert PurePosixPath(argv[0]).name == "flock" and "--nonblock" in argv
    lock = argv[argv.index("--conflict-exit-code") + 2]
    run = _run_argv(argv)
    assert "--incremental" in run
    table = _option(run, "--table")
    # flock(1) on radflow's own table lock would make radflow refuse to run.
    assert PurePosixPath(lock) != PurePosixPath(table) / ".radflow.lock"
    assert service["SuccessExitStatus"] == _option(argv, "--conflict-exit-code")
    # ProtectSystem=strict: the table's folder (with its .errors sibling) must be writable.
    writable = service["ReadWritePaths"].split()
    assert any(PurePosixPath(table).parent.is_relative_to(w) for w in writable)
    assert any(PurePosixPath(lock).is_relative_to(w) for w in writable)


def test_crontab_line():
    (line,) = _cron_lines(DEPLOY / "cron" / "radflow-nightly")
    _check_cron_fields(line[:5])
    command = line[5:]
    assert PurePosixPath(command[0]).name == "flock" and "--nonblock" in command
    assert "--incremental" in _run_argv(command)
    # Same lock as the systemd unit, so a timer run and a cron run exclude each other.
    service = _ini(DEPLOY / "systemd" / "radflow-nightly.service")["Service"]
    assert command[2] in shlex.split(service["ExecStart"])


# -- Docker ------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_dockerfile():
    steps = _dockerfile()
    froms = [rest for op, rest in steps if op == "FROM"]
    assert froms and all(f.startswith("python:${PYTHON_VERSION}-slim") for f in froms)
    assert ("ARG", "PYTHON_VERSION=3.11") in steps
    assert any(op == "ARG" and rest.startswith("RADFLOW_VERSION") for op, rest in steps)
    runs = [rest for op, rest in steps if op == "RUN"]
    assert any(re.search(r"pip install /src\b", r) for r in runs), (
        "radflow not installed from the repo"
    )
    # The last USER is a named, non-root user, set before the warm-up and entry point.
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    assert users and steps[users[-1]][1] not in {"root", "0"}
    warmup = [i for i, (op, rest) in enumerate(steps) if op == "RUN" and "warmup" in rest]
    assert warmup and warmup[0] > users[-1]
    env = " ".join(rest for op, rest in steps if op == "ENV")
    assert "NUMBA_CACHE_DIR=" in env
    assert ("ENTRYPOINT", '["tini", "--"]') in steps and any(op == "CMD" for op, _ in steps)
    assert any(op == "HEALTHCHECK" for op, _ in steps)
    # Every COPY from the build context exists and is let through by the .dockerignore.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    allowed = [line[1:].rstrip("/") for line in ignore.splitlines() if line.startswith("!")]
    for op, rest in steps:
        if op == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert any(source == a or source.startswith(a + "/") for a in allowed), source


def test_healthcheck_script(monkeypatch):
    script = DEPLOY / "docker" / "healthcheck.py"
    monkeypatch.delenv("RADFLOW_HEALTH_URL", raising=False)
    assert subprocess.run([sys.executable, str(script)], check=False).returncode == 0
    monkeypatch.setenv("RADFLOW_HEALTH_URL", "http://127.0.0.1:9/health")  # discard port: refused
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "127.0.0.1:9" in done.stderr


def test_compose_cluster():
    (compose,) = _docs(DEPLOY / "docker-compose.yaml")
    services = compose["services"]
    assert services["scheduler"]["command"][:2] == ["dask", "scheduler"]
    worker = services["worker"]
    assert worker["command"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
    assert worker["deploy"]["replicas"] == 2
    run = _run_argv(services["radflow"]["command"])
    assert _option(run, "--scheduler") == "tcp://scheduler:8786" and "--incremental" in run

    # Worker and client mount the same host store, read-only, at the path the client plans with.
    def store_mount(service):
        # SOURCE:TARGET[:MODE]; SOURCE may hold ${VAR:-default}.
        mounts = [
            re.fullmatch(r"(.+):(/[^:]*)(?::(ro|rw))?", v).groups() for v in service["volumes"]
        ]
        (mount,) = [m for m in mounts if m[1] == run[0]]
        return mount

    assert store_mount(worker) == store_mount(services["radflow"])
    assert store_mount(worker)[2] == "ro"


# -- the radflow commands and parameters themselves --------------------------


def _all_run_commands() -> dict[str, list[str]]:
    (compose,) = _docs(DEPLOY / "docker-compose.yaml")
    service = _ini(DEPLOY / "systemd" / "radflow-nightly.service")["Service"]
    return {
        "kubernetes/cronjob.yaml": _run_argv(_argv(_cronjob_container())),
        "docker-compose.yaml": _run_argv(compose["services"]["radflow"]["command"]),
        "slurm/scrontab": _run_argv(_cron_lines(DEPLOY / "slurm" / "scrontab")[0][5:]),
        "systemd/radflow-nightly.service": _run_argv(shlex.split(service["ExecStart"])),
        "cron/radflow-nightly": _run_argv(_cron_lines(DEPLOY / "cron" / "radflow-nightly")[0][5:]),
    }


@pytest.mark.parametrize("where", sorted(_all_run_commands()))
def test_run_commands_use_absolute_paths(where):
    # A scheduled job's working directory is not the user's; workers elsewhere
    # must find the store by the path the client planned with.
    run = _all_run_commands()[where]
    paths = [run[0]] + [_option(run, o) for o in ("-p", "--table", "--cluster-config") if o in run]
    assert all(PurePosixPath(p).is_absolute() for p in paths), paths


@pytest.mark.parametrize("where", sorted(_all_run_commands()))
def test_run_commands_parse_with_the_cli(where):
    from radflow.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    if "run" not in commands:
        pytest.skip("`radflow run` is not in the CLI yet")
    args = parser.parse_args(["run", *_all_run_commands()[where]])
    assert args.incremental is True


def test_example_params_are_valid():
    from radflow.params.pyradiomics_params import load_params, params_to_dict

    # load_params rejects unknown keys, wrong types and out-of-range values.
    params = params_to_dict(load_params(DEPLOY / "params.yaml"))
    (written,) = _docs(DEPLOY / "params.yaml")
    assert params["imageType"] == written["imageType"]
    assert set(params["featureClass"]) == set(written["featureClass"])


def test_readme_names_every_deployment_file():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name != "README.md" and "__pycache__" not in path.parts:
            relative = path.relative_to(DEPLOY).as_posix()
            assert relative in readme or path.name in readme, (
                f"deploy/README.md does not mention {relative}"
            )
