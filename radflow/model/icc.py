"""Intraclass correlation coefficients, vectorised over features.

The six forms of Shrout & Fleiss (1979), with the names McGraw & Wong (1996)
give the same quantities:

==========  ====================  =========================================
form        McGraw & Wong         model, what it measures
==========  ====================  =========================================
ICC(1,1)    ICC(1)                one-way random: raters differ per subject
ICC(2,1)    ICC(A,1)              two-way, absolute agreement
ICC(3,1)    ICC(C,1)              two-way mixed, consistency
ICC(1,k)    ICC(k)                mean of the k ratings, one-way
ICC(2,k)    ICC(A,k)              mean of the k ratings, absolute agreement
ICC(3,k)    ICC(C,k)              mean of the k ratings, consistency
==========  ====================  =========================================

From the two-way ANOVA of n subjects (targets) by k raters (judges), with
mean squares ``MSR`` (between subjects), ``MSC`` (between raters), ``MSE``
(residual) and ``MSW = (SSC + SSE) / (n (k - 1))`` (within subjects)::

    ICC(1,1) = (MSR - MSW) / (MSR + (k - 1) MSW)
    ICC(2,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)
    ICC(3,1) = (MSR - MSE) / (MSR + (k - 1) MSE)
    ICC(1,k) = (MSR - MSW) / MSR
    ICC(2,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n)
    ICC(3,k) = (MSR - MSE) / MSR

Confidence intervals are the F-based ones of Shrout & Fleiss (Satterthwaite's
approximate degrees of freedom for ICC(2,1)); the average-measure bounds are
the Spearman-Brown transforms of the single-measure ones, which equals the
formulas of McGraw & Wong's Table 7.

In a perturbation or test-retest study, subjects are ROIs and raters are the
perturbations (or the scans, or the readers).

References
----------
Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater
reliability. Psychol Bull 1979;86(2):420-428. doi:10.1037/0033-2909.86.2.420

McGraw KO, Wong SP. Forming inferences about some intraclass correlation
coefficients. Psychol Methods 1996;1(1):30-46. doi:10.1037/1082-989X.1.1.30
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["FORMS", "icc", "icc_long"]

#: The forms computed, in output order.
FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")

_COLUMNS = [
    "feature",
    "form",
    "icc",
    "ci_low",
    "ci_high",
    "F",
    "df1",
    "df2",
    "p_value",
    "n_subjects",
    "n_raters",
]


def icc(ratings, *, features=None, confidence: float = 0.95) -> pd.DataFrame:
    """ICC of every form, with confidence intervals, for one or many features.

    Parameters
    ----------
    ratings : array_like, shape (n_subjects, n_raters) or (n_subjects, n_raters, n_features)
        Ratings of each subject by each rater, per feature (any unit: the
        ICC is unitless). A subject with a NaN rating for a feature is left
        out of that feature's ICC (the ANOVA needs every subject rated by
        every rater); ``n_subjects`` in the output says how many remained.
    features : sequence of str, optional
        Names of the features (default ``"0"``, ``"1"``, ...).
    confidence : float, optional
        Coverage of the two-sided intervals, in (0, 1). Default 0.95.

    Returns
    -------
    pandas.DataFrame
        One row per (feature, form), features in input order and forms in
        :data:`FORMS` order, columns ``feature, form, icc, ci_low, ci_high,
        F, df1, df2, p_value, n_subjects, n_raters``. ``F`` with ``df1``,
        ``df2`` and ``p_value`` is the test of ICC = 0 (MSR/MSW for the
        one-way forms, MSR/MSE for the others). All values are NaN where
        undefined: fewer than 2 complete subjects, or no variance at all.

    Raises
    ------
    ValueError
        Wrong dimensions, fewer than 2 raters or subjects, non-numeric or
        infinite ratings, bad ``features`` or ``confidence``.

    Examples
    --------
    Shrout & Fleiss' (1979) six targets rated by four judges:

    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...       [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> icc(sf).set_index("form")["icc"].round(2).tolist()
    [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]
    """
    x = np.asarray(ratings)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"ratings must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(
            f"ratings must have shape (n_subjects, n_raters) or (n_subjects, n_raters, "
            f"n_features), got {x.shape}"
        )
    n, k, p = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ratings need at least 2 subjects and 2 raters, got {n} x {k}")
    if np.isinf(x).any():
        raise ValueError("ratings hold infinite values")
    if features is None:
        features = [str(j) for j in range(p)]
    else:
        features = [str(f) for f in features]
        if len(features) != p:
            raise ValueError(f"features has {len(features)} names for {p} features")
    if not (isinstance(confidence, float | int) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")

    out = {
        name: np.full((p, len(FORMS)), np.nan)
        for name in ("icc", "lo", "hi", "F", "df1", "df2", "p")
    }
    n_used = np.zeros(p, dtype=np.int64)
    complete = ~np.isnan(x).any(axis=1)  # (n, p): subject rated by every rater
    # Features sharing a pattern of complete subjects are computed together.
    patterns, group = np.unique(complete.T, axis=0, return_inverse=True)
    for g, rows in enumerate(patterns):
        cols = np.flatnonzero(group.ravel() == g)
        n_used[cols] = rows.sum()
        if rows.sum() < 2:
            continue
        values = _forms(x[rows][:, :, cols], 1.0 - confidence)
        for name, array in values.items():
            out[name][cols] = array
    return pd.DataFrame(
        {
            "feature": np.repeat(features, len(FORMS)),
            "form": np.tile(FORMS, p),
            "icc": out["icc"].ravel(),
            "ci_low": out["lo"].ravel(),
            "ci_high": out["hi"].ravel(),
            "F": out["F"].ravel(),
            "df1": out["df1"].ravel(),
            "df2": out["df2"].ravel(),
            "p_value": out["p"].ravel(),
            "n_subjects": np.repeat(n_used, len(FORMS)),
            "n_raters": k,
        },
        columns=_COLUMNS,
    )


def icc_long(
    data: pd.DataFrame,
    *,
    subject: str = "subject",
    rater: str = "rater",
    feature: str = "feature",
    value: str = "value",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """:func:`icc` of a long (tidy) table: one row per (subject, rater, feature).

    Parameters
    ----------
    data : pandas.DataFrame
        Columns `subject`, `rater`, `feature` and `value`.
    subject, rater, feature, value : str, optional
        Names of those columns.
    confidence : float, optional
        As for :func:`icc`.

    Returns
    -------
    pandas.DataFrame
        As :func:`icc`, features in order of first appearance. A (subject,
        rater, feature) without a row counts as a missing rating: the subject
        is left out of that feature.

    Raises
    ------
    TypeError
        `data` is not a DataFrame.
    ValueError
        A missing column, or a (subject, rater, feature) given twice.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in (subject, rater, feature, value) if c not in data.columns]
    if missing:
        raise ValueError(f"data has no column(s) {missing}; columns: {list(data.columns)}")
    keys = [subject, rater, feature]
    twice = data.duplicated(keys, keep=False)
    if twice.any():
        first = data.loc[twice, keys].iloc[0].tolist()
        raise ValueError(
            f"{int(twice.sum())} rows repeat a ({subject}, {rater}, {feature}), "
            f"e.g. {first}: give each rating once"
        )
    subjects = pd.unique(data[subject])
    raters = pd.unique(data[rater])
    features = pd.unique(data[feature])
    cube = np.full((len(subjects), len(raters), len(features)), np.nan)
    cube[
        pd.Index(subjects).get_indexer(data[subject]),
        pd.Index(raters).get_indexer(data[rater]),
        pd.Index(features).get_indexer(data[feature]),
    ] = pd.to_numeric(data[value]).to_numpy(float)
    return icc(cube, features=features, confidence=confidence)


def _forms(x: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """Every form for complete ratings ``x`` (n, k, p); arrays of shape (p, 6)."""
    n, k, _ = x.shape
    grand = x.mean(axis=(0, 1))
    ss_total = ((x - grand) ** 2).sum(axis=(0, 1))
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum(axis=0)
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum(axis=0)
    ss_error = np.maximum(ss_total - ss_rows - ss_cols, 0.0)  # rounding can go below 0
    df_r, df_c, df_e, df_w = n - 1, k - 1, (n - 1) * (k - 1), n * (k - 1)
    msr, msc = ss_rows / df_r, ss_cols / df_c
    mse, msw = ss_error / df_e, (ss_cols + ss_error) / df_w

    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msr - msw) / (msr + (k - 1) * msw)
        icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc3 = (msr - mse) / (msr + (k - 1) * mse)
        f1, f3 = msr / msw, msr / mse

        # One-way and consistency forms: exact F intervals (Shrout & Fleiss eqs. 6-7, 12-13).
        lo1, hi1 = _f_bounds(f1, df_r, df_w, k, alpha)
        lo3, hi3 = _f_bounds(f3, df_r, df_e, k, alpha)

        # Absolute agreement: Satterthwaite's degrees of freedom for the
        # combination a MSC + b MSE (Shrout & Fleiss eqs. 8-11).
        a = k * icc2 / (n * (1.0 - icc2))
        b = 1.0 + k * icc2 * (n - 1) / (n * (1.0 - icc2))
        v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / df_c + (b * mse) ** 2 / df_e)
        f_lo = stats.f.ppf(1.0 - alpha / 2, df_r, v)
        f_hi = stats.f.ppf(1.0 - alpha / 2, v, df_r)
        mixed = k * msc + (k * n - k - n) * mse
        lo2 = n * (msr - f_lo * mse) / (f_lo * mixed + n * msr)
        hi2 = n * (f_hi * msr - mse) / (mixed + n * f_hi * msr)
        # MSE = 0 (perfect consistency): ICC(2,1) is exact, so is its interval.
        perfect = (mse == 0) & (msr > 0)
        lo2 = np.where(perfect, icc2, lo2)
        hi2 = np.where(perfect, icc2, hi2)

    def average(single):
        return k * single / (1.0 + (k - 1) * single)  # Spearman-Brown

    icc_all = np.stack([icc1, icc2, icc3, average(icc1), average(icc2), average(icc3)], axis=1)
    lo = np.stack([lo1, lo2, lo3, average(lo1), average(lo2), average(lo3)], axis=1)
    hi = np.stack([hi1, hi2, hi3, average(hi1), average(hi2), average(hi3)], axis=1)
    F = np.stack([f1, f3, f3, f1, f3, f3], axis=1)
    df1 = np.full(F.shape, float(df_r))
    df2 = np.tile(np.array([df_w, df_e, df_e, df_w, df_e, df_e], float), (F.shape[0], 1))
    with np.errstate(invalid="ignore"):
        p = stats.f.sf(F, df1, df2)
    undefined = ~np.isfinite(icc_all)
    for array in (icc_all, lo, hi, F, p):
        array[undefined] = np.nan
    return {"icc": icc_all, "lo": lo, "hi": hi, "F": F, "df1": df1, "df2": df2, "p": p}


def _f_bounds(f, df1, df2, k, alpha):
    """Single-measure bounds from an F ratio ``f`` with (df1, df2) degrees of freedom."""
    f_lo = f / stats.f.ppf(1.0 - alpha / 2, df1, df2)
    f_hi = f * stats.f.ppf(1.0 - alpha / 2, df2, df1)
    lo = np.where(np.isinf(f_lo), 1.0, (f_lo - 1.0) / (f_lo + k - 1.0))
    hi = np.where(np.isinf(f_hi), 1.0, (f_hi - 1.0) / (f_hi + k - 1.0))
    return lo, hi
