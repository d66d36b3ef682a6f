"""Rasterise the ROIs of a DICOM RTSTRUCT onto the grid of its image series.

Contour points (patient coordinates, mm, LPS) are mapped to continuous voxel
indices with the image's origin, spacing and direction; each contour is
assigned to the nearest slice and filled in that slice's index plane, a
pixel being inside when its centre is (``skimage.draw.polygon``). Contours
of one ROI on one slice are combined by even-odd rule (XOR), so a contour
inside another is a hole.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from skimage.draw import polygon

from radflow.errors import InputError
from radflow.io.dicom import read_header
from radflow.io.records import LabelMap

#: A contour may lie this far (in slices) off the image's first or last slice
#: and still belong to it; beyond, the ROI is cut by the image and refused.
_SLICE_TOLERANCE = 0.5


def _index_transform(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset with ``index_xyz = (point - origin) @ matrix``."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    matrix = np.linalg.inv(direction @ np.diag(spacing)).T
    return matrix, np.asarray(image.GetOrigin(), dtype=np.float64)


def rasterise_roi(
    contours: Iterable[np.ndarray],
    image: sitk.Image,
    *,
    source: str | PathLike = "<rtstruct>",
    roi_name: str = "ROI",
) -> np.ndarray:
    """Fill closed planar contours on the grid of ``image``.

    Parameters
    ----------
    contours : sequence of ndarray, shape (n, 3)
        Contour points in patient coordinates (x, y, z), mm, LPS.
    image : SimpleITK.Image
        3-D image whose geometry defines the grid.
    source, roi_name : str
        Named in errors.

    Returns
    -------
    ndarray of bool, shape (z, y, x)

    Raises
    ------
    InputError
        When a contour lies outside the image's slices, or no voxel is filled.
    """
    matrix, origin = _index_transform(image)
    nx, ny, nz = image.GetSize()
    mask = np.zeros((nz, ny, nx), dtype=bool)
    plane = np.zeros((ny, nx), dtype=bool)
    for points in contours:
        index = (np.asarray(points, dtype=np.float64) - origin) @ matrix
        z = float(np.mean(index[:, 2]))
        k = int(np.floor(z + 0.5))
        if not -_SLICE_TOLERANCE <= z <= nz - 1 + _SLICE_TOLERANCE:
            raise InputError(
                source,
                f"ROI {roi_name!r}: a contour lies at slice index {z:.1f}, "
                f"outside the image's {nz} slices",
            )
        k = min(max(k, 0), nz - 1)
        plane[:] = False
        rr, cc = polygon(index[:, 1], index[:, 0], shape=(ny, nx))
        plane[rr, cc] = True
        mask[k] ^= plane
    if not mask.any():
        raise InputError(source, f"ROI {roi_name!r} covers no voxel of the image")
    return mask


def _closed_contours(item: Dataset) -> list[np.ndarray]:
    out = []
    for contour in item.get("ContourSequence", []):
        if str(contour.get("ContourGeometricType", "")).upper() != "CLOSED_PLANAR":
            continue  # POINT and OPEN_* contours enclose no region
        data = np.asarray([float(v) for v in contour.get("ContourData", [])], dtype=np.float64)
        if data.size >= 9 and data.size % 3 == 0:
            out.append(data.reshape(-1, 3))
    return out


def read_rtstruct(
    path: str | PathLike, image: sitk.Image
) -> tuple[list[LabelMap], list[InputError]]:
    """Rasterise every ROI of an RTSTRUCT onto ``image``.

    Parameters
    ----------
    path : Path
        RTSTRUCT file.
    image : SimpleITK.Image
        The referenced series (from :func:`radflow.io.dicom.read_image_series`).

    Returns
    -------
    labels : list of LabelMap
        One per ROI that could be rasterised: ``key=roi_key(name)``,
        ``source="rtstruct"``, uint8 image with value 1 inside and the
        geometry of ``image``, ``rois={1: name}``. ROIs may overlap.
    errors : list of InputError
        One per ROI that could not (no closed planar contour, no voxel
        covered, contour outside the image), naming the file and the ROI.

    Raises
    ------
    InputError
        If the file cannot be read or is not an RTSTRUCT.
    """
    path = Path(path)
    ds = read_header(path)  # an RTSTRUCT has no pixel data: this is all of it
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise InputError(path, f"not an RTSTRUCT (Modality {ds.get('Modality')!r})")
    names = {
        int(roi.ROINumber): str(roi.get("ROIName", f"ROI {roi.ROINumber}"))
        for roi in ds.get("StructureSetROISequence", [])
    }
    contours_of = {
        int(item.ReferencedROINumber): _closed_contours(item)
        for item in ds.get("ROIContourSequence", [])
    }

    labels, errors = [], []
    for number, name in names.items():
        contours = contours_of.get(number, [])
        if not contours:
            errors.append(InputError(path, f"ROI {name!r} has no closed planar contour"))
            continue
        try:
            mask = rasterise_roi(contours, image, source=path, roi_name=name)
        except InputError as exc:
            errors.append(exc)
            continue
        labels.append(LabelMap.from_mask(mask, image, name, "rtstruct"))
    return labels, errors
