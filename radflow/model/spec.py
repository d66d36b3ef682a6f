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
allowed; a key given twice is refused (the file is read by
:func:`radflow._config.load_config`, the one loader of radflow's YAML inputs, and each
value is checked by a :class:`radflow._config.Rule`).

The other halves of a study, one module each:

* :mod:`radflow.model.design`: :func:`~radflow.model.design.load_design` reads the data
  the spec names into (X, y, institution);
* :mod:`radflow.model.builder`: :func:`~radflow.model.builder.build_pipeline` turns the
  ``pipeline`` part into an unfitted scikit-learn :class:`~sklearn.pipeline.Pipeline`;
* :mod:`radflow.model.artefacts`: what ``radflow model fit`` writes into a model folder
  and :class:`~radflow.model.artefacts.StudyOutputs`, the one reader of that folder.

``select`` methods are the keys of :data:`radflow.model.steps.SELECTORS`, with the keyword
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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

from radflow._config import Rule, check_mapping, check_value, describe, load_config, suggest
from radflow.errors import InputError, SettingsError
from radflow.model.steps import SELECTORS, make_selector
from radflow.model.survival import BINARY_MODELS, SURVIVAL_MODELS, make_model, model_grid

__all__ = [
    "BATCH_COLUMN",
    "Endpoint",
    "ImageBlock",
    "PipelineSpec",
    "Step",
    "StudySpec",
    "TableBlock",
    "ValidationSpec",
    "load_spec",
    "parse_spec",
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

_TEXT = Rule("str", min_length=1, expected="text")
_NAMES = Rule(
    "str", sequence=True, min_length=1, nullable=True, expected="a non-empty list of names"
)
_PATH = Rule("str", min_length=1, expected="a path")
_FLAG = Rule("bool")
_ANY = Rule("any", nullable=True)
_USER_MAPPING = Rule("mapping", nullable=True, expected="a mapping of keys")
_LEVELS = Rule("any", sequence=True, min_length=2, expected="the levels in order")
_GRID_VALUES = Rule("any", sequence=True, min_length=1, expected="a non-empty list of values")


def _scalar(value) -> bool:
    return value is None or isinstance(value, (str, bool, Real))


def _step_value(value):
    """A step's keyword value: a scalar or a list of scalars (kept as given)."""
    if _scalar(value) or (isinstance(value, list) and all(map(_scalar, value))):
        return value
    raise TypeError(value)


_PARAM = Rule(
    "any",
    nullable=True,
    convert=_step_value,
    expected="a number, text, true/false or a list of them",
)


class _Reader:
    """Reads a spec's mapping, naming the file and the key path in every error.

    Each value is checked by a :class:`radflow._config.Rule` (:func:`~radflow._config.check_value`,
    unknown keys by :func:`~radflow._config.check_mapping`); the messages keep the spec's
    form, ``<file>: <key.path>: <problem>``.
    """

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str):
        raise SettingsError(f"{self.where}: {key}: {message}")

    def check(self, rule: Rule, value, key: str):
        """``value`` in the canonical form of ``rule``, or the spec's error for ``key``."""
        try:
            return check_value(rule, value, key)
        except SettingsError:
            if rule.choices is not None and isinstance(value, str) and value:
                self.fail(key, f"{value!r} is not one of {', '.join(map(str, rule.choices))}")
            self.fail(key, f"expected {describe(rule)}, got {value!r}")

    def mapping(self, value, key: str, allowed=None) -> dict:
        """A mapping whose keys are among ``allowed`` (None: the user's own keys, e.g.
        columns or parameters); null is an empty mapping."""
        if allowed is None:
            return dict(self.check(_USER_MAPPING, value, key) or {})
        if value is not None and not isinstance(value, dict):
            self.fail(key, f"expected a mapping of keys, got {type(value).__name__}")
        prefix = f"{key}." if key else ""

        def unknown(k) -> str:
            return (
                f"{self.where}: {prefix}{k}: unknown key{suggest(str(k), allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )

        return check_mapping(value, dict.fromkeys(allowed, _ANY), self.where, hint=unknown)

    def text(self, value, key: str, *, choices=None, optional=False):
        if value is None and optional:
            return None
        if choices is None:
            return self.check(_TEXT, value, key)
        return self.check(Rule("str", min_length=1, choices=tuple(choices)), value, key)

    def texts(self, value, key: str) -> tuple[str, ...] | None:
        return self.check(_NAMES, [value] if isinstance(value, str) else value, key)

    def integer(self, value, key: str, low: int) -> int:
        return self.check(Rule("int", low=low), value, key)

    def path(self, value, key: str, base: Path, *, optional=True) -> Path | None:
        if value is None and optional:
            return None
        return (base / self.check(_PATH, value, key)).resolve()

    def params(self, value, key: str) -> dict:
        """Keyword arguments of a step: names to scalars or lists of scalars."""
        for k, v in value.items():
            if not isinstance(k, str):
                self.fail(f"{key}.{k}", "expected a parameter name")
            self.check(_PARAM, v, f"{key}.{k}")
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
        The file is missing.
    SettingsError
        Not YAML, a key given twice, an unknown key, a wrong type or value (names the file
        and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "study spec file does not exist")
    data = load_config(path, what="study spec")
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
    top = r.mapping(
        data,
        "",
        (
            "table",
            "clinical",
            "genomic",
            "outcomes",
            "key_file",
            "endpoint",
            "blocks",
            "pipeline",
            "validation",
            "bootstrap",
            "seed",
        ),
    )
    if "table" not in top:
        r.fail("table", "missing: the feature table folder is required")
    paths = {
        k: r.path(top.get(k), k, base, optional=k != "table")
        for k in ("table", "clinical", "genomic", "outcomes", "key_file")
    }

    e = r.mapping(top.get("endpoint"), "endpoint", ("kind", "time", "event", "column", "positive"))
    kind = r.text(e.get("kind", "survival"), "endpoint.kind", choices=("survival", "binary"))
    if kind == "survival":
        if "column" in e or "positive" in e:
            r.fail(
                "endpoint", "column/positive are for binary endpoints; survival uses time and event"
            )
        if paths["outcomes"] is None:
            r.fail("outcomes", "a survival endpoint needs the outcomes file")
        endpoint = Endpoint(
            kind,
            r.text(e.get("time", "os_months"), "endpoint.time"),
            r.text(e.get("event", "os_event"), "endpoint.event"),
        )
    else:
        if "time" in e or "event" in e:
            r.fail(
                "endpoint", "time/event are for survival endpoints; binary uses column and positive"
            )
        if "positive" not in e or isinstance(e["positive"], (list, dict)) or e["positive"] is None:
            r.fail("endpoint.positive", "a binary endpoint needs the value counted as positive")
        endpoint = Endpoint(
            kind, column=r.text(e.get("column"), "endpoint.column"), positive=e["positive"]
        )

    b = r.mapping(top.get("blocks", {"image": {}}), "blocks", ("image", "clinical", "genomic"))
    image = None
    if "image" not in b or b["image"] is not None:  # absent: every image feature; null: none
        i = r.mapping(
            b.get("image"), "blocks.image", ("feature_set", "modalities", "rois", "image_types")
        )
        image = ImageBlock(
            r.text(i.get("feature_set"), "blocks.image.feature_set", optional=True),
            *(
                r.texts(i.get(k), f"blocks.image.{k}")
                for k in ("modalities", "rois", "image_types")
            ),
        )
    tables = {}
    for name in ("clinical", "genomic"):
        if b.get(name) is None:
            tables[name] = None
            continue
        if paths[name] is None:
            r.fail(f"blocks.{name}", f"the block needs the {name} file (top-level key {name!r})")
        t = r.mapping(b[name], f"blocks.{name}", ("columns", "ordinal"))
        ordinal = r.mapping(t.get("ordinal"), f"blocks.{name}.ordinal")
        for column, levels in ordinal.items():
            r.check(_LEVELS, levels, f"blocks.{name}.ordinal.{column}")
        tables[name] = TableBlock(
            r.texts(t.get("columns"), f"blocks.{name}.columns"),
            {str(k): [str(v) for v in levels] for k, levels in ordinal.items()},
        )
    clinical_columns = tables["clinical"].columns if tables["clinical"] is not None else None
    if endpoint.kind == "binary" and clinical_columns and endpoint.column in clinical_columns:
        r.fail(
            "blocks.clinical.columns",
            f"holds the endpoint {endpoint.column!r}: the target cannot be a feature",
        )
    if image is None and tables["clinical"] is None and tables["genomic"] is None:
        r.fail("blocks", "no block: give image, clinical and/or genomic")

    p = r.mapping(
        top.get("pipeline"),
        "pipeline",
        ("impute", "harmonise", "scale", "select", "fusion", "model", "grid"),
    )
    harmonise = None
    if p.get("harmonise") is not None:
        h = r.mapping(
            p["harmonise"],
            "pipeline.harmonise",
            ("method", "batch", "parametric", "empirical_bayes", "mean_only"),
        )
        r.text(h.get("method", "combat"), "pipeline.harmonise.method", choices=("combat",))
        r.text(h.get("batch", BATCH_COLUMN), "pipeline.harmonise.batch", choices=(BATCH_COLUMN,))
        for flag in ("parametric", "empirical_bayes", "mean_only"):
            if flag in h:
                r.check(_FLAG, h[flag], f"pipeline.harmonise.{flag}")
        if image is None:
            r.fail(
                "pipeline.harmonise",
                "harmonisation acts on image features; the spec has no image block",
            )
        harmonise = Step(
            "combat", {k: h[k] for k in ("parametric", "empirical_bayes", "mean_only") if k in h}
        )
    select = []
    raw_select = p.get("select", [])
    r.check(Rule("any", sequence=True, expected="a list of steps"), raw_select, "pipeline.select")
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
    models = SURVIVAL_MODELS if endpoint.kind == "survival" else BINARY_MODELS
    model = Step(
        r.text(m["kind"], "pipeline.model.kind", choices=tuple(models)),
        r.params({x: v for x, v in m.items() if x != "kind"}, "pipeline.model"),
    )
    grid = r.mapping(p.get("grid"), "pipeline.grid")
    for name, values in grid.items():
        r.check(_GRID_VALUES, values, f"pipeline.grid.{name}")
    fusion = r.text(p.get("fusion", "early"), "pipeline.fusion", choices=_FUSIONS)
    if fusion == "late" and endpoint.kind != "survival":
        r.fail(
            "pipeline.fusion",
            "late fusion stacks survival models; a binary endpoint needs fusion: early",
        )
    pipeline = PipelineSpec(
        impute=r.text(p.get("impute", "median"), "pipeline.impute", choices=("median", "mean")),
        harmonise=harmonise,
        scale=r.text(p.get("scale", "standard"), "pipeline.scale", choices=_SCALERS),
        select=tuple(select),
        model=model,
        grid=dict(grid),
        fusion=fusion,
    )

    v = r.mapping(top.get("validation"), "validation", ("schemes", "outer_folds", "inner_folds"))
    schemes = r.texts(v.get("schemes", list(_SCHEMES)), "validation.schemes")
    for s in schemes:
        r.text(s, "validation.schemes", choices=_SCHEMES)
    validation = ValidationSpec(
        schemes,
        r.integer(v.get("outer_folds", 5), "validation.outer_folds", 2),
        r.integer(v.get("inner_folds", 3), "validation.inner_folds", 2),
    )
    # Trial builds catch bad model parameters now, not after the data is read.
    _check_steps(pipeline, r)
    return StudySpec(
        table=paths["table"],
        clinical=paths["clinical"],
        genomic=paths["genomic"],
        outcomes=paths["outcomes"],
        key_file=paths["key_file"],
        endpoint=endpoint,
        image=image,
        clinical_block=tables["clinical"],
        genomic_block=tables["genomic"],
        pipeline=pipeline,
        validation=validation,
        bootstrap=r.integer(top.get("bootstrap", 1000), "bootstrap", 0),
        seed=r.integer(top.get("seed", 0), "seed", 0),
        source=Path(where) if where != "study spec" else None,
    )


def _check_steps(pipeline: PipelineSpec, r: _Reader) -> None:
    try:
        make_model(pipeline.model.method, **pipeline.model.params)
        model_grid(pipeline.model.method, pipeline.grid)
    except SettingsError as exc:
        r.fail("pipeline.model", str(exc))
    for k, step in enumerate(pipeline.select):
        try:
            make_selector(step)
        except InputError:  # names the table itself
            raise
        except (TypeError, ValueError) as exc:
            r.fail(f"pipeline.select[{k}]", str(exc))
