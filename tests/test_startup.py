"""What ``radflow extract IMAGE MASK`` on image files loads, checked in fresh interpreters.

The store, cluster, table and model libraries (zarr, xarray, dask, distributed, pandas, pyarrow,
scikit-learn, matplotlib, DuckDB) cost more than a second of start-up together; they load only
for store inputs, runs, models and reports. SciPy's ndimage, fft and special (a tenth of a
second) load only for the filters and classes that use them. numba loads only when a class with
compiled kernels is enabled, and then only the kernels of the enabled classes: each from the
cache, none compiled once :func:`radflow.extraction.extractor.warmup` has run with the same
parameter file. Checked from ``sys.modules`` and numba's dispatchers after the command line's
own entry point has run the extraction.
"""

from __future__ import annotations

import json
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
    used = {name.rpartition(".")[2] for name, k in report["kernels"].items() if k["signatures"]}
    # Shape: the mesh (volume, area) and its diameters; glcm: the pair counts. Nothing else.
    assert used == {"mesh_area_volume", "edge_vertices", "mesh_diameters", "count_pairs"}
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
    """After ``radflow warmup -p PARAMS`` in an empty cache, extracting compiles nothing."""
    image, mask, _ = _write_case(tmp_path)
    params = tmp_path / "glcm.yaml"
    params.write_text("setting:\n  binWidth: 10\nfeatureClass:\n  firstorder:\n  glcm:\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    warm = _run_fresh(["warmup", "-p", str(params)], env=env)
    compiled = {name.rpartition(".")[2] for name, k in warm["kernels"].items() if k["compiled"]}
    assert compiled == {"count_pairs"}  # glcm's kernel only; first order has none
    cached = sorted(p.name for p in (tmp_path / "numba-cache").rglob("*.nbi"))
    assert cached and all("count_pairs" in name for name in cached), cached
    out = tmp_path / "features.json"
    report = _run_fresh(_extract_argv(image, mask, params, out), env=env)
    assert "original_glcm_Contrast" in json.loads(out.read_text())
    used = {name: k for name, k in report["kernels"].items() if k["signatures"]}
    assert [name.rpartition(".")[2] for name in used] == ["count_pairs"]
    assert all(k["compiled"] == 0 for k in used.values()), used  # loaded from the cache
