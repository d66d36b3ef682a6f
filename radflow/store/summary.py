"""Whole-volume summaries: SHA-1, intensity range and moments, and label bounding boxes.

PyRadiomics' diagnostics report, for every ROI, the hash and intensity range
of the whole image and the hash of the whole mask; normalisation needs the
whole image's mean and standard deviation. The store computes these once,
when it writes a volume (:func:`radflow.store.write.write_series`), so that
extracting an ROI reads only the ROI's box; the extractor computes them with
the same function for volumes from files or from older stores.

JSON has no NaN or infinity, and an image may hold such voxels (outside every ROI
they harm no feature). A summary is stored with :func:`to_json`: a non-finite
``mean``, ``minimum``, ... as the text ``"NaN"``, ``"Infinity"`` or
``"-Infinity"`` (as Python's ``json`` and JavaScript spell them), and
:func:`from_json` turns them back into floats, so that PyRadiomics' diagnostics
(``Image-original_Mean``, ...) show what NumPy gives for the whole image, as
PyRadiomics' do. ``nonfinite`` counts the voxels that are NaN or infinite.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from radflow._lazy import load

ndimage = load("scipy.ndimage")  # label_boxes only (the store); not on the file path

__all__ = ["from_json", "label_boxes", "to_json", "volume_summary"]

#: Slabs of this many voxels are hashed and reduced at a time.
SLAB_VOXELS = 1 << 22


def volume_summary(
    values: ArrayLike, *, as_uint32: bool = False, moments: bool = False
) -> dict[str, Any]:
    """Hash, mean, min, max and max |x| of a whole volume, read in z slabs.

    Parameters
    ----------
    values : (z, y, x) array-like
        NumPy array, or a lazy (dask- or zarr-backed) array or DataArray:
        only one slab is in memory at a time.
    as_uint32 : bool
        Hash the voxels cast to uint32 (a mask, as PyRadiomics casts it) and
        skip the intensity statistics.
    moments : bool
        Also return ``count``, ``sum`` and ``sum_squares`` (float64), for
        a whole-image z-score.

    Returns
    -------
    dict
        ``hash`` (SHA-1 hex digest), and unless `as_uint32`: ``mean``,
        ``minimum``, ``maximum`` (float64), ``max_abs`` and ``nonfinite``
        (the number of NaN or infinite voxels; then the statistics are NaN
        or infinite, as NumPy's over the whole volume).
    """
    shape = tuple(int(n) for n in values.shape)
    depth = max(1, SLAB_VOXELS // max(1, shape[1] * shape[2]))
    digest = hashlib.sha1()
    total, squares, low, high, count, nonfinite = 0.0, 0.0, np.inf, -np.inf, 0, 0
    for z0 in range(0, shape[0], depth):
        slab = np.ascontiguousarray(np.asarray(values[z0 : z0 + depth]))
        if as_uint32:
            digest.update(slab.astype(np.uint32, copy=False))
            continue
        digest.update(slab)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as NumPy's mean
            slab_total = float(np.add.reduce(slab, axis=None, dtype=np.float64))
            if not math.isfinite(slab_total) and slab.dtype.kind == "f":
                nonfinite += int(np.count_nonzero(~np.isfinite(slab)))
            total += slab_total
            if moments:
                as_float = slab.astype(np.float64)
                squares += float(np.add.reduce(as_float * as_float, axis=None))
        # np.minimum / np.maximum keep a NaN (Python's min and max may drop it), as np.min does
        low, high = float(np.minimum(low, slab.min())), float(np.maximum(high, slab.max()))
        count += slab.size
    out: dict[str, Any] = {"hash": digest.hexdigest()}
    if not as_uint32:
        out.update(
            mean=total / count,
            minimum=low,
            maximum=high,
            max_abs=float(np.maximum(abs(low), abs(high))),
            nonfinite=nonfinite,
        )
    if moments and not as_uint32:
        out.update(count=count, sum=total, sum_squares=squares)
    return out


def label_boxes(values: np.ndarray) -> dict[int, tuple[slice, slice, slice]]:
    """Bounding box (z, y, x slices, stop excluded) of every nonzero value of a label image."""
    values = np.asarray(values)
    found = ndimage.find_objects(values) if values.size else []
    return {value: box for value, box in enumerate(found, start=1) if box is not None}


#: Floats of a summary that may be NaN or infinite.
_FLOAT_KEYS = ("mean", "minimum", "maximum", "max_abs", "sum", "sum_squares")


def _as_text(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def to_json(value: Any) -> Any:
    """``value`` (a summary, or any attributes) with NumPy scalars as Python numbers and every
    NaN or infinite float, at any depth, as ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return _as_text(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(summary: dict) -> dict:
    """A summary stored with :func:`to_json`, its statistics floats again (NaN or infinite)."""
    out = dict(summary)
    for key in _FLOAT_KEYS:
        if out.get(key) in ("NaN", "Infinity", "-Infinity"):
            out[key] = float(out[key])
    if "mean" in out:
        out.setdefault("nonfinite", 0)  # recorded before the count was: only finite ones were
    return out
