"""L1LogisticSelector: the non-zero coefficients of an L1 logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow._lazy import load
from radflow.model.selection._base import _standardize, _SupervisedSelector, check_params

linear_model = load("sklearn.linear_model")
model_selection = load("sklearn.model_selection")
multiclass = load("sklearn.utils.multiclass")

__all__ = ["L1LogisticSelector"]


class L1LogisticSelector(_SupervisedSelector):
    """Keep the features with non-zero coefficients of an L1 logistic regression.

    For binary endpoints (e.g. HPV status; with more classes a feature is
    kept if any class uses it). The features are standardised; the inverse
    penalty ``C`` is given or chosen by stratified cross-validation on the
    ROC AUC (log-loss for more classes).

    Parameters
    ----------
    C : float, optional
        Inverse of the L1 penalty; default: chosen among ``Cs``.
    Cs : int or sequence of float, default=10
        Grid for the cross-validation (int: a log grid from 1e-4 to 1e4).
    cv : int, default=5
    random_state : int, optional
    max_iter : int, default=1000

    Attributes
    ----------
    C_ : float
    coef_ : ndarray, shape (n_features_in_,) or (n_classes, n_features_in_)
        Coefficients per standard deviation of each feature.
    support_ : ndarray of bool
    """

    _parameter_rules = {
        "C": Rule("float", low=0.0, nullable=True),
        "cv": Rule("int", low=2),
    }

    def __init__(self, *, C=None, Cs=10, cv=5, random_state=None, max_iter=1000):
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, X, y=None):
        """Fit the L1 logistic model and keep its non-zero coefficients."""
        who = "L1LogisticSelector"
        check_params(self)
        if y is None:
            raise ValueError(f"{who} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y)
        kind = multiclass.type_of_target(y, raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{who}: y must hold classes (a binary endpoint), got a {kind} target")
        if len(np.unique(y)) < 2:
            raise ValueError(f"{who}: y has 1 class; a logistic model needs two")
        binary = len(np.unique(y)) == 2
        # liblinear is the fast exact L1 solver but binary only
        common = dict(
            l1_ratio=1.0,
            solver="liblinear" if binary else "saga",
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        Z = _standardize(X)
        if self.C is not None:
            model = linear_model.LogisticRegression(C=self.C, **common).fit(Z, y)
            self.C_ = float(self.C)
        else:
            folds = model_selection.StratifiedKFold(
                self.cv, shuffle=True, random_state=self.random_state
            )
            common.pop("l1_ratio")
            model = linear_model.LogisticRegressionCV(
                Cs=self.Cs,
                l1_ratios=(1.0,),
                cv=folds,
                scoring="roc_auc" if binary else "neg_log_loss",
                use_legacy_attributes=False,
                **common,
            ).fit(Z, y)
            self.C_ = float(np.ravel(model.C_)[0])
        self.coef_ = model.coef_.ravel() if binary else model.coef_
        self.n_iter_ = int(np.max(model.n_iter_))
        self.support_ = (np.atleast_2d(self.coef_) != 0).any(axis=0)
        return self
