"""The demo's habitat step: CT+PET habitats of each GTV, the necrotic habitat, the hidden truth.

A small store of synthetic tumours (a necrotic core of low HU and low SUV inside a viable rim,
on a CT grid and a coarser PET grid) stands in for the demo archive: the habitat step must
store a habitat map per GTV whose necrotic habitat recovers the core. The necrotic habitat of
a model is checked on hand-made compartments whose standardised means are computed by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radflow.demo import scenario
from radflow.io.pseudonym import Pseudonymiser
from radflow.io.records import LabelMap
from radflow.model.habitat import HabitatModel
from radflow.params.pyradiomics_params import load_params
from radflow.pipeline.plan import make_plan
from radflow.store.habitats import habitat_record
from radflow.store.read import open_label
from radflow.store.write import write_series

CT_SHAPE, CT_SPACING_XYZ = (12, 24, 24), (1.0, 1.0, 2.0)
PT_SHAPE, PT_SPACING_XYZ = (8, 12, 12), (2.0, 2.0, 3.0)
CORE_MM, GTV_MM = 4.5, 9.0


def _radius(shape_zyx, spacing_xyz, ct_spacing_xyz=CT_SPACING_XYZ):
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape_zyx), indexing="ij")
    sx, sy, sz = spacing_xyz
    # Both grids have their origin at 0; the tumour sits at the CT grid's centre.
    centre = (np.array(CT_SHAPE) - 1) * np.array(ct_spacing_xyz[::-1]) / 2
    return np.sqrt(
        (z * sz - centre[0]) ** 2 + (y * sy - centre[1]) ** 2 + (x * sx - centre[2]) ** 2
    )


def _image(values, spacing_xyz):
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing_xyz)
    return image


def _case(store, case, seed, *, core_mm=CORE_MM, ct_spacing_xyz=CT_SPACING_XYZ, pet=True):
    rng = np.random.default_rng(seed)
    r = _radius(CT_SHAPE, ct_spacing_xyz, ct_spacing_xyz)
    hu = 40 + 5 * rng.standard_normal(CT_SHAPE)
    hu[r <= GTV_MM] = 60 + 5 * rng.standard_normal(np.count_nonzero(r <= GTV_MM))
    hu[r <= core_mm] = 12 + 5 * rng.standard_normal(np.count_nonzero(r <= core_mm))
    ct = _image(np.round(hu).astype(np.int16), ct_spacing_xyz)
    labels = sitk.GetImageFromArray((r <= GTV_MM).astype(np.uint8))
    labels.CopyInformation(ct)
    attrs = {"institution": "inst", "study": f"st-{case}"}
    write_series(
        store,
        case,
        "ct",
        ct,
        [LabelMap("rtstruct", "rtstruct", labels, {1: "GTV"})],
        attrs={"modality": "CT", **attrs},
        fingerprint=f"ct-{case}",
    )
    if not pet:
        return r <= core_mm
    rp = _radius(PT_SHAPE, PT_SPACING_XYZ, ct_spacing_xyz)
    suv = np.where(rp <= GTV_MM + 1, 8.0 + seed, 1.0)  # a little wider: linear resampling
    suv[rp <= core_mm] = 0.7
    write_series(
        store,
        case,
        "pt",
        _image(suv.astype(np.float32), PT_SPACING_XYZ),
        attrs={"modality": "PT", **attrs},
        fingerprint=f"pt-{case}",
    )
    return r <= core_mm


def test_demo_parameters_enable_the_habitat_class_with_the_models_count():
    params = load_params(scenario.demo_params())
    assert "habitat" in params.feature_classes
    assert params.settings.habitat_count == scenario.HABITAT_COUNT
    stability = load_params(scenario.stability_params())
    assert "habitat" not in stability.feature_classes
    assert stability.settings.habitat_count is None
    assert set(stability.feature_classes) == set(params.feature_classes) - {"habitat"}


def test_the_necrotic_habitat_is_the_lowest_in_ct_and_pet_together():
    # Three compartments of 200 voxels each, (CT, PET) = A (0, 6), B (10, 0), C (20, 9).
    # Standardised on the pooled voxels: CT mean 10, SD sqrt(200/3) -> z -1.22, 0, 1.22;
    # PET mean 5, SD sqrt(14) -> z 0.27, -1.34, 1.07. Sums: A -0.96, B -1.34, C 2.29.
    # B is necrotic although habitat 1 (A, numbered by the first channel) has the lower CT.
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 6.0], [10.0, 0.0], [20.0, 9.0]])
    X = np.vstack([c + 0.01 * rng.standard_normal((200, 2)) for c in centres])
    model = HabitatModel(3, method="kmeans", random_state=0).fit(X)
    assert np.allclose(model.habitat_means_, centres, atol=0.01)
    assert scenario.necrotic_habitat(model) == 2
    # Two compartments that agree: the low one, habitat 1.
    X = np.vstack([c + 0.01 * rng.standard_normal((100, 2)) for c in ([12.0, 0.7], [55.0, 8.0])])
    assert scenario.necrotic_habitat(HabitatModel(2, method="kmeans", random_state=0).fit(X)) == 1


def test_hidden_necrosis_is_keyed_by_the_demo_pseudonym(tmp_path):
    truth = {"patients": {"HN-001": {"necrosis_fraction": 0.2}, "HN-002": {"necrosis_fraction": 0}}}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    key_file = scenario.demo_key_file(tmp_path)
    reference = scenario.hidden_necrosis(tmp_path, key_file, habitat=2)
    pseudonym = Pseudonymiser(scenario.DEMO_KEY.encode())
    assert reference.values.to_dict() == {
        pseudonym.patient("HN-001"): 0.2,
        pseudonym.patient("HN-002"): 0.0,
    }
    assert reference.habitat == 2
    assert reference.where == "CT.gtv"
    assert "necro" in reference.name and "habitat 2" in reference.habitat_name


def test_habitat_step_stores_a_map_per_gtv_whose_necrotic_habitat_is_the_core(tmp_path, capsys):
    store = tmp_path / "store"
    cores = {f"c{n}": _case(store, f"c{n}", seed=n) for n in range(3)}
    result = scenario.habitat_step(store, tmp_path / scenario.HABITAT_MODEL, workers=1)
    said = capsys.readouterr().out
    assert "maps written          3" in said
    assert result["n_habitats"] == scenario.HABITAT_COUNT == 2
    necrotic = result["necrotic"]
    assert f"habitat {necrotic}: mean CT" in said and "(necrotic" in said
    viable = result["means"][3 - necrotic]
    # The core: 12 HU and SUV 0.7 against 60 HU and SUV 8-10 (blurred by the coarser PET grid).
    assert result["means"][necrotic]["CT"] < viable["CT"] - 30
    assert result["means"][necrotic]["PT"] < viable["PT"] / 2
    for case, core in cores.items():
        record = habitat_record(store, case, "ct", "gtv_habitats")
        assert record["n_habitats"] == 2 and record["channels"] == ["CT", "PT"]
        habitats = np.asarray(open_label(store, case, "ct", "gtv_habitats"))
        found = habitats == necrotic
        dice = 2 * np.count_nonzero(found & core) / (found.sum() + core.sum())
        assert dice >= 0.9
    # Run again: the same GTVs and channels, so the model is reused and every map kept.
    model = tmp_path / scenario.HABITAT_MODEL
    stamp = model.stat().st_mtime_ns
    scenario.habitat_step(store, model, workers=1)
    said = capsys.readouterr().out
    assert "reused" in said and "skipped (unchanged)   3" in said
    assert model.stat().st_mtime_ns == stamp
    # A new case: fitted again, on four GTVs.
    _case(store, "c3", seed=3)
    scenario.habitat_step(store, model, workers=1)
    said = capsys.readouterr().out
    assert "ROIs fitted           4" in said and "reused" not in said


def test_the_habitat_model_file_is_among_what_a_new_archive_removes():
    assert scenario.HABITAT_MODEL in scenario.DERIVED


def test_habitat_pieces_must_exceed_minimum_roi_size_on_the_coarsest_gtv_grid(tmp_path):
    # The demo extracts each habitat as a ROI with minimumROISize 50: a piece needs 51 voxels.
    assert load_params(scenario.demo_params()).settings.minimum_roi_size == 50
    store = tmp_path / "store"
    _case(store, "c0", seed=0)  # voxels 1 x 1 x 2 = 2 mm^3
    _case(store, "c1", seed=1, ct_spacing_xyz=(1.5, 1.5, 2.0))  # 4.5 mm^3, the coarsest unit
    # A GTV without PET is no habitat unit: its 3 x 3 x 3 = 27 mm^3 voxels do not count.
    _case(store, "c2", seed=2, ct_spacing_xyz=(3.0, 3.0, 3.0), pet=False)
    assert scenario.habitat_min_size_mm3(store) == pytest.approx(51 * 4.5)
    (tmp_path / "empty").mkdir()
    assert scenario.habitat_min_size_mm3(tmp_path / "empty") == 0.0


def test_a_habitat_of_pieces_below_the_minimum_is_absent_from_the_map_and_the_run(tmp_path, capsys):
    store = tmp_path / "store"
    for n in range(3):
        _case(store, f"c{n}", seed=n)
    # A core of radius 2 mm: 2 planes (z = +-2 mm) of 12 voxels (in-plane offsets +-0.5 and
    # +-1.5 mm from the centre, squared distance 1 + 0.25 + 0.25 or 1 + 0.25 + 2.25 <= 4):
    # 24 voxels of 2 mm^3 = 48 mm^3, under 51 voxels (102 mm^3).
    small = _case(store, "c3", seed=3, core_mm=2.0)
    assert small.sum() == 24
    result = scenario.habitat_step(store, tmp_path / scenario.HABITAT_MODEL, workers=1)
    assert "under 102 mm³" in capsys.readouterr().out
    viable = 3 - result["necrotic"]
    for case in ("c0", "c1", "c2", "c3"):
        habitats = np.asarray(open_label(store, case, "ct", "gtv_habitats"))
        for k in (1, 2):
            pieces, _ = ndimage.label(habitats == k)  # 6-connected, as the model's components
            assert all(np.bincount(pieces.ravel())[1:] >= 51), (case, k)
    habitats = np.asarray(open_label(store, "c3", "ct", "gtv_habitats"))
    assert set(np.unique(habitats)) == {0, viable}
    assert open_label(store, "c3", "ct", "gtv_habitats").attrs["rois"] == {
        viable: f"gtv_habitat_{viable}"
    }
    # radflow run plans one row per habitat present: none of c3's necrotic habitat.
    planned = {
        (t.case, t.roi)
        for t in make_plan(store, scenario.demo_params()).tasks
        if t.roi.startswith("gtv_habitat_")
    }
    expected = {(f"c{n}", f"gtv_habitat_{k}") for n in range(3) for k in (1, 2)}
    assert planned == expected | {("c3", f"gtv_habitat_{viable}")}
