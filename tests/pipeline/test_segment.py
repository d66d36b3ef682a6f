"""Threshold segmentation of a stored series, through the CLI."""

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.io.records import LabelMap
from radflow.store.catalogue import label_keys, list_series
from radflow.store.read import open_label
from radflow.store.write import write_series


def _pet_store(tmp_path):
    suv = np.full((10, 20, 20), 1.0, np.float32)
    suv[3:7, 5:10, 5:10] = 8.0  # lesion
    suv[3:7, 12:18, 12:18] = 4.0  # hot organ outside the region
    image = sitk.GetImageFromArray(suv)
    image.SetSpacing((2.0, 2.0, 3.0))
    image.SetOrigin((-20.0, -20.0, 5.0))
    region = np.zeros(suv.shape, np.uint8)
    region[2:8, 3:11, 3:11] = 1
    region_image = sitk.GetImageFromArray(region)
    region_image.CopyInformation(image)
    store = tmp_path / "store"
    write_series(
        store,
        "P1",
        "PT-S1",
        image,
        [LabelMap("box", "rtstruct", region_image, {1: "box"})],
        attrs={"modality": "PT"},
        fingerprint="f",
    )
    return store, suv


def test_relative_suv_segmentation_adds_a_label(tmp_path, capsys):
    store, suv = _pet_store(tmp_path)
    code = main(
        [
            "segment",
            str(store),
            "--case",
            "P1",
            "--series",
            "PT-S1",
            "--method",
            "suv-relative",
            "--fraction",
            "0.4",
            "--within",
            "box",
            "--name",
            "GTV 40%",
        ]
    )
    assert code == 0
    assert "gtv_40" in capsys.readouterr().out
    assert label_keys(store, "P1", "PT-S1") == ["box", "gtv_40"]
    label = open_label(store, "P1", "PT-S1", "gtv_40")
    expected = np.zeros(suv.shape, np.uint8)
    expected[3:7, 5:10, 5:10] = 1  # 40 % of SUVmax 8 = 3.2: the organ is outside the region
    np.testing.assert_array_equal(label.values, expected)
    assert label.attrs["rois"] == {1: "GTV 40%"}
    assert label.attrs["spacing_zyx"] == (3.0, 2.0, 2.0)
    (info,) = list_series(store)
    assert info.label_keys == ("box", "gtv_40")


def test_absolute_suv_keeps_largest_and_refuses_duplicate(tmp_path, capsys):
    store, _ = _pet_store(tmp_path)
    argv = [
        "segment",
        str(store),
        "--case",
        "P1",
        "--series",
        "PT-S1",
        "--method",
        "suv",
        "--threshold",
        "2.5",
    ]
    assert main(argv) == 0
    label = open_label(store, "P1", "PT-S1", "suv_threshold").values
    assert label.sum() == 4 * 6 * 6  # the larger of the two hot blobs
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err


def test_hu_needs_bounds(tmp_path, capsys):
    store, _ = _pet_store(tmp_path)
    assert main(["segment", str(store), "--case", "P1", "--series", "PT-S1", "--method", "hu"]) == 2
    assert "--low" in capsys.readouterr().err


def _segment(store, series, *options):
    return main(["segment", str(store), "--case", "P1", "--series", series, *options])


def test_fraction_takes_a_percentage_too(tmp_path, capsys):
    # The demo says "40 % of SUVmax": 40, 40% and 0.4 give the same ROI, and the line
    # printed says what was written (size in voxels and mL, the rule).
    store, suv = _pet_store(tmp_path)
    expected = np.zeros(suv.shape, np.uint8)
    expected[3:7, 5:10, 5:10] = 1
    for i, fraction in enumerate(("40", "40%", "0.4")):
        name = f"gtv{i}"
        options = ["--method", "suv-relative", "--fraction", fraction, "--within", "box"]
        assert _segment(store, "PT-S1", *options, "--name", name) == 0
        out = capsys.readouterr().out
        np.testing.assert_array_equal(open_label(store, "P1", "PT-S1", name).values, expected)
        # 4 x 5 x 5 voxels of 3 x 2 x 2 mm = 1.2 mL
        assert "100 voxels, 1.2 mL" in out and "40 % of SUVmax" in out, out


def test_fraction_out_of_range_is_a_usage_error(tmp_path, capsys):
    store, _ = _pet_store(tmp_path)
    for fraction in ("0", "400", "-0.4", "forty"):
        with pytest.raises(SystemExit) as exc:
            _segment(store, "PT-S1", "--method", "suv-relative", "--fraction", fraction)
        assert exc.value.code == 2
        assert "percentage" in capsys.readouterr().err
    assert label_keys(store, "P1", "PT-S1") == ["box"]


def test_method_must_suit_the_modality(tmp_path, capsys):
    # A CT thresholded at 2.5 "SUV" used to become a litre-sized ROI: refused, nothing written.
    store, suv = _pet_store(tmp_path)
    ct = sitk.GetImageFromArray((suv * 100).astype(np.int16))
    ct.SetSpacing((2.0, 2.0, 3.0))
    write_series(store, "P1", "CT-S1", ct, [], attrs={"modality": "CT"}, fingerprint="g")
    assert _segment(store, "CT-S1", "--method", "suv") == 2
    err = capsys.readouterr().err
    assert "P1/CT-S1" in err and "PET" in err and "'CT'" in err and err.count("\n") == 1
    assert label_keys(store, "P1", "CT-S1") == []
    assert _segment(store, "PT-S1", "--method", "hu", "--low", "0", "--high", "5") == 2
    assert "needs a CT series" in capsys.readouterr().err
    assert _segment(store, "CT-S1", "--method", "hu", "--low", "500", "--high", "900") == 0
    assert "100 voxels, 1.2 mL, 500 to 900 HU" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--box", "5:2,0:10,0:10"], "box_zyx is empty along z"),
        (["--seed", "0,0,99"], "outside the image"),
        (["--min-size-mm3", "-1"], "min_size_mm3 must be >= 0"),
        (["--threshold", "0"], "threshold_suv must be > 0"),
    ],
)
def test_bad_settings_are_one_line_naming_the_series(tmp_path, capsys, options, message):
    store, _ = _pet_store(tmp_path)
    assert _segment(store, "PT-S1", "--method", "suv", *options) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "P1/PT-S1" in err and message in err, err


def test_malformed_box_and_seed_are_usage_errors(tmp_path, capsys):
    store, _ = _pet_store(tmp_path)
    for option, value in (("--box", "0:5,0:5"), ("--seed", "1,2"), ("--box", "a:b,0:1,0:1")):
        with pytest.raises(SystemExit) as exc:
            _segment(store, "PT-S1", "--method", "suv", option, value)
        assert exc.value.code == 2
        assert f"{value!r}: expected" in capsys.readouterr().err
