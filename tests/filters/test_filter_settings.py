"""Image type names, settings checks, input checks and hand-computed filter values."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from _filter_images import box_mask, ct_like

from radflow.errors import InputError, SettingsError
from radflow.filters.gradient import gradient_image
from radflow.filters.image_types import image_types, read_box
from radflow.filters.intensity import (
    exponential_image,
    logarithm_image,
    square_image,
    squareroot_image,
)
from radflow.filters.log import log_image_name, log_images
from radflow.filters.wavelet import wavelet_images

CT = ct_like(shape=(12, 20, 22))
MASK = box_mask(CT, (slice(4, 8), slice(5, 15), slice(5, 15)))


def names(enabled, settings=None):
    return [name for name, _, _ in image_types(CT, MASK, enabled, settings or {})]


def test_names():
    assert log_image_name(3.0) == "log-sigma-3-0-mm-3D"
    assert log_image_name(3) == "log-sigma-3-mm-3D"
    assert log_image_name(0.5) == "log-sigma-0-5-mm-3D"
    details = ["LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"]
    assert names({"Wavelet": {"wavelet": "haar", "level": 2}}) == (
        [f"wavelet-{d}" for d in details] + [f"wavelet2-{d}" for d in details] + ["wavelet2-LLL"]
    )
    # kept levels are numbered from 1 whatever start_level
    assert names({"Wavelet": {"wavelet": "haar", "start_level": 1}})[-1] == "wavelet-LLL"
    assert names({"Wavelet": {"wavelet": "haar"}}, {"force2D": True}) == [
        "wavelet-LH",
        "wavelet-HL",
        "wavelet-HH",
        "wavelet-LL",
    ]
    with pytest.warns(UserWarning, match="force2D false"):
        assert names(
            {
                "Original": {},
                "Square": {},
                "SquareRoot": {},
                "Logarithm": {},
                "Exponential": {},
                "Gradient": {},
                "LBP2D": {},
                "LBP3D": {},
            }
        ) == [
            "original",
            "square",
            "squareroot",
            "logarithm",
            "exponential",
            "gradient",
            "lbp-2D",
            "lbp-3D-m1",
            "lbp-3D-m2",
            "lbp-3D-k",
        ]


BAD = [
    ("LoG", {}, "'sigma' is required"),
    ("LoG", {"sigma": [1.0, -2.0]}, "'sigma'"),
    ("LoG", {"sigma": 2.0}, "'sigma'"),
    ("LoG", {"sigma": [float("nan")]}, "'sigma'"),
    ("Wavelet", {"wavelet": "morl"}, "'wavelet'"),  # continuous
    ("Wavelet", {"level": 0}, "'level'"),
    ("Wavelet", {"start_level": -1}, "'start_level'"),
    ("Wavelet", {"force2D": "yes"}, "'force2D'"),
    ("Wavelet", {"force2D": True, "force2Ddimension": 3}, "'force2Ddimension'"),
    ("Gradient", {"gradientUseSpacing": 1}, "'gradientUseSpacing'"),
    ("LBP2D", {"lbp2DMethod": "nri_uniform"}, "'lbp2DMethod'"),
    ("LBP2D", {"lbp2DSamples": 0}, "'lbp2DSamples'"),
    ("LBP2D", {"lbp2DRadius": 0}, "'lbp2DRadius'"),
    ("LBP3D", {"lbp3DLevels": 0}, "'lbp3DLevels'"),
    ("LBP3D", {"lbp3DIcosphereSubdivision": -1}, "'lbp3DIcosphereSubdivision'"),
    ("LBP3D", {"label": 0}, "'label'"),
    ("Wavelets", {}, "'Wavelets' is not known; known: Original, LoG"),
]


@pytest.mark.parametrize(("image_type", "custom", "message"), BAD)
def test_bad_settings_fail_before_any_image(image_type, custom, message):
    generator = image_types(CT, MASK, {"Original": {}, image_type: custom}, {})
    with pytest.raises(SettingsError, match=message):
        next(generator)  # not even "original" is computed
    with pytest.raises(SettingsError, match=message):
        read_box({image_type: custom}, {}, (slice(1, 2),) * 3, (12, 20, 22), (2.5, 0.7, 0.8))


def test_global_settings_are_read_and_overridden():
    with pytest.raises(SettingsError, match="imageType 'Wavelet' setting 'force2Ddimension'"):
        next(image_types(CT, MASK, {"Wavelet": {}}, {"force2D": True, "force2Ddimension": 5}))
    assert (
        names({"Wavelet": {"wavelet": "haar"}}, {"force2D": True, "force2Ddimension": 1})[0]
        == "wavelet-LH"
    )
    assert (
        names({"Wavelet": {"wavelet": "haar", "force2D": False}}, {"force2D": True})[0]
        == "wavelet-LLH"
    )


def test_function_keywords_are_checked():
    with pytest.raises(SettingsError, match="sigmas_mm"):
        next(log_images(CT, sigmas_mm=[0]))
    with pytest.raises(SettingsError, match="fixed_axis"):
        next(wavelet_images(CT, fixed_axis=3))
    with pytest.raises(SettingsError, match="use_spacing"):
        gradient_image(CT, use_spacing="no")


def test_bad_inputs():
    flat = sitk.GetImageFromArray(np.zeros((20, 20), np.int16))
    with pytest.raises(InputError, match="image: expected a 3D image"):
        square_image(flat)
    other = box_mask(ct_like(shape=(12, 20, 21)), (slice(1, 2),) * 3)
    with pytest.raises(InputError, match="mask: size"):
        next(image_types(CT, other, {"Original": {}}, {}))
    with pytest.raises(InputError, match="source_max_abs"):
        next(image_types(CT, MASK, {"Square": {}}, {}, source_shape_zyx=(40, 60, 60)))
    with pytest.raises(InputError, match="max_abs"):
        square_image(CT, max_abs=10.0)  # below the image's own
    with pytest.raises(InputError, match="mask: no voxel has label 2"):
        next(image_types(CT, MASK, {"LBP3D": {"label": 2}}, {}))
    with pytest.raises(InputError, match="bbox_zyx"):
        read_box(
            {"Original": {}},
            {},
            (slice(0, 30), slice(0, 2), slice(0, 2)),
            (12, 20, 22),
            (2.5, 0.7, 0.8),
        )


def test_log_size_check_uses_the_whole_volume():
    # 6 slices of 2.5 mm: sigma 15 mm needs 7 slices (and 23 rows of 0.7 mm), which the volume has
    crop = ct_like(shape=(6, 20, 20))
    assert [n for n, _ in log_images(crop, sigmas_mm=[15.0], source_shape_zyx=(30, 40, 40))] == [
        "log-sigma-15-0-mm-3D"
    ]
    with pytest.warns(UserWarning, match="skipped"):
        assert list(log_images(crop, sigmas_mm=[15.0])) == []


def test_intensity_transforms_by_hand():
    x = np.array([-4.0, 0.0, 1.0, 4.0]).reshape(1, 2, 2)
    image = sitk.GetImageFromArray(x)

    def values(transform, **kw):
        return sitk.GetArrayFromImage(transform(image, **kw)).ravel()

    # M = max |x| = 4
    np.testing.assert_allclose(values(square_image), [4.0, 0.0, 0.25, 4.0], rtol=1e-15)
    np.testing.assert_allclose(values(squareroot_image), [-4.0, 0.0, 2.0, 4.0], rtol=1e-15)
    np.testing.assert_allclose(
        values(logarithm_image), [-4.0, 0.0, 4 * np.log(2) / np.log(5), 4.0], rtol=1e-15
    )
    np.testing.assert_allclose(values(exponential_image), [0.25, 1.0, np.sqrt(2), 4.0], rtol=1e-15)
    # a crop's values scaled by the whole volume's M = 16
    np.testing.assert_allclose(
        values(square_image, max_abs=16), [1.0, 0.0, 1 / 16, 1.0], rtol=1e-15
    )
    np.testing.assert_allclose(
        values(squareroot_image, max_abs=16), [-8.0, 0.0, 4.0, 8.0], rtol=1e-15
    )
    np.testing.assert_allclose(
        values(exponential_image, max_abs=16), 16 ** (x.ravel() / 16), rtol=1e-15
    )


def test_gradient_by_hand():
    # f = 3 i + 5 j along x (index i) and y (index j): |grad| = sqrt((3/dx)^2 + (5/dy)^2) per mm
    z, y, x = np.indices((5, 6, 7))
    image = sitk.GetImageFromArray((3.0 * x + 5.0 * y).astype(np.float64))
    image.SetSpacing((0.5, 2.0, 3.0))
    inner = (slice(None), slice(1, -1), slice(1, -1))
    per_mm = sitk.GetArrayFromImage(gradient_image(image))[inner]
    per_voxel = sitk.GetArrayFromImage(gradient_image(image, use_spacing=False))[inner]
    assert per_mm.dtype == np.float32  # SimpleITK's output type, whatever the input's
    np.testing.assert_allclose(per_mm, np.hypot(3 / 0.5, 5 / 2.0), rtol=1e-7)
    np.testing.assert_allclose(per_voxel, np.hypot(3.0, 5.0), rtol=1e-7)
