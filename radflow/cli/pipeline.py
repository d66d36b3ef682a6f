"""Sub-commands of the store and the pipeline: ``radflow ingest``, ``ls``, ``segment``, ``run``,
``maps`` and ``table compact|verify``.

:func:`add_store_commands` and :func:`add_commands` add them to the sub-parsers of
:mod:`radflow.cli`. Each command calls one public function and prints what it returned;
exit codes: 0 success, 1 some inputs (``ingest --strict``) or tasks (``run``: new failures only,
not known ones) failed or the
table violates its invariants (``table verify``); errors of input or settings exit 2
through ``cli.main``. Paths are checked before any work starts, so that a wrong path
fails at once (``run`` before it starts a cluster, ``ingest`` before it loads a key).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from radflow import pipeline, store
from radflow.cli._options import add_params, check_output_folder, positive_int
from radflow.errors import InputError

__all__ = ["add_commands", "add_store_commands", "parse_fraction"]


def parse_fraction(text: str) -> float:
    """``--fraction`` of SUVmax: ``0.4``, ``40`` and ``40%`` all mean 40 %.

    A number in (0, 1] is a fraction, one in (1, 100] a percentage (so ``1``
    is 100 %, SUVmax itself); a trailing ``%`` always means a percentage.
    """
    number = text.strip()
    percent = number.endswith("%")
    try:
        value = float(number.removesuffix("%").strip())
    except ValueError:
        value = math.nan
    if percent or 1.0 < value <= 100.0:
        value /= 100.0
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a fraction of SUVmax in (0, 1] or a percentage in (0, 100], "
            "e.g. 0.4, 40 or 40%"
        )
    return value


def _parse_box(text: str):
    try:
        box = tuple(tuple(int(v) for v in part.split(":")) for part in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 3 or any(len(pair) != 2 for pair in box):
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected z0:z1,y0:y1,x0:x1")
    return box


def _parse_point(text: str):
    try:
        point = tuple(int(v) for v in text.split(","))
    except ValueError:
        point = ()
    if len(point) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected z,y,x voxel indices")
    return point


def _cmd_ingest(args) -> int:
    # Checked before the pseudonym key is loaded (or created) and the store made.
    if not Path(args.archive).exists():
        raise InputError(args.archive, "archive not found (expected a folder or a CSV manifest)")
    check_output_folder(args.store, "store folder")
    summary = pipeline.ingest.ingest_archive(
        args.archive,
        args.store,
        key_file=args.key_file,
        jobs=args.jobs,
        force=args.force,
        progress=not args.quiet,
    )
    print(summary.report())
    return 1 if summary.failed and args.strict else 0


def _format_rois(rois: dict[int, str]) -> str:
    return ", ".join(f"{value}={name}" for value, name in rois.items()) or "no ROI"


def _cmd_ls(args) -> int:
    root = Path(args.store)
    if root.exists() and not root.is_dir():
        raise InputError(root, "is a file, not a store folder")
    if store.catalogue.is_store_path(root):
        raise InputError(
            root, "is a series or label folder, not a store: give the folder above <case>/<series>"
        )
    found = store.catalogue.list_series(root)
    if not found and not (root / pipeline.ingest.STORE_INFO).is_file():
        raise InputError(
            root,
            "not a radflow store (no series in it): give the folder that "
            "`radflow ingest ARCHIVE --store STORE` wrote",
        )
    if not found:
        print(f"{root}: empty store (no series)")
    for info in found:
        shape = "x".join(str(n) for n in info.shape_zyx)
        spacing = "x".join(f"{s:g}" for s in info.spacing_zyx)
        rois = store.catalogue.label_rois(root, info.case, info.series)
        labels = "; ".join(f"{key} ({_format_rois(r)})" for key, r in rois.items()) or "-"
        print(f"{info.case}/{info.series}\t{info.modality}\t{shape} @ {spacing} mm\tROIs: {labels}")
        for feature_set, rois in store.catalogue.series_maps(root, info.case, info.series).items():
            for roi, names in rois.items():
                print(f"  maps {feature_set}/{roi}: {len(names)} ({', '.join(names[:3])}, ...)")
    return 0


def _cmd_segment(args) -> int:
    result = pipeline.segment.segment_series(
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
    print(result.report(args.case, args.series))
    return 0


def _check_table_paths(table: str) -> None:
    """The table and its errors table must be folders (or not exist yet)."""
    check_output_folder(table, "feature table folder")
    check_output_folder(pipeline.table.errors_path(table), "errors table folder")


def _cmd_run(args) -> int:
    _check_table_paths(args.table)
    summary = pipeline.run.run(args.store, args.params, args.table, **_cluster_arguments(args))
    return _report_failures(summary)


def _existing_store(path: str) -> Path:
    """A store folder that exists (checked before a cluster starts)."""
    root = Path(path)
    if not root.is_dir():
        reason = "is a file, not" if root.exists() else "no such"
        raise InputError(root, f"{reason} store folder (written by `radflow ingest`)")
    return root


def _cmd_maps(args) -> int:
    _existing_store(args.store)
    summary = pipeline.maps.maps(args.store, args.params, **_cluster_arguments(args))
    return _report_failures(summary)


def _existing_table(table: str) -> Path:
    path = Path(table)
    if not path.is_dir():
        reason = "is a file, not" if path.exists() else "no such"
        raise InputError(path, f"{reason} feature table folder (written by `radflow run`)")
    return path


def _cmd_compact(args) -> int:
    _existing_table(args.table)
    _check_table_paths(args.table)
    print(pipeline.table.compact(args.table, max_rows=args.max_rows).report())
    return 0


def _cmd_verify(args) -> int:
    _existing_table(args.table)
    report = pipeline.table.verify(args.table)
    print(report.report())
    return 0 if report.ok else 1


def _add_cluster_options(p, incremental: str) -> None:
    """The options of the commands that run on a Dask cluster (run, maps, habitats apply).

    Where to run (``--scheduler``, ``--workers``, ``--cluster``, ``--cluster-config``),
    ``--incremental`` (``incremental``: its help), ``--retries`` and ``-q/--quiet``; their
    values are the keyword arguments :func:`_cluster_arguments` gives the command's function.
    """
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://host:8786); "
        "default: $DASK_SCHEDULER_ADDRESS, else a local cluster",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="local cluster: worker processes (default: one per core); "
        "--scheduler: wait for this many; --cluster: scale to this many",
    )
    p.add_argument(
        "--cluster",
        choices=("slurm", "kubernetes"),
        help="start workers with dask-jobqueue (SLURM) or dask-kubernetes",
    )
    p.add_argument(
        "--cluster-config",
        metavar="FILE",
        help="YAML of the cluster's keyword arguments plus scale/adapt (e.g. deploy/slurm.yaml)",
    )
    p.add_argument("--incremental", action="store_true", help=incremental)
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="extra attempts of a task after an unexpected error (default 2)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _cluster_arguments(args) -> dict:
    """The keyword arguments of :func:`_add_cluster_options`' options."""
    return {
        "scheduler": args.scheduler,
        "workers": args.workers,
        "cluster": args.cluster,
        "cluster_config": args.cluster_config,
        "incremental": args.incremental,
        "progress": not args.quiet,
        "retries": args.retries,
    }


def _report_failures(summary) -> int:
    """Print a cluster command's summary; its exit code: 1 on new failures."""
    print(summary.report())
    return 1 if summary.new_failures else 0  # known failures are listed, not alarmed on


def add_store_commands(subparsers) -> None:
    """Add ``ingest``, ``ls`` and ``segment`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("ingest", help="convert an archive into the OME-Zarr volume store")
    p.add_argument("archive", help="archive folder (<institution>/<patient>/...) or CSV manifest")
    p.add_argument("--store", required=True, help="store folder (created if absent)")
    p.add_argument(
        "--key-file",
        help="pseudonymisation key file (default: $RADFLOW_PSEUDONYM_KEY, "
        "$RADFLOW_PSEUDONYM_KEY_FILE, then ~/.config/radflow/pseudonym.key)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=1,
        help="patients ingested in parallel (processes)",
    )
    p.add_argument(
        "--force", action="store_true", help="re-ingest series whose fingerprint is unchanged"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if any input failed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_ingest)

    p = subparsers.add_parser(
        "ls",
        help="list the series of a store, their label maps and the ROIs inside each",
        description="One line per series: case/series, modality, shape @ spacing, then each "
        "label map as KEY (VALUE=NAME, ...). Exit 2 if STORE is not a radflow store.",
    )
    p.add_argument("store", metavar="STORE")
    p.set_defaults(func=_cmd_ls)

    p = subparsers.add_parser(
        "segment", help="threshold segmentation (CT HU window, PET SUV) into a label map"
    )
    p.add_argument("store")
    p.add_argument("--case", required=True)
    p.add_argument("--series", required=True)
    p.add_argument("--method", required=True, choices=("hu", "suv", "suv-relative"))
    p.add_argument("--low", type=float, help="hu: lower bound (HU)")
    p.add_argument("--high", type=float, help="hu: upper bound (HU)")
    p.add_argument("--threshold", type=float, default=2.5, help="suv: absolute threshold (SUV)")
    p.add_argument(
        "--fraction",
        type=parse_fraction,
        default=0.4,
        help="suv-relative: share of SUVmax, as a fraction or a percentage: 0.4, 40 and 40%% "
        "all mean 40 %% (a number above 1 is a percentage; default 0.4)",
    )
    p.add_argument("--within", help="restrict to this existing ROI key (seed region)")
    p.add_argument("--box", type=_parse_box, help="restrict to a box z0:z1,y0:y1,x0:x1 (voxels)")
    p.add_argument("--seed", type=_parse_point, help="keep the component containing z,y,x")
    p.add_argument(
        "--keep",
        choices=("largest", "seed", "all"),
        help="components to keep (default: the seed's if --seed, else the largest)",
    )
    p.add_argument("--min-size-mm3", type=float, default=0.0)
    p.add_argument("--name", default=None, help="ROI name of the new label map")
    p.set_defaults(func=_cmd_segment)


def add_commands(subparsers) -> None:
    """Add ``run``, ``maps`` and ``table`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "run",
        help="extract features of every ROI in a store into a Parquet feature table",
        description="Extract the features of every (series, ROI, image type) of STORE with the "
        "PyRadiomics parameter file PARAMS on a Dask cluster, into the Hive-partitioned "
        "Parquet table TABLE (failures in TABLE.errors). Exit code 1 if a task failed that "
        "had not failed the same way before (new failures); 0 when the only failures are known "
        "ones (same input, same error), which the summary lists and --incremental does not retry.",
    )
    p.add_argument("store", metavar="STORE", help="volume store folder (radflow ingest)")
    add_params(p, required=True)
    p.add_argument(
        "--table", required=True, metavar="TABLE", help="feature table folder (created if absent)"
    )
    _add_cluster_options(
        p,
        incremental="extract only new or changed series (and earlier failures, except known "
        "permanent ones whose input and parameters are unchanged)",
    )
    p.set_defaults(func=_cmd_run)

    p = subparsers.add_parser(
        "maps",
        help="voxel-based feature maps of every ROI in a store, written into the store",
        description="Compute PyRadiomics voxel-mode feature maps of every (series, ROI, image "
        "type) of STORE with the parameter file PARAMS (its voxelSetting) on a Dask cluster, and "
        "write each map as an OME-Zarr image on the series' grid under "
        "STORE/<case>/<series>/maps/<feature set>/<roi>/. Failures go to "
        "STORE/.maps-errors/<feature set>.json; exit code 1 if a unit failed for a new reason "
        "(known permanent failures are listed; --incremental does not retry them until their "
        "input or parameters change).",
    )
    p.add_argument("store", metavar="STORE", help="volume store folder (radflow ingest)")
    add_params(p, required=True)
    _add_cluster_options(
        p,
        incremental="compute only maps the store does not hold for the same series and parameters",
    )
    p.set_defaults(func=_cmd_maps)

    p = subparsers.add_parser("table", help="maintain a feature table (compact, verify)")
    table = p.add_subparsers(dest="table_command", metavar="ACTION", required=True)
    c = table.add_parser("compact", help="merge small files; queries return the same rows")
    c.add_argument("table", metavar="TABLE", help="feature table folder")
    c.add_argument(
        "--max-rows",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="largest file in rows (default 100000)",
    )
    c.set_defaults(func=_cmd_compact)
    v = table.add_parser(
        "verify", help="check one row per (series, ROI, image type); exit 1 if not"
    )
    v.add_argument("table", metavar="TABLE", help="feature table folder")
    v.set_defaults(func=_cmd_verify)
