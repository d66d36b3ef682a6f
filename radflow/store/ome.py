"""OME-Zarr 0.5 metadata of a stored series: build it, and read it back checked.

Only what radflow writes is supported: 3-D (z, y, x) volumes in millimetres,
one scale level at path ``"0"``, a ``scale`` then a ``translation``
transformation, and label images with ``image-label`` properties. The spec is
https://ngff.openmicroscopy.org/0.5/.

OME-Zarr has no direction matrix: the translation is the ITK origin and the
scale the spacing, both reversed to (z, y, x); the direction lives beside the
``"ome"`` key (see :mod:`radflow.store.layout`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike

from radflow.errors import InputError

VERSION = "0.5"
#: Name of the one scale level stored.
LEVEL = "0"
AXES = [{"name": axis, "type": "space", "unit": "millimeter"} for axis in ("z", "y", "x")]


def _multiscale(name: str, spacing_zyx, origin_zyx) -> dict:
    transforms = [
        {"type": "scale", "scale": [float(s) for s in spacing_zyx]},
        {"type": "translation", "translation": [float(o) for o in origin_zyx]},
    ]
    return {
        "name": name,
        "axes": AXES,
        "datasets": [{"path": LEVEL, "coordinateTransformations": transforms}],
    }


def image_metadata(name: str, spacing_zyx: Sequence[float], origin_zyx: Sequence[float]) -> dict:
    """The ``"ome"`` attribute of an image group.

    Parameters
    ----------
    name : str
        Name of the multiscale image.
    spacing_zyx, origin_zyx : sequence of 3 float
        Voxel spacing and origin (the position of voxel 0, 0, 0) in mm.
    """
    return {"version": VERSION, "multiscales": [_multiscale(name, spacing_zyx, origin_zyx)]}


def labels_metadata(keys: Iterable[str]) -> dict:
    """The ``"ome"`` attribute of the ``labels`` group listing the label images."""
    return {"version": VERSION, "labels": list(keys)}


def label_metadata(
    key: str, spacing_zyx: Sequence[float], origin_zyx: Sequence[float], rois: dict[int, str]
) -> dict:
    """The ``"ome"`` attribute of one label image: a multiscale plus ``image-label``.

    Parameters
    ----------
    key : str
        Name of the label image (its folder under ``labels/``).
    spacing_zyx, origin_zyx : sequence of 3 float
        The image's geometry in mm: a label image shares its grid.
    rois : dict of int to str
        Label value -> ROI name, stored as the ``properties`` of each value.
    """
    meta = image_metadata(key, spacing_zyx, origin_zyx)
    meta["image-label"] = {
        "source": {"image": "../../"},
        "properties": [{"label-value": int(v), "name": str(n)} for v, n in sorted(rois.items())],
    }
    return meta


def _require(condition: bool, source, reason: str) -> None:
    if not condition:
        raise InputError(source, f"not radflow OME-Zarr {VERSION}: {reason}")


def _ome(attributes: dict, source) -> dict:
    ome = attributes.get("ome")
    _require(isinstance(ome, dict), source, "no 'ome' attribute")
    _require(ome.get("version") == VERSION, source, f"ome.version is {ome.get('version')!r}")
    return ome


def _vector(values, source, what: str) -> tuple[float, float, float]:
    _require(
        isinstance(values, list)
        and len(values) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values),
        source,
        f"{what} must be 3 numbers",
    )
    return tuple(float(v) for v in values)


def parse_image(attributes: dict, source: str | PathLike) -> tuple[tuple, tuple]:
    """Check an image (or label) group's attributes; return (spacing_zyx, origin_zyx) in mm.

    Parameters
    ----------
    attributes : dict
        The group's attributes (``zarr.json`` ``"attributes"``).
    source : str or path-like
        Named in the error when the metadata is not what radflow writes.

    Raises
    ------
    radflow.errors.InputError
        Missing or unexpected OME metadata.
    """
    ome = _ome(attributes, source)
    scales = ome.get("multiscales")
    _require(isinstance(scales, list) and len(scales) == 1, source, "expected one multiscale")
    _require(scales[0].get("axes") == AXES, source, "axes must be z, y, x in millimeter")
    datasets = scales[0].get("datasets")
    _require(
        isinstance(datasets, list) and len(datasets) == 1 and datasets[0].get("path") == LEVEL,
        source,
        f"expected one dataset at path {LEVEL!r}",
    )
    transforms = datasets[0].get("coordinateTransformations")
    _require(
        isinstance(transforms, list)
        and [t.get("type") for t in transforms] == ["scale", "translation"],
        source,
        "coordinateTransformations must be a scale then a translation",
    )
    spacing = _vector(transforms[0].get("scale"), source, "scale")
    origin = _vector(transforms[1].get("translation"), source, "translation")
    _require(min(spacing) > 0, source, f"scale must be positive, got {spacing}")
    return spacing, origin


def parse_labels(attributes: dict, source: str | PathLike) -> list[str]:
    """Check the ``labels`` group's attributes; return the label image names."""
    labels = _ome(attributes, source).get("labels")
    _require(
        isinstance(labels, list) and all(isinstance(k, str) for k in labels),
        source,
        "ome.labels must be a list of names",
    )
    return list(labels)


def parse_label(attributes: dict, source: str | PathLike) -> tuple[tuple, tuple, dict[int, str]]:
    """Check a label image's attributes; return (spacing_zyx, origin_zyx, rois)."""
    spacing, origin = parse_image(attributes, source)
    info = attributes["ome"].get("image-label")
    _require(isinstance(info, dict), source, "no image-label")
    properties = info.get("properties", [])
    _require(
        isinstance(properties, list)
        and all(isinstance(p, dict) and isinstance(p.get("label-value"), int) for p in properties),
        source,
        "image-label.properties must each have an integer label-value",
    )
    rois = {p["label-value"]: str(p.get("name", p["label-value"])) for p in properties}
    return spacing, origin, rois
