"""Multimodal fusion: image modalities, clinical and genomic blocks in one model.

A *block* is a named group of columns of the study DataFrame (``"CT"``: the
``CT.*`` features, ``"clinical"``, ``"genomic"`` ...). Two ways to combine
them:

* **Early fusion** -- :class:`BlockScaler` standardises each block's columns
  and weights each block by ``1 / sqrt(n_columns)``, so that a block of 300
  texture features does not outweigh 5 clinical variables by sheer number;
  one model is then fitted on the concatenation
  (:func:`make_early_fusion`).
* **Late fusion** -- :class:`LateFusionSurvival` fits one survival model
  per block and combines their risk scores with a meta-learner (a Cox model)
  fitted on *out-of-fold* scores (stacking), so that the meta-learner sees
  how each block model does on patients it was not fitted on.

Patients missing a modality (all of a block's columns NaN) are handled in
one of two documented ways, chosen by the ``missing`` parameter:

``"impute"``
    Keep every patient; missing values are imputed by the block's training
    median *inside* the model (fitted on the training fold only), and
    :class:`BlockScaler` adds a ``{block}.missing`` indicator column for
    blocks that some training patient lacks, so the model can learn that
    absence differs from an average value.
``"restrict"``
    Fit on complete cases only (patients with every block column present)
    and refuse to score incomplete patients. :func:`complete_cases` gives
    the mask to restrict a study beforehand, as an analysis restricted to
    complete cases must be reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from sksurv.base import SurvivalAnalysisMixin

from radflow._lazy import load

model_selection = load("sklearn.model_selection")
sksurv_linear_model = load("sksurv.linear_model")
sksurv_util = load("sksurv.util")

__all__ = [
    "BlockScaler",
    "LateFusionSurvival",
    "complete_cases",
    "make_early_fusion",
    "missing_blocks",
    "resolve_blocks",
]


def resolve_blocks(X: pd.DataFrame, blocks) -> dict[str, list[str]]:
    """The columns of each block.

    Parameters
    ----------
    X : pandas.DataFrame
    blocks : mapping of str to (sequence of str, str or callable)
        Per block: its column names, a regular expression matched at the
        start of column names (``r"CT\\."``), or a callable returning the
        names from ``X`` (``sklearn.compose.make_column_selector``).

    Returns
    -------
    dict of str to list of str
        Columns in ``X``'s order, per block, in ``blocks``' order.

    Raises
    ------
    ValueError
        A block selects no column or an absent one, or two blocks share a
        column.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"X must be a pandas DataFrame (blocks are named columns), got {type(X).__name__}"
        )
    if not isinstance(blocks, Mapping) or not blocks:
        raise ValueError(
            f"blocks must be a non-empty mapping of block name to columns, got {blocks!r}"
        )
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, spec in blocks.items():
        if isinstance(spec, str):
            pattern = re.compile(spec)
            columns = [c for c in X.columns if pattern.match(str(c))]
        elif callable(spec):
            columns = list(spec(X))
        else:
            columns = list(spec)
            absent = [c for c in columns if c not in X.columns]
            if absent:
                raise ValueError(f"block {name!r}: column {absent[0]!r} is not in X")
            order = {c: i for i, c in enumerate(X.columns)}
            columns = sorted(columns, key=order.__getitem__)
        if not columns:
            raise ValueError(f"block {name!r} selects no column of X")
        for c in columns:
            if c in owner:
                raise ValueError(f"column {c!r} is in blocks {owner[c]!r} and {name!r}")
            owner[c] = name
        out[str(name)] = columns
    return out


def missing_blocks(X: pd.DataFrame, blocks) -> pd.DataFrame:
    """Which patients lack which block (every column of the block missing).

    Returns
    -------
    pandas.DataFrame of bool, shape (n_samples, n_blocks)
        Index of ``X``, one column per block.
    """
    columns = resolve_blocks(X, blocks)
    return pd.DataFrame({b: X[c].isna().all(axis=1) for b, c in columns.items()}, index=X.index)


def complete_cases(X: pd.DataFrame, blocks) -> np.ndarray:
    """Boolean mask of the rows with no missing value in any block column."""
    columns = [c for cs in resolve_blocks(X, blocks).values() for c in cs]
    return ~X[columns].isna().any(axis=1).to_numpy()


def _check_missing(who: str, missing) -> None:
    if missing not in ("impute", "restrict"):
        raise ValueError(f"{who}: missing must be 'impute' or 'restrict', got {missing!r}")


class BlockScaler(TransformerMixin, BaseEstimator):
    """Standardise each block and weight it by ``1 / sqrt(n_columns)`` (early fusion).

    After it, every block has a total variance of 1 (sum over its columns),
    whatever its number of columns. Columns in no block are dropped.

    Parameters
    ----------
    blocks : mapping
        Block name to columns (see :func:`resolve_blocks`).
    missing : {"impute", "restrict"}, default="impute"
        ``"impute"``: median imputation fitted in ``fit`` and a
        ``{block}.missing`` indicator for each block some training patient
        lacks. ``"restrict"``: no imputation; ``fit`` and ``transform``
        refuse rows with missing values (restrict the study with
        :func:`complete_cases` first).
    weighting : {"equal", "none"}, default="equal"
        ``"equal"``: divide each block by the square root of its number of
        columns; ``"none"``: standardise only.

    Attributes
    ----------
    blocks_ : dict of str to list of str
        Output columns of each block (its features, then its indicator).
    imputers_, scalers_ : dict of str to fitted estimator
    weights_ : dict of str to float
    indicators_ : list of str
        Blocks with a missing indicator column.
    """

    def __init__(self, blocks=None, *, missing="impute", weighting="equal"):
        self.blocks = blocks
        self.missing = missing
        self.weighting = weighting

    def fit(self, X, y=None):
        """Learn each block's medians, means and standard deviations from ``X``."""
        _check_missing("BlockScaler", self.missing)
        if self.weighting not in ("equal", "none"):
            raise ValueError(
                f"BlockScaler: weighting must be 'equal' or 'none', got {self.weighting!r}"
            )
        columns = resolve_blocks(X, self.blocks)
        self._check_values(X, columns)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.columns_ = columns
        absent = missing_blocks(X, columns)
        self.imputers_, self.scalers_, self.weights_, self.blocks_ = {}, {}, {}, {}
        self.indicators_ = []
        for name, cols in columns.items():
            values = X[cols].to_numpy(dtype=float)
            if self.missing == "impute":
                imputer = SimpleImputer(strategy="median", keep_empty_features=True)
                self.imputers_[name] = imputer.fit(values)
                values = imputer.transform(values)
            self.scalers_[name] = StandardScaler().fit(values)
            self.weights_[name] = 1.0 / np.sqrt(len(cols)) if self.weighting == "equal" else 1.0
            self.blocks_[name] = list(cols)
            if self.missing == "impute" and absent[name].any():
                self.blocks_[name].append(f"{name}.missing")
                self.indicators_.append(name)
        return self

    def transform(self, X):
        """Impute (if so chosen), standardise and weight each block.

        Returns
        -------
        ndarray or pandas.DataFrame, shape (n_samples, n_output_columns)
            Columns :meth:`get_feature_names_out` (a DataFrame with
            ``set_output(transform="pandas")``).
        """
        check_is_fitted(self, "scalers_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"BlockScaler: X must be a pandas DataFrame, got {type(X).__name__}")
        absent_cols = [c for cs in self.columns_.values() for c in cs if c not in X.columns]
        if absent_cols:
            raise ValueError(f"BlockScaler: X has no column {absent_cols[0]!r} (seen in fit)")
        self._check_values(X, self.columns_)
        parts = []
        for name, cols in self.columns_.items():
            values = X[cols].to_numpy(dtype=float)
            if name in self.imputers_:
                values = self.imputers_[name].transform(values)
            parts.append(self.scalers_[name].transform(values) * self.weights_[name])
            if name in self.indicators_:
                parts.append(X[cols].isna().all(axis=1).to_numpy(dtype=float)[:, None])
        return np.hstack(parts)

    def get_feature_names_out(self, input_features=None):
        """Block columns in block order, each block followed by its indicator."""
        check_is_fitted(self, "blocks_")
        return np.asarray([c for cs in self.blocks_.values() for c in cs], dtype=object)

    def _check_values(self, X, columns):
        for name, cols in columns.items():
            bad = [c for c in cols if not pd.api.types.is_numeric_dtype(X[c])]
            if bad:
                raise ValueError(
                    f"BlockScaler: column {bad[0]!r} of block {name!r} is not "
                    "numeric; encode it first"
                )
            if self.missing == "restrict" and X[cols].isna().any(axis=None):
                raise ValueError(
                    f"BlockScaler: block {name!r} has missing values and "
                    "missing='restrict'; restrict the rows with complete_cases() "
                    "or use missing='impute'"
                )


def make_early_fusion(blocks, estimator, *, missing="impute", weighting="equal") -> Pipeline:
    """Early fusion: :class:`BlockScaler` then ``estimator`` on all blocks together.

    Selection steps can be put between them with
    ``pipeline.steps.insert(1, (name, selector))``.
    """
    return Pipeline(
        [
            ("blocks", BlockScaler(blocks, missing=missing, weighting=weighting)),
            ("model", estimator),
        ]
    )


class LateFusionSurvival(SurvivalAnalysisMixin, BaseEstimator):
    """Late fusion: one survival model per block, stacked by a Cox meta-model.

    ``fit`` computes, for each block, out-of-fold risk scores by a
    cross-validation stratified by event status (each block model fitted on
    the other folds, with its own imputation and standardisation fitted
    there), fits the meta-model on these scores, then refits every block
    model on all the training data. ``predict`` feeds the block models'
    scores on new patients to the meta-model.

    Parameters
    ----------
    blocks : mapping
        Block name to columns (see :func:`resolve_blocks`).
    estimators : mapping of str to estimator, optional
        Survival estimator per block (with ``predict`` giving a risk score);
        blocks not named get ``default``. Each is preceded by an imputer
        (``missing="impute"``) and a :class:`StandardScaler`.
    default : estimator, optional
        Block model for blocks not in ``estimators``; default a ridge Cox
        model ``sksurv_linear_model.CoxPHSurvivalAnalysis(alpha=1.0, ties="efron")``. For blocks
        of hundreds of features put a selector in front (a Pipeline with
        :class:`~radflow.model.selection.CoxnetSelector`).
    meta_estimator : estimator, optional
        Model of the standardised block scores; default
        ``sksurv_linear_model.CoxPHSurvivalAnalysis(alpha=0.1, ties="efron")``.
    cv : int or CV splitter, default=5
        Folds of the out-of-fold scores; an int gives a shuffled
        :class:`~sklearn.model_selection.StratifiedKFold` on the event
        indicator (a splitter's ``split(X, event)`` is used as is).
    missing : {"impute", "restrict"}, default="impute"
        See the module documentation: ``"restrict"`` fits on complete cases
        and refuses to score patients missing a block.
    random_state : int, optional
        Shuffling of the folds.

    Attributes
    ----------
    blocks_ : dict of str to list of str
    block_models_ : dict of str to Pipeline
        Block models refitted on all training rows.
    meta_model_ : Pipeline
        StandardScaler then the meta-estimator, fitted on ``oof_risk_``.
    oof_risk_ : pandas.DataFrame, shape (n_training_rows, n_blocks)
        Out-of-fold risk score of each block.
    n_dropped_ : int
        Training rows left out (``missing="restrict"``).
    """

    def __init__(
        self,
        blocks=None,
        *,
        estimators=None,
        default=None,
        meta_estimator=None,
        cv=5,
        missing="impute",
        random_state=None,
    ):
        self.blocks = blocks
        self.estimators = estimators
        self.default = default
        self.meta_estimator = meta_estimator
        self.cv = cv
        self.missing = missing
        self.random_state = random_state

    def _block_pipeline(self, name):
        estimators = self.estimators or {}
        if name in estimators:
            model = estimators[name]
        elif self.default is not None:
            model = self.default
        else:
            model = sksurv_linear_model.CoxPHSurvivalAnalysis(alpha=1.0, ties="efron")
        steps = (
            [SimpleImputer(strategy="median", keep_empty_features=True)]
            if self.missing == "impute"
            else []
        )
        return make_pipeline(*steps, StandardScaler(), clone(model))

    def fit(self, X, y):
        """Fit the block models, the out-of-fold scores and the meta-model.

        Parameters
        ----------
        X : pandas.DataFrame
        y : structured array, shape (n_samples,)
            Event indicator and time (``sksurv.util.Surv.from_arrays``).

        Returns
        -------
        self
        """
        _check_missing("LateFusionSurvival", self.missing)
        self.blocks_ = resolve_blocks(X, self.blocks)
        unknown = set(self.estimators or {}) - set(self.blocks_)
        if unknown:
            raise ValueError(
                f"LateFusionSurvival: estimators for unknown block "
                f"{sorted(unknown)[0]!r} (blocks: {list(self.blocks_)})"
            )
        event, _ = sksurv_util.check_array_survival(X, y)
        keep = np.ones(len(X), dtype=bool)
        if self.missing == "restrict":
            keep = complete_cases(X, self.blocks_)
            X, y, event = X[keep], y[keep], event[keep]
        self.n_dropped_ = int((~keep).sum())
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

        if isinstance(self.cv, (int, np.integer)) and not isinstance(self.cv, bool):
            splitter = model_selection.StratifiedKFold(
                int(self.cv), shuffle=True, random_state=self.random_state
            )
        elif hasattr(self.cv, "split"):
            splitter = self.cv
        else:
            raise ValueError(
                f"LateFusionSurvival: cv must be an int or a CV splitter, got {self.cv!r}"
            )
        oof = np.full((len(X), len(self.blocks_)), np.nan)
        for train, test in splitter.split(X, event):
            for b, (name, cols) in enumerate(self.blocks_.items()):
                model = self._block_pipeline(name).fit(X.iloc[train][cols], y[train])
                oof[test, b] = model.predict(X.iloc[test][cols])
        if np.isnan(oof).any():
            raise ValueError(
                "LateFusionSurvival: the cv splitter left some rows out of every "
                "test fold; out-of-fold scores need a partition of the rows"
            )
        self.oof_risk_ = pd.DataFrame(oof, index=X.index, columns=list(self.blocks_))
        meta = (
            self.meta_estimator
            if self.meta_estimator is not None
            else sksurv_linear_model.CoxPHSurvivalAnalysis(alpha=0.1, ties="efron")
        )
        self.meta_model_ = make_pipeline(StandardScaler(), clone(meta)).fit(oof, y)
        self.block_models_ = {
            name: self._block_pipeline(name).fit(X[cols], y) for name, cols in self.blocks_.items()
        }
        return self

    def block_risk(self, X) -> pd.DataFrame:
        """Risk score of each block model for the patients of ``X``.

        Returns
        -------
        pandas.DataFrame, shape (n_samples, n_blocks)
        """
        check_is_fitted(self, "meta_model_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"LateFusionSurvival: X must be a pandas DataFrame, got {type(X).__name__}"
            )
        absent = [c for cs in self.blocks_.values() for c in cs if c not in X.columns]
        if absent:
            raise ValueError(f"LateFusionSurvival: X has no column {absent[0]!r} (seen in fit)")
        if self.missing == "restrict":
            incomplete = ~complete_cases(X, self.blocks_)
            if incomplete.any():
                lacking = missing_blocks(X, self.blocks_)
                first = X.index[incomplete][0]
                blocks = [b for b in lacking.columns if lacking.loc[first, b]] or [
                    b for b, cs in self.blocks_.items() if X.loc[first, cs].isna().any()
                ]
                raise ValueError(
                    f"LateFusionSurvival: {incomplete.sum()} row(s) have missing values "
                    f"(first: {first!r}, block {blocks[0]!r}); missing='restrict' scores only "
                    "complete cases: drop them with complete_cases() or fit with "
                    "missing='impute'"
                )
        return pd.DataFrame(
            {
                name: self.block_models_[name].predict(X[cols])
                for name, cols in self.blocks_.items()
            },
            index=X.index,
        )

    def predict(self, X) -> np.ndarray:
        """Fused risk score (higher = shorter expected survival), shape (n_samples,)."""
        risk = self.block_risk(X).to_numpy()
        return self.meta_model_.predict(risk)

    @property
    def weights_(self) -> pd.Series:
        """Meta-model coefficient of each block's standardised score (linear meta-models)."""
        check_is_fitted(self, "meta_model_")
        return pd.Series(np.ravel(self.meta_model_[-1].coef_), index=list(self.blocks_))
