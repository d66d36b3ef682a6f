"""Read the segments of a DICOM Segmentation (SEG) onto the grid of its image series.

highdicom decodes the frames and matches each to the source image it was
derived from; frames are therefore placed by SOPInstanceUID of the series'
slices, which is exact when the SEG was made on this series.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow._lazy import load
from radflow.errors import InputError
from radflow.io.records import LabelMap

hd = load("highdicom")  # slow to import (a quarter of a second); only SEG needs it

#: A FRACTIONAL segment covers the voxels where its value is at least this.
FRACTIONAL_THRESHOLD = 0.5


def read_seg(
    path: Path, image: sitk.Image, sop_instance_uids: Sequence[str]
) -> tuple[list[LabelMap], list[InputError]]:
    """Each segment of a DICOM SEG as its own label map on ``image``.

    Parameters
    ----------
    path : Path
        SEG file.
    image : SimpleITK.Image
        The referenced series (from :func:`radflow.io.dicom.read_image_series`).
    sop_instance_uids : sequence of str
        SOPInstanceUID of each slice of ``image``, in z order
        (:attr:`radflow.io.dicom.SliceStack.headers`).

    Returns
    -------
    labels : list of LabelMap
        One per non-empty segment: ``key=roi_key(label)``, ``source="seg"``,
        uint8 image (1 inside) with the geometry of ``image``,
        ``rois={1: label}``. BINARY segments as stored; FRACTIONAL ones
        thresholded at :data:`FRACTIONAL_THRESHOLD`.
    errors : list of InputError
        One per empty segment.

    Raises
    ------
    InputError
        If the file cannot be read, is not a SEG, or does not match the series
        (frames derived from images outside it, wrong frame size).
    """
    path = Path(path)
    sop_instance_uids = [str(uid) for uid in sop_instance_uids]
    nx, ny, nz = image.GetSize()
    if len(sop_instance_uids) != nz:
        raise ValueError(
            f"sop_instance_uids has {len(sop_instance_uids)} entries, the image {nz} slices"
        )
    try:
        seg = hd.seg.segread(path)
    except (AttributeError, ValueError, TypeError, KeyError, OSError, EOFError) as exc:
        raise InputError(path, f"cannot read DICOM SEG ({exc})") from None
    seg_type = seg.segmentation_type.value
    if seg_type not in ("BINARY", "FRACTIONAL"):
        raise InputError(
            path, f"SegmentationType {seg_type} is not supported (BINARY and FRACTIONAL are)"
        )
    # Frames of images outside the series would silently count as empty below.
    outside = {str(uid) for _, _, uid in seg.get_source_image_uids()} - set(sop_instance_uids)
    if outside:
        raise InputError(
            path,
            f"segments do not map onto the referenced series: derived from "
            f"{len(outside)} image(s) not in it",
        )
    numbers = list(seg.segment_numbers)
    try:
        pixels = seg.get_pixels_by_source_instance(
            sop_instance_uids,
            segment_numbers=numbers,
            assert_missing_frames_are_empty=True,  # empty frames may be omitted
            dtype=np.float32,
        )
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InputError(path, f"segments do not map onto the referenced series ({exc})") from None
    if pixels.shape[1:3] != (ny, nx):
        raise InputError(
            path, f"frames are {pixels.shape[1]}x{pixels.shape[2]}, the series {ny}x{nx}"
        )

    labels, errors = [], []
    for i, number in enumerate(numbers):
        name = str(seg.get_segment_description(number).segment_label)
        values = pixels[..., i]
        mask = values >= FRACTIONAL_THRESHOLD if seg_type == "FRACTIONAL" else values > 0
        if not mask.any():
            errors.append(InputError(path, f"segment {number} {name!r} covers no voxel"))
            continue
        labels.append(LabelMap.from_mask(mask, image, name, "seg"))
    return labels, errors
