"""The scanners at work: CT, PET and MR images of a drawn patient's phantom.

Each function renders the patient's phantom on a grid of its institution's
scanner (:mod:`radflow.demo.scanners`) and applies that scanner's model:
CT kernel blur, correlated noise and HU miscalibration; PET partial volume,
point-spread function, Poisson-like noise and calibration; MR bias field and
Rician noise. The random stream of each image is its own
(:func:`radflow.demo.cohort.random_stream`), so one never shifts another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radflow.demo.cohort import DemoPatient, random_stream
from radflow.demo.phantoms import ORGAN_ROI, Grid, Tissue, render_tissues, render_values
from radflow.demo.scanners import (
    CT_HU,
    CT_RESCALE_INTERCEPT,
    MR_T1,
    PET_SUV,
    CTScanner,
    MRScanner,
    PETScanner,
)


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


def _labels(patient: DemoPatient, tissues: np.ndarray) -> np.ndarray:
    """1 = GTV (viable and necrotic tumour), 2 = the patient's organ ROI, 0 elsewhere."""
    organ = ORGAN_ROI[patient.phantom.anatomy][1]
    labels = np.zeros(tissues.shape, dtype=np.uint8)
    labels[tissues == organ] = 2
    labels[(tissues == Tissue.TUMOUR) | (tissues == Tissue.NECROSIS)] = 1
    return labels


def _correlated_noise(rng: np.random.Generator, shape, sigma_px) -> np.ndarray:
    """Zero-mean unit-variance Gaussian noise smoothed by ``sigma_px`` (per axis)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_px)
    return noise / noise.std()


def _scan(
    patient: DemoPatient, scanner: CTScanner | PETScanner | MRScanner, acquisition: int
) -> tuple[np.random.Generator, Grid]:
    """The random stream of an acquisition (0 CT, 1 PET, 2 MR) and its scan grid.

    The grid lies around the body centre, shifted by a random table offset (the
    stream's first draw), with the scanner's matrix and voxel size.
    """
    rng = random_stream(patient.seed, 3, patient.index, acquisition)
    centre = np.asarray(patient.phantom.centre_zyx) + rng.uniform(-4.0, 4.0, size=3)
    grid = Grid.centred_on(
        centre,
        (scanner.slices, scanner.matrix, scanner.matrix),
        (scanner.slice_mm, scanner.pixel_mm, scanner.pixel_mm),
    )
    return rng, grid


def simulate_ct(patient: DemoPatient) -> SimulatedImage:
    """The CT of ``patient`` by its institution's scanner (HU, before storage)."""
    ct, truth = patient.site.ct, patient.truth
    rng, grid = _scan(patient, ct, 0)
    tissues = render_tissues(patient.phantom, grid)
    hu = render_values(patient.phantom, grid, tissues, CT_HU, truth["texture_sd_hu"])
    hu = ndimage.gaussian_filter(hu, (0.4, ct.blur_mm / ct.pixel_mm, ct.blur_mm / ct.pixel_mm))
    hu = ct.hu_scale * hu + ct.hu_offset
    grain = (0.0, ct.noise_grain_px, ct.noise_grain_px)
    hu += ct.noise_hu * _correlated_noise(rng, hu.shape, grain)
    hu = np.clip(np.round(hu), CT_RESCALE_INTERCEPT, 3071.0).astype(np.float32)
    return SimulatedImage(grid, hu, _labels(patient, tissues))


def simulate_pet(patient: DemoPatient) -> SimulatedImage:
    """The PET of ``patient`` in SUV: partial volume, scanner PSF, noise, calibration."""
    pet, truth = patient.site.pet, patient.truth
    rng, grid = _scan(patient, pet, 1)
    # Render at twice the resolution and average: the partial-volume effect of large voxels.
    fine = Grid(
        tuple(2 * n for n in grid.shape_zyx),
        tuple(s / 2 for s in grid.spacing_zyx),
        tuple(o - s / 4 for o, s in zip(grid.origin_zyx, grid.spacing_zyx)),
    )
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
    return SimulatedImage(grid, suv, _labels(patient, coarse))


def simulate_mr(patient: DemoPatient) -> SimulatedImage:
    """The T1-weighted MR of ``patient``: bias field and Rician noise (float32)."""
    mr, truth = patient.site.mr, patient.truth
    rng, grid = _scan(patient, mr, 2)
    tissues = render_tissues(patient.phantom, grid)
    values = dict(MR_T1)
    t1 = render_values(
        patient.phantom,
        grid,
        tissues,
        values,
        (0.05 + 0.2 * truth["heterogeneity"]) * MR_T1[Tissue.TUMOUR],
    )
    t1 = ndimage.gaussian_filter(t1, (0.3, 0.6, 0.6))
    # A linear receive-coil bias along a random direction, +-bias at the field edges.
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    z, y, x = grid.axes()
    half = 0.5 * np.asarray(grid.shape_zyx) * np.asarray(grid.spacing_zyx)
    ramp = (
        (direction[0] * (z - z.mean()) / half[0])[:, None, None]
        + (direction[1] * (y - y.mean()) / half[1])[None, :, None]
        + (direction[2] * (x - x.mean()) / half[2])[None, None, :]
    )
    signal = np.float32(mr.signal) * t1 * (1.0 + mr.bias * ramp).astype(np.float32)
    sd = np.float32(mr.signal / mr.snr)
    real = signal + sd * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sd * rng.standard_normal(signal.shape, dtype=np.float32)
    # Whole numbers, as scanners store magnitudes; it also lets gzip compress the file 2.5x.
    t1w = np.round(np.hypot(real, imag)).astype(np.float32)
    return SimulatedImage(grid, t1w, _labels(patient, tissues))
