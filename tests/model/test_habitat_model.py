"""The habitat model: compartments recovered, seeded determinism, numbering, K chosen,
small-component reassignment on hand-made label arrays, scikit-learn's estimator checks.

The synthetic tumours are spheres with a necrotic core (low CT, low PET) and a viable rim
(high PET, heterogeneous CT) plus noise: the ground truth of every voxel is known from the
generator, so Dice is computed against it, not against another run of the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sksurv.util import Surv

from radflow.errors import SettingsError
from radflow.io.records import LabelMap
from radflow.model.habitat import HabitatModel, reassign_small_components
from radflow.model.habitat_step import HabitatFeatures, StoreROIs
from radflow.model.survival import make_model, model_grid
from radflow.model.validation import nested_cv
from radflow.store.write import write_series

METHODS = ("two-stage", "kmeans", "gmm")
CORE, RIM = 1, 2  # the core has the lower CT (first channel): habitat 1


def _tumour(radius, rng, pad=2, core_ratio=0.55):
    """Channels (CT HU, PET SUV), ROI mask and core mask of one spherical tumour."""
    n = 2 * (radius + pad) + 1
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    r = np.sqrt(z**2 + y**2 + x**2)
    mask = r <= radius
    core = mask & (r <= core_ratio * radius)
    ct = np.where(core, rng.normal(15.0, 5.0, r.shape), rng.normal(45.0, 12.0, r.shape))
    pet = np.where(core, rng.normal(1.5, 0.6, r.shape), rng.normal(8.0, 1.5, r.shape))
    return np.stack([ct, pet]), mask, core


def _cohort(radii=(5, 7, 9, 6), seed=0):
    rng = np.random.default_rng(seed)
    return [_tumour(r, rng) for r in radii]


def _voxels(tumours):
    X = np.vstack([channels[:, mask].T for channels, mask, _ in tumours])
    groups = np.concatenate([np.full(mask.sum(), i) for i, (_, mask, _) in enumerate(tumours)])
    return X, groups


def _dice(a, b):
    return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))


@pytest.fixture(scope="module")
def cohort():
    return _cohort()


# ------------------------------------------------------------ compartments recovered


@pytest.mark.parametrize("method", METHODS)
def test_recovers_core_and_rim_of_synthetic_tumours(cohort, method):
    X, groups = _voxels(cohort)
    model = HabitatModel(2, method=method, random_state=0).fit(X, groups=groups)
    assert model.n_habitats_ == 2
    # Training tumours and tumours the model has not seen (other sizes, other noise).
    for channels, mask, core in [*cohort, *_cohort(radii=(4, 8), seed=1)]:
        habitats = model.predict_roi(channels, mask, (1.0, 1.0, 1.0))
        assert habitats.dtype == np.uint8 and habitats.shape == mask.shape
        assert not habitats[~mask].any() and set(np.unique(habitats[mask])) == {CORE, RIM}
        assert _dice(habitats == CORE, core) >= 0.9
        assert _dice(habitats == RIM, mask & ~core) >= 0.9
    # Habitat means in channel units: core (CT 15, PET 1.5) first, rim (CT 45, PET 8).
    error = np.abs(model.habitat_means_ - [[15.0, 1.5], [45.0, 8.0]])
    assert (error[:, 0] < 4.0).all() and (error[:, 1] < 0.6).all()


@pytest.mark.parametrize("method", METHODS)
def test_labels_match_predict_on_the_training_voxels(cohort, method):
    X, groups = _voxels(cohort)
    model = HabitatModel(2, method=method, random_state=0)
    labels = model.fit_predict(X, groups=groups)
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert set(np.unique(labels)) == {1, 2}


def test_two_stage_makes_supervoxels_per_roi(cohort):
    X, groups = _voxels(cohort)
    model = HabitatModel(2, n_supervoxels=7, random_state=0).fit(X, groups=groups)
    assert model.n_supervoxels_ == 7 * len(cohort)
    pooled = HabitatModel(2, n_supervoxels=7, random_state=0).fit(X)  # one group
    assert pooled.n_supervoxels_ == 7


# ------------------------------------------------------------ determinism and numbering


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_for_a_seed(cohort, method):
    X, groups = _voxels(cohort)
    a = HabitatModel(2, method=method, random_state=3).fit(X, groups=groups)
    b = HabitatModel(2, method=method, random_state=3).fit(X, groups=groups)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.habitat_means_, b.habitat_means_)
    channels, mask, _ = cohort[0]
    np.testing.assert_array_equal(
        a.predict_roi(channels, mask, (1, 1, 1)), b.predict_roi(channels, mask, (1, 1, 1))
    )
    # Another seed may find other clusters internally, but the numbers mean the same thing:
    # habitat 1 is still the low-CT core.
    c = HabitatModel(2, method=method, random_state=11).fit(X, groups=groups)
    assert np.mean(c.labels_ == a.labels_) > 0.97


@pytest.mark.parametrize("method", METHODS)
def test_numbering_follows_the_first_channel_under_value_shifts(cohort, method):
    X, groups = _voxels(cohort)
    base = HabitatModel(2, method=method, random_state=0).fit(X, groups=groups)
    # Shifted and rescaled channels (another HU offset, SUV in other units): the standardised
    # data are the same, so are the habitats and their numbers.
    shifted = HabitatModel(2, method=method, random_state=0).fit(
        X * [1.0, 2.5] + [1000.0, -3.0], groups=groups
    )
    np.testing.assert_array_equal(shifted.labels_, base.labels_)
    np.testing.assert_allclose(
        shifted.habitat_means_, base.habitat_means_ * [1.0, 2.5] + [1000.0, -3.0]
    )
    # Negated CT: the rim now has the lower first channel, so it becomes habitat 1.
    flipped = HabitatModel(2, method=method, random_state=0).fit(X * [-1.0, 1.0], groups=groups)
    assert np.mean(flipped.labels_ == 3 - base.labels_) > 0.97
    assert flipped.habitat_means_[0, 1] > flipped.habitat_means_[1, 1]  # habitat 1: high PET


def test_channels_are_standardised_on_the_training_voxels(cohort):
    X, groups = _voxels(cohort)
    model = HabitatModel(2, method="kmeans", random_state=0).fit(X, groups=groups)
    np.testing.assert_allclose(model.channel_mean_, X.mean(axis=0))
    np.testing.assert_allclose(model.channel_scale_, X.std(axis=0))
    constant = np.column_stack([X, np.full(len(X), 7.0)])
    model = HabitatModel(2, method="kmeans", random_state=0).fit(constant, groups=groups)
    assert model.channel_scale_[2] == 1.0


# ------------------------------------------------------------ K chosen


@pytest.mark.parametrize(
    ("method", "criterion"),
    [("two-stage", "silhouette"), ("kmeans", "silhouette"), ("gmm", "bic"), ("gmm", "silhouette")],
)
def test_k_chosen_over_the_range_is_two(cohort, method, criterion):
    X, groups = _voxels(cohort)
    model = HabitatModel(method=method, criterion=criterion, k_range=(2, 5), random_state=0)
    model.fit(X, groups=groups)
    assert model.n_habitats_ == 2
    assert sorted(model.scores_) == [2, 3, 4, 5]
    pick = min if criterion == "bic" else max
    assert pick(model.scores_, key=model.scores_.get) == 2


def test_given_k_is_not_scored(cohort):
    X, groups = _voxels(cohort)
    model = HabitatModel(3, method="kmeans", random_state=0).fit(X, groups=groups)
    assert model.n_habitats_ == 3 and model.scores_ == {}
    assert set(np.unique(model.labels_)) == {1, 2, 3}
    assert np.all(np.diff(model.habitat_means_[:, 0]) > 0)


# ------------------------------------------------------------ small components


def test_single_voxel_takes_the_majority_of_its_face_neighbours():
    habitats = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 2, 2, 0],
            [0, 1, 3, 2, 0],
            [0, 2, 2, 2, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    # 3 at (2, 2): faces with 1 (left), 2 (up, right, down); outside voxels do not count.
    out = reassign_small_components(habitats, (1.0, 1.0), 2.0)
    expected = habitats.copy()
    expected[2, 2] = 2
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(habitats[2, 2], 3)  # input untouched
    # Tie (two faces with 1, two with 2): the lower number. Habitat 1 has 3 pixels (kept).
    habitats[1, 2] = 1
    expected[1, 2], expected[2, 2] = 1, 1
    np.testing.assert_array_equal(reassign_small_components(habitats, (1.0, 1.0), 2.0), expected)


def test_reassignment_repeats_until_stable():
    habitats = np.array(
        [
            [1, 1, 1, 1],
            [1, 1, 2, 2],
            [1, 1, 2, 3],
        ]
    )
    # Minimum 4 pixels. The 3 (1 pixel) goes first, to 2 (its two faces); the 2-component
    # then has 4 pixels and stays: it must not be sent to 1 on its size before the merge (3).
    out = reassign_small_components(habitats, (1.0, 1.0), 4.0)
    np.testing.assert_array_equal(out, [[1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]])
    # Minimum 5 pixels: the merged component (4) is small too and joins 1.
    np.testing.assert_array_equal(reassign_small_components(habitats, (1.0, 1.0), 5.0), 1)


def test_small_component_is_reassigned_by_volume_with_anisotropic_spacing():
    habitats = np.ones((3, 3, 3), dtype=np.uint8)
    habitats[1, 1, 1] = 2
    spacing = (2.0, 1.0, 0.5)  # 1 mm^3 per voxel
    np.testing.assert_array_equal(reassign_small_components(habitats, spacing, 1.0), habitats)
    out = reassign_small_components(habitats, spacing, 1.01)
    assert out.dtype == np.uint8 and (out == 1).all()
    # Face neighbours only: a voxel touching 2 by an edge only is its own component.
    habitats[0, 0, 1] = 2  # edge neighbour of (1, 1, 1)
    out = reassign_small_components(habitats, (1.0, 1.0, 1.0), 2.0)
    assert (out == 1).all()


def test_island_without_neighbour_keeps_its_habitat():
    habitats = np.array([[1, 1, 0, 2], [1, 1, 0, 0]])
    out = reassign_small_components(habitats, (1.0, 1.0), 3.0)
    np.testing.assert_array_equal(out, habitats)
    np.testing.assert_array_equal(reassign_small_components(habitats, (1.0, 1.0), 0.0), habitats)


def test_predict_roi_reassigns_below_the_minimum_size():
    X = np.array([[0.0], [0.2], [10.0], [10.3]])
    channels = np.zeros((1, 5, 5, 5))
    channels[0, 1, 2, 2] = 10.0  # one bright voxel in a dark ROI
    channels[0, 3:, :, :] = 10.0  # a bright slab of 50 voxels
    mask = np.ones((5, 5, 5), dtype=bool)
    spacing = (2.0, 1.0, 1.0)  # 2 mm^3 per voxel
    keep = HabitatModel(2, method="kmeans", random_state=0).fit(X)
    out = keep.predict_roi(channels, mask, spacing)
    assert out[1, 2, 2] == 2 and (out[3:] == 2).all() and np.sum(out == 2) == 51
    merge = HabitatModel(2, method="kmeans", min_size_mm3=4.0, random_state=0).fit(X)
    out = merge.predict_roi(channels, mask, spacing)
    assert out[1, 2, 2] == 1 and (out[3:] == 2).all() and np.sum(out == 2) == 50
    # 2-D, and voxels outside the mask stay 0 whatever their channels.
    mask2d = np.zeros((4, 4), dtype=bool)
    mask2d[1:3, 1:3] = True
    out = merge.predict_roi(np.full((1, 4, 4), 10.0), mask2d, (1.0, 1.0))
    np.testing.assert_array_equal(out, np.where(mask2d, 2, 0))


# ------------------------------------------------------------ parameters and inputs


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "dbscan"}, "method"),
        ({"n_habitats": 0}, "n_habitats"),
        ({"k_range": (4, 2)}, "k_range"),
        ({"k_range": (1, 3)}, "k_range"),
        ({"criterion": "aic"}, "criterion"),
        ({"min_size_mm3": -1.0}, "min_size_mm3"),
    ],
)
def test_parameters_checked_in_fit(params, message):
    model = HabitatModel(**params)  # nothing checked here
    with pytest.raises(SettingsError, match=f"HabitatModel: {message}"):
        model.fit(np.arange(20.0).reshape(10, 2))


def test_input_errors(cohort):
    X, groups = _voxels(cohort)
    with pytest.raises(ValueError, match="criterion='bic' needs method='gmm'"):
        HabitatModel(method="kmeans", criterion="bic").fit(X)
    with pytest.raises(ValueError, match="groups must give the ROI"):
        HabitatModel(2).fit(X, groups=groups[:-1])
    with pytest.raises(ValueError, match="only 2 distinct"):
        HabitatModel(3, method="kmeans").fit(np.array([[0.0], [0.0], [1.0], [1.0]]))
    model = HabitatModel(2, method="kmeans", random_state=0).fit(X)
    channels, mask, _ = cohort[0]
    with pytest.raises(ValueError, match="channels must have shape"):
        model.predict_roi(channels[:1], mask, (1, 1, 1))
    with pytest.raises(ValueError, match="spacing_zyx must be 3 positive"):
        model.predict_roi(channels, mask, (1, 1))
    channels = channels.copy()
    channels[0][mask] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.predict_roi(channels, mask, (1, 1, 1))
    with pytest.raises(Exception, match="not fitted"):
        HabitatModel().predict(X)


# ------------------------------------------------------------ sklearn contract

_LABELS_FROM_1 = (
    "habitats are numbered 1..K (0 is outside the ROI in a habitat map); the check wants "
    "cluster labels from 0 (its other assertions, ARI > 0.4 and determinism, run before)"
)


@parametrize_with_checks(
    [
        HabitatModel(random_state=0),
        HabitatModel(2, method="kmeans", random_state=0),
        HabitatModel(method="gmm", criterion="bic", random_state=0),
    ],
    expected_failed_checks=lambda estimator: {"check_clustering": _LABELS_FROM_1},
)
def test_sklearn_contract(estimator, check):
    check(estimator)


# ------------------------------------------------------------ inside nested validation


class SpyHabitatModel(HabitatModel):
    """A HabitatModel that records, in a class-level log, the ROIs (groups) of each fit."""

    log: list = []

    def fit(self, X, y=None, groups=None):
        SpyHabitatModel.log.append((frozenset(np.unique(groups)), len(X)))
        return super().fit(X, y, groups)


def _patients(n=30, seed=0):
    """Patients with one tumour each: necrotic share drawn per patient, hazard rising with it."""
    rng = np.random.default_rng(seed)
    ids = [f"P{k:03d}" for k in range(n)]
    ratio = rng.uniform(0.35, 0.75, n)  # core radius / tumour radius
    rois, truth = {}, {}
    for pid, radius, r in zip(ids, rng.integers(3, 6, n), ratio):
        channels, mask, core = _tumour(int(radius), rng, pad=1, core_ratio=r)
        rois[pid] = (channels, mask, (2.0, 1.0, 1.0))
        truth[pid] = core.sum() / mask.sum()
    frame = pd.DataFrame({"clinical.age": rng.uniform(40, 80, n)}, index=pd.Index(ids))
    lp = 6.0 * (np.array([truth[p] for p in ids]) - 0.2)
    time = rng.exponential(np.exp(-lp)) * 10.0
    censor = rng.uniform(5.0, 30.0, n)
    y = Surv.from_arrays(time <= censor, np.minimum(time, censor))
    return frame, y, rois, pd.Series(truth)


def test_habitat_features_appended_per_row():
    X, _, rois, truth = _patients(n=12)
    rows = list(X.index)
    del rois[rows[-1]]  # a patient without the ROI
    step = HabitatFeatures(
        rois, model=HabitatModel(2, method="kmeans", random_state=0), features=["Fraction"]
    )
    out = step.fit(X.iloc[:8]).transform(X)
    assert list(step.rows_) == rows[:8]
    assert list(out.columns) == list(step.get_feature_names_out())
    assert list(out.columns) == [
        "clinical.age",
        "habitat.original_habitat_Fraction_1",
        "habitat.original_habitat_Fraction_2",
    ]
    pd.testing.assert_series_equal(out["clinical.age"], X["clinical.age"])
    # Habitat 1 (low CT) is the necrotic core: its fraction is the generator's core share,
    # for the training rows and the others alike; no ROI gives NaN.
    necrotic = out["habitat.original_habitat_Fraction_1"]
    assert necrotic.iloc[-1:].isna().all()
    np.testing.assert_allclose(necrotic.iloc[:-1], truth.loc[rows[:-1]], atol=0.05)
    np.testing.assert_allclose(out.iloc[:-1, 1] + out.iloc[:-1, 2], 1.0)
    # A function works as the ROI source too.
    by_function = HabitatFeatures(rois.get, model=step.model, features=["Fraction"])
    pd.testing.assert_frame_equal(by_function.fit(X.iloc[:8]).transform(X), out)
    with pytest.raises(TypeError, match="DataFrame"):
        step.transform(X.to_numpy())


def test_habitat_model_fitted_in_training_folds_only():
    X, y, rois, _ = _patients()
    pipe = Pipeline(
        [
            (
                "habitats",
                HabitatFeatures(
                    rois,
                    model=SpyHabitatModel(2, method="kmeans", random_state=0),
                    features=["Fraction", "ITHScore"],
                ),
            ),
            ("scale", StandardScaler()),
            ("model", make_model("coxnet", l1_ratio=0.5)),
        ]
    ).set_output(transform="pandas")
    SpyHabitatModel.log.clear()
    result = nested_cv(
        pipe,
        X,
        y,
        param_grid=model_grid("coxnet", {"alpha": [0.05, 0.2]}),
        outer_folds=3,
        inner_folds=2,
        n_boot=50,
        seed=1,
        extra_metrics=(),
    )
    folds = result.predictions["fold"]
    tests = [frozenset(folds.index[folds == f.name]) for f in result.folds]
    trains = [frozenset(X.index) - t for t in tests]
    voxels = {pid: int(mask.sum()) for pid, (_, mask, _) in rois.items()}
    fits_per_fold = 2 * 2 + 1  # inner folds x grid points, then the refit
    log = SpyHabitatModel.log
    assert len(log) == len(tests) * fits_per_fold
    for k, (test, train) in enumerate(zip(tests, trains)):
        chunk = log[k * fits_per_fold : (k + 1) * fits_per_fold]
        for seen, n_voxels in chunk:
            assert not seen & test, f"the habitat model saw test patients of fold {k}"
            assert seen <= train and n_voxels == sum(voxels[p] for p in seen)
        assert chunk[-1][0] == train  # the refit: the whole training set
    assert result.predictions["risk"].notna().all()


def _store_case(store, case, core_mm, rng, *, pet=True):
    """CT (HU) and PET (SUV) of one tumour on one grid (rim 7 mm, core `core_mm`), GTV label.

    Returns the generator's core share of the GTV's voxels.
    """
    spacing_xyz, shape = (1.0, 1.0, 2.0), (9, 20, 20)
    z, y, x = np.indices(shape, dtype=np.float64)
    r = np.sqrt((x - 9.5) ** 2 + (y - 9.5) ** 2 + (2.0 * (z - 4)) ** 2)
    gtv, core = r <= 7.0, r <= core_mm
    hu = np.where(core, rng.normal(5.0, 6.0, shape), rng.normal(80.0, 6.0, shape))
    suv = np.where(core, 1.5, np.where(gtv, 9.0, 1.0))

    def image(values):
        out = sitk.GetImageFromArray(values)
        out.SetSpacing(spacing_xyz)
        return out

    ct = image(np.round(hu).astype(np.int16))
    mask = image(gtv.astype(np.uint8))
    attrs = {"institution": "inst", "study": f"st-{case}"}
    write_series(
        store,
        case,
        "ct",
        ct,
        [LabelMap("rtstruct", "rtstruct", mask, {1: "GTV"})],
        attrs={"modality": "CT", **attrs},
        fingerprint=f"ct-{case}",
    )
    if pet:
        write_series(
            store,
            case,
            "pt",
            image(suv.astype(np.float32)),
            attrs={"modality": "PT", **attrs},
            fingerprint=f"pt-{case}",
        )
    return core[gtv].mean()


def test_store_rois_feed_habitat_features(tmp_path):
    store = tmp_path / "store"
    rng = np.random.default_rng(0)
    truth = {f"c{n}": _store_case(store, f"c{n}", mm, rng) for n, mm in enumerate((3, 4, 5, 6))}
    _store_case(store, "c9", 4.0, rng, pet=False)  # no PET: no ROI with every channel
    source = StoreROIs(store, "GTV", ["CT", "PT"])
    channels, mask, spacing = source("c0")
    assert channels.shape == (2, *mask.shape) and spacing == (2.0, 1.0, 1.0)
    assert source("c9") is None and source("unknown") is None
    X = pd.DataFrame({"clinical.age": [50.0, 60.0, 70.0, 80.0, 65.0]}, index=[*truth, "c9"])
    step = HabitatFeatures(
        source, model=HabitatModel(2, method="kmeans", random_state=0), features=["Fraction"]
    )
    out = step.fit(X.iloc[:3]).transform(X)
    assert list(step.rows_) == ["c0", "c1", "c2"]
    necrotic = out["habitat.original_habitat_Fraction_1"]
    np.testing.assert_allclose(necrotic.iloc[:4], list(truth.values()), atol=0.02)
    assert np.isnan(necrotic.iloc[4])
