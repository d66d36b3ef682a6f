"""IBSI processing and configurations, against values computed by hand from the IBSI 1 manual."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radflow.errors import SettingsError
from radflow.params.ibsi import CONFIG_NAMES, load_ibsi_config
from radflow.preprocess import ibsi as proc


def _row(values, axis=2):
    """A (z, y, x) array holding `values` along one axis."""
    shape = [1, 1, 1]
    shape[axis] = len(values)
    return np.asarray(values, dtype=float).reshape(shape)


# -- interpolation grid ------------------------------------------------------


def test_grid_manual_example():
    # IBSI 1 manual, "Interpolation grid": 4 voxels of 3 mm to 2 mm -> ceil(12 / 2) = 6
    # voxels; centres span 9 mm and 10 mm, so voxel 0 moves (9 - 10) / 2 = -0.5 mm.
    grid = proc.interpolation_grid(
        (1, 1, 4), spacing_zyx=(1, 1, 3), new_spacing_zyx=(None, None, 2)
    )
    assert grid.shape_zyx == (1, 1, 6)
    assert grid.spacing_zyx == (1.0, 1.0, 2.0)
    assert grid.start_zyx[2] == pytest.approx(-1 / 6)
    assert grid.step_zyx[2] == pytest.approx(2 / 3)
    assert grid.origin_shift_zyx((1, 1, 3))[2] == pytest.approx(-0.5)
    # None keeps an axis exactly
    assert grid.start_zyx[:2] == (0.0, 0.0) and grid.step_zyx[:2] == (1.0, 1.0)


def test_grid_ct_phantom_sizes():
    # 204 x 0.977 / 2 = 99.65 -> 100; 201 x 0.977 / 2 = 98.19 -> 99; 60 x 3 / 2 = 90
    # exactly, also when the spacing carries float32 round-off (0.977 as stored).
    spacing = (3.0, float(np.float32(0.977)), float(np.float32(0.977)))
    grid = proc.interpolation_grid((60, 201, 204), spacing_zyx=spacing, new_spacing_zyx=(2, 2, 2))
    assert grid.shape_zyx == (90, 99, 100)
    in_plane = proc.interpolation_grid(
        (60, 201, 204), spacing_zyx=spacing, new_spacing_zyx=(None, 2, 2)
    )
    assert in_plane.shape_zyx == (60, 99, 100)


@pytest.mark.parametrize(
    "n, old, new", [(4, 3.0, 2.0), (5, 0.977, 2.0), (7, 2.0, 0.5), (1, 1.0, 3.0)]
)
def test_grid_is_centred_on_the_old_grid(n, old, new):
    grid = proc.interpolation_grid(
        (1, 1, n), spacing_zyx=(1, 1, old), new_spacing_zyx=(None, None, new)
    )
    n_b = grid.shape_zyx[2]
    assert n_b == math.ceil(round(n * old / new, 6))
    centre_new = grid.start_zyx[2] + grid.step_zyx[2] * (n_b - 1) / 2
    assert centre_new == pytest.approx((n - 1) / 2)


def test_grid_rejects_bad_spacing():
    with pytest.raises(ValueError, match="spacing_zyx"):
        proc.interpolation_grid((1, 1, 4), spacing_zyx=(1, 0, 3), new_spacing_zyx=(1, 1, 1))
    with pytest.raises(ValueError, match="new_spacing_zyx"):
        proc.interpolation_grid((1, 1, 4), spacing_zyx=(1, 1, 3), new_spacing_zyx=(1, -2, 1))
    with pytest.raises(ValueError, match="shape_zyx"):
        proc.interpolation_grid((1, 4), spacing_zyx=(1, 1, 3), new_spacing_zyx=(1, 1, 1))


# -- image and mask interpolation ---------------------------------------------


def _grid_3_to_2():
    return proc.interpolation_grid(
        (1, 1, 4), spacing_zyx=(1, 1, 3), new_spacing_zyx=(None, None, 2)
    )


def test_linear_interpolation_of_a_ramp():
    # Ramp 0, 10, 20, 30 sampled at original indices -1/6 + 2k/3: 10 x index, and
    # the boundary value (0 or 30) beyond the grid (padding with boundary intensities).
    out = proc.interpolate_image(_row([0, 10, 20, 30]), _grid_3_to_2(), method="linear")
    assert out.ravel() == pytest.approx([0, 5, 35 / 3, 55 / 3, 25, 30])
    rounded = proc.interpolate_image(
        _row([0, 10, 20, 30]), _grid_3_to_2(), method="linear", round_intensities=True
    )
    assert rounded.ravel().tolist() == [0, 5, 12, 18, 25, 30]


def test_nearest_interpolation_picks_the_closest_voxel():
    out = proc.interpolate_image(_row([0, 10, 20, 30]), _grid_3_to_2(), method="nearest")
    # indices -1/6, 1/2, 7/6, 11/6, 5/2, 19/6 -> nearest 0, (0 or 1), 1, 2, (2 or 3), 3
    values = out.ravel()
    assert values[[0, 2, 3, 5]].tolist() == [0, 10, 20, 30]
    assert values[1] in (0, 10) and values[4] in (20, 30)


def test_cubic_spline_reproduces_a_line_away_from_the_edges():
    # An interpolating cubic spline is exact on linear data; the boundary
    # padding only disturbs the first and last few samples.
    n = 40
    grid = proc.interpolation_grid(
        (1, 1, n), spacing_zyx=(1, 1, 3), new_spacing_zyx=(None, None, 2)
    )
    out = proc.interpolate_image(_row(7.0 * np.arange(n)), grid, method="cubic_spline").ravel()
    index = grid.start_zyx[2] + grid.step_zyx[2] * np.arange(grid.shape_zyx[2])
    interior = (index > 10) & (index < n - 11)
    assert out[interior] == pytest.approx(7.0 * index[interior], abs=1e-3)


def test_in_plane_interpolation_leaves_slices_alone():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 4, 4))
    grid = proc.interpolation_grid(
        image.shape, spacing_zyx=(3, 1, 1), new_spacing_zyx=(None, 0.5, 0.5)
    )
    out = proc.interpolate_image(image, grid, method="linear")
    assert out.shape == (3, 8, 8)
    # each slice only from its own slice: slice means agree with bilinear of that slice alone
    single = proc.interpolate_image(
        image[1:2],
        proc.interpolation_grid((1, 4, 4), spacing_zyx=(3, 1, 1), new_spacing_zyx=(None, 0.5, 0.5)),
        method="linear",
    )
    np.testing.assert_allclose(out[1], single[0])


def test_mask_partial_volume_threshold():
    # mask 1, 1, 0, 0 at indices -1/6, 1/2, 7/6, 11/6, 5/2, 19/6:
    # fractions 1, 1, 5/6, 1/6, 0, 0
    out = proc.interpolate_mask(_row([1, 1, 0, 0]), _grid_3_to_2(), method="linear", threshold=0.5)
    assert out.ravel().tolist() == [True, True, True, False, False, False]
    strict = proc.interpolate_mask(
        _row([1, 1, 0, 0]), _grid_3_to_2(), method="linear", threshold=0.9
    )
    assert strict.ravel().tolist() == [True, True, False, False, False, False]


def test_mask_value_exactly_half_is_inside():
    # index 1/2 lies halfway between ROI voxel 0 and background voxel 1: fraction 0.5
    # in exact arithmetic (round-off may give 0.4999...), and R >= 0.5 is in the ROI.
    out = proc.interpolate_mask(_row([1, 0, 0, 0]), _grid_3_to_2(), method="linear", threshold=0.5)
    assert out.ravel().tolist() == [True, True, False, False, False, False]


def test_interpolation_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        proc.interpolate_image(_row([0, 1, 2, 3]), _grid_3_to_2(), method="cubic")
    with pytest.raises(ValueError, match="3-D"):
        proc.interpolate_image(np.zeros((4, 4)), _grid_3_to_2(), method="linear")
    with pytest.raises(ValueError, match="NaN"):
        proc.interpolate_image(_row([0, np.nan, 2, 3]), _grid_3_to_2(), method="linear")
    with pytest.raises(ValueError, match="threshold"):
        proc.interpolate_mask(_row([1, 0, 0, 0]), _grid_3_to_2(), threshold=0)
    with pytest.raises(ValueError, match="boolean"):
        proc.interpolate_mask(_row([2, 0, 0, 0]), _grid_3_to_2())


# -- re-segmentation ------------------------------------------------------------


def test_range_resegmentation_closed_and_open():
    image = _row([-600, -500, 0, 400, 401])
    mask = np.ones_like(image, dtype=bool)
    assert proc.resegment_range(image, mask, low=-500, high=400).ravel().tolist() == [0, 1, 1, 1, 0]
    assert proc.resegment_range(image, mask, low=-500).ravel().tolist() == [0, 1, 1, 1, 1]
    assert proc.resegment_range(image, mask, high=0).ravel().tolist() == [1, 1, 1, 0, 0]
    # never adds voxels to the ROI
    part = mask.copy()
    part[..., 2] = False
    assert proc.resegment_range(image, part, low=-500, high=400).ravel().tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="above"):
        proc.resegment_range(image, mask, low=10, high=0)


def test_outlier_bounds_by_hand():
    # mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    low, high = proc.outlier_bounds([1, 2, 3, 4], sigma=3)
    assert (low, high) == pytest.approx((2.5 - 3 * math.sqrt(1.25), 2.5 + 3 * math.sqrt(1.25)))


def test_outlier_filtering_removes_the_outlier_only():
    # 20 voxels of 0 and one of 100: mean 100/21, sd sqrt(10000/21 - (100/21)^2) = 21.30;
    # 3 sd bounds [-59.1, 68.7] exclude 100 only.
    values = np.zeros(21)
    values[7] = 100
    image = _row(values)
    kept = proc.filter_outliers(image, np.ones_like(image, dtype=bool), sigma=3)
    assert kept.sum() == 20 and not kept.ravel()[7]
    # voxels outside the ROI take no part in the statistics
    mask = np.ones_like(image, dtype=bool)
    mask[..., :10] = False
    assert not proc.filter_outliers(image, mask, sigma=3).ravel()[7]
    with pytest.raises(ValueError, match="empty"):
        proc.filter_outliers(image, np.zeros_like(mask), sigma=3)


# -- discretisation -------------------------------------------------------------


def test_fixed_bin_size_edges_start_at_the_range_minimum():
    # edges -500, -475, ..., an intensity on an edge opens the next bin:
    # (-1 + 500) / 25 = 19.96 -> 20; (0 + 500) / 25 = 20 -> 21; 877 / 25 -> 36; 900 / 25 -> 37
    image = _row([-500, -475.0001, -475, -1, 0, 377, 400])
    levels = proc.discretise_fixed_bin_size(
        image, np.ones_like(image, dtype=bool), bin_width=25, minimum=-500
    )
    assert levels.ravel().tolist() == [1, 1, 2, 20, 21, 36, 37]


def test_fixed_bin_size_defaults_to_the_roi_minimum_and_zeroes_the_background():
    image = _row([-1000, -20, 5, 30])
    mask = np.array([False, True, True, True]).reshape(image.shape)
    levels = proc.discretise_fixed_bin_size(image, mask, bin_width=25)
    assert levels.ravel().tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="below the bin minimum"):
        proc.discretise_fixed_bin_size(image, mask, bin_width=25, minimum=0)


def test_fixed_bin_number_by_hand():
    image = _row([0, 1, 2, 3, 4])
    mask = np.ones_like(image, dtype=bool)
    # floor(N (x - 0) / 4) + 1, the maximum in bin N
    assert proc.discretise_fixed_bin_number(image, mask, bin_count=2).ravel().tolist() == [
        1,
        1,
        2,
        2,
        2,
    ]
    assert proc.discretise_fixed_bin_number(image, mask, bin_count=4).ravel().tolist() == [
        1,
        2,
        3,
        4,
        4,
    ]
    assert proc.discretise_fixed_bin_number(
        _row([5, 5]), np.ones((1, 1, 2), bool), bin_count=8
    ).ravel().tolist() == [1, 1]
    with pytest.raises(ValueError, match="bin_count"):
        proc.discretise_fixed_bin_number(image, mask, bin_count=0)


def test_ivh_fixed_bin_size_uses_bin_centres():
    # bins of 2.5 HU from -1000: -1000 -> bin 1 (centre -998.75), -997.5 -> bin 2
    # (-996.25), 400 -> bin 561 (centre 401.25); G = [-1000 + 1.25, 400 - 1.25]
    image = _row([-1000, -997.5, 0, 400])
    ivh = proc.ivh_intensities(
        image,
        np.ones_like(image, dtype=bool),
        method="fixed_bin_size",
        bin_width=2.5,
        value_range=(-1000, 400),
    )
    assert ivh.values.ravel().tolist() == [-998.75, -996.25, 1.25, 401.25]
    assert ivh.value_range == (-998.75, 398.75) and ivh.value_step == 2.5


def test_ivh_discrete_and_fixed_bin_number_ranges():
    image = _row([-20, 3, 50])
    mask = np.ones_like(image, dtype=bool)
    none = proc.ivh_intensities(image, mask, method="none", value_range=(-500, 400))
    assert none.value_range == (-500, 400) and none.value_step == 1
    assert none.values.ravel().tolist() == [-20, 3, 50]
    open_high = proc.ivh_intensities(image, mask, method="none", value_range=(-500, None))
    assert open_high.value_range == (-500, 50)
    no_range = proc.ivh_intensities(image, mask, method="none")
    assert no_range.value_range == (-20, 50)
    fbn = proc.ivh_intensities(image, mask, method="fixed_bin_number", bin_count=1000)
    assert fbn.value_range == (1, 1000) and fbn.values.ravel().tolist() == [1, 329, 1000]


# -- configurations -------------------------------------------------------------


def test_shipped_configurations_are_the_ibsi_ones():
    # /work/shared/ibsi/README.md, "Configurations A-E", and the digital phantom
    c = {name: load_ibsi_config(name) for name in CONFIG_NAMES}
    assert c["phantom"].interpolation is None and c["phantom"].discretisation.method == "none"
    assert c["phantom"].aggregation == "all"
    assert [c[n].aggregation for n in "ABCDE"] == ["2D", "2D", "3D", "3D", "3D"]
    assert c["A"].interpolation is None
    assert c["B"].interpolation.spacing_zyx_mm == (None, 2.0, 2.0)
    for n in "CDE":
        assert c[n].interpolation.spacing_zyx_mm == (2.0, 2.0, 2.0)
    assert [c[n].interpolation.image for n in "BCDE"] == [
        "linear",
        "linear",
        "linear",
        "cubic_spline",
    ]
    for n in "BCDE":
        interp = c[n].interpolation
        assert (
            interp.round_intensities
            and interp.roi == "linear"
            and interp.partial_volume_threshold == 0.5
        )
    assert [c[n].resegment_range for n in "ABCDE"] == [
        (-500, 400),
        (-500, 400),
        (-1000, 400),
        None,
        (-1000, 400),
    ]
    assert [c[n].outlier_sigma for n in "ABCDE"] == [None, None, None, 3, 3]
    texture = [
        (c[n].discretisation.method, c[n].discretisation.bin_width, c[n].discretisation.bin_count)
        for n in "ABCDE"
    ]
    assert texture == [
        ("fixed_bin_size", 25, None),
        ("fixed_bin_number", None, 32),
        ("fixed_bin_size", 25, None),
        ("fixed_bin_number", None, 32),
        ("fixed_bin_number", None, 32),
    ]
    ivh = [
        (
            c[n].ivh_discretisation.method,
            c[n].ivh_discretisation.bin_width,
            c[n].ivh_discretisation.bin_count,
        )
        for n in "ABCDE"
    ]
    assert ivh == [
        ("none", None, None),
        ("none", None, None),
        ("fixed_bin_size", 2.5, None),
        ("none", None, None),
        ("fixed_bin_number", None, 1000),
    ]


def _write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: mine
aggregation: 3D
resegmentation:
  range: [0, null]
discretisation:
  method: fixed_bin_size
  bin_width: 0.5
ivh_discretisation:
  method: fixed_bin_size
  bin_width: 0.1
"""


def test_config_from_a_file_with_an_open_range(tmp_path):
    config = load_ibsi_config(_write(tmp_path, GOOD))
    assert config.resegment_range == (0.0, None) and config.outlier_sigma is None
    assert config.aggregations == ("3D_avg", "3D_comb", "3D")
    assert load_ibsi_config(config) is config
    assert load_ibsi_config("c").name == "C"


@pytest.mark.parametrize(
    "edit, message",
    [
        (("aggregation: 3D", "aggregation: 3d"), "aggregation must be one of 2D, 3D, all"),
        (("bin_width: 0.5", "bin_widht: 0.5"), "unknown key 'bin_widht'; did you mean 'bin_width'"),
        (("bin_width: 0.5", "bin_width: -1"), "bin_width must be > 0"),
        (("range: [0, null]", "range: [5, 1]"), "low 5.0 is above high 1.0"),
        (("range: [0, null]", "range: [null, null]"), "both ends open"),
        (("name: mine\n", ""), "missing key 'name'"),
        (
            ("method: fixed_bin_size\n  bin_width: 0.5", "method: fixed_bin_count"),
            "method must be one of",
        ),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, edit, message):
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(SettingsError, match=message) as err:
        load_ibsi_config(path)
    assert str(path) in str(err.value)


def test_config_unknown_name_and_bad_interpolation(tmp_path):
    with pytest.raises(SettingsError, match="one of phantom, A, B, C, D, E"):
        load_ibsi_config("F")
    with pytest.raises(SettingsError, match="not found"):
        load_ibsi_config(tmp_path / "absent.yaml")
    text = GOOD + (
        "interpolation:\n  spacing_xyz_mm: [2, 2]\n  image: linear\n"
        "  round_intensities: true\n  roi: linear\n"
    )
    with pytest.raises(SettingsError, match="spacing_xyz_mm must be a list of 3"):
        load_ibsi_config(_write(tmp_path, text))
