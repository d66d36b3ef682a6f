"""Correlations against scipy.stats.pearsonr / spearmanr pair by pair, Benjamini-
Hochberg against a hand example and scipy.stats.false_discovery_control, and
`radflow model stats` end to end (Parquet outputs, no raw patient ids)."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk
from scipy import stats

from radflow.cli.model import add_stats_arguments
from radflow.demo.synthetic import draw_cohort
from radflow.errors import SettingsError
from radflow.io.pseudonym import Pseudonymiser, load_key
from radflow.model.stats import OUTPUTS, benjamini_hochberg, correlations, stats_command
from radflow.model.study import load_study

# -- Benjamini-Hochberg ------------------------------------------------------------


def test_bh_hand_example():
    """m = 5, sorted p = .005 .011 .02 .04 .13: m p / rank = .025 .0275 .0333 .05 .13,
    then the running minimum from the top leaves them as they are."""
    p = [0.04, 0.005, 0.13, 0.011, 0.02]
    np.testing.assert_allclose(benjamini_hochberg(p), [0.05, 0.025, 0.13, 0.0275, 0.02 * 5 / 3])


def test_bh_step_up_takes_the_minimum_from_above():
    """p = .01 .04 .03 .20: rank 2 (.03) scales to .06 but rank 3 (.04) to .0533, which wins."""
    np.testing.assert_allclose(
        benjamini_hochberg([0.01, 0.04, 0.03, 0.20]), [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )


def test_bh_matches_scipy_with_ties_nan_and_shape():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(0, 0.01, 20), rng.uniform(size=80), [0.5, 0.5, 1.0, 0.0]])
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p), rtol=1e-12)
    grid = p[:24].reshape(4, 6).copy()
    grid[1, 2] = np.nan
    got = benjamini_hochberg(grid)
    assert got.shape == (4, 6) and np.isnan(got[1, 2])
    valid = ~np.isnan(grid)
    np.testing.assert_allclose(got[valid], stats.false_discovery_control(grid[valid]), rtol=1e-12)
    assert np.isnan(benjamini_hochberg([np.nan])).all()
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        benjamini_hochberg([0.2, 1.5])


# -- correlations ------------------------------------------------------------------


@pytest.fixture
def frame():
    rng = np.random.default_rng(5)
    n = 40
    a = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "a": a,
            "b": 0.6 * a + rng.normal(size=n),
            "c": np.round(rng.normal(size=n)),  # ties, for Spearman
            "d": np.exp(a) + 0.1 * rng.normal(size=n),
            "e": rng.normal(size=n),
        },
        index=[f"P{i:03d}" for i in range(n)],
    )
    X.loc[X.index[:5], "d"] = np.nan  # a missing modality
    X.loc[X.index[3:9], "e"] = np.nan  # another, overlapping
    return X


@pytest.mark.parametrize(
    "method, oracle", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr)]
)
def test_feature_pairs_match_scipy_pairwise_complete(frame, method, oracle):
    table = correlations(frame, method=method)
    assert len(table) == 10 and list(table.columns) == [
        "x",
        "y",
        "method",
        "r",
        "p_value",
        "q_value",
        "n",
    ]
    assert list(zip(table["x"], table["y"]))[:4] == [("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")]
    for row in table.itertuples():
        both = frame[[row.x, row.y]].dropna()
        expected = oracle(both[row.x], both[row.y])
        assert row.n == len(both)
        assert row.r == pytest.approx(expected.statistic, rel=1e-10, abs=1e-12)
        assert row.p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)
    np.testing.assert_allclose(
        table["q_value"], stats.false_discovery_control(table["p_value"]), rtol=1e-12
    )


def test_features_against_covariates_align_on_the_index(frame):
    covariates = pd.DataFrame(
        {"age": np.arange(40.0) ** 1.5, "hpv=positive": np.tile([0.0, 1.0], 20)}, index=frame.index
    )[::-1]  # other row order
    covariates = covariates.drop(index=frame.index[10])  # a patient without clinical data
    table = correlations(frame, covariates, method="spearman")
    assert len(table) == 5 * 2
    row = table[(table["x"] == "b") & (table["y"] == "age")].iloc[0]
    joined = frame[["b"]].join(covariates).dropna(subset=["b", "age"])
    expected = stats.spearmanr(joined["b"], joined["age"])
    assert row["n"] == 39
    assert row["r"] == pytest.approx(expected.statistic, rel=1e-10)


def test_constant_and_short_columns_are_nan(frame):
    frame = frame.assign(flat=0.1, few=np.where(np.arange(40) < 2, 1.0, np.nan))
    table = correlations(frame)
    flat = table[(table["x"] == "flat") | (table["y"] == "flat")]
    assert flat["r"].isna().all() and flat["p_value"].isna().all() and flat["q_value"].isna().all()
    few = table[table["y"] == "few"]
    assert few["r"].isna().all() and (few["n"] <= 2).all()
    exact = correlations(pd.DataFrame({"u": [1.0, 2, 3, 4], "v": [2.0, 4, 6, 8]}))
    assert exact["r"].iloc[0] == pytest.approx(1.0, abs=1e-12) and exact["p_value"].iloc[0] < 1e-6


def test_correlation_input_errors(frame):
    with pytest.raises(ValueError, match="method must be one of"):
        correlations(frame, method="kendall")
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) \['stage'\].*encode_covariates"):
        correlations(frame, frame.assign(stage="II")[["stage"]])
    with pytest.raises(ValueError, match="infinite"):
        correlations(frame.assign(a=np.inf))
    with pytest.raises(TypeError, match="X must be a pandas DataFrame"):
        correlations(frame.to_numpy())


# -- radflow model stats -------------------------------------------------------------

PARAMS = {
    "setting": {"binWidth": 5},
    "featureClass": {"firstorder": ["Mean", "Entropy"], "glcm": ["Contrast"]},
}
COLUMNS = ("firstorder_Entropy", "firstorder_Mean", "glcm_Contrast")


@pytest.fixture
def study_files(tmp_path):
    """A table of 12 synthetic patients whose GTV mean follows age, plus CSVs and a store."""
    from radflow.io.records import LabelMap
    from radflow.params.pyradiomics_params import load_params, params_to_dict
    from radflow.pipeline.plan import feature_set_name
    from radflow.pipeline.table import TableWriter, table_lock
    from radflow.store.write import write_series

    cohort = draw_cohort(12, seed=5)
    pseud = Pseudonymiser(load_key())
    rng = np.random.default_rng(0)
    table = tmp_path / "features"
    with table_lock(table):
        writer = TableWriter(
            table,
            feature_set_name(load_params(PARAMS)),
            COLUMNS,
            params_to_dict(load_params(PARAMS)),
            "r1",
        )
        for p in cohort:
            case = pseud.patient(p.patient)
            row = {
                "case_id": case,
                "series_id": "S1",
                "roi": "gtv",
                "label_key": "rs",
                "label": 1,
                "image_type": "original",
                "task_key": case,
                "firstorder_Mean": p.clinical["age"] + rng.normal(),
                "firstorder_Entropy": rng.normal(),
                "glcm_Contrast": rng.normal(),
            }
            writer.commit(p.site.name, "CT", case, [row], keep=set())
    pd.DataFrame([p.clinical for p in cohort]).to_csv(tmp_path / "clinical.csv", index=False)
    pd.DataFrame([p.genomic for p in cohort]).to_csv(tmp_path / "genomic.csv", index=False)

    store = tmp_path / "store"
    z, y, x = np.indices((10, 20, 20))
    for i in range(3):
        values = (40.0 * i + 5 * np.random.default_rng(i).normal(size=z.shape)).astype(np.float32)
        roi = ((z - 5) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 16 + 4 * i).astype(np.uint8)
        image, label = sitk.GetImageFromArray(values), sitk.GetImageFromArray(roi)
        write_series(
            store,
            f"C{i}",
            "S1",
            image,
            [LabelMap("rs", "labelmap", label, {1: "GTV"})],
            attrs={"modality": "CT"},
            fingerprint=f"fp{i}",
        )
    (tmp_path / "params.yaml").write_text(
        "setting: {binWidth: 5}\nfeatureClass: {firstorder: [Mean]}\n"
    )
    return {
        "table": table,
        "cohort": cohort,
        "clinical": tmp_path / "clinical.csv",
        "genomic": tmp_path / "genomic.csv",
        "store": store,
        "params": tmp_path / "params.yaml",
        "out": tmp_path / "stats",
    }


def _args(argv):
    parser = argparse.ArgumentParser(prog="radflow model stats")
    add_stats_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_stats_command_writes_the_tables(study_files, capsys):
    f = study_files
    args = _args(
        [
            f["table"],
            "--out",
            f["out"],
            "--clinical",
            f["clinical"],
            "--genomic",
            f["genomic"],
            "--store",
            f["store"],
            "--params",
            f["params"],
            "--perturb",
            "original",
            "--perturb",
            "dilate:1",
            "--perturb",
            "noise:5",
        ]
    )
    assert stats_command(args) == 0
    assert sorted(p.name for p in f["out"].iterdir()) == sorted(OUTPUTS.values())

    features = pq.read_table(f["out"] / OUTPUTS["features"]).to_pandas()
    study = load_study(f["table"], clinical=f["clinical"], genomic=f["genomic"])
    expected = pd.concat(
        [correlations(study.X, method=m) for m in ("pearson", "spearman")], ignore_index=True
    )
    pd.testing.assert_frame_equal(features, expected)
    assert len(features) == 2 * 3  # 3 feature pairs, two methods

    covariates = pq.read_table(f["out"] / OUTPUTS["covariates"]).to_pandas()
    age = covariates[
        (covariates["x"] == "CT.gtv.original_firstorder_Mean")
        & (covariates["y"] == "age")
        & (covariates["method"] == "pearson")
    ].iloc[0]
    assert age["r"] > 0.9 and age["q_value"] < 0.05  # the relation built into the table
    assert {"TP53", "sex=M", "stage=I"} <= set(covariates["y"])

    icc = pq.read_table(f["out"] / OUTPUTS["icc"]).to_pandas()
    assert (
        set(icc["feature"]) == {"CT.gtv.original_firstorder_Mean"} and (icc["n_raters"] == 3).all()
    )
    assert (icc["n_subjects"] == 3).all()
    assert pq.read_table(f["out"] / OUTPUTS["failures"]).num_rows == 0
    assert len(pq.read_table(f["out"] / OUTPUTS["values"])) == 3 * 3

    printed = capsys.readouterr().out
    assert "12 patients, 3 features, 3 feature pairs" in printed and "ICC of 1 features" in printed
    # No raw patient id in any output.
    text = printed + "".join(pq.read_table(p).to_pandas().to_csv() for p in f["out"].iterdir())
    for p in f["cohort"]:
        assert p.patient not in text


def test_stats_command_without_files_or_store(study_files):
    f = study_files
    assert stats_command(_args([f["table"], "--out", f["out"], "--method", "spearman"])) == 0
    assert [p.name for p in f["out"].iterdir()] == [OUTPUTS["features"]]
    assert set(pq.read_table(f["out"] / OUTPUTS["features"]).column("method").to_pylist()) == {
        "spearman"
    }


def test_stats_command_needs_store_and_params_together(study_files):
    f = study_files
    with pytest.raises(SettingsError, match="needs both --store and --params"):
        stats_command(_args([f["table"], "--out", f["out"], "--store", f["store"]]))
    assert not f["out"].exists()
