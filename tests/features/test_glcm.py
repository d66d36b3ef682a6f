"""GLCM family: PyRadiomics 3.0.1 parity, IBSI digital phantom, kernel vs NumPy, edge cases."""

from __future__ import annotations

import csv
import logging
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import volumes  # tests/features/volumes.py

from radflow.errors import InputError, SettingsError
from radflow.features import glcm
from radflow.features._directions import offsets

# PyRadiomics computes no value for its deprecated features; they equal these.
DEPRECATED_EQUAL_TO = {
    "Dissimilarity": "DifferenceAverage",
    "Homogeneity1": "Id",
    "Homogeneity2": "Idm",
    "SumVariance": "ClusterTendency",
}


def _volumes():
    """name -> (SimpleITK image, (z, y, x) image array, bool mask array).

    The shared CT, PET and MR volumes (holes, disconnected parts, a one-voxel
    arm, anisotropic spacing), plus ROIs one voxel thick along z and along x.
    """
    out = {}
    for name, make, label in (
        ("ct", volumes.ct, 1),
        ("pet", volumes.pet, 1),
        ("mr", volumes.mr, 2),
    ):
        image, labels = make()
        out[name] = (image, sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels) == label)
    image, array, roi = out["ct"]
    sheet = np.zeros_like(roi)
    sheet[10] = roi[10]
    wall = np.zeros_like(roi)
    wall[:, :, 14] = roi[:, :, 14]
    out["ct_sheet"] = (image, array, sheet)
    out["ct_wall"] = (image, array, wall)
    return out


VOLUMES = _volumes()

# (volume, PyRadiomics settings): every value of every setting at least once.
CASES = [
    ("ct", {"binWidth": 25}),
    ("ct", {"binWidth": 25, "distances": [1, 2]}),
    ("ct", {"binWidth": 25, "distances": [2], "symmetricalGLCM": False}),
    ("ct", {"binWidth": 25, "weightingNorm": "manhattan"}),
    ("ct", {"binWidth": 25, "weightingNorm": "euclidean", "distances": [1, 2]}),
    ("ct", {"binWidth": 25, "weightingNorm": "infinity", "symmetricalGLCM": False}),
    ("ct", {"binWidth": 25, "weightingNorm": "no_weighting"}),
    ("ct", {"binWidth": 25, "force2D": True, "force2Ddimension": 0}),
    ("ct", {"binWidth": 25, "force2D": True, "force2Ddimension": 1, "symmetricalGLCM": False}),
    (
        "ct",
        {
            "binWidth": 25,
            "force2D": True,
            "force2Ddimension": 2,
            "distances": [1, 2],
            "weightingNorm": "euclidean",
        },
    ),
    ("pet", {"binCount": 16}),
    ("pet", {"binCount": 16, "distances": [1, 2], "symmetricalGLCM": False}),
    ("pet", {"binCount": 16, "force2D": True, "weightingNorm": "infinity"}),
    ("mr", {"binWidth": 20, "distances": [1, 2], "weightingNorm": "infinity"}),
    ("mr", {"binWidth": 20, "force2D": True, "force2Ddimension": 1}),
    ("ct_sheet", {"binWidth": 25}),
    ("ct_sheet", {"binWidth": 10, "weightingNorm": "manhattan", "distances": [2]}),
    ("ct_wall", {"binWidth": 25, "force2D": True, "force2Ddimension": 2}),
]


def _pyradiomics(sitk_image, image, mask, settings):
    """PyRadiomics' GLCM class on the same arrays, and the binned image it works on."""
    radiomics = pytest.importorskip("radiomics")
    from radiomics.glcm import RadiomicsGLCM
    from radiomics.imageoperations import binImage

    radiomics.setVerbosity(logging.CRITICAL)
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    with warnings.catch_warnings():  # its NaN edge cases warn; ours must not
        warnings.simplefilter("ignore", RuntimeWarning)
        features = RadiomicsGLCM(sitk_image, sitk_mask, **settings)
        features.enableAllFeatures()
        values = {name: float(v) for name, v in features.execute().items()}
    binned, _ = binImage(image, mask.astype(bool), **settings)
    return values, binned


def _radflow(binned, mask, settings, spacing_zyx, **extra):
    # Every feature, the deprecated ones too (compared with their equivalents).
    extra.setdefault("features", [f.name for f in glcm.FEATURES])
    return glcm.compute(
        binned,
        mask,
        distances=settings.get("distances", [1]),
        symmetric=settings.get("symmetricalGLCM", True),
        weighting_norm=settings.get("weightingNorm"),
        spacing_zyx=spacing_zyx,
        force2d=settings.get("force2D", False),
        force2d_dimension=settings.get("force2Ddimension", 0),
        **extra,
    )


def _assert_parity(got, ref):
    assert set(ref) == {f.name for f in glcm.FEATURES if f.default}
    for name, value in ref.items():
        np.testing.assert_allclose(
            got[name], value, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )
    for name, same in DEPRECATED_EQUAL_TO.items():
        np.testing.assert_allclose(
            got[name], ref[same], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )


@pytest.mark.oracle
@pytest.mark.parametrize(
    "volume, settings", CASES, ids=lambda c: str(c) if isinstance(c, dict) else c
)
def test_matches_pyradiomics(volume, settings):
    sitk_image, image, mask = VOLUMES[volume]
    ref, binned = _pyradiomics(sitk_image, image, mask, settings)
    spacing_zyx = sitk_image.GetSpacing()[::-1]
    got = _radflow(binned, mask, settings, spacing_zyx)
    assert set(got) == {f.name for f in glcm.FEATURES}
    _assert_parity(got, ref)
    # Without a feature list: PyRadiomics' default set, deprecated ones left out.
    default = _radflow(binned, mask, settings, spacing_zyx, features=None)
    assert set(default) == set(ref)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "case",
    [
        "one_voxel",
        "one_voxel_merged",
        "single_level",
        "no_neighbours",
        "gap_in_z",
        "gap_in_z_distance_2",
    ],
)
def test_edge_cases_match_pyradiomics(case):
    image = (np.arange(5 * 6 * 7).reshape(5, 6, 7) * 10).astype(np.int16)
    mask = np.zeros(image.shape, bool)
    settings = {"binWidth": 25}
    if case.startswith("one_voxel"):
        mask[2, 3, 3] = True
        if case == "one_voxel_merged":
            settings["weightingNorm"] = "no_weighting"
    elif case == "single_level":
        image[:] = 7
        mask[1:4, 2:5, 2:6] = True
    elif case == "no_neighbours":
        mask[1, 1, 1] = mask[1, 1, 3] = True
    else:  # two slices two apart: pairs only at distance 2
        mask[0, 1, 1] = mask[2, 1, 1] = mask[4, 3, 3] = True
        if case == "gap_in_z_distance_2":
            settings["distances"] = [2]
    ref, binned = _pyradiomics(sitk.GetImageFromArray(image), image, mask, settings)
    _assert_parity(_radflow(binned, mask, settings, (1.0, 1.0, 1.0)), ref)


def test_one_voxel_and_single_level_values():
    one = np.zeros((3, 3, 3), bool)
    one[1, 1, 1] = True
    got = glcm.compute(np.ones((3, 3, 3), np.int32), one)
    # no neighbour pair at all: undefined, except MCC, 1 for one grey level
    assert got.pop("MCC") == 1.0
    assert all(np.isnan(v) for v in got.values())

    flat = glcm.compute(np.full((4, 4, 4), 3), np.ones((4, 4, 4), bool))
    expected = {
        "JointEnergy": 1.0,
        "MaximumProbability": 1.0,
        "Contrast": 0.0,
        "Correlation": 1.0,
        "Imc1": 0.0,
        "Imc2": 0.0,
        "MCC": 1.0,
        "Id": 1.0,
        "Idmn": 1.0,
        "JointAverage": 3.0,
        "SumAverage": 6.0,
        "Autocorrelation": 9.0,
        "ClusterTendency": 0.0,
        "DifferenceVariance": 0.0,
    }
    for name, value in expected.items():
        assert flat[name] == pytest.approx(value, abs=1e-12), name
    assert abs(flat["JointEntropy"]) < 1e-12


def test_hand_computed_two_by_three():
    # rows [1 1 2] / [2 2 1]; symmetric p per in-plane direction, by hand:
    # x: 1-1,1-2,2-2,2-1 -> p = 1/4 each: contrast 1/2, energy 1/4
    # y: 1-2,1-2,2-1 -> p(1,2) = p(2,1) = 1/2: contrast 1, energy 1/2
    # diagonals: 1-2 and 1-1 (or 2-2) -> 1/4, 1/4, 1/2: contrast 1/2, energy 3/8
    binned = np.array([[[1, 1, 2], [2, 2, 1]]])
    got = glcm.compute(binned, binned > 0, force2d=True, features=["Contrast", "JointEnergy"])
    assert got["Contrast"] == pytest.approx((0.5 + 1 + 0.5 + 0.5) / 4, rel=1e-15)
    assert got["JointEnergy"] == pytest.approx((0.25 + 0.5 + 0.375 + 0.375) / 4, rel=1e-15)


def test_pyradiomics_docstring_example():
    """The symmetrical 0-degree GLCM of the 5x5 example in PyRadiomics' GLCM documentation."""
    image = np.array(
        [[1, 2, 5, 2, 3], [3, 2, 1, 3, 1], [1, 3, 5, 5, 2], [1, 1, 1, 1, 2], [1, 2, 4, 3, 5]]
    )[None]
    expected = np.array(
        [[6, 4, 3, 0, 0], [4, 0, 2, 1, 3], [3, 2, 0, 1, 2], [0, 1, 1, 0, 0], [0, 3, 2, 0, 2]]
    )
    counts, levels, offs = glcm.cooccurrence(image, np.ones_like(image, bool), force2d=True)
    horizontal = offs.tolist().index([0, 0, 1])
    np.testing.assert_array_equal(levels, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(counts[horizontal] + counts[horizontal].T, expected)


def _naive_cooccurrence(binned, mask, offsets_zyx):
    levels = np.unique(binned[mask])
    pos = {g: k for k, g in enumerate(levels)}
    out = np.zeros((len(offsets_zyx), len(levels), len(levels)))
    for a, off in enumerate(offsets_zyx):
        for zyx in np.ndindex(binned.shape):
            nb = tuple(int(c + o) for c, o in zip(zyx, off))
            if mask[zyx] and all(0 <= c < n for c, n in zip(nb, binned.shape)) and mask[nb]:
                out[a, pos[binned[zyx]], pos[binned[nb]]] += 1
    return out, levels


@pytest.mark.parametrize("distances, force2d", [([1], False), ([1, 2], False), ([2], True)])
def test_kernel_matches_naive_counting(distances, force2d):
    rng = np.random.default_rng(3)
    binned = rng.integers(1, 6, size=(4, 5, 6))
    mask = rng.random(binned.shape) > 0.3
    counts, levels, offs = glcm.cooccurrence(binned, mask, distances=distances, force2d=force2d)
    np.testing.assert_array_equal(offs, offsets(distances, force2d))
    expected, expected_levels = _naive_cooccurrence(binned, mask, offs)
    np.testing.assert_array_equal(levels, expected_levels)
    np.testing.assert_array_equal(counts, expected)


def _ibsi_reference(ibsi_dir, aggregation):
    rows = csv.DictReader(
        open(ibsi_dir / "ibsi1" / "reference" / "ibsi_1_reference_values_long.csv")
    )
    for row in rows:
        tag = row["ibsi_tag"]
        if (
            row["config"] == "dig_phantom"
            and tag.startswith("cm_")
            and tag.endswith("_" + aggregation)
            and row["value"]
        ):
            if aggregation.startswith("3D") or "2_5D" in tag:
                yield row


@pytest.mark.shared
@pytest.mark.parametrize(
    "aggregation, settings",
    [
        ("3D_avg", {}),
        ("3D_comb", {"weighting_norm": "no_weighting"}),  # IBSI merged = unweighted sum
        ("2_5D_avg", {"force2d": True}),  # one matrix per in-plane direction over all slices
        ("2_5D_comb", {"force2d": True, "weighting_norm": "no_weighting"}),
    ],
)
def test_ibsi_digital_phantom(ibsi_dir, aggregation, settings):
    phantom = ibsi_dir / "ibsi1" / "digital_phantom"
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(phantom / "image.nii.gz")))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(phantom / "mask.nii.gz")))
    names = [f.name for f in glcm.FEATURES]
    got = glcm.compute(image, mask, features=names, **settings)  # levels 1..6: no discretisation
    by_id = {f.ibsi_id: f.name for f in glcm.FEATURES if f.ibsi_id}
    rows = list(_ibsi_reference(ibsi_dir, aggregation))
    assert len(rows) == 25
    for row in rows:
        value = row["value"]
        # tolerance 0: agree to the printed digits
        decimals = len(value.split(".")[1]) if "." in value else 0
        tolerance = max(float(row["tolerance"] or 0), 0.5 * 10.0**-decimals)
        assert abs(got[by_id[row["ibsi_id"]]] - float(value)) <= tolerance, row["ibsi_tag"]


def test_crop_pad_and_mask_dtype_do_not_matter():
    _, image, mask = VOLUMES["ct"]
    binned = (image - image.min()) // 25 + 1
    ref = glcm.compute(binned, mask, distances=[1, 2])
    padded = np.pad(binned, 3, constant_values=999)
    got = glcm.compute(padded, np.pad(mask, 3).astype(np.uint8), distances=[1, 2])
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_feature_subset():
    _, image, mask = VOLUMES["pet"]
    binned = np.digitize(image, np.quantile(image, [0.2, 0.5, 0.8])) + 1
    full = glcm.compute(binned, mask)
    some = glcm.compute(binned, mask, features=["MCC", "Contrast"])
    assert some == {"MCC": full["MCC"], "Contrast": full["Contrast"]}


@pytest.mark.oracle
def test_registry_matches_pyradiomics():
    pytest.importorskip("radiomics")
    from radiomics.glcm import RadiomicsGLCM

    names = RadiomicsGLCM.getFeatureNames()  # name -> deprecated
    assert {f.name: not f.default for f in glcm.FEATURES} == names
    assert all(f.family == "glcm" for f in glcm.FEATURES)
    ids = [f.ibsi_id for f in glcm.FEATURES if f.ibsi_id]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"features": ["Contrast", "Energy"]}, ["'Energy'", "JointEnergy"]),
        ({"weighting_norm": "chebyshev"}, ["weighting_norm", "'chebyshev'"]),
        ({"distances": [0]}, ["distances"]),
        ({"symmetric": "yes"}, ["symmetric"]),
        ({"spacing_zyx": (1.0, -1.0, 1.0)}, ["spacing_zyx"]),
        ({"force2d": True, "force2d_dimension": 3}, ["force2d_dimension"]),
    ],
)
def test_bad_settings(kwargs, words):
    with pytest.raises(SettingsError) as err:
        glcm.compute(np.ones((2, 2, 2), int), np.ones((2, 2, 2), bool), **kwargs)
    for word in words:
        assert word in str(err.value)


def test_bad_input():
    with pytest.raises(InputError, match="empty"):
        glcm.compute(np.ones((2, 2, 2), int), np.zeros((2, 2, 2), bool))
    with pytest.raises(InputError, match="discretised"):
        glcm.compute(np.ones((2, 2, 2)), np.ones((2, 2, 2), bool))


def test_pair_counts_in_a_full_cube():
    # 13 / 49 / 62 offsets in 3D, 4 in 2D; in a full 5x5x5 cube the offset
    # (dz, dy, dx) finds prod(5 - |d|) pairs
    for distances, force2d, n in [
        ([1], False, 13),
        ([2], False, 49),
        ([1, 2], False, 62),
        ([1], True, 4),
    ]:
        counts, _, offs = glcm.cooccurrence(
            np.ones((5, 5, 5), int), np.ones((5, 5, 5), bool), distances=distances, force2d=force2d
        )
        assert counts.shape == (n, 1, 1)
        np.testing.assert_array_equal(counts[:, 0, 0], np.prod(5 - np.abs(offs), axis=1))
