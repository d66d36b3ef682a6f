"""Normalisation and re-segmentation: PyRadiomics' normalizeImage / resegmentMask as oracle."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow.errors import InputError, SettingsError
from radflow.preprocess.normalise import normalise
from radflow.preprocess.resegment import resegment

SHAPE_ZYX = (16, 20, 20)


def _image(kind):
    rng = np.random.default_rng({"ct": 0, "pet": 1}[kind])
    field = ndi.gaussian_filter(rng.normal(size=SHAPE_ZYX), 1.5)
    field /= np.abs(field).max()
    if kind == "ct":
        values = np.round(-300 + 1200 * field).astype(np.int16)
    else:
        values = (np.exp(2.5 * field) * 2).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.9, 0.9, 3.0))
    image.SetOrigin((10.0, -20.0, 5.5))
    return image


def _mask(image):
    zz, yy, xx = np.indices(SHAPE_ZYX)
    labels = np.zeros(SHAPE_ZYX, np.uint8)
    labels[((zz - 8) / 6) ** 2 + ((yy - 9) / 7) ** 2 + ((xx - 10) / 8) ** 2 <= 1] = 1
    labels[4:6, 5:9, 2:4] = 0  # a hole
    labels[14, 2:6, 12:18] = 2
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    return mask


def _same_image(ours, theirs):
    assert ours.GetPixelID() == theirs.GetPixelID()
    assert ours.GetSize() == theirs.GetSize()
    assert ours.GetOrigin() == theirs.GetOrigin() and ours.GetSpacing() == theirs.GetSpacing()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs)
    )


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["ct", "pet"])
@pytest.mark.parametrize(
    "scale, outliers", [(1, None), (100, None), (500, 3), (1, 1.5), (2.5, 0.5)]
)
def test_normalise_matches_pyradiomics(kind, scale, outliers):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = _image(kind)
    expected = imageoperations.normalizeImage(image, normalizeScale=scale, removeOutliers=outliers)
    _same_image(normalise(image, scale=scale, remove_outliers=outliers), expected)


def test_normalise_by_hand():
    values = sitk.GetArrayFromImage(_image("ct")).astype(float)
    out = sitk.GetArrayFromImage(normalise(_image("ct"), scale=100))
    # SimpleITK's Normalize divides by the sample standard deviation (n - 1).
    np.testing.assert_allclose(
        out, 100 * (values - values.mean()) / values.std(ddof=1), rtol=1e-12, atol=1e-9
    )
    clipped = sitk.GetArrayFromImage(normalise(_image("ct"), remove_outliers=1.0, scale=10))
    np.testing.assert_allclose(
        clipped,
        10 * np.clip((values - values.mean()) / values.std(ddof=1), -1, 1),
        rtol=1e-12,
        atol=1e-9,
    )
    assert clipped.max() == 10 and clipped.min() == -10


def test_normalise_bad_parameters():
    for kwargs in [
        {"scale": 0},
        {"scale": float("inf")},
        {"remove_outliers": -1},
        {"remove_outliers": True},
    ]:
        with pytest.raises(SettingsError, match=next(iter(kwargs))):
            normalise(_image("ct"), **kwargs)


RESEGMENT = [
    ("ct", [-500, 400], "absolute", 1),
    ("ct", [400, -100.5], "absolute", 1),  # unsorted: sorted, as PyRadiomics does
    ("ct", [-100], "absolute", 1),
    ("ct", [0.2, 0.9], "relative", 1),
    ("ct", [-2, 1], "sigma", 1),
    ("ct", [-1], "sigma", 2),
    ("pet", [2.5], "absolute", 1),
    ("pet", [0.4], "relative", 1),
    ("pet", [0.1, 0.95], "relative", 2),
    ("pet", [-1.5, 1.5], "sigma", 1),
]


@pytest.mark.oracle
@pytest.mark.parametrize("kind, range_, mode, label", RESEGMENT)
def test_resegment_matches_pyradiomics(kind, range_, mode, label):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = _image(kind)
    mask = _mask(image)
    expected = imageoperations.resegmentMask(
        image, mask, resegmentRange=range_, resegmentMode=mode, label=label
    )
    ours = resegment(image, mask, range_=range_, mode=mode, label=label)
    assert ours.GetPixelID() == mask.GetPixelID()
    assert ours.GetOrigin() == mask.GetOrigin() and ours.GetSpacing() == mask.GetSpacing()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(expected)
    )
    kept = sitk.GetArrayViewFromImage(ours) == label
    assert 1 < kept.sum() <= (sitk.GetArrayViewFromImage(mask) == label).sum()


def test_resegment_by_hand():
    grey = np.array([[[-1000, -500, 0, 100, 400, 401, 50, 3000]]], np.int16)
    image = sitk.GetImageFromArray(grey)
    mask = sitk.GetImageFromArray(np.array([[[1, 1, 1, 1, 1, 1, 0, 2]]], np.uint8))
    absolute = sitk.GetArrayFromImage(resegment(image, mask, range_=(-500, 400)))
    assert absolute.tolist() == [[[0, 1, 1, 1, 1, 0, 0, 0]]]  # closed range; other labels dropped
    # ROI max 401: relative 0.25 keeps >= 100.25
    relative = sitk.GetArrayFromImage(resegment(image, mask, range_=(0.25,), mode="relative"))
    assert relative.tolist() == [[[0, 0, 0, 0, 1, 1, 0, 0]]]
    roi = grey[0, 0, :6].astype(float)
    sigma = sitk.GetArrayFromImage(resegment(image, mask, range_=(-1, 1), mode="sigma"))[0, 0, :6]
    inside = np.abs(roi - roi.mean()) <= roi.std()
    np.testing.assert_array_equal(sigma == 1, inside)


@pytest.mark.oracle
def test_resegment_keeping_one_voxel_is_refused_like_pyradiomics():
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = _image("pet")
    mask = _mask(image)
    top = float(np.max(sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) == 1]))
    with pytest.raises(ValueError, match="retained 1 voxel"):
        imageoperations.resegmentMask(image, mask, resegmentRange=[top], label=1)
    with pytest.raises(
        InputError,
        match=r"p1/mask: Resegmentation excluded too many voxels with label 1 "
        r"\(retained 1 voxel\(s\)\)",
    ):
        resegment(image, mask, range_=[top], source="p1/mask")
    with pytest.raises(InputError, match="retained 0 voxel"):
        resegment(image, mask, range_=[top + 1, top + 2])


def test_resegment_bad_input():
    image = _image("ct")
    mask = _mask(image)
    for bad in ([], [1, 2, 3], None, [float("nan")], ["a"]):
        with pytest.raises(SettingsError, match="range_"):
            resegment(image, mask, range_=bad)
    with pytest.raises(SettingsError, match="mode"):
        resegment(image, mask, range_=[0], mode="percentile")
    with pytest.raises(InputError, match=r"Label \(3\) not present"):
        resegment(image, mask, range_=[0], label=3)
    with pytest.raises(InputError, match="size"):
        resegment(image, mask[:, :, :4], range_=[0])
