"""Skeleton features (issue 14 part 5) on analytic shapes and small hand-made masks.

Each shape is written by evaluating its analytic definition at the voxel centres of a grid, at
1 mm and at an anisotropic 2.5 x 0.8 x 0.8 mm (z, y, x) spacing; the expected values come from
the shape (its axis, radius, ring length 2 pi R, number of arms), not from the code.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import radflow
from radflow.errors import InputError, SettingsError
from radflow.features import skeleton
from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict

SPACINGS = [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8)]


def _centres(size_mm, spacing_zyx):
    """(z, y, x) coordinates in mm of the voxel centres of a grid covering `size_mm`."""
    spacing = np.asarray(spacing_zyx, float)
    shape = np.ceil(np.asarray(size_mm, float) / spacing).astype(int)
    axes = [(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)]
    return np.meshgrid(*axes, indexing="ij")


def _cylinder(spacing_zyx, *, length, radius, axis):
    """A flat-ended cylinder along z (axis 0) or x (axis 2), 5 mm of background around it."""
    margin = 5.0
    across = 2 * radius + 2 * margin
    size = (length + 2 * margin, across, across) if axis == 0 else (across, across, length + 10)
    z, y, x = _centres(size, spacing_zyx)
    along, u, v = (z, y, x) if axis == 0 else (x, z, y)
    centre = radius + margin
    inside = (u - centre) ** 2 + (v - centre) ** 2 <= radius**2
    return inside & (along >= margin) & (along <= margin + length)


def _torus(spacing_zyx, *, major, minor):
    """A ring of tube radius `minor` around a circle of radius `major` in a z plane."""
    side = 2 * (major + minor) + 6
    z, y, x = _centres((2 * minor + 6, side, side), spacing_zyx)
    rho = np.hypot(y - side / 2, x - side / 2)
    return (rho - major) ** 2 + (z - minor - 3) ** 2 <= minor**2


def _star(spacing_zyx, *, arm, radius):
    """Three tubes of `radius` and length `arm` from one centre, 120 degrees apart in a z plane."""
    side = 2 * arm + 10
    z, y, x = _centres((side, side, side), spacing_zyx)
    c = side / 2
    out = np.zeros(z.shape, bool)
    for angle in (0.0, 2 * np.pi / 3, 4 * np.pi / 3):
        dy, dx = np.sin(angle), np.cos(angle)
        t = (y - c) * dy + (x - c) * dx  # position along the arm
        off = (z - c) ** 2 + (y - c - t * dy) ** 2 + (x - c - t * dx) ** 2
        out |= (t >= 0) & (t <= arm) & (off <= radius**2)
    return out


def _ball(spacing_zyx, *, radius):
    z, y, x = _centres((2 * radius + 6,) * 3, spacing_zyx)
    c = radius + 3
    return (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius**2


# -- analytic shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("axis", [0, 2])
@pytest.mark.parametrize("radius", [2.5, 3.5])
def test_straight_cylinder(spacing, axis, radius):
    length = 40.0
    mask = _cylinder(spacing, length=length, radius=radius, axis=axis)
    out = skeleton.compute(mask, spacing_zyx=spacing)
    voxel = min(spacing)  # the skeleton grid's voxel
    assert out["BranchCount"] == 1
    assert out["EndpointCount"] == 2
    assert out["JunctionCount"] == 0
    assert out["CycleCount"] == 0
    assert out["ComponentCount"] == 1
    assert out["MeanTortuosity"] == pytest.approx(1.0, abs=0.02)
    assert out["MaxTortuosity"] == pytest.approx(1.0, abs=0.02)
    # Thickness: the diameter, within a voxel.
    assert abs(out["MeanThickness"] - 2 * radius) <= voxel
    assert abs(out["MaxThickness"] - 2 * radius) <= voxel
    # Length: the axis; a flat-ended cylinder's curve skeleton stops up to a radius short of
    # each end (the medial axis meets the axis there), so within a diameter and a voxel.
    assert length - 2 * radius - voxel <= out["TotalLength"] <= length
    assert out["MainPathLength"] == pytest.approx(out["TotalLength"])
    assert out["MeanBranchLength"] == out["MaxBranchLength"] == pytest.approx(out["TotalLength"])
    volume = np.count_nonzero(mask) * np.prod(spacing)
    assert out["NormalisedLength"] == pytest.approx(out["TotalLength"] / volume ** (1 / 3))


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize(("major", "minor"), [(12.0, 3.5), (15.0, 4.5)])
def test_torus_is_one_loop_of_length_2_pi_r(spacing, major, minor):
    out = skeleton.compute(_torus(spacing, major=major, minor=minor), spacing_zyx=spacing)
    assert out["CycleCount"] == 1
    assert out["EndpointCount"] == 0
    assert out["JunctionCount"] == 0
    assert out["BranchCount"] == 1
    assert out["ComponentCount"] == 1
    assert out["TotalLength"] == pytest.approx(2 * np.pi * major, rel=0.05)
    # An isolated loop: its longest shortest path joins two opposite voxels, half the ring.
    assert out["MainPathLength"] == pytest.approx(np.pi * major, rel=0.05)
    assert math.isnan(out["MeanTortuosity"]) and math.isnan(out["MaxTortuosity"])  # no chord
    assert abs(out["MaxThickness"] - 2 * minor) <= min(spacing)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_three_armed_star(spacing):
    arm = 20.0
    out = skeleton.compute(_star(spacing, arm=arm, radius=2.5), spacing_zyx=spacing)
    assert out["BranchCount"] == 3
    assert out["JunctionCount"] == 1
    assert out["EndpointCount"] == 3
    assert out["CycleCount"] == 0
    assert out["ComponentCount"] == 1
    assert out["MaxBranchLength"] <= arm
    # The main path runs from one tip through the junction to another: two arms.
    assert out["MaxBranchLength"] < out["MainPathLength"] <= out["TotalLength"]
    assert out["MainPathLength"] == pytest.approx(2 * arm, abs=3 * 2.5 + 2 * min(spacing))
    assert out["MeanTortuosity"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("radius", [6.0, 8.0, 12.0])
def test_ball_is_a_point_or_a_very_short_skeleton(spacing, radius):
    out = skeleton.compute(_ball(spacing, radius=radius), spacing_zyx=spacing)
    assert out["ComponentCount"] == 1
    assert out["CycleCount"] == 0
    assert out["JunctionCount"] == 0
    assert out["BranchCount"] <= 1
    assert out["TotalLength"] <= 2 * min(spacing)  # a point, or a voxel or two
    assert out["MaxThickness"] == pytest.approx(2 * radius, abs=2 * max(spacing))


def _tube(shape, start, stop, radius):
    """Voxels (1 mm) within `radius` of the segment from `start` to `stop` (z, y, x voxels)."""
    points = np.stack(np.indices(shape), axis=-1).astype(float)
    start, stop = np.asarray(start, float), np.asarray(stop, float)
    axis = (stop - start) / np.linalg.norm(stop - start)
    along = np.clip((points - start) @ axis, 0, np.linalg.norm(stop - start))
    return np.linalg.norm(points - start - along[..., None] * axis, axis=-1) <= radius


def _ring(shape, centre_yx, major, minor, z=7):
    z_, y, x = np.indices(shape).astype(float)
    rho = np.hypot(y - centre_yx[0], x - centre_yx[1])
    return (rho - major) ** 2 + (z_ - z) ** 2 <= minor**2


BOX = (15, 60, 60)


def test_h_shape_has_two_junctions_and_five_branches():
    mask = (
        _tube(BOX, (7, 5, 15), (7, 55, 15), 2.5)
        | _tube(BOX, (7, 5, 45), (7, 55, 45), 2.5)
        | _tube(BOX, (7, 30, 15), (7, 30, 45), 2.5)
    )
    out = skeleton.compute(mask, spacing_zyx=(1, 1, 1))
    assert out["BranchCount"] == 5
    assert out["JunctionCount"] == 2
    assert out["EndpointCount"] == 4
    assert out["CycleCount"] == 0
    # Main path: from the top of one upright down to the bar, across it, down the other upright
    # (25 + 30 + 25 mm between the tube ends' centres), less what the thinning takes at the ends.
    assert 80 - 2 * 2.5 - 2 <= out["MainPathLength"] <= 80


def test_loops_in_a_figure_eight_a_lasso_and_a_theta():
    eight = _ring(BOX, (30, 18), 12, 2.5) | _ring(BOX, (30, 42), 12, 2.5)
    out = skeleton.compute(eight, spacing_zyx=(1, 1, 1))
    assert out["CycleCount"] == 2 and out["EndpointCount"] == 0 and out["ComponentCount"] == 1

    # A ring of radius 12 with a 22 mm tail: the farthest points are the tail's tip and the
    # point of the ring opposite the tail, tail + half the ring apart.
    lasso = _ring(BOX, (30, 22), 12, 2.5) | _tube(BOX, (7, 30, 34), (7, 30, 56), 2.5)
    out = skeleton.compute(lasso, spacing_zyx=(1, 1, 1))
    assert out["CycleCount"] == 1
    assert out["EndpointCount"] == 1 and out["JunctionCount"] == 1 and out["BranchCount"] == 2
    tail = 56 - 34 - 2.5  # the thinning keeps the tail up to about its end cap
    assert out["MainPathLength"] == pytest.approx(tail + np.pi * 12, rel=0.05)

    # A ring of radius 18 with a diameter: two junctions, three branches, two loops; the
    # farthest points are the middles of the two half-rings, half a ring apart.
    theta = _ring(BOX, (30, 30), 18, 2.5) | _tube(BOX, (7, 30, 12), (7, 30, 48), 2.5)
    out = skeleton.compute(theta, spacing_zyx=(1, 1, 1))
    assert out["CycleCount"] == 2
    assert out["JunctionCount"] == 2 and out["BranchCount"] == 3 and out["EndpointCount"] == 0
    assert out["MainPathLength"] == pytest.approx(np.pi * 18, rel=0.05)


# -- small masks, values by hand -----------------------------------------------------------------


def test_single_voxel_is_a_point():
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    out = skeleton.compute(mask, spacing_zyx=(2.0, 2.0, 2.0))
    for name in ("TotalLength", "MainPathLength", "MeanBranchLength", "MaxBranchLength"):
        assert out[name] == 0.0
    for name in ("BranchCount", "EndpointCount", "JunctionCount", "CycleCount"):
        assert out[name] == 0.0
    assert out["ComponentCount"] == 1
    assert math.isnan(out["MeanTortuosity"]) and math.isnan(out["MaxTortuosity"])
    # 2 x the distance from its centre to the nearest background voxel centre, 2 mm.
    assert out["MeanThickness"] == out["MaxThickness"] == 4.0
    assert out["ThicknessSD"] == 0.0
    assert out["NormalisedLength"] == 0.0


@pytest.mark.parametrize("step", [(0, 0, 1), (1, 1, 1), (0, 1, 1)])
def test_one_voxel_line(step):
    n, spacing = 9, 1.5
    mask = np.zeros((12, 12, 12), bool)
    for k in range(n):
        mask[1 + k * step[0], 1 + k * step[1], 1 + k * step[2]] = True
    out = skeleton.compute(mask, spacing_zyx=(spacing,) * 3)
    length = (n - 1) * spacing * math.sqrt(sum(step))  # straight: its chord
    assert out["TotalLength"] == pytest.approx(length)
    assert out["MainPathLength"] == pytest.approx(length)
    assert out["EndpointCount"] == 2 and out["BranchCount"] == 1
    assert out["MeanTortuosity"] == pytest.approx(1.0)
    assert out["MeanThickness"] == pytest.approx(2 * spacing)  # next background voxel: 1 voxel
    assert out["NormalisedLength"] == pytest.approx(length / (n * spacing**3) ** (1 / 3))


def test_bent_line_tortuosity():
    # An L of two 6-voxel legs at 1 mm meeting at a corner: path 10 mm along the voxels, but the
    # length is measured on the polyline smoothed over 5 voxels, which cuts the corner a little.
    mask = np.zeros((3, 12, 12), bool)
    mask[1, 1, 1:7] = True
    mask[1, 1:7, 6] = True
    out = skeleton.compute(mask, spacing_zyx=(1.0, 1.0, 1.0))
    chord = math.hypot(5, 5)
    assert out["BranchCount"] == 1
    assert chord < out["TotalLength"] <= 10.0
    assert out["MeanTortuosity"] == pytest.approx(out["TotalLength"] / chord)


def test_two_rods_are_two_components():
    mask = np.zeros((5, 20, 20), bool)
    mask[2, 2, 2:12] = True  # 10 voxels
    mask[2, 10, 2:18] = True  # 16 voxels
    out = skeleton.compute(mask, spacing_zyx=(1.0, 1.0, 1.0))
    assert out["ComponentCount"] == 2
    assert out["BranchCount"] == 2 and out["EndpointCount"] == 4
    assert out["TotalLength"] == pytest.approx(9 + 15)
    assert out["MainPathLength"] == pytest.approx(15)
    assert out["MaxBranchLength"] == pytest.approx(15)
    assert out["MeanBranchLength"] == pytest.approx(12)


def test_even_thickness_rod_keeps_its_skeleton():
    # scikit-image's Lee thinning deletes a whole 2 x 2 rod (scikit-image#3757); the skeleton
    # of a rod is a line along it all the same.
    mask = np.zeros((30, 8, 8), bool)
    mask[3:27, 3:5, 3:5] = True
    out = skeleton.compute(mask, spacing_zyx=(1.0, 1.0, 1.0))
    assert out["ComponentCount"] == 1
    assert out["BranchCount"] == 1 and out["EndpointCount"] == 2
    assert 24 - 4 <= out["TotalLength"] <= 24


def test_features_subset_and_order():
    mask = np.zeros((3, 3, 9), bool)
    mask[1, 1, 1:8] = True
    out = skeleton.compute(mask, spacing_zyx=(1, 1, 1), features=["ThicknessSD", "BranchCount"])
    assert list(out) == ["BranchCount", "ThicknessSD"]  # the order of FEATURES


def test_skeleton_spacing_sets_the_grid():
    mask = _cylinder((1.0, 1.0, 1.0), length=30.0, radius=3.5, axis=0)
    fine = skeleton.compute(mask, spacing_zyx=(1.0, 1.0, 1.0))
    coarse = skeleton.compute(mask, spacing_zyx=(1.0, 1.0, 1.0), skeleton_spacing=2.0)
    assert coarse != fine
    assert coarse["BranchCount"] == 1 and coarse["EndpointCount"] == 2
    assert 30 - 7 - 2 <= coarse["TotalLength"] <= 30


# -- refusals ------------------------------------------------------------------------------------


def test_unknown_feature_names_are_refused():
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(SettingsError, match="Lenght"):
        skeleton.compute(mask, spacing_zyx=(1, 1, 1), features=["TotalLenght"])
    with pytest.raises(SettingsError, match="featureClass 'skeleton': unknown feature 'Width'"):
        load_params({"featureClass": {"skeleton": ["Width"]}})


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "1.0"])
def test_bad_skeleton_spacing_is_refused(value):
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(SettingsError, match="skeletonSpacing"):
        skeleton.compute(mask, spacing_zyx=(1, 1, 1), skeleton_spacing=value)
    if value is not True and not (isinstance(value, float) and math.isnan(value)):
        with pytest.raises(SettingsError, match="skeletonSpacing"):
            load_params({"setting": {"skeletonSpacing": value}})


@pytest.mark.parametrize("bad", [[3, 4], True, "2", 0])
def test_skeleton_spacing_setting_validation(bad):
    with pytest.raises(SettingsError, match="skeletonSpacing"):
        load_params({"setting": {"skeletonSpacing": bad}})


def test_roi_lost_on_a_coarse_grid_is_an_input_error():
    # Two 3-voxel columns 8 mm apart; the 5 mm grid, centred on the 11 mm padded box, samples
    # x = 0, 5, 10 mm of it: background, the gap, background.
    roi = np.zeros((1, 3, 9), np.uint8)
    roi[0, :, 0] = roi[0, :, 8] = 1
    with pytest.raises(ValueError, match="set a smaller skeletonSpacing"):
        skeleton.compute(roi, spacing_zyx=(1, 1, 1), skeleton_spacing=5.0)
    image = sitk.GetImageFromArray(np.zeros(roi.shape, np.float32))
    params = {"featureClass": {"skeleton": None}, "setting": {"skeletonSpacing": 5.0}}
    with pytest.raises(InputError, match="mask: skeleton: the ROI keeps no voxel"):
        radflow.extract(image, sitk.GetImageFromArray(roi), params)


def test_skeleton_spacing_setting():
    params = load_params({"setting": {"skeletonSpacing": 1.5}, "featureClass": {"skeleton": None}})
    assert params.settings.skeleton_spacing == 1.5
    assert load_params(params_to_dict(params)) == params  # round trip
    assert load_params(None).settings.skeleton_spacing is None
    # radflow's key is written only when set: files without it keep their hash.
    assert "skeletonSpacing" not in params_to_dict(load_params(None))["setting"]
    assert params_hash(load_params(None)) == "5213d97f168971a2"
    assert params_hash(params) != params_hash(load_params({"featureClass": {"skeleton": None}}))
    with pytest.raises(SettingsError, match="cannot differ per image type"):
        load_params({"imageType": {"Original": {"skeletonSpacing": 1.0}}})


def test_skeleton_is_never_enabled_by_default():
    assert "skeleton" not in load_params(None).feature_classes
    assert "skeleton" not in load_params({"featureClass": {}}).feature_classes


# -- through the extraction ----------------------------------------------------------------------


def _rod_images(spacing_xyz=(0.8, 0.8, 2.5)):
    roi = np.zeros((16, 24, 24), np.uint8)
    roi[2:14, 9:15, 10:14] = 1
    values = np.random.default_rng(0).normal(100.0, 10.0, roi.shape).astype(np.float32)
    image, mask = sitk.GetImageFromArray(values), sitk.GetImageFromArray(roi)
    for item in (image, mask):
        item.SetSpacing(spacing_xyz)
    return image, mask, roi


def test_class_enabled_from_a_parameter_file(tmp_path):
    image, mask, roi = _rod_images()
    params = tmp_path / "params.yaml"
    params.write_text(
        "setting:\n  binWidth: 10\n  skeletonSpacing: 1.0\n"
        "featureClass:\n  firstorder: [Mean]\n  skeleton:\n"
    )
    out = radflow.extract(image, mask, str(params))
    keys = [k for k in out if k.startswith("original_skeleton_")]
    assert sorted(keys) == sorted(f"original_skeleton_{f.name}" for f in skeleton.FEATURES)
    expected = skeleton.compute(roi, spacing_zyx=(2.5, 0.8, 0.8), skeleton_spacing=1.0)
    for name, value in expected.items():
        assert out[f"original_skeleton_{name}"] == pytest.approx(value, nan_ok=True)
    assert out["original_skeleton_BranchCount"] == 1
    assert out["diagnostics_Configuration_Settings"]["skeletonSpacing"] == 1.0


def test_class_with_a_feature_list_and_without_it():
    image, mask, _ = _rod_images()
    out = radflow.extract(
        image, mask, {"featureClass": {"skeleton": ["TotalLength", "CycleCount"]}}
    )
    assert [k for k in out if not k.startswith("diagnostics_")] == [
        "original_skeleton_TotalLength",
        "original_skeleton_CycleCount",
    ]
    plain = radflow.extract(image, mask, {"featureClass": {"firstorder": ["Mean"]}})
    assert not any("skeleton" in k for k in plain)


def test_voxel_mode_skips_the_skeleton_and_says_so():
    image, mask, _ = _rod_images()
    out = radflow.extract(
        image,
        mask,
        {"featureClass": {"skeleton": None, "firstorder": ["Mean"]}},
        voxel_based=True,
    )
    assert not any(k.startswith("original_skeleton_") for k in out)
    assert "skeleton" in out["diagnostics_VoxelBased_SkippedClasses"]


def test_importing_the_class_loads_neither_skan_nor_pandas():
    code = (
        "import sys\n"
        "import radflow.features.skeleton\n"
        "print([m for m in ('skan', 'pandas', 'networkx') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
