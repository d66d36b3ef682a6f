"""The modelling step of ``make demo``: the default fused survival model on the demo archive."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow.errors import InputError
from radflow.model.artefacts import save_study
from radflow.model.design import load_design
from radflow.model.spec import parse_spec
from radflow.model.validation import run_study

ds = load("pyarrow.dataset")

__all__ = ["combat_fits", "default_spec", "run_modelling"]


#: ROI keys of the demo's tumour: the GTV contoured on CT (and MR), and the
#: PET GTV that the demo segments at 40 % of SUVmax.
TUMOUR_ROIS = ("gtv", "gtv_pet")

#: The demo's stability rule: ICC(1,1) across perturbations, judged by its
#: lower 95% confidence bound (Koo & Li 2016: "good" reliability from 0.75).
ICC_RULE = {"threshold": 0.75, "form": "ICC(1,1)", "statistic": "ci_low"}


def default_spec(
    table,
    archive_dir,
    *,
    patients: int | None = None,
    events: int | None = None,
    rois=TUMOUR_ROIS,
    icc_table=None,
    bootstrap: int = 500,
    seed: int = 0,
    key_file=None,
    smallest_institution: int | None = None,
) -> dict:
    """The demo's study spec (as a mapping for :func:`radflow.model.spec.parse_spec`).

    Early fusion of every image feature of the tumour (``rois``: all
    modalities and image types of the table) with the clinical covariates (age, sex, HPV, stage as
    an ordinal) and the genomic flags; ComBat across institutions, standard
    scaling, an ICC stability filter when ``icc_table`` is given
    (:data:`ICC_RULE`; features it does not measure pass), near-zero-variance
    filter, elastic-net Cox. Small cohorts get fewer folds (each outer fold
    needs events and survivors) and a fixed penalty instead of a grid search.

    Parameters
    ----------
    rois : sequence of str
        ROI keys of the image block, default :data:`TUMOUR_ROIS`.
    icc_table : path-like, optional
        Parquet ICC table of a stability study
        (:func:`radflow.model.stability.stability_study`).
    key_file : path-like, optional
        The pseudonymisation key the store was ingested with (the demo's own
        key, :data:`radflow.demo.scenario.DEMO_KEY`); default: as at ingest.
    smallest_institution : int, optional
        Patients of the smallest institution. A small cohort whose outer
        training folds could hold fewer than two patients of an institution
        (ComBat needs two per batch to estimate its scale) is modelled without
        ComBat (:func:`combat_fits`).
    """
    archive = Path(archive_dir).resolve()
    small = patients is not None and patients < 40
    rarest = None if patients is None or events is None else min(events, patients - events)
    outer = 5 if rarest is None else max(2, min(5, rarest))
    select = [{"method": "nzv"}]
    if icc_table is not None:
        select.insert(0, {"method": "icc", "table": str(Path(icc_table).resolve()), **ICC_RULE})
    combat = patients is None or combat_fits(patients, outer, smallest_institution, small=small)
    pipeline = {
        "harmonise": {"method": "combat"} if combat else None,
        "scale": "standard",
        "select": select,
        "model": {"kind": "coxnet", "l1_ratio": 0.5, **({"alpha": 0.3} if small else {})},
    }
    if not small:
        pipeline["grid"] = {"alpha": [0.03, 0.1, 0.3]}
    schemes = ["nested_cv", "loio"] if rarest is None or rarest >= 2 else ["loio"]
    return {
        "table": str(Path(table).resolve()),
        "clinical": str(archive / "clinical.csv"),
        "genomic": str(archive / "genomic.csv"),
        "outcomes": str(archive / "outcomes.csv"),
        "endpoint": {"kind": "survival", "time": "os_months", "event": "os_event"},
        "blocks": {
            "image": {"rois": list(rois)},
            "clinical": {
                "columns": ["age", "sex", "hpv", "stage"],
                "ordinal": {"stage": ["I", "II", "III", "IV"]},
            },
            "genomic": {"columns": None},
        },
        "pipeline": pipeline,
        "validation": {"schemes": schemes, "outer_folds": outer, "inner_folds": 3},
        "bootstrap": bootstrap,
        "seed": seed,
        **({"key_file": str(Path(key_file).resolve())} if key_file is not None else {}),
    }


def combat_fits(patients: int, outer_folds: int, smallest: int | None, *, small: bool) -> bool:
    """Whether every outer training fold is sure to hold two patients of each institution.

    A test fold holds at most ``ceil(patients / outer_folds)`` patients, so a
    training fold keeps at least ``smallest`` minus that of the smallest
    institution. Checked for small cohorts only (fixed penalty, no inner
    folds); larger ones have many patients per institution.
    """
    if not small or smallest is None:
        return True
    return smallest - math.ceil(patients / outer_folds) >= 2


def _tumour_rois(table) -> list[str]:
    """The :data:`TUMOUR_ROIS` the table holds (no PET GTV where segmentation failed everywhere)."""
    present = set(
        ds.dataset(table, format="parquet", partitioning="hive")
        .to_table(columns=["roi"])
        .column("roi")
        .to_pylist()
    )
    rois = [r for r in TUMOUR_ROIS if r in present]
    if not rois:
        raise InputError(
            table,
            f"no tumour ROI ({', '.join(TUMOUR_ROIS)}) in the feature table; "
            f"ROIs: {', '.join(sorted(map(str, present))) or 'none'}",
        )
    return rois


def run_modelling(
    table,
    archive_dir,
    out_dir,
    *,
    icc_table=None,
    bootstrap: int = 500,
    seed: int = 0,
    key_file=None,
) -> dict:
    """Fit and validate the default fused model; print the headline metrics.

    Parameters
    ----------
    table : path-like
        Feature table of the demo archive (``radflow run``).
    archive_dir : path-like
        The archive (``clinical.csv``, ``genomic.csv``, ``outcomes.csv``;
        ``truth.json`` is never read).
    out_dir : path-like
        Receives ``model.joblib``, ``metrics.json``, ``predictions.parquet``
        (out-of-fold risks) and ``spec.yaml``.
    icc_table : path-like, optional
        ICC table of a stability study: adds the ICC filter (:func:`default_spec`).
    bootstrap, seed : int
        Resamples of every interval, and the seed of folds and resamples.
    key_file : path-like, optional
        Pseudonymisation key of the store (:func:`default_spec`).

    Returns
    -------
    dict
        ``model``, ``metrics``, ``predictions``, ``spec`` (paths), ``c_index`` (the pooled
        nested-CV :class:`~radflow.model.metrics.Estimate`, None when the
        cohort is too small for it) and ``loio`` (institution -> Estimate or
        None where undefined).
    """
    out = Path(out_dir)
    rois = _tumour_rois(table)
    mapping = default_spec(
        table, archive_dir, rois=rois, bootstrap=bootstrap, seed=seed, key_file=key_file
    )
    design = load_design(parse_spec(mapping))
    events = int(np.sum(design.y["event"]))
    smallest = int(np.unique(np.asarray(design.institution), return_counts=True)[1].min())
    mapping = default_spec(
        table,
        archive_dir,
        patients=len(design.y),
        events=events,
        rois=rois,
        icc_table=icc_table,
        bootstrap=bootstrap,
        seed=seed,
        key_file=key_file,
        smallest_institution=smallest,
    )
    spec = parse_spec(mapping)
    combat = mapping["pipeline"]["harmonise"] is not None
    result = run_study(spec, design)
    paths = save_study(result, spec, out, design=design)
    with atomic_file(out / "spec.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(mapping, sort_keys=False))

    print(
        f"model: {len(design.y)} patients ({events} deaths), "
        f"{len(design.image_columns)} image + {len(design.clinical_columns)} clinical + "
        f"{len(design.genomic_columns)} genomic columns; {'ComBat + ' if combat else ''}"
        f"{'ICC filter + ' if icc_table is not None else ''}elastic-net Cox"
    )
    if not combat:
        print(
            f"  no ComBat: the smallest institution has {smallest} patients, so a training "
            "fold could hold fewer than the 2 per institution ComBat needs (a larger cohort "
            "lifts this)"
        )
    icc = result.model.named_steps.get("select_icc")
    if icc is not None:
        measured = np.isfinite(icc.icc_)
        print(
            f"  ICC filter: {int(icc.support_[measured].sum())} of {int(measured.sum())} "
            f"measured features stable ({ICC_RULE['form']} {ICC_RULE['statistic']} >= "
            f"{ICC_RULE['threshold']}); {int((~measured).sum())} unmeasured pass"
        )
    nested = result.validations.get("nested_cv")
    c_index = nested.pooled.get("harrell_c") if nested else None
    if nested:
        print(
            f"  cross-validated C-index (nested CV, {len(nested.folds)} folds): "
            f"{c_index if c_index else 'undefined'}"
        )
    else:
        print("  nested CV skipped: too few events or survivors for stratified folds")
    loio = {}
    for fold in result.validations["loio"].folds:
        loio[fold.name] = fold.metrics.get("harrell_c")
        value = loio[fold.name] if loio[fold.name] else "undefined (no comparable pair)"
        print(f"  held-out {fold.name}: n={fold.n_test}, C-index {value}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  metrics: {paths['metrics']}")
    return {**paths, "spec": out / "spec.yaml", "c_index": c_index, "loio": loio}
