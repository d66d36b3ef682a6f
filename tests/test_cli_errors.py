"""Every command, given a wrong path or a malformed file, fails on one line: exit 2, no traceback.

The commands are listed from :func:`radflow.cli.build_parser`, so that a new command cannot be
forgotten: it needs its cases below (or a place in :data:`NO_PATH_ARGUMENT`). Each case runs in
a fresh process, as a user would run it; the processes run a few at a time. No case may start a
Dask cluster: commands that would start one must fail on the path first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from radflow.cli import EXIT_INPUT, EXIT_INTERNAL, build_parser, main

#: Commands that take no path at all, and why they are exempt.
NO_PATH_ARGUMENT = {
    "features": "prints the feature list; takes no path",
}

#: Garbage files: bytes that are no text, no YAML, no CSV, no gzip, no pickle.
GARBAGE = bytes(range(256))[::-1] * 3


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every runnable command path: ("ls",), ("model", "fit"), ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix)
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_commands(sub, (*prefix, name))


def _cases(d) -> dict[str, dict[str, list[str]]]:
    """{command: {case: argv}}: a wrong path and a malformed file for each command.

    ``d`` holds ``missing`` (no such path), ``yaml``, ``csv``, ``nii``, ``joblib``
    (garbage bytes with those extensions), ``params`` (a valid parameter file) and ``out``
    (a folder for outputs).
    """
    missing, out = d["missing"], d["out"]
    return {
        "demo": {
            "wrong path": ["-o", f"{d['yaml']}/demo"],  # below a file
            "malformed": ["-o", d["yaml"]],  # a file where the demo folder goes
        },
        "demo-data": {
            "wrong path": [f"{d['yaml']}/archive"],
            "malformed": [d["yaml"]],
        },
        "ingest": {
            "wrong path": [missing, "--store", f"{out}/store1"],
            "malformed": [d["csv"], "--store", f"{out}/store2"],
        },
        "ls": {"wrong path": [missing], "malformed": [d["yaml"]]},
        "segment": {
            "wrong path": [missing, "--case", "C", "--series", "S", "--method", "suv"],
            "malformed": [d["yaml"], "--case", "C", "--series", "S", "--method", "suv"],
        },
        "extract": {
            "wrong path": [missing, missing, "-p", d["params"]],
            "malformed": [d["nii"], d["nii"], "-p", d["params"]],
            "malformed params": [d["nii"], d["nii"], "-p", d["yaml"]],
            "malformed batch": [d["csv"], "-p", d["params"], "-o", f"{out}/batch.csv"],
        },
        "ibsi-check": {"wrong path": [missing], "malformed": [d["yaml"]]},
        "run": {
            "wrong path": [missing, "-p", d["params"], "--table", f"{out}/table1"],
            "malformed": [out, "-p", d["yaml"], "--table", f"{out}/table2"],
            "table is a file": [out, "-p", d["params"], "--table", d["yaml"]],
        },
        "maps": {
            "wrong path": [missing, "-p", d["params"]],
            "malformed": [out, "-p", d["yaml"]],
            "a file": [d["yaml"], "-p", d["params"]],
        },
        "habitats fit": {
            "wrong path": [missing, "--roi", "GTV", "--channels", "CT", "-o", f"{out}/h1.joblib"],
            "malformed": [d["yaml"], "--roi", "GTV", "--channels", "CT", "-o", f"{out}/h2.joblib"],
            "model is a folder": [out, "--roi", "GTV", "--channels", "CT", "-o", out],
        },
        "habitats apply": {
            "wrong path": [missing, d["joblib"]],
            "malformed": [out, d["joblib"]],
            "no model": [out, missing],
        },
        "table compact": {"wrong path": [missing], "malformed": [d["yaml"]]},
        "table verify": {"wrong path": [missing], "malformed": [d["yaml"]]},
        "model fit": {
            "wrong path": [missing, "-o", f"{out}/model1"],
            "malformed": [d["yaml"], "-o", f"{out}/model2"],
            "a folder": [out, "-o", f"{out}/model3"],
        },
        "model predict": {
            "wrong path": [missing, "--table", out, "-o", f"{out}/p1.csv"],
            "malformed": [d["joblib"], "--table", out, "-o", f"{out}/p2.csv"],
        },
        "model stats": {
            "wrong path": [missing, "-o", f"{out}/stats1"],
            "malformed": [d["yaml"], "-o", f"{out}/stats2"],
        },
        "report": {
            "wrong path": [missing, "-o", f"{out}/r1.html"],
            "malformed": [d["yaml"], "-o", f"{out}/r2.html"],
        },
        "params check": {"wrong path": [missing], "malformed": [d["yaml"]]},
        "warmup": {"wrong path": ["-p", missing], "malformed": ["-p", d["yaml"]]},
    }


def _placeholders():
    names = ("missing", "yaml", "csv", "nii", "joblib", "params", "out")
    return {name: name for name in names}


CASES = _cases(_placeholders())
CASE_IDS = [(command, case) for command, cases in CASES.items() for case in cases]


def test_every_command_has_error_cases():
    commands = set(_leaf_commands(build_parser()))
    assert commands, "no commands found"
    assert not (set(CASES) & set(NO_PATH_ARGUMENT))
    forgotten = commands - set(CASES) - set(NO_PATH_ARGUMENT)
    assert not forgotten, f"commands without error cases in {__file__}: {sorted(forgotten)}"
    gone = (set(CASES) | set(NO_PATH_ARGUMENT)) - commands
    assert not gone, f"cases of commands that no longer exist: {sorted(gone)}"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case at once (a few processes at a time); {(command, case): process}."""
    root = tmp_path_factory.mktemp("cli_errors")
    files = {}
    for name, suffix in (("yaml", ".yaml"), ("csv", ".csv"), ("nii", ".nii.gz"), ("joblib", "")):
        path = root / f"garbage{suffix}"
        if name == "joblib":
            path = root / "model.joblib"
        path.write_bytes(GARBAGE)
        files[name] = str(path)
    params = root / "params.yaml"
    params.write_text("setting:\n  binWidth: 25\n")
    out = root / "out"
    out.mkdir()
    paths = {**files, "missing": str(root / "no_such_path"), "params": str(params), "out": str(out)}
    cases = _cases(paths)
    env = {
        **os.environ,
        "HOME": str(root),  # no per-user key, config or cache of the user is touched
        "XDG_CONFIG_HOME": str(root / "config"),
        "RADFLOW_PSEUDONYM_KEY": "cli-errors-test-key-0123456789",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("DASK_SCHEDULER_ADDRESS", None)

    def run(item):
        (command, case), argv = item
        return (command, case), subprocess.run(
            [sys.executable, "-m", "radflow.cli", *command.split(), *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=120,
        )

    items = [((c, k), argv) for c, by_case in cases.items() for k, argv in by_case.items()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, items))


@pytest.mark.parametrize(("command", "case"), CASE_IDS, ids=[f"{c}: {k}" for c, k in CASE_IDS])
def test_fails_on_one_line_with_exit_2(results, command, case):
    done = results[(command, case)]
    err = done.stderr
    assert "Traceback" not in err + done.stdout, err
    assert done.returncode == EXIT_INPUT, f"exit {done.returncode}: {err}"
    lines = err.splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{err}"
    assert lines[0].startswith(f"radflow {command}: error: "), lines[0]


# -- what main() makes of exceptions that are not radflow errors ------------------------------


def _raising(exc):
    def command(args):
        raise exc

    return command


def _main_with(monkeypatch, exc, argv):
    parser = build_parser()
    real_parse = parser.parse_args

    def parse_args(args=None):
        parsed = real_parse(args)
        parsed.func = _raising(exc)
        return parsed

    monkeypatch.setattr(parser, "parse_args", parse_args)
    monkeypatch.setattr("radflow.cli.build_parser", lambda: parser)
    return main(argv)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (FileNotFoundError(2, "No such file or directory", "/data/ct.nii.gz"), "no such file"),
        (IsADirectoryError(21, "Is a directory", "/data/folder"), "is a folder"),
        (NotADirectoryError(20, "Not a directory", "/data/f/x"), "is a file, not a folder"),
        (PermissionError(13, "Permission denied", "/data/locked"), "permission denied"),
    ],
)
def test_os_errors_name_the_path(monkeypatch, capsys, exc, expected):
    assert _main_with(monkeypatch, exc, ["ls", "STORE"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"radflow ls: error: {exc.filename}: ") and expected in err


def test_unexpected_error_is_one_line_and_verbose_shows_the_traceback(monkeypatch, capsys):
    exc = RuntimeError("boom\nsecond line")
    assert _main_with(monkeypatch, exc, ["ls", "STORE"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "internal error (RuntimeError: boom second line)" in err and "-v" in err
    assert _main_with(monkeypatch, exc, ["-v", "ls", "STORE"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert err.splitlines()[-1].startswith("radflow ls: internal error")
