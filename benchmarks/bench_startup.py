"""Whole command: ``radflow extract IMAGE MASK [-p PARAMS]`` against ``pyradiomics``, end to end.

What a user meets for one case: a fresh process that imports, reads two files, extracts and
prints. Both commands run alternately in fresh processes on the same files; the first run of each
is a warm-up (numba cache filled, bytecode written, files in the page cache) and is not counted.
Wall time and CPU time (user + system of the child) are reported; on a shared machine CPU time is
the steadier.

Cases (``--cases``):

- ``mr-*``: a small MR-like NIfTI case shaped like PyRadiomics' brain1 example (25 x 256 x 256
  int16 at 0.94 x 0.94 x 6.5 mm, a ~3,400-voxel lesion over 4 slices), with PyRadiomics'
  defaults (``mr-default``) and with PyRadiomics' own example parameter files
  ``exampleMR_3mm.yaml`` (``mr-3mm``: B-spline resampling to 2 mm, normalisation, LoG 2-5 mm,
  the 8 wavelets) and ``exampleMR_NoResampling.yaml`` (``mr-noresampling``: force2D, preCrop,
  LoG 1/3/5 mm, wavelets). The files are PyRadiomics' (examples/exampleSettings, comments left
  out), written by this script. PyRadiomics' real example images are not shipped with the
  installed package and cannot be fetched here, hence the synthetic case of the same size.
  (``exampleMR_5mm.yaml`` names pre-3.0 shape features, ``Volume``, ``MajorAxis``, that
  PyRadiomics 3.0.1 itself refuses, so it is left out.)
- ``ct-default`` / ``ct-filters``: the 100 x 512 x 512 int16 CT of ``common.tumour_case``
  (~70k-voxel ROI) with PyRadiomics' defaults, and with Original + LoG (1, 3 mm) + the 8
  wavelets + Square, SquareRoot, Logarithm, Exponential, Gradient (``bench_extract.py``'s
  ``filters``).

``--breakdown`` adds, per case, where radflow's time goes: the bare interpreter, the imports per
top-level package (``python -X importtime``, self times summed), numba's one-off start of its
CPU target (registries, which import ``scipy.linalg`` for BLAS) at the first kernel, each
kernel's cache load (index file, data file, object code rebuilt and linked), and the extraction
proper (a second ``extract`` call in the same process). ``--first-run`` times the command on
an empty numba cache (compiling), and ``radflow warmup -p PARAMS`` then the command.

    .venv/bin/python benchmarks/bench_startup.py --runs 5 --breakdown
    .venv/bin/python benchmarks/bench_startup.py --cases mr-default --runs 10
    .venv/bin/python benchmarks/bench_startup.py --cases mr-3mm --runs 1 --first-run
    .venv/bin/python benchmarks/bench_startup.py --radflow-src /tmp/old   # another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

HEAVY = ("zarr", "xarray", "dask", "distributed", "pandas", "pyarrow", "sklearn", "matplotlib")
BIN = Path(sys.executable).parent

_GLCM_NO_SUMAVERAGE = """\
    - Autocorrelation
    - JointAverage
    - ClusterProminence
    - ClusterShade
    - ClusterTendency
    - Contrast
    - Correlation
    - DifferenceAverage
    - DifferenceEntropy
    - DifferenceVariance
    - JointEnergy
    - JointEntropy
    - Imc1
    - Imc2
    - Idm
    - Idmn
    - Id
    - Idn
    - InverseVariance
    - MaximumProbability
    - SumEntropy
    - SumSquares
"""

#: PyRadiomics' examples/exampleSettings files (3.0.1), comments left out.
PARAMS = {
    "exampleMR_3mm.yaml": f"""\
imageType:
  Original: {{}}
  LoG:
    sigma: [2.0, 3.0, 4.0, 5.0]
  Wavelet: {{}}
featureClass:
  shape:
  firstorder:
  glcm:
{_GLCM_NO_SUMAVERAGE}  glrlm:
  glszm:
  gldm:
setting:
  normalize: true
  normalizeScale: 100
  interpolator: 'sitkBSpline'
  resampledPixelSpacing: [2, 2, 2]
  binWidth: 5
  voxelArrayShift: 300
  label: 1
""",
    "exampleMR_NoResampling.yaml": f"""\
imageType:
  Original: {{}}
  LoG:
    sigma: [1.0, 3.0, 5.0]
  Wavelet: {{}}
featureClass:
  shape:
  firstorder:
  glcm:
{_GLCM_NO_SUMAVERAGE}  glrlm:
  glszm:
  gldm:
setting:
  normalize: true
  normalizeScale: 100
  preCrop: true
  force2D: true
  force2Ddimension: 0
  binWidth: 5
  voxelArrayShift: 300
  label: 1
""",
    "ct_filters.yaml": """\
imageType:
  Original: {}
  LoG:
    sigma: [1.0, 3.0]
  Wavelet: {}
  Square: {}
  SquareRoot: {}
  Logarithm: {}
  Exponential: {}
  Gradient: {}
featureClass:
  firstorder:
  glcm:
  gldm:
  glrlm:
  glszm:
  ngtdm:
  shape:
""",
}

#: case -> (image set, parameter file or None for PyRadiomics' defaults)
CASES = {
    "mr-default": ("mr", None),
    "mr-3mm": ("mr", "exampleMR_3mm.yaml"),
    "mr-noresampling": ("mr", "exampleMR_NoResampling.yaml"),
    "ct-default": ("ct", None),
    "ct-filters": ("ct", "ct_filters.yaml"),
}
#: The classes PyRadiomics enables without a featureClass section (all but shape2D).
DEFAULT_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: The issue's targets: PyRadiomics' time / radflow's time.
TARGETS = {"mr": 1.5, "ct-default": 6.0, "ct-filters": 15.0}


def write_mr(folder: Path) -> tuple[Path, Path]:
    """MR-like case the size of PyRadiomics' brain1: 25 x 256 x 256 int16, 0.94 x 0.94 x 6.5 mm."""
    rng = np.random.default_rng(0)
    shape = (25, 256, 256)
    z, y, x = np.ogrid[tuple(slice(0, n) for n in shape)]
    head = ((y - 128) / 110.0) ** 2 + ((x - 128) / 95.0) ** 2 <= 1.0
    texture = ndimage.gaussian_filter(rng.normal(size=shape), (0.5, 2.0, 2.0))
    values = np.where(head, 420.0, 15.0) + 60.0 * texture / texture.std()
    lesion = ((z - 12) / 2.2) ** 2 + ((y - 100) / 17.0) ** 2 + ((x - 150) / 19.0) ** 2 <= 1.0
    values = np.where(lesion, values + 250.0, values)
    image = sitk.GetImageFromArray(np.clip(values, 0, None).astype(np.int16))
    mask = sitk.GetImageFromArray(lesion.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing((0.9375, 0.9375, 6.5))
        item.SetOrigin((-120.0, -120.0, -80.0))
    paths = folder / "mr.nii.gz", folder / "mr_label.nii.gz"
    sitk.WriteImage(image, str(paths[0]))
    sitk.WriteImage(mask, str(paths[1]))
    return paths


def write_ct(folder: Path) -> tuple[Path, Path]:
    """The 100 x 512 x 512 CT of :func:`common.tumour_case` as NIfTI files."""
    case = common.tumour_case()
    paths = folder / "ct.nii.gz", folder / "ct_label.nii.gz"
    sitk.WriteImage(case.image, str(paths[0]))
    sitk.WriteImage(case.mask, str(paths[1]))
    return paths


def _commands(image: Path, mask: Path, params: Path | None) -> dict[str, list[str]]:
    radflow = [str(BIN / "radflow"), "extract", str(image), str(mask)]
    pyradiomics = [str(BIN / "pyradiomics"), str(image), str(mask)]
    if params is not None:
        radflow += ["-p", str(params)]
        pyradiomics += ["--param", str(params)]
    return {"radflow extract": radflow, "pyradiomics": pyradiomics}


def _time(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of one fresh process; its standard error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


# -- breakdown -------------------------------------------------------------------------------

#: Run in a fresh interpreter: numba's loading hooks, then the command, then a second
#: extraction in the same process (the extraction proper). CPU seconds of the process (the
#: work is single-threaded but for ITK filters). Prints one JSON line on stderr.
_PROBE = r"""
import json, sys, time
start = time.process_time()
import numba.core.caching as caching
import numba.core.cpu as cpu
numba_import = time.process_time() - start
kernels, target = {}, {"seconds": 0.0}

def timed(owner, name, record):
    original = getattr(owner, name)
    def wrapper(self, *args):
        t = time.process_time()
        try:
            return original(self, *args)
        finally:
            record(self, time.process_time() - t)
    setattr(owner, name, wrapper)

def _kernel(cache):
    func = cache._py_func
    name = func.__module__.replace("radflow.features.", "") + "." + func.__qualname__
    zero = {"load": 0.0, "index": 0.0, "data": 0.0, "rebuild": 0.0, "target": 0.0, "count": 0}
    return kernels.setdefault(name, zero)

current = []
orig_load = caching.Cache.load_overload
def load_overload(self, sig, ctx):
    entry = _kernel(self)
    entry["count"] += 1
    entry.setdefault("order", sum("order" in k for k in kernels.values()))
    current.append(entry)
    t = time.process_time()
    try:
        return orig_load(self, sig, ctx)
    finally:
        current.pop()
        entry["load"] += time.process_time() - t
caching.Cache.load_overload = load_overload
def on(key):
    def record(self, seconds):
        if current:
            current[-1][key] += seconds
    return record
timed(caching.IndexDataCacheFile, "_load_index", on("index"))
timed(caching.IndexDataCacheFile, "_load_data", on("data"))
timed(caching.CompileResultCacheImpl, "rebuild", on("rebuild"))
def registries(self, seconds):
    target["seconds"] += seconds
    if current:
        current[-1]["target"] += seconds
timed(cpu.CPUContext, "load_additional_registries", registries)

from radflow.cli import main
from radflow.extraction import extractor
calls = []
original_extract = extractor.extract
def extract(*args, **kwargs):
    t = time.process_time()
    try:
        return original_extract(*args, **kwargs)
    finally:
        calls.append(time.process_time() - t)
extractor.extract = extract
t = time.process_time()
code = main(sys.argv[1:])
command = time.process_time() - t
argv = sys.argv[1:]
params = argv[argv.index("-p") + 1] if "-p" in argv else None
t = time.process_time()
original_extract(argv[1], argv[2], params)
again = time.process_time() - t
print("PROBE " + json.dumps({
    "numba_import": numba_import, "command": command, "first_extract": calls[0],
    "second_extract": again, "target": target["seconds"], "kernels": kernels,
}), file=sys.stderr)
sys.exit(code)
"""


def _imports(cmd: list[str], env: dict[str, str], cwd: str) -> dict[str, float]:
    """Self import time (s) per top-level package (radflow: per subpackage) of one run."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "radflow.cli", *cmd[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=True,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line[len("import time:") :].split("|")
        parts = name.strip().split(".")
        key = ".".join(parts[:2]) if parts[0] == "radflow" else parts[0]
        if parts[0] == "llvmlite":
            key = "numba"
        totals[key] += int(own) / 1e6
    return dict(totals)


def breakdown(name: str, cmd: list[str], env: dict[str, str], cwd: str, runs: int) -> None:
    """Print where radflow's time goes for one case (medians over `runs` fresh processes)."""
    bare = [_time([sys.executable, "-c", "pass"], env, cwd)[0] for _ in range(runs)]
    imports = [_imports(cmd, env, cwd) for _ in range(runs)]
    probes = []
    for _ in range(runs):
        _, _, stderr = _time([sys.executable, "-c", _PROBE, *cmd[1:]], env, cwd)
        line = next(ln for ln in stderr.splitlines() if ln.startswith("PROBE "))
        probes.append(json.loads(line[6:]))
    med = statistics.median
    packages = sorted({k for run in imports for k in run})
    per_package = {k: med([run.get(k, 0.0) for run in imports]) for k in packages}
    radflow = sum(v for k, v in per_package.items() if k.startswith("radflow"))
    print(f"\n{name}: where radflow's time goes (medians of {runs} fresh processes)")
    print(f"  interpreter (python -c pass)        {med(bare):.3f} s")
    print(
        f"  imports, all (-X importtime, wall)  {sum(per_package.values()):.3f} s "
        "(numba's and scipy's include the target start's)"
    )
    main = ["numpy", "SimpleITK", "scipy", "numba", "pywt", "yaml"]
    for key in main:
        print(f"    {key:32s}  {per_package.get(key, 0.0):.3f} s")
    print(f"    {'radflow (own modules)':32s}  {radflow:.3f} s")
    rest = sum(v for k, v in per_package.items() if k not in main and not k.startswith("radflow"))
    print(f"    {'other (stdlib, ...)':32s}  {rest:.3f} s")
    print(f"  numba target start (registries)     {med([p['target'] for p in probes]):.3f} s CPU")
    kernels = sorted({k for p in probes for k in p["kernels"]})

    def _start(p):  # the first kernel's load also starts numba's code generator and runtime
        first = [v for v in p["kernels"].values() if v.get("order") == 0]
        return sum(v["load"] - v["target"] - v["index"] - v["data"] - v["rebuild"] for v in first)

    print(f"  numba first-load start (codegen)    {med([_start(p) for p in probes]):.3f} s CPU")
    load = [sum(v["load"] - v["target"] for v in p["kernels"].values()) - _start(p) for p in probes]
    print(f"  kernel cache loads ({len(kernels)} kernels)       {med(load):.3f} s CPU")
    for kernel in kernels:
        rows = [p["kernels"][kernel] for p in probes if kernel in p["kernels"]]
        parts = {k: med([r[k] for r in rows]) for k in ("index", "data", "rebuild")}
        own = sum(parts.values())
        print(
            f"    {kernel:40s} {own * 1e3:6.1f} ms (index {parts['index'] * 1e3:.1f}, "
            f"data {parts['data'] * 1e3:.1f}, object code {parts['rebuild'] * 1e3:.1f})"
        )
    first = med([p["first_extract"] for p in probes])
    second = med([p["second_extract"] for p in probes])
    print(f"  extract(), first call in process    {first:.3f} s CPU (imports, kernels inside)")
    print(f"  extract(), second call (extraction) {second:.3f} s CPU (files read again)")


# -- first run -------------------------------------------------------------------------------


def first_run(name: str, cmd: list[str], env: dict[str, str], cwd: str) -> None:
    """A cold numba cache (a new installation): the command alone, and warmup -p first.

    Each in a new empty ``NUMBA_CACHE_DIR``: ``radflow extract`` compiling what it uses; then
    ``radflow warmup -p PARAMS`` (what a batch or cluster parent runs before its workers) and
    the same ``radflow extract`` after it, loading from the cache; and ``radflow warmup`` (every
    kernel, voxel mode's included) for scale.
    """
    params = cmd[cmd.index("-p") + 1 :][:1] if "-p" in cmd else []
    warm = [cmd[0], "warmup", *(["-p", *params] if params else [])]
    if not params:  # PyRadiomics' defaults: the classes a file without featureClass enables
        default = Path(cwd) / "defaults.yaml"
        default.write_text("featureClass:\n" + "".join(f"  {c}:\n" for c in DEFAULT_CLASSES))
        warm = [cmd[0], "warmup", "-p", str(default)]
    print(f"\n{name}: first run on an empty numba cache (wall, CPU)")
    with tempfile.TemporaryDirectory() as cache:
        wall, cpu, _ = _time(cmd, dict(env, NUMBA_CACHE_DIR=cache), cwd)
        print(f"  radflow extract, compiling inside     {wall:6.2f} s  {cpu:6.2f} s")
    with tempfile.TemporaryDirectory() as cache:
        cold = dict(env, NUMBA_CACHE_DIR=cache)
        wall, cpu, _ = _time(warm, cold, cwd)
        print(f"  radflow warmup -p PARAMS              {wall:6.2f} s  {cpu:6.2f} s")
        wall, cpu, _ = _time(cmd, cold, cwd)
        print(f"  then radflow extract (cache loaded)   {wall:6.2f} s  {cpu:6.2f} s")
    with tempfile.TemporaryDirectory() as cache:
        wall, cpu, _ = _time([cmd[0], "warmup"], dict(env, NUMBA_CACHE_DIR=cache), cwd)
        print(f"  radflow warmup (every kernel)         {wall:6.2f} s  {cpu:6.2f} s")


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--breakdown", action="store_true", help="where radflow's time goes")
    parser.add_argument(
        "--first-run", action="store_true", help="also time an empty numba cache (compiling)"
    )
    parser.add_argument("--no-pyradiomics", action="store_true", help="radflow only")
    parser.add_argument("--radflow-src", help="run radflow from this checkout (PYTHONPATH)")
    parser.add_argument(
        "--baseline-src",
        help="also run radflow from this checkout (PYTHONPATH), interleaved: before/after",
    )
    args = parser.parse_args()
    # As on a user's machine: Python writes the bytecode of what it imports (pip compiles it at
    # installation; the first, uncounted run of each command writes radflow's in a checkout).
    # This sandbox sets PYTHONDONTWRITEBYTECODE, which left radflow compiling ~70 of its modules
    # from source in every process (65-80 ms) while PyRadiomics' installed bytecode was used.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if args.radflow_src:
        env["PYTHONPATH"] = args.radflow_src
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {}
        for name, text in PARAMS.items():
            (folder / name).write_text(text)
        sets = {CASES[c][0] for c in args.cases}
        if "mr" in sets:
            files["mr"] = write_mr(folder)
        if "ct" in sets:
            files["ct"] = write_ct(folder)
        summary = []
        for case in args.cases:
            image_set, params = CASES[case]
            commands = _commands(*files[image_set], folder / params if params else None)
            if args.no_pyradiomics:
                del commands["pyradiomics"]
            envs = {name: env for name in commands}
            if args.baseline_src:
                commands["radflow baseline"] = commands["radflow extract"]
                envs["radflow baseline"] = dict(env, PYTHONPATH=args.baseline_src)
            load_before = os.getloadavg()
            walls: dict[str, list[float]] = {name: [] for name in commands}
            cpus: dict[str, list[float]] = {name: [] for name in commands}
            for run in range(args.runs + 1):
                for name, cmd in commands.items():
                    wall, cpu, _ = _time(cmd, envs[name], tmp)
                    if run:
                        walls[name].append(wall)
                        cpus[name].append(cpu)
            probe = [
                sys.executable,
                "-c",
                "import sys; from radflow.cli import main; code = main(sys.argv[1:]); "
                f"print('LOADED', ','.join(m for m in {HEAVY!r} if m in sys.modules), "
                "file=sys.stderr); sys.exit(code)",
                *commands["radflow extract"][1:],
            ]
            stderr = _time(probe, env, tmp)[2]
            loaded = next((ln[7:] for ln in stderr.splitlines() if ln.startswith("LOADED ")), "")
            print(f"\n{case} ({params or 'PyRadiomics defaults'}), {args.runs} runs each:")
            # Other work on the machine inflates wall times (the commands use up to 2 cores).
            print(
                "  load average (1, 5, 15 min) before {} / after {}".format(
                    *(" ".join(f"{x:.2f}" for x in load) for load in (load_before, os.getloadavg()))
                )
            )
            for name in commands:
                wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
                print(
                    f"  {name:16s} wall median {wall:.3f} s (min {min(walls[name]):.3f}), "
                    f"CPU median {cpu:.3f} s"
                )
            if "pyradiomics" in commands:
                target = TARGETS.get(case, TARGETS.get(image_set))
                ratios = {}
                for name in ("radflow extract", "radflow baseline"):
                    if name not in commands:
                        continue
                    wall, cpu = (
                        statistics.median(t["pyradiomics"]) / statistics.median(t[name])
                        for t in (walls, cpus)
                    )
                    ratios[name] = (wall, cpu)
                    print(
                        f"  pyradiomics / {name}: {wall:.2f}x wall, {cpu:.2f}x CPU "
                        f"(target >= {target}x)"
                    )
                summary.append((case, ratios, target))
            print(f"  heavy libraries loaded by radflow extract: {loaded or 'none'}")
            if args.breakdown:
                breakdown(case, commands["radflow extract"], env, tmp, args.runs)
            if args.first_run:
                first_run(case, commands["radflow extract"], env, tmp)
        if summary:
            print("\npyradiomics / radflow  (wall, CPU)")
            for case, ratios, target in summary:
                text = ", ".join(
                    f"{name.split()[1]} {wall:.2f}x / {cpu:.2f}x"
                    for name, (wall, cpu) in ratios.items()
                )
                print(f"{case:18s} {text}  (target >= {target}x)")


if __name__ == "__main__":
    main()
