"""CorrelationFilter: keep one feature of each cluster of highly correlated features."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow.model.selection._base import _Selector, _target, check_params
from radflow.model.selection._scores import _abs_correlation, _relevance

__all__ = ["CorrelationFilter"]


class CorrelationFilter(_Selector):
    """Keep one feature of each cluster of highly correlated features.

    Features are clustered hierarchically on the distance ``1 - |r|`` and
    the tree is cut at ``1 - threshold``. With complete linkage (default)
    every two features of a cluster have ``|r| >= threshold``, so the one
    kept stands for each one dropped; with single linkage no two kept
    features have ``|r| >= threshold``.

    Parameters
    ----------
    threshold : float, default=0.9
        |r| at or above which features are redundant.
    method : {"pearson", "spearman"}, default="pearson"
    linkage : {"complete", "single", "average"}, default="complete"
    keep : {"variance", "relevance"}, default="variance"
        Which feature of a cluster to keep: the one with the largest
        variance as given (compare it on a common scale, e.g. features of
        one unit), or the one most associated with the target ``y`` (Cox
        score statistic for survival, F statistic otherwise). Ties go to the
        earlier column.

    Attributes
    ----------
    clusters_ : ndarray of int, shape (n_features_in_,)
        Cluster label of each input column (1-based).
    support_ : ndarray of bool
    """

    _parameter_rules = {
        "threshold": Rule("float", low=0.0, high=1.0),
        "method": Rule("str", choices=("pearson", "spearman")),
        "linkage": Rule("str", choices=("complete", "single", "average")),
        "keep": Rule("str", choices=("variance", "relevance")),
    }

    def __init__(self, *, threshold=0.9, method="pearson", linkage="complete", keep="variance"):
        self.threshold = threshold
        self.method = method
        self.linkage = linkage
        self.keep = keep

    def fit(self, X, y=None):
        """Cluster the columns and choose one per cluster."""
        who = "CorrelationFilter"
        check_params(self)
        X = validate_data(self, X)
        if self.keep == "relevance":
            if y is None:
                raise ValueError("CorrelationFilter: keep='relevance' needs y in fit")
            y = _target(X, y, who)
            merit = _relevance(X, y, "f")
        else:
            merit = X.var(axis=0)
        p = X.shape[1]
        if p == 1:
            self.clusters_ = np.ones(1, dtype=int)
        else:
            distance = np.clip(1.0 - _abs_correlation(X, self.method), 0.0, 1.0)
            np.fill_diagonal(distance, 0.0)
            tree = linkage(squareform(distance, checks=False), method=self.linkage)
            self.clusters_ = fcluster(tree, t=1.0 - self.threshold, criterion="distance")
        self.support_ = np.zeros(p, dtype=bool)
        for label in np.unique(self.clusters_):
            members = np.flatnonzero(self.clusters_ == label)
            self.support_[members[np.argmax(merit[members])]] = True
        return self
