"""The store's layout: one OME-Zarr 0.5 group (zarr format 3) per image series.

Layout, for already-pseudonymised ``case`` and ``series`` ids::

    STORE/<case>/<series>/zarr.json        ome multiscales + radflow attributes
    STORE/<case>/<series>/0/               the image, original dtype, (z, y, x)
    STORE/<case>/<series>/labels/<key>/0/  one label image per LabelMap, uint8/uint16

Spacing and origin are the ``scale`` and ``translation`` of the multiscale, in
mm and (z, y, x) order. OME-Zarr has no direction matrix, so the series
attributes carry one under ``"radflow"``: ``direction_xyz`` is the 3 x 3 matrix
row-major as ``SimpleITK.Image.GetDirection`` gives it. JSON floats round-trip
doubles, so :func:`radflow.store.convert.to_sitk` rebuilds the geometry bit for bit.

A voxel at index (k, j, i) lies at the physical (LPS, mm) point
``origin_xyz + direction_xyz @ ((i, j, k) * spacing_xyz)``. The coordinates of
the DataArrays of :mod:`radflow.store.read` are ``origin + index * spacing`` along
each image axis: millimetres along the grid, equal to patient coordinates only
when the direction is the identity.

Series are written by :func:`radflow.store.write.write_series` under a hidden
temporary name and renamed into place (:mod:`radflow._atomic`); readers skip hidden
entries, so a series is either complete or invisible.

The store's modules:

- this one: paths, and the metadata readers the others share;
- :mod:`~radflow.store.write`: :func:`write_series`, :func:`add_label`;
- :mod:`~radflow.store.read`: lazy DataArrays (:func:`open_volume`, :func:`open_label`),
  boxes (:func:`read_box`, :func:`box_image`) and ROI boxes (:func:`roi_bbox`);
- :mod:`~radflow.store.source`: :class:`RoiSource`, what one extraction reads;
- :mod:`~radflow.store.catalogue`: :func:`list_series` and the other listings;
- :mod:`~radflow.store.convert`: DataArrays <-> SimpleITK images.
"""

from __future__ import annotations

import json
from pathlib import Path

from radflow._lazy import load
from radflow.errors import InputError
from radflow.store import ome, summary
from radflow.store.chunks import CHUNKS_WRITTEN, CheckedArray, parse_runs

zarr = load("zarr")

__all__ = ["DIMS", "LAYOUT", "series_path"]

#: Version of the layout above, stored as ``radflow.layout``; bump on change.
LAYOUT = 1
DIMS = ("z", "y", "x")


def _check_id(what: str, value: object) -> None:
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


def series_path(store: str | Path, case: str, series: str) -> Path:
    """The folder of a series: ``store/case/series`` (ids checked, nothing read)."""
    _check_id("case", case)
    _check_id("series", series)
    return Path(store) / case / series


def zarr_store(path: Path, *, read_only: bool) -> zarr.storage.LocalStore:
    """One place that opens a folder as a zarr store (tests wrap it to count reads)."""
    return zarr.storage.LocalStore(path, read_only=read_only)


def node_json(path: Path) -> dict:
    """A zarr node's ``zarr.json`` (its attributes, and for an array its shape), read as JSON.

    Listing and planning read many series' metadata on one client: plain JSON
    reads are ten times cheaper than opening zarr nodes.
    """
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path / "zarr.json", f"unreadable zarr metadata: {exc}") from exc
    if (
        not isinstance(meta, dict)
        or meta.get("zarr_format") != 3
        or not isinstance(meta.get("attributes", {}), dict)
    ):
        raise InputError(path / "zarr.json", "not zarr format 3 metadata")
    return meta


def open_series(store: str | Path, case: str, series: str) -> tuple[Path, dict]:
    """A series' folder and its group attributes (``zarr.json``, read as JSON)."""
    path = series_path(store, case, series)
    if not (path / "zarr.json").is_file():
        raise InputError(path, "no such series in the store")
    return path, node_json(path).get("attributes", {})


def _array_words(series: Path, name: str) -> str:
    """``image of series <case>/<series>`` or ``label map '<key>' of series ...``, for messages."""
    parts = name.split("/")
    what = f"label map {parts[1]!r}" if parts[0] == "labels" and len(parts) > 1 else "image"
    return f"{what} of series {series.parent.name}/{series.name}"


def zarr_array(series: Path, name: str) -> CheckedArray:
    """The zarr array ``name`` (a path below the series folder), built from its metadata.

    One JSON read: opening it through zarr's API costs several round trips
    through zarr's I/O thread, more than reading a small ROI's box. Read through
    :class:`~radflow.store.chunks.CheckedArray`: a chunk recorded at write time
    whose file is gone, or a chunk file that cannot be decoded, is an
    :class:`~radflow.errors.InputError` naming the series and the chunk file.
    """
    source = series / name / "zarr.json"
    meta = node_json(series / name)
    if meta.get("node_type") != "array":
        raise InputError(source, "not a zarr array")
    try:
        where = zarr.storage.StorePath(zarr_store(series, read_only=True), name)
        array = zarr.Array(zarr.AsyncArray(meta, where))
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(source, f"invalid zarr array metadata: {exc}") from exc
    recorded = (meta.get("attributes") or {}).get("radflow") or {}
    runs = recorded.get(CHUNKS_WRITTEN) if isinstance(recorded, dict) else None
    written = None if runs is None else parse_runs(runs, int(array.nchunks), source)
    return CheckedArray(array, series / name, written, _array_words(series, name))


def series_attrs(attributes: dict, path: Path, case: str, series: str) -> dict:
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
    if isinstance(meta.get("summary"), dict):
        meta["summary"] = summary.from_json(meta["summary"])
    return {
        "case": case,
        "series": series,
        "spacing_zyx": spacing,
        "origin_zyx": origin,
        "direction_xyz": tuple(float(d) for d in direction),
        **meta,
    }


def stored_label_keys(path: Path) -> list[str]:
    """Names of the label images of the series folder ``path``, in write order."""
    labels = path / "labels"
    if not (labels / "zarr.json").is_file():
        return []
    return ome.parse_labels(node_json(labels).get("attributes", {}), labels)


def label_node(path: Path, key: str) -> tuple[CheckedArray, dict]:
    """A label image's array and its attrs (``key``, ``rois``, and its radflow attributes)."""
    keys = stored_label_keys(path)
    if key not in keys:
        raise InputError(path, f"no label {key!r}; the series has {keys}")
    folder = path / "labels" / key
    attributes = node_json(folder).get("attributes", {})
    _, _, rois = ome.parse_label(attributes, folder)
    extra = {"key": key, "rois": rois, **dict(attributes.get("radflow") or {})}
    return zarr_array(path, f"labels/{key}/{ome.LEVEL}"), extra
