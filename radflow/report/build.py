"""Gather a study's results into the HTML report.

:func:`build_report` starts from a study spec (``radflow model fit``'s
input, fitted here) or from the folder ``radflow model fit -o OUTDIR``
wrote, and adds what the store and the feature table hold (cohort, QC
slices, failures). Each figure is made by :mod:`radflow.report.figures` from
plain arrays; a section whose data the study lacks says so instead.

What is shown, and from where:

cohort
    The store's manifest (series per institution and modality, failed
    inputs) and the design (patients, events, follow-up).
QC gallery
    The central slice of each series' ROI, from the store; failures from the
    manifest and the feature table's errors table.
heat-map, correlation
    The features the fitted pipeline passes to its model (after
    harmonisation, scaling and selection), z-scored.
habitats
    Each patient's habitat fractions (the design's ``..._habitat_Fraction_<k>`` columns, as
    extracted), and, with a :class:`~radflow.report.habitats.HabitatReference` (the demo: the
    generator's hidden necrosis), one habitat's fraction against it with both correlations;
    whether habitat features are among the model's selected features. The QC gallery fills
    each drawn ROI with its habitats where the store holds its habitat map.
ICC
    The pipeline's ICC filter (``icc_``, ``threshold``), when it has one:
    the value it compares (ICC or its lower confidence bound) of every
    feature the stability study measured.
ComBat
    The pipeline's ``harmonise`` step applied to the whole cohort: the
    image features before and after it.
selected features
    The model's coefficients (Cox: log hazard ratio per SD) or importances.
KM, time-dependent AUC
    Out-of-fold risks of the validation: never a patient scored by a model
    that saw it. A model folder holds them as ``predictions.parquet``, one
    row per (scheme, patient) with columns ``patient, institution, scheme,
    fold, risk, time, event`` (binary endpoints: ``label`` instead of
    ``time, event``), the layout of :func:`radflow.model.artefacts.save_study`,
    read by :class:`radflow.model.artefacts.StudyOutputs`. Kaplan-Meier curves
    for each scheme (nested CV, leave-one-institution-out), risk groups split
    at the median of that scheme's out-of-fold risk, with numbers at risk and
    the log-rank p-value; the time-dependent AUC of the nested-CV risks
    (else LOIO).
validation
    Each fold's and institution's headline metric with its bootstrap CI.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radflow._lazy import load
from radflow._version import __version__
from radflow.errors import InputError
from radflow.io.records import roi_key
from radflow.model import metrics
from radflow.model.artefacts import StudyOutputs, predictions_table
from radflow.model.design import load_design
from radflow.model.spec import load_spec
from radflow.model.validation import run_study
from radflow.pipeline.manifest import read_manifest
from radflow.pipeline.progress import Progress
from radflow.pipeline.table import read_errors
from radflow.report.figures import (
    central_slice,
    cindex_forest,
    combat_before_after,
    correlation_heatmap,
    embedding_plot,
    feature_heatmap,
    habitat_fractions_plot,
    icc_distribution,
    km_plot,
    qc_slice,
    reference_scatter,
    selected_features_plot,
    td_auc_plot,
)
from radflow.report.habitats import (
    HabitatReference,
    habitat_feature_columns,
    habitat_fractions,
    reference_agreement,
)
from radflow.report.html import QcCase, QcImage, ReportContent, write_html
from radflow.store.catalogue import list_series
from radflow.store.habitats import habitat_key, habitat_record
from radflow.store.read import open_label, open_volume

pd = load("pandas")
sksurv_util = load("sksurv.util")

__all__ = [
    "FitOutputs",
    "build_report",
    "load_fit_outputs",
    "model_rois",
    "qc_gallery",
    "write_demo_report",
]

#: Display windows of the QC slices: modality -> (name, (low, high) in image units); other
#: modalities: the shown slice's 0.5-99.5th percentiles (named so on the figure).
_WINDOWS = {"CT": ("CT wide", (-1000.0, 400.0))}
_UNITS = {"CT": "HU", "PT": "SUV"}
_HEATMAP_MAX_FEATURES = 60
_TD_AUC_BOOT = 200


@dataclass
class FitOutputs:
    """A fitted study: what ``radflow model fit`` leaves behind, loaded.

    Attributes
    ----------
    spec : radflow.model.spec.StudySpec
    design : radflow.model.design.Design
        The data of the spec (``load_design``).
    pipeline : sklearn.pipeline.Pipeline or None
        Fitted on all patients.
    validation : dict of str to dict
        Scheme (``"nested_cv"``, ``"loio"``) -> ``ValidationResult.as_dict()``.
    predictions : dict of str to pandas.DataFrame
        Scheme -> out-of-fold ``fold`` and ``risk`` per patient (index),
        with ``institution``, ``time`` and ``event`` when read from
        ``predictions.parquet`` (the outcomes then come from there, else
        from the design).
    command : str
        The command that fitted it.
    """

    spec: object
    design: object
    pipeline: object = None
    validation: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    command: str = ""


# -- loading ------------------------------------------------------------------


def _fit_spec(spec_path: Path, progress: bool) -> FitOutputs:
    """Validate and fit a spec as ``radflow model fit`` does
    (:func:`~radflow.model.validation.run_study`)."""
    spec = load_spec(spec_path)
    _say(progress, f"report: reading the study of {spec_path}")
    design = load_design(spec)
    _say(
        progress,
        f"report: validating ({', '.join(spec.validation.schemes)}) and fitting the final model",
    )
    result = run_study(spec, design)
    return FitOutputs(
        spec,
        design,
        result.model,
        {k: v.as_dict() for k, v in result.validations.items()},
        _by_scheme(predictions_table(result.validations, design)),
        command=f"radflow model fit {shlex.quote(str(spec_path))}",
    )


def _by_scheme(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``predictions.parquet``'s long table as scheme -> rows indexed by patient."""
    return {
        str(scheme): part.drop(columns="scheme").set_index("patient")
        for scheme, part in frame.groupby("scheme", sort=False)
    }


def _find(obj, test, depth: int = 0):
    """First value inside nested dicts/lists/attributes of ``obj`` for which ``test`` holds."""
    if test(obj):
        return obj
    if depth > 4:
        return None
    children = (
        obj.values()
        if isinstance(obj, dict)
        else obj
        if isinstance(obj, (list, tuple))
        else vars(obj).values()
        if hasattr(obj, "__dict__") and not hasattr(obj, "fit")
        else ()
    )
    for child in children:
        found = _find(child, test, depth + 1)
        if found is not None:
            return found
    return None


def load_fit_outputs(model_dir, *, progress: bool = False) -> FitOutputs:
    """Load what ``radflow model fit SPEC -o OUTDIR`` wrote.

    The folder is read by :class:`radflow.model.artefacts.StudyOutputs`, the reader
    ``radflow model predict`` uses too: ``metrics.json`` (each validation scheme as
    ``ValidationResult.as_dict()``), the artefact ``model.joblib`` (the spec and the fitted
    pipeline) and the out-of-fold predictions ``predictions.parquet`` (layout in the module
    docstring; without it the Kaplan-Meier and time-dependent AUC sections say so). The
    design is re-read from the spec's files.

    Raises
    ------
    radflow.errors.InputError
        No such folder, no metrics JSON, no model artefact, or a predictions file of another
        layout.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(root, "no such model folder (written by `radflow model fit -o OUTDIR`)")
    outputs = StudyOutputs.open(root)
    validation = outputs.validation  # reads metrics.json first: is this a model folder at all?
    spec = outputs.spec
    predictions = outputs.predictions
    _say(progress, f"report: reading the study of {spec.source or model_dir}")
    return FitOutputs(
        spec,
        outputs.design(),
        outputs.pipeline,
        validation,
        _by_scheme(predictions) if predictions is not None else {},
        command=outputs.command,
    )


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


# -- sections -----------------------------------------------------------------


_TIME_UNITS = (("month", "months"), ("week", "weeks"), ("day", "days"), ("year", "years"))


def time_unit(fit: FitOutputs | None) -> str:
    """The unit of the survival times, read from the endpoint's time column name.

    ``os_months`` -> ``"months"`` (likewise weeks, days, years); a name that
    says none: ``"<column> units"``, so that no figure claims a unit it was not given.
    """
    column = str(getattr(getattr(getattr(fit, "spec", None), "endpoint", None), "time", "") or "")
    lowered = column.lower()
    for word, unit in _TIME_UNITS:
        if word in lowered:
            return unit
    return f"{column} units" if column else "time units"


def _cohort(fit: FitOutputs | None, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per institution: patients and series per modality, failures, events, follow-up.

    Median follow-up: the median observed time (event or censoring) of the
    model's patients, in :func:`time_unit`, named in the column.
    """
    rows = {}
    follow_up = f"median follow-up ({time_unit(fit)})"
    if not manifest.empty:
        series = manifest[manifest["item"] == "series"]
        for inst, part in manifest.groupby("institution"):
            row = rows.setdefault(inst, {})
            row["patients (store)"] = part["case_id"].nunique()
            ok = series[(series["institution"] == inst) & (series["status"] == "ok")]
            for modality, n in ok.groupby("modality")["series_id"].nunique().items():
                row[f"{modality} series"] = n
            row["failed inputs"] = int((part["status"] == "failed").sum())
    if fit is not None:
        design = fit.design
        inst = pd.Series(np.asarray(design.institution).astype(str))
        y = design.y
        for name, idx in inst.groupby(inst).groups.items():
            row = rows.setdefault(name, {})
            row["patients (model)"] = len(idx)
            if y is not None and y.dtype.names:
                event, t = y[y.dtype.names[0]][idx], y[y.dtype.names[1]][idx]
                row["events"] = int(np.sum(event))
                row[follow_up] = float(np.median(t))
            elif y is not None:
                row["positives"] = int(np.sum(np.asarray(y)[idx]))
    frame = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    frame.index.name = "institution"
    if not frame.empty:
        total = frame.sum(numeric_only=True)
        if follow_up in frame and fit is not None and fit.design.y.dtype.names:
            total[follow_up] = float(np.median(fit.design.y[fit.design.y.dtype.names[1]]))
        frame.loc["all"] = total
        counts = [c for c in frame.columns if c != follow_up]
        frame[counts] = frame[counts].fillna(0).astype(int)
    return frame


def _failures(store, table) -> dict[str, list[str]]:
    """Case -> what the pipeline recorded as failed for it (ingest and extraction)."""
    out: dict[str, list[str]] = {}
    if store is not None:
        manifest = read_manifest(store)
        if not manifest.empty:
            for row in manifest[manifest["status"] == "failed"].itertuples():
                where = row.series_id or row.source or row.item
                out.setdefault(row.case_id, []).append(f"ingest {where}: {row.error}")
    if table is not None and Path(table).is_dir():
        errors = read_errors(table).to_pandas()
        for row in errors.itertuples():
            where = "/".join(str(v) for v in (row.series_id, row.roi) if v)
            out.setdefault(row.case_id, []).append(
                f"extraction {where}: {row.error_type}: {row.message}"
            )
    return out


def model_rois(fit: FitOutputs | None) -> set[tuple[str, str]] | None:
    """(modality, ROI key) of every ROI whose features the model reads.

    Read from the design's image columns (``<modality>.<roi>.<feature>``); None
    when there is no fitted study or it has no image features.
    """
    if fit is None or not getattr(fit.design, "image_columns", None):
        return None
    return {
        (parts[0], parts[1])
        for parts in (str(c).split(".", 2) for c in fit.design.image_columns)
        if len(parts) == 3
    }


def _series_rois(store, info, rois) -> dict[str, object]:
    """ROI name -> lazy ROI mask of one series: each label value ``rois`` names (all if None)."""
    out: dict[str, object] = {}
    for key in info.label_keys:
        if habitat_record(store, info.case, info.series, key) is not None:
            continue  # a habitat map: drawn as fills inside its ROI (_habitat_map)
        label = open_label(store, info.case, info.series, key)
        names = dict(label.attrs.get("rois") or {})
        for value, name in sorted(names.items()):
            if rois is not None and (info.modality, roi_key(name)) not in rois:
                continue
            shown = name if name not in out else f"{name} ({key} {value})"
            out[shown] = (label, int(value))
    return out


def _habitat_map(store, info, chosen: dict):
    """(name, lazy habitat map, K) of the first drawn ROI that has a habitat map, or None."""
    for name in chosen:
        key = habitat_key(name.split(" (")[0])
        record = (
            habitat_record(store, info.case, info.series, key) if key in info.label_keys else None
        )
        if record is not None:
            label = open_label(store, info.case, info.series, key)  # lazy: a slice is read
            return name, label, int(record.get("n_habitats") or 0) or None
    return None


def _qc_image(store, info, chosen: dict) -> QcImage:
    caption = f"{info.modality}: {', '.join(chosen)}"
    column = info.modality
    arrays: dict[int, np.ndarray] = {}  # each label map read once, however many ROIs it holds
    masks = {
        name: arrays.setdefault(id(label), np.asarray(label)) == value
        for name, (label, value) in chosen.items()
    }
    first = next(iter(masks.values()))
    if not first.any():
        return QcImage(caption, problem=f"empty ROI {next(iter(masks))}", column=column)
    z = central_slice(first)
    image = np.asarray(open_volume(store, info.case, info.series)[z : z + 1])
    name, window = _WINDOWS.get(info.modality, ("", None))
    habitats = _habitat_map(store, info, chosen)
    fill = {}
    if habitats is not None:
        roi, values, k = habitats
        fill = {"habitats": np.asarray(values[z : z + 1]), "n_habitats": k}
        caption += f"; habitats of {roi}"
    fig = qc_slice(
        image,
        {name_: mask[z : z + 1] for name_, mask in masks.items()},
        spacing_zyx=info.spacing_zyx,
        z=0,
        window=window,
        window_name=name,
        crop_margin_mm=40.0,
        size_in=2.4,
        unit=_UNITS.get(info.modality, ""),
        slice_label=f"slice {z + 1} of {info.shape_zyx[0]}",
        **fill,
    )
    return QcImage(caption, fig, column=column)


def qc_gallery(store, *, rois=None, failures=None, progress: bool = False) -> list[QcCase]:
    """The QC gallery's cases: the central slice of each series' ROIs with their contours.

    Parameters
    ----------
    store : path-like
        The volume store.
    rois : set of (str, str), optional
        (modality, ROI key) of the ROIs to draw, e.g. :func:`model_rois` of the
        study: only those label values are drawn (a label map's other labels are
        not), and series without one are left out. Default: every ROI of every
        label map.
    failures : dict of str to list of str, optional
        Case -> what failed for it (the case is flagged).
    progress : bool

    Returns
    -------
    list of radflow.report.html.QcCase
        One per case, ordered by institution; each case's images in the same
        modality order (a missing modality is a placeholder), so that the
        gallery's columns line up. Each image draws its ROIs (the first one's
        central slice) each in its own colour, named in a legend.
    """
    failures = failures or {}
    manifest = read_manifest(store)
    institution = {} if manifest.empty else dict(zip(manifest["case_id"], manifest["institution"]))
    by_case: dict[str, list] = {}
    for info in list_series(store):
        by_case.setdefault(info.case, []).append(info)
    cases = sorted(set(by_case) | set(failures), key=lambda c: (institution.get(c, ""), c))
    bar = Progress(len(cases), "QC cases") if progress and cases else None
    found: dict[str, list[tuple]] = {}
    for case in cases:
        found[case] = []
        for info in sorted(by_case.get(case, []), key=lambda i: (i.modality, i.series)):
            chosen = _series_rois(store, info, rois)
            if chosen:
                found[case].append((info, chosen))
    modalities = sorted({info.modality for items in found.values() for info, _ in items})
    out = []
    for case in cases:
        item = QcCase(case, institution.get(case, ""), failures=list(failures.get(case, [])))
        for modality in modalities if found[case] else ():
            series = [(info, chosen) for info, chosen in found[case] if info.modality == modality]
            if not series:
                item.images.append(
                    QcImage(modality, problem=f"no {modality} series", column=modality)
                )
            for info, chosen in series:
                item.images.append(_qc_image(store, info, chosen))
        out.append(item)
        if bar:
            bar.update(failed=int(bool(item.failures)))
    if bar:
        bar.close()
    return out


def _model_input(fit: FitOutputs) -> pd.DataFrame | None:
    """The features the fitted model sees, one row per patient."""
    if fit.pipeline is None:
        return None
    Xt = fit.pipeline[:-1].transform(fit.design.X)
    if not isinstance(Xt, pd.DataFrame):
        Xt = pd.DataFrame(
            Xt, index=fit.design.X.index, columns=fit.pipeline[:-1].get_feature_names_out()
        )
    return Xt.apply(pd.to_numeric, errors="coerce")


def _weights(fit: FitOutputs, names) -> tuple[pd.Series | None, str]:
    model = fit.pipeline[-1] if fit.pipeline is not None else None
    if model is None:
        return None, ""
    if hasattr(model, "block_models_"):  # late fusion: each block model's coefficients
        parts = []
        for block, columns in model.blocks_.items():
            coef = getattr(model.block_models_[block][-1], "coef_", None)
            if coef is None:
                return None, ""
            coef = np.asarray(coef, dtype=float)
            parts.append(pd.Series(coef[:, -1] if coef.ndim == 2 else coef.ravel(), index=columns))
        return pd.concat(parts), "block-model coefficient (log hazard ratio per SD)"
    coef = getattr(model, "coef_", None)
    if coef is not None:
        coef = np.asarray(coef, dtype=float)
        coef = coef[:, -1] if coef.ndim == 2 else coef.ravel()
        return pd.Series(coef, index=list(names)), "coefficient (log hazard ratio per SD)"
    importances = getattr(model, "feature_importances_", None)
    if importances is not None:
        return pd.Series(np.asarray(importances, float), index=list(names)), "importance"
    return None, ""


def _stage_names(fit: FitOutputs, codes: pd.Series) -> pd.Series:
    """Stage of each patient by name: an ordinal column's codes mapped back to its levels.

    The spec's ``ordinal: {stage: [I, II, III, IV]}`` encodes I as 0 ... IV as 3;
    the bar shows the names in that order, ``?`` where the stage is missing.
    """
    block = getattr(fit.spec, "clinical_block", None)
    levels = list((getattr(block, "ordinal", None) or {}).get("stage") or [])
    names = codes.map(
        lambda v: (
            "?"
            if pd.isna(v)
            else str(levels[int(v)])
            if levels and float(v).is_integer() and 0 <= int(v) < len(levels)
            else f"{v:g}"
        )
    )
    order = [str(v) for v in levels] or sorted(set(names) - {"?"})
    order += sorted(set(names) - set(order) - {"?"}) + ["?"]
    return pd.Series(pd.Categorical(names, categories=order, ordered=True), index=codes.index)


def _annotations(fit: FitOutputs, index) -> pd.DataFrame:
    design = fit.design
    ann = pd.DataFrame(
        {"institution": np.asarray(design.institution).astype(str)}, index=design.X.index
    )
    stage = next(
        (c for c in ("stage", "clinical.stage") if c in design.X),
        next((c for c in design.X.columns if str(c).lower().endswith("stage")), None),
    )
    if stage is not None:
        ann["stage"] = _stage_names(fit, design.X[stage])
    y = design.y
    if y is not None and y.dtype.names:
        ann["event"] = np.where(y[y.dtype.names[0]], "event", "censored")
    elif y is not None:
        ann["outcome"] = np.asarray(y).astype(int).astype(str)
    return ann.loc[index]


def _harmonise_figures(fit: FitOutputs, content) -> None:
    pipe = fit.pipeline
    if pipe is None or "harmonise" not in pipe.named_steps:
        content.notes["combat"] = "The study's pipeline has no harmonisation step."
        return
    k = list(pipe.named_steps).index("harmonise")
    before = pipe[:k].transform(fit.design.X)
    after = pipe[: k + 1].transform(fit.design.X)
    columns = [c for c in fit.design.image_columns if c in before.columns and c in after.columns]
    before = before[columns].apply(pd.to_numeric, errors="coerce")
    after = after[columns].apply(pd.to_numeric, errors="coerce")
    batch = np.asarray(fit.design.institution).astype(str)
    content.figures["combat"] = [
        combat_before_after(before, after, batch),
        embedding_plot(
            {"before ComBat": before, "after ComBat": after},
            batch,
            title="PCA of the image features",
        ),
    ]
    content.notes["combat"] = (
        "ComBat fitted on all patients (the validation refits it inside each training fold). "
        "Boxes: the features with the strongest institution effect before harmonisation, "
        "with the Kruskal-Wallis p-value across institutions."
    )


_SCHEME_TITLES = {"nested_cv": "nested cross-validation", "loio": "leave-one-institution-out"}


def _out_of_fold(fit: FitOutputs, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold risk and (event, time) of the patients a scheme scored.

    Outcomes come with the predictions when read from ``predictions.parquet``
    (exactly what the validation scored), else from the design.
    """
    pred = fit.predictions[scheme]
    pred = pred[pred["risk"].notna()]
    if {"time", "event"} <= set(pred.columns):
        y = sksurv_util.Surv.from_arrays(
            event=pred["event"].to_numpy(bool), time=pred["time"].to_numpy(float)
        )
        return pred["risk"].to_numpy(float), y
    at = fit.design.X.index.get_indexer(pred.index)
    if (at < 0).any():
        raise ValueError(f"{scheme}: out-of-fold predictions name patients absent from the study")
    return pred["risk"].to_numpy(float), fit.design.y[at]


def _survival_figures(fit: FitOutputs, content) -> None:
    schemes = [s for s in ("nested_cv", "loio") if s in fit.predictions]
    survival = fit.design.y is not None and fit.design.y.dtype.names is not None
    if not schemes or not survival:
        reason = (
            "no out-of-fold predictions in the model outputs"
            if not schemes
            else "the endpoint is binary"
        )
        content.notes["km"] = content.notes["td_auc"] = f"Not available: {reason}."
    else:
        oof = {scheme: _out_of_fold(fit, scheme) for scheme in schemes}
        content.figures["km"], notes = [], []
        for scheme, (risk, yk) in oof.items():
            groups = metrics.risk_groups(risk, yk, method="median")
            label = np.where(groups.high, "high risk", "low risk")
            content.figures["km"].append(
                km_plot(
                    yk[yk.dtype.names[1]],
                    yk[yk.dtype.names[0]],
                    label,
                    p_value=groups.logrank.p,
                    group_order=["low risk", "high risk"],
                    title=_SCHEME_TITLES[scheme],
                    time_unit=time_unit(fit),
                )
            )
            notes.append(
                f"{_SCHEME_TITLES[scheme]}: {len(risk)} patients, "
                f"{int(groups.high.sum())} high risk, log-rank p {groups.logrank.p:.2g}"
            )
        content.notes["km"] = (
            "Risk groups split at the median of the out-of-fold predicted risk (each patient "
            "scored by the model of the fold that did not train on it); "
            + "; ".join(notes)
            + ". Numbers at risk count patients still followed at each time."
        )
        scheme = schemes[0]
        risk, yk = oof[scheme]
        times = metrics.evaluation_times(yk, quantiles=np.linspace(0.1, 0.8, 8))
        if len(times) >= 2:
            auc, mean_auc = metrics.time_dependent_auc(yk, risk, times=times)
            bands = [
                metrics.bootstrap(
                    lambda yy, rr, t=t: metrics.time_dependent_auc(yy, rr, times=[t])[1],
                    yk,
                    risk,
                    n_boot=min(_TD_AUC_BOOT, fit.spec.bootstrap),
                    seed=fit.spec.seed,
                )
                for t in times
            ]
            content.figures["td_auc"] = [
                td_auc_plot(
                    times,
                    auc,
                    low=[b.low for b in bands],
                    high=[b.high for b in bands],
                    mean_auc=mean_auc,
                    time_unit=time_unit(fit),
                )
            ]
            content.notes["td_auc"] = (
                f"Cumulative/dynamic AUC of the out-of-fold risk "
                f"({_SCHEME_TITLES[scheme]}) at quantiles of the event "
                "times, with bootstrap 95% CIs."
            )
        else:
            content.notes["td_auc"] = "Not available: too few distinct event times."
    rows = []
    for scheme_name, result in fit.validation.items():
        headline = "harrell_c" if result.get("endpoint") == "survival" else "roc_auc"
        kind = "institution" if scheme_name == "loio" else "fold"
        for fold in result.get("folds", []):
            est = fold.get("metrics", {}).get(headline)
            if est:
                rows.append(
                    {
                        "label": f"{scheme_name}: {fold['name']}",
                        "estimate": est["value"],
                        "low": est["low"],
                        "high": est["high"],
                        "group": kind,
                    }
                )
        est = result.get("pooled", {}).get(headline)
        if est:
            rows.append(
                {
                    "label": f"{scheme_name}: pooled",
                    "estimate": est["value"],
                    "low": est["low"],
                    "high": est["high"],
                    "group": "pooled",
                }
            )
    if rows:
        frame = pd.DataFrame(rows)
        metric = (
            "C-index (Harrell)"
            if "harrell_c" in json.dumps(list(fit.validation.values()))
            else "ROC AUC"
        )
        content.figures["validation"] = [cindex_forest(frame, metric=metric)]
        content.tables["validation"] = frame.set_index("label")
        content.notes["validation"] = (
            "Each outer fold (nested CV) and each held-out institution "
            "(leave-one-institution-out), with percentile bootstrap CIs."
        )
    else:
        content.notes["validation"] = "Not available: the model outputs hold no validation results."


def _feature_figures(fit: FitOutputs, content) -> None:
    Xt = _model_input(fit)
    if Xt is None or Xt.shape[1] == 0:
        for key in ("heatmap", "correlation", "selected"):
            content.notes[key] = "Not available: no fitted pipeline in the model outputs."
    else:
        weights, kind = _weights(fit, Xt.columns) if fit.pipeline is not None else (None, "")
        shown = Xt
        if weights is not None:
            nonzero = weights[weights != 0]
            if len(nonzero):
                shown = Xt[list(nonzero.abs().sort_values(ascending=False).index)]
            content.figures["selected"] = [
                selected_features_plot(
                    weights[weights != 0] if (weights != 0).any() else weights, kind=kind
                )
            ]
            content.notes["selected"] = (
                f"{int((weights != 0).sum())} of {len(weights)} model "
                f"inputs with a non-zero {kind.split(' ')[0]}."
            )
            habitat = habitat_feature_columns(weights.index)
            if habitat:
                chosen = habitat_feature_columns(weights.index[weights != 0])
                content.notes["selected"] += (
                    f" Habitat features among them: {len(chosen)} of the {len(habitat)} "
                    "habitat inputs"
                    + (f" ({', '.join(chosen)})." if chosen else "; none selected.")
                )
        else:
            content.notes["selected"] = "The model has neither coefficients nor importances."
        final = fit.pipeline[-1]
        if hasattr(final, "block_models_"):
            blocks = ", ".join(f"{b} {w:+.2f}" for b, w in final.weights_.items())
            content.notes["selected"] += (
                " Late fusion: one model per block, stacked by a Cox "
                f"model with weights per block risk {blocks}."
            )
        shown = shown.iloc[:, :_HEATMAP_MAX_FEATURES]
        content.figures["heatmap"] = [
            feature_heatmap(shown, annotations=_annotations(fit, shown.index))
        ]
        content.notes["heatmap"] = (
            f"{shown.shape[1]} selected features (rows) x {len(shown)} "
            "patients, z-scored, average-linkage clustering."
        )
        if shown.shape[1] >= 2:
            content.figures["correlation"] = [correlation_heatmap(shown)]
            content.notes["correlation"] = (
                f"Spearman r between the {shown.shape[1]} features of the heat-map, ordered by "
                "average-linkage clustering on 1 - |r|: blocks of strongly correlated "
                "features carry redundant information."
            )
        else:
            content.notes["correlation"] = "Only one feature selected."
    icc_step = next(
        (
            s
            for s in (fit.pipeline.named_steps.values() if fit.pipeline is not None else ())
            if hasattr(s, "icc_")
        ),
        None,
    )
    if icc_step is None:
        icc_step = _find(fit.pipeline, lambda o: hasattr(o, "icc_")) if fit.pipeline else None
    if icc_step is not None:
        measured = np.isfinite(icc_step.icc_)
        value = (
            icc_step.form
            if icc_step.statistic == "icc"
            else f"lower 95% CI bound of {icc_step.form}"
        )
        stable = int(np.sum(icc_step.icc_[measured] >= icc_step.threshold))
        content.figures["icc"] = [
            icc_distribution(
                icc_step.icc_,
                threshold=icc_step.threshold,
                title=f"{stable} of {int(measured.sum())} features with {value} >= "
                f"{icc_step.threshold:g}",
                xlabel=value,
            )
        ]
        kept = int((~measured & icc_step.support_).sum())
        content.notes["icc"] = (
            f"The pipeline's stability filter keeps features whose {value} across the "
            f"perturbations of the stability study reaches {icc_step.threshold:g}: {stable} of "
            f"the {int(measured.sum())} it measured."
            + (
                f" {kept} inputs without an ICC (other modalities or ROIs, clinical, genomic) "
                "pass unfiltered."
                if kept
                else ""
            )
        )
    else:
        content.notes["icc"] = (
            "Not available: the pipeline has no ICC stability filter "
            "(radflow model stats computes the ICCs)."
        )


def _habitat_figures(fit: FitOutputs, content, reference: HabitatReference | None) -> None:
    """Habitat fractions per patient; one habitat's fraction against a reference."""
    found = habitat_fractions(fit.design.X)
    if not found:
        content.notes["habitats"] = (
            "Not available: the model's image features hold no habitat features "
            "(radflow habitats fit/apply, then featureClass habitat in radflow run)."
        )
        return
    figures, notes, rows = [], [], []
    for where, frame in found.items():
        figures.append(habitat_fractions_plot(frame, title=f"Habitat fractions of {where}"))
        for k in frame.columns:
            rows.append(
                {
                    "ROI": where,
                    "habitat": int(k),
                    "patients": int(frame[k].notna().sum()),
                    "mean fraction": float(frame[k].mean()),
                    "SD": float(frame[k].std()),
                }
            )
    notes.append(
        f"Share of each ROI's voxels in each habitat, one bar per patient "
        f"({', '.join(found)}), ordered by the fraction of habitat 1; habitats are numbered by "
        "increasing mean of the habitat model's first channel and coloured as in the QC gallery."
    )
    if reference is not None:
        agreement = reference_agreement(fit.design.X, reference)
        if agreement is None:
            notes.append(
                f"No comparison with the {reference.name}: the design has no fraction of "
                f"habitat {reference.habitat} with 3 patients holding both values."
            )
        else:
            what = reference.habitat_name or f"habitat {reference.habitat}"
            figures.append(
                reference_scatter(
                    agreement.reference,
                    agreement.fraction,
                    xlabel=reference.name,
                    ylabel=f"{what} fraction",
                    identity=True,
                )
            )
            notes.append(agreement.text(reference) + ".")
    content.figures["habitats"] = figures
    content.tables["habitats"] = pd.DataFrame(rows).set_index(["ROI", "habitat"])
    content.notes["habitats"] = " ".join(notes)


def build_content(
    fit: FitOutputs | None,
    *,
    store=None,
    table=None,
    progress: bool = True,
    habitat_reference: HabitatReference | None = None,
):
    """Every figure and table of the report, as a :class:`radflow.report.html.ReportContent`.

    ``habitat_reference``: a per-patient quantity one habitat's fraction is shown against
    (:class:`radflow.report.habitats.HabitatReference`).
    """
    content = ReportContent()
    manifest = read_manifest(store) if store is not None else pd.DataFrame()
    content.tables["cohort"] = _cohort(fit, manifest)
    content.notes["cohort"] = (
        "Patients and series per institution and modality in the store, failed inputs, and the "
        "model's patients with their events; median follow-up is the median observed time "
        f"(event or censoring) in {time_unit(fit)}."
        if fit is not None and fit.design.y is not None and fit.design.y.dtype.names
        else "Patients and series per institution and modality."
    )
    failures = _failures(store, table)
    if store is not None:
        rois = model_rois(fit)
        content.qc = qc_gallery(store, rois=rois, failures=failures, progress=progress)
        content.notes["qc"] = (
            "Central slice of each series' ROI, each ROI "
            + ("the model reads" if rois is not None else "of the label maps")
            + " outlined in its own colour and named (a label map's other labels are not drawn); "
            "a ROI with a habitat map (radflow habitats apply) is filled with its habitats; "
            "scale bar in mm, intensity window named under each image; cases with a failed "
            "input or extraction are flagged."
        )
    else:
        content.notes["qc"] = "Not available: no store given."
    if fit is not None:
        steps = [
            ("features", _feature_figures),
            ("habitats", lambda f, c: _habitat_figures(f, c, habitat_reference)),
            ("harmonisation", _harmonise_figures),
            ("survival", _survival_figures),
        ]
        for name, step in steps:
            _say(progress, f"report: {name} figures")
            step(fit, content)
    content.provenance = {
        "radflow version": __version__,
        "feature set": fit.design.feature_set if fit is not None else "-",
        "model": fit.command if fit is not None else "-",
        "report command": " ".join(shlex.quote(a) for a in ["radflow"] + sys.argv[1:])
        if Path(sys.argv[0]).name == "radflow"
        else "radflow.report.build_report",
    }
    return content


def build_report(
    spec_or_model_dir,
    out_html,
    *,
    store=None,
    table=None,
    progress: bool = True,
    command: str | None = None,
    habitat_reference: HabitatReference | None = None,
) -> Path:
    """Write the study report as one self-contained HTML file.

    Parameters
    ----------
    spec_or_model_dir : path-like
        A study spec (YAML; the model is fitted and validated here, as
        ``radflow model fit`` would) or the folder ``radflow model fit -o``
        wrote.
    out_html : path-like
        The report; written under a temporary name, then renamed.
    store : path-like, optional
        Volume store of the study: cohort, QC gallery and ingest failures.
    table : path-like, optional
        Feature table (its errors table flags extraction failures); default
        the spec's.
    progress : bool
        Progress lines on stderr.
    command : str, optional
        The command line shown in the footer (default: this process's).
    habitat_reference : radflow.report.habitats.HabitatReference, optional
        A per-patient quantity the fraction of one habitat is shown against (the demo: the
        generator's hidden necrosis fraction).

    Returns
    -------
    pathlib.Path
        ``out_html``.
    """
    return _build(
        spec_or_model_dir,
        out_html,
        store=store,
        table=table,
        progress=progress,
        command=command,
        habitat_reference=habitat_reference,
    )[0]


def _build(
    spec_or_model_dir, out_html, *, store, table, progress, command, habitat_reference
) -> tuple[Path, ReportContent, FitOutputs]:
    started = time.monotonic()
    source = Path(spec_or_model_dir)
    if source.is_dir():
        fit = load_fit_outputs(source, progress=progress)
    elif source.is_file():
        fit = _fit_spec(source, progress)
    else:
        raise InputError(source, "no such study spec or model folder")
    if store is not None and not Path(store).is_dir():
        raise InputError(store, "no such store folder")
    content = build_content(
        fit,
        store=store,
        table=table if table is not None else fit.spec.table,
        progress=progress,
        habitat_reference=habitat_reference,
    )
    if command is not None:
        content.provenance["report command"] = command
    out = write_html(content, out_html)
    _say(
        progress,
        f"report: {out} ({os.path.getsize(out) / 1e6:.1f} MB, {time.monotonic() - started:.0f} s)",
    )
    return out, content, fit


def write_demo_report(
    out_dir,
    *,
    model_dir,
    store,
    table=None,
    progress: bool = True,
    habitat_reference: HabitatReference | None = None,
) -> Path:
    """The demo's last step: ``OUT/report.html`` from the demo's model outputs and store.

    Prints the report's path and returns it; with ``habitat_reference``, also prints that
    habitat's fraction against the reference (the correlations the report shows) and whether
    habitat features are among the model's selected features.
    """
    out = Path(out_dir) / "report.html"
    _, content, fit = _build(
        model_dir,
        out,
        store=store,
        table=table,
        progress=progress,
        command=f"radflow demo --out {out_dir}",
        habitat_reference=habitat_reference,
    )
    if habitat_reference is not None:
        agreement = reference_agreement(fit.design.X, habitat_reference)
        if agreement is not None:
            print(f"  habitats: {agreement.text(habitat_reference)}")
        else:
            print(
                f"  habitats: no {habitat_reference.habitat_name or 'habitat'} fraction to compare"
            )
        print(f"  selected model: {_habitat_selection(fit)}")
    print(f"  report:   {out}", flush=True)
    return out


def _habitat_selection(fit: FitOutputs) -> str:
    """Whether habitat features are among the model's non-zero weights, in words."""
    Xt = _model_input(fit)
    weights, _ = _weights(fit, Xt.columns) if Xt is not None else (None, "")
    habitat = habitat_feature_columns(fit.design.X.columns)
    if weights is None:
        return "the model has neither coefficients nor importances"
    chosen = habitat_feature_columns(weights.index[weights != 0])
    passed = habitat_feature_columns(weights.index)
    return (
        f"{len(chosen)} habitat feature(s) among its {int((weights != 0).sum())} non-zero "
        f"weights ({len(habitat)} habitat columns in the design, {len(passed)} past selection)"
        + (f": {', '.join(chosen)}" if chosen else "")
    )
