"""What ``save_study`` leaves behind, the spec's ``icc`` selection step and ``fusion: late``.

A 45-patient feature table in the layout ``radflow run`` writes (features
derived from the synthetic cohort's true properties, see
test_synthetic_signal), the archive's CSV files keyed by raw ids.

Checked against things the code under test does not compute:
* ``predictions.parquet`` holds, per scheme, exactly the risk a pipeline
  refitted here on the other folds' patients gives each patient, and the
  outcome ``outcomes.csv`` gives that patient's pseudonym;
* the ``icc`` step keeps exactly the columns a hand-written ICC table
  passes, and every column it does not name;
* late fusion fits one model per block and reports a C-index with a CI,
  equal to a brute-force pair count on its own out-of-fold risks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import BaseEstimator
from test_synthetic_signal import SPEC, write_archive_files, write_feature_table

from radflow.demo.synthetic import draw_cohort
from radflow.errors import InputError, SettingsError
from radflow.model.artefacts import PREDICTION_COLUMNS, read_predictions, save_study
from radflow.model.builder import build_pipeline
from radflow.model.design import load_design
from radflow.model.spec import load_spec, parse_spec

N = 45


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    cohort = draw_cohort(N, seed=2)
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test key is not set yet
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        write_feature_table(folder / "features", cohort)
    write_archive_files(folder, cohort)
    (folder / "sites.csv").write_text(
        "patient,site\n" + "".join(f"{p.patient},{p.site.name}\n" for p in cohort)
    )
    return folder


def _spec(**pipeline) -> dict:
    return {
        **SPEC,
        "bootstrap": 30,
        "pipeline": {
            **SPEC["pipeline"],
            "select": [{"method": "nzv"}],
            "model": {"kind": "coxnet", "l1_ratio": 0.5, "alpha": 0.1},
            "grid": {},
            **pipeline,
        },
        "validation": {"schemes": ["nested_cv", "loio"], "outer_folds": 3, "inner_folds": 2},
    }


def _write_spec(folder, name, mapping):
    path = folder / name
    path.write_text(yaml.safe_dump(mapping))
    return path


@pytest.fixture(scope="module")
def saved(folder):
    from radflow.model.validation import run_study

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        spec = load_spec(_write_spec(folder, "early.yaml", _spec()))
        design = load_design(spec)
        result = run_study(spec, design)
        paths = save_study(result, spec, folder / "out", design=design)
    return {"spec": spec, "design": design, "result": result, "paths": paths}


# -- predictions.parquet --------------------------------------------------------------


def test_predictions_file_layout(saved, folder):
    from radflow.io.pseudonym import Pseudonymiser, load_key

    path = saved["paths"]["predictions"]
    assert path == folder / "out" / "predictions.parquet"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # nothing half-written
    frame = pd.read_parquet(path)
    assert list(frame.columns) == [*PREDICTION_COLUMNS, "time", "event"]
    assert frame["event"].dtype == bool and frame["risk"].dtype == float
    for scheme, part in frame.groupby("scheme"):
        assert sorted(part["patient"]) == sorted(saved["design"].X.index), scheme  # everyone once
    assert set(frame.loc[frame["scheme"] == "nested_cv", "fold"]) == {"fold-1", "fold-2", "fold-3"}
    loio = frame[frame["scheme"] == "loio"]
    assert (loio["fold"] == loio["institution"]).all()  # the institution held out is its own

    # Outcomes and institutions as the archive's raw files give them, under the pseudonym.
    pseud = Pseudonymiser(load_key())
    outcomes = pd.read_csv(folder / "outcomes.csv")
    outcomes.index = [pseud.patient(p) for p in outcomes["patient"]]
    sites = pd.read_csv(folder / "sites.csv")
    sites.index = [pseud.patient(p) for p in sites["patient"]]
    raw_ids = set(outcomes["patient"])
    truth = outcomes.loc[frame["patient"]]
    np.testing.assert_allclose(frame["time"], truth["os_months"])
    np.testing.assert_array_equal(frame["event"], truth["os_event"].astype(bool))
    np.testing.assert_array_equal(frame["institution"], sites.loc[frame["patient"], "site"])
    assert not raw_ids & set(frame["patient"])

    again = read_predictions(path)
    pd.testing.assert_frame_equal(again, frame)


def test_predictions_are_out_of_fold(saved):
    """Each risk is what a pipeline fitted without that patient gives it."""
    from sklearn.base import clone

    from radflow.model.survival import predict_risk

    spec, design = saved["spec"], saved["design"]
    frame = read_predictions(saved["paths"]["predictions"]).set_index(["scheme", "patient"])
    for scheme, harmonise in (("nested_cv", True), ("loio", False)):
        part = frame.loc[scheme]
        pipeline = build_pipeline(spec, image_columns=design.image_columns, harmonise=harmonise)
        for fold in sorted(set(part["fold"])):
            test = part.index[part["fold"] == fold]
            train = part.index[part["fold"] != fold]
            at = design.X.index.get_indexer(train)
            model = clone(pipeline).fit(design.X.loc[train], design.y[at])
            np.testing.assert_allclose(
                part.loc[test, "risk"],
                predict_risk(model, design.X.loc[test]),
                rtol=1e-9,
                err_msg=f"{scheme} {fold}",
            )


def test_read_predictions_rejects_other_layouts(tmp_path):
    bad = tmp_path / "predictions.parquet"
    pd.DataFrame({"patient": ["P1"], "risk": [0.3]}).to_parquet(bad)
    with pytest.raises(
        InputError,
        match=r"predictions.parquet: not out-of-fold predictions: "
        r"needs columns patient, institution",
    ):
        read_predictions(bad)
    twice = pd.DataFrame(
        {
            "patient": ["P1", "P1"],
            "institution": "A",
            "scheme": "loio",
            "fold": "A",
            "risk": [0.1, 0.2],
            "label": [0, 1],
        }
    )
    twice.to_parquet(bad)
    with pytest.raises(InputError, match="appears twice"):
        read_predictions(bad)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="junk.parquet: not a readable Parquet file"):
        read_predictions(tmp_path / "junk.parquet")


# -- the icc selection step --------------------------------------------------------------


def _icc_table(columns) -> pd.DataFrame:
    """ICC(1,1) rows for the CT columns only: the even ones stable by their CI low bound,
    the odd ones not; every column also gets an ICC(3,1) row that must be ignored."""
    rows = []
    for k, column in enumerate(columns):
        stable = k % 2 == 0
        rows.append(
            {
                "feature": column,
                "form": "ICC(1,1)",
                "icc": 0.95 if stable else 0.80,
                "ci_low": 0.85 if stable else 0.60,
            }
        )
        rows.append({"feature": column, "form": "ICC(3,1)", "icc": 0.10, "ci_low": 0.0})
    return pd.DataFrame(rows)


def test_icc_step_keeps_stable_and_unmeasured_columns(folder):
    design = load_design(parse_spec(_spec(), base_dir=folder))
    ct = [c for c in design.image_columns if c.startswith("CT.")]
    (folder / "stability").mkdir(exist_ok=True)
    _icc_table(ct).to_parquet(folder / "stability" / "icc.parquet")
    step = {
        "method": "icc",
        "table": "stability/icc.parquet",
        "threshold": 0.75,
        "statistic": "ci_low",
    }
    spec = load_spec(_write_spec(folder, "icc.yaml", _spec(select=[step])))
    assert spec.pipeline.select[0].params["table"] == str(folder / "stability" / "icc.parquet")
    pipeline = build_pipeline(spec, image_columns=design.image_columns).fit(design.X, design.y)
    kept = list(pipeline[:-1].get_feature_names_out())
    expected = [
        c
        for c in design.X.columns
        if c != "institution" and (not c.startswith("CT.") or ct.index(c) % 2 == 0)
    ]
    assert kept == expected
    assert any(c.startswith("PT.") for c in kept) and "clinical.age" in kept
    icc = pipeline.named_steps["select_icc"]
    assert np.isnan(icc.icc_).sum() == len(design.X.columns) - 1 - len(ct)

    # On the point estimate, both halves pass 0.75.
    loose = load_spec(
        _write_spec(folder, "icc2.yaml", _spec(select=[{**step, "statistic": "icc"}]))
    )
    fitted = build_pipeline(loose, image_columns=design.image_columns).fit(design.X, design.y)
    assert len(fitted[:-1].get_feature_names_out()) == len(design.X.columns) - 1


def test_icc_step_errors_name_the_spec_and_the_table(folder):
    spec_file = _write_spec(folder, "icc_bad.yaml", _spec(select=[{"method": "icc"}]))
    with pytest.raises(
        SettingsError, match=r"icc_bad.yaml: pipeline.select\[0\]: icc: needs table"
    ):
        load_spec(spec_file)
    spec_file = _write_spec(
        folder, "icc_absent.yaml", _spec(select=[{"method": "icc", "table": "nowhere.parquet"}])
    )
    with pytest.raises(InputError, match="nowhere.parquet: ICC table does not exist"):
        load_spec(spec_file)
    (folder / "junk.parquet").write_text("no Parquet")
    spec_file = _write_spec(
        folder, "icc_junk.yaml", _spec(select=[{"method": "icc", "table": "junk.parquet"}])
    )
    with pytest.raises(InputError, match="junk.parquet: not a readable ICC Parquet table"):
        load_spec(spec_file)


# -- fusion: early | late ----------------------------------------------------------------


def test_fusion_key_is_validated(folder):
    with pytest.raises(SettingsError, match="pipeline.fusion: 'stacked' is not one of early, late"):
        parse_spec(_spec(fusion="stacked"), base_dir=folder, where="s.yaml")
    binary = {
        **_spec(fusion="late", model={"kind": "logistic"}),
        "endpoint": {"kind": "binary", "column": "hpv", "positive": "positive"},
    }
    binary["blocks"] = {
        **binary["blocks"],
        "clinical": {
            "columns": ["age", "sex", "stage"],
            "ordinal": {"stage": ["I", "II", "III", "IV"]},
        },
    }
    with pytest.raises(SettingsError, match="pipeline.fusion: late fusion stacks survival models"):
        parse_spec(binary, base_dir=folder, where="s.yaml")
    assert parse_spec(_spec(), base_dir=folder).pipeline.fusion == "early"
    image_only = {**_spec(fusion="late"), "blocks": {"image": {"modalities": ["CT"]}}}
    spec = parse_spec(image_only, base_dir=folder, where="one.yaml")
    with pytest.raises(
        SettingsError,
        match="one.yaml: pipeline.fusion: late fusion needs at least "
        r"two blocks .* \['CT'\]",
    ):
        build_pipeline(spec, image_columns=["CT.gtv.original_shape_MeshVolume"])


@pytest.mark.filterwarnings("ignore:all coefficients are zero")  # a weak block at alpha 0.3
def test_late_fusion_spec_end_to_end(folder, capsys):
    from radflow.model.fusion import LateFusionSurvival
    from radflow.model.metrics import harrell_c
    from radflow.model.validation import run_study

    mapping = {
        **_spec(fusion="late", grid={"alpha": [0.1, 0.3]}),
        "validation": {"schemes": ["nested_cv"], "outer_folds": 3, "inner_folds": 2},
    }
    spec = load_spec(_write_spec(folder, "late.yaml", mapping))
    design = load_design(spec)
    result = run_study(spec, design)
    final = result.model[-1]
    assert isinstance(final, LateFusionSurvival)
    assert list(final.blocks_) == ["CT", "PT", "clinical", "genomic"]
    assert set(result.best_params) == {"model__default__alphas"}
    assert {c.split(".", 1)[0] for c in result.features} <= {"CT", "PT", "clinical", "genomic"}

    cv = result.validations["nested_cv"]
    c = cv.pooled["harrell_c"]
    risk = cv.predictions["risk"].to_numpy()
    assert c.value == pytest.approx(_brute_force_c(design.y, risk))
    assert c.value == pytest.approx(harrell_c(design.y, risk))
    assert c.low <= c.value <= c.high and c.n_boot == 30
    assert "integrated_brier" not in cv.pooled  # risks only, no survival curves
    assert any("late fusion" in note for note in result.notes)
    with capsys.disabled():
        print(
            f"\nlate fusion ({', '.join(final.blocks_)}), nested CV on {N} patients: "
            f"Harrell's C {c}; block weights {final.weights_.round(2).to_dict()}"
        )
    assert c.value > 0.6

    paths = save_study(result, spec, folder / "late_out", design=design)
    frame = read_predictions(paths["predictions"])
    np.testing.assert_allclose(frame.set_index("patient").loc[design.X.index, "risk"], risk)


def _brute_force_c(y, risk) -> float:
    """Harrell's C by counting every comparable pair (ties in risk count 1/2)."""
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    concordant = comparable = 0.0
    for i in range(len(y)):
        if not event[i]:
            continue
        for j in range(len(y)):
            if time[j] > time[i]:
                comparable += 1
                concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return concordant / comparable


# -- a grid point that fails --------------------------------------------------------------


class _Fragile(BaseEstimator):
    """A survival 'model' whose fit fails when asked to (as coxnet does at too small an alpha)."""

    def __init__(self, fail=False):
        self.fail = fail

    def fit(self, X, y):
        if self.fail:
            raise ArithmeticError("Numerical error, because weights are too large.")
        return self

    def score(self, X, y):
        return 0.5


def test_failed_grid_points_lose_quietly():
    import warnings

    from sksurv.util import Surv

    from radflow.model.validation import fit_tuned

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = Surv.from_arrays(event=np.arange(30) % 2 == 0, time=rng.uniform(1, 10, 30))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, best = fit_tuned(_Fragile(), X, y, param_grid={"fail": [True, False]}, inner_folds=3)
    assert best == {"fail": False} and not model.fail
    assert not [w for w in caught if "fits failed" in str(w.message)], [
        str(w.message) for w in caught
    ]


# -- StudyOutputs: the one reader of a model folder --------------------------------------


def test_study_outputs_read_what_save_study_wrote(saved, folder):
    from radflow.model.artefacts import StudyOutputs, load_model, predict_patients
    from radflow.model.survival import predict_risk

    out = folder / "out"
    outputs = StudyOutputs.open(out)
    same = StudyOutputs.open(out / "model.joblib")  # what `radflow model predict` is given
    assert outputs.folder == same.folder == out
    assert outputs.model_file == same.model_file == out / "model.joblib"
    assert outputs.spec == saved["spec"] == load_model(out / "model.joblib")["spec"]
    design = saved["design"]
    np.testing.assert_allclose(
        predict_risk(outputs.pipeline, design.X), predict_risk(saved["result"].model, design.X)
    )
    assert outputs.metrics["feature_set"] == design.feature_set
    assert set(outputs.validation) == {"nested_cv", "loio"}
    assert outputs.validation["loio"] == saved["result"].validations["loio"].as_dict()
    pd.testing.assert_frame_equal(
        outputs.predictions, read_predictions(out / "predictions.parquet")
    )
    assert outputs.command.startswith("radflow model fit ")
    pd.testing.assert_frame_equal(outputs.design().X, design.X)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        scored = outputs.predict(folder / "features")
        expected = predict_patients(load_model(out / "model.joblib"), folder / "features")
    pd.testing.assert_frame_equal(scored, expected)
    np.testing.assert_allclose(
        scored.loc[design.X.index, "risk"], predict_risk(saved["result"].model, design.X)
    )


def test_study_outputs_parts_and_errors(saved, folder, tmp_path):
    import shutil

    from radflow.model.artefacts import StudyOutputs

    copy = tmp_path / "model"
    shutil.copytree(folder / "out", copy)
    (copy / "predictions.parquet").unlink()
    outputs = StudyOutputs.open(copy)
    assert outputs.predictions is None  # optional: the report then says so
    assert outputs.spec == saved["spec"]

    (copy / "metrics.json").unlink()
    with pytest.raises(InputError, match="no metrics JSON in the model folder"):
        _ = StudyOutputs.open(copy).metrics
    (copy / "model.joblib").unlink()
    with pytest.raises(InputError, match="model file does not exist"):
        _ = StudyOutputs.open(copy).spec
    (copy / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable model artifact"):
        _ = StudyOutputs.open(copy).pipeline
    with pytest.raises(InputError, match="model file does not exist"):
        _ = StudyOutputs.open(tmp_path / "absent.joblib").artefact
    with pytest.raises(InputError, match="no such model folder"):
        StudyOutputs.open(tmp_path / "absent")


# -- the spec file: one YAML loader ---------------------------------------------------------


def test_spec_file_refuses_a_duplicated_key(folder):
    """With plain yaml.safe_load the second `seed` silently won; the one loader refuses it."""
    text = yaml.safe_dump(_spec(), sort_keys=False)
    assert "\nseed: " in text
    path = folder / "twice.yaml"
    path.write_text(text + "seed: 7\n")
    with pytest.raises(SettingsError, match=r"twice.yaml: line \d+: duplicate key 'seed'"):
        load_spec(path)
    nested = text.replace("  scale: standard\n", "  scale: standard\n  scale: robust\n")
    assert nested != text
    path.write_text(nested)
    with pytest.raises(SettingsError, match="duplicate key 'scale'"):
        load_spec(path)
    path.write_text("table: [unclosed\n")
    with pytest.raises(SettingsError, match="twice.yaml: not valid YAML"):
        load_spec(path)
