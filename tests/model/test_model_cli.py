"""``radflow model fit/predict`` (through :func:`radflow.cli.model.add_commands`),
the study spec's validation, and the demo's modelling step, on a 45-patient
feature table in the layout ``radflow run`` writes (features derived from the
synthetic cohort's true properties: see test_synthetic_signal)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from test_synthetic_signal import SPEC, write_archive_files, write_feature_table

from radflow.cli.model import add_commands
from radflow.demo.synthetic import draw_cohort
from radflow.errors import InputError, SettingsError
from radflow.model.spec import load_spec, parse_spec

N = 45


@pytest.fixture
def study(tmp_path):
    cohort = draw_cohort(N, seed=2)
    write_feature_table(tmp_path / "features", cohort)
    write_archive_files(tmp_path, cohort)
    spec = {
        **SPEC,
        "bootstrap": 50,
        "pipeline": {
            **SPEC["pipeline"],
            "select": [{"method": "nzv"}],
            "grid": {"alpha": [0.1, 0.3]},
        },
        "validation": {"schemes": ["nested_cv", "loio"], "outer_folds": 3, "inner_folds": 2},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return {"folder": tmp_path, "spec": path, "cohort": cohort}


def _run(argv):
    parser = argparse.ArgumentParser(prog="radflow")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_fit_then_predict(study, capsys):
    folder = study["folder"]
    assert _run(["model", "fit", str(study["spec"]), "-o", str(folder / "out")]) == 0
    printed = capsys.readouterr().out
    assert "nested CV: harrell_c" in printed and "leave-one-institution-out" in printed
    assert "without ComBat" in printed
    metrics = json.loads((folder / "out" / "metrics.json").read_text())
    pooled = metrics["validation"]["nested_cv"]["pooled"]["harrell_c"]
    assert pooled["low"] <= pooled["value"] <= pooled["high"] and pooled["n_boot"] == 50
    assert [f["name"] for f in metrics["validation"]["loio"]["folds"]] == [
        "INST_A",
        "INST_B",
        "INST_C",
    ]
    assert metrics["n_patients"] == N and metrics["features"]
    assert not list((folder / "out").glob(".*"))  # no temporaries left behind

    out = folder / "predictions.csv"
    assert (
        _run(
            [
                "model",
                "predict",
                str(folder / "out" / "model.joblib"),
                "--table",
                str(folder / "features"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    predictions = pd.read_csv(out, index_col="patient")
    assert len(predictions) == N and set(predictions["risk_group"]) == {"high", "low"}
    # Patients appear under their pseudonyms only.
    raw = {p.patient for p in study["cohort"]}
    text = out.read_text() + (folder / "out" / "metrics.json").read_text()
    assert not [r for r in raw if r in text]
    # The saved model reproduces the risks of the fitted pipeline.
    from radflow.model.artefacts import load_model
    from radflow.model.design import load_design
    from radflow.model.survival import predict_risk

    artifact = load_model(folder / "out" / "model.joblib")
    design = load_design(load_spec(study["spec"]))
    np.testing.assert_allclose(
        predictions.loc[design.X.index, "risk"], predict_risk(artifact["pipeline"], design.X)
    )
    # The model folder itself may be given (read by the report's reader, StudyOutputs).
    again = folder / "predictions_again.csv"
    assert (
        _run(
            [
                "model",
                "predict",
                str(folder / "out"),
                "--table",
                str(folder / "features"),
                "-o",
                str(again),
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(pd.read_csv(again, index_col="patient"), predictions)


def test_spec_errors_name_the_file_and_the_key(study, tmp_path):
    good = yaml.safe_load(study["spec"].read_text())
    cases = [
        ({**good, "bootstraps": 10}, r"bootstraps: unknown key \(did you mean 'bootstrap'\?\)"),
        (
            {**good, "pipeline": {**good["pipeline"], "scale": "minmax"}},
            "pipeline.scale: 'minmax' is not one of",
        ),
        (
            {**good, "pipeline": {**good["pipeline"], "select": [{"method": "lasso"}]}},
            r"pipeline.select\[0\].method",
        ),
        (
            {**good, "pipeline": {**good["pipeline"], "model": {"kind": "coxnet", "alpah": 1}}},
            "pipeline.model: model coxnet: unknown parameter",
        ),
        (
            {**good, "validation": {"outer_folds": 1}},
            "validation.outer_folds: expected an integer >= 2",
        ),
        ({**good, "endpoint": {"kind": "binary", "column": "hpv"}}, "endpoint.positive"),
        ({k: v for k, v in good.items() if k != "table"}, "table: missing"),
    ]
    for k, (mapping, message) in enumerate(cases):
        path = tmp_path / f"bad{k}.yaml"
        path.write_text(yaml.safe_dump(mapping))
        with pytest.raises(SettingsError, match=message) as info:
            load_spec(path)
        assert str(path) in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(InputError, match="model file does not exist"):
        _run(["model", "predict", str(tmp_path / "none.joblib"), "--table", "x", "-o", "p.csv"])


def test_binary_endpoint_spec(study):
    from radflow.model.design import load_design

    spec = yaml.safe_load(study["spec"].read_text())
    spec["endpoint"] = {"kind": "binary", "column": "hpv", "positive": "positive"}
    spec["pipeline"]["model"] = {"kind": "logistic"}
    spec["pipeline"]["grid"] = {"C": [0.1, 1.0]}
    with pytest.raises(SettingsError, match="target cannot be a feature"):
        parse_spec(spec, base_dir=study["folder"])
    spec["blocks"]["clinical"]["columns"] = None  # every column but the target
    design = load_design(parse_spec(spec, base_dir=study["folder"]))
    assert set(design.y) == {0, 1}
    assert not [c for c in design.X.columns if c.startswith("clinical.hpv")]  # target is no feature


def test_demo_modelling_step(study, capsys):
    from radflow.demo.study import run_modelling

    folder = study["folder"]
    out = run_modelling(folder / "features", folder, folder / "model", bootstrap=50)
    printed = capsys.readouterr().out
    assert "cross-validated C-index" in printed and "held-out INST_B" in printed
    assert out["c_index"].low <= out["c_index"].value <= out["c_index"].high
    assert set(out["loio"]) == {"INST_A", "INST_B", "INST_C"}
    assert out["metrics"].is_file() and out["model"].is_file() and out["spec"].is_file()
