"""ForestImportanceSelector: the most important features of a random (survival) forest."""

from __future__ import annotations

from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow._lazy import load
from radflow.model.selection._base import (
    NUMBER_OR_MEAN,
    _SupervisedSelector,
    _survival,
    _target,
    _top,
    check_params,
)

ensemble = load("sklearn.ensemble")
inspection = load("sklearn.inspection")
multiclass = load("sklearn.utils.multiclass")
sksurv_ensemble = load("sksurv.ensemble")

__all__ = ["ForestImportanceSelector"]


class ForestImportanceSelector(_SupervisedSelector):
    """Keep the most important features of a random forest.

    Survival target: a :class:`sksurv.ensemble.RandomSurvivalForest` and the
    permutation importance (drop of Harrell's C on the training data when a
    column is shuffled). Class or continuous target: a scikit-learn random
    forest and its permutation (accuracy / R^2) or impurity importance.

    Parameters
    ----------
    n_features : int, optional
        Keep at most this many (the most important).
    threshold : float or "mean", default="mean"
        Keep features with importance at least this (``"mean"``: the mean
        importance).
    importance : {"permutation", "impurity"}, default="permutation"
        Impurity importance is not defined for survival forests.
    n_estimators : int, default=200
    min_samples_leaf : int, default=3
    n_repeats : int, default=5
        Shuffles per column for the permutation importance.
    random_state : int, optional

    Attributes
    ----------
    importances_ : ndarray, shape (n_features_in_,)
    estimator_ : the fitted forest
    support_ : ndarray of bool
    """

    _parameter_rules = {
        "n_features": Rule("int", low=1, nullable=True),
        "threshold": NUMBER_OR_MEAN,
        "importance": Rule("str", choices=("permutation", "impurity")),
        "n_estimators": Rule("int", low=1),
        "min_samples_leaf": Rule("int", low=1),
        "n_repeats": Rule("int", low=1),
    }

    def __init__(
        self,
        *,
        n_features=None,
        threshold="mean",
        importance="permutation",
        n_estimators=200,
        min_samples_leaf=3,
        n_repeats=5,
        random_state=None,
    ):
        self.n_features = n_features
        self.threshold = threshold
        self.importance = importance
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.n_repeats = n_repeats
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the forest and rank the columns by importance."""
        who = "ForestImportanceSelector"
        check_params(self)
        X = validate_data(self, X)
        y = _target(X, y, who)
        options = dict(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        )
        if _survival(y) is not None:
            if self.importance == "impurity":
                raise ValueError(
                    f"{who}: impurity importance is not defined for survival "
                    "forests; use importance='permutation'"
                )
            forest = sksurv_ensemble.RandomSurvivalForest(**options)
        elif multiclass.type_of_target(y) in ("binary", "multiclass"):
            forest = ensemble.RandomForestClassifier(**options)
        else:
            forest = ensemble.RandomForestRegressor(**options)
        self.estimator_ = forest.fit(X, y)
        if self.importance == "impurity":
            self.importances_ = forest.feature_importances_
        else:
            self.importances_ = inspection.permutation_importance(
                forest, X, y, n_repeats=self.n_repeats, random_state=self.random_state
            ).importances_mean
        cut = self.importances_.mean() if self.threshold == "mean" else self.threshold
        self.support_ = self.importances_ >= cut
        if self.n_features is not None:
            self.support_ &= _top(self.importances_, self.n_features)
        return self
