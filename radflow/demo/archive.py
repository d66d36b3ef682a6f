"""The synthetic archive on disk: DICOM CT, RTSTRUCT and PET, NIfTI MR, CSV tables.

:func:`write_demo_archive` draws a cohort (:mod:`radflow.demo.cohort`), images
every patient (:mod:`radflow.demo.imaging`) and writes the files of
:mod:`radflow.demo.synthetic`'s layout through :mod:`radflow.io.dicom_write`
(DICOM) and SimpleITK (NIfTI). Every byte is a function of the seed: writing
the same archive twice gives identical files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow._atomic import atomic_dir
from radflow.demo.cohort import DemoPatient, check_cohort, draw_cohort, hidden_model
from radflow.demo.imaging import simulate_ct, simulate_mr, simulate_pet
from radflow.demo.phantoms import ORGAN_ROI, Grid
from radflow.demo.scanners import CT_RESCALE_INTERCEPT, F18_HALF_LIFE_S, SITES
from radflow.errors import InputError
from radflow.io.dicom_write import write_image_series, write_rtstruct

__all__ = ["PARAMETERS_FILE", "DemoArchive", "archive_parameters", "write_demo_archive"]

#: The archive's parameters (``patients``, ``seed``, ``institutions``), at its root: what
#: tells ``radflow demo`` whether an existing archive is the one asked for.
PARAMETERS_FILE = "archive.json"


@dataclass(frozen=True)
class DemoArchive:
    """What :func:`write_demo_archive` wrote.

    Attributes
    ----------
    root : Path
        The archive folder.
    clinical_csv, genomic_csv, outcomes_csv, truth_json : Path
    patients : tuple of str
        Patient ids (folder names, ``A0001`` ...), in cohort order.
    institutions : tuple of str
        Institution folder names (``INST_A`` ...).
    files : dict
        Patient id -> {"CT": folder, "RTSTRUCT": file, "PT": folder,
        "MR": file, "MR_label": file, "MR_label_names": file}.
    identifiers : frozenset of str
        Every identifying value written into the DICOM headers or used as a
        folder name (patient ids, names, birth dates, accession numbers,
        institution and physician names, study and series UIDs): a
        pseudonymising product must never output any of them.
    truth : dict
        The content of ``truth.json``.
    """

    root: Path
    clinical_csv: Path
    genomic_csv: Path
    outcomes_csv: Path
    truth_json: Path
    patients: tuple[str, ...]
    institutions: tuple[str, ...]
    files: dict
    identifiers: frozenset
    truth: dict = field(repr=False)


def _dicom_dicts(patient: DemoPatient, modality: str) -> tuple[dict, dict, dict]:
    d, site = patient.dicom, patient.site
    pet_start = datetime.strptime(d["PETStartDateTime"], "%Y%m%d%H%M%S")
    # The CT of a PET/CT is acquired just before the PET.
    when = pet_start - timedelta(minutes=4) if modality == "CT" else pet_start
    person = {
        k: d[k]
        for k in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "PatientSex",
            "PatientAge",
            "PatientWeight",
        )
    }
    study = {
        "StudyInstanceUID": d["StudyInstanceUID"],
        "StudyDate": d["StudyDate"],
        "StudyTime": (pet_start - timedelta(minutes=5)).strftime("%H%M%S"),
        "StudyID": "1",
        "AccessionNumber": d["AccessionNumber"],
        "ReferringPhysicianName": d["ReferringPhysicianName"],
        "StudyDescription": "PET-CT FDG tumour staging",
    }
    scanner = site.ct if modality == "CT" else site.pet
    series = {
        "SeriesInstanceUID": d["SeriesInstanceUID"][modality],
        "FrameOfReferenceUID": d["FrameOfReferenceUID"],
        "PositionReferenceIndicator": "",
        "SeriesNumber": 2 if modality == "CT" else 3,
        "SeriesDate": when.strftime("%Y%m%d"),
        "SeriesTime": when.strftime("%H%M%S"),
        "AcquisitionDate": when.strftime("%Y%m%d"),
        "AcquisitionTime": when.strftime("%H%M%S"),
        "Manufacturer": scanner.manufacturer,
        "ManufacturerModelName": scanner.model,
        "InstitutionName": d["InstitutionName"],
        "BodyPartExamined": "HEADNECK" if patient.phantom.anatomy == "neck" else "CHEST",
        "PatientPosition": "HFS",
    }
    if modality == "CT":
        ct = site.ct
        series.update(
            {
                "SeriesDescription": "CT low dose for attenuation correction",
                "ConvolutionKernel": ct.kernel,
                "KVP": ct.kvp,
                "XRayTubeCurrent": 120,
                "ReconstructionDiameter": round(ct.pixel_mm * ct.matrix, 1),
            }
        )
    else:
        series.update(
            {
                "SeriesDescription": "PET FDG AC",
                "ReconstructionMethod": "OSEM",
                "AttenuationCorrectionMethod": "CT-based",
                "ScatterCorrectionMethod": "model-based",
                "DecayFactor": round(
                    2.0
                    ** (
                        (
                            pet_start - datetime.strptime(d["InjectionDateTime"], "%Y%m%d%H%M%S")
                        ).total_seconds()
                        / F18_HALF_LIFE_S
                    ),
                    6,
                ),
            }
        )
    return person, study, series


def _pet_activity(patient: DemoPatient, suv: np.ndarray) -> tuple[np.ndarray, float]:
    """SUV (body weight) -> int16 stored activity (Bq/ml) and its rescale slope.

    The image is decay-corrected to the series start (DecayCorrection START),
    so activity = SUV * (dose decayed from injection to series start) / weight.
    """
    d = patient.dicom
    elapsed_s = (
        datetime.strptime(d["PETStartDateTime"], "%Y%m%d%H%M%S")
        - datetime.strptime(d["InjectionDateTime"], "%Y%m%d%H%M%S")
    ).total_seconds()
    dose_bq = d["RadionuclideTotalDose"] * 2.0 ** (-elapsed_s / F18_HALF_LIFE_S)
    bqml = suv.astype(np.float64) * dose_bq / (d["PatientWeight"] * 1000.0)
    # Six significant digits: the slope survives its decimal-string (DS) encoding exactly.
    slope = float(f"{max(bqml.max(), 1.0) / 32000.0:.6g}")
    return np.round(bqml / slope).astype(np.int16), slope


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_nifti(path: Path, array: np.ndarray, grid: Grid) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in grid.spacing_zyx[::-1]])
    image.SetOrigin([float(o) for o in grid.origin_zyx[::-1]])
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_patient(patient: DemoPatient, folder: Path) -> dict:
    """Write the CT, RTSTRUCT, PET and MR of one patient; returns their grids."""
    organ = ORGAN_ROI[patient.phantom.anatomy][0]
    grids = {}

    ct = simulate_ct(patient)
    person, study, series = _dicom_dicts(patient, "CT")
    ct_files = write_image_series(
        (ct.values - CT_RESCALE_INTERCEPT).astype(np.int16),
        folder / "CT",
        modality="CT",
        spacing_zyx=ct.grid.spacing_zyx,
        origin_zyx=ct.grid.origin_zyx,
        patient=person,
        study=study,
        series=series,
        rescale_slope=1.0,
        rescale_intercept=CT_RESCALE_INTERCEPT,
    )
    write_rtstruct(
        folder / "RTSTRUCT" / "RS.dcm", ct_files, {"GTV": ct.labels == 1, organ: ct.labels == 2}
    )
    grids["CT"] = ct.grid

    pet = simulate_pet(patient)
    stored, slope = _pet_activity(patient, pet.values)
    person, study, series = _dicom_dicts(patient, "PT")
    injection = patient.dicom["InjectionDateTime"]
    write_image_series(
        stored,
        folder / "PET",
        modality="PT",
        spacing_zyx=pet.grid.spacing_zyx,
        origin_zyx=pet.grid.origin_zyx,
        patient=person,
        study=study,
        series=series,
        rescale_slope=slope,
        rescale_intercept=0.0,
        pet={
            "Units": "BQML",
            "DecayCorrection": "START",
            "CorrectedImage": ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"],
            "Radiopharmaceutical": "Fludeoxyglucose",
            "RadionuclideTotalDose": patient.dicom["RadionuclideTotalDose"],
            "RadionuclideHalfLife": F18_HALF_LIFE_S,
            "RadiopharmaceuticalStartDateTime": injection,
            "RadiopharmaceuticalStartTime": injection[8:],
        },
    )
    grids["PT"] = pet.grid

    mr = simulate_mr(patient)
    (folder / "MR").mkdir()
    _write_nifti(folder / "MR" / "t1.nii.gz", mr.values, mr.grid)
    _write_nifti(folder / "MR" / "t1_label.nii.gz", mr.labels, mr.grid)
    (folder / "MR" / "t1_label.json").write_text(json.dumps({"1": "GTV", "2": organ}) + "\n")
    grids["MR"] = mr.grid
    return {
        m: {
            "shape_zyx": list(g.shape_zyx),
            "spacing_zyx_mm": list(g.spacing_zyx),
            "origin_zyx_mm": list(g.origin_zyx),
        }
        for m, g in grids.items()
    }


def _truth(cohort: list[DemoPatient], seed: int, grids: dict) -> dict:
    used = sorted({p.site.name for p in cohort})
    return {
        "description": (
            "Hidden ground truth of the radflow synthetic archive, for tests only: never an input "
            "of the product. 'survival' is the proportional-hazards model the outcomes were drawn "
            "from; 'institutions' the scanner models (batch effects); 'patients' the true image "
            "properties (exact tumour volume by quadrature of its surface, not a voxel count), "
            "covariates, linear predictor and the latent event and censoring times."
        ),
        "seed": seed,
        **hidden_model(),
        "institutions": {
            s.name: {"ct": asdict(s.ct), "pet": asdict(s.pet), "mr": asdict(s.mr)}
            for s in SITES
            if s.name in used
        },
        "patients": {p.patient: {**p.truth, "grids": grids.get(p.patient)} for p in cohort},
    }


def archive_parameters(folder: str | PathLike) -> dict | None:
    """The parameters an archive was written with (:data:`PARAMETERS_FILE`).

    Returns
    -------
    dict or None
        ``{"patients": int, "seed": int, "institutions": int}``; None when
        ``folder`` holds no readable parameters file (no archive, or one
        written before radflow recorded them).
    """
    try:
        parameters = json.loads((Path(folder) / PARAMETERS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("patients", "seed", "institutions")
    if not isinstance(parameters, dict) or not all(type(parameters.get(k)) is int for k in keys):
        return None
    return {k: parameters[k] for k in keys}


def write_demo_archive(
    out: str | PathLike, *, patients: int = 12, seed: int = 0, institutions: int = 3
) -> DemoArchive:
    """Write the synthetic multi-institution archive.

    Parameters
    ----------
    out : path-like
        Folder to create. It must not exist, or be empty. The archive is
        built beside it under a temporary name and renamed when complete, so
        ``out`` never holds a half-written archive.
    patients : int
        Number of patients (>= 1), spread over the institutions in turn.
    seed : int
        Seed (>= 0): the archive is a deterministic function of it.
    institutions : int
        Number of institutions (1 to ``len(SITES)``).

    Returns
    -------
    DemoArchive

    Raises
    ------
    SettingsError
        A count or the seed out of range.
    InputError
        ``out`` exists and is not an empty folder.
    """
    check_cohort(patients, seed, institutions)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            out, "already exists and is not an empty folder; choose a new folder or remove it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    cohort = draw_cohort(patients, seed=seed, institutions=institutions)
    with atomic_dir(out, fsync=False) as tmp:  # the archive appears whole or not at all
        grids, files = {}, {}
        for p in cohort:
            rel = Path(p.site.name) / p.patient
            grids[p.patient] = _write_patient(p, tmp / rel)
            files[p.patient] = {
                "CT": rel / "CT",
                "RTSTRUCT": rel / "RTSTRUCT" / "RS.dcm",
                "PT": rel / "PET",
                "MR": rel / "MR" / "t1.nii.gz",
                "MR_label": rel / "MR" / "t1_label.nii.gz",
                "MR_label_names": rel / "MR" / "t1_label.json",
            }
        _write_csv(tmp / "clinical.csv", [p.clinical for p in cohort])
        _write_csv(tmp / "genomic.csv", [p.genomic for p in cohort])
        _write_csv(tmp / "outcomes.csv", [p.outcome for p in cohort])
        truth = _truth(cohort, seed, grids)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        parameters = {"patients": patients, "seed": seed, "institutions": institutions}
        (tmp / PARAMETERS_FILE).write_text(json.dumps(parameters) + "\n")
    return DemoArchive(
        root=out,
        clinical_csv=out / "clinical.csv",
        genomic_csv=out / "genomic.csv",
        outcomes_csv=out / "outcomes.csv",
        truth_json=out / "truth.json",
        patients=tuple(p.patient for p in cohort),
        institutions=tuple(s.name for s in SITES[:institutions]),
        files={pid: {k: out / v for k, v in f.items()} for pid, f in files.items()},
        identifiers=frozenset().union(*(p.identifiers for p in cohort)),
        truth=truth,
    )
