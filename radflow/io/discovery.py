"""Archive discovery: which images, masks and patients an archive holds.

Two layouts are understood:

* the convention ``<root>/<institution>/<patient>/...``: every DICOM file
  below a patient folder (series are told apart by their UIDs, not by folder),
  and plain image files (NIfTI, NRRD, MetaImage) whose label maps sit beside
  them, named ``<stem>_label``, ``<stem>_mask`` or ``<stem>_seg``;
* a CSV manifest with the columns ``patient, institution, modality, image,
  mask, roi`` for archives laid out otherwise (paths relative to the CSV).
  ``image`` is an image file or a DICOM series folder; ``mask`` a label-map
  file, an RTSTRUCT or a DICOM-SEG file (optional); ``roi`` the ROI name to
  give label 1 of a label map, or to keep from an RTSTRUCT/SEG (optional).

Discovery reads no pixel data and only file names (DICOM headers are read
later, per patient), so it is fast on large archives.

Hidden folders (names starting with ``.``) are not read, at any depth: in
hospital archives they are the file system's and tools' own (``.snapshot``
copies of a whole NAS volume, ``.Trashes``, ``.Spotlight-V100``, ``.git``,
radflow's interrupted temporaries), and reading them would ingest deleted data
or every patient twice. None is skipped silently: each is listed
(:attr:`Archive.skipped`, :attr:`CaseSource.skipped`) so that ingest can
report it; a real case folder named ``.case1`` is ingested once renamed.

Modalities are DICOM's codes (``CT``, ``PT``, ``MR`` ...): :func:`dicom_modality`
maps what a CSV manifest says (``PET/CT``, ``pet``, ``MRI``, ``T1 post``) to
one, or says why it cannot.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from radflow.errors import InputError
from radflow.io.image_file import file_stem, image_suffix

_MASK_SUFFIX = re.compile(r"^(?P<stem>.+?)[_-](label|labels|mask|seg|segmentation)$", re.I)
#: Words in folder and file names (and in a manifest's modality text) that name a modality.
_MODALITY_TOKENS = {
    "CT": "CT",
    "PT": "PT",
    "PET": "PT",
    "MR": "MR",
    "MRI": "MR",
    "T1": "MR",
    "T1W": "MR",
    "T1C": "MR",
    "T2": "MR",
    "T2W": "MR",
    "FLAIR": "MR",
    "ADC": "MR",
    "DWI": "MR",
}
#: DICOM's modality vocabulary (PS3.3 C.7.3.1.1.1, defined terms): accepted as written.
DICOM_MODALITIES = frozenset(
    """AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES FID
    GM HC HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF
    OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD
    RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA
    XAPROTOCOL XC""".split()
)
#: Everyday names of a modality, upper case without separators (``PET/CT`` -> ``PETCT``).
_MODALITY_NAMES = {
    "PET": "PT",
    "PETCT": "PT",  # the PET series of a PET/CT; its CT series is CT
    "PETMR": "PT",
    "PETMRI": "PT",
    "FDGPET": "PT",
    "PETFDG": "PT",
    "MRI": "MR",
    "NMR": "MR",
    "CAT": "CT",
    "CBCT": "CT",
    "SPECT": "NM",
    "SPECTCT": "NM",
    "ULTRASOUND": "US",
    "MAMMOGRAPHY": "MG",
}
#: Side files that never hold DICOM (label names, notes).
_NOT_DICOM = {".json", ".csv", ".txt", ".md", ".yaml", ".yml"}
MANIFEST_COLUMNS = ("patient", "institution", "modality", "image", "mask", "roi")


@dataclass(frozen=True)
class MaskFile:
    """A label-map file; ``roi`` names its label 1 when the file carries no names."""

    path: Path
    roi: str | None = None


@dataclass(frozen=True)
class FileSeries:
    """A plain image file and the label maps that belong to it."""

    image: Path
    modality: str
    masks: tuple[MaskFile, ...] = ()


@dataclass(frozen=True)
class DicomSource:
    """A folder of DICOM files (any number of series, RTSTRUCTs and SEGs)."""

    folder: Path
    # Explicit mask objects (CSV manifests): RTSTRUCT/SEG files outside the folder.
    masks: tuple[Path, ...] = ()
    roi: str | None = None


@dataclass(frozen=True)
class CaseSource:
    """Everything an archive holds for one patient.

    ``patient`` is the identifier as found (folder name or CSV value): it is
    pseudonymised before it reaches the store or any stored output.
    """

    institution: str
    patient: str
    root: Path  # the patient folder (convention) or the CSV's folder
    dicom: tuple[DicomSource, ...] = ()
    files: tuple[FileSeries, ...] = ()
    errors: tuple[InputError, ...] = field(default=())
    #: Hidden folders below the patient folder, not read.
    skipped: tuple[Path, ...] = ()
    #: The CSV manifest that lists the patient (None: the folder layout).
    listed_in: Path | None = None

    @property
    def location(self) -> str:
        """The patient as the user gave it: its folder, or ``PATIENT in cohort.csv``."""
        if self.listed_in is not None:
            return f"{self.patient} in {self.listed_in}"
        return str(self.root)


@dataclass(frozen=True)
class Archive:
    """What :func:`discover` found: the patients, and what it did not read.

    Attributes
    ----------
    cases : list of CaseSource
        One per patient, sorted by institution and patient.
    skipped : tuple of Path
        Hidden institution and patient folders, not read (hidden folders inside
        a patient folder are in that case's ``skipped``).
    errors : tuple of InputError
        Inputs that belong to no patient (a CSV row without a patient).
    """

    cases: list[CaseSource]
    skipped: tuple[Path, ...] = ()
    errors: tuple[InputError, ...] = ()


def is_hidden(path: Path) -> bool:
    """True for a name starting with ``.``: a folder discovery does not read."""
    return path.name.startswith(".")


def dicom_modality(text: str, source: str | Path) -> str:
    """The DICOM modality code that ``text`` names (``"PET/CT"`` -> ``"PT"``).

    A DICOM code (any case, surrounding spaces ignored) is kept; everyday names
    are mapped (``PET``, ``PET/CT``, ``PET-CT``, ``pet`` -> ``PT``; ``MRI``,
    ``T1``, ``FLAIR`` -> ``MR``; ``SPECT`` -> ``NM``); otherwise the words of
    ``text`` decide when they name exactly one modality (``"CT thorax"`` ->
    ``"CT"``). The result is made of capital letters and digits, safe as a
    folder name and a partition value.

    Parameters
    ----------
    text : str
        The modality as given (a manifest's ``modality`` column, a file-name guess).
    source : str or Path
        The image it describes, named in the error.

    Raises
    ------
    InputError
        ``text`` is empty, names no modality, or names several (``"CT/MR"``).

    Examples
    --------
    >>> [dicom_modality(t, "x") for t in ("PET/CT", "pet", "MRI", " ct ", "T1 post-contrast")]
    ['PT', 'PT', 'MR', 'CT', 'MR']
    """
    upper = str(text).strip().upper()
    compact = re.sub(r"[^0-9A-Z]+", "", upper)
    if compact in DICOM_MODALITIES:
        return compact
    if compact in _MODALITY_NAMES:
        return _MODALITY_NAMES[compact]
    tokens = [t for t in re.split(r"[^0-9A-Z]+", upper) if t]
    named = sorted({_MODALITY_TOKENS[t] for t in tokens if t in _MODALITY_TOKENS})
    if len(named) == 1:
        return named[0]
    fix = "give a DICOM modality code (CT, PT, MR, NM, US ...) in the manifest's modality column"
    if not upper:
        raise InputError(source, f"modality is empty: {fix}")
    if named:
        raise InputError(
            source, f"modality {text!r} names several modalities ({', '.join(named)}): {fix}"
        )
    raise InputError(source, f"modality {text!r} is not a DICOM modality nor names one: {fix}")


def image_stem(path: Path) -> str | None:
    """File name without an image extension, or None if ``path`` is no image file."""
    return file_stem(path) if image_suffix(path) else None


def guess_modality(path: Path, root: Path) -> str:
    """Modality from folder names and file-name tokens (``CT/``, ``pet_suv.nii``, ``T2.nrrd``).

    Returns ``"OT"`` (DICOM's "other") when nothing tells.
    """
    parts = list(path.relative_to(root).parts[:-1]) + [image_stem(path) or path.stem]
    for part in reversed(parts):
        for token in re.split(r"[^0-9A-Za-z]+", part):
            if token.upper() in _MODALITY_TOKENS:
                return _MODALITY_TOKENS[token.upper()]
    return "OT"


def _pair_files(folder: Path, root: Path) -> tuple[list[FileSeries], list[InputError]]:
    """Pair the image files of one folder with their label maps."""
    images: dict[str, Path] = {}
    masks: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        stem = image_stem(path)
        if stem is None or not path.is_file():
            continue
        match = _MASK_SUFFIX.match(stem)
        if match:
            masks.setdefault(match["stem"], []).append(path)
        else:
            images[stem] = path
    errors = []
    for stem, paths in masks.items():
        if stem in images:
            continue
        # A lone mask beside a lone image belongs to it whatever its name.
        if len(images) == 1 and len(masks) == 1:
            only = next(iter(images))
            masks[only] = masks.pop(stem)
            break
        for p in paths:
            errors.append(InputError(p, f"label map has no image '{stem}.*' beside it"))
    series = [
        FileSeries(
            image=img,
            modality=guess_modality(img, root),
            masks=tuple(MaskFile(p) for p in masks.get(stem, ())),
        )
        for stem, img in images.items()
    ]
    return series, errors


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """``folder`` and its sub-folders, and the hidden sub-folders not entered (both sorted)."""
    folders, hidden = [], []
    for root, dirs, _ in os.walk(folder):
        hidden += [Path(root, d) for d in dirs if d.startswith(".")]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folders.append(Path(root))
    return sorted(folders), sorted(hidden)


def discover_patient(folder: Path, institution: str) -> CaseSource:
    """Describe one patient folder of the conventional layout."""
    files: list[FileSeries] = []
    errors: list[InputError] = []
    has_dicom = False
    folders, hidden = _walk(folder)
    for sub in folders:
        entries = [p for p in sub.iterdir() if p.is_file()]
        if any(image_stem(p) is not None for p in entries):
            found, errs = _pair_files(sub, folder)
            files.extend(found)
            errors.extend(errs)
        if any(
            image_stem(p) is None
            and p.suffix.lower() not in _NOT_DICOM
            and not p.name.startswith(".")
            for p in entries
        ):
            has_dicom = True  # candidate DICOM files; headers tell later
    dicom = (DicomSource(folder),) if has_dicom else ()
    return CaseSource(
        institution=institution,
        patient=folder.name,
        root=folder,
        dicom=dicom,
        files=tuple(files),
        errors=tuple(errors),
        skipped=tuple(hidden),
    )


def discover(root: str | Path) -> Archive:
    """List the patients of an archive, and the hidden folders not read.

    Parameters
    ----------
    root : str or Path
        Either an archive folder laid out as ``<institution>/<patient>/...``
        or a CSV manifest file (see the module docstring).

    Returns
    -------
    Archive

    Raises
    ------
    InputError
        ``root`` is neither a folder nor a CSV file, a CSV manifest lacks its
        columns, or the folder holds no ``<institution>/<patient>/`` folder.
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return discover_manifest(root)
    if not root.is_dir():
        raise InputError(root, "archive not found (expected a folder or a CSV manifest)")
    cases, skipped = [], []
    for inst in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_hidden(inst):
            skipped.append(inst)
            continue
        for patient in sorted(p for p in inst.iterdir() if p.is_dir()):
            if is_hidden(patient):
                skipped.append(patient)
            else:
                cases.append(discover_patient(patient, inst.name))
    if not cases:
        hidden = f" (hidden folders not read: {', '.join(p.name for p in skipped)})"
        raise InputError(
            root,
            "no <institution>/<patient>/ folders found"
            f"{hidden if skipped else ''}; give a CSV manifest instead",
        )
    return Archive(cases, tuple(skipped))


def discover_archive(root: str | Path) -> list[CaseSource]:
    """The patients of an archive: :func:`discover` without what it did not read.

    Parameters
    ----------
    root : str or Path
        Either an archive folder laid out as ``<institution>/<patient>/...``
        or a CSV manifest file (see the module docstring).

    Returns
    -------
    list of CaseSource
        One per patient, sorted by institution and patient.
    """
    return discover(root).cases


def discover_manifest(path: Path) -> Archive:
    """Read a CSV manifest (columns ``patient, institution, modality, image, mask, roi``).

    Rows without a patient belong to no case: they are the archive's ``errors``.
    The modality is mapped with :func:`dicom_modality` where it can be; text it
    cannot map is kept as written, for ingest to report on that series.
    """
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("patient", "image") if c not in (reader.fieldnames or ())]
            if missing:
                raise InputError(
                    path,
                    f"CSV manifest lacks column(s) {', '.join(missing)}; "
                    f"expected {', '.join(MANIFEST_COLUMNS)}",
                )
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            path, f"not a readable CSV manifest (UTF-8 text expected): {exc}"
        ) from None
    except OSError as exc:
        raise InputError(path, f"cannot read the CSV manifest ({exc.strerror})") from None
    grouped: dict[tuple[str, str], dict] = {}
    orphans: list[InputError] = []
    for line, row in enumerate(rows, start=2):
        patient = (row.get("patient") or "").strip()
        institution = (row.get("institution") or "").strip() or "default"
        if not patient:
            orphans.append(InputError(f"{path}:{line}", "empty patient: the row is not read"))
            continue
        entry = grouped.setdefault(
            (institution, patient), {"dicom": [], "files_by_image": {}, "errors": []}
        )
        image = (row.get("image") or "").strip()
        if not image:
            entry["errors"].append(InputError(f"{path}:{line}", "empty image"))
            continue
        image_path = (base / image).resolve()
        mask = (row.get("mask") or "").strip()
        masks = ((base / mask).resolve(),) if mask else ()
        roi = (row.get("roi") or "").strip() or None
        modality = (row.get("modality") or "").strip()
        if modality:
            try:
                modality = dicom_modality(modality, image_path)
            except InputError:
                pass  # kept as written: ingest fails that series, naming it
        if image_path.is_dir():
            entry["dicom"].append(DicomSource(image_path, masks=masks, roi=roi))
        elif not image_path.exists():
            entry["errors"].append(
                InputError(image_path, f"image listed in {path.name}:{line} not found")
            )
        elif image_stem(image_path) is None:
            entry["errors"].append(
                InputError(image_path, "not a NIfTI/NRRD/MetaImage file or DICOM folder")
            )
        else:
            # Several rows may list one image with different masks: merge them.
            known = entry["files_by_image"].get(image_path)
            new_masks = tuple(MaskFile(m, roi) for m in masks)
            if known is None:
                modality = modality or guess_modality(image_path, image_path.parent)
                entry["files_by_image"][image_path] = FileSeries(image_path, modality, new_masks)
            else:
                entry["files_by_image"][image_path] = FileSeries(
                    image_path, known.modality, known.masks + new_masks
                )
    cases = [
        CaseSource(
            institution=inst,
            patient=pid,
            root=base,
            dicom=tuple(e["dicom"]),
            files=tuple(e["files_by_image"].values()),
            errors=tuple(e["errors"]),
            listed_in=path,
        )
        for (inst, pid), e in sorted(grouped.items())
    ]
    return Archive(cases, errors=tuple(orphans))
