"""The study report's figures, one public function per figure.

Every function takes plain data (arrays, pandas objects), checks it, and
returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no GUI backend), which :func:`save_figure` writes as PNG or SVG.

Figures stay readable in greyscale and for colour-blind readers: categories
get the Okabe-Ito palette *and* a line style, marker or hatch of their own;
continuous values use cividis, whose lightness rises monotonically.

Axes that tests (and users) may want to read back carry a label
(``Axes.get_label()``): ``"km"`` and ``"at_risk"``, ``"heatmap"``,
``"correlation"``, ``"icc"``, ``"qc"`` ...
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from scipy.cluster.hierarchy import dendrogram, leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform
from scipy.stats import kruskal, spearmanr

from radflow._atomic import atomic_file
from radflow._geometry import SpacingError, bounding_box, grow_box, spacing_mm
from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.model.metrics import kaplan_meier, logrank_test

decomposition = load("sklearn.decomposition")
skimage_measure = load("skimage.measure")
sksurv_util = load("sksurv.util")

__all__ = [
    "OKABE_ITO",
    "central_slice",
    "cindex_forest",
    "combat_before_after",
    "correlation_heatmap",
    "embedding_plot",
    "feature_heatmap",
    "habitat_colours",
    "habitat_fractions_plot",
    "icc_distribution",
    "km_plot",
    "qc_slice",
    "reference_scatter",
    "save_figure",
    "selected_features_plot",
    "td_auc_plot",
]

#: Okabe & Ito (2008) colour-blind-safe palette, ordered so that neighbours
#: also differ in lightness (black first, the pale yellow last).
OKABE_ITO = ("#000000", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "+++", "ooo", "---")
_CMAP = "cividis"
_MISSING = "#bdbdbd"


def _style(k: int) -> dict:
    """Colour, line style, marker and hatch of the k-th category."""
    return {
        "color": OKABE_ITO[k % len(OKABE_ITO)],
        "linestyle": _LINESTYLES[k % len(_LINESTYLES)],
        "marker": _MARKERS[k % len(_MARKERS)],
        "hatch": _HATCHES[k % len(_HATCHES)],
    }


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _categories(values: pd.Series) -> list:
    """Levels in a stable order: a Categorical's own order, else sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if c in set(values.dropna())]
    levels = list(pd.unique(values.dropna()))
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=str)


def _frame(values, name: str, *, min_rows: int = 1, min_cols: int = 1) -> pd.DataFrame:
    if not isinstance(values, pd.DataFrame):
        raise SettingsError(f"{name} must be a pandas DataFrame, got {type(values).__name__}")
    if values.shape[0] < min_rows or values.shape[1] < min_cols:
        raise SettingsError(
            f"{name} needs at least {min_rows} rows and {min_cols} columns, "
            f"got shape {values.shape}"
        )
    numeric = values.apply(pd.to_numeric, errors="coerce").astype(float)
    bad = [c for c in values.columns if numeric[c].isna().sum() > values[c].isna().sum()]
    if bad:
        raise SettingsError(f"{name}: non-numeric values in columns {bad[:5]}")
    return numeric


def _vector(values, name: str, n: int | None = None) -> np.ndarray:
    out = np.asarray(values)
    if out.ndim != 1 or (n is not None and len(out) != n):
        want = f"length {n}" if n is not None else "1-D"
        raise SettingsError(f"{name} must be {want}, got shape {out.shape}")
    return out


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path``; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).

    The file appears complete or not at all (written under a temporary name,
    then renamed). Metadata that would change from run to run (date) is left
    out, so the same figure gives the same file.
    """
    suffix = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else ""
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
    if suffix not in metadata:
        raise SettingsError(
            f"{os.fspath(path)}: unknown figure format {suffix!r}; use .png, .svg or .pdf"
        )
    # A fixed salt makes the SVG's element ids, hence the file, reproducible.
    with atomic_file(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "radflow"}):
        fig.savefig(tmp, format=suffix, dpi=dpi, metadata=metadata[suffix])


# -- survival ---------------------------------------------------------------


def km_plot(
    time,
    event,
    group=None,
    *,
    at_risk_times=None,
    p_value: float | None = "logrank",
    time_unit: str = "months",
    title: str | None = None,
    group_order=None,
) -> Figure:
    """Kaplan-Meier curves per group, with a numbers-at-risk table and the log-rank p-value.

    Parameters
    ----------
    time : array-like of float, shape (n,)
        Follow-up time of each patient, in ``time_unit``; finite and >= 0.
    event : array-like of bool, shape (n,)
        True where the follow-up ended with the event (death), False if censored.
    group : array-like, shape (n,), optional
        Group of each patient (e.g. ``"low risk"`` / ``"high risk"``); one
        curve when omitted.
    at_risk_times : array-like of float, optional
        Times of the numbers-at-risk columns; default: the x-axis ticks.
        The number at risk at ``t`` counts patients with ``time >= t``.
    p_value : float, "logrank" or None
        Printed on the plot: a given value, the log-rank test across the
        groups (``"logrank"``, :func:`radflow.model.metrics.logrank_test`;
        needs two groups or more), or nothing.
    time_unit : str
        Label of the time axis.
    title : str, optional
    group_order : sequence, optional
        Order of the groups (legend, table rows); default sorted.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"km"`` holds one step line per group, labelled with the group
        name, starting at (0, 1.0); censored times are ``"|"`` marks. Axes
        ``"at_risk"`` holds the numbers at risk as text.
    """

    time = _vector(time, "time").astype(float)
    n = len(time)
    if n == 0:
        raise SettingsError("time: no patients to plot")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise SettingsError("time must be finite and >= 0")
    event = _vector(event, "event", n)
    if not np.isin(event, (0, 1)).all():
        raise SettingsError("event must hold booleans or 0/1")
    event = event.astype(bool)
    group = np.full(n, "all", dtype=object) if group is None else _vector(group, "group", n)
    levels = _categories(pd.Series(group)) if group_order is None else list(group_order)
    missing = set(pd.unique(group)) - set(levels)
    if missing:
        raise SettingsError(f"group_order lacks the groups {sorted(map(str, missing))}")
    y = sksurv_util.Surv.from_arrays(event=event, time=time)

    fig = _figure(6.4, 4.8)
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 0.35 + 0.25 * len(levels)))
    ax = fig.add_subplot(grid[0], label="km")
    table = fig.add_subplot(grid[1], sharex=ax, label="at_risk")
    for k, level in enumerate(levels):
        sel = group == level
        if not sel.any():
            continue
        km = kaplan_meier(y[sel])
        style = _style(k)
        # Start the step function at (0, 1) and hold it to the last follow-up.
        xs = np.concatenate([[0.0], km.time])
        ys = np.concatenate([[1.0], km.survival])
        ax.step(
            xs,
            ys,
            where="post",
            color=style["color"],
            linestyle=style["linestyle"],
            linewidth=2,
            label=str(level),
        )
        censored = time[sel & ~event]
        if len(censored):
            ax.plot(
                censored,
                km.at(censored),
                linestyle="none",
                marker="|",
                markersize=9,
                color=style["color"],
                label=f"_censored {level}",
            )
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(left=0)
    ax.set_ylabel("survival probability")
    ax.grid(alpha=0.3)
    if len(levels) > 1:
        ax.legend(loc="lower left", frameon=False, handlelength=3)
    if title:
        ax.set_title(title)
    if p_value == "logrank":
        p_value = logrank_test(y, group).p if len(set(group)) > 1 else None
    if p_value is not None:
        text = "log-rank p < 0.001" if p_value < 0.001 else f"log-rank p = {p_value:.3f}"
        ax.text(0.98, 0.96, text, transform=ax.transAxes, ha="right", va="top")

    ticks = (
        np.asarray(at_risk_times, dtype=float)
        if at_risk_times is not None
        else np.array([t for t in ax.get_xticks() if 0 <= t <= time.max()])
    )
    for row, level in enumerate(levels):
        at = time[group == level]
        for t in ticks:
            table.text(t, row, str(int(np.sum(at >= t))), ha="center", va="center", fontsize=9)
    table.set_ylim(len(levels) - 0.5, -0.5)
    table.set_yticks(range(len(levels)), [str(level) for level in levels])
    table.tick_params(axis="y", length=0, pad=18)
    table.tick_params(axis="x", labelbottom=True)
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    table.set_xlabel(f"time ({time_unit}); numbers at risk")
    ax.tick_params(axis="x", labelbottom=False)
    return fig


def cindex_forest(
    results: pd.DataFrame, *, metric: str = "C-index", chance: float = 0.5, title: str | None = None
) -> Figure:
    """Forest plot of a metric with its confidence interval per fold, institution or model.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per estimate, columns ``label`` (str), ``estimate``, ``low``,
        ``high`` (floats; NaN bounds draw no interval) and optionally
        ``group`` (e.g. ``"fold"``, ``"institution"``, ``"overall"``), which
        sets the marker.
    metric : str
        Axis label (``"C-index"``, ``"AUC"``).
    chance : float
        Where the dotted no-information line is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"forest"``; rows top to bottom in the order of ``results``.
    """
    if not isinstance(results, pd.DataFrame):
        raise SettingsError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    need = {"label", "estimate", "low", "high"}
    if not need <= set(results.columns) or results.empty:
        raise SettingsError(
            f"results needs rows and the columns {sorted(need)}, got {list(results.columns)}"
        )
    est = results["estimate"].astype(float).to_numpy()
    low = results["low"].astype(float).to_numpy()
    high = results["high"].astype(float).to_numpy()
    ok = np.isfinite(low) & np.isfinite(high)
    if np.any(ok & ((low > est) | (high < est))):
        raise SettingsError(
            "results: every interval must contain its estimate (low <= estimate <= high)"
        )
    groups = (
        results["group"].astype(str).to_numpy() if "group" in results else np.full(len(est), "")
    )
    levels = list(dict.fromkeys(groups))
    fig = _figure(6.4, 1.4 + 0.32 * len(est))
    ax = fig.add_subplot(label="forest")
    rows = np.arange(len(est))
    for k, level in enumerate(levels):
        sel = groups == level
        style = _style(k)
        err = np.vstack([np.where(ok, est - low, 0), np.where(ok, high - est, 0)])[:, sel]
        ax.errorbar(
            est[sel],
            rows[sel],
            xerr=err,
            fmt=style["marker"],
            color=style["color"],
            capsize=3,
            markersize=7,
            label=level or None,
        )
    for r in rows:
        ci = f"  [{low[r]:.2f}, {high[r]:.2f}]" if ok[r] else ""
        ax.annotate(
            f"{est[r]:.2f}{ci}",
            (1.0, r),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.axvline(chance, color="0.3", linestyle=":", linewidth=1)
    ax.set_yticks(rows, results["label"].astype(str).tolist())
    ax.set_ylim(len(est) - 0.5, -0.5)
    ax.set_xlabel(f"{metric} (95% CI)")
    ax.grid(axis="x", alpha=0.3)
    if len(levels) > 1:
        fig.legend(loc="outside lower center", ncol=len(levels), frameon=False)
    if title:
        ax.set_title(title)
    return fig


def td_auc_plot(
    times,
    auc,
    *,
    low=None,
    high=None,
    mean_auc: float | None = None,
    time_unit: str = "months",
    title: str | None = None,
) -> Figure:
    """Time-dependent (cumulative/dynamic) AUC against time.

    Parameters
    ----------
    times : array-like of float, shape (m,)
        Evaluation times, increasing, in ``time_unit``.
    auc : array-like of float, shape (m,)
        AUC(t) at those times, e.g. from
        :func:`radflow.model.metrics.time_dependent_auc`.
    low, high : array-like of float, shape (m,), optional
        A pointwise confidence band, drawn hatched.
    mean_auc : float, optional
        The time-averaged AUC, drawn as a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"td_auc"``; the first line is AUC(t).
    """
    times = _vector(times, "times").astype(float)
    auc = _vector(auc, "auc", len(times)).astype(float)
    if len(times) == 0 or np.any(np.diff(times) <= 0):
        raise SettingsError("times must be non-empty and strictly increasing")
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot(label="td_auc")
    ax.plot(times, auc, color=OKABE_ITO[0], marker="o", linewidth=2, label="AUC(t)")
    if low is not None and high is not None:
        low = _vector(low, "low", len(times)).astype(float)
        high = _vector(high, "high", len(times)).astype(float)
        ax.fill_between(
            times,
            low,
            high,
            facecolor=OKABE_ITO[5],
            alpha=0.35,
            hatch="//",
            edgecolor=OKABE_ITO[2],
            linewidth=0,
            label="95% CI",
        )
    if mean_auc is not None:
        ax.axhline(mean_auc, color=OKABE_ITO[1], linestyle="--", label=f"mean AUC {mean_auc:.2f}")
    ax.axhline(0.5, color="0.3", linestyle=":", linewidth=1, label="chance")
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("time-dependent AUC")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    if title:
        ax.set_title(title)
    return fig


# -- features -----------------------------------------------------------------


def _zscore(values: pd.DataFrame) -> pd.DataFrame:
    """Column z-scores; a constant column becomes 0, NaN stays NaN."""
    sd = values.std(ddof=0)
    return (values - values.mean()) / sd.where(sd > 0, 1.0)


def _cluster(data: np.ndarray):
    """Average-linkage tree of the rows of ``data`` (optimally ordered leaves), or None."""
    if len(data) < 3:
        return None
    return optimal_leaf_ordering(linkage(data, method="average"), data)


def _dendrogram(ax, tree, n: int, orientation: str) -> None:
    """Draw ``tree`` so that leaf i faces row/column i of an image of n cells."""
    if tree is not None:
        dendrogram(
            tree,
            ax=ax,
            orientation=orientation,
            no_labels=True,
            color_threshold=0,
            above_threshold_color="0.2",
        )
    # scipy puts leaf i at 10 i + 5; image cells span [i - 0.5, i + 0.5].
    if orientation == "top":
        ax.set_xlim(0, 10 * n)
    else:
        ax.set_ylim(10 * n, 0)
    ax.set_axis_off()


def _annotation_bar(ax, values: pd.Series, name: str, legend: list, offset: int) -> int:
    """One row of coloured, hatched cells; numbers on cividis, categories on Okabe-Ito.

    Category k gets style ``offset + k``, so that neighbouring bars differ;
    returns the next offset.
    """
    n = len(values)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.5], [name])
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    numeric = pd.api.types.is_numeric_dtype(values) and values.nunique() > 8
    if numeric:
        ax.imshow(
            values.to_numpy(float)[None, :], aspect="auto", cmap=_CMAP, extent=(-0.5, n - 0.5, 0, 1)
        )
        return offset
    levels = _categories(values)
    for k, level in enumerate(levels):
        style = _style(offset + k)
        hit = np.concatenate([[False], (values == level).to_numpy(), [False]])
        starts, ends = (
            np.flatnonzero(np.diff(hit.astype(int)) == 1),
            np.flatnonzero(np.diff(hit.astype(int)) == -1),
        )
        # One patch per run of neighbours: hatching is slow to render per cell.
        for a, b in zip(starts, ends):
            ax.add_patch(
                Rectangle(
                    (a - 0.5, 0),
                    b - a,
                    1,
                    facecolor=style["color"],
                    hatch=style["hatch"],
                    edgecolor="white",
                    linewidth=0.3,
                )
            )
        legend.append(
            Patch(
                facecolor=style["color"],
                hatch=style["hatch"],
                edgecolor="white",
                label=f"{name}: {level}",
            )
        )
    return offset + len(levels)


def feature_heatmap(
    values: pd.DataFrame,
    *,
    annotations: pd.DataFrame | None = None,
    cluster: bool = True,
    vlim: float = 3.0,
    max_patient_labels: int = 40,
    title: str | None = None,
) -> Figure:
    """Clustered heat-map of z-scored features (rows) across patients (columns).

    Parameters
    ----------
    values : pandas.DataFrame, shape (patients, features)
        Feature values, index = patient ids. Each feature is z-scored across
        patients (mean 0, SD 1; a constant feature is 0); NaN is drawn grey.
    annotations : pandas.DataFrame, optional
        Clinical bars drawn above the heat-map, index = patient ids (all of
        `values`' patients), one column per bar (e.g. ``institution``,
        ``stage``, ``event``). Categories get a colour and a hatch each;
        numeric columns with more than 8 values are drawn on cividis.
    cluster : bool
        Order rows and columns by average-linkage clustering (Euclidean on
        the z-scores, NaN taken as 0) and draw the dendrograms.
    vlim : float
        The colour scale spans z in [-vlim, vlim]; values beyond saturate.
    max_patient_labels : int
        Patient ids label the columns up to this many patients; beyond, they
        would overlap, and the axis says that they are left out.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"heatmap"`` shows an image of shape (features, patients)
        holding the z-scores; its tick labels name the features and patients
        (no patient labels above ``max_patient_labels``). The legend has one
        column per annotation bar.
    """
    values = _frame(values, "values")
    if annotations is not None:
        if not isinstance(annotations, pd.DataFrame):
            raise SettingsError("annotations must be a pandas DataFrame indexed by patient")
        absent = values.index.difference(annotations.index)
        if len(absent):
            raise SettingsError(f"annotations lacks patients {list(absent[:5])}")
        annotations = annotations.loc[values.index]
    z = _zscore(values)
    filled = z.fillna(0.0).to_numpy()
    row_tree = _cluster(filled.T) if cluster else None
    col_tree = _cluster(filled) if cluster else None
    rows = leaves_list(row_tree) if row_tree is not None else np.arange(z.shape[1])
    cols = leaves_list(col_tree) if col_tree is not None else np.arange(z.shape[0])
    data = z.to_numpy().T[np.ix_(rows, cols)]
    features = z.columns[rows]
    patients = z.index[cols]

    n_bars = 0 if annotations is None else annotations.shape[1]
    # Room for a readable 7 pt label per patient column when they are shown.
    per_patient = 0.13 if len(patients) <= max_patient_labels else 0.07
    width = min(5.0 + per_patient * len(patients), 16.0)
    height = min(2.5 + 0.2 * len(features) + 0.25 * n_bars, 24.0)
    fig = _figure(width, height)
    heights = ([0.8] if cluster else []) + [0.22] * n_bars + [max(0.2 * len(features), 1.0)]
    grid = fig.add_gridspec(
        len(heights), 3, height_ratios=heights, width_ratios=(0.9 if cluster else 0.01, 6, 0.15)
    )
    main = fig.add_subplot(grid[-1, 1], label="heatmap")
    if cluster:
        _dendrogram(
            fig.add_subplot(grid[0, 1], label="column_dendrogram"), col_tree, len(patients), "top"
        )
        _dendrogram(
            fig.add_subplot(grid[-1, 0], label="row_dendrogram"), row_tree, len(features), "left"
        )
    legend: list = []
    offset = 0
    for k in range(n_bars):
        ax = fig.add_subplot(
            grid[(1 if cluster else 0) + k, 1],
            sharex=main,
            label=f"annotation_{annotations.columns[k]}",
        )
        offset = _annotation_bar(
            ax,
            annotations.iloc[cols, k].reset_index(drop=True),
            str(annotations.columns[k]),
            legend,
            offset,
        )
    cmap = matplotlib.colormaps[_CMAP].with_extremes(bad=_MISSING)
    image = main.imshow(
        np.ma.masked_invalid(data),
        aspect="auto",
        cmap=cmap,
        vmin=-vlim,
        vmax=vlim,
        interpolation="nearest",
    )
    main.set_yticks(
        range(len(features)), [str(f) for f in features], fontsize=7 if len(features) > 25 else 8
    )
    main.yaxis.tick_right()
    if len(patients) <= max_patient_labels:
        main.set_xticks(range(len(patients)), [str(p) for p in patients], rotation=90, fontsize=7)
        main.set_xlabel(f"patients (n = {len(patients)})")
    else:
        main.set_xticks([])
        main.set_xlabel(f"patients (n = {len(patients)}; ids not shown above {max_patient_labels})")
    fig.colorbar(
        image, cax=fig.add_subplot(grid[0, 2] if cluster else grid[-1, 2]), label="z-score"
    )
    if legend:
        # One legend column per bar (matplotlib fills columns first): pad each bar's entries.
        groups: dict[str, list] = {}
        for handle in legend:
            groups.setdefault(handle.get_label().split(": ", 1)[0], []).append(handle)
        depth = max(len(g) for g in groups.values())
        blank = Patch(facecolor="none", edgecolor="none", label=" ")
        handles = [h for g in groups.values() for h in g + [blank] * (depth - len(g))]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=len(groups),
            frameon=False,
            fontsize=8,
        )
    if title:
        fig.suptitle(title)
    return fig


def correlation_heatmap(
    values: pd.DataFrame,
    *,
    method: str = "spearman",
    cluster: bool = True,
    title: str | None = None,
) -> Figure:
    """Feature-feature correlation matrix, clustered so that redundant groups sit together.

    Parameters
    ----------
    values : pandas.DataFrame, shape (patients, features)
        At least two features; correlations use the pairwise complete rows.
    method : {"spearman", "pearson"}
    cluster : bool
        Order features by average linkage on the distance 1 - |r|.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"correlation"`` shows the (features, features) matrix of r,
        symmetric with a unit diagonal, on cividis from -1 to 1.
    """
    if method not in ("spearman", "pearson"):
        raise SettingsError(f"method must be 'spearman' or 'pearson', got {method!r}")
    values = _frame(values, "values", min_rows=3, min_cols=2)
    r = values.corr(method=method).to_numpy()
    # Constant features have no correlation: show them as uncorrelated, not NaN.
    r = np.where(np.isfinite(r), r, 0.0)
    np.fill_diagonal(r, 1.0)
    r = (r + r.T) / 2
    order = np.arange(len(r))
    if cluster and len(r) >= 3:
        distance = squareform(np.clip(1.0 - np.abs(r), 0.0, None), checks=False)
        order = leaves_list(linkage(distance, method="average"))
    r = r[np.ix_(order, order)]
    names = [str(values.columns[i]) for i in order]
    size = min(3.5 + 0.18 * len(names), 14.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(label="correlation")
    image = ax.imshow(r, cmap=_CMAP, vmin=-1, vmax=1, interpolation="nearest")
    if len(names) <= 50:
        fs = 7 if len(names) > 20 else 8
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=fs)
        ax.set_yticks(range(len(names)), names, fontsize=fs)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"{method.capitalize()} r")
    ax.set_title(title or f"{method.capitalize()} correlation ({len(names)} features)")
    return fig


def icc_distribution(
    icc,
    *,
    threshold: float = 0.75,
    title: str | None = None,
    xlabel: str = "intraclass correlation",
) -> Figure:
    """Histogram of per-feature ICCs with the stability threshold.

    Parameters
    ----------
    icc : array-like of float or pandas.Series
        One ICC per feature (NaN ignored), e.g. a column of
        :func:`radflow.model.icc.icc`.
    threshold : float
        Features with ICC >= threshold count as stable; drawn as a dashed
        line, the stable bars hatched.
    xlabel : str
        What the values are (e.g. the lower bound of the ICC's 95 % CI).

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"icc"``.
    """
    values = np.asarray(icc, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise SettingsError("icc: no finite ICC value to plot")
    if not -1.0 <= threshold <= 1.0:
        raise SettingsError(f"threshold must lie in [-1, 1], got {threshold!r}")
    lo = min(0.0, float(np.floor(values.min() * 20) / 20))
    edges = np.unique(np.concatenate([np.arange(lo, 1.0 + 1e-9, 0.05), [threshold]]))
    counts, edges = np.histogram(values, bins=edges)
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot(label="icc")
    stable = edges[:-1] >= threshold
    for mask, k, name in ((~stable, 1, "unstable"), (stable, 2, "stable")):
        ax.bar(
            edges[:-1][mask],
            counts[mask],
            width=np.diff(edges)[mask],
            align="edge",
            color=OKABE_ITO[k],
            hatch=_HATCHES[k],
            edgecolor="black",
            linewidth=0.5,
            label=name,
        )
    ax.axvline(
        threshold, color="black", linestyle="--", linewidth=1.5, label=f"threshold {threshold:g}"
    )
    n_stable = int(np.sum(values >= threshold))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("features")
    ax.set_ylim(0, 1.35 * counts.max())  # room for the legend above the tallest bar
    ax.legend(loc="upper left", frameon=False, ncols=3)
    ax.set_title(
        title
        or f"Feature stability: {n_stable} of {len(values)} features with ICC >= {threshold:g}"
    )
    return fig


def combat_before_after(
    before: pd.DataFrame,
    after: pd.DataFrame,
    batch,
    *,
    features=None,
    max_features: int = 4,
    title: str | None = None,
) -> Figure:
    """Per-batch distributions of a few features before and after harmonisation.

    Parameters
    ----------
    before, after : pandas.DataFrame, shape (patients, features)
        The same patients (index) and features before and after ComBat.
    batch : array-like, shape (patients,)
        Batch (institution, scanner) of each patient.
    features : sequence of str, optional
        Features to show; default the ``max_features`` with the strongest
        batch effect before harmonisation (smallest Kruskal-Wallis p).
    max_features : int

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"before:<feature>"`` and ``"after:<feature>"``, one box per
        batch, titled with the Kruskal-Wallis p-value across batches.
    """
    before = _frame(before, "before", min_rows=2)
    after = _frame(after, "after", min_rows=2)
    if not before.index.equals(after.index):
        raise SettingsError("before and after must hold the same patients in the same order")
    batch = _vector(batch, "batch", len(before))
    levels = _categories(pd.Series(batch))
    if len(levels) < 2:
        raise SettingsError("batch: needs at least two batches")

    def p_of(frame, name):
        groups = [frame[name].to_numpy()[batch == b] for b in levels]
        groups = [g[np.isfinite(g)] for g in groups]
        if sum(len(g) > 0 for g in groups) < 2 or np.ptp(np.concatenate(groups)) == 0:
            return float("nan")
        return float(kruskal(*[g for g in groups if len(g)]).pvalue)

    if features is None:
        common = [c for c in before.columns if c in after.columns]
        ps = pd.Series({c: p_of(before, c) for c in common}).dropna().sort_values()
        features = list(ps.index[:max_features])
        if not features:
            raise SettingsError("before: no feature varies across batches")
    else:
        features = list(features)
        absent = [f for f in features if f not in before.columns or f not in after.columns]
        if absent:
            raise SettingsError(f"features not in before/after: {absent}")
    fig = _figure(7.2, 1.2 + 2.5 * len(features))
    # Each feature's full name heads its row, across both panels (never cut); the panels
    # come first in fig.axes, the headers after them.
    grid = fig.add_gridspec(2 * len(features), 2, height_ratios=[0.16, 1.0] * len(features))
    for row, name in enumerate(features):
        shared = None
        for col, (stage, frame) in enumerate((("before", before), ("after", after))):
            ax = fig.add_subplot(grid[2 * row + 1, col], label=f"{stage}:{name}", sharey=shared)
            data = [frame[name].to_numpy()[batch == b] for b in levels]
            data = [d[np.isfinite(d)] for d in data]
            parts = ax.boxplot(data, patch_artist=True, widths=0.6, medianprops={"color": "black"})
            ax.set_xticks(range(1, len(levels) + 1), [str(b) for b in levels], fontsize=8)
            for k, box in enumerate(parts["boxes"]):
                style = _style(k + 1)
                box.set(facecolor=style["color"], hatch=style["hatch"], alpha=0.8)
            p = p_of(frame, name)
            ax.set_title(f"{stage}: KW p = {p:.2g}", fontsize=9)
            if col == 0:
                ax.set_ylabel("value", fontsize=8)
            shared = ax
    for row, name in enumerate(features):
        head = fig.add_subplot(grid[2 * row, :], label=f"name:{name}")
        head.set_axis_off()
        head.text(
            0.5,
            0.0,
            _wrap_name(name, 90),
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
            transform=head.transAxes,
        )
    fig.suptitle(title or "Harmonisation: per-batch distributions")
    return fig


def _wrap_name(name: str, width: int) -> str:
    """A long feature name on several lines, broken after ``.`` or ``_``, never cut."""
    lines, line = [], ""
    for piece in re.split(r"(?<=[._])", str(name)):
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    return "\n".join([*lines, line])


def embedding_plot(values, groups, *, title: str | None = None) -> Figure:
    """2-D PCA embedding of patients, marked and coloured by group (institution).

    Parameters
    ----------
    values : pandas.DataFrame or mapping of str to DataFrame
        Features (patients x features); a mapping draws one panel per entry
        (e.g. ``{"before ComBat": X, "after ComBat": X_h}``), each with its
        own PCA. Features are z-scored first; columns with NaN are dropped.
    groups : array-like, shape (patients,)

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per panel, labelled ``"embedding:<name>"``, one marker
        series per group.
    """
    panels = dict(values) if isinstance(values, Mapping) else {"": values}
    if not panels:
        raise SettingsError("values: no panel to draw")
    frames = {
        name: _frame(v, f"values[{name!r}]" if name else "values", min_rows=3, min_cols=2)
        for name, v in panels.items()
    }
    n = len(next(iter(frames.values())))
    groups = _vector(groups, "groups", n)
    levels = _categories(pd.Series(groups))
    fig = _figure(3.6 * len(frames) + 1.2, 3.8)
    for i, (name, frame) in enumerate(frames.items()):
        if len(frame) != n:
            raise SettingsError(f"values[{name!r}] has {len(frame)} patients, expected {n}")
        z = _zscore(frame).dropna(axis=1)
        if z.shape[1] < 2:
            raise SettingsError(f"values[{name!r}]: fewer than two complete features")
        pca = decomposition.PCA(n_components=2).fit(z.to_numpy())
        xy = pca.transform(z.to_numpy())
        ax = fig.add_subplot(1, len(frames), i + 1, label=f"embedding:{name}")
        for k, level in enumerate(levels):
            style = _style(k)
            sel = groups == level
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                marker=style["marker"],
                s=28,
                color=style["color"],
                edgecolor="black",
                linewidth=0.4,
                label=str(level),
            )
        ev = pca.explained_variance_ratio_ * 100
        ax.set_xlabel(f"PC1 ({ev[0]:.0f}%)")
        ax.set_ylabel(f"PC2 ({ev[1]:.0f}%)")
        if name:
            ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def selected_features_plot(
    weights, *, kind: str = "coefficient", max_features: int = 30, title: str | None = None
) -> Figure:
    """Horizontal bars of the selected features' coefficients or importances.

    Parameters
    ----------
    weights : pandas.Series
        Feature name -> weight (Cox coefficient, log hazard ratio per SD; or
        importance). The ``max_features`` largest in absolute value are
        drawn, the largest on top; negative bars are hatched.
    kind : str
        Axis label: ``"coefficient"`` or ``"importance"``.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"weights"``, one bar per drawn feature.
    """
    if not isinstance(weights, pd.Series):
        raise SettingsError(
            f"weights must be a pandas Series (feature -> weight), got {type(weights).__name__}"
        )
    w = pd.to_numeric(weights, errors="coerce").dropna()
    if w.empty:
        raise SettingsError("weights: no finite weight to plot")
    if max_features < 1:
        raise SettingsError(f"max_features must be >= 1, got {max_features!r}")
    w = w.reindex(w.abs().sort_values(ascending=False).index[:max_features])
    fig = _figure(7.2, 1.0 + 0.28 * len(w))
    ax = fig.add_subplot(label="weights")
    positive = w.to_numpy() >= 0
    ax.barh(
        np.arange(len(w)),
        w.to_numpy(),
        color=np.where(positive, OKABE_ITO[6], OKABE_ITO[2]),
        hatch=None,
        edgecolor="black",
        linewidth=0.5,
    )
    for bar, pos in zip(ax.patches, positive):
        bar.set_hatch("" if pos else "///")
    ax.set_yticks(np.arange(len(w)), [str(i) for i in w.index], fontsize=8)
    ax.set_ylim(len(w) - 0.5, -0.5)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(kind)
    ax.grid(axis="x", alpha=0.3)
    shown = (
        f"Selected features ({len(weights)})"
        if len(w) == len(weights)
        else f"Selected features: the {len(w)} largest of {len(weights)}"
    )
    ax.set_title(title or shown)
    return fig


# -- quality control ---------------------------------------------------------


def central_slice(mask) -> int:
    """Index along z of the ROI's central slice: the ROI slice nearest its centroid.

    Parameters
    ----------
    mask : array-like, shape (z, y, x)
        Non-zero inside the ROI.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise SettingsError(f"mask must be 3-D (z, y, x), got shape {mask.shape}")
    z = np.flatnonzero((mask != 0).any(axis=(1, 2)))
    if len(z) == 0:
        raise SettingsError("mask: the ROI is empty")
    counts = (mask != 0).sum(axis=(1, 2))
    centroid = float(np.sum(np.arange(len(counts)) * counts) / counts.sum())
    return int(z[np.argmin(np.abs(z - centroid))])


#: Contour colours of the QC overlay, one per drawn ROI: light Okabe-Ito hues that stand out
#: on any grey level over a black halo, each with its own line style as well.
_CONTOUR_COLOURS = ("#E69F00", "#56B4E9", "#CC79A7", "#009E73", "#F0E442", "#D55E00")
_CONTOUR_STYLES = ("-", (0, (3, 1.5)), (0, (1, 1)), "-.", (0, (5, 1, 1, 1)), (0, (2, 2)))


def _nice_length(span_mm: float) -> float:
    """A round scale-bar length (1, 2 or 5 times a power of ten, mm) near a quarter of span."""
    target = max(span_mm / 4.0, 1e-9)
    power = 10.0 ** np.floor(np.log10(target))
    return float(max((m * power for m in (1, 2, 5) if m * power <= target), default=power))


def _scale_bar(ax, n_cols: int, n_rows: int, c0: int, r0: int, pixel_mm: float) -> None:
    """A white bar with a black outline in the lower right corner, labelled in mm."""
    length_mm = _nice_length(n_cols * pixel_mm)
    length = length_mm / pixel_mm  # in columns
    x1 = c0 + n_cols - 0.5 - 0.06 * n_cols
    y = r0 + n_rows - 0.5 - 0.07 * n_rows
    for color, width, label in (("black", 4.0, "_scale_bar_halo"), ("white", 2.0, "scale_bar")):
        ax.plot(
            [x1 - length, x1],
            [y, y],
            color=color,
            linewidth=width,
            solid_capstyle="butt",
            label=label,
        )
    text = ax.text(
        x1 - length / 2,
        y - 0.05 * n_rows,
        f"{length_mm:g} mm",
        color="white",
        ha="center",
        va="bottom",
        fontsize=7,
        gid="scale_bar_text",
    )
    text.set_path_effects([patheffects.withStroke(linewidth=1.5, foreground="black")])


def qc_slice(
    image,
    mask,
    *,
    spacing_zyx: Sequence[float],
    z: int | None = None,
    labels: Mapping[int, str] | None = None,
    window: tuple[float, float] | None = None,
    window_name: str = "",
    crop_margin_mm: float | None = None,
    title: str | None = None,
    size_in: float = 3.0,
    unit: str = "",
    slice_label: str | None = None,
    habitats=None,
    n_habitats: int | None = None,
) -> Figure:
    """One axial slice with the ROI contours drawn on it, to check a segmentation by eye.

    Parameters
    ----------
    image : array-like, shape (z, y, x)
        Intensities (HU for CT, SUV for PET ...).
    mask : array-like, shape (z, y, x), or mapping of str to array-like
        Same grid as ``image``: a label map (integer label values, 0 background),
        or ROI name -> ROI mask (non-zero inside) for ROIs of several label maps,
        which may overlap; each is drawn and named as with ``labels``.
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm; sets the pixel aspect ratio and the scale bar.
    z : int, optional
        Slice index; default :func:`central_slice` of the first drawn ROI.
    labels : mapping of int to str, optional
        The ROIs to draw: label value -> name, in drawing order. Each value gets
        its own colour and line style, named in a legend; other values of the
        label map are not drawn. Default: one unnamed ROI, ``mask != 0``.
    window : (float, float), optional
        Display range in image units (e.g. ``(-1000, 400)`` HU); default
        the 0.5-99.5 percentiles of the shown slice.
    window_name : str
        What the window is (``"CT wide"``), named on the figure with its range.
    crop_margin_mm : float, optional
        Show only the drawn ROIs' bounding box on the slice plus this margin (mm).
    size_in : float
        Figure width and height in inches.
    unit : str
        Intensity unit of the window (``"HU"``, ``"SUV"``).
    slice_label : str, optional
        How the slice is named on the figure; default ``"z = <z>"``.
    habitats : array-like of int, shape (z, y, x), optional
        A habitat map on the image's grid (``radflow habitats apply``: 0 outside the ROI,
        1..K inside), drawn as half-transparent fills under the contours, habitat k in
        :func:`habitat_colours` ``[k - 1]``, each named in the legend (``habitat k``).
    n_habitats : int, optional
        K, for the colours and the legend; default the largest value of ``habitats``.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"qc"`` in voxel coordinates of the shown slice (x = column,
        y = row, offset by the crop); the contour lines run along the boundary
        between the ROI's pixels and the others (the 0.5 level of the ROI's
        indicator, :func:`skimage.measure.find_contours`), labelled ``"roi"``
        (no ``labels``) or ``"roi:<name>"``. A scale bar (line ``"scale_bar"``,
        a round number of mm) sits in the lower right corner; the x-label names
        the slice and the intensity window. With ``habitats``, an image labelled
        ``"habitats"`` (RGBA, transparent outside the ROI) lies under the contours.
    """
    image = np.asarray(image)
    mask = mask if isinstance(mask, Mapping) else np.asarray(mask)
    if image.ndim != 3:
        raise SettingsError(f"image must be 3-D (z, y, x), got shape {image.shape}")
    if not isinstance(mask, Mapping) and mask.shape != image.shape:
        raise SettingsError(f"mask shape {mask.shape} differs from image shape {image.shape}")
    try:
        spacing = np.asarray(spacing_mm(spacing_zyx))
    except SpacingError:
        raise SettingsError(
            f"spacing_zyx must be 3 positive values (mm), got {spacing_zyx!r}"
        ) from None
    if isinstance(mask, Mapping):
        if labels is not None:
            raise SettingsError("labels: give either a label map and labels, or ROI masks by name")
        if not mask:
            raise SettingsError("mask: no ROI to draw")
        rois = {f"roi:{name}": np.asarray(roi) != 0 for name, roi in mask.items()}
        for name, roi in rois.items():
            if roi.shape != image.shape:
                raise SettingsError(
                    f"mask {name[4:]!r}: shape {roi.shape} differs from image shape {image.shape}"
                )
        labels = {k + 1: name[4:] for k, name in enumerate(rois)}  # legend only
    elif labels is None:
        rois = {"roi": mask != 0}
    else:
        if not labels:
            raise SettingsError("labels: no ROI to draw")
        bad = [v for v in labels if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
        if bad or any(int(v) == 0 for v in labels):
            raise SettingsError(
                f"labels must map non-zero integer label values to names, got {dict(labels)!r}"
            )
        rois = {f"roi:{name}": mask == int(value) for value, name in labels.items()}
    if z is None:
        name, first = next(iter(rois.items()))
        if not first.any():
            which = f" ({name[4:]!r}, label {next(iter(labels))})" if labels is not None else ""
            raise SettingsError(f"mask: the ROI is empty{which}")
        z = central_slice(first)
    elif not 0 <= z < image.shape[0]:
        raise SettingsError(f"z={z} outside the image's {image.shape[0]} slices")
    pixels = image[z].astype(float)
    fills = _habitat_slice(habitats, n_habitats, image.shape, z)
    shown = {name: roi[z] for name, roi in rois.items()}
    union = np.logical_or.reduce(list(shown.values()))
    r0, c0 = 0, 0
    if crop_margin_mm is not None and union.any():
        margin = [int(np.ceil(crop_margin_mm / s)) for s in spacing[1:]]
        box = grow_box(bounding_box(union), margin, union.shape)
        r0, c0 = (s.start for s in box)
        pixels = pixels[box]
        shown = {name: roi[box] for name, roi in shown.items()}
        if fills is not None:
            fills = (fills[0][box], fills[1])
    if window is None:
        finite = pixels[np.isfinite(pixels)]
        window = tuple(np.percentile(finite, (0.5, 99.5))) if finite.size else (0.0, 1.0)
        window_name = window_name or "0.5-99.5th percentile"
    fig = _figure(size_in, size_in)
    ax = fig.add_subplot(label="qc")
    ax.imshow(
        pixels,
        cmap="gray",
        vmin=window[0],
        vmax=window[1],
        interpolation="nearest",
        aspect=spacing[1] / spacing[2],
        extent=(c0 - 0.5, c0 + pixels.shape[1] - 0.5, r0 + pixels.shape[0] - 0.5, r0 - 0.5),
    )
    handles = []
    habitat_handles = [] if fills is None else _draw_habitats(ax, *fills, r0, c0, spacing)
    for k, (name, roi) in enumerate(shown.items()):
        color = _CONTOUR_COLOURS[k % len(_CONTOUR_COLOURS)]
        style = _CONTOUR_STYLES[k % len(_CONTOUR_STYLES)]
        # Pad so that an ROI touching the crop edge still gets a closed contour.
        padded = np.pad(roi.astype(float), 1)
        for contour in skimage_measure.find_contours(padded, 0.5):
            rr, cc = contour[:, 0] - 1 + r0, contour[:, 1] - 1 + c0
            # A black halo under a light line: visible on any grey level.
            ax.plot(cc, rr, color="black", linewidth=2.4, label="_roi_halo")
            ax.plot(cc, rr, color=color, linewidth=1.2, linestyle=style, label=name)
        if labels is not None:
            handles.append(
                Line2D([], [], color=color, linewidth=1.5, linestyle=style, label=name[4:])
            )
    handles += habitat_handles
    if handles:
        legend = ax.legend(
            handles=handles,
            loc="upper left",
            fontsize=7,
            frameon=True,
            framealpha=0.75,
            handlelength=2.2,
            borderpad=0.3,
            labelspacing=0.2,
        )
        legend.set_gid("roi_legend")
    _scale_bar(ax, pixels.shape[1], pixels.shape[0], c0, r0, float(spacing[2]))
    ax.set_xlim(c0 - 0.5, c0 + pixels.shape[1] - 0.5)
    ax.set_ylim(r0 + pixels.shape[0] - 0.5, r0 - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    lo, hi = window
    caption = slice_label if slice_label is not None else f"z = {z}"
    range_text = f"{lo:.4g} to {hi:.4g}{f' {unit}' if unit else ''}"
    caption += f"\nwindow {window_name}: {range_text}" if window_name else f"\nwindow {range_text}"
    ax.set_xlabel(caption, fontsize=7.5)
    if title:
        ax.set_title(title, fontsize=8)
    return fig


# -- habitats ----------------------------------------------------------------


def habitat_colours(n_habitats: int) -> list[str]:
    """The colour of each habitat 1..K (hex): cividis from dark to light.

    Habitats are numbered by increasing mean of their first channel (radflow's habitat model),
    so the colours' lightness follows the habitat number, in colour and in greyscale.
    """
    if isinstance(n_habitats, bool) or not isinstance(n_habitats, (int, np.integer)):
        raise SettingsError(f"n_habitats must be a whole number >= 1, got {n_habitats!r}")
    if n_habitats < 1:
        raise SettingsError(f"n_habitats must be >= 1, got {n_habitats}")
    cmap = matplotlib.colormaps[_CMAP]
    stops = np.linspace(0.05, 0.95, n_habitats) if n_habitats > 1 else [0.5]
    return [matplotlib.colors.to_hex(cmap(float(t))) for t in stops]


def _habitat_slice(habitats, n_habitats, shape, z: int):
    """(habitat slice z, K) of a habitat map checked against the image, or None."""
    if habitats is None:
        return None
    habitats = np.asarray(habitats)
    if habitats.shape != tuple(shape):
        raise SettingsError(f"habitats shape {habitats.shape} differs from image shape {shape}")
    if habitats.dtype.kind not in "iu" or (habitats.size and habitats.min() < 0):
        raise SettingsError("habitats must hold integers, 0 outside the ROI and 1..K inside")
    found = int(habitats.max()) if habitats.size else 0
    k = found if n_habitats is None else int(n_habitats)
    if k < 1 or found > k:
        raise SettingsError(f"habitats: values up to {found}, n_habitats is {n_habitats}")
    return habitats[z], k


def _draw_habitats(ax, values: np.ndarray, n_habitats: int, r0: int, c0: int, spacing) -> list:
    """Half-transparent fills of the habitats of a slice; their legend handles."""
    colours = habitat_colours(n_habitats)
    rgba = np.zeros(values.shape + (4,))
    for k, colour in enumerate(colours, start=1):
        rgba[values == k] = (*matplotlib.colors.to_rgb(colour), 0.55)
    ax.imshow(
        rgba,
        interpolation="nearest",
        aspect=spacing[1] / spacing[2],
        extent=(c0 - 0.5, c0 + values.shape[1] - 0.5, r0 + values.shape[0] - 0.5, r0 - 0.5),
        label="habitats",
    )
    present = set(np.unique(values).tolist())
    return [
        Patch(facecolor=colours[k - 1], alpha=0.8, label=f"habitat {k}")
        for k in range(1, n_habitats + 1)
        if k in present
    ]


def habitat_fractions_plot(fractions, *, title: str | None = None, sort_by=None) -> Figure:
    """Stacked bars of each patient's habitat fractions (shares of the ROI's voxels).

    Parameters
    ----------
    fractions : pandas.DataFrame
        One row per patient (index: patient id), one column per habitat (named by its number
        k, or ``"habitat k"``), values in [0, 1]; a row without values (no habitat map) is
        drawn empty.
    title : str, optional
    sort_by : column of ``fractions``, optional
        Patients ordered by this habitat's fraction, largest first; default the first column.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"habitat_fractions"``: one bar segment per (patient, habitat), habitat k in
        :func:`habitat_colours` ``[k - 1]`` with its own hatch, named in the legend.
    """
    frame = _frame(fractions, "fractions").apply(pd.to_numeric, errors="coerce")
    values = frame.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < -1e-9 or finite.max() > 1 + 1e-9):
        raise SettingsError("fractions must lie in [0, 1]")
    key = frame.columns[0] if sort_by is None else sort_by
    if key not in frame.columns:
        raise SettingsError(f"sort_by: no column {key!r} in fractions")
    frame = frame.sort_values(key, ascending=False, na_position="last")
    colours = habitat_colours(frame.shape[1])
    n = len(frame)
    fig = _figure(min(11.0, max(5.0, 1.6 + 0.13 * n)), 3.2)
    ax = fig.add_subplot(label="habitat_fractions")
    bottom = np.zeros(n)
    x = np.arange(n)
    for k, column in enumerate(frame.columns):
        height = np.nan_to_num(frame[column].to_numpy(dtype=float))
        name = str(column) if str(column).startswith("habitat") else f"habitat {column}"
        ax.bar(
            x,
            height,
            bottom=bottom,
            width=0.85,
            color=colours[k],
            edgecolor="black",
            linewidth=0.3,
            hatch=_HATCHES[k % len(_HATCHES)],
            label=name,
        )
        bottom += height
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of the ROI's voxels")
    ax.set_xlabel(
        f"patients ({n}), by {key if str(key).startswith('habitat') else f'habitat {key}'} fraction"
    )
    ax.set_xticks([])
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_title(title or "Habitat fractions per patient")
    return fig


def reference_scatter(
    x, y, *, xlabel: str, ylabel: str, title: str | None = None, identity: bool = False
) -> Figure:
    """One point per patient: a measured value against a reference, with both correlations.

    Parameters
    ----------
    x, y : array-like, same length (>= 3)
        Reference (x) and measured value (y); pairs with a missing value are left out.
    xlabel, ylabel : str
    title : str, optional
        Default: Pearson r and Spearman rho with the number of patients.
    identity : bool
        Draw the line y = x (both are the same quantity, e.g. two volume fractions).

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"agreement"``: the points (``"patients"``), the least-squares line (``"fit"``)
        and, with ``identity``, the line ``"identity"``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise SettingsError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        raise SettingsError(f"reference_scatter needs 3 patients with both values, got {len(x)}")
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot(label="agreement")
    ax.scatter(x, y, s=18, color=OKABE_ITO[2], edgecolor="black", linewidth=0.4, label="patients")
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.array([x.min(), x.max()])
        ax.plot(xs, intercept + slope * xs, color=OKABE_ITO[6], linewidth=1.2, label="fit")
    if identity:
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot(
            [low, high], [low, high], color="black", linestyle="--", linewidth=0.8, label="identity"
        )
    if title is None:
        r = np.corrcoef(x, y)[0, 1] if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
        rho = spearmanr(x, y)[0]
        title = f"Pearson r {r:.2f}, Spearman rho {rho:.2f} (n = {len(x)})"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    return fig
