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
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from radflow.errors import InputError
from radflow.io.image_file import file_stem, image_suffix

_MASK_SUFFIX = re.compile(r"^(?P<stem>.+?)[_-](label|labels|mask|seg|segmentation)$", re.I)
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
    pseudonymised before it reaches the store or any output.
    """

    institution: str
    patient: str
    root: Path  # the patient folder (convention) or the CSV's folder
    dicom: tuple[DicomSource, ...] = ()
    files: tuple[FileSeries, ...] = ()
    errors: tuple[InputError, ...] = field(default=())


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


def discover_patient(folder: Path, institution: str) -> CaseSource:
    """Describe one patient folder of the conventional layout."""
    files: list[FileSeries] = []
    errors: list[InputError] = []
    has_dicom = False
    for sub in sorted([folder, *[p for p in folder.rglob("*") if p.is_dir()]]):
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
    )


def discover_archive(root: str | Path) -> list[CaseSource]:
    """List the patients of an archive.

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
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return discover_manifest(root)
    if not root.is_dir():
        raise InputError(root, "archive not found (expected a folder or a CSV manifest)")
    cases = []
    for inst in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        patients = (p for p in inst.iterdir() if p.is_dir() and not p.name.startswith("."))
        for patient in sorted(patients):
            cases.append(discover_patient(patient, inst.name))
    if not cases:
        raise InputError(
            root, "no <institution>/<patient>/ folders found; give a CSV manifest instead"
        )
    return cases


def discover_manifest(path: Path) -> list[CaseSource]:
    """Read a CSV manifest (columns ``patient, institution, modality, image, mask, roi``)."""
    base = path.parent
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("patient", "image") if c not in (reader.fieldnames or ())]
        if missing:
            raise InputError(
                path,
                f"CSV manifest lacks column(s) {', '.join(missing)}; "
                f"expected {', '.join(MANIFEST_COLUMNS)}",
            )
        rows = list(reader)
    grouped: dict[tuple[str, str], dict] = {}
    for line, row in enumerate(rows, start=2):
        patient = (row.get("patient") or "").strip()
        institution = (row.get("institution") or "").strip() or "default"
        entry = grouped.setdefault(
            (institution, patient), {"dicom": [], "files_by_image": {}, "errors": []}
        )
        image = (row.get("image") or "").strip()
        if not patient or not image:
            entry["errors"].append(InputError(f"{path}:{line}", "empty patient or image"))
            continue
        image_path = (base / image).resolve()
        mask = (row.get("mask") or "").strip()
        masks = ((base / mask).resolve(),) if mask else ()
        roi = (row.get("roi") or "").strip() or None
        modality = (row.get("modality") or "").strip().upper()
        modality = _MODALITY_TOKENS.get(modality, modality)
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
    return [
        CaseSource(
            institution=inst,
            patient=pid,
            root=base,
            dicom=tuple(e["dicom"]),
            files=tuple(e["files_by_image"].values()),
            errors=tuple(e["errors"]),
        )
        for (inst, pid), e in sorted(grouped.items())
    ]
