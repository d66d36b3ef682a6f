"""Perturbation stability study: each perturbation against an independent
construction (scipy morphology, array shifts and 90-degree turns), the study on
five small synthetic ROIs, its reference rater against radflow.extract on the
store, streaming one ROI at a time, and the failure table."""

from __future__ import annotations

import gc
import shutil
import weakref

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radflow.errors import InputError, SettingsError
from radflow.io.records import LabelMap
from radflow.model.icc import icc_long
from radflow.model.stability import (
    DEFAULT_PERTURBATIONS,
    Perturbation,
    parse_perturbation,
    perturb,
    perturbed_features,
    stability_study,
)
from radflow.store.write import write_series

PARAMS_YAML = """\
setting:
  binWidth: 5
featureClass:
  firstorder: [Mean, Entropy]
  glcm: [Contrast, JointEntropy]
"""
#: (mean HU, texture sd HU) of the four ROIs: means far apart, textures less so.
ROIS = ((20.0, 3.0), (60.0, 6.0), (100.0, 9.0), (140.0, 12.0))
SHAPE = (20, 36, 36)
NOISE = "noise:15"


def _image(values, spacing_xyz=(1.0, 1.0, 2.0)):
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing_xyz)
    return image


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Four smooth ellipsoidal GTVs (CT, 1 x 1 x 2 mm) inside larger regions of the
    same mean, and a one-slice-thick fifth GTV that erosion removes."""
    root = tmp_path_factory.mktemp("stability") / "store"
    z, y, x = np.indices(SHAPE)
    for i, (mean, sd) in enumerate(ROIS):
        texture = ndimage.gaussian_filter(np.random.default_rng(i).normal(size=SHAPE), 1.5)
        values = (mean + sd * texture / texture.std()).astype(np.float32)
        radius = 12.0 + i
        roi = ((2 * (z - 10)) ** 2 + (y - 18) ** 2 + (x - 18) ** 2 <= radius**2).astype(np.uint8)
        image = _image(values)
        label = sitk.GetImageFromArray(roi)
        label.CopyInformation(image)
        write_series(
            root,
            f"P{i}",
            "S1",
            image,
            [LabelMap("rs", "labelmap", label, {1: "GTV"})],
            attrs={"modality": "CT", "institution": "INST_A"},
            fingerprint=f"fp{i}",
        )
    plate = np.zeros(SHAPE, np.uint8)
    plate[10, 10:26, 10:26] = 1
    image = _image(
        np.full(SHAPE, 180.0, np.float32)
        + np.random.default_rng(9).normal(0, 4, SHAPE).astype(np.float32)
    )
    label = sitk.GetImageFromArray(plate)
    label.CopyInformation(image)
    write_series(
        root,
        "P9",
        "S1",
        image,
        [LabelMap("rs", "labelmap", label, {1: "GTV"})],
        attrs={"modality": "CT", "institution": "INST_A"},
        fingerprint="fp9",
    )
    return root


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(PARAMS_YAML)
    return path


@pytest.fixture(scope="module")
def result(store, params_file):
    return stability_study(store, params_file, perturbations=[*DEFAULT_PERTURBATIONS, NOISE])


# -- perturbations ---------------------------------------------------------------


def test_parse_perturbations():
    assert parse_perturbation("erode:1") == Perturbation("erode", 1.0)
    assert parse_perturbation("noise:20:3") == Perturbation("noise", 20.0, 3)
    assert parse_perturbation("translate:0,0.5,-1").amount == (0.0, 0.5, -1.0)
    assert [parse_perturbation(p).name for p in DEFAULT_PERTURBATIONS] == [
        "original",
        "erode1",
        "dilate1",
        "rotate-5",
        "rotate+5",
        "translate0,0.5,0.5",
    ]
    assert parse_perturbation("noise:20:1").name == "noise20-s1"
    for text, message in [
        ("blur:1", "unknown; known: original"),
        ("erode", "needs an amount"),
        ("erode:1.5", "whole number of voxels"),
        ("noise:0", "must be > 0"),
        ("rotate:200", "at most 180 degrees"),
        ("translate:1,2", "3 finite shifts"),
        ("noise:x", "must be numbers"),
        ("original:1", "takes no amount"),
    ]:
        with pytest.raises(SettingsError, match=message):
            parse_perturbation(text)


def _ball():
    values = np.random.default_rng(0).normal(0, 10, (9, 15, 15)).astype(np.float32)
    z, y, x = np.indices(values.shape)
    roi = ((z - 4) ** 2 + (y - 7) ** 2 + (x - 7) ** 2 <= 16).astype(np.uint8)
    image = _image(values, (1.0, 1.0, 1.0))
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    return values, roi, image, mask


def test_erode_and_dilate_by_one_voxel_match_scipy():
    _, roi, image, mask = _ball()
    cross = ndimage.generate_binary_structure(3, 1)  # 6-neighbour cross
    _, eroded = perturb(image, mask, "erode:1")
    _, dilated = perturb(image, mask, "dilate:1")
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(eroded), ndimage.binary_erosion(roi, cross)
    )
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(dilated), ndimage.binary_dilation(roi, cross)
    )


def test_translation_by_one_voxel_shifts_image_and_mask():
    values, roi, image, mask = _ball()
    moved, moved_mask = perturb(image, mask, "translate:0,0,1")  # +1 mm along x = one voxel
    got, got_mask = sitk.GetArrayFromImage(moved), sitk.GetArrayFromImage(moved_mask)
    np.testing.assert_allclose(got[:, :, 1:], values[:, :, :-1], atol=1e-4)
    np.testing.assert_allclose(got[:, :, 0], values[:, :, 0])  # brought in from outside: edge value
    np.testing.assert_array_equal(got_mask[:, :, 1:], roi[:, :, :-1])


def test_rotation_by_90_degrees_turns_x_into_y():
    values, roi, image, mask = _ball()  # the ball's centroid is the centre voxel (4, 7, 7)
    values[4, 7, 10] = 500.0  # a marker 3 voxels along +x from the centre
    image = _image(values, (1.0, 1.0, 1.0))
    quarter, quarter_mask = perturb(image, mask, Perturbation("rotate", 90.0))
    got = sitk.GetArrayFromImage(quarter)
    # Right-handed about +z: +x turns into +y; voxel centres land on voxel centres.
    assert got[4, 10, 7] == pytest.approx(500.0, abs=1e-3)
    np.testing.assert_allclose(got, np.rot90(values, k=-1, axes=(1, 2)), atol=1e-3)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(quarter_mask), np.rot90(roi, k=-1, axes=(1, 2))
    )


def test_noise_has_its_sigma_and_is_reproducible():
    values, _, image, mask = _ball()
    noisy, same_mask = perturb(image, mask, "noise:5", seed=11)
    difference = sitk.GetArrayFromImage(noisy) - values
    assert difference.std() == pytest.approx(5.0, rel=0.05)
    again, _ = perturb(image, mask, "noise:5", seed=11)
    other, _ = perturb(image, mask, "noise:5:1", seed=11)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(noisy))
    assert not np.array_equal(sitk.GetArrayFromImage(other), sitk.GetArrayFromImage(noisy))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(same_mask), sitk.GetArrayFromImage(mask))


def test_perturb_rejects_a_mask_off_the_grid():
    _, _, image, mask = _ball()
    mask.SetSpacing((2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="mask must lie on the image's grid"):
        perturb(image, mask, "original")


# -- the study ---------------------------------------------------------------------


def _icc11(table, feature):
    row = table[(table["feature"] == feature) & (table["form"] == "ICC(1,1)")]
    return float(row["icc"].iloc[0])


def test_robust_features_score_high_and_noise_sensitive_ones_low(result):
    table = result.icc
    assert set(table["modality"]) == {"CT"} and set(table["roi"]) == {"gtv"}
    assert (table["n_raters"] == 7).all()
    # The eroded-away plate leaves the study: four subjects remain.
    assert (table["n_subjects"] == 4).all()
    assert _icc11(table, "CT.gtv.original_firstorder_Mean") > 0.9
    # The same values without the noise rater: texture is stable under the
    # geometric perturbations, and noise is what makes it unstable.
    quiet = icc_long(
        result.values[
            (result.values["perturbation"] != "noise15") & (result.values["case"] != "P9")
        ].assign(subject=lambda d: d["case"]),
        rater="perturbation",
    )
    for feature in (
        "CT.gtv.original_glcm_Contrast",
        "CT.gtv.original_glcm_JointEntropy",
        "CT.gtv.original_firstorder_Entropy",
    ):
        assert _icc11(quiet, feature) > 0.8, feature
        assert _icc11(table, feature) < 0.6, feature
        assert _icc11(table, feature) < _icc11(table, "CT.gtv.original_firstorder_Mean") - 0.3


def test_icc_table_is_the_icc_of_the_values_table(result):
    complete = result.values[result.values["case"] != "P9"].assign(subject=lambda d: d["case"])
    expected = icc_long(complete, rater="perturbation")
    got = result.icc.drop(columns=["modality", "roi"])
    np.testing.assert_allclose(got["icc"], expected["icc"], rtol=1e-12)
    assert list(got["feature"]) == list(expected["feature"])


def test_reference_rater_equals_extraction_from_the_store(result, store, params_file):
    """The box read around each ROI holds everything the extraction needs."""
    from radflow.extraction.extractor import extract
    from radflow.store.read import open_label, open_volume

    for case in ("P0", "P3"):
        direct = extract(
            open_volume(store, case, "S1"),
            open_label(store, case, "S1", "rs"),
            params_file,
            label=1,
        )
        rows = result.values[
            (result.values["case"] == case) & (result.values["perturbation"] == "original")
        ]
        assert len(rows) == 4
        for feature, value in zip(rows["feature"], rows["value"]):
            assert feature.startswith("CT.gtv.")
            key = feature.removeprefix("CT.gtv.")
            assert value == pytest.approx(direct[key], rel=1e-9, abs=1e-12), feature


def test_failures_are_recorded_not_raised(result):
    failures = result.failures
    assert list(failures[["case", "roi", "perturbation"]].itertuples(index=False, name=None)) == [
        ("P9", "gtv", "erode1")
    ]
    assert failures["error_type"].iloc[0] == "InputError"
    assert "nothing is segmented" in failures["message"].iloc[0]
    plate = result.values[result.values["case"] == "P9"]
    assert set(plate["perturbation"]) == {
        p for p in result.values["perturbation"].unique() if p != "erode1"
    }


def test_one_roi_at_a_time(store, params_file, monkeypatch):
    """Reading the next ROI finds every array of the previous ones released."""
    from radflow.store import read as store_read

    read = store_read.read_box
    alive: list[tuple[str, weakref.ref]] = []
    events = []

    def spy(store_, case, series, box, **kwargs):
        gc.collect()
        held = sorted({c for c, ref in alive if ref() is not None and c != case})
        events.append(("read", case, held))
        out = read(store_, case, series, box, **kwargs)
        alive.append((case, weakref.ref(out.values)))
        return out

    monkeypatch.setattr(store_read, "read_box", spy)
    for roi in perturbed_features(store, params_file, perturbations=["original", "erode:1"]):
        events.append(("yield", roi.case, None))
    assert [e[1] for e in events if e[0] == "yield"] == ["P0", "P1", "P2", "P3", "P9"]
    assert all(held == [] for kind, _, held in events if kind == "read")
    # Each ROI is read (image, then label) and yielded before the next is read.
    assert [(k, c) for k, c, _ in events] == [
        (k, c) for c in ("P0", "P1", "P2", "P3", "P9") for k in ("read", "read", "yield")
    ]


def test_study_errors(store, params_file):
    with pytest.raises(SettingsError, match=r"perturbations \['erode1'\] are given twice"):
        stability_study(store, params_file, perturbations=["original", "erode:1", "erode:1"])
    with pytest.raises(SettingsError, match="at least 2 perturbations"):
        stability_study(store, params_file, perturbations=["original"])
    with pytest.raises(InputError, match="no ROI could be extracted"):
        stability_study(store, params_file, modalities=["PT"])
    single = store.parent / "single"
    shutil.copytree(store / "P0", single / "P0")
    with pytest.raises(InputError, match="at least 2 ROIs of one modality and ROI name"):
        stability_study(single, params_file, perturbations=["original", "dilate:1"])


def test_icc_table_selects_study_columns(result):
    """Feature names are the study's columns, so the table drives the ICC filter as is."""
    import pandas as pd

    from radflow.model.selection import ICCFilter

    columns = sorted(result.icc["feature"].unique())
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(6, len(columns))), columns=columns)
    kept = ICCFilter(result.icc, threshold=0.9).fit(X).get_feature_names_out()
    assert list(kept) == ["CT.gtv.original_firstorder_Mean"]
