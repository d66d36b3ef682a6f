"""The ``radflow`` command line: a thin layer over the public API.

Each sub-command parses its arguments, calls one API function and prints what
it returned. The packages are imported at the top but load their modules on
first use (:func:`radflow._lazy.attach`), so that ``radflow --help`` stays
instant and ``radflow extract IMAGE MASK`` loads no store or cluster library.
The store and pipeline commands are in :mod:`radflow.cli.pipeline`, the IBSI
ones in :mod:`radflow.cli.ibsi`, ``habitats`` in :mod:`radflow.cli.habitats`, ``model`` in
:mod:`radflow.cli.model` and ``report`` in :mod:`radflow.cli.report`; shared option
spellings (``-p/--params``, ``-o/--out``) and output checks in :mod:`radflow.cli._options`.

Exit codes: 0 success; 1 the command ran but some inputs or tasks failed (it says
which); 2 a usage, input or settings error, reported on one line of standard error
naming the file and the fix (a missing or unreadable path included); 3 an internal
error, a radflow defect (one line; ``-v`` prints the traceback); 130 interrupted.
With ``-v`` every error also prints its traceback.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import json
import logging
import os
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

from radflow import demo, extraction, params, store
from radflow._atomic import atomic_file
from radflow._version import __version__
from radflow.cli import _options, habitats, ibsi, model, pipeline, report
from radflow.errors import RadflowError, SettingsError

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERNAL", "build_parser", "console", "main"]

#: Exit status: the command ran, some inputs or tasks failed.
EXIT_FAILED = 1
#: Exit status: usage, input or settings error (one line naming the input and the fix).
EXIT_INPUT = 2
#: Exit status: an unexpected exception, a radflow defect.
EXIT_INTERNAL = 3

log = logging.getLogger("radflow")


# -- commands ---------------------------------------------------------------


def _cmd_demo_data(args) -> int:
    if args.out is not None and args.folder is not None and args.out != args.folder:
        raise SettingsError(f"two output folders given: {args.folder} and -o {args.out}")
    args.out = args.out or args.folder
    if args.out is None:
        raise SettingsError("give the folder to write: radflow demo-data OUT (or -o OUT)")
    _options.check_output_folder(args.out, "archive folder")
    return demo.synthetic.run(args)


def _cmd_params_check(args) -> int:
    checked = params.pyradiomics_params.load_params(args.file)
    print(f"{args.file}: valid, feature set {params.pyradiomics_params.params_hash(checked)}")
    print(json.dumps(params.pyradiomics_params.params_to_dict(checked), indent=2, sort_keys=True))
    return 0


def _cmd_extract(args) -> int:
    is_batch = args.mask is None
    voxel_based = args.mode == "voxel"
    if args.out_dir is not None and not voxel_based:
        raise SettingsError("--out-dir is where --mode voxel writes its maps: add --mode voxel")
    if voxel_based and args.ibsi:
        raise SettingsError("--mode voxel is PyRadiomics' voxel mode; --ibsi has no voxel mode")
    if is_batch:
        if args.ibsi:
            raise SettingsError("--ibsi takes IMAGE MASK, not a batch file")
        if not args.out:
            raise SettingsError("batch mode writes a CSV: give -o OUT.csv")
        _options.check_output_file(args.out)
        summary = extraction.batch.extract_batch(
            args.image,
            args.params,
            args.out,
            jobs=args.jobs,
            voxel_based=voxel_based,
            out_dir=args.out_dir,
            progress=extraction.batch.progress_printer(sys.stderr),
        )
        print(summary.report())
        return 1 if summary.failed else 0
    if args.out:
        _options.check_output_file(args.out)
    if args.ibsi:
        text = ibsi.extract_ibsi_output(
            args.image, args.mask, args.ibsi, output_format=args.format or "json", label=args.label
        )
        return _emit(text, args.out)
    # Store folders (STORE/<case>/<series>, .../labels/<key>) are read box-only; files
    # never load the store's libraries.
    in_store = [store.catalogue.is_store_path(p) for p in (args.image, args.mask)]
    files = not any(in_store)
    # Files are read on a second core while this process imports and checks (GIL-bound);
    # reads the extraction did not take (it failed first) are dropped on the way out.
    reads = extraction.startup.prefetch(args.image, args.mask) if files else nullcontext()
    with reads:
        checked = params.pyradiomics_params.load_params(args.params)
        if files:  # numba's import and start (GIL-bound) on a second core while files are read
            extraction.startup.start_numba(checked, voxel_based=voxel_based)
        image, mask = (
            store.read.open_path(p) if is_store else p
            for p, is_store in zip((args.image, args.mask), in_store)
        )
        result = extraction.extractor.extract(
            image, mask, checked, label=args.label, voxel_based=voxel_based
        )
    if voxel_based:  # maps to Case-1_<key>.nrrd files, listed by their paths
        result = extraction.output.write_maps(result, args.out_dir, 1)
    case = {"Image": str(args.image), "Mask": str(args.mask)}
    return _emit(extraction.output.format_result(result, args.format or "txt", case=case), args.out)


def _emit(text: str, out: str | None) -> int:
    if out:
        with atomic_file(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_warmup(args) -> int:
    started = time.perf_counter()
    extraction.extractor.warmup(args.params, voxel_based=args.mode == "voxel")
    what = f"the kernels {args.params} enables" if args.params else "every kernel"
    if args.params and args.mode == "voxel":
        what += " in voxel mode"
    print(
        f"compiled {what} in {time.perf_counter() - started:.1f} s "
        "(numba cache written; later processes load it)"
    )
    return 0


def _cmd_demo(args) -> int:
    _options.check_output_folder(args.out, "demo folder")
    demo.scenario.run_demo(
        Path(args.out), patients=args.patients, seed=args.seed, workers=args.workers
    )
    return 0


# -- parser -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radflow",
        description="Distributed radiomics: archives -> OME-Zarr store -> features -> models.",
    )
    parser.add_argument("--version", action="version", version=f"radflow {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    p = sub.add_parser("demo", help="run the whole pipeline on a synthetic archive (make demo)")
    _options.add_out(p, "output folder (default: demo)", default="demo")
    p.add_argument(
        "--patients",
        type=_options.positive_int,
        default=48,
        help="synthetic patients (default 48)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=_options.positive_int,
        help="Dask worker processes (default: one per core)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("demo-data", help="write a synthetic multi-institution archive")
    p.add_argument(
        "folder",
        nargs="?",
        type=Path,
        metavar="OUT",
        help="folder to create (must not exist or be empty)",
    )
    _options.add_out(p, "the same as OUT")
    p.add_argument(
        "--patients",
        type=_options.positive_int,
        default=12,
        help="number of patients (default 12)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--institutions", type=int, default=3, help="number of institutions, 1 to 4")
    p.set_defaults(func=_cmd_demo_data)

    pipeline.add_store_commands(sub)

    p = sub.add_parser(
        "extract",
        help="features of one image/mask (PyRadiomics drop-in) or of a batch CSV",
        description="radflow extract IMAGE MASK -p PARAMS [--label N] [--format txt|csv|json] "
        "[-o FILE]; radflow extract BATCH.csv -p PARAMS -o OUT.csv [--jobs N]; "
        "radflow extract IMAGE MASK -p PARAMS --mode voxel [--out-dir DIR] (feature maps); "
        "radflow extract IMAGE MASK --ibsi {phantom,A,B,C,D,E,FILE}",
    )
    p.add_argument(
        "image",
        help="image file (NIfTI, NRRD, MetaImage), store series folder "
        "(STORE/<case>/<series>) or batch CSV (Image, Mask[, Label])",
    )
    p.add_argument(
        "mask",
        nargs="?",
        help="mask file or store label folder (STORE/<case>/<series>/labels/<key>); "
        "omit for a batch CSV",
    )
    _options.add_params(p, aliases=("--param",))
    p.add_argument(
        "-l",
        "--label",
        type=ibsi.label_argument,
        help="label value of the ROI (default: the setting, 1); with --ibsi, 'all' merges "
        "every label",
    )
    p.add_argument(
        "-f",
        "--format",
        choices=("txt", "csv", "json"),
        help="output format (default txt; json with --ibsi)",
    )
    _options.add_out(p, "output file (default: standard output)")
    p.add_argument(
        "-j",
        "--jobs",
        type=_options.positive_int,
        default=1,
        help="batch rows extracted in parallel: a pool of N worker processes started once",
    )
    p.add_argument(
        "-m",
        "--mode",
        choices=("segment", "voxel"),
        default="segment",
        help="segment: one value per feature (default); voxel: a feature map per feature "
        "(PyRadiomics' voxel mode, voxelSetting), written as Case-<n>_<key>.nrrd",
    )
    p.add_argument(
        "--out-dir",
        metavar="DIR",
        help="with --mode voxel: folder of the maps (default: the current folder)",
    )
    ibsi.add_extract_option(p)
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
        "warmup",
        help="compile the numba kernels ahead (cold-start cost paid once per machine)",
        description="radflow warmup [-p PARAMS [--mode voxel]]: compile every kernel, or only "
        "those PARAMS enables, into numba's cache (NUMBA_CACHE_DIR, else beside the installed "
        "package); later processes load them instead of compiling",
    )
    _options.add_params(p)
    p.add_argument(
        "-m",
        "--mode",
        choices=("segment", "voxel"),
        default="segment",
        help="with -p: the kernels of segment mode (default) or of voxel mode",
    )
    p.set_defaults(func=_cmd_warmup)

    ibsi.add_commands(sub)
    pipeline.add_commands(sub)
    habitats.add_commands(sub)
    model.add_commands(sub)
    report.add_commands(sub)

    p = sub.add_parser("params", help="check a PyRadiomics parameter file (params check FILE)")
    params_sub = p.add_subparsers(dest="params_command", metavar="ACTION", required=True)
    q = params_sub.add_parser(
        "check", help="validate a parameter file and print its normalised form"
    )
    q.add_argument("file", help="PyRadiomics YAML or JSON parameter file")
    q.set_defaults(func=_cmd_params_check)
    return parser


def console() -> None:
    """The ``radflow`` script and ``python -m radflow.cli``: :func:`main`, then exit.

    After ``radflow extract`` the process ends without the interpreter's teardown (freeing
    every module, then SimpleITK's and NumPy's C++ and C globals): about 30 ms, a sixth of
    a small case's whole command, spent on nothing a user sees. It ends the way a normal
    exit does up to that step: the command has returned (its outputs written and closed),
    Python has joined the threads still running and run the ``atexit`` callbacks registered
    while the command ran; then logging is shut down and the standard streams flushed
    before :func:`os._exit`. Not done under coverage measurement (its ``atexit`` callback
    is registered before this one and would be skipped) or when flushing fails (the normal
    exit then reports it).
    """
    status: list[int] = []
    atexit.register(_exit_now, status)  # registered first, so it runs after the command's own
    command, code = _run(None)  # the arguments of sys.argv
    if command in _QUICK_EXIT and "coverage" not in sys.modules:
        status.append(code)
    sys.exit(code)


#: Commands after which :func:`console` skips the interpreter's teardown.
_QUICK_EXIT = frozenset({"extract"})


def _exit_now(status: list[int]) -> None:
    if not status:
        return
    logging.shutdown()  # registered before _exit_now (when logging was imported): not run yet
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(status[0])


def main(argv: list[str] | None = None) -> int:
    """Run one ``radflow`` command; return its exit status (see the module docstring)."""
    return _run(argv)[1]


def _run(argv: list[str] | None) -> tuple[str | None, int]:
    """(the command's name, or None when none was given; its exit status)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed sets its loggers to INFO from dask's config when it is first
    # imported (later, lazily); its scheduler/nanny chatter only shows with -vv.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if args.verbose >= 2 else "warning")
    if not getattr(args, "func", None):
        parser.print_help()
        return None, EXIT_INPUT
    return args.command, _call(args)


def _call(args) -> int:
    """Run the parsed command; errors become their one line and exit status."""
    name = _command_name(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RadflowError as exc:
        return _fail(args, f"radflow {name}: error: {exc}", EXIT_INPUT)
    except OSError as exc:
        return _fail(args, f"radflow {name}: error: {_describe_os_error(exc)}", EXIT_INPUT)
    except Exception as exc:
        # A defect: every expected failure is a RadflowError naming its input.
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        hint = "" if args.verbose else "; run again with -v for the traceback"
        return _fail(
            args,
            f"radflow {name}: internal error ({what}), please report it{hint}",
            EXIT_INTERNAL,
        )


def _command_name(args) -> str:
    """``model fit``, ``table verify``...: the command and its action, for error lines."""
    parts = [args.command]
    for dest in ("model_command", "table_command", "params_command", "habitats_command"):
        if getattr(args, dest, None):
            parts.append(getattr(args, dest))
    return " ".join(parts)


def _fail(args, line: str, code: int) -> int:
    if args.verbose:
        traceback.print_exc()
    print(" ".join(line.split()), file=sys.stderr)  # one line, whatever the message holds
    return code


#: What to say about an OSError, by errno: the path comes first, then this.
_OS_REASONS = {
    errno.ENOENT: "no such file or folder: check the path",
    errno.EISDIR: "is a folder where a file is expected: give the file",
    errno.ENOTDIR: "a part of this path is a file, not a folder: check the path",
    errno.EACCES: "permission denied: check the path and its permissions",
    errno.EPERM: "operation not permitted: check the path and its permissions",
    errno.EEXIST: "already exists: choose another path or remove it",
    errno.ENOSPC: "no space left on the device: free space or choose another place",
    errno.EROFS: "read-only file system: choose a writable place",
    errno.ENOTEMPTY: "folder is not empty: choose another path or remove it",
}


def _describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the path(s) it names, then the reason and the fix."""
    reason = _OS_REASONS.get(exc.errno) or (exc.strerror or str(exc) or type(exc).__name__)
    if exc.filename is None:
        return reason if exc.strerror else f"{type(exc).__name__}: {reason}"
    where = str(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    return f"{where}: {reason}"
