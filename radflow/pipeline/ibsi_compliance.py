"""IBSI 1 compliance check: radflow's IBSI mode against the IBSI reference values.

:func:`check` extracts the features of the IBSI 1 digital phantom
(configuration ``phantom``) and of the CT phantom (configurations A-E; from
the NIfTI files, or from the DICOM series and its RTSTRUCT ingested into a
temporary store) and compares every reference value with its tolerance:

- a value is within tolerance when ``|value - reference| <= tolerance``;
- a tolerance of 0 means agreement to the printed digits: the reference is
  given to three significant digits with trailing zeros left out (``0.2`` is
  0.200) or exactly (``125256``), so the allowed deviation is half a unit in
  the last of those digits (half a unit of the third significant digit, or
  of the last digit printed when it is finer); a reference of 0 must round
  to 0 at three decimals;
- rows without a reference value ("not standardised") are not checked.

:func:`format_report` prints one table per dataset: values checked, within
tolerance, off (with value, reference and tolerance) and missing, features
and diagnostics counted apart. Deviations whose cause is known and
documented (``docs/ibsi_compliance.md``) are listed in :data:`KNOWN_DEVIATIONS`
and marked as such.
"""

from __future__ import annotations

import csv
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from radflow.errors import InputError, SettingsError
from radflow.extraction.ibsi import extract_ibsi
from radflow.params.ibsi import CONFIG_NAMES
from radflow.pipeline.ingest import ingest_archive
from radflow.store.catalogue import list_series
from radflow.store.read import open_label, open_volume

__all__ = [
    "DATASETS",
    "KNOWN_DEVIATIONS",
    "Check",
    "ComplianceReport",
    "DatasetReport",
    "ReferenceValue",
    "allowed_deviation",
    "check",
    "format_report",
    "read_reference",
]

#: Dataset names: the digital phantom and the CT phantom's configurations, each checked
#: with the configuration radflow ships under that name.
DATASETS = CONFIG_NAMES
_TABLES = {
    "phantom": "ibsi_1_reference_values_digital_phantom.csv",
    **{c: f"ibsi_1_reference_values_config_{c}.csv" for c in "ABCDE"},
}
_SOURCES = ("nifti", "dicom")

#: (dataset, source) -> {tag: documented cause} of the values known to be off.
KNOWN_DEVIATIONS: dict[tuple[str, str], dict[str, str]] = {}


@dataclass(frozen=True)
class ReferenceValue:
    """One row of an IBSI 1 reference table that carries a value."""

    tag: str
    family: str
    feature: str
    value: float
    text: str
    tolerance: float
    consensus: str

    @property
    def allowed(self) -> float:
        """Largest deviation accepted (see :func:`allowed_deviation`)."""
        return allowed_deviation(self.text, self.tolerance)


@dataclass(frozen=True)
class Check:
    """One reference value compared.

    ``status`` is ``"ok"`` (within tolerance), ``"off"`` or ``"missing"``
    (radflow gave no value); ``known`` holds the documented cause of a known
    deviation, else None.
    """

    reference: ReferenceValue
    value: float | None
    status: str
    known: str | None = None

    @property
    def tag(self) -> str:
        return self.reference.tag

    @property
    def is_diagnostic(self) -> bool:
        return self.reference.family.startswith("Diagnostics")


@dataclass(frozen=True)
class DatasetReport:
    """The checks of one dataset (``phantom``, ``A`` .. ``E``) from one source."""

    dataset: str
    source: str
    checks: tuple[Check, ...]
    seconds: float

    def count(self, status: str | None = None, *, diagnostics: bool = False) -> int:
        """Number of checks (of a status) among the features, or among the diagnostics."""
        return sum(
            1
            for c in self.checks
            if c.is_diagnostic == diagnostics and (status is None or c.status == status)
        )

    @property
    def failures(self) -> tuple[Check, ...]:
        """Checks off or missing whose cause is not documented."""
        return tuple(c for c in self.checks if c.status != "ok" and c.known is None)


@dataclass(frozen=True)
class ComplianceReport:
    datasets: tuple[DatasetReport, ...]

    @property
    def compliant(self) -> bool:
        """True when every value is within tolerance or a documented deviation."""
        return not any(d.failures for d in self.datasets)


def allowed_deviation(text: str, tolerance: float) -> float:
    """The deviation allowed for a reference value printed as `text` with `tolerance`.

    Examples
    --------
    >>> allowed_deviation("0.977", 0), allowed_deviation("1490", 0), allowed_deviation("125256", 0)
    (0.0005, 5.0, 0.5)
    >>> allowed_deviation("0.2", 0), allowed_deviation("-46.9", 0.1)
    (0.0005, 0.1)
    """
    if tolerance > 0:
        return tolerance
    value = float(text)
    if value == 0:
        return 0.0005
    digits = text.strip().lstrip("+-")
    if "." in digits:
        printed = -len(digits.split(".", 1)[1])
    else:
        printed = len(digits) - len(digits.rstrip("0"))
    third_significant = math.floor(math.log10(abs(value))) - 2
    return 0.5 * 10.0 ** min(printed, third_significant)


def read_reference(reference_dir: str | PathLike, dataset: str) -> tuple[ReferenceValue, ...]:
    """The rows with a reference value of one dataset's IBSI 1 table.

    Parameters
    ----------
    reference_dir : str or path-like
        The IBSI reference folder (``../shared/ibsi``), holding ``ibsi1/reference/``.
    dataset : str
        ``"phantom"`` or ``"A"`` .. ``"E"``.
    """
    if dataset not in _TABLES:
        raise SettingsError(f"dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    path = Path(reference_dir) / "ibsi1" / "reference" / _TABLES[dataset]
    if not path.is_file():
        raise InputError(
            path, "IBSI reference table not found; give the folder holding ibsi1/reference/"
        )
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            text = (row.get("reference value") or "").strip()
            if not text:
                continue
            try:
                value, tolerance = float(text), float(row["tolerance"] or 0)
            except (KeyError, ValueError):
                raise InputError(path, f"line {line}: unreadable value or tolerance") from None
            rows.append(
                ReferenceValue(
                    row["tag"],
                    row["family"],
                    row["feature"],
                    value,
                    text,
                    tolerance,
                    row.get("consensus", ""),
                )
            )
    return tuple(rows)


def check(
    reference_dir: str | PathLike,
    *,
    datasets: str | Sequence[str] = DATASETS,
    source: str = "nifti",
) -> ComplianceReport:
    """Run the IBSI 1 compliance check.

    Parameters
    ----------
    reference_dir : str or path-like
        The IBSI reference folder (``../shared/ibsi``) with ``ibsi1/digital_phantom``,
        ``ibsi1/ct_phantom`` and ``ibsi1/reference``.
    datasets : sequence of str, optional
        Any of ``"phantom"``, ``"A"`` .. ``"E"``.
    source : {"nifti", "dicom"}, optional
        Where the CT phantom is read from: its NIfTI image and mask, or its
        DICOM series and RTSTRUCT ingested into a temporary store (the digital
        phantom is always read from NIfTI).

    Returns
    -------
    ComplianceReport
    """
    reference_dir = Path(reference_dir)
    if source not in _SOURCES:
        raise SettingsError(f"source {source!r}: expected one of {', '.join(_SOURCES)}")
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
    for dataset in datasets:
        if dataset not in _TABLES:
            raise SettingsError(f"dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    reports = []
    with tempfile.TemporaryDirectory(prefix="radflow-ibsi-") as tmp:
        ct_inputs = None
        for dataset in datasets:
            references = read_reference(reference_dir, dataset)
            start = time.perf_counter()
            if dataset == "phantom":
                folder = reference_dir / "ibsi1" / "digital_phantom"
                image, mask, used = folder / "image.nii.gz", folder / "mask.nii.gz", "nifti"
            else:
                if ct_inputs is None:
                    ct_inputs = _ct_phantom(reference_dir, source, Path(tmp))
                (image, mask), used = ct_inputs, source
            values = extract_ibsi(image, mask, dataset)
            reports.append(_compare(dataset, used, references, values, time.perf_counter() - start))
    return ComplianceReport(tuple(reports))


def _ct_phantom(reference_dir: Path, source: str, tmp: Path):
    folder = reference_dir / "ibsi1" / "ct_phantom"
    if source == "nifti":
        return folder / "nifti" / "image.nii.gz", folder / "nifti" / "mask.nii.gz"
    # A throwaway archive (<institution>/<patient>/...) and store with their
    # own random pseudonymisation key: the check writes nothing elsewhere.
    patient = tmp / "archive" / "ibsi" / "ct_phantom"
    for part in ("image", "rtstruct"):
        src = folder / "dicom" / part
        if not src.is_dir():
            raise InputError(src, "CT phantom DICOM folder not found")
        shutil.copytree(src, patient / part)
    key_file = tmp / "key"
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    store = tmp / "store"
    summary = ingest_archive(tmp / "archive", store, key_file=key_file, progress=False)
    if summary.failed:
        raise InputError(folder / "dicom", f"ingest failed: {'; '.join(summary.messages)}")
    series = [s for s in list_series(store) if s.label_keys]
    if len(series) != 1 or len(series[0].label_keys) != 1:
        found = [(s.modality, s.label_keys) for s in list_series(store)]
        raise InputError(
            folder / "dicom", f"expected one CT series with one ROI, ingest gave {found}"
        )
    info = series[0]
    return (
        open_volume(store, info.case, info.series),
        open_label(store, info.case, info.series, info.label_keys[0]),
    )


def _compare(dataset, source, references, values, seconds) -> DatasetReport:
    known = KNOWN_DEVIATIONS.get((dataset, source), {})
    checks = []
    for ref in references:
        value = values.get(ref.tag)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            status = "missing"
        else:
            status = "ok" if abs(value - ref.value) <= ref.allowed * (1 + 1e-9) else "off"
        checks.append(Check(ref, value, status, known.get(ref.tag) if status != "ok" else None))
    return DatasetReport(dataset, source, tuple(checks), seconds)


def format_report(report: ComplianceReport, *, markdown: bool = False) -> str:
    """The report as text: a summary table, values within tolerance per feature
    family, then one table per dataset of what is off or missing.

    Parameters
    ----------
    report : ComplianceReport
    markdown : bool, optional
        Markdown tables (for ``docs/ibsi_compliance.md``), without run times
        so that the document changes only when results do.
    """
    lines = []
    header = [
        "dataset",
        "source",
        "features checked",
        "within tolerance",
        "off",
        "missing",
        "diagnostics checked",
        "diagnostics within",
    ] + ([] if markdown else ["seconds"])
    rows = [
        [
            _label(d.dataset),
            d.source,
            d.count(),
            d.count("ok"),
            d.count("off"),
            d.count("missing"),
            d.count(diagnostics=True),
            d.count("ok", diagnostics=True),
        ]
        + ([] if markdown else [f"{d.seconds:.1f}"])
        for d in report.datasets
    ]
    lines += _table(header, rows, markdown)
    lines += ["", f"{'### ' if markdown else ''}Within tolerance / checked, per family", ""]
    families = list(dict.fromkeys(_family(c) for d in report.datasets for c in d.checks))
    rows = []
    for family in families:
        row = [family]
        for d in report.datasets:
            checks = [c for c in d.checks if _family(c) == family]
            row.append(f"{sum(c.status == 'ok' for c in checks)}/{len(checks)}" if checks else "-")
        rows.append(row)
    lines += _table(["family"] + [_label(d.dataset) for d in report.datasets], rows, markdown)
    for d in report.datasets:
        bad = [c for c in d.checks if c.status != "ok"]
        if not bad:
            continue
        heading = f"{_label(d.dataset)} ({d.source}): {len(bad)} not within tolerance"
        lines += ["", f"{'### ' if markdown else ''}{heading}", ""]
        rows = [
            [
                c.tag,
                c.status,
                "" if c.value is None else f"{c.value:.6g}",
                c.reference.text,
                f"{c.reference.allowed:g}",
                c.known or "",
            ]
            for c in bad
        ]
        header = ["tag", "status", "value", "reference", "tolerance", "known cause"]
        lines += _table(header, rows, markdown)
    return "\n".join(lines) + "\n"


def _family(c: Check) -> str:
    # "Co-occurrence matrix (3D, averaged)" -> "Co-occurrence matrix"
    return c.reference.family.split(" (", 1)[0]


def _label(dataset: str) -> str:
    return "digital phantom" if dataset == "phantom" else f"config {dataset}"


def _table(header, rows, markdown: bool) -> list[str]:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    if markdown:
        out = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return out + ["| " + " | ".join(row) + " |" for row in cells[1:]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = fmt.format(*("-" * w for w in widths))
    return [fmt.format(*cells[0]), rule] + [fmt.format(*r) for r in cells[1:]]
