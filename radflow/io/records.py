"""In-memory records passed from the readers in :mod:`radflow.io` to the store.

Readers return SimpleITK images: they carry spacing, origin and direction
exactly as the source file defines them, which is what the store keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def roi_key(name: str) -> str:
    """Normalise an ROI name as given (``"GTV-1 (primary)"``) to a safe key (``"gtv_1_primary"``).

    The key is lower case ASCII letters, digits and underscores, usable as a
    zarr array name, a Parquet partition value and a column prefix.
    """
    key = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    if not key:
        key = "roi"
    if key[0].isdigit():
        key = f"roi_{key}"
    return key


@dataclass
class LabelMap:
    """One label array of a series: the ROIs of one source on the series grid.

    Attributes
    ----------
    key : str
        Array name in the store (``roi_key`` of the ROI or of the source file).
    source : str
        ``"rtstruct"``, ``"seg"``, ``"labelmap"`` (NIfTI/NRRD/... file) or ``"threshold"``.
    image : SimpleITK.Image
        Integer label image with exactly the geometry of the series image.
    rois : dict[int, str]
        Label value -> ROI name as given in the source.
    """

    key: str
    source: str
    image: sitk.Image
    rois: dict[int, str]

    @classmethod
    def from_mask(cls, mask: np.ndarray, image: sitk.Image, name: str, source: str) -> LabelMap:
        """One ROI as a label map: ``key=roi_key(name)``, uint8 (1 inside ``mask``, z, y, x)
        with the geometry of ``image``, ``rois={1: name}``."""
        label = sitk.GetImageFromArray(np.asarray(mask, dtype=bool).view(np.uint8))
        label.CopyInformation(image)
        return cls(key=roi_key(name), source=source, image=label, rois={1: name})


@dataclass
class SeriesRecord:
    """One image series read from an archive, ready to be written to the store.

    Attributes
    ----------
    modality : str
        DICOM modality code: ``"CT"``, ``"PT"``, ``"MR"``.
    image : SimpleITK.Image
        The volume: CT in HU (int16 when exact), PET in SUV body weight (float32).
    metadata : dict
        Acquisition metadata (manufacturer, kernel, spacing, kVp, ...). Never
        holds patient identifiers.
    source_uid : str
        SeriesInstanceUID, or for plain image files the path relative to the
        patient folder. Pseudonymised before it reaches any output.
    files : tuple of Path
        Every file the series and its label maps were read from (fingerprint).
    labels : list of LabelMap
    frame_uid : str or None
        FrameOfReferenceUID (DICOM): series sharing it share patient space.
        Pseudonymised before storage like ``source_uid``.
    study_uid : str or None
        StudyInstanceUID (DICOM). Pseudonymised before storage like ``source_uid``.
    """

    modality: str
    image: sitk.Image
    metadata: dict
    source_uid: str
    files: tuple[Path, ...] = ()
    labels: list[LabelMap] = field(default_factory=list)
    frame_uid: str | None = None
    study_uid: str | None = None
