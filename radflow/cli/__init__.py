"""The ``radflow`` command line: a thin layer over the public API.

Each sub-command parses its arguments, calls one API function and prints what
it returned. Heavy modules are imported inside the command, so that
``radflow --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from radflow._version import __version__
from radflow.errors import RadflowError, SettingsError

log = logging.getLogger("radflow")


# -- commands ---------------------------------------------------------------


def _cmd_demo_data(args) -> int:
    from radflow.demo.synthetic import run

    return run(args)


def _cmd_ingest(args) -> int:
    from radflow.pipeline.ingest import ingest_archive

    summary = ingest_archive(
        args.archive, args.store, key_file=args.key_file, jobs=args.jobs, force=args.force
    )
    print(summary.report())
    return 1 if summary.failed and args.strict else 0


def _cmd_ls(args) -> int:
    from radflow.store.volume import list_series

    for info in list_series(args.store):
        shape = "x".join(str(n) for n in info.shape_zyx)
        spacing = "x".join(f"{s:g}" for s in info.spacing_zyx)
        labels = ",".join(info.label_keys) or "-"
        print(f"{info.case}/{info.series}\t{info.modality}\t{shape} @ {spacing} mm\tROIs: {labels}")
    return 0


def _cmd_segment(args) -> int:
    from radflow.pipeline.segment import segment_series

    key = segment_series(
        args.store,
        args.case,
        args.series,
        method=args.method,
        low=args.low,
        high=args.high,
        threshold_suv=args.threshold,
        fraction=args.fraction,
        within=args.within,
        box=args.box,
        seed=args.seed,
        keep=args.keep,
        min_size_mm3=args.min_size_mm3,
        name=args.name,
    )
    print(f"label map written: {args.case}/{args.series}/labels/{key}")
    return 0


def _cmd_params_check(args) -> int:
    import json

    from radflow.params.pyradiomics_params import load_params, params_hash, params_to_dict

    params = load_params(args.file)
    print(f"{args.file}: valid, feature set {params_hash(params)}")
    print(json.dumps(params_to_dict(params), indent=2, sort_keys=True))
    return 0


def _cmd_extract(args) -> int:
    is_batch = args.mask is None
    if is_batch:
        if args.ibsi:
            raise SettingsError("--ibsi takes IMAGE MASK, not a batch file")
        if not args.out:
            raise SettingsError("batch mode writes a CSV: give -o OUT.csv")
        from radflow.extraction.batch import extract_batch

        summary = extract_batch(args.image, args.params, args.out, jobs=args.jobs)
        print(summary.report())
        return 1 if summary.failed else 0
    if args.ibsi:
        from radflow.cli.ibsi import extract_ibsi_output

        text = extract_ibsi_output(args.image, args.mask, args.ibsi,
                                   output_format=args.format or "json", label=args.label)
        return _emit(text, args.out)
    from radflow.extraction.extractor import extract
    from radflow.extraction.output import format_result
    from radflow.store.volume import is_store_path, open_path

    # Store folders (STORE/<case>/<series>, .../labels/<key>) are read box-only.
    image, mask = (open_path(p) if is_store_path(p) else p for p in (args.image, args.mask))
    result = extract(image, mask, args.params, label=args.label)
    case = {"Image": str(args.image), "Mask": str(args.mask)}
    return _emit(format_result(result, args.format or "txt", case=case), args.out)


def _emit(text: str, out: str | None) -> int:
    if out:
        from radflow._atomic import atomic_file

        with atomic_file(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_warmup(args) -> int:
    import time

    from radflow.extraction.extractor import warmup

    started = time.perf_counter()
    result = warmup()
    print(f"compiled: {len(result)} features in {time.perf_counter() - started:.1f} s "
          "(numba cache written; later processes load it)")
    return 0


def _cmd_demo(args) -> int:
    from radflow.demo.scenario import run_demo

    run_demo(Path(args.out), patients=args.patients, seed=args.seed, workers=args.workers)
    return 0


# -- parser -----------------------------------------------------------------


def _parse_box(text: str):
    try:
        return tuple(tuple(int(v) for v in part.split(":")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected z0:z1,y0:y1,x0:x1") from None


def _parse_point(text: str):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected z,y,x voxel indices") from None


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

    p = sub.add_parser("ingest", help="convert an archive into the OME-Zarr volume store")
    p.add_argument("archive", help="archive folder (<institution>/<patient>/...) or CSV manifest")
    p.add_argument("--store", required=True, help="store folder (created if absent)")
    p.add_argument("--key-file", help="pseudonymisation key file (default: $RADFLOW_PSEUDONYM_KEY, "
                   "$RADFLOW_PSEUDONYM_KEY_FILE, then ~/.config/radflow/pseudonym.key)")
    p.add_argument("--jobs", type=int, default=1, help="patients ingested in parallel (processes)")
    p.add_argument("--force", action="store_true", help="re-ingest series whose fingerprint is unchanged")
    p.add_argument("--strict", action="store_true", help="exit 1 if any input failed")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("ls", help="list the series and ROIs of a store")
    p.add_argument("store")
    p.set_defaults(func=_cmd_ls)

    p = sub.add_parser("segment", help="threshold segmentation (CT HU window, PET SUV) into a label map")
    p.add_argument("store")
    p.add_argument("--case", required=True)
    p.add_argument("--series", required=True)
    p.add_argument("--method", required=True, choices=("hu", "suv", "suv-relative"))
    p.add_argument("--low", type=float, help="hu: lower bound (HU)")
    p.add_argument("--high", type=float, help="hu: upper bound (HU)")
    p.add_argument("--threshold", type=float, default=2.5, help="suv: absolute threshold (SUV)")
    p.add_argument("--fraction", type=float, default=0.4, help="suv-relative: fraction of SUVmax")
    p.add_argument("--within", help="restrict to this existing ROI key (seed region)")
    p.add_argument("--box", type=_parse_box, help="restrict to a box z0:z1,y0:y1,x0:x1 (voxels)")
    p.add_argument("--seed", type=_parse_point, help="keep the component containing z,y,x")
    p.add_argument("--keep", choices=("largest", "seed", "all"),
                   help="components to keep (default: the seed's if --seed, else the largest)")
    p.add_argument("--min-size-mm3", type=float, default=0.0)
    p.add_argument("--name", default=None, help="ROI name of the new label map")
    p.set_defaults(func=_cmd_segment)
    p = sub.add_parser(
        "extract",
        help="features of one image/mask (PyRadiomics drop-in) or of a batch CSV",
        description="radflow extract IMAGE MASK -p PARAMS [--label N] [--format txt|csv|json] "
                    "[-o FILE]; radflow extract BATCH.csv -p PARAMS -o OUT.csv [--jobs N]; "
                    "radflow extract IMAGE MASK --ibsi {phantom,A,B,C,D,E,FILE}",
    )
    p.add_argument("image", help="image file (NIfTI, NRRD, MetaImage), store series folder "
                   "(STORE/<case>/<series>) or batch CSV (Image, Mask[, Label])")
    p.add_argument("mask", nargs="?", help="mask file or store label folder (STORE/<case>/<series>/labels/<key>); "
                   "omit for a batch CSV")
    p.add_argument("-p", "--param", dest="params", help="PyRadiomics parameter file (YAML or JSON)")
    p.add_argument("-l", "--label", type=int, help="label value of the ROI (default: the setting, 1)")
    p.add_argument("-f", "--format", choices=("txt", "csv", "json"),
                   help="output format (default txt; json with --ibsi)")
    p.add_argument("-o", "--out", help="output file (default: standard output)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="batch rows extracted in parallel")
    from radflow.cli.ibsi import add_commands as _ibsi_commands
    from radflow.cli.ibsi import add_extract_option

    add_extract_option(p)
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("warmup", help="compile every numba kernel ahead (cold-start cost paid once)")
    p.set_defaults(func=_cmd_warmup)

    _ibsi_commands(sub)

    from radflow.cli.model import add_commands as _model_commands
    from radflow.cli.pipeline import add_commands as _pipeline_commands
    from radflow.cli.report import add_commands as _report_commands

    _pipeline_commands(sub)
    _model_commands(sub)

    _report_commands(sub)

    p = sub.add_parser("params", help="check a PyRadiomics parameter file (params check FILE)")
    params_sub = p.add_subparsers(dest="params_command", metavar="ACTION", required=True)
    q = params_sub.add_parser("check", help="validate a parameter file and print its normalised form")
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

