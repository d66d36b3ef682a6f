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
