"""What a DataArray of the store reads from, and :class:`RoiSource`, what one extraction reads.

:func:`radflow.store.read.open_volume` and :func:`~radflow.store.read.open_label`
return lazy (dask-backed) DataArrays. Through dask, reading a small ROI's box costs
more in graph building than in I/O, and a whole-volume summary would be streamed
again for every ROI. So each such DataArray carries, in
``da.encoding["radflow"]``, a :class:`StoredArray`: the zarr array it reads and
what the store recorded with it (whole-volume summary, ROI boxes). It is used
only while the DataArray is unmodified (:func:`stored`): a crop, a computed,
re-chunked or re-typed array, or new coordinates fall back to the DataArray's own
data, with the same results.

:func:`roi_source` pairs an image and its label map into a :class:`RoiSource`,
the contract between the store and the extractor: the grid, the box of a label
value, the voxels of a box, and the whole-volume summaries PyRadiomics'
diagnostics and normalisation need.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import ArrayLike

from radflow._geometry import bounding_box, union_box
from radflow._lazy import is_loaded, load
from radflow.errors import InputError
from radflow.store import convert, summary
from radflow.store.chunks import CheckedArray
from radflow.store.layout import DIMS

xr = load("xarray")

__all__ = [
    "ENCODING_KEY",
    "RoiSource",
    "StoredArray",
    "box_image",
    "is_dataarray",
    "label_box",
    "roi_source",
    "stored",
    "stored_summary",
]

#: Key of ``DataArray.encoding`` under which the store keeps a :class:`StoredArray`.
ENCODING_KEY = "radflow"

Box = tuple[slice, slice, slice]


@dataclass(frozen=True, eq=False)
class StoredArray:
    """The zarr array behind a DataArray of the store, and what was recorded with it.

    Attributes
    ----------
    array : radflow.store.chunks.CheckedArray
        The stored voxels, (z, y, x), read through the check for missing and
        damaged chunks.
    dask_name : str
        Name of the dask array the DataArray was opened with; a dask name is a
        token of the content, so a DataArray whose data still has this name holds
        exactly these voxels.
    origin_zyx : tuple of 3 float
        The grid's origin in mm, as the DataArray's first coordinates.
    content : tuple of 3 str
        Series folder, array (``"image"``, ``"label-<key>"``) and fingerprint: the
        identity of the stored voxels across DataArrays and processes.
    is_label : bool
        A label image (its summary is that of the uint32 cast, the mask hash).
    summary : dict or None
        The whole-volume summary recorded at write time
        (:func:`radflow.store.summary.volume_summary`); None for older stores.
    boxes : dict or None
        Label images: the box of each label value recorded at write time, as
        ``{"<value>": [[z0, z1], [y0, y1], [x0, x1]]}``; None for older stores.
    """

    array: CheckedArray
    dask_name: str
    origin_zyx: tuple[float, float, float]
    content: tuple[str, str, str]
    is_label: bool
    summary: dict | None = None
    boxes: dict | None = None

    # Immutable: copies of a DataArray (deep ones included) share it.
    def __copy__(self) -> StoredArray:
        return self

    def __deepcopy__(self, memo: dict) -> StoredArray:
        return self


def is_dataarray(item: object) -> bool:
    """Whether ``item`` is an xarray DataArray (without importing xarray to find out)."""
    # A DataArray cannot exist before xarray is imported.
    return is_loaded("xarray") and isinstance(item, xr.DataArray)


def stored(da: xr.DataArray) -> StoredArray | None:
    """The :class:`StoredArray` an unmodified DataArray of the store reads, else None.

    None for any other DataArray: a crop, a computed, re-chunked or re-typed one
    (their dask names differ), one whose coordinates were replaced, or one not
    opened from the store. Reading from the returned array skips dask's graph
    building, which dominates reads of small boxes.
    """
    source = getattr(da, "encoding", {}).get(ENCODING_KEY)
    if not isinstance(source, StoredArray):
        return None
    if getattr(da.data, "name", None) != source.dask_name:
        return None
    if tuple(source.array.shape) != tuple(da.shape) or tuple(da.dims) != DIMS:
        return None
    coords = da.coords.variables
    if any(
        dim not in coords or float(coords[dim].values[0]) != float(o)
        for dim, o in zip(DIMS, source.origin_zyx)
    ):
        return None
    return source


def _slabs(da: xr.DataArray, source: StoredArray | None):
    """What to read a whole DataArray from, slab by slab: its zarr array, or its data."""
    return da.data if source is None else source.array


def _recorded_summary(source: StoredArray | None, *, moments: bool, as_uint32: bool) -> dict | None:
    if source is None or not isinstance(source.summary, dict) or "hash" not in source.summary:
        return None
    if as_uint32 != source.is_label or (moments and not as_uint32 and "sum" not in source.summary):
        return None  # a label's summary is of its uint32 cast, an image's of its values
    return dict(source.summary)


def stored_summary(
    da: xr.DataArray, *, moments: bool = False, as_uint32: bool = False
) -> dict | None:
    """The whole-volume summary the store recorded when it wrote ``da``'s voxels, or None.

    As :func:`radflow.store.summary.volume_summary` of the whole volume would
    return it (the same function ran at write time), for an unmodified
    DataArray of ``open_volume`` (intensity summary) or ``open_label``
    (``as_uint32``: the hash of the mask); None for other DataArrays, for a
    series written before summaries were stored, or when `moments` are asked
    for and were not recorded.
    """
    return _recorded_summary(stored(da), moments=moments, as_uint32=as_uint32)


def nonzero_box(array: ArrayLike, label: int | None = None) -> Box | None:
    """Box of the voxels equal to ``label`` (any nonzero: None), one z slab of chunks at a time.

    ``array`` is a zarr array (slabs one chunk deep) or anything sliceable
    into NumPy. None when no voxel matches.
    """
    chunks = getattr(array, "chunks", None)
    if chunks and isinstance(chunks[0], int):  # zarr: whole chunks, each read once
        depth = chunks[0]
    else:
        depth = max(1, summary.SLAB_VOXELS // max(1, array.shape[1] * array.shape[2]))
    boxes = []
    for z0 in range(0, array.shape[0], depth):
        block = np.asarray(array[z0 : z0 + depth])
        box = bounding_box(block != 0 if label is None else block == label)
        if box is not None:
            boxes.append((slice(z0 + box[0].start, z0 + box[0].stop), *box[1:]))
    return union_box(boxes)


def recorded_box(boxes: dict, label: int | None = None) -> Box | None:
    """The box of ``label`` (any nonzero: None) from the boxes a label image was written with."""
    if label is None:
        found = list(boxes.values())
    else:
        key = str(int(label)) if float(label).is_integer() else None
        found = [boxes[key]] if key in boxes else []
    return union_box(tuple(slice(start, stop) for start, stop in box) for box in found)


def _label_box(da: xr.DataArray, source: StoredArray | None, label: int | None) -> Box | None:
    if source is not None and isinstance(source.boxes, dict):
        return recorded_box(source.boxes, label)
    return nonzero_box(_slabs(da, source), label)


def label_box(da: xr.DataArray, label: int | None = None) -> Box | None:
    """Bounding box (z, y, x index ranges) of the voxels of a label DataArray equal to ``label``.

    When ``da`` is as ``open_label`` returned it, the box the store recorded when
    it wrote the label (nothing read); otherwise the label is read one slab of
    chunks at a time. None when no voxel has the label.
    """
    return _label_box(da, stored(da), label)


def _box_image(da: xr.DataArray, source: StoredArray | None, region: Box) -> sitk.Image:
    if source is None:
        return convert.to_sitk(da.isel(dict(zip(DIMS, region))))
    spacing, origin, direction = convert.geometry(da.attrs, da.name)
    return convert.sitk_box(
        source.array[region], spacing, origin, direction, [s.start for s in region]
    )


def box_image(da: xr.DataArray, region_zyx: Sequence[slice]) -> sitk.Image:
    """The box ``region_zyx`` (3 step-1 slices) of a store DataArray as a SimpleITK image.

    Equal to ``to_sitk(da.isel(z=..., y=..., x=...))``; read straight from
    the zarr array when ``da`` is as ``open_volume`` / ``open_label`` returned it
    (only the chunks the box overlaps).
    """
    region = tuple(region_zyx)
    return _box_image(da, stored(da), region)


# Series written before the store recorded summaries: the summary streamed from the
# stored voxels, by what identifies them (series folder, array, fingerprint), so that
# the ROIs of one series stream it once per process, whichever DataArray reads it.
_STREAMED: OrderedDict[tuple, dict] = OrderedDict()
_STREAMED_KEPT = 16
_STREAMED_LOCK = threading.Lock()


def _summary(
    da: xr.DataArray, source: StoredArray | None, *, moments: bool = False, as_uint32: bool = False
) -> dict[str, Any]:
    recorded = _recorded_summary(source, moments=moments, as_uint32=as_uint32)
    if recorded is not None:
        return recorded
    if source is None:
        return summary.volume_summary(da.data, moments=moments, as_uint32=as_uint32)
    key = (source.content, as_uint32)
    with _STREAMED_LOCK:
        cached = _STREAMED.get(key)
    if cached is None or (moments and "sum" not in cached):
        cached = summary.volume_summary(source.array, moments=moments, as_uint32=as_uint32)
        with _STREAMED_LOCK:
            _STREAMED[key] = cached
            while len(_STREAMED) > _STREAMED_KEPT:
                _STREAMED.popitem(last=False)
    return cached


def _name(da: xr.DataArray) -> str:
    """``case/series/name`` of a store DataArray, for messages."""
    parts = [str(da.attrs.get(k)) for k in ("case", "series") if da.attrs.get(k)]
    return "/".join(parts + [str(da.name)]) if parts else str(da.name)


@dataclass(frozen=True, eq=False)
class RoiSource:
    """An image of the store and its label map on the same grid: what one extraction reads.

    Built by :func:`roi_source`. Each side reads from its zarr array while its
    DataArray is unmodified (:func:`stored`), else from the DataArray.

    Attributes
    ----------
    image, mask : xarray.DataArray
        The image and the label map, dims ``("z", "y", "x")``.
    image_stored, mask_stored : StoredArray or None
        What each reads, when unmodified.
    image_name, mask_name : str
        ``case/series/name``, for messages.
    shape_zyx : tuple of 3 int
        The grid's shape in voxels.
    spacing_zyx : tuple of 3 float
        Voxel spacing in mm.
    direction_xyz : tuple of 9 float
        Direction matrix, row-major, as SimpleITK gives it.
    """

    image: xr.DataArray
    mask: xr.DataArray
    image_stored: StoredArray | None
    mask_stored: StoredArray | None
    image_name: str
    mask_name: str
    shape_zyx: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    direction_xyz: tuple[float, ...]

    def label_box(self, label: int | None) -> Box | None:
        """The box (z, y, x slices) of the voxels of value ``label``; None when there are none."""
        return _label_box(self.mask, self.mask_stored, label)

    def read(self, region_zyx: Sequence[slice]) -> tuple[sitk.Image, sitk.Image]:
        """The image and the mask in the box ``region_zyx`` (3 step-1 slices), as images."""
        region = tuple(region_zyx)
        return (
            _box_image(self.image, self.image_stored, region),
            _box_image(self.mask, self.mask_stored, region),
        )

    def image_summary(self, *, moments: bool = False) -> dict[str, Any]:
        """The image's whole-volume summary (:func:`radflow.store.summary.volume_summary`).

        Recorded by the store, else streamed (once per process for a stored series).
        """
        return _summary(self.image, self.image_stored, moments=moments)

    def mask_hash(self) -> str:
        """SHA-1 of the whole mask cast to uint32, as PyRadiomics hashes it."""
        return _summary(self.mask, self.mask_stored, as_uint32=True)["hash"]


def roi_source(image: xr.DataArray, mask: xr.DataArray) -> RoiSource:
    """An image DataArray and its label map DataArray as one :class:`RoiSource`.

    Parameters
    ----------
    image : xarray.DataArray
        From :func:`radflow.store.read.open_volume` (any DataArray of the
        store's form, see :func:`radflow.store.convert.from_sitk`).
    mask : xarray.DataArray
        From :func:`radflow.store.read.open_label`, on the image's grid.

    Raises
    ------
    radflow.errors.InputError
        Dims other than ``("z", "y", "x")``, or the label map is not on the image's grid
        (the message names the label map).
    """
    image_name, mask_name = _name(image), _name(mask)
    if tuple(image.dims) != DIMS or tuple(mask.dims) != DIMS:
        raise InputError(
            mask_name,
            f"store volumes must have dims ('z', 'y', 'x'), got {image.dims} and {mask.dims}",
        )
    if image.shape != mask.shape or any(
        not np.allclose(image.attrs.get(k), mask.attrs.get(k))
        for k in ("spacing_zyx", "origin_zyx", "direction_xyz")
    ):
        raise InputError(
            mask_name,
            f"Image/Mask geometry mismatch: the label map {mask.shape} "
            f"is not on the grid of the image {image.shape}",
        )
    return RoiSource(
        image=image,
        mask=mask,
        image_stored=stored(image),
        mask_stored=stored(mask),
        image_name=image_name,
        mask_name=mask_name,
        shape_zyx=tuple(int(n) for n in image.shape),
        spacing_zyx=tuple(float(s) for s in image.attrs["spacing_zyx"]),
        direction_xyz=tuple(float(d) for d in image.attrs["direction_xyz"]),
    )
