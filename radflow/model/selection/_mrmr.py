"""MRMRSelector: minimum-redundancy maximum-relevance ranking."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow.model.selection._base import _SupervisedSelector, _target, check_params
from radflow.model.selection._scores import _abs_correlation, _relevance

__all__ = ["MRMRSelector"]


class MRMRSelector(_SupervisedSelector):
    """Minimum-redundancy maximum-relevance ranking; keep the first ``n_features``.

    Greedy forward selection: the first feature is the most relevant; each
    next one maximises ``relevance / redundancy``, the redundancy being its
    mean |Pearson r| with the features already chosen (the "FCQ" scheme of
    Ding & Peng, which needs no common scale between the two terms).

    Parameters
    ----------
    n_features : int, default=10
        Number kept (all features if fewer).
    relevance : {"f", "mi"}, default="f"
        F statistic with the target (class: ANOVA; continuous: regression;
        survival: Cox score chi-square), or mutual information (class or
        continuous target).
    random_state : int, optional
        For the mutual-information estimate.

    Attributes
    ----------
    relevance_ : ndarray, shape (n_features_in_,)
    ranking_ : ndarray of int
        Indices of the chosen columns in order of choice.
    support_ : ndarray of bool

    References
    ----------
    Ding C, Peng H. Minimum redundancy feature selection from microarray gene
    expression data. J Bioinform Comput Biol 2005;3(2):185-205.
    doi:10.1142/S0219720005001004
    """

    _parameter_rules = {
        "n_features": Rule("int", low=1),
        "relevance": Rule("str", choices=("f", "mi")),
    }

    def __init__(self, *, n_features=10, relevance="f", random_state=None):
        self.n_features = n_features
        self.relevance = relevance
        self.random_state = random_state

    def fit(self, X, y=None):
        """Rank the columns greedily and keep the first ``n_features``."""
        who = "MRMRSelector"
        check_params(self)
        X = validate_data(self, X)
        y = _target(X, y, who)
        self.relevance_ = _relevance(X, y, self.relevance, self.random_state)
        correlation = _abs_correlation(X)
        chosen = [int(np.argmax(self.relevance_))]
        redundancy = correlation[:, chosen[0]].copy()
        for _ in range(min(self.n_features, X.shape[1]) - 1):
            with np.errstate(divide="ignore", invalid="ignore"):
                score = self.relevance_ / (redundancy / len(chosen))
            score = np.nan_to_num(score, nan=0.0)  # 0 / 0: irrelevant and uncorrelated
            score[chosen] = -np.inf
            chosen.append(int(np.argmax(score)))
            redundancy += correlation[:, chosen[-1]]
        self.ranking_ = np.array(chosen)
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[self.ranking_] = True
        return self
