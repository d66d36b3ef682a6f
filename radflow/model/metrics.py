"""Performance of survival and binary models, each with a bootstrap confidence interval.

Survival targets are scikit-survival structured arrays: a boolean event
field first, then the time (months in the demo archive) — what
:func:`sksurv.util.Surv.from_arrays` builds. A *risk* is any score where
higher means earlier death (``model.predict(X)`` of every scikit-survival
model); a *survival* matrix holds S(t) of each patient at given times.

The C-indices, time-dependent AUC, Brier score, Kaplan-Meier estimator and
log-rank test are scikit-survival's; this module adds what a study reports
around them: percentile bootstrap intervals (:func:`bootstrap`), risk groups
with a median or maximally selected log-rank cut-off (:func:`risk_groups`),
and one call for the usual set (:func:`survival_metrics`,
:func:`binary_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from radflow._lazy import load
from radflow.errors import SettingsError

sklearn_metrics = load("sklearn.metrics")
sksurv_compare = load("sksurv.compare")
sksurv_metrics = load("sksurv.metrics")
sksurv_nonparametric = load("sksurv.nonparametric")

__all__ = [
    "Estimate",
    "KaplanMeier",
    "LogRank",
    "RiskGroups",
    "binary_metrics",
    "bootstrap",
    "evaluation_times",
    "harrell_c",
    "integrated_brier",
    "kaplan_meier",
    "logrank_test",
    "risk_groups",
    "roc_auc",
    "survival_metrics",
    "time_dependent_auc",
    "uno_c",
]


# -- checks -------------------------------------------------------------------


def _check_y(y, name: str = "y") -> np.ndarray:
    """A structured (event, time) array, events boolean, times finite and >= 0."""
    y = np.asarray(y)
    if y.dtype.names is None or len(y.dtype.names) != 2 or y.ndim != 1:
        raise SettingsError(
            f"{name} must be a 1-D structured array (event, time) as built by "
            f"sksurv.util.Surv.from_arrays, got dtype {y.dtype}"
        )
    event_field, time_field = y.dtype.names
    if y[event_field].dtype != bool:
        raise SettingsError(
            f"{name}: the first field {event_field!r} must be boolean (True = event)"
        )
    time = y[time_field].astype(float)
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise SettingsError(f"{name}: times in {time_field!r} must be finite and >= 0")
    return y


def _fields(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    event_field, time_field = y.dtype.names
    return y[event_field], y[time_field].astype(float)


def _check_score(score, n: int, name: str) -> np.ndarray:
    score = np.asarray(score, dtype=float)
    if score.ndim != 1 or len(score) != n:
        raise SettingsError(
            f"{name} must be 1-D with one value per patient ({n}), got shape {score.shape}"
        )
    if not np.all(np.isfinite(score)):
        raise SettingsError(f"{name} holds NaN or infinite values")
    return score


# -- estimates with intervals -------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A metric on the full sample and its percentile bootstrap interval.

    Attributes
    ----------
    value : float
        The metric on the data as given.
    low, high : float
        Percentile bootstrap interval at ``level``; NaN when fewer than 10
        resamples gave a value.
    level : float
        Coverage of the interval (0.95).
    n_boot : int
        Resamples that gave a value; resamples where the metric is undefined
        (one class only, no comparable pair, times outside follow-up) are
        dropped and not counted.
    """

    value: float
    low: float
    high: float
    level: float
    n_boot: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.3f} ({100 * self.level:g}% CI {self.low:.3f}-{self.high:.3f})"


def bootstrap(
    statistic: Callable, *arrays, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> Estimate:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling patients.

    Parameters
    ----------
    statistic : callable
        ``statistic(*arrays) -> float``. A ``ValueError`` (scikit-survival's
        ``NoComparablePairException`` is one) or a NaN on a resample marks it
        undefined; it is dropped.
    *arrays : array-like
        Same first dimension (patients); rows are drawn jointly, with
        replacement.
    n_boot : int
        Number of resamples (>= 0; 0 gives no interval).
    seed : int
        Seed of the resampling: same seed, same interval.
    level : float
        Interval coverage, in (0, 1).

    Returns
    -------
    Estimate
    """
    _check_boot(n_boot, level)
    if not arrays:
        raise SettingsError("bootstrap needs at least one array to resample")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise SettingsError(f"arrays must have the same length, got {[len(a) for a in arrays]}")
    value = float(statistic(*arrays))
    values = []
    for rows in _resamples(n, n_boot, seed):
        try:
            with np.errstate(
                invalid="ignore", divide="ignore"
            ):  # undefined resample -> NaN, dropped
                v = float(statistic(*(a[rows] for a in arrays)))
        except ValueError:
            continue
        if np.isfinite(v):
            values.append(v)
    return _interval(value, values, level)


def _check_boot(n_boot, level) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise SettingsError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise SettingsError(f"level must lie in (0, 1), got {level!r}")


def _resamples(n: int, n_boot: int, seed: int):
    """Row indices of each resample; every bootstrap in this module draws the same ones."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def _interval(value: float, values, level: float) -> Estimate:
    if len(values) < 10:
        return Estimate(value, float("nan"), float("nan"), level, len(values))
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Estimate(value, float(low), float(high), level, len(values))


def _concordance_bootstrap(y, risk, weight, *, n_boot, seed, level, tied_tol=1e-8) -> Estimate:
    """Bootstrap of a (weighted) concordance index as a quadratic form in resample counts.

    A C-index is sum_ij w_i comparable_ij score_ij / sum_ij w_i comparable_ij
    over the pairs of a sample; a resample holding patient i c_i times has
    the pair (i, j) c_i c_j times, so its C-index is (c' N c) / (c' D c) with
    N and D computed once. Pairs and ties follow scikit-survival's
    ``concordance_index_censored`` (a censoring at the time of a death counts
    as outliving it; risks within ``tied_tol`` score one half), and the rows
    drawn are those of :func:`bootstrap` with the same seed, so the interval
    is the one ``bootstrap(harrell_c, ...)`` gives, at a fraction of the cost.
    ``weight`` is 1 for Harrell's C and the squared IPCW weight for Uno's.
    """
    event, time = _fields(y)
    comparable = event[:, None] & (
        (time[:, None] < time[None, :]) | ((time[:, None] == time[None, :]) & ~event[None, :])
    )
    diff = risk[:, None] - risk[None, :]
    score = np.where(np.abs(diff) <= tied_tol, 0.5, (diff > 0).astype(float))
    den = comparable * weight[:, None]
    num = den * score
    if den.sum() <= 0:
        raise ValueError("no comparable pair: the concordance index is undefined")
    value = float(num.sum() / den.sum())
    n = len(risk)
    counts = np.zeros((n_boot, n))
    for b, rows in enumerate(_resamples(n, n_boot, seed)):
        counts[b] = np.bincount(rows, minlength=n)
    top = np.einsum("bi,ij,bj->b", counts, num, counts)
    bottom = np.einsum("bi,ij,bj->b", counts, den, counts)
    ok = bottom > 0
    return _interval(value, top[ok] / bottom[ok], level)


# -- discrimination -----------------------------------------------------------


def harrell_c(y, risk) -> float:
    """Harrell's concordance index of ``risk`` against survival ``y``.

    The fraction of comparable pairs (the shorter time is an event) where the
    patient who died first has the higher risk; ties in risk count one half.

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
    risk : array-like, shape (n,)
        Higher = earlier death.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance.

    Raises
    ------
    ValueError
        No comparable pair (``sksurv.exceptions.NoComparablePairException``).
    """
    y = _check_y(y)
    event, time = _fields(y)
    risk = _check_score(risk, len(y), "risk")
    return float(sksurv_metrics.concordance_index_censored(event, time, risk)[0])


def uno_c(y, risk, *, y_train=None, tau: float | None = None) -> float:
    """Uno's IPCW concordance index, robust to the censoring distribution.

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
        The patients scored.
    risk : array-like, shape (n,)
    y_train : structured array, optional
        Patients to estimate the censoring distribution from (default ``y``);
        ``y``'s times must lie within their follow-up.
    tau : float, optional
        Truncation time (same unit as the times); pairs are compared up to it.
    """
    y = _check_y(y)
    y_train = y if y_train is None else _check_y(y_train, "y_train")
    risk = _check_score(risk, len(y), "risk")
    return float(sksurv_metrics.concordance_index_ipcw(y_train, y, risk, tau=tau)[0])


def time_dependent_auc(y, risk, *, times, y_train=None) -> tuple[np.ndarray, float]:
    """Cumulative/dynamic AUC at ``times`` and its mean weighted by the KM estimate.

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
    risk : array-like, shape (n,)
    times : array-like
        Time points, inside the follow-up of ``y``.
    y_train : structured array, optional
        Censoring distribution (default ``y``).

    Returns
    -------
    auc : ndarray, shape (len(times),)
    mean_auc : float
    """
    y = _check_y(y)
    y_train = y if y_train is None else _check_y(y_train, "y_train")
    risk = _check_score(risk, len(y), "risk")
    auc, mean_auc = sksurv_metrics.cumulative_dynamic_auc(
        y_train, y, risk, np.asarray(times, dtype=float)
    )
    return auc, float(mean_auc)


def integrated_brier(y, survival, *, times, y_train=None) -> float:
    """Integrated Brier score of predicted survival curves (lower is better; 0.25 = coin).

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
    survival : array-like, shape (n, len(times))
        Predicted S(t) of each patient at each of ``times``.
    times : array-like
        Increasing time points inside the follow-up of ``y`` (at least two).
    y_train : structured array, optional
        Censoring distribution (default ``y``).
    """
    y = _check_y(y)
    y_train = y if y_train is None else _check_y(y_train, "y_train")
    survival = np.asarray(survival, dtype=float)
    times = np.asarray(times, dtype=float)
    if survival.shape != (len(y), len(times)):
        raise SettingsError(
            f"survival must have shape (patients, times) = {(len(y), len(times))}, "
            f"got {survival.shape}"
        )
    return float(sksurv_metrics.integrated_brier_score(y_train, y, survival, times))


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve of a binary endpoint (scikit-learn's ``roc_auc_score``).

    Returns
    -------
    float
        NaN when ``y_true`` holds one class only (the AUC is undefined).
    """
    y_true = np.asarray(y_true)
    score = _check_score(score, len(y_true), "score")
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(sklearn_metrics.roc_auc_score(y_true, score))


# -- Kaplan-Meier, log-rank, risk groups ------------------------------------


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimate: S(t) right after each distinct time.

    Attributes
    ----------
    time : ndarray
        Distinct observed times (events and censorings), increasing.
    survival : ndarray
        S(t) at those times (a right-continuous step function).
    low, high : ndarray
        Pointwise log-log confidence band at ``level``.
    level : float
    median : float
        Median survival time: the first time where S(t) <= 0.5; NaN when the
        curve never gets there.
    """

    time: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    median: float

    def at(self, times) -> np.ndarray:
        """S(t) at arbitrary ``times`` (1 before the first time)."""
        k = np.searchsorted(self.time, np.asarray(times, dtype=float), side="right")
        return np.concatenate([[1.0], self.survival])[k]


def kaplan_meier(y, *, level: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate of the survival function with a log-log band.

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
    level : float
        Confidence level of the pointwise band, in (0, 1).

    Returns
    -------
    KaplanMeier
    """
    y = _check_y(y)
    if not 0.0 < level < 1.0:
        raise SettingsError(f"level must lie in (0, 1), got {level!r}")
    event, time = _fields(y)
    t, s, band = sksurv_nonparametric.kaplan_meier_estimator(
        event, time, conf_level=level, conf_type="log-log"
    )
    below = np.flatnonzero(s <= 0.5)
    median = float(t[below[0]]) if len(below) else float("nan")
    return KaplanMeier(t, s, band[0], band[1], level, median)


@dataclass(frozen=True)
class LogRank:
    """Log-rank test of equal survival across groups.

    Attributes
    ----------
    chi2 : float
        Test statistic, chi-squared with ``df`` degrees of freedom under H0.
    df : int
        Number of groups minus one.
    p : float
    """

    chi2: float
    df: int
    p: float


def logrank_test(y, groups) -> LogRank:
    """Log-rank test (scikit-survival's ``compare_survival``).

    Parameters
    ----------
    y : structured array (event, time), shape (n,)
    groups : array-like, shape (n,)
        Group label of each patient; at least two groups.

    Returns
    -------
    LogRank
    """
    y = _check_y(y)
    groups = np.asarray(groups)
    if groups.shape != (len(y),):
        raise SettingsError(
            f"groups must be 1-D with one label per patient ({len(y)}), got shape {groups.shape}"
        )
    k = len(np.unique(groups))
    if k < 2:
        raise SettingsError("groups: the log-rank test needs at least two groups, got one")
    chi2, p = sksurv_compare.compare_survival(y, groups)
    return LogRank(float(chi2), k - 1, float(p))


@dataclass(frozen=True)
class RiskGroups:
    """Patients split into low and high risk at a cut-off of the predicted risk.

    Attributes
    ----------
    cutoff : float
        Patients with risk > cutoff are high risk.
    high : ndarray of bool, shape (n,)
    method : str
        ``"median"`` or ``"optimal"``.
    logrank : LogRank
        High vs low. With ``"optimal"`` its p-value is optimistic: the cut-off
        was chosen to make it small.
    p_adjusted : float
        ``"optimal"`` only: the p-value of the maximally selected statistic
        (Lausen & Schumacher 1992), which accounts for the search; for
        ``"median"`` equal to ``logrank.p``.
    """

    cutoff: float
    high: np.ndarray
    method: str
    logrank: LogRank
    p_adjusted: float


def _p_maxstat(statistic: float, min_fraction: float) -> float:
    """Lausen & Schumacher's (1992) bound for a maximally selected standardised statistic.

    The approximation of Miller & Siegmund (1982) for cut-points searched over
    the quantiles [min_fraction, 1 - min_fraction]; as in R's ``maxstat``
    (``pLausen92``). Lausen B, Schumacher M. Biometrics 48:73-85 (1992),
    doi:10.2307/2532740.
    """
    b, lo, hi = statistic, min_fraction, 1.0 - min_fraction
    if b <= 1.0:
        return 1.0
    phi = stats.norm.pdf(b)
    p = 4.0 * phi / b + phi * (b - 1.0 / b) * np.log(hi * (1.0 - lo) / ((1.0 - hi) * lo))
    return float(min(max(p, 0.0), 1.0))


def risk_groups(risk, y, *, method: str = "median", min_fraction: float = 0.1) -> RiskGroups:
    """Split patients into high and low risk, by the median or the best log-rank cut-off.

    Parameters
    ----------
    risk : array-like, shape (n,)
        Predicted risk (higher = earlier death).
    y : structured array (event, time), shape (n,)
    method : {"median", "optimal"}
        ``"median"``: the cut-off fixed in advance, an honest test.
        ``"optimal"``: the cut-off maximising the log-rank statistic over
        cut-offs leaving at least ``min_fraction`` of patients in each group
        (maximally selected log-rank). Its plain p-value is optimistic; use
        ``p_adjusted``, and choose the cut-off on training data only before
        applying it to test data.
    min_fraction : float
        Smallest group share searched by ``"optimal"``, in (0, 0.5).

    Returns
    -------
    RiskGroups
    """
    y = _check_y(y)
    risk = _check_score(risk, len(y), "risk")
    if method not in ("median", "optimal"):
        raise SettingsError(f"method must be 'median' or 'optimal', got {method!r}")
    if not 0.0 < min_fraction < 0.5:
        raise SettingsError(f"min_fraction must lie in (0, 0.5), got {min_fraction!r}")
    if method == "median":
        cutoff = float(np.median(risk))
        high = risk > cutoff
        if high.all() or not high.any():
            raise SettingsError("risk: all patients fall on one side of the median (constant risk)")
        test = logrank_test(y, high)
        return RiskGroups(cutoff, high, method, test, test.p)
    n = len(risk)
    best = None
    for cutoff in np.unique(risk)[:-1]:
        high = risk > cutoff
        share = high.sum() / n
        if not min_fraction <= share <= 1.0 - min_fraction:
            continue
        test = logrank_test(y, high)
        if best is None or test.chi2 > best[1].chi2:
            best = (float(cutoff), test, high)
    if best is None:
        raise SettingsError(
            f"risk: no cut-off leaves {min_fraction:g} of the patients in each group"
        )
    cutoff, test, high = best
    return RiskGroups(cutoff, high, method, test, _p_maxstat(np.sqrt(test.chi2), min_fraction))


# -- the usual report ---------------------------------------------------------


def evaluation_times(y_test, *, y_train=None, quantiles=(0.1, 0.25, 0.5, 0.75)) -> np.ndarray:
    """Time points for time-dependent AUC and Brier score: quantiles of observed event times.

    Kept strictly inside both follow-ups, where the IPCW estimators are
    defined (below the largest time of ``y_test`` and of ``y_train``).
    """
    y_test = _check_y(y_test, "y_test")
    event, time = _fields(y_test)
    if not event.any():
        raise SettingsError("y_test has no event: time-dependent metrics are undefined")
    times = np.unique(np.quantile(time[event], quantiles))
    limit = time.max()
    if y_train is not None:
        limit = min(limit, _fields(_check_y(y_train, "y_train"))[1].max())
    times = times[(times > time.min()) & (times < limit)]
    return times


def _uno_weights(y, y_train, tau) -> np.ndarray:
    """Squared IPCW weights of Uno's C, as scikit-survival's ``concordance_index_ipcw``:
    1 / G(T_i)^2 for deaths before ``tau`` (G: Kaplan-Meier of the training
    censoring), 0 otherwise."""
    cens = sksurv_nonparametric.CensoringDistributionEstimator().fit(y_train)
    keep = np.ones(len(y), bool) if tau is None else _fields(y)[1] < tau
    weight = np.zeros(len(y))
    weight[keep] = cens.predict_ipcw(y[keep])
    return np.square(weight)


def survival_metrics(
    y_test,
    risk,
    *,
    y_train,
    survival=None,
    times=None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    which=("mean_auc", "integrated_brier"),
) -> dict[str, Estimate]:
    """Harrell's and Uno's C, mean time-dependent AUC and integrated Brier score, with CIs.

    Parameters
    ----------
    y_test : structured array (event, time), shape (n,)
        The patients scored (a test fold, an institution held out).
    risk : array-like, shape (n,)
    y_train : structured array
        The training patients: the censoring distribution of the IPCW metrics.
    survival : array-like, shape (n, len(times)), optional
        Predicted S(t); without it the Brier score is not reported.
    times : array-like, optional
        Default :func:`evaluation_times`.
    n_boot, seed, level
        Bootstrap of the test patients (see :func:`bootstrap`).
    which : sequence of str
        Slower metrics to add to the two C-indices: ``"mean_auc"``,
        ``"integrated_brier"`` (each costs about ``n_boot`` scikit-survival
        calls; the C-indices are bootstrapped in closed form).

    Returns
    -------
    dict
        ``harrell_c``, ``uno_c``, ``mean_auc`` and, with ``survival``,
        ``integrated_brier``: each an :class:`Estimate`. A metric undefined on
        these patients is absent.
    """
    y_test = _check_y(y_test, "y_test")
    y_train = _check_y(y_train, "y_train")
    risk = _check_score(risk, len(y_test), "risk")
    if times is None:
        times = evaluation_times(y_test, y_train=y_train)
    times = np.asarray(times, dtype=float)
    kw = dict(n_boot=n_boot, seed=seed, level=level)
    out = {}

    def _try(name, fn, *arrays):
        try:
            out[name] = bootstrap(fn, *arrays, **kw)
        except ValueError:  # undefined on the full sample: no comparable pair, no event ...
            pass

    _check_boot(n_boot, level)
    try:
        out["harrell_c"] = _concordance_bootstrap(y_test, risk, np.ones(len(risk)), **kw)
    except ValueError:
        pass
    tau = times.max() if len(times) else None
    try:
        out["uno_c"] = _concordance_bootstrap(
            y_test, risk, _uno_weights(y_test, y_train, tau), **kw
        )
    except ValueError:
        pass
    if "mean_auc" in which and len(times):
        _try(
            "mean_auc",
            lambda y, r: time_dependent_auc(y, r, times=times, y_train=y_train)[1],
            y_test,
            risk,
        )
    if "integrated_brier" in which and survival is not None and len(times) >= 2:
        survival = np.asarray(survival, dtype=float)
        _try(
            "integrated_brier",
            lambda y, s: integrated_brier(y, s, times=times, y_train=y_train),
            y_test,
            survival,
        )
    return out


def binary_metrics(
    y_true, score, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Estimate]:
    """ROC AUC of a binary endpoint with its bootstrap interval: ``{"roc_auc": Estimate}``."""
    return {
        "roc_auc": bootstrap(
            roc_auc,
            np.asarray(y_true),
            np.asarray(score, dtype=float),
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
    }
