"""Study specs: one YAML file says what to model, from which data, and how to validate it.

Keys (paths are relative to the spec file)::

    table: features                  # feature table folder (radflow run --table)
    clinical: archive/clinical.csv   # optional CSV files keyed by the raw patient id
    genomic: archive/genomic.csv
    outcomes: archive/outcomes.csv
    key_file: null                   # pseudonymisation key (default: as at ingest)
    endpoint:
      kind: survival                 # survival | binary
      time: os_months                # survival: columns of `outcomes`
      event: os_event
      # column: hpv                  # binary: a column of the clinical file (never
      # positive: positive           #   a feature then) and the value counted as 1
    blocks:
      image:                         # absent: all image features; null: none
        feature_set: null            # needed when the table holds several
        modalities: [CT, PT]         # null = all; likewise rois, image_types
        rois: [gtv]
        image_types: [original]
      clinical:                      # null: none
        columns: [age, sex, hpv, stage]
        ordinal: {stage: [I, II, III, IV]}   # coded 0, 1, 2 ... instead of one-hot
      genomic:
        columns: null                # null = every column of the file
    pipeline:
      impute: median                 # median | mean: per column, fitted on training folds
      harmonise:                     # null: none
        method: combat
        batch: institution           # institution (from the table)
        parametric: true
      scale: standard                # standard | robust | yeo-johnson | none
      select:                        # applied in order; [] for none
        - {method: icc, table: icc.parquet, threshold: 0.75, statistic: ci_low}
        - {method: nzv}
      fusion: early                  # early | late (survival endpoints only)
      model: {kind: coxnet, l1_ratio: 0.5}
      grid: {alpha: [0.01, 0.03, 0.1, 0.3]}   # inner grid search of the model
    validation:
      schemes: [nested_cv, loio]     # nested_cv and/or loio (leave one institution out)
      outer_folds: 5
      inner_folds: 3
    bootstrap: 1000                  # resamples of every confidence interval
    seed: 0

An unknown key anywhere, a value of the wrong type or out of range raises
:class:`~radflow.errors.SettingsError` naming the file, the key and what is
allowed. :func:`build_pipeline` turns the ``pipeline`` part into an unfitted
scikit-learn :class:`~sklearn.pipeline.Pipeline`; :func:`load_design` reads
the data the spec names into (X, y, institution).

``select`` methods are the keys of :data:`SELECTORS`, with the keyword
arguments of their :mod:`radflow.model.selection` class; ``icc`` takes
``table``, the Parquet ICC table of a stability study
(:func:`radflow.model.stability.stability_study`, ``radflow model stats
--store``), and keeps the columns that table does not name (other
modalities, clinical and genomic variables).

``fusion`` says how the blocks meet the model:

``early`` (default)
    One model on all columns together, after the shared imputation,
    harmonisation, scaling and selection.
``late``
    :class:`~radflow.model.fusion.LateFusionSurvival`: one ``model`` per
    block (each image modality -- ``CT``, ``PT``, ``MR`` -- then
    ``clinical``, ``genomic``), stacked by a Cox model fitted on their
    out-of-fold risks (``validation.inner_folds`` folds); ``grid`` tunes the
    block models. Needs a survival endpoint and at least two blocks, and
    each selection step must leave every block a column.

Out-of-fold predictions
-----------------------
:func:`save_study` writes ``predictions.parquet`` next to ``model.joblib``
and ``metrics.json``: one row per (validation scheme, patient), the risk
each patient got from the model of the fold that did not train on it.
Columns (:data:`PREDICTION_COLUMNS`):

=============  ==============================================================
``patient``    pseudonymised patient id (str)
``institution``  the patient's institution (str)
``scheme``     ``nested_cv`` or ``loio`` (str)
``fold``       ``fold-1`` ..., or the institution held out (str)
``risk``       out-of-fold risk, higher = worse (float)
``time``       survival endpoints: follow-up time, the spec's ``endpoint.time``
               unit (float)
``event``      survival endpoints: True if the follow-up ended with the event
``label``      binary endpoints, instead of ``time``/``event``: 0 or 1
=============  ==============================================================

:func:`read_predictions` reads and checks it (the report's Kaplan-Meier and
time-dependent AUC sections are drawn from it).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from radflow.errors import InputError, SettingsError

__all__ = [
    "BATCH_COLUMN",
    "PREDICTION_COLUMNS",
    "SELECTORS",
    "Design",
    "StudySpec",
    "build_pipeline",
    "load_design",
    "load_model",
    "load_spec",
    "parse_spec",
    "pipeline_grid",
    "predict_patients",
    "predictions_table",
    "read_predictions",
    "save_study",
]

#: Column of the design matrix holding each patient's institution: ComBat's
#: batch. It is never a model input (dropped by harmonisation or before it).
BATCH_COLUMN = "institution"
_SCALERS = ("standard", "robust", "yeo-johnson", "none")
_SCHEMES = ("nested_cv", "loio")
_FUSIONS = ("early", "late")


@dataclass(frozen=True)
class Endpoint:
    kind: str = "survival"
    time: str = "os_months"
    event: str = "os_event"
    column: str | None = None
    positive: Any = None


@dataclass(frozen=True)
class ImageBlock:
    feature_set: str | None = None
    modalities: tuple[str, ...] | None = None
    rois: tuple[str, ...] | None = None
    image_types: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableBlock:
    """Columns of a CSV file used as features (None = all)."""

    columns: tuple[str, ...] | None = None
    ordinal: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    method: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSpec:
    impute: str = "median"
    harmonise: Step | None = None
    scale: str = "standard"
    select: tuple[Step, ...] = ()
    model: Step = Step("coxnet")
    grid: dict = field(default_factory=dict)
    fusion: str = "early"


@dataclass(frozen=True)
class ValidationSpec:
    schemes: tuple[str, ...] = ("nested_cv", "loio")
    outer_folds: int = 5
    inner_folds: int = 3


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec (see the module docstring for the keys).

    Paths are absolute. ``source`` is the spec file (None when parsed from a
    mapping).
    """

    table: Path
    clinical: Path | None
    genomic: Path | None
    outcomes: Path | None
    key_file: Path | None
    endpoint: Endpoint
    image: ImageBlock | None
    clinical_block: TableBlock | None
    genomic_block: TableBlock | None
    pipeline: PipelineSpec
    validation: ValidationSpec
    bootstrap: int = 1000
    seed: int = 0
    source: Path | None = None


# -- parsing -------------------------------------------------------------------


class _Reader:
    """Reads a mapping, naming the file and the key path in every error."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str):
        raise SettingsError(f"{self.where}: {key}: {message}")

    def mapping(self, value, key: str, allowed) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping of keys, got {type(value).__name__}")
        for k in value:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), list(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(f"{key}.{k}" if key else str(k),
                          f"unknown key{hint}; allowed: {', '.join(allowed)}")
        return value

    def text(self, value, key: str, *, choices=None, optional=False):
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected text, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def texts(self, value, key: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a non-empty list of names, got {value!r}")
        return tuple(value)

    def integer(self, value, key: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            self.fail(key, f"expected an integer >= {low}, got {value!r}")
        return int(value)

    def path(self, value, key: str, base: Path, *, optional=True) -> Path | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a path, got {value!r}")
        return (base / value).resolve()

    def params(self, value, key: str) -> dict:
        """Keyword arguments of a step: names to scalars or lists of scalars."""
        for k, v in value.items():
            ok = v is None or isinstance(v, (str, bool, Real)) or (
                isinstance(v, list) and all(isinstance(x, (str, bool, Real)) for x in v))
            if not isinstance(k, str) or not ok:
                self.fail(f"{key}.{k}", f"expected a number, text, true/false or a list of them, got {v!r}")
        return dict(value)


def load_spec(path) -> StudySpec:
    """Read and validate a study spec YAML file.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    StudySpec

    Raises
    ------
    InputError
        The file is missing or not YAML.
    SettingsError
        Unknown key, wrong type or value (names the file and the key).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "study spec file does not exist") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable YAML file ({str(exc).splitlines()[0]})") from None
    return parse_spec(data, base_dir=path.resolve().parent, where=str(path))


def parse_spec(data, *, base_dir=".", where: str = "study spec") -> StudySpec:
    """Validate a spec given as a mapping (what :func:`load_spec` read).

    Parameters
    ----------
    data : dict
    base_dir : path-like
        Folder that relative paths are relative to.
    where : str
        Name of the source in error messages.
    """
    r = _Reader(where)
    base = Path(base_dir)
    top = r.mapping(data, "", ("table", "clinical", "genomic", "outcomes", "key_file", "endpoint",
                                "blocks", "pipeline", "validation", "bootstrap", "seed"))
    if "table" not in top:
        r.fail("table", "missing: the feature table folder is required")
    paths = {k: r.path(top.get(k), k, base, optional=k != "table")
             for k in ("table", "clinical", "genomic", "outcomes", "key_file")}

    e = r.mapping(top.get("endpoint"), "endpoint", ("kind", "time", "event", "column", "positive"))
    kind = r.text(e.get("kind", "survival"), "endpoint.kind", choices=("survival", "binary"))
    if kind == "survival":
        if "column" in e or "positive" in e:
            r.fail("endpoint", "column/positive are for binary endpoints; survival uses time and event")
        if paths["outcomes"] is None:
            r.fail("outcomes", "a survival endpoint needs the outcomes file")
        endpoint = Endpoint(kind, r.text(e.get("time", "os_months"), "endpoint.time"),
                            r.text(e.get("event", "os_event"), "endpoint.event"))
    else:
        if "time" in e or "event" in e:
            r.fail("endpoint", "time/event are for survival endpoints; binary uses column and positive")
        if "positive" not in e or isinstance(e["positive"], (list, dict)) or e["positive"] is None:
            r.fail("endpoint.positive", "a binary endpoint needs the value counted as positive")
        endpoint = Endpoint(kind, column=r.text(e.get("column"), "endpoint.column"),
                            positive=e["positive"])

    b = r.mapping(top.get("blocks", {"image": {}}), "blocks", ("image", "clinical", "genomic"))
    image = None
    if "image" not in b or b["image"] is not None:  # absent: every image feature; null: none
        i = r.mapping(b.get("image"), "blocks.image", ("feature_set", "modalities", "rois", "image_types"))
        image = ImageBlock(r.text(i.get("feature_set"), "blocks.image.feature_set", optional=True),
                           *(r.texts(i.get(k), f"blocks.image.{k}") for k in ("modalities", "rois", "image_types")))
    tables = {}
    for name in ("clinical", "genomic"):
        if b.get(name) is None:
            tables[name] = None
            continue
        if paths[name] is None:
            r.fail(f"blocks.{name}", f"the block needs the {name} file (top-level key {name!r})")
        t = r.mapping(b[name], f"blocks.{name}", ("columns", "ordinal"))
        ordinal = r.mapping(t.get("ordinal"), f"blocks.{name}.ordinal", _Anything())
        for column, levels in ordinal.items():
            if not isinstance(levels, list) or len(levels) < 2:
                r.fail(f"blocks.{name}.ordinal.{column}", f"expected the levels in order, got {levels!r}")
        tables[name] = TableBlock(r.texts(t.get("columns"), f"blocks.{name}.columns"),
                                  {str(k): [str(v) for v in levels] for k, levels in ordinal.items()})
    clinical_columns = tables["clinical"].columns if tables["clinical"] is not None else None
    if endpoint.kind == "binary" and clinical_columns and endpoint.column in clinical_columns:
        r.fail("blocks.clinical.columns", f"holds the endpoint {endpoint.column!r}: the target "
                                          "cannot be a feature")
    if image is None and tables["clinical"] is None and tables["genomic"] is None:
        r.fail("blocks", "no block: give image, clinical and/or genomic")

    p = r.mapping(top.get("pipeline"), "pipeline",
                  ("impute", "harmonise", "scale", "select", "fusion", "model", "grid"))
    harmonise = None
    if p.get("harmonise") is not None:
        h = r.mapping(p["harmonise"], "pipeline.harmonise",
                      ("method", "batch", "parametric", "empirical_bayes", "mean_only"))
        r.text(h.get("method", "combat"), "pipeline.harmonise.method", choices=("combat",))
        r.text(h.get("batch", BATCH_COLUMN), "pipeline.harmonise.batch", choices=(BATCH_COLUMN,))
        for flag in ("parametric", "empirical_bayes", "mean_only"):
            if flag in h and not isinstance(h[flag], bool):
                r.fail(f"pipeline.harmonise.{flag}", f"expected true or false, got {h[flag]!r}")
        if image is None:
            r.fail("pipeline.harmonise", "harmonisation acts on image features; the spec has no image block")
        harmonise = Step("combat", {k: h[k] for k in ("parametric", "empirical_bayes", "mean_only") if k in h})
    select = []
    raw_select = p.get("select", [])
    if not isinstance(raw_select, list):
        r.fail("pipeline.select", f"expected a list of steps, got {raw_select!r}")
    for k, s in enumerate(raw_select):
        if not isinstance(s, dict) or "method" not in s:
            r.fail(f"pipeline.select[{k}]", f"expected a mapping with a method, got {s!r}")
        method = r.text(s["method"], f"pipeline.select[{k}].method", choices=tuple(SELECTORS))
        params = r.params({x: v for x, v in s.items() if x != "method"}, f"pipeline.select[{k}]")
        if method == "icc" and "table" in params:
            params["table"] = str(r.path(params["table"], f"pipeline.select[{k}].table", base))
        select.append(Step(method, params))
    m = p.get("model", {"kind": "coxnet"})
    if not isinstance(m, dict) or "kind" not in m:
        r.fail("pipeline.model", f"expected a mapping with a kind, got {m!r}")
    from radflow.model.survival import BINARY_MODELS, SURVIVAL_MODELS

    models = SURVIVAL_MODELS if endpoint.kind == "survival" else BINARY_MODELS
    model = Step(r.text(m["kind"], "pipeline.model.kind", choices=tuple(models)),
                 r.params({x: v for x, v in m.items() if x != "kind"}, "pipeline.model"))
    grid = r.mapping(p.get("grid"), "pipeline.grid", _Anything())
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            r.fail(f"pipeline.grid.{name}", f"expected a non-empty list of values, got {values!r}")
    fusion = r.text(p.get("fusion", "early"), "pipeline.fusion", choices=_FUSIONS)
    if fusion == "late" and endpoint.kind != "survival":
        r.fail("pipeline.fusion", "late fusion stacks survival models; a binary endpoint needs "
                                  "fusion: early")
    pipeline = PipelineSpec(
        impute=r.text(p.get("impute", "median"), "pipeline.impute", choices=("median", "mean")),
        harmonise=harmonise,
        scale=r.text(p.get("scale", "standard"), "pipeline.scale", choices=_SCALERS),
        select=tuple(select), model=model, grid=dict(grid), fusion=fusion)

    v = r.mapping(top.get("validation"), "validation", ("schemes", "outer_folds", "inner_folds"))
    schemes = r.texts(v.get("schemes", list(_SCHEMES)), "validation.schemes")
    for s in schemes:
        r.text(s, "validation.schemes", choices=_SCHEMES)
    validation = ValidationSpec(schemes, r.integer(v.get("outer_folds", 5), "validation.outer_folds", 2),
                                r.integer(v.get("inner_folds", 3), "validation.inner_folds", 2))
    # Trial builds catch bad model parameters now, not after the data is read.
    _check_steps(pipeline, r)
    return StudySpec(
        table=paths["table"], clinical=paths["clinical"], genomic=paths["genomic"],
        outcomes=paths["outcomes"], key_file=paths["key_file"], endpoint=endpoint, image=image,
        clinical_block=tables["clinical"], genomic_block=tables["genomic"], pipeline=pipeline,
        validation=validation, bootstrap=r.integer(top.get("bootstrap", 1000), "bootstrap", 0),
        seed=r.integer(top.get("seed", 0), "seed", 0),
        source=Path(where) if where != "study spec" else None)


class _Anything(tuple):
    """Allowed-keys stand-in for mappings whose keys are the user's (columns, parameters)."""

    def __contains__(self, item) -> bool:
        return True


def _check_steps(pipeline: PipelineSpec, r: _Reader) -> None:
    from radflow.model.survival import make_model, model_grid

    try:
        make_model(pipeline.model.method, **pipeline.model.params)
        model_grid(pipeline.model.method, pipeline.grid)
    except SettingsError as exc:
        r.fail("pipeline.model", str(exc))
    for k, step in enumerate(pipeline.select):
        try:
            _selector(step)
        except InputError:  # names the table itself
            raise
        except (TypeError, ValueError) as exc:
            r.fail(f"pipeline.select[{k}]", str(exc))


# -- pipeline ------------------------------------------------------------------


def _selectors() -> dict:
    """Selection method name -> transformer class (radflow.model.selection)."""
    from radflow.model import selection

    return {name: getattr(selection, cls) for name, cls in SELECTORS.items()}


#: Spec name -> class name in :mod:`radflow.model.selection`.
SELECTORS = {
    "nzv": "NearZeroVariance",
    "icc": "ICCFilter",
    "correlation": "CorrelationFilter",
    "univariate_cox": "UnivariateCoxSelector",
    "coxnet": "CoxnetSelector",
    "l1_logistic": "L1LogisticSelector",
    "pca": "FeaturePCA",
    "forest": "ForestImportanceSelector",
    "mrmr": "MRMRSelector",
}


def _selector(step: Step):
    cls = _selectors()[step.method]
    params = dict(step.params)
    if step.method == "icc":
        # The ICC table of a stability study (radflow model stats); clinical and
        # genomic columns have none and are kept.
        import pandas as pd

        table = params.pop("table", None)
        if table is None:
            raise SettingsError("icc: needs table (the Parquet ICC table of a stability study)")
        try:
            params["icc"] = pd.read_parquet(table)
        except FileNotFoundError:
            raise InputError(table, "ICC table does not exist (a stability study writes it: "
                                    "radflow model stats --store)") from None
        except (OSError, ValueError) as exc:
            raise InputError(table, f"not a readable ICC Parquet table ({exc})") from None
        params.setdefault("missing", "keep")
    return cls(**params)


def build_pipeline(spec: StudySpec, *, image_columns=(), harmonise: bool = True):
    """The unfitted pipeline of a spec: impute, harmonise, scale, select, model.

    Parameters
    ----------
    spec : StudySpec
    image_columns : sequence of str
        Image feature columns of the design (what ComBat harmonises); the
        clinical and genomic columns pass through it unchanged.
    harmonise : bool
        False leaves the spec's harmonisation out (leave-one-institution-out:
        ComBat cannot harmonise an institution it did not see in fit).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Pandas output throughout, so column names (and patient ids) flow
        through every step. The input is :func:`load_design`'s ``X``: its
        ``institution`` column is ComBat's batch, or dropped without
        harmonisation. Its last step ``model`` is the spec's model, or with
        ``fusion: late`` a :class:`~radflow.model.fusion.LateFusionSurvival`
        whose block models are the spec's model (tuned by
        :func:`pipeline_grid`).

    Raises
    ------
    SettingsError
        Late fusion with fewer than two blocks.
    """
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PowerTransformer, RobustScaler, StandardScaler

    from radflow.model.survival import make_model

    p = spec.pipeline
    steps = [("impute", ColumnTransformer(
        [("impute", SimpleImputer(strategy=p.impute, keep_empty_features=True),
          make_column_selector(dtype_include="number"))],
        remainder="passthrough", verbose_feature_names_out=False))]
    if p.harmonise is not None and harmonise:
        from radflow.model.combat import ComBat

        steps.append(("harmonise", ComBat(batch=BATCH_COLUMN, features=list(image_columns),
                                          **p.harmonise.params)))
    else:
        steps.append(("drop_batch", ColumnTransformer([("batch", "drop", [BATCH_COLUMN])],
                                                      remainder="passthrough",
                                                      verbose_feature_names_out=False)))
    scaler = {"standard": StandardScaler, "robust": RobustScaler,
              "yeo-johnson": PowerTransformer}.get(p.scale)
    if scaler is not None:
        steps.append(("scale", scaler()))
    for step in p.select:
        steps.append((f"select_{step.method}", _selector(step)))
    model = make_model(p.model.method, seed=spec.seed, **p.model.params)
    if p.fusion == "late":
        from radflow.model.fusion import LateFusionSurvival

        blocks = _late_fusion_blocks(spec, image_columns)
        model = LateFusionSurvival(blocks, default=model, cv=spec.validation.inner_folds,
                                   random_state=spec.seed)
    steps.append(("model", model))
    return Pipeline(steps).set_output(transform="pandas")


def _late_fusion_blocks(spec: StudySpec, image_columns) -> dict[str, str]:
    """Block name -> column-name prefix (a regular expression): each image
    modality of ``image_columns``, then clinical and genomic."""
    import re

    blocks = {}
    for column in image_columns:
        modality = str(column).split(".", 1)[0]
        blocks.setdefault(modality, re.escape(modality) + r"\.")
    for name, block in (("clinical", spec.clinical_block), ("genomic", spec.genomic_block)):
        if block is not None:
            blocks[name] = re.escape(name) + r"\."
    if len(blocks) < 2:
        where = spec.source or "study spec"
        raise SettingsError(f"{where}: pipeline.fusion: late fusion needs at least two blocks "
                            f"(image modalities, clinical, genomic), the study has {list(blocks)}")
    return blocks


def pipeline_grid(spec: StudySpec) -> dict:
    """The spec's ``grid`` as the ``GridSearchCV`` grid of :func:`build_pipeline`'s pipeline.

    With ``fusion: late`` the grid tunes the block models (parameters
    ``model__default__...``); empty when the spec has no grid.
    """
    from radflow.model.survival import model_grid

    step = "model__default" if spec.pipeline.fusion == "late" else "model"
    return model_grid(spec.pipeline.model.method, spec.pipeline.grid, step=step)


# -- data ----------------------------------------------------------------------


@dataclass
class Design:
    """The data a spec names, ready for :func:`build_pipeline`'s pipeline.

    Attributes
    ----------
    X : pandas.DataFrame
        Index: pseudonymised patient ids. Image features, then clinical and
        genomic columns as numbers, then ``institution`` (text).
    y : ndarray
        Structured (event, time) array, or 0/1 for a binary endpoint.
    institution : ndarray of str
    image_columns, clinical_columns, genomic_columns : list of str
    missing : pandas.DataFrame
        The study's report of patients lacking a modality or a file row.
    feature_set : str
    """

    X: Any
    y: np.ndarray
    institution: np.ndarray
    image_columns: list
    clinical_columns: list
    genomic_columns: list
    missing: Any
    feature_set: str


def _block_frame(frame, block: TableBlock, name: str, source):
    import pandas as pd

    from radflow.model.study import encode_covariates

    if block.columns is None:
        columns = [c for c in frame.columns if c != BATCH_COLUMN]
    else:
        absent = [c for c in block.columns if c not in frame.columns]
        if absent:
            raise InputError(source, f"blocks.{name}.columns {absent} not in the file; "
                                     f"columns: {list(frame.columns)}")
        columns = list(block.columns)
    frame = frame[columns]
    ordinal = {}
    for column, levels in block.ordinal.items():
        if column not in frame.columns:
            raise InputError(source, f"blocks.{name}.ordinal: no column {column!r} in the block")
        values = frame[column].astype("string")
        unknown = sorted(set(values.dropna()) - set(levels))
        if unknown:
            raise InputError(source, f"column {column!r} holds {unknown}, not among the ordinal "
                                     f"levels {levels}")
        ordinal[column] = values.map({lv: float(k) for k, lv in enumerate(levels)}).astype(float)
    rest = encode_covariates(frame.drop(columns=list(ordinal)))
    out = pd.concat([pd.DataFrame(ordinal, index=frame.index), rest], axis=1)
    return out[[c for c in out.columns]].add_prefix(f"{name}.")


def load_design(spec: StudySpec, *, table=None, require_target: bool = True) -> Design:
    """Read the table and files a spec names into a design matrix and target.

    Parameters
    ----------
    spec : StudySpec
    table : path-like, optional
        Another feature table with the same feature set (scoring new
        patients); default ``spec.table``.
    require_target : bool
        False to read patients without an outcome (prediction); ``y`` is
        then None.

    Returns
    -------
    Design
    """
    import pandas as pd

    from radflow.model.study import load_study

    image = spec.image or ImageBlock()
    survival = spec.endpoint.kind == "survival"
    study = load_study(
        spec.table if table is None else table, clinical=spec.clinical, genomic=spec.genomic,
        outcomes=spec.outcomes if survival and require_target else None,
        feature_set=image.feature_set, modalities=image.modalities, rois=image.rois,
        image_types=image.image_types, key_file=spec.key_file,
        event=spec.endpoint.event, time=spec.endpoint.time)
    parts = [study.X] if spec.image is not None else []
    columns = {"image": list(study.X.columns) if spec.image is not None else []}
    for name, block, frame, source in (("clinical", spec.clinical_block, study.clinical, spec.clinical),
                                       ("genomic", spec.genomic_block, study.genomic, spec.genomic)):
        columns[name] = []
        if block is not None:
            if spec.endpoint.kind == "binary" and frame is not None and spec.endpoint.column in frame:
                frame = frame.drop(columns=spec.endpoint.column)  # the target is never a feature
            encoded = _block_frame(frame, block, name, source)
            parts.append(encoded)
            columns[name] = list(encoded.columns)
    X = pd.concat(parts, axis=1)
    X[BATCH_COLUMN] = study.institution.reindex(X.index).astype(str).to_numpy()
    y = study.y
    if not survival and require_target:
        y, X = _binary_target(spec, study, X)
    return Design(X, y, X[BATCH_COLUMN].to_numpy(), columns["image"], columns["clinical"],
                  columns["genomic"], study.missing, study.feature_set)


def _binary_target(spec: StudySpec, study, X):
    """The 0/1 target from the clinical file; patients without a value are left out."""
    column, positive = spec.endpoint.column, spec.endpoint.positive
    if study.clinical is None or column not in study.clinical:
        raise InputError(spec.clinical or spec.table,
                         f"endpoint.column {column!r} is not a column of the clinical file")
    values = study.clinical[column].reindex(X.index)
    keep = values.notna().to_numpy()
    labels = values[keep].astype(str) == str(positive)
    if labels.all() or not labels.any():
        raise InputError(spec.clinical, f"endpoint {column!r} == {positive!r} gives one class only "
                                        f"({int(labels.sum())} positive of {len(labels)})")
    return labels.to_numpy(int), X.loc[keep]


# -- fitted models ---------------------------------------------------------------

ARTIFACT_FORMAT = "radflow-model-1"

#: Columns of ``predictions.parquet`` (see the module docstring), then
#: ``time, event`` (survival) or ``label`` (binary).
PREDICTION_COLUMNS = ("patient", "institution", "scheme", "fold", "risk")
_OUTCOME_COLUMNS = {"survival": ("time", "event"), "binary": ("label",)}


def predictions_table(validations, design: Design):
    """The out-of-fold predictions of every validation scheme, in the layout of
    ``predictions.parquet`` (module docstring).

    Parameters
    ----------
    validations : dict of str to radflow.model.validation.ValidationResult
        ``StudyResult.validations``.
    design : Design
        The data validated (institutions and outcomes of the patients).

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, patient), schemes in ``validations``' order,
        patients in the design's order.
    """
    import pandas as pd

    y = np.asarray(design.y)
    survival = y.dtype.names is not None
    frames = []
    for scheme, result in validations.items():
        pred = result.predictions
        at = design.X.index.get_indexer(pred.index)
        if (at < 0).any():
            raise ValueError(f"predictions of {scheme!r} name patients absent from the design")
        frame = pd.DataFrame({
            "patient": pred.index.astype(str), "institution": np.asarray(design.institution)[at].astype(str),
            "scheme": scheme, "fold": pred["fold"].astype(str).to_numpy(),
            "risk": pred["risk"].to_numpy(float)})
        if survival:
            frame["time"] = y[y.dtype.names[1]][at].astype(float)
            frame["event"] = y[y.dtype.names[0]][at].astype(bool)
        else:
            frame["label"] = y[at].astype(int)
        frames.append(frame)
    columns = [*PREDICTION_COLUMNS, *_OUTCOME_COLUMNS["survival" if survival else "binary"]]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def read_predictions(path):
    """Read ``predictions.parquet`` (written by :func:`save_study`) and check its layout.

    Returns
    -------
    pandas.DataFrame
        The columns of the module docstring's table.

    Raises
    ------
    InputError
        Unreadable file, a missing column, or a (scheme, patient) given twice.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable Parquet file ({exc})") from None
    kinds = [k for k, cols in _OUTCOME_COLUMNS.items() if set(cols) <= set(frame.columns)]
    absent = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if absent or not kinds:
        raise InputError(path, f"not out-of-fold predictions: needs columns "
                               f"{', '.join(PREDICTION_COLUMNS)} and time, event (survival) or "
                               f"label (binary); has {', '.join(map(str, frame.columns))}")
    if frame.duplicated(["scheme", "patient"]).any():
        raise InputError(path, "a patient appears twice in one validation scheme")
    return frame


def save_study(result, spec: StudySpec, out_dir, *, design: Design) -> dict:
    """Write ``model.joblib`` (the final pipeline and what prediction needs),
    ``metrics.json`` (validation with CIs) and ``predictions.parquet`` (the
    out-of-fold risks of each validation scheme, see the module docstring)
    into ``out_dir``, each by one rename.

    Parameters
    ----------
    result : radflow.model.validation.StudyResult
    spec : StudySpec
    out_dir : path-like
        Created if missing.
    design : Design
        The data the model was fitted on (its columns and risks).

    Returns
    -------
    dict
        ``{"model": path, "metrics": path, "predictions": path}``.
    """
    import json

    import joblib

    from radflow._version import __version__
    from radflow.model.survival import predict_risk
    from radflow._atomic import atomic_file

    out = Path(out_dir)
    risk = predict_risk(result.model, design.X)
    artifact = {
        "format": ARTIFACT_FORMAT, "radflow_version": __version__, "spec": spec,
        "pipeline": result.model, "columns": result.columns, "feature_set": design.feature_set,
        # Risk groups of new patients use the training median, fixed before seeing them.
        "median_risk": float(np.median(risk)),
    }
    paths = {"model": out / "model.joblib", "metrics": out / "metrics.json",
             "predictions": out / "predictions.parquet"}
    with atomic_file(paths["model"]) as tmp:
        joblib.dump(artifact, tmp)
    with atomic_file(paths["predictions"]) as tmp:
        predictions_table(result.validations, design).to_parquet(tmp, index=False)
    summary = {"radflow_version": __version__, "feature_set": design.feature_set,
               "endpoint": spec.endpoint.kind, "model": spec.pipeline.model.method,
               "seed": spec.seed, "bootstrap": spec.bootstrap, **result.as_dict()}
    with atomic_file(paths["metrics"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    return paths


def load_model(path) -> dict:
    """Read a model artifact written by :func:`save_study`.

    Raises
    ------
    InputError
        Missing file, or not a radflow model artifact.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file does not exist (radflow model fit writes model.joblib)")
    try:
        artifact = joblib.load(path)
    except Exception as exc:  # joblib/pickle raise many types for a foreign file
        raise InputError(path, f"not a readable model artifact ({type(exc).__name__})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise InputError(path, f"not a radflow model artifact (format {ARTIFACT_FORMAT})")
    return artifact


def predict_patients(artifact: dict, table, *, clinical=None, genomic=None, key_file=None):
    """Score the patients of a feature table with a fitted model artifact.

    Parameters
    ----------
    artifact : dict
        From :func:`load_model`.
    table : path-like
        Feature table holding the model's feature set.
    clinical, genomic : path-like, optional
        CSV files of the new patients (default: the spec's, when the model
        uses those blocks).
    key_file : path-like, optional
        Pseudonymisation key (default: the spec's, else as at ingest).

    Returns
    -------
    pandas.DataFrame
        Index ``patient`` (pseudonymised), columns ``institution``, ``risk``
        and ``risk_group`` (``"high"`` above the training median risk).
    """
    import dataclasses

    import pandas as pd

    from radflow.model.survival import predict_risk

    spec = artifact["spec"]
    spec = dataclasses.replace(
        spec, clinical=Path(clinical) if clinical else spec.clinical,
        genomic=Path(genomic) if genomic else spec.genomic,
        key_file=Path(key_file) if key_file else spec.key_file,
        image=dataclasses.replace(spec.image, feature_set=artifact["feature_set"]) if spec.image else None)
    design = load_design(spec, table=table, require_target=False)
    absent = [c for c in artifact["columns"] if c not in design.X.columns]
    if len(absent) == len(artifact["columns"]) - 1:
        raise InputError(table, "no column of the model in the table (another feature set?)")
    # A column the new table lacks is missing for everyone: the pipeline imputes it.
    X = design.X.reindex(columns=artifact["columns"])
    try:
        risk = predict_risk(artifact["pipeline"], X)
    except ValueError as exc:
        if "not seen in fit" in str(exc):  # ComBat has no estimates for a new institution
            raise InputError(table, f"{exc}") from None
        raise
    return pd.DataFrame({"institution": design.institution, "risk": risk,
                         "risk_group": np.where(risk > artifact["median_risk"], "high", "low")},
                        index=X.index.rename("patient"))
