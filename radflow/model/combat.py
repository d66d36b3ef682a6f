"""ComBat harmonisation of features across batches (institutions, scanners).

ComBat (Johnson et al. 2007) models each feature ``g`` of sample ``j`` in
batch ``i`` as::

    x_ijg = alpha_g + Z_j beta_g + gamma_ig + delta_ig * eps_ijg,   eps ~ N(0, sigma_g^2)

with ``Z`` the biological covariates to preserve, an additive batch effect
``gamma`` and a multiplicative one ``delta``. The batch effects of all
features are shrunk towards a common prior by empirical Bayes, which makes
the estimates stable with few samples per batch (Fortin et al. 2017, 2018
brought it to neuroimaging and radiomics). The harmonised value is::

    x*_ijg = (x_ijg - alpha_g - Z_j beta_g - gamma*_ig) / delta*_ig + alpha_g + Z_j beta_g

:class:`ComBat` learns ``alpha``, ``beta``, ``sigma``, ``gamma*`` and
``delta*`` in :meth:`ComBat.fit` and applies them in
:meth:`ComBat.transform`, so that inside a cross-validation the test fold is
harmonised with estimates from the training fold only. On the training data
``fit_transform`` gives the values of neuroCombat (Fortin's reference
implementation) and of ``sva::ComBat``; the arithmetic follows them step by
step, including the convergence rule of the parametric iteration.

References
----------
Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray
expression data using empirical Bayes methods. Biostatistics
2007;8(1):118-127. doi:10.1093/biostatistics/kxj037

Fortin JP, Parker D, Tunc B, et al. Harmonization of multi-site diffusion
tensor imaging data. NeuroImage 2017;161:149-170.
doi:10.1016/j.neuroimage.2017.08.047

Fortin JP, Cullen N, Sheline YI, et al. Harmonization of cortical thickness
measurements across scanners and sites. NeuroImage 2018;167:104-120.
doi:10.1016/j.neuroimage.2017.11.024

Orlhac F, Boughdad S, Philippe C, et al. A postreconstruction harmonization
method for multicenter radiomic studies in PET. J Nucl Med
2018;59(8):1321-1328. doi:10.2967/jnumed.117.199935
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

__all__ = ["ComBat"]

# Rows of the feature-by-feature likelihood matrix of the non-parametric prior
# computed at once: bounds its memory to _NP_CHUNK x n_features doubles.
_NP_CHUNK = 512


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical Bayes location/scale harmonisation, fitted on training data.

    Batch and covariates are columns of the DataFrame ``X``, named by the
    constructor, so that the transformer works unchanged inside a
    :class:`~sklearn.pipeline.Pipeline` and a cross-validation: both ``fit``
    and ``transform`` read the batch of each row from ``X[batch]``.

    Parameters
    ----------
    batch : str, default="institution"
        Column of ``X`` holding the batch (institution, scanner) of each
        sample. It is dropped from the output.
    categorical : sequence of str, default=()
        Columns of categorical biological covariates whose effect is
        preserved (dummy-coded with the first level, in sorted order, as
        reference).
    continuous : sequence of str, default=()
        Columns of continuous biological covariates whose effect is
        preserved (linear).
    features : sequence of str or callable, optional
        Columns to harmonise, or a callable taking ``X`` and returning them
        (e.g. ``sklearn.compose.make_column_selector(pattern=r"^CT\\.")``).
        Default: every column other than ``batch`` and the covariates.
    remainder : {"passthrough", "drop"}, default="passthrough"
        What becomes of the columns that are neither harmonised nor the
        batch (covariates, clinical variables...): kept unchanged, in their
        place, or dropped.
    parametric : bool, default=True
        Parametric priors (normal for ``gamma``, inverse gamma for
        ``delta``) solved by iteration, or the non-parametric prior (each
        feature's batch effect is a likelihood-weighted mean of the other
        features' estimates).
    empirical_bayes : bool, default=True
        Shrink the batch effects by empirical Bayes; False uses the
        per-feature location/scale estimates as they are.
    mean_only : bool, default=False
        Adjust the location only (``delta* = 1``).
    tol : float, default=1e-4
        Relative change of the parametric iteration at which it stops (the
        value and the rule of neuroCombat and ``sva``).
    max_iter : int, default=1000
        Bound of the parametric iteration (a ConvergenceWarning is issued if
        reached).

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in fit.
    features_ : ndarray of str
        The harmonised columns.
    batches_ : ndarray
        Batch levels seen in fit, sorted; rows ``i`` of ``gamma_star_`` and
        ``delta_star_`` are those of ``batches_[i]``.
    batch_counts_ : ndarray of int
        Training samples per batch.
    categories_ : dict of str to ndarray
        Levels of each categorical covariate seen in fit.
    grand_mean_ : ndarray, shape (n_features,)
        ``alpha``: the batch-size-weighted mean of the batch intercepts.
    beta_ : ndarray, shape (n_covariate_columns, n_features)
        Covariate coefficients (dummies of ``categorical`` then
        ``continuous``).
    var_pooled_ : ndarray, shape (n_features,)
        ``sigma^2``: residual variance of the location model (divided by n).
    gamma_hat_, delta_hat_ : ndarray, shape (n_batches, n_features)
        Per-feature location/scale batch estimates on the standardised data.
    gamma_star_, delta_star_ : ndarray, shape (n_batches, n_features)
        The batch effects applied (shrunk, when ``empirical_bayes``).
    constant_ : ndarray of bool, shape (n_features,)
        Features with zero residual variance: left unchanged, and out of
        the priors.

    Notes
    -----
    ComBat needs complete data: impute missing values before it (inside the
    pipeline, so the imputer is fitted on training data too). A batch seen
    only in ``transform`` cannot be harmonised and raises; so does an unseen
    level of a categorical covariate. The non-parametric prior is computed
    in log space, which gives neuroCombat's values where its likelihoods do
    not underflow and finite ones where they do (large batches).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"site": np.repeat(["A", "B"], 20),
    ...                   "age": rng.uniform(40, 80, 40),
    ...                   "f1": rng.normal(size=40) + np.repeat([0.0, 3.0], 20),
    ...                   "f2": rng.normal(size=40)})
    >>> out = ComBat(batch="site", continuous=["age"]).fit_transform(X)
    >>> list(out.columns)
    ['age', 'f1', 'f2']
    >>> bool(abs(out.f1[:20].mean() - out.f1[20:].mean()) < 0.5)
    True
    """

    def __init__(
        self,
        *,
        batch="institution",
        categorical=(),
        continuous=(),
        features=None,
        remainder="passthrough",
        parametric=True,
        empirical_bayes=True,
        mean_only=False,
        tol=1e-4,
        max_iter=1000,
    ):
        self.batch = batch
        self.categorical = categorical
        self.continuous = continuous
        self.features = features
        self.remainder = remainder
        self.parametric = parametric
        self.empirical_bayes = empirical_bayes
        self.mean_only = mean_only
        self.tol = tol
        self.max_iter = max_iter

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Learn the location/scale model and the batch effects from ``X``.

        Parameters
        ----------
        X : pandas.DataFrame, shape (n_samples, n_columns)
            Features, batch column and covariate columns.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.features_ = np.asarray(self._feature_columns(X), dtype=object)

        batch = X[self.batch]
        if batch.isna().any():
            raise ValueError(f"ComBat: batch column {self.batch!r} has missing values")
        self.batches_, codes, self.batch_counts_ = np.unique(
            batch.to_numpy(), return_inverse=True, return_counts=True
        )
        if len(self.batches_) < 2:
            raise ValueError(
                f"ComBat: batch column {self.batch!r} has a single level "
                f"({self.batches_[0]!r}); there is nothing to harmonise"
            )
        small = self.batches_[self.batch_counts_ < 2]
        if len(small):
            raise ValueError(
                f"ComBat: batch {small[0]!r} of column {self.batch!r} has one "
                "sample; each batch needs at least 2 to estimate its scale"
            )
        for c in [*self.categorical, *self.continuous]:
            if X[c].isna().any():
                raise ValueError(f"ComBat: covariate {c!r} has missing values")
        self.categories_ = {c: np.unique(X[c].to_numpy()) for c in self.categorical}
        covariates = self._covariate_design(X)
        data = self._feature_values(X)

        n_batch, n = len(self.batches_), len(X)
        onehot = np.zeros((n, n_batch))
        onehot[np.arange(n), codes] = 1.0
        design = np.hstack([onehot, covariates])
        if np.linalg.matrix_rank(design) < design.shape[1]:
            raise ValueError(
                "ComBat: the covariates are confounded with the batch column "
                f"{self.batch!r} (design matrix not of full rank); drop or merge "
                "covariates that are constant within a batch"
            )

        coef = np.linalg.lstsq(design, data, rcond=None)[0]
        self.grand_mean_ = (self.batch_counts_ / n) @ coef[:n_batch]
        self.beta_ = coef[n_batch:]
        self.var_pooled_ = np.mean((data - design @ coef) ** 2, axis=0)
        # Constant on the training rows: with covariates the least-squares residual of a
        # constant column is rounding noise (~1e-30), not 0, so test the values themselves.
        self.constant_ = (np.ptp(data, axis=0) == 0.0) | (self.var_pooled_ == 0.0)
        scale = np.sqrt(np.where(self.constant_, 1.0, self.var_pooled_))
        s_data = (data - self.grand_mean_ - covariates @ self.beta_) / scale
        s_data = s_data[:, ~self.constant_]

        gamma_hat = np.stack([s_data[codes == i].mean(axis=0) for i in range(n_batch)])
        if self.mean_only:
            delta_hat = np.ones_like(gamma_hat)
        else:
            delta_hat = np.stack([s_data[codes == i].var(axis=0, ddof=1) for i in range(n_batch)])
            delta_hat[delta_hat == 0.0] = 1.0  # feature constant within a batch: no scaling
        if not self.empirical_bayes:
            gamma_star, delta_star = gamma_hat, delta_hat
        elif self.parametric:
            gamma_star, delta_star = self._parametric(s_data, codes, gamma_hat, delta_hat)
        else:
            gamma_star, delta_star = self._nonparametric(s_data, codes, gamma_hat, delta_hat)

        p = len(self.features_)
        self.gamma_hat_, self.delta_hat_ = np.zeros((n_batch, p)), np.ones((n_batch, p))
        self.gamma_star_, self.delta_star_ = np.zeros((n_batch, p)), np.ones((n_batch, p))
        self.gamma_hat_[:, ~self.constant_] = gamma_hat
        self.delta_hat_[:, ~self.constant_] = delta_hat
        self.gamma_star_[:, ~self.constant_] = gamma_star
        self.delta_star_[:, ~self.constant_] = delta_star
        return self

    def _parametric(self, s_data, codes, gamma_hat, delta_hat):
        """Posterior means under normal / inverse-gamma priors (Johnson et al., eqs 3.1-3.2)."""
        gamma_bar = gamma_hat.mean(axis=1)
        tau2 = gamma_hat.var(axis=1, ddof=1)
        gamma_star, delta_star = np.empty_like(gamma_hat), np.empty_like(delta_hat)
        for i in range(len(gamma_hat)):
            x = s_data[codes == i]
            n = x.shape[0]
            if self.mean_only:
                # neuroCombat's mean-only posterior: n = 1 and delta = 1 in the posterior mean.
                gamma_star[i] = (tau2[i] * gamma_hat[i] + gamma_bar[i]) / (tau2[i] + 1.0)
                delta_star[i] = 1.0
                continue
            m, s2 = delta_hat[i].mean(), delta_hat[i].var(ddof=1)
            a, b = (2.0 * s2 + m**2) / s2, (m * s2 + m**3) / s2
            g_old, d_old = gamma_hat[i], delta_hat[i]
            for _ in range(self.max_iter):
                g_new = (tau2[i] * n * gamma_hat[i] + d_old * gamma_bar[i]) / (tau2[i] * n + d_old)
                sum2 = ((x - g_new) ** 2).sum(axis=0)
                d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
                # neuroCombat's relative change; a previous estimate of exactly 0 (a feature
                # whose batch mean is 0) gives inf (iterate on) or NaN (stop), as there
                with np.errstate(divide="ignore", invalid="ignore"):
                    change = max(
                        np.max(np.abs(g_new - g_old) / g_old),
                        np.max(np.abs(d_new - d_old) / d_old),
                    )
                g_old, d_old = g_new, d_new
                if not change > self.tol:  # NaN stops too, as in neuroCombat
                    break
            else:
                warnings.warn(
                    f"ComBat: the parametric prior of batch {self.batches_[i]!r} did "
                    f"not converge in {self.max_iter} iterations",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            gamma_star[i], delta_star[i] = g_old, d_old
        return gamma_star, delta_star

    def _nonparametric(self, s_data, codes, gamma_hat, delta_hat):
        """Monte-Carlo-free non-parametric prior: the other features' estimates, weighted
        by the likelihood of this feature's data under each of them."""
        gamma_star, delta_star = np.empty_like(gamma_hat), np.empty_like(delta_hat)
        p = s_data.shape[1]
        for i in range(len(gamma_hat)):
            x = s_data[codes == i]
            n = x.shape[0]
            g, d = gamma_hat[i], delta_hat[i]
            sx, sxx = x.sum(axis=0), (x**2).sum(axis=0)
            for start in range(0, p, _NP_CHUNK):
                rows = slice(start, min(start + _NP_CHUNK, p))
                # sum_k (x_kf - g_j)^2 for feature f (rows) under feature j's estimates (columns)
                sum2 = sxx[rows, None] - 2.0 * sx[rows, None] * g[None, :] + n * g[None, :] ** 2
                log_lh = -0.5 * n * np.log(2.0 * np.pi * d)[None, :] - sum2 / (2.0 * d[None, :])
                idx = np.arange(rows.start, rows.stop)
                log_lh[idx - rows.start, idx] = -np.inf  # leave the feature itself out
                w = np.exp(log_lh - log_lh.max(axis=1, keepdims=True))
                w /= w.sum(axis=1, keepdims=True)
                gamma_star[i, rows] = w @ g
                delta_star[i, rows] = w @ d
        return gamma_star, delta_star

    # ------------------------------------------------------------ transform

    def transform(self, X):
        """Harmonise ``X`` with the batch effects learned in fit.

        Parameters
        ----------
        X : pandas.DataFrame
            The columns seen in fit, with batches (and categorical levels)
            seen in fit.

        Returns
        -------
        pandas.DataFrame
            Columns :meth:`get_feature_names_out`, index of ``X``.
        """
        check_is_fitted(self, "gamma_star_")
        X = self._check_frame(X)
        if list(X.columns) != list(self.feature_names_in_):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            extra = [c for c in X.columns if c not in set(self.feature_names_in_)]
            raise ValueError(
                f"ComBat: X has other columns than in fit (missing {missing[:5]}, "
                f"unexpected {extra[:5]}, or another order)"
            )
        batch = X[self.batch].to_numpy()
        unseen = pd.unique(batch[~np.isin(batch, self.batches_)])
        if len(unseen):
            raise ValueError(
                f"ComBat: batch {unseen[0]!r} of column {self.batch!r} was not seen in fit "
                f"(seen: {', '.join(map(str, self.batches_))}); ComBat has no estimates for it: "
                "refit with samples of that batch"
            )
        codes = np.searchsorted(self.batches_, batch)
        data = self._feature_values(X)
        location = self.grand_mean_ + self._covariate_design(X) @ self.beta_
        scale = np.sqrt(np.where(self.constant_, 1.0, self.var_pooled_))
        s_data = (data - location) / scale
        adjusted = (s_data - self.gamma_star_[codes]) / np.sqrt(self.delta_star_[codes])
        harmonised = adjusted * scale + location
        harmonised[:, self.constant_] = data[:, self.constant_]

        out = X.drop(columns=[self.batch])
        out[list(self.features_)] = harmonised
        return out[list(self.get_feature_names_out())]

    def get_feature_names_out(self, input_features=None):
        """Output columns: input columns less the batch column (and the remainder if dropped)."""
        check_is_fitted(self, "features_")
        harmonised = set(self.features_)
        keep = [
            c
            for c in self.feature_names_in_
            if c != self.batch and (self.remainder == "passthrough" or c in harmonised)
        ]
        return np.asarray(keep, dtype=object)

    # -------------------------------------------------------------- helpers

    def _check_params(self):
        if not isinstance(self.batch, str):
            raise ValueError(f"ComBat: batch must be a column name, got {self.batch!r}")
        for name in ("categorical", "continuous"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                raise ValueError(
                    f"ComBat: {name} must be a sequence of column names, got {value!r}"
                )
        if self.remainder not in ("passthrough", "drop"):
            raise ValueError(
                f"ComBat: remainder must be 'passthrough' or 'drop', got {self.remainder!r}"
            )
        if not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise ValueError(f"ComBat: tol must be a positive number, got {self.tol!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 1
        ):
            raise ValueError(f"ComBat: max_iter must be an integer >= 1, got {self.max_iter!r}")

    def _check_frame(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"ComBat: X must be a pandas DataFrame with the batch column "
                f"{self.batch!r}, got {type(X).__name__}"
            )
        named = [self.batch, *self.categorical, *self.continuous]
        missing = [c for c in named if c not in X.columns]
        if missing:
            raise ValueError(
                f"ComBat: X has no column {missing[0]!r} (batch/covariate columns "
                f"are named by the constructor)"
            )
        overlap = set(self.categorical) & set(self.continuous) | {self.batch} & set(named[1:])
        if overlap:
            raise ValueError(
                f"ComBat: column {sorted(overlap)[0]!r} is named twice among "
                "batch, categorical and continuous"
            )
        return X

    def _feature_columns(self, X: pd.DataFrame) -> list[str]:
        named = {self.batch, *self.categorical, *self.continuous}
        if self.features is None:
            columns = [c for c in X.columns if c not in named]
        else:
            columns = list(self.features(X) if callable(self.features) else self.features)
            missing = [c for c in columns if c not in X.columns]
            if missing:
                raise ValueError(f"ComBat: feature column {missing[0]!r} is not in X")
            clash = [c for c in columns if c in named]
            if clash:
                raise ValueError(
                    f"ComBat: column {clash[0]!r} is both a feature to harmonise "
                    "and the batch or a covariate"
                )
        if not columns:
            raise ValueError("ComBat: no feature columns to harmonise")
        if len(columns) < 2 and self.empirical_bayes:
            raise ValueError(
                "ComBat: empirical Bayes estimates its priors across features and "
                "needs at least 2; pass empirical_bayes=False for one feature"
            )
        bad = [c for c in columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:
            raise ValueError(
                f"ComBat: feature column {bad[0]!r} is not numeric; name the "
                "columns to harmonise with features="
            )
        return columns

    def _feature_values(self, X: pd.DataFrame) -> np.ndarray:
        data = X[list(self.features_)].to_numpy(dtype=float)
        if not np.isfinite(data).all():
            column = self.features_[np.flatnonzero(~np.isfinite(data).all(axis=0))[0]]
            raise ValueError(
                f"ComBat: feature column {column!r} has missing or infinite values; "
                "impute them first (inside the pipeline) or drop the column"
            )
        return data

    def _covariate_design(self, X: pd.DataFrame) -> np.ndarray:
        """Dummies of the categorical covariates (first level dropped), then the continuous."""
        blocks = [np.empty((len(X), 0))]
        for c in self.categorical:
            if X[c].isna().any():
                raise ValueError(f"ComBat: covariate {c!r} has missing values")
            values, levels = X[c].to_numpy(), self.categories_[c]
            unseen = pd.unique(values[~np.isin(values, levels)])
            if len(unseen):
                raise ValueError(
                    f"ComBat: level {unseen[0]!r} of covariate {c!r} was not seen in fit"
                )
            blocks.append((values[:, None] == levels[None, 1:]).astype(float))
        for c in self.continuous:
            if not pd.api.types.is_numeric_dtype(X[c]):
                raise ValueError(f"ComBat: continuous covariate {c!r} is not numeric")
            values = X[c].to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise ValueError(f"ComBat: covariate {c!r} has missing values")
            blocks.append(values[:, None])
        return np.hstack(blocks)
