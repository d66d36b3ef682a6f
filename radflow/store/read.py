"""Reading the store: lazy DataArrays of a series' image and label maps, boxes, ROI boxes.

:func:`open_volume` and :func:`open_label` return dask-backed DataArrays
(nothing is read until computed) that also carry the zarr array they read
(:class:`radflow.store.source.StoredArray`), so that the extractor reads an ROI's
box straight from zarr. :func:`read_box` reads a box into memory by ids;
:func:`roi_bbox` answers an ROI's box from what the store recorded at write time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radflow._lazy import load
from radflow.errors import InputError
from radflow.store import layout, ome
from radflow.store.catalogue import is_store_path
from radflow.store.chunks import CheckedArray
from radflow.store.convert import data_array
from radflow.store.layout import DIMS
from radflow.store.source import ENCODING_KEY, Box, StoredArray, nonzero_box, recorded_box

dask = load("dask")
dask_array = load("dask.array")
xr = load("xarray")

__all__ = ["open_label", "open_path", "open_volume", "read_box", "roi_bbox"]


def _lazy(array: CheckedArray, path: Path, name: str, fingerprint: str) -> dask_array.Array:
    # Deterministic dask keys: the same stored content gets the same key (the
    # fingerprint names the content; the layout of its array completes it).
    token = dask.base.tokenize(
        str(path), name, fingerprint, array.shape, array.chunks, str(array.dtype)
    )
    return dask_array.from_array(
        array,
        chunks=array.chunks,
        name=f"radflow-{name}-{token}",
        meta=np.empty((0,) * array.ndim, dtype=array.dtype),
    )


def _open(
    array: CheckedArray,
    path: Path,
    name: str,
    attrs: dict,
    da_name: str,
    recorded: dict,
    *,
    is_label: bool,
) -> xr.DataArray:
    """A lazy DataArray of a stored array, carrying its :class:`StoredArray`.

    ``recorded`` holds the radflow attributes of the array's own node (the series
    for the image, the label image for a label): its ``summary`` and ``boxes``.
    """
    data = _lazy(array, path, name, attrs["fingerprint"])
    out = data_array(data, attrs, da_name)
    summary, boxes = recorded.get("summary"), recorded.get("boxes")
    out.encoding[ENCODING_KEY] = StoredArray(
        array=array,
        dask_name=data.name,
        origin_zyx=tuple(float(o) for o in attrs["origin_zyx"]),
        content=(str(path), name, str(attrs["fingerprint"])),
        is_label=is_label,
        summary=summary if isinstance(summary, dict) else None,
        boxes=boxes if is_label and isinstance(boxes, dict) else None,
    )
    return out


def open_volume(store: str | Path, case: str, series: str) -> xr.DataArray:
    """Open a series' image lazily.

    Parameters
    ----------
    store : str or path-like
        Root folder of the store.
    case, series : str
        Ids the series was written under.

    Returns
    -------
    xarray.DataArray
        Named ``"image"``, dims ``("z", "y", "x")``, dask-backed with one dask
        chunk per zarr chunk (nothing is read until computed). Coordinates in
        mm along the grid axes. ``attrs``: ``spacing_zyx``, ``origin_zyx`` (mm),
        ``direction_xyz``, ``case``, ``series``, ``fingerprint`` and the
        attributes given to :func:`radflow.store.write.write_series` (``modality``, ...).

    Raises
    ------
    radflow.errors.InputError
        No such series, or metadata radflow did not write.
    """
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    return _open(
        layout.zarr_array(path, ome.LEVEL), path, "image", attrs, "image", attrs, is_label=False
    )


def open_label(store: str | Path, case: str, series: str, key: str) -> xr.DataArray:
    """Open one label image of a series lazily, like :func:`open_volume`.

    The DataArray is named ``key``; its attrs add ``rois`` (label value ->
    ROI name), ``key`` and ``source`` to the image's.
    """
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    array, extra = layout.label_node(path, key)
    return _open(array, path, f"label-{key}", {**attrs, **extra}, key, extra, is_label=True)


def open_path(path: str | Path) -> xr.DataArray:
    """Open a series or a label map by its folder, as shells and file dialogs name them.

    ``STORE/<case>/<series>`` opens the image (:func:`open_volume`),
    ``STORE/<case>/<series>/labels/<key>`` one label map (:func:`open_label`).
    """
    path = Path(path).resolve()
    if path.parent.name == "labels" and (path.parents[1] / "zarr.json").is_file():
        series = path.parents[1]
        return open_label(series.parents[1], series.parent.name, series.name, path.name)
    if is_store_path(path):
        return open_volume(path.parents[1], path.parent.name, path.name)
    raise InputError(
        path, "not a series (STORE/<case>/<series>) or label (.../labels/<key>) of a store"
    )


def _box_slices(box_zyx, margin_zyx, shape_zyx, source) -> Box:
    if len(box_zyx) != 3:
        raise ValueError(f"box_zyx must have 3 entries (z, y, x), got {box_zyx!r}")
    if len(margin_zyx) != 3 or any(int(m) != m or m < 0 for m in margin_zyx):
        raise ValueError(f"margin_zyx must be 3 non-negative voxel counts, got {margin_zyx!r}")
    out = []
    for dim, item, margin, size in zip(DIMS, box_zyx, margin_zyx, shape_zyx):
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise ValueError(f"box_zyx along {dim} must have step 1, got {item!r}")
            start, stop = item.start or 0, size if item.stop is None else item.stop
        else:
            start, stop = item
        if not (0 <= start < stop):
            raise ValueError(f"box_zyx along {dim} must satisfy 0 <= start < stop, got {item!r}")
        start, stop = max(0, int(start) - int(margin)), min(size, int(stop) + int(margin))
        if start >= stop:
            raise InputError(
                source, f"box along {dim} {item!r} lies outside the volume (size {size})"
            )
        out.append(slice(start, stop))
    return tuple(out)


def read_box(
    store: str | Path,
    case: str,
    series: str,
    box_zyx: Sequence,
    *,
    margin_zyx: Sequence[int] = (0, 0, 0),
    key: str | None = None,
) -> xr.DataArray:
    """Read a box of the image (or of a label image), plus a margin, into memory.

    Only the chunks the box overlaps are read.

    Parameters
    ----------
    store : str or path-like
    case, series : str
    box_zyx : 3 slices or 3 (start, stop) pairs
        Voxel index ranges along z, y, x, stop excluded (as from :func:`roi_bbox`).
    margin_zyx : 3 int, optional
        Voxels added on each side along z, y, x; the box is then clipped to
        the volume.
    key : str, optional
        Read the label image ``key`` instead of the image.

    Returns
    -------
    xarray.DataArray
        NumPy-backed, with the coordinates, name and attrs of
        :func:`open_volume` (or :func:`open_label`) for that box; pass it to
        :func:`radflow.store.convert.to_sitk` for an image with the box's geometry.
    """
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    if key is None:
        array, name = layout.zarr_array(path, ome.LEVEL), "image"
    else:
        array, extra = layout.label_node(path, key)
        attrs, name = {**attrs, **extra}, key
    box = _box_slices(box_zyx, margin_zyx, array.shape, path)
    return data_array(array[box], attrs, name, start_zyx=[s.start for s in box])


def roi_bbox(
    store: str | Path, case: str, series: str, key: str, label: int | str | None = None
) -> Box:
    """Bounding box of an ROI in voxel indices.

    The box recorded when the label image was written; for labels written
    by older versions, the label is read one slab of chunks at a time.

    Parameters
    ----------
    store : str or path-like
    case, series : str
    key : str
        Label image to search.
    label : int or str, optional
        Label value, or ROI name (looked up in the label image's ``rois``);
        by default every nonzero voxel.

    Returns
    -------
    tuple of 3 slice
        (z, y, x) index ranges, stop excluded, enclosing every voxel of the ROI.

    Raises
    ------
    radflow.errors.InputError
        Unknown key or ROI name, or no voxel carries the label ("empty ROI").
    """
    path, _ = layout.open_series(store, case, series)
    array, extra = layout.label_node(path, key)
    source = path / "labels" / key
    if isinstance(label, str):
        by_name = {name: value for value, name in extra["rois"].items()}
        if label not in by_name:
            raise InputError(source, f"no ROI named {label!r}; the label has {sorted(by_name)}")
        label = by_name[label]
    boxes = extra.get("boxes")
    box = recorded_box(boxes, label) if isinstance(boxes, dict) else nonzero_box(array, label)
    if box is None:
        what = "any label" if label is None else f"label {label}"
        raise InputError(source, f"empty ROI: no voxel has {what}")
    return box
