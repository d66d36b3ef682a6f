"""Whole-volume summaries: SHA-1, intensity range and moments, and label bounding boxes.

PyRadiomics' diagnostics report, for every ROI, the hash and intensity range
of the whole image and the hash of the whole mask; normalisation needs the
whole image's mean and standard deviation. The store computes these once,
when it writes a volume (:func:`radflow.store.write.write_series`), so that
extracting an ROI reads only the ROI's box; the extractor computes them with
the same function for volumes from files or from older stores.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

__all__ = ["label_boxes", "volume_summary"]

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
        ``minimum``, ``maximum`` (float64) and ``max_abs``.
    """
    shape = tuple(int(n) for n in values.shape)
    depth = max(1, SLAB_VOXELS // max(1, shape[1] * shape[2]))
    digest = hashlib.sha1()
    total, squares, low, high, count = 0.0, 0.0, np.inf, -np.inf, 0
    for z0 in range(0, shape[0], depth):
        slab = np.ascontiguousarray(np.asarray(values[z0 : z0 + depth]))
        if as_uint32:
            digest.update(slab.astype(np.uint32, copy=False))
            continue
        digest.update(slab)
        total += float(np.add.reduce(slab, axis=None, dtype=np.float64))
        if moments:
            as_float = slab.astype(np.float64)
            squares += float(np.add.reduce(as_float * as_float, axis=None))
        low, high = min(low, float(slab.min())), max(high, float(slab.max()))
        count += slab.size
    out: dict[str, Any] = {"hash": digest.hexdigest()}
    if not as_uint32:
        out.update(mean=total / count, minimum=low, maximum=high, max_abs=max(abs(low), abs(high)))
    if moments and not as_uint32:
        out.update(count=count, sum=total, sum_squares=squares)
    return out


def label_boxes(values: np.ndarray) -> dict[int, tuple[slice, slice, slice]]:
    """Bounding box (z, y, x slices, stop excluded) of every nonzero value of a label image."""
    values = np.asarray(values)
    found = ndimage.find_objects(values) if values.size else []
    return {value: box for value, box in enumerate(found, start=1) if box is not None}
