"""The ``radflow`` command line: a thin layer over the public API.

Each sub-command parses its arguments, calls one API function and prints what
it returned. The packages are imported at the top but load their modules on
first use (:func:`radflow._lazy.attach`), so that ``radflow --help`` stays
instant and ``radflow extract IMAGE MASK`` loads no store or cluster library.
The store and pipeline commands are in :mod:`radflow.cli.pipeline`, the IBSI
ones in :mod:`radflow.cli.ibsi`, ``model`` in :mod:`radflow.cli.model` and
``report`` in :mod:`radflow.cli.report`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from radflow import demo, extraction, params, store
from radflow._atomic import atomic_file
from radflow._version import __version__
from radflow.cli import ibsi, model, pipeline, report
from radflow.errors import RadflowError, SettingsError

__all__ = ["build_parser", "main"]

log = logging.getLogger("radflow")


# -- commands ---------------------------------------------------------------


def _cmd_demo_data(args) -> int:
    return demo.synthetic.run(args)


def _cmd_params_check(args) -> int:
    checked = params.pyradiomics_params.load_params(args.file)
    print(f"{args.file}: valid, feature set {params.pyradiomics_params.params_hash(checked)}")
    print(json.dumps(params.pyradiomics_params.params_to_dict(checked), indent=2, sort_keys=True))
    return 0


def _cmd_extract(args) -> int:
    is_batch = args.mask is None
    if is_batch:
        if args.ibsi:
            raise SettingsError("--ibsi takes IMAGE MASK, not a batch file")
        if not args.out:
            raise SettingsError("batch mode writes a CSV: give -o OUT.csv")
        summary = extraction.batch.extract_batch(args.image, args.params, args.out, jobs=args.jobs)
        print(summary.report())
        return 1 if summary.failed else 0
    if args.ibsi:
        text = ibsi.extract_ibsi_output(
            args.image, args.mask, args.ibsi, output_format=args.format or "json", label=args.label
        )
        return _emit(text, args.out)
    # Store folders (STORE/<case>/<series>, .../labels/<key>) are read box-only; files
    # never load the store's libraries.
    image, mask = (
        store.read.open_path(p) if store.catalogue.is_store_path(p) else p
        for p in (args.image, args.mask)
    )
    result = extraction.extractor.extract(image, mask, args.params, label=args.label)
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
    result = extraction.extractor.warmup()
    print(
        f"compiled: {len(result)} features in {time.perf_counter() - started:.1f} s "
        "(numba cache written; later processes load it)"
    )
    return 0


def _cmd_demo(args) -> int:
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
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--patients", type=int, default=48, help="synthetic patients (default 48)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="Dask worker processes (default: one per core)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("demo-data", help="write a synthetic multi-institution archive")
    p.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    p.add_argument("--patients", type=int, default=12, help="number of patients (default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--institutions", type=int, default=3, help="number of institutions, 1 to 4")
    p.set_defaults(func=_cmd_demo_data)

    pipeline.add_store_commands(sub)

    p = sub.add_parser(
        "extract",
        help="features of one image/mask (PyRadiomics drop-in) or of a batch CSV",
        description="radflow extract IMAGE MASK -p PARAMS [--label N] [--format txt|csv|json] "
        "[-o FILE]; radflow extract BATCH.csv -p PARAMS -o OUT.csv [--jobs N]; "
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
    p.add_argument("-p", "--param", dest="params", help="PyRadiomics parameter file (YAML or JSON)")
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
    p.add_argument("-o", "--out", help="output file (default: standard output)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="batch rows extracted in parallel")
    ibsi.add_extract_option(p)
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
        "warmup", help="compile every numba kernel ahead (cold-start cost paid once)"
    )
    p.set_defaults(func=_cmd_warmup)

    ibsi.add_commands(sub)
    pipeline.add_commands(sub)
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed sets its loggers to INFO from dask's config when it is first
    # imported (later, lazily); its scheduler/nanny chatter only shows with -vv.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if args.verbose >= 2 else "warning")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except RadflowError as exc:
        print(f"radflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
