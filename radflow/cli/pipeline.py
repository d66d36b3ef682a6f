"""Sub-commands ``radflow run`` and ``radflow table compact|verify``.

:func:`add_commands` adds them to the sub-parsers of ``radflow/cli.py``. Each
command calls one public function and prints what it returned; exit codes:
0 success, 1 some tasks failed (``run``) or the table violates its invariants
(``table verify``); errors of input or settings exit 2 through ``cli.main``.
"""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _cmd_run(args) -> int:
    from radflow.pipeline.run import run

    summary = run(args.store, args.params, args.table, scheduler=args.scheduler,
                  workers=args.workers, cluster=args.cluster, cluster_config=args.cluster_config,
                  incremental=args.incremental, progress=not args.quiet, retries=args.retries)
    print(summary.report())
    return 1 if summary.failed else 0


def _cmd_compact(args) -> int:
    from radflow.pipeline.table import compact

    print(compact(args.table, max_rows=args.max_rows).report())
    return 0


def _cmd_verify(args) -> int:
    from radflow.pipeline.table import verify

    report = verify(args.table)
    print(report.report())
    return 0 if report.ok else 1


def add_commands(subparsers) -> None:
    """Add ``run`` and ``table`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "run", help="extract features of every ROI in a store into a Parquet feature table",
        description="Extract the features of every (series, ROI, image type) of STORE with the "
                    "PyRadiomics parameter file PARAMS on a Dask cluster, into the Hive-partitioned "
                    "Parquet table TABLE (failures in TABLE.errors). Exit code 1 if any task failed.")
    p.add_argument("store", metavar="STORE", help="volume store folder (radflow ingest)")
    p.add_argument("-p", "--params", required=True, metavar="PARAMS",
                   help="PyRadiomics parameter file (YAML/JSON)")
    p.add_argument("--table", required=True, metavar="TABLE",
                   help="feature table folder (created if absent)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler (tcp://host:8786); "
                   "default: $DASK_SCHEDULER_ADDRESS, else a local cluster")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="local cluster: worker processes (default: one per core); "
                   "--scheduler: wait for this many; --cluster: scale to this many")
    p.add_argument("--cluster", choices=("slurm", "kubernetes"),
                   help="start workers with dask-jobqueue (SLURM) or dask-kubernetes")
    p.add_argument("--cluster-config", metavar="FILE", help="YAML of the cluster's keyword arguments plus "
                   "scale/adapt (e.g. deploy/slurm.yaml)")
    p.add_argument("--incremental", action="store_true",
                   help="extract only new or changed series (and earlier failures)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="extra attempts of a task after an unexpected error (default 2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_run)

    p = subparsers.add_parser("table", help="maintain a feature table (compact, verify)")
    table = p.add_subparsers(dest="table_command", metavar="ACTION", required=True)
    c = table.add_parser("compact", help="merge small files; queries return the same rows")
    c.add_argument("table", metavar="TABLE", help="feature table folder")
    c.add_argument("--max-rows", type=_positive_int, default=100_000, metavar="N",
                   help="largest file in rows (default 100000)")
    c.set_defaults(func=_cmd_compact)
    v = table.add_parser("verify", help="check one row per (series, ROI, image type); exit 1 if not")
    v.add_argument("table", metavar="TABLE", help="feature table folder")
    v.set_defaults(func=_cmd_verify)
