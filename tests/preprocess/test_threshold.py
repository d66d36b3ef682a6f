"""Threshold segmentation on synthetic volumes whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow.errors import InputError
from radflow.preprocess.threshold import segment_hu, segment_suv, segment_suv_relative


def ball(shape, center, radius):
    z, y, x = np.indices(shape)
    cz, cy, cx = center
    return (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2


@pytest.fixture
def two_blobs():
    """A 4x4x4 cube (64 voxels) and a 2x2x2 cube (8 voxels) at 5 SUV, apart."""
    pet = np.zeros((8, 12, 12), dtype=np.float32)
    big = np.zeros(pet.shape, bool)
    big[1:5, 1:5, 1:5] = True
    small = np.zeros(pet.shape, bool)
    small[5:7, 8:10, 8:10] = True
    pet[big | small] = 5.0
    return pet, big, small


def test_largest_component_is_kept(two_blobs):
    pet, big, small = two_blobs
    out = segment_suv(pet, threshold_suv=2.5)
    assert out.dtype == np.uint8 and out.shape == pet.shape
    np.testing.assert_array_equal(out, big)


def test_seed_picks_the_other_component(two_blobs):
    pet, big, small = two_blobs
    np.testing.assert_array_equal(segment_suv(pet, seed_zyx=(6, 9, 8)), small)
    np.testing.assert_array_equal(segment_suv(pet, keep="seed", seed_zyx=(2, 2, 2)), big)
    np.testing.assert_array_equal(segment_suv(pet, keep="all"), big | small)


def test_connectivity_26_joins_corner_neighbours_6_does_not():
    pet = np.zeros((6, 6, 6))
    pet[1:3, 1:3, 1:3] = 4.0  # 8 voxels
    pet[3, 3, 3] = 4.0  # touches the cube at a corner only
    out26 = segment_suv(pet, connectivity=26, fill_holes=None)
    out6 = segment_suv(pet, connectivity=6, fill_holes=None)
    assert out26.sum() == 9
    assert out6.sum() == 8 and out6[3, 3, 3] == 0


def test_hollow_sphere_is_filled():
    shape, center = (17, 17, 17), (8, 8, 8)
    solid = ball(shape, center, 6)
    shell = solid & ~ball(shape, center, 3)
    pet = np.where(shell, 6.0, 0.5)
    np.testing.assert_array_equal(segment_suv(pet, fill_holes="3d"), solid)
    np.testing.assert_array_equal(segment_suv(pet, fill_holes="slice"), solid)
    np.testing.assert_array_equal(segment_suv(pet, fill_holes=None), shell)


def test_open_tube_is_filled_per_slice_only():
    ct = np.full((6, 9, 9), -1000.0)
    ct[:, 2:7, 2:7] = 50.0
    ct[:, 3:6, 3:6] = -1000.0  # lumen open at both ends of z
    out3d = segment_hu(ct, low_hu=0, high_hu=100, fill_holes="3d")
    out2d = segment_hu(ct, low_hu=0, high_hu=100, fill_holes="slice")
    assert out3d[:, 4, 4].sum() == 0 and out3d.sum() == 6 * (25 - 9)
    assert out2d.sum() == 6 * 25 and out2d[:, 3:6, 3:6].all()


def test_holes_use_the_complementary_connectivity():
    """A cavity that reaches the outside only through a corner of its wall."""
    pet = np.zeros((7, 7, 7))
    pet[1:6, 1:6, 1:6] = 3.0
    pet[2:5, 2:5, 2:5] = 0.0  # cavity
    pet[1, 1, 1] = 0.0  # the wall's corner: cavity voxel (2, 2, 2) touches it diagonally
    wall = pet > 0
    cavity = np.zeros(pet.shape, bool)
    cavity[2:5, 2:5, 2:5] = True
    # 26-connected wall: the background is 6-connected, the cavity is closed.
    np.testing.assert_array_equal(segment_suv(pet, connectivity=26), wall | cavity)
    # 6-connected wall: the background is 26-connected, the cavity leaks out.
    np.testing.assert_array_equal(segment_suv(pet, connectivity=6), wall)


def test_hot_spot_inside_a_cold_core_joins_the_lesion():
    shape, center = (15, 15, 15), (7, 7, 7)
    shell = ball(shape, center, 6) & ~ball(shape, center, 4)
    pet = np.where(shell, 5.0, 0.0)
    pet[7, 7, 7] = 5.0  # isolated voxel in the core
    np.testing.assert_array_equal(segment_suv(pet), ball(shape, center, 6))
    assert segment_suv(pet, fill_holes=None)[7, 7, 7] == 0


def test_min_size_is_a_volume_in_mm3(two_blobs):
    pet, big, small = two_blobs  # 64 and 8 voxels
    aniso = (3.0, 1.0, 1.0)  # the small cube is 24 mm³, the big one 192 mm³
    both = segment_suv(pet, keep="all", min_size_mm3=24.0, spacing_zyx=aniso)
    np.testing.assert_array_equal(both, big | small)
    only_big = segment_suv(pet, keep="all", min_size_mm3=24.5, spacing_zyx=aniso)
    np.testing.assert_array_equal(only_big, big)
    iso = segment_suv(pet, keep="all", min_size_mm3=20.0, spacing_zyx=(1.0, 1.0, 1.0))
    np.testing.assert_array_equal(iso, big)  # 8 mm³ there
    with pytest.raises(InputError, match=r"is 8 mm³, below min_size_mm3=20"):
        segment_suv(pet, seed_zyx=(5, 8, 8), min_size_mm3=20.0, spacing_zyx=(1, 1, 1))
    with pytest.raises(InputError, match="no component of at least 200 mm³"):
        segment_suv(pet, min_size_mm3=200.0, spacing_zyx=aniso)


def test_relative_threshold_uses_the_max_inside_the_region():
    pet = np.full((9, 16, 16), 0.2, dtype=np.float32)
    core = np.zeros(pet.shape, bool)
    core[3:6, 3:6, 3:6] = True
    rim = np.zeros(pet.shape, bool)
    rim[2:7, 2:7, 2:7] = True
    rim &= ~core
    pet[rim] = 3.0
    pet[core] = 5.0  # SUVmax of the lesion; 40 % of it is 2.0 SUV
    pet[2:7, 10:14, 10:14] = 10.0  # hotter organ: 40 % of it, 4.0 SUV, would drop the rim
    region = np.zeros(pet.shape, bool)
    region[1:8, 1:8, 1:8] = True

    expected = core | rim
    np.testing.assert_array_equal(segment_suv_relative(pet, fraction=0.4, region=region), expected)
    box = np.s_[1:8, 1:8, 1:8]
    np.testing.assert_array_equal(segment_suv_relative(pet, fraction=0.4, box_zyx=box), expected)
    # The global maximum would have given the core alone (and the organ is outside anyway).
    np.testing.assert_array_equal(segment_suv(pet, threshold_suv=4.0, region=region), core)
    np.testing.assert_array_equal(segment_suv_relative(pet, fraction=1.0, region=region), core)


def test_hu_window_includes_both_bounds():
    ct = np.full((3, 3, 7), -1000, dtype=np.int16)
    ct[1, 1, :] = [-101, -100, 0, 200, 201, 50, 60]
    out = segment_hu(ct, low_hu=-100, high_hu=200, keep="all")
    np.testing.assert_array_equal(out[1, 1], [0, 1, 1, 1, 0, 1, 1])
    assert out.sum() == 5


def test_suv_threshold_is_inclusive():
    pet = np.zeros((3, 3, 5), dtype=np.float32)
    pet[1, 1, :] = [2.49, 2.5, 2.6, 2.4, 3.0]
    np.testing.assert_array_equal(segment_suv(pet, keep="all")[1, 1], [0, 1, 1, 0, 1])


def test_result_stays_inside_region_and_box(two_blobs):
    pet, big, small = two_blobs
    region = np.zeros(pet.shape, bool)
    region[:3] = True  # cuts the big cube: z 1..2 of 1..4
    out = segment_suv(pet, region=region, keep="all")
    np.testing.assert_array_equal(out, big & region)
    out = segment_suv(pet, box_zyx=np.s_[4:, 6:, 6:])  # holds only the small cube
    np.testing.assert_array_equal(out, small)
    out = segment_suv(pet, box_zyx=np.s_[:, :, 3:], region=region, keep="all")
    expected = big & region
    expected[:, :, :3] = False
    np.testing.assert_array_equal(out, expected)


def test_filled_holes_do_not_leave_the_region():
    shape, center = (17, 17, 17), (8, 8, 8)
    shell = ball(shape, center, 6) & ~ball(shape, center, 3)
    pet = np.where(shell, 6.0, 0.0)
    region = ball(shape, center, 7) & ~ball(shape, center, 1)  # excludes the very centre
    out = segment_suv(pet, region=region)
    np.testing.assert_array_equal(out, ball(shape, center, 6) & region)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_components_agree_with_simpleitk(connectivity):
    """An independent implementation: SimpleITK connected components, sorted by size."""
    rng = np.random.default_rng(7)
    pet = ndi.gaussian_filter(rng.normal(size=(12, 20, 20)), 1.0).astype(np.float32)
    pet = np.clip(pet, 0, None) * 10
    binary = (pet >= 1.0).astype(np.uint8)

    cc = sitk.ConnectedComponent(sitk.GetImageFromArray(binary), connectivity == 26)
    by_size = sitk.GetArrayFromImage(sitk.RelabelComponent(cc, sortByObjectSize=True))
    sizes = np.bincount(by_size.ravel())[1:]
    assert len(sizes) > 3 and sizes[0] > sizes[1]  # the test needs a unique largest

    largest = segment_suv(pet, threshold_suv=1.0, connectivity=connectivity, fill_holes=None)
    np.testing.assert_array_equal(largest, by_size == 1)

    min_voxels = int(sizes[2])  # keeps labels 1..3 and any tie with 3
    large = sitk.RelabelComponent(cc, minimumObjectSize=min_voxels)
    expected = sitk.GetArrayFromImage(large) > 0
    out = segment_suv(
        pet,
        threshold_suv=1.0,
        connectivity=connectivity,
        fill_holes=None,
        keep="all",
        min_size_mm3=min_voxels * 0.5,
        spacing_zyx=(2.0, 0.5, 0.5),
    )
    np.testing.assert_array_equal(out, expected)


def test_inputs_are_not_modified(two_blobs):
    pet, _, _ = two_blobs
    region = np.ones(pet.shape, bool)
    before, region_before = pet.copy(), region.copy()
    segment_suv_relative(pet, region=region)
    np.testing.assert_array_equal(pet, before)
    np.testing.assert_array_equal(region, region_before)


# errors --------------------------------------------------------------------


def test_empty_result_is_a_clear_error_unless_allowed(two_blobs):
    pet, _, _ = two_blobs
    region = np.zeros(pet.shape, bool)
    region[0] = True
    with pytest.raises(InputError, match="no voxel at or above 2.5 SUV in the region") as info:
        segment_suv(pet, region=region, source="P1/pet.nii.gz")
    assert str(info.value).startswith("P1/pet.nii.gz: ")
    out = segment_suv(pet, region=region, allow_empty=True)
    assert out.dtype == np.uint8 and out.shape == pet.shape and not out.any()
    with pytest.raises(InputError, match=r"no voxel in \[500, 900\] HU"):
        segment_hu(pet, low_hu=500, high_hu=900)
    with pytest.raises(InputError, match=r"seed_zyx \(0, 0, 0\) is not in a voxel at or above"):
        segment_suv(pet, seed_zyx=(0, 0, 0))
    assert not segment_suv(pet, seed_zyx=(0, 0, 0), allow_empty=True).any()


def test_nan_in_the_region_is_an_input_error(two_blobs):
    pet, big, _ = two_blobs
    pet[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="1 voxels in the region are NaN or infinite"):
        segment_suv(pet, source="pet.nrrd")
    region = np.zeros(pet.shape, bool)
    region[1:] = True  # NaN outside the region is not looked at
    np.testing.assert_array_equal(segment_suv(pet, region=region), big)
    pet[2, 2, 2] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        segment_suv_relative(pet, box_zyx=np.s_[1:, :, :])


def test_relative_threshold_needs_a_positive_max():
    with pytest.raises(InputError, match="SUVmax in the region is 0"):
        segment_suv_relative(np.zeros((3, 3, 3)))


def test_empty_region_is_an_input_error(two_blobs):
    pet, _, _ = two_blobs
    region = np.zeros(pet.shape, bool)
    region[0] = True
    with pytest.raises(InputError, match="region has no voxel inside box_zyx"):
        segment_suv(pet, region=region, box_zyx=np.s_[2:, :, :])


IMG = np.zeros((4, 5, 6), dtype=np.float32)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: segment_suv(IMG[0]), ValueError, r"image_suv must be a 3D array"),
        (lambda: segment_hu(IMG > 0, low_hu=0, high_hu=1), TypeError, "must hold real numbers"),
        (lambda: segment_hu(IMG, low_hu=100, high_hu=100), ValueError, "low_hu .* below high_hu"),
        (lambda: segment_hu(IMG, low_hu=np.nan, high_hu=1), ValueError, "low_hu must be finite"),
        (lambda: segment_hu(IMG, low_hu="0", high_hu=1), TypeError, "low_hu must be a number"),
        (lambda: segment_suv(IMG, threshold_suv=0), ValueError, "threshold_suv must be > 0"),
        (
            lambda: segment_suv_relative(IMG, fraction=0),
            ValueError,
            r"fraction must be in \(0, 1\]",
        ),
        (lambda: segment_suv_relative(IMG, fraction=1.2), ValueError, "fraction must be in"),
        (lambda: segment_suv(IMG, region=np.ones((4, 5, 5), bool)), ValueError, "region shape"),
        (
            lambda: segment_suv(IMG, region=np.ones(IMG.shape)),
            TypeError,
            "region must be a boolean",
        ),
        (
            lambda: segment_suv(IMG, box_zyx=np.s_[1:2, 1:2]),
            TypeError,
            "box_zyx must be a tuple of 3",
        ),
        (
            lambda: segment_suv(IMG, box_zyx=np.s_[::2, :, :]),
            ValueError,
            "along z must have step 1",
        ),
        (
            lambda: segment_suv(IMG, box_zyx=np.s_[:, 3:3, :]),
            ValueError,
            "box_zyx is empty along y",
        ),
        (lambda: segment_suv(IMG, keep="biggest"), ValueError, "keep must be"),
        (lambda: segment_suv(IMG, keep="seed"), ValueError, "keep='seed' needs seed_zyx"),
        (lambda: segment_suv(IMG, keep="all", seed_zyx=(1, 1, 1)), ValueError, "only used with"),
        (lambda: segment_suv(IMG, seed_zyx=(1, 1)), TypeError, "seed_zyx must be 3 integer"),
        (lambda: segment_suv(IMG, seed_zyx=(1.0, 1, 1)), TypeError, "seed_zyx must be 3 integer"),
        (lambda: segment_suv(IMG, seed_zyx=(4, 0, 0)), ValueError, "outside the image"),
        (
            lambda: segment_suv(IMG, seed_zyx=(0, 0, 0), box_zyx=np.s_[1:, :, :]),
            ValueError,
            "outside box_zyx",
        ),
        (
            lambda: segment_suv(IMG, seed_zyx=(0, 0, 0), region=IMG > 1),
            ValueError,
            "outside the region",
        ),
        (lambda: segment_suv(IMG, connectivity=18), ValueError, "connectivity must be 26 or 6"),
        (lambda: segment_suv(IMG, fill_holes="2d"), ValueError, "fill_holes must be"),
        (lambda: segment_suv(IMG, min_size_mm3=-1.0), ValueError, "min_size_mm3 must be >= 0"),
        (lambda: segment_suv(IMG, min_size_mm3=5.0), ValueError, "min_size_mm3 needs spacing_zyx"),
        (
            lambda: segment_suv(IMG, spacing_zyx=(1, 1)),
            ValueError,
            "spacing_zyx must be 3 positive",
        ),
        (lambda: segment_suv(IMG, spacing_zyx=(1, 0, 1)), ValueError, "spacing_zyx must be 3"),
        (lambda: segment_suv(IMG, spacing_zyx="abc"), ValueError, "spacing_zyx must be 3"),
    ],
)
def test_bad_parameters_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
