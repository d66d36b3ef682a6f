"""Pipeline benchmark: throughput with 1 and 2 workers, per-task overhead, DuckDB over the table.

Usage::

    python benchmarks/bench_pipeline.py [--cases 100] [--size small|ct] [--params default|filters]
                                        [--repeat N] [--out DIR]

1. A store of ``--cases`` synthetic CT series (one textured tumour ROI each,
   written directly with ``write_series``: no archive, no ingest), of 40 x 80
   x 80 voxels (``small``, where fixed costs per task weigh most) or 120 x
   256 x 256 with a 40 cm3 GTV (``ct``).
2. The same extractions in a plain loop in this process (warm kernels,
   SimpleITK on one thread as in the workers): the extraction time the
   pipeline is compared with. ``--params filters`` adds LoG and wavelet
   image types (3 tasks per ROI), the usual published configuration.
3. ``radflow run`` on a local cluster of 1, then 2 worker processes (one
   thread each), workers warmed first so that start-up is not counted:
   ROIs per second, and the pipeline's overhead over the plain loop.
4. The same with the smallest feature set (first-order Mean, no diagnostics):
   per-task overhead in ms.
5. Dask's own cost per task on this machine: 1,000 trivial tasks through
   the same embedded cluster (the floor of any one-task-per-ROI pipeline).
6. A DuckDB aggregate over a synthesised 10,000-row table, before and after
   ``compact``.

Targets (issue 5): 2 workers >= 1.8x one worker on a 2-core machine; overhead
under 5% of extraction time for 100 cases. The load average is printed: on a
shared machine the figures only mean something when it is low; ``--repeat``
keeps the fastest of several runs of each measurement (this VM's timings vary
by 5-10 % from run to run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import resource
import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow.io.records import LabelMap

FULL = {
    "featureClass": {
        "firstorder": None,
        "glcm": None,
        "glrlm": None,
        "glszm": None,
        "gldm": None,
        "ngtdm": None,
    },
    "setting": {"binWidth": 25},
}
#: The usual published configuration: Original, LoG and wavelets (3 tasks per ROI).
FILTERS = {**FULL, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}}}
BIN25 = {"setting": {"binWidth": 25}}
SMALLEST = {"featureClass": {"firstorder": ["Mean"]}, "setting": {"additionalInfo": False}}
PARAMS = {"default": FULL, "filters": FILTERS}


#: Case sizes: (shape z, y, x), spacing (z, y, x) mm, ROI semi-axes (z, y, x) in voxels.
SIZES = {
    # The smallest useful case: a fixed cost per task shows at its largest here.
    "small": ((40, 80, 80), (2.5, 0.9, 0.9), (8, 14, 14)),
    # A head-and-neck CT cropped to the neck, with a GTV of about 40 cm3 (13,000 voxels).
    "ct": ((120, 256, 256), (3.0, 0.98, 0.98), (8, 20, 20)),
}


def write_store(
    store: Path, cases: int, *, seed: int = 0, size: str = "small", distinct: int | None = None
) -> None:
    """``cases`` CT-like series of one of :data:`SIZES`, each with one ellipsoid ROI.

    With ``distinct``, only that many are written and the others are copies of them
    under other case ids (quick for large stores; the same extraction cost).
    """
    from radflow.store.write import write_series

    shape, spacing, radii = SIZES[size]
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    for i in range(cases):
        if distinct and i >= distinct:
            shutil.copytree(store / f"B{i % distinct:04d}", store / f"B{i:04d}")
            continue
        rng = np.random.default_rng([seed, i])
        values = rng.normal(-50, 40, size=shape)
        centre = [int(rng.integers(r + 2, n - r - 2)) for n, r in zip(shape, radii)]
        roi = (
            ((z - centre[0]) / radii[0]) ** 2
            + ((y - centre[1]) / radii[1]) ** 2
            + ((x - centre[2]) / radii[2]) ** 2
        ) <= 1
        values[roi] += 60 + 50 * rng.random(int(roi.sum()))
        image = sitk.GetImageFromArray(values.astype(np.int16))
        image.SetSpacing(spacing[::-1])
        label = sitk.GetImageFromArray(roi.astype(np.uint8))
        label.CopyInformation(image)
        labels = [LabelMap("gtv", "labelmap", label, {1: "GTV"})]
        write_series(
            store,
            f"B{i:04d}",
            "CT-1",
            image,
            labels,
            fingerprint=f"bench-{size}-{seed}-{i}",
            attrs={"modality": "CT", "institution": f"SITE_{i % 3}"},
        )


def write_roi_store(store: Path, rois: int, *, per_series: int = 10) -> None:
    """``rois`` small ROIs, ``per_series`` to a series (one label image), one series per case.

    Written quickly: one 12 x 40 x 40 series is written with radflow's writer and its
    folder copied under every other case id (the ids, not the content, make the keys).
    """
    from radflow.store.write import write_series

    rng = np.random.default_rng(0)
    values = rng.normal(0, 40, (12, 40, 40)).astype(np.int16)
    label = np.zeros(values.shape, np.uint8)
    for k in range(per_series):
        y, x = divmod(k, 5)
        label[3:9, 3 + 18 * (y % 2) : 11 + 18 * (y % 2), 1 + 8 * x : 7 + 8 * x] = k + 1
    image = sitk.GetImageFromArray(values)
    mask = sitk.GetImageFromArray(label)
    mask.CopyInformation(image)
    names = {k + 1: f"R{k}" for k in range(per_series)}
    template = write_series(
        store,
        "S00000",
        "CT-1",
        image,
        [LabelMap("rois", "labelmap", mask, names)],
        fingerprint="scale-0",
        attrs={"modality": "CT", "institution": "SITE_0"},
    )
    for i in range(1, -(-rois // per_series)):
        shutil.copytree(template, store / f"S{i:05d}" / "CT-1")


def _rss_mib() -> float:
    """Resident memory of this process now (MiB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _scale_child(
    store: str, table: str, rois: int, cases_per_commit: int, reuse: bool = False
) -> dict:
    """Planning, commits and an incremental no-op over ``rois`` ROIs, in a fresh process."""
    from radflow.params.pyradiomics_params import load_params
    from radflow.pipeline.plan import make_plan
    from radflow.pipeline.run import run
    from radflow.pipeline.table import INDEX_FILE, TableWriter, table_lock

    params = load_params(FULL)
    store, table = Path(store), Path(table)
    make_plan(store, params)  # imports, and the file system's cache warm for what follows
    started = time.perf_counter()
    plan = make_plan(store, params)
    plan_s = time.perf_counter() - started
    del plan
    gc.collect()
    tracemalloc.start()
    plan = make_plan(store, params)
    gc.collect()  # free lists and cycles out: what the plan holds
    plan_mib = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    # Table commits as radflow run makes them (rows of up to 256 cases per commit).
    rng = np.random.default_rng(0)
    features = rng.random(len(plan.columns)).tolist()
    stamp = dt.datetime.now(dt.UTC)
    by_case: dict = {}
    for t in plan.tasks:
        by_case.setdefault(t.partition, []).append(
            {
                "case_id": t.case,
                "study_id": t.study,
                "series_id": t.series,
                "roi": t.roi,
                "label_key": t.label_key,
                "label": t.label,
                "image_type": "original",
                "diagnostics": "{}",
                "input_fingerprint": t.fingerprint,
                "params_hash": t.params_hash,
                "task_key": t.key,
                "radflow_version": "bench",
                "extracted_at": stamp,
                **dict(zip(plan.columns, features)),
            }
        )
    keep = {t.key for t in plan.tasks}
    items = [(where, rows, []) for where, rows in by_case.items()]
    commit_s = None
    if not (reuse and table.is_dir()):
        shutil.rmtree(table, ignore_errors=True)
        started = time.perf_counter()
        with table_lock(table):
            writer = TableWriter(table, plan.feature_set, plan.columns, plan.params, "bench")
            for i in range(0, len(items), cases_per_commit):
                writer.commit_many(items[i : i + cases_per_commit], keep)
        commit_s = time.perf_counter() - started
        del writer
    del by_case, items, keep  # the benchmark's own: not the client's memory
    # Without the table's file index (an older radflow's table, or the index lost): every
    # file is read once, and the index written; then the no-op as every later run has it.
    (table / INDEX_FILE).unlink(missing_ok=True)
    started = time.perf_counter()
    summary = run(store, FULL, table, incremental=True, progress=False)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = run(store, FULL, table, incremental=True, progress=False)
    noop_s = time.perf_counter() - started
    assert (summary.skipped, summary.extracted) == (rois, 0), summary.report()
    series = plan.series
    del plan
    gc.collect()
    tracemalloc.start()  # the no-op again: the client's Python memory at its peak
    run(store, FULL, table, incremental=True, progress=False)
    noop_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    # A full (not incremental) run's client as extraction starts: run() up to the cluster,
    # whose loop (_execute: in-flight work bounded by a window) is stubbed out here. Every
    # unit is to do; the table is left as it is (no case is stale without work to do).
    from radflow.pipeline import run as run_module

    start: dict = {}

    def starting(todo, *args, **kwargs):
        start["peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        gc.collect()
        start["held"] = tracemalloc.get_traced_memory()[0] / 2**20
        start["units"] = len(todo)

    real, run_module._execute = run_module._execute, starting
    gc.collect()
    tracemalloc.start()
    try:
        run(store, FULL, table, incremental=False, progress=False)
    finally:
        tracemalloc.stop()
        run_module._execute = real
    assert start["units"] == rois, start
    files = sum(1 for _ in table.rglob("*.parquet"))
    return {
        "rois": rois,
        "series": series,
        "plan_s": plan_s,
        "commit_s": commit_s,
        "noop_s": noop_s,
        "cold_s": cold_s,
        "files": files,
        "plan_mib": plan_mib,
        "noop_mib": noop_mib,
        "start_peak_mib": start["peak"],
        "start_held_mib": start["held"],
    }


def bench_scale(
    out: Path, sizes: list[int], per_series: int = 10, cases_per_commit: int = 256, reuse=False
) -> list[dict]:
    """:func:`_scale_child` for each size, each in a fresh process (its peak memory its own)."""
    import multiprocessing

    results = []
    context = multiprocessing.get_context("spawn")
    for rois in sizes:
        store = out / f"scale-store-{rois}-{per_series}"
        if not store.is_dir():
            write_roi_store(store, rois, per_series=per_series)
        table = str(out / f"scale-table-{rois}-{per_series}-{cases_per_commit}")
        with context.Pool(1) as pool:
            results.append(
                pool.apply(_scale_child, (str(store), table, rois, cases_per_commit, reuse))
            )
    return results


def serial_seconds(store: Path, params) -> float:
    """Extraction time of every planned task, one after the other in this process.

    With SimpleITK on one thread, as in the workers (its filters would use
    every core here, and the comparison would be with more than one core).
    """
    import dask

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    from radflow.extraction.extractor import extract
    from radflow.pipeline.plan import make_plan
    from radflow.store.read import open_label, open_volume

    tasks = make_plan(store, params).tasks
    started, cpu = time.perf_counter(), time.process_time()
    with dask.config.set(scheduler="synchronous"):
        for t in tasks:
            mask = open_label(store, t.case, t.series, t.label_key)
            extract(open_volume(store, t.case, t.series), mask, t.params, label=t.label)
    serial_seconds.cpu = time.process_time() - cpu
    return time.perf_counter() - started


def calibrate(out: Path, cases: int = 6) -> None:
    """Fit the cost model of :mod:`radflow.pipeline.plan` (``COST_FIXED_S`` and the rest).

    Times every unit of ``cases`` cases of each size through the workers' own
    function (:func:`radflow.pipeline.tasks.extract_task`, warm, SimpleITK on
    one thread; CPU time, the less of two runs) for four parameter sets (first order; first
    order + GLCM; six classes; six classes on Original + LoG + wavelets), and fits
    seconds = FIXED + box voxels x (CLASS x images x classes + LOG x sigmas + WAVELET x
    decompositions) by least squares, each unit weighted by 1 / its time (relative
    errors count). Prints the fit and, per size and group, the measured mean, the
    fit's and plan.py's estimate.
    """
    import dask

    from radflow.pipeline import plan as planning
    from radflow.pipeline.tasks import extract_task

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    sets = {
        "firstorder": {"featureClass": {"firstorder": None}, **BIN25},
        "fo+glcm": {"featureClass": {"firstorder": None, "glcm": None}, **BIN25},
        "six": FULL,
        "filters": FILTERS,
    }
    samples = []  # (size, set, group, [1, class, LoG, wavelet terms], s, plan.py's s, voxels)
    for size in ("small", "ct"):
        store = out / f"calibrate-{size}-{cases}"
        if not store.is_dir():
            write_store(store, cases, seed=7, size=size)
        for name, params in sets.items():
            tasks = planning.make_plan(store, params).tasks
            with dask.config.set(scheduler="synchronous"):
                extract_task(tasks[0])  # kernels
                for task in tasks:
                    times = []
                    for _ in range(2):  # CPU time: other jobs on the machine do not count
                        started = time.process_time()
                        extract_task(task)
                        times.append(time.process_time() - started)
                    p = task.params
                    images = {t: planning._images(p, t) for t in p.image_types}
                    terms = [
                        1.0,
                        task.voxels * sum(images.values()) * len(p.feature_classes),
                        task.voxels * images.get("LoG", 0),
                        task.voxels * images.get("Wavelet", 0),
                    ]
                    samples.append(
                        (size, name, task.group, terms, min(times), task.cost_s, task.voxels)
                    )
    terms = np.array([s[3] for s in samples], float)
    seconds = np.array([s[4] for s in samples], float)
    weights = 1 / seconds
    fit, *_ = np.linalg.lstsq(terms * weights[:, None], seconds * weights, rcond=None)
    print(
        f"cost model fit over {len(samples)} units: FIXED {fit[0] * 1000:.2f} ms, CLASS "
        f"{fit[1]:.3g} s, LoG {fit[2]:.3g} s, Wavelet {fit[3]:.3g} s per voxel (plan.py: "
        f"{planning.COST_FIXED_S * 1000:.2f} ms, {planning.COST_CLASS_S:.3g}, "
        f"{planning.COST_FILTER_S['LoG']:.3g}, {planning.COST_FILTER_S['Wavelet']:.3g})"
    )
    print("  size   params      group      units  box voxels  measured    fit  plan.py")
    for key in sorted({s[:3] for s in samples}):
        mine = [s for s in samples if s[:3] == key]
        measured = np.mean([s[4] for s in mine])
        fitted = np.mean([np.dot(s[3], fit) for s in mine])
        planned = np.mean([s[5] for s in mine])
        voxels = np.mean([s[6] for s in mine])
        print(
            f"  {key[0]:<6} {key[1]:<11} {key[2]:<10} {len(mine):5d}  {voxels:10,.0f}  "
            f"{1000 * measured:6.1f} ms {1000 * fitted:6.1f} {1000 * planned:6.1f}"
        )


def pipeline_seconds(
    store: Path, params, table: Path, scheduler: str, task_seconds: float | None = None
) -> float:
    from radflow.pipeline.run import run

    shutil.rmtree(table, ignore_errors=True)
    shutil.rmtree(table.with_name(table.name + ".errors"), ignore_errors=True)
    kwargs = {} if task_seconds is None else {"task_seconds": task_seconds}
    started = time.perf_counter()
    summary = run(store, params, table, scheduler=scheduler, progress=False, **kwargs)
    seconds = time.perf_counter() - started
    assert summary.failed == 0, summary.report()
    pipeline_seconds.size = summary.task_size()
    return seconds


def _cpu_seconds() -> float:
    """CPU time (user + system) of the calling process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_workers(
    store: Path, warm: Path, out: Path, n: int, params, repeat: int = 1, task_seconds=None
) -> tuple[float, float, float]:
    """Wall seconds of a run on ``n`` warm workers, their CPU seconds, and the client's.

    The fastest of ``repeat`` runs on the same cluster.

    CPU seconds do not depend on what else the machine runs: they show the
    parallel efficiency and the client's share even when the wall time cannot.
    The client's CPU includes the scheduler's (a local cluster runs it in the
    client process).
    """
    from distributed import Client

    from radflow.pipeline.clusters import local_cluster

    # The cluster `radflow run` starts, kept for a warm-up run and the timed one.
    with local_cluster(n) as cluster, Client(cluster, set_as_default=False) as client:
        pipeline_seconds(
            warm, params, out / "warm-table", cluster.scheduler_address
        )  # imports, kernels
        best = None
        for _ in range(repeat):
            before, client_before = client.run(_cpu_seconds), _cpu_seconds()
            seconds = pipeline_seconds(
                store, params, out / f"table-{n}", cluster.scheduler_address, task_seconds
            )
            after, client_after = client.run(_cpu_seconds), _cpu_seconds()
            figures = (
                seconds,
                sum(after[w] - before[w] for w in after),
                client_after - client_before,
            )
            if best is None or figures[0] < best[0]:
                best = figures
                # The busiest worker's CPU: the wall time it would take with a core each.
                bench_workers.busiest = max(after[w] - before[w] for w in after)
    return best


def bench_cold(store: Path, out: Path, params, workers: int = 2) -> list[tuple[str, float, float]]:
    """A run on ``workers`` fresh worker processes whose numba cache is empty, twice.

    Once as ``radflow run`` does it (a first wave compiles the enabled kernels in one
    worker per machine, the others load them from the shared cache), once without
    that wave (every process compiles them itself). Each with its own empty
    ``NUMBA_CACHE_DIR``, inherited by the workers. Returns (how, wall s, workers' CPU s).
    """
    from unittest import mock

    from distributed import Client

    from radflow.pipeline import run as run_module
    from radflow.pipeline.clusters import local_cluster

    results = []
    for how in ("first wave", "every worker compiles"):
        cache = Path(tempfile.mkdtemp(prefix="numba-cold-", dir=out))
        patch = (
            mock.patch.object(run_module, "_first_wave", lambda todo, client: [])
            if how != "first wave"
            else mock.patch.dict(os.environ, {})
        )
        with mock.patch.dict(os.environ, {"NUMBA_CACHE_DIR": str(cache)}), patch:
            with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
                client.run(_cpu_seconds)  # workers up (imports are not kernels)
                before = client.run(_cpu_seconds)
                seconds = pipeline_seconds(
                    store, params, out / "cold-table", cluster.scheduler_address
                )
                after = client.run(_cpu_seconds)
        results.append((how, seconds, sum(after[w] - before[w] for w in after)))
        shutil.rmtree(cache, ignore_errors=True)
    return results


def _trivial_task(i: int) -> list[dict]:
    """About 1 ms of Python, returning a row as large as a feature row."""
    total = 0
    for k in range(20_000):
        total += k
    return [{f"c{j}": float(j + total % 7) for j in range(130)}]


def bench_dask_floor(tasks: int = 1000) -> tuple[float, float, float]:
    """Dask's own cost per task here: (wall, worker CPU, client CPU) ms per task beyond the task.

    Trivial tasks on one warm worker of the embedded cluster, results
    fetched in batches as ``radflow run`` does: what any pipeline of one
    Dask task per ROI pays on this machine, whatever the task does.
    """
    from distributed import Client, as_completed

    from radflow.pipeline.clusters import local_cluster

    started = time.perf_counter()
    for i in range(tasks):
        _trivial_task(i)
    alone = (time.perf_counter() - started) / tasks
    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        client.gather(client.map(_trivial_task, range(50), pure=False))
        before, client_before = client.run(_cpu_seconds), _cpu_seconds()
        started = time.perf_counter()
        futures = client.map(_trivial_task, range(tasks), pure=False)
        for batch in as_completed(futures, loop=client.loop).batches():
            client.gather(batch)
        wall = (time.perf_counter() - started) / tasks
        after, client_after = client.run(_cpu_seconds), _cpu_seconds()
    worker = sum(after[w] - before[w] for w in after) / tasks
    return (
        1000 * (wall - alone),
        1000 * (worker - alone),
        1000 * (client_after - client_before) / tasks,
    )


def bench_duckdb(out: Path, rows: int = 10_000) -> tuple[float, float]:
    """Median seconds of a GROUP BY over ``rows`` synthetic rows, before and after compact."""
    import duckdb

    from radflow.params.pyradiomics_params import load_params, params_to_dict
    from radflow.pipeline.plan import feature_columns, feature_set_name
    from radflow.pipeline.table import TableWriter, compact, table_lock

    params = load_params(FULL)
    columns, fs = feature_columns(params), feature_set_name(params)
    table = out / "duckdb-table"
    shutil.rmtree(table, ignore_errors=True)
    rng = np.random.default_rng(0)
    per_case = 10
    stamp = dt.datetime.now(dt.UTC)
    with table_lock(table):
        writer = TableWriter(table, fs, columns, params_to_dict(params), "bench")
        for c in range(rows // per_case):
            case = f"D{c:05d}"
            batch = [
                {
                    "case_id": case,
                    "series_id": f"CT-{case}",
                    "roi": "gtv",
                    "label_key": "gtv",
                    "label": 1,
                    "image_type": f"wavelet-{k}",
                    "task_key": f"{case}-{k}",
                    "params_hash": fs[3:],
                    "input_fingerprint": "x",
                    "radflow_version": "bench",
                    "extracted_at": stamp,
                    **dict(zip(columns, rng.random(len(columns)).tolist())),
                }
                for k in range(per_case)
            ]
            writer.commit(f"SITE_{c % 5}", ("CT", "PT", "MR")[c % 3], case, batch, keep=())
    query = (
        "SELECT institution, modality, image_type, count(*), avg(glcm_Contrast), "
        "stddev(firstorder_Entropy) "
        f"FROM read_parquet('{table}/**/*.parquet', hive_partitioning=true) GROUP BY ALL"
    )

    def timed() -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            result = duckdb.sql(query).fetchall()
            times.append(time.perf_counter() - started)
            assert sum(r[3] for r in result) == rows
        return statistics.median(times)

    before = timed()
    compact(table)
    return before, timed()


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="small",
        help="case size (default: small, where fixed costs show most)",
    )
    parser.add_argument(
        "--params",
        choices=sorted(PARAMS),
        default="default",
        help="default: PyRadiomics' classes on Original (1 task per ROI); "
        "filters: also LoG (1, 3 mm) and the 8 wavelets (3 tasks per ROI)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="work folder (default: a temporary one)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each measurement this many times and keep the fastest (default 1)",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["overhead", "scaling", "floor", "duckdb"],
        choices=["overhead", "scaling", "floor", "duckdb", "calibrate", "scale", "cold"],
    )
    parser.add_argument(
        "--rois",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help="--parts scale: store sizes in ROIs (10 per series; default 1000 10000)",
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=None,
        help="write only this many cases and copy them under the other ids (quick; default all)",
    )
    parser.add_argument("--rois-per-series", type=int, default=10, help="--parts scale")
    parser.add_argument(
        "--reuse-table", action="store_true", help="--parts scale: keep a table made before"
    )
    parser.add_argument(
        "--cases-per-commit",
        type=int,
        default=256,
        help="--parts scale: cases per table commit (radflow run: up to 256; 1: a file per case)",
    )
    parser.add_argument(
        "--task-seconds",
        type=float,
        nargs="+",
        default=[None],
        help="radflow run's target Dask task duration(s) to measure (default: run's own; "
        "0: one unit per Dask task, as before packing)",
    )
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="radflow-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.parts == ["calibrate"]:
        calibrate(out)
        return
    if args.parts == ["scale"]:
        print(f"cores: {os.cpu_count()}, {_load()} at start")
        for r in bench_scale(
            out, args.rois, args.rois_per_series, args.cases_per_commit, args.reuse_table
        ):
            n = r["rois"]
            commit = r["commit_s"]
            commit = (
                "reused" if commit is None else f"{commit:.2f} s ({1e6 * commit / n:.0f} us/ROI)"
            )
            print(
                f"{n} ROIs ({r['series']} series): planning {r['plan_s']:.2f} s "
                f"({1e6 * r['plan_s'] / n:.0f} us/ROI), table commits {commit} into "
                f"{r['files']} files; incremental no-op end to end {r['noop_s']:.2f} s "
                f"({1e6 * r['noop_s'] / n:.0f} us/ROI; {r['cold_s']:.2f} s without the file "
                "index); memory: "
                f"plan {r['plan_mib']:.1f} MiB ({1024 * r['plan_mib'] / n:.2f} KiB/ROI), "
                f"no-op peak {r['noop_mib']:.1f} MiB ({1024 * r['noop_mib'] / n:.2f} KiB/ROI), "
                f"full run as extraction starts: peak {r['start_peak_mib']:.1f} MiB "
                f"({1024 * r['start_peak_mib'] / n:.2f} KiB/ROI), held "
                f"{r['start_held_mib']:.1f} MiB ({1024 * r['start_held_mib'] / n:.2f} KiB/ROI) "
                f"of Python objects   ({_load()})"
            )
        return
    store, warm = out / f"store-{args.size}-{args.cases}", out / f"warm-store-{args.size}"
    print(f"cores: {os.cpu_count()}, {_load()} at start (figures are void when load >> cores)")
    for folder, n, seed in ((store, args.cases, 0), (warm, 4, 1)):
        if not folder.is_dir():
            write_store(folder, n, seed=seed, size=args.size, distinct=args.distinct)

    from radflow.pipeline.plan import make_plan

    params = PARAMS[args.params]
    serial_seconds(warm, params)  # imports, kernels compiled or loaded in this process
    started = time.perf_counter()
    plan = make_plan(store, params)
    plan_s = time.perf_counter() - started
    tasks = len(plan.tasks)
    rois = len({(t.case, t.series, t.label_key, t.label) for t in plan.tasks})
    shape = SIZES[args.size][0]
    image_types = ", ".join(params.get("imageType", {"Original": {}}))
    print(
        f"{rois} ROIs ({args.cases} cases of {' x '.join(map(str, shape))} voxels, "
        f"size {args.size!r}); "
        f"feature classes {', '.join(FULL['featureClass'])} on {image_types}: {tasks} tasks"
    )
    print(
        f"  planning (client, metadata only)    {plan_s:7.2f} s   "
        f"({1000 * plan_s / rois:.1f} ms/ROI)"
    )
    if "overhead" in args.parts:
        serial_full = min(serial_seconds(store, params) for _ in range(args.repeat))
        serial_cpu = serial_seconds.cpu
        print(
            f"  plain loop in one process           {serial_full:7.2f} s   "
            f"{rois / serial_full:6.2f} ROIs/s   CPU {serial_cpu:.2f} s   ({_load()})"
        )
    for task_seconds in args.task_seconds:
        label = "default" if task_seconds is None else f"{task_seconds:g} s"
        print(f"radflow run, task_seconds {label}:")
        if {"overhead", "scaling"} & set(args.parts):
            one, cpu_one, client_one = bench_workers(
                store, warm, out, 1, params, args.repeat, task_seconds
            )
            print(
                f"  1 worker                            {one:7.2f} s   {rois / one:6.2f} ROIs/s   "
                f"Dask tasks {pipeline_seconds.size}   ({_load()})"
            )
        if "overhead" in args.parts:
            print(
                "  pipeline overhead, 1 worker         "
                f"{100 * (one - serial_full) / serial_full:7.1f} % "
                "of extraction time (target < 5 %): "
                f"{1000 * (one - serial_full) / tasks:.1f} ms per unit; in CPU time "
                f"(workers + client + scheduler vs the loop): "
                f"{100 * (cpu_one + client_one - serial_cpu) / serial_cpu:.1f} %"
            )
        if "scaling" in args.parts:
            two, cpu_two, client_two = bench_workers(
                store, warm, out, 2, params, args.repeat, task_seconds
            )
            print(
                f"  2 workers                           {two:7.2f} s   {rois / two:6.2f} ROIs/s   "
                f"({_load()})   speed-up {one / two:.2f}x (target >= 1.85x)"
            )
            print(
                f"  speed-up in CPU time (1 worker's CPU / the busiest of 2 workers' CPU): "
                f"{cpu_one / bench_workers.busiest:.2f}x: what 2 free cores would give, the "
                "client and scheduler aside"
            )
            print(
                f"  CPU per ROI in workers: {1000 * cpu_one / rois:.1f} ms (1 worker), "
                f"{1000 * cpu_two / rois:.1f} ms (2 workers): parallel efficiency "
                f"{100 * cpu_one / cpu_two:.0f} %"
            )
            print(
                f"  client + scheduler CPU: {1000 * client_one / rois:.2f} ms/ROI = "
                f"{100 * client_one / cpu_one:.1f} % (1 worker), {1000 * client_two / rois:.2f} "
                f"ms/ROI = {100 * client_two / cpu_two:.1f} % (2 workers) of the workers' CPU"
            )
    if "overhead" in args.parts:
        serial_small = min(serial_seconds(store, SMALLEST) for _ in range(args.repeat))
        one_small = bench_workers(store, warm, out, 1, SMALLEST, args.repeat)[0]
        print("smallest feature set (firstorder Mean on Original, no diagnostics; 1 unit per ROI):")
        print(
            f"  plain loop {serial_small:.2f} s, radflow run 1 worker {one_small:.2f} s: "
            f"{1000 * (one_small - serial_small) / rois:.1f} ms overhead per unit   ({_load()})"
        )
    if "cold" in args.parts:
        print("empty numba cache, 2 fresh worker processes:")
        for how, seconds, cpu in bench_cold(store, out, params):
            print(f"  {how:<24} {seconds:6.1f} s, workers' CPU {cpu:6.1f} s   ({_load()})")
    if "floor" in args.parts:
        wall, worker, client = bench_dask_floor()
        print(
            f"Dask's own cost per task here (1,000 trivial tasks, 1 worker): {wall:.1f} ms wall, "
            f"{worker:.1f} ms worker CPU, {client:.1f} ms client + scheduler CPU   ({_load()})"
        )
    if "duckdb" in args.parts:
        before, after = bench_duckdb(out)
        print(
            f"DuckDB GROUP BY over 10,000 rows: {1000 * before:.1f} ms (1,000 files), "
            f"{1000 * after:.1f} ms after compact   ({_load()})"
        )
    print(f"{_load()} at end; work folder: {out}")


if __name__ == "__main__":
    main()
