"""Habitats on the demo store: the fit, ``habitats apply`` and the habitat features, per ROI.

Real habitat maps, made the way ``radflow demo`` makes them (:mod:`radflow.demo.scenario`): a
synthetic archive of ``--patients`` patients (seed 0, 3 institutions,
:func:`radflow.demo.synthetic.write_demo_archive`) is ingested into a store in a temporary
folder (the demo key), the PET GTVs are segmented (:func:`~radflow.demo.scenario.segment_pet`,
as the demo does: the store then holds what ``radflow demo`` would), and the demo's habitat model
(two-stage, K = :data:`~radflow.demo.scenario.HABITAT_COUNT` unless ``--n-habitats``, seed 0,
the demo's minimum piece size) is fitted on the CT+PET voxels of every CT GTV and applied. Timed:

(c) the fit (:func:`radflow.pipeline.habitats.fit`: reading the GTV boxes of CT and PET, PET
    resampled onto the CT grid, and the estimator's fit), wall and CPU time of this process, and
    the voxels fitted on;
(b) ``habitats apply`` (:func:`radflow.pipeline.habitats.apply`) on an embedded cluster of
    ``--workers`` processes started beforehand (its start timed apart), twice: on fresh workers
    (first import and model load on each worker) and again on the same workers, not incremental;
    wall / ROIs, and the CPU time of the workers and of this process (the client writes the maps).
    The summary has no per-task times, so each unit's task (:func:`~radflow.pipeline.habitats
    .habitat_task`: read the channels, ``predict_roi``) is also timed here in this process, one
    after another, with the read and the prediction apart;
(a) :func:`radflow.features.habitat.habitat_features` on each stored habitat map (the label
    ``gtv_habitats``, cropped to its box as the extraction gives it), best of ``--repeat`` calls.

CPU times are ``time.process_time`` (user + system of the process; of each worker through
``Client.run``): the machine is shared, so wall times depend on the load, CPU times less so.

``--large`` adds the per-family benchmarks' ~70,000-voxel tumour (:func:`common.cropped_case`),
CT only, so no CT+PET model applies to it: its map is a stand-in (the CT smoothed by a 1-voxel
Gaussian, cut at its K-quantiles). It is kept only to show how ``habitat_features`` grows with
the ROI: the demo GTVs stop at ~10,000 voxels.

Run::

    python benchmarks/bench_habitat.py [--patients 12] [--workers 2] [--repeat 20] [--large]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import distributed
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# After the sys.path line: benchmarks/ is not a package (see bench_extract.py).
import common  # noqa: E402

from radflow.demo.scenario import (  # noqa: E402
    HABITAT_CHANNELS,
    HABITAT_COUNT,
    HABITAT_ROI,
    INSTITUTIONS,
    demo_key_file,
    habitat_min_size_mm3,
    segment_pet,
)
from radflow.demo.synthetic import write_demo_archive  # noqa: E402
from radflow.features.habitat import habitat_features  # noqa: E402
from radflow.model.habitat import HabitatModel  # noqa: E402
from radflow.pipeline import habitats  # noqa: E402
from radflow.pipeline.clusters import local_cluster  # noqa: E402
from radflow.pipeline.ingest import ingest_archive  # noqa: E402
from radflow.store.habitats import habitat_key  # noqa: E402
from radflow.store.read import read_box, roi_bbox  # noqa: E402


class Clock:
    """Wall and CPU time (this process) of a block."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def stats(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"median {np.median(values):.3g}, max {values.max():.3g}"


def stored_map(unit: habitats.HabitatUnit) -> tuple[np.ndarray, tuple[float, ...]]:
    """A unit's stored habitat map in its box (the extraction's crop), and its spacing."""
    key = habitat_key(unit.roi)
    box = roi_bbox(unit.store, unit.case, unit.series, key)
    label = read_box(unit.store, unit.case, unit.series, box, key=key)
    return np.asarray(label.values), tuple(float(s) for s in label.attrs["spacing_zyx"])


def features_time(habitat_map, spacing_zyx, n_habitats: int, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU time of ``repeat`` calls (ms)."""
    walls, cpus = [], []
    for _ in range(repeat):
        with Clock() as clock:
            habitat_features(habitat_map, spacing_zyx, n_habitats)
        walls.append(clock.wall)
        cpus.append(clock.cpu)
    return 1e3 * min(walls), 1e3 * min(cpus)


def quantile_map(values: np.ndarray, roi: np.ndarray, n_habitats: int) -> np.ndarray:
    """Stand-in habitat map (``--large`` only): smoothed values cut at their K-quantiles."""
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(roi))
    values, roi = ndimage.gaussian_filter(values[box].astype(np.float64), 1.0), roi[box]
    cuts = np.quantile(values[roi], np.arange(1, n_habitats) / n_habitats)
    out = np.zeros(roi.shape, dtype=np.uint8)
    out[roi] = 1 + np.searchsorted(cuts, values[roi], side="right")
    return out


def worker_cpu(client) -> float:
    return sum(client.run(time.process_time).values())


def build_store(folder: Path, patients: int) -> Path:
    archive, store = folder / "archive", folder / "store"
    with Clock() as clock:
        write_demo_archive(archive, patients=patients, seed=0, institutions=INSTITUTIONS)
    print(f"archive: {patients} patients, {clock.wall:.1f} s")
    with Clock() as clock:
        summary = ingest_archive(
            archive, store, key_file=demo_key_file(folder), jobs=1, progress=False
        )
    print(f"ingest: {summary.ingested} series, {summary.failed} failed, {clock.wall:.1f} s")
    errors = segment_pet(store)
    print(f"PET segmentation: {len(errors)} series without a GTV")
    return store


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-habitats", type=int, default=HABITAT_COUNT)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    args = parser.parse_args(argv)
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")

    with tempfile.TemporaryDirectory(prefix="bench-habitat-") as tmp:
        folder = args.keep or Path(tmp)
        store = build_store(folder, args.patients)
        model_file = folder / "habitats.joblib"

        # (c) the fit
        estimator = HabitatModel(
            args.n_habitats,
            method="two-stage",
            min_size_mm3=habitat_min_size_mm3(store),
            random_state=0,
        )
        with Clock() as fit_clock:
            fitted = habitats.fit(store, HABITAT_ROI, HABITAT_CHANNELS, estimator, model_file)
        print(
            f"\n(c) fit: {len(fitted.cases)} GTVs, {fitted.voxels} voxels x "
            f"{len(HABITAT_CHANNELS)} channels, K = {fitted.n_habitats}: wall "
            f"{fit_clock.wall:.2f} s, CPU {fit_clock.cpu:.2f} s; "
            f"{len(fitted.missing)} case(s) left out"
        )

        # (b) apply on an embedded cluster, per ROI
        with Clock() as start_clock:
            cluster = local_cluster(args.workers)
        print(f"\n(b) cluster of {args.workers} workers started in {start_clock.wall:.1f} s")
        with cluster, distributed.Client(cluster.scheduler_address) as client:
            for run in ("fresh workers", "same workers"):
                before = worker_cpu(client)
                with Clock() as clock:
                    applied = habitats.apply(
                        store, model_file, scheduler=cluster.scheduler_address, progress=False
                    )
                cpu = worker_cpu(client) - before
                n = max(applied.written, 1)
                print(
                    f"apply, {run}: {applied.written} maps written, {applied.failed} failed, "
                    f"wall {clock.wall:.2f} s = {1e3 * clock.wall / n:.0f} ms per ROI; CPU "
                    f"workers {cpu:.2f} s + client {clock.cpu:.2f} s = "
                    f"{1e3 * (cpu + clock.cpu) / n:.0f} ms per ROI"
                )

        units, _ = habitats.plan_units(store, HABITAT_ROI, HABITAT_CHANNELS)
        artefact = habitats.load_model(model_file)
        model, channels = artefact["model"], tuple(artefact["channels"])
        reads, predicts = [], []
        for unit in units:
            with Clock() as read_clock:
                values, roi, spacing, _ = habitats.read_channels(unit, channels)
            with Clock() as predict_clock:
                model.predict_roi(values, roi, spacing)
            reads.append((read_clock.wall, read_clock.cpu))
            predicts.append((predict_clock.wall, predict_clock.cpu))
        reads, predicts = 1e3 * np.array(reads), 1e3 * np.array(predicts)
        print(
            f"per task, in this process ({len(units)} ROIs, ms): read channels wall "
            f"{stats(reads[:, 0])}, CPU {stats(reads[:, 1])}; predict_roi wall "
            f"{stats(predicts[:, 0])}, CPU {stats(predicts[:, 1])}"
        )

        # (a) habitat features on each stored map
        maps = [(unit.case, *stored_map(unit)) for unit in units]
        habitat_features(maps[0][1], maps[0][2], args.n_habitats)  # warm caches
        print(
            f"\n(a) habitat_features, K = {args.n_habitats}, best of {args.repeat}\n"
            f"{'case':<14} {'voxels':>7} {'box':>12} {'present':>8} {'components':>11} "
            f"{'ITH':>6} {'wall ms':>8} {'CPU ms':>7}"
        )
        rows = []
        for case, habitat_map, spacing in maps:
            wall, cpu = features_time(habitat_map, spacing, args.n_habitats, args.repeat)
            out = habitat_features(habitat_map, spacing, args.n_habitats)
            ks = range(1, args.n_habitats + 1)
            components = sum(int(out[f"Components_{k}"]) for k in ks)
            present = sum(int(out[f"Volume_{k}"] > 0) for k in ks)
            voxels = int(np.count_nonzero(habitat_map))
            rows.append((voxels, wall, cpu, components))
            print(
                f"{case:<14} {voxels:>7} {'x'.join(map(str, habitat_map.shape)):>12} "
                f"{present:>8} {components:>11} {out['ITHScore']:>6.3f} {wall:>8.3f} {cpu:>7.3f}"
            )
        voxels, wall, cpu, components = np.array(rows, dtype=np.float64).T
        print(
            f"{len(rows)} stored maps, {int(voxels.min())}-{int(voxels.max())} voxels (median "
            f"{int(np.median(voxels))}), {int(components.min())}-{int(components.max())} "
            f"components: wall {stats(wall)} ms, CPU {stats(cpu)} ms per ROI"
        )

    if args.large:
        image, mask, spacing = common.cropped_case()
        stand_in = quantile_map(image, mask.astype(bool), args.n_habitats)
        wall, cpu = features_time(stand_in, spacing, args.n_habitats, max(3, args.repeat // 4))
        print(
            f"large tumour (stand-in map): {int(np.count_nonzero(stand_in))} voxels, box "
            f"{'x'.join(map(str, stand_in.shape))}: wall {wall:.3f} ms, CPU {cpu:.3f} ms"
        )
    print(f"load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
