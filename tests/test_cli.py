"""The command line: every command listed with one line, version, errors as exit codes."""

import json
import subprocess
import sys

import pytest

from radflow import __version__
from radflow.cli import build_parser, main


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "radflow.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    commands = build_parser()._subparsers._group_actions[0].choices
    assert commands, "no sub-commands"
    for name in commands:
        line = next((s for s in out.splitlines() if s.strip().startswith(name + " ")), None)
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


def test_help_loads_no_heavy_module():
    code = (
        "import sys, radflow.cli as c; c.build_parser(); "
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'zarr', 'numba', 'SimpleITK') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "", f"radflow --help imports {out.strip()}"


def test_extract_from_store_folders_equals_files(tmp_path, capsys):
    import json

    import numpy as np
    import SimpleITK as sitk

    from radflow.pipeline.ingest import ingest_archive
    from radflow.store.catalogue import list_series

    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.normal(40, 20, (12, 24, 24)).astype(np.int16))
    image.SetSpacing((0.8, 0.8, 2.5))
    labels = np.zeros((12, 24, 24), np.uint8)
    labels[3:9, 6:18, 5:17] = 1
    labels[4:8, 8:12, 8:12] = 2
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    data = tmp_path / "archive" / "SITE" / "PAT" / "MR"
    data.mkdir(parents=True)
    sitk.WriteImage(image, str(data / "t2.nii.gz"))
    sitk.WriteImage(mask, str(data / "t2_label.nii.gz"))
    store = tmp_path / "store"
    ingest_archive(tmp_path / "archive", store, progress=False)
    (info,) = list_series(store)
    series = store / info.case / info.series
    params = tmp_path / "p.yaml"
    params.write_text(
        "setting:\n  binWidth: 10\n  label: 2\nfeatureClass:\n  firstorder:\n  glszm:\n  shape:\n"
    )

    def features(image_arg, mask_arg):
        assert (
            main(["extract", str(image_arg), str(mask_arg), "-p", str(params), "-f", "json"]) == 0
        )
        out = json.loads(capsys.readouterr().out)
        return {
            k: v
            for k, v in out.items()
            if not k.startswith("diagnostics_") and k not in ("Image", "Mask")
        }

    from_files = features(data / "t2.nii.gz", data / "t2_label.nii.gz")
    from_store = features(series, series / "labels" / info.label_keys[0])
    assert from_files and from_files.keys() == from_store.keys()
    for key, value in from_files.items():
        assert from_store[key] == pytest.approx(value, rel=1e-9), key
    # The store's root is no image: a one-line error naming it.
    assert main(["extract", str(store), str(store), "-p", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(store) in err and "\n" not in err


def _options(argv):
    """The parsed options of a command line (nothing run)."""
    return vars(build_parser().parse_args(argv))


def test_consistent_option_names_and_hidden_old_spellings():
    # -p/--params wherever a parameter file is given, -o/--out wherever an output is written.
    for argv in (
        ["extract", "I", "M", "-p", "P"],
        ["extract", "I", "M", "--params", "P"],
        ["extract", "I", "M", "--param", "P"],  # the old spelling, still accepted
        ["run", "S", "--params", "P", "--table", "T"],
        ["model", "stats", "T", "-o", "O", "--store", "S", "-p", "P"],
    ):
        assert _options(argv)["params"] == "P", argv
    for argv in (
        ["demo", "-o", "O"],
        ["demo-data", "O"],
        ["demo-data", "-o", "O"],
        ["extract", "I", "M", "--out", "O"],
        ["model", "fit", "SPEC", "--out", "O"],
        ["model", "predict", "M", "--table", "T", "-o", "O"],
        ["model", "stats", "T", "--out", "O"],
        ["report", "SPEC", "-o", "O"],
        ["report", "SPEC", "--out", "O"],
        ["report", "SPEC", "--output", "O"],  # the old spelling, still accepted
    ):
        out = _options(argv)
        assert str(out.get("out")) == "O" or str(out.get("folder")) == "O", argv
    # The old spellings work but are not advertised.
    for command, old in (("extract", "--param"), ("report", "--output")):
        help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
        assert old + " " not in help_text and old + "," not in help_text
        assert "-o OUT" in help_text or "-p PARAMS" in help_text


def test_required_output_counts_the_old_spelling(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["report", "SPEC"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "-o/--out" in err and "--output" not in err


def _two_label_store(tmp_path):
    import numpy as np
    import SimpleITK as sitk

    from radflow.io.records import LabelMap
    from radflow.store.write import write_series

    image = sitk.GetImageFromArray(np.zeros((4, 6, 6), np.int16))
    labels = np.zeros((4, 6, 6), np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    labels[1:3, 3:5, 3:5] = 2
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    store = tmp_path / "store"
    write_series(
        store,
        "CASE",
        "CT-1",
        image,
        [LabelMap("rtstruct", "labelmap", mask, {1: "tumour", 2: "lung"})],
        attrs={"modality": "CT"},
        fingerprint="f",
    )
    return store


def test_ls_shows_the_rois_inside_each_label_map(tmp_path, capsys):
    store = _two_label_store(tmp_path)
    assert main(["ls", str(store)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("CASE/CT-1\tCT\t4x6x6")
    assert line.endswith("ROIs: rtstruct (1=tumour, 2=lung)")


def test_ls_refuses_what_is_not_a_store(tmp_path, capsys):
    store = _two_label_store(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = {
        tmp_path / "empty": "not a radflow store",
        tmp_path / "file.txt": "is a file",
        store / "CASE" / "CT-1": "is a series or label folder",
        tmp_path / "missing": "no such store folder",
    }
    for path, reason in cases.items():
        assert main(["ls", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and str(path) in captured.err, captured.err
        assert reason in captured.err, captured.err


def test_run_refuses_a_table_that_is_a_file(tmp_path, capsys):
    # Checked before anything is planned or a cluster started: one line, exit 2.
    params = tmp_path / "p.yaml"
    params.write_text("setting:\n  binWidth: 25\n")
    (tmp_path / "table_file").write_text("not a folder")
    (tmp_path / "t.errors").write_text("not a folder")
    for table, culprit in (("table_file", "table_file"), ("t", "t.errors")):
        argv = ["run", str(tmp_path / "no_store"), "-p", str(params)]
        assert main([*argv, "--table", str(tmp_path / table)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{tmp_path / culprit}: is a file, not a folder" in err
    assert not (tmp_path / "t").exists()


def test_model_fit_given_a_folder(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.joblib").write_bytes(b"")
    assert main(["model", "fit", str(tmp_path / "out"), "-o", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder, not a study spec" in err
    assert "radflow model predict" in err  # a model folder: says what to do with it


def test_outputs_are_checked_before_the_work(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    image, mask = tmp_path / "missing.nii.gz", tmp_path / "missing_mask.nii.gz"
    assert main(["extract", str(image), str(mask), "-o", str(tmp_path / "folder")]) == 2
    assert "folder: is a folder" in capsys.readouterr().err


def test_the_table_api_refuses_a_table_that_is_a_file(tmp_path):
    # The same check where the table is opened, for callers of the API.
    from radflow.errors import InputError
    from radflow.pipeline.table import table_lock

    (tmp_path / "file").write_text("x")
    (tmp_path / "t.errors").write_text("x")
    for table, culprit in (("file", "file"), ("t", "t.errors")):
        with pytest.raises(InputError, match=f"{culprit}: is a file, not a folder"):
            with table_lock(tmp_path / table):
                pass
        assert not (tmp_path / "t").exists()


# -- the script's exit -------------------------------------------------------------------

#: ``console()`` as the ``radflow`` script runs it, with an ``atexit`` callback registered
#: before it (as coverage's is) and one registered while the command runs (as a library's).
_CONSOLE = r"""
import atexit, sys
from pathlib import Path
from radflow import cli
marks = Path(sys.argv.pop(1))
if sys.argv.pop(1) == "coverage":
    sys.modules.setdefault("coverage", type(sys)("coverage"))
atexit.register(lambda: marks.joinpath("before").write_text("ran"))
command = cli._cmd_extract
def extract(args):
    atexit.register(lambda: marks.joinpath("during").write_text("ran"))
    return command(args)
cli._cmd_extract = extract
cli.console()
"""


@pytest.mark.parametrize("coverage", [False, True])
def test_extract_script_ends_after_its_output(ibsi_dir, tmp_path, coverage):
    image, mask = _phantom(ibsi_dir)
    argv = ["extract", image, mask, "--format", "json"]
    run = [sys.executable, "-c", _CONSOLE, str(tmp_path), "coverage" if coverage else "no"]
    done = subprocess.run([*run, *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    # Printed in full (flushed before the quick exit), the same as main() prints.
    assert json.loads(done.stdout) == json.loads(_main_output(argv))
    # The command's own atexit callbacks ran; one registered before console() runs only when
    # the teardown is not skipped (under coverage, whose callback that is).
    assert (tmp_path / "during").read_text() == "ran"
    assert (tmp_path / "before").exists() == coverage
    # The exit status is the command's, and a failure still prints its one line.
    bad = subprocess.run(
        [*run, "extract", str(tmp_path / "missing.nii.gz"), mask],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"radflow extract: error: {tmp_path / 'missing.nii.gz'}: no such file"
    ]


def _main_output(argv):
    code = "import sys; from radflow.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout
