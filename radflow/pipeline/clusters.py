"""Where a run's tasks execute: an embedded local cluster, an existing one, SLURM, Kubernetes.

:func:`connect` yields a ``distributed.Client``:

- ``scheduler="tcp://host:8786"`` (or dask's ``scheduler-address`` setting,
  ``DASK_SCHEDULER_ADDRESS``): an existing cluster;
- ``cluster="slurm"``: ``dask_jobqueue.SLURMCluster`` (workers are batch jobs);
- ``cluster="kubernetes"``: ``dask_kubernetes.operator.KubeCluster``;
- otherwise a ``distributed.LocalCluster`` on this machine: one worker process
  per core, one thread each (the kernels are single-threaded; processes keep
  SimpleITK and numba from contending for one interpreter).

A cluster configuration file (``--cluster-config``) is a YAML mapping of the
cluster class's keyword arguments, plus two optional keys of radflow's::

    queue: cpu                 # SLURMCluster(queue="cpu", ...)
    cores: 1
    processes: 1
    memory: 4GB
    walltime: "02:00:00"
    scale: {jobs: 8}           # cluster.scale(jobs=8); an int n means scale(n)
    # adapt: {minimum_jobs: 0, maximum_jobs: 32}   # cluster.adapt(...) instead

The file is read by :func:`radflow._config.load_config` (YAML 1.2 core schema; a duplicated
key is an error naming its line). The libraries of SLURM and Kubernetes are optional and
imported only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from radflow._config import Rule, Wording, check_value, load_config
from radflow._lazy import load
from radflow.errors import InputError, SettingsError

dask = load("dask")
distributed = load("distributed")

__all__ = [
    "CLUSTER_KINDS",
    "WORKER_CONFIG",
    "connect",
    "load_cluster_config",
    "local_cluster",
    "open_cluster",
    "worker_config",
]

log = logging.getLogger(__name__)

CLUSTER_KINDS = ("slurm", "kubernetes")
_SCALING_KEYS = ("scale", "adapt")
#: Seconds to wait for a scheduler to answer, and for --workers to join it.
CONNECT_TIMEOUT_S = 30
WORKER_WAIT_S = 600
_INSTALL = {
    "slurm": ("dask_jobqueue", "SLURMCluster", "dask-jobqueue"),
    "kubernetes": ("dask_kubernetes.operator", "KubeCluster", "dask-kubernetes"),
}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _worker_count(value):
    if isinstance(value, dict) or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ):
        return value
    raise ValueError(value)


_SCALE = Rule(
    "any",
    nullable=True,
    convert=_worker_count,
    expected="a worker count or a mapping such as {jobs: 8}",
)
_ADAPT = Rule("mapping", nullable=True, expected="a mapping such as {maximum_jobs: 32}")
_WORKERS = Rule("int", nullable=True, low=1, expected="a positive number")
_WORDING = Wording(value="{name} must be {expected}, got {value!r}")


def load_cluster_config(path: str | os.PathLike) -> tuple[dict, object, dict | None]:
    """Read a cluster configuration file.

    Returns
    -------
    kwargs : dict
        Keyword arguments of the cluster class.
    scale : int, dict or None
        ``cluster.scale`` argument(s).
    adapt : dict or None
        ``cluster.adapt`` keyword arguments.

    Raises
    ------
    radflow.errors.SettingsError
        Missing or invalid file (a duplicated key included), or both ``scale`` and ``adapt``.
    """
    path = Path(path)
    data = load_config(path, what="cluster configuration")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path}: expected a mapping of cluster keyword arguments, got {type(data).__name__}"
        )
    scale, adapt = data.pop("scale", None), data.pop("adapt", None)
    if scale is not None and adapt is not None:
        raise SettingsError(f"{path}: give either 'scale' or 'adapt', not both")
    scale = check_value(_SCALE, scale, f"{path}: 'scale'", wording=_WORDING)
    adapt = check_value(_ADAPT, adapt, f"{path}: 'adapt'", wording=_WORDING)
    return data, scale, adapt


def open_cluster(kind: str, config: str | os.PathLike | None = None) -> distributed.deploy.Cluster:
    """Create (but do not scale) a SLURM or Kubernetes cluster from a configuration file.

    Parameters
    ----------
    kind : {"slurm", "kubernetes"}
    config : str or path-like, optional
        Cluster configuration file (see the module docstring); without one,
        the cluster class reads its defaults from dask's configuration
        (``jobqueue.slurm`` in ``~/.config/dask/jobqueue.yaml``, ...).

    Returns
    -------
    distributed.deploy.Cluster
        Close it when done (it is a context manager).

    Raises
    ------
    radflow.errors.SettingsError
        Unknown kind, the library is not installed, or the file holds an
        argument the cluster class does not take.
    """
    kwargs = load_cluster_config(config)[0] if config is not None else {}
    return _create(kind, kwargs, config)


def _create(kind: str, kwargs: dict, source):
    if kind not in _INSTALL:
        raise SettingsError(
            f"--cluster {kind!r} is not known; choose one of {', '.join(CLUSTER_KINDS)}"
        )
    module, name, package = _INSTALL[kind]
    try:
        factory = getattr(load(module), name)  # the optional extra imports here
    except ImportError:
        raise SettingsError(
            f"--cluster {kind} needs the {package} package: pip install {package}"
        ) from None
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:  # an argument the cluster class does not take
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettingsError(f"{source or 'cluster configuration'}: {first_line}") from None


#: Dask settings of radflow's workers, shipped beside this module (the Docker image
#: installs the same file as /etc/dask/radflow.yaml).
WORKER_CONFIG = Path(__file__).with_name("dask.yaml")


def _dotted(mapping: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: dask.config.set replaces whole sections otherwise."""
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def worker_config() -> dict:
    """The settings of :data:`WORKER_CONFIG` as dotted keys for ``dask.config.set``."""
    return _dotted(load_config(WORKER_CONFIG, what="worker configuration"))


def local_cluster(workers: int) -> distributed.LocalCluster:
    """The embedded cluster: ``workers`` processes on this machine, one thread each.

    With the settings of :data:`WORKER_CONFIG` (``dask.yaml`` beside this
    module, which says why each): no statistical profiler, a slower
    event-loop watchdog and system monitor, glibc's own malloc trimming.
    """
    _check_workers(workers)
    with dask.config.set(worker_config()):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )


def _scale(cluster, scale, adapt, workers: int | None, source) -> None:
    if workers is not None:
        cluster.scale(workers)
    elif adapt is not None:
        cluster.adapt(**adapt)
    elif isinstance(scale, dict):
        cluster.scale(**scale)
    elif scale is not None:
        cluster.scale(scale)
    else:
        raise SettingsError(
            f"{source or '--cluster'}: say how many workers to start: "
            "'scale' or 'adapt' in the cluster configuration, or --workers"
        )


def _check_workers(workers) -> None:
    check_value(_WORKERS, workers, "--workers", wording=_WORDING)


@contextmanager
def connect(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: str | os.PathLike | None = None,
) -> Iterator[distributed.Client]:
    """Yield a Dask client for a run; close what was started on leaving.

    The client does not become dask's default: other dask code in the
    process (the extractor's own ``dask.compute``) keeps its scheduler.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). Default: dask's
        ``scheduler-address`` setting or ``DASK_SCHEDULER_ADDRESS``, else an
        embedded local cluster.
    workers : int, optional
        Embedded cluster: worker processes (default: one per available core).
        Existing scheduler: wait until this many workers are connected.
        SLURM/Kubernetes: scale to this many workers, overriding the file.
    cluster : {"slurm", "kubernetes"}, optional
        Start workers through a batch system or Kubernetes.
    cluster_config : str or path-like, optional
        Configuration file of ``cluster``.

    Raises
    ------
    radflow.errors.SettingsError
        Conflicting or invalid options; a missing optional library.
    radflow.errors.InputError
        The scheduler cannot be reached.
    """
    _check_workers(workers)
    if cluster is not None and scheduler is not None:
        raise SettingsError("give either --scheduler or --cluster, not both")
    if cluster_config is not None and cluster is None:
        raise SettingsError("--cluster-config needs --cluster slurm or --cluster kubernetes")
    with ExitStack() as stack:
        if cluster is not None:
            kwargs, scale, adapt = (
                ({}, None, None) if cluster_config is None else load_cluster_config(cluster_config)
            )
            started = stack.enter_context(_create(cluster, kwargs, cluster_config))
            _scale(started, scale, adapt, workers, cluster_config)
            log.info("dask: %s cluster, dashboard %s", cluster, started.dashboard_link)
            client = stack.enter_context(distributed.Client(started, set_as_default=False))
        else:
            address = (
                scheduler
                or dask.config.get("scheduler-address", None)
                or os.environ.get("DASK_SCHEDULER_ADDRESS")
            )
            if address:
                try:
                    client = stack.enter_context(
                        distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
                    )
                except OSError as exc:  # includes TimeoutError
                    raise InputError(address, f"cannot reach the Dask scheduler ({exc})") from None
                if workers is not None:
                    try:
                        client.wait_for_workers(workers, timeout=WORKER_WAIT_S)
                    except TimeoutError:
                        raise InputError(
                            address,
                            f"{len(client.nthreads())} of {workers} workers "
                            f"joined within {WORKER_WAIT_S} s",
                        ) from None
            else:
                local = stack.enter_context(local_cluster(workers or available_cores()))
                client = stack.enter_context(distributed.Client(local, set_as_default=False))
                log.info(
                    "dask: %d local workers, dashboard %s", len(local.workers), local.dashboard_link
                )
        yield client
