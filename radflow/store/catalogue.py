"""What a store holds: its series (:func:`list_series`), their label images and fingerprints.

Everything here reads metadata only (``zarr.json`` files, as JSON), never voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from radflow.errors import InputError
from radflow.store import layout, ome
from radflow.store.layout import series_path
from radflow.store.maps import list_maps

__all__ = [
    "SeriesInfo",
    "is_store_path",
    "label_keys",
    "label_rois",
    "list_series",
    "series_fingerprint",
    "series_maps",
]


@dataclass(frozen=True)
class SeriesInfo:
    """Summary of one complete series in the store (see :func:`list_series`).

    Attributes
    ----------
    case, series : str
        The pseudonymised ids the series was written under.
    modality : str or None
        ``attrs["modality"]`` as given to :func:`radflow.store.write.write_series`.
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


def list_series(store: str | Path) -> list[SeriesInfo]:
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
            found.append(series_info(series_dir, case_dir.name, series_dir.name))
    return found


def series_info(series_dir: Path, case: str, series: str) -> SeriesInfo:
    """What :func:`list_series` reads of one series folder: metadata only, checked.

    Raises
    ------
    radflow.errors.InputError
        Metadata radflow did not write (attributes, image shape).
    """
    attributes = layout.node_json(series_dir).get("attributes", {})
    attrs = layout.series_attrs(attributes, series_dir, case, series)
    keys = layout.stored_label_keys(series_dir)
    shape = layout.node_json(series_dir / ome.LEVEL).get("shape")
    if not (isinstance(shape, list) and len(shape) == 3):
        raise InputError(series_dir / ome.LEVEL, f"image shape must have 3 entries, got {shape!r}")
    return SeriesInfo(
        case=case,
        series=series,
        modality=attrs.get("modality"),
        shape_zyx=tuple(int(n) for n in shape),
        spacing_zyx=attrs["spacing_zyx"],
        label_keys=tuple(keys),
        attrs=dict(attributes["radflow"]),
        path=series_dir,
    )


def label_keys(store: str | Path, case: str, series: str) -> list[str]:
    """Names of the label images stored with a series, in write order."""
    path, _ = layout.open_series(store, case, series)
    return layout.stored_label_keys(path)


def label_rois(store: str | Path, case: str, series: str) -> dict[str, dict[int, str]]:
    """The ROIs inside each label image of a series: ``{key: {label value: ROI name}}``.

    Names come from the label image's OME ``image-label`` properties; a value
    whose recorded bounding box exists but that has no name is named by its
    number. Label images in write order, values ascending; metadata only.
    """
    path, _ = layout.open_series(store, case, series)
    found = {}
    for key in layout.stored_label_keys(path):
        folder = path / "labels" / key
        attributes = layout.node_json(folder).get("attributes", {})
        _, _, rois = ome.parse_label(attributes, folder)
        rois = {int(v): name for v, name in rois.items()}
        boxes = (attributes.get("radflow") or {}).get("boxes") or {}
        for value in boxes:
            if str(value).isdigit() and int(value) not in rois:
                rois[int(value)] = str(value)
        found[key] = dict(sorted(rois.items()))
    return found


def series_fingerprint(store: str | Path, case: str, series: str) -> str | None:
    """The fingerprint a series was written with, or None if it is not in the store."""
    if not (series_path(store, case, series) / "zarr.json").is_file():
        return None
    path, attributes = layout.open_series(store, case, series)
    return layout.series_attrs(attributes, path, case, series)["fingerprint"]


def is_store_path(path: str | Path) -> bool:
    """True when ``path`` is a folder :func:`radflow.store.read.open_path` can open."""
    return Path(path).is_dir() and (Path(path) / "zarr.json").is_file()


def series_maps(store: str | Path, case: str, series: str) -> dict[str, dict[str, list[str]]]:
    """The feature maps of a series (``radflow maps``): ``{feature set: {roi: [map names]}}``."""
    return list_maps(store, case, series)
