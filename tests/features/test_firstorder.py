"""First order: percentile arithmetic against NumPy, the family against PyRadiomics."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage

from radflow.errors import SettingsError
from radflow.features import firstorder

#: Every feature, deprecated ones too (PyRadiomics' classes compute them when asked).
ALL = [f.name for f in firstorder.FEATURES]

logging.getLogger("radiomics").setLevel(logging.ERROR)

SHAPE = (20, 24, 24)


def _ct(seed):
    """Smoothed noise scaled like soft tissue and fat in HU, int16 with negative values."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=SHAPE), 2.0)
    return np.round(smooth / smooth.std() * 120 - 40 + rng.normal(0, 15, SHAPE)).astype(np.int16)


def _pet(seed):
    """Skewed positive float32 values like SUV."""
    rng = np.random.default_rng(seed)
    return np.exp(ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.5) * 4).astype(np.float32)


def _blobs(seed, level=0.53):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(SHAPE), 1.5) > level


def _cases():
    sheet = np.zeros(SHAPE, bool)
    sheet[:, 10, 3:20] = True  # 1 voxel thick
    voxel = np.zeros(SHAPE, bool)
    voxel[4, 5, 6] = True
    flat_ct = np.full(SHAPE, -50, np.int16)
    flat_pet = np.full(SHAPE, 0.1, np.float32)
    return [
        # id, image, mask, spacing, PyRadiomics settings
        ("ct_bw25", _ct(0), _blobs(1), (1.0, 1.0, 1.0), {"binWidth": 25}),
        ("ct_shift", _ct(2), _blobs(3), (2.5, 0.8, 0.8), {"binWidth": 10, "voxelArrayShift": 1000}),
        ("ct_bincount", _ct(4), _blobs(5, 0.5), (3.0, 0.7, 0.9), {"binCount": 32}),
        ("pet_bw", _pet(6), _blobs(7), (2.0, 4.0, 4.0), {"binWidth": 0.25}),
        ("pet_bincount", _pet(8), _blobs(9, 0.56), (1.0, 1.0, 1.0), {"binCount": 16}),
        ("sheet", _ct(10), sheet, (1.0, 1.0, 1.0), {"binWidth": 25}),
        ("one_voxel", _ct(11), voxel, (1.0, 1.0, 1.0), {"binWidth": 25}),
        ("flat_int", flat_ct, _blobs(12), (1.0, 1.0, 1.0), {"binWidth": 25}),
        ("flat_float", flat_pet, _blobs(13), (1.0, 1.0, 1.0), {"binWidth": 0.25}),
    ]


CASES = _cases()


def test_percentiles_equal_numpy_exactly():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7, 10, 11, 101, 1000):
        x = np.sort(rng.normal(size=n) * 1e3)
        for q in (10, 25, 75, 90):
            assert firstorder._percentile(x, q) == np.percentile(x, q), (n, q)
        assert firstorder._percentile(x, 50, median=True) == np.median(x), n


def test_hand_computed_values():
    image = np.array([[[-2, 0, 1, 1, 5]]], dtype=np.int16)
    mask = np.ones_like(image, bool)
    out = firstorder.compute(
        image, mask, image + 3, spacing_zyx=(2.0, 1.0, 0.5), voxel_array_shift=2
    )
    assert out["Mean"] == 1.0
    assert out["Energy"] == 0 + 4 + 9 + 9 + 49
    assert out["TotalEnergy"] == 71 * 1.0
    assert out["RootMeanSquared"] == pytest.approx(np.sqrt(71 / 5))
    assert out["Variance"] == pytest.approx((9 + 1 + 0 + 0 + 16) / 5)
    assert out["Median"] == 1.0 and out["Range"] == 7.0
    assert out["10Percentile"] == pytest.approx(-2 + 0.4 * 2)  # virtual index 0.4
    assert out["Uniformity"] == pytest.approx(3 * 0.2**2 + 0.4**2)
    assert out["Entropy"] == pytest.approx(-(3 * 0.2 * np.log2(0.2) + 0.4 * np.log2(0.4)))
    assert out["Skewness"] == pytest.approx(np.mean(np.array([-3, -1, 0, 0, 4.0]) ** 3) / 5.2**1.5)


def test_nan_intensities_are_left_out():
    image = _ct(20).astype(np.float64)
    mask = _blobs(21)
    holes = mask & (np.random.default_rng(22).random(SHAPE) < 0.1)
    with_nan = np.where(holes, np.nan, image)
    names = [f.name for f in firstorder.FEATURES if f.name not in ("Entropy", "Uniformity")]
    got = firstorder.compute(with_nan, mask, spacing_zyx=(1, 1, 1), features=names)
    assert got == pytest.approx(
        firstorder.compute(image, mask & ~holes, spacing_zyx=(1, 1, 1), features=names)
    )


def test_cropping_does_not_matter():
    image, mask = _ct(30), _blobs(31, 0.6)
    box = tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(mask))
    full = firstorder.compute(image, mask, image, spacing_zyx=(1, 2, 3))
    assert firstorder.compute(image[box], mask[box], image[box], spacing_zyx=(1, 2, 3)) == full


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"features": ["Mean", "StdDev"]}, SettingsError, "'StdDev'.*valid: Energy"),
        ({"binned": None}, ValueError, "binned"),
        ({"binned": np.zeros((2, 3, 3), np.float32)}, TypeError, "integer"),
        ({"binned": np.zeros((2, 3, 4), np.int32)}, ValueError, "binned shape"),
        ({"image": np.zeros((3, 3, 3))}, ValueError, "image shape"),
        ({"image": np.full((2, 3, 3), "a")}, TypeError, "real numbers"),
        ({"mask": np.zeros((2, 3, 3), bool)}, ValueError, "mask is empty"),
        ({"spacing_zyx": (1.0, 1.0)}, ValueError, "spacing_zyx"),
        ({"voxel_array_shift": float("nan")}, ValueError, "voxel_array_shift"),
        ({"voxel_array_shift": "1000"}, TypeError, "voxel_array_shift"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {
        "image": np.zeros((2, 3, 3)),
        "mask": np.ones((2, 3, 3), bool),
        "binned": np.ones((2, 3, 3), np.int32),
        "spacing_zyx": (1.0, 1.0, 1.0),
    } | kwargs
    image, mask, binned = args.pop("image"), args.pop("mask"), args.pop("binned")
    with pytest.raises(error, match=match):
        firstorder.compute(image, mask, binned, **args)


def test_registry():
    assert len(firstorder.FEATURES) == 19
    assert [f.name for f in firstorder.FEATURES if not f.default] == ["StandardDeviation"]


# --- parity with PyRadiomics --------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_parity_with_pyradiomics(case):
    radiomics_firstorder = pytest.importorskip("radiomics.firstorder")
    import SimpleITK as sitk

    _, image, mask, spacing, settings = case
    sitk_image = sitk.GetImageFromArray(image)
    sitk_image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    oracle = radiomics_firstorder.RadiomicsFirstOrder(sitk_image, sitk_mask, label=1, **settings)
    for name in oracle.featureNames:  # StandardDeviation too
        oracle.enableFeatureByName(name)
    expected = {k: float(v) for k, v in oracle.execute().items()}
    # The class's own discretisation: this tests the features, not the binning.
    binned = oracle.discretizedImageArray

    got = firstorder.compute(
        image, mask, binned, spacing_zyx=spacing,
        voxel_array_shift=settings.get("voxelArrayShift", 0), features=ALL)  # fmt: skip
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-300, err_msg=name)


# --- IBSI 1 digital phantom ----------------------------------------------------------------


@pytest.mark.shared
def test_ibsi_digital_phantom(ibsi_dir):
    """Statistics and histogram (bin width 1: the grey levels themselves) of the phantom.

    The table gives 3 significant digits where its tolerance is 0; Kurtosis is
    compared as IBSI excess kurtosis + 3.
    """
    import csv

    import SimpleITK as sitk

    folder = ibsi_dir / "ibsi1" / "digital_phantom"
    image = sitk.ReadImage(str(folder / "image.nii.gz"))
    values = sitk.GetArrayFromImage(image)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz")))
    out = firstorder.compute(
        values, mask, values.astype(np.int32), spacing_zyx=image.GetSpacing()[::-1], features=ALL
    )

    table = ibsi_dir / "ibsi1" / "reference" / "ibsi_1_reference_values_long.csv"
    with open(table, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["config"] == "dig_phantom" and row["value"]]
    by_id = {}
    for row in rows:  # first row wins: the table repeats one id (1PR8) for ih_p10
        by_id.setdefault(row["ibsi_id"], float(row["value"]))
    excess_kurtosis = next(float(row["value"]) for row in rows if row["ibsi_tag"] == "stat_kurt")
    checked = 0
    for feature in firstorder.FEATURES:
        if feature.ibsi_id is not None:
            assert out[feature.name] == pytest.approx(by_id[feature.ibsi_id], rel=5e-3), (
                feature.name
            )
            checked += 1
    assert checked == 16
    assert out["Kurtosis"] - 3 == pytest.approx(excess_kurtosis, rel=5e-3)
