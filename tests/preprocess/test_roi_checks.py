"""ROI checks and cropping: PyRadiomics' checkMask / cropToTumorMask as oracle."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import InputError, SettingsError
from radflow.preprocess.roi_checks import (
    BoundingBox,
    check_mask,
    crop_to_roi,
    geometry_mismatch,
    roi_bounding_box,
)

SHAPE_ZYX = (12, 16, 18)


def _image(spacing=(0.7, 0.7, 2.0)):
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1000, SHAPE_ZYX).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin((-12.5, 40.0, -300.25))
    return image


def _mask_like(image, labels):
    mask = sitk.GetImageFromArray(labels.astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def _labels(kind):
    labels = np.zeros(SHAPE_ZYX, np.uint8)
    if kind == "parts":  # two parts, one with a hole, plus label 2
        labels[2:6, 3:9, 4:10] = 1
        labels[3:5, 5:7, 6:8] = 0
        labels[8:10, 12:14, 14:17] = 1
        labels[10, 1:3, 1:3] = 2
    elif kind == "sheet":  # one voxel thick in z
        labels[7, 2:10, 5:9] = 1
    elif kind == "line":
        labels[4, 6, 2:12] = 1
    elif kind == "voxel":
        labels[4, 6, 2] = 1
    elif kind == "border":
        labels[0:3, 0:2, 15:18] = 1
    return labels


@pytest.fixture
def pyradiomics_tolerance():
    """Set SimpleITK's global tolerance like PyRadiomics' geometryTolerance, and restore it."""
    before = (
        sitk.ProcessObject.GetGlobalDefaultCoordinateTolerance(),
        sitk.ProcessObject.GetGlobalDefaultDirectionTolerance(),
    )

    def set_tolerance(value):
        sitk.ProcessObject.SetGlobalDefaultCoordinateTolerance(value)
        sitk.ProcessObject.SetGlobalDefaultDirectionTolerance(value)

    yield set_tolerance
    sitk.ProcessObject.SetGlobalDefaultCoordinateTolerance(before[0])
    sitk.ProcessObject.SetGlobalDefaultDirectionTolerance(before[1])


def _pyradiomics_check(image, mask, **settings):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    return imageoperations.checkMask(image, mask, **settings)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kind, label, settings",
    [
        ("parts", 1, {}),
        ("parts", 2, {}),
        ("sheet", 1, {}),
        ("line", 1, {"minimumROIDimensions": 1}),
        ("border", 1, {"minimumROIDimensions": 3, "minimumROISize": 17}),
    ],
)
def test_bounding_box_matches_pyradiomics(kind, label, settings):
    image = _image()
    mask = _mask_like(image, _labels(kind))
    expected, corrected = _pyradiomics_check(image, mask, label=label, **settings)
    box, ours_corrected = check_mask(
        image,
        mask,
        label=label,
        minimum_roi_dimensions=settings.get("minimumROIDimensions", 2),
        minimum_roi_size=settings.get("minimumROISize"),
    )
    assert corrected is None and ours_corrected is None
    np.testing.assert_array_equal(box.as_pyradiomics(), expected)
    zz, yy, xx = np.nonzero(_labels(kind) == label)  # by hand, (x, y, z) order
    assert box.lower_xyz == (xx.min(), yy.min(), zz.min())
    assert box.upper_xyz == (xx.max(), yy.max(), zz.max())


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kind, settings, reason",
    [
        (
            "voxel",
            {},
            "mask only contains 1 segmented voxel! Cannot extract features for a single voxel.",
        ),
        ("line", {}, "mask has too few dimensions (number of dimensions 1, minimum required 2)"),
        (
            "sheet",
            {"minimumROIDimensions": 3},
            "mask has too few dimensions (number of dimensions 2, minimum required 3)",
        ),
        # 18 voxels: PyRadiomics wants strictly more than minimumROISize
        (
            "border",
            {"minimumROISize": 18},
            "Size of the ROI is too small (minimum size: 18, ROI size: 18)",
        ),
    ],
)
def test_too_small_rois_refused_like_pyradiomics(kind, settings, reason):
    image = _image()
    mask = _mask_like(image, _labels(kind))
    with pytest.raises(ValueError):
        _pyradiomics_check(image, mask, label=1, **settings)
    with pytest.raises(InputError) as info:
        check_mask(
            image,
            mask,
            minimum_roi_dimensions=settings.get("minimumROIDimensions", 2),
            minimum_roi_size=settings.get("minimumROISize"),
            source="case7/mask.nrrd",
        )
    assert str(info.value) == f"case7/mask.nrrd: {reason}"


def test_absent_label():
    image = _image()
    with pytest.raises(InputError, match=r"Label \(3\) not present in mask. Choose from \[1, 2\]"):
        check_mask(image, _mask_like(image, _labels("parts")), label=3)
    with pytest.raises(
        InputError, match=r"No labels found in this mask \(i.e. nothing is segmented\)!"
    ):
        check_mask(image, _mask_like(image, _labels("empty")))
    with pytest.raises(InputError, match="not present"):
        roi_bounding_box(_mask_like(image, _labels("parts")), label=4)


GEOMETRY = [  # (what, change, tolerance, passes); image spacing[0] is 0.7 mm
    ("origin", (0.0, 6.5e-7, 0.0), None, True),  # < 1e-6 * 0.7 mm
    ("origin", (0.0, 0.0, 7.5e-7), None, False),  # > 1e-6 * 0.7 mm
    ("origin", (3e-5, 0.0, 0.0), 1e-4, True),
    ("origin", (8e-5, 0.0, 0.0), 1e-4, False),
    ("spacing", (0.0, 5e-7, 0.0), None, True),
    ("spacing", (0.0, 0.0, 1e-3), 1e-4, False),
    ("direction", 5e-7, None, True),
    ("direction", 2e-6, None, False),
    ("direction", 2e-6, 1e-5, True),
]


@pytest.mark.oracle
@pytest.mark.parametrize("what, change, tolerance, passes", GEOMETRY)
def test_geometry_tolerance_as_simpleitk(pyradiomics_tolerance, what, change, tolerance, passes):
    image = _image()
    mask = _mask_like(image, _labels("parts"))
    if what == "direction":
        direction = np.eye(3)
        direction[0, 1] = change
        mask.SetDirection(direction.ravel().tolist())
    else:
        getter, setter = (
            getattr(mask, f"Get{what.capitalize()}"),
            getattr(mask, f"Set{what.capitalize()}"),
        )
        setter(tuple(np.add(getter(), change)))
    pyradiomics_tolerance(1e-6 if tolerance is None else tolerance)  # 1e-6: SimpleITK's default
    assert (geometry_mismatch(image, mask, geometry_tolerance=tolerance) is None) == passes
    if passes:
        _pyradiomics_check(image, mask)
        check_mask(image, mask, geometry_tolerance=tolerance)
    else:
        with pytest.raises(ValueError, match="geometry mismatch"):
            _pyradiomics_check(image, mask)
        with pytest.raises(InputError, match=f"Image/Mask geometry mismatch \\({what} differs by"):
            check_mask(image, mask, geometry_tolerance=tolerance)


@pytest.mark.oracle
@pytest.mark.parametrize("change", ["shifted", "other_spacing", "cropped_mask"])
def test_correct_mask_matches_pyradiomics(change):
    image = _image()
    labels = _labels("parts")
    mask = _mask_like(image, labels)
    if change == "shifted":
        mask.SetOrigin(tuple(np.add(mask.GetOrigin(), (0.3, -0.2, 0.9))))
    elif change == "other_spacing":
        mask.SetSpacing((0.65, 0.75, 2.0))
    else:
        mask = mask[2:14, 1:15, 1:11]
    expected_box, expected_mask = _pyradiomics_check(image, mask, correctMask=True)
    box, corrected = check_mask(image, mask, correct_mask=True)
    np.testing.assert_array_equal(box.as_pyradiomics(), expected_box)
    assert corrected.GetSize() == image.GetSize() and corrected.GetOrigin() == image.GetOrigin()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(corrected), sitk.GetArrayViewFromImage(expected_mask)
    )
    if change == "cropped_mask":  # a sub-grid of the image's: the labels inside it, unmoved
        expected = np.zeros_like(labels)
        expected[1:11, 1:15, 2:14] = labels[1:11, 1:15, 2:14]
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(corrected), expected)


@pytest.mark.oracle
def test_correct_mask_refuses_roi_outside_image():
    image = _image()
    mask = _mask_like(image, _labels("border"))
    mask.SetOrigin(tuple(np.add(mask.GetOrigin(), (5.0, 0.0, 0.0))))  # ROI pushed past the x edge
    with pytest.raises(ValueError, match="larger than image space"):
        _pyradiomics_check(image, mask, correctMask=True)
    with pytest.raises(InputError, match="m.nii: Bounding box of ROI is larger than image space"):
        check_mask(image, mask, correct_mask=True, source="m.nii")


def test_size_and_dimension_mismatch():
    image = _image()
    with pytest.raises(InputError, match=r"geometry mismatch \(size"):
        check_mask(image, _mask_like(image, _labels("parts"))[:, :, :10])
    with pytest.raises(InputError, match="dimension mismatch: image is 3D, mask 2D"):
        check_mask(image, _mask_like(image, _labels("parts"))[:, :, 3])
    assert (
        geometry_mismatch(image, _mask_like(image, _labels("parts"))[:, :, 3])
        == "image is 3D, mask 2D"
    )
    assert geometry_mismatch(image, _mask_like(image, _labels("parts"))[:, 1:, :]).startswith(
        "size (18, 15, 12)"
    )
    vector = sitk.Compose(_mask_like(image, _labels("parts")), _mask_like(image, _labels("sheet")))
    with pytest.raises(InputError, match="2 components per voxel"):
        check_mask(image, vector)


def test_bad_options():
    image = _image()
    mask = _mask_like(image, _labels("parts"))
    for kwargs in [
        {"label": 0},
        {"label": True},
        {"geometry_tolerance": 0},
        {"minimum_roi_dimensions": 4},
        {"minimum_roi_size": 0},
    ]:
        with pytest.raises(SettingsError, match=next(iter(kwargs))):
            check_mask(image, mask, **kwargs)


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["parts", "border", "sheet"])
@pytest.mark.parametrize("pad", [0, 2, 10])
def test_crop_matches_pyradiomics(kind, pad):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = _image()
    mask = _mask_like(image, _labels(kind))
    box, _ = check_mask(image, mask)
    expected = imageoperations.cropToTumorMask(image, mask, box.as_pyradiomics(), padDistance=pad)
    ours = crop_to_roi(image, mask, bounding_box=box, pad_distance=pad)
    for o, e in zip(ours, expected):
        assert o.GetSize() == e.GetSize() and o.GetOrigin() == e.GetOrigin()
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(o), sitk.GetArrayViewFromImage(e))
    for o, e in zip(crop_to_roi(image, mask, pad_distance=pad), expected):  # box computed inside
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(o), sitk.GetArrayViewFromImage(e))
    # The same crop on (z, y, x) arrays
    slices = box.slices_zyx(pad, shape_zyx=SHAPE_ZYX)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(image)[slices], sitk.GetArrayViewFromImage(ours[0])
    )


def test_bounding_box_by_hand():
    box = BoundingBox(lower_xyz=(4, 3, 2), upper_xyz=(9, 8, 2))
    assert box.size_xyz == (6, 6, 1)
    assert box.n_extended_axes == 2
    assert box.as_pyradiomics().tolist() == [4, 9, 3, 8, 2, 2]
    assert box.slices_zyx() == (slice(2, 3), slice(3, 9), slice(4, 10))
    assert box.slices_zyx(3, shape_zyx=(4, 10, 20)) == (slice(0, 4), slice(0, 10), slice(1, 13))
    with pytest.raises(SettingsError, match="pad_distance"):
        crop_to_roi(_image(), _mask_like(_image(), _labels("parts")), pad_distance=-1)
