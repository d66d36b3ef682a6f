"""Ingest: an archive of DICOM / NIfTI / NRRD images becomes the OME-Zarr store.

Per patient, every image series is read with its label maps, pseudonymised,
fingerprinted and written atomically to ``STORE/<case>/<series>``. A series
whose input files are unchanged since the last ingest (same content
fingerprint) is skipped without reading pixel data. Every problem — a corrupt
file, a geometry mismatch, an empty ROI, a missing referenced series, a
modality that names no DICOM modality — is recorded in the manifest with the
file it concerns, and the rest of the archive is ingested.

Two audiences, two texts: what is stored (store, manifest) carries
pseudonyms only, scrubbed of the patient's folder, id and UIDs; what is
printed and logged on the machine that ran ingest names the paths the user
gave, so that a failure can be found on disk. The pseudonym of each patient
folder is written to a lookup beside the key file
(:func:`radflow.io.pseudonym.update_lookup`), never into the store. Hidden
folders are not read (:mod:`radflow.io.discovery` says why) and every one is
listed in the summary and the log.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow._atomic import atomic_file
from radflow._version import __version__
from radflow.errors import InputError
from radflow.io.dicom import scan_dicom
from radflow.io.dicom_series import load_dicom_series
from radflow.io.discovery import CaseSource, dicom_modality, discover
from radflow.io.image_file import label_sidecar, read_image, read_label_map
from radflow.io.pseudonym import (
    Pseudonymiser,
    key_path,
    load_key,
    lookup_path,
    update_lookup,
)
from radflow.io.records import SeriesRecord
from radflow.pipeline.fingerprint import content_fingerprint
from radflow.pipeline.manifest import update_manifest
from radflow.pipeline.progress import Progress
from radflow.store.catalogue import label_keys, series_fingerprint
from radflow.store.read import open_volume
from radflow.store.write import write_series

log = logging.getLogger(__name__)

#: Bump when what ingest writes for the same input changes (conversion, layout):
#: every series then counts as changed.
INGEST_FORMAT = "1"


@dataclass
class IngestSummary:
    """What one ingest run did, for the user who ran it (paths as given, not pseudonyms).

    Attributes
    ----------
    messages : list of str
        One line per failed input, naming the file or folder the user gave.
    skipped : list of str
        Hidden folders not read (names starting with ``.``).
    lookup : Path or None
        The lookup (patient folder -> pseudonym) beside the key file; None when
        the key was given as text.
    """

    store: Path
    ingested: int = 0
    unchanged: int = 0
    failed: int = 0
    cases: int = 0
    messages: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    lookup: Path | None = None

    def report(self) -> str:
        lines = [
            f"store: {self.store}",
            f"cases: {self.cases}   series ingested: {self.ingested}   "
            f"unchanged: {self.unchanged}   failed: {self.failed}   "
            f"hidden folders skipped: {len(self.skipped)}",
        ]
        lines += [f"  failed: {m}" for m in self.messages]
        lines += [f"  skipped (hidden folder, not read): {p}" for p in self.skipped]
        if self.lookup is not None:
            lines.append(f"lookup (folder -> pseudonym, keep it with the key): {self.lookup}")
        lines.append(f"manifest: {self.store / 'manifest.parquet'}")
        return "\n".join(lines)


@dataclass
class CaseResult:
    """What :func:`ingest_case` did for one patient.

    ``rows`` go to the manifest (pseudonyms only); ``messages`` (one per
    failed row, naming the user's paths) and ``skipped`` (hidden folders) are
    for the summary and the log, never stored.
    """

    rows: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def safe_name(text: str) -> str:
    """An institution name as a safe folder/partition value (``"Site #2"`` -> ``"Site_2"``)."""
    return re.sub(r"[^0-9A-Za-z_-]+", "_", text.strip()).strip("_") or "default"


#: DICOM UIDs (``1.2.840.10008...``): they link back to the source archive.
_UID = re.compile(r"\b[0-2](\.\d+){3,}\b")


class _Scrubber:
    """Removes a patient's folder path, raw id and UIDs from messages bound for outputs."""

    def __init__(self, case: CaseSource, case_id: str):
        target = f"{safe_name(case.institution)}/{case_id}"
        roots = {str(case.root), str(case.root.absolute()), str(case.root.resolve())}
        # Longest first (an absolute root contains the relative one); "." or "/"
        # would replace every dot or slash.
        self.replacements = [
            (re.compile(re.escape(root)), target)
            for root in sorted(roots, key=len, reverse=True)
            if len(root) > 1
        ]
        if case.patient.strip():
            # Whole words only: a short id ("12") must not rewrite every number.
            word = re.escape(case.patient.strip())
            self.replacements.append(
                (re.compile(rf"(?<![0-9A-Za-z]){word}(?![0-9A-Za-z])"), case_id)
            )

    def __call__(self, text: str) -> str:
        for old, new in self.replacements:
            text = old.sub(lambda _m, new=new: new, text)
        return _UID.sub("<uid>", text)

    def path(self, path: Path, case: CaseSource) -> str:
        try:
            return self(str(Path(path).relative_to(case.root)))
        except ValueError:
            return self(Path(path).name)


def _series_attrs(
    record: SeriesRecord, pseud: Pseudonymiser, institution: str, case_id: str, series_id: str
) -> dict:
    values = sitk.GetArrayViewFromImage(record.image)
    return {
        # Whole-volume extremes: filters normalised by the image's maximum
        # (PyRadiomics' square, logarithm, ...) need them when reading a crop.
        "intensity_min": float(np.nanmin(values)),
        "intensity_max": float(np.nanmax(values)),
        "modality": record.modality,
        "institution": institution,
        "case": case_id,
        "series": series_id,
        "frame": pseud.frame(record.frame_uid) if record.frame_uid else None,
        "study": pseud.study(record.study_uid) if record.study_uid else None,
        "acquisition": record.metadata,
        "ingest_format": INGEST_FORMAT,
        "radflow_version": __version__,
        "key_id": pseud.key_id,
        "ingested_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _row(
    case_id,
    institution,
    series_id,
    modality,
    status,
    *,
    action=None,
    error="",
    source="",
    roi="",
    item="series",
    attrs=None,
    fingerprint="",
) -> dict:
    attrs = attrs or {}
    return {
        "case_id": case_id,
        "institution": institution,
        "series_id": series_id,
        "modality": modality,
        "item": item,
        "roi": roi,
        "source": source,
        "status": status,
        "action": action or status,
        "error": error,
        "fingerprint": fingerprint,
        "rois": attrs.get("rois", []),
        "shape_zyx": attrs.get("shape_zyx", []),
        "spacing_zyx": attrs.get("spacing_zyx", []),
        "acquisition": attrs.get("acquisition", {}),
        "ingested_at": attrs.get("ingested_at", ""),
        "radflow_version": attrs.get("radflow_version", __version__),
    }


def _ok_row(store, case_id, institution, series_id, action) -> dict:
    volume = open_volume(store, case_id, series_id)
    attrs = {
        "rois": label_keys(store, case_id, series_id),
        "shape_zyx": list(volume.shape),
        "spacing_zyx": list(volume.attrs["spacing_zyx"]),
        "acquisition": volume.attrs.get("acquisition", {}),
        "ingested_at": volume.attrs.get("ingested_at", ""),
        "radflow_version": volume.attrs.get("radflow_version", __version__),
    }
    return _row(
        case_id,
        institution,
        series_id,
        volume.attrs.get("modality", ""),
        "ok",
        action=action,
        attrs=attrs,
        fingerprint=volume.attrs.get("fingerprint", ""),
    )


def _series_jobs(case: CaseSource, skipped: list[Path]):
    """Yield (source_uid, modality, source, files, loader) for every series of a case, and errors.

    Loading is deferred so that unchanged series are skipped after hashing
    their files, without decoding pixels. Hidden folders the DICOM scan did not
    enter are appended to ``skipped``.
    """
    for src in case.dicom:
        try:
            scan = scan_dicom(src.folder)
        except InputError as exc:
            yield exc
            continue
        skipped.extend(scan.skipped)
        yield from scan.errors
        for uid, series in sorted(scan.series.items()):
            files = list(series.files) + [lab.path for lab in scan.labels_of(uid)]

            def load(scan=scan, uid=uid, errors=None):
                return load_dicom_series(scan, uid, errors=errors)

            yield uid, series.modality, series.files[0], files, load

    for fs in case.files:
        rel = fs.image.relative_to(case.root) if fs.image.is_relative_to(case.root) else fs.image
        uid = f"{case.patient}/{rel.as_posix()}"
        files = [fs.image, *(m.path for m in fs.masks)]
        files += [s for s in map(label_sidecar, (m.path for m in fs.masks)) if s.is_file()]

        def load(fs=fs, uid=uid, files=files, errors=None):
            image = read_image(fs.image)
            labels = []
            for mask in fs.masks:
                try:
                    names = {1: mask.roi} if mask.roi else None
                    labels.append(
                        read_label_map(mask.path, image, names=names, reference_source=fs.image)
                    )
                except InputError as exc:
                    if errors is None:
                        raise
                    errors.append(exc)
            metadata = {"modality": fs.modality, "source_format": fs.image.name.split(".", 1)[-1]}
            return SeriesRecord(fs.modality, image, metadata, uid, tuple(files), labels)

        yield uid, fs.modality, fs.image, files, load


def _local(exc: Exception, case: CaseSource) -> str:
    """The failure as the user should read it: naming the path they gave, not pseudonyms."""
    text = str(exc)
    if case.listed_in is not None:
        return text if text.startswith(str(case.listed_in)) else f"{case.location}: {text}"
    return text if str(case.root) in text else f"{case.location}: {text}"


def ingest_case(
    case: CaseSource, store: str | Path, key: bytes, *, force: bool = False
) -> CaseResult:
    """Ingest one patient. Never raises for bad input.

    Parameters
    ----------
    case : CaseSource
        From :func:`radflow.io.discovery.discover_archive`.
    store : str or Path
        Store folder.
    key : bytes
        Pseudonymisation key (:func:`radflow.io.pseudonym.load_key`).
    force : bool
        Re-ingest series whose fingerprint is unchanged.

    Returns
    -------
    CaseResult
        The manifest rows (pseudonyms only, messages scrubbed), and for the
        user the failures naming their paths and the hidden folders not read.
    """
    pseud = Pseudonymiser(key)
    case_id = pseud.patient(case.patient)
    institution = safe_name(case.institution)
    scrub = _Scrubber(case, case_id)
    result = CaseResult(skipped=list(case.skipped))
    rows = result.rows

    def failed(exc: Exception, series_id="", modality="", item="file", roi="") -> None:
        source = getattr(exc, "source", "")
        message = scrub(str(exc))
        local = _local(exc, case)
        log.warning("%s", local)
        result.messages.append(local)
        rows.append(
            _row(
                case_id,
                institution,
                series_id,
                modality,
                "failed",
                error=message,
                source=scrub.path(Path(source), case) if source else "",
                item=item,
                roi=roi,
            )
        )

    for err in case.errors:
        failed(err)
    for job in _series_jobs(case, result.skipped):
        if isinstance(job, Exception):
            failed(job)
            continue
        uid, modality, source, files, load = job
        try:
            # The modality becomes part of the series id and a partition value.
            modality = dicom_modality(modality, source)
        except InputError as exc:
            failed(exc, item="series")
            continue
        series_id = f"{modality}-{pseud.series(uid)}"
        try:
            fingerprint = content_fingerprint(files, salt=f"ingest-{INGEST_FORMAT}")
            if not force and series_fingerprint(store, case_id, series_id) == fingerprint:
                rows.append(_ok_row(store, case_id, institution, series_id, "unchanged"))
                continue
            roi_errors: list[InputError] = []
            record = load(errors=roi_errors)
            for exc in roi_errors:
                failed(exc, series_id, modality, item="roi")
            attrs = _series_attrs(record, pseud, institution, case_id, series_id)
            write_series(
                store,
                case_id,
                series_id,
                record.image,
                record.labels,
                attrs=attrs,
                fingerprint=fingerprint,
            )
            rows.append(_ok_row(store, case_id, institution, series_id, "ingested"))
        except (InputError, OSError) as exc:
            failed(exc, series_id, modality, item="series")
    result.skipped = sorted(set(result.skipped))
    for folder in result.skipped:
        log.warning("%s: hidden folder not read (rename it to ingest it)", folder)
    return result


def _ingest_case_task(case, store, key, force):
    # Module-level so that it pickles into worker processes.
    return ingest_case(case, store, key, force=force)


STORE_INFO = "radflow-store.json"


def _check_store_key(store: Path, pseud: Pseudonymiser) -> None:
    """Refuse to mix pseudonym keys in one store: the ids would not match across runs."""
    info_path = store / STORE_INFO
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("key_id") != pseud.key_id:
            raise InputError(
                store,
                f"this store was written with pseudonym key {info.get('key_id')}, the current key "
                f"is {pseud.key_id}: patient ids would not match. Use the study's key "
                "(--key-file, RADFLOW_PSEUDONYM_KEY or RADFLOW_PSEUDONYM_KEY_FILE) or a new store",
            )
        return
    with atomic_file(info_path) as tmp:
        tmp.write_text(json.dumps({"key_id": pseud.key_id, "ingest_format": INGEST_FORMAT}) + "\n")


def _write_lookup(key_file, store: Path, pseud: Pseudonymiser, cases) -> Path | None:
    """Record each patient's folder -> pseudonym beside the key file (None: key given as text)."""
    path = key_path(key_file=key_file)
    if path is None:
        return None
    rows = [
        {
            "case_id": pseud.patient(case.patient),
            "institution": safe_name(case.institution),
            "patient": case.patient,
            "location": str(case.root.absolute())
            if case.listed_in is None
            else f"{case.patient} in {case.listed_in.absolute()}",
        }
        for case in cases
    ]
    return update_lookup(path, rows, key_id=pseud.key_id)


def _check_key_outside(store: Path, key_file) -> None:
    """The key and its lookup hold what the store must not: refuse them inside it."""
    path = key_path(key_file=key_file)
    if path is not None and lookup_path(path).absolute().resolve().is_relative_to(
        store.absolute().resolve()
    ):
        raise InputError(
            path,
            f"the pseudonymisation key lies inside the store {store}; its lookup of patient "
            "folders would be written there too. Move the key out of the store",
        )


def ingest_archive(
    archive: str | Path,
    store: str | Path,
    *,
    key_file: str | Path | None = None,
    jobs: int = 1,
    force: bool = False,
    progress: bool = True,
) -> IngestSummary:
    """Convert an archive into the store and update ``STORE/manifest.parquet``.

    Parameters
    ----------
    archive : str or Path
        Folder laid out as ``<institution>/<patient>/...`` or a CSV manifest
        (see :mod:`radflow.io.discovery`).
    store : str or Path
        Store folder, created if missing.
    key_file : str or Path, optional
        Pseudonymisation key file (see :func:`radflow.io.pseudonym.load_key`).
    jobs : int
        Patients ingested at once, in separate processes.
    force : bool
        Re-ingest unchanged series too.
    progress : bool
        Show progress on stderr.

    Returns
    -------
    IngestSummary
        Failures and hidden folders named by the paths given; the lookup
        written beside the key file.
    """
    store = Path(store)
    key = load_key(key_file=key_file)
    _check_key_outside(store, key_file)
    found = discover(archive)  # before the store is made: a wrong path leaves nothing
    store.mkdir(parents=True, exist_ok=True)
    pseud = Pseudonymiser(key)
    _check_store_key(store, pseud)
    cases = found.cases
    summary = IngestSummary(store=store, cases=len(cases))
    summary.lookup = _write_lookup(key_file, store, pseud, cases)
    for exc in found.errors:  # inputs of no patient: not in the manifest
        log.warning("%s", exc)
        summary.failed += 1
        summary.messages.append(str(exc))
    skipped = list(found.skipped)
    for folder in skipped:
        log.warning("%s: hidden folder not read (rename it to ingest it)", folder)
    bar = Progress(len(cases), "patients") if progress else None
    rows: list[dict] = []

    def collect(result: CaseResult):
        rows.extend(result.rows)
        summary.messages.extend(result.messages)
        skipped.extend(result.skipped)
        if bar:
            bar.update(failed=sum(r["status"] == "failed" for r in result.rows))

    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_ingest_case_task, c, store, key, force) for c in cases]
            for fut in as_completed(futures):
                collect(fut.result())
    else:
        for case in cases:
            collect(ingest_case(case, store, key, force=force))
    if bar:
        bar.close()
    update_manifest(store, rows)

    summary.skipped = sorted({str(p) for p in skipped})
    for r in rows:
        if r["status"] == "failed":
            summary.failed += 1
        elif r["action"] == "unchanged":
            summary.unchanged += 1
        else:
            summary.ingested += 1
    return summary
