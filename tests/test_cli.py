"""The command line: every command listed with one line, version, errors as exit codes."""

import subprocess
import sys

import pytest

from radflow import __version__
from radflow.cli import build_parser, main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "radflow.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    commands = build_parser()._subparsers._group_actions[0].choices
    assert commands, "no sub-commands"
    for name in commands:
        line = next((l for l in out.splitlines() if l.strip().startswith(name + " ")), None)
        assert line is not None and len(line.split()) > 1, f"{name} has no help line"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"radflow {__version__}"


def test_input_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "missing"), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err and "not found" in err


def _phantom(ibsi_dir):
    d = ibsi_dir / "ibsi1" / "digital_phantom"
    return str(d / "image.nii.gz"), str(d / "mask.nii.gz")


def test_extract_json_matches_the_api(ibsi_dir, tmp_path, capsys):
    import json

    import radflow

    image, mask = _phantom(ibsi_dir)
    params = tmp_path / "p.yaml"
    params.write_text("setting:\n  binWidth: 1\nfeatureClass:\n  firstorder:\n  glcm:\n")
    assert main(["extract", image, mask, "-p", str(params), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = radflow.extract(image, mask, str(params))
    features = [k for k in expected if not k.startswith("diagnostics_")]
    assert features and all(printed[k] == pytest.approx(expected[k], nan_ok=True) for k in features)


def test_extract_ibsi_emits_submission_tags(ibsi_dir, tmp_path):
    import json

    image, mask = _phantom(ibsi_dir)
    out = tmp_path / "ibsi.json"
    assert main(["extract", image, mask, "--ibsi", "phantom", "-o", str(out)]) == 0
    tags = json.loads(out.read_text())
    # The IBSI reference value of the digital phantom's mesh volume is 556 (tolerance 4).
    assert tags["morph_volume"] == pytest.approx(556, abs=4)
    assert "cm_joint_max_3D_avg" in tags


def test_extract_batch_needs_an_output(tmp_path, capsys):
    batch = tmp_path / "batch.csv"
    batch.write_text("Image,Mask\n")
    assert main(["extract", str(batch)]) == 2
    assert "-o OUT.csv" in capsys.readouterr().err
