"""Pieces shared by the selection estimators: targets, scores, parameter rules, base classes."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted

from radflow._config import Rule, Wording, check_value
from radflow._lazy import load

sksurv_util = load("sksurv.util")

__all__: list[str] = []


# -- targets -------------------------------------------------------------------------


def _survival(y):
    """``(event, time)`` if ``y`` is a structured survival array, else None."""
    if isinstance(y, np.ndarray) and y.dtype.names is not None and len(y.dtype.names) == 2:
        return sksurv_util.check_y_survival(y)
    return None


def _require_survival(y, who: str):
    if y is None:
        raise ValueError(
            f"{who}: fit needs a survival target y (a structured array from "
            "sksurv.util.Surv.from_arrays)"
        )
    surv = _survival(y)
    if surv is None:
        raise ValueError(
            f"{who}: y must be a structured survival array (event, time), "
            f"e.g. sksurv.util.Surv.from_arrays; got {type(y).__name__}"
        )
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


# -- small array helpers ---------------------------------------------------------------


def _standardize(X: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance (constant columns only centred)."""
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _top(score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest scores (ties to the earlier column)."""
    mask = np.zeros(score.shape, dtype=bool)
    mask[np.argsort(-score, kind="stable")[:k]] = True
    return mask


# -- parameter rules -------------------------------------------------------------------

#: Selector messages: ``"UnivariateCoxSelector: k must be an integer >= 1, or null, got 0"``.
_WORDING = Wording(value="{name} must be {expected}, got {value!r}")


def check_params(estimator) -> None:
    """Check an estimator's parameters against its class's ``_parameter_rules``.

    ``_parameter_rules`` maps each constrained parameter to a :class:`radflow._config.Rule`
    (the rule type of every radflow configuration). Called at the start of ``fit``
    (``__init__`` only stores its arguments, as scikit-learn requires); the error, a
    :class:`~radflow.errors.SettingsError` (a ValueError), names the class and the parameter.
    """
    who = type(estimator).__name__
    for name, rule in type(estimator)._parameter_rules.items():
        check_value(rule, getattr(estimator, name), f"{who}: {name}", wording=_WORDING)


def _number_or_mean(value):
    if value == "mean" or (isinstance(value, Real) and not isinstance(value, bool)):
        return value
    raise ValueError(value)


#: A number, or ``"mean"`` (the mean of the scores).
NUMBER_OR_MEAN = Rule("any", convert=_number_or_mean, expected="a number or 'mean'")


# -- base classes ------------------------------------------------------------------------


class _Selector(SelectorMixin, BaseEstimator):
    """A selector whose fit sets ``support_``; ``_parameter_rules`` declare its parameters."""

    _parameter_rules: dict = {}

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class _SupervisedSelector(_Selector):
    """A selector whose fit needs the target ``y``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
