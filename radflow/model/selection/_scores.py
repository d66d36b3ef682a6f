"""Scores of each feature against a target: the univariate Cox score test, |r|, relevance."""

from __future__ import annotations

import numpy as np
from scipy import stats

from radflow._config import Rule, check_value
from radflow._lazy import load
from radflow.model.selection._base import (
    _WORDING,
    _require_survival,
    _standardize,
    _survival,
    _target,
)

feature_selection = load("sklearn.feature_selection")
multiclass = load("sklearn.utils.multiclass")

__all__ = ["cox_score_test"]

_TIES = Rule("str", choices=("efron", "breslow"))


def cox_score_test(X, y, *, ties: str = "efron"):
    """Univariate Cox proportional-hazards score (log-rank) test of each column.

    The score statistic ``U(0)^2 / I(0)`` of the partial likelihood of the
    one-covariate model ``h(t | x) = h0(t) exp(beta x)`` at ``beta = 0``,
    computed for all columns at once (no model fitting); chi-square with one
    degree of freedom under ``beta = 0``. For a binary covariate without
    tied event times it equals the log-rank statistic.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
        Covariates (any unit: the statistic does not depend on it).
    y : structured array, shape (n_samples,)
        Event indicator and time (``sksurv.util.Surv.from_arrays``).
    ties : {"efron", "breslow"}, default="efron"
        Handling of tied event times (Efron's approximation, the default of
        lifelines and R's ``coxph``, or Breslow's).

    Returns
    -------
    statistic : ndarray, shape (n_features,)
        Score chi-square; NaN for a column constant over the risk sets
        (undefined).
    p_value : ndarray, shape (n_features,)

    References
    ----------
    Efron B. The efficiency of Cox's likelihood function for censored data.
    J Am Stat Assoc 1977;72(359):557-565. doi:10.1080/01621459.1977.10480613
    """
    check_value(_TIES, ties, "cox_score_test: ties", wording=_WORDING)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"cox_score_test: X must be 2-D, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("cox_score_test: X has missing or infinite values")
    event, time = _require_survival(y, "cox_score_test")
    _target(X, event, "cox_score_test")
    # Centred and scaled (the statistic is invariant), so the moments below
    # do not lose digits to large feature means (HU, volumes in mm^3).
    X = _standardize(X)

    order = np.argsort(time, kind="stable")
    t, x, e = time[order], X[order], event[order].astype(float)
    times = np.unique(t[e > 0])
    lo, hi = np.searchsorted(t, times, "left"), np.searchsorted(t, times, "right")

    def suffix(a):  # suffix[i] = sum over rows i.. (the risk set of time t[i])
        return np.concatenate([np.cumsum(a[::-1], axis=0)[::-1], np.zeros((1,) + a.shape[1:])])

    def prefix(a):  # prefix[hi] - prefix[lo] = sum over rows lo..hi-1
        return np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])

    n_risk = len(t) - lo
    s1_risk, s2_risk = suffix(x)[lo], suffix(x * x)[lo]
    pe, p1, p2 = prefix(e), prefix(x * e[:, None]), prefix(x * x * e[:, None])
    deaths = (pe[hi] - pe[lo]).round().astype(int)
    s1_dead, s2_dead = p1[hi] - p1[lo], p2[hi] - p2[lo]

    # One term per death: Efron removes the fraction l/d of the tied deaths.
    term = np.repeat(np.arange(len(times)), deaths)
    rank = np.arange(len(term)) - np.repeat(np.cumsum(deaths) - deaths, deaths)
    frac = rank / deaths[term] if ties == "efron" else np.zeros(len(term))
    size = n_risk[term] - frac * deaths[term]
    mean = (s1_risk[term] - frac[:, None] * s1_dead[term]) / size[:, None]
    second = (s2_risk[term] - frac[:, None] * s2_dead[term]) / size[:, None]
    score = s1_dead.sum(axis=0) - mean.sum(axis=0)
    information = (second - mean**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.where(information > 1e-12 * len(term), score**2 / information, np.nan)
    return statistic, stats.chi2.sf(statistic, 1)


def _abs_correlation(X: np.ndarray, method: str = "pearson") -> np.ndarray:
    """|r| between columns; 0 where a column is constant (r undefined)."""
    if method == "spearman":
        X = stats.rankdata(X, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(X, rowvar=False) if X.shape[1] > 1 else np.ones((1, 1))
    r = np.abs(np.nan_to_num(np.atleast_2d(r), nan=0.0))
    np.fill_diagonal(r, 1.0)
    return r


def _relevance(X: np.ndarray, y, method: str, random_state=None) -> np.ndarray:
    """Association of each column with the target (larger = stronger).

    ``method="f"``: the Cox score statistic (survival), the ANOVA F (classes)
    or the regression F (continuous target); ``"mi"``: mutual information
    (classes or continuous target only). NaN (undefined, constant column)
    becomes 0.
    """
    if _survival(y) is not None:
        if method != "f":
            raise ValueError(
                f"relevance={method!r} needs a class or continuous target; "
                "use relevance='f' (Cox score test) for survival"
            )
        score = cox_score_test(X, y)[0]
    else:
        kind = multiclass.type_of_target(y, raise_unknown=True)
        classes = kind in ("binary", "multiclass")
        if kind not in ("binary", "multiclass", "continuous"):
            raise ValueError(
                f"cannot rank features against a {kind} target (a class, "
                "continuous or survival target is needed)"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "f":
                score = (
                    feature_selection.f_classif if classes else feature_selection.f_regression
                )(X, y)[0]
            else:
                mi = (
                    feature_selection.mutual_info_classif
                    if classes
                    else feature_selection.mutual_info_regression
                )
                score = mi(X, y, random_state=random_state)
    return np.nan_to_num(np.asarray(score, dtype=float), nan=0.0)
