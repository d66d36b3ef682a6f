"""``radflow model fit | predict | stats``: thin commands over :mod:`radflow.model`.

Output paths are checked before the work starts, so that a wrong ``-o`` fails at once
rather than after a model fit.
"""

from __future__ import annotations

from pathlib import Path

from radflow import model
from radflow._atomic import atomic_file
from radflow.cli._options import add_out, add_params, check_output_file, check_output_folder
from radflow.errors import InputError
from radflow.model._defaults import DEFAULT_PERTURBATIONS, METHODS

#: The file ``radflow model fit -o OUT`` writes the fitted model to.
_MODEL_FILE = "model.joblib"


def _check_spec_file(spec: str) -> None:
    path = Path(spec)
    if path.is_dir():
        hint = (
            "it holds a fitted model: score patients with `radflow model predict "
            f"{spec} --table TABLE -o OUT.csv` or report with `radflow report --model {spec}`"
            if (path / _MODEL_FILE).is_file()
            else "give the study spec file (YAML), e.g. radflow model fit study.yaml -o OUT"
        )
        raise InputError(path, f"is a folder, not a study spec; {hint}")


def _cmd_fit(args) -> int:
    _check_spec_file(args.spec)
    check_output_folder(args.out, "model folder")
    spec = model.spec.load_spec(args.spec)
    design = model.design.load_design(spec)
    print(
        f"study: {len(design.X)} patients, {design.X.shape[1] - 1} columns "
        f"({len(design.image_columns)} image), feature set {design.feature_set}",
        flush=True,
    )
    result = model.validation.run_study(spec, design)
    paths = model.artefacts.save_study(result, spec, args.out, design=design)
    for validation in result.validations.values():
        print(validation.summary())
    for note in result.notes:
        print(f"note: {note}")
    print(
        f"features used by the final model ({len(result.features)}): {', '.join(result.features)}"
    )
    print(
        f"wrote {paths['model']}, {paths['metrics']} and {paths['predictions']} (out-of-fold risks)"
    )
    return 0


def _cmd_predict(args) -> int:
    check_output_file(args.out)
    outputs = model.artefacts.StudyOutputs.open(args.model)
    predictions = outputs.predict(
        args.table, clinical=args.clinical, genomic=args.genomic, key_file=args.key_file
    )
    with atomic_file(Path(args.out)) as tmp:
        predictions.to_csv(tmp)
    print(f"scored {len(predictions)} patients -> {args.out}")
    return 0


def _cmd_stats(args) -> int:
    check_output_folder(args.out)
    return model.stats.stats_command(args)


def add_commands(subparsers) -> None:
    """Add ``model`` (``fit``, ``predict``, ``stats``) to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "model", help="fit, validate and apply outcome models; feature statistics"
    )
    actions = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    f = actions.add_parser(
        "fit",
        help="validate a study spec's pipeline and fit its final model",
        description="Read the feature table and CSV files a study spec names, run "
        "its validation schemes (nested CV, leave-one-institution-out) "
        "and fit the final model; writes OUT/model.joblib and "
        "OUT/metrics.json.",
    )
    f.add_argument("spec", help="study spec (YAML)")
    add_out(f, "output folder (created if absent)", required=True)
    f.set_defaults(func=_cmd_fit)

    q = actions.add_parser(
        "predict", help="score the patients of a feature table with a fitted model"
    )
    q.add_argument("model", help="model.joblib written by radflow model fit (or its folder)")
    q.add_argument(
        "--table", required=True, help="feature table folder with the model's feature set"
    )
    q.add_argument("--clinical", help="clinical.csv of the new patients (default: the spec's)")
    q.add_argument("--genomic", help="genomic.csv of the new patients (default: the spec's)")
    q.add_argument("--key-file", help="pseudonymisation key file (default: as at ingest)")
    add_out(q, "CSV to write: patient, institution, risk, risk_group", required=True)
    q.set_defaults(func=_cmd_predict)

    s = actions.add_parser(
        "stats", help="correlation and ICC tables of a feature table, as Parquet"
    )
    add_stats_arguments(s)
    s.set_defaults(func=_cmd_stats)


def add_stats_arguments(parser) -> None:
    """Add the arguments of ``radflow model stats`` to an ``argparse`` parser.

    See :func:`stats_command` for their meaning.
    """
    parser.add_argument("table", help="feature table folder (radflow run --table)")
    add_out(parser, "output folder for the Parquet tables", required=True)
    parser.add_argument(
        "--clinical", help="clinical.csv (raw patient ids, pseudonymised on reading)"
    )
    parser.add_argument("--genomic", help="genomic.csv (raw patient ids)")
    parser.add_argument("--id-column", default="patient", help="patient id column of the CSV files")
    parser.add_argument(
        "--key-file",
        help="pseudonymisation key file (default: $RADFLOW_PSEUDONYM_KEY, "
        "$RADFLOW_PSEUDONYM_KEY_FILE, then the per-user key)",
    )
    parser.add_argument(
        "--feature-set", help="feature set fs-<hash> (needed if the table has several)"
    )
    parser.add_argument(
        "--institution",
        dest="institutions",
        action="append",
        help="keep this institution (repeatable)",
    )
    parser.add_argument(
        "--modality", dest="modalities", action="append", help="keep this modality (repeatable)"
    )
    parser.add_argument(
        "--roi", dest="rois", action="append", help="keep this ROI key, e.g. gtv (repeatable)"
    )
    parser.add_argument(
        "--method",
        dest="methods",
        action="append",
        choices=METHODS,
        help="correlation method (repeatable; default: both)",
    )
    parser.add_argument(
        "--store", help="volume store: also run the perturbation stability study (ICC)"
    )
    add_params(parser, "PyRadiomics parameter file of the stability study")
    parser.add_argument(
        "--perturb",
        dest="perturbations",
        action="append",
        help="perturbation, e.g. erode:1, dilate:1, noise:20 (image units), rotate:5 "
        "(degrees), translate:0,0.5,0.5 (mm, z,y,x); repeatable; default: "
        + " ".join(DEFAULT_PERTURBATIONS),
    )
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="ICC interval coverage (default 0.95)"
    )
