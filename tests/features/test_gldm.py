"""GLDM: parity with PyRadiomics 3.0.1, a naive NumPy reference, hand values."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from texture_cases import texture_volume  # tests/features/texture_cases.py

from radflow.errors import InputError, SettingsError
from radflow.features import gldm

# PyRadiomics' own 5x5 example (RadiomicsGLDM docstring), alpha 0, distance 1:
# rows of P = grey levels 1..5, columns = dependence sizes 1..4.
DOC_IMAGE = np.array(
    [[5, 2, 5, 4, 4], [3, 3, 3, 1, 3], [2, 1, 1, 1, 3], [4, 2, 2, 2, 3], [3, 5, 3, 3, 2]]
)[None]
DOC_GLDM = np.array([[0, 1, 2, 1], [1, 2, 3, 0], [1, 4, 4, 0], [1, 2, 0, 0], [3, 0, 0, 0]])


def _volume(name):
    return texture_volume(name, seed=11)


BINNINGS = {
    "ct_ellipsoid": [{"binWidth": 25}, {"binCount": 16}],
    "pet_parts": [{"binWidth": 0.25}, {"binCount": 8}],
    "ct_slab": [{"binWidth": 10}],
}
CASES = [(name, binning) for name, options in BINNINGS.items() for binning in options]
PLANES = [(False, 0), (True, 0), (True, 1), (True, 2)]
DISTANCES = [(1,), (1, 2), (2,)]


def _pyradiomics(feature_class, image, mask, spacing_zyx, **settings):
    """PyRadiomics' feature values, and the binned array and mask it used."""
    sitk = pytest.importorskip("SimpleITK")
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    oracle = feature_class(sitk_image, sitk_mask, **settings)
    oracle.enableAllFeatures()
    values = {name: float(value) for name, value in oracle.execute().items()}
    return values, oracle.imageArray, oracle.maskArray


@pytest.mark.oracle
@pytest.mark.parametrize("gldm_a", [0, 1])
@pytest.mark.parametrize("distances", DISTANCES)
@pytest.mark.parametrize("force2d, dimension", PLANES)
@pytest.mark.parametrize("case, binning", CASES)
def test_matches_pyradiomics(case, binning, force2d, dimension, distances, gldm_a):
    radiomics_gldm = pytest.importorskip("radiomics.gldm")
    image, mask, spacing = _volume(case)
    settings = dict(
        binning,
        force2D=force2d,
        force2Ddimension=dimension,
        distances=list(distances),
        gldm_a=gldm_a,
    )
    expected, binned, roi = _pyradiomics(
        radiomics_gldm.RadiomicsGLDM, image, mask, spacing, **settings
    )
    got = gldm.compute(
        binned,
        roi,
        distances=distances,
        gldm_a=gldm_a,
        force2d=force2d,
        force2d_dimension=dimension,
    )
    assert got.keys() == expected.keys() == {f.name for f in gldm.FEATURES if f.default}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.oracle
def test_deprecated_features_against_first_order():
    """GLNN equals first-order Uniformity; DependencePercentage is 1 (PyRadiomics gives neither)."""
    firstorder = pytest.importorskip("radiomics.firstorder")
    radiomics_gldm = pytest.importorskip("radiomics.gldm")
    image, mask, spacing = _volume("ct_ellipsoid")
    expected, _, _ = _pyradiomics(firstorder.RadiomicsFirstOrder, image, mask, spacing, binWidth=25)
    _, binned, roi = _pyradiomics(radiomics_gldm.RadiomicsGLDM, image, mask, spacing, binWidth=25)
    got = gldm.compute(
        binned, roi, features=["GrayLevelNonUniformityNormalized", "DependencePercentage"]
    )
    np.testing.assert_allclose(
        got["GrayLevelNonUniformityNormalized"], expected["Uniformity"], rtol=1e-12
    )
    assert got["DependencePercentage"] == 1.0


@pytest.mark.oracle
@pytest.mark.parametrize("shape", ["one_voxel", "one_level"])
def test_degenerate_rois_match_pyradiomics(shape):
    radiomics_gldm = pytest.importorskip("radiomics.gldm")
    image = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7
    mask = np.zeros(image.shape, bool)
    if shape == "one_voxel":
        mask[2, 2, 3] = True
    else:
        image[:] = 100
        mask[1:3, 1:4, 2:5] = True
    expected, binned, roi = _pyradiomics(
        radiomics_gldm.RadiomicsGLDM, image, mask, (1.0,) * 3, binWidth=25
    )
    got = gldm.compute(binned, roi)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_pyradiomics_docstring_example():
    matrix, levels, sizes = gldm.dependence_matrix(DOC_IMAGE, np.ones(DOC_IMAGE.shape, bool))
    np.testing.assert_array_equal(matrix, DOC_GLDM)
    np.testing.assert_array_equal(levels, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(sizes, [1, 2, 3, 4])


def _dependences_naive(binned, mask, distances, alpha, force2d, dimension):
    """Counter of (grey level, 1 + dependent neighbours), voxel by voxel."""
    reach = max(distances)
    steps = [
        s
        for s in itertools.product(range(-reach, reach + 1), repeat=3)
        if max(map(abs, s)) in distances and not (force2d and s[dimension])
    ]
    counts = Counter()
    for voxel in zip(*np.nonzero(mask)):
        dependent = 0
        for step in steps:
            other = tuple(v + s for v, s in zip(voxel, step))
            inside = all(0 <= o < n for o, n in zip(other, mask.shape))
            if inside and mask[other] and abs(int(binned[other]) - int(binned[voxel])) <= alpha:
                dependent += 1
        counts[int(binned[voxel]), dependent + 1] += 1
    return counts


@pytest.mark.parametrize(
    "distances, alpha, force2d, dimension",
    [((1,), 0, False, 0), ((1, 2), 1, False, 0), ((2,), 0, True, 1), ((1,), 2, True, 0)],
)
def test_matrix_matches_naive_reference(distances, alpha, force2d, dimension):
    rng = np.random.default_rng(3)
    binned = rng.integers(1, 6, size=(5, 6, 7))
    binned[1:4, 2:5, 2:6] = 2
    mask = rng.random(binned.shape) < 0.8
    matrix, levels, sizes = gldm.dependence_matrix(
        binned,
        mask,
        distances=distances,
        gldm_a=alpha,
        force2d=force2d,
        force2d_dimension=dimension,
    )
    got = Counter(
        {(int(levels[r]), int(sizes[c])): int(matrix[r, c]) for r, c in zip(*np.nonzero(matrix))}
    )
    assert got == _dependences_naive(binned, mask, distances, alpha, force2d, dimension)


def test_result_does_not_depend_on_cropping():
    image, mask, _ = _volume("pet_parts")
    binned = np.digitize(image, np.linspace(image.min(), image.max(), 9))
    padded = np.pad(binned, 3, constant_values=5)  # outside the ROI: ignored
    for distances in [(1,), (2,)]:
        assert gldm.compute(binned, mask, distances=distances) == gldm.compute(
            padded, np.pad(mask, 3), distances=distances
        )


def test_feature_selection():
    mask = np.ones((2, 3, 3), bool)
    got = gldm.compute(np.ones((2, 3, 3), int), mask, features=["GrayLevelVariance"])
    assert got == {"GrayLevelVariance": 0.0}
    with pytest.raises(SettingsError, match="'Coarseness'"):
        gldm.compute(np.ones((2, 3, 3), int), mask, features=["Coarseness"])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"gldm_a": -1}, SettingsError),
        ({"gldm_a": 0.5}, SettingsError),
        ({"distances": [0]}, SettingsError),
        ({"distances": []}, SettingsError),
        ({"force2d_dimension": 3}, SettingsError),
        ({"mask": np.zeros((2, 3, 3), bool)}, InputError),
    ],
)
def test_bad_input(kwargs, error):
    arguments = {"binned": np.ones((2, 3, 3), int), "mask": np.ones((2, 3, 3), bool), **kwargs}
    with pytest.raises(error):
        gldm.compute(**arguments)
