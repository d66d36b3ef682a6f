"""Whole extraction: radflow.extract against PyRadiomics 3.0.1's extractor, in one process.

The case is :func:`common.tumour_case` (a ~70k-voxel tumour in a 100 x 512 x
512 int16 CT), given to both as SimpleITK images in memory (no file I/O).
Two settings:

- ``default``: no parameter file, PyRadiomics' defaults (Original image,
  every class but shape2D, binWidth 25: 107 features);
- ``default-no-diagnostics``: the same with ``additionalInfo: false`` (no
  whole-volume hashes and statistics, on either side);
- ``filters``: the same classes on Original, LoG (sigma 1 and 3 mm), the 8
  wavelet decompositions, Square, SquareRoot, Logarithm, Exponential and
  Gradient.

Reported per setting: radflow's first call in this process (numba loads its
cache, or compiles), radflow's warm time (best of ``--repeat``), PyRadiomics'
time (best of ``--repeat-pyradiomics``), the ratio, and for each side the
peak memory above the loaded case: peak RSS of a child process running that
side alone, from Linux's VmHWM reset just before the call (it counts
SimpleITK's buffers, which tracemalloc cannot see). Then
where radflow's time goes, per step and per feature class. Finally numba's
cold start: a fresh process with an empty ``NUMBA_CACHE_DIR`` running
:func:`radflow.extraction.extractor.warmup`, and the same with the cache filled.

Run::

    python benchmarks/bench_extract.py [--repeat 3] [--repeat-pyradiomics 1]
        [--settings default filters]
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
from collections import defaultdict
from contextlib import contextmanager
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# After the sys.path line: benchmarks/ is not a package, and common.py must import however this
# script is started (python benchmarks/bench_extract.py, python -m, an import from elsewhere).
import common  # noqa: E402

SETTINGS = {
    "default": None,
    "default-no-diagnostics": {"setting": {"additionalInfo": False}},
    "filters": {
        "imageType": {
            "Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}, "Square": {},
            "SquareRoot": {}, "Logarithm": {}, "Exponential": {}, "Gradient": {},
        },
        "featureClass": {
            c: None for c in ("firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape")
        },
    },
}  # fmt: skip
TARGETS = {"default": 30.0, "default-no-diagnostics": 30.0, "filters": 15.0}


def _radflow(case, params):
    from radflow.extraction.extractor import extract

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return extract(case.image, case.mask, params)


def _pyradiomics(case, params):
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return featureextractor.RadiomicsFeatureExtractor(params).execute(case.image, case.mask)


def _best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


@contextmanager
def _profiled():
    """Accumulate radflow's time per step and per feature class (wall seconds)."""
    from radflow.extraction import diagnostics, extractor
    from radflow.filters import image_types as filters
    from radflow.preprocess import discretise, roi_checks

    totals = defaultdict(float)
    patches = []

    def wrap(module, name, label):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[label(args) if callable(label) else label] += time.perf_counter() - start

        patches.append((module, name, original))
        setattr(module, name, timed)

    def wrap_generator(module, name, label):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            iterator = original(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    totals[label] += time.perf_counter() - start
                    return
                totals[label] += time.perf_counter() - start
                yield item

        patches.append((module, name, original))
        setattr(module, name, timed)

    wrap(extractor, "_open", "load: label box, crop")
    wrap(diagnostics, "volume_summary", "diagnostics: whole-volume pass (background thread)")
    wrap(diagnostics, "mask_entries", "diagnostics: mask entries")
    wrap(roi_checks, "check_mask", "checkMask")
    wrap(extractor._Extraction, "_shape", "class shape")
    wrap_generator(filters, "image_types", "filters")
    wrap(discretise, "discretise", "discretise")
    wrap(extractor, "_compute_class", lambda args: f"class {args[0]}")
    try:
        yield totals
    finally:
        for module, name, original in reversed(patches):
            setattr(module, name, original)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(side: str, setting: str) -> None:
    """Run one side once; print its peak RSS above the RSS before the call, MiB (Linux)."""
    case = common.tumour_case()
    if side == "radflow":
        from radflow.extraction.extractor import warmup

        # Kernels compiled/loaded on a tiny case, so no big buffer of a first run stays resident.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warmup()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak (VmHWM) to the current RSS
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    (_radflow if side == "radflow" else _pyradiomics)(case, SETTINGS[setting])
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - base) / 1024.0, "seconds": seconds}))


def _peak_memory(side: str, setting: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, setting],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def _cold_start(empty_cache: bool) -> float:
    code = (
        "import time; t = time.perf_counter(); from radflow.extraction.extractor import warmup; "
        "warmup(); print(time.perf_counter() - t)"
    )
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="radflow runs (best taken)")
    parser.add_argument(
        "--repeat-pyradiomics", type=int, default=1, help="PyRadiomics runs (best taken)"
    )
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the peak-memory child processes"
    )
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the numba cold-start measurement"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return

    case = common.tumour_case()
    print(f"case: {case.image.GetSize()[::-1]} (z, y, x) int16 CT, ROI {case.roi_voxels} voxels")
    import numpy as np

    for setting in args.settings:
        params = SETTINGS[setting]
        start = time.perf_counter()
        first = _radflow(case, params)
        first_call = time.perf_counter() - start
        ours, result = _best(partial(_radflow, case, params), args.repeat)
        theirs, expected = _best(partial(_pyradiomics, case, params), args.repeat_pyradiomics)
        features = [k for k in expected if not k.startswith("diagnostics_")]
        worst = max(
            (
                abs(float(result[k]) - float(expected[k])) / max(abs(float(expected[k])), 1e-300)
                for k in features
                if np.isfinite(float(expected[k]))
            ),
            default=0.0,
        )
        assert set(result) == set(expected), "radflow and PyRadiomics return different keys"
        print(
            f"\n[{setting}] {len(features)} features, {len(result) - len(features)} diagnostics; "
            f"largest relative difference {worst:.1e}"
        )
        print(f"  radflow first call in process : {first_call:8.3f} s")
        print(f"  radflow warm (best of {args.repeat})     : {ours:8.3f} s")
        print(f"  PyRadiomics (best of {args.repeat_pyradiomics})     : {theirs:8.3f} s")
        print(
            f"  ratio                         : {theirs / ours:8.1f} x "
            f"(target >= {TARGETS[setting]:g} x)"
        )
        if not args.no_memory:
            print(
                "  peak memory above the case    : "
                f"radflow {_peak_memory('radflow', setting):.0f} MiB, "
                f"PyRadiomics {_peak_memory('pyradiomics', setting):.0f} MiB"
            )
        with _profiled() as totals:
            start = time.perf_counter()
            _radflow(case, params)
            total = time.perf_counter() - start
        print(f"  radflow time per step (one profiled run, {total:.3f} s):")
        for step, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"    {step:40s} {seconds * 1000:8.1f} ms")
        del first

    if not args.no_cold:
        print(
            "\nnumba cold start (fresh process, empty cache: import + compile + warmup): "
            f"{_cold_start(True):.1f} s"
        )
        print(
            "start with the cache filled (fresh process: import + load + warmup)   : "
            f"{_cold_start(False):.1f} s"
        )


if __name__ == "__main__":
    main()
