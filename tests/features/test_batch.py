"""Batch mode: one output row per input row, errors recorded per row, atomic output."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk
import volumes

from radflow.errors import InputError, SettingsError
from radflow.extraction.batch import extract_batch
from radflow.extraction.extractor import extract

PARAMS = {
    "setting": {"binWidth": 25},
    "featureClass": {"firstorder": ["Mean", "Entropy"], "shape": ["VoxelVolume"]},
}


@pytest.fixture
def cases(tmp_path):
    """A batch file: two good cases (one with Label 2), a missing file, an absent label."""
    ct_image, ct_mask = volumes.ct()
    mr_image, mr_mask = volumes.mr()
    (tmp_path / "data").mkdir()
    for name, image in {
        "ct": ct_image,
        "ct_roi": ct_mask,
        "mr": mr_image,
        "mr_roi": mr_mask,
    }.items():
        sitk.WriteImage(image, str(tmp_path / "data" / f"{name}.nrrd"))
    rows = [
        {"Image": "data/ct.nrrd", "Mask": "data/ct_roi.nrrd", "Label": "", "Patient": "P-001"},
        {
            "Image": str(tmp_path / "data/mr.nrrd"),
            "Mask": "data/mr_roi.nrrd",
            "Label": "2",
            "Patient": "P-002",
        },
        {"Image": "data/gone.nrrd", "Mask": "data/ct_roi.nrrd", "Label": "", "Patient": "P-003"},
        {"Image": "data/ct.nrrd", "Mask": "data/ct_roi.nrrd", "Label": "5", "Patient": "P-004"},
    ]
    path = tmp_path / "batch.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["Image", "Mask", "Label", "Patient"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read(path):
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        return reader.fieldnames, list(reader)


def test_rows_errors_and_passthrough(cases, tmp_path):
    out = tmp_path / "out" / "features.csv"
    summary = extract_batch(cases, PARAMS, out)

    assert (summary.rows, summary.succeeded) == (4, 2)
    assert [line for line, _ in summary.failed] == [4, 5]
    columns, rows = _read(out)
    assert columns[:5] == ["Image", "Mask", "Label", "Patient", "error"]
    assert [row["Patient"] for row in rows] == ["P-001", "P-002", "P-003", "P-004"]
    assert rows[0]["Image"] == "data/ct.nrrd"  # passed through as given
    assert rows[2]["error"].endswith("gone.nrrd: no such file")
    assert "Label (5) not present in mask" in rows[3]["error"]
    assert rows[2]["original_firstorder_Mean"] == ""

    folder = tmp_path / "data"
    for row, (image, mask, label) in zip(rows[:2], [("ct", "ct_roi", None), ("mr", "mr_roi", 2)]):
        assert row["error"] == ""
        expected = extract(folder / f"{image}.nrrd", folder / f"{mask}.nrrd", PARAMS, label=label)
        for key in (
            "original_firstorder_Mean",
            "original_firstorder_Entropy",
            "original_shape_VoxelVolume",
        ):
            assert float(row[key]) == expected[key]
        assert row["diagnostics_Image-original_Hash"] == expected["diagnostics_Image-original_Hash"]
    assert "2 of 4 cases extracted" in summary.report()
    assert [p.name for p in out.parent.iterdir()] == ["features.csv"]


def test_parallel_rows_give_the_same_file(cases, tmp_path):
    extract_batch(cases, PARAMS, tmp_path / "serial.csv")
    extract_batch(cases, PARAMS, tmp_path / "parallel.csv", jobs=2)
    serial, parallel = _read(tmp_path / "serial.csv"), _read(tmp_path / "parallel.csv")
    assert serial[0] == parallel[0]
    drop = ("diagnostics_Versions", "diagnostics_Configuration")
    keep = [c for c in serial[0] if not c.startswith(drop)]
    assert [[r[c] for c in keep] for r in serial[1]] == [[r[c] for c in keep] for r in parallel[1]]


def test_bad_batch_files_and_settings_fail_before_any_row(cases, tmp_path):
    out = tmp_path / "never.csv"
    with pytest.raises(SettingsError, match="binWidht"):
        extract_batch(cases, {"setting": {"binWidht": 3}}, out)
    with pytest.raises(SettingsError, match="jobs"):
        extract_batch(cases, PARAMS, out, jobs=0)
    no_mask = tmp_path / "no_mask.csv"
    no_mask.write_text("Image,Label\nct.nrrd,1\n")
    with pytest.raises(InputError, match=r"no_mask\.csv: missing column\(s\) 'Mask'"):
        extract_batch(no_mask, PARAMS, out)
    with pytest.raises(InputError, match="batch file not found"):
        extract_batch(tmp_path / "absent.csv", PARAMS, out)
    assert not out.exists()


def test_non_integer_label_is_a_row_error(cases, tmp_path):
    text = cases.read_text().replace(
        "data/ct.nrrd,data/ct_roi.nrrd,,P-001", "data/ct.nrrd,data/ct_roi.nrrd,one,P-001"
    )
    cases.write_text(text)
    summary = extract_batch(cases, PARAMS, tmp_path / "out.csv")
    assert summary.failed[0] == (2, "column 'Label': 'one' is not an integer")
    assert np.isfinite(float(_read(tmp_path / "out.csv")[1][1]["original_firstorder_Mean"]))
