"""Feature maps in the store: one OME-Zarr image per map, on its series' grid.

Layout (written by ``radflow maps``, :mod:`radflow.pipeline.maps`)::

    STORE/<case>/<series>/maps/<feature set>/<roi>/zarr.json     group: the tasks done
    STORE/<case>/<series>/maps/<feature set>/<roi>/<map>/         one OME-Zarr image per map
    STORE/<case>/<series>/maps/<feature set>/<roi>/<map>/0/       float32 (z, y, x)

``<feature set>`` is ``fs-<params hash>`` (as the feature tables'), ``<roi>`` is
``<label key>-<label value>`` (several ROIs of a series have overlapping kernels, so each has
its own maps) and ``<map>`` is PyRadiomics' key ``<imageType>_<class>_<feature>``. Each map has
the series' shape, chunks, spacing and origin (OME ``multiscales``; the direction is the series'),
NaN where it has no value: chunks that hold only NaN (the fill value) have no file, so a map of a
small ROI in a large CT costs the ROI's chunks only. Each map is written under a hidden
temporary name and renamed into place (:mod:`radflow._atomic`); the ROI group's attributes
record, per image-type group, the task key and the maps it wrote, rewritten atomically after
them: a map listed there is complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from radflow._atomic import atomic_dir, atomic_file
from radflow._lazy import load
from radflow.errors import InputError
from radflow.store import layout, ome
from radflow.store.layout import DIMS, series_path

zarr = load("zarr")

__all__ = ["MAPS", "list_maps", "map_tasks", "maps_path", "read_map", "roi_folder", "write_maps"]

#: The folder of a series holding its maps.
MAPS = "maps"
_TASKS = "tasks"


def roi_folder(label_key: str, label: int) -> str:
    """The folder name of one ROI's maps: ``<label key>-<label value>``."""
    return f"{label_key}-{int(label)}"


def maps_path(store: str | Path, case: str, series: str, feature_set: str, roi: str) -> Path:
    """``STORE/<case>/<series>/maps/<feature set>/<roi>`` (nothing read)."""
    for what, value in (("feature set", feature_set), ("roi", roi)):
        layout._check_id(what, value)
    return series_path(store, case, series) / MAPS / feature_set / roi


def map_tasks(folder: Path) -> dict[str, dict]:
    """Image-type group -> ``{"key": task key, "maps": [names]}`` of an ROI's maps folder.

    Only groups whose maps are all present; empty when the folder has no record.
    """
    try:
        meta = json.loads((folder / "zarr.json").read_text(encoding="utf-8"))
        tasks = meta["attributes"]["radflow"][_TASKS]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(tasks, dict):
        return {}
    return {
        group: entry
        for group, entry in tasks.items()
        if isinstance(entry, dict)
        and all((folder / name / "zarr.json").is_file() for name in entry.get("maps", ()))
    }


def _series_grid(store, case: str, series: str):
    path, attributes = layout.open_series(store, case, series)
    attrs = layout.series_attrs(attributes, path, case, series)
    level = layout.node_json(path / ome.LEVEL)
    shape = tuple(int(n) for n in level["shape"])
    chunks = tuple(int(n) for n in level["chunk_grid"]["configuration"]["chunk_shape"])
    return attrs, shape, chunks


def write_maps(
    store: str | Path,
    case: str,
    series: str,
    feature_set: str,
    roi: str,
    group: str,
    task_key: str,
    box_zyx: Sequence[slice],
    maps: Mapping[str, np.ndarray],
    *,
    attrs: Mapping | None = None,
) -> Path:
    """Write one task's maps (one ROI, one image-type group) and record the task as done.

    Parameters
    ----------
    store, case, series : the series the maps belong to.
    feature_set, roi : str
        Folders under ``maps`` (:func:`maps_path`).
    group : str
        The image-type group of the task (``Original``, ``LoG`` ...).
    task_key : str
        What the task's result depends on; :func:`map_tasks` returns it for incremental runs.
    box_zyx : sequence of 3 slice
        Where the arrays lie on the series' grid.
    maps : mapping of str to ndarray
        Map name -> values on ``box_zyx`` (NaN where there is no value), stored as float32.
    attrs : mapping, optional
        JSON attributes kept with each map under ``radflow`` (params hash, fingerprint ...).

    Returns
    -------
    pathlib.Path
        The ROI's maps folder.
    """
    series_attrs, shape, chunks = _series_grid(store, case, series)
    box = tuple(slice(int(b.start), int(b.stop)) for b in box_zyx)
    folder = maps_path(store, case, series, feature_set, roi)
    spacing, origin = series_attrs["spacing_zyx"], series_attrs["origin_zyx"]
    extra = {
        "direction_xyz": list(series_attrs["direction_xyz"]),
        "task_key": task_key,
        "group": group,
        "box_zyx": [[b.start, b.stop] for b in box],
        **dict(attrs or {}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in maps.items():
        values = np.asarray(values, dtype=np.float32)
        if values.shape != tuple(b.stop - b.start for b in box):
            raise ValueError(f"map {name!r}: shape {values.shape} differs from the box {box}")
        layout._check_id("map name", name)
        with atomic_dir(folder / name) as tmp:
            root = zarr.open_group(
                layout.zarr_store(tmp, read_only=False),
                mode="w",
                zarr_format=3,
                attributes={"ome": ome.image_metadata(name, spacing, origin), "radflow": extra},
            )
            array = root.create_array(
                ome.LEVEL,
                shape=shape,
                dtype=np.float32,
                chunks=chunks,
                fill_value=float("nan"),
                dimension_names=DIMS,
            )
            array[box] = values
    done = map_tasks(folder)
    done[group] = {"key": task_key, "maps": list(maps)}
    meta = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"radflow": {_TASKS: done}},
    }
    with atomic_file(folder / "zarr.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return folder


def list_maps(store: str | Path, case: str, series: str) -> dict[str, dict[str, list[str]]]:
    """The complete maps of a series: ``{feature set: {roi: [map names]}}`` (metadata only)."""
    root = series_path(store, case, series) / MAPS
    found: dict[str, dict[str, list[str]]] = {}
    if not root.is_dir():
        return found
    for fs_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for roi_dir in sorted(
            p for p in fs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            names = sorted({n for entry in map_tasks(roi_dir).values() for n in entry["maps"]})
            if names:
                found.setdefault(fs_dir.name, {})[roi_dir.name] = names
    return found


def read_map(
    store: str | Path, case: str, series: str, feature_set: str, roi: str, name: str
) -> np.ndarray:
    """One map as a float32 (z, y, x) array on the series' grid (NaN where it has no value)."""
    folder = maps_path(store, case, series, feature_set, roi) / name
    if not (folder / "zarr.json").is_file():
        raise InputError(folder, "no such map (compute it with `radflow maps`)")
    return zarr.open_array(layout.zarr_store(folder / ome.LEVEL, read_only=True), mode="r")[...]
