"""Validation schemes: fold structure, metrics with intervals, and the leakage guard.

The leakage guard wraps harmonisation (ComBat), scaling and selection in a
spy that records the patients each fit saw. Fits happen fold after fold, a
known number per fold (inner folds x grid points, then the refit), so the
log splits into one chunk per outer fold: no fit of a chunk may have seen a
patient of that fold's test set, and the refit saw exactly its training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.util import Surv

from radflow.errors import SettingsError
from radflow.model.combat import ComBat
from radflow.model.selection import UnivariateCoxSelector
from radflow.model.survival import make_model, model_grid
from radflow.model.validation import fit_tuned, leave_one_institution_out, model_features, nested_cv

SITES = ("INST_A", "INST_B", "INST_C")


class FitSpy(TransformerMixin, BaseEstimator):
    """Fits ``step`` and records, in a class-level log, the row ids it was fitted on."""

    log: list = []

    def __init__(self, step=None, name="spy"):
        self.step = step
        self.name = name

    def fit(self, X, y=None):
        FitSpy.log.append((self.name, frozenset(X.index)))
        self.step_ = clone(self.step).fit(X, y)
        return self

    def transform(self, X):
        return self.step_.transform(X)

    def get_feature_names_out(self, input_features=None):
        return self.step_.get_feature_names_out(input_features)


def _cohort(n=90, seed=0, p=6):
    """Two informative features among ``p``, a site offset on every feature."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    site = np.array(SITES)[np.arange(n) % 3]
    lp = 1.0 * X[:, 0] - 0.8 * X[:, 1]
    time = rng.exponential(np.exp(-lp)) * 10.0
    censor = rng.uniform(5.0, 30.0, n)
    y = Surv.from_arrays(time <= censor, np.minimum(time, censor))
    frame = pd.DataFrame(
        X + (np.arange(n) % 3)[:, None] * 0.7,
        columns=[f"f{k}" for k in range(p)],
        index=pd.Index([f"P{k:03d}" for k in range(n)], name="patient"),
    )
    frame["institution"] = site
    return frame, y


def _spied_pipeline(features):
    return Pipeline(
        [
            ("harmonise", FitSpy(ComBat(batch="institution", features=features), "combat")),
            ("scale", FitSpy(StandardScaler(), "scale")),
            ("select", FitSpy(UnivariateCoxSelector(alpha=0.5), "select")),
            ("model", make_model("coxnet", l1_ratio=0.5)),
        ]
    ).set_output(transform="pandas")


def _check_chunks(log, tests, trains, fits_per_fold):
    steps = 3
    assert len(log) == len(tests) * fits_per_fold * steps
    for k, (test, train) in enumerate(zip(tests, trains)):
        chunk = log[k * fits_per_fold * steps : (k + 1) * fits_per_fold * steps]
        for name, seen in chunk:
            assert not seen & test, f"{name} was fitted on test patients of fold {k}"
            assert seen <= train
        # The refit (last fit of each step) used the whole training set.
        assert {seen for _, seen in chunk[-steps:]} == {train}


def test_nested_cv_fits_every_step_inside_the_training_folds_only():
    X, y = _cohort()
    features = [c for c in X.columns if c != "institution"]
    grid = model_grid("coxnet", {"alpha": [0.05, 0.2]})
    FitSpy.log.clear()
    result = nested_cv(
        _spied_pipeline(features),
        X,
        y,
        param_grid=grid,
        outer_folds=3,
        inner_folds=2,
        n_boot=50,
        seed=1,
        extra_metrics=(),
    )
    folds = result.predictions["fold"]
    tests = [frozenset(folds.index[folds == f.name]) for f in result.folds]
    trains = [frozenset(X.index) - t for t in tests]
    _check_chunks(FitSpy.log, tests, trains, fits_per_fold=2 * 2 + 1)
    # Every patient is predicted exactly once, by the model of its fold.
    assert sorted(map(len, tests)) == [30, 30, 30] and frozenset().union(*tests) == frozenset(
        X.index
    )
    assert result.predictions["risk"].notna().all()
    # Outer folds are stratified by event: each holds a third of the events (+-1).
    events = pd.Series(y["event"], index=X.index)
    for t in tests:
        assert abs(events.loc[list(t)].sum() - events.sum() / 3) <= 1


def test_leave_one_institution_out_never_fits_on_the_held_out_site():
    X, y = _cohort()
    # ComBat cannot harmonise an unseen site: LOIO validates without it.
    features = [c for c in X.columns if c != "institution"]
    pipe = _spied_pipeline(features)
    pipe.steps[0] = ("drop", FitSpy(_DropColumn("institution"), "drop"))
    grid = model_grid("coxnet", {"alpha": [0.05, 0.2]})
    FitSpy.log.clear()
    result = leave_one_institution_out(
        pipe, X, y, X["institution"], param_grid=grid, inner_folds=2, n_boot=50, extra_metrics=()
    )
    assert [f.name for f in result.folds] == list(SITES)
    tests = [frozenset(X.index[X["institution"] == s]) for s in SITES]
    trains = [frozenset(X.index) - t for t in tests]
    _check_chunks(FitSpy.log, tests, trains, fits_per_fold=2 * 2 + 1)
    assert (result.predictions["fold"] == X["institution"]).all()


class _DropColumn(TransformerMixin, BaseEstimator):
    def __init__(self, column=None):
        self.column = column

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X):
        return X.drop(columns=self.column)

    def get_feature_names_out(self, input_features=None):
        return np.asarray([c for c in self.feature_names_in_ if c != self.column], dtype=object)


def test_metrics_carry_intervals_and_find_the_signal():
    X, y = _cohort(n=150, seed=3)
    features = [c for c in X.columns if c != "institution"]
    pipe = Pipeline(
        [
            ("harmonise", ComBat(features=features)),
            ("scale", StandardScaler()),
            ("model", make_model("coxnet", alpha=0.05)),
        ]
    ).set_output(transform="pandas")
    result = nested_cv(pipe, X, y, outer_folds=3, n_boot=100, seed=0)
    c = result.pooled["harrell_c"]
    assert c.low < c.value < c.high and c.n_boot == 100
    assert c.value > 0.7  # true C of the hazard is about 0.75
    assert {"harrell_c", "uno_c", "mean_auc", "integrated_brier"} <= set(result.pooled)
    for fold in result.folds:
        assert fold.n_test == 50 and fold.n_train == 100
        assert fold.metrics["harrell_c"].low <= fold.metrics["harrell_c"].value
    assert "nested CV: harrell_c" in result.summary()
    d = result.as_dict()
    assert d["pooled"]["harrell_c"]["value"] == c.value and len(d["folds"]) == 3
    # The informative features survive the penalty of the final model.
    model, _ = fit_tuned(pipe, X, y)
    assert {"f0", "f1"} <= set(model_features(model))


def test_binary_endpoint_uses_roc_auc_and_stratifies_by_label():
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=list("abcd"))
    label = (X["a"] + 0.5 * rng.normal(size=80) > 0).to_numpy(int)
    model = make_model("logistic", C=1.0)
    grid = model_grid("logistic", {"C": [0.1, 1.0]}, step="")
    result = nested_cv(model, X, label, param_grid=grid, outer_folds=4, inner_folds=2, n_boot=50)
    assert result.endpoint == "binary" and result.headline == "roc_auc"
    assert result.pooled["roc_auc"].value > 0.8
    assert all("C" in k for f in result.folds for k in f.best_params)


def test_bad_arguments_are_settings_errors():
    X, y = _cohort(n=30)
    pipe = make_model("coxnet")
    with pytest.raises(SettingsError, match="outer_folds"):
        nested_cv(pipe, X, y, outer_folds=1)
    with pytest.raises(SettingsError, match="outer_folds=40"):
        nested_cv(pipe, X, y, outer_folds=40)
    with pytest.raises(SettingsError, match="0/1"):
        nested_cv(pipe, X, np.arange(30.0))
    with pytest.raises(SettingsError, match="two institutions"):
        leave_one_institution_out(pipe, X, y, ["A"] * 30)
    with pytest.raises(SettingsError, match="model 'cox'"):
        make_model("cox")
    with pytest.raises(SettingsError, match="unknown parameter"):
        make_model("rsf", n_trees=10)
