"""GLSZM: parity with PyRadiomics 3.0.1, an independent zone labelling, hand values."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import ndimage
from texture_cases import texture_volume  # tests/features/texture_cases.py

from radflow.errors import InputError, SettingsError
from radflow.features import glszm

# PyRadiomics' own 5x5 example (RadiomicsGLSZM docstring): grey levels 1..5,
# rows of P = levels 1..5, columns = zone sizes 1..5.
DOC_IMAGE = np.array(
    [[5, 2, 5, 4, 4], [3, 3, 3, 1, 3], [2, 1, 1, 1, 3], [4, 2, 2, 2, 3], [3, 5, 3, 3, 2]]
)[None]
DOC_GLSZM = np.array(
    [[0, 0, 0, 1, 0], [1, 0, 0, 0, 1], [1, 0, 1, 0, 1], [1, 1, 0, 0, 0], [3, 0, 0, 0, 0]]
)


def _volume(name):
    return texture_volume(name, seed=7)


BINNINGS = {
    "ct_ellipsoid": [{"binWidth": 25}, {"binCount": 16}],
    "pet_parts": [{"binWidth": 0.25}, {"binCount": 8}],
    "ct_slab": [{"binWidth": 10}],
}
CASES = [(name, binning) for name, options in BINNINGS.items() for binning in options]
PLANES = [(False, 0), (True, 0), (True, 1), (True, 2)]


def _pyradiomics(image, mask, spacing_zyx, **settings):
    """PyRadiomics' feature values, and the binned array and mask it used."""
    sitk = pytest.importorskip("SimpleITK")
    radiomics_glszm = pytest.importorskip("radiomics.glszm")
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    oracle = radiomics_glszm.RadiomicsGLSZM(sitk_image, sitk_mask, **settings)
    oracle.enableAllFeatures()
    values = {name: float(value) for name, value in oracle.execute().items()}
    return values, oracle.imageArray, oracle.maskArray


@pytest.mark.oracle
@pytest.mark.parametrize("force2d, dimension", PLANES)
@pytest.mark.parametrize("case, binning", CASES)
def test_matches_pyradiomics(case, binning, force2d, dimension):
    pytest.importorskip("radiomics")
    image, mask, spacing = _volume(case)
    settings = dict(binning, force2D=force2d, force2Ddimension=dimension)
    expected, binned, roi = _pyradiomics(image, mask, spacing, **settings)
    got = glszm.compute(binned, roi, force2d=force2d, force2d_dimension=dimension)
    assert got.keys() == expected.keys() == {f.name for f in glszm.FEATURES}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.oracle
@pytest.mark.parametrize("shape", ["one_voxel", "one_level"])
def test_degenerate_rois_match_pyradiomics(shape):
    pytest.importorskip("radiomics")
    image = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7
    mask = np.zeros(image.shape, bool)
    if shape == "one_voxel":
        mask[2, 2, 3] = True
    else:
        image[:] = 100
        mask[1:3, 1:4, 2:5] = True
    expected, binned, roi = _pyradiomics(image, mask, (1.0, 1.0, 1.0), binWidth=25)
    got = glszm.compute(binned, roi)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_pyradiomics_docstring_example():
    matrix, levels, sizes = glszm.size_zone_matrix(DOC_IMAGE, np.ones(DOC_IMAGE.shape, bool))
    np.testing.assert_array_equal(matrix, DOC_GLSZM)
    np.testing.assert_array_equal(levels, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(sizes, [1, 2, 3, 4, 5])


def _zones_by_scipy(binned, mask, force2d, dimension):
    """Counter of (grey level, zone size), labelling each level with scipy."""
    structure = np.ones((3, 3, 3), bool)
    if force2d:
        keep = [slice(None)] * 3
        keep[dimension] = [0, 2]
        structure[tuple(keep)] = False
    zones = Counter()
    for level in np.unique(binned[mask]):
        labels, n = ndimage.label((binned == level) & mask, structure=structure)
        for size in np.bincount(labels.ravel())[1:]:
            zones[int(level), int(size)] += 1
    return zones


@pytest.mark.parametrize("force2d, dimension", PLANES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_matches_scipy_labelling(seed, force2d, dimension):
    rng = np.random.default_rng(seed)
    binned = rng.integers(1, 4, size=(5, 6, 7))
    binned[1:4, 2:5, 2:6] = 2  # one large zone among small ones
    mask = rng.random(binned.shape) < 0.8
    matrix, levels, sizes = glszm.size_zone_matrix(
        binned, mask, force2d=force2d, force2d_dimension=dimension
    )
    got = Counter(
        {(int(levels[r]), int(sizes[c])): int(matrix[r, c]) for r, c in zip(*np.nonzero(matrix))}
    )
    assert got == _zones_by_scipy(binned, mask, force2d, dimension)
    assert np.sum(matrix * sizes) == mask.sum()


def test_result_does_not_depend_on_cropping():
    image, mask, _ = _volume("pet_parts")
    binned = np.digitize(image, np.linspace(image.min(), image.max(), 9))
    padded = np.pad(binned, 3, constant_values=-7)  # outside the ROI: ignored
    assert glszm.compute(binned, mask) == glszm.compute(padded, np.pad(mask, 3))
    assert glszm.compute(binned, mask.astype(np.uint8)) == glszm.compute(binned, mask)


def test_one_voxel_values():
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    got = glszm.compute(np.full((3, 3, 3), 4), mask)
    assert got["ZonePercentage"] == 1.0 and got["GrayLevelVariance"] == 0.0
    assert got["SmallAreaHighGrayLevelEmphasis"] == 16.0


def test_feature_selection():
    mask = np.ones((2, 3, 3), bool)
    got = glszm.compute(np.ones((2, 3, 3), int), mask, features=["ZonePercentage"])
    assert got == {"ZonePercentage": 1 / 18}
    with pytest.raises(SettingsError, match="'Contrast'.*SmallAreaEmphasis"):
        glszm.compute(np.ones((2, 3, 3), int), mask, features=["Contrast"])


@pytest.mark.parametrize(
    "binned, mask, kwargs, error",
    [
        (np.ones((2, 3, 3), int), np.zeros((2, 3, 3), bool), {}, InputError),
        (np.zeros((2, 3, 3), int), np.ones((2, 3, 3), bool), {}, InputError),
        (np.ones((3, 3), int), np.ones((3, 3), bool), {}, InputError),
        (
            np.ones((2, 3, 3), int),
            np.ones((2, 3, 3), bool),
            {"force2d_dimension": 3},
            SettingsError,
        ),
    ],
)
def test_bad_input(binned, mask, kwargs, error):
    with pytest.raises(error):
        glszm.compute(binned, mask, **kwargs)
