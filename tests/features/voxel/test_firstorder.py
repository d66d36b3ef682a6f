"""First-order maps against PyRadiomics 3.0.1 voxel mode, voxel by voxel (the oracle)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

import radflow
from radflow.features import firstorder as segment_firstorder
from radflow.features.voxel import _kernel, firstorder
from radflow.params.extraction import Settings

featureextractor = pytest.importorskip("radiomics.featureextractor")
logging.getLogger("radiomics").setLevel(logging.ERROR)

#: Every feature, the deprecated StandardDeviation too.
ALL = [f.name for f in segment_firstorder.FEATURES]
SHAPE = (10, 14, 15)


def _smooth(seed):
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.5)
    return smooth / smooth.std(), rng


def _ct(seed):
    smooth, rng = _smooth(seed)
    return np.round(smooth * 120 - 40 + rng.normal(0, 15, SHAPE)).astype(np.int16)


def _pet(seed):
    smooth, rng = _smooth(seed)
    return (np.exp(smooth * 0.6) * 2.5 + rng.gamma(2.0, 0.2, SHAPE)).astype(np.float32)


def _mr(seed):
    smooth, rng = _smooth(seed)
    return (smooth * 80 + 400 + rng.normal(0, 20, SHAPE)).astype(np.float64)


def _roi(border=False):
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    centre = (5, 7, 2 if border else 7)
    inside = (
        ((z - centre[0]) / 3.5) ** 2 + ((y - centre[1]) / 5) ** 2 + ((x - centre[2]) / 5) ** 2
    ) <= 1
    return inside.astype(np.uint8)


def _images(values, roi, spacing=(0.8, 0.9, 2.0)):
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    image.SetOrigin((-12.0, 3.5, 40.0))
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    return image, mask


def assert_same_maps(image, mask, params):
    """Every key of PyRadiomics' voxel mode, every voxel of every map, rtol 1e-6."""
    ours = radflow.extract(image, mask, params, voxel_based=True)
    theirs = featureextractor.RadiomicsFeatureExtractor(params).execute(
        image, mask, voxelBased=True
    )
    maps = [k for k in theirs if not k.startswith("diagnostics_")]
    assert [k for k in ours if not k.startswith("diagnostics_")] == maps
    assert maps
    for key in maps:
        expected, got = theirs[key], ours[key]
        assert isinstance(got, sitk.Image), key
        assert got.GetPixelID() == sitk.sitkFloat64, key
        assert got.GetSize() == expected.GetSize(), key
        np.testing.assert_allclose(got.GetOrigin(), expected.GetOrigin(), rtol=0, atol=1e-9)
        assert got.GetSpacing() == expected.GetSpacing()
        assert got.GetDirection() == expected.GetDirection()
        np.testing.assert_allclose(
            sitk.GetArrayViewFromImage(got),
            sitk.GetArrayViewFromImage(expected),
            rtol=1e-6,
            atol=0,
            equal_nan=True,
            err_msg=key,
        )
    return ours, theirs


def _params(radius, *, masked=True, binning=None, setting=None, image_types=None, **voxel):
    return {
        "imageType": image_types or {"Original": {}},
        "featureClass": {"firstorder": ALL},
        "setting": {**(binning or {"binWidth": 25}), **(setting or {})},
        "voxelSetting": {"kernelRadius": radius, "maskedKernel": masked, **voxel},
    }


CASES = [
    # id, image, params
    ("ct-r1-masked", _ct(1), _params(1)),
    ("ct-r2-unmasked", _ct(2), _params(2, masked=False)),
    ("ct-r3-masked-bincount", _ct(3), _params(3, binning={"binCount": 16})),
    ("pet-r1-unmasked-bincount", _pet(4), _params(1, masked=False, binning={"binCount": 12})),
    ("pet-r2-masked-binwidth", _pet(5), _params(2, binning={"binWidth": 0.25})),
    ("mr-r2-force2d", _mr(6), _params(2, setting={"force2D": True}, binning={"binWidth": 10})),
    (
        "mr-r3-unmasked-force2d-y",
        _mr(7),
        _params(
            3,
            masked=False,
            setting={"force2D": True, "force2Ddimension": 1},
            binning={"binCount": 20},
        ),
    ),
    (
        "mr-r2-resampled-normalised-resegmented",
        _mr(13),
        _params(
            2,
            setting={
                "resampledPixelSpacing": [1.0, 1.0, 1.5],
                "interpolator": "sitkLinear",
                "normalize": True,
                "resegmentRange": [-2.0, 2.5],
            },
            binning={"binWidth": 0.2},
        ),
    ),
    (
        "ct-r3-precrop-pad1",
        _ct(14),
        _params(3, masked=False, setting={"preCrop": True, "padDistance": 1}),
    ),
    (
        "ct-r2-resampled-pad1",
        _ct(15),
        _params(2, setting={"resampledPixelSpacing": [1.0, 1.0, 2.0], "padDistance": 1}),
    ),
    (
        "ct-r1-shift-initvalue",
        _ct(8),
        _params(1, setting={"voxelArrayShift": 1000}, initValue=float("nan"), voxelBatch=17),
    ),
]


@pytest.mark.oracle
@pytest.mark.parametrize("values, params", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_maps_equal_pyradiomics(values, params):
    assert_same_maps(*_images(values, _roi()), params)


@pytest.mark.oracle
def test_kernel_of_two_distinct_values():
    # The end of a one-voxel line: a masked kernel holds 2 values, and no value lies in
    # [p10, p90]; PyRadiomics' RobustMeanAbsoluteDeviation is the mean of an empty slice (NaN).
    values = np.zeros((3, 3, 5), np.int16)
    roi = np.zeros(values.shape, np.uint8)
    values[1, 1, 1:4] = [10, 80, 33]
    roi[1, 1, 1:4] = 1
    image, mask = _images(values, roi)
    params = _params(1, setting={"minimumROIDimensions": 1})
    ours, _ = assert_same_maps(image, mask, params)
    robust = sitk.GetArrayFromImage(ours["original_firstorder_RobustMeanAbsoluteDeviation"])
    assert np.isnan(robust[1, 1, 1]) and np.isnan(robust[1, 1, 3])


@pytest.mark.oracle
@pytest.mark.parametrize("masked", [True, False])
def test_roi_touching_the_border(masked):
    """The padded box is clipped at x = 0; kernels there are clipped too."""
    image, mask = _images(_ct(9), _roi(border=True))
    ours, _ = assert_same_maps(image, mask, _params(2, masked=masked))
    assert ours["original_firstorder_Mean"].GetSize()[0] < 2 * 2 + 10


@pytest.mark.oracle
@pytest.mark.parametrize(
    "image_types",
    [{"LoG": {"sigma": [1.0]}}, {"Square": {}}, {"Original": {}, "Wavelet": {}}],
    ids=["log", "square", "original+wavelet"],
)
def test_filtered_image_types(image_types):
    params = _params(1, masked=True, binning={"binCount": 16}, image_types=image_types)
    if "Wavelet" in image_types:  # 8 sub-bands: keep it small
        params["featureClass"] = {"firstorder": ["Mean", "Entropy", "90Percentile"]}
    assert_same_maps(*_images(_mr(10), _roi()), params)


@pytest.mark.oracle
def test_default_features_and_diagnostics():
    """Default features in PyRadiomics' order; the settings entry as PyRadiomics reports it."""
    image, mask = _images(_ct(11), _roi())
    params = {"featureClass": {"firstorder": None}, "voxelSetting": {"kernelRadius": 1}}
    ours, theirs = assert_same_maps(image, mask, params)
    settings = ours["diagnostics_Configuration_Settings"]
    assert settings["voxelBased"] is True
    assert settings["kernelRadius"] == theirs["diagnostics_Configuration_Settings"]["kernelRadius"]


def test_shape_classes_are_skipped_and_said_so():
    image, mask = _images(_ct(12), _roi())
    out = radflow.extract(
        image,
        mask,
        {"featureClass": {"shape": None, "firstorder": ["Mean"]}},
        voxel_based=True,
    )
    assert out["diagnostics_VoxelBased_SkippedClasses"] == "shape"
    assert not [k for k in out if "_shape_" in k]
    assert isinstance(out["original_firstorder_Mean"], sitk.Image)


def _brute_force(image, binned, kernel_mask, centres, radius, settings, spacing_zyx):
    """Each kernel gathered and handed to the segment-mode first order (an independent path)."""
    lo, hi = _kernel.kernel_bounds(
        centres, image.shape, radius, settings.force_2d, settings.force_2d_dimension
    )
    rows = []
    for a, b in zip(lo, hi):
        box = tuple(slice(s, e) for s, e in zip(a, b))
        rows.append(
            segment_firstorder.compute(
                image[box],
                kernel_mask[box],
                binned[box],
                spacing_zyx=spacing_zyx,
                voxel_array_shift=settings.voxel_array_shift,
                features=ALL,
            )
        )
    return {name: np.array([r[name] for r in rows]) for name in ALL}


@pytest.mark.parametrize("radius, force2d", [(1, False), (2, True), (3, False)])
def test_sliding_window_equals_one_kernel_at_a_time(radius, force2d):
    """Gaps in the ROI lines restart the window; the values match per-kernel statistics."""
    rng = np.random.default_rng(radius)
    image = rng.normal(0, 50, (7, 9, 23)).round(1)
    kernel_mask = rng.random(image.shape) < 0.7
    binned = np.where(kernel_mask, np.digitize(image, np.arange(-200, 200, 20)), 0)
    centres = np.argwhere(kernel_mask & (rng.random(image.shape) < 0.6))
    settings = Settings.from_mapping({"force2D": force2d, "voxelArrayShift": 7})
    got = firstorder.compute_maps(
        image,
        binned,
        kernel_mask,
        centres,
        n_levels=int(binned.max()),
        kernel_radius=radius,
        settings=settings,
        spacing_zyx=(2.0, 0.5, 0.7),
        features=ALL,
    )
    expected = _brute_force(image, binned, kernel_mask, centres, radius, settings, (2.0, 0.5, 0.7))
    for name in ALL:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_a_centre_alone_equals_the_sliding_window_exactly():
    """A value depends on its kernel only, not on the centres before it on the line: pieces of
    a map are stitched and must equal one piece bit for bit."""
    rng = np.random.default_rng(5)
    image = rng.normal(0, 50, (5, 8, 17)).round(1)
    kernel_mask = rng.random(image.shape) < 0.8
    binned = np.where(kernel_mask, np.digitize(image, np.arange(-200, 200, 20)), 0)
    centres = np.argwhere(kernel_mask)
    kwargs = dict(
        n_levels=int(binned.max()),
        kernel_radius=2,
        settings=Settings.from_mapping({}),
        spacing_zyx=(2.0, 0.5, 0.7),
        features=ALL,
    )
    whole = firstorder.compute_maps(image, binned, kernel_mask, centres, **kwargs)
    for k in range(0, len(centres), 5):
        alone = firstorder.compute_maps(image, binned, kernel_mask, centres[k : k + 1], **kwargs)
        for name in ALL:
            np.testing.assert_array_equal(alone[name], whole[name][k : k + 1], err_msg=name)


def test_bad_input():
    settings = Settings.from_mapping({})
    image = np.zeros((3, 3, 3))
    with pytest.raises(ValueError, match="kernel_mask"):
        firstorder.compute_maps(
            image,
            np.ones((3, 3, 3), int),
            np.zeros((3, 3, 3), bool),
            np.array([[1, 1, 1]]),
            n_levels=1,
            kernel_radius=1,
            settings=settings,
            spacing_zyx=(1, 1, 1),
        )
    with pytest.raises(ValueError, match="kernel_radius"):
        firstorder.compute_maps(
            image,
            np.ones((3, 3, 3), int),
            np.ones((3, 3, 3), bool),
            np.array([[1, 1, 1]]),
            n_levels=1,
            kernel_radius=0,
            settings=settings,
            spacing_zyx=(1, 1, 1),
        )
