"""``radflow habitats fit|apply``: habitat models of a ROI, and habitat maps into the store.

A thin layer over :mod:`radflow.pipeline.habitats`: ``fit`` builds the estimator
(:class:`radflow.model.habitat.HabitatModel`) from its options and calls
:func:`~radflow.pipeline.habitats.fit`; ``apply`` calls :func:`~radflow.pipeline.habitats.apply`.
Exit codes: 0 success; 1 ``apply`` ran and a ROI failed that had not failed the same way before
(listed, and recorded in ``STORE/.habitats-errors/``); 2 input or settings errors, on one line,
before any cluster starts (through :func:`radflow.cli.main`).
"""

from __future__ import annotations

from radflow import model, pipeline
from radflow.cli._options import add_out, check_output_file, positive_int
from radflow.cli.pipeline import (
    _add_cluster_options,
    _cluster_arguments,
    _existing_store,
    _report_failures,
)

__all__ = ["add_commands"]


def _cmd_fit(args) -> int:
    _existing_store(args.store)
    check_output_file(args.out)
    estimator = model.habitat.HabitatModel(
        args.n_habitats,
        method=args.method,
        k_range=tuple(args.k_range),
        min_size_mm3=args.min_size,
        random_state=args.seed,
    )
    summary = pipeline.habitats.fit(args.store, args.roi, args.channels, estimator, args.out)
    print(summary.report())
    return 0


def _cmd_apply(args) -> int:
    _existing_store(args.store)
    pipeline.habitats.load_model(args.model)  # a wrong model file fails before a cluster starts
    summary = pipeline.habitats.apply(args.store, args.model, **_cluster_arguments(args))
    return _report_failures(summary)


def add_commands(subparsers) -> None:
    """Add ``habitats fit`` and ``habitats apply`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "habitats",
        help="habitat (sub-region) models of a ROI, and habitat maps into the store",
        description="fit: a habitat model on the ROI voxels of every case (channels: the "
        "modality of the ROI's series first, then other series of the case resampled onto its "
        "grid). apply: the habitat map of every ROI, written into the store as the label "
        "<roi>_habitats (0 outside the ROI, 1..K), on a Dask cluster.",
    )
    sub = p.add_subparsers(dest="habitats_command", metavar="ACTION", required=True)

    f = sub.add_parser(
        "fit",
        help="fit a habitat model on a ROI over the store",
        description="radflow habitats fit STORE --roi NAME --channels CT PT [--n-habitats K] "
        "-o MODEL.joblib. Cases without the ROI or a channel are listed, not fitted on.",
    )
    f.add_argument("store", metavar="STORE", help="volume store folder (radflow ingest)")
    f.add_argument("--roi", required=True, metavar="NAME", help="ROI name (e.g. GTV)")
    f.add_argument(
        "--channels",
        required=True,
        nargs="+",
        metavar="MODALITY",
        help="modalities: the ROI's series first (reference grid), then the others (e.g. CT PT)",
    )
    f.add_argument(
        "--n-habitats",
        type=positive_int,
        metavar="K",
        help="number of habitats (default: chosen over --k-range by the silhouette)",
    )
    f.add_argument(
        "--k-range",
        type=positive_int,
        nargs=2,
        default=(2, 6),
        metavar=("LOW", "HIGH"),
        help="range of K tried when --n-habitats is not given (default 2 6)",
    )
    f.add_argument(
        "--method",
        choices=("two-stage", "kmeans", "gmm"),
        default="two-stage",
        help="two-stage (per-ROI supervoxels, then cohort clustering; default), or pooled-voxel "
        "k-means or Gaussian mixture",
    )
    f.add_argument(
        "--min-size",
        type=float,
        default=0.0,
        metavar="MM3",
        help="connected pieces of a habitat smaller than this (mm^3) join their neighbours",
    )
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_out(f, "model file to write (joblib)", required=True, metavar="MODEL")
    f.set_defaults(func=_cmd_fit)

    a = sub.add_parser(
        "apply",
        help="write the habitat map of every ROI into the store",
        description="radflow habitats apply STORE MODEL: the habitat map of every ROI the model "
        "was fitted for, as the label <roi>_habitats of its series. Failures go to "
        "STORE/.habitats-errors/; exit code 1 if a ROI failed.",
    )
    a.add_argument("store", metavar="STORE", help="volume store folder (radflow ingest)")
    a.add_argument("model", metavar="MODEL", help="model file of `radflow habitats fit`")
    _add_cluster_options(
        a, incremental="compute only maps the store does not hold for the same model and inputs"
    )
    a.set_defaults(func=_cmd_apply)
