"""CoxnetSelector: the non-zero coefficients of a LASSO / elastic-net Cox model."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from radflow._config import Rule
from radflow._lazy import load
from radflow.model.selection._base import (
    _require_survival,
    _standardize,
    _SupervisedSelector,
    check_params,
)

model_selection = load("sklearn.model_selection")
sksurv_linear_model = load("sksurv.linear_model")
sksurv_metrics = load("sksurv.metrics")

__all__ = ["CoxnetSelector"]


class CoxnetSelector(_SupervisedSelector):
    """Keep the features with non-zero coefficients in a LASSO / elastic-net Cox model.

    The model is :class:`sksurv.linear_model.CoxnetSurvivalAnalysis` on the
    standardised features. The penalty ``alpha`` is given, or the least
    penalised one of the path keeping at most ``max_features``, or chosen by
    cross-validation (Harrell's C on held-out folds stratified by event).

    Parameters
    ----------
    l1_ratio : float, default=1.0
        1 = LASSO; in (0, 1) the elastic net.
    alpha : float, optional
        Penalty; default: chosen by ``max_features`` or cross-validation.
    max_features : int, optional
        Choose the smallest ``alpha`` of the path with at most this many
        non-zero coefficients.
    n_alphas : int, default=100
        Length of the path.
    alpha_min_ratio : float or "auto", default="auto"
        Smallest over largest alpha of the path.
    cv : int, default=5
        Folds of the cross-validation.
    random_state : int, optional
        Shuffling of the folds.

    Attributes
    ----------
    alpha_ : float
        The penalty used.
    coef_ : ndarray, shape (n_features_in_,)
        Coefficients at ``alpha_``, per standard deviation of each feature.
    alphas_ : ndarray
        The path (descending).
    cv_scores_ : ndarray
        Mean held-out C-index along the path, for the alphas every fold's
        path reached (cross-validation only).
    support_ : ndarray of bool
    """

    _parameter_rules = {
        "l1_ratio": Rule("float", low=0.0, high=1.0),
        "alpha": Rule("float", low=0.0, nullable=True),
        "max_features": Rule("int", low=1, nullable=True),
        "cv": Rule("int", low=2),
    }

    def __init__(
        self,
        *,
        l1_ratio=1.0,
        alpha=None,
        max_features=None,
        n_alphas=100,
        alpha_min_ratio="auto",
        cv=5,
        random_state=None,
    ):
        self.l1_ratio = l1_ratio
        self.alpha = alpha
        self.max_features = max_features
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.cv = cv
        self.random_state = random_state

    def _model(self, alphas=None):
        return sksurv_linear_model.CoxnetSurvivalAnalysis(
            l1_ratio=self.l1_ratio,
            alphas=alphas,
            n_alphas=self.n_alphas,
            alpha_min_ratio=self.alpha_min_ratio,
        )

    def fit(self, X, y=None):
        """Fit the penalised Cox path and keep the non-zero coefficients."""
        who = "CoxnetSelector"
        check_params(self)
        if self.l1_ratio == 0:
            raise ValueError("CoxnetSelector: l1_ratio=0 (ridge) selects nothing; use > 0")
        X = validate_data(self, X)
        event, time = _require_survival(y, who)
        Z = _standardize(X)
        if self.alpha is not None:
            self.alpha_ = float(self.alpha)
            self.alphas_ = np.array([self.alpha_])
            self.coef_ = self._model(self.alphas_).fit(Z, y).coef_[:, 0]
            self.support_ = self.coef_ != 0
            return self

        path = self._model().fit(Z, y)
        self.alphas_, coefs = path.alphas_, path.coef_
        if self.max_features is not None:
            fits = np.flatnonzero((coefs != 0).sum(axis=0) <= self.max_features)
            best = fits[-1]
        else:
            folds = model_selection.StratifiedKFold(
                self.cv, shuffle=True, random_state=self.random_state
            )
            scores = []
            for train, test in folds.split(X, event):
                mean, sd = X[train].mean(axis=0), X[train].std(axis=0)
                scale = np.where(sd > 0, sd, 1.0)
                fold = self._model(self.alphas_).fit((X[train] - mean) / scale, y[train])
                risk = ((X[test] - mean) / scale) @ fold.coef_
                cindex = sksurv_metrics.concordance_index_censored
                scores.append([cindex(event[test], time[test], r)[0] for r in risk.T])
            # a fold's path may stop early (saturated fit): keep the alphas all folds reached,
            # as glmnet's cv does
            reached = min(len(s) for s in scores)
            self.cv_scores_ = np.mean([s[:reached] for s in scores], axis=0)
            best = int(np.argmax(self.cv_scores_))
        self.alpha_ = float(self.alphas_[best])
        self.coef_ = coefs[:, best]
        self.support_ = self.coef_ != 0
        return self
