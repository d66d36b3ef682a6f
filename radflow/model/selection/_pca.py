"""FeaturePCA: principal components of standardised features, named PC1, PC2, ..."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from radflow._lazy import load

decomposition = load("sklearn.decomposition")
pd = load("pandas")

__all__ = ["FeaturePCA"]


class FeaturePCA(TransformerMixin, BaseEstimator):
    """Principal components of (standardised) features, named ``PC1, PC2, ...``.

    A thin wrapper of :class:`sklearn.decomposition.PCA` that standardises
    first (radiomic features span many orders of magnitude) and keeps the
    loadings by input feature name.

    Parameters
    ----------
    n_components : int, float or None, default=None
        As for :class:`~sklearn.decomposition.PCA` (a float in (0, 1): the
        fraction of variance kept).
    standardize : bool, default=True
    whiten : bool, default=False
    random_state : int, optional

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    mean_, scale_ : ndarray, shape (n_features_in_,)
        Standardisation (scale 1 when ``standardize`` is False).
    loadings_ : pandas.DataFrame, shape (n_features_in_, n_components_)
        Component weights, indexed by input feature name.
    explained_variance_ratio_ : ndarray
    """

    def __init__(self, *, n_components=None, standardize=True, whiten=False, random_state=None):
        self.n_components = n_components
        self.standardize = standardize
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y=None):
        """Standardise and fit the PCA."""
        X = validate_data(self, X)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.pca_ = decomposition.PCA(
            n_components=self.n_components, whiten=self.whiten, random_state=self.random_state
        ).fit((X - self.mean_) / self.scale_)
        self.n_components_ = self.pca_.n_components_
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        names = getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])])
        self.loadings_ = pd.DataFrame(
            self.pca_.components_.T, index=list(names), columns=list(self.get_feature_names_out())
        )
        return self

    def transform(self, X):
        """Component scores, shape (n_samples, n_components_)."""
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return self.pca_.transform((X - self.mean_) / self.scale_)

    def get_feature_names_out(self, input_features=None):
        """``PC1`` ... ``PCn``."""
        check_is_fitted(self, "n_components_")
        return np.array([f"PC{i + 1}" for i in range(self.n_components_)], dtype=object)
