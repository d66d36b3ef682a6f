"""Fusion: blocks, block scaling, late fusion by stacking, missing modalities, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import make_column_selector
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from radflow.model.combat import ComBat
from radflow.model.fusion import (
    BlockScaler,
    LateFusionSurvival,
    complete_cases,
    make_early_fusion,
    missing_blocks,
    resolve_blocks,
)
from radflow.model.selection import UnivariateCoxSelector

BLOCKS = {
    "CT": r"CT\.",
    "PT": r"PT\.",
    "clinical": ["age", "stage", "hpv"],
    "genomic": ["TP53", "KRAS", "EGFR"],
}


@pytest.fixture(scope="module")
def study():
    """One row per patient of the synthetic cohort: CT features (the true
    prognostic tumour properties, measured with noise and an institution
    offset, plus uninformative ones), PET features (missing for every fourth
    patient), clinical and genomic columns; the survival of the hidden model."""
    from radflow.demo.synthetic import draw_cohort

    cohort = draw_cohort(240, seed=3)
    rng = np.random.default_rng(0)
    offset = {"INST_A": 0.0, "INST_B": 0.8, "INST_C": -0.8}
    rows = []
    for i, p in enumerate(cohort):
        c = p.truth["covariates"]
        shift = offset[p.site.name]
        rows.append(
            {
                "institution": p.site.name,
                "CT.gtv.LogVolume": c["log_tumour_volume_cm3"] + rng.normal(0, 0.1) + shift,
                "CT.gtv.Heterogeneity": c["heterogeneity"] + rng.normal(0, 0.05) + 0.2 * shift,
                "CT.gtv.Necrosis": c["necrosis_fraction"] + rng.normal(0, 0.02),
                "CT.gtv.Noise1": rng.normal() + shift,
                "CT.gtv.Noise2": rng.normal(),
                "PT.gtv.SUVmax": np.nan
                if i % 4 == 0
                else p.truth["suv_tumour"] * rng.normal(1, 0.1),
                "PT.gtv.Noise": np.nan if i % 4 == 0 else rng.normal(),
                "age": p.clinical["age"],
                "stage": c["stage"],
                "hpv": c["hpv"],
                **{g: p.genomic[g] for g in ("TP53", "KRAS", "EGFR")},
            }
        )
    X = pd.DataFrame(rows, index=pd.Index([f"P{i:03d}" for i in range(len(rows))], name="pid"))
    y = Surv.from_arrays(
        [p.outcome["os_event"] == 1 for p in cohort], [p.outcome["os_months"] for p in cohort]
    )
    return X, y


def _c_index(y, risk):
    return concordance_index_censored(y["event"], y["time"], risk)[0]


# ------------------------------------------------------------------ blocks


def test_resolve_blocks(study):
    X, _ = study
    blocks = resolve_blocks(
        X, {**BLOCKS, "genomic": make_column_selector(pattern="^(?:TP53|KRAS|EGFR)$")}
    )
    assert blocks["CT"] == [c for c in X.columns if c.startswith("CT.")]
    assert blocks["clinical"] == ["age", "stage", "hpv"]
    assert blocks["genomic"] == ["TP53", "KRAS", "EGFR"]
    assert resolve_blocks(X, {"c": ["hpv", "age"]})["c"] == ["age", "hpv"]  # X's order
    with pytest.raises(ValueError, match="column 'age' is in blocks 'a' and 'b'"):
        resolve_blocks(X, {"a": ["age"], "b": r"ag"})
    with pytest.raises(ValueError, match="block 'MR' selects no column"):
        resolve_blocks(X, {"MR": r"MR\."})
    with pytest.raises(ValueError, match="column 'weight' is not in X"):
        resolve_blocks(X, {"c": ["weight"]})
    with pytest.raises(TypeError, match="DataFrame"):
        resolve_blocks(X.to_numpy(), BLOCKS)


def test_missing_blocks_and_complete_cases():
    X = pd.DataFrame(
        {
            "CT.a": [1.0, 2.0, np.nan, 4.0],
            "PT.a": [1.0, np.nan, np.nan, 2.0],
            "PT.b": [1.0, np.nan, 3.0, 2.0],
        }
    )
    lacking = missing_blocks(X, {"CT": r"CT\.", "PT": r"PT\."})
    assert lacking["CT"].tolist() == [False, False, True, False]
    assert lacking["PT"].tolist() == [False, True, False, False]  # row 2 has PT.b
    assert complete_cases(X, {"CT": r"CT\.", "PT": r"PT\."}).tolist() == [True, False, False, True]


# ------------------------------------------------------------- BlockScaler


def test_block_scaler_gives_each_block_unit_total_variance(study):
    X, _ = study
    X = X.drop(columns="institution")
    scaler = BlockScaler(BLOCKS).set_output(transform="pandas").fit(X)
    out = scaler.transform(X)
    assert list(out.columns) == list(scaler.get_feature_names_out())
    assert scaler.blocks_["PT"][-1] == "PT.missing" and scaler.indicators_ == ["PT"]
    assert out["PT.missing"].sum() == 60  # every fourth patient
    for cols in resolve_blocks(X, BLOCKS).values():
        # standardised after imputation, then weighted by 1/sqrt(#columns)
        assert out[cols].var(ddof=0).sum() == pytest.approx(1.0)
        np.testing.assert_allclose(out[cols].mean(), 0.0, atol=1e-12)
    unweighted = BlockScaler(BLOCKS, weighting="none").fit_transform(X)
    assert unweighted[:, :5].var(axis=0) == pytest.approx(np.ones(5))


def test_block_scaler_learns_only_in_fit(study):
    X, _ = study
    X = X.drop(columns="institution")
    train, test = X.iloc[:120], X.iloc[120:]
    scaler = BlockScaler(BLOCKS).set_output(transform="pandas").fit(train)
    out = scaler.transform(test.assign(**{"PT.gtv.SUVmax": np.nan}))
    # a missing test value gets the training median, standardised with training moments
    pt = train["PT.gtv.SUVmax"]
    expected = (pt.median() - pt.fillna(pt.median()).mean()) / pt.fillna(pt.median()).std(ddof=0)
    np.testing.assert_allclose(out["PT.gtv.SUVmax"], expected / np.sqrt(2))
    # the block is missing only where all its columns are
    assert out["PT.missing"].tolist() == test["PT.gtv.Noise"].isna().astype(float).tolist()


def test_block_scaler_restrict_and_errors(study):
    X, _ = study
    X = X.drop(columns="institution")
    with pytest.raises(ValueError, match="block 'PT' has missing values and missing='restrict'"):
        BlockScaler(BLOCKS, missing="restrict").fit(X)
    complete = X[complete_cases(X, BLOCKS)]
    out = BlockScaler(BLOCKS, missing="restrict").fit(complete).transform(complete)
    assert out.shape == (180, 13)  # no indicator columns
    with pytest.raises(ValueError, match="column 'sex' of block 'clinical' is not numeric"):
        BlockScaler({"clinical": ["sex"]}).fit(X.assign(sex="F"))
    with pytest.raises(ValueError, match="missing must be"):
        BlockScaler(BLOCKS, missing="drop").fit(X)
    with pytest.raises(ValueError, match="no column 'age'"):
        BlockScaler(BLOCKS).fit(X).transform(X.drop(columns="age"))


def test_early_fusion_predicts_survival(study):
    X, y = study
    X = X.drop(columns="institution")
    model = make_early_fusion(BLOCKS, CoxPHSurvivalAnalysis(alpha=1.0))
    model.fit(X.iloc[:160], y[:160])
    assert model.score(X.iloc[160:], y[160:]) > 0.7


# ------------------------------------------------------------- late fusion


def test_late_fusion_stacks_out_of_fold_scores(study):
    X, y = study
    X = X.drop(columns="institution")
    train, test = slice(0, 160), slice(160, None)
    model = LateFusionSurvival(BLOCKS, random_state=0).fit(X.iloc[train], y[train])
    held_out = model.score(X.iloc[test], y[test])
    assert held_out > 0.7
    per_block = model.block_risk(X.iloc[test])
    assert list(per_block.columns) == list(BLOCKS)
    best_block = max(_c_index(y[test], per_block[b]) for b in BLOCKS)
    assert held_out >= best_block - 0.02
    # the prognostic blocks carry weight, the meta-model is fitted on OOF scores
    assert model.weights_["CT"] > 0 and model.weights_["clinical"] > 0
    assert model.oof_risk_.shape == (160, 4) and model.oof_risk_.index.equals(X.index[train])


def test_out_of_fold_scores_never_see_their_patients(study):
    """Changing the outcomes of one fold's patients leaves their out-of-fold
    scores unchanged (their block models never saw them) and changes the others'."""
    X, y = study
    X = X.drop(columns="institution").iloc[:120]
    y = y[:120]
    folds = list(StratifiedKFold(4, shuffle=True, random_state=1).split(X, y["event"]))
    test = folds[0][1]
    y2 = y.copy()
    y2["time"][test] = y2["time"][test][::-1]
    splitter = StratifiedKFold(4, shuffle=True, random_state=1)
    a = LateFusionSurvival(BLOCKS, cv=splitter).fit(X, y).oof_risk_
    b = LateFusionSurvival(BLOCKS, cv=splitter).fit(X, y2).oof_risk_
    np.testing.assert_allclose(a.iloc[test], b.iloc[test], rtol=1e-10)
    others = np.setdiff1d(np.arange(120), test)
    assert not np.allclose(a.iloc[others], b.iloc[others])


def test_late_fusion_missing_modality_options(study):
    X, y = study
    X = X.drop(columns="institution").iloc[:120]
    y = y[:120]
    imputed = LateFusionSurvival(BLOCKS, cv=3, random_state=0).fit(X, y)
    assert imputed.n_dropped_ == 0 and np.isfinite(imputed.predict(X)).all()
    restricted = LateFusionSurvival(BLOCKS, missing="restrict", cv=3, random_state=0).fit(X, y)
    assert restricted.n_dropped_ == 30 and len(restricted.oof_risk_) == 90
    complete = complete_cases(X, BLOCKS)
    assert np.isfinite(restricted.predict(X[complete])).all()
    with pytest.raises(
        ValueError, match="30 row\\(s\\) have missing values \\(first: 'P000', block 'PT'\\)"
    ):
        restricted.predict(X)


def test_late_fusion_errors(study):
    X, y = study
    X = X.drop(columns="institution")
    with pytest.raises(ValueError, match="unknown block 'MR'"):
        LateFusionSurvival(BLOCKS, estimators={"MR": CoxPHSurvivalAnalysis()}).fit(X, y)
    with pytest.raises(ValueError, match="missing must be"):
        LateFusionSurvival(BLOCKS, missing="drop").fit(X, y)
    with pytest.raises(TypeError, match="DataFrame"):
        LateFusionSurvival(BLOCKS).fit(X.to_numpy(), y)
    model = LateFusionSurvival(BLOCKS)
    assert clone(model).get_params()["blocks"] == BLOCKS
    with pytest.raises(Exception, match="not fitted"):
        model.predict(X)


# ------------------------------------------------------------------ leakage


def test_harmonisation_scaling_and_selection_fitted_in_training_folds_only(study):
    """In a cross-validation, every fitted step of the fold's pipeline equals
    the step fitted on that fold's training rows alone, never the one fitted on
    all rows (which would have seen the test fold)."""
    X, y = study
    ct = make_column_selector(pattern=r"^CT\.")
    pipe = make_pipeline(
        ComBat(batch="institution", features=ct),
        BlockScaler(BLOCKS),
        UnivariateCoxSelector(alpha=0.05),
        CoxPHSurvivalAnalysis(alpha=1.0),
    )
    # survival-aware folds: stratified by event status
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y["event"]))
    result = cross_validate(pipe, X, y, cv=folds, return_estimator=True, return_indices=True)
    everything = clone(pipe).fit(X, y)
    for fitted, train in zip(result["estimator"], result["indices"]["train"]):
        alone = clone(pipe).fit(X.iloc[train], y[train])
        combat, scaler, selector, cox = fitted.steps
        np.testing.assert_array_equal(combat[1].gamma_star_, alone[0].gamma_star_)
        np.testing.assert_array_equal(scaler[1].scalers_["CT"].mean_, alone[1].scalers_["CT"].mean_)
        np.testing.assert_array_equal(
            scaler[1].imputers_["PT"].statistics_, alone[1].imputers_["PT"].statistics_
        )
        np.testing.assert_array_equal(selector[1].statistic_, alone[2].statistic_)
        np.testing.assert_array_equal(cox[1].coef_, alone[3].coef_)
        assert not np.allclose(combat[1].gamma_star_, everything[0].gamma_star_)
        assert not np.allclose(selector[1].statistic_, everything[2].statistic_)
    assert np.mean(result["test_score"]) > 0.65
