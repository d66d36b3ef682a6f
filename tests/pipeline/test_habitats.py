"""radflow habitats fit/apply: habitat models over a store and habitat maps into it.

The synthetic cases are CT + PET of a tumour with a necrotic core (low HU, low SUV) and a rim
(high SUV), the PET on its own coarser, shifted grid. Expected values come from the generator
(core/rim truth, analytic PET fields), never from the code under test. Apply runs on a real
two-worker LocalCluster (worker processes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.errors import InputError, SettingsError
from radflow.io.records import LabelMap
from radflow.model.habitat import HabitatModel
from radflow.pipeline.habitats import (
    apply,
    errors_file,
    fit,
    load_model,
    plan_units,
    read_channels,
)
from radflow.store.habitats import habitat_key, habitat_record
from radflow.store.read import open_label, read_box
from radflow.store.write import add_label, write_series

CT_SHAPE = (12, 28, 28)
CT_SPACING_XYZ = (1.0, 1.0, 2.0)
CT_ORIGIN_XYZ = (-14.0, -14.0, -12.0)
PT_SPACING_XYZ = (2.0, 2.0, 3.0)
PT_ORIGIN_XYZ = (-17.3, -16.6, -16.1)
PT_SHAPE = (12, 18, 18)
CENTRE_XYZ = np.array([0.5, -0.5, 0.0])
RIM_MM, CORE_MM = 8.0, 4.5


def _points(shape_zyx, spacing_xyz, origin_xyz):
    """Physical (x, y, z) of every voxel centre, arrays of shape_zyx (identity direction)."""
    zz, yy, xx = np.indices(shape_zyx, dtype=np.float64)
    return (
        origin_xyz[0] + xx * spacing_xyz[0],
        origin_xyz[1] + yy * spacing_xyz[1],
        origin_xyz[2] + zz * spacing_xyz[2],
    )


def _radius(x, y, z):
    return np.sqrt((x - CENTRE_XYZ[0]) ** 2 + (y - CENTRE_XYZ[1]) ** 2 + (z - CENTRE_XYZ[2]) ** 2)


def linear_suv(x, y, z):
    """A PET field linear in the physical position: linear interpolation reproduces it exactly."""
    return 3.0 + 0.25 * x - 0.125 * y + 0.1 * z


def _image(values, spacing_xyz, origin_xyz):
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(origin_xyz)
    return image


def _case(store, case, seed, *, pet=True, pet_field="compartments", organ=True):
    rng = np.random.default_rng(seed)
    r = _radius(*_points(CT_SHAPE, CT_SPACING_XYZ, CT_ORIGIN_XYZ))
    hu = 40 + 5 * rng.standard_normal(CT_SHAPE)
    hu[r <= RIM_MM] = 80 + 6 * rng.standard_normal(np.count_nonzero(r <= RIM_MM))
    hu[r <= CORE_MM] = 5 + 6 * rng.standard_normal(np.count_nonzero(r <= CORE_MM))
    labels = np.zeros(CT_SHAPE, np.uint8)
    labels[r <= RIM_MM] = 1
    if organ:
        labels[1:3, 2:6, 2:7] = 2
    ct = _image(np.round(hu).astype(np.int16), CT_SPACING_XYZ, CT_ORIGIN_XYZ)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(ct)
    attrs = {"institution": "inst", "study": f"st-{case}"}
    rois = {1: "GTV", 2: "Liver"} if organ else {1: "GTV"}
    write_series(
        store,
        case,
        "ct",
        ct,
        [LabelMap("rtstruct", "rtstruct", mask, rois)],
        attrs={"modality": "CT", **attrs},
        fingerprint=f"ct-{case}-{seed}",
    )
    if not pet:
        return
    x, y, z = _points(PT_SHAPE, PT_SPACING_XYZ, PT_ORIGIN_XYZ)
    if pet_field == "linear":
        suv = linear_suv(x, y, z)
    else:
        rp = _radius(x, y, z)
        suv = np.where(rp <= RIM_MM, 9.0, 1.0)
        suv[rp <= CORE_MM] = 1.5
    write_series(
        store,
        case,
        "pt",
        _image(suv.astype(np.float32), PT_SPACING_XYZ, PT_ORIGIN_XYZ),
        attrs={"modality": "PT", **attrs},
        fingerprint=f"pt-{case}-{seed}",
    )


def _core_truth():
    """On the CT grid: 1 in the core, 2 in the rim, 0 outside the GTV (the generator's truth)."""
    r = _radius(*_points(CT_SHAPE, CT_SPACING_XYZ, CT_ORIGIN_XYZ))
    return np.where(r <= CORE_MM, 1, np.where(r <= RIM_MM, 2, 0))


@pytest.fixture(scope="module")
def cluster():
    """A real two-worker LocalCluster (worker processes): its scheduler address."""
    from distributed import LocalCluster

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("habitats") / "store"
    for n in range(4):
        _case(root, f"c{n}", seed=n)
    _case(root, "c9", seed=9, pet=False)  # no PET: listed, not fitted on
    return root


@pytest.fixture(scope="module")
def fitted(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "gtv.joblib"
    estimator = HabitatModel(2, method="kmeans", random_state=0)
    return fit(store, "GTV", ["CT", "PT"], estimator, out)


@pytest.fixture(scope="module")
def applied(store, fitted, cluster):
    return apply(store, fitted.model, scheduler=cluster, progress=False)


# -- store ------------------------------------------------------------------------------------


def test_add_label_keeps_attributes_and_refuses_reserved_ones(tmp_path):
    _case(tmp_path, "c1", seed=1, pet=False)
    mask = np.zeros(CT_SHAPE, np.uint8)
    mask[5, 5:8, 5:8] = 1
    label = LabelMap.from_mask(mask, _image(mask, CT_SPACING_XYZ, CT_ORIGIN_XYZ), "extra", "x")
    with pytest.raises(ValueError, match="boxes"):
        add_label(tmp_path, "c1", "ct", label, attrs={"boxes": {}})
    with pytest.raises(ValueError, match="JSON"):
        add_label(tmp_path, "c1", "ct", label, attrs={"what": object()})
    add_label(tmp_path, "c1", "ct", label, attrs={"habitats": {"n_habitats": 3}})
    assert habitat_record(tmp_path, "c1", "ct", "extra") == {"n_habitats": 3}
    assert open_label(tmp_path, "c1", "ct", "extra").attrs["habitats"] == {"n_habitats": 3}
    assert habitat_record(tmp_path, "c1", "ct", "rtstruct") is None  # not a habitat map
    assert habitat_record(tmp_path, "c1", "ct", "nothing") is None


def test_habitat_names():
    assert habitat_key("GTV") == "gtv_habitats"
    assert habitat_key("GTV-1 (primary)") == "gtv_1_primary_habitats"


# -- planning and channels --------------------------------------------------------------------


def test_plan_lists_cases_without_a_channel_or_the_roi(store):
    units, missing = plan_units(store, "gtv", ["CT", "PT"])
    assert [u.case for u in units] == ["c0", "c1", "c2", "c3"]
    assert all(u.channel_series == ("ct", "pt") and u.label_key == "rtstruct" for u in units)
    assert [(m.case, m.series) for m in missing] == [("c9", "ct")]
    assert "no PT series" in missing[0].reason
    units, missing = plan_units(store, "spleen", ["CT", "PT"])
    assert units == [] and len(missing) == 5
    assert all("no ROI 'spleen'" in m.reason for m in missing)
    units, missing = plan_units(store, "GTV", ["MR", "CT"])
    assert units == [] and all("no MR series" in m.reason for m in missing)


def test_pet_channel_is_linearly_resampled_onto_the_ct_grid(tmp_path):
    _case(tmp_path, "c1", seed=1, pet_field="linear")
    (unit,), _ = plan_units(tmp_path, "GTV", ["CT", "PT"])
    values, roi, spacing, box = read_channels(unit, ("CT", "PT"))
    ct = read_box(tmp_path, "c1", "ct", box)
    np.testing.assert_array_equal(values[0], ct.values)
    x, y, z = _points(CT_SHAPE, CT_SPACING_XYZ, CT_ORIGIN_XYZ)
    expected = linear_suv(x, y, z)[box]
    # float32 storage of the PET: exact up to its rounding
    np.testing.assert_allclose(values[1][roi], expected[roi], rtol=1e-6, atol=1e-5)
    assert roi.sum() == np.count_nonzero(_core_truth())
    assert spacing == (2.0, 1.0, 1.0)


def test_a_channel_that_does_not_cover_the_roi_is_an_input_error(tmp_path):
    _case(tmp_path, "c1", seed=1, pet=False)
    small = np.ones((4, 4, 4), np.float32)
    write_series(
        tmp_path,
        "c1",
        "pt",
        _image(small, PT_SPACING_XYZ, (0.0, 0.0, 0.0)),  # covers a corner of the tumour only
        attrs={"modality": "PT"},
        fingerprint="pt-small",
    )
    (unit,), _ = plan_units(tmp_path, "GTV", ["CT", "PT"])
    with pytest.raises(InputError, match="does not cover the ROI 'gtv'"):
        read_channels(unit, ("CT", "PT"))


# -- fit and apply ----------------------------------------------------------------------------


def test_fit_saves_the_model_with_its_channels_roi_and_fingerprint(fitted):
    assert fitted.cases == ["c0/ct", "c1/ct", "c2/ct", "c3/ct"]
    assert [m.case for m in fitted.missing] == ["c9"]
    assert fitted.n_habitats == 2
    assert fitted.voxels == 4 * np.count_nonzero(_core_truth())
    artefact = load_model(fitted.model)
    assert artefact["channels"] == ["CT", "PT"] and artefact["roi"] == "gtv"
    assert artefact["fingerprint"] == fitted.fingerprint and len(fitted.fingerprint) == 32
    assert artefact["radflow_version"]
    assert isinstance(artefact["model"], HabitatModel) and artefact["model"].n_habitats_ == 2
    assert "c9" in fitted.report()


def test_apply_writes_habitat_labels_that_open_as_labels(store, fitted, applied):
    assert applied.failed == 0, applied.report()
    assert (applied.units, applied.written, applied.skipped) == (4, 4, 0)
    truth = _core_truth()
    for case in ("c0", "c1", "c2", "c3"):
        label = open_label(store, case, "ct", "gtv_habitats")
        assert label.attrs["rois"] == {1: "gtv_habitat_1", 2: "gtv_habitat_2"}
        assert label.attrs["source"] == "habitats"
        record = label.attrs["habitats"]
        assert record["model_fingerprint"] == fitted.fingerprint and record["n_habitats"] == 2
        assert record["channels"] == ["CT", "PT"] and record["channel_series"] == ["ct", "pt"]
        values = np.asarray(label.values)
        assert values.dtype == np.uint8
        np.testing.assert_array_equal(values == 0, truth == 0)  # 0 outside the ROI exactly
        # habitat 1 is the lower-HU compartment: the necrotic core
        agreement = np.mean(values[truth > 0] == truth[truth > 0])
        assert agreement > 0.85, (case, agreement)
    assert not errors_file(store, "gtv").exists()


def test_habitat_labels_open_with_the_ome_zarr_reader(store, applied):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    nodes = list(Reader(parse_url(str(store / "c1" / "ct")))())
    (node,) = [n for n in nodes if n.metadata.get("name") == "gtv_habitats"]
    assert any(isinstance(spec, Label) for spec in node.specs)
    assert node.metadata["properties"] == {
        1: {"name": "gtv_habitat_1"},
        2: {"name": "gtv_habitat_2"},
    }
    values = np.asarray(node.data[0])
    np.testing.assert_array_equal(values, open_label(store, "c1", "ct", "gtv_habitats").values)


def test_params_take_the_habitat_class_by_name_pattern_and_its_count():
    from radflow.params.pyradiomics_params import load_params, params_hash

    params = load_params({"featureClass": {"habitat": ["Volume_2", "MSI", "ITHScore"]}})
    assert params.feature_classes["habitat"] == ("Volume_2", "MSI", "ITHScore")
    with pytest.raises(SettingsError, match="unknown feature 'Vol'.*Volume_<k>"):
        load_params({"featureClass": {"habitat": ["Vol"]}})
    with pytest.raises(SettingsError, match="habitatCount"):
        load_params({"setting": {"habitatCount": 0}})
    plain = {"featureClass": {"firstorder": None}}
    counted = {**plain, "setting": {"habitatCount": 3}}
    assert load_params(counted).settings.habitat_count == 3
    assert params_hash(load_params(counted)) != params_hash(load_params(plain))


def test_incremental_apply_computes_nothing_and_a_new_model_recomputes(
    store, fitted, applied, cluster, tmp_path
):
    again = apply(store, fitted.model, scheduler=cluster, progress=False, incremental=True)
    assert (again.written, again.skipped, again.failed) == (0, 4, 0), again.report()
    assert "nothing to compute: all 4 map(s) are up to date" in again.report()
    other = fit(
        store,
        "GTV",
        ["CT", "PT"],
        HabitatModel(3, method="kmeans", random_state=0),
        tmp_path / "k3.joblib",
    )
    assert other.fingerprint != fitted.fingerprint
    changed = apply(store, other.model, scheduler=cluster, progress=False, incremental=True)
    assert (changed.written, changed.skipped) == (4, 0), changed.report()
    assert habitat_record(store, "c0", "ct", "gtv_habitats")["n_habitats"] == 3
    back = apply(store, fitted.model, scheduler=cluster, progress=False, incremental=True)
    assert back.written == 4
    assert habitat_record(store, "c0", "ct", "gtv_habitats")["n_habitats"] == 2


def test_a_habitat_absent_from_a_roi_is_not_one_of_its_label_rois(tmp_path):
    from radflow.pipeline.habitats import _write_map
    from radflow.store.read import roi_bbox

    _case(tmp_path, "c1", seed=1)
    (unit,), _ = plan_units(tmp_path, "GTV", ["CT", "PT"])
    box = roi_bbox(tmp_path, "c1", "ct", "rtstruct", 1)
    truth = _core_truth()[box]
    habitats = np.where(truth == 1, 1, 3) * (truth > 0)  # K = 3, habitat 2 absent
    artefact = {"n_habitats": 3, "channels": ["CT", "PT"], "fingerprint": "f" * 32}
    _write_map(unit, "key", artefact, [(b.start, b.stop) for b in box], habitats.astype(np.uint8))
    label = open_label(tmp_path, "c1", "ct", "gtv_habitats")
    assert label.attrs["rois"] == {1: "gtv_habitat_1", 3: "gtv_habitat_3"}  # run plans these
    assert label.attrs["habitats"]["n_habitats"] == 3


def test_a_failing_roi_is_recorded_and_does_not_stop_the_others(tmp_path, fitted, cluster):
    root = tmp_path / "store"
    _case(root, "c1", seed=1)
    _case(root, "c2", seed=2, pet=False)
    small = np.ones((4, 4, 4), np.float32)
    write_series(
        root,
        "c2",
        "pt",
        _image(small, PT_SPACING_XYZ, (0.0, 0.0, 0.0)),
        attrs={"modality": "PT", "study": "st-c2"},
        fingerprint="pt-small",
    )
    summary = apply(root, fitted.model, scheduler=cluster, progress=False)
    assert (summary.written, summary.failed) == (1, 1), summary.report()
    rows = json.loads(errors_file(root, "gtv").read_text())
    assert [(r["case_id"], r["error_type"], r["permanent"]) for r in rows] == [
        ("c2", "InputError", True)
    ]
    assert "does not cover the ROI" in rows[0]["message"]
    assert summary.new_failures == 1
    # incremental: the known permanent failure is kept, not run again, not a new failure
    again = apply(root, fitted.model, scheduler=cluster, progress=False, incremental=True)
    assert (again.written, again.skipped, again.failed, again.new_failures) == (0, 1, 1, 0)
    assert "known failures, not retried" in again.report()
    assert json.loads(errors_file(root, "gtv").read_text()) == rows
    # a run without --incremental tries it again: the same failure, known
    full = apply(root, fitted.model, scheduler=cluster, progress=False)
    assert (full.written, full.failed, full.known_failed) == (1, 1, 1), full.report()
    # the PET fixed: a new key (series fingerprint), the map is written, the record emptied
    _case(root, "c2", seed=2)
    fixed = apply(root, fitted.model, scheduler=cluster, progress=False, incremental=True)
    assert (fixed.written, fixed.skipped, fixed.failed) == (1, 1, 0), fixed.report()
    assert json.loads(errors_file(root, "gtv").read_text()) == []


# -- command line -----------------------------------------------------------------------------


def test_radflow_habitats_commands(tmp_path, cluster, capsys):
    root = tmp_path / "store"
    for n in range(3):
        _case(root, f"c{n}", seed=n + 10)
    model = tmp_path / "gtv.joblib"
    fit_argv = ["habitats", "fit", str(root), "--roi", "GTV", "--channels", "CT", "PT"]
    assert main([*fit_argv, "--n-habitats", "2", "--method", "kmeans", "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "habitats (K)          2" in out and "ROIs fitted           3" in out
    argv = ["habitats", "apply", str(root), str(model), "--scheduler", cluster, "-q"]
    assert main(argv) == 0
    assert "maps written          3" in capsys.readouterr().out
    assert main([*argv, "--incremental"]) == 0
    assert "nothing to compute: all 3 map(s) are up to date" in capsys.readouterr().out
    assert main(["ls", str(root)]) == 0
    assert "gtv_habitats (1=gtv_habitat_1, 2=gtv_habitat_2)" in capsys.readouterr().out


def test_habitats_command_errors_are_one_line(tmp_path, capsys):
    root = tmp_path / "store"
    _case(root, "c1", seed=1, pet=False)
    model = tmp_path / "m.joblib"
    argv = [
        "habitats",
        "fit",
        str(root),
        "--roi",
        "GTV",
        "--channels",
        "CT",
        "PT",
        "-o",
        str(model),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no ROI 'gtv' with channels CT PT to fit on" in err
    assert "c1/ct: no PT series" in err
    assert (
        main(
            [
                "habitats",
                "fit",
                str(root),
                "--roi",
                "GTV",
                "--channels",
                "CT",
                "CT",
                "-o",
                str(model),
            ]
        )
        == 2
    )
    assert "distinct" in capsys.readouterr().err
    model.write_text("not a model")
    assert main(["habitats", "apply", str(root), str(model)]) == 2
    assert "not a habitat model" in capsys.readouterr().err


# -- the habitat class and per-habitat rows in radflow run ------------------------------------

RUN_PARAMS = {
    "setting": {"binWidth": 25, "habitatCount": 3},
    "featureClass": {
        "firstorder": ["Mean"],
        "habitat": ["Volume", "Fraction", "Components_1", "ITHScore", "MSIPairs_1_2"],
    },
}


@pytest.fixture(scope="module")
def habitat_store(tmp_path_factory, cluster):
    """Two cases with GTV habitat maps (K = 2), a third without PET (no map); organ ROIs."""
    root = tmp_path_factory.mktemp("run") / "store"
    for n in range(2):
        _case(root, f"c{n}", seed=20 + n)
    _case(root, "c2", seed=22, pet=False)
    model = fit(
        root,
        "GTV",
        ["CT", "PT"],
        HabitatModel(2, method="kmeans", random_state=0),
        root.parent / "m.joblib",
    )
    assert apply(root, model.model, scheduler=cluster, progress=False).written == 2
    return root


@pytest.fixture(scope="module")
def run_table(habitat_store, cluster):
    from radflow.pipeline.run import run

    table = habitat_store.parent / "table"
    summary = run(habitat_store, RUN_PARAMS, table, scheduler=cluster, progress=False)
    return summary, table


def test_radflow_run_gives_per_habitat_rows_and_habitat_columns(habitat_store, run_table):
    from radflow.pipeline.table import read_errors, read_table

    summary, table = run_table
    rows = read_table(table).to_pandas()
    assert sorted(set(rows["roi"])) == ["gtv", "gtv_habitat_1", "gtv_habitat_2", "liver"]
    assert summary.failed == 1 and summary.extracted == 2 * 4 + 1
    for case in ("c0", "c1"):
        ct = np.asarray(read_box(habitat_store, case, "ct", (slice(None),) * 3).values)
        habitats = np.asarray(open_label(habitat_store, case, "ct", "gtv_habitats").values)
        mine = rows[rows["case_id"] == case].set_index("roi")
        for k in (1, 2):
            # per-habitat rows: PyRadiomics' features of each habitat as its own ROI
            row = mine.loc[f"gtv_habitat_{k}"]
            assert row["label_key"] == "gtv_habitats" and row["label"] == k
            np.testing.assert_allclose(row["firstorder_Mean"], ct[habitats == k].mean())
            assert np.isnan(row["habitat_ITHScore"])  # a habitat has no habitats of its own
        gtv = mine.loc["gtv"]
        n_roi = np.count_nonzero(habitats)
        for k in (1, 2):
            n_k = np.count_nonzero(habitats == k)
            np.testing.assert_allclose(gtv[f"habitat_Fraction_{k}"], n_k / n_roi)
            np.testing.assert_allclose(gtv[f"habitat_Volume_{k}"], n_k * 2.0)  # 1 x 1 x 2 mm
        # habitatCount 3 > the model's K = 2: habitat 3 is absent from every ROI
        assert gtv["habitat_Volume_3"] == gtv["habitat_Fraction_3"] == 0.0
        assert 0.0 <= gtv["habitat_ITHScore"] < 1.0 and gtv["habitat_Components_1"] >= 1
        assert gtv["habitat_MSIPairs_1_2"] > 0  # core and rim touch
    assert "habitat_Components_2" not in rows.columns  # only the features named
    # organs have no habitat model: the class is left out of their rows
    liver = rows[rows["roi"] == "liver"]
    assert len(liver) == 3 and liver["habitat_ITHScore"].isna().all()
    assert liver["firstorder_Mean"].notna().all()
    # a GTV of CT (where the store has habitat maps) without one: fails naming the command
    errors = read_errors(table).to_pandas()
    assert list(zip(errors["case_id"], errors["roi"])) == [("c2", "gtv")]
    assert "radflow habitats apply" in errors["message"][0]


def test_incremental_run_follows_the_habitat_maps(habitat_store, run_table, cluster, tmp_path):
    from radflow.pipeline.run import run

    _, table = run_table
    again = run(
        habitat_store, RUN_PARAMS, table, scheduler=cluster, progress=False, incremental=True
    )
    assert again.extracted == 0, again.report()
    # new habitat maps (another model): the GTV and habitat rows are extracted again
    model = fit(
        habitat_store,
        "GTV",
        ["CT", "PT"],
        HabitatModel(3, method="kmeans", random_state=0),
        tmp_path / "k3.joblib",
    )
    assert apply(habitat_store, model.model, scheduler=cluster, progress=False).written == 2
    changed = run(
        habitat_store, RUN_PARAMS, table, scheduler=cluster, progress=False, incremental=True
    )
    assert changed.extracted == 2 * (1 + 3), changed.report()  # GTV + 3 habitats per case
    from radflow.pipeline.table import read_table

    rows = read_table(table).to_pandas()
    assert (rows[rows["roi"] == "gtv"]["habitat_Fraction_3"] > 0).all()
    assert sorted(set(rows["roi"])) == [
        "gtv",
        "gtv_habitat_1",
        "gtv_habitat_2",
        "gtv_habitat_3",
        "liver",
    ]


def test_run_needs_the_habitat_count_for_stems(habitat_store, tmp_path):
    from radflow.params.pyradiomics_params import load_params
    from radflow.pipeline.plan import habitat_columns, make_plan

    params = {"featureClass": {"habitat": ["Fraction", "ITHScore"]}}
    with pytest.raises(SettingsError, match="habitatCount"):
        make_plan(habitat_store, params)
    numbered = load_params({"featureClass": {"habitat": ["MSIPairs_0_2", "Fraction_1"]}})
    assert habitat_columns(numbered) == ("Fraction_1", "MSIPairs_0_2")
    counted = load_params({**params, "setting": {"habitatCount": 2}})
    assert habitat_columns(counted) == ("Fraction_1", "Fraction_2", "ITHScore")


def test_a_habitat_map_above_the_habitat_count_is_an_input_error(habitat_store):
    from radflow.extraction.extractor import extract
    from radflow.store.read import open_volume

    params = {"featureClass": {"habitat": ["ITHScore"]}, "setting": {"habitatCount": 1}}
    image, mask = (
        open_volume(habitat_store, "c0", "ct"),
        open_label(habitat_store, "c0", "ct", "rtstruct"),
    )
    habitats = open_label(habitat_store, "c0", "ct", "gtv_habitats")
    k = habitat_record(habitat_store, "c0", "ct", "gtv_habitats")["n_habitats"]
    with pytest.raises(InputError, match=f"map has {k} habitats, setting habitatCount is 1"):
        extract(image, mask, params, habitats=habitats)


def test_run_with_the_habitat_class_on_a_store_without_maps_is_an_input_error(tmp_path):
    from radflow.pipeline.plan import make_plan

    _case(tmp_path, "c1", seed=1)
    with pytest.raises(InputError, match="no habitat map; run `radflow habitats fit`"):
        make_plan(tmp_path, RUN_PARAMS)


def test_extract_computes_the_habitat_class_from_a_habitat_map(tmp_path):
    from radflow.extraction.extractor import extract

    image = _image(np.zeros((4, 5, 6), np.int16), (0.5, 0.5, 2.0), (0.0, 0.0, 0.0))
    roi = np.zeros((4, 5, 6), np.uint8)
    roi[1:3, 1:4, 1:5] = 1  # 24 voxels
    habitats = roi.copy()
    habitats[1:3, 1:4, 1:3] = 2  # 12 voxels of habitat 2, 12 of habitat 1
    mask = _image(roi, (0.5, 0.5, 2.0), (0.0, 0.0, 0.0))
    params = {"featureClass": {"habitat": ["Volume", "Fraction", "Components", "MSIPairs_1_2"]}}
    result = extract(image, mask, params, habitats=_image(habitats, (0.5, 0.5, 2.0), (0, 0, 0)))
    values = {k: v for k, v in result.items() if not k.startswith("diagnostics_")}
    assert values == {
        "original_habitat_Volume_1": 12 * 0.5,  # voxels of 0.5 x 0.5 x 2 mm
        "original_habitat_Volume_2": 12 * 0.5,
        "original_habitat_Fraction_1": 0.5,
        "original_habitat_Fraction_2": 0.5,
        "original_habitat_Components_1": 1.0,
        "original_habitat_Components_2": 1.0,
        "original_habitat_MSIPairs_1_2": 2 * 3,  # the 2 x 3 faces between x = 2 and x = 3
    }
    with pytest.raises(InputError, match="radflow habitats apply"):
        extract(image, mask, params)
