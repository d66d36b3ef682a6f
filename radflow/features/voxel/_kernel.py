"""Kernel geometry shared by the voxel-mode classes: the box of each centre, clipped to the array.

PyRadiomics 3.0.1 (``set_bb`` in ``src/_cmatrices.c``; the kernel offsets of
``firstorder._initVoxelBasedCalculation``) gives the voxel at ``c`` the kernel
``[c - r, c + r]`` along each axis, clipped to the array ``[0, size - 1]``, except along the
``force2Ddimension`` axis when ``force2D`` is on, where the kernel is the centre's own plane
(``[c, c]``). Which voxels of that box count is the ``kernel_mask`` of
:func:`radflow.features.voxel.firstorder.compute_maps` and its siblings (the ROI when
``maskedKernel``, else every voxel of the box).

Two forms of the same bounds: :func:`kernel_bounds` (NumPy, all centres at once, for tests and
set-up) and :func:`kernel_box` (a compiled helper for use inside the classes' ``@njit``
kernels). Both give inclusive lower and **exclusive** upper bounds, as Python slices do.
:func:`line_starts` groups centres by (z, y) line for kernels that slide along x, and
:func:`slide_planes` says which planes leave and enter such a kernel from one centre to the next.
"""

from __future__ import annotations

import numba
import numpy as np

from radflow._docstrings import filler

__all__ = [
    "document_maps",
    "half_widths",
    "kernel_bounds",
    "kernel_box",
    "kernel_levels",
    "mean_over_matrices",
    "line_starts",
    "slide_planes",
]

#: Fills the parameters every class's ``compute_maps`` shares into its docstring.
document_maps = filler(
    {
        "binned": """binned : ndarray of int, shape (z, y, x)
        Grey levels ``1..n_levels`` in the discretisation region (every voxel of
        ``kernel_mask``), 0 elsewhere.""",
        "kernel_mask": """kernel_mask : ndarray of bool, shape (z, y, x)
        Voxels that may count in a kernel (the ROI with ``maskedKernel``, else the whole box).""",
        "centres": """centres : ndarray of int, shape (n, 3)
        Voxels (z, y, x) whose values are computed; each must have a grey level.""",
        "n_levels": """n_levels : int
        PyRadiomics' ROI-level number of grey levels :math:`N_g` (the highest grey level of
        the discretisation region).""",
        "kernel_radius": """kernel_radius : int
        PyRadiomics' ``kernelRadius`` (>= 1).""",
    }
)


def half_widths(kernel_radius: int, force2d: bool, force2d_dimension: int) -> np.ndarray:
    """Half-width of the kernel along (z, y, x): ``kernel_radius``, 0 on the force2D axis.

    Parameters
    ----------
    kernel_radius : int
        PyRadiomics' ``kernelRadius`` (>= 1; checked by the orchestrator).
    force2d : bool
        PyRadiomics' ``force2D``.
    force2d_dimension : int
        PyRadiomics' ``force2Ddimension``: the array axis (0 = z, 1 = y, 2 = x) along which
        the kernel is one voxel thick when ``force2d``.

    Returns
    -------
    numpy.ndarray
        int64, shape (3,).
    """
    widths = np.full(3, int(kernel_radius), dtype=np.int64)
    if force2d:
        widths[int(force2d_dimension)] = 0
    return widths


def kernel_bounds(
    centres: np.ndarray,
    shape: tuple[int, int, int],
    kernel_radius: int,
    force2d: bool = False,
    force2d_dimension: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel box of each centre, clipped to an array of ``shape``.

    Parameters
    ----------
    centres : numpy.ndarray
        int, shape (n, 3): voxel indices (z, y, x).
    shape : tuple of int
        Array shape (z, y, x).
    kernel_radius, force2d, force2d_dimension
        As for :func:`half_widths`.

    Returns
    -------
    lo, hi : numpy.ndarray
        int64, shape (n, 3): the kernel of centre ``k`` is
        ``array[lo[k, 0]:hi[k, 0], lo[k, 1]:hi[k, 1], lo[k, 2]:hi[k, 2]]``.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
    widths = half_widths(kernel_radius, force2d, force2d_dimension)
    lo = np.maximum(centres - widths, 0)
    hi = np.minimum(centres + widths + 1, np.asarray(shape, dtype=np.int64))
    return lo, hi


@numba.njit(cache=True)
def kernel_box(cz, cy, cx, shape_z, shape_y, shape_x, hz, hy, hx):
    """Compiled twin of :func:`kernel_bounds` for one centre.

    ``hz, hy, hx`` come from :func:`half_widths`. Returns
    ``(z0, z1, y0, y1, x0, x1)``, lower bounds inclusive, upper bounds exclusive.
    """
    z0 = max(cz - hz, 0)
    z1 = min(cz + hz + 1, shape_z)
    y0 = max(cy - hy, 0)
    y1 = min(cy + hy + 1, shape_y)
    x0 = max(cx - hx, 0)
    x1 = min(cx + hx + 1, shape_x)
    return z0, z1, y0, y1, x0, x1


@numba.njit(cache=True)
def kernel_levels(binned, kmask, z0, z1, y0, y1, x0, x1, slot, levels):
    """Number the grey levels present in one kernel box, in order of first appearance.

    For each voxel of the box ``[z0, z1) x [y0, y1) x [x0, x1)`` that ``kmask`` lets count,
    a grey level not yet numbered gets the next slot: ``slot[level] = k`` and
    ``levels[k] = level``. ``slot`` must hold -1 for every level on entry (the caller resets the
    entries it used). Returns the number of levels present.
    """
    n = 0
    for z in range(z0, z1):
        for y in range(y0, y1):
            for x in range(x0, x1):
                if kmask[z, y, x]:
                    g = binned[z, y, x]
                    if slot[g] < 0:
                        slot[g] = n
                        levels[n] = g
                        n += 1
    return n


@numba.njit(cache=True)
def mean_over_matrices(values, out):
    """``out[f]`` = mean of ``values[:, f]`` over the matrices, NaN skipped (numpy.nanmean).

    ``values`` holds one row of feature values per matrix (direction or offset); a feature that
    is NaN in every matrix is NaN.
    """
    for f in range(values.shape[1]):
        total = 0.0
        k = 0
        for m in range(values.shape[0]):
            v = values[m, f]
            if not np.isnan(v):
                total += v
                k += 1
        out[f] = total / k if k > 0 else np.nan


@numba.njit(cache=True)
def slide_planes(window, x0, x1, new_line):
    """Move the planes held by a kernel sliding along x to those of its box ``[x0, x1)``.

    ``window`` (int64, shape (4,)) holds the planes of the line's previous box: planes
    ``[window[0], window[1])`` counted and ``[window[2], window[3])``, its inner planes (all but
    the first and last), summed; it is updated to those of ``[x0, x1)``. A new line, or a box
    that starts past the planes held (a gap), starts again from an empty window at ``x0``.

    Returns ``(restart, leaving, entering, inner_out, inner_in)``: ``restart`` when the window
    was emptied (the caller empties what it holds), then the planes ``(lo, hi)`` that leave
    the counts, enter them, stop being inner and become inner. A caller takes the ``inner_out``
    planes out before it prepares the ``entering`` ones (a plane's ring slot ``x % width`` may
    pass from one to the other) and adds the ``inner_in`` planes last.
    """
    restart = new_line or x0 >= window[1]
    if restart:
        window[0] = x0
        window[1] = x0
        window[2] = x0 + 1
        window[3] = x0 + 1
    px0, px1, qa, qb = window[0], window[1], window[2], window[3]
    ta = x0 + 1
    tb = max(x1 - 1, ta)
    window[0] = x0
    window[1] = x1
    window[2] = ta
    window[3] = tb
    return restart, (px0, x0), (px1, x1), (qa, min(ta, qb)), (max(qb, ta), tb)


def line_starts(centres: np.ndarray) -> np.ndarray:
    """Boundaries of the runs of centres that share (z, y), for kernels sliding along x.

    Parameters
    ----------
    centres : numpy.ndarray
        int, shape (n, 3), in C order (as :func:`numpy.nonzero` gives them), so that centres
        of one (z, y) line are consecutive with increasing x.

    Returns
    -------
    numpy.ndarray
        int64, shape (m + 1,): line ``k`` is ``centres[starts[k]:starts[k + 1]]``;
        ``starts[-1] == n``. Empty ``centres`` give ``[0]``.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
    n = centres.shape[0]
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.any(centres[1:, :2] != centres[:-1, :2], axis=1)
    return np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)
