"""Loading a DICOM series with its RTSTRUCT/SEG label maps into a :class:`SeriesRecord`.

Apart from :mod:`radflow.io.dicom` (scanning folders, sorting and reading slices) so that
:mod:`radflow.io.rtstruct`, which needs the header reader, and this loader, which needs the
RTSTRUCT reader, do not import each other.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from radflow.errors import InputError
from radflow.io.acquisition import acquisition_metadata
from radflow.io.dicom import (
    DicomScan,
    compact_values,
    read_stack,
    scan_dicom,
    sort_slices,
    stack_image,
)
from radflow.io.records import LabelMap, SeriesRecord
from radflow.io.rtstruct import read_rtstruct
from radflow.io.seg import read_seg
from radflow.io.suv import suv_bw_factor

# ---------------------------------------------------------------- the record


def _unique_keys(labels: list[LabelMap]) -> None:
    """Two ROIs may normalise to one key ("GTV" in RTSTRUCT and SEG): number the later ones."""
    seen: set[str] = set()
    for label in labels:
        key, n = label.key, 2
        while key in seen:
            key, n = f"{label.key}_{n}", n + 1
        label.key = key
        seen.add(key)


def load_dicom_series(
    scan: DicomScan, series_uid: str, *, errors: list[InputError] | None = None
) -> SeriesRecord:
    """Read one series of a scan with the label maps of every RTSTRUCT/SEG referencing it.

    Parameters
    ----------
    scan : DicomScan
        From :func:`scan_dicom`.
    series_uid : str
        SeriesInstanceUID of an image series in ``scan.series``.
    errors : list, optional
        Where per-ROI problems (an empty ROI, a contour outside the image, an
        unreadable label file) are appended, so that the other ROIs are kept.
        When None, the first such problem is raised.

    Returns
    -------
    SeriesRecord
        CT in HU (int16 when exact), MR as rescaled, PET in SUV body weight
        (float32, see :func:`radflow.io.suv.suv_bw_factor`). ``metadata`` from
        :func:`radflow.io.acquisition.acquisition_metadata`.

    Raises
    ------
    KeyError
        If ``series_uid`` is not in the scan.
    InputError
        For problems of the image series itself, naming the file.
    """
    try:
        series = scan.series[series_uid]
    except KeyError:
        raise KeyError(f"series {series_uid!r} not found in {scan.folder}") from None
    stack = sort_slices(series.files)
    values = read_stack(stack)
    if series.modality == "PT":
        factor = suv_bw_factor(stack.headers[0], source=stack.files[0])
        values = (values * np.float32(factor)).astype(np.float32, copy=False)
    else:
        values = compact_values(values)
    image = stack_image(values, stack)

    labels: list[LabelMap] = []
    label_files: list[Path] = []
    for label_file in scan.labels_of(series_uid):
        try:
            if label_file.modality == "RTSTRUCT":
                found, problems = read_rtstruct(label_file.path, image)
            else:
                sop_uids = [str(ds.SOPInstanceUID) for ds in stack.headers]
                found, problems = read_seg(label_file.path, image, sop_uids)
        except InputError as exc:
            found, problems = [], [exc]
        if problems and errors is None:
            raise problems[0]
        if errors is not None:
            errors.extend(problems)
        labels.extend(found)
        label_files.append(label_file.path)
    _unique_keys(labels)

    metadata = acquisition_metadata(stack.headers[0])
    metadata["slice_spacing_mm"] = float(stack.spacing_xyz[2])
    return SeriesRecord(
        modality=series.modality,
        image=image,
        metadata=metadata,
        source_uid=series_uid,
        files=tuple(stack.files) + tuple(label_files),
        labels=labels,
        frame_uid=str(getattr(stack.headers[0], "FrameOfReferenceUID", "") or "") or None,
        study_uid=str(getattr(stack.headers[0], "StudyInstanceUID", "") or "") or None,
    )


def load_dicom_folder(folder: str | PathLike) -> tuple[list[SeriesRecord], list[InputError]]:
    """Every image series under ``folder`` with its labels, and every problem found.

    A series that cannot be read is reported in the error list and skipped;
    the others are returned.
    """
    scan = scan_dicom(folder)
    errors = list(scan.errors)
    records = []
    for uid in sorted(scan.series):
        try:
            records.append(load_dicom_series(scan, uid, errors=errors))
        except InputError as exc:
            errors.append(exc)
    return records, errors
