"""The synthetic multi-institution demo archive: radflow's demo data and test data.

:func:`write_demo_archive` writes, for a cohort drawn from a seed::

    OUT/
      clinical.csv   patient,institution,age,sex,smoking,hpv,primary_site,stage
      genomic.csv    patient,TP53,KRAS,EGFR,PIK3CA,CDKN2A      (0/1 mutation flags)
      outcomes.csv   patient,os_months,os_event
      truth.json     the hidden ground truth (see below)
      archive.json   {"patients": n, "seed": s, "institutions": k}, the parameters
      INST_A/A0001/CT/IM*.dcm            CT, int16 stored, RescaleIntercept -1024
      INST_A/A0001/RTSTRUCT/RS.dcm       ROIs "GTV" and "Parotid_L" or "Lung_R"
      INST_A/A0001/PET/IM*.dcm           PET, BQML, decay-corrected to START, F-18
      INST_A/A0001/MR/t1.nii.gz          T1-weighted MR, float32, anisotropic voxels
      INST_A/A0001/MR/t1_label.nii.gz    1 = GTV, 2 = organ
      INST_A/A0001/MR/t1_label.json      {"1": "GTV", "2": organ}

The archive is built in four modules, each usable alone:

- :mod:`radflow.demo.scanners`: the institutions and their scanner models;
- :mod:`radflow.demo.cohort`: the patients and the hidden survival model
  (:func:`draw_patient`, :func:`draw_cohort`, :func:`hidden_model`);
- :mod:`radflow.demo.imaging`: CT, PET and MR images of a patient
  (:func:`simulate_ct`, :func:`simulate_pet`, :func:`simulate_mr`);
- :mod:`radflow.demo.archive`: the files (:func:`write_demo_archive`).

This module gathers their public names and holds ``radflow demo-data``
(:func:`run`).

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

from argparse import Namespace

from radflow.demo.archive import DemoArchive, write_demo_archive
from radflow.demo.cohort import DemoPatient, draw_cohort, draw_patient, hidden_model
from radflow.demo.imaging import SimulatedImage, simulate_ct, simulate_mr, simulate_pet
from radflow.demo.scanners import SITES, CTScanner, MRScanner, PETScanner, Site

__all__ = [
    "SITES",
    "CTScanner",
    "DemoArchive",
    "DemoPatient",
    "MRScanner",
    "PETScanner",
    "SimulatedImage",
    "Site",
    "draw_cohort",
    "draw_patient",
    "hidden_model",
    "run",
    "simulate_ct",
    "simulate_mr",
    "simulate_pet",
    "write_demo_archive",
]


def run(args: Namespace) -> int:
    """Run ``radflow demo-data`` with parsed arguments; prints one summary line."""
    archive = write_demo_archive(
        args.out, patients=args.patients, seed=args.seed, institutions=args.institutions
    )
    print(
        f"wrote {len(archive.patients)} patients from {len(archive.institutions)} "
        f"institutions to {archive.root}"
    )
    return 0
