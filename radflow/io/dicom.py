"""Find DICOM image series (CT, PT, MR) in a folder and read their slices.

Two steps, each usable alone:

1. :func:`scan_dicom` walks a folder and reads headers only: image files are
   grouped by SeriesInstanceUID, RTSTRUCT and SEG files are tied to the series
   they reference. Unreadable DICOM files and orphan label objects become
   :class:`~radflow.errors.InputError` entries, so one bad file never hides the
   rest of a folder.
2. :func:`read_image_series` reads one series into a SimpleITK image whose
   slices are ordered by geometry (:func:`sort_slices`) and whose values are
   rescaled (HU for CT); :func:`read_stack` and :func:`stack_image` are its two
   halves, for callers that rescale the values themselves.

Reading the label objects is apart: :mod:`radflow.io.rtstruct` and
:mod:`radflow.io.seg` rasterise them, and :func:`radflow.io.dicom_series.load_dicom_series`
combines a series with its labels into a :class:`~radflow.io.records.SeriesRecord`
(PET in SUV body weight).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import MediaStorageDirectoryStorage

from radflow.errors import InputError

IMAGE_MODALITIES = frozenset({"CT", "PT", "MR"})
LABEL_MODALITIES = frozenset({"RTSTRUCT", "SEG"})

#: Transfer syntaxes the GDCM reader inside SimpleITK decodes. Checked before
#: reading so that an unsupported file is named in a clear message rather than
#: in a GDCM stack trace.
SUPPORTED_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}

#: Relative geometry tolerance: 1 % of the pixel or slice spacing. The rounding
#: of decimal strings in ImagePositionPatient is orders of magnitude below it;
#: a missing or duplicate slice is far above it.
GEOMETRY_RTOL = 0.01

#: How far (in pixels) slice positions may stray from the line along the slice
#: normal over the whole stack; a gantry tilt of 1 degree moves 1.7 mm per 100 mm.
IN_PLANE_TOL_PIXELS = 0.1


@dataclass(frozen=True)
class DicomSeries:
    """The files of one image series found by :func:`scan_dicom`.

    Attributes
    ----------
    series_uid : str
        SeriesInstanceUID.
    modality : str
        ``"CT"``, ``"PT"`` or ``"MR"``.
    files : tuple of Path
        Image files in scan order (not sorted; :func:`sort_slices` sorts them).
    """

    series_uid: str
    modality: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class DicomLabelFile:
    """An RTSTRUCT or SEG file and the image series it references."""

    path: Path
    modality: str
    series_uid: str


@dataclass
class DicomScan:
    """Result of :func:`scan_dicom`.

    Attributes
    ----------
    folder : Path
    series : dict[str, DicomSeries]
        Image series by SeriesInstanceUID.
    labels : list of DicomLabelFile
        RTSTRUCT and SEG files whose referenced series is in ``series``.
    errors : list of InputError
        DICOM files that could not be parsed, multi-frame images, and label
        objects whose referenced series is missing; each names its file.
    ignored : dict[Path, str]
        DICOM files of other modalities (RTPLAN, SR, ...) -> their modality.
    skipped : list of Path
        Hidden sub-folders (names starting with ``.``), not searched.
    """

    folder: Path
    series: dict[str, DicomSeries] = field(default_factory=dict)
    labels: list[DicomLabelFile] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    ignored: dict[Path, str] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)

    def labels_of(self, series_uid: str) -> list[DicomLabelFile]:
        """The RTSTRUCT/SEG files that reference ``series_uid``."""
        return [lab for lab in self.labels if lab.series_uid == series_uid]


@dataclass(frozen=True)
class SliceStack:
    """Slices of one series sorted along the slice normal, with their geometry.

    Attributes
    ----------
    files : tuple of Path
        Sorted by the projection of ImagePositionPatient on the slice normal.
    headers : tuple of pydicom.Dataset
        Headers (no pixel data) in the same order.
    origin_xyz : ndarray, shape (3,)
        Patient position (mm, LPS) of the first voxel of the first slice.
    spacing_xyz : ndarray, shape (3,)
        Column spacing, row spacing, slice spacing (mm).
    direction : ndarray, shape (3, 3)
        Columns are the row direction, the column direction and the slice
        normal (SimpleITK convention).
    """

    files: tuple[Path, ...]
    headers: tuple[Dataset, ...]
    origin_xyz: np.ndarray
    spacing_xyz: np.ndarray
    direction: np.ndarray

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        first = self.headers[0]
        return (len(self.files), int(first.Rows), int(first.Columns))


# --------------------------------------------------------------------- scan


def _is_dicom_candidate(path: Path) -> bool:
    """DICM preamble, or a ``.dcm`` name (which then must parse)."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_header(path: Path) -> Dataset:
    """Read a DICOM header without pixel data; InputError naming the file if it fails."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise InputError(path, f"cannot parse DICOM header ({exc})") from None
    # force=True parses garbage into a dataset with no elements.
    if len(ds) == 0:
        raise InputError(path, "no DICOM data elements could be parsed")
    return ds


def _referenced_series_rtstruct(ds: Dataset, sop_to_series: dict[str, str]) -> set[str]:
    uids: set[str] = set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                if "SeriesInstanceUID" in series:
                    uids.add(str(series.SeriesInstanceUID))
    if not uids:
        # Some exporters omit the series reference: fall back on the images
        # the contours were drawn on.
        for roi in ds.get("ROIContourSequence", []):
            for contour in roi.get("ContourSequence", []):
                for img in contour.get("ContourImageSequence", []):
                    uid = sop_to_series.get(str(img.get("ReferencedSOPInstanceUID", "")))
                    if uid:
                        uids.add(uid)
    return uids


def _referenced_series_seg(ds: Dataset) -> set[str]:
    return {
        str(item.SeriesInstanceUID)
        for item in ds.get("ReferencedSeriesSequence", [])
        if "SeriesInstanceUID" in item
    }


def scan_dicom(folder: str | PathLike) -> DicomScan:
    """Find the DICOM image series and label objects under a folder.

    Only headers are read. Files and folders whose names start with ``.``
    (temporary files of an atomic write, ``.DS_Store``) are skipped, as are
    files that are not DICOM (no ``DICM`` preamble and no ``.dcm`` name); the
    skipped folders are listed in ``skipped``.

    Parameters
    ----------
    folder : Path
        Searched recursively.

    Returns
    -------
    DicomScan
        Series grouped by SeriesInstanceUID, RTSTRUCT/SEG files with the
        series they reference, and one InputError per problem file.

    Raises
    ------
    InputError
        If ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a directory")
    scan = DicomScan(folder=folder)
    images: dict[str, list[Path]] = defaultdict(list)
    modality_of: dict[str, str] = {}
    sop_to_series: dict[str, str] = {}
    label_headers: list[tuple[Path, Dataset]] = []

    for root, dirs, names in os.walk(folder):
        scan.skipped += sorted(Path(root, d) for d in dirs if d.startswith("."))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or not _is_dicom_candidate(path):
                continue
            try:
                ds = read_header(path)
            except InputError as exc:
                scan.errors.append(exc)
                continue
            meta_sop = ds.file_meta.get("MediaStorageSOPClassUID") if ds.file_meta else None
            if meta_sop == MediaStorageDirectoryStorage:
                continue
            modality = str(ds.get("Modality", "")).upper()
            if not modality:  # type 1 in every object with pixels or contours: truncated?
                scan.errors.append(
                    InputError(
                        path, "Modality (0008,0060) missing; truncated or not a DICOM object?"
                    )
                )
                continue
            if modality in IMAGE_MODALITIES:
                if int(ds.get("NumberOfFrames", 1) or 1) > 1:
                    scan.errors.append(
                        InputError(path, "multi-frame (enhanced) images are not supported")
                    )
                    continue
                uid = str(ds.get("SeriesInstanceUID", ""))
                if not uid:
                    scan.errors.append(InputError(path, "SeriesInstanceUID (0020,000E) missing"))
                    continue
                if modality_of.setdefault(uid, modality) != modality:
                    scan.errors.append(
                        InputError(
                            path,
                            f"modality {modality} differs from {modality_of[uid]} "
                            f"of the other files of series {uid}",
                        )
                    )
                    continue
                images[uid].append(path)
                sop_to_series[str(ds.get("SOPInstanceUID", ""))] = uid
            elif modality in LABEL_MODALITIES:
                label_headers.append((path, ds))
            else:
                scan.ignored[path] = modality

    scan.series = {
        uid: DicomSeries(uid, modality_of[uid], tuple(files)) for uid, files in images.items()
    }
    for path, ds in label_headers:
        modality = str(ds.Modality).upper()
        if modality == "RTSTRUCT":
            refs = _referenced_series_rtstruct(ds, sop_to_series)
        else:
            refs = _referenced_series_seg(ds)
        present = sorted(refs & scan.series.keys())
        if not refs:
            scan.errors.append(InputError(path, f"{modality} references no image series"))
        elif not present:
            scan.errors.append(
                InputError(
                    path,
                    f"{modality} references series {', '.join(sorted(refs))}, "
                    f"which is not in {folder}",
                )
            )
        elif len(present) > 1:
            scan.errors.append(
                InputError(
                    path,
                    f"{modality} references several series ({', '.join(present)}); "
                    "one label object per series is supported",
                )
            )
        else:
            scan.labels.append(DicomLabelFile(path, modality, present[0]))
    return scan


# ------------------------------------------------------------------ geometry


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (n,):
        raise InputError(path, f"{keyword} missing or not {n} numbers")
    return arr


def sort_slices(files: Iterable[str | PathLike]) -> SliceStack:
    """Sort the single-frame files of one series by position along the slice normal.

    The order follows the projection of ImagePositionPatient on the normal of
    ImageOrientationPatient, never file names or InstanceNumber.

    Parameters
    ----------
    files : sequence of Path
        Image files of one series.

    Returns
    -------
    SliceStack

    Raises
    ------
    InputError
        Unreadable header; orientation, size or pixel spacing differing between
        slices; duplicate positions; slices not stacked along the normal
        (gantry tilt); unequal slice spacing (missing slice).
    """
    files = [Path(f) for f in files]
    if not files:
        raise InputError("<no files>", "an image series needs at least one file")
    headers = [read_header(f) for f in files]
    first, f0 = headers[0], files[0]
    iop = _floats(first, "ImageOrientationPatient", 6, f0)
    row_dir, col_dir = iop[:3], iop[3:]
    if (
        abs(np.linalg.norm(row_dir) - 1) > 1e-3
        or abs(np.linalg.norm(col_dir) - 1) > 1e-3
        or abs(row_dir @ col_dir) > 1e-3
    ):
        raise InputError(
            f0, f"ImageOrientationPatient {list(iop)} is not two orthogonal unit vectors"
        )
    normal = np.cross(row_dir, col_dir)
    pixel_spacing = _floats(first, "PixelSpacing", 2, f0)  # (row spacing, column spacing)
    size = (first.get("Rows"), first.get("Columns"))
    positions = []
    for ds, path in zip(headers, files):
        if not np.allclose(_floats(ds, "ImageOrientationPatient", 6, path), iop, atol=1e-4):
            raise InputError(path, f"ImageOrientationPatient differs from that of {f0.name}")
        if not np.allclose(
            _floats(ds, "PixelSpacing", 2, path), pixel_spacing, rtol=GEOMETRY_RTOL, atol=0
        ):
            raise InputError(path, f"PixelSpacing differs from that of {f0.name}")
        if (ds.get("Rows"), ds.get("Columns")) != size:
            raise InputError(
                path,
                f"Rows/Columns {ds.get('Rows')}x{ds.get('Columns')} differ "
                f"from {size[0]}x{size[1]} of {f0.name}",
            )
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise InputError(path, "colour images (SamplesPerPixel > 1) are not supported")
        positions.append(_floats(ds, "ImagePositionPatient", 3, path))
    positions = np.asarray(positions)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    files = [files[i] for i in order]
    headers = [headers[i] for i in order]

    if len(files) > 1:
        steps = np.diff(positions @ normal)
        tol = GEOMETRY_RTOL * min(pixel_spacing)
        dup = np.flatnonzero(steps < tol)
        if dup.size:
            i = int(dup[0])
            raise InputError(
                files[i + 1],
                f"same ImagePositionPatient as {files[i].name} "
                "(duplicate slice or two stacks in one series)",
            )
        offsets = positions - positions[0]
        in_plane = offsets - np.outer(offsets @ normal, normal)
        stray = np.linalg.norm(in_plane, axis=1)
        bad = np.flatnonzero(stray > IN_PLANE_TOL_PIXELS * min(pixel_spacing))
        if bad.size:
            raise InputError(
                files[int(bad[0])],
                "slice positions are not along the slice normal "
                "(gantry tilt or sheared stack is not supported)",
            )
        slice_spacing = float(np.median(steps))
        bad = np.flatnonzero(np.abs(steps - slice_spacing) > GEOMETRY_RTOL * slice_spacing)
        if bad.size:
            i = int(bad[0])
            raise InputError(
                files[i + 1],
                f"slice spacing {steps[i]:.4g} mm to {files[i].name} "
                f"differs from {slice_spacing:.4g} mm elsewhere "
                "(missing or extra slice?)",
            )
    else:
        # One slice has no neighbour to measure from: take the nominal spacing.
        slice_spacing = float(
            first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        )

    return SliceStack(
        files=tuple(files),
        headers=tuple(headers),
        origin_xyz=positions[0],
        spacing_xyz=np.array([pixel_spacing[1], pixel_spacing[0], slice_spacing]),
        direction=np.column_stack([row_dir, col_dir, normal]),
    )


# -------------------------------------------------------------------- pixels


def _check_transfer_syntax(ds: Dataset, path: Path) -> None:
    uid = ds.file_meta.get("TransferSyntaxUID") if ds.file_meta else None
    if uid is None:
        return  # no file meta: read as implicit little endian
    if str(uid) not in SUPPORTED_TRANSFER_SYNTAXES:
        name = getattr(uid, "name", "") or "unknown"
        raise InputError(
            path,
            f"transfer syntax {uid} ({name}) is not supported; "
            "convert the file, e.g. `gdcmconv --raw`",
        )


def _pixel_error(files) -> InputError:
    """Find which file of a failed series read is broken, for the error message."""
    for path in files:
        try:
            sitk.ReadImage(str(path), sitk.sitkFloat32)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split()).rpartition("ERROR: ")[2][:200]
            return InputError(
                path, f"pixel data cannot be decoded, truncated or corrupt file? (GDCM: {detail})"
            )
    return InputError(files[0], "the series' pixel data cannot be decoded")


def read_stack(stack: SliceStack) -> np.ndarray:
    """Rescaled values (z, y, x) as float32; the stack's geometry is checked already."""
    for ds, path in zip(stack.headers, stack.files):
        _check_transfer_syntax(ds, path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in stack.files])
    # Float output makes GDCM apply each slice's own RescaleSlope/Intercept
    # (PET slices often have different slopes) without integer truncation.
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError:
        raise _pixel_error(stack.files) from None
    values = sitk.GetArrayFromImage(image)
    if values.shape != stack.shape_zyx:
        raise InputError(
            stack.files[0],
            f"pixel data shape {values.shape} differs from the header's {stack.shape_zyx}",
        )
    return values


def stack_image(values: np.ndarray, stack: SliceStack) -> sitk.Image:
    """``values`` (z, y, x) as a SimpleITK image with the geometry of ``stack``."""
    image = sitk.GetImageFromArray(values)
    image.SetOrigin(tuple(float(v) for v in stack.origin_xyz))
    image.SetSpacing(tuple(float(v) for v in stack.spacing_xyz))
    image.SetDirection(tuple(float(v) for v in stack.direction.ravel()))
    return image


def compact_values(values: np.ndarray) -> np.ndarray:
    """int16 when every value is an integer in the int16 range (CT HU), else float32."""
    info = np.iinfo(np.int16)
    if (
        values.size
        and np.all(np.isfinite(values))
        and values.min() >= info.min
        and values.max() <= info.max
        and np.array_equal(values, np.round(values))
    ):
        return values.astype(np.int16)
    return values.astype(np.float32, copy=False)


def read_image_series(files: Iterable[str | PathLike]) -> sitk.Image:
    """Read one single-frame DICOM image series into a rescaled SimpleITK image.

    Parameters
    ----------
    files : sequence of Path
        All files of one series, in any order.

    Returns
    -------
    SimpleITK.Image
        Slices sorted along the normal of ImageOrientationPatient (see
        :func:`sort_slices`); values are ``stored * RescaleSlope +
        RescaleIntercept`` of each slice, as int16 when they are all integers
        that fit (CT in HU), else float32. Origin is the first slice's
        ImagePositionPatient (mm, LPS); spacing (column, row, slice) in mm.
        PET values are activity concentrations as stored (see
        :func:`radflow.io.dicom_series.load_dicom_series` for SUV).

    Raises
    ------
    InputError
        Inconsistent geometry (see :func:`sort_slices`), an unsupported transfer
        syntax or undecodable pixel data, naming the file.
    """
    stack = sort_slices(files)
    return stack_image(compact_values(read_stack(stack)), stack)
