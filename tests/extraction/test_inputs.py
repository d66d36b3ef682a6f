"""Extraction inputs that used to give wrong numbers silently (issue 12).

- IBSI mode takes label 1 of a multi-label mask by default, as PyRadiomics
  mode does; every label merged only with ``label="all"`` (``--label all``).
- A mask that cannot be a label map (an image given as the mask: image and
  mask swapped; fractional values) is refused in both modes and in batch mode,
  and a legitimate multi-label map still works.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.errors import InputError, SettingsError
from radflow.extraction.batch import extract_batch
from radflow.extraction.extractor import extract
from radflow.extraction.ibsi import compute_ibsi, extract_ibsi
from radflow.preprocess.roi_checks import MAX_LABEL_VALUES, check_label_values

SPACING_XYZ = (0.8, 0.8, 2.0)
PARAMS = {
    "setting": {"binWidth": 25},
    "featureClass": {"firstorder": ["Mean", "Maximum"], "shape": ["VoxelVolume"]},
}
COUNT_TAG = "morph_mask_vox_count_init_roi"  # ROI voxels before any IBSI processing


def _image(array: np.ndarray) -> sitk.Image:
    out = sitk.GetImageFromArray(array)
    out.SetSpacing(SPACING_XYZ)
    out.SetOrigin((-10.0, 4.0, 30.0))
    return out


def _ct_and_labels(shape_zyx=(10, 24, 26)):
    """int16 CT (lung ~ -850 HU, tumour ~ 40 HU) and labels: tumour 1, lung 2, node 3."""
    rng = np.random.default_rng(12)
    z, y, x = np.indices(shape_zyx)
    hu = -850 + rng.normal(0, 40, shape_zyx)
    labels = np.zeros(shape_zyx, np.uint8)
    labels[1:9, 2:22, 2:24] = 2  # lung
    tumour = (z - 5) ** 2 / 9 + (y - 10) ** 2 / 25 + (x - 12) ** 2 / 25 <= 1
    labels[tumour] = 1
    hu[tumour] = 40 + rng.normal(0, 30, np.count_nonzero(tumour))
    labels[6:8, 16:20, 18:22] = 3  # a node inside the lung
    hu[labels == 3] = 60 + rng.normal(0, 10, np.count_nonzero(labels == 3))
    return np.round(hu).astype(np.int16), labels


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    hu, labels = _ct_and_labels()
    paths = {"ct": folder / "ct.nii.gz", "labels": folder / "labels.nii.gz"}
    sitk.WriteImage(_image(hu), str(paths["ct"]))
    sitk.WriteImage(_image(labels), str(paths["labels"]))
    pet = (1.0 + np.abs(hu.astype(np.float32)) / 400).astype(np.float32)  # SUV-like, fractional
    paths["pet"] = folder / "pet.nii.gz"
    sitk.WriteImage(_image(pet), str(paths["pet"]))
    paths["params"] = folder / "params.yaml"
    paths["params"].write_text(
        "setting: {binWidth: 25}\n"
        "featureClass: {firstorder: [Mean, Maximum], shape: [VoxelVolume]}\n"
    )
    return paths, labels


# -- IBSI mode: label 1 by default ---------------------------------------------------------------


def test_ibsi_mode_takes_label_1_by_default_and_merges_only_when_asked(files):
    paths, labels = files
    default = extract_ibsi(paths["ct"], paths["labels"], "A")
    assert default[COUNT_TAG] == np.count_nonzero(labels == 1)
    assert extract_ibsi(paths["ct"], paths["labels"], "A", label=1) == default
    merged = extract_ibsi(paths["ct"], paths["labels"], "A", label="all")
    assert merged[COUNT_TAG] == np.count_nonzero(labels)
    assert merged["morph_volume"] > default["morph_volume"]
    node = extract_ibsi(paths["ct"], paths["labels"], "A", label=3)
    assert node[COUNT_TAG] == np.count_nonzero(labels == 3)
    with pytest.raises(InputError, match=r"label 4 is absent .*\[1, 2, 3\].*'all'"):
        extract_ibsi(paths["ct"], paths["labels"], "A", label=4)
    for bad in (0, -1, "every", 1.5, True):
        with pytest.raises(SettingsError, match="integer > 0 or 'all'"):
            extract_ibsi(paths["ct"], paths["labels"], "A", label=bad)


def test_ibsi_command_label_default_and_all(files, capsys):
    import json

    paths, labels = files
    image, mask = str(paths["ct"]), str(paths["labels"])
    assert main(["extract", image, mask, "--ibsi", "A"]) == 0
    assert json.loads(capsys.readouterr().out)[COUNT_TAG] == np.count_nonzero(labels == 1)
    assert main(["extract", image, mask, "--ibsi", "A", "--label", "all"]) == 0
    assert json.loads(capsys.readouterr().out)[COUNT_TAG] == np.count_nonzero(labels)
    assert main(["extract", image, mask, "--ibsi", "A", "-l", "3"]) == 0
    assert json.loads(capsys.readouterr().out)[COUNT_TAG] == np.count_nonzero(labels == 3)


def test_label_all_is_an_ibsi_mode_option(files, capsys):
    paths, _ = files
    argv = ["extract", str(paths["ct"]), str(paths["labels"]), "-p", str(paths["params"])]
    assert main([*argv, "--label", "all"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'all'" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: not a label at all
        main([*argv, "--label", "tumour"])
    assert exit_info.value.code == 2
    assert "label value > 0 or 'all'" in capsys.readouterr().err


def test_ibsi_arrays_must_be_a_roi_not_a_label_map():
    hu, labels = _ct_and_labels()
    with pytest.raises(InputError, match="boolean ROI"):
        compute_ibsi(hu, labels, spacing_zyx=SPACING_XYZ[::-1], config="A")
    # 0/1 integers are a ROI
    one = compute_ibsi(hu, (labels == 1).astype(np.uint8), spacing_zyx=(2.0, 0.8, 0.8), config="A")
    assert one[COUNT_TAG] == np.count_nonzero(labels == 1)


# -- image and mask swapped ----------------------------------------------------------------------


@pytest.mark.parametrize("image_key", ["ct", "pet"])
def test_swapped_image_and_mask_are_refused_by_the_api(files, image_key):
    paths, _ = files
    image = paths[image_key]
    with pytest.raises(InputError) as error:
        extract(paths["labels"], image, PARAMS)
    assert error.value.source == str(image) and "not a label map" in str(error.value)
    assert "swapped" in str(error.value)
    with pytest.raises(InputError) as error:
        extract_ibsi(paths["labels"], image, "A")
    assert error.value.source == str(image) and "not a label map" in str(error.value)
    with pytest.raises(InputError, match="not a label map"):  # SimpleITK images too
        extract(sitk.ReadImage(str(paths["labels"])), sitk.ReadImage(str(image)), PARAMS)


@pytest.mark.parametrize("mode", [["-p", "PARAMS"], ["--ibsi", "A"]])
@pytest.mark.parametrize("image_key", ["ct", "pet"])
def test_swapped_image_and_mask_on_the_command_line(files, mode, image_key, capsys):
    paths, _ = files
    options = [str(paths["params"]) if o == "PARAMS" else o for o in mode]
    image = str(paths[image_key])
    assert main(["extract", str(paths["labels"]), image, *options]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith(f"radflow extract: error: {image}: not a label map")
    assert captured.out == ""


def test_swapped_row_is_recorded_and_the_batch_goes_on(files, tmp_path):
    paths, labels = files
    batch = tmp_path / "batch.csv"
    rows = [
        {"Image": paths["ct"], "Mask": paths["labels"], "Label": "1"},
        {"Image": paths["labels"], "Mask": paths["ct"], "Label": "1"},
        {"Image": paths["ct"], "Mask": paths["labels"], "Label": "3"},
    ]
    with open(batch, "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["Image", "Mask", "Label"])
        writer.writeheader()
        writer.writerows(rows)
    summary = extract_batch(batch, PARAMS, tmp_path / "out.csv")
    assert summary.rows == 3 and [line for line, _ in summary.failed] == [3]
    assert summary.failed[0][1].startswith(f"{paths['ct']}: not a label map")
    with open(tmp_path / "out.csv", newline="") as stream:
        out = list(csv.DictReader(stream))
    assert [bool(r["error"]) for r in out] == [False, True, False]
    volume = np.prod(SPACING_XYZ)
    assert float(out[0]["original_shape_VoxelVolume"]) == pytest.approx(
        np.count_nonzero(labels == 1) * volume
    )
    assert float(out[2]["original_shape_VoxelVolume"]) == pytest.approx(
        np.count_nonzero(labels == 3) * volume
    )


def test_a_three_label_map_still_works_in_both_modes(files):
    paths, labels = files
    hu, _ = _ct_and_labels()
    for label in (1, 2, 3):
        result = extract(paths["ct"], paths["labels"], PARAMS, label=label)
        assert result["diagnostics_Mask-original_VoxelNum"] == np.count_nonzero(labels == label)
        assert result["original_firstorder_Mean"] == pytest.approx(hu[labels == label].mean())
    as_float = sitk.Cast(sitk.ReadImage(str(paths["labels"])), sitk.sitkFloat32)
    result = extract(sitk.ReadImage(str(paths["ct"])), as_float, PARAMS, label=3)
    assert result["diagnostics_Mask-original_VoxelNum"] == np.count_nonzero(labels == 3)
    ibsi = extract_ibsi(sitk.ReadImage(str(paths["ct"])), as_float, "A", label=3)
    assert ibsi[COUNT_TAG] == np.count_nonzero(labels == 3)


# -- the rule itself -----------------------------------------------------------------------------


def test_label_values_rule():
    rng = np.random.default_rng(0)
    shape = (6, 20, 20)
    # label maps: 0/1, a few labels, negative background-like values, many labels with background
    check_label_values(np.zeros(shape, np.uint8))
    check_label_values(rng.integers(0, 2, shape).astype(np.float64))
    check_label_values(np.full(shape, 7, np.int32))  # one label everywhere (a cropped ROI)
    many = np.zeros(shape, np.uint16)
    many.flat[: MAX_LABEL_VALUES * 4] = np.repeat(np.arange(1, MAX_LABEL_VALUES + 1), 4)
    check_label_values(many)  # 255 labels on 43 % of the voxels
    dense = rng.integers(1, 40, shape)  # 39 labels covering every voxel
    check_label_values(dense, whole_volume=False)  # a box of a label map may be covered
    labels = np.where(rng.random(shape) < 0.5, dense, 0)
    check_label_values(labels)  # ... the whole map leaves background
    check_label_values(sitk.GetImageFromArray(labels))

    with pytest.raises(InputError, match=r"^ct\.nii: not a label map: .*not whole numbers"):
        check_label_values(np.full(shape, 0.5, np.float32), source="ct.nii")
    nan = np.zeros(shape)
    nan[3, 4, 5] = np.nan
    with pytest.raises(InputError, match="NaN or infinity"):
        check_label_values(nan)
    many.flat[-1] = MAX_LABEL_VALUES + 1
    with pytest.raises(InputError, match="256 distinct non-zero values"):
        check_label_values(many)
    with pytest.raises(InputError, match=r"39 distinct non-zero values on 100% of the voxels"):
        check_label_values(dense)
    ct = rng.integers(-1024, 3000, shape).astype(np.int16)
    with pytest.raises(InputError, match="swapped"):
        check_label_values(ct, whole_volume=False)
    wide = np.zeros(shape, np.int64)
    wide[0, 0, :3] = [1, 2, 5_000_000]  # a span beyond the histogram: counted by sorting
    check_label_values(wide)
