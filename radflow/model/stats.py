"""Correlation statistics of a study, with Benjamini-Hochberg false discovery rates.

:func:`correlations` gives Pearson or Spearman coefficients of features with
each other, or of features with clinical and genomic variables, as a tidy
table (one row per pair) with two-sided p-values and BH q-values over the
table. :func:`stats_command` is ``radflow model stats``: it writes those
tables and the stability ICC table as Parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.model._defaults import DEFAULT_PERTURBATIONS, METHODS
from radflow.model.stability import stability_study
from radflow.model.study import load_study

pa = load("pyarrow")
pq = load("pyarrow.parquet")
pd = load("pandas")

__all__ = ["METHODS", "OUTPUTS", "benjamini_hochberg", "correlations", "stats_command"]

_COLUMNS = ["x", "y", "method", "r", "p_value", "q_value", "n"]


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), controlling the FDR.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` for the p-values sorted
    ascending, ``m`` the number of (non-NaN) tests. Rejecting every
    hypothesis with ``q <= alpha`` controls the false discovery rate at
    ``alpha`` for independent or positively dependent tests.

    Parameters
    ----------
    p_values : array_like of float
        p-values in [0, 1], any shape. NaN entries (tests not done) stay
        NaN and do not count in ``m``.

    Returns
    -------
    numpy.ndarray
        q-values, same shape as `p_values`.

    Raises
    ------
    ValueError
        A p-value outside [0, 1].

    References
    ----------
    Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical
    and powerful approach to multiple testing. J R Stat Soc B 1995;57(1):289-300.
    doi:10.1111/j.2517-6161.1995.tb02031.x

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.20]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.2]
    """
    p = np.asarray(p_values, dtype=np.float64)
    valid = ~np.isnan(p)
    if ((p[valid] < 0) | (p[valid] > 1)).any():
        raise ValueError("p_values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    values = p[valid]
    m = values.size
    if m == 0:
        return q
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    # Step-up: each q is the smallest scaled p at its rank or above.
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    q[valid] = out
    return q


def correlations(
    X: pd.DataFrame, Y: pd.DataFrame | None = None, *, method: str = "pearson"
) -> pd.DataFrame:
    """Correlation coefficients with p-values and BH q-values, one row per pair.

    Parameters
    ----------
    X : pandas.DataFrame
        Numeric columns (features), one row per patient.
    Y : pandas.DataFrame, optional
        Numeric columns (e.g. :meth:`radflow.model.study.Study.covariates`),
        aligned with `X` by index (rows of `X` that `Y` lacks count as
        missing). Default: the pairs of columns of `X` with each other.
    method : {"pearson", "spearman"}
        Pearson's r, or Spearman's rho (Pearson's r of the ranks, ties
        given their average rank).

    Returns
    -------
    pandas.DataFrame
        Columns ``x, y, method, r, p_value, q_value, n``: for ``Y=None`` each
        unordered pair of `X`'s columns once (``x`` before ``y`` in column
        order), else every (column of X, column of Y). ``n`` is the number
        of patients with both values (pairwise complete); ``p_value`` the
        two-sided test of zero correlation (t distribution with n - 2
        degrees of freedom, as ``scipy.stats.pearsonr`` / ``spearmanr``);
        ``q_value`` the Benjamini-Hochberg adjustment over all rows.
        ``r`` and ``p_value`` are NaN where undefined: n < 3, or a
        constant column among the complete rows.

    Raises
    ------
    TypeError
        `X` or `Y` is not a DataFrame.
    ValueError
        Unknown method; a non-numeric column (encode it first:
        :func:`radflow.model.study.encode_covariates`); infinite values;
        duplicate column names.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    a = _numeric(X, "X")
    if Y is None:
        b = a
    else:
        b = _numeric(Y, "Y").reindex(a.index)
    r, n = _blocks(a.to_numpy(np.float64), b.to_numpy(np.float64), method)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = n - 2.0
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    p = np.where(np.abs(r) == 1.0, 0.0, p)
    undefined = (n < 3) | np.isnan(r)
    r = np.where(undefined, np.nan, r)
    p = np.where(undefined, np.nan, p)
    if Y is None:
        i, j = np.triu_indices(a.shape[1], k=1)
    else:
        i, j = (x.ravel() for x in np.indices(r.shape))
    out = pd.DataFrame(
        {
            "x": a.columns[i],
            "y": b.columns[j],
            "method": method,
            "r": r[i, j],
            "p_value": p[i, j],
            "q_value": benjamini_hochberg(p[i, j]),
            "n": n[i, j].astype(np.int64),
        },
        columns=_COLUMNS,
    )
    return out


def _numeric(frame, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.columns.duplicated().any():
        twice = sorted(set(frame.columns[frame.columns.duplicated()]))[:5]
        raise ValueError(f"{name} has duplicate column names {twice}")
    text = [
        c
        for c in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    if text:
        raise ValueError(
            f"{name} has non-numeric column(s) {text[:5]}: encode them first "
            "(radflow.model.study.encode_covariates)"
        )
    out = frame.astype(np.float64)
    if np.isinf(out.to_numpy()).any():
        raise ValueError(f"{name} holds infinite values")
    return out


def _blocks(a: np.ndarray, b: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """r and n for every (column of a, column of b), pairwise complete.

    Columns sharing a pattern of missing rows are computed together, so the
    usual case (a few patterns: one per missing modality) stays matrix algebra.
    """
    r = np.full((a.shape[1], b.shape[1]), np.nan)
    n = np.zeros(r.shape)
    pa_, ga = np.unique(~np.isnan(a).T, axis=0, return_inverse=True)
    pb_, gb = np.unique(~np.isnan(b).T, axis=0, return_inverse=True)
    ga, gb = ga.ravel(), gb.ravel()
    for u, rows_a in enumerate(pa_):
        ca = np.flatnonzero(ga == u)
        for v, rows_b in enumerate(pb_):
            cb = np.flatnonzero(gb == v)
            rows = rows_a & rows_b
            n[np.ix_(ca, cb)] = rows.sum()
            if rows.sum() < 2:
                continue
            x, y = a[rows][:, ca], b[rows][:, cb]
            if method == "spearman":
                x, y = stats.rankdata(x, axis=0), stats.rankdata(y, axis=0)
            # A constant column has no correlation; rounding in its mean must not invent one.
            flat = (np.ptp(x, axis=0) == 0)[:, None] | (np.ptp(y, axis=0) == 0)[None, :]
            x = x - x.mean(axis=0)
            y = y - y.mean(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                block = (x.T @ y) / np.outer(
                    np.sqrt((x * x).sum(axis=0)), np.sqrt((y * y).sum(axis=0))
                )
            block[flat] = np.nan
            r[np.ix_(ca, cb)] = np.clip(block, -1.0, 1.0)
    return r, n


# -- radflow model stats -----------------------------------------------------------

#: Files :func:`stats_command` writes into its output folder.
OUTPUTS = {
    "features": "feature_correlations.parquet",
    "covariates": "covariate_correlations.parquet",
    "icc": "icc.parquet",
    "values": "stability_values.parquet",
    "failures": "stability_failures.parquet",
}


def stats_command(args) -> int:
    """Run ``radflow model stats``: correlation and ICC tables as Parquet.

    Parameters
    ----------
    args : argparse.Namespace
        As :func:`add_stats_arguments` defines them:

        ``table`` (path), ``out`` (folder, created), ``clinical``,
        ``genomic`` (CSV paths or None), ``id_column`` (default
        ``"patient"``), ``key_file`` (or None), ``feature_set``,
        ``institutions``, ``modalities``, ``rois`` (None or lists: filters
        of :func:`radflow.model.study.load_study`), ``methods`` (None = both
        of :data:`METHODS`), ``store`` and ``params`` (both or neither: the
        stability study), ``perturbations`` (None = the defaults of
        :mod:`radflow.model.stability`), ``confidence`` (float).

    Returns
    -------
    int
        0; one summary line is printed.

    Notes
    -----
    Writes into ``out`` (each file under a temporary name, then renamed):

    - ``feature_correlations.parquet``: every pair of feature columns
      (:func:`correlations`, one block per method; ``q_value`` adjusts
      within a method);
    - ``covariate_correlations.parquet``: features x clinical/genomic
      columns (:func:`radflow.model.study.encode_covariates`), with
      ``--clinical`` or ``--genomic``;
    - ``icc.parquet``, ``stability_values.parquet``,
      ``stability_failures.parquet``: :func:`radflow.model.stability.stability_study`,
      with ``--store`` and ``--params``.

    Everything is computed before anything is written. No output holds a
    raw patient id: rows are keyed by feature names, and the stability
    tables by the store's pseudonymised ids.
    """
    store, params = getattr(args, "store", None), getattr(args, "params", None)
    if (store is None) != (params is None):
        raise SettingsError("the stability study needs both --store and --params (or neither)")
    methods = list(dict.fromkeys(getattr(args, "methods", None) or METHODS))
    study = load_study(
        args.table,
        clinical=args.clinical,
        genomic=args.genomic,
        feature_set=args.feature_set,
        institutions=args.institutions,
        modalities=args.modalities,
        rois=args.rois,
        key_file=args.key_file,
        id_column=getattr(args, "id_column", "patient"),
    )
    tables = {
        "features": pd.concat([correlations(study.X, method=m) for m in methods], ignore_index=True)
    }
    covariates = study.covariates()
    if covariates.shape[1]:
        tables["covariates"] = pd.concat(
            [correlations(study.X, covariates, method=m) for m in methods], ignore_index=True
        )
    if store is not None:
        result = stability_study(
            store,
            params,
            perturbations=args.perturbations or DEFAULT_PERTURBATIONS,
            modalities=args.modalities,
            rois=args.rois,
            confidence=args.confidence,
        )
        tables.update(icc=result.icc, values=result.values, failures=result.failures)
    out = Path(args.out)
    for name, frame in tables.items():
        with atomic_file(out / OUTPUTS[name]) as tmp:
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False), tmp, compression="zstd"
            )
    found = {
        m: int((tables["features"].query("method == @m")["q_value"] < 0.05).sum()) for m in methods
    }
    pairs = len(tables["features"]) // len(methods)
    summary = (
        f"{len(study.X)} patients, {study.X.shape[1]} features, {pairs} feature pairs "
        "(q < 0.05: " + ", ".join(f"{m} {n}" for m, n in found.items()) + ")"
    )
    if "covariates" in tables:
        summary += f", {covariates.shape[1]} covariates"
    if "icc" in tables:
        summary += (
            f", ICC of {tables['icc']['feature'].nunique()} features "
            f"({len(tables['failures'])} failed extraction(s))"
        )
    print(f"{summary}; wrote {', '.join(OUTPUTS[n] for n in tables)} to {out}")
    return 0
