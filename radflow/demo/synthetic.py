"""The synthetic multi-institution demo archive: radflow's demo data and test data.

:func:`write_demo_archive` writes, for a cohort drawn from a seed::

    OUT/
      clinical.csv   patient,institution,age,sex,smoking,hpv,primary_site,stage
      genomic.csv    patient,TP53,KRAS,EGFR,PIK3CA,CDKN2A      (0/1 mutation flags)
      outcomes.csv   patient,os_months,os_event
      truth.json     the hidden ground truth (see below)
      INST_A/A0001/CT/IM*.dcm            CT, int16 stored, RescaleIntercept -1024
      INST_A/A0001/RTSTRUCT/RS.dcm       ROIs "GTV" and "Parotid_L" or "Lung_R"
      INST_A/A0001/PET/IM*.dcm           PET, BQML, decay-corrected to START, F-18
      INST_A/A0001/MR/t1.nii.gz          T1-weighted MR, float32, anisotropic voxels
      INST_A/A0001/MR/t1_label.nii.gz    1 = GTV, 2 = organ
      INST_A/A0001/MR/t1_label.json      {"1": "GTV", "2": organ}

Each patient is one :class:`~radflow.demo.phantoms.Phantom` in patient
coordinates, sampled by a CT, a PET and an MR scanner of its institution on
three different grids. Institutions differ the way real ones do (batch
effects): CT noise, kernel blur and a linear HU miscalibration; PET
resolution, noise and calibration; MR field strength, resolution, SNR,
intensity scale and bias field.

Overall survival follows a hidden proportional-hazards model (Weibull
baseline) of named image properties (log tumour volume, heterogeneity,
necrosis fraction) and clinical and genomic variables, with independent
censoring. ``truth.json`` records the model, the scanner models and per
patient the true image properties; it is ground truth for tests and must
never be an input of the product (it names patients by their identifiers).

Everything is a deterministic function of ``(seed, patient index)``: the
first ``n`` patients of a larger cohort are the ``n`` patients of a smaller
one. :func:`draw_cohort` draws the cohort without writing images (fast: used
to check the survival signal on hundreds of patients).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import ndimage

from radflow._atomic import atomic_dir
from radflow.errors import InputError, SettingsError
from radflow.demo.phantoms import ORGAN_ROI, Grid, Phantom, Tissue, Tumour, render_tissues, render_values

F18_HALF_LIFE_S = 6586.2
CT_RESCALE_INTERCEPT = -1024.0


# --------------------------------------------------------------------------- scanners


@dataclass(frozen=True)
class CTScanner:
    manufacturer: str
    model: str
    kernel: str
    kvp: float
    pixel_mm: float
    slice_mm: float
    matrix: int
    slices: int
    blur_mm: float  # Gaussian sigma of the reconstruction kernel
    noise_hu: float  # noise standard deviation
    noise_grain_px: float  # in-plane correlation of the noise (soft kernels: coarser)
    hu_scale: float  # miscalibration: reported HU = scale * HU + offset
    hu_offset: float


@dataclass(frozen=True)
class PETScanner:
    manufacturer: str
    model: str
    pixel_mm: float
    slice_mm: float
    matrix: int
    slices: int
    psf_fwhm_mm: float
    noise: float  # noise sd = noise * sqrt(SUV)
    calibration: float  # reported activity / true activity


@dataclass(frozen=True)
class MRScanner:
    manufacturer: str
    model: str
    field_strength_t: float
    pixel_mm: float
    slice_mm: float
    matrix: int
    slices: int
    signal: float  # arbitrary-unit intensity of fat
    snr: float  # fat signal / noise sd
    bias: float  # peak-to-centre amplitude of the linear bias field


@dataclass(frozen=True)
class Site:
    """One institution's scanners; ``name`` is the folder name (``INST_A``)."""

    name: str
    ct: CTScanner
    pet: PETScanner
    mr: MRScanner


SITES = (
    Site(
        "INST_A",
        CTScanner("SIEMENS", "SOMATOM Definition AS+", "B30f", 120.0, 1.5, 2.0, 128, 84,
                  blur_mm=0.6, noise_hu=12.0, noise_grain_px=0.8, hu_scale=1.0, hu_offset=0.0),
        PETScanner("SIEMENS", "Biograph mCT", 3.0, 3.0, 64, 56, psf_fwhm_mm=5.5, noise=0.10,
                   calibration=1.0),
        MRScanner("SIEMENS", "MAGNETOM Skyra", 3.0, 1.35, 4.0, 128, 40, signal=1400.0, snr=40.0,
                  bias=0.10),
    ),
    Site(
        "INST_B",
        CTScanner("GE MEDICAL SYSTEMS", "Discovery CT750 HD", "STANDARD", 120.0, 1.6, 2.5, 128, 68,
                  blur_mm=0.8, noise_hu=20.0, noise_grain_px=1.0, hu_scale=1.03, hu_offset=12.0),
        PETScanner("GE MEDICAL SYSTEMS", "Discovery 710", 3.5, 3.27, 56, 52, psf_fwhm_mm=7.0,
                   noise=0.15, calibration=1.07),
        MRScanner("GE MEDICAL SYSTEMS", "SIGNA Artist", 1.5, 0.9, 4.0, 192, 40, signal=600.0,
                  snr=22.0, bias=0.18),
    ),
    Site(
        "INST_C",
        CTScanner("Philips", "Brilliance 64", "B", 140.0, 1.8, 3.0, 128, 60,
                  blur_mm=1.0, noise_hu=30.0, noise_grain_px=1.3, hu_scale=0.95, hu_offset=-15.0),
        PETScanner("Philips", "GEMINI TF", 4.0, 4.0, 56, 42, psf_fwhm_mm=8.5, noise=0.20,
                   calibration=0.93),
        MRScanner("Philips", "Ingenia", 3.0, 1.2, 3.5, 144, 46, signal=2500.0, snr=30.0,
                  bias=0.14),
    ),
    Site(
        "INST_D",
        CTScanner("TOSHIBA", "Aquilion ONE", "FC13", 100.0, 1.45, 2.0, 128, 80,
                  blur_mm=0.7, noise_hu=16.0, noise_grain_px=0.9, hu_scale=1.06, hu_offset=5.0),
        PETScanner("TOSHIBA", "Celesteion", 3.2, 3.2, 64, 52, psf_fwhm_mm=6.5, noise=0.13,
                   calibration=1.03),
        MRScanner("TOSHIBA", "Vantage Titan", 1.5, 1.1, 5.0, 160, 34, signal=900.0, snr=25.0,
                  bias=0.12),
    ),
)

#: Tissue values per modality: HU, SUV (body weight) and T1-weighted signal
#: relative to fat. The tumour entry is the mean of its viable part.
CT_HU = {Tissue.AIR: -1000.0, Tissue.FAT: -100.0, Tissue.SOFT: 40.0, Tissue.LUNG_R: -820.0,
         Tissue.LUNG_L: -820.0, Tissue.BONE: 700.0, Tissue.CANAL: 25.0, Tissue.PAROTID_R: -15.0,
         Tissue.PAROTID_L: -15.0, Tissue.TUMOUR: 55.0, Tissue.NECROSIS: 12.0}
PET_SUV = {Tissue.AIR: 0.0, Tissue.FAT: 0.35, Tissue.SOFT: 1.0, Tissue.LUNG_R: 0.35,
           Tissue.LUNG_L: 0.35, Tissue.BONE: 1.3, Tissue.CANAL: 0.6, Tissue.PAROTID_R: 1.7,
           Tissue.PAROTID_L: 1.7, Tissue.TUMOUR: 0.0, Tissue.NECROSIS: 0.7}
MR_T1 = {Tissue.AIR: 0.0, Tissue.FAT: 1.0, Tissue.SOFT: 0.45, Tissue.LUNG_R: 0.06,
         Tissue.LUNG_L: 0.06, Tissue.BONE: 0.2, Tissue.CANAL: 0.3, Tissue.PAROTID_R: 0.8,
         Tissue.PAROTID_L: 0.8, Tissue.TUMOUR: 0.55, Tissue.NECROSIS: 0.22}


# --------------------------------------------------------------------------- hidden model

#: Primary sites: probability, anatomy, tumour centre offset from the body
#: centre (z, y, x) in mm (x mirrored for left/right in the neck), P(HPV+).
PRIMARY_SITES = {
    "oropharynx": (0.35, "neck", (5.0, -10.0, 17.0), 0.65),
    "larynx": (0.20, "neck", (-30.0, -16.0, 10.0), 0.05),
    "oral_cavity": (0.15, "neck", (25.0, -18.0, 16.0), 0.08),
    "lung": (0.30, "thorax", (-10.0, -3.0, -37.0), 0.02),
}

#: Log-hazard coefficients of the hidden model, per unit of each covariate,
#: and the reference patient whose hazard is the Weibull baseline.
HAZARD_COEFFICIENTS = {
    "log_tumour_volume_cm3": 1.0,
    "heterogeneity": 2.4,
    "necrosis_fraction": 3.0,
    "age_decades": 0.4,
    "stage": 0.5,
    "hpv": -1.2,
    "TP53": 0.4,
}
HAZARD_REFERENCE = {
    "log_tumour_volume_cm3": float(np.log(10.0)),
    "heterogeneity": 0.5,
    "necrosis_fraction": 0.1,
    "age_decades": 6.2,
    "stage": 3.0,
    "hpv": 0.0,
    "TP53": 0.0,
}
WEIBULL_SHAPE = 1.3
WEIBULL_SCALE_MONTHS = 36.0
#: Censoring: administrative (uniform accrual, so follow-up uniform in this
#: range) and loss to follow-up (exponential), both independent of outcome.
FOLLOW_UP_MONTHS = (36.0, 120.0)
LOSS_RATE_PER_MONTH = 1.0 / 240.0

STAGES = ("I", "II", "III", "IV")

_SURNAMES = ("HOLLOWAY", "FENWICK", "MARCHETTI", "OYELARAN", "VANDERBERG", "KOWALCZYK",
             "ASHDOWN", "LINDQVIST", "DUMONTIER", "KARAGIANNIS", "PEMBERTON", "NAKAMURA",
             "OKONKWO-BELL", "STRATHERN", "ALVAREZ-RUIZ", "BRODERICK", "HAUGLAND", "TREMBLAY",
             "WETHERALL", "ZIELINSKA", "CASTELLANOS", "FAIRWEATHER", "IBRAHIMOVIC", "QUENNELL")
_GIVEN = {"M": ("Arthur", "Tobias", "Rasmus", "Emeka", "Luca", "Henrik", "Oswin", "Mateo",
                "Declan", "Ivo", "Bartholomew", "Kenji"),
          "F": ("Imogen", "Saskia", "Ngozi", "Ottilie", "Marisol", "Astrid", "Perpetua", "Yuki",
                "Rosalind", "Elodie", "Wilhelmina", "Ines")}
_TOWNS = ("Northfield", "Ashbourne", "Kingsbridge", "Eastmoor", "Wrenfield", "Halvergate",
          "Saltcombe", "Thornbury", "Glenmuir", "Brackwater")
_HOSPITALS = ("General Hospital", "University Medical Centre", "Cancer Institute",
              "Royal Infirmary")


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per purpose, so that one draw never shifts another."""
    return np.random.default_rng([seed, *key])


def _uid(seed: int, *parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["radflow-demo", str(seed), *parts]))


def _person(rng: np.random.Generator, sex: str) -> str:
    return f"{rng.choice(_SURNAMES)}^{rng.choice(_GIVEN[sex])}"


@dataclass(frozen=True)
class DemoPatient:
    """One drawn patient: identifiers, clinical data, hidden truth and phantom.

    ``clinical``, ``genomic`` and ``outcome`` are the rows of the CSV files;
    ``truth`` the patient's entry of ``truth.json``; ``dicom`` the identifying
    header values (PatientName, PatientBirthDate, AccessionNumber,
    ReferringPhysicianName, StudyInstanceUID ...).
    """

    patient: str
    index: int
    seed: int
    site: Site
    clinical: dict
    genomic: dict
    outcome: dict
    truth: dict
    dicom: dict
    phantom: Phantom = field(repr=False)

    @property
    def identifiers(self) -> set[str]:
        """Values that identify the patient and must not reach any output."""
        ids = {self.patient, self.dicom["PatientName"], self.dicom["PatientName"].split("^")[0],
               self.dicom["PatientBirthDate"], self.dicom["AccessionNumber"],
               self.dicom["ReferringPhysicianName"], self.dicom["InstitutionName"],
               self.dicom["StudyInstanceUID"]}
        ids.update(self.dicom["SeriesInstanceUID"].values())
        return ids


def _check_counts(patients, seed, institutions) -> None:
    for name, value, lo in (("patients", patients, 1), ("seed", seed, 0),
                            ("institutions", institutions, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise SettingsError(f"{name} must be an integer >= {lo}, got {value!r}")
    if institutions > len(SITES):
        raise SettingsError(f"institutions must be at most {len(SITES)} (scanner profiles "
                            f"{', '.join(s.name for s in SITES)}), got {institutions}")


def _institution_names(seed: int) -> dict[str, str]:
    """Fake hospital names (InstitutionName) of the sites, drawn from the seed."""
    rng = _rng(seed, 0)
    towns = rng.permutation(len(_TOWNS))
    return {s.name: f"{_TOWNS[towns[k]]} {_HOSPITALS[k % len(_HOSPITALS)]}"
            for k, s in enumerate(SITES)}


def draw_patient(index: int, *, seed: int = 0, institutions: int = 3) -> DemoPatient:
    """Draw patient ``index`` of the cohort of ``seed`` (no images).

    Parameters
    ----------
    index : int
        0-based position in the cohort; patients are spread over the
        institutions in turn.
    seed : int
        Cohort seed (>= 0).
    institutions : int
        Number of institutions (1 to ``len(SITES)``).

    Returns
    -------
    DemoPatient
    """
    _check_counts(1, seed, institutions)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise SettingsError(f"index must be an integer >= 0, got {index!r}")
    site = SITES[index % institutions]
    patient = f"{site.name[-1]}{index // institutions + 1:04d}"
    rng = _rng(seed, 1, index)

    names = list(PRIMARY_SITES)
    primary = names[rng.choice(len(names), p=[PRIMARY_SITES[n][0] for n in names])]
    _, anatomy, offset_zyx, p_hpv = PRIMARY_SITES[primary]
    hpv = int(rng.random() < p_hpv)
    sex = "M" if rng.random() < (0.55 if anatomy == "thorax" else 0.75) else "F"
    age = int(np.clip(np.round(rng.normal(64.0 - 6.0 * hpv, 9.0)), 35, 90))
    if hpv:
        smoking = rng.choice(["never", "former", "current"], p=[0.45, 0.35, 0.20])
    else:
        smoking = rng.choice(["never", "former", "current"], p=[0.12, 0.40, 0.48])

    # Tumour: volume over an order of magnitude; large ones are more necrotic.
    volume_target = float(np.exp(np.clip(rng.normal(np.log(10.0), 0.75), np.log(2.0), np.log(45.0))))
    z_size = (np.log(volume_target) - np.log(10.0)) / 0.75
    heterogeneity = float(rng.beta(2.0, 2.0))
    necrosis = float(np.clip(0.10 + 0.06 * z_size + rng.normal(0.0, 0.06), 0.0, 0.35))
    suv_tumour = float(np.exp(rng.normal(np.log(8.0), 0.35)))
    lobulation = float(rng.uniform(0.08, 0.30))
    texture_length = float(rng.uniform(3.0, 6.0))
    stage_score = 0.9 * z_size + rng.normal(0.0, 0.8) + (0.4 if anatomy == "neck" else 0.0)
    stage = 1 + int(np.searchsorted([-1.0, -0.2, 0.6], stage_score))

    genomic = {
        "TP53": rng.random() < (0.15 if hpv else 0.75 if anatomy == "neck" else 0.5),
        "KRAS": rng.random() < (0.30 if anatomy == "thorax" else 0.03),
        "EGFR": rng.random() < ((0.35 if smoking == "never" else 0.12) if anatomy == "thorax"
                                else 0.05),
        "PIK3CA": rng.random() < (0.30 if hpv else 0.18),
        "CDKN2A": rng.random() < (0.05 if hpv else 0.45 if anatomy == "neck" else 0.30),
    }
    genomic = {g: int(v) for g, v in genomic.items()}

    # Geometry: body centre on the table, tumour near its site, random side in the neck.
    scale = float(rng.uniform(0.92, 1.06))
    body_zyx = (float(rng.uniform(-700.0, -300.0)), float(rng.uniform(-15.0, 15.0)),
                float(rng.uniform(-8.0, 8.0)))
    side = 1.0 if anatomy == "thorax" or rng.random() < 0.5 else -1.0
    jitter = rng.uniform(-5.0, 5.0, size=3)
    tumour_zyx = (body_zyx[0] + offset_zyx[0] + jitter[0],
                  body_zyx[1] + scale * offset_zyx[1] + jitter[1],
                  body_zyx[2] + side * scale * offset_zyx[2] + jitter[2])
    tumour = Tumour.draw(rng, centre_zyx=tumour_zyx,
                         radius_mm=(3.0 * volume_target * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0),
                         lobulation=lobulation, necrosis_fraction=necrosis,
                         texture_length_mm=texture_length)
    phantom = Phantom(anatomy, body_zyx, scale, tumour)
    volume = tumour.volume_mm3()

    # Survival from the hidden proportional-hazards model.
    covariates = {
        "log_tumour_volume_cm3": float(np.log(volume / 1000.0)),
        "heterogeneity": heterogeneity,
        "necrosis_fraction": necrosis,
        "age_decades": age / 10.0,
        "stage": float(stage),
        "hpv": float(hpv),
        "TP53": float(genomic["TP53"]),
    }
    lp = sum(HAZARD_COEFFICIENTS[k] * (covariates[k] - HAZARD_REFERENCE[k]) for k in covariates)
    # Inverse transform of S(t) = exp(-(t / scale)^k * exp(lp)).
    event_time = WEIBULL_SCALE_MONTHS * (-np.log(rng.random()) / np.exp(lp)) ** (1.0 / WEIBULL_SHAPE)
    censor_time = min(rng.uniform(*FOLLOW_UP_MONTHS), rng.exponential(1.0 / LOSS_RATE_PER_MONTH))
    os_event = int(event_time <= censor_time)
    os_months = round(float(min(event_time, censor_time)), 1)
    os_months = max(os_months, 0.1)

    # Identifiers and acquisition times (a separate stream: names never shift the truth).
    rid = _rng(seed, 2, index)
    study_day = date(2014, 1, 1) + timedelta(days=int(rid.integers(0, 8 * 365)))
    birth = study_day - timedelta(days=int(age * 365.25 + rid.integers(1, 360)))
    injection = datetime.combine(study_day, datetime.min.time()) + timedelta(
        minutes=int(rid.integers(7 * 60 + 30, 12 * 60)), seconds=int(rid.integers(0, 60)))
    pet_start = injection + timedelta(minutes=float(rid.uniform(55.0, 70.0)))
    weight = float(np.round(np.clip(rid.normal(80.0 if sex == "M" else 67.0, 12.0), 42.0, 140.0), 1))
    dose = float(np.round(np.clip(rid.normal(3.5, 0.3), 2.5, 4.5) * weight * 1e6, -5))
    dicom = {
        "PatientName": _person(rid, sex),
        "PatientID": patient,
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientWeight": weight,
        "AccessionNumber": f"RX{int(rid.integers(10**7, 10**8))}",
        "ReferringPhysicianName": _person(rid, str(rid.choice(["M", "F"]))),
        "InstitutionName": _institution_names(seed)[site.name],
        "StudyDate": study_day.strftime("%Y%m%d"),
        "InjectionDateTime": injection.strftime("%Y%m%d%H%M%S"),
        "PETStartDateTime": pet_start.strftime("%Y%m%d%H%M%S"),
        "RadionuclideTotalDose": dose,
        "StudyInstanceUID": _uid(seed, patient, "study"),
        "FrameOfReferenceUID": _uid(seed, patient, "frame"),
        "SeriesInstanceUID": {m: _uid(seed, patient, m) for m in ("CT", "PT")},
    }
    truth = {
        "institution": site.name,
        "primary_site": primary,
        "anatomy": anatomy,
        "organ_roi": ORGAN_ROI[anatomy][0],
        "body_centre_zyx_mm": list(body_zyx),
        "tumour_centre_zyx_mm": [float(c) for c in tumour_zyx],
        "tumour_volume_mm3": volume,
        "necrosis_fraction": necrosis,
        "necrotic_volume_mm3": necrosis * volume,
        "heterogeneity": heterogeneity,
        "texture_sd_hu": _texture_sd_hu(heterogeneity),
        "texture_length_mm": texture_length,
        "lobulation": lobulation,
        "suv_tumour": suv_tumour,
        "covariates": covariates,
        "linear_predictor": float(lp),
        "event_time_months": float(event_time),
        "censoring_time_months": float(censor_time),
    }
    clinical = {"patient": patient, "institution": site.name, "age": age, "sex": sex,
                "smoking": str(smoking), "hpv": "positive" if hpv else "negative",
                "primary_site": primary, "stage": STAGES[stage - 1]}
    return DemoPatient(
        patient=patient, index=index, seed=seed, site=site, clinical=clinical,
        genomic={"patient": patient, **genomic},
        outcome={"patient": patient, "os_months": os_months, "os_event": os_event},
        truth=truth, dicom=dicom, phantom=phantom,
    )


def _texture_sd_hu(heterogeneity: float) -> float:
    return 10.0 + 60.0 * heterogeneity


def draw_cohort(patients: int, *, seed: int = 0, institutions: int = 3) -> list[DemoPatient]:
    """Draw a cohort without writing anything (milliseconds per patient).

    Parameters
    ----------
    patients : int
        Number of patients (>= 1).
    seed : int
        Seed (>= 0); same seed, same cohort.
    institutions : int
        Number of institutions (1 to ``len(SITES)``).

    Returns
    -------
    list of DemoPatient
    """
    _check_counts(patients, seed, institutions)
    return [draw_patient(i, seed=seed, institutions=institutions) for i in range(patients)]


def hidden_model() -> dict:
    """The survival model and the scanner models, as stored in ``truth.json``."""
    return {
        "survival": {
            "form": "h(t | x) = h0(t) * exp(sum_j beta_j * (x_j - reference_j))",
            "baseline": {"distribution": "weibull", "shape": WEIBULL_SHAPE,
                         "scale_months": WEIBULL_SCALE_MONTHS,
                         "h0(t)": "(shape / scale) * (t / scale) ** (shape - 1)"},
            "coefficients": dict(HAZARD_COEFFICIENTS),
            "reference": dict(HAZARD_REFERENCE),
            "covariates": {
                "log_tumour_volume_cm3": "natural log of the true GTV volume in cm3",
                "heterogeneity": "0..1; CT texture sd = 10 + 60 * heterogeneity HU, PET and MR "
                                 "texture proportional to it",
                "necrosis_fraction": "necrotic core volume / GTV volume",
                "age_decades": "age / 10",
                "stage": "1..4 for I..IV",
                "hpv": "1 if positive",
                "TP53": "1 if mutated",
            },
            "censoring": {"follow_up_months_uniform": list(FOLLOW_UP_MONTHS),
                          "loss_rate_per_month": LOSS_RATE_PER_MONTH},
        },
        "tissue_values": {
            "ct_hu": {t.name: v for t, v in CT_HU.items()},
            "pet_suv": {t.name: v for t, v in PET_SUV.items()},
            "mr_t1_relative_to_fat": {t.name: v for t, v in MR_T1.items()},
            "note": "viable tumour: CT 55 HU, PET suv_tumour, MR 0.55, each plus its texture",
        },
    }


# --------------------------------------------------------------------------- scanners at work


@dataclass(frozen=True, eq=False)
class SimulatedImage:
    """One acquisition of a phantom.

    Attributes
    ----------
    grid : Grid
        Voxel geometry (identity direction).
    values : ndarray, shape ``grid.shape_zyx``
        CT: HU (float32, rounded and clipped as stored); PT: SUV body weight
        (float32, the values before quantisation to the stored activity);
        MR: T1-weighted signal (float32 holding whole numbers, arbitrary units).
    labels : ndarray of uint8, shape ``grid.shape_zyx``
        1 = GTV (viable and necrotic tumour), 2 = the organ ROI, 0 elsewhere.
    """

    grid: Grid
    values: np.ndarray
    labels: np.ndarray


def _labels(tissues: np.ndarray, organ: Tissue) -> np.ndarray:
    labels = np.zeros(tissues.shape, dtype=np.uint8)
    labels[tissues == organ] = 2
    labels[(tissues == Tissue.TUMOUR) | (tissues == Tissue.NECROSIS)] = 1
    return labels


def _correlated_noise(rng: np.random.Generator, shape, sigma_px) -> np.ndarray:
    """Zero-mean unit-variance Gaussian noise smoothed by ``sigma_px`` (per axis)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_px)
    return noise / noise.std()


def _grid(patient: DemoPatient, rng, slices, matrix, slice_mm, pixel_mm) -> Grid:
    """A scan grid around the body centre, shifted by a random table offset."""
    centre = np.asarray(patient.phantom.centre_zyx) + rng.uniform(-4.0, 4.0, size=3)
    return Grid.centred_on(centre, (slices, matrix, matrix), (slice_mm, pixel_mm, pixel_mm))


def simulate_ct(patient: DemoPatient) -> SimulatedImage:
    """The CT of ``patient`` by its institution's scanner (HU, before storage)."""
    ct, truth = patient.site.ct, patient.truth
    rng = _rng(patient.seed, 3, patient.index, 0)
    grid = _grid(patient, rng, ct.slices, ct.matrix, ct.slice_mm, ct.pixel_mm)
    tissues = render_tissues(patient.phantom, grid)
    hu = render_values(patient.phantom, grid, tissues, CT_HU, truth["texture_sd_hu"])
    hu = ndimage.gaussian_filter(hu, (0.4, ct.blur_mm / ct.pixel_mm, ct.blur_mm / ct.pixel_mm))
    hu = ct.hu_scale * hu + ct.hu_offset
    hu += ct.noise_hu * _correlated_noise(rng, hu.shape, (0.0, ct.noise_grain_px, ct.noise_grain_px))
    hu = np.clip(np.round(hu), CT_RESCALE_INTERCEPT, 3071.0).astype(np.float32)
    return SimulatedImage(grid, hu, _labels(tissues, ORGAN_ROI[patient.phantom.anatomy][1]))


def simulate_pet(patient: DemoPatient) -> SimulatedImage:
    """The PET of ``patient`` in SUV: partial volume, scanner PSF, noise, calibration."""
    pet, truth = patient.site.pet, patient.truth
    rng = _rng(patient.seed, 3, patient.index, 1)
    grid = _grid(patient, rng, pet.slices, pet.matrix, pet.slice_mm, pet.pixel_mm)
    # Render at twice the resolution and average: the partial-volume effect of large voxels.
    fine = Grid(tuple(2 * n for n in grid.shape_zyx), tuple(s / 2 for s in grid.spacing_zyx),
                tuple(o - s / 4 for o, s in zip(grid.origin_zyx, grid.spacing_zyx)))
    tissues = render_tissues(patient.phantom, fine)
    values = dict(PET_SUV)
    values[Tissue.TUMOUR] = truth["suv_tumour"]
    amplitude = (0.1 + 0.3 * truth["heterogeneity"]) * truth["suv_tumour"]
    suv = render_values(patient.phantom, fine, tissues, values, amplitude)
    nz, ny, nx = grid.shape_zyx
    suv = np.maximum(suv, 0.0).reshape(nz, 2, ny, 2, nx, 2).mean(axis=(1, 3, 5))
    sigma_mm = pet.psf_fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    suv = ndimage.gaussian_filter(suv, tuple(sigma_mm / s for s in grid.spacing_zyx))
    suv += pet.noise * np.sqrt(suv) * _correlated_noise(rng, suv.shape, 0.7)
    suv = np.maximum(pet.calibration * suv, 0.0).astype(np.float32)
    coarse = render_tissues(patient.phantom, grid)
    return SimulatedImage(grid, suv, _labels(coarse, ORGAN_ROI[patient.phantom.anatomy][1]))


def simulate_mr(patient: DemoPatient) -> SimulatedImage:
    """The T1-weighted MR of ``patient``: bias field and Rician noise (float32)."""
    mr, truth = patient.site.mr, patient.truth
    rng = _rng(patient.seed, 3, patient.index, 2)
    grid = _grid(patient, rng, mr.slices, mr.matrix, mr.slice_mm, mr.pixel_mm)
    tissues = render_tissues(patient.phantom, grid)
    values = dict(MR_T1)
    t1 = render_values(patient.phantom, grid, tissues, values,
                       (0.05 + 0.2 * truth["heterogeneity"]) * MR_T1[Tissue.TUMOUR])
    t1 = ndimage.gaussian_filter(t1, (0.3, 0.6, 0.6))
    # A linear receive-coil bias along a random direction, +-bias at the field edges.
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    z, y, x = grid.axes()
    half = 0.5 * np.asarray(grid.shape_zyx) * np.asarray(grid.spacing_zyx)
    ramp = (direction[0] * (z - z.mean()) / half[0])[:, None, None] \
        + (direction[1] * (y - y.mean()) / half[1])[None, :, None] \
        + (direction[2] * (x - x.mean()) / half[2])[None, None, :]
    signal = np.float32(mr.signal) * t1 * (1.0 + mr.bias * ramp).astype(np.float32)
    sd = np.float32(mr.signal / mr.snr)
    real = signal + sd * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sd * rng.standard_normal(signal.shape, dtype=np.float32)
    # Whole numbers, as scanners store magnitudes; it also lets gzip compress the file 2.5x.
    t1w = np.round(np.hypot(real, imag)).astype(np.float32)
    return SimulatedImage(grid, t1w, _labels(tissues, ORGAN_ROI[patient.phantom.anatomy][1]))


# --------------------------------------------------------------------------- writing


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
    person = {k: d[k] for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                                "PatientAge", "PatientWeight")}
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
        series.update({
            "SeriesDescription": "CT low dose for attenuation correction",
            "ConvolutionKernel": ct.kernel,
            "KVP": ct.kvp,
            "XRayTubeCurrent": 120,
            "ReconstructionDiameter": round(ct.pixel_mm * ct.matrix, 1),
        })
    else:
        series.update({
            "SeriesDescription": "PET FDG AC",
            "ReconstructionMethod": "OSEM",
            "AttenuationCorrectionMethod": "CT-based",
            "ScatterCorrectionMethod": "model-based",
            "DecayFactor": round(2.0 ** ((pet_start - datetime.strptime(
                d["InjectionDateTime"], "%Y%m%d%H%M%S")).total_seconds() / F18_HALF_LIFE_S), 6),
        })
    return person, study, series


def _pet_activity(patient: DemoPatient, suv: np.ndarray) -> tuple[np.ndarray, float]:
    """SUV (body weight) -> int16 stored activity (Bq/ml) and its rescale slope.

    The image is decay-corrected to the series start (DecayCorrection START),
    so activity = SUV * (dose decayed from injection to series start) / weight.
    """
    d = patient.dicom
    elapsed_s = (datetime.strptime(d["PETStartDateTime"], "%Y%m%d%H%M%S")
                 - datetime.strptime(d["InjectionDateTime"], "%Y%m%d%H%M%S")).total_seconds()
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
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in grid.spacing_zyx[::-1]])
    image.SetOrigin([float(o) for o in grid.origin_zyx[::-1]])
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_patient(patient: DemoPatient, folder: Path) -> dict:
    """Write the CT, RTSTRUCT, PET and MR of one patient; returns their paths and grids."""
    from radflow.io.dicom_write import write_image_series, write_rtstruct

    organ = ORGAN_ROI[patient.phantom.anatomy][0]
    grids = {}

    ct = simulate_ct(patient)
    person, study, series = _dicom_dicts(patient, "CT")
    ct_files = write_image_series(
        (ct.values - CT_RESCALE_INTERCEPT).astype(np.int16), folder / "CT", modality="CT",
        spacing_zyx=ct.grid.spacing_zyx, origin_zyx=ct.grid.origin_zyx, patient=person,
        study=study, series=series, rescale_slope=1.0, rescale_intercept=CT_RESCALE_INTERCEPT)
    write_rtstruct(folder / "RTSTRUCT" / "RS.dcm", ct_files,
                   {"GTV": ct.labels == 1, organ: ct.labels == 2})
    grids["CT"] = ct.grid

    pet = simulate_pet(patient)
    stored, slope = _pet_activity(patient, pet.values)
    person, study, series = _dicom_dicts(patient, "PT")
    injection = patient.dicom["InjectionDateTime"]
    write_image_series(
        stored, folder / "PET", modality="PT", spacing_zyx=pet.grid.spacing_zyx,
        origin_zyx=pet.grid.origin_zyx, patient=person, study=study, series=series,
        rescale_slope=slope, rescale_intercept=0.0,
        pet={"Units": "BQML", "DecayCorrection": "START",
             "CorrectedImage": ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"],
             "Radiopharmaceutical": "Fludeoxyglucose",
             "RadionuclideTotalDose": patient.dicom["RadionuclideTotalDose"],
             "RadionuclideHalfLife": F18_HALF_LIFE_S,
             "RadiopharmaceuticalStartDateTime": injection,
             "RadiopharmaceuticalStartTime": injection[8:]})
    grids["PT"] = pet.grid

    mr = simulate_mr(patient)
    (folder / "MR").mkdir()
    _write_nifti(folder / "MR" / "t1.nii.gz", mr.values, mr.grid)
    _write_nifti(folder / "MR" / "t1_label.nii.gz", mr.labels, mr.grid)
    (folder / "MR" / "t1_label.json").write_text(json.dumps({"1": "GTV", "2": organ}) + "\n")
    grids["MR"] = mr.grid
    return {m: {"shape_zyx": list(g.shape_zyx), "spacing_zyx_mm": list(g.spacing_zyx),
                "origin_zyx_mm": list(g.origin_zyx)} for m, g in grids.items()}


def _truth(cohort: list[DemoPatient], seed: int, grids: dict) -> dict:
    used = sorted({p.site.name for p in cohort})
    return {
        "description": (
            "Hidden ground truth of the radflow synthetic archive, for tests only: never an input "
            "of the product. 'survival' is the proportional-hazards model the outcomes were drawn "
            "from; 'institutions' the scanner models (batch effects); 'patients' the true image "
            "properties (exact tumour volume by quadrature of its surface, not a voxel count), "
            "covariates, linear predictor and the latent event and censoring times."),
        "seed": seed,
        **hidden_model(),
        "institutions": {
            s.name: {"ct": _asdict(s.ct), "pet": _asdict(s.pet), "mr": _asdict(s.mr)}
            for s in SITES if s.name in used
        },
        "patients": {p.patient: {**p.truth, "grids": grids.get(p.patient)} for p in cohort},
    }


def _asdict(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)


def write_demo_archive(out, *, patients: int = 12, seed: int = 0, institutions: int = 3) -> DemoArchive:
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
    _check_counts(patients, seed, institutions)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "already exists and is not an empty folder; choose a new folder "
                              "or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    cohort = draw_cohort(patients, seed=seed, institutions=institutions)
    with atomic_dir(out, fsync=False) as tmp:  # the archive appears whole or not at all
        grids, files = {}, {}
        for p in cohort:
            rel = Path(p.site.name) / p.patient
            grids[p.patient] = _write_patient(p, tmp / rel)
            files[p.patient] = {"CT": rel / "CT", "RTSTRUCT": rel / "RTSTRUCT" / "RS.dcm",
                                "PT": rel / "PET", "MR": rel / "MR" / "t1.nii.gz",
                                "MR_label": rel / "MR" / "t1_label.nii.gz",
                                "MR_label_names": rel / "MR" / "t1_label.json"}
        _write_csv(tmp / "clinical.csv", [p.clinical for p in cohort])
        _write_csv(tmp / "genomic.csv", [p.genomic for p in cohort])
        _write_csv(tmp / "outcomes.csv", [p.outcome for p in cohort])
        truth = _truth(cohort, seed, grids)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
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


# --------------------------------------------------------------------------- command line


def run(args) -> int:
    """Run ``radflow demo-data`` with parsed arguments; prints one summary line."""
    archive = write_demo_archive(args.out, patients=args.patients, seed=args.seed,
                                 institutions=args.institutions)
    print(f"wrote {len(archive.patients)} patients from {len(archive.institutions)} "
          f"institutions to {archive.root}")
    return 0
