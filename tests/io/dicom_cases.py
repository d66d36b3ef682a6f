"""Small DICOM test series and masks shared by the tests of radflow.io's DICOM readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from radflow.io.dicom_write import write_image_series

#: Direct identifiers that must never reach any output.
PATIENT = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-0042",
    "PatientBirthDate": "19610203",
    "PatientSex": "F",
    "PatientWeight": "70",
}
STUDY = {
    "StudyDate": "20210314",
    "StudyTime": "093000",
    "AccessionNumber": "ACC-7781",
    "InstitutionName": "St Elsewhere Hospital",
    "InstitutionAddress": "1 Hospital Road",
}
CT_SERIES = {
    "SeriesDescription": "thorax",
    "Manufacturer": "ACME",
    "ManufacturerModelName": "Scanner 9",
    "ConvolutionKernel": "B30f",
    "KVP": "120",
    "Exposure": "250",
    "BodyPartExamined": "CHEST",
    "DeviceSerialNumber": "SN-99871",
    "StationName": "CT-ROOM-3",
}

#: (z, y, x) geometry of the small CT: anisotropic, off-origin, so that axes
#: cannot be confused silently.
SHAPE_ZYX = (5, 6, 7)
SPACING_ZYX = (2.5, 0.8, 0.7)
ORIGIN_ZYX = (-10.0, 20.25, -30.5)


def stored_ct(shape=SHAPE_ZYX, seed=0) -> np.ndarray:
    """Stored values (uint16, 12 bits) with every voxel different from its neighbours."""
    return np.random.default_rng(seed).integers(0, 4096, shape).astype(np.uint16)


def write_ct(folder: Path, volume=None, *, series=None, prefix="CT", **kwargs) -> list[Path]:
    """A CT series (intercept -1024 HU) in ``folder``; returns the files from z = 0 up."""
    volume = stored_ct() if volume is None else volume
    kwargs.setdefault("spacing_zyx", SPACING_ZYX)
    kwargs.setdefault("origin_zyx", ORIGIN_ZYX)
    kwargs.setdefault("rescale_intercept", -1024.0)
    return write_image_series(
        volume,
        folder,
        modality="CT",
        patient=PATIENT,
        study=STUDY,
        series=CT_SERIES if series is None else series,
        file_prefix=prefix,
        **kwargs,
    )


def masks(shape=SHAPE_ZYX) -> dict[str, np.ndarray]:
    """ROIs that test the rasteriser: a ring (hole) on three slices, an ROI on two
    slices touching the image corner, two islands on one slice, an irregular
    random mask, and one overlapping the ring."""
    z, y, x = np.indices(shape)
    r2 = (y - 2.5) ** 2 + (x - 3.0) ** 2
    ring = (r2 <= 7) & (r2 > 1.5) & (z >= 1) & (z <= 3)
    corner = np.zeros(shape, bool)
    corner[4, 0:2, -2:] = True
    corner[3, 0, -1] = True
    islands = np.zeros(shape, bool)
    islands[2, 0:2, 0:2] = True
    islands[2, 4:6, 4:7] = True
    irregular = np.random.default_rng(1).random(shape) > 0.6
    overlap = (z == 2) & (y >= 2) & (x >= 3)
    return {
        "Ring": ring,
        "corner 2 slices": corner,
        "Islands": islands,
        "irregular": irregular,
        "GTV-1 (overlap)": overlap,
    }


def edit_header(path: Path, **values) -> None:
    """Overwrite DICOM keywords of a written file in place."""
    ds = pydicom.dcmread(path)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def make_sagittal(files) -> None:
    """Turn a written axial series into a sagittal one: rows along +y, columns
    along -z, slice k at x = -2.5 k mm (normal (-1, 0, 0))."""
    for k, path in enumerate(files):
        edit_header(
            path,
            ImageOrientationPatient=[0, 1, 0, 0, 0, -1],
            ImagePositionPatient=[-2.5 * k, 20.0, 30.0],
        )
