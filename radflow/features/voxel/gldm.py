"""GLDM feature maps: PyRadiomics 3.0.1 voxel mode of :mod:`radflow.features.gldm`.

In the kernel of a centre (the box of :mod:`radflow.features.voxel._kernel`), every voxel that
may count (``kernel_mask``) is one entry of the matrix: its grey level :math:`i` and its
dependence size :math:`j` = 1 + the number of its neighbours (offsets at the Chebyshev
``distances``, in-plane with ``force2D``) that lie *in the same box*, may count, and differ from
it by at most ``gldm_a``. A neighbour outside the kernel box does not count, as in PyRadiomics'
``calculate_gldm`` with its bounding box. Features as the segment module, evaluated on these
entries (:func:`radflow.features.voxel._sizes.size_features`).

Speed: each voxel's dependent neighbours are found once for the whole array as a bit set (one
bit per offset), so a kernel only has to drop the bits of the offsets that leave its box (a
mask that depends on the voxel's place at the box faces) and count the remaining bits. Without
clipping a voxel's dependence is therefore read in a few operations instead of one test per
offset; no matrix is built. At distance 1 (the default) and ``kernelRadius`` >= 2 the kernel
also slides along x: a voxel's dependence changes with the box only at the box's x faces, so
each plane's sizes are found once (four variants) and the matrix of the planes inside the box
is updated as planes pass (:func:`_slid_dependence_maps`), with exact integer counts read in a
fixed order, so each value is independent of the window's path.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np

from radflow.features import gldm
from radflow.features._checks import requested_features
from radflow.features._directions import offsets
from radflow.features.voxel._kernel import (
    document_maps,
    half_widths,
    kernel_box,
    line_starts,
    slide_planes,
)
from radflow.features.voxel._sizes import (
    SIZE_COLUMNS,
    cell_features,
    count_planes,
    neighbour_bits,
    popcount,
    prepare,
    room_masks,
    size_features,
    size_workspace,
)

__all__ = ["compute_maps"]


@numba.njit(cache=True)
def _dependence_maps(
    levels, bits, masks, reach, centres, widths, n_sizes, max_entries, workspace, out
):
    """Fill ``out[c]`` with the size features of the dependence entries of kernel ``c``."""
    nz, ny, nx = levels.shape
    n_words = bits.shape[3]
    entry_levels = np.empty(max_entries, np.int64)  # one entry per kernel voxel
    entry_sizes = np.empty(max_entries, np.int64)
    for c in range(centres.shape[0]):
        z0, z1, y0, y1, x0, x1 = kernel_box(
            centres[c, 0], centres[c, 1], centres[c, 2], nz, ny, nx,
            widths[0], widths[1], widths[2],
        )  # fmt: skip
        n = 0
        for z in range(z0, z1):
            lz = min(z - z0, reach)
            hz = min(z1 - 1 - z, reach)
            for y in range(y0, y1):
                ly = min(y - y0, reach)
                hy = min(y1 - 1 - y, reach)
                for x in range(x0, x1):
                    level = levels[z, y, x]
                    if level == 0:
                        continue
                    lx = min(x - x0, reach)
                    hx = min(x1 - 1 - x, reach)
                    dependent = 0
                    for w in range(n_words):
                        dependent += popcount(bits[z, y, x, w] & masks[lz, hz, ly, hy, lx, hx, w])
                    entry_levels[n] = level
                    entry_sizes[n] = dependent + 1
                    n += 1
        size_features(entry_levels, entry_sizes, n, n_sizes, workspace, out[c])


@numba.njit(cache=True)
def _plane_sizes(levels, bits, masks, z0, z1, y0, y1, x, ring, slot):
    """Dependence sizes of the voxels of plane ``x`` of the slab ``[z0, z1) x [y0, y1)`` (in
    (z, y) order) into ``ring[slot]``, in the four variants a plane can need: 0 inside the box,
    1 its first plane (no neighbour at x - 1), 2 its last (none at x + 1), 3 both."""
    n_words = bits.shape[3]
    i = 0
    for z in range(z0, z1):
        lz = min(z - z0, 1)
        hz = min(z1 - 1 - z, 1)
        for y in range(y0, y1):
            if levels[z, y, x] != 0:
                ly = min(y - y0, 1)
                hy = min(y1 - 1 - y, 1)
                for variant in range(4):
                    lx = 0 if variant == 1 or variant == 3 else 1
                    hx = 0 if variant >= 2 else 1
                    dependent = 0
                    for w in range(n_words):
                        dependent += popcount(bits[z, y, x, w] & masks[lz, hz, ly, hy, lx, hx, w])
                    ring[slot, variant, i] = dependent + 1
            i += 1


@numba.njit(cache=True)
def _add_entries(levels, z0, z1, y0, y1, x, ring, slot, variant, shift, cells, columns, step):
    """Add ``step`` to the cells and columns of the entries of plane ``x`` (sizes of
    ``ring[slot, variant]``)."""
    i = 0
    for z in range(z0, z1):
        for y in range(y0, y1):
            level = levels[z, y, x]
            if level != 0:
                size = ring[slot, variant, i]
                cells[(level << shift) + size] += step
                columns[size] += step
            i += 1


@numba.njit(cache=True)
def _slid_dependence_maps(levels, bits, masks, centres, starts, widths, n_sizes, workspace, out):
    """:func:`_dependence_maps` for neighbours at distance 1, the kernel sliding along x.

    A voxel's dependence size depends on the box only through the box's x faces (the z and y
    bounds are fixed along a line), so each plane's sizes are found once, as it enters, in the
    four variants of :func:`_plane_sizes`; the matrix of the planes strictly inside the box is
    kept (integer counts per cell, row and column) as planes pass, and the first and last
    planes are added for each kernel and taken out again. Cells are read in grey-level then
    size order, so each value is independent of the window's path.
    """
    nz, ny, nx = levels.shape
    (
        cells, cell_list, rows, row_list, columns, column_list, inv_i2_table, inv_j2_table, xlogx,
        shift,
    ) = workspace  # fmt: skip
    n_levels = rows.shape[0] - 1
    width = 2 * widths[2] + 1
    slab = (2 * widths[0] + 1) * (2 * widths[1] + 1)
    ring = np.zeros((width, 4, slab), np.int64)
    hist = np.zeros(n_levels + 1, np.int64)
    present = np.empty(n_levels + 1, np.int64)
    n_present = 0
    window = np.zeros(4, np.int64)  # planes counted, planes in the matrix (slide_planes)
    for line in range(starts.size - 1):
        for k in range(starts[line], starts[line + 1]):
            z0, z1, y0, y1, x0, x1 = kernel_box(
                centres[k, 0], centres[k, 1], centres[k, 2], nz, ny, nx,
                widths[0], widths[1], widths[2],
            )  # fmt: skip
            restart, leaving, entering, inner_out, inner_in = slide_planes(
                window, x0, x1, k == starts[line]
            )
            if restart:  # a new line or a gap: start again
                for t in range(n_present):
                    g = present[t]
                    hist[g] = 0
                    cells[g << shift : (g << shift) + n_sizes] = 0.0
                columns[:] = 0.0
                n_present = 0
            for x in range(inner_out[0], inner_out[1]):
                _add_entries(
                    levels, z0, z1, y0, y1, x, ring, x % width, 0, shift, cells, columns, -1.0
                )
            n_present = count_planes(
                levels, z0, z1, y0, y1, leaving[0], leaving[1], hist, present, n_present, -1
            )
            for x in range(entering[0], entering[1]):
                _plane_sizes(levels, bits, masks, z0, z1, y0, y1, x, ring, x % width)
            n_present = count_planes(
                levels, z0, z1, y0, y1, entering[0], entering[1], hist, present, n_present, 1
            )
            for x in range(inner_in[0], inner_in[1]):
                _add_entries(
                    levels, z0, z1, y0, y1, x, ring, x % width, 0, shift, cells, columns, 1.0
                )
            for step in (1.0, -1.0):  # the first and last planes, in and out again
                if step < 0:
                    n_cells = 0
                    total = 0.0
                    for t in range(n_present):
                        g = present[t]
                        rows[g] = hist[g]
                        total += hist[g]
                        for size in range(1, n_sizes):
                            if cells[(g << shift) + size] != 0.0:
                                cell_list[n_cells] = (g << shift) + size
                                n_cells += 1
                    n_columns = 0
                    for size in range(1, n_sizes):
                        if columns[size] != 0.0:
                            column_list[n_columns] = size
                            n_columns += 1
                    cell_features(
                        cells, cell_list, n_cells, rows, present, n_present, columns,
                        column_list, n_columns, shift, total, inv_i2_table, inv_j2_table, xlogx,
                        out[k],
                    )  # fmt: skip
                if x1 - x0 == 1:
                    _add_entries(
                        levels, z0, z1, y0, y1, x0, ring, x0 % width, 3, shift, cells, columns,
                        step,
                    )  # fmt: skip
                else:
                    _add_entries(
                        levels, z0, z1, y0, y1, x0, ring, x0 % width, 1, shift, cells, columns,
                        step,
                    )  # fmt: skip
                    _add_entries(
                        levels, z0, z1, y0, y1, x1 - 1, ring, (x1 - 1) % width, 2, shift,
                        cells, columns, step,
                    )  # fmt: skip
    for t in range(n_present):  # leave the workspace zeroed
        g = present[t]
        rows[g] = 0.0
        cells[g << shift : (g << shift) + n_sizes] = 0.0
    columns[:] = 0.0


@document_maps
def compute_maps(
    image,
    binned,
    kernel_mask,
    centres,
    *,
    n_levels: int,
    kernel_radius: int,
    settings,
    spacing_zyx,
    features: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """GLDM features of the kernel of each centre, as PyRadiomics 3.0.1's voxel mode.

    Parameters
    ----------
    image : ndarray of float64, shape (z, y, x)
        Intensities of the box (unused: GLDM reads grey levels only).
    %(binned)s
    %(kernel_mask)s
    %(centres)s
    %(n_levels)s
    %(kernel_radius)s
    settings : radflow.params.extraction.Settings
        ``distances``, ``gldm_a``, ``force_2d`` and ``force_2d_dimension`` are read.
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm (unused by GLDM).
    features : iterable of str, optional
        PyRadiomics names (``radflow.features.gldm.FEATURES``); default those PyRadiomics
        enables by default. The deprecated two are computed on request as in segment mode
        (PyRadiomics' voxel mode leaves their maps at ``initValue``).

    Returns
    -------
    dict of str to ndarray of float64, shape (n,)
        One value per centre and feature, dimensionless.

    Raises
    ------
    InputError, SettingsError
        Inconsistent arrays, ``kernel_radius`` < 1, bad ``distances`` or ``gldm_a``, unknown
        feature names.
    """
    names = requested_features(features, gldm.FEATURES, gldm.FAMILY)
    alpha = gldm._check_gldm_a(settings.gldm_a)
    levels, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    force2d = bool(settings.force_2d)
    widths = half_widths(kernel_radius, force2d, settings.force_2d_dimension)
    steps = np.ascontiguousarray(
        offsets(settings.distances, force2d, settings.force_2d_dimension, bidirectional=True)
    )
    n_words = max(1, -(-steps.shape[0] // 64))
    reach = int(np.abs(steps).max(initial=0))
    bits = np.zeros(levels.shape + (n_words,), np.uint64)
    neighbour_bits(levels, steps, alpha, bits)
    masks = room_masks(steps, reach, n_words)
    kernel_volume = int(np.prod(2 * widths + 1))
    n_sizes = steps.shape[0] + 2  # dependence sizes 1..n_offsets + 1
    workspace = size_workspace(int(n_levels), n_sizes, kernel_volume)
    out = np.empty((centres.shape[0], len(SIZE_COLUMNS)), np.float64)
    if reach == 1 and kernel_radius >= 2:
        # Distance 1 (the default): the kernel slides along x (at kernelRadius 1 the per-kernel
        # count below is as fast: 27 voxels a kernel).
        order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0]))
        ordered = np.ascontiguousarray(centres[order])
        sorted_out = np.empty_like(out)
        if len(ordered):
            _slid_dependence_maps(
                levels, bits, masks, ordered, line_starts(ordered), widths, n_sizes, workspace,
                sorted_out,
            )  # fmt: skip
        out[order] = sorted_out
    else:
        _dependence_maps(
            levels, bits, masks, reach, centres, widths, n_sizes, kernel_volume, workspace, out
        )
    values = {name: out[:, SIZE_COLUMNS[gldm._DEFINITIONS[name][0].__name__]] for name in names}
    if "DependencePercentage" in values:  # N_p = N_z in GLDM (one entry per voxel)
        values["DependencePercentage"] = np.ones(centres.shape[0])
    return values
