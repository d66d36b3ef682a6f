"""Outcome models by name: survival (scikit-survival) and binary (scikit-learn).

:func:`make_model` builds an unfitted estimator from a name and keyword
parameters (what a study spec's ``model:`` holds); :func:`model_grid` turns a
spec's hyper-parameter grid into a ``GridSearchCV`` grid; :func:`predict_risk`
and :func:`predict_survival` score patients with any of them, alone or at the
end of a :class:`~sklearn.pipeline.Pipeline`.

Survival models (target: structured (event, time) array):

``coxnet``
    Cox proportional hazards with an elastic-net penalty
    (:class:`sksurv.linear_model.CoxnetSurvivalAnalysis`) at one penalty
    ``alpha`` and mixing ``l1_ratio`` (1 = LASSO); the Breslow baseline
    hazard is fitted, so survival curves can be predicted.
``rsf``
    Random survival forest (:class:`sksurv.ensemble.RandomSurvivalForest`).
``gbsa``
    Gradient-boosted Cox model on regression trees
    (:class:`sksurv.ensemble.GradientBoostingSurvivalAnalysis`).

Binary models (target: 0/1): ``logistic`` (elastic-net logistic regression)
and ``random_forest`` (:class:`sklearn.ensemble.RandomForestClassifier`).
"""

from __future__ import annotations

import numpy as np

from radflow._lazy import load
from radflow.errors import SettingsError

ensemble = load("sklearn.ensemble")
linear_model = load("sklearn.linear_model")
sksurv_ensemble = load("sksurv.ensemble")
sksurv_linear_model = load("sksurv.linear_model")

__all__ = [
    "BINARY_MODELS",
    "SURVIVAL_MODELS",
    "make_model",
    "model_grid",
    "predict_risk",
    "predict_survival",
]

#: name -> (default keyword arguments, the keyword that takes the seed)
SURVIVAL_MODELS = {
    "coxnet": ({"alpha": 0.05, "l1_ratio": 0.5, "max_iter": 100_000}, None),
    "rsf": (
        {"n_estimators": 200, "min_samples_leaf": 5, "max_features": "sqrt", "n_jobs": 1},
        "random_state",
    ),
    "gbsa": (
        {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 2, "subsample": 0.8},
        "random_state",
    ),
}
BINARY_MODELS = {
    "logistic": ({"C": 1.0, "l1_ratio": 0.5, "solver": "saga", "max_iter": 10_000}, "random_state"),
    "random_forest": ({"n_estimators": 200, "min_samples_leaf": 3, "n_jobs": 1}, "random_state"),
}


def _classes():
    return {
        "coxnet": sksurv_linear_model.CoxnetSurvivalAnalysis,
        "rsf": sksurv_ensemble.RandomSurvivalForest,
        "gbsa": sksurv_ensemble.GradientBoostingSurvivalAnalysis,
        "logistic": linear_model.LogisticRegression,
        "random_forest": ensemble.RandomForestClassifier,
    }


def _check_kind(kind: str) -> dict:
    known = {**SURVIVAL_MODELS, **BINARY_MODELS}
    if kind not in known:
        raise SettingsError(f"model {kind!r} unknown; choose one of {', '.join(known)}")
    return known[kind]


def make_model(kind: str, *, seed: int = 0, **params):
    """An unfitted outcome model.

    Parameters
    ----------
    kind : str
        ``"coxnet"``, ``"rsf"``, ``"gbsa"`` (survival) or ``"logistic"``,
        ``"random_forest"`` (binary).
    seed : int
        Random state of the stochastic models (forests, boosting, saga).
    **params
        Keyword arguments of the estimator, over radflow's defaults (see
        ``SURVIVAL_MODELS``, ``BINARY_MODELS``). For ``coxnet``, ``alpha``
        is the one penalty fitted (scikit-survival's ``alphas=[alpha]``).

    Returns
    -------
    estimator
        scikit-learn compatible, not fitted.

    Raises
    ------
    SettingsError
        Unknown kind or parameter name.
    """
    defaults, seed_key = _check_kind(kind)
    cls = _classes()[kind]
    kwargs = {**defaults, **params}
    if kind == "coxnet":
        alpha = kwargs.pop("alpha")
        if not np.isscalar(alpha) or not alpha > 0:
            raise SettingsError(f"coxnet: alpha must be a number > 0, got {alpha!r}")
        # One penalty, not scikit-survival's automatic path: the grid search chooses it.
        kwargs.update(alphas=[float(alpha)], fit_baseline_model=True)
    if seed_key is not None:
        kwargs.setdefault(seed_key, seed)
    valid = set(cls().get_params())
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise SettingsError(
            f"model {kind}: unknown parameter(s) {unknown}; valid: {', '.join(sorted(valid))}"
        )
    return cls(**kwargs)


def model_grid(kind: str, grid: dict | None, *, step: str = "model") -> dict:
    """A spec's hyper-parameter grid as a ``GridSearchCV`` ``param_grid``.

    Parameters
    ----------
    kind : str
        Model name (see :func:`make_model`).
    grid : dict of str to list, or None
        Parameter -> candidate values, e.g. ``{"alpha": [0.01, 0.1], "l1_ratio": [0.5, 1]}``.
    step : str
        Name of the model step in the pipeline (prefix ``"<step>__"``); ``""``
        for a bare estimator.

    Returns
    -------
    dict
        Empty when ``grid`` is empty.
    """
    _check_kind(kind)
    prefix = f"{step}__" if step else ""
    out = {}
    for name, values in (grid or {}).items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not len(values):
            raise SettingsError(
                f"model grid {name!r}: expected a non-empty list of values, got {values!r}"
            )
        if kind == "coxnet" and name == "alpha":
            out[f"{prefix}alphas"] = [[float(v)] for v in values]
        else:
            out[f"{prefix}{name}"] = list(values)
    return out


def predict_risk(model, X) -> np.ndarray:
    """Risk of each patient: higher = worse (earlier death, or the positive class).

    Survival models: ``model.predict`` (Cox linear predictor, forest or
    boosting risk score). Classifiers: probability of the positive class.
    """
    if hasattr(model, "predict_proba") and not hasattr(model, "predict_survival_function"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def predict_survival(model, X, times) -> np.ndarray:
    """Predicted S(t) of each patient at ``times``, shape (patients, len(times)).

    Times outside a curve's domain (the training follow-up) take its value at
    the nearest end: survival curves are not extrapolated.
    """
    times = np.asarray(times, dtype=float)
    curves = model.predict_survival_function(X)
    out = np.empty((len(curves), len(times)))
    for k, fn in enumerate(curves):
        lo, hi = fn.domain
        out[k] = fn(np.clip(times, lo, hi))
    return out
