"""NGTDM: parity with PyRadiomics 3.0.1, a naive NumPy reference, hand values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from texture_cases import texture_volume  # tests/features/texture_cases.py

from radflow.errors import InputError, SettingsError
from radflow.features import ngtdm

# PyRadiomics' 4x4 example (RadiomicsNGTDM docstring), distance 1, no level 4.
# n_i and s_i worked out by hand (neighbour sums / counts per voxel). The
# docstring's totals s_1, s_2, s_5 agree; its s_3 = 2.63 is a typo for the
# sum it shows, and its terms for s_5 are wrong though the total is right.
DOC_IMAGE = np.array([[1, 2, 5, 2], [3, 5, 1, 3], [1, 3, 5, 5], [3, 1, 1, 1]])[None]
DOC_COUNTS = [6, 2, 4, 4]
DOC_SUMS = [
    abs(1 - 10 / 3)
    + abs(1 - 30 / 8)
    + abs(1 - 15 / 5)
    + abs(1 - 13 / 5)
    + abs(1 - 15 / 5)
    + abs(1 - 11 / 3),
    abs(2 - 15 / 5) + abs(2 - 9 / 3),
    abs(3 - 12 / 5) + abs(3 - 18 / 5) + abs(3 - 20 / 8) + abs(3 - 5 / 3),
    abs(5 - 13 / 5) + abs(5 - 21 / 8) + abs(5 - 20 / 8) + abs(5 - 11 / 5),
]


def _volume(name):
    return texture_volume(name, seed=13)


BINNINGS = {
    "ct_ellipsoid": [{"binWidth": 25}, {"binCount": 16}],
    "pet_parts": [{"binWidth": 0.25}, {"binCount": 8}],
    "ct_slab": [{"binWidth": 10}],
}
CASES = [(name, binning) for name, options in BINNINGS.items() for binning in options]
PLANES = [(False, 0), (True, 0), (True, 1), (True, 2)]
DISTANCES = [(1,), (1, 2), (2,)]


def _pyradiomics(image, mask, spacing_zyx, **settings):
    """PyRadiomics' feature values, and the binned array and mask it used."""
    sitk = pytest.importorskip("SimpleITK")
    radiomics_ngtdm = pytest.importorskip("radiomics.ngtdm")
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    oracle = radiomics_ngtdm.RadiomicsNGTDM(sitk_image, sitk_mask, **settings)
    oracle.enableAllFeatures()
    values = {name: float(value) for name, value in oracle.execute().items()}
    return values, oracle.imageArray, oracle.maskArray


@pytest.mark.oracle
@pytest.mark.parametrize("distances", DISTANCES)
@pytest.mark.parametrize("force2d, dimension", PLANES)
@pytest.mark.parametrize("case, binning", CASES)
def test_matches_pyradiomics(case, binning, force2d, dimension, distances):
    pytest.importorskip("radiomics")
    image, mask, spacing = _volume(case)
    settings = dict(binning, force2D=force2d, force2Ddimension=dimension, distances=list(distances))
    expected, binned, roi = _pyradiomics(image, mask, spacing, **settings)
    got = ngtdm.compute(
        binned, roi, distances=distances, force2d=force2d, force2d_dimension=dimension
    )
    assert got.keys() == expected.keys() == {f.name for f in ngtdm.FEATURES}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.oracle
@pytest.mark.parametrize("shape", ["one_voxel", "one_level", "scattered"])
def test_degenerate_rois_match_pyradiomics(shape):
    """Flat ROI (Coarseness 1e6) and voxels without any neighbour in the ROI."""
    pytest.importorskip("radiomics")
    image = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7
    mask = np.zeros(image.shape, bool)
    if shape == "one_voxel":
        mask[2, 2, 3] = True
    elif shape == "one_level":
        image[:] = 100
        mask[1:3, 1:4, 2:5] = True
    else:
        mask[0, 0, ::2] = mask[2, 4, ::3] = True
    expected, binned, roi = _pyradiomics(image, mask, (1.0, 1.0, 1.0), binWidth=25)
    got = ngtdm.compute(binned, roi)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_pyradiomics_docstring_example():
    counts, sums, levels = ngtdm.tone_difference_matrix(DOC_IMAGE, np.ones(DOC_IMAGE.shape, bool))
    np.testing.assert_array_equal(levels, [1, 2, 3, 5])
    np.testing.assert_array_equal(counts, DOC_COUNTS)
    np.testing.assert_allclose(sums, DOC_SUMS, rtol=1e-14)


def _differences_naive(binned, mask, distances, force2d, dimension):
    """{grey level: [n, s]}, voxel by voxel; a voxel without neighbours adds 0 to s."""
    reach = max(distances)
    steps = [
        s
        for s in itertools.product(range(-reach, reach + 1), repeat=3)
        if max(map(abs, s)) in distances and not (force2d and s[dimension])
    ]
    table = {}
    for voxel in zip(*np.nonzero(mask)):
        neighbours = []
        for step in steps:
            other = tuple(v + s for v, s in zip(voxel, step))
            if all(0 <= o < n for o, n in zip(other, mask.shape)) and mask[other]:
                neighbours.append(int(binned[other]))
        level = int(binned[voxel])
        entry = table.setdefault(level, [0, 0.0])
        entry[0] += 1
        entry[1] += abs(level - np.mean(neighbours)) if neighbours else 0.0
    return table


@pytest.mark.parametrize(
    "distances, force2d, dimension",
    [((1,), False, 0), ((1, 2), False, 0), ((2,), True, 1), ((1,), True, 2)],
)
def test_matrix_matches_naive_reference(distances, force2d, dimension):
    rng = np.random.default_rng(5)
    binned = rng.integers(1, 7, size=(5, 6, 7))
    mask = rng.random(binned.shape) < 0.6
    counts, sums, levels = ngtdm.tone_difference_matrix(
        binned, mask, distances=distances, force2d=force2d, force2d_dimension=dimension
    )
    expected = _differences_naive(binned, mask, distances, force2d, dimension)
    assert levels.tolist() == sorted(expected)
    np.testing.assert_array_equal(counts, [expected[level][0] for level in sorted(expected)])
    np.testing.assert_allclose(sums, [expected[level][1] for level in sorted(expected)], rtol=1e-12)


def test_result_does_not_depend_on_cropping():
    image, mask, _ = _volume("pet_parts")
    binned = np.digitize(image, np.linspace(image.min(), image.max(), 9))
    padded = np.pad(binned, 3, constant_values=5)  # outside the ROI: ignored
    for distances in [(1,), (2,)]:
        assert ngtdm.compute(binned, mask, distances=distances) == ngtdm.compute(
            padded, np.pad(mask, 3), distances=distances
        )


def test_flat_roi_values():
    got = ngtdm.compute(np.full((2, 3, 3), 3), np.ones((2, 3, 3), bool))
    assert got == {
        "Coarseness": 1e6,
        "Contrast": 0.0,
        "Busyness": 0.0,
        "Complexity": 0.0,
        "Strength": 0.0,
    }


def test_feature_selection():
    got = ngtdm.compute(np.full((2, 3, 3), 3), np.ones((2, 3, 3), bool), features=["Strength"])
    assert got == {"Strength": 0.0}
    with pytest.raises(SettingsError, match="'ZoneEntropy'"):
        ngtdm.compute(np.ones((2, 3, 3), int), np.ones((2, 3, 3), bool), features=["ZoneEntropy"])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"distances": [0]}, SettingsError),
        ({"distances": [1.0]}, SettingsError),
        ({"force2d_dimension": -1}, SettingsError),
        ({"binned": np.ones((2, 3, 3))}, InputError),
        ({"mask": np.full((2, 3, 3), 2)}, InputError),
    ],
)
def test_bad_input(kwargs, error):
    arguments = {"binned": np.ones((2, 3, 3), int), "mask": np.ones((2, 3, 3), bool), **kwargs}
    with pytest.raises(error):
        ngtdm.compute(**arguments)
