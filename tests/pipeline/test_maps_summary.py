"""mapSummary in ``radflow run``: the summaries of voxel maps become columns of the feature table.

Their values are checked against PyRadiomics in tests/extraction/test_map_summary.py; here: a run
writes them into the Parquet table, one column per summary, equal to one extraction of the
same ROI, and the diagnostics column holds the NaN-voxel counts.
"""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

import radflow
from radflow.io.records import LabelMap
from radflow.pipeline.run import run
from radflow.pipeline.table import read_table
from radflow.store.write import write_series

PARAMS = {
    "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}},
    "featureClass": {"firstorder": ["Mean"]},
    "setting": {"binWidth": 25},
    "voxelSetting": {"kernelRadius": 1},
    "mapSummary": {
        "classes": {"glcm": ["Contrast", "JointAverage"], "firstorder": ["Entropy"]},
        "statistics": ["Mean", "Median", "90Percentile"],
    },
}


def _store(root):
    rng = np.random.default_rng(11)
    values = rng.normal(30, 50, (10, 16, 16)).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.9, 0.9, 2.0))
    mask = np.zeros(values.shape, np.uint8)
    mask[2:8, 3:12, 4:13] = 1
    mask[9, 1:3, 1:4] = 1  # one plane: JointAverage NaN in its kernels
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    write_series(
        root,
        "c1",
        "s1",
        image,
        [LabelMap("gtv", "labelmap", label, {1: "tumour"})],
        attrs={"modality": "CT", "institution": "inst", "case": "c1"},
        fingerprint="fp-s1",
    )
    return image, label


def test_a_run_writes_the_summaries_into_the_table(tmp_path, scheduler):
    image, label = _store(tmp_path / "store")
    table = tmp_path / "table"
    summary = run(tmp_path / "store", PARAMS, table, scheduler=scheduler, progress=False)
    assert summary.failed == 0, summary.report()
    rows = read_table(table).to_pylist()
    assert sorted(r["image_type"] for r in rows) == ["log-sigma-1-0-mm-3D", "original"]
    expected = radflow.extract(image, label, PARAMS)
    for row in rows:
        columns = [c for c in row if "map_" in c]
        assert len(columns) == 3 * 3
        for column in columns:
            np.testing.assert_allclose(
                row[column], expected[f"{row['image_type']}_{column}"], rtol=1e-12
            )
        diagnostics = json.loads(row["diagnostics"])
        assert diagnostics["MapSummary_Voxels"] == int(sitk.GetArrayFromImage(label).sum())
    original = next(r for r in rows if r["image_type"] == "original")
    nan_voxels = json.loads(original["diagnostics"])["MapSummary_NaNVoxels"]
    assert nan_voxels.get("original_glcmmap_JointAverage", 0) >= 6  # the one-plane patch
    assert np.isfinite(original["glcmmap_JointAverage_Mean"])
