"""The synthetic cohort: patients drawn from a hidden survival model, without images.

:func:`draw_patient` draws one patient of a seeded cohort: institution,
clinical and genomic data, a tumour phantom (:mod:`radflow.demo.phantoms`),
the identifying DICOM header values, and overall survival from a hidden
proportional-hazards model (Weibull baseline) of named image properties (log
tumour volume, heterogeneity, necrosis fraction) and clinical and genomic
variables, with independent censoring. :func:`hidden_model` is that model as
``truth.json`` records it. :func:`draw_cohort` draws a cohort in milliseconds
per patient (used to check the survival signal on hundreds of patients).

Everything is a deterministic function of ``(seed, patient index)``, one
random stream per purpose (:func:`random_stream`): the first ``n`` patients
of a larger cohort are the ``n`` patients of a smaller one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from pydicom.uid import generate_uid

from radflow.demo.phantoms import ORGAN_ROI, Phantom, Tumour
from radflow.demo.scanners import CT_HU, MR_T1, PET_SUV, SITES, Site
from radflow.errors import SettingsError

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

_SURNAMES = (
    "HOLLOWAY",
    "FENWICK",
    "MARCHETTI",
    "OYELARAN",
    "VANDERBERG",
    "KOWALCZYK",
    "ASHDOWN",
    "LINDQVIST",
    "DUMONTIER",
    "KARAGIANNIS",
    "PEMBERTON",
    "NAKAMURA",
    "OKONKWO-BELL",
    "STRATHERN",
    "ALVAREZ-RUIZ",
    "BRODERICK",
    "HAUGLAND",
    "TREMBLAY",
    "WETHERALL",
    "ZIELINSKA",
    "CASTELLANOS",
    "FAIRWEATHER",
    "IBRAHIMOVIC",
    "QUENNELL",
)
_GIVEN = {
    "M": (
        "Arthur",
        "Tobias",
        "Rasmus",
        "Emeka",
        "Luca",
        "Henrik",
        "Oswin",
        "Mateo",
        "Declan",
        "Ivo",
        "Bartholomew",
        "Kenji",
    ),
    "F": (
        "Imogen",
        "Saskia",
        "Ngozi",
        "Ottilie",
        "Marisol",
        "Astrid",
        "Perpetua",
        "Yuki",
        "Rosalind",
        "Elodie",
        "Wilhelmina",
        "Ines",
    ),
}
_TOWNS = (
    "Northfield",
    "Ashbourne",
    "Kingsbridge",
    "Eastmoor",
    "Wrenfield",
    "Halvergate",
    "Saltcombe",
    "Thornbury",
    "Glenmuir",
    "Brackwater",
)
_HOSPITALS = (
    "General Hospital",
    "University Medical Centre",
    "Cancer Institute",
    "Royal Infirmary",
)


def random_stream(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per purpose, so that one draw never shifts another.

    Keys in use: ``(0,)`` hospital names, ``(1, index)`` a patient's clinical data,
    tumour and survival, ``(2, index)`` its identifiers and acquisition times,
    ``(3, index, 0 | 1 | 2)`` its CT, PET and MR acquisition
    (:mod:`radflow.demo.imaging`).
    """
    return np.random.default_rng([seed, *key])


def _uid(seed: int, *parts: str) -> str:
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
        ids = {
            self.patient,
            self.dicom["PatientName"],
            self.dicom["PatientName"].split("^")[0],
            self.dicom["PatientBirthDate"],
            self.dicom["AccessionNumber"],
            self.dicom["ReferringPhysicianName"],
            self.dicom["InstitutionName"],
            self.dicom["StudyInstanceUID"],
        }
        ids.update(self.dicom["SeriesInstanceUID"].values())
        return ids


def _check_integer(name: str, value: object, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise SettingsError(f"{name} must be an integer >= {lo}, got {value!r}")


def check_cohort(patients: int, seed: int, institutions: int) -> None:
    """Refuse a patient count, seed or institution count out of range (SettingsError)."""
    _check_integer("patients", patients, 1)
    _check_integer("seed", seed, 0)
    _check_integer("institutions", institutions, 1)
    if institutions > len(SITES):
        raise SettingsError(
            f"institutions must be at most {len(SITES)} (scanner profiles "
            f"{', '.join(s.name for s in SITES)}), got {institutions}"
        )


def _institution_names(seed: int) -> dict[str, str]:
    """Fake hospital names (InstitutionName) of the sites, drawn from the seed."""
    rng = random_stream(seed, 0)
    towns = rng.permutation(len(_TOWNS))
    return {
        s.name: f"{_TOWNS[towns[k]]} {_HOSPITALS[k % len(_HOSPITALS)]}" for k, s in enumerate(SITES)
    }


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
    check_cohort(1, seed, institutions)
    _check_integer("index", index, 0)
    site = SITES[index % institutions]
    patient = f"{site.name[-1]}{index // institutions + 1:04d}"
    rng = random_stream(seed, 1, index)

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
    volume_target = float(
        np.exp(np.clip(rng.normal(np.log(10.0), 0.75), np.log(2.0), np.log(45.0)))
    )
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
        "EGFR": rng.random()
        < ((0.35 if smoking == "never" else 0.12) if anatomy == "thorax" else 0.05),
        "PIK3CA": rng.random() < (0.30 if hpv else 0.18),
        "CDKN2A": rng.random() < (0.05 if hpv else 0.45 if anatomy == "neck" else 0.30),
    }
    genomic = {g: int(v) for g, v in genomic.items()}

    # Geometry: body centre on the table, tumour near its site, random side in the neck.
    scale = float(rng.uniform(0.92, 1.06))
    body_zyx = (
        float(rng.uniform(-700.0, -300.0)),
        float(rng.uniform(-15.0, 15.0)),
        float(rng.uniform(-8.0, 8.0)),
    )
    side = 1.0 if anatomy == "thorax" or rng.random() < 0.5 else -1.0
    jitter = rng.uniform(-5.0, 5.0, size=3)
    tumour_zyx = (
        body_zyx[0] + offset_zyx[0] + jitter[0],
        body_zyx[1] + scale * offset_zyx[1] + jitter[1],
        body_zyx[2] + side * scale * offset_zyx[2] + jitter[2],
    )
    tumour = Tumour.draw(
        rng,
        centre_zyx=tumour_zyx,
        radius_mm=(3.0 * volume_target * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0),
        lobulation=lobulation,
        necrosis_fraction=necrosis,
        texture_length_mm=texture_length,
    )
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
    event_time = WEIBULL_SCALE_MONTHS * (-np.log(rng.random()) / np.exp(lp)) ** (
        1.0 / WEIBULL_SHAPE
    )
    censor_time = min(rng.uniform(*FOLLOW_UP_MONTHS), rng.exponential(1.0 / LOSS_RATE_PER_MONTH))
    os_event = int(event_time <= censor_time)
    os_months = round(float(min(event_time, censor_time)), 1)
    os_months = max(os_months, 0.1)

    # Identifiers and acquisition times (a separate stream: names never shift the truth).
    rid = random_stream(seed, 2, index)
    study_day = date(2014, 1, 1) + timedelta(days=int(rid.integers(0, 8 * 365)))
    birth = study_day - timedelta(days=int(age * 365.25 + rid.integers(1, 360)))
    injection = datetime.combine(study_day, datetime.min.time()) + timedelta(
        minutes=int(rid.integers(7 * 60 + 30, 12 * 60)), seconds=int(rid.integers(0, 60))
    )
    pet_start = injection + timedelta(minutes=float(rid.uniform(55.0, 70.0)))
    weight = float(
        np.round(np.clip(rid.normal(80.0 if sex == "M" else 67.0, 12.0), 42.0, 140.0), 1)
    )
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
    clinical = {
        "patient": patient,
        "institution": site.name,
        "age": age,
        "sex": sex,
        "smoking": str(smoking),
        "hpv": "positive" if hpv else "negative",
        "primary_site": primary,
        "stage": STAGES[stage - 1],
    }
    return DemoPatient(
        patient=patient,
        index=index,
        seed=seed,
        site=site,
        clinical=clinical,
        genomic={"patient": patient, **genomic},
        outcome={"patient": patient, "os_months": os_months, "os_event": os_event},
        truth=truth,
        dicom=dicom,
        phantom=phantom,
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
    check_cohort(patients, seed, institutions)
    return [draw_patient(i, seed=seed, institutions=institutions) for i in range(patients)]


def hidden_model() -> dict:
    """The survival model and the scanner models, as stored in ``truth.json``."""
    return {
        "survival": {
            "form": "h(t | x) = h0(t) * exp(sum_j beta_j * (x_j - reference_j))",
            "baseline": {
                "distribution": "weibull",
                "shape": WEIBULL_SHAPE,
                "scale_months": WEIBULL_SCALE_MONTHS,
                "h0(t)": "(shape / scale) * (t / scale) ** (shape - 1)",
            },
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
            "censoring": {
                "follow_up_months_uniform": list(FOLLOW_UP_MONTHS),
                "loss_rate_per_month": LOSS_RATE_PER_MONTH,
            },
        },
        "tissue_values": {
            "ct_hu": {t.name: v for t, v in CT_HU.items()},
            "pet_suv": {t.name: v for t, v in PET_SUV.items()},
            "mr_t1_relative_to_fat": {t.name: v for t, v in MR_T1.items()},
            "note": "viable tumour: CT 55 HU, PET suv_tumour, MR 0.55, each plus its texture",
        },
    }
