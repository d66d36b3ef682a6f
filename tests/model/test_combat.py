"""ComBat: against neuroCombat (test-only oracle), on new samples, on the synthetic archive."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radflow.model.combat import ComBat

neuroCombat = pytest.importorskip("neuroCombat")

FEATURES = [f"f{i}" for i in range(8)]


def _reference(data, covars, **options):
    """neuroCombat's harmonised values, samples in rows (it prints its progress)."""
    with contextlib.redirect_stdout(io.StringIO()):
        out = neuroCombat.neuroCombat(np.ascontiguousarray(data.T), covars, "site", **options)
    return out["data"].T, out["estimates"]


@pytest.fixture(scope="module")
def sites():
    """Three sites of 9, 14 and 20 samples with additive and multiplicative effects
    that differ per feature, a continuous (age, whole years: exact in neuroCombat's
    float32 design) and a categorical (sex) covariate with real effects."""
    rng = np.random.default_rng(7)
    counts = [9, 14, 20]
    site = np.repeat(["S1", "S2", "S3"], counts)
    n = len(site)
    age = rng.integers(40, 80, n).astype(float)
    sex = rng.choice(["F", "M"], n)
    shift = rng.normal(0.0, 1.0, (3, len(FEATURES)))
    scale = rng.uniform(0.5, 2.0, (3, len(FEATURES)))
    k = np.repeat(np.arange(3), counts)
    data = (
        10.0
        + 0.04 * age[:, None]
        + 0.8 * (sex == "M")[:, None]
        + shift[k]
        + scale[k] * rng.normal(size=(n, len(FEATURES)))
    )
    frame = pd.DataFrame(data, columns=FEATURES)
    frame.insert(0, "site", site)
    frame["age"] = age
    frame["sex"] = sex
    return frame


@pytest.mark.parametrize("parametric", [True, False], ids=["parametric", "nonparametric"])
@pytest.mark.parametrize("covariates", [False, True], ids=["plain", "covariates"])
@pytest.mark.parametrize("mean_only", [False, True], ids=["loc-scale", "mean-only"])
def test_fit_transform_equals_neurocombat(sites, parametric, covariates, mean_only):
    kw = dict(categorical=["sex"], continuous=["age"]) if covariates else {}
    expected, _ = _reference(
        sites[FEATURES].to_numpy(),
        sites[["site", "age", "sex"]],
        categorical_cols=kw.get("categorical"),
        continuous_cols=kw.get("continuous"),
        parametric=parametric,
        mean_only=mean_only,
    )
    model = ComBat(
        batch="site", features=FEATURES, parametric=parametric, mean_only=mean_only, **kw
    )
    out = model.fit_transform(sites)
    np.testing.assert_allclose(out[FEATURES].to_numpy(), expected, rtol=0, atol=1e-6)
    # the non-feature columns pass through untouched; the batch column is gone
    assert list(out.columns) == FEATURES + ["age", "sex"]
    pd.testing.assert_series_equal(out["age"], sites["age"])


def test_without_empirical_bayes_equals_neurocombat(sites):
    expected, _ = _reference(
        sites[FEATURES].to_numpy(), sites[["site", "age", "sex"]], continuous_cols=["age"], eb=False
    )
    out = ComBat(
        batch="site", features=FEATURES, continuous=["age"], empirical_bayes=False
    ).fit_transform(sites)
    np.testing.assert_allclose(out[FEATURES].to_numpy(), expected, atol=1e-6)


def test_estimates_equal_neurocombat(sites):
    _, est = _reference(
        sites[FEATURES].to_numpy(),
        sites[["site", "age", "sex"]],
        categorical_cols=["sex"],
        continuous_cols=["age"],
    )
    m = ComBat(batch="site", categorical=["sex"], continuous=["age"], features=FEATURES).fit(sites)
    np.testing.assert_allclose(m.gamma_star_, est["gamma.star"], atol=1e-9)
    np.testing.assert_allclose(m.delta_star_, est["delta.star"], rtol=1e-9)
    np.testing.assert_allclose(m.var_pooled_, est["var.pooled"].ravel(), rtol=1e-9)
    np.testing.assert_allclose(m.grand_mean_, est["stand.mean"][:, 0], rtol=1e-12)
    assert list(m.batches_) == ["S1", "S2", "S3"]


def test_new_samples_equal_neurocombat_from_training(sites):
    """Samples not seen in fit, from seen batches, get the training estimates
    (neuroCombatFromTraining: its reference, valid without covariates)."""
    train = sites.index % 3 != 0
    model = ComBat(batch="site", features=FEATURES).fit(sites[train])
    _, est = _reference(sites.loc[train, FEATURES].to_numpy(), sites.loc[train, ["site"]])
    new = sites[~train]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its int(array) on NumPy 2
        expected = neuroCombat.neuroCombatFromTraining(
            new[FEATURES].to_numpy().T, new["site"].to_numpy(), est
        )["data"].T
    np.testing.assert_allclose(model.transform(new)[FEATURES].to_numpy(), expected, atol=1e-9)


def test_transform_is_per_sample_with_covariates(sites):
    """Each new sample is harmonised by its own batch and covariates only: one
    row at a time gives the values of the whole frame, and the training rows
    give fit_transform's values."""
    model = ComBat(batch="site", categorical=["sex"], continuous=["age"], features=FEATURES)
    whole = model.fit_transform(sites)
    rows = pd.concat([model.transform(sites.iloc[[i]]) for i in (0, 11, 30)])
    pd.testing.assert_frame_equal(rows, whole.iloc[[0, 11, 30]])


def test_parameters_learned_only_in_fit(sites):
    model = ComBat(batch="site", features=FEATURES).fit(sites.iloc[::2])
    before = model.gamma_star_.copy()
    shifted = sites.copy()
    shifted[FEATURES] += 100.0
    out = model.transform(shifted.iloc[1::2])
    np.testing.assert_array_equal(model.gamma_star_, before)
    # a shift unseen in fit stays in the output (it is not re-estimated)
    ref = model.transform(sites.iloc[1::2])
    np.testing.assert_allclose(
        out[FEATURES].mean().mean() - ref[FEATURES].mean().mean(),
        100.0 * (1 / np.sqrt(model.delta_star_)).mean(),
        rtol=0.2,
    )


def test_constant_feature_passes_through(sites):
    frame = sites.assign(flat=5.0)
    out = ComBat(batch="site", features=FEATURES + ["flat"]).fit_transform(frame)
    assert (out["flat"] == 5.0).all()
    plain = ComBat(batch="site", features=FEATURES).fit_transform(sites)
    np.testing.assert_allclose(out[FEATURES], plain[FEATURES], atol=1e-12)


def test_constant_feature_passes_through_with_covariates(sites):
    """With covariates the residual variance of a constant column is rounding noise, not 0;
    it must still be recognised as constant (no division by ~1e-15, no warning)."""
    frame = sites.assign(flat=5.0)
    kw = dict(categorical=["sex"], continuous=["age"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = ComBat(batch="site", features=FEATURES + ["flat"], **kw).fit(frame)
        out = model.transform(frame)
    assert model.constant_[-1] and not model.constant_[:-1].any()
    assert (out["flat"] == 5.0).all()
    plain = ComBat(batch="site", features=FEATURES, **kw).fit_transform(sites)
    np.testing.assert_allclose(out[FEATURES], plain[FEATURES], atol=1e-12)


def test_batch_mean_exactly_at_the_grand_mean_equals_neurocombat_without_warnings():
    """A feature whose batch means equal its grand mean exactly has gamma_hat 0: the relative
    change of the parametric iteration divides by it (inf: iterate on), as neuroCombat does."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(12, 3)) * [1.0, 2.0, 3.0], columns=list("abc"))
    frame["a"] = [1.0, 3.0, 2.0, 2.0, 0.0, 4.0, 2.0, 2.0, 5.0, -1.0, 2.0, 2.0]  # batch means 2
    frame.insert(0, "site", np.repeat(["A", "B", "C"], 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = ComBat(batch="site").fit(frame)
        out = model.transform(frame)
    assert (model.gamma_hat_[:, 0] == 0.0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference, _ = _reference(frame[list("abc")].to_numpy(), frame[["site"]])
    np.testing.assert_allclose(out[list("abc")].to_numpy(), reference, rtol=1e-6, atol=1e-9)


def test_nonparametric_prior_finite_for_large_batches():
    """With batches of hundreds, neuroCombat's likelihoods underflow (0/0 -> NaN);
    the log-space weights give finite values that remove the site shift."""
    rng = np.random.default_rng(3)
    n, cols = 4000, list("abcdef")
    frame = pd.DataFrame(rng.normal(size=(n, 6)) * [1, 2, 3, 1, 2, 3], columns=cols)
    frame.insert(0, "site", np.repeat(["A", "B"], n // 2))
    frame.loc[frame.site == "B", cols] += 0.5 * np.array([1, 2, 3, 1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference, _ = _reference(frame[cols].to_numpy(), frame[["site"]], parametric=False)
    assert np.isnan(reference).all()
    out = ComBat(batch="site", parametric=False).fit_transform(frame)
    assert np.isfinite(out.to_numpy()).all()
    gap = out[frame.site == "B"].mean() - out[frame.site == "A"].mean()
    assert (gap.abs() < 0.1 * np.array([1, 2, 3, 1, 2, 3])).all()


def test_preserves_covariate_confounded_with_batch():
    """Site B has mostly older patients: without the covariate, ComBat takes part
    of the age effect for a batch effect; with it, the slope survives."""
    rng = np.random.default_rng(11)
    n = 200
    site = np.repeat(["A", "B"], n // 2)
    age = np.where(site == "A", rng.normal(50, 8, n), rng.normal(70, 8, n)).round()
    feature = 0.5 * age + np.where(site == "B", 6.0, 0.0) + rng.normal(0, 2, n)
    other = rng.normal(0, 2, n) + np.where(site == "B", -3.0, 0.0)
    frame = pd.DataFrame({"site": site, "age": age, "f": feature, "g": other})

    def slope(out):
        return np.polyfit(age, out["f"], 1)[0]

    kept = ComBat(batch="site", continuous=["age"]).fit_transform(frame)
    lost = ComBat(batch="site").fit_transform(frame)
    assert slope(kept) == pytest.approx(0.5, abs=0.05)
    assert slope(lost) < 0.35
    # and the site shift (6) is gone once age is accounted for
    design = np.column_stack([np.ones(n), age, site == "B"])
    assert abs(np.linalg.lstsq(design, kept["f"], rcond=None)[0][2]) < 0.5
    assert np.linalg.lstsq(design, frame["f"], rcond=None)[0][2] == pytest.approx(6.0, abs=1.0)


# ------------------------------------------------------------- synthetic archive


def _scanner_features(cohort, seed=0):
    """Tumour features as each patient's institution measures them.

    The true tumour properties of ``draw_cohort`` seen through the scanner
    models of the archive's sites: the CT's linear HU miscalibration, kernel
    blur and noise, the PET's calibration and partial-volume loss (PSF).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in cohort:
        t, ct, pet = p.truth, p.site.ct, p.site.pet
        necrosis = t["necrosis_fraction"]
        radius_mm = (3.0 * t["tumour_volume_mm3"] / (4.0 * np.pi)) ** (1.0 / 3.0)
        blur = 1.0 / np.sqrt(1.0 + (ct.blur_mm / t["texture_length_mm"]) ** 2)
        ct_sd = np.hypot(ct.hu_scale * t["texture_sd_hu"] * blur, ct.noise_hu)
        psf_sigma_mm = pet.psf_fwhm_mm / 2.355
        rows.append(
            {
                "institution": p.site.name,
                "CT.gtv.shape_LogVolume": np.log(t["tumour_volume_mm3"]) + rng.normal(0, 0.05),
                "CT.gtv.firstorder_Mean": ct.hu_scale * (55.0 * (1 - necrosis) + 12.0 * necrosis)
                + ct.hu_offset
                + rng.normal(0, 1.5),
                "CT.gtv.firstorder_StandardDeviation": ct_sd + rng.normal(0, 1.0),
                "PT.gtv.firstorder_Maximum": pet.calibration
                * t["suv_tumour"]
                * (1 + 0.3 * t["heterogeneity"])
                * radius_mm
                / (radius_mm + psf_sigma_mm)
                * (1 + rng.normal(0, 0.03)),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def archive():
    from sksurv.util import Surv

    from radflow.demo.synthetic import draw_cohort

    cohort = draw_cohort(180, seed=2)
    table = _scanner_features(cohort)
    y = Surv.from_arrays(
        [p.outcome["os_event"] == 1 for p in cohort], [p.outcome["os_months"] for p in cohort]
    )
    return table, y


def test_removes_institution_effect_keeps_survival_signal(archive):
    from sksurv.metrics import concordance_index_censored

    table, y = archive
    features = [c for c in table.columns if c != "institution"]
    site = table["institution"]
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    before = cross_val_score(classifier, table[features], site, cv=folds).mean()
    # ComBat inside the pipeline: fitted on each training fold, applied to the test fold
    after = cross_val_score(
        make_pipeline(ComBat(batch="institution"), clone(classifier)), table, site, cv=folds
    ).mean()
    assert before > 0.8
    assert after < 0.45  # chance: 1/3

    harmonised = ComBat(batch="institution").fit_transform(table)

    def c_index(values):
        return concordance_index_censored(y["event"], y["time"], values)[0]

    for name in harmonised.columns:  # no feature loses its survival signal
        assert abs(c_index(harmonised[name]) - 0.5) >= abs(c_index(table[name]) - 0.5) - 0.01
    assert c_index(harmonised["CT.gtv.shape_LogVolume"]) > 0.65
    # the necrosis signal (necrotic tumour is darker on CT, and deadlier) was
    # hidden by the HU offsets of the scanners; harmonisation reveals it
    mean_hu = "CT.gtv.firstorder_Mean"
    assert 1 - c_index(harmonised[mean_hu]) > 1 - c_index(table[mean_hu]) + 0.05


# -------------------------------------------------------------- API contract


def test_pipeline_contract(sites):
    model = ComBat(batch="site", continuous=["age"], features=FEATURES, remainder="drop")
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(Exception, match="not fitted"):
        model.transform(sites)
    out = model.set_output(transform="pandas").fit_transform(sites)
    assert list(out.columns) == FEATURES
    assert list(model.get_feature_names_out()) == FEATURES
    assert out.index.equals(sites.index)


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda f: f.assign(site="S1"), {}, "single level"),
        (lambda f: f.iloc[8:], {}, "one sample"),
        (lambda f: f.assign(f0=np.where(f.index == 3, np.nan, f.f0)), {}, "'f0' has missing"),
        (lambda f: f.assign(age=np.nan), {"continuous": ["age"]}, "'age' has missing"),
        (lambda f: f.drop(columns="site"), {}, "no column 'site'"),
        (lambda f: f.assign(grp=f.site), {"categorical": ["grp"]}, "confounded"),
        (lambda f: f, {"features": ["f0", "nope"]}, "'nope' is not in X"),
        (lambda f: f, {"remainder": "keep"}, "remainder"),
        (lambda f: f, {"features": None}, "'sex' is not numeric"),
        (lambda f: f, {"features": ["f0"]}, "at least 2"),
    ],
)
def test_fit_errors(sites, change, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComBat(batch="site", **{"features": FEATURES, **kwargs}).fit(change(sites))


def test_transform_errors(sites):
    model = ComBat(batch="site", categorical=["sex"], features=FEATURES).fit(sites)
    with pytest.raises(ValueError, match="batch 'S9' of column 'site' was not seen in fit"):
        model.transform(sites.assign(site="S9"))
    with pytest.raises(ValueError, match="level 'X' of covariate 'sex' was not seen"):
        model.transform(sites.assign(sex="X"))
    with pytest.raises(ValueError, match="other columns than in fit"):
        model.transform(sites.drop(columns="age"))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        model.transform(sites.to_numpy())
