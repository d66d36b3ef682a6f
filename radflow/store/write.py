"""Writing the store: a series with its label maps (:func:`write_series`), one more label map
(:func:`add_label`), atomically (layout: :mod:`radflow.store.layout`).

With the voxels, the store records what an extraction would otherwise stream the
whole volume for: the image's whole-volume summary (hash, range, moments) and,
for each label image, the hash of the mask and the bounding box of every label
value (:mod:`radflow.store.summary`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow._atomic import atomic_dir, atomic_file
from radflow._geometry import grid_difference
from radflow._lazy import load
from radflow.errors import InputError
from radflow.io.records import LabelMap, roi_key
from radflow.store import layout, ome
from radflow.store.chunks import CHUNKS_WRITTEN, chunk_shape, written_runs
from radflow.store.convert import image_array
from radflow.store.layout import DIMS, LAYOUT, series_path
from radflow.store.summary import label_boxes, to_json, volume_summary

zarr = load("zarr")

__all__ = ["add_label", "write_series"]

#: Keys of ``attributes["radflow"]`` that write_series sets itself.
_RESERVED = frozenset({"layout", "direction_xyz", "fingerprint", "summary"})
#: A label map's grid must equal the image's to float noise: spacing and origin in mm.
_GRID_TOLERANCES = {"spacing": 1e-6, "origin": 1e-6, "direction": 1e-9}


def _compressors() -> tuple:
    # The CRC-32C of each compressed chunk: blosc decodes a truncated chunk into garbage
    # without an error; with the checksum, any damage to a chunk file fails its read.
    return (
        zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),
        zarr.codecs.Crc32cCodec(),
    )


def _label_array(label: LabelMap, image: sitk.Image, source: str) -> np.ndarray:
    where = f"label {label.key!r}"
    if not isinstance(label.key, str) or label.key != roi_key(label.key):
        raise InputError(source, f"{where}: key is not normalised (use radflow.io.records.roi_key)")
    if not isinstance(label.image, sitk.Image) or label.image.GetDimension() != 3:
        raise InputError(source, f"{where}: image must be a 3-D SimpleITK.Image")
    if label.image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(source, f"{where}: must hold one value per voxel")
    difference = grid_difference(label.image, image, _GRID_TOLERANCES)
    if difference:
        raise InputError(
            source,
            f"{where}: geometry differs from the image: "
            f"{difference.what} {difference.first} vs {difference.second}",
        )
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
        **to_json(extra),
    }
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attrs must be JSON-serialisable: {err}") from None
    return out


def _write_level(group: zarr.Group, data: np.ndarray, chunks: tuple[int, int, int]) -> None:
    """Write the one level of a group, and record which chunks have a file.

    zarr writes no file for a chunk of zeros (the fill value) and reads a missing
    file as zeros; the record lets reads tell such a chunk from a lost one
    (:class:`radflow.store.chunks.CheckedArray`).
    """
    array = group.create_array(
        ome.LEVEL,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compressors=_compressors(),
        fill_value=0,
        dimension_names=DIMS,
    )
    array[...] = data
    folder = Path(array.store_path.store.root) / array.store_path.path  # a LocalStore
    array.update_attributes({"radflow": {CHUNKS_WRITTEN: written_runs(array, folder)}})


def write_series(
    store: str | Path,
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
        e.g. ``modality`` (reported by :func:`radflow.store.catalogue.list_series`)
        and the pseudonymised ``frame`` of reference. Must not hold patient identifiers.
        A NaN or infinite float is stored as the text ``"NaN"``, ``"Infinity"`` or
        ``"-Infinity"`` (JSON has no such numbers; ``float()`` reads them back).
    fingerprint : str
        Identifies the source data (see
        :func:`radflow.store.catalogue.series_fingerprint`).

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
    data = image_array(image, source)
    labels = list(labels)
    keys = [label.key for label in labels]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InputError(source, f"duplicate label keys {duplicates}")
    label_data = [_label_array(label, image, source) for label in labels]
    meta = _radflow_attrs(image, attrs, fingerprint)
    meta["summary"] = _summary_attrs(volume_summary(data, moments=True))
    spacing_zyx = image.GetSpacing()[::-1]
    origin_zyx = image.GetOrigin()[::-1]
    chunks = chunk_shape(data.shape, data.dtype.itemsize)

    with atomic_dir(final) as tmp:
        root = zarr.open_group(
            layout.zarr_store(tmp, read_only=False),
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
                _write_label(
                    tmp / "labels" / label.key, label, values, spacing_zyx, origin_zyx, chunks
                )
    return final


def _summary_attrs(summary: dict) -> dict:
    """A volume summary as JSON attributes (NaN and infinity as text: :func:`summary.to_json`)."""
    return to_json(summary)


def _write_label(
    parent: Path,
    label: LabelMap,
    values: np.ndarray,
    spacing_zyx,
    origin_zyx,
    chunks,
    extra: dict | None = None,
) -> None:
    # The mask's hash and each ROI's box, so that extraction reads only the box.
    boxes = {str(v): [[b.start, b.stop] for b in box] for v, box in label_boxes(values).items()}
    attributes = {
        "ome": ome.label_metadata(label.key, spacing_zyx, origin_zyx, label.rois),
        "radflow": {
            **(extra or {}),
            "source": label.source,
            "summary": volume_summary(values, as_uint32=True),
            "boxes": boxes,
        },
    }
    group = zarr.open_group(
        layout.zarr_store(parent, read_only=False), mode="w", zarr_format=3, attributes=attributes
    )
    _write_level(group, values, chunks)


#: Keys of a label's ``attributes["radflow"]`` that the store writes itself.
_LABEL_RESERVED = frozenset({"source", "summary", "boxes"})


def _label_attrs(attrs: dict | None) -> dict:
    extra = dict(attrs or {})
    clash = _LABEL_RESERVED & extra.keys()
    if clash:
        raise ValueError(f"attrs may not set {sorted(clash)}: the store records them")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attrs must be JSON-serialisable: {err}") from None
    return extra


def add_label(
    store: str | Path,
    case: str,
    series: str,
    label: LabelMap,
    *,
    replace: bool = False,
    attrs: dict | None = None,
) -> Path:
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
    attrs : dict, optional
        JSON-serialisable attributes kept with the label under ``attributes["radflow"]``
        (e.g. the habitat model that wrote it, :mod:`radflow.store.habitats`); they may not
        set ``source``, ``summary`` or ``boxes``, which the store records itself.

    Returns
    -------
    pathlib.Path
        The label's folder.
    """
    path, attributes = layout.open_series(store, case, series)
    series_attrs = layout.series_attrs(attributes, path, case, series)
    stored = layout.zarr_array(path, ome.LEVEL)
    reference = sitk.Image([int(n) for n in stored.shape[::-1]], sitk.sitkUInt8)
    reference.SetSpacing(series_attrs["spacing_zyx"][::-1])
    reference.SetOrigin(series_attrs["origin_zyx"][::-1])
    reference.SetDirection(series_attrs["direction_xyz"])
    keys = layout.stored_label_keys(path)
    if label.key in keys and not replace:
        raise InputError(path, f"label {label.key!r} exists; choose another name or replace it")
    values = _label_array(label, reference, str(path))
    extra = _label_attrs(attrs)
    final = path / "labels" / label.key
    with atomic_dir(final) as tmp:
        _write_label(
            tmp,
            label,
            values,
            series_attrs["spacing_zyx"],
            series_attrs["origin_zyx"],
            stored.chunks,
            extra,
        )
    if label.key not in keys:
        meta = {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": ome.labels_metadata([*keys, label.key])},
        }
        with atomic_file(path / "labels" / "zarr.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    return final
