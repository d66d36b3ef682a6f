"""Feature selection transformers for radiomics pipelines.

Every selector follows scikit-learn's conventions: ``__init__`` stores its
keyword arguments, ``fit`` validates and learns (on the training fold only,
inside a cross-validation), learned state ends in ``_``, ``transform`` keeps
the chosen columns, ``get_feature_names_out`` names them, and
``set_output(transform="pandas")`` keeps DataFrames (with their column names)
through a :class:`~sklearn.pipeline.Pipeline`.

Survival targets are scikit-survival structured arrays (event indicator,
time), as made by :func:`sksurv.util.Surv.from_arrays`; binary endpoints are
0/1 (or two-class) arrays.

=============================  ==============================================
selector                       keeps
=============================  ==============================================
:class:`ICCFilter`             features whose stability ICC >= threshold
:class:`NearZeroVariance`      features that are not (near) constant
:class:`CorrelationFilter`     one feature per cluster of |r| >= threshold
:class:`UnivariateCoxSelector` features whose Cox score test p <= alpha (or top k)
:class:`CoxnetSelector`        non-zero coefficients of a LASSO/elastic-net Cox
:class:`L1LogisticSelector`    non-zero coefficients of an L1 logistic model
:class:`ForestImportanceSelector`  the most important features of a random (survival) forest
:class:`MRMRSelector`          max-relevance min-redundancy ranking, first k
:class:`FeaturePCA`            (a projection, not a selection) named components
=============================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import (SelectorMixin, f_classif, f_regression,
                                       mutual_info_classif, mutual_info_regression)
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "CorrelationFilter",
    "CoxnetSelector",
    "FeaturePCA",
    "ForestImportanceSelector",
    "ICCFilter",
    "L1LogisticSelector",
    "MRMRSelector",
    "NearZeroVariance",
    "UnivariateCoxSelector",
    "cox_score_test",
]


# ----------------------------------------------------------------- shared pieces


def _survival(y):
    """``(event, time)`` if ``y`` is a structured survival array, else None."""
    if isinstance(y, np.ndarray) and y.dtype.names is not None and len(y.dtype.names) == 2:
        from sksurv.util import check_y_survival

        return check_y_survival(y)
    return None


def _require_survival(y, who: str):
    if y is None:
        raise ValueError(f"{who}: fit needs a survival target y (a structured array from "
                         "sksurv.util.Surv.from_arrays)")
    surv = _survival(y)
    if surv is None:
        raise ValueError(f"{who}: y must be a structured survival array (event, time), "
                         f"e.g. sksurv.util.Surv.from_arrays; got {type(y).__name__}")
    return surv


def _target(X, y, who: str):
    """``y`` as an array (survival: structured) with as many samples as ``X``."""
    if y is None:
        raise ValueError(f"{who} requires y to be passed, but the target y is None")
    if _survival(y) is None:
        y = np.asarray(y)
    if len(y) != X.shape[0]:
        raise ValueError(f"{who}: y has {len(y)} samples, X has {X.shape[0]}")
    return y


def _standardize(X: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance (constant columns only centred)."""
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


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
            raise ValueError(f"relevance={method!r} needs a class or continuous target; "
                             "use relevance='f' (Cox score test) for survival")
        score = cox_score_test(X, y)[0]
    else:
        kind = type_of_target(y, raise_unknown=True)
        classes = kind in ("binary", "multiclass")
        if kind not in ("binary", "multiclass", "continuous"):
            raise ValueError(f"cannot rank features against a {kind} target (a class, "
                             "continuous or survival target is needed)")
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "f":
                score = (f_classif if classes else f_regression)(X, y)[0]
            else:
                mi = mutual_info_classif if classes else mutual_info_regression
                score = mi(X, y, random_state=random_state)
    return np.nan_to_num(np.asarray(score, dtype=float), nan=0.0)


def _check_choice(who: str, name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{who}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")


def _check_number(who, name, value, *, low=None, high=None, integer=False, none=False):
    if value is None and none:
        return
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind) \
            or (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{who}: {name} must be {'an integer' if integer else 'a number'} "
                         f"{bounds}, got {value!r}")


def _top(score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest scores (ties to the earlier column)."""
    mask = np.zeros(score.shape, dtype=bool)
    mask[np.argsort(-score, kind="stable")[:k]] = True
    return mask


class _Selector(SelectorMixin, BaseEstimator):
    """A selector whose fit sets ``support_``."""

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class _SurvivalSelector(_Selector):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# ------------------------------------------------------------ Cox score test


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
    _check_choice("cox_score_test", "ties", ties, ("efron", "breslow"))
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
    information = (second - mean ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.where(information > 1e-12 * len(term), score ** 2 / information, np.nan)
    return statistic, stats.chi2.sf(statistic, 1)


# ------------------------------------------------------------------ filters


class ICCFilter(_Selector):
    """Keep features whose stability (ICC) reaches a threshold.

    Parameters
    ----------
    icc : mapping, pandas.Series or pandas.DataFrame
        ICC per feature: ``{column: value}``, a Series indexed by column, or
        the long table of :func:`radflow.model.icc.icc` (columns
        ``feature, form, icc, ci_low, ...``), from which ``form`` and
        ``statistic`` pick the value. Feature names must equal the column
        names of ``X``.
    threshold : float, default=0.75
        Minimum ICC kept (0.75: "good" reliability, Koo & Li 2016).
    form : str, default="ICC(1,1)"
        Form used from a long table. ICC(1,1) is the usual choice for
        perturbation studies, where the perturbations are random draws
        (Zwanenburg et al. 2019).
    statistic : {"icc", "ci_low"}, default="icc"
        Compare the point estimate, or the lower 95% confidence bound (the
        stricter rule of Koo & Li), with the threshold.
    missing : {"error", "keep", "drop"}, default="error"
        What to do with a column that has no ICC (e.g. a clinical variable).

    Attributes
    ----------
    icc_ : ndarray, shape (n_features_in_,)
        The value compared for each input column (NaN where missing).
    support_ : ndarray of bool

    References
    ----------
    Koo TK, Li MY. A guideline of selecting and reporting intraclass
    correlation coefficients for reliability research. J Chiropr Med
    2016;15(2):155-163. doi:10.1016/j.jcm.2016.02.012

    Zwanenburg A, Leger S, Agolli L, et al. Assessing robustness of radiomic
    features by image perturbation. Sci Rep 2019;9:614.
    doi:10.1038/s41598-018-36938-4
    """

    def __init__(self, icc=None, *, threshold=0.75, form="ICC(1,1)", statistic="icc",
                 missing="error"):
        self.icc = icc
        self.threshold = threshold
        self.form = form
        self.statistic = statistic
        self.missing = missing

    def fit(self, X, y=None):
        """Look up the ICC of each column of ``X`` and mark those kept."""
        who = "ICCFilter"
        _check_choice(who, "statistic", self.statistic, ("icc", "ci_low"))
        _check_choice(who, "missing", self.missing, ("error", "keep", "drop"))
        _check_number(who, "threshold", self.threshold, low=-1.0, high=1.0)
        X = validate_data(self, X, ensure_all_finite="allow-nan")
        values = self._lookup()
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            raise ValueError("ICCFilter: X must be a DataFrame whose column names match the "
                             "ICC table's features")
        self.icc_ = np.array([values.get(c, np.nan) for c in names], dtype=float)
        absent = np.isnan(self.icc_)
        if absent.any() and self.missing == "error":
            raise ValueError(f"ICCFilter: no ICC for column {names[absent][0]!r} "
                             f"({absent.sum()} such); pass missing='keep' or 'drop'")
        self.support_ = np.where(absent, self.missing == "keep", self.icc_ >= self.threshold)
        return self

    def _lookup(self) -> dict:
        table = self.icc
        if isinstance(table, pd.DataFrame):
            need = {"feature", "form", self.statistic}
            if not need <= set(table.columns):
                raise ValueError(f"ICCFilter: the ICC table needs columns {sorted(need)}, "
                                 f"has {list(table.columns)}")
            rows = table[table["form"] == self.form]
            if rows.empty:
                raise ValueError(f"ICCFilter: no rows of form {self.form!r} in the ICC table "
                                 f"(forms: {sorted(table['form'].unique())})")
            if rows["feature"].duplicated().any():
                raise ValueError("ICCFilter: the ICC table has two rows for feature "
                                 f"{rows['feature'][rows['feature'].duplicated()].iloc[0]!r}")
            return dict(zip(rows["feature"], rows[self.statistic].astype(float)))
        if isinstance(table, (pd.Series, Mapping)):
            if self.statistic != "icc":
                raise ValueError("ICCFilter: statistic='ci_low' needs the long ICC table")
            return {k: float(v) for k, v in dict(table).items()}
        raise ValueError("ICCFilter: icc must be a mapping, Series or long DataFrame of ICCs, "
                         f"got {type(table).__name__}")


class NearZeroVariance(_Selector):
    """Drop constant and near-constant features (caret's ``nearZeroVar`` rule).

    A feature is near-zero-variance when its most frequent value is more
    than ``freq_cut`` times as frequent as the second most frequent one and
    its distinct values are at most ``unique_cut`` percent of the samples; a
    feature with a single value is always dropped. Missing values are
    ignored (a column with no value is dropped).

    Parameters
    ----------
    freq_cut : float, default=95/5
        Ratio of the two most common values' counts above which a feature
        may be near-zero-variance.
    unique_cut : float, default=10
        Percentage of distinct values at or below which it may be.

    Attributes
    ----------
    freq_ratio_, percent_unique_ : ndarray, shape (n_features_in_,)
    support_ : ndarray of bool

    References
    ----------
    Kuhn M. Building predictive models in R using the caret package. J Stat
    Softw 2008;28(5):1-26. doi:10.18637/jss.v028.i05
    """

    def __init__(self, *, freq_cut=95 / 5, unique_cut=10.0):
        self.freq_cut = freq_cut
        self.unique_cut = unique_cut

    def fit(self, X, y=None):
        """Compute the frequency ratio and percent unique of each column."""
        _check_number("NearZeroVariance", "freq_cut", self.freq_cut, low=1.0)
        _check_number("NearZeroVariance", "unique_cut", self.unique_cut, low=0.0, high=100.0)
        X = validate_data(self, X, ensure_all_finite="allow-nan")
        p = X.shape[1]
        self.freq_ratio_, self.percent_unique_ = np.empty(p), np.empty(p)
        constant = np.zeros(p, dtype=bool)
        for j in range(p):
            column = X[:, j][~np.isnan(X[:, j])]
            counts = np.sort(np.unique(column, return_counts=True)[1])[::-1]
            constant[j] = len(counts) <= 1
            self.freq_ratio_[j] = counts[0] / counts[1] if len(counts) > 1 else np.inf
            self.percent_unique_[j] = 100.0 * len(counts) / len(X)
        near = (self.freq_ratio_ > self.freq_cut) & (self.percent_unique_ <= self.unique_cut)
        self.support_ = ~(constant | near)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class CorrelationFilter(_Selector):
    """Keep one feature of each cluster of highly correlated features.

    Features are clustered hierarchically on the distance ``1 - |r|`` and
    the tree is cut at ``1 - threshold``. With complete linkage (default)
    every two features of a cluster have ``|r| >= threshold``, so the one
    kept stands for each one dropped; with single linkage no two kept
    features have ``|r| >= threshold``.

    Parameters
    ----------
    threshold : float, default=0.9
        |r| at or above which features are redundant.
    method : {"pearson", "spearman"}, default="pearson"
    linkage : {"complete", "single", "average"}, default="complete"
    keep : {"variance", "relevance"}, default="variance"
        Which feature of a cluster to keep: the one with the largest
        variance as given (compare it on a common scale, e.g. features of
        one unit), or the one most associated with the target ``y`` (Cox
        score statistic for survival, F statistic otherwise). Ties go to the
        earlier column.

    Attributes
    ----------
    clusters_ : ndarray of int, shape (n_features_in_,)
        Cluster label of each input column (1-based).
    support_ : ndarray of bool
    """

    def __init__(self, *, threshold=0.9, method="pearson", linkage="complete", keep="variance"):
        self.threshold = threshold
        self.method = method
        self.linkage = linkage
        self.keep = keep

    def fit(self, X, y=None):
        """Cluster the columns and choose one per cluster."""
        who = "CorrelationFilter"
        _check_number(who, "threshold", self.threshold, low=0.0, high=1.0)
        _check_choice(who, "method", self.method, ("pearson", "spearman"))
        _check_choice(who, "linkage", self.linkage, ("complete", "single", "average"))
        _check_choice(who, "keep", self.keep, ("variance", "relevance"))
        X = validate_data(self, X)
        if self.keep == "relevance":
            if y is None:
                raise ValueError("CorrelationFilter: keep='relevance' needs y in fit")
            y = _target(X, y, who)
            merit = _relevance(X, y, "f")
        else:
            merit = X.var(axis=0)
        p = X.shape[1]
        if p == 1:
            self.clusters_ = np.ones(1, dtype=int)
        else:
            distance = np.clip(1.0 - _abs_correlation(X, self.method), 0.0, 1.0)
            np.fill_diagonal(distance, 0.0)
            tree = linkage(squareform(distance, checks=False), method=self.linkage)
            self.clusters_ = fcluster(tree, t=1.0 - self.threshold, criterion="distance")
        self.support_ = np.zeros(p, dtype=bool)
        for label in np.unique(self.clusters_):
            members = np.flatnonzero(self.clusters_ == label)
            self.support_[members[np.argmax(merit[members])]] = True
        return self


# ---------------------------------------------------------- survival selectors


class UnivariateCoxSelector(_SurvivalSelector):
    """Keep features significant in a univariate Cox score test, or the top k.

    Parameters
    ----------
    alpha : float, default=0.05
        Keep features with p-value (or Benjamini-Hochberg adjusted p-value
        when ``fdr``) at most ``alpha``. Ignored when ``k`` is given.
    k : int, optional
        Keep the ``k`` features with the largest score statistic instead.
    fdr : bool, default=False
        Adjust the p-values for the false discovery rate (Benjamini-Hochberg).
    ties : {"efron", "breslow"}, default="efron"

    Attributes
    ----------
    statistic_, pvalues_ : ndarray, shape (n_features_in_,)
        Score chi-square and p-value (unadjusted) of each column;
        :func:`cox_score_test`.
    support_ : ndarray of bool
    """

    def __init__(self, *, alpha=0.05, k=None, fdr=False, ties="efron"):
        self.alpha = alpha
        self.k = k
        self.fdr = fdr
        self.ties = ties

    def fit(self, X, y=None):
        """Score each column of ``X`` against the survival target ``y``."""
        who = "UnivariateCoxSelector"
        _check_number(who, "alpha", self.alpha, low=0.0, high=1.0)
        _check_number(who, "k", self.k, low=1, integer=True, none=True)
        X = validate_data(self, X)
        _require_survival(y, who)
        self.statistic_, self.pvalues_ = cox_score_test(X, y, ties=self.ties)
        if self.k is not None:
            self.support_ = _top(np.nan_to_num(self.statistic_, nan=-np.inf), self.k)
        else:
            p = np.nan_to_num(self.pvalues_, nan=1.0)
            if self.fdr:
                p = stats.false_discovery_control(p)
            self.support_ = p <= self.alpha
        return self


class CoxnetSelector(_SurvivalSelector):
    """Keep the features with non-zero coefficients in a LASSO / elastic-net Cox model.

    The model is :class:`sksurv.linear_model.CoxnetSurvivalAnalysis` on the
    standardised features. The penalty ``alpha`` is given, or the least
    penalised one of the path keeping at most ``max_features``, or chosen by
    cross-validation (Harrell's C on held-out folds stratified by event).

    Parameters
    ----------
    l1_ratio : float, default=1.0
        1 = LASSO; in (0, 1) the elastic net.
    alpha : float, optional
        Penalty; default: chosen by ``max_features`` or cross-validation.
    max_features : int, optional
        Choose the smallest ``alpha`` of the path with at most this many
        non-zero coefficients.
    n_alphas : int, default=100
        Length of the path.
    alpha_min_ratio : float or "auto", default="auto"
        Smallest over largest alpha of the path.
    cv : int, default=5
        Folds of the cross-validation.
    random_state : int, optional
        Shuffling of the folds.

    Attributes
    ----------
    alpha_ : float
        The penalty used.
    coef_ : ndarray, shape (n_features_in_,)
        Coefficients at ``alpha_``, per standard deviation of each feature.
    alphas_ : ndarray
        The path (descending).
    cv_scores_ : ndarray
        Mean held-out C-index along the path, for the alphas every fold's
        path reached (cross-validation only).
    support_ : ndarray of bool
    """

    def __init__(self, *, l1_ratio=1.0, alpha=None, max_features=None, n_alphas=100,
                 alpha_min_ratio="auto", cv=5, random_state=None):
        self.l1_ratio = l1_ratio
        self.alpha = alpha
        self.max_features = max_features
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.cv = cv
        self.random_state = random_state

    def _model(self, alphas=None):
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        return CoxnetSurvivalAnalysis(l1_ratio=self.l1_ratio, alphas=alphas,
                                      n_alphas=self.n_alphas,
                                      alpha_min_ratio=self.alpha_min_ratio)

    def fit(self, X, y=None):
        """Fit the penalised Cox path and keep the non-zero coefficients."""
        from sklearn.model_selection import StratifiedKFold
        from sksurv.metrics import concordance_index_censored

        who = "CoxnetSelector"
        _check_number(who, "l1_ratio", self.l1_ratio, low=0.0, high=1.0)
        if self.l1_ratio == 0:
            raise ValueError("CoxnetSelector: l1_ratio=0 (ridge) selects nothing; use > 0")
        _check_number(who, "alpha", self.alpha, low=0.0, none=True)
        _check_number(who, "max_features", self.max_features, low=1, integer=True, none=True)
        _check_number(who, "cv", self.cv, low=2, integer=True)
        X = validate_data(self, X)
        event, time = _require_survival(y, who)
        Z = _standardize(X)
        if self.alpha is not None:
            self.alpha_ = float(self.alpha)
            self.alphas_ = np.array([self.alpha_])
            self.coef_ = self._model(self.alphas_).fit(Z, y).coef_[:, 0]
            self.support_ = self.coef_ != 0
            return self

        path = self._model().fit(Z, y)
        self.alphas_, coefs = path.alphas_, path.coef_
        if self.max_features is not None:
            fits = np.flatnonzero((coefs != 0).sum(axis=0) <= self.max_features)
            best = fits[-1]
        else:
            folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            scores = []
            for train, test in folds.split(X, event):
                mean, sd = X[train].mean(axis=0), X[train].std(axis=0)
                scale = np.where(sd > 0, sd, 1.0)
                fold = self._model(self.alphas_).fit((X[train] - mean) / scale, y[train])
                risk = ((X[test] - mean) / scale) @ fold.coef_
                scores.append([concordance_index_censored(event[test], time[test], r)[0]
                               for r in risk.T])
            # a fold's path may stop early (saturated fit): keep the alphas all folds reached,
            # as glmnet's cv does
            reached = min(len(s) for s in scores)
            self.cv_scores_ = np.mean([s[:reached] for s in scores], axis=0)
            best = int(np.argmax(self.cv_scores_))
        self.alpha_ = float(self.alphas_[best])
        self.coef_ = coefs[:, best]
        self.support_ = self.coef_ != 0
        return self


class ForestImportanceSelector(_Selector):
    """Keep the most important features of a random forest.

    Survival target: a :class:`sksurv.ensemble.RandomSurvivalForest` and the
    permutation importance (drop of Harrell's C on the training data when a
    column is shuffled). Class or continuous target: a scikit-learn random
    forest and its permutation (accuracy / R^2) or impurity importance.

    Parameters
    ----------
    n_features : int, optional
        Keep at most this many (the most important).
    threshold : float or "mean", default="mean"
        Keep features with importance at least this (``"mean"``: the mean
        importance).
    importance : {"permutation", "impurity"}, default="permutation"
        Impurity importance is not defined for survival forests.
    n_estimators : int, default=200
    min_samples_leaf : int, default=3
    n_repeats : int, default=5
        Shuffles per column for the permutation importance.
    random_state : int, optional

    Attributes
    ----------
    importances_ : ndarray, shape (n_features_in_,)
    estimator_ : the fitted forest
    support_ : ndarray of bool
    """

    def __init__(self, *, n_features=None, threshold="mean", importance="permutation",
                 n_estimators=200, min_samples_leaf=3, n_repeats=5, random_state=None):
        self.n_features = n_features
        self.threshold = threshold
        self.importance = importance
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.n_repeats = n_repeats
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the forest and rank the columns by importance."""
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.inspection import permutation_importance

        who = "ForestImportanceSelector"
        _check_number(who, "n_features", self.n_features, low=1, integer=True, none=True)
        if self.threshold != "mean":
            _check_number(who, "threshold", self.threshold)
        _check_choice(who, "importance", self.importance, ("permutation", "impurity"))
        for name in ("n_estimators", "min_samples_leaf", "n_repeats"):
            _check_number(who, name, getattr(self, name), low=1, integer=True)
        X = validate_data(self, X)
        y = _target(X, y, who)
        options = dict(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                       random_state=self.random_state)
        if _survival(y) is not None:
            from sksurv.ensemble import RandomSurvivalForest

            if self.importance == "impurity":
                raise ValueError(f"{who}: impurity importance is not defined for survival "
                                 "forests; use importance='permutation'")
            forest = RandomSurvivalForest(**options)
        elif type_of_target(y) in ("binary", "multiclass"):
            forest = RandomForestClassifier(**options)
        else:
            forest = RandomForestRegressor(**options)
        self.estimator_ = forest.fit(X, y)
        if self.importance == "impurity":
            self.importances_ = forest.feature_importances_
        else:
            self.importances_ = permutation_importance(
                forest, X, y, n_repeats=self.n_repeats,
                random_state=self.random_state).importances_mean
        cut = self.importances_.mean() if self.threshold == "mean" else self.threshold
        self.support_ = self.importances_ >= cut
        if self.n_features is not None:
            self.support_ &= _top(self.importances_, self.n_features)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class L1LogisticSelector(_Selector):
    """Keep the features with non-zero coefficients of an L1 logistic regression.

    For binary endpoints (e.g. HPV status; with more classes a feature is
    kept if any class uses it). The features are standardised; the inverse
    penalty ``C`` is given or chosen by stratified cross-validation on the
    ROC AUC (log-loss for more classes).

    Parameters
    ----------
    C : float, optional
        Inverse of the L1 penalty; default: chosen among ``Cs``.
    Cs : int or sequence of float, default=10
        Grid for the cross-validation (int: a log grid from 1e-4 to 1e4).
    cv : int, default=5
    random_state : int, optional
    max_iter : int, default=1000

    Attributes
    ----------
    C_ : float
    coef_ : ndarray, shape (n_features_in_,) or (n_classes, n_features_in_)
        Coefficients per standard deviation of each feature.
    support_ : ndarray of bool
    """

    def __init__(self, *, C=None, Cs=10, cv=5, random_state=None, max_iter=1000):
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, X, y=None):
        """Fit the L1 logistic model and keep its non-zero coefficients."""
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        who = "L1LogisticSelector"
        _check_number(who, "C", self.C, low=0.0, none=True)
        _check_number(who, "cv", self.cv, low=2, integer=True)
        if y is None:
            raise ValueError(f"{who} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y)
        kind = type_of_target(y, raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{who}: y must hold classes (a binary endpoint), got a {kind} "
                             "target")
        if len(np.unique(y)) < 2:
            raise ValueError(f"{who}: y has 1 class; a logistic model needs two")
        binary = len(np.unique(y)) == 2
        # liblinear is the fast exact L1 solver but binary only
        common = dict(l1_ratio=1.0, solver="liblinear" if binary else "saga",
                      max_iter=self.max_iter, random_state=self.random_state)
        Z = _standardize(X)
        if self.C is not None:
            model = LogisticRegression(C=self.C, **common).fit(Z, y)
            self.C_ = float(self.C)
        else:
            folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            common.pop("l1_ratio")
            model = LogisticRegressionCV(Cs=self.Cs, l1_ratios=(1.0,), cv=folds,
                                         scoring="roc_auc" if binary else "neg_log_loss",
                                         use_legacy_attributes=False, **common).fit(Z, y)
            self.C_ = float(np.ravel(model.C_)[0])
        self.coef_ = model.coef_.ravel() if binary else model.coef_
        self.n_iter_ = int(np.max(model.n_iter_))
        self.support_ = (np.atleast_2d(self.coef_) != 0).any(axis=0)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class MRMRSelector(_Selector):
    """Minimum-redundancy maximum-relevance ranking; keep the first ``n_features``.

    Greedy forward selection: the first feature is the most relevant; each
    next one maximises ``relevance / redundancy``, the redundancy being its
    mean |Pearson r| with the features already chosen (the "FCQ" scheme of
    Ding & Peng, which needs no common scale between the two terms).

    Parameters
    ----------
    n_features : int, default=10
        Number kept (all features if fewer).
    relevance : {"f", "mi"}, default="f"
        F statistic with the target (class: ANOVA; continuous: regression;
        survival: Cox score chi-square), or mutual information (class or
        continuous target).
    random_state : int, optional
        For the mutual-information estimate.

    Attributes
    ----------
    relevance_ : ndarray, shape (n_features_in_,)
    ranking_ : ndarray of int
        Indices of the chosen columns in order of choice.
    support_ : ndarray of bool

    References
    ----------
    Ding C, Peng H. Minimum redundancy feature selection from microarray gene
    expression data. J Bioinform Comput Biol 2005;3(2):185-205.
    doi:10.1142/S0219720005001004
    """

    def __init__(self, *, n_features=10, relevance="f", random_state=None):
        self.n_features = n_features
        self.relevance = relevance
        self.random_state = random_state

    def fit(self, X, y=None):
        """Rank the columns greedily and keep the first ``n_features``."""
        who = "MRMRSelector"
        _check_number(who, "n_features", self.n_features, low=1, integer=True)
        _check_choice(who, "relevance", self.relevance, ("f", "mi"))
        X = validate_data(self, X)
        y = _target(X, y, who)
        self.relevance_ = _relevance(X, y, self.relevance, self.random_state)
        correlation = _abs_correlation(X)
        chosen = [int(np.argmax(self.relevance_))]
        redundancy = correlation[:, chosen[0]].copy()
        for _ in range(min(self.n_features, X.shape[1]) - 1):
            with np.errstate(divide="ignore", invalid="ignore"):
                score = self.relevance_ / (redundancy / len(chosen))
            score = np.nan_to_num(score, nan=0.0)  # 0 / 0: irrelevant and uncorrelated
            score[chosen] = -np.inf
            chosen.append(int(np.argmax(score)))
            redundancy += correlation[:, chosen[-1]]
        self.ranking_ = np.array(chosen)
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[self.ranking_] = True
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# ---------------------------------------------------------------------- PCA


class FeaturePCA(TransformerMixin, BaseEstimator):
    """Principal components of (standardised) features, named ``PC1, PC2, ...``.

    A thin wrapper of :class:`sklearn.decomposition.PCA` that standardises
    first (radiomic features span many orders of magnitude) and keeps the
    loadings by input feature name.

    Parameters
    ----------
    n_components : int, float or None, default=None
        As for :class:`~sklearn.decomposition.PCA` (a float in (0, 1): the
        fraction of variance kept).
    standardize : bool, default=True
    whiten : bool, default=False
    random_state : int, optional

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    mean_, scale_ : ndarray, shape (n_features_in_,)
        Standardisation (scale 1 when ``standardize`` is False).
    loadings_ : pandas.DataFrame, shape (n_features_in_, n_components_)
        Component weights, indexed by input feature name.
    explained_variance_ratio_ : ndarray
    """

    def __init__(self, *, n_components=None, standardize=True, whiten=False, random_state=None):
        self.n_components = n_components
        self.standardize = standardize
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y=None):
        """Standardise and fit the PCA."""
        from sklearn.decomposition import PCA

        X = validate_data(self, X)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.pca_ = PCA(n_components=self.n_components, whiten=self.whiten,
                        random_state=self.random_state).fit((X - self.mean_) / self.scale_)
        self.n_components_ = self.pca_.n_components_
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        names = getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])])
        self.loadings_ = pd.DataFrame(self.pca_.components_.T, index=list(names),
                                      columns=list(self.get_feature_names_out()))
        return self

    def transform(self, X):
        """Component scores, shape (n_samples, n_components_)."""
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return self.pca_.transform((X - self.mean_) / self.scale_)

    def get_feature_names_out(self, input_features=None):
        """``PC1`` ... ``PCn``."""
        check_is_fitted(self, "n_components_")
        return np.array([f"PC{i + 1}" for i in range(self.n_components_)], dtype=object)
