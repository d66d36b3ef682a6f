"""Discretisation: PyRadiomics' getBinEdges/binImage as oracle, plus the formula by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from radflow.errors import InputError, SettingsError
from radflow.preprocess.discretise import bin_edges, discretise


def _textured(shape=(20, 24, 24), seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(size=shape), 1.5)


def _ct(seed=0):
    field = _textured(seed=seed)
    return np.round(-300 + 1400 * field / np.abs(field).max()).astype(np.int16)  # -1700..1100 HU


def _pet(seed=1):
    field = _textured(seed=seed)
    return (np.exp(2.5 * field / np.abs(field).max()) * 3).astype(np.float32)  # ~0.25..36 SUV


def _mr(seed=2):
    field = _textured(seed=seed)
    return 100 * (field - field.mean()) / field.std()  # normalised, scale 100, float64


def _mask(shape=(20, 24, 24)):
    """Two disconnected parts, one with a hole, and a one-voxel-thick sheet."""
    zz, yy, xx = np.indices(shape)
    ball = (zz - 8) ** 2 + (yy - 10) ** 2 + (xx - 9) ** 2 <= 36
    hole = (zz - 8) ** 2 + (yy - 10) ** 2 + (xx - 9) ** 2 <= 4
    sheet = (zz == 16) & (yy > 15) & (xx > 12)
    return (ball & ~hole) | sheet


IMAGES = {"ct_int16": _ct, "pet_float32": _pet, "mr_float64": _mr}
SETTINGS = {
    "ct_int16": [
        {"binWidth": 25},
        {"binWidth": 25.0},
        {"binWidth": 10},
        {"binWidth": 7.5},
        {"binCount": 16},
        {"binCount": 32},
    ],
    "pet_float32": [
        {"binWidth": 0.25},
        {"binWidth": 0.1},
        {"binWidth": 1},
        {"binCount": 64},
        {"binCount": 5},
    ],
    "mr_float64": [{"binWidth": 5}, {"binWidth": 0.3}, {"binCount": 32}],
}
CASES = [(kind, s) for kind, settings in SETTINGS.items() for s in settings]


def _ours(setting: dict) -> dict:
    return {"bin_width": setting.get("binWidth"), "bin_count": setting.get("binCount")}


@pytest.mark.oracle
@pytest.mark.parametrize("kind, setting", CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_matches_pyradiomics_bin_image(kind, setting):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image, mask = IMAGES[kind](), _mask()
    expected, expected_edges = imageoperations.binImage(image, mask, **setting)
    binned, edges = discretise(image, mask, **_ours(setting))
    assert binned.dtype == np.int32
    np.testing.assert_array_equal(binned, expected)
    np.testing.assert_array_equal(edges, expected_edges)
    assert binned[mask].min() == 1 and (binned[~mask] == 0).all()
    # uint8 label masks (non-zero = ROI) give the same
    np.testing.assert_array_equal(
        discretise(image, mask.astype(np.uint8) * 3, **_ours(setting))[0], expected
    )


@pytest.mark.oracle
@pytest.mark.parametrize("kind, setting", CASES[::2], ids=[f"{k}-{s}" for k, s in CASES[::2]])
def test_matches_pyradiomics_without_mask_and_on_values(kind, setting):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    image = IMAGES[kind]()[:6, :7, :8]
    expected, expected_edges = imageoperations.binImage(image, None, **setting)
    binned, edges = discretise(image, **_ours(setting))
    np.testing.assert_array_equal(binned, expected)
    np.testing.assert_array_equal(edges, expected_edges)
    values = image[_mask()[:6, :7, :8] | (image > np.median(image))]
    np.testing.assert_array_equal(
        bin_edges(values, **_ours(setting)), imageoperations.getBinEdges(values, **setting)
    )


EDGE_CASES = {
    "single_value_on_edge": np.full(5, 50, np.int16),
    "single_value_off_edge": np.full(5, 60.5, np.float32),
    "single_negative_value": np.full(3, -1000, np.int16),
    "max_on_edge": np.array([54, 75, 100, 150], np.int16),
    "two_values": np.array([-0.1, 0.1]),
    "float32_near_edges": np.array([0.3, 0.29999998, 0.6, 0.7, 0.9000001], np.float32),
    "int16_extremes": np.array([-32768, 0, 32000], np.int16),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(EDGE_CASES))
@pytest.mark.parametrize(
    "setting", [{"binWidth": 25}, {"binWidth": 0.1}, {"binCount": 1}, {"binCount": 3}]
)
def test_edge_cases_match_pyradiomics(name, setting):
    imageoperations = pytest.importorskip("radiomics.imageoperations")
    values = EDGE_CASES[name]
    if name == "int16_extremes" and "binWidth" in setting:
        setting = {
            "binWidth": float(setting["binWidth"])
        }  # int width overflows int16 in PyRadiomics
    expected, expected_edges = imageoperations.binImage(values, None, **setting)
    binned, edges = discretise(values, **_ours(setting))
    np.testing.assert_array_equal(binned, expected)
    np.testing.assert_array_equal(edges, expected_edges)


def test_fixed_width_formula_by_hand():
    # X_b = floor(X / W) - floor(min X / W) + 1, every bin half-open.
    values = np.array([-1000, -976, -975, -951, -950, 0, 24, 25, 400], np.int16)
    binned, edges = discretise(values, bin_width=25)
    expected = np.floor(values / 25) - np.floor(values.min() / 25) + 1
    np.testing.assert_array_equal(binned, expected)
    assert binned.tolist() == [1, 1, 2, 2, 3, 41, 41, 42, 57]
    assert edges[0] == -1000 and edges[-1] == 425 and len(edges) == 58
    # PyRadiomics' docs give [50, ..., 175] for this example; its code also
    # keeps the empty top bin [175, 200) (edges up to max + 2 W, exclusive).
    assert bin_edges([54, 100, 166], bin_width=25).tolist() == [50, 75, 100, 125, 150, 175, 200]


def test_fixed_count_by_hand():
    values = np.array([0.0, 1.0, 2.5, 9.99, 10.0])
    binned, edges = discretise(values, bin_count=4)
    np.testing.assert_allclose(edges, [0, 2.5, 5, 7.5, 11])
    assert binned.tolist() == [1, 1, 2, 4, 4]  # the maximum in the top bin
    # A flat ROI: numpy.histogram spans [v - 0.5, v + 0.5], so v lies on the
    # middle edge and PyRadiomics puts it in bin N/2 + 1, not bin 1.
    assert discretise(np.full(4, 7.0), bin_count=8)[0].tolist() == [5, 5, 5, 5]
    assert discretise(np.full(4, 7.0), bin_count=1)[0].tolist() == [1, 1, 1, 1]
    # bin_count wins over bin_width, as binCount over binWidth in PyRadiomics
    np.testing.assert_array_equal(discretise(values, bin_width=1, bin_count=4)[0], binned)


def test_bad_parameters():
    values = np.arange(10)
    for bad in (0, -1, float("nan"), float("inf"), True, "25"):
        with pytest.raises(SettingsError, match="bin_width"):
            discretise(values, bin_width=bad)
    for bad in (0, 2.5, True):
        with pytest.raises(SettingsError, match="bin_count"):
            discretise(values, bin_count=bad)
    with pytest.raises(SettingsError, match="bin_width or bin_count"):
        discretise(values)


def test_bad_input():
    image = np.arange(24.0).reshape(2, 3, 4)
    with pytest.raises(InputError, match="empty"):
        discretise(image, np.zeros(image.shape, bool), bin_width=1)
    with pytest.raises(InputError, match="shape"):
        discretise(image, np.ones((2, 3, 5), bool), bin_width=1)
    with pytest.raises(InputError, match="dtype"):
        discretise(image, np.ones(image.shape, float), bin_width=1)
    image[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        discretise(image, np.ones(image.shape, bool), bin_width=1)
    mask = np.ones(image.shape, bool)
    mask[0, 0, 0] = False  # NaN outside the ROI does not matter
    assert discretise(image, mask, bin_width=1)[0][0, 0, 0] == 0
    with pytest.raises(InputError, match="dtype"):
        bin_edges(np.array([1 + 2j]), bin_width=1)
    with pytest.raises(InputError, match="empty"):
        bin_edges([], bin_count=3)
