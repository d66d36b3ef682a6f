"""Voxel mode orchestration: the command line against PyRadiomics', batch CSV, bad input.

The maps' values are compared voxel by voxel with PyRadiomics in
tests/features/voxel/; here: the files ``radflow extract ... --mode voxel`` writes and the
listing it prints, as ``pyradiomics ... --mode voxel`` writes and prints them.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

import radflow
from radflow.cli import main
from radflow.errors import SettingsError
from radflow.extraction import voxel
from radflow.extraction.batch import extract_batch
from radflow.params.pyradiomics_params import load_params

PYRADIOMICS = Path(sys.executable).with_name("pyradiomics")
PARAMS = {
    "setting": {"binWidth": 25},
    "featureClass": {"firstorder": ["Mean", "Entropy", "Maximum"], "shape": None},
    "voxelSetting": {"kernelRadius": 1},
}


def _case(folder: Path, params=PARAMS) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(3)
    values = rng.integers(-100, 100, (8, 11, 12)).astype(np.int16)
    roi = np.zeros(values.shape, np.uint8)
    roi[2:6, 3:8, 0:7] = 1  # touches x = 0
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.7, 0.8, 2.5))
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(folder / "image.nrrd"))
    sitk.WriteImage(mask, str(folder / "mask.nrrd"))
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder / "image.nrrd", folder / "mask.nrrd", folder / "params.yaml"


def _listing(text: str) -> dict[str, str]:
    return dict(re.match(r"(Case-\d+_[^:]+): (.*)", line).groups() for line in text.splitlines())


@pytest.mark.oracle
@pytest.mark.skipif(not PYRADIOMICS.exists(), reason="the pyradiomics command is not installed")
def test_command_line_files_and_listing_match_pyradiomics(tmp_path, capsys, monkeypatch):
    image, mask, params = _case(tmp_path)
    monkeypatch.chdir(tmp_path)
    theirs = subprocess.run(
        [str(PYRADIOMICS), "image.nrrd", "mask.nrrd", "-p", "params.yaml"]
        + ["--mode", "voxel", "--out-dir", "theirs"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        main(
            ["extract", "image.nrrd", "mask.nrrd", "-p", "params.yaml"]
            + ["--mode", "voxel", "--out-dir", "ours"]
        )
        == 0
    )
    ours = _listing(capsys.readouterr().out)
    expected = _listing(theirs.stdout)
    # Same entries in the same order; the diagnostics add that shape was skipped.
    assert ours.pop("Case-1_" + voxel.SKIPPED_KEY) == "shape"
    assert list(ours) == list(expected)
    maps = [k for k in expected if "_firstorder_" in k]
    assert len(maps) == 3
    for key in maps:
        assert ours[key] == expected[key].replace("theirs", "ours")
        assert Path(ours[key]).name == f"{key}.nrrd"
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == sorted(
        p.name for p in (tmp_path / "theirs").iterdir()
    )
    for key in maps:
        a = sitk.ReadImage(ours[key])
        b = sitk.ReadImage(expected[key])
        assert a.GetPixelID() == b.GetPixelID() == sitk.sitkFloat64
        assert a.GetSize() == b.GetSize() and a.GetOrigin() == b.GetOrigin()
        np.testing.assert_allclose(
            sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b), rtol=1e-6
        )


def test_command_line_default_out_dir_is_the_current_folder(tmp_path, capsys, monkeypatch):
    _case(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["extract", "image.nrrd", "mask.nrrd", "-p", "params.yaml", "-m", "voxel"]) == 0
    listing = _listing(capsys.readouterr().out)
    assert listing["Case-1_original_firstorder_Mean"] == "./Case-1_original_firstorder_Mean.nrrd"
    assert (tmp_path / "Case-1_original_firstorder_Mean.nrrd").is_file()


def test_batch_csv_in_voxel_mode(tmp_path, capsys):
    image, mask, params = _case(tmp_path)
    batch = tmp_path / "batch.csv"
    batch.write_text("Image,Mask,Patient\nimage.nrrd,mask.nrrd,a\nimage.nrrd,mask.nrrd,b\n")
    out = tmp_path / "out.csv"
    args = ["extract", str(batch), "-p", str(params), "--mode", "voxel"]
    assert main(args + ["--out-dir", str(tmp_path / "maps"), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["Patient"] for r in rows] == ["a", "b"]
    for n, row in enumerate(rows, start=1):
        path = Path(row["original_firstorder_Mean"])
        assert path == tmp_path / "maps" / f"Case-{n}_original_firstorder_Mean.nrrd"
        assert path.is_file()
    first, second = (sitk.ReadImage(r["original_firstorder_Entropy"]) for r in rows)
    assert np.array_equal(sitk.GetArrayFromImage(first), sitk.GetArrayFromImage(second))


def test_batch_in_voxel_mode_with_workers(tmp_path):
    image, mask, params = _case(tmp_path)
    batch = tmp_path / "batch.csv"
    batch.write_text(f"Image,Mask\n{image},{mask}\n{image},missing.nrrd\n")
    summary = extract_batch(
        batch, params, tmp_path / "o.csv", jobs=2, voxel_based=True, out_dir=tmp_path / "m"
    )
    assert summary.succeeded == 1 and summary.failed[0][0] == 3
    assert (tmp_path / "m" / "Case-1_original_firstorder_Maximum.nrrd").is_file()
    assert not list((tmp_path / "m").glob("Case-2_*"))


def test_voxel_batch_changes_nothing(tmp_path):
    image, mask, _ = _case(tmp_path)
    one = radflow.extract(str(image), str(mask), PARAMS, voxel_based=True)
    params = {**PARAMS, "voxelSetting": {"kernelRadius": 1, "voxelBatch": 7}}
    batched = radflow.extract(str(image), str(mask), params, voxel_based=True)
    for key, value in one.items():
        if isinstance(value, sitk.Image):
            assert np.array_equal(
                sitk.GetArrayViewFromImage(value), sitk.GetArrayViewFromImage(batched[key])
            )


def test_bad_input_one_clear_error_each(tmp_path, monkeypatch, capsys):
    image, mask, params = _case(tmp_path)
    with pytest.raises(SettingsError, match="kernelRadius"):
        radflow.extract(
            str(image), str(mask), {**PARAMS, "voxelSetting": {"kernelRadius": 0}}, voxel_based=True
        )
    with pytest.raises(SettingsError, match="shape"):
        radflow.extract(str(image), str(mask), {"featureClass": {"shape": None}}, voxel_based=True)
    # A class enabled in the file whose voxel module is not there is refused, not skipped.
    real = voxel.importlib.util.find_spec
    monkeypatch.setattr(
        voxel.importlib.util,
        "find_spec",
        lambda name, *a: None if name.endswith(".glcm") else real(name, *a),
    )
    with pytest.raises(SettingsError, match="voxel mode for glcm is not implemented yet"):
        radflow.extract(str(image), str(mask), {"featureClass": {"glcm": None}}, voxel_based=True)
    monkeypatch.undo()
    # --out-dir belongs to voxel mode.
    assert main(["extract", str(image), str(mask), "--out-dir", str(tmp_path / "x")]) == 2
    assert "--mode voxel" in capsys.readouterr().err


def test_maps_geometry_is_the_padded_box(tmp_path):
    image, mask, _ = _case(tmp_path)
    params = {**PARAMS, "voxelSetting": {"kernelRadius": 2, "initValue": -7.0}}
    out = radflow.extract(str(image), str(mask), params, voxel_based=True)
    mean = out["original_firstorder_Mean"]
    # ROI box z 2:6, y 3:8, x 0:7 grown by 2 and clipped: z 0:8, y 1:10, x 0:9.
    assert mean.GetSize() == (9, 9, 8)
    reference = sitk.ReadImage(str(image))
    assert mean.GetOrigin() == reference.TransformIndexToPhysicalPoint((0, 1, 0))
    values = sitk.GetArrayFromImage(mean)
    roi = sitk.GetArrayFromImage(sitk.ReadImage(str(mask)))[0:8, 1:10, 0:9] == 1
    assert np.all(values[~roi] == -7.0)
    assert "original_shape_VoxelVolume" not in out


@pytest.mark.oracle
def test_declined_deprecated_features_are_init_value_maps(tmp_path):
    """PyRadiomics' voxel mode returns the deprecated GLDM duplicates as maps of initValue."""
    featureextractor = pytest.importorskip("radiomics.featureextractor")
    image, mask, _ = _case(tmp_path)
    params = {
        "setting": {"binWidth": 25},
        "featureClass": {"gldm": ["DependencePercentage", "DependenceEntropy"]},
        "voxelSetting": {"kernelRadius": 1, "initValue": -3.0},
    }
    ours = radflow.extract(str(image), str(mask), params, voxel_based=True)
    theirs = featureextractor.RadiomicsFeatureExtractor(params).execute(
        str(image), str(mask), voxelBased=True
    )
    keys = [k for k in theirs if not k.startswith("diagnostics_")]
    assert [k for k in ours if not k.startswith("diagnostics_")] == keys
    declined = sitk.GetArrayFromImage(ours["original_gldm_DependencePercentage"])
    assert np.all(declined == -3.0)
    np.testing.assert_array_equal(
        declined, sitk.GetArrayFromImage(theirs["original_gldm_DependencePercentage"])
    )


def test_store_volume_gives_the_maps_of_the_files(tmp_path):
    """A store series is read box-only (ROI box + kernelRadius + filter margin): same maps."""
    from radflow.io.records import LabelMap
    from radflow.store.read import open_label, open_volume
    from radflow.store.write import write_series

    image_path, mask_path, _ = _case(tmp_path)
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    labels = [LabelMap(key="gtv", source="labelmap", image=mask, rois={1: "GTV"})]
    write_series(tmp_path / "store", "case1", "ct", image, labels, fingerprint="test")
    volume = open_volume(tmp_path / "store", "case1", "ct")
    label = open_label(tmp_path / "store", "case1", "ct", "gtv")
    params = {
        **PARAMS,
        "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}},
        "voxelSetting": {"kernelRadius": 2, "maskedKernel": False},
    }
    from_files = radflow.extract(image, mask, params, voxel_based=True)
    from_store = radflow.extract(volume, label, params, voxel_based=True)
    maps = [k for k, v in from_files.items() if isinstance(v, sitk.Image)]
    assert maps == [k for k, v in from_store.items() if isinstance(v, sitk.Image)]
    for key in maps:
        a, b = from_files[key], from_store[key]
        assert a.GetSize() == b.GetSize()
        np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(
            sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b), rtol=1e-6, atol=1e-9
        )


def test_command_line_bad_input_one_line_each(tmp_path, capsys):
    """kernelRadius < 1, only shape classes, maps over the memory budget: exit 2, one line."""
    image, mask, _ = _case(tmp_path)
    cases = {
        "radius.yaml": (
            {**PARAMS, "voxelSetting": {"kernelRadius": 0}},
            ["'kernelRadius'", "> 0"],
        ),
        "shape.yaml": ({"featureClass": {"shape": None}}, ["no shape features", "firstorder"]),
        # ROI box 4 x 5 x 7 grown by 1 and clipped at x = 0: 6 x 7 x 8 = 336 voxels; 3 maps
        # and 1 filtered box of float64, 9 bytes of working set per voxel:
        # 336 * 8 * 4 + 336 * 9 = 13,776 bytes > 0.01 MiB (10,485 bytes)
        "budget.yaml": (
            {**PARAMS, "voxelSetting": {"kernelRadius": 1, "memoryBudget": 0.01}},
            ["3 map(s) of 6 x 7 x 8 voxels", "memory budget of 0.010 MiB", "radflow maps"],
        ),
    }
    for name, (params, words) in cases.items():
        (tmp_path / name).write_text(yaml.safe_dump(params))
        argv = ["extract", str(image), str(mask), "-p", str(tmp_path / name), "--mode", "voxel"]
        assert main([*argv, "--out-dir", str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for word in words:
            assert word in err, (name, err)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # just enough budget (0.014 MiB: 14,680 bytes): the same call runs
    params = {**PARAMS, "voxelSetting": {"kernelRadius": 1, "memoryBudget": 0.014}}
    out = radflow.extract(str(image), str(mask), params, voxel_based=True)
    assert "original_firstorder_Mean" in out


def test_memory_budget_default_is_half_the_available_memory(monkeypatch):
    monkeypatch.setattr(voxel, "available_memory_bytes", lambda: 2 * 2**30)
    params = load_params({"featureClass": {"glcm": None}})
    assert voxel.memory_budget_bytes(params) == 2**30
    # 24 GLCM maps + 1 filtered box on 200^3 voxels: 25 * 8 * 8e6 (+ 9 * 8e6) = 1.67 GB > 1 GiB
    with pytest.raises(voxel.MemoryBudgetError, match="half the available memory"):
        voxel.check_memory((200, 200, 200), params, params.feature_classes, _defaults)
    voxel.check_memory((100, 200, 200), params, params.feature_classes, _defaults)  # 0.84 GB


def _defaults(cls, _):
    from radflow.extraction.extractor import _feature_names

    return _feature_names(cls, None)


def test_memory_estimate_counts_the_kernels_working_set():
    """Maps and filtered box (float64) plus 9 bytes per box voxel for the grey levels and kernel
    mask, and 26 more for GLRLM's run tables, counted by hand on a 10 x 10 x 10 box."""
    params = load_params({"voxelSetting": {"kernelRadius": 1, "memoryBudget": 0.03}})

    def names(cls, _):
        raise AssertionError("the features are given")

    # one map + the Original box: 8 * 1000 * 2 + 9 * 1000 = 25,000 bytes <= 31,457 (0.03 MiB)
    voxel.check_memory((10, 10, 10), params, {"firstorder": ["Mean"]}, names)
    # with GLRLM: 8 * 1000 * 2 + (9 + 26) * 1000 = 51,000 bytes > 31,457
    with pytest.raises(voxel.MemoryBudgetError, match=r"1 map\(s\) of 10 x 10 x 10"):
        voxel.check_memory((10, 10, 10), params, {"glrlm": ["RunEntropy"]}, names)
