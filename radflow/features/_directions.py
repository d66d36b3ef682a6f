"""Neighbour offsets and ROI preparation shared by the texture families.

- :func:`offsets`: the offsets PyRadiomics 3.0.1 generates in its C extension
  (``generate_angles`` / ``build_angles`` in ``radiomics/src/cmatrices.c``):
  every ``(dz, dy, dx)`` whose infinity norm is one of the requested
  distances, in the same order, so per-angle results line up with
  PyRadiomics' angle axis; :func:`flat_steps` turns them into steps in a
  flattened array, :func:`offset_lengths_mm` into lengths for distance
  weighting.
- :func:`roi_levels`: the checked, cropped, padded index array the kernels
  run on, over the grey levels present in the ROI only.
- Setting checks every family shares (feature names, spacing, weighting
  norm) and a warning-free ``nanmean`` for averaging over angles.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from numbers import Integral

import numpy as np

from radflow._geometry import bounding_box
from radflow.errors import InputError, SettingsError
from radflow.features._checks import check_spacing

__all__ = [
    "WEIGHTING_NORMS",
    "check_weighting_norm",
    "flat_steps",
    "nanmean",
    "offset_lengths_mm",
    "offsets",
    "roi_levels",
]

#: PyRadiomics' ``weightingNorm`` values (None: no weighting, one matrix per offset).
WEIGHTING_NORMS = (None, "manhattan", "euclidean", "infinity", "no_weighting")


def offsets(
    distances=(1,),
    force2d: bool = False,
    force2d_dimension: int = 0,
    bidirectional: bool = False,
    *,
    size_zyx=None,
) -> np.ndarray:
    """Neighbour offsets in (z, y, x) voxel steps, in PyRadiomics' order.

    Parameters
    ----------
    distances : sequence of int
        Infinity-norm distances (voxels, >= 1). Order and repeats do not
        matter; PyRadiomics' C code loops forever on repeats, here they are
        ignored.
    force2d : bool
        Keep only offsets with no step along ``force2d_dimension``.
    force2d_dimension : {0, 1, 2}
        Axis of the (z, y, x) array held fixed when ``force2d``: 0 keeps
        in-slice (axial) offsets, like PyRadiomics' ``force2Ddimension``.
    bidirectional : bool
        False: one offset of each +/- pair (the one whose first non-zero
        step is positive), as PyRadiomics uses for GLCM and GLRLM (13
        offsets in 3D at distance 1, 4 in 2D). True: both (26 / 8), as for
        GLSZM, GLDM and NGTDM.
    size_zyx : sequence of 3 int, optional
        Array shape. When given, offsets with ``|step| >= size`` along an
        axis are left out exactly as PyRadiomics does; such offsets never
        find a neighbour, so leaving them in changes no feature.

    Returns
    -------
    ndarray of int64, shape (n_offsets, 3)
        A new array, (dz, dy, dx) per row.

    Examples
    --------
    >>> offsets([1]).shape
    (13, 3)
    >>> offsets([1], force2d=True)
    array([[ 0,  1,  1],
           [ 0,  1,  0],
           [ 0,  1, -1],
           [ 0,  0,  1]])
    """
    dists = _check_distances(distances)
    if force2d_dimension not in (0, 1, 2) or isinstance(force2d_dimension, bool):
        raise SettingsError(
            "force2d_dimension must be 0, 1 or 2 (axis of the (z, y, x) array), "
            f"got {force2d_dimension!r}"
        )
    if size_zyx is None:
        size = (0, 0, 0)  # 0: no limit
    else:
        size = tuple(int(s) for s in size_zyx)
        if len(size) != 3 or min(size) < 1:
            raise SettingsError(f"size_zyx must be 3 positive ints, got {size_zyx!r}")
    fixed = int(force2d_dimension) if force2d else -1
    return _offsets(dists, fixed, bool(bidirectional), size).copy()


def flat_steps(offsets_zyx, shape_zyx) -> np.ndarray:
    """Offsets as steps in the flattened C-order array of ``shape_zyx`` (int64, contiguous).

    Valid only where the step cannot leave the array, e.g. from ROI voxels of
    an index padded by :func:`roi_levels` with ``pad`` >= the largest offset.
    """
    strides = np.array([shape_zyx[1] * shape_zyx[2], shape_zyx[2], 1], dtype=np.int64)
    return np.ascontiguousarray(np.asarray(offsets_zyx, dtype=np.int64) @ strides)


def offset_lengths_mm(offsets_zyx, spacing_zyx, norm: str) -> np.ndarray:
    """Length of each offset in mm under a PyRadiomics ``weightingNorm``.

    Parameters
    ----------
    offsets_zyx : ndarray of int, shape (n, 3)
        Offsets from :func:`offsets`.
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm, (z, y, x) order.
    norm : {"manhattan", "euclidean", "infinity", "no_weighting"}
        ``"no_weighting"`` gives 1 for every offset (the matrices are then
        summed unweighted).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``sum |a| s`` (manhattan), ``sqrt(sum (|a| s)^2)`` (euclidean),
        ``max |a| s`` (infinity), in mm.
    """
    steps_mm = np.abs(np.asarray(offsets_zyx, dtype=np.float64)) * check_spacing(spacing_zyx)
    if norm == "manhattan":
        return steps_mm.sum(axis=1)
    if norm == "euclidean":
        return np.sqrt((steps_mm**2).sum(axis=1))
    if norm == "infinity":
        return steps_mm.max(axis=1)
    if check_weighting_norm(norm) == "no_weighting":
        return np.ones(len(steps_mm))
    raise SettingsError(
        "weighting_norm None gives no offset lengths; weight only when a norm is set"
    )


def check_weighting_norm(norm):
    """Return ``norm`` if it is a PyRadiomics ``weightingNorm``, else raise SettingsError."""
    if norm not in WEIGHTING_NORMS:
        raise SettingsError(
            f"weighting_norm must be one of {', '.join(map(repr, WEIGHTING_NORMS))}, got {norm!r}"
        )
    return norm


def nanmean(values) -> float:
    """Mean of the non-NaN values (NaN if none), as ``numpy.nanmean`` without its overhead or
    warning.
    """
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _check_distances(distances) -> tuple[int, ...]:
    try:
        values = list(distances)
    except TypeError:
        raise SettingsError(
            f"distances must be a sequence of ints >= 1, got {distances!r}"
        ) from None
    if not values or not all(
        isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in values
    ):
        raise SettingsError(
            f"distances must be a non-empty sequence of ints >= 1, got {distances!r}"
        )
    return tuple(sorted({int(d) for d in values}))


@lru_cache(maxsize=64)
def _offsets(
    distances: tuple[int, ...], fixed_axis: int, bidirectional: bool, size: tuple[int, int, int]
):
    # PyRadiomics walks the offsets from (+d, +d, +d) down to (-d, -d, -d), z
    # slowest; the valid set is symmetric, so the first half of that walk is
    # the half whose first non-zero step is positive.
    dmax = max(distances)
    steps = range(dmax, -dmax - 1, -1)
    rows = []
    for off in product(steps, repeat=3):
        if off == (0, 0, 0) or max(abs(o) for o in off) not in distances:
            continue
        if fixed_axis >= 0 and off[fixed_axis] != 0:
            continue
        if any(s and abs(o) >= s for o, s in zip(off, size)):
            continue
        rows.append(off)
    out = np.array(rows, dtype=np.int64).reshape(-1, 3)
    if not bidirectional:
        out = out[: len(out) // 2]
    out.setflags(write=False)
    return out


def roi_levels(binned, mask, *, pad: int = 0):
    """Validate a discretised image and its ROI mask; crop both to the ROI.

    Parameters
    ----------
    binned : ndarray of int, shape (z, y, x)
        Grey levels as PyRadiomics' ``binImage`` gives them: integers >= 1
        inside the ROI (values outside the ROI are ignored).
    mask : ndarray of bool or int {0, 1}, shape (z, y, x)
        ROI mask, same shape.
    pad : int
        Margin of -1 voxels added on every side of the box, so that kernels
        stepping up to ``pad`` voxels away need no bounds checks.

    Returns
    -------
    index_zyx : ndarray of int32, shape (bounding box + 2 * pad), C order
        Position of each voxel's grey level in ``levels``, -1 outside the ROI.
    levels : ndarray of int64, shape (n_levels,)
        The grey levels present in the ROI, ascending. Levels absent from the
        ROI get no row or column in the texture matrices, as in PyRadiomics.

    Raises
    ------
    InputError
        Wrong dimensions, shapes or dtypes, an empty mask, or a grey level
        below 1 inside the ROI.
    """
    binned = np.asarray(binned)
    mask = np.asarray(mask)
    if binned.ndim != 3:
        raise InputError("binned", f"expected a 3D (z, y, x) array, got shape {binned.shape}")
    if mask.shape != binned.shape:
        raise InputError(
            "mask", f"shape {mask.shape} differs from binned image shape {binned.shape}"
        )
    if not np.issubdtype(binned.dtype, np.integer):
        raise InputError(
            "binned", f"expected integer grey levels (discretised image), got dtype {binned.dtype}"
        )
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.integer):
        raise InputError("mask", f"expected a bool or 0/1 integer mask, got dtype {mask.dtype}")
    box = bounding_box(mask)
    if box is None:
        raise InputError("mask", "the ROI is empty (no voxel set)")
    mask = mask[box]
    if mask.dtype != np.bool_:
        # every non-zero value lies in the box, so checking the box is enough
        if mask.min() < 0 or mask.max() > 1:
            raise InputError(
                "mask",
                "expected a bool or 0/1 integer mask; select one label first (mask == label)",
            )
        mask = mask.astype(bool)
    values = binned[box][mask]
    lo, hi = values.min(), values.max()
    if lo < 1:
        raise InputError(
            "binned", f"grey levels inside the ROI must be >= 1 (discretised), found {lo}"
        )
    # A lookup table over 1..max is O(n) and much faster than np.unique; fall
    # back to np.unique when the largest level would make the table huge.
    if hi <= 4 * values.size + 4096:
        present = np.bincount(values, minlength=int(hi) + 1) > 0
        levels = np.flatnonzero(present)
        lut = np.cumsum(present, dtype=np.int32) - 1
        inside = lut[values]
    else:
        levels, inside = np.unique(values, return_inverse=True)
    index = np.full(tuple(n + 2 * pad for n in mask.shape), -1, dtype=np.int32)
    inner = index[tuple(slice(pad, pad + n) for n in mask.shape)]
    inner[mask] = inside
    return index, levels.astype(np.int64)
