"""Write DICOM image series, RTSTRUCTs and SEGs (tests, synthetic archives).

Every file is written under a temporary ``.name.tmp-*`` name in its target
folder and renamed when complete; :func:`radflow.io.dicom.scan_dicom` skips
such dot-files, so a reader never sees a half-written object. A series is
renamed into place only after all its slices are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import ArrayLike
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    RTStructureSetStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from radflow._atomic import atomic_file, atomic_files
from radflow._geometry import SpacingError, spacing_mm
from radflow._lazy import load
from radflow._version import __version__
from radflow.io.dicom import SliceStack, sort_slices

hd = load("highdicom")  # slow to import (a quarter of a second); only SEG needs it
measure = load("skimage.measure")  # pulls in scipy.signal (half a second); only RTSTRUCT

SOP_CLASSES = {
    "CT": CTImageStorage,
    "PT": PositronEmissionTomographyImageStorage,
    "MR": MRImageStorage,
}

#: Keywords of a PET header that belong in the RadiopharmaceuticalInformationSequence item.
RADIOPHARMACEUTICAL_KEYWORDS = frozenset(
    {
        "Radiopharmaceutical",
        "RadionuclideTotalDose",
        "RadionuclideHalfLife",
        "RadionuclidePositronFraction",
        "RadiopharmaceuticalStartDateTime",
        "RadiopharmaceuticalStartTime",
        "RadiopharmaceuticalVolume",
        "RadiopharmaceuticalRoute",
        "RadionuclideCodeSequence",
    }
)

#: Type 2 attributes of the patient, study, series and equipment modules.
TYPE2_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "Manufacturer",
    "PositionReferenceIndicator",
)

#: Patient and study tags an RTSTRUCT copies from its images.
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` atomically."""
    with atomic_file(path, fsync=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _set_keywords(ds: Dataset, values: dict, what: str) -> None:
    for keyword, value in values.items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"{what}: {keyword!r} is not a DICOM keyword")
        setattr(ds, keyword, value)


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _ds(value: float) -> str:
    """The closest decimal string of at most 16 characters (DS)."""
    return format_number_as_ds(float(value))


def write_image_series(
    volume: ArrayLike,
    folder: str | PathLike,
    *,
    modality: str,
    spacing_zyx: ArrayLike,
    origin_zyx: ArrayLike,
    patient: dict,
    study: dict,
    series: dict,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    pet: dict | None = None,
    file_prefix: str = "IM",
) -> list[Path]:
    """Write a volume as an axial single-frame DICOM series.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x), uint16 or int16
        Stored pixel values; real values are ``stored * rescale_slope +
        rescale_intercept`` (HU for CT, Bq/ml for PET).
    folder : path-like
        Created if needed; slices are named ``{file_prefix}{k:04d}.dcm``.
    modality : {"CT", "PT", "MR"}
    spacing_zyx : 3 floats
        Slice spacing, row spacing, column spacing (mm).
    origin_zyx : 3 floats
        Patient position (mm, LPS) of voxel (0, 0, 0), in (z, y, x) order.
        Orientation is the identity (ImageOrientationPatient 1,0,0,0,1,0).
    patient, study, series : dict
        DICOM keyword -> value, copied into every slice. StudyInstanceUID,
        SeriesInstanceUID and FrameOfReferenceUID are generated when absent.
    rescale_slope, rescale_intercept : float
    pet : dict, optional
        For PT: Units, DecayCorrection, CorrectedImage, ... at top level; the
        keywords of :data:`RADIOPHARMACEUTICAL_KEYWORDS` go into the single
        RadiopharmaceuticalInformationSequence item (or pass that sequence
        as a list of dicts).
    file_prefix : str

    Returns
    -------
    list of Path
        The slice files, from z = 0 up.

    Raises
    ------
    ValueError
        Wrong modality, dtype or shape, a spacing that is not positive, or a
        dict key that is not a DICOM keyword.
    """
    volume = np.asarray(volume)
    if modality not in SOP_CLASSES:
        raise ValueError(f"modality must be one of {sorted(SOP_CLASSES)}, got {modality!r}")
    if volume.ndim != 3 or 0 in volume.shape:
        raise ValueError(f"volume must be a non-empty (z, y, x) array, got shape {volume.shape}")
    if volume.dtype not in (np.uint16, np.int16):
        raise ValueError(f"volume must hold stored values as uint16 or int16, got {volume.dtype}")
    try:
        spacing_zyx = np.asarray(spacing_mm(spacing_zyx))
    except SpacingError:
        raise ValueError(
            f"spacing_zyx must be 3 positive numbers (mm), got {spacing_zyx}"
        ) from None
    origin_zyx = np.asarray(origin_zyx, dtype=float)
    if origin_zyx.shape != (3,):
        raise ValueError(f"origin_zyx must be 3 numbers (mm), got {origin_zyx}")
    if pet is not None and modality != "PT":
        raise ValueError(f"pet is only for modality 'PT', got {modality!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    common = Dataset()
    # Type 2 attributes must be present, if empty; readers such as highdicom rely on it.
    _set_keywords(common, {k: "" for k in TYPE2_KEYWORDS}, "defaults")
    _set_keywords(common, patient, "patient")
    _set_keywords(common, study, "study")
    _set_keywords(common, series, "series")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        if not common.get(keyword):
            setattr(common, keyword, generate_uid())
    if pet:
        item = Dataset()
        for keyword, value in pet.items():
            if keyword == "RadiopharmaceuticalInformationSequence":
                seq = []
                for entry in value:
                    sub = Dataset()
                    _set_keywords(sub, entry, "pet")
                    seq.append(sub)
                common.RadiopharmaceuticalInformationSequence = Sequence(seq)
            elif keyword in RADIOPHARMACEUTICAL_KEYWORDS:
                _set_keywords(item, {keyword: value}, "pet")
            else:
                _set_keywords(common, {keyword: value}, "pet")
        if len(item):
            common.RadiopharmaceuticalInformationSequence = Sequence([item])

    nz, ny, nx = volume.shape
    dz, dy, dx = spacing_zyx
    z0, y0, x0 = origin_zyx
    # Instance UIDs and creation stamps derive from the series, so that writing
    # the same volume again gives the same bytes (reproducible archives).
    created = (
        str(common.get("SeriesDate") or common.get("StudyDate") or ""),
        str(common.get("SeriesTime") or common.get("StudyTime") or ""),
    )
    if not all(created):
        now = datetime.now()
        created = (now.strftime("%Y%m%d"), now.strftime("%H%M%S"))
    sop_class = SOP_CLASSES[modality]
    paths = [folder / f"{file_prefix}{k + 1:04d}.dcm" for k in range(nz)]
    with atomic_files(paths, fsync=False) as temps:
        for k, tmp in enumerate(temps):
            ds = Dataset()
            ds.update(common)
            sop_instance = generate_uid(entropy_srcs=[str(common.SeriesInstanceUID), str(k)])
            ds.file_meta = _file_meta(sop_class, sop_instance)
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = sop_instance
            ds.Modality = modality
            ds.InstanceCreationDate, ds.InstanceCreationTime = created
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(z0 + k * dz)]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.SliceLocation = _ds(z0 + k * dz)
            ds.PixelSpacing = [_ds(dy), _ds(dx)]
            ds.SliceThickness = _ds(dz)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = ny, nx
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = int(volume.dtype == np.int16)
            ds.RescaleSlope = _ds(rescale_slope)
            ds.RescaleIntercept = _ds(rescale_intercept)
            if modality == "CT":
                ds.RescaleType = "HU"
            little_endian = volume.dtype.newbyteorder("<")
            ds.PixelData = np.ascontiguousarray(volume[k], dtype=little_endian).tobytes()
            ds.save_as(tmp, enforce_file_format=True)
    return paths


# ------------------------------------------------------------------ RTSTRUCT


def _masks_on(
    stack: SliceStack, masks: Mapping[str, np.ndarray], what: str
) -> dict[str, np.ndarray]:
    """Validate masks (z, y, x) against the sorted series; nonzero = inside."""
    if not masks:
        raise ValueError(f"{what}: at least one mask is needed")
    out = {}
    for name, mask in masks.items():
        mask = np.asarray(mask)
        if mask.shape != stack.shape_zyx:
            raise ValueError(
                f"{what}: mask {name!r} has shape {mask.shape}, the series "
                f"is {stack.shape_zyx} (z, y, x)"
            )
        if not (
            mask.dtype == bool
            or np.issubdtype(mask.dtype, np.integer)
            or np.issubdtype(mask.dtype, np.floating)
        ):
            raise ValueError(f"{what}: mask {name!r} must be boolean or numeric, got {mask.dtype}")
        out[str(name)] = mask
    return out


def _referenced_image(ds: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return ref


def _slice_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours (row, col) of a 2-D mask, through the midpoints between
    inside and outside pixel centres; holes come out as separate contours."""
    padded = np.pad(mask2d.astype(np.float64), 1)
    contours = []
    for contour in measure.find_contours(padded, 0.5):
        # tolerance 0 removes only collinear points: the polygon is unchanged.
        contour = measure.approximate_polygon(contour, tolerance=0)[:-1] - 1.0
        if len(contour) >= 3:
            contours.append(contour)
    return contours


def write_rtstruct(
    path: str | PathLike,
    image_files: Iterable[str | PathLike],
    rois: Mapping[str, np.ndarray],
    *,
    structure_set_label: str = "RTSTRUCT",
) -> Path:
    """Write masks as an RTSTRUCT of closed planar contours on a series.

    Parameters
    ----------
    path : path-like
        Output file.
    image_files : list of Path
        Files of the referenced series, in any order.
    rois : dict[str, ndarray of shape (z, y, x)]
        ROI name -> mask on the series grid, z in the order of the sorted
        series (increasing along the slice normal). Nonzero means inside. An
        all-zero mask is written as an ROI without contours.
    structure_set_label : str

    Returns
    -------
    Path

    Notes
    -----
    Each slice's contours are ``skimage.measure.find_contours`` at level 0.5
    of the zero-padded mask, so they run between inside and outside pixel
    centres; rasterising them by pixel centre with even-odd filling gives
    back the mask exactly.
    """
    path = Path(path)
    stack = sort_slices(image_files)
    masks = _masks_on(stack, rois, str(path))
    first = stack.headers[0]
    row_dir, col_dir = stack.direction[:, 0], stack.direction[:, 1]
    col_spacing, row_spacing = stack.spacing_xyz[:2]

    ds = Dataset()
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in first:
            setattr(ds, keyword, first.data_element(keyword).value)
    # UIDs derive from the referenced series and the masks: same input, same file.
    content = hashlib.sha256()
    for name in sorted(masks):
        content.update(name.encode())
        content.update(np.packbits(masks[name]).tobytes())
    entropy = [str(first.SeriesInstanceUID), "rtstruct", content.hexdigest()]
    sop_instance = generate_uid(entropy_srcs=[*entropy, "instance"])
    ds.file_meta = _file_meta(RTStructureSetStorage, sop_instance)
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_instance
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*entropy, "series"])
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    ds.Manufacturer = "radflow"
    ds.StructureSetLabel = structure_set_label
    if first.get("StudyDate") and first.get("StudyTime"):
        ds.StructureSetDate, ds.StructureSetTime = first.StudyDate, first.StudyTime
    else:
        now = datetime.now()
        ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in ("StudyID", "ReferringPhysicianName", "AccessionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    frame_uid = str(first.get("FrameOfReferenceUID") or generate_uid())

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = Sequence([_referenced_image(h) for h in stack.headers])
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = frame_uid
    frame_ref.RTReferencedStudySequence = Sequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])

    roi_items, contour_items, observations = [], [], []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi_items.append(roi)

        contours = []
        for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
            origin = stack.origin_xyz + k * stack.spacing_xyz[2] * stack.direction[:, 2]
            for rc in _slice_contours(mask[k] != 0):
                points = (
                    origin
                    + np.outer(rc[:, 1] * col_spacing, row_dir)
                    + np.outer(rc[:, 0] * row_spacing, col_dir)
                )
                contour = Dataset()
                contour.ContourImageSequence = Sequence([_referenced_image(stack.headers[k])])
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(points)
                contour.ContourData = [_ds(v) for v in points.ravel()]
                contours.append(contour)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [255, 0, 0]
        if contours:
            item.ContourSequence = Sequence(contours)
        contour_items.append(item)

        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = ""
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(roi_items)
    ds.ROIContourSequence = Sequence(contour_items)
    ds.RTROIObservationsSequence = Sequence(observations)
    _save(ds, path)
    return path


# ----------------------------------------------------------------------- SEG


def write_seg(
    path: str | PathLike,
    image_files: Iterable[str | PathLike],
    segments: Mapping[str, np.ndarray],
    *,
    segmentation_type: str = "BINARY",
) -> Path:
    """Write masks as a DICOM Segmentation (one segment each) with highdicom.

    Parameters
    ----------
    path : path-like
        Output file.
    image_files : list of Path
        Files of the referenced series, in any order.
    segments : dict[str, ndarray of shape (z, y, x)]
        Segment label -> mask on the series grid (z sorted along the slice
        normal). BINARY: nonzero means inside. FRACTIONAL: values in [0, 1].
    segmentation_type : {"BINARY", "FRACTIONAL"}

    Returns
    -------
    Path
    """
    path = Path(path)
    if segmentation_type not in ("BINARY", "FRACTIONAL"):
        raise ValueError(
            f"segmentation_type must be 'BINARY' or 'FRACTIONAL', got {segmentation_type!r}"
        )
    stack = sort_slices(image_files)
    masks = _masks_on(stack, segments, str(path))
    if segmentation_type == "BINARY":
        pixels = np.stack([m != 0 for m in masks.values()], axis=-1)
    else:
        pixels = np.stack([np.asarray(m, dtype=np.float32) for m in masks.values()], axis=-1)
        if pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(f"{path}: FRACTIONAL segments must lie in [0, 1]")
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, name in enumerate(masks, start=1)
    ]
    sources = [pydicom.dcmread(f) for f in stack.files]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=segmentation_type,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=901,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="radflow",
        manufacturer_model_name="radflow",
        software_versions=str(__version__),
        device_serial_number="0",
        omit_empty_frames=False,
    )
    _save(seg, path)
    return path
