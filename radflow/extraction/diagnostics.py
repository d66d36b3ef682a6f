"""The ``diagnostics_*`` entries of an extraction, as PyRadiomics 3.0.1's ``generalinfo``.

PyRadiomics (``additionalInfo: true``, its default) puts provenance in front
of the features: versions, the settings, and for the image and the mask at
each preprocessing stage (``original``, ``interpolated``, ``corrected``,
``resegmented``) their hash, spacing and size (x, y, z order), the ROI's
bounding box, voxel count, number of 26-connected parts, centre of mass, and
intensity mean/min/max. The names here are exactly PyRadiomics'; the values
are too, except the version entries (``Versions_PyRadiomics`` names radflow's
version, since radflow computes the numbers).

Hashes are SHA-1 of the voxel buffer in (z, y, x) C order, which is what
``SimpleITK.Hash`` computes (the mask after PyRadiomics' cast to uint32):
:func:`radflow.store.summary.volume_summary`, which the store also runs when
it writes a volume, so that extracting from the store never re-reads it.

The functions take what the extractor has at hand: whole volumes (SimpleITK
images, or lazy xarray volumes from the store, read slab by slab), or the
ROI crop with its offset in the volume.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import pywt
import SimpleITK as sitk

from radflow._version import __version__
from radflow.store.summary import volume_summary

__all__ = [
    "PREFIX",
    "configuration",
    "image_entries",
    "image_summary",
    "mask_entries",
    "versions",
    "volume_summary",
]

PREFIX = "diagnostics_"


def versions() -> dict[str, str]:
    """``Versions_*`` entries: the libraries the numbers depend on."""
    return {
        PREFIX + "Versions_PyRadiomics": f"radflow {__version__} (PyRadiomics 3.0.1 mode)",
        PREFIX + "Versions_Numpy": np.__version__,
        PREFIX + "Versions_SimpleITK": sitk.Version().VersionString(),
        PREFIX + "Versions_PyWavelet": pywt.__version__,
        PREFIX + "Versions_Python": platform.python_version(),
    }


def configuration(
    settings: dict[str, Any], image_types: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``Configuration_*`` entries: the settings and enabled image types in force."""
    return {
        PREFIX + "Configuration_Settings": dict(settings),
        PREFIX + "Configuration_EnabledImageTypes": {k: dict(v) for k, v in image_types.items()},
    }


def image_summary(image: sitk.Image) -> dict[str, Any]:
    """:func:`volume_summary` of a SimpleITK image (no copy of its buffer)."""
    return volume_summary(sitk.GetArrayViewFromImage(image))


def image_entries(
    prefix: str,
    *,
    spacing_xyz: Sequence[float],
    size_xyz: Sequence[int],
    summary: dict[str, Any] | None = None,
    image: sitk.Image | None = None,
) -> dict[str, Any]:
    """``Image-<prefix>_*`` entries.

    The statistics come from `summary` (:func:`volume_summary` of the whole
    volume) or are computed from `image`. ``Hash`` and ``Dimensionality``
    are given for ``original`` only, as in PyRadiomics.
    """
    if summary is None:
        summary = image_summary(image)
    key = f"{PREFIX}Image-{prefix}_"
    out: dict[str, Any] = {}
    if prefix == "original":
        out[key + "Hash"] = summary["hash"]
        out[key + "Dimensionality"] = f"{len(size_xyz)}D"
    out[key + "Spacing"] = tuple(float(s) for s in spacing_xyz)
    out[key + "Size"] = tuple(int(n) for n in size_xyz)
    out[key + "Mean"] = summary["mean"]
    out[key + "Minimum"] = summary["minimum"]
    out[key + "Maximum"] = summary["maximum"]
    return out


def mask_entries(
    prefix: str,
    mask: sitk.Image,
    label: int,
    *,
    image: sitk.Image | None = None,
    offset_xyz: Sequence[int] = (0, 0, 0),
    spacing_xyz: Sequence[float] | None = None,
    size_xyz: Sequence[int] | None = None,
    mask_hash: str | None = None,
) -> dict[str, Any]:
    """``Mask-<prefix>_*`` entries of the ROI ``mask == label``.

    Parameters
    ----------
    prefix : {"original", "interpolated", "corrected", "resegmented"}
    mask : SimpleITK.Image
        The mask, or a crop of it holding the whole ROI.
    label : int
    image : SimpleITK.Image, optional
        Grey levels on the grid of `mask`: adds the ROI's mean, min and max.
    offset_xyz : 3 int
        Index of `mask`'s first voxel in the volume, when it is a crop.
    spacing_xyz, size_xyz : optional
        Of the whole mask, when `mask` is a crop (default: `mask`'s).
    mask_hash : str, optional
        Hash of the whole mask (``original`` only; default: of `mask`).
    """
    key = f"{PREFIX}Mask-{prefix}_"
    out: dict[str, Any] = {}
    if prefix == "original":
        out[key + "Hash"] = (
            mask_hash or volume_summary(sitk.GetArrayViewFromImage(mask), as_uint32=True)["hash"]
        )
    out[key + "Spacing"] = tuple(float(s) for s in (spacing_xyz or mask.GetSpacing()))
    out[key + "Size"] = tuple(int(n) for n in (size_xyz or mask.GetSize()))

    roi = sitk.GetArrayViewFromImage(mask) == label
    where = np.nonzero(roi)
    lower = np.array([w.min() for w in where[::-1]])
    upper = np.array([w.max() for w in where[::-1]])
    offset = np.asarray(offset_xyz, dtype=int)
    out[key + "BoundingBox"] = tuple(int(v) for v in np.r_[lower + offset, upper - lower + 1])
    out[key + "VoxelNum"] = int(where[0].size)
    # 26-connected parts, as PyRadiomics counts them (FullyConnected).
    components = sitk.ConnectedComponentImageFilter()
    components.FullyConnectedOn()
    components.Execute(sitk.GetImageFromArray(roi.view(np.uint8)))
    out[key + "VolumeNum"] = int(components.GetObjectCount())
    local = np.array([w.mean() for w in where[::-1]])
    out[key + "CenterOfMassIndex"] = tuple(float(v) for v in local + offset)
    out[key + "CenterOfMass"] = tuple(mask.TransformContinuousIndexToPhysicalPoint(local.tolist()))
    if image is not None:
        values = sitk.GetArrayViewFromImage(image)[roi].astype(np.float64)
        out[key + "Mean"] = float(np.mean(values))
        out[key + "Minimum"] = float(np.min(values))
        out[key + "Maximum"] = float(np.max(values))
    return out
