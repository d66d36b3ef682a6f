"""``radflow extract IMAGE MASK`` on image files loads no store, cluster, table or model library.

Those libraries (zarr, xarray, dask, distributed, pandas, pyarrow, scikit-learn, matplotlib,
DuckDB) cost more than a second of start-up together; they load only for store inputs,
runs, models and reports. Checked in a fresh interpreter, from ``sys.modules``, after the
command line's own entry point has run the extraction.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
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
