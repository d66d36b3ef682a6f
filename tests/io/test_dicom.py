"""DICOM image series: scanning, geometric sorting, rescaling, errors, metadata."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_cases import (
    CT_SERIES,
    ORIGIN_ZYX,
    PATIENT,
    SHAPE_ZYX,
    SPACING_ZYX,
    STUDY,
    edit_header,
    make_sagittal,
    masks,
    stored_ct,
    write_ct,
)
from pydicom.encaps import encapsulate

from radflow.errors import InputError
from radflow.io.acquisition import acquisition_metadata
from radflow.io.dicom import read_image_series, scan_dicom, sort_slices
from radflow.io.dicom_series import load_dicom_folder, load_dicom_series
from radflow.io.dicom_write import write_image_series, write_rtstruct


def test_sorted_by_geometry_not_by_name_or_instance_number(tmp_path):
    volume = stored_ct()
    files = write_ct(tmp_path / "s", volume)
    # Names and InstanceNumbers in an order unrelated to z.
    perm = [3, 0, 4, 1, 2]
    renamed = []
    for k, path in enumerate(files):
        edit_header(path, InstanceNumber=10 - perm[k])
        new = path.with_name(f"x{perm[k]}_{'abcde'[4 - k]}.dcm")
        path.rename(new)
        renamed.append(new)

    image = read_image_series(sorted(renamed))

    assert np.array_equal(sitk.GetArrayFromImage(image), volume.astype(np.int16) - 1024)
    assert [p.name for p in sort_slices(sorted(renamed)).files] == [p.name for p in renamed]


def test_geometry_is_what_was_written(tmp_path):
    image = read_image_series(write_ct(tmp_path))
    # SimpleITK order is (x, y, z): reverse the (z, y, x) values written.
    assert image.GetSize() == SHAPE_ZYX[::-1]
    assert image.GetSpacing() == pytest.approx(SPACING_ZYX[::-1], abs=1e-12)
    assert image.GetOrigin() == pytest.approx(ORIGIN_ZYX[::-1], abs=1e-12)
    assert image.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    # Physical position of voxel (x=6, y=5, z=4) by hand: origin + index * spacing.
    assert image.TransformIndexToPhysicalPoint((6, 5, 4)) == pytest.approx(
        (-30.5 + 6 * 0.7, 20.25 + 5 * 0.8, -10.0 + 4 * 2.5)
    )


def test_slices_sorted_along_the_normal_for_a_feet_first_stack(tmp_path):
    """With z decreasing with the file order, the image still runs along +normal."""
    volume = stored_ct()
    files = write_ct(tmp_path, volume)
    for k, path in enumerate(files):  # mirror z: slice k now lies at -z_k
        edit_header(path, ImagePositionPatient=[-30.5, 20.25, 10.0 - k * 2.5])
    image = read_image_series(files)
    assert image.GetOrigin()[2] == pytest.approx(10.0 - 4 * 2.5)
    assert np.array_equal(sitk.GetArrayFromImage(image), volume[::-1].astype(np.int16) - 1024)


def test_rescale_gives_int16_hu_and_float32_for_a_fractional_slope(tmp_path):
    stored = stored_ct()
    ct = read_image_series(write_ct(tmp_path / "ct", stored))
    assert ct.GetPixelID() == sitk.sitkInt16
    # Stored 0 -> -1024 HU; stored 4095 -> 3071 HU.
    assert np.array_equal(sitk.GetArrayFromImage(ct), stored.astype(np.int32) - 1024)

    mr_files = write_image_series(
        stored,
        tmp_path / "mr",
        modality="MR",
        spacing_zyx=SPACING_ZYX,
        origin_zyx=ORIGIN_ZYX,
        patient=PATIENT,
        study=STUDY,
        series={},
        rescale_slope=0.25,
        rescale_intercept=1.5,
    )
    mr = read_image_series(mr_files)
    assert mr.GetPixelID() == sitk.sitkFloat32
    assert np.array_equal(sitk.GetArrayFromImage(mr), stored * 0.25 + 1.5)


def test_each_slice_keeps_its_own_rescale_slope(tmp_path):
    """PET consoles scale every slice on its own: slice k uses slope (k + 1) / 8."""
    stored = stored_ct()
    files = write_image_series(
        stored,
        tmp_path,
        modality="PT",
        spacing_zyx=SPACING_ZYX,
        origin_zyx=ORIGIN_ZYX,
        patient=PATIENT,
        study=STUDY,
        series={},
    )
    for k, path in enumerate(files):
        edit_header(path, RescaleSlope=str((k + 1) / 8))
    values = sitk.GetArrayFromImage(read_image_series(files))
    expected = stored * (np.arange(1, 6) / 8)[:, None, None]
    assert np.array_equal(values, expected.astype(np.float32))


def test_two_series_in_one_folder_are_separated(tmp_path):
    ct_files = write_ct(tmp_path / "mixed", prefix="CT")
    mr_files = write_image_series(
        stored_ct((3, 6, 7)),
        tmp_path / "mixed" / "sub",
        modality="MR",
        spacing_zyx=(4, 1, 1),
        origin_zyx=(0, 0, 0),
        patient=PATIENT,
        study=STUDY,
        series={"SeriesDescription": "T1"},
        file_prefix="MR",
    )
    # A DICOM file without extension is found by its preamble; other files are skipped.
    no_ext = mr_files[0].with_suffix("")
    mr_files[0].rename(no_ext)
    (tmp_path / "mixed" / "notes.txt").write_text("not DICOM")
    (tmp_path / "mixed" / "sub" / "data.bin").write_bytes(b"\x00" * 500)

    scan = scan_dicom(tmp_path / "mixed")

    assert scan.errors == []
    by_modality = {s.modality: s for s in scan.series.values()}
    assert sorted(by_modality) == ["CT", "MR"]
    assert set(by_modality["CT"].files) == set(ct_files)
    assert set(by_modality["MR"].files) == {no_ext, *mr_files[1:]}
    assert by_modality["CT"].series_uid == str(pydicom.dcmread(ct_files[0]).SeriesInstanceUID)


def test_truncated_pixel_data_names_the_file(tmp_path):
    files = write_ct(tmp_path)
    data = files[2].read_bytes()
    files[2].write_bytes(data[:-40])
    with pytest.raises(InputError) as err:
        read_image_series(files)
    assert err.value.source == str(files[2])
    assert "pixel data cannot be decoded" in str(err.value)


def test_unparseable_dicom_is_recorded_and_others_kept(tmp_path):
    files = write_ct(tmp_path / "ct")
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff")
    # Cut inside the header, after the file meta: parses, but holds no Modality.
    cut = tmp_path / "cut"
    cut.write_bytes(files[0].read_bytes()[:400])
    scan = scan_dicom(tmp_path)
    assert [e.source for e in scan.errors] == [str(broken), str(cut)]
    assert "Modality (0008,0060) missing" in scan.errors[1].reason
    assert len(scan.series) == 1
    assert set(next(iter(scan.series.values())).files) == set(files)


def test_unsupported_transfer_syntax_names_the_file(tmp_path):
    files = write_ct(tmp_path)
    ds = pydicom.dcmread(files[1])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    ds.PixelData = encapsulate([b"\x00" * 84])
    ds.save_as(files[1])
    with pytest.raises(InputError) as err:
        read_image_series(files)
    assert err.value.source == str(files[1])
    assert "transfer syntax 1.2.840.10008.1.2.4.100" in err.value.reason


@pytest.mark.parametrize(
    ("edit", "bad", "message"),
    [
        ({"ImagePositionPatient": [-30.5, 20.25, -7.5]}, 2, "same ImagePositionPatient"),
        ({"ImageOrientationPatient": [0, 1, 0, 1, 0, 0]}, 3, "ImageOrientationPatient differs"),
        ({"ImagePositionPatient": [-25.5, 20.25, -5.0]}, 2, "not along the slice normal"),
        ({"PixelSpacing": [0.9, 0.7]}, 1, "PixelSpacing differs"),
    ],
)
def test_inconsistent_geometry_is_refused(tmp_path, edit, bad, message):
    files = write_ct(tmp_path)
    edit_header(files[bad], **edit)
    with pytest.raises(InputError, match=message) as err:
        read_image_series(files)
    assert err.value.source == str(files[bad])


def test_missing_slice_is_refused(tmp_path):
    files = write_ct(tmp_path)
    with pytest.raises(InputError, match="slice spacing 5 mm") as err:
        read_image_series(files[:2] + files[3:])
    assert err.value.source == str(files[3])


def test_acquisition_metadata_has_no_identifiers(tmp_path):
    files = write_ct(tmp_path)
    meta = acquisition_metadata(pydicom.dcmread(files[0], stop_before_pixels=True))
    assert meta["modality"] == "CT"
    assert meta["manufacturer"] == "ACME"
    assert meta["manufacturer_model"] == "Scanner 9"
    assert meta["convolution_kernel"] == "B30f"
    assert meta["kvp"] == 120.0
    assert meta["exposure_mas"] == 250.0
    assert meta["slice_thickness_mm"] == 2.5
    assert meta["pixel_spacing_mm"] == (0.8, 0.7)
    assert meta["body_part"] == "CHEST"
    assert meta["study_year"] == 2021
    assert meta["echo_time_ms"] is None
    ds = pydicom.dcmread(files[0])
    identifiers = [
        PATIENT["PatientName"],
        PATIENT["PatientID"],
        PATIENT["PatientBirthDate"],
        STUDY["StudyDate"],
        STUDY["AccessionNumber"],
        STUDY["InstitutionName"],
        STUDY["InstitutionAddress"],
        CT_SERIES["DeviceSerialNumber"],
        CT_SERIES["StationName"],
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        ds.FrameOfReferenceUID,
    ]
    text = repr(meta)
    assert [value for value in identifiers if str(value) in text] == []


def test_load_series_with_rtstruct_and_orphan_rtstruct(tmp_path):
    files = write_ct(tmp_path / "patient")
    rois = masks()
    write_rtstruct(
        tmp_path / "patient" / "RS.dcm",
        files,
        {"GTV": rois["Ring"], "empty": np.zeros(SHAPE_ZYX, bool)},
    )
    # An RTSTRUCT whose series is elsewhere: reported, the CT is still read.
    other = write_ct(tmp_path / "elsewhere", stored_ct(seed=3))
    write_rtstruct(tmp_path / "patient" / "orphan.dcm", other, {"GTV": rois["Ring"]})

    scan = scan_dicom(tmp_path / "patient")
    assert [e.source for e in scan.errors] == [str(tmp_path / "patient" / "orphan.dcm")]
    assert "which is not in" in scan.errors[0].reason

    errors: list = []
    uid = next(iter(scan.series))
    record = load_dicom_series(scan, uid, errors=errors)
    assert record.modality == "CT"
    assert record.source_uid == uid
    assert [label.key for label in record.labels] == ["gtv"]
    assert np.array_equal(sitk.GetArrayFromImage(record.labels[0].image), rois["Ring"])
    assert [e.reason for e in errors] == ["ROI 'empty' has no closed planar contour"]
    assert set(record.files) == {*files, tmp_path / "patient" / "RS.dcm"}
    # Without an error list, the per-ROI problem is raised.
    with pytest.raises(InputError, match="'empty'"):
        load_dicom_series(scan, uid)

    records, all_errors = load_dicom_folder(tmp_path / "patient")
    assert len(records) == 1 and len(all_errors) == 2


def test_single_slice_series_uses_slice_thickness(tmp_path):
    files = write_ct(tmp_path, stored_ct((1, 6, 7)))
    image = read_image_series(files)
    assert image.GetSize() == (7, 6, 1)
    assert image.GetSpacing()[2] == pytest.approx(2.5)


def test_scan_of_a_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        scan_dicom(tmp_path / "absent")


def test_a_failed_series_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real_save = pydicom.dataset.Dataset.save_as
    calls = []

    def failing_save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_ct(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_unknown_keywords(tmp_path):
    with pytest.raises(ValueError, match="'NotAKeyword' is not a DICOM keyword"):
        write_ct(tmp_path, series={"NotAKeyword": 1})


def test_sagittal_stack_geometry_follows_the_orientation(tmp_path):
    # Rows along +y (posterior), columns along -z (feet): the normal is
    # (0,1,0) x (0,0,-1) = (-1, 0, 0), so slices sort by decreasing x.
    volume = stored_ct()
    files = write_ct(tmp_path, volume)
    make_sagittal(files)
    image = read_image_series(files[::-1])
    assert image.GetDirection() == pytest.approx((0, 0, -1, 1, 0, 0, 0, -1, 0))
    assert image.GetOrigin() == pytest.approx((0.0, 20.0, 30.0))
    assert np.array_equal(sitk.GetArrayFromImage(image), volume.astype(np.int16) - 1024)
    # Voxel (column 6, row 5, slice 4): IPP of slice 4 + 6 * 0.7 mm along +y + 5 * 0.8 mm along -z.
    assert image.TransformIndexToPhysicalPoint((6, 5, 4)) == pytest.approx(
        (-10.0, 20.0 + 6 * 0.7, 30.0 - 5 * 0.8)
    )
