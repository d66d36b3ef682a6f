"""Study assembly: pivot of the feature table, joins on pseudonymised ids, the
missing-modality report, filters and errors; values checked against DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from radflow.demo.synthetic import draw_cohort
from radflow.errors import InputError
from radflow.io.pseudonym import Pseudonymiser, load_key
from radflow.model.study import encode_covariates, feature_sets, load_study

PARAMS = {"featureClass": {"firstorder": ["Mean"], "glcm": ["Contrast"]}}
COLUMNS = ("firstorder_Mean", "glcm_Contrast")
N = 9  # three institutions x three patients


def _feature_set(params=PARAMS):
    from radflow.params.pyradiomics_params import load_params
    from radflow.pipeline.plan import feature_set_name

    return feature_set_name(load_params(params))


def _value(raw_id: str, modality: str, roi: str, image_type: str, feature: str) -> float:
    """A value that encodes where it came from, to check the pivot puts it in its cell."""
    return (
        1000.0 * int(raw_id[1:])
        + 100 * ("CT", "PT").index(modality)
        + 10 * ("gtv", "organ").index(roi)
        + ("original", "wavelet-LLH").index(image_type)
        + 0.5 * COLUMNS.index(feature)
    )


def _write_table(table, cohort, *, skip=(), params=PARAMS, extra_series=None):
    """Rows of each patient's CT and PT (GTV and an organ, two image types);
    ``skip`` holds (raw id, modality) pairs left out."""
    from radflow.params.pyradiomics_params import load_params, params_to_dict
    from radflow.pipeline.table import TableWriter, table_lock

    pseud = Pseudonymiser(load_key())
    with table_lock(table):
        writer = TableWriter(
            table, _feature_set(params), COLUMNS, params_to_dict(load_params(params)), "r1"
        )
        for p in cohort:
            case = pseud.patient(p.patient)
            for modality in ("CT", "PT"):
                if (p.patient, modality) in skip:
                    continue
                series = [f"S{modality}1"] + (
                    [extra_series] if extra_series and modality == "CT" else []
                )
                rows = [
                    {
                        "case_id": case,
                        "series_id": s,
                        "roi": roi,
                        "label_key": "rs",
                        "label": label,
                        "image_type": it,
                        "task_key": f"{case}-{s}-{roi}-{it}",
                        **{f: _value(p.patient, modality, roi, it, f) for f in COLUMNS},
                    }
                    for s in series
                    for label, roi in ((1, "gtv"), (2, "organ"))
                    for it in ("original", "wavelet-LLH")
                ]
                writer.commit(p.site.name, modality, case, rows, keep=set())


@pytest.fixture
def archive(tmp_path):
    """A feature table and the three CSV files of a 9-patient cohort.

    Patient A0001 (index 0) has no PET; patient C0003 (index 8) has no outcome row.
    """
    cohort = draw_cohort(N, seed=3)
    table = tmp_path / "features"
    _write_table(table, cohort, skip={(cohort[0].patient, "PT")})
    pd.DataFrame([p.clinical for p in cohort]).to_csv(tmp_path / "clinical.csv", index=False)
    pd.DataFrame([p.genomic for p in cohort]).to_csv(tmp_path / "genomic.csv", index=False)
    pd.DataFrame([p.outcome for p in cohort[:-1]]).to_csv(tmp_path / "outcomes.csv", index=False)
    return {
        "table": table,
        "cohort": cohort,
        "clinical": tmp_path / "clinical.csv",
        "genomic": tmp_path / "genomic.csv",
        "outcomes": tmp_path / "outcomes.csv",
    }


def _files(archive):
    return {k: archive[k] for k in ("clinical", "genomic", "outcomes")}


def test_pivot_puts_every_value_in_its_named_column(archive):
    study = load_study(archive["table"], **_files(archive))
    pseud = Pseudonymiser(load_key())
    raw = {pseud.patient(p.patient): p.patient for p in archive["cohort"]}
    expected_columns = {
        f"{m}.{r}.{it}_{f}"
        for m in ("CT", "PT")
        for r in ("gtv", "organ")
        for it in ("original", "wavelet-LLH")
        for f in COLUMNS
    }
    assert set(study.X.columns) == expected_columns
    assert "CT.gtv.original_glcm_Contrast" in study.X.columns
    assert study.X.index.name == "patient" and study.X.index.is_monotonic_increasing
    for patient, row in study.X.iterrows():
        for column, value in row.items():
            modality, roi, rest = column.split(".")
            it, feature = rest.split("_", 1)
            if raw[patient] == archive["cohort"][0].patient and modality == "PT":
                assert np.isnan(value)
            else:
                assert value == _value(raw[patient], modality, roi, it, feature)
    assert study.blocks["CT"] == [c for c in study.X.columns if c.startswith("CT.")]
    assert set(study.blocks["PT"]) | set(study.blocks["CT"]) == set(study.X.columns)
    assert study.blocks["clinical"] == list(study.clinical.columns)
    assert study.feature_set == _feature_set()


def test_pivot_agrees_with_duckdb(archive):
    """An independent reader of the same table gives the same cells."""
    study = load_study(archive["table"], feature_set=_feature_set())
    rows = duckdb.sql(
        f"SELECT case_id, modality, roi, image_type, glcm_Contrast FROM read_parquet("
        f"'{archive['table']}/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert len(rows) == (2 * N - 1) * 4
    for case, modality, roi, it, value in rows:
        assert study.X.loc[case, f"{modality}.{roi}.{it}_glcm_Contrast"] == value


def test_joins_on_pseudonyms_and_drops_raw_ids(archive):
    study = load_study(archive["table"], **_files(archive))
    cohort = archive["cohort"]
    pseud = Pseudonymiser(load_key())
    by_id = {pseud.patient(p.patient): p for p in cohort}
    # C0003 has no outcome: not in the study.
    assert set(study.X.index) == {pseud.patient(p.patient) for p in cohort[:-1]}
    for patient in study.X.index:
        p = by_id[patient]
        assert study.clinical.loc[patient, "age"] == p.clinical["age"]
        assert study.clinical.loc[patient, "stage"] == p.clinical["stage"]
        assert study.genomic.loc[patient, "TP53"] == p.genomic["TP53"]
        assert study.institution.loc[patient] == p.site.name
    assert "patient" not in study.clinical.columns and "patient" not in study.genomic.columns
    # No raw patient id anywhere in what the study holds.
    text = " ".join(
        frame.to_csv()
        for frame in (study.X, study.clinical, study.genomic, study.institution, study.missing)
    )
    for p in cohort:
        assert p.patient not in text


def test_survival_target_is_a_sksurv_structured_array(archive):
    from sksurv.util import Surv

    study = load_study(archive["table"], outcomes=archive["outcomes"])
    pseud = Pseudonymiser(load_key())
    outcome = {pseud.patient(p.patient): p.outcome for p in archive["cohort"]}
    assert study.y.dtype.names == ("event", "time")
    assert len(study.y) == len(study.X)
    for (e, t), patient in zip(study.y, study.X.index):
        assert bool(e) == bool(outcome[patient]["os_event"])
        assert t == outcome[patient]["os_months"]
    assert study.y["event"].dtype == bool
    expected = Surv.from_arrays(
        [bool(outcome[i]["os_event"]) for i in study.X.index],
        [outcome[i]["os_months"] for i in study.X.index],
    )
    assert (study.y["event"] == expected[expected.dtype.names[0]]).all()


def test_missing_report_names_patients_without_a_modality_or_outcome(archive):
    study = load_study(archive["table"], **_files(archive))
    pseud = Pseudonymiser(load_key())
    no_pet = pseud.patient(archive["cohort"][0].patient)
    no_outcome = pseud.patient(archive["cohort"][-1].patient)
    assert list(study.missing.columns) == ["CT", "PT", "clinical", "genomic", "outcome", "in_study"]
    assert set(study.missing.index) == {no_pet, no_outcome}
    assert study.missing.loc[no_pet].to_dict() == {
        "CT": False,
        "PT": True,
        "clinical": False,
        "genomic": False,
        "outcome": False,
        "in_study": True,
    }
    assert (
        study.missing.loc[no_outcome, "outcome"] and not study.missing.loc[no_outcome, "in_study"]
    )
    assert study.X.loc[no_pet, study.blocks["PT"]].isna().all()


def test_patients_of_the_files_absent_from_the_table_are_reported(archive, tmp_path):
    extra = pd.read_csv(archive["clinical"], dtype={"patient": str})
    extra.loc[len(extra)] = {**extra.iloc[0].to_dict(), "patient": "Z9999"}
    extra.to_csv(tmp_path / "more.csv", index=False)
    study = load_study(archive["table"], clinical=tmp_path / "more.csv")
    ghost = Pseudonymiser(load_key()).patient("Z9999")
    assert study.missing.loc[ghost, ["CT", "PT", "in_study"]].tolist() == [True, True, False]
    assert ghost not in study.X.index and ghost not in study.clinical.index


def test_filters_by_institution_modality_roi_image_type(archive):
    study = load_study(
        archive["table"],
        institutions=["INST_B"],
        modalities="CT",
        rois=["gtv"],
        image_types=["original"],
        clinical=archive["clinical"],
    )
    assert list(study.X.columns) == [
        "CT.gtv.original_firstorder_Mean",
        "CT.gtv.original_glcm_Contrast",
    ]
    assert set(study.institution) == {"INST_B"}
    assert len(study.X) == 3
    assert set(study.blocks) == {"CT", "clinical"}
    # Patients of other institutions in clinical.csv are not reported as missing.
    assert study.missing.empty


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"feature_set": "fs-0000000000000000"},
            "unknown feature set 'fs-0000000000000000'; available: fs-",
        ),
        (
            {"institutions": ["INST_Z"]},
            "unknown institution(s) ['INST_Z']; available: INST_A, INST_B, INST_C",
        ),
        ({"modalities": ["MR"]}, "unknown modality(ies) ['MR']; available: CT, PT"),
        ({"rois": ["lung"]}, "unknown ROI(s) ['lung']; available: gtv, organ"),
    ],
)
def test_unknown_filter_values_list_the_available_ones(archive, kwargs, message):
    with pytest.raises(InputError, match=None) as info:
        load_study(archive["table"], **kwargs)
    assert message in str(info.value)


def test_several_feature_sets_need_a_choice(archive):
    other = {
        "featureClass": {"firstorder": ["Mean"], "glcm": ["Contrast"]},
        "setting": {"binWidth": 5},
    }
    _write_table(archive["table"], archive["cohort"][:2], params=other)
    assert feature_sets(archive["table"]) == sorted([_feature_set(), _feature_set(other)])
    with pytest.raises(InputError, match="2 feature sets .* choose one with feature_set="):
        load_study(archive["table"])
    assert len(load_study(archive["table"], feature_set=_feature_set(other)).X) == 2


def test_other_key_means_no_overlap_and_says_so(archive, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "another key, another study")
    with pytest.raises(InputError, match="clinical.csv: none of its 9 patient ids matches .* key"):
        load_study(archive["table"], clinical=archive["clinical"])


def test_already_pseudonymised_ids_are_recognised(archive, tmp_path):
    pseud = Pseudonymiser(load_key())
    frame = pd.read_csv(archive["clinical"], dtype={"patient": str})
    frame["patient"] = frame["patient"].map(pseud.patient)
    with pytest.raises(InputError, match="already pseudonymised"):
        load_study(archive["table"], clinical=frame)


def test_bad_inputs_fail_with_the_file_and_the_reason(archive, tmp_path):
    with pytest.raises(InputError, match="no such feature table folder"):
        load_study(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no patient id column 'subject'"):
        load_study(archive["table"], clinical=archive["clinical"], id_column="subject")
    bad = pd.read_csv(archive["outcomes"], dtype={"patient": str})
    bad.loc[0, "os_event"] = 2
    with pytest.raises(InputError, match="'os_event' must hold 1/0 or true/false, found '2'"):
        load_study(archive["table"], outcomes=bad)
    bad = pd.read_csv(archive["outcomes"], dtype={"patient": str})
    bad.loc[0, "os_months"] = -1
    with pytest.raises(InputError, match="'os_months' must hold finite times >= 0"):
        load_study(archive["table"], outcomes=bad)
    twice = pd.concat([pd.read_csv(archive["genomic"], dtype={"patient": str})] * 2)
    with pytest.raises(InputError, match="genomic: 9 repeated patient id"):
        load_study(archive["table"], genomic=twice)


def test_two_series_holding_one_roi_is_an_error(tmp_path):
    cohort = draw_cohort(2, seed=3)
    _write_table(tmp_path / "t", cohort, extra_series="SCT2")
    with pytest.raises(
        InputError, match=r"2 rows for CT\.gtv\.original .* remove the extra series"
    ):
        load_study(tmp_path / "t")


def test_a_table_of_an_older_radflow_is_refused_with_the_command_that_migrates_it(tmp_path):
    import pyarrow.parquet as pq

    from radflow.pipeline.table import compact

    table = tmp_path / "t"
    _write_table(table, draw_cohort(2, seed=3))
    files = sorted(table.rglob("*.parquet"))
    for path in files:  # the id columns as radflow wrote them before `case` became `case_id`
        data = pq.read_table(path)
        pq.write_table(
            data.rename_columns(["case", "study", "series", *data.column_names[3:]]), path
        )
    with pytest.raises(InputError, match=rf"`case_id`.*`radflow table compact {table}`"):
        load_study(table)
    assert compact(table).migrated == len(files)
    assert len(load_study(table).X) == 2


def test_encode_covariates():
    frame = pd.DataFrame(
        {
            "age": [60, 70, np.nan],
            "hpv": ["negative", "positive", None],
            "stage": ["I", "III", "II"],
            "TP53": [True, False, True],
        }
    )
    out = encode_covariates(frame)
    assert list(out.columns) == ["age", "hpv=positive", "stage=I", "stage=II", "stage=III", "TP53"]
    assert out["hpv=positive"].tolist()[:2] == [0.0, 1.0] and np.isnan(out["hpv=positive"].iloc[2])
    assert out["stage=II"].tolist() == [0.0, 0.0, 1.0]
    assert out["TP53"].tolist() == [1.0, 0.0, 1.0]
    assert (out.dtypes == np.float64).all()


def test_package_exports_resolve_lazily():
    from radflow import model

    assert set(model.__all__) == set(model._EXPORTS)
    for name in model.__all__:
        assert getattr(model, name).__name__ == name
    assert model.load_study is load_study


def test_study_of_a_real_radflow_run(tmp_path):
    """`radflow run` on a tiny store (in-process Dask cluster), then load_study:
    every cell equals a direct extraction; shape columns exist only for `original`."""
    import SimpleITK as sitk
    from distributed import LocalCluster

    from radflow.extraction.extractor import extract
    from radflow.io.records import LabelMap
    from radflow.pipeline.run import run
    from radflow.store.read import open_label, open_volume
    from radflow.store.write import write_series

    params = {
        "imageType": {"Original": {}, "Square": {}},
        "setting": {"binWidth": 25},
        "featureClass": {"firstorder": ["Mean"], "shape": ["VoxelVolume"], "glcm": ["Contrast"]},
    }
    pseud = Pseudonymiser(load_key())
    raw = {
        "A0001": ("INST_A", ("CT", "MR")),
        "B0001": ("INST_B", ("CT",)),
        "A0002": ("INST_A", ("CT",)),
    }
    store = tmp_path / "store"
    for seed, (pid, (institution, modalities)) in enumerate(raw.items()):
        for modality in modalities:
            rng = np.random.default_rng(seed)
            values = rng.normal(40, 30, size=(10, 16, 16)).astype(np.float32)
            roi = np.zeros(values.shape, np.uint8)
            roi[2:8, 3:12, 4 : 12 + seed] = 1
            image = sitk.GetImageFromArray(values)
            label = sitk.GetImageFromArray(roi)
            label.CopyInformation(image)
            write_series(
                store,
                pseud.patient(pid),
                f"{modality}-{seed}",
                image,
                [LabelMap("gtv", "labelmap", label, {1: "GTV"})],
                attrs={"modality": modality, "institution": institution},
                fingerprint=f"{pid}{modality}",
            )
    pd.DataFrame({"patient": list(raw), "age": [60, 70, 80]}).to_csv(
        tmp_path / "clinical.csv", index=False
    )

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster:
            run(
                store,
                params,
                tmp_path / "table",
                scheduler=cluster.scheduler_address,
                progress=False,
            )
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)

    study = load_study(tmp_path / "table", clinical=tmp_path / "clinical.csv")
    assert sorted(study.X.columns) == sorted(
        [
            *(
                f"{m}.gtv.original_{f}"
                for m in ("CT", "MR")
                for f in ("firstorder_Mean", "shape_VoxelVolume", "glcm_Contrast")
            ),
            *(
                f"{m}.gtv.square_{f}"
                for m in ("CT", "MR")
                for f in ("firstorder_Mean", "glcm_Contrast")
            ),
        ]
    )
    for seed, (pid, (_, modalities)) in enumerate(raw.items()):
        case = pseud.patient(pid)
        for modality in modalities:
            series = f"{modality}-{seed}"
            expected = extract(
                open_volume(store, case, series), open_label(store, case, series, "gtv"), params
            )
            for column in study.blocks[modality]:
                assert study.X.loc[case, column] == expected[column.split(".", 2)[2]], column
    only_ct = sorted(pseud.patient(p) for p in ("B0001", "A0002"))
    assert sorted(study.missing.index[study.missing["MR"]]) == only_ct
    assert study.clinical.loc[pseud.patient("B0001"), "age"] == 70
