"""Threshold segmentation of a stored series, through the CLI."""

import numpy as np
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
