"""GLRLM family: PyRadiomics 3.0.1 parity, IBSI digital phantom, kernel vs NumPy, edge cases."""

from __future__ import annotations

import csv
import logging
import warnings
from itertools import groupby

import numpy as np
import pytest
import SimpleITK as sitk
import volumes  # tests/features/volumes.py

from radflow.errors import InputError, SettingsError
from radflow.features import glrlm
from radflow.features._directions import offsets


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
    ("ct", {"binWidth": 60, "weightingNorm": "manhattan"}),
    ("ct", {"binWidth": 25, "weightingNorm": "euclidean"}),
    ("ct", {"binWidth": 25, "weightingNorm": "infinity"}),
    ("ct", {"binWidth": 25, "weightingNorm": "no_weighting"}),
    ("ct", {"binWidth": 25, "force2D": True, "force2Ddimension": 0}),
    ("ct", {"binWidth": 25, "force2D": True, "force2Ddimension": 1, "weightingNorm": "euclidean"}),
    ("ct", {"binWidth": 25, "force2D": True, "force2Ddimension": 2}),
    ("pet", {"binCount": 16}),
    ("pet", {"binCount": 8, "force2D": True, "weightingNorm": "infinity"}),
    ("mr", {"binWidth": 20, "weightingNorm": "manhattan"}),
    ("mr", {"binWidth": 20, "force2D": True, "force2Ddimension": 1}),
    ("ct_sheet", {"binWidth": 25}),  # flat along z: z-moving directions dropped
    ("ct_sheet", {"binWidth": 10, "weightingNorm": "manhattan"}),
    ("ct_wall", {"binWidth": 25, "force2D": True, "force2Ddimension": 0}),
    ("ct_wall", {"binWidth": 25, "force2D": True, "force2Ddimension": 2}),
]


def _pyradiomics(sitk_image, image, mask, settings):
    """PyRadiomics' GLRLM class on the same arrays, and the binned image it works on."""
    radiomics = pytest.importorskip("radiomics")
    from radiomics.glrlm import RadiomicsGLRLM
    from radiomics.imageoperations import binImage

    radiomics.setVerbosity(logging.CRITICAL)
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    with warnings.catch_warnings():  # its NaN edge cases warn; ours must not
        warnings.simplefilter("ignore", RuntimeWarning)
        features = RadiomicsGLRLM(sitk_image, sitk_mask, **settings)
        features.enableAllFeatures()
        values = {name: float(v) for name, v in features.execute().items()}
    binned, _ = binImage(image, mask.astype(bool), **settings)
    return values, binned


def _radflow(binned, mask, settings, spacing_zyx):
    return glrlm.compute(
        binned,
        mask,
        weighting_norm=settings.get("weightingNorm"),
        spacing_zyx=spacing_zyx,
        force2d=settings.get("force2D", False),
        force2d_dimension=settings.get("force2Ddimension", 0),
    )


def _assert_parity(got, ref):
    assert set(got) == set(ref) == {f.name for f in glrlm.FEATURES}
    for name, value in ref.items():
        np.testing.assert_allclose(
            got[name], value, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )


@pytest.mark.oracle
@pytest.mark.parametrize(
    "volume, settings", CASES, ids=lambda c: str(c) if isinstance(c, dict) else c
)
def test_matches_pyradiomics(volume, settings):
    sitk_image, image, mask = VOLUMES[volume]
    ref, binned = _pyradiomics(sitk_image, image, mask, settings)
    spacing_zyx = sitk_image.GetSpacing()[::-1]
    _assert_parity(_radflow(binned, mask, settings, spacing_zyx), ref)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "case", ["one_voxel", "one_voxel_merged", "single_level", "two_apart", "gap_in_z"]
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
    elif case == "two_apart":
        mask[1, 1, 1] = mask[1, 1, 3] = True
    else:  # lines along z meet the ROI twice although every run has length 1
        mask[0, 1, 1] = mask[2, 1, 1] = mask[4, 3, 3] = True
    ref, binned = _pyradiomics(sitk.GetImageFromArray(image), image, mask, settings)
    _assert_parity(_radflow(binned, mask, settings, (1.0, 1.0, 1.0)), ref)


def test_hand_counted_runs():
    # one slice, levels along x: runs 1-1 | 2 | 1 and 3-3-3 | 1
    image = np.array([[[1, 1, 2, 1], [3, 3, 3, 1]]])
    counts, levels, directions = glrlm.run_lengths(image, np.ones_like(image, bool), force2d=True)
    along_x = directions.tolist().index([0, 0, 1])
    np.testing.assert_array_equal(levels, [1, 2, 3])
    # rows: levels 1, 2, 3; columns: run lengths 1..4
    np.testing.assert_array_equal(counts[along_x], [[2, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]])
    along_y = directions.tolist().index([0, 1, 0])
    np.testing.assert_array_equal(counts[along_y], [[2, 1, 0, 0], [1, 0, 0, 0], [3, 0, 0, 0]])
    for diagonal in ([0, 1, 1], [0, 1, -1]):  # 8 runs of one voxel each
        np.testing.assert_array_equal(counts[directions.tolist().index(diagonal)][:, 0], [4, 1, 3])
    got = glrlm.compute(
        image, np.ones_like(image, bool), force2d=True, features=["ShortRunEmphasis"]
    )
    sre_x = (2 + 1 / 4 + 1 + 1 / 9) / 5
    sre_y = (2 + 1 / 4 + 1 + 3) / 7
    assert got["ShortRunEmphasis"] == pytest.approx(np.mean([sre_x, sre_y, 1.0, 1.0]), rel=1e-12)


def test_hand_computed_two_by_three():
    # rows [1 1 2] / [2 2 1]; runs by hand per in-plane direction:
    # x: 2,1 | 2,1 (4 runs); y: six runs of 1; each diagonal: four of 1, one of 2
    binned = np.array([[[1, 1, 2], [2, 2, 1]]])
    got = glrlm.compute(
        binned, binned > 0, force2d=True, features=["ShortRunEmphasis", "RunPercentage"]
    )
    sre = [(1 / 4 + 1 + 1 / 4 + 1) / 4, 1.0, (4 + 1 / 4) / 5, (4 + 1 / 4) / 5]
    assert got["ShortRunEmphasis"] == pytest.approx(np.mean(sre), rel=1e-15)
    assert got["RunPercentage"] == pytest.approx(np.mean([4 / 6, 6 / 6, 5 / 6, 5 / 6]), rel=1e-15)


def _naive_run_lengths(binned, mask, directions):
    """Walk every line from its first voxel; group equal levels among ROI voxels."""
    levels = np.unique(binned[mask])
    pos = {g: k for k, g in enumerate(levels)}
    shape = np.array(binned.shape)
    out = np.zeros((len(directions), len(levels), shape.max()))
    for a, step in enumerate(directions):
        meets_twice = False
        for start in np.ndindex(binned.shape):
            before = np.array(start) - step
            if np.all((before >= 0) & (before < shape)):
                continue  # not the first voxel of its line
            line, p = [], np.array(start)
            while np.all((p >= 0) & (p < shape)):
                line.append(binned[tuple(p)] if mask[tuple(p)] else None)
                p = p + step
            meets_twice |= sum(v is not None for v in line) > 1
            for value, group in groupby(line):
                if value is not None:
                    out[a, pos[value], len(list(group)) - 1] += 1
        if not meets_twice:
            out[a] = 0
    return out, levels


@pytest.mark.parametrize("force2d, dim", [(False, 0), (True, 0), (True, 2)])
def test_kernel_matches_naive_runs(force2d, dim):
    rng = np.random.default_rng(5)
    binned = rng.integers(1, 4, size=(4, 5, 6))
    mask = rng.random(binned.shape) > 0.25
    counts, levels, directions = glrlm.run_lengths(
        binned, mask, force2d=force2d, force2d_dimension=dim
    )
    np.testing.assert_array_equal(directions, offsets([1], force2d, dim))
    expected, expected_levels = _naive_run_lengths(binned, mask, directions)
    np.testing.assert_array_equal(levels, expected_levels)
    np.testing.assert_array_equal(counts, expected[:, :, : counts.shape[2]])
    assert not expected[:, :, counts.shape[2] :].any()


def test_flat_direction_is_dropped():
    # a single slice: every line across slices meets the ROI once
    binned = np.tile(np.array([1, 1, 2, 2, 2]), (1, 3, 1))
    counts, _, directions = glrlm.run_lengths(
        np.pad(binned, ((2, 2), (0, 0), (0, 0))),
        np.pad(np.ones_like(binned, bool), ((2, 2), (0, 0), (0, 0))),
    )
    across = directions[:, 0] != 0
    assert across.sum() == 9 and not counts[across].any()
    assert np.all(counts[~across].sum(axis=(1, 2)) > 0)


def _ibsi_reference(ibsi_dir, aggregation):
    rows = csv.DictReader(
        open(ibsi_dir / "ibsi1" / "reference" / "ibsi_1_reference_values_long.csv")
    )
    for row in rows:
        tag = row["ibsi_tag"]
        if (
            row["config"] == "dig_phantom"
            and tag.startswith("rlm_")
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
    got = glrlm.compute(image, mask, **settings)  # grey levels 1..6 need no discretisation
    by_id = {f.ibsi_id: f.name for f in glrlm.FEATURES}
    rows = list(_ibsi_reference(ibsi_dir, aggregation))
    assert len(rows) == 16
    for row in rows:
        value = row["value"]
        # tolerance 0: agree to the printed digits
        decimals = len(value.split(".")[1]) if "." in value else 0
        tolerance = max(float(row["tolerance"] or 0), 0.5 * 10.0**-decimals)
        assert abs(got[by_id[row["ibsi_id"]]] - float(value)) <= tolerance, row["ibsi_tag"]


def test_crop_pad_and_mask_dtype_do_not_matter():
    _, image, mask = VOLUMES["ct"]
    binned = (image - image.min()) // 25 + 1
    ref = glrlm.compute(binned, mask)
    got = glrlm.compute(np.pad(binned, 3, constant_values=999), np.pad(mask, 3).astype(np.uint8))
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_feature_subset():
    _, image, mask = VOLUMES["pet"]
    binned = np.digitize(image, np.quantile(image, [0.2, 0.5, 0.8])) + 1
    full = glrlm.compute(binned, mask)
    some = glrlm.compute(binned, mask, features=["RunEntropy"])
    assert some == {"RunEntropy": full["RunEntropy"]}


@pytest.mark.oracle
def test_registry_matches_pyradiomics():
    pytest.importorskip("radiomics")
    from radiomics.glrlm import RadiomicsGLRLM

    assert {f.name: not f.default for f in glrlm.FEATURES} == RadiomicsGLRLM.getFeatureNames()
    assert len({f.ibsi_id for f in glrlm.FEATURES}) == len(glrlm.FEATURES)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"features": ["ShortRunEmphasis", "SRE"]}, ["'SRE'", "ShortRunEmphasis"]),
        ({"weighting_norm": "l2"}, ["weighting_norm", "'l2'"]),
        ({"spacing_zyx": (1.0, 1.0)}, ["spacing_zyx"]),
        ({"force2d": True, "force2d_dimension": -1}, ["force2d_dimension"]),
    ],
)
def test_bad_settings(kwargs, words):
    with pytest.raises(SettingsError) as err:
        glrlm.compute(np.ones((2, 2, 2), int), np.ones((2, 2, 2), bool), **kwargs)
    for word in words:
        assert word in str(err.value)


def test_bad_input():
    with pytest.raises(InputError, match="empty"):
        glrlm.compute(np.ones((2, 2, 2), int), np.zeros((2, 2, 2), bool))
    with pytest.raises(InputError, match="shape"):
        glrlm.compute(np.ones((2, 2, 2), int), np.ones((2, 2, 3), bool))
