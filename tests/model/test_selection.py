"""Selection transformers: scikit-learn contract, hand-worked values, lifelines as oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sksurv.util import Surv

from radflow.model.selection import (
    CorrelationFilter,
    CoxnetSelector,
    FeaturePCA,
    ForestImportanceSelector,
    ICCFilter,
    L1LogisticSelector,
    MRMRSelector,
    NearZeroVariance,
    UnivariateCoxSelector,
    cox_score_test,
)


def _cox_data(n=200, p=12, beta=(1.0, -0.8, 0.6), seed=0, tie_to=None):
    """Exponential survival with hazard exp(X beta) on the first columns, uniform censoring."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.asarray(beta)[:p]
    lp = X[:, : len(beta)] @ beta
    event_time = rng.exponential(10.0 * np.exp(-lp))
    censor = rng.uniform(5.0, 30.0, n)
    time = np.minimum(event_time, censor)
    if tie_to:
        time = np.ceil(time / tie_to) * tie_to
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    return frame, Surv.from_arrays(event_time <= censor, time)


# ------------------------------------------------------------ sklearn contract


@parametrize_with_checks(
    [
        NearZeroVariance(),
        CorrelationFilter(),
        MRMRSelector(n_features=2),
        L1LogisticSelector(C=1.0),
        ForestImportanceSelector(n_estimators=10, importance="impurity", random_state=0),
        FeaturePCA(n_components=2),
    ]
)
def test_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "No features were selected" on noise
        check(estimator)


def test_dataframes_flow_through_a_pipeline():
    X, y = _cox_data(p=8)
    X["x7"] = 1.0  # constant
    X["x6"] = 2.0 * X["x0"] + 1e-3 * X["x5"]  # redundant with x0
    pipe = make_pipeline(
        NearZeroVariance(), CorrelationFilter(threshold=0.95), UnivariateCoxSelector(alpha=0.01)
    ).set_output(transform="pandas")
    out = pipe.fit_transform(X, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(pipe.get_feature_names_out())
    # x6 = 2 x0 stands for the pair (the more variable); the constant x7 is gone
    assert {"x6", "x1", "x2"} <= set(out.columns)
    assert "x0" not in out.columns and "x7" not in out.columns
    pd.testing.assert_frame_equal(out, X[out.columns])


def test_selection_learned_in_fit_only():
    X, y = _cox_data()
    selector = UnivariateCoxSelector(k=3).fit(X.iloc[:100], y[:100])
    support = selector.get_support().copy()
    shuffled = X.iloc[100:].sample(frac=1.0, axis=1, random_state=0)[X.columns]
    selector.transform(shuffled * 1000.0)
    np.testing.assert_array_equal(selector.get_support(), support)
    fresh = UnivariateCoxSelector(k=3).fit(X.iloc[100:], y[100:])
    np.testing.assert_array_equal(fresh.statistic_ != selector.statistic_, True)


# ------------------------------------------------------------- Cox score test


def test_score_test_equals_lifelines_efron_with_ties():
    """U(0)^2 / I(0) from lifelines' own Efron gradient and Hessian at beta = 0."""
    from lifelines.fitters.coxph_fitter import SemiParametricPHFitter

    X, y = _cox_data(n=90, p=4, tie_to=2.0, seed=4)
    X["x3"] = (X["x3"] > 0).astype(float)
    assert pd.Series(y["time"][y["event"]]).duplicated().sum() > 10  # many tied deaths
    statistic, p = cox_score_test(X, y)
    order = np.argsort(y["time"], kind="stable")
    fitter = SemiParametricPHFitter()
    for j, column in enumerate(X.columns):
        hessian, gradient, _ = fitter._get_efron_values_single(
            X[[column]].iloc[order],
            pd.Series(y["time"][order]),
            pd.Series(y["event"][order].astype(float)),
            pd.Series(np.ones(len(X))),
            None,
            np.zeros(1),
        )
        expected = float(gradient[0] ** 2 / -hessian[0, 0])
        assert statistic[j] == pytest.approx(expected, rel=1e-10)
    from scipy.stats import chi2

    np.testing.assert_allclose(p, chi2.sf(statistic, 1))


def test_score_test_equals_logrank_for_binary_without_ties():
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(5)
    n = 60
    group = rng.integers(0, 2, n)
    time = rng.permutation(n) + 1.0 + 0.5 * group  # distinct times, no ties
    event = rng.random(n) < 0.7
    statistic, p = cox_score_test(group[:, None], Surv.from_arrays(event, time))
    ref = logrank_test(time[group == 1], time[group == 0], event[group == 1], event[group == 0])
    assert statistic[0] == pytest.approx(ref.test_statistic, rel=1e-10)
    assert p[0] == pytest.approx(ref.p_value, rel=1e-8)


def _breslow_loglik(beta, x, time, event):
    """Breslow log partial likelihood, one death at a time (the definition)."""
    total = 0.0
    for i in np.flatnonzero(event):
        at_risk = time >= time[i]
        total += beta * x[i] - np.log(np.exp(beta * x[at_risk]).sum())
    return total


def test_score_test_breslow_equals_numerical_derivatives():
    X, y = _cox_data(n=40, p=2, tie_to=3.0, seed=8)
    statistic, _ = cox_score_test(X, y, ties="breslow")
    h = 1e-4
    for j in range(2):
        x = X.iloc[:, j].to_numpy()
        f = [_breslow_loglik(b, x, y["time"], y["event"]) for b in (-h, 0.0, h)]
        score, info = (f[2] - f[0]) / (2 * h), -(f[2] - 2 * f[1] + f[0]) / h**2
        assert statistic[j] == pytest.approx(score**2 / info, rel=1e-5)


def test_score_test_invariances_and_undefined():
    X, y = _cox_data(n=50, p=3)
    base, _ = cox_score_test(X, y)
    moved, _ = cox_score_test(X * [1e3, -2.0, 1e-3] + [1e5, 7.0, -3.0], y)
    np.testing.assert_allclose(moved, base, rtol=1e-9)
    flat, p = cox_score_test(np.ones((50, 1)), y)
    assert np.isnan(flat[0]) and np.isnan(p[0])
    with pytest.raises(ValueError, match="all samples are censored"):
        cox_score_test(X, Surv.from_arrays(np.zeros(50, bool), y["time"]))
    with pytest.raises(ValueError, match="structured survival array"):
        cox_score_test(X, y["time"])
    with pytest.raises(ValueError, match="ties"):
        cox_score_test(X, y, ties="exact")


def test_univariate_cox_selects_the_hidden_models_covariates():
    """On the synthetic cohort, the prognostic true properties pass the score
    test; noise columns do not (FDR-adjusted)."""
    from radflow.demo.synthetic import draw_cohort

    cohort = draw_cohort(200, seed=1)
    rng = np.random.default_rng(0)
    truth = pd.DataFrame([p.truth["covariates"] for p in cohort])
    noise = pd.DataFrame(rng.normal(size=(200, 10)), columns=[f"noise{i}" for i in range(10)])
    X = pd.concat([truth, noise], axis=1)
    y = Surv.from_arrays(
        [p.outcome["os_event"] == 1 for p in cohort], [p.outcome["os_months"] for p in cohort]
    )
    selector = UnivariateCoxSelector(alpha=0.05, fdr=True).set_output(transform="pandas").fit(X, y)
    chosen = set(selector.get_feature_names_out())
    assert {"log_tumour_volume_cm3", "stage", "hpv"} <= chosen
    assert not any(c.startswith("noise") for c in chosen)
    top = UnivariateCoxSelector(k=2).fit(X, y)
    assert set(top.get_feature_names_out()) == set(X.columns[np.argsort(-top.statistic_)[:2]])


# ------------------------------------------------------------ model selectors


def test_coxnet_recovers_the_true_predictors():
    X, y = _cox_data(n=300, p=15, seed=2)
    cv = CoxnetSelector(cv=3, random_state=0).fit(X, y)
    assert {"x0", "x1", "x2"} <= set(cv.get_feature_names_out())
    assert cv.alpha_ in cv.alphas_
    assert cv.cv_scores_[np.flatnonzero(cv.alphas_ == cv.alpha_)[0]] == cv.cv_scores_.max()
    small = CoxnetSelector(max_features=3).fit(X, y)
    assert list(small.get_feature_names_out()) == ["x0", "x1", "x2"]
    assert np.sign(small.coef_[:3]).tolist() == [1.0, -1.0, 1.0]
    strong = CoxnetSelector(alpha=cv.alpha_ * 4).fit(X, y)
    assert strong.get_support().sum() <= cv.get_support().sum()


def test_l1_logistic_keeps_informative_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10))
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=300) > 0).astype(int)
    chosen = L1LogisticSelector(random_state=0).fit(X, y)
    assert chosen.get_support()[:2].all()
    assert chosen.coef_[0] > 0 > chosen.coef_[1]
    assert L1LogisticSelector(C=0.02).fit(X, y).get_support().sum() <= 2
    with pytest.raises(ValueError, match="must hold classes"):
        L1LogisticSelector(C=1.0).fit(X, rng.normal(size=300))


def test_forest_importance_survival_and_classes():
    X, y = _cox_data(n=150, p=8, beta=(1.5, -1.2), seed=3)
    forest = ForestImportanceSelector(
        n_features=2, n_estimators=40, n_repeats=3, random_state=0
    ).fit(X, y)
    assert list(forest.get_feature_names_out()) == ["x0", "x1"]
    classes = (X["x2"] + 0.3 * X["x5"] > 0).astype(int)
    impurity = ForestImportanceSelector(
        n_features=1, importance="impurity", n_estimators=40, random_state=0
    ).fit(X, classes)
    assert list(impurity.get_feature_names_out()) == ["x2"]
    with pytest.raises(ValueError, match="not defined for survival"):
        ForestImportanceSelector(importance="impurity").fit(X, y)


# ------------------------------------------------------------------- filters


def test_near_zero_variance_hand_worked():
    n = 100
    X = pd.DataFrame(
        {
            "constant": np.full(n, 3.0),
            "rare": np.r_[np.zeros(99), 1.0],  # ratio 99 > 19, 2 % unique: dropped
            "skewed": np.r_[np.zeros(96), np.ones(4)],  # ratio 24, 2 %: dropped
            "binary": np.r_[np.zeros(90), np.ones(10)],  # ratio 9: kept
            "continuous": np.arange(n, dtype=float),  # 100 % unique: kept
            "spiky": np.r_[np.zeros(85), np.arange(1.0, 16.0)],  # ratio 85, 16 % unique: kept
        }
    )
    X.loc[0, "binary"] = np.nan  # ignored
    nzv = NearZeroVariance().fit(X)
    assert list(nzv.get_feature_names_out()) == ["binary", "continuous", "spiky"]
    assert nzv.freq_ratio_[1] == 99.0 and nzv.percent_unique_[1] == 2.0
    assert nzv.freq_ratio_[3] == pytest.approx(89 / 10)
    assert list(NearZeroVariance(unique_cut=20).fit(X).get_feature_names_out()) == [
        "binary",
        "continuous",
    ]


def _clusters(n=200, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": a,
            "a_twice": 2.0 * a + 0.05 * rng.normal(size=n),
            "a_noisy": a + 0.2 * rng.normal(size=n),  # r ~ 0.98 with a
            "b": b,
            "minus_b": -1.5 * b + 0.05 * rng.normal(size=n),  # negative r counts
            "c": rng.normal(size=n),
        }
    )


def test_correlation_filter_keeps_one_per_cluster():
    X = _clusters()
    f = CorrelationFilter(threshold=0.9).fit(X)
    c = f.clusters_
    assert c[0] == c[1] == c[2] and c[3] == c[4] and len({c[0], c[3], c[5]}) == 3
    # the most variable of each cluster
    assert list(f.get_feature_names_out()) == ["a_twice", "minus_b", "c"]
    y = Surv.from_arrays(np.ones(len(X), bool), np.exp(-X["a_noisy"] - 0.1 * X["b"]))
    by_outcome = CorrelationFilter(threshold=0.9, keep="relevance").fit(X, y)
    assert "a_noisy" in by_outcome.get_feature_names_out()
    spearman = CorrelationFilter(threshold=0.9, method="spearman").fit(X.assign(b=np.exp(X.b)))
    assert spearman.clusters_[3] == spearman.clusters_[4]


def test_correlation_filter_linkages_on_a_chain():
    """a~b and b~c have |r| >= 0.9, a~c does not: single linkage chains them,
    complete linkage does not."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=2000)
    b = a + 0.35 * rng.normal(size=2000)
    c = b + 0.35 * rng.normal(size=2000)
    X = np.column_stack([a, b, c])
    r = np.corrcoef(X, rowvar=False)
    assert r[0, 1] > 0.9 and r[1, 2] > 0.9 and r[0, 2] < 0.9
    assert len(set(CorrelationFilter(threshold=0.9, linkage="single").fit(X).clusters_)) == 1
    assert len(set(CorrelationFilter(threshold=0.9).fit(X).clusters_)) == 2


def test_icc_filter_from_the_long_table():
    X = pd.DataFrame(np.zeros((3, 4)), columns=["f1", "f2", "f3", "age"])
    table = pd.DataFrame(
        {
            "feature": ["f1", "f2", "f3"] * 2,
            "form": ["ICC(1,1)"] * 3 + ["ICC(3,1)"] * 3,
            "icc": [0.95, 0.80, 0.40, 0.97, 0.70, 0.50],
            "ci_low": [0.90, 0.60, 0.20, 0.93, 0.55, 0.30],
        }
    )
    keep = dict(missing="keep")
    assert list(ICCFilter(table, **keep).fit(X).get_feature_names_out()) == ["f1", "f2", "age"]
    assert list(ICCFilter(table, statistic="ci_low", **keep).fit(X).get_feature_names_out()) == [
        "f1",
        "age",
    ]
    assert list(
        ICCFilter(table, form="ICC(3,1)", missing="drop").fit(X).get_feature_names_out()
    ) == ["f1"]
    assert list(
        ICCFilter({"f1": 0.5, "f2": 0.9, "f3": 0.9, "age": 1.0}, threshold=0.9)
        .fit(X)
        .get_feature_names_out()
    ) == ["f2", "f3", "age"]
    with pytest.raises(ValueError, match="no ICC for column 'age'"):
        ICCFilter(table).fit(X)
    with pytest.raises(ValueError, match="no rows of form 'ICC\\(2,1\\)'"):
        ICCFilter(table, form="ICC(2,1)").fit(X)
    with pytest.raises(ValueError, match="column names"):
        ICCFilter(table).fit(X.to_numpy())


# ---------------------------------------------------------------------- mRMR


def _mrmr_naive(X, relevance, k):
    """mRMR from its definition, with explicit loops over candidates."""
    r = np.abs(np.corrcoef(X, rowvar=False))
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < k:
        best, best_score = None, -np.inf
        for j in range(X.shape[1]):
            if j in chosen:
                continue
            score = relevance[j] / np.mean([r[j, s] for s in chosen])
            if score > best_score:
                best, best_score = j, score
        chosen.append(best)
    return chosen


def test_mrmr_skips_redundant_copies():
    rng = np.random.default_rng(2)
    n = 300
    strong, medium = rng.normal(size=n), rng.normal(size=n)
    y = (strong + 0.6 * medium + 0.5 * rng.normal(size=n) > 0).astype(int)
    X = pd.DataFrame(
        {
            "noise": rng.normal(size=n),
            "strong": strong,
            "copy": strong + 0.05 * rng.normal(size=n),
            "medium": medium,
        }
    )
    m = MRMRSelector(n_features=2).fit(X, y)
    assert [X.columns[i] for i in m.ranking_] == ["strong", "medium"]
    from sklearn.feature_selection import f_classif

    np.testing.assert_allclose(m.relevance_, f_classif(X, y)[0])


def test_mrmr_equals_naive_definition():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 9)) @ rng.normal(size=(9, 9))
    y = X[:, 0] - X[:, 4] + rng.normal(size=120)
    m = MRMRSelector(n_features=6).fit(X, y)
    assert m.ranking_.tolist() == _mrmr_naive(X, m.relevance_, 6)
    surv = Surv.from_arrays(np.ones(120, bool), np.exp(-y))
    ms = MRMRSelector(n_features=3).fit(X, surv)
    np.testing.assert_allclose(ms.relevance_, cox_score_test(X, surv)[0])
    with pytest.raises(ValueError, match="relevance='f'"):
        MRMRSelector(relevance="mi").fit(X, surv)


# ----------------------------------------------------------------------- PCA


def test_feature_pca_is_pca_of_standardised_features():
    X, _ = _cox_data(n=80, p=5)
    X = X * [1, 10, 100, 1000, 1e4]
    pca = FeaturePCA(n_components=3).set_output(transform="pandas").fit(X)
    scores = pca.transform(X)
    reference = PCA(n_components=3).fit(StandardScaler().fit_transform(X))
    np.testing.assert_allclose(
        np.abs(scores.to_numpy()),
        np.abs(reference.transform(StandardScaler().fit_transform(X))),
        atol=1e-10,
    )
    assert list(scores.columns) == ["PC1", "PC2", "PC3"]
    assert list(pca.loadings_.index) == list(X.columns)
    assert FeaturePCA(n_components=0.9).fit(X).explained_variance_ratio_.sum() >= 0.9


@pytest.mark.parametrize(
    ("selector", "match"),
    [
        (UnivariateCoxSelector(alpha=2.0), "alpha"),
        (UnivariateCoxSelector(k=0), "k must be"),
        (CoxnetSelector(l1_ratio=0.0), "selects nothing"),
        (CorrelationFilter(keep="relevance"), "needs y"),
        (CorrelationFilter(threshold=1.5), "threshold"),
        (NearZeroVariance(freq_cut=0.5), "freq_cut"),
        (MRMRSelector(relevance="chi2"), "relevance must be one of"),
    ],
)
def test_parameter_errors(selector, match):
    X, y = _cox_data(n=30, p=3)
    with pytest.raises(ValueError, match=match):
        selector.fit(X, None if isinstance(selector, CorrelationFilter) else y)
