"""DICOM SEG: round trips through highdicom, BINARY and FRACTIONAL, and errors."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_cases import SHAPE_ZYX, masks, stored_ct, write_ct

from radflow.errors import InputError
from radflow.io.dicom import read_image_series, scan_dicom, sort_slices
from radflow.io.dicom_write import write_seg
from radflow.io.seg import read_seg


def _uids(files):
    return [str(ds.SOPInstanceUID) for ds in sort_slices(files).headers]


def test_binary_round_trip_overlapping_segments(tmp_path):
    files = write_ct(tmp_path)
    rois = masks()
    chosen = {
        "Ring": rois["Ring"],
        "GTV-1 (overlap)": rois["GTV-1 (overlap)"],
        "irregular": rois["irregular"],
    }
    assert (chosen["Ring"] & chosen["GTV-1 (overlap)"]).any()  # they do overlap
    path = write_seg(tmp_path / "seg.dcm", files, chosen)
    image = read_image_series(files)

    labels, errors = read_seg(path, image, _uids(files))

    assert errors == []
    assert [label.key for label in labels] == ["ring", "gtv_1_overlap", "irregular"]
    assert [label.rois for label in labels] == [{1: name} for name in chosen]
    for label, mask in zip(labels, chosen.values()):
        assert label.source == "seg"
        assert np.array_equal(sitk.GetArrayFromImage(label.image), mask)
        assert label.image.GetOrigin() == image.GetOrigin()
        assert label.image.GetDirection() == image.GetDirection()


def test_fractional_segments_are_thresholded_at_one_half(tmp_path):
    files = write_ct(tmp_path)
    # Values 0, 1/4, 1/2, 3/4, 1 in turn along x (stored as 8-bit fractions of 255,
    # so 1/2 is 128/255 > 0.5 and 1/4 is 64/255 < 0.5).
    fraction = np.broadcast_to((np.arange(SHAPE_ZYX[2]) % 5) / 4.0, SHAPE_ZYX).copy()
    path = write_seg(
        tmp_path / "seg.dcm", files, {"soft": fraction}, segmentation_type="FRACTIONAL"
    )
    assert pydicom.dcmread(path).SegmentationType == "FRACTIONAL"

    labels, errors = read_seg(path, read_image_series(files), _uids(files))

    assert errors == []
    expected = fraction >= 0.5
    assert expected[0, 0].tolist() == [False, False, True, True, True, False, False]
    assert np.array_equal(sitk.GetArrayFromImage(labels[0].image), expected)


def test_empty_segment_is_reported_and_the_others_kept(tmp_path):
    files = write_ct(tmp_path)
    path = write_seg(
        tmp_path / "seg.dcm", files, {"Ring": masks()["Ring"], "nothing": np.zeros(SHAPE_ZYX, bool)}
    )
    labels, errors = read_seg(path, read_image_series(files), _uids(files))
    assert [label.key for label in labels] == ["ring"]
    assert [(e.source, e.reason) for e in errors] == [
        (str(path), "segment 2 'nothing' covers no voxel")
    ]


def test_seg_of_another_series_is_refused(tmp_path):
    files = write_ct(tmp_path / "a")
    other = write_ct(tmp_path / "b", stored_ct(seed=5))
    path = write_seg(tmp_path / "a" / "seg.dcm", other, {"Ring": masks()["Ring"]})
    with pytest.raises(InputError, match="do not map onto the referenced series") as err:
        read_seg(path, read_image_series(files), _uids(files))
    assert err.value.source == str(path)
    # A scan of folder a alone finds the SEG's series missing.
    scan = scan_dicom(tmp_path / "a")
    assert [e.source for e in scan.errors] == [str(path)]


def test_seg_is_found_by_the_scan_and_loaded_with_its_series(tmp_path):
    from radflow.io.dicom_series import load_dicom_series

    files = write_ct(tmp_path)
    write_seg(tmp_path / "seg.dcm", files, {"Ring": masks()["Ring"]})
    scan = scan_dicom(tmp_path)
    assert [(lab.modality, lab.path.name) for lab in scan.labels] == [("SEG", "seg.dcm")]
    record = load_dicom_series(scan, next(iter(scan.series)))
    assert [(label.key, label.source) for label in record.labels] == [("ring", "seg")]
    assert np.array_equal(sitk.GetArrayFromImage(record.labels[0].image), masks()["Ring"])
