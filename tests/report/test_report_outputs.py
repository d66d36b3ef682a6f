"""The report drawn from a model folder (``save_study``'s outputs), not from memory.

A 60-patient study in the layout ``radflow run`` writes, with the archive's
CSV files, a spec with an ICC filter, fitted and validated by
``run_study`` and saved by ``save_study``. The report must read the
out-of-fold risks from ``predictions.parquet`` and nothing else; its figures
are checked against independent computations on that file: lifelines'
Kaplan-Meier estimator and log-rank test on the median split, and
scikit-survival's cumulative/dynamic AUC.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from radflow.demo.synthetic import draw_cohort

N = 60
FEATURES = (
    "shape_MeshVolume",
    "firstorder_Entropy",
    "glcm_Contrast",
    "firstorder_Mean",
    "glcm_Noise0",
    "glcm_Noise1",
)


def _write_study(folder) -> None:
    """Feature table (CT and PT GTV rows) and clinical/outcomes CSVs of a synthetic cohort."""
    from radflow.io.pseudonym import Pseudonymiser, load_key
    from radflow.pipeline.table import TableWriter, table_lock

    cohort = draw_cohort(N, seed=11)
    pseud = Pseudonymiser(load_key())
    rng = np.random.default_rng(3)
    with table_lock(folder / "features"):
        writer = TableWriter(folder / "features", "fs-report0001", FEATURES, {}, "test")
        for p in cohort:
            case, t = pseud.patient(p.patient), p.truth
            for modality, gain in (("CT", 1.0), ("PT", 0.5)):
                values = [
                    np.log(t["tumour_volume_mm3"]),
                    t["heterogeneity"],
                    t["texture_sd_hu"],
                    t["necrosis_fraction"],
                    0.0,
                    0.0,
                ]
                values = np.asarray(values) * gain + rng.normal(0.0, 0.3, len(values))
                row = {
                    "case_id": case,
                    "series_id": f"S{modality}",
                    "roi": "gtv",
                    "label_key": "rs",
                    "label": 1,
                    "image_type": "original",
                    "task_key": f"{case}-{modality}",
                    **{f: float(v) for f, v in zip(FEATURES, values)},
                }
                writer.commit(p.site.name, modality, case, [row], keep=set())
    pd.DataFrame([p.clinical for p in cohort]).to_csv(folder / "clinical.csv", index=False)
    pd.DataFrame([p.outcome for p in cohort]).to_csv(folder / "outcomes.csv", index=False)


#: The hand-written stability result: CT volume and entropy stable, the rest not.
ICC = {
    "CT.gtv.original_shape_MeshVolume": (0.97, 0.93),
    "CT.gtv.original_firstorder_Entropy": (0.90, 0.80),
    "CT.gtv.original_glcm_Contrast": (0.85, 0.70),
    "CT.gtv.original_firstorder_Mean": (0.40, 0.20),
    "CT.gtv.original_glcm_Noise0": (0.10, -0.10),
    "CT.gtv.original_glcm_Noise1": (0.78, 0.74),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from radflow.model.artefacts import save_study
    from radflow.model.design import load_design
    from radflow.model.spec import load_spec
    from radflow.model.validation import run_study

    folder = tmp_path_factory.mktemp("model_report")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test key is not set yet
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        _write_study(folder)
        pd.DataFrame(
            [
                {"feature": f, "form": "ICC(1,1)", "icc": v, "ci_low": lo}
                for f, (v, lo) in ICC.items()
            ]
        ).to_parquet(folder / "icc.parquet")
        spec = {
            "table": "features",
            "clinical": "clinical.csv",
            "outcomes": "outcomes.csv",
            "endpoint": {"kind": "survival", "time": "os_months", "event": "os_event"},
            "blocks": {
                "image": {},
                "clinical": {
                    "columns": ["age", "stage"],
                    "ordinal": {"stage": ["I", "II", "III", "IV"]},
                },
            },
            "pipeline": {
                "harmonise": {"method": "combat"},
                "select": [
                    {
                        "method": "icc",
                        "table": "icc.parquet",
                        "threshold": 0.75,
                        "statistic": "ci_low",
                    }
                ],
                "model": {"kind": "coxnet", "alpha": 0.05, "l1_ratio": 0.5},
            },
            "validation": {"schemes": ["nested_cv", "loio"], "outer_folds": 3},
            "bootstrap": 40,
            "seed": 0,
        }
        (folder / "study.yaml").write_text(yaml.safe_dump(spec))
        spec = load_spec(folder / "study.yaml")
        design = load_design(spec)
        save_study(run_study(spec, design), spec, folder / "model", design=design)
    return folder / "model"


@pytest.fixture(scope="module")
def content(model_dir):
    from radflow.report.build import build_content, load_fit_outputs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        fit = load_fit_outputs(model_dir)
        return fit, build_content(fit, progress=False)


def _oof(model_dir, scheme) -> pd.DataFrame:
    frame = pd.read_parquet(model_dir / "predictions.parquet")
    return frame[frame["scheme"] == scheme]


def test_fit_outputs_hold_the_saved_predictions(model_dir, content):
    fit, _ = content
    assert set(fit.predictions) == {"nested_cv", "loio"}
    for scheme, pred in fit.predictions.items():
        saved = _oof(model_dir, scheme).set_index("patient")
        pd.testing.assert_series_equal(pred["risk"], saved["risk"])
        assert sorted(pred.index) == sorted(fit.design.X.index)


@pytest.mark.parametrize("k, scheme", [(0, "nested_cv"), (1, "loio")])
def test_km_curves_are_the_median_split_of_out_of_fold_risk(model_dir, content, k, scheme):
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    _, report = content
    fig = report.figures["km"][k]
    ax = next(a for a in fig.axes if a.get_label() == "km")
    assert (
        ax.get_title()
        == {"nested_cv": "nested cross-validation", "loio": "leave-one-institution-out"}[scheme]
    )
    oof = _oof(model_dir, scheme)
    high = oof["risk"].to_numpy() > np.median(oof["risk"])
    assert 0 < high.sum() < len(oof)
    lines = {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }
    assert set(lines) == {"low risk", "high risk"}
    for name, members in (("high risk", high), ("low risk", ~high)):
        km = KaplanMeierFitter().fit(oof["time"][members], oof["event"][members])
        xs, ys = lines[name].get_xdata(), lines[name].get_ydata()
        assert xs[0] == 0.0 and ys[0] == 1.0 and np.all(np.diff(ys) <= 1e-12)
        expected = km.survival_function_at_times(xs[1:]).to_numpy()
        np.testing.assert_allclose(ys[1:], expected, atol=1e-12, err_msg=name)
    test = logrank_test(
        oof["time"][high], oof["time"][~high], oof["event"][high], oof["event"][~high]
    )
    text = " ".join(t.get_text() for t in ax.texts)
    p = test.p_value
    assert (f"p = {p:.3f}" in text) if p >= 0.001 else ("p < 0.001" in text), (text, p)
    # Numbers at risk at time 0 are the group sizes.
    table = next(a for a in fig.axes if a.get_label() == "at_risk")
    at_zero = sorted(int(t.get_text()) for t in table.texts if t.get_position()[0] == 0)
    assert at_zero == sorted([int(high.sum()), int((~high).sum())])


def test_td_auc_is_computed_on_out_of_fold_risk(model_dir, content):
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    _, report = content
    ax = report.figures["td_auc"][0].axes[0]
    times, auc = ax.get_lines()[0].get_xdata(), ax.get_lines()[0].get_ydata()
    oof = _oof(model_dir, "nested_cv")
    y = Surv.from_arrays(event=oof["event"].to_numpy(), time=oof["time"].to_numpy())
    expected, _ = cumulative_dynamic_auc(y, y, oof["risk"].to_numpy(), times)
    np.testing.assert_allclose(auc, expected)
    assert len(times) >= 2 and np.all(auc > 0.5)
    assert "nested cross-validation" in report.notes["td_auc"]


def test_icc_section_shows_the_filter_distribution_and_threshold(content):
    _, report = content
    ax = report.figures["icc"][0].axes[0]
    stable = sum(lo >= 0.75 for _, lo in ICC.values())
    assert (
        ax.get_title()
        == f"{stable} of {len(ICC)} features with lower 95% CI bound of ICC(1,1) >= 0.75"
    )
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == len(ICC)
    assert any(list(line.get_xdata()) == [0.75, 0.75] for line in ax.get_lines())
    # The PT and clinical columns have no ICC and pass: said in the note.
    n_unmeasured = 6 + 2  # PT features, clinical age and stage
    assert f"{n_unmeasured} inputs without an ICC" in report.notes["icc"]


def test_only_predictions_parquet_is_read(model_dir, tmp_path):
    """A `radflow model predict` CSV in the folder is not taken for out-of-fold risks."""
    import shutil

    from radflow.errors import InputError
    from radflow.report.build import build_content, load_fit_outputs

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "predictions.parquet").unlink()
    pd.DataFrame(
        {"patient": ["P1"], "institution": ["INST_A"], "risk": [1.0], "risk_group": ["high"]}
    ).to_csv(copy / "predictions.csv", index=False)
    fit = load_fit_outputs(copy)
    assert fit.predictions == {}
    report = build_content(fit, progress=False)
    assert report.notes["km"] == "Not available: no out-of-fold predictions in the model outputs."
    assert "km" not in report.figures

    pd.DataFrame({"patient": ["P1"], "risk": [1.0]}).to_parquet(copy / "predictions.parquet")
    with pytest.raises(InputError, match=re.escape(str(copy / "predictions.parquet"))):
        load_fit_outputs(copy)


def test_fit_outputs_read_the_folder_by_its_file_names(model_dir, content, tmp_path):
    """The report reads model.joblib and metrics.json through StudyOutputs (the reader of
    `radflow model predict` too), not whatever *.json / *.joblib sorts first."""
    import json
    import shutil

    from radflow.report.build import load_fit_outputs

    fit, _ = content
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "a_notes.json").write_text(json.dumps({"validation": {}, "spec": "elsewhere.yaml"}))
    (copy / "a_old.joblib").write_bytes(b"not a model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")
        again = load_fit_outputs(copy)
    assert again.spec == fit.spec
    assert again.validation == fit.validation and set(again.validation) == {"nested_cv", "loio"}
    assert list(again.pipeline.named_steps) == list(fit.pipeline.named_steps)
    for scheme, pred in fit.predictions.items():
        pd.testing.assert_frame_equal(again.predictions[scheme], pred)
