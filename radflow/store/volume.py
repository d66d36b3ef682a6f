"""The volume store: one OME-Zarr 0.5 group (zarr format 3) per image series.

Layout, for already-pseudonymised ``case`` and ``series`` ids::

    STORE/<case>/<series>/zarr.json        ome multiscales + radflow attributes
    STORE/<case>/<series>/0/               the image, original dtype, (z, y, x)
    STORE/<case>/<series>/labels/<key>/0/  one label image per LabelMap, uint8/uint16

Spacing and origin are the ``scale`` and ``translation`` of the multiscale, in
mm and (z, y, x) order. OME-Zarr has no direction matrix, so the series
attributes carry one under ``"radflow"``: ``direction_xyz`` is the 3 x 3 matrix
row-major as ``SimpleITK.Image.GetDirection`` gives it. JSON floats round-trip
doubles, so :func:`to_sitk` rebuilds the geometry bit for bit.

A voxel at index (k, j, i) lies at the physical (LPS, mm) point
``origin_xyz + direction_xyz @ ((i, j, k) * spacing_xyz)``. The coordinates of
the DataArrays returned here are ``origin + index * spacing`` along each image
axis: millimetres along the grid, equal to patient coordinates only when the
direction is the identity.

Series are written by :func:`write_series` under a hidden temporary name and
renamed into place (:mod:`radflow._atomic`); readers skip hidden entries,
so a series is either complete or invisible.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dask.array
import numpy as np
import SimpleITK as sitk
import xarray as xr
import zarr
import zarr.storage
from dask.base import tokenize
from zarr.codecs import BloscCodec

from radflow.errors import InputError
from radflow.io.records import LabelMap, roi_key
from radflow.store import ome
from radflow._atomic import atomic_dir, atomic_file
from radflow.store.chunks import chunk_shape
from radflow.store.summary import SLAB_VOXELS, label_boxes, volume_summary

#: Version of the layout above, stored as ``radflow.layout``; bump on change.
LAYOUT = 1
DIMS = ("z", "y", "x")
_COMPRESSORS = (BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),)
#: Keys of ``attributes["radflow"]`` that write_series sets itself.
_RESERVED = frozenset({"layout", "direction_xyz", "fingerprint", "summary"})
#: A label map's grid must equal the image's to this (float noise only), in mm.
_GRID_TOLERANCE_MM = 1e-6


@dataclass(frozen=True)
class SeriesInfo:
    """Summary of one complete series in the store (see :func:`list_series`).

    Attributes
    ----------
    case, series : str
        The pseudonymised ids the series was written under.
    modality : str or None
        ``attrs["modality"]`` as given to :func:`write_series`.
    shape_zyx : tuple of 3 int
        Image shape in voxels.
    spacing_zyx : tuple of 3 float
        Voxel spacing in mm.
    label_keys : tuple of str
        Names of the stored label images.
    attrs : dict
        The series' ``radflow`` attributes (fingerprint, direction_xyz, ...).
    path : pathlib.Path
        The series folder.
    """

    case: str
    series: str
    modality: str | None
    shape_zyx: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    label_keys: tuple[str, ...]
    attrs: dict
    path: Path


# -- paths -------------------------------------------------------------------


def _check_id(what: str, value) -> None:
    if (
        not isinstance(value, str)
        or not value
        or value.startswith(".")
        or "/" in value
        or "\\" in value
    ):
        raise ValueError(
            f"{what} must be a non-empty folder name without '/' that does not start "
            f"with '.', got {value!r}"
        )


def series_path(store, case: str, series: str) -> Path:
    """The folder of a series: ``store/case/series`` (ids checked, nothing read)."""
    _check_id("case", case)
    _check_id("series", series)
    return Path(store) / case / series


def _zarr_store(path: Path, *, read_only: bool):
    # One place that opens a folder as a zarr store (tests wrap it to count reads).
    return zarr.storage.LocalStore(path, read_only=read_only)


# -- writing -----------------------------------------------------------------


def _image_array(image, source: str) -> np.ndarray:
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    if image.GetDimension() != 3:
        raise InputError(source, f"image must be 3-D, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            source,
            f"image must hold one value per voxel, got {image.GetNumberOfComponentsPerPixel()}",
        )
    data = sitk.GetArrayViewFromImage(image)
    if data.dtype.kind not in "iuf":
        raise InputError(source, f"unsupported voxel type {image.GetPixelIDTypeAsString()}")
    return data


def _grid_difference(a: sitk.Image, b: sitk.Image) -> str | None:
    """Why the grids of ``a`` and ``b`` differ, or None when they are equal."""
    if a.GetSize() != b.GetSize():
        return f"size {a.GetSize()} vs {b.GetSize()}"
    for what, x, y, tol in (
        ("spacing", a.GetSpacing(), b.GetSpacing(), _GRID_TOLERANCE_MM),
        ("origin", a.GetOrigin(), b.GetOrigin(), _GRID_TOLERANCE_MM),
        ("direction", a.GetDirection(), b.GetDirection(), 1e-9),
    ):
        if np.max(np.abs(np.subtract(x, y))) > tol:
            return f"{what} {x} vs {y}"
    return None


def _label_array(label: LabelMap, image: sitk.Image, source: str) -> np.ndarray:
    where = f"label {label.key!r}"
    if not isinstance(label.key, str) or label.key != roi_key(label.key):
        raise InputError(
            source, f"{where}: key is not normalised (use radflow.io.records.roi_key)"
        )
    if not isinstance(label.image, sitk.Image) or label.image.GetDimension() != 3:
        raise InputError(source, f"{where}: image must be a 3-D SimpleITK.Image")
    if label.image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(source, f"{where}: must hold one value per voxel")
    difference = _grid_difference(label.image, image)
    if difference:
        raise InputError(source, f"{where}: geometry differs from the image: {difference}")
    if not all(isinstance(v, int) and v > 0 and isinstance(n, str) for v, n in label.rois.items()):
        raise InputError(source, f"{where}: rois must map positive int values to str names")
    data = sitk.GetArrayViewFromImage(label.image)
    if data.dtype.kind not in "iu":
        raise InputError(
            source, f"{where}: values must be integers, got {label.image.GetPixelIDTypeAsString()}"
        )
    low, high = int(data.min()), int(data.max())
    if low < 0:
        raise InputError(source, f"{where}: negative label value {low}")
    if high == 0:
        raise InputError(source, f"{where}: empty ROI (no nonzero voxel)")
    if high > np.iinfo(np.uint16).max:
        raise InputError(source, f"{where}: label value {high} does not fit uint16")
    return data.astype(np.uint8 if high <= np.iinfo(np.uint8).max else np.uint16, copy=False)


def _radflow_attrs(image: sitk.Image, attrs: dict | None, fingerprint: str) -> dict:
    if not isinstance(fingerprint, str) or not fingerprint:
        raise ValueError(f"fingerprint must be a non-empty str, got {fingerprint!r}")
    extra = dict(attrs or {})
    clash = _RESERVED & extra.keys()
    if clash:
        raise ValueError(f"attrs may not set {sorted(clash)}: write_series sets them")
    out = {
        "layout": LAYOUT,
        "direction_xyz": list(image.GetDirection()),
        "fingerprint": fingerprint,
        **extra,
    }
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attrs must be JSON-serialisable without NaN: {err}") from None
    return out


def _write_level(group: zarr.Group, data: np.ndarray, chunks: tuple[int, int, int]) -> None:
    array = group.create_array(
        ome.LEVEL,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compressors=_COMPRESSORS,
        fill_value=0,
        dimension_names=DIMS,
    )
    array[...] = data


def write_series(
    store,
    case: str,
    series: str,
    image: sitk.Image,
    labels: Sequence[LabelMap] = (),
    *,
    attrs: dict | None = None,
    fingerprint: str,
) -> Path:
    """Write (or replace) one series and its label maps, atomically.

    Parameters
    ----------
    store : str or path-like
        Root folder of the store; created if missing.
    case, series : str
        Pseudonymised ids; the series lands in ``store/case/series``.
    image : SimpleITK.Image
        3-D scalar image, stored in its own dtype (int16 HU stays int16).
    labels : sequence of LabelMap, optional
        Label maps on exactly the image's grid, stored as OME-Zarr labels
        ``labels/<key>`` in uint8 (uint16 when a value exceeds 255).
    attrs : dict, optional
        JSON-serialisable attributes kept under ``attributes["radflow"]``,
        e.g. ``modality`` (reported by :func:`list_series`) and the
        pseudonymised ``frame`` of reference. Must not hold patient identifiers.
    fingerprint : str
        Identifies the source data (see :func:`series_fingerprint`).

    Returns
    -------
    pathlib.Path
        The series folder.

    Raises
    ------
    radflow.errors.InputError
        Not a 3-D scalar image; a label map off the image grid, empty,
        negative, non-integer, or with a duplicate or non-normalised key.
    ValueError
        Bad ids, fingerprint, or attrs (reserved key, not JSON).

    Notes
    -----
    Everything is checked before anything is written. The series is built
    under a hidden temporary name beside its final folder and renamed into
    place; an older version is renamed away first and deleted after. An
    exception or a killed process leaves only hidden entries, which readers
    ignore and the next write of the series deletes.
    """
    final = series_path(store, case, series)
    source = f"{final}"
    data = _image_array(image, source)
    labels = list(labels)
    keys = [label.key for label in labels]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InputError(source, f"duplicate label keys {duplicates}")
    label_data = [_label_array(label, image, source) for label in labels]
    meta = _radflow_attrs(image, attrs, fingerprint)
    summary = _summary_attrs(volume_summary(data, moments=True))
    if summary:
        meta["summary"] = summary
    spacing_zyx = image.GetSpacing()[::-1]
    origin_zyx = image.GetOrigin()[::-1]
    chunks = chunk_shape(data.shape, data.dtype.itemsize)

    with atomic_dir(final) as tmp:
        root = zarr.open_group(
            _zarr_store(tmp, read_only=False),
            mode="w",
            zarr_format=3,
            attributes={
                "ome": ome.image_metadata("image", spacing_zyx, origin_zyx),
                "radflow": meta,
            },
        )
        _write_level(root, data, chunks)
        if labels:
            root.create_group("labels", attributes={"ome": ome.labels_metadata(keys)})
            for label, values in zip(labels, label_data):
                _write_label(tmp / "labels" / label.key, label, values, spacing_zyx, origin_zyx,
                             chunks)
    return final


def _summary_attrs(summary: dict) -> dict | None:
    """A volume summary as JSON attributes; None when it holds NaN or infinity (not JSON)."""
    plain = {k: (v.item() if hasattr(v, "item") else v) for k, v in summary.items()}
    try:
        json.dumps(plain, allow_nan=False)
    except ValueError:
        return None
    return plain


def _write_label(parent: Path, label: LabelMap, values: np.ndarray, spacing_zyx, origin_zyx,
                 chunks) -> None:
    # The mask's hash and each ROI's box, so that extraction reads only the box.
    boxes = {str(v): [[b.start, b.stop] for b in box] for v, box in label_boxes(values).items()}
    attributes = {
        "ome": ome.label_metadata(label.key, spacing_zyx, origin_zyx, label.rois),
        "radflow": {"source": label.source, "summary": volume_summary(values, as_uint32=True),
                    "boxes": boxes},
    }
    group = zarr.open_group(_zarr_store(parent, read_only=False), mode="w", zarr_format=3,
                            attributes=attributes)
    _write_level(group, values, chunks)


def add_label(store, case: str, series: str, label: LabelMap, *, replace: bool = False) -> Path:
    """Add one label map to a stored series (e.g. a threshold segmentation).

    The label image is written under a temporary name and renamed into
    ``labels/<key>``; only then is it listed in the ``labels`` group, by an
    atomic rewrite of that group's metadata. A reader sees the series without
    or with the new label, never half of it.

    Parameters
    ----------
    store : str or path-like
    case, series : str
    label : LabelMap
        On exactly the series' grid (checked as in :func:`write_series`).
    replace : bool
        Overwrite a label of the same key; otherwise that is an error.

    Returns
    -------
    pathlib.Path
        The label's folder.
    """
    path, attributes = _open_series(store, case, series)
    attrs = _series_attrs(attributes, path, case, series)
    image_array = _array(path, ome.LEVEL)
    reference = sitk.Image([int(n) for n in image_array.shape[::-1]], sitk.sitkUInt8)
    reference.SetSpacing(attrs["spacing_zyx"][::-1])
    reference.SetOrigin(attrs["origin_zyx"][::-1])
    reference.SetDirection(attrs["direction_xyz"])
    keys = _label_keys(path)
    if label.key in keys and not replace:
        raise InputError(path, f"label {label.key!r} exists; choose another name or replace it")
    values = _label_array(label, reference, str(path))
    final = path / "labels" / label.key
    with atomic_dir(final) as tmp:
        _write_label(tmp, label, values, attrs["spacing_zyx"], attrs["origin_zyx"],
                     image_array.chunks)
    if label.key not in keys:
        meta = {"zarr_format": 3, "node_type": "group",
                "attributes": {"ome": ome.labels_metadata([*keys, label.key])}}
        with atomic_file(path / "labels" / "zarr.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    return final


# -- reading -----------------------------------------------------------------


def _open_series(store, case: str, series: str) -> tuple[Path, dict]:
    """A series' folder and its group attributes (``zarr.json``, read as JSON)."""
    path = series_path(store, case, series)
    if not (path / "zarr.json").is_file():
        raise InputError(path, "no such series in the store")
    return path, _node_json(path).get("attributes", {})


def _array(series: Path, name: str) -> zarr.Array:
    """The zarr array ``name`` (a path below the series folder), built from its metadata.

    One JSON read: opening it through zarr's API costs several round trips
    through zarr's I/O thread, more than reading a small ROI's box.
    """
    meta = _node_json(series / name)
    if meta.get("node_type") != "array":
        raise InputError(series / name / "zarr.json", "not a zarr array")
    try:
        where = zarr.storage.StorePath(_zarr_store(series, read_only=True), name)
        return zarr.Array(zarr.AsyncArray(meta, where))
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(series / name / "zarr.json", f"invalid zarr array metadata: {exc}") from exc


def _node_json(path: Path) -> dict:
    """A zarr node's ``zarr.json`` (its attributes, and for an array its shape), read as JSON.

    Listing and planning read many series' metadata on one client: plain JSON
    reads are ten times cheaper than opening zarr nodes.
    """
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path / "zarr.json", f"unreadable zarr metadata: {exc}") from exc
    if (not isinstance(meta, dict) or meta.get("zarr_format") != 3
            or not isinstance(meta.get("attributes", {}), dict)):
        raise InputError(path / "zarr.json", "not zarr format 3 metadata")
    return meta


def _series_attrs(attributes: dict, path: Path, case: str, series: str) -> dict:
    """Geometry and radflow attributes of a series (its group attributes), as DataArray attrs."""
    spacing, origin = ome.parse_image(attributes, path)
    meta = dict(attributes.get("radflow") or {})
    if meta.get("layout") != LAYOUT:
        raise InputError(
            path, f"store layout {meta.get('layout')!r}, expected {LAYOUT}: ingest the series again"
        )
    direction = meta.pop("direction_xyz", None)
    if not (isinstance(direction, list) and len(direction) == 9):
        raise InputError(path, "radflow.direction_xyz must be 9 numbers")
    del meta["layout"]
    return {
        "case": case,
        "series": series,
        "spacing_zyx": spacing,
        "origin_zyx": origin,
        "direction_xyz": tuple(float(d) for d in direction),
        **meta,
    }


def _label_keys(path: Path) -> list[str]:
    labels = path / "labels"
    if not (labels / "zarr.json").is_file():
        return []
    return ome.parse_labels(_node_json(labels).get("attributes", {}), labels)


def _label_node(path: Path, key: str) -> tuple[zarr.Array, dict]:
    """A label image's array and its attrs (``key``, ``rois``, and its radflow attributes)."""
    keys = _label_keys(path)
    if key not in keys:
        raise InputError(path, f"no label {key!r}; the series has {keys}")
    folder = path / "labels" / key
    attributes = _node_json(folder).get("attributes", {})
    _, _, rois = ome.parse_label(attributes, folder)
    extra = {"key": key, "rois": rois, **dict(attributes.get("radflow") or {})}
    return _array(path, f"labels/{key}/{ome.LEVEL}"), extra


def _data_array(data, attrs: dict, name: str, start_zyx=(0, 0, 0)) -> xr.DataArray:
    coords = {}
    for axis, dim in enumerate(DIMS):
        index = start_zyx[axis] + np.arange(data.shape[axis])
        values = attrs["origin_zyx"][axis] + index * attrs["spacing_zyx"][axis]
        coords[dim] = (dim, values, {"units": "mm"})
    return xr.DataArray(data, dims=DIMS, coords=coords, name=name, attrs=attrs)


# The zarr arrays behind this process's lazy DataArrays, by dask name. A dask name is a
# token of the content, so an array found here under ``da.data.name`` is the unmodified
# stored one: readers of small boxes (the extractor) go to zarr directly, since building
# and running a dask graph costs more than reading the box.
_STORED: OrderedDict[str, zarr.Array] = OrderedDict()
_STORED_KEPT = 256
_STORED_LOCK = threading.Lock()


def _lazy(array: zarr.Array, path: Path, name: str, fingerprint: str) -> dask.array.Array:
    # Deterministic dask keys: the same stored content gets the same key (the
    # fingerprint names the content; the layout of its array completes it).
    token = tokenize(str(path), name, fingerprint, array.shape, array.chunks, str(array.dtype))
    lazy = dask.array.from_array(
        array,
        chunks=array.chunks,
        name=f"radflow-{name}-{token}",
        meta=np.empty((0,) * array.ndim, dtype=array.dtype),
    )
    with _STORED_LOCK:
        _STORED[lazy.name] = array
        _STORED.move_to_end(lazy.name)
        while len(_STORED) > _STORED_KEPT:
            _STORED.popitem(last=False)
    return lazy


def stored_array(da: xr.DataArray) -> zarr.Array | None:
    """The zarr array an unmodified DataArray of :func:`open_volume` / :func:`open_label` reads.

    Returns None for any other DataArray: a crop, a computed or re-chunked
    one (their dask names differ), one opened in another process, or one
    whose coordinates were replaced. Reading from the returned array skips
    dask's graph building, which dominates reads of small boxes.
    """
    data = getattr(da, "data", None)
    if not isinstance(data, dask.array.Array):
        return None
    with _STORED_LOCK:
        array = _STORED.get(data.name)
    if array is None or tuple(array.shape) != tuple(da.shape) or tuple(da.dims) != DIMS:
        return None
    origin, coords = da.attrs.get("origin_zyx"), da.coords.variables
    if origin is None or any(dim not in coords or float(coords[dim].values[0]) != float(o)
                             for dim, o in zip(DIMS, origin)):
        return None
    return array


def slab_source(da: xr.DataArray):
    """What to read a whole DataArray from slab by slab: its zarr array, or its data."""
    array = stored_array(da)
    return da.data if array is None else array


def open_volume(store, case: str, series: str) -> xr.DataArray:
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
        attributes given to :func:`write_series` (``modality``, ...).

    Raises
    ------
    radflow.errors.InputError
        No such series, or metadata radflow did not write.
    """
    path, attributes = _open_series(store, case, series)
    attrs = _series_attrs(attributes, path, case, series)
    data = _lazy(_array(path, ome.LEVEL), path, "image", attrs["fingerprint"])
    return _data_array(data, attrs, "image")


def label_keys(store, case: str, series: str) -> list[str]:
    """Names of the label images stored with a series, in write order."""
    path, _ = _open_series(store, case, series)
    return _label_keys(path)


def open_label(store, case: str, series: str, key: str) -> xr.DataArray:
    """Open one label image of a series lazily, like :func:`open_volume`.

    The DataArray is named ``key``; its attrs add ``rois`` (label value ->
    ROI name), ``key`` and ``source`` to the image's.
    """
    path, attributes = _open_series(store, case, series)
    attrs = _series_attrs(attributes, path, case, series)
    array, extra = _label_node(path, key)
    data = _lazy(array, path, f"label-{key}", attrs["fingerprint"])
    return _data_array(data, {**attrs, **extra}, key)


def open_path(path) -> xr.DataArray:
    """Open a series or a label map by its folder, as shells and file dialogs name them.

    ``STORE/<case>/<series>`` opens the image (:func:`open_volume`),
    ``STORE/<case>/<series>/labels/<key>`` one label map (:func:`open_label`).
    """
    path = Path(path).resolve()
    if path.parent.name == "labels" and (path.parents[1] / "zarr.json").is_file():
        series = path.parents[1]
        return open_label(series.parents[1], series.parent.name, series.name, path.name)
    if (path / "zarr.json").is_file():
        return open_volume(path.parents[1], path.parent.name, path.name)
    raise InputError(path, "not a series (STORE/<case>/<series>) or label (.../labels/<key>) of a store")


def is_store_path(path) -> bool:
    """True when ``path`` is a folder :func:`open_path` can open."""
    return Path(path).is_dir() and (Path(path) / "zarr.json").is_file()


def list_series(store) -> list[SeriesInfo]:
    """Every complete series in the store, sorted by case then series.

    Hidden entries (temporaries of unfinished writes) and folders without a
    ``zarr.json`` are skipped.

    Raises
    ------
    radflow.errors.InputError
        ``store`` is not a folder, or a series has metadata radflow did not write.
    """
    root = Path(store)
    if not root.is_dir():
        raise InputError(root, "no such store folder")
    found = []
    for case_dir in sorted(root.iterdir()):
        if case_dir.name.startswith(".") or not case_dir.is_dir():
            continue
        for series_dir in sorted(case_dir.iterdir()):
            if series_dir.name.startswith(".") or not (series_dir / "zarr.json").is_file():
                continue
            attributes = _node_json(series_dir).get("attributes", {})
            attrs = _series_attrs(attributes, series_dir, case_dir.name, series_dir.name)
            keys = _label_keys(series_dir)
            shape = _node_json(series_dir / ome.LEVEL).get("shape")
            if not (isinstance(shape, list) and len(shape) == 3):
                raise InputError(series_dir / ome.LEVEL, f"image shape must have 3 entries, got {shape!r}")
            found.append(
                SeriesInfo(
                    case=case_dir.name,
                    series=series_dir.name,
                    modality=attrs.get("modality"),
                    shape_zyx=tuple(int(n) for n in shape),
                    spacing_zyx=attrs["spacing_zyx"],
                    label_keys=tuple(keys),
                    attrs=dict(attributes["radflow"]),
                    path=series_dir,
                )
            )
    return found


def series_fingerprint(store, case: str, series: str) -> str | None:
    """The fingerprint a series was written with, or None if it is not in the store."""
    if not (series_path(store, case, series) / "zarr.json").is_file():
        return None
    path, attributes = _open_series(store, case, series)
    return _series_attrs(attributes, path, case, series)["fingerprint"]


def _box_slices(box_zyx, margin_zyx, shape_zyx, source) -> tuple[slice, slice, slice]:
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


def read_box(store, case: str, series: str, box_zyx, *, margin_zyx=(0, 0, 0), key=None):
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
        :func:`to_sitk` for an image with the box's geometry.
    """
    path, attributes = _open_series(store, case, series)
    attrs = _series_attrs(attributes, path, case, series)
    if key is None:
        array, name = _array(path, ome.LEVEL), "image"
    else:
        array, extra = _label_node(path, key)
        attrs, name = {**attrs, **extra}, key
    box = _box_slices(box_zyx, margin_zyx, array.shape, path)
    return _data_array(array[box], attrs, name, start_zyx=[s.start for s in box])


def roi_bbox(store, case: str, series: str, key: str, label=None) -> tuple[slice, slice, slice]:
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
    path, _ = _open_series(store, case, series)
    array, extra = _label_node(path, key)
    source = path / "labels" / key
    if isinstance(label, str):
        by_name = {name: value for value, name in extra["rois"].items()}
        if label not in by_name:
            raise InputError(source, f"no ROI named {label!r}; the label has {sorted(by_name)}")
        label = by_name[label]
    boxes = extra.get("boxes")
    box = _recorded_box(boxes, label) if isinstance(boxes, dict) else _nonzero_box(array, label)
    if box is None:
        what = "any label" if label is None else f"label {label}"
        raise InputError(source, f"empty ROI: no voxel has {what}")
    return box


def _nonzero_box(array, label=None) -> tuple[slice, slice, slice] | None:
    """Box of the voxels equal to ``label`` (any nonzero: None), one z slab of chunks at a time.

    ``array`` is a zarr array (slabs one chunk deep) or anything sliceable
    into NumPy. None when no voxel matches.
    """
    low = [np.inf] * 3
    high = [-1] * 3
    chunks = getattr(array, "chunks", None)
    if chunks and isinstance(chunks[0], int):  # zarr: whole chunks, each read once
        depth = chunks[0]
    else:
        depth = max(1, SLAB_VOXELS // max(1, array.shape[1] * array.shape[2]))
    for z0 in range(0, array.shape[0], depth):
        block = np.asarray(array[z0 : z0 + depth])
        mask = block != 0 if label is None else block == label
        if not mask.any():
            continue
        for axis in range(3):
            hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
            offset = z0 if axis == 0 else 0
            low[axis] = min(low[axis], offset + hits[0])
            high[axis] = max(high[axis], offset + hits[-1])
    if high[0] < 0:
        return None
    return tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(low, high))


def label_box(da: xr.DataArray, label=None) -> tuple[slice, slice, slice] | None:
    """Bounding box (z, y, x index ranges) of the voxels of a label DataArray equal to ``label``.

    When ``da`` is as :func:`open_label` returned it, the box the store
    recorded when it wrote the label (nothing read); otherwise the label is
    read one slab of chunks at a time. None when no voxel has the label.
    """
    boxes = da.attrs.get("boxes")
    if isinstance(boxes, dict) and stored_array(da) is not None:
        return _recorded_box(boxes, label)
    return _nonzero_box(slab_source(da), label)


def _recorded_box(boxes: dict, label=None) -> tuple[slice, slice, slice] | None:
    """The box of ``label`` (any nonzero: None) from the boxes a label image was written with."""
    if label is None:
        found = list(boxes.values())
    else:
        key = str(int(label)) if float(label).is_integer() else None
        found = [boxes[key]] if key in boxes else []
    if not found:
        return None
    return tuple(slice(min(b[axis][0] for b in found), max(b[axis][1] for b in found)) for axis in range(3))


def stored_summary(da: xr.DataArray, *, moments: bool = False, as_uint32: bool = False) -> dict | None:
    """The whole-volume summary the store recorded when it wrote ``da``'s voxels, or None.

    As :func:`radflow.store.summary.volume_summary` of the whole volume would
    return it (the same function ran at write time), for an unmodified
    DataArray of :func:`open_volume` (intensity summary) or :func:`open_label`
    (``as_uint32``: the hash of the mask); None for other DataArrays, for a
    series written before summaries were stored, or when `moments` are asked
    for and were not recorded.
    """
    summary = da.attrs.get("summary")
    if not isinstance(summary, dict) or "hash" not in summary or stored_array(da) is None:
        return None
    if as_uint32 != ("boxes" in da.attrs) or (moments and not as_uint32 and "sum" not in summary):
        return None  # a label's summary is of its uint32 cast, an image's of its values
    return dict(summary)


def box_image(da: xr.DataArray, region_zyx) -> sitk.Image:
    """The box ``region_zyx`` (3 step-1 slices) of a store DataArray as a SimpleITK image.

    Equal to ``to_sitk(da.isel(z=..., y=..., x=...))``; read straight from
    the zarr array when ``da`` is as :func:`open_volume` / :func:`open_label`
    returned it (only the chunks the box overlaps).
    """
    region = tuple(region_zyx)
    array = stored_array(da)
    if array is None:
        return to_sitk(da.isel(dict(zip(DIMS, region))))
    spacing, origin, direction = _geometry(da.attrs, da.name)
    return _sitk_box(array[region], spacing, origin, direction, [s.start for s in region])


# -- SimpleITK ----------------------------------------------------------------


def _geometry(attrs: dict, name) -> tuple[tuple, tuple, tuple]:
    for key in ("spacing_zyx", "origin_zyx", "direction_xyz"):
        if key not in attrs:
            raise ValueError(
                f"DataArray {name!r} has no attrs[{key!r}]: open it with "
                "radflow.store.volume.open_volume or build it with from_sitk"
            )
    return (
        tuple(float(s) for s in attrs["spacing_zyx"]),
        tuple(float(o) for o in attrs["origin_zyx"]),
        tuple(float(d) for d in attrs["direction_xyz"]),
    )


def to_sitk(da: xr.DataArray) -> sitk.Image:
    """Compute a DataArray from this module into a SimpleITK image, geometry exact.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``("z", "y", "x")`` with the attrs of :func:`open_volume` or
        :func:`from_sitk`; may be a contiguous crop (``isel`` / ``sel`` with
        step-1 slices) of one.

    Returns
    -------
    SimpleITK.Image
        Same voxels and dtype (bool becomes uint8). Spacing and direction are
        the stored ones; the origin is the physical position of the first
        voxel, computed by ITK exactly as ``image[i0:, j0:, k0:]`` would.

    Raises
    ------
    ValueError
        Other dims, missing geometry attrs, or coordinates that are not
        consecutive voxels of the stored grid (strided selection).
    """
    if tuple(da.dims) != DIMS:
        raise ValueError(f"DataArray {da.name!r} must have dims {DIMS}, got {tuple(da.dims)}")
    spacing, origin, direction = _geometry(da.attrs, da.name)
    start = []
    for axis, dim in enumerate(DIMS):
        coord = np.asarray(da[dim].values, dtype=np.float64)
        if coord.size == 0:
            raise ValueError(f"DataArray {da.name!r} is empty along {dim}")
        first = int(round((coord[0] - origin[axis]) / spacing[axis]))
        grid = origin[axis] + (first + np.arange(coord.size)) * spacing[axis]
        if not np.allclose(coord, grid, rtol=0, atol=1e-3 * spacing[axis]):
            raise ValueError(
                f"DataArray {da.name!r}: {dim} coordinates are not consecutive voxels of "
                "the stored grid (strided or resampled); resample with SimpleITK instead"
            )
        start.append(first)
    return _sitk_box(np.asarray(da.values), spacing, origin, direction, start)


def _sitk_box(values: np.ndarray, spacing, origin, direction, start) -> sitk.Image:
    """Voxels ``values`` at index ``start`` (z, y, x) of a stored grid, as a SimpleITK image."""
    if values.dtype == bool:
        values = values.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(values))
    image.SetSpacing(spacing[::-1])
    image.SetDirection(direction)
    if any(start):
        # ITK's own index-to-point transform, so a crop's origin is bit-exact
        # with SimpleITK's slicing of the full image.
        grid = sitk.Image([1, 1, 1], sitk.sitkUInt8)
        grid.SetSpacing(spacing[::-1])
        grid.SetOrigin(origin[::-1])
        grid.SetDirection(direction)
        image.SetOrigin(grid.TransformIndexToPhysicalPoint(start[::-1]))
    else:
        image.SetOrigin(origin[::-1])
    return image


def from_sitk(image: sitk.Image, *, name: str = "image") -> xr.DataArray:
    """An in-memory DataArray of a SimpleITK image, in the form :func:`open_volume` gives.

    Parameters
    ----------
    image : SimpleITK.Image
        3-D scalar image.
    name : str, optional
        Name of the DataArray.

    Returns
    -------
    xarray.DataArray
        A copy of the voxels, dims ``("z", "y", "x")``, coordinates in mm,
        attrs ``spacing_zyx``, ``origin_zyx``, ``direction_xyz``.
    """
    data = _image_array(image, name)
    attrs = {
        "spacing_zyx": image.GetSpacing()[::-1],
        "origin_zyx": image.GetOrigin()[::-1],
        "direction_xyz": image.GetDirection(),
    }
    return _data_array(np.array(data), attrs, name)


__all__ = [
    "SeriesInfo",
    "box_image",
    "from_sitk",
    "label_box",
    "label_keys",
    "list_series",
    "open_label",
    "open_volume",
    "read_box",
    "roi_bbox",
    "series_fingerprint",
    "series_path",
    "slab_source",
    "stored_array",
    "stored_summary",
    "to_sitk",
    "write_series",
]
