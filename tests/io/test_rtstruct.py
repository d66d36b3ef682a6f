"""RTSTRUCT: contour rasterisation by pixel centre and even-odd fill, round trips, errors."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_cases import SHAPE_ZYX, make_sagittal, masks, write_ct

from radflow.errors import InputError
from radflow.io.dicom import read_image_series
from radflow.io.dicom_write import write_rtstruct
from radflow.io.rtstruct import rasterise_roi, read_rtstruct


def _grid(
    size_xyz=(8, 6, 3),
    spacing=(1.0, 1.0, 2.0),
    origin=(0.0, 0.0, 0.0),
    direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> sitk.Image:
    image = sitk.Image(size_xyz, sitk.sitkInt16)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def _square(x0, x1, y0, y1, z):
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def test_rectangle_filled_by_pixel_centre_on_its_slice():
    # Centres x = 0..7, y = 0..5 (mm); the rectangle x in [1.5, 4.5], y in [1.5, 3.5]
    # holds centres x = 2, 3, 4 and y = 2, 3: 6 voxels, on slice z = 2 mm / 2 mm = 1.
    mask = rasterise_roi([_square(1.5, 4.5, 1.5, 3.5, 2.0)], _grid())
    expected = np.zeros((3, 6, 8), bool)
    expected[1, 2:4, 2:5] = True
    assert np.array_equal(mask, expected)


def test_inner_contour_is_a_hole_and_two_islands_both_count():
    outer = _square(0.5, 6.5, 0.5, 4.5, 0.0)  # centres x 1..6, y 1..4: 24 voxels
    hole = _square(2.5, 4.5, 1.5, 3.5, 0.0)  # centres x 3..4, y 2..3: 4 voxels
    island = _square(-0.5, 0.5, 4.5, 5.5, 0.0)  # centre (0, 5): 1 voxel
    mask = rasterise_roi([outer, hole, island], _grid())
    expected = np.zeros((3, 6, 8), bool)
    expected[0, 1:5, 1:7] = True
    expected[0, 2:4, 3:5] = False
    expected[0, 5, 0] = True
    assert mask.sum() == 24 - 4 + 1
    assert np.array_equal(mask, expected)


def test_rotated_and_flipped_grid_uses_the_image_direction():
    # Image rows run along -y and columns along +x: direction columns (1,0,0), (0,-1,0), (0,0,-1);
    # origin at y = 5 mm. A contour around the point (x=2, y=4, z=0) mm, which is index
    # (x=2, y=(5-4)/1=1, z=0).
    image = _grid(direction=(1, 0, 0, 0, -1, 0, 0, 0, -1), origin=(0.0, 5.0, 0.0))
    mask = rasterise_roi([_square(1.6, 2.4, 3.6, 4.4, 0.0)], image)
    assert np.argwhere(mask).tolist() == [[0, 1, 2]]
    assert image.TransformPhysicalPointToIndex((2.0, 4.0, 0.0)) == (2, 1, 0)


def test_contour_outside_the_slices_and_empty_roi_are_errors():
    with pytest.raises(InputError, match="outside the image's 3 slices"):
        rasterise_roi([_square(1, 3, 1, 3, 9.0)], _grid(), source="RS.dcm", roi_name="GTV")
    with pytest.raises(InputError, match="covers no voxel") as err:
        # Between centres x = 2 and 3: no centre inside.
        rasterise_roi([_square(2.1, 2.9, 1, 3, 0.0)], _grid(), source="RS.dcm", roi_name="GTV")
    assert err.value.source == "RS.dcm"


def test_round_trip_reproduces_every_mask_exactly(tmp_path):
    files = write_ct(tmp_path)
    rois = masks()
    path = write_rtstruct(tmp_path / "RS.dcm", files, rois)
    image = read_image_series(files)

    labels, errors = read_rtstruct(path, image)

    assert errors == []
    assert [label.rois for label in labels] == [{1: name} for name in rois]
    assert [label.key for label in labels] == [
        "ring",
        "corner_2_slices",
        "islands",
        "irregular",
        "gtv_1_overlap",
    ]
    for label, (name, mask) in zip(labels, rois.items()):
        array = sitk.GetArrayFromImage(label.image)
        assert array.dtype == np.uint8
        assert label.source == "rtstruct"
        # Exact, not a Dice: the contours run between inside and outside
        # centres, so a pixel-centre fill cannot land on them.
        assert np.array_equal(array, mask), name
        assert label.image.GetOrigin() == image.GetOrigin()
        assert label.image.GetSpacing() == image.GetSpacing()
    # The cases are what they claim: the ring has a hole, "corner" spans two slices.
    assert rois["Ring"][2, 0, 3] and not rois["Ring"][2, 2, 3]
    assert np.flatnonzero(rois["corner 2 slices"].any(axis=(1, 2))).tolist() == [3, 4]


def test_round_trip_on_a_sagittal_series(tmp_path):
    files = write_ct(tmp_path)
    make_sagittal(files)
    rois = masks()
    path = write_rtstruct(tmp_path / "RS.dcm", files, {"Ring": rois["Ring"]})
    # Contour points now vary in y and z at a fixed x per slice.
    contour = pydicom.dcmread(path).ROIContourSequence[0].ContourSequence[0]
    assert len({float(v) for v in contour.ContourData[0::3]}) == 1
    labels, errors = read_rtstruct(path, read_image_series(files))
    assert errors == []
    assert np.array_equal(sitk.GetArrayFromImage(labels[0].image), rois["Ring"])


def test_written_rtstruct_references_its_series(tmp_path):
    files = write_ct(tmp_path)
    path = write_rtstruct(
        tmp_path / "RS.dcm", files, {"Ring": masks()["Ring"]}, structure_set_label="test"
    )
    ds = pydicom.dcmread(path)
    image = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert ds.StructureSetLabel == "test"
    assert ds.PatientID == image.PatientID and ds.StudyInstanceUID == image.StudyInstanceUID
    series_ref = (
        ds.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
    )
    assert series_ref.SeriesInstanceUID == image.SeriesInstanceUID
    referenced = {item.ReferencedSOPInstanceUID for item in series_ref.ContourImageSequence}
    assert referenced == {pydicom.dcmread(f).SOPInstanceUID for f in files}
    contours = ds.ROIContourSequence[0].ContourSequence
    # The ring is on slices 1..3: an outer and an inner (hole) contour each.
    assert len(contours) == 6
    assert {c.ContourGeometricType for c in contours} == {"CLOSED_PLANAR"}
    # Each contour is planar at its slice's z: origin z -10 mm + k * 2.5 mm.
    zs = sorted({float(c.ContourData[2]) for c in contours})
    assert zs == [-7.5, -5.0, -2.5]


def test_empty_roi_is_reported_and_the_others_kept(tmp_path):
    files = write_ct(tmp_path)
    rois = masks()
    path = write_rtstruct(
        tmp_path / "RS.dcm", files, {"Ring": rois["Ring"], "Nothing": np.zeros(SHAPE_ZYX, bool)}
    )
    labels, errors = read_rtstruct(path, read_image_series(files))
    assert [label.key for label in labels] == ["ring"]
    assert len(errors) == 1
    assert errors[0].source == str(path)
    assert errors[0].reason == "ROI 'Nothing' has no closed planar contour"


def test_not_an_rtstruct_is_refused(tmp_path):
    files = write_ct(tmp_path)
    with pytest.raises(InputError, match="not an RTSTRUCT"):
        read_rtstruct(files[0], read_image_series(files))
