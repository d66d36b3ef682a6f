"""What ``radflow extract IMAGE MASK`` on image files loads, checked in fresh interpreters.

The store, cluster, table and model libraries (zarr, xarray, dask, distributed, pandas, pyarrow,
scikit-learn, matplotlib, DuckDB) cost more than a second of start-up together; they load only
for store inputs, runs, models and reports. SciPy's ndimage, fft and special (a tenth of a
second) load only for the filters and classes that use them. numba loads only when a class with
compiled kernels is enabled, and then only the kernels of the enabled classes: each from the
cache, none compiled once :func:`radflow.extraction.extractor.warmup` has run with the same
parameter file. Checked from ``sys.modules`` and numba's dispatchers after the command line's
own entry point has run the extraction. The command reads the files ahead in background threads
and, for classes with kernels, starts numba in another (:mod:`radflow.extraction.startup`):
never for first order alone, and the features are the same with and without it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

HEAVY = (
    "zarr",
    "xarray",
    "dask",
    "distributed",
    "pandas",
    "pyarrow",
    "sklearn",
    "matplotlib",
    "duckdb",
)


#: SciPy submodules that PyRadiomics-mode extraction on files does not use.
SCIPY_DEFERRED = ("scipy.ndimage", "scipy.fft", "scipy.special", "scipy.stats")

#: Run in a fresh interpreter: the command line, then what it loaded (one JSON line).
_PROBE = """
import json, sys
from radflow.cli import main
code = main(sys.argv[1:])
kernels = {}
if "numba" in sys.modules:
    from numba.core.registry import CPUDispatcher
    for name, module in list(sys.modules.items()):
        if not name.startswith("radflow."):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == name:
                kernels[name + "." + attr] = {
                    "signatures": len(value.signatures),
                    "compiled": sum(value.stats.cache_misses.values()),
                }
print(json.dumps({"code": code, "modules": sorted(sys.modules), "kernels": kernels}))
"""


def _run_fresh(argv, env=None):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return report


def _write_case(folder):
    rng = np.random.default_rng(0)
    values = rng.normal(100.0, 20.0, size=(8, 16, 16)).astype(np.float32)
    roi = np.zeros(values.shape, np.uint8)
    roi[2:6, 4:12, 4:12] = 1
    image, mask = sitk.GetImageFromArray(values), sitk.GetImageFromArray(roi)
    for item in (image, mask):
        item.SetSpacing((0.8, 0.8, 2.0))
        item.SetOrigin((-10.0, 5.0, 3.0))
    sitk.WriteImage(image, str(folder / "image.nii.gz"))
    sitk.WriteImage(mask, str(folder / "mask.nii.gz"))
    params = folder / "params.yaml"
    params.write_text("setting:\n  binWidth: 10\nfeatureClass:\n  firstorder:\n  glcm:\n  shape:\n")
    return folder / "image.nii.gz", folder / "mask.nii.gz", params


def test_extract_on_nifti_files_loads_no_heavy_library(tmp_path):
    image, mask, params = _write_case(tmp_path)
    out = tmp_path / "features.json"
    code = (
        "import json, sys\n"
        "from radflow.cli import main\n"
        f"code = main(['extract', {str(image)!r}, {str(mask)!r}, '-p', {str(params)!r},\n"
        f"             '--format', 'json', '-o', {str(out)!r}])\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'loaded': loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    features = json.loads(out.read_text())
    assert features["original_shape_VoxelVolume"] > 0  # the extraction really ran
    assert report["loaded"] == [], f"radflow extract IMAGE MASK imports {report['loaded']}"


def _extract_argv(image, mask, params, out):
    return ["extract", str(image), str(mask), "-p", str(params), "--format", "json", "-o", str(out)]


def test_extract_loads_only_the_kernels_of_enabled_classes(tmp_path):
    image, mask, params = _write_case(tmp_path)  # firstorder, glcm, shape
    out = tmp_path / "features.json"
    report = _run_fresh(_extract_argv(image, mask, params, out))
    features = json.loads(out.read_text())
    assert "original_glcm_Contrast" in features and "original_shape_MeshVolume" in features
    loaded = [m for m in SCIPY_DEFERRED if m in report["modules"]]
    assert loaded == [], f"radflow extract IMAGE MASK imports {loaded}"
    # Voxel mode's kernels and the other texture families' modules stay unloaded.
    assert not [m for m in report["modules"] if m.startswith("radflow.features.voxel.")]
    for family in ("glrlm", "glszm", "gldm", "ngtdm"):
        assert f"radflow.features.{family}" not in report["modules"]
    # Segment mode's kernels come compiled with the installation: no numba in the process,
    # not even their JIT source modules.
    assert "radflow.features._aot" in report["modules"]
    assert "numba" not in report["modules"] and report["kernels"] == {}
    assert "radflow.features._shared_kernels" not in report["modules"]
    assert "radflow.features._mesh" not in report["modules"]


def test_voxel_mode_loads_only_the_jit_kernels_of_enabled_classes(tmp_path):
    """Voxel mode's kernels are numba's: those of the enabled classes only, one signature each."""
    image, mask, params = _write_case(tmp_path)
    params.write_text(
        "setting:\n  binWidth: 10\nvoxelSetting:\n  kernelRadius: 1\n"
        "featureClass:\n  firstorder:\n  glcm:\n"
    )
    argv = ["extract", str(image), str(mask), "-p", str(params), "--mode", "voxel"]
    report = _run_fresh([*argv, "--out-dir", str(tmp_path / "maps")])
    assert (tmp_path / "maps" / "Case-1_original_glcm_Contrast.nrrd").is_file()
    used = {name for name, k in report["kernels"].items() if k["signatures"]}
    families = {name.split(".")[3] for name in used}
    assert {"firstorder", "glcm"} <= families <= {"firstorder", "glcm", "_kernel", "_sizes"}, used
    for family in ("glrlm", "glszm", "gldm", "ngtdm"):
        assert f"radflow.features.voxel.{family}" not in report["modules"]
    # One specialisation each: consistent argument types, one cached signature per kernel.
    assert all(k["signatures"] <= 1 for k in report["kernels"].values())


def test_first_order_only_does_not_import_numba(tmp_path):
    image, mask, _ = _write_case(tmp_path)
    params = tmp_path / "firstorder.yaml"
    params.write_text("setting:\n  binWidth: 10\nfeatureClass:\n  firstorder:\n")
    out = tmp_path / "features.json"
    report = _run_fresh(_extract_argv(image, mask, params, out))
    assert json.loads(out.read_text())["original_firstorder_Mean"] == pytest.approx(
        float(np.mean(sitk.GetArrayFromImage(sitk.ReadImage(str(image)))[2:6, 4:12, 4:12]))
    )
    assert "numba" not in report["modules"]


def test_warmup_with_params_compiles_what_the_extraction_loads(tmp_path):
    """After ``radflow warmup -p PARAMS --mode voxel`` (empty cache), extracting compiles nothing.

    (Segment mode's kernels are compiled at installation: nothing of theirs to warm up.)
    """
    image, mask, _ = _write_case(tmp_path)
    params = tmp_path / "glcm.yaml"
    params.write_text(
        "setting:\n  binWidth: 10\nvoxelSetting:\n  kernelRadius: 1\n"
        "featureClass:\n  firstorder:\n  glcm:\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    segment = _run_fresh(["warmup", "-p", str(params)], env=env)
    assert "numba" not in segment["modules"]
    warm = _run_fresh(["warmup", "-p", str(params), "--mode", "voxel"], env=env)
    compiled = {name for name, k in warm["kernels"].items() if k["compiled"]}
    assert compiled and all(".voxel." in name for name in compiled), compiled
    assert not [n for n in compiled if n.split(".")[3] in ("glrlm", "glszm", "gldm", "ngtdm")]
    cached = sorted(p.name for p in (tmp_path / "numba-cache").rglob("*.nbi"))
    assert cached, "nothing written to the cache"
    out = tmp_path / "maps"
    argv = ["extract", str(image), str(mask), "-p", str(params), "--mode", "voxel"]
    report = _run_fresh([*argv, "--out-dir", str(out)], env=env)
    assert (out / "Case-1_original_glcm_Contrast.nrrd").is_file()
    used = {name: k for name, k in report["kernels"].items() if k["signatures"]}
    warmed = {name for name, k in warm["kernels"].items() if k["signatures"]}
    assert used and set(used) <= warmed, set(used) - warmed
    assert all(k["compiled"] == 0 for k in used.values()), used  # loaded from the cache


#: Run in a fresh interpreter: the command line with ``start_numba`` watched (argv[1] ``on``)
#: or replaced by a no-op (``off``); whether it started its thread, and whether numba loaded.
_PROBE_START = """
import json, sys
from radflow.cli import main
from radflow.extraction import startup
started, prefetched = [], []
original, original_prefetch = startup.start_numba, startup.prefetch
def watched(*args, **kwargs):
    thread = original(*args, **kwargs) if sys.argv[1] == "on" else None
    started.append(thread is not None)
    if thread is not None:  # left running: the extraction races it, as in real use
        started.append(thread.name)
    return thread
def reads(*paths):
    prefetched.extend(str(p) for p in paths)
    return original_prefetch(*paths)
startup.start_numba, startup.prefetch = watched, reads
code = main(sys.argv[2:])
print(json.dumps({
    "code": code, "started": started, "prefetched": prefetched, "numba": "numba" in sys.modules
}))
"""


def _run_start_probe(mode, argv):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE_START, mode, *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # nothing from the thread either
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return report


@pytest.mark.parametrize(
    ("sections", "mode", "has_kernels"),
    [
        ("featureClass:\n  firstorder:\n", "segment", False),  # NumPy only
        ("featureClass:\n  firstorder:\n  glcm:\n  shape:\n", "segment", True),
        ("featureClass:\n  ngtdm:\n", "segment", True),
        ("featureClass:\n  firstorder:\n", "voxel", True),  # the sliding-window kernels
        (  # maps of first order summarised per ROI: voxel mode's kernel
            "featureClass:\n  firstorder:\nmapSummary:\n  classes:\n    firstorder: [Mean]\n",
            "segment",
            True,
        ),
    ],
)
def test_numba_start_runs_only_for_classes_with_kernels(tmp_path, sections, mode, has_kernels):
    """A thread for classes with kernels, none for first order alone; the same output either way.

    The thread loads numba only where the extraction itself does (first order alone: never).
    """
    image, mask, _ = _write_case(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text("setting:\n  binWidth: 10\n" + sections)
    out = tmp_path / "features.json"
    argv = _extract_argv(image, mask, params, out)
    if mode == "voxel":
        argv += ["--mode", "voxel", "--out-dir", str(tmp_path / "maps")]
    without = _run_start_probe("off", argv)
    assert without["started"] == [False]
    expected = _outputs(out)
    with_thread = _run_start_probe("on", argv)
    assert with_thread["prefetched"] == [str(image), str(mask)]  # the files, read ahead
    assert with_thread["started"] == ([True, "radflow-numba-start"] if has_kernels else [False])
    assert with_thread["numba"] is without["numba"]
    if not has_kernels:
        assert not with_thread["numba"]
    got = _outputs(out)
    assert got.keys() == expected.keys() and len(got) > 1
    for key, value in expected.items():  # the same numbers, bit for bit (maps included)
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def _outputs(out):
    """The command's JSON output, each voxel map's path replaced by the map's voxels; removed."""
    features = json.loads(out.read_text())
    out.unlink()
    return {
        key: sitk.GetArrayFromImage(sitk.ReadImage(value))
        if str(value).endswith(".nrrd")
        else value
        for key, value in features.items()
    }


def test_a_failing_numba_start_is_silent(monkeypatch, caplog):
    """An error in the thread is logged at debug level only; nothing reaches the caller."""
    from radflow.extraction import startup
    from radflow.params.pyradiomics_params import load_params

    def broken(name):
        raise RuntimeError(f"no {name} here")

    seen = []
    caplog.set_level(logging.DEBUG, logger=startup.__name__)
    monkeypatch.setattr(startup, "family_module", broken)
    monkeypatch.setattr("threading.excepthook", seen.append)
    thread = startup.start_numba(load_params({"featureClass": {"glcm": None}}))
    assert thread is not None
    thread.join()
    assert seen == []  # no uncaught exception in the thread
    assert "no glcm here" in caplog.text
