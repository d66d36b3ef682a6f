"""Command-line pieces of the IBSI mode, wired into ``radflow`` by :mod:`radflow.cli`.

- :func:`add_commands` adds ``radflow ibsi-check`` and ``radflow features``;
- :func:`add_extract_option` adds ``--ibsi CONFIG`` to the ``extract`` command
  and :func:`extract_ibsi_output` produces what it prints;
- :func:`label_argument` parses ``extract --label`` (a label value, or ``all``
  in IBSI mode).

The packages load their modules on first use (:func:`radflow._lazy.attach`), so
``radflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from radflow import extraction, params, pipeline
from radflow._version import __version__
from radflow.errors import InputError
from radflow.features import registry as pyradiomics_registry
from radflow.features.ibsi import registry as ibsi_registry

__all__ = [
    "add_commands",
    "add_extract_option",
    "default_reference_dir",
    "extract_ibsi_output",
    "feature_table",
    "label_argument",
    "markdown_document",
]

_CHECK_COMMAND = "radflow ibsi-check --source nifti dicom --markdown > docs/ibsi_compliance.md"


def add_commands(subparsers) -> None:
    """Add ``ibsi-check`` and ``features`` to the ``radflow`` sub-command parsers."""
    datasets = params.ibsi.CONFIG_NAMES  # the IBSI 1 datasets: the digital and CT phantoms
    p = subparsers.add_parser(
        "ibsi-check",
        help="run the IBSI 1 compliance check against the IBSI reference values",
        description="Extract the IBSI 1 digital phantom and CT phantom (configurations A-E) in "
        "IBSI mode and compare every value with the IBSI reference tables. Exit status 0 when "
        "every value is within tolerance or a documented deviation, 1 otherwise.",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="IBSI reference folder holding ibsi1/ "
        "(default: $RADFLOW_SHARED/ibsi, else ../shared/ibsi)",
    )
    p.add_argument(
        "--config",
        nargs="+",
        choices=datasets,
        default=list(datasets),
        metavar="CONFIG",
        help=f"datasets to check: {', '.join(datasets)} (default: all)",
    )
    p.add_argument(
        "--source",
        nargs="+",
        choices=("nifti", "dicom"),
        default=["nifti"],
        help="read the CT phantom from its NIfTI files or from DICOM + RTSTRUCT through "
        "the store (both: one table each; default nifti)",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the compliance document (docs/ibsi_compliance.md) instead of text tables",
    )
    p.set_defaults(func=_cmd_ibsi_check)

    p = subparsers.add_parser(
        "features", help="list the features radflow computes, with IBSI identifiers"
    )
    p.add_argument(
        "--ibsi",
        action="store_true",
        help="also list the IBSI mode's features with their IBSI submission tags",
    )
    p.set_defaults(func=_cmd_features)


def add_extract_option(parser) -> None:
    """Add ``--ibsi CONFIG`` to the ``extract IMAGE MASK`` parser."""
    parser.add_argument(
        "--ibsi",
        metavar="CONFIG",
        default=None,
        help="IBSI mode: configuration phantom, A, B, C, D, E or a YAML file; "
        "keys are the IBSI submission tags; the ROI is --label (default 1; 'all' merges "
        "every label)",
    )


def label_argument(text: str) -> int | str:
    """``--label`` of ``extract``: an integer > 0, or ``all`` (IBSI mode: every label merged)."""
    if text.strip().lower() == "all":  # extraction.ibsi.ALL_LABELS, not loaded to parse
        return "all"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a label value > 0 or 'all' (with --ibsi), got {text!r}"
        )
    return value


def extract_ibsi_output(
    image, mask, config, *, output_format: str = "json", label: int | str | None = None
) -> str:
    """What ``radflow extract IMAGE MASK --ibsi CONFIG --format FORMAT`` prints.

    Parameters
    ----------
    image, mask : str or path-like
        Image and ROI mask files.
    config : str or path-like
        ``phantom``, ``A`` .. ``E`` or a YAML configuration.
    output_format : {"json", "csv"}, optional
        JSON object ``{tag: value}`` (NaN as null), or CSV ``tag,value`` rows.
    label : int or "all", optional
        ROI label value in the mask (default 1); ``"all"``: every non-zero
        voxel, all labels merged.
    """
    if output_format not in ("json", "csv"):
        raise InputError("--format", f"IBSI mode writes json or csv, got {output_format!r}")
    values = extraction.ibsi.extract_ibsi(image, mask, config, label=label)
    if output_format == "json":
        clean = {tag: (None if math.isnan(v) else v) for tag, v in values.items()}
        return json.dumps(clean, indent=2) + "\n"
    return "tag,value\n" + "".join(
        f"{tag},{'' if math.isnan(v) else repr(v)}\n" for tag, v in values.items()
    )


def feature_table(*, ibsi: bool = True) -> list[tuple[str, str, str, str, str]]:
    """Rows (mode, family, name, IBSI id, tag) of every feature radflow computes.

    PyRadiomics-mode features carry the IBSI identifier of the same quantity
    where there is one, and the IBSI tag stem that identifier has in IBSI
    mode; with `ibsi`, every IBSI-mode tag follows (diagnostics included).
    """
    stems: dict[str, str] = {}
    for f in ibsi_registry.features():
        if f.ibsi_id:
            stems.setdefault(f.ibsi_id, f.tag_stem)
    rows = [
        (
            "pyradiomics",
            f.family,
            f.name,
            f.ibsi_id or "",
            stems.get(f.ibsi_id, "") if f.ibsi_id else "",
        )
        for f in pyradiomics_registry.features()
    ]
    if ibsi:
        rows += [
            ("ibsi", f.family, f.name, f.ibsi_id or "", tag)
            for f in ibsi_registry.features()
            for tag in f.tags
        ]
    return rows


def default_reference_dir() -> Path:
    """``$RADFLOW_SHARED/ibsi`` when set, else ``../shared/ibsi`` from the working directory."""
    shared = os.environ.get("RADFLOW_SHARED")
    return Path(shared) / "ibsi" if shared else Path("..") / "shared" / "ibsi"


def markdown_document(reports, *, command: str = _CHECK_COMMAND) -> str:
    """The compliance document: how it was made, then the tables of each report."""
    compliance = pipeline.ibsi_compliance
    lines = [
        "# IBSI 1 compliance of radflow's IBSI mode",
        "",
        f"Generated by radflow {__version__} with `{command}`; do not edit by hand.",
        "",
        "Every reference value of the IBSI 1 compliance tables (digital phantom; CT phantom",
        "configurations A-E) compared with radflow's IBSI mode. A value is within tolerance",
        "when |value - reference| <= tolerance; a tolerance of 0 means agreement to the printed",
        "significant digits. Rows without a reference value are not checked. Diagnostics are",
        "the image and ROI statistics after each processing step (`diag` rows).",
        "The digital phantom is read from NIfTI; the CT phantom from NIfTI (image and mask)",
        "or from DICOM with its RTSTRUCT, ingested into the store and read back.",
        "",
    ]
    for report in reports:
        source = ", ".join(
            sorted({d.source for d in report.datasets if d.dataset != "phantom"} or {"nifti"})
        )
        lines += [
            f"## CT phantom from {source}",
            "",
            compliance.format_report(report, markdown=True).rstrip(),
            "",
        ]
    lines += [
        "## Conventions where the IBSI leaves a choice",
        "",
        "- Interpolation: IBSI grid (size rounded up, centred on the original grid); points beyond",
        "  the image take the boundary intensity; cubic spline = scipy.ndimage spline order 3 with",
        "  its prefilter; interpolated mask values are rounded to 9 decimals before the",
        "  partial-volume threshold (R >= 0.5), so that exact halves do not depend on round-off.",
        "- Re-segmentation: range first, then outlier filtering on the range-filtered voxels",
        "  (mean +- 3 population standard deviations).",
        "- Fixed bin size: bins start at the range's lower bound; N_g is the number of bins",
        "  covering a closed range (at least the highest level present). Fixed bin number uses",
        "  the intensity mask's minimum and maximum.",
        "- DICOM route: the RTSTRUCT rasterised on ingest equals the NIfTI mask voxel for voxel",
        "  (125 256 voxels) and the image equals the NIfTI image, so both routes give the same",
        "  values.",
        "",
    ]
    known = [
        (dataset, source, tag, cause)
        for (dataset, source), tags in compliance.KNOWN_DEVIATIONS.items()
        for tag, cause in tags.items()
    ]
    lines += ["## Known deviations", ""]
    if known:
        lines += ["| dataset | source | tag | cause |", "|---|---|---|---|"]
        lines += [f"| {d} | {s} | {t} | {c} |" for d, s, t, c in known]
    else:
        lines += ["None: every reference value is reproduced within its tolerance."]
    return "\n".join(lines) + "\n"


def _cmd_ibsi_check(args) -> int:
    path = Path(args.path) if args.path else default_reference_dir()
    if not (path / "ibsi1" / "reference").is_dir():
        raise InputError(
            path, "no IBSI reference data here (ibsi1/reference/); give the folder as PATH"
        )
    reports = []
    for i, source in enumerate(dict.fromkeys(args.source)):
        # The digital phantom has no DICOM form: check it once.
        datasets = [d for d in args.config if i == 0 or d != "phantom"]
        if datasets:
            reports.append(pipeline.ibsi_compliance.check(path, datasets=datasets, source=source))
    if args.markdown:
        sys.stdout.write(markdown_document(reports))
    else:
        for report in reports:
            sys.stdout.write(pipeline.ibsi_compliance.format_report(report) + "\n")
    return 0 if all(r.compliant for r in reports) else 1


def _cmd_features(args) -> int:
    rows = feature_table(ibsi=args.ibsi)
    sys.stdout.write("mode\tfamily\tname\tibsi_id\ttag\n")
    sys.stdout.write("".join("\t".join(row) + "\n" for row in rows))
    return 0
