"""Whole-command start-up: ``radflow extract IMAGE MASK`` against ``pyradiomics IMAGE MASK``.

What a user meets for one small case: a fresh process that imports, reads two NIfTI files,
extracts PyRadiomics' default features and prints them. Both commands run alternately in fresh
processes on the same files; the first run of each is a warm-up (numba cache filled, files in
the page cache) and is not counted. Prints the median wall time of each, the ratio, and which
store/cluster/table/model libraries each radflow process had loaded.

    .venv/bin/python benchmarks/bench_startup.py --runs 10
    .venv/bin/python benchmarks/bench_startup.py --radflow-src /tmp/old   # another checkout
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

HEAVY = ("zarr", "xarray", "dask", "distributed", "pandas", "pyarrow", "sklearn", "matplotlib")
BIN = Path(sys.executable).parent


def write_case(folder: Path) -> tuple[Path, Path]:
    """A small MR-like case: 24 x 128 x 128 float32 at 1 x 1 x 3 mm, a ~3,000-voxel ROI."""
    rng = np.random.default_rng(0)
    shape = (24, 128, 128)
    values = ndimage.gaussian_filter(rng.normal(size=shape), 1.0) * 80 + 400
    z, y, x = np.ogrid[tuple(slice(0, n) for n in shape)]
    roi = ((z - 12) / 4.0) ** 2 + ((y - 60) / 12.0) ** 2 + ((x - 70) / 14.0) ** 2 <= 1.0
    image = sitk.GetImageFromArray(values.astype(np.float32))
    mask = sitk.GetImageFromArray(roi.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing((1.0, 1.0, 3.0))
    paths = folder / "mr.nii.gz", folder / "mr_label.nii.gz"
    sitk.WriteImage(image, str(paths[0]))
    sitk.WriteImage(mask, str(paths[1]))
    return paths


def _radflow(image: Path, mask: Path) -> list[str]:
    probe = (
        "import sys; from radflow.cli import main; code = main(sys.argv[1:]); "
        f"print('LOADED', ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr); "
        "sys.exit(code)"
    )
    return [sys.executable, "-c", probe, "extract", str(image), str(mask)]


def _time(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
    # cwd outside any checkout: `python -c` puts the working directory first on sys.path.
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=True)
    return time.perf_counter() - start, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs of each command")
    parser.add_argument("--radflow-src", help="run radflow from this checkout (PYTHONPATH)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.radflow_src:
        env["PYTHONPATH"] = args.radflow_src
    with tempfile.TemporaryDirectory() as tmp:
        image, mask = write_case(Path(tmp))
        commands = {
            "radflow extract": _radflow(image, mask),
            "pyradiomics": [str(BIN / "pyradiomics"), str(image), str(mask)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        loaded = ""
        for run in range(args.runs + 1):
            for name, cmd in commands.items():
                seconds, stderr = _time(cmd, env, tmp)
                if run:
                    times[name].append(seconds)
                if name == "radflow extract":
                    lines = stderr.splitlines()
                    loaded = next((ln[7:] for ln in lines if ln.startswith("LOADED ")), "")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(
            f"{name:16s} median {median:.3f} s over {args.runs} runs "
            f"(min {min(times[name]):.3f}, max {max(times[name]):.3f})"
        )
    ratio = medians["pyradiomics"] / medians["radflow extract"]
    print(f"pyradiomics / radflow: {ratio:.2f}x")
    print(f"heavy libraries loaded by radflow extract: {loaded or 'none'}")


if __name__ == "__main__":
    main()
