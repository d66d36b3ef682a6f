"""The scanners of the synthetic institutions and the tissue values they image.

Each institution (:class:`Site`) has a CT, a PET and an MR scanner whose
parameters make its images differ from the others' the way real sites do
(batch effects): CT noise, kernel blur and a linear HU miscalibration; PET
resolution, noise and calibration; MR field strength, resolution, SNR,
intensity scale and bias field. :mod:`radflow.demo.imaging` applies them and
``truth.json`` of the archive records them.
"""

from __future__ import annotations

from dataclasses import dataclass

from radflow.demo.phantoms import Tissue

#: Half-life of F-18 (s), written into the PET headers.
F18_HALF_LIFE_S = 6586.2
#: RescaleIntercept of the stored CT (stored int16 = HU + 1024), the lowest HU it holds.
CT_RESCALE_INTERCEPT = -1024.0


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
        CTScanner(
            "SIEMENS",
            "SOMATOM Definition AS+",
            "B30f",
            120.0,
            1.5,
            2.0,
            128,
            84,
            blur_mm=0.6,
            noise_hu=12.0,
            noise_grain_px=0.8,
            hu_scale=1.0,
            hu_offset=0.0,
        ),
        PETScanner(
            "SIEMENS",
            "Biograph mCT",
            3.0,
            3.0,
            64,
            56,
            psf_fwhm_mm=5.5,
            noise=0.10,
            calibration=1.0,
        ),
        MRScanner(
            "SIEMENS", "MAGNETOM Skyra", 3.0, 1.35, 4.0, 128, 40, signal=1400.0, snr=40.0, bias=0.10
        ),
    ),
    Site(
        "INST_B",
        CTScanner(
            "GE MEDICAL SYSTEMS",
            "Discovery CT750 HD",
            "STANDARD",
            120.0,
            1.6,
            2.5,
            128,
            68,
            blur_mm=0.8,
            noise_hu=20.0,
            noise_grain_px=1.0,
            hu_scale=1.03,
            hu_offset=12.0,
        ),
        PETScanner(
            "GE MEDICAL SYSTEMS",
            "Discovery 710",
            3.5,
            3.27,
            56,
            52,
            psf_fwhm_mm=7.0,
            noise=0.15,
            calibration=1.07,
        ),
        MRScanner(
            "GE MEDICAL SYSTEMS",
            "SIGNA Artist",
            1.5,
            0.9,
            4.0,
            192,
            40,
            signal=600.0,
            snr=22.0,
            bias=0.18,
        ),
    ),
    Site(
        "INST_C",
        CTScanner(
            "Philips",
            "Brilliance 64",
            "B",
            140.0,
            1.8,
            3.0,
            128,
            60,
            blur_mm=1.0,
            noise_hu=30.0,
            noise_grain_px=1.3,
            hu_scale=0.95,
            hu_offset=-15.0,
        ),
        PETScanner(
            "Philips", "GEMINI TF", 4.0, 4.0, 56, 42, psf_fwhm_mm=8.5, noise=0.20, calibration=0.93
        ),
        MRScanner("Philips", "Ingenia", 3.0, 1.2, 3.5, 144, 46, signal=2500.0, snr=30.0, bias=0.14),
    ),
    Site(
        "INST_D",
        CTScanner(
            "TOSHIBA",
            "Aquilion ONE",
            "FC13",
            100.0,
            1.45,
            2.0,
            128,
            80,
            blur_mm=0.7,
            noise_hu=16.0,
            noise_grain_px=0.9,
            hu_scale=1.06,
            hu_offset=5.0,
        ),
        PETScanner(
            "TOSHIBA", "Celesteion", 3.2, 3.2, 64, 52, psf_fwhm_mm=6.5, noise=0.13, calibration=1.03
        ),
        MRScanner(
            "TOSHIBA", "Vantage Titan", 1.5, 1.1, 5.0, 160, 34, signal=900.0, snr=25.0, bias=0.12
        ),
    ),
)

#: Tissue values per modality: HU, SUV (body weight) and T1-weighted signal
#: relative to fat. The tumour entry is the mean of its viable part.
CT_HU = {
    Tissue.AIR: -1000.0,
    Tissue.FAT: -100.0,
    Tissue.SOFT: 40.0,
    Tissue.LUNG_R: -820.0,
    Tissue.LUNG_L: -820.0,
    Tissue.BONE: 700.0,
    Tissue.CANAL: 25.0,
    Tissue.PAROTID_R: -15.0,
    Tissue.PAROTID_L: -15.0,
    Tissue.TUMOUR: 55.0,
    Tissue.NECROSIS: 12.0,
}
PET_SUV = {
    Tissue.AIR: 0.0,
    Tissue.FAT: 0.35,
    Tissue.SOFT: 1.0,
    Tissue.LUNG_R: 0.35,
    Tissue.LUNG_L: 0.35,
    Tissue.BONE: 1.3,
    Tissue.CANAL: 0.6,
    Tissue.PAROTID_R: 1.7,
    Tissue.PAROTID_L: 1.7,
    Tissue.TUMOUR: 0.0,
    Tissue.NECROSIS: 0.7,
}
MR_T1 = {
    Tissue.AIR: 0.0,
    Tissue.FAT: 1.0,
    Tissue.SOFT: 0.45,
    Tissue.LUNG_R: 0.06,
    Tissue.LUNG_L: 0.06,
    Tissue.BONE: 0.2,
    Tissue.CANAL: 0.3,
    Tissue.PAROTID_R: 0.8,
    Tissue.PAROTID_L: 0.8,
    Tissue.TUMOUR: 0.55,
    Tissue.NECROSIS: 0.22,
}
