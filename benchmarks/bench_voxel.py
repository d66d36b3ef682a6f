"""Voxel mode (feature maps): radflow against PyRadiomics 3.0.1 and flash-radiomics 1.0 (CPU).

The case: :func:`common.tumour_case`'s textured CT tumour, its ROI narrowed to the ellipsoid of
semi-axes 12 x 25 x 25 voxels inside it (about 31,000 voxels; the texture around it is still
tumour, so unmasked kernels see texture too), the image and mask cropped to the ROI's box grown
by 8 voxels (every tool crops to the box grown by ``kernelRadius`` itself; the crop only keeps
the whole-volume diagnostics of a 100 x 512 x 512 volume out of the timings). All three tools
get the same SimpleITK images in memory, the same settings (Original image, binWidth 25, one
feature class, ``voxelSetting: {kernelRadius: r, maskedKernel: m}``, every non-deprecated
feature of the class) and are timed per class and configuration:

- radflow: ``radflow.extract(image, mask, params, voxel_based=True)``, numba kernels warm
  (compiled/loaded on a small case first), best of ``--repeat``;
- PyRadiomics 3.0.1: ``RadiomicsFeatureExtractor(params).execute(image, mask,
  voxelBased=True)``, one run;
- flash-radiomics 1.0.0: ``RadiomicsFeatureExtractor(params, backend="cpu",
  num_threads=--flash-threads)``, ``preprocess_case(..., spatialMode=True)`` then
  ``extract_from_preprocessed`` (its ``execute`` minus the HDF5 file it always writes), one run
  after a warm-up on a small case. ``--flash-threads`` defaults to 1: radflow and PyRadiomics
  use one core per task.

Each run is a child process (``--child``) that reports its time (wall clock, or with ``--clock
cpu`` the process's CPU time over all its threads, steadier when other jobs share the machine;
the wall time is printed beside it) and its peak RSS above the
RSS before the call (Linux VmHWM reset just before; the case and the warm-up are already
resident), and saves the values of its maps at the ROI voxels; the parent compares them: the
largest relative difference of radflow from PyRadiomics (the oracle), and of flash-radiomics
from PyRadiomics (reported, not asserted; NaN where PyRadiomics has NaN counts as agreement).
"Six together" is the sum of the six per-class runs.

``--ops`` prints the arithmetic a first-order kernel and the 13 GLCM matrices of a kernel need
per voxel (the floor: for GLCM from the pairs, non-zero cells and grey levels measured on a
sample of the case's kernels) beside radflow's measured time per voxel.

Run::

    python benchmarks/bench_voxel.py [--classes firstorder glcm ...] [--radius 1 2 3]
        [--masked] [--unmasked] [--tools radflow pyradiomics flash] [--repeat 3]
        [--flash-threads 1] [--ops] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# After the sys.path line: benchmarks/ is not a package (see bench_extract.py).
import common  # noqa: E402

CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
TOOLS = ("radflow", "pyradiomics", "flash")
ROI_RADII_ZYX = (12, 25, 25)
MARGIN = 8
TARGET = 50.0


def voxel_case() -> tuple[sitk.Image, sitk.Image]:
    """The benchmark case of voxel mode (about 31,000 ROI voxels), cropped as described above."""
    case = common.tumour_case()
    mask = sitk.GetArrayFromImage(case.mask)
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in mask.shape)]
    inside = (
        sum(
            ((v - c) / r) ** 2
            for v, c, r in zip((zz, yy, xx), common.CENTRE_ZYX, ROI_RADII_ZYX, strict=True)
        )
        <= 1.0
    )
    mask = (mask.astype(bool) & inside).astype(np.uint8)
    box = tuple(
        slice(max(int(a.min()) - MARGIN, 0), int(a.max()) + 1 + MARGIN) for a in np.nonzero(mask)
    )
    image = sitk.GetArrayFromImage(case.image)[box]
    origin = case.image.TransformIndexToPhysicalPoint(tuple(int(s.start) for s in box[::-1]))
    out = []
    for array in (image, mask[box]):
        img = sitk.GetImageFromArray(np.ascontiguousarray(array))
        img.SetSpacing(case.image.GetSpacing())
        img.SetDirection(case.image.GetDirection())
        img.SetOrigin(origin)
        out.append(img)
    return out[0], out[1]


def params(feature_class: str, radius: int, masked: bool) -> dict:
    return {
        "setting": {"binWidth": 25, "label": 1},
        "voxelSetting": {"kernelRadius": radius, "maskedKernel": masked, "initValue": 0},
        "imageType": {"Original": {}},
        "featureClass": {feature_class: None},
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _small_case() -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.integers(-100, 200, size=(8, 12, 12)).astype(np.int16))
    mask = np.zeros((8, 12, 12), dtype=np.uint8)
    mask[2:6, 3:9, 3:9] = 1
    mask_image = sitk.GetImageFromArray(mask)
    mask_image.CopyInformation(image)
    return image, mask_image


def _runner(tool: str, flash_threads: int):
    """A function (image, mask, params) -> {key: sitk map} for the tool."""
    if tool == "radflow":
        import radflow

        return lambda image, mask, p: radflow.extract(image, mask, p, voxel_based=True)
    if tool == "pyradiomics":
        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        return lambda image, mask, p: featureextractor.RadiomicsFeatureExtractor(p).execute(
            image, mask, voxelBased=True
        )
    from flash_radiomics import featureextractor as flash_extractor

    logging.getLogger("flash_radiomics").setLevel(logging.ERROR)

    def run(image, mask, p):
        extractor = flash_extractor.RadiomicsFeatureExtractor(
            p, backend="cpu", num_threads=flash_threads
        )
        case = extractor.preprocess_case(image, mask, label=1, spatialMode=True)
        return extractor.extract_from_preprocessed(case)

    return run


def _roi_values(result: dict, mask: sitk.Image) -> dict[str, np.ndarray]:
    """Each map's values at the ROI voxels (in the mask's index order)."""
    roi = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    spacing = np.array(mask.GetSpacing()[::-1])
    out = {}
    for key, value in result.items():
        if not isinstance(value, sitk.Image) or key.startswith("diagnostics_"):
            continue
        offset = np.rint(
            (np.array(value.GetOrigin()[::-1]) - np.array(mask.GetOrigin()[::-1])) / spacing
        ).astype(int)
        array = sitk.GetArrayViewFromImage(value)
        index = roi - offset
        out[key] = np.asarray(array[tuple(index.T)], dtype=np.float64)
    return out


def _child(tool, feature_class, radius, masked, repeat, flash_threads, out_path, clock) -> None:
    image, mask = voxel_case()
    run = _runner(tool, flash_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = _small_case()
        run(*small, params(feature_class, radius, masked))  # numba / libraries loaded
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak (VmHWM) to the current RSS
        base = _status_kib("VmRSS")
        times = []
        result = None
        for _ in range(repeat):
            result = None
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run(image, mask, params(feature_class, radius, masked))
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        peak = (_status_kib("VmHWM") - base) / 1024.0
    values = _roi_values(result, mask)
    np.savez(out_path, **values)
    wall, cpu = min(times, key=lambda t: t[0] if clock == "wall" else t[1])
    seconds = wall if clock == "wall" else cpu
    report = {"seconds": seconds, "wall": wall, "cpu": cpu, "peak_mib": peak, "maps": len(values)}
    print(json.dumps(report))


def _measure(tool, feature_class, radius, masked, repeat, flash_threads, directory, clock):
    out_path = os.path.join(directory, f"{tool}_{feature_class}_{radius}_{int(masked)}.npz")
    command = [sys.executable, "-W", "ignore", __file__, "--child", tool, feature_class]
    command += [str(radius), str(int(masked)), str(repeat), str(flash_threads), out_path, clock]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out_path) as data:
        report["values"] = {k: data[k] for k in data.files}
    return report


def _short(key: str) -> str:
    return key.split("_", 1)[1] if key.startswith("original_") else key


def _compare(values: dict, reference: dict) -> tuple[float, str, int, list[str], int]:
    """Largest relative difference over the maps both have and its map, maps compared, the
    maps differing by more than 1e-6 somewhere, maps missing."""
    worst, where, compared, differing = 0.0, "", 0, []
    for key, ref in reference.items():
        if key not in values:
            continue
        got = values[key]
        compared += 1
        both_nan = np.isnan(ref) & np.isnan(got)
        diff = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12)
        diff = np.where(both_nan, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        top = float(diff.max()) if diff.size else 0.0
        if top > 1e-6:
            differing.append(_short(key).split("_", 1)[-1])
        if top > worst:
            worst, where = top, _short(key)
    return worst, where, compared, differing, len(set(reference) - set(values))


def kernel_counts(radius: int, masked: bool) -> tuple[float, float]:
    """Mean number of voxels and of distinct grey levels (binWidth 25) in a kernel of the
    case's ROI voxels."""
    from scipy import ndimage

    image, mask = voxel_case()
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    roi = sitk.GetArrayFromImage(mask) > 0
    region = roi if masked else np.ones_like(roi)
    low = values[region].min()
    binned = np.floor(values / 25.0) - np.floor(low / 25.0) + 1
    size = 2 * radius + 1
    box = np.ones((size, size, size))
    voxels = ndimage.correlate(region.astype(np.float64), box, mode="constant")
    levels = np.zeros(values.shape)
    for level in np.unique(binned[region]):
        present = region & (binned == level)
        levels += ndimage.maximum_filter(present, size=size, mode="constant")
    return float(voxels[roi].mean()), float(levels[roi].mean())


def firstorder_ops(n: float, levels: float) -> dict[str, int]:
    """Floating-point operations one first-order kernel needs per voxel (the floor).

    ``n`` values in the kernel, ``levels`` distinct grey levels among them. Counted per
    feature group as the cheapest exact evaluation does it, each kernel on its own (the mean
    first, then centred moments, as PyRadiomics defines them): an add, multiply, compare or
    divide is one operation, a log about 20.
    """
    return {
        "sum, mean": round(n + 1),
        "centred moments 2-4 (sub, 3 mul, 3 add)": round(7 * n + 6),
        "energy (shift, square, add)": round(3 * n),
        "mean absolute deviation": round(3 * n),
        "order statistics (sort: n log2 n compares)": round(n * np.log2(n)),
        "robust MAD (range test, mean, |x - m|)": round(7 * n),
        "histogram (n), entropy, uniformity (a log per level)": round(n + levels * (1 + 20 + 4)),
        "min, max, range, RMS, kurtosis/skewness ratios": 20,
    }


def _binned_case(masked: bool):
    """The case's grey levels (binWidth 25 over the discretisation region), the kernel region
    and the ROI, as the first-order floor reads them."""
    image, mask = voxel_case()
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    roi = sitk.GetArrayFromImage(mask) > 0
    region = roi if masked else np.ones_like(roi)
    low = values[region].min()
    binned = (np.floor(values / 25.0) - np.floor(low / 25.0) + 1).astype(np.int64)
    return binned, region, roi


def glcm_kernel_counts(radius: int, masked: bool, sample: int = 1500) -> dict[str, float]:
    """Per ROI voxel (mean over an even sample of ``sample`` ROI voxels), summed over the 13
    offsets of distance 1: the pairs a symmetric GLCM counts, its non-zero cells, the grey
    levels present in each matrix (sum of n and of n^3, the size MCC's eigen-solver works on),
    and the distinct grey levels of the kernel (mean)."""
    binned, region, roi = _binned_case(masked)
    centres = np.argwhere(roi)
    centres = centres[np.linspace(0, len(centres) - 1, min(sample, len(centres))).astype(int)]
    steps = [
        (dz, dy, dx)
        for dz in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dz, dy, dx) > (0, 0, 0)
    ]
    shape = np.array(binned.shape)
    totals = dict.fromkeys(("pairs", "entries", "levels", "levels_cubed", "kernel_levels"), 0.0)
    for centre in centres:
        lo = np.maximum(centre - radius, 0)
        hi = np.minimum(centre + radius + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        levels, inside = binned[box], region[box]
        totals["kernel_levels"] += len(np.unique(levels[inside]))
        n_levels = int(levels.max()) + 1
        for step in steps:
            here = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(step, levels.shape))
            there = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(step, levels.shape))
            both = inside[here] & inside[there]
            i, j = levels[here][both], levels[there][both]
            cells = np.unique(np.concatenate((i * n_levels + j, j * n_levels + i)))
            n = len(np.unique(np.concatenate((i, j))))
            totals["pairs"] += len(i)
            totals["entries"] += len(cells)
            totals["levels"] += n
            totals["levels_cubed"] += n**3
    return {key: value / len(centres) for key, value in totals.items()}


def glcm_ops(counts: dict[str, float]) -> dict[str, int]:
    """Floating-point operations the 13 GLCM matrices of one kernel need (the floor), from
    :func:`glcm_kernel_counts`: counting (a pair adds to two cells: ~4 operations), the
    features from each non-zero cell (two passes: ~30 operations), from each grey level of
    the marginals and of the sum/difference distributions (a log2 each, ~20, plus ~10), and
    MCC's symmetric eigen-solver (Householder tridiagonalisation 4/3 n^3 for n levels, the
    iteration for the extreme eigenvalues ~60 n)."""
    return {
        "count pairs (2 cells each)": round(4 * counts["pairs"]),
        "features from the non-zero cells (2 passes)": round(30 * counts["entries"]),
        "marginals + sum/difference distributions (5 logs per level)": round(
            5 * 30 * counts["levels"]
        ),
        "MCC: build C (cells), tridiagonalise (4/3 n^3)": round(
            4 / 3 * counts["levels_cubed"] + counts["entries"]
        ),
        "MCC: extreme eigenvalues (~60 n)": round(60 * counts["levels"]),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="+", choices=CLASSES, default=list(CLASSES))
    parser.add_argument("--radius", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--masked", action="store_true", help="masked kernels (default: both)")
    parser.add_argument("--unmasked", action="store_true", help="unmasked kernels")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--repeat", type=int, default=3, help="radflow runs (best taken)")
    parser.add_argument("--flash-threads", type=int, default=1)
    parser.add_argument("--ops", action="store_true", help="print the first-order and GLCM floors")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time reported: wall clock, or the process's CPU time (all its threads; steadier "
        "when other jobs share the machine)",
    )
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tool, feature_class, radius, masked, repeat, threads, out_path, clock = args.child
        _child(
            tool,
            feature_class,
            int(radius),
            masked == "1",
            int(repeat),
            int(threads),
            out_path,
            clock,
        )
        return
    modes = [m for m, on in ((True, args.masked), (False, args.unmasked)) if on] or [True, False]
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log file as it comes

    image, mask = voxel_case()
    n_roi = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    print(
        f"case: {image.GetSize()[::-1]} (z, y, x) int16 CT crop, ROI {n_roi} voxels; "
        f"load average {os.getloadavg()[0]:.2f}; flash threads {args.flash_threads}; "
        f"clock {args.clock}"
    )
    radflow_per_voxel = {}
    with tempfile.TemporaryDirectory() as directory:
        for masked in modes:
            for radius in args.radius:
                label = f"kernelRadius {radius}, {'masked' if masked else 'unmasked'}"
                print(f"\n[{label}]  (seconds; peak MiB; ratio = other / radflow)")
                totals = dict.fromkeys(args.tools, 0.0)
                complete = dict.fromkeys(args.tools, True)
                for feature_class in args.classes:
                    runs = {
                        tool: _measure(
                            tool,
                            feature_class,
                            radius,
                            masked,
                            args.repeat if tool == "radflow" else 1,
                            args.flash_threads,
                            directory,
                            args.clock,
                        )
                        for tool in args.tools
                    }
                    cells = []
                    for tool in args.tools:
                        run = runs[tool]
                        if "error" in run:
                            complete[tool] = False
                            cells.append(f"{tool} FAILED ({run['error'][0][:80]})")
                            continue
                        totals[tool] += run["seconds"]
                        cell = f"{tool} {run['seconds']:8.3f} s {run['peak_mib']:6.0f} MiB"
                        if args.clock == "cpu":
                            cell += f" (wall {run['wall']:.3f} s)"
                        if tool != "radflow" and "seconds" in runs.get("radflow", {}):
                            cell += f" {run['seconds'] / runs['radflow']['seconds']:6.1f}x"
                        cells.append(cell)
                    print(f"  {feature_class:10s} " + " | ".join(cells))
                    if "seconds" in runs.get("radflow", {}):
                        radflow_per_voxel[(feature_class, radius, masked)] = (
                            runs["radflow"]["seconds"] / n_roi
                        )
                    reference = runs.get("pyradiomics", {}).get("values")
                    if reference:
                        for tool in ("radflow", "flash"):
                            if "values" not in runs.get(tool, {}):
                                continue
                            worst, where, compared, differing, missing = _compare(
                                runs[tool]["values"], reference
                            )
                            print(
                                f"  {'':10s} {tool} vs PyRadiomics: {compared} maps, "
                                f"largest relative difference {worst:.1e} ({where})"
                                + (f", {missing} maps missing" if missing else "")
                                + (
                                    f"; > 1e-6 in {len(differing)}: {' '.join(differing)}"
                                    if differing
                                    else ""
                                )
                            )
                if "radflow" in totals and all(complete.values()):
                    line = " | ".join(f"{t} {s:8.3f} s" for t, s in totals.items())
                    ratios = " | ".join(
                        f"{t}/radflow {s / totals['radflow']:.1f}x"
                        for t, s in totals.items()
                        if t != "radflow"
                    )
                    print(f"  {'six' if len(args.classes) == 6 else 'together':10s} {line}")
                    print(f"  {'':10s} {ratios} (target >= {TARGET:g}x)")

    if args.ops and "glcm" in args.classes:
        for radius in args.radius:
            for masked in modes:
                counts = glcm_kernel_counts(radius, masked)
                ops = glcm_ops(counts)
                total = sum(ops.values())
                print(
                    f"\nglcm floor, kernelRadius {radius}, {'masked' if masked else 'unmasked'} "
                    f"(per voxel, 13 offsets: {counts['pairs']:.0f} pairs, "
                    f"{counts['entries']:.0f} non-zero cells, "
                    f"{counts['levels'] / 13:.1f} grey levels per matrix, "
                    f"{counts['kernel_levels']:.1f} per kernel): {total} operations per voxel"
                )
                for what, count in ops.items():
                    print(f"  {what:58s} {count:6d}")
                seconds = radflow_per_voxel.get(("glcm", radius, masked))
                if seconds:
                    print(
                        f"  radflow {'masked' if masked else 'unmasked'}: "
                        f"{seconds * 1e9:.0f} ns per voxel = "
                        f"{seconds * 1e9 / total:.2f} ns per operation "
                        "(one core does ~0.1-0.3 ns per scalar operation)"
                    )
    if args.ops and "firstorder" in args.classes:
        for radius in args.radius:
            for masked in modes:
                n, levels = kernel_counts(radius, masked)
                ops = firstorder_ops(n, levels)
                total = sum(ops.values())
                print(
                    f"\nfirstorder floor, kernelRadius {radius}, "
                    f"{'masked' if masked else 'unmasked'} (mean {n:.1f} voxels, "
                    f"{levels:.1f} grey levels per kernel): {total} operations per voxel"
                )
                for what, count in ops.items():
                    print(f"  {what:58s} {count:6d}")
                seconds = radflow_per_voxel.get(("firstorder", radius, masked))
                if seconds:
                    print(
                        f"  radflow {'masked' if masked else 'unmasked'}: "
                        f"{seconds * 1e9:.0f} ns per voxel = "
                        f"{seconds * 1e9 / total:.2f} ns per operation "
                        "(one core does ~0.1-0.3 ns per scalar operation)"
                    )


if __name__ == "__main__":
    main()
