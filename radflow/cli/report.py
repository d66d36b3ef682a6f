"""``radflow report``: the study report as one HTML file (a thin layer over ``build_report``)."""

from __future__ import annotations

import shlex
import sys

from radflow import report
from radflow.cli._options import add_out, check_output_file
from radflow.errors import SettingsError


def _cmd_report(args) -> int:
    source = args.model if args.model is not None else args.spec
    if source is None or (args.model is not None and args.spec is not None):
        raise SettingsError("give either SPEC.yaml or --model OUTDIR")
    check_output_file(args.out)
    out = report.build.build_report(
        source,
        args.out,
        store=args.store,
        table=args.table,
        progress=not args.quiet,
        command=" ".join(shlex.quote(a) for a in ["radflow", *sys.argv[1:]]),
    )
    print(out)
    return 0


def add_commands(subparsers) -> None:
    """Add ``report`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "report",
        help="write the study report (one self-contained HTML file)",
        description="Write the study report: cohort, segmentation QC gallery, feature heat-map "
        "and correlations, ICC, ComBat before/after, selected features, Kaplan-Meier "
        "curves of risk groups, validation metrics and time-dependent AUC. From a "
        "study spec (the model is fitted and validated first) or from the folder "
        "`radflow model fit -o OUTDIR` wrote.",
    )
    p.add_argument("spec", nargs="?", help="study spec (YAML), as for `radflow model fit`")
    p.add_argument("--model", metavar="OUTDIR", help="folder written by `radflow model fit -o`")
    add_out(p, "HTML file to write", required=True, aliases=("--output",))
    p.add_argument("--store", help="volume store: cohort by modality, QC gallery, ingest failures")
    p.add_argument(
        "--table", help="feature table whose errors flag failed cases (default: the spec's)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_report)
