"""NearZeroVariance: drop constant and near-constant features."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow.model.selection._base import _Selector, check_params

__all__ = ["NearZeroVariance"]


class NearZeroVariance(_Selector):
    """Drop constant and near-constant features (caret's ``nearZeroVar`` rule).

    A feature is near-zero-variance when its most frequent value is more
    than ``freq_cut`` times as frequent as the second most frequent one and
    its distinct values are at most ``unique_cut`` percent of the samples; a
    feature with a single value is always dropped. Missing values are
    ignored (a column with no value is dropped).

    Parameters
    ----------
    freq_cut : float, default=95/5
        Ratio of the two most common values' counts above which a feature
        may be near-zero-variance.
    unique_cut : float, default=10
        Percentage of distinct values at or below which it may be.

    Attributes
    ----------
    freq_ratio_, percent_unique_ : ndarray, shape (n_features_in_,)
    support_ : ndarray of bool

    References
    ----------
    Kuhn M. Building predictive models in R using the caret package. J Stat
    Softw 2008;28(5):1-26. doi:10.18637/jss.v028.i05
    """

    _parameter_rules = {
        "freq_cut": Rule("float", low=1.0),
        "unique_cut": Rule("float", low=0.0, high=100.0),
    }

    def __init__(self, *, freq_cut=95 / 5, unique_cut=10.0):
        self.freq_cut = freq_cut
        self.unique_cut = unique_cut

    def fit(self, X, y=None):
        """Compute the frequency ratio and percent unique of each column."""
        check_params(self)
        X = validate_data(self, X, ensure_all_finite="allow-nan")
        p = X.shape[1]
        self.freq_ratio_, self.percent_unique_ = np.empty(p), np.empty(p)
        constant = np.zeros(p, dtype=bool)
        for j in range(p):
            column = X[:, j][~np.isnan(X[:, j])]
            counts = np.sort(np.unique(column, return_counts=True)[1])[::-1]
            constant[j] = len(counts) <= 1
            self.freq_ratio_[j] = counts[0] / counts[1] if len(counts) > 1 else np.inf
            self.percent_unique_[j] = 100.0 * len(counts) / len(X)
        near = (self.freq_ratio_ > self.freq_cut) & (self.percent_unique_ <= self.unique_cut)
        self.support_ = ~(constant | near)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
