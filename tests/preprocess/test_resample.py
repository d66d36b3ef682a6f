"""Resampling: PyRadiomics' resampleImage as oracle, voxel for voxel and grid for grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow.errors import InputError, SettingsError
from radflow.preprocess.resample import resample_image_and_mask

SHAPE_ZYX = (14, 22, 24)


def _image(
    dtype=np.int16, seed=0, spacing=(0.8, 0.75, 2.5), origin=(-50.2, 30.1, 100.0), direction=None
):
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=SHAPE_ZYX), 1.2)
    field = field / np.abs(field).max()
    values = np.round(-200 + 900 * field) if dtype == np.int16 else np.exp(2 * field) * 3
    image = sitk.GetImageFromArray(values.astype(dtype))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _mask(reference: sitk.Image, *, thin_z=False, near_border=False):
    zz, yy, xx = np.indices(SHAPE_ZYX)
    centre = (7, 3, 4) if near_border else (7, 11, 12)
    ball = ((zz - centre[0]) / 3.5) ** 2 + ((yy - centre[1]) / 5) ** 2 + (
        (xx - centre[2]) / 6
    ) ** 2 <= 1
    labels = np.zeros(SHAPE_ZYX, np.uint8)
    labels[ball] = 1
    labels[(zz == 10) & (yy > 16) & (xx > 18)] = 2  # another ROI, one slice thick
    if thin_z:
        labels[labels == 1] = 0
        labels[(zz == 5) & ball[7]] = 1  # a single axial slice
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(reference)
    return mask


ROTATED = (0.8660254037844387, -0.5, 0.0, 0.5, 0.8660254037844387, 0.0, 0.0, 0.0, 1.0)

CASES = {
    "ct_bspline_1mm": dict(dtype=np.int16, spacing=(1, 1, 1), interpolator="sitkBSpline", pad=5),
    "pet_linear_2mm": dict(dtype=np.float32, spacing=(2, 2, 2), interpolator="sitkLinear", pad=2),
    "in_plane_only": dict(dtype=np.int16, spacing=(1.1, 1.1, 0), interpolator="sitkBSpline", pad=5),
    "upsample_z": dict(
        dtype=np.float32, spacing=(0.8, 0.75, 1.25), interpolator="sitkLinear", pad=1
    ),
    "nearest": dict(
        dtype=np.int16, spacing=(1.5, 1.5, 1.5), interpolator="sitkNearestNeighbor", pad=0
    ),
    "lanczos": dict(
        dtype=np.float32, spacing=(1.2, 1.2, 2), interpolator="sitkLanczosWindowedSinc", pad=3
    ),
    "rotated": dict(
        dtype=np.int16, spacing=(1, 1, 2), interpolator="sitkLinear", pad=4, direction=ROTATED
    ),
    "thin_roi": dict(
        dtype=np.int16, spacing=(1, 1, 1), interpolator="sitkBSpline", pad=5, thin_z=True
    ),
    "near_border": dict(
        dtype=np.float32, spacing=(1, 1, 1), interpolator="sitkLinear", pad=10, near_border=True
    ),
    "label_2": dict(dtype=np.int16, spacing=(1, 1, 1), interpolator="sitkLinear", pad=2, label=2),
    "same_spacing": dict(
        dtype=np.int16, spacing=(0.8, 0.75, 2.5), interpolator="sitkBSpline", pad=3
    ),
    "same_spacing_via_zero": dict(
        dtype=np.float32, spacing=(0, 0, 0), interpolator="sitkBSpline", pad=20
    ),
}


def _case(name):
    case = CASES[name]
    image = _image(case["dtype"], direction=case.get("direction"))
    mask = _mask(
        image, thin_z=case.get("thin_z", False), near_border=case.get("near_border", False)
    )
    return image, mask, case


def _assert_same(ours: sitk.Image, theirs: sitk.Image):
    assert ours.GetSize() == theirs.GetSize()
    assert ours.GetPixelID() == theirs.GetPixelID()
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.GetDirection(), theirs.GetDirection(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs)
    )


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(CASES))
def test_matches_pyradiomics_resample_image(name):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image, mask, case = _case(name)
    label = case.get("label", 1)
    expected_image, expected_mask = imageoperations.resampleImage(
        image,
        mask,
        resampledPixelSpacing=list(case["spacing"]),
        interpolator=case["interpolator"],
        label=label,
        padDistance=case["pad"],
    )
    ours_image, ours_mask = resample_image_and_mask(
        image,
        mask,
        spacing_xyz=case["spacing"],
        interpolator=case["interpolator"],
        label=label,
        pad_distance=case["pad"],
    )
    _assert_same(ours_image, expected_image)
    _assert_same(ours_mask, expected_mask)
    assert (sitk.GetArrayViewFromImage(ours_mask) == label).any()


def test_grid_by_hand():
    # 1 mm grid, 10 voxels, ROI at x indices 4..5; to 2 mm with no padding.
    image = sitk.Image(10, 3, 3, sitk.sitkFloat32)
    image.SetOrigin((0.0, 0.0, 0.0))
    mask = sitk.Image(10, 3, 3, sitk.sitkUInt8)
    mask[4, 1, 1] = 1
    mask[5, 1, 1] = 1
    mask[4, 0, 1] = 1
    out_image, out_mask = resample_image_and_mask(
        image, mask, spacing_xyz=(2, 1, 1), interpolator="sitkLinear", pad_distance=0
    )
    # New voxel 0 has its corner on the old corner (-0.5 mm): centre at 0.5 mm.
    # ROI spans old corners 3.5..5.5 mm, i.e. new indices floor(3.5/2)=1 to ceil(5.5/2)=3 -> size 3.
    assert out_image.GetSpacing() == (2.0, 1.0, 1.0)
    assert out_image.GetSize()[0] == 3
    assert out_image.GetOrigin()[0] == pytest.approx(0.5 + 2 * 1)
    # y (spacing unchanged) and z (one voxel thick: spacing kept) are rounded
    # outwards from the box corners too: y 0..1 -> floor(-0.5)=-1 (clipped to 0)
    # to ceil(1.5)=2; z 1..1 -> floor(0.5)=0 to ceil(1.5)=2.
    assert out_mask.GetSize() == (3, 3, 3)
    assert out_mask.GetOrigin()[1:] == (0.0, 0.0)
    # New x centres 2.5, 4.5, 6.5 mm: nearest neighbour (ties upwards) reads old
    # x 3, 5, 7, so of the ROI only old (x, y, z) = (5, 1, 1) survives, at (1, 1, 1).
    labels = sitk.GetArrayFromImage(out_mask)
    assert labels.sum() == 1 and labels[1, 1, 1] == 1


def test_one_voxel_thick_axis_keeps_its_spacing():
    image, mask, _ = _case("thin_roi")
    out_image, _ = resample_image_and_mask(image, mask, spacing_xyz=(1, 1, 1))
    assert out_image.GetSpacing() == (1.0, 1.0, 2.5)


def test_roi_outside_image_is_refused():
    image = _image()
    mask = _mask(image)
    small = image[:, :, :5]  # z slices 0..4 only; the ROI reaches slice 10
    with pytest.raises(
        InputError, match="mask.nii.gz: Bounding box of ROI is larger than image space"
    ):
        resample_image_and_mask(small, mask, spacing_xyz=(1, 1, 1), source="mask.nii.gz")


@pytest.mark.oracle
def test_image_on_another_grid_matches_pyradiomics():
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = _image(np.float32)
    mask = _mask(image)[:, 2:20, 3:]  # a mask grid inside the image's
    expected = imageoperations.resampleImage(
        image,
        mask,
        resampledPixelSpacing=[1, 1, 1],
        interpolator="sitkLinear",
        label=1,
        padDistance=2,
    )
    ours = resample_image_and_mask(
        image, mask, spacing_xyz=(1, 1, 1), interpolator="sitkLinear", pad_distance=2
    )
    for o, e in zip(ours, expected):
        _assert_same(o, e)


def test_bad_parameters():
    image = _image()
    mask = _mask(image)
    for bad in [(1, 1), (1, 1, -1), (1, 1, float("nan")), "111", (True, 1, 1)]:
        with pytest.raises(SettingsError, match="spacing_xyz"):
            resample_image_and_mask(image, mask, spacing_xyz=bad)
    with pytest.raises(SettingsError, match="interpolator"):
        resample_image_and_mask(image, mask, spacing_xyz=(1, 1, 1), interpolator="sitkBSpline3")
    with pytest.raises(SettingsError, match="pad_distance"):
        resample_image_and_mask(image, mask, spacing_xyz=(1, 1, 1), pad_distance=-1)
    with pytest.raises(InputError, match=r"Label \(7\) not present in mask. Choose from \[1, 2\]"):
        resample_image_and_mask(image, mask, spacing_xyz=(1, 1, 1), label=7)
