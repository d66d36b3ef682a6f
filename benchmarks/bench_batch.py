"""Batch CSV end to end: ``radflow extract BATCH.csv -j 2`` against ``pyradiomics BATCH.csv -j 2``.

24 CT cases (``common.tumour_case(seed)``, seeds 0-23: 100 x 512 x 512 int16 at 2.5 x 0.8 x
0.8 mm, a ~70,000-voxel tumour each, written once as uncompressed NRRD under ``--dir``),
PyRadiomics' default settings (no parameter file), both commands in fresh processes, the same
batch file, in one run:

- ``pyradiomics``: PyRadiomics 3.0.1's command (``-f csv -j 2``). PyRadiomics has no numba and
  no compiled-code cache, so an empty radflow kernel cache changes nothing for it: it is
  measured once per round and used for both ratios.
- ``radflow cold``: ``NUMBA_CACHE_DIR`` pointed at a new empty folder, so every kernel is
  compiled in this run (a machine whose kernel cache is empty).
- ``radflow warm``: the same command again on that folder, now filled.

Prints each wall time and the CPU time of the command's whole process tree (user + system,
workers included: steadier than wall time when other jobs share the machine), the ratios,
and checks both outputs: same rows, no failed row, the features of both within ``--rtol`` of
each other.

    .venv/bin/python benchmarks/bench_batch.py                   # 24 cases, 2 jobs
    .venv/bin/python benchmarks/bench_batch.py --rounds 2 --dir /tmp/cases
    .venv/bin/python benchmarks/bench_batch.py --radflow-src /tmp/old   # another checkout
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # benchmarks/, the script's folder, is first on sys.path
import SimpleITK as sitk

BIN = Path(sys.executable).parent
TARGETS = {"warm": 10.0, "cold": 4.0}


def write_cases(folder: Path, count: int) -> Path:
    """The batch file of `count` CT cases under `folder` (cases already there are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(count):
        image, mask = folder / f"ct{seed:02d}.nrrd", folder / f"ct{seed:02d}_label.nrrd"
        if not (image.exists() and mask.exists()):
            case = common.tumour_case(seed)
            sitk.WriteImage(case.mask, str(mask), True)  # a label map compresses to ~50 KB
            sitk.WriteImage(case.image, str(image), False)
        rows.append({"Image": image.name, "Mask": mask.name, "Case": f"ct{seed:02d}"})
    batch = folder / f"batch{count}.csv"
    with open(batch, "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["Image", "Mask", "Case"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return batch


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every process waited for
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `cmd` (CPU: its processes and every worker they waited for)."""
    cpu, start = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, _cpu() - cpu


def _radflow(batch: Path, out: Path, jobs: int) -> list[str]:
    code = "import sys; from radflow.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["extract", str(batch), "-o", str(out), "-j", str(jobs)]
    return [sys.executable, "-W", "ignore", "-c", code, *argv]


def _pyradiomics(batch: Path, out: Path, jobs: int) -> list[str]:
    return [str(BIN / "pyradiomics"), str(batch), "-o", str(out), "-f", "csv", "-j", str(jobs)]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _compare(ours: Path, theirs: Path, rtol: float) -> str:
    """Check both outputs hold the same cases and features; return a one-line summary."""
    a, b = _read(ours), _read(theirs)
    if [r["Case"] for r in a] != [r["Case"] for r in b]:
        raise SystemExit("radflow and PyRadiomics list different cases")
    failed = [r["Case"] for r in a if r["error"]]
    if failed:
        raise SystemExit(f"radflow failed on {failed}")
    features = [k for k in b[0] if k.startswith("original_")]
    worst = 0.0
    for x, y in zip(a, b):
        for key in features:
            u, v = float(x[key]), float(y[key])
            if math.isfinite(v):
                worst = max(worst, abs(u - v) / max(abs(v), 1e-300))
    if worst > rtol:
        raise SystemExit(f"largest relative difference {worst:.1e} > {rtol:g}")
    return f"{len(a)} rows, {len(features)} features, largest relative difference {worst:.1e}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the three commands")
    parser.add_argument("--dir", type=Path, help="folder of the cases (default: a temporary one)")
    parser.add_argument("--radflow-src", help="run radflow from this checkout (PYTHONPATH)")
    parser.add_argument("--no-pyradiomics", action="store_true", help="radflow only")
    parser.add_argument("--rtol", type=float, default=1e-6, help="feature agreement checked")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = args.dir or tmp / "cases"
        start = time.perf_counter()
        batch = write_cases(folder, args.cases)
        print(f"{args.cases} cases in {folder} ({time.perf_counter() - start:.0f} s to prepare)")
        env = dict(os.environ)
        if args.radflow_src:
            env["PYTHONPATH"] = args.radflow_src
        times: dict[str, list[tuple[float, float]]] = {"pyradiomics": [], "cold": [], "warm": []}
        for round_ in range(args.rounds):
            load = os.getloadavg()[0]
            if not args.no_pyradiomics:
                theirs = tmp / "pyradiomics.csv"
                theirs.unlink(missing_ok=True)  # PyRadiomics appends to -o
                times["pyradiomics"].append(_run(_pyradiomics(batch, theirs, args.jobs), env, tmp))
            cache = tmp / f"numba-cache-{round_}"
            cache.mkdir()
            ours = tmp / "radflow.csv"
            cache_env = {**env, "NUMBA_CACHE_DIR": str(cache)}
            for name in ("cold", "warm"):
                times[name].append(_run(_radflow(batch, ours, args.jobs), cache_env, tmp))
            line = f"round {round_ + 1}: load {load:.1f} before;"
            line += " ".join(
                f" {k} {v[-1][0]:.1f} s (CPU {v[-1][1]:.1f} s)" for k, v in times.items() if v
            )
            if times["pyradiomics"]:
                theirs_s = times["pyradiomics"][-1][0]
                line += "; ratios " + ", ".join(
                    f"{k} {theirs_s / times[k][-1][0]:.1f}x" for k in ("cold", "warm")
                )
            print(line)
            if not args.no_pyradiomics:
                print("  outputs:", _compare(ours, theirs, args.rtol))
        best = {name: min(t) for name, t in times.items() if t}  # by wall time
        print(f"\nbest of {args.rounds} round(s), {args.cases} cases, {args.jobs} jobs:")
        for name, (seconds, cpu) in best.items():
            label = name if name == "pyradiomics" else f"radflow {name}"
            print(f"  {label:16s} {seconds:7.1f} s  CPU {cpu:7.1f} s")
        if "pyradiomics" in best:
            for name in ("warm", "cold"):
                ratio = best["pyradiomics"][0] / best[name][0]
                cpu_ratio = best["pyradiomics"][1] / best[name][1]
                print(
                    f"  ratio {name:5s} {ratio:6.1f} x wall, {cpu_ratio:6.1f} x CPU "
                    f"(target >= {TARGETS[name]:g} x)"
                )


if __name__ == "__main__":
    main()
