"""Feature results as text, CSV or JSON, as PyRadiomics' command line writes them.

- ``txt``: one ``Case-1_<key>: <value>`` line per entry (PyRadiomics'
  default format);
- ``csv``: a header row of keys, then one row of values;
- ``json``: one object, key -> value (tuples as lists, NaN as ``NaN`` as
  Python's and PyRadiomics' JSON writers do).

Values are written as PyRadiomics writes them: ``str()`` of the value, so
floats with all their digits (``repr``), tuples as ``(1.0, 2.0)``.
:func:`write_result` replaces its file atomically.

Voxel mode (``--mode voxel``): :func:`write_maps` writes each feature map as
``<out_dir>/Case-<n>_<key>.nrrd`` (compressed NRRD) and puts that path in the
result in place of the image, as PyRadiomics' command line lists it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, TextIO

import numpy as np
import SimpleITK as sitk

from radflow._atomic import atomic_file, atomic_files
from radflow.errors import SettingsError

__all__ = ["FORMATS", "cell", "format_result", "write_maps", "write_result", "write_rows"]

FORMATS = ("csv", "json", "txt")


def cell(value: Any) -> str:
    """One value as PyRadiomics writes it in CSV and text output (``str``; None as empty)."""
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _plain(value: Any):
    """JSON-ready form: numpy scalars to Python numbers, tuples and arrays to lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def format_result(
    result: Mapping[str, Any], fmt: str = "txt", *, case: Mapping[str, Any] | None = None
) -> str:
    """One extraction result as text.

    Parameters
    ----------
    result : mapping
        ``{key: value}`` as :func:`radflow.extract` returns it.
    fmt : {"txt", "csv", "json"}
        Output format (PyRadiomics' ``--format``).
    case : mapping, optional
        Columns written first (PyRadiomics writes ``Image`` and ``Mask``).

    Returns
    -------
    str
        Ends with a newline.
    """
    if fmt not in FORMATS:
        raise SettingsError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    row = {**(case or {}), **result}
    if fmt == "txt":
        return "".join(f"Case-1_{key}: {cell(value)}\n" for key, value in row.items())
    if fmt == "json":
        return json.dumps({key: _plain(value) for key, value in row.items()}, indent=2) + "\n"
    buffer = io.StringIO()
    write_rows(buffer, [row], list(row))
    return buffer.getvalue()


def write_rows(stream: TextIO, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """CSV of `rows` under `columns` (absent entries empty).

    PyRadiomics' dialect (``\\n`` line ends).
    """
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])


def write_result(
    result: Mapping[str, Any],
    path: str | PathLike,
    fmt: str = "csv",
    *,
    case: Mapping[str, Any] | None = None,
) -> None:
    """Write :func:`format_result` to `path`, atomically (temporary file, then rename)."""
    text = format_result(result, fmt, case=case)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_maps(
    result: Mapping[str, Any], out_dir: str | PathLike | None, case_index: int = 1
) -> dict[str, Any]:
    """Write the feature maps of a voxel-mode result; the result with their paths instead.

    Parameters
    ----------
    result : mapping
        ``{key: value}`` from ``radflow.extract(..., voxel_based=True)``; SimpleITK images are
        the maps.
    out_dir : str, path-like or None
        Folder of the maps (created if needed); None: the current folder, written ``.`` in
        the paths, as PyRadiomics does.
    case_index : int
        ``n`` of ``Case-<n>_<key>.nrrd``: 1 for one image and mask, the case's position in
        a batch file.

    Returns
    -------
    dict
        The entries of `result` in order, each map replaced by the path written
        (``os.path.join(out_dir, "Case-1_original_firstorder_Mean.nrrd")``).
    """
    folder = "." if out_dir is None else os.fspath(out_dir)
    listing: dict[str, Any] = {}
    maps: dict[str, sitk.Image] = {}
    for key, value in result.items():
        if isinstance(value, sitk.Image):
            path = os.path.join(folder, f"Case-{case_index}_{key}.nrrd")
            maps[path] = value
            listing[key] = path
        else:
            listing[key] = value
    with atomic_files(list(maps)) as temps:  # all maps of a case appear together
        for tmp, image in zip(temps, maps.values()):
            writer = sitk.ImageFileWriter()
            writer.SetImageIO("NrrdImageIO")  # the temporary name has no .nrrd suffix
            writer.SetFileName(str(tmp))
            writer.UseCompressionOn()
            writer.Execute(image)
    return listing
