"""Filtering the ROI's box grown by read_box's margin gives the whole-image values inside the ROI.

The reference is radflow on the whole image, itself equal to PyRadiomics
(test_filter_parity.py). Exact for every type but LoG (recursive filter:
float32 rounding, within 1e-6 of the largest value) and LBP 3D (recursive
spline prefilter: within 1e-9).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from _filter_images import ct_like
from scipy import ndimage

from radflow.filters.image_types import image_types, read_box, required_margin_voxels
from radflow.filters.intensity import max_abs

SPACING_XYZ = (0.8, 0.7, 2.5)
VOLUME = ct_like(shape=(31, 110, 109), spacing_xyz=SPACING_XYZ, seed=3)
CT = sitk.GetArrayFromImage(VOLUME)


def lumpy_mask(centre_zyx, radii_zyx) -> np.ndarray:
    """An ellipsoid with a hole, plus a detached blob: several parts, irregular box."""
    z, y, x = np.indices(CT.shape)
    r = sum(((c - o) / a) ** 2 for c, o, a in zip((z, y, x), centre_zyx, radii_zyx))
    mask = (r <= 1) & ~(r <= 0.15)
    cz, cy, cx = centre_zyx
    mask[cz, cy + radii_zyx[1] + 2 : cy + radii_zyx[1] + 4, cx : cx + 2] = True
    return mask.astype(np.uint8)


INTERIOR = lumpy_mask((15, 55, 52), (4, 12, 14))
AT_EDGE = lumpy_mask((14, 40, 9), (4, 10, 9))  # touches x = 0
ONE_VOXEL = np.zeros(CT.shape, np.uint8)
ONE_VOXEL[20, 70, 60] = 1
MASKS = {"interior": INTERIOR, "at_edge": AT_EDGE, "one_voxel": ONE_VOXEL}


def as_image(array, box=None):
    image = sitk.GetImageFromArray(array if box is None else array[box])
    image.SetSpacing(SPACING_XYZ)
    if box is not None:
        image.SetOrigin(VOLUME.TransformIndexToPhysicalPoint([s.start for s in box[::-1]]))
    else:
        image.SetOrigin(VOLUME.GetOrigin())
    return image


def roi_values(enabled, mask, box=None, **kw):
    image, roi_mask = as_image(CT, box), as_image(mask, box)
    roi = (mask if box is None else mask[box]).astype(bool)
    return {
        name: sitk.GetArrayFromImage(out)[roi].astype(np.float64)
        for name, out, _ in image_types(image, roi_mask, enabled, {}, **kw)
    }


def cropped_vs_whole(enabled, mask, box=None):
    bbox = ndimage.find_objects(mask)[0]
    if box is None:
        box = read_box(enabled, {}, bbox, CT.shape, SPACING_XYZ[::-1])
    whole = roi_values(enabled, mask)
    crop = roi_values(enabled, mask, box, source_shape_zyx=CT.shape, source_max_abs=max_abs(VOLUME))
    assert list(crop) == list(whole)
    return crop, whole, box


CASES = [
    ("Original", {}),
    ("Wavelet", {}),
    ("Wavelet", {"wavelet": "db3", "start_level": 1, "level": 2}),
    ("Wavelet", {"wavelet": "haar", "force2D": True, "force2Ddimension": 0}),
    ("Square", {}),
    ("SquareRoot", {}),
    ("Logarithm", {}),
    ("Exponential", {}),
    ("Gradient", {}),
    ("Gradient", {"gradientUseSpacing": False}),
    ("LBP2D", {"lbp2DRadius": 1.5, "lbp2DMethod": "default", "force2D": True}),
    ("LBP2D", {"lbp2DRadius": 2, "lbp2DMethod": "ror", "force2D": True, "force2Ddimension": 2}),
]


@pytest.mark.parametrize("where", list(MASKS))
@pytest.mark.parametrize(
    ("image_type", "custom"), CASES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(CASES)]
)
def test_crop_is_exact(where, image_type, custom):
    mask = MASKS[where]
    crop, whole, box = cropped_vs_whole({image_type: custom}, mask)
    assert any(s.stop - s.start < n for s, n in zip(box, CT.shape)), "the box should be a real crop"
    for name in whole:
        np.testing.assert_array_equal(crop[name], whole[name], err_msg=name)


@pytest.mark.parametrize("sigmas", [[1.0, 2.0], [1.5]])
def test_log_crop_within_float32_rounding(sigmas):
    crop, whole, box = cropped_vs_whole({"LoG": {"sigma": sigmas}}, INTERIOR)
    assert sum(s.stop - s.start < n for s, n in zip(box, CT.shape)) >= 2
    for name in whole:
        scale = np.abs(whole[name]).max()
        np.testing.assert_allclose(crop[name], whole[name], rtol=0, atol=1e-6 * scale, err_msg=name)


def test_lbp3d_crop_within_spline_prefilter_decay():
    enabled = {"LBP3D": {"lbp3DIcosphereRadius": 1.5}}
    crop, whole, _ = cropped_vs_whole(enabled, INTERIOR)
    for name in whole:
        scale = np.abs(whole[name]).max()
        np.testing.assert_allclose(crop[name], whole[name], rtol=0, atol=1e-9 * scale, err_msg=name)


def test_wavelet_margin_is_needed():
    # One voxel less than the margin changes values at the ROI's edge ...
    enabled = {"Wavelet": {"wavelet": "coif1"}}
    margin = required_margin_voxels("Wavelet", enabled["Wavelet"], SPACING_XYZ[::-1])
    assert margin == (3, 3, 3)  # coif1: 6 taps, half on each side
    bbox = ndimage.find_objects(INTERIOR)[0]
    short = tuple(slice(s.start - m + 1, s.stop + m - 1) for s, m in zip(bbox, margin))
    crop, whole, _ = cropped_vs_whole(enabled, INTERIOR, box=short)
    assert any(not np.array_equal(crop[name], whole[name]) for name in whole)
    # ... and at the volume's edge PyRadiomics wraps around the whole axis:
    # clipping the box there instead of reading the whole axis is not exact.
    bbox = ndimage.find_objects(AT_EDGE)[0]
    clipped = tuple(slice(max(s.start - m, 0), s.stop + m) for s, m in zip(bbox, margin))
    crop, whole, _ = cropped_vs_whole(enabled, AT_EDGE, box=clipped)
    assert any(not np.array_equal(crop[name], whole[name]) for name in whole)
    assert read_box(enabled, {}, bbox, CT.shape, SPACING_XYZ[::-1])[2] == slice(0, CT.shape[2])


def test_read_box_is_the_union_of_the_margins():
    bbox = (slice(10, 20), slice(40, 70), slice(38, 66))
    spacing_zyx = SPACING_XYZ[::-1]
    enabled = {"Original": {}, "Gradient": {}, "LoG": {"sigma": [1.0, 2.0]}}
    # LoG: 12 sigma of 2 mm = 24 mm: 10 slices of 2.5 mm, 35 rows of 0.7 mm, 30 columns of 0.8 mm
    assert required_margin_voxels("LoG", enabled["LoG"], spacing_zyx) == (10, 35, 30)
    assert required_margin_voxels("Gradient", {}, spacing_zyx) == (1, 1, 1)
    assert required_margin_voxels("Square", {}, spacing_zyx) == (0, 0, 0)
    assert read_box(enabled, {}, bbox, (31, 110, 109), spacing_zyx) == (
        slice(0, 30),
        slice(5, 105),
        slice(8, 96),
    )
    assert read_box({"Gradient": {}}, {}, bbox, (31, 110, 109), spacing_zyx) == (
        slice(9, 21),
        slice(39, 71),
        slice(37, 67),
    )
    # LBP2D's in-plane radius; none across the slices
    assert required_margin_voxels("LBP2D", {"lbp2DRadius": 1.5}, spacing_zyx) == (0, 2, 2)
    assert required_margin_voxels(
        "LBP2D", {"lbp2DRadius": 1, "force2Ddimension": 1}, spacing_zyx
    ) == (1, 0, 1)
    # force2D wavelets leave the fixed axis alone; start_level counts
    assert required_margin_voxels(
        "Wavelet", {"wavelet": "haar", "start_level": 2, "level": 1, "force2D": True}, spacing_zyx
    ) == (0, 3, 3)
