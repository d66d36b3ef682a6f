"""UnivariateCoxSelector: features significant in a univariate Cox score test, or the top k."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow.model.selection._base import (
    _require_survival,
    _SupervisedSelector,
    _top,
    check_params,
)
from radflow.model.selection._scores import cox_score_test

__all__ = ["UnivariateCoxSelector"]


class UnivariateCoxSelector(_SupervisedSelector):
    """Keep features significant in a univariate Cox score test, or the top k.

    Parameters
    ----------
    alpha : float, default=0.05
        Keep features with p-value (or Benjamini-Hochberg adjusted p-value
        when ``fdr``) at most ``alpha``. Ignored when ``k`` is given.
    k : int, optional
        Keep the ``k`` features with the largest score statistic instead.
    fdr : bool, default=False
        Adjust the p-values for the false discovery rate (Benjamini-Hochberg).
    ties : {"efron", "breslow"}, default="efron"

    Attributes
    ----------
    statistic_, pvalues_ : ndarray, shape (n_features_in_,)
        Score chi-square and p-value (unadjusted) of each column;
        :func:`cox_score_test`.
    support_ : ndarray of bool
    """

    _parameter_rules = {
        "alpha": Rule("float", low=0.0, high=1.0),
        "k": Rule("int", low=1, nullable=True),
    }

    def __init__(self, *, alpha=0.05, k=None, fdr=False, ties="efron"):
        self.alpha = alpha
        self.k = k
        self.fdr = fdr
        self.ties = ties

    def fit(self, X, y=None):
        """Score each column of ``X`` against the survival target ``y``."""
        who = "UnivariateCoxSelector"
        check_params(self)
        X = validate_data(self, X)
        _require_survival(y, who)
        self.statistic_, self.pvalues_ = cox_score_test(X, y, ties=self.ties)
        if self.k is not None:
            self.support_ = _top(np.nan_to_num(self.statistic_, nan=-np.inf), self.k)
        else:
            p = np.nan_to_num(self.pvalues_, nan=1.0)
            if self.fdr:
                p = stats.false_discovery_control(p)
            self.support_ = p <= self.alpha
        return self
