"""radflow demo: the archive regenerated when its parameters differ, the demo's own key, and a
PET segmentation minimum that matches the extraction's."""

from __future__ import annotations

import stat

import pytest

from radflow.demo import scenario
from radflow.demo.archive import archive_parameters
from radflow.errors import InputError
from radflow.io.pseudonym import Pseudonymiser, load_key
from radflow.params.pyradiomics_params import load_params


def test_an_archive_of_other_parameters_is_written_anew_and_its_outputs_removed(tmp_path, capsys):
    out = tmp_path / "demo"
    archive = scenario.prepare_archive(out, patients=2, seed=0)
    assert archive_parameters(archive) == {"patients": 2, "seed": 0, "institutions": 3}
    stamp = (archive / "clinical.csv").stat().st_mtime_ns

    assert scenario.prepare_archive(out, patients=2, seed=0) == archive
    assert "reused" in capsys.readouterr().out
    assert (archive / "clinical.csv").stat().st_mtime_ns == stamp

    for name in ("store", "features", "model"):  # what an earlier demo made from it
        (out / name).mkdir()
        (out / name / "x").write_text("old")
    (out / "report.html").write_text("old")
    (out / "other").mkdir()
    scenario.prepare_archive(out, patients=3, seed=0)
    said = capsys.readouterr().out
    assert "holds 2 patients (seed 0), not 3 patients" in said
    assert "store, features, model, report.html" in said
    assert archive_parameters(archive)["patients"] == 3
    assert len((archive / "clinical.csv").read_text().splitlines()) == 1 + 3
    assert not any((out / n).exists() for n in ("store", "features", "model", "report.html"))
    assert (out / "other").is_dir()  # not the demo's: left alone

    (archive / "archive.json").unlink()  # an archive of an older radflow: parameters unknown
    scenario.prepare_archive(out, patients=3, seed=0)
    assert "without its parameters" in capsys.readouterr().out
    assert archive_parameters(archive)["patients"] == 3


def test_a_folder_that_is_not_a_demo_archive_is_left_alone(tmp_path):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not a radflow demo archive"):
        scenario.prepare_archive(tmp_path, patients=2, seed=0)
    assert (tmp_path / "archive" / "mine.txt").read_text() == "keep"


def test_the_demo_key_is_written_with_its_own_file_whatever_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "someone-elses-key-of-a-study")
    path = scenario.demo_key_file(tmp_path)
    assert path == tmp_path / "demo-pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(key_file=path) == scenario.DEMO_KEY.encode()
    # The key `make demo` used to pass as RADFLOW_PSEUDONYM_KEY: the same pseudonyms.
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-demo-key")
    assert Pseudonymiser(load_key()).key_id == Pseudonymiser(load_key(key_file=path)).key_id
    assert scenario.demo_key_file(tmp_path) == path


def test_pet_segmentation_keeps_only_gtvs_the_extraction_accepts():
    minimum = load_params(scenario.demo_params()).settings.minimum_roi_size
    assert minimum == 50
    # Coarse PET voxels (4 x 4 x 4 mm): 500 mm³ is 8 voxels, far below the minimum.
    assert scenario.pet_min_size_mm3((4.0, 4.0, 4.0)) == (minimum + 1) * 64.0
    # Fine voxels: the 500 mm³ floor holds.
    assert scenario.pet_min_size_mm3((1.0, 1.0, 1.0)) == scenario.PET_MIN_SIZE_MM3


def test_combat_only_where_every_training_fold_can_fit_it():
    from radflow.demo.study import combat_fits, default_spec

    # 12 patients, 4 per institution, 5 folds: a test fold of 3 may leave 1 of an institution.
    assert not combat_fits(12, 5, 4, small=True)
    assert combat_fits(24, 5, 8, small=True)
    assert combat_fits(48, 5, 16, small=False)
    small = default_spec("t", "a", patients=12, events=6, smallest_institution=4)
    assert small["pipeline"]["harmonise"] is None
    large = default_spec("t", "a", patients=48, events=29, smallest_institution=16)
    assert large["pipeline"]["harmonise"] == {"method": "combat"}
    assert "key_file" not in large
    assert default_spec("t", "a", key_file="k")["key_file"].endswith("/k")
