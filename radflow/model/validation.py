"""Validation schemes: nested cross-validation and leave-one-institution-out.

Both refit the *whole* pipeline (harmonisation, scaling, selection, model)
on each training set and score only patients it never saw, so nothing learnt
from a test patient leaks into its prediction. Hyper-parameters are chosen by
an inner grid search on the training patients alone.

``nested_cv``
    Outer folds stratified by the event indicator (binary endpoints: by the
    label); inner folds likewise, within each outer training set.
``leave_one_institution_out``
    Each institution in turn is the test set, the others the training set:
    the external-validation scheme for multi-institution archives, where
    scanner and population differ between sites.

Every metric comes with a percentile bootstrap interval over the test
patients (:mod:`radflow.model.metrics`); the pooled figures are computed on
the out-of-fold predictions of all patients.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.model import metrics
from radflow.model.builder import build_pipeline, pipeline_grid
from radflow.model.design import load_design
from radflow.model.survival import predict_risk, predict_survival

pd = load("pandas")
sklearn_base = load("sklearn.base")
sklearn_exceptions = load("sklearn.exceptions")
model_selection = load("sklearn.model_selection")

__all__ = [
    "FoldResult",
    "StudyResult",
    "ValidationResult",
    "fit_tuned",
    "leave_one_institution_out",
    "model_features",
    "nested_cv",
    "run_study",
]


@dataclass
class FoldResult:
    """One outer fold (or held-out institution).

    Attributes
    ----------
    name : str
        ``"fold-1"`` ... or the institution held out.
    n_train, n_test, n_events_test : int
        Events: survival endpoints only (positives for binary ones).
    best_params : dict
        Hyper-parameters chosen by the inner search (empty without a grid).
    metrics : dict of str to Estimate
    """

    name: str
    n_train: int
    n_test: int
    n_events_test: int
    best_params: dict
    metrics: dict

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_events_test": self.n_events_test,
            "best_params": {k: _plain(v) for k, v in self.best_params.items()},
            "metrics": {k: v.as_dict() for k, v in self.metrics.items()},
        }


@dataclass
class ValidationResult:
    """What a validation scheme measured.

    Attributes
    ----------
    scheme : str
        ``"nested_cv"`` or ``"loio"``.
    endpoint : str
        ``"survival"`` or ``"binary"``.
    folds : list of FoldResult
    pooled : dict of str to Estimate
        Metrics on the out-of-fold predictions of all patients together.
    predictions : pandas.DataFrame
        Index = ``X``'s index; columns ``fold`` and ``risk`` (out of fold).
        :func:`radflow.model.artefacts.save_study` writes them, with each
        patient's institution and outcome, as ``predictions.parquet``.
    """

    scheme: str
    endpoint: str
    folds: list[FoldResult]
    pooled: dict
    predictions: pd.DataFrame = field(repr=False)

    @property
    def headline(self) -> str:
        """Name of the main metric: ``harrell_c`` or ``roc_auc``."""
        return "harrell_c" if self.endpoint == "survival" else "roc_auc"

    def as_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "endpoint": self.endpoint,
            "pooled": {k: v.as_dict() for k, v in self.pooled.items()},
            "folds": [f.as_dict() for f in self.folds],
        }

    def summary(self) -> str:
        """A few lines for a terminal: pooled headline, then each fold's."""
        label = {"nested_cv": "nested CV", "loio": "leave-one-institution-out"}[self.scheme]
        lines = [
            f"{label}: {self.headline} {self.pooled[self.headline]} "
            f"(out-of-fold, {len(self.predictions)} patients)"
        ]
        for f in self.folds:
            value = f.metrics.get(self.headline)
            lines.append(
                f"  {f.name:<12} n={f.n_test:<4} {self.headline} "
                f"{value if value is not None else 'undefined'}"
            )
        return "\n".join(lines)


def _plain(value):
    """JSON-friendly hyper-parameter values (numpy scalars, coxnet's [alpha])."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _endpoint(y) -> tuple[str, np.ndarray]:
    """``("survival", event)`` or ``("binary", label)``: the stratification variable."""
    y = np.asarray(y)
    if y.dtype.names is not None:
        metrics._check_y(y)
        return "survival", y[y.dtype.names[0]]
    if y.ndim != 1 or set(np.unique(y)) - {0, 1}:
        raise SettingsError("y must be a structured (event, time) array or a 1-D array of 0/1")
    return "binary", y.astype(int)


def _check_folds(value, name: str, strata: np.ndarray) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise SettingsError(f"{name} must be an integer >= 2, got {value!r}")
    smallest = np.bincount(strata).min() if len(np.unique(strata)) > 1 else 0
    if smallest < value:
        raise SettingsError(
            f"{name}={value}: stratification needs at least {value} patients of each "
            f"class (events and non-events), the rarest has {smallest}"
        )
    return int(value)


def fit_tuned(estimator, X, y, *, param_grid=None, inner_folds: int = 3, seed: int = 0):
    """Fit ``estimator`` on (X, y), choosing hyper-parameters by stratified grid search.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Unfitted; it is cloned.
    X : pandas.DataFrame or array, shape (n, features)
    y : structured (event, time) array, or 0/1 array
    param_grid : dict, optional
        ``GridSearchCV`` grid (``"model__alphas"`` ...). Without one the
        estimator is fitted once as given.
    inner_folds : int
        Folds of the search, stratified by event (or label).
    seed : int
        Shuffling of the folds.

    Returns
    -------
    model : fitted estimator
    best_params : dict
    """
    kind, strata = _endpoint(y)
    if not param_grid:
        return sklearn_base.clone(estimator).fit(X, y), {}
    inner_folds = _check_folds(inner_folds, "inner_folds", strata)
    splits = list(
        model_selection.StratifiedKFold(inner_folds, shuffle=True, random_state=seed).split(
            np.zeros(len(strata)), strata
        )
    )
    # Survival estimators score by Harrell's C (their .score); classifiers by ROC AUC.
    search = model_selection.GridSearchCV(
        sklearn_base.clone(estimator),
        param_grid,
        cv=splits,
        refit=True,
        n_jobs=1,
        scoring="roc_auc" if kind == "binary" else None,
        error_score=np.nan,
    )
    with warnings.catch_warnings():
        # A grid point that fails on a fold scores NaN and loses; the search goes on.
        # (By category: the message starts with a newline, which a message regex misses.)
        warnings.filterwarnings("ignore", category=sklearn_exceptions.FitFailedWarning)
        warnings.filterwarnings("ignore", message=".*test scores are non-finite.*")
        search.fit(X, y)
    if not np.isfinite(search.cv_results_["mean_test_score"]).any():
        raise SettingsError("param_grid: every grid point failed to fit in the inner folds")
    return search.best_estimator_, dict(search.best_params_)


def _rows(X, index):
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _validate(
    estimator,
    X,
    y,
    splits,
    names,
    scheme,
    *,
    param_grid,
    inner_folds,
    n_boot,
    seed,
    level,
    extra_metrics,
) -> ValidationResult:
    y = np.asarray(y)
    kind, strata = _endpoint(y)
    n = len(strata)
    if len(X) != n:
        raise SettingsError(f"X has {len(X)} rows but y has {n}")
    index = X.index if hasattr(X, "index") else pd.RangeIndex(n)
    times = metrics.evaluation_times(y) if kind == "survival" else None
    risk = np.full(n, np.nan)
    # Models that give a risk but no survival curve (late fusion) get no Brier score.
    curves = kind == "survival" and hasattr(estimator, "predict_survival_function")
    survival = np.full((n, len(times)), np.nan) if curves else None
    fold_of = np.empty(n, dtype=object)
    folds = []
    boot = dict(n_boot=n_boot, seed=seed, level=level)
    for name, (train, test) in zip(names, splits):
        model, best = fit_tuned(
            estimator,
            _rows(X, train),
            y[train],
            param_grid=param_grid,
            inner_folds=inner_folds,
            seed=seed,
        )
        X_test = _rows(X, test)
        risk[test] = predict_risk(model, X_test)
        fold_of[test] = name
        if kind == "survival":
            if curves:
                survival[test] = predict_survival(model, X_test, times)
            scores = metrics.survival_metrics(
                y[test],
                risk[test],
                y_train=y[train],
                survival=None if survival is None else survival[test],
                which=(),
                **boot,
            )
        else:
            scores = metrics.binary_metrics(y[test], risk[test], **boot)
        folds.append(
            FoldResult(str(name), len(train), len(test), int(strata[test].sum()), best, scores)
        )
    if kind == "survival":
        pooled = metrics.survival_metrics(
            y, risk, y_train=y, survival=survival, times=times, which=extra_metrics, **boot
        )
    else:
        pooled = metrics.binary_metrics(y, risk, **boot)
    predictions = pd.DataFrame({"fold": fold_of, "risk": risk}, index=index)
    return ValidationResult(scheme, kind, folds, pooled, predictions)


_EXTRA = ("mean_auc", "integrated_brier")


def nested_cv(
    estimator,
    X,
    y,
    *,
    param_grid=None,
    outer_folds: int = 5,
    inner_folds: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    extra_metrics=_EXTRA,
) -> ValidationResult:
    """Nested cross-validation: outer folds measure, inner folds tune.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Unfitted; cloned for every fit, so every step is fitted on training
        patients only.
    X : pandas.DataFrame, shape (n, features)
    y : structured (event, time) array, or 0/1 array, shape (n,)
    param_grid : dict, optional
        Inner ``GridSearchCV`` grid.
    outer_folds, inner_folds : int
        Number of folds (>= 2), stratified by event (or label).
    n_boot, seed, level
        Bootstrap intervals (see :func:`radflow.model.metrics.bootstrap`);
        ``seed`` also shuffles the folds.
    extra_metrics : sequence of str
        Survival metrics reported on the pooled predictions besides the
        C-indices (``"mean_auc"``, ``"integrated_brier"``); each fold reports
        Harrell's and Uno's C.

    Returns
    -------
    ValidationResult
    """
    _, strata = _endpoint(y)
    outer_folds = _check_folds(outer_folds, "outer_folds", strata)
    splits = list(
        model_selection.StratifiedKFold(outer_folds, shuffle=True, random_state=seed).split(
            np.zeros(len(strata)), strata
        )
    )
    names = [f"fold-{k + 1}" for k in range(outer_folds)]
    return _validate(
        estimator,
        X,
        y,
        splits,
        names,
        "nested_cv",
        param_grid=param_grid,
        inner_folds=inner_folds,
        n_boot=n_boot,
        seed=seed,
        level=level,
        extra_metrics=extra_metrics,
    )


def leave_one_institution_out(
    estimator,
    X,
    y,
    institution,
    *,
    param_grid=None,
    inner_folds: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    extra_metrics=_EXTRA,
) -> ValidationResult:
    """Train on all institutions but one, test on that one; each in turn.

    Parameters
    ----------
    estimator, X, y, param_grid, inner_folds, n_boot, seed, level, extra_metrics
        As :func:`nested_cv`; the inner search runs on the training
        institutions only. A harmonisation step that must see every batch
        in fit (ComBat) cannot score an institution it never saw: validate
        a pipeline without it (:func:`run_study` does).
    institution : array-like, shape (n,)
        Institution of each patient (``Study.institution``); at least two.

    Returns
    -------
    ValidationResult
        One fold per institution, named after it.
    """
    institution = np.asarray(institution).astype(str)
    if institution.shape != (len(X),):
        raise SettingsError(
            f"institution must give one value per patient ({len(X)}), got shape {institution.shape}"
        )
    sites = sorted(set(institution))
    if len(sites) < 2:
        raise SettingsError(
            f"leave-one-institution-out needs at least two institutions, got {sites}"
        )
    everyone = np.arange(len(institution))
    splits = [(everyone[institution != s], everyone[institution == s]) for s in sites]
    return _validate(
        estimator,
        X,
        y,
        splits,
        sites,
        "loio",
        param_grid=param_grid,
        inner_folds=inner_folds,
        n_boot=n_boot,
        seed=seed,
        level=level,
        extra_metrics=extra_metrics,
    )


# -- a study spec, end to end ----------------------------------------------------


def model_features(model) -> list[str]:
    """Input columns the fitted model uses: after selection, and with a
    coefficient other than 0 for penalised linear models (coxnet, logistic);
    for late fusion, those of each block model, block by block."""
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "block_models_"):
        return [
            name
            for block, columns in final.blocks_.items()
            for name in _nonzero(columns, getattr(final.block_models_[block][-1], "coef_", None))
        ]
    return _nonzero(getattr(final, "feature_names_in_", []), getattr(final, "coef_", None))


def _nonzero(names, coef) -> list[str]:
    names = np.asarray(names, dtype=object)
    if coef is None or not len(names):
        return [str(n) for n in names]
    coef = np.asarray(coef)
    if coef.shape[0] != len(names):  # classifiers: (classes, features); coxnet: (features, alphas)
        coef = coef.T
    used = np.any(coef.reshape(len(names), -1) != 0, axis=1)
    return [str(n) for n, u in zip(names, used) if u]


@dataclass
class StudyResult:
    """A spec's final model and its validation.

    Attributes
    ----------
    model : fitted Pipeline
        Tuned and fitted on every patient (what ``radflow model predict`` uses).
    best_params : dict
    features : list of str
        Columns the final model uses (see :func:`model_features`).
    validations : dict of str to ValidationResult
        Per scheme of the spec (``"nested_cv"``, ``"loio"``).
    notes : list of str
        Choices a reader must know (e.g. ComBat left out of LOIO).
    n_patients, n_events : int
    columns : list of str
        Design columns the model was fitted on (prediction aligns to them).
    """

    model: object
    best_params: dict
    features: list
    validations: dict
    notes: list
    n_patients: int
    n_events: int
    columns: list

    def as_dict(self) -> dict:
        return {
            "n_patients": self.n_patients,
            "n_events": self.n_events,
            "best_params": {k: _plain(v) for k, v in self.best_params.items()},
            "features": self.features,
            "notes": self.notes,
            "validation": {k: v.as_dict() for k, v in self.validations.items()},
        }


def run_study(spec, design=None) -> StudyResult:
    """Validate a spec's pipeline by its schemes, then fit the final model on everyone.

    Parameters
    ----------
    spec : radflow.model.spec.StudySpec
    design : radflow.model.design.Design, optional
        The data, when already read (default :func:`~radflow.model.design.load_design`).

    Returns
    -------
    StudyResult
    """
    if design is None:
        design = load_design(spec)
    X, y = design.X, design.y
    grid = pipeline_grid(spec)
    pipeline = build_pipeline(spec, image_columns=design.image_columns)
    common = dict(
        param_grid=grid,
        inner_folds=spec.validation.inner_folds,
        n_boot=spec.bootstrap,
        seed=spec.seed,
    )
    validations, notes = {}, []
    if "nested_cv" in spec.validation.schemes:
        validations["nested_cv"] = nested_cv(
            pipeline, X, y, outer_folds=spec.validation.outer_folds, **common
        )
    if "loio" in spec.validation.schemes:
        loio = pipeline
        if spec.pipeline.harmonise is not None:
            notes.append(
                "leave-one-institution-out runs without ComBat: it cannot harmonise an "
                "institution absent from its training data"
            )
            loio = build_pipeline(spec, image_columns=design.image_columns, harmonise=False)
        validations["loio"] = leave_one_institution_out(loio, X, y, design.institution, **common)
    if spec.pipeline.fusion == "late" and spec.endpoint.kind == "survival":
        notes.append("late fusion predicts risks, not survival curves: no integrated Brier score")
    model, best = fit_tuned(
        pipeline, X, y, param_grid=grid, inner_folds=spec.validation.inner_folds, seed=spec.seed
    )
    kind, strata = _endpoint(y)
    return StudyResult(
        model,
        best,
        model_features(model),
        validations,
        notes,
        len(strata),
        int(strata.sum()),
        [str(c) for c in X.columns],
    )
