"""radflow.model.metrics against independent implementations and textbook tables.

Oracles: brute-force pair counts written here from the definitions, lifelines
(``concordance_index``, ``KaplanMeierFitter``, ``logrank_test``), scipy's
Mann-Whitney U, and the 6-MP leukaemia trial of Freireich et al. (1963) as
tabulated by Kleinbaum & Klein, *Survival Analysis: A Self-Learning Text*
(3rd ed., ch. 2: KM table of the 6-MP group; log-rank chi2 = 16.79).
"""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

from radflow.errors import SettingsError
from radflow.model import metrics

# Freireich 6-MP trial, remission times in weeks; 0 = censored.
MP_TIME = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PLACEBO_TIME = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def _mp_trial():
    time = np.array(MP_TIME + PLACEBO_TIME, dtype=float)
    event = np.array(MP_EVENT + [1] * len(PLACEBO_TIME), dtype=bool)
    group = np.array([0] * len(MP_TIME) + [1] * len(PLACEBO_TIME))
    return Surv.from_arrays(event, time), group


def _random_survival(n, seed, *, censor=True, ties=True):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    time = rng.exponential(np.exp(-risk))
    if ties:  # rounding makes tied times and tied risks, the cases that need care
        time, risk = np.round(time, 1) + 0.1, np.round(risk, 1)
    event = rng.random(n) < 0.7 if censor else np.ones(n, bool)
    return Surv.from_arrays(event, time), risk + rng.normal(0, 0.8, n)


def _brute_harrell(time, event, risk):
    """Harrell's C from its definition: pairs where the shorter time is an event.

    A patient censored at the very time of another's death is taken to have
    outlived it (Harrell's convention); two deaths at one time are not comparable.
    """
    concordant = comparable = 0.0
    for i in range(len(time)):
        for j in range(len(time)):
            if event[i] and (time[i] < time[j] or (time[i] == time[j] and not event[j])):
                comparable += 1
                concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return concordant / comparable


def test_harrell_c_matches_pair_count_and_lifelines():
    from lifelines.utils import concordance_index

    for seed in range(3):
        y, risk = _random_survival(40, seed)
        risk = np.round(risk, 1)  # tied risks
        got = metrics.harrell_c(y, risk)
        assert got == pytest.approx(_brute_harrell(y["time"], y["event"], risk), abs=1e-12)
        # lifelines scores concordance of predicted *survival*: pass -risk.
        assert got == pytest.approx(concordance_index(y["time"], -risk, y["event"]), abs=1e-12)


def test_uno_c_equals_harrell_without_censoring():
    """With no censoring every IPCW weight is 1 and Uno's C is Harrell's C."""
    y, risk = _random_survival(50, 7, censor=False, ties=False)
    assert metrics.uno_c(y, risk) == pytest.approx(_brute_harrell(y["time"], y["event"], risk))


def test_time_dependent_auc_matches_definition_without_censoring():
    """AUC(t) = P(risk_i > risk_j | T_i <= t < T_j) when nobody is censored."""
    y, risk = _random_survival(60, 3, censor=False, ties=False)
    times = np.quantile(y["time"], [0.25, 0.5])
    auc, _ = metrics.time_dependent_auc(y, risk, times=times)
    for t, a in zip(times, auc):
        cases, controls = risk[y["time"] <= t], risk[y["time"] > t]
        expected = np.mean(cases[:, None] > controls[None, :])
        assert a == pytest.approx(expected)


def test_integrated_brier_matches_definition_without_censoring():
    y, _ = _random_survival(40, 5, censor=False, ties=False)
    times = np.quantile(y["time"], [0.1, 0.3, 0.5, 0.7])
    rng = np.random.default_rng(0)
    surv = np.sort(rng.random((40, 4)), axis=1)[:, ::-1]
    brier = [
        np.mean(((y["time"] > t).astype(float) - surv[:, k]) ** 2) for k, t in enumerate(times)
    ]
    expected = np.trapezoid(brier, times) / (times[-1] - times[0])
    assert metrics.integrated_brier(y, surv, times=times) == pytest.approx(expected)


def test_kaplan_meier_textbook_table_and_lifelines():
    from lifelines import KaplanMeierFitter

    y, group = _mp_trial()
    km = metrics.kaplan_meier(y[group == 0])
    # Kleinbaum & Klein, table of S(t) for the 6-MP group at its event times.
    table = {6: 0.8571, 7: 0.8067, 10: 0.7529, 13: 0.6902, 16: 0.6275, 22: 0.5378, 23: 0.4482}
    for t, s in table.items():
        assert km.at(t) == pytest.approx(s, abs=1e-4)
    assert km.median == 23.0
    fitter = KaplanMeierFitter().fit(y["time"], y["event"])
    both = metrics.kaplan_meier(y)
    expected = fitter.survival_function_at_times(both.time).to_numpy()
    np.testing.assert_allclose(both.survival, expected, atol=1e-12)
    # The log-log band of lifelines is Kalbfleisch-Prentice's too.
    band = fitter.confidence_interval_survival_function_.loc[both.time].to_numpy()
    np.testing.assert_allclose(both.low, band[:, 0], atol=1e-6)
    np.testing.assert_allclose(both.high, band[:, 1], atol=1e-6)


def test_logrank_textbook_value_and_lifelines():
    from lifelines.statistics import logrank_test

    y, group = _mp_trial()
    result = metrics.logrank_test(y, group)
    assert result.chi2 == pytest.approx(16.79, abs=0.005)
    assert result.df == 1
    ll = logrank_test(
        y["time"][group == 0], y["time"][group == 1], y["event"][group == 0], y["event"][group == 1]
    )
    assert result.chi2 == pytest.approx(ll.test_statistic, rel=1e-9)
    assert result.p == pytest.approx(ll.p_value, rel=1e-9)


def test_risk_groups_median_and_maximally_selected():
    y, risk = _random_survival(80, 11)
    median = metrics.risk_groups(risk, y, method="median")
    assert median.high.sum() == (risk > np.median(risk)).sum()
    assert median.p_adjusted == median.logrank.p

    best = metrics.risk_groups(risk, y, method="optimal", min_fraction=0.2)
    # The search maximises the statistic: no admissible cut-off does better.
    chi2 = [
        metrics.logrank_test(y, risk > c).chi2
        for c in np.unique(risk)[:-1]
        if 0.2 <= np.mean(risk > c) <= 0.8
    ]
    assert best.logrank.chi2 == pytest.approx(max(chi2))
    assert best.logrank.chi2 >= median.logrank.chi2
    np.testing.assert_array_equal(best.high, risk > best.cutoff)
    # The selection is paid for: the adjusted p-value exceeds the naive one.
    assert best.p_adjusted > best.logrank.p


def test_maxstat_p_value_hand_worked():
    """Lausen & Schumacher (1992) at b = 3, 10%-90% search:
    4 phi(3)/3 + phi(3) (3 - 1/3) ln(81) = 0.005909 + 0.051936 = 0.057845."""
    assert metrics._p_maxstat(3.0, 0.1) == pytest.approx(0.057845, abs=2e-6)


def test_roc_auc_is_mann_whitney():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(2)
    label = rng.random(70) < 0.4
    score = rng.normal(size=70) + label
    u = mannwhitneyu(score[label], score[~label]).statistic
    assert metrics.roc_auc(label, score) == pytest.approx(u / (label.sum() * (~label).sum()))


def test_bootstrap_percentile_interval_of_a_mean():
    """For a mean the percentile interval approaches mean +- 1.96 sd / sqrt(n)."""
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 2.0, 400)
    est = metrics.bootstrap(np.mean, x, n_boot=2000, seed=3)
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert est.value == x.mean()
    assert est.low == pytest.approx(x.mean() - half, abs=0.04)
    assert est.high == pytest.approx(x.mean() + half, abs=0.04)
    assert est == metrics.bootstrap(np.mean, x, n_boot=2000, seed=3)  # seeded
    assert est != metrics.bootstrap(np.mean, x, n_boot=2000, seed=4)
    assert np.isnan(metrics.bootstrap(np.mean, x, n_boot=0).low)


def test_bootstrap_drops_undefined_resamples():
    label = np.array([1] + [0] * 19)  # most resamples lack the positive
    est = metrics.bootstrap(metrics.roc_auc, label, np.arange(20.0), n_boot=200, seed=0)
    assert 10 <= est.n_boot < 200


def test_survival_metrics_report():
    y, risk = _random_survival(120, 4)
    times = metrics.evaluation_times(y)
    surv = np.exp(-np.outer(np.exp(risk), times) / 3.0)
    out = metrics.survival_metrics(y, risk, y_train=y, survival=surv, times=times, n_boot=50)
    assert set(out) == {"harrell_c", "uno_c", "mean_auc", "integrated_brier"}
    for est in out.values():
        assert est.low <= est.value <= est.high and est.n_boot > 40
    assert out["harrell_c"].value == metrics.harrell_c(y, risk)
    assert "CI" in str(out["harrell_c"])


def test_input_errors_name_the_parameter():
    y, risk = _random_survival(10, 0)
    with pytest.raises(SettingsError, match="structured array"):
        metrics.harrell_c(y["time"], risk)
    with pytest.raises(SettingsError, match="risk must be 1-D"):
        metrics.harrell_c(y, risk[:5])
    with pytest.raises(SettingsError, match="NaN"):
        metrics.harrell_c(y, np.full(10, np.nan))
    with pytest.raises(SettingsError, match="method"):
        metrics.risk_groups(risk, y, method="tertiles")
    with pytest.raises(SettingsError, match="two groups"):
        metrics.logrank_test(y, np.zeros(10))
    with pytest.raises(SettingsError, match="n_boot"):
        metrics.bootstrap(np.mean, risk, n_boot=-1)


def test_closed_form_c_index_bootstrap_equals_resampling():
    """survival_metrics bootstraps the C-indices as quadratic forms of resample
    counts; the intervals must be those of resampling and calling sksurv."""
    y, risk = _random_survival(60, 9)
    risk = np.round(risk, 1)
    times = metrics.evaluation_times(y)
    y_train, _ = _random_survival(80, 10)
    out = metrics.survival_metrics(
        y, risk, y_train=y_train, times=times, n_boot=60, seed=2, which=()
    )
    assert set(out) == {"harrell_c", "uno_c"}
    assert out["harrell_c"] == metrics.bootstrap(metrics.harrell_c, y, risk, n_boot=60, seed=2)
    uno = metrics.bootstrap(
        lambda a, b: metrics.uno_c(a, b, y_train=y_train, tau=times.max()),
        y,
        risk,
        n_boot=60,
        seed=2,
    )
    for field in ("value", "low", "high"):
        assert getattr(out["uno_c"], field) == pytest.approx(getattr(uno, field), abs=1e-12)
    assert out["uno_c"].n_boot == uno.n_boot
