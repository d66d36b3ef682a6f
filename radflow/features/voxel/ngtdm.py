"""NGTDM feature maps: PyRadiomics 3.0.1 voxel mode of :mod:`radflow.features.ngtdm`.

In the kernel of a centre (the box of :mod:`radflow.features.voxel._kernel`), every voxel that
may count (``kernel_mask``) adds 1 to :math:`n_i` of its grey level :math:`i` and
:math:`|i - \\bar{A}|` to :math:`s_i`, where :math:`\\bar{A}` is the mean grey level of its
neighbours (offsets at the Chebyshev ``distances``, in-plane with ``force2D``) that lie in the
same box and may count; a voxel without such a neighbour adds 0 to :math:`s_i` but still counts
in :math:`n_i`, as PyRadiomics' C code (``calculate_ngtdm`` with its bounding box) does. The
five features are those of the segment module over the grey levels present in the kernel
(PyRadiomics' voxel mode zeroes the terms of absent levels), evaluated from the kernel's
:math:`(i, n_i, s_i)` entries without a matrix over all :math:`N_g` levels.

Speed, distance 1 (the default) and ``kernelRadius`` >= 2: the kernel slides along x. A voxel's
:math:`|i - \\bar{A}|` depends on the box only through the box's x faces (along a line of
centres the box's z and y bounds are fixed), so each plane's terms are computed once, when it
enters, in the four variants a plane can need (inside the box, its first plane, its last, both),
as exact integers (times a common multiple of the possible neighbour counts). Their sum over the
planes strictly inside the box is kept per grey level as planes pass; the first and last planes
add their clipped terms per kernel. Integer sums keep every value independent of the window's
path (stitched map pieces equal one piece exactly) and exactly 0 for a flat kernel.

Otherwise: the neighbours of a voxel at Chebyshev distance ``d`` form the shell between two cubes,
and a cube clipped to the kernel box is a box, so the count and level sum of a voxel's
neighbours in its kernel come from summed-volume tables of the whole array (exact int64) in 8
reads per cube, whatever the kernel's place or size; no neighbour is visited. Per-level sums go
into a scratch array indexed by grey level and are reset through the list of levels seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numba
import numpy as np

from radflow.features import ngtdm
from radflow.features._checks import requested_features
from radflow.features._directions import offsets
from radflow.features.voxel._kernel import (
    document_maps,
    half_widths,
    kernel_box,
    line_starts,
    slide_planes,
)
from radflow.features.voxel._sizes import count_planes, prepare

__all__ = ["compute_maps"]

#: Column of each feature in the rows the kernel fills.
_COLUMNS = {"Coarseness": 0, "Contrast": 1, "Busyness": 2, "Complexity": 3, "Strength": 4}


@numba.njit(cache=True)
def _neighbourhood(levels, steps, z, y, x, z0, z1, y0, y1, x0, x1):
    """Number and level sum of the neighbours of (z, y, x) in the box that may count."""
    count = 0
    total = 0
    for a in range(steps.shape[0]):
        qz = z + steps[a, 0]
        qy = y + steps[a, 1]
        qx = x + steps[a, 2]
        if qz >= z0 and qz < z1 and qy >= y0 and qy < y1 and qx >= x0 and qx < x1:
            other = levels[qz, qy, qx]
            if other != 0:
                count += 1
                total += other
    return count, total


def _summed_volumes(levels):
    """Summed-volume tables of the counting voxels and of their grey levels (int64, exact).

    ``table[z, y, x]`` sums ``[0, z) x [0, y) x [0, x)``; shape ``levels.shape + 1``.
    """
    shape = tuple(n + 1 for n in levels.shape)
    counts = np.zeros(shape, np.int64)
    totals = np.zeros(shape, np.int64)
    counts[1:, 1:, 1:] = (levels > 0).cumsum(axis=0).cumsum(axis=1).cumsum(axis=2)
    totals[1:, 1:, 1:] = levels.astype(np.int64).cumsum(axis=0).cumsum(axis=1).cumsum(axis=2)
    return counts, totals


@numba.njit(cache=True)
def _box_sum(table, z0, z1, y0, y1, x0, x1):
    """Sum over ``[z0, z1) x [y0, y1) x [x0, x1)`` from a summed-volume table."""
    return (
        table[z1, y1, x1] - table[z0, y1, x1] - table[z1, y0, x1] - table[z1, y1, x0]
        + table[z0, y0, x1] + table[z0, y1, x0] + table[z1, y0, x0] - table[z0, y0, x0]
    )  # fmt: skip


@numba.njit(cache=True)
def _cube_sums(counts, totals, z, y, x, d, on, z0, z1, y0, y1, x0, x1):
    """Count and level sum of the counting voxels within Chebyshev distance ``d`` of (z, y, x)
    (in-plane where ``on`` is 0), inside the box."""
    a0 = max(z - d * on[0], z0)
    a1 = min(z + d * on[0] + 1, z1)
    b0 = max(y - d * on[1], y0)
    b1 = min(y + d * on[1] + 1, y1)
    c0 = max(x - d * on[2], x0)
    c1 = min(x + d * on[2] + 1, x1)
    return (
        _box_sum(counts, a0, a1, b0, b1, c0, c1),
        _box_sum(totals, a0, a1, b0, b1, c0, c1),
    )


@numba.njit(cache=True)
def _features(present, n_present, n, s, gathered, out):
    """The five NGTDM features from the levels ``present[:n_present]`` (PyRadiomics' forms).

    ``gathered`` (float64, shape (4, >= n_present)) is scratch: level, p, s and p s of each
    present level side by side, so the pair loop reads contiguous memory.
    """
    nvp = 0.0
    for k in range(n_present):
        nvp += n[present[k]]
    level = gathered[0]
    p = gathered[1]
    si = gathered[2]
    ps = gathered[3]
    sum_ps = 0.0
    sum_s = 0.0
    for k in range(n_present):
        level[k] = present[k]
        p[k] = n[present[k]] / nvp
        si[k] = s[present[k]]
        ps[k] = p[k] * si[k]
        sum_ps += ps[k]
        sum_s += si[k]
    spread = 0.0  # sum_ij p_i p_j (i - j)^2
    absdiff = 0.0  # sum_ij |i p_i - j p_j|
    complexity = 0.0  # sum_ij |i - j| (p_i s_i + p_j s_j) / (p_i + p_j)
    strength = 0.0  # sum_ij (p_i + p_j) (i - j)^2
    for a in range(n_present):
        i = level[a]
        p_i = p[a]
        ip_i = i * p_i
        ps_i = ps[a]
        for b in range(a + 1, n_present):
            d = i - level[b]
            d2 = d * d
            p_j = p[b]
            spread += p_i * p_j * d2
            absdiff += abs(ip_i - level[b] * p_j)
            complexity += abs(d) * (ps_i + ps[b]) / (p_i + p_j)
            strength += (p_i + p_j) * d2
    # Each unordered pair stands for (i, j) and (j, i); doubling is exact.
    spread *= 2.0
    absdiff *= 2.0
    complexity *= 2.0
    strength *= 2.0
    out[0] = 1.0 / sum_ps if sum_ps != 0.0 else 1e6
    pairs = n_present * (n_present - 1)
    out[1] = spread * sum_s / nvp / pairs if pairs != 0 else 0.0
    out[2] = sum_ps / absdiff if absdiff != 0.0 else 0.0
    out[3] = complexity / nvp
    out[4] = strength / sum_s if sum_s != 0.0 else 0.0


@numba.njit(cache=True)
def _tone_maps(levels, counts, totals, distances, on, centres, widths, n_levels, out):
    """Fill ``out[c]`` with the NGTDM features of the kernel of ``centres[c]``.

    The neighbours of a voxel at the Chebyshev ``distances`` (ascending) are the shells
    ``cube(d) - cube(d - 1)``; clipped to the kernel box each cube is a box, whose count and
    level sum come from the summed-volume tables ``counts`` and ``totals`` in 8 reads.
    """
    nz, ny, nx = levels.shape
    n = np.zeros(n_levels + 1, np.float64)
    s = np.zeros(n_levels + 1, np.float64)
    present = np.empty(n_levels + 1, np.int64)
    gathered = np.empty((4, n_levels + 1), np.float64)
    for c in range(centres.shape[0]):
        z0, z1, y0, y1, x0, x1 = kernel_box(
            centres[c, 0], centres[c, 1], centres[c, 2], nz, ny, nx,
            widths[0], widths[1], widths[2],
        )  # fmt: skip
        n_present = 0
        for z in range(z0, z1):
            for y in range(y0, y1):
                for x in range(x0, x1):
                    level = levels[z, y, x]
                    if level == 0:
                        continue
                    count = 0
                    total = 0
                    inner_count = 1  # cube(0): the voxel itself
                    inner_total = level
                    inner_d = 0
                    for k in range(distances.shape[0]):
                        d = distances[k]
                        if d - 1 != inner_d:
                            inner_count, inner_total = _cube_sums(
                                counts, totals, z, y, x, d - 1, on, z0, z1, y0, y1, x0, x1
                            )
                        cube_count, cube_total = _cube_sums(
                            counts, totals, z, y, x, d, on, z0, z1, y0, y1, x0, x1
                        )
                        count += cube_count - inner_count
                        total += cube_total - inner_total
                        inner_count = cube_count
                        inner_total = cube_total
                        inner_d = d
                    if n[level] == 0.0:
                        present[n_present] = level
                        n_present += 1
                    n[level] += 1.0
                    if count > 0:
                        s[level] += abs(level - total / count)
        _features(present, n_present, n, s, gathered, out[c])
        for k in range(n_present):
            n[present[k]] = 0.0
            s[present[k]] = 0.0


#: Largest value of a scaled sum :func:`_slid_tone_maps` may hold (int64 with room).
_EXACT_LIMIT = 2**62


@numba.njit(cache=True)
def _tone_term(level, count, total, scale):
    """:math:`|i - \\bar{A}|` of a voxel with ``count`` neighbours summing to ``total``, times
    the common multiple ``scale[count] * count`` (an exact integer; 0 without neighbours)."""
    if count == 0:
        return 0
    return abs(level * count - total) * scale[count]


@numba.njit(cache=True)
def _plane_sums(levels, z0, z1, y0, y1, x, on, plane_sums, slot, rows):
    """Number and level sum of the counting voxels of plane ``x`` in the in-plane neighbourhood
    (itself included) of each voxel of the slab ``[z0, z1) x [y0, y1)``, in (z, y) order, into
    ``plane_sums[slot]`` (counts, totals); summed along y, then z (``rows``: scratch)."""
    ny = y1 - y0
    for z in range(z0, z1):
        for y in range(y0, y1):
            count = 0
            total = 0
            for yy in range(max(y - on[1], y0), min(y + on[1] + 1, y1)):
                other = levels[z, yy, x]
                count += other != 0
                total += other
            i = (z - z0) * ny + (y - y0)
            rows[0, i] = count
            rows[1, i] = total
    for z in range(z0, z1):
        za = max(z - on[0], z0) - z0
        zb = min(z + on[0] + 1, z1) - z0
        for y in range(ny):
            count = 0
            total = 0
            for zz in range(za, zb):
                count += rows[0, zz * ny + y]
                total += rows[1, zz * ny + y]
            i = (z - z0) * ny + y
            plane_sums[slot, 0, i] = count
            plane_sums[slot, 1, i] = total


@numba.njit(cache=True)
def _plane_terms(levels, z0, z1, y0, y1, x, plane_sums, slots, scale, ring, slot):
    """The scaled terms of the voxels of plane ``x`` of the slab, in (z, y) order, into
    ``ring[slot]``, from the neighbourhood sums of planes ``x - 1``, ``x``, ``x + 1`` held in
    ``plane_sums[slots[0..2]]`` (-1: no such plane): variant 0 with both neighbouring planes,
    1 without plane ``x - 1`` (``x`` is the box's first plane), 2 without plane ``x + 1`` (its
    last), 3 with neither (a box one plane wide)."""
    i = 0
    for z in range(z0, z1):
        for y in range(y0, y1):
            level = levels[z, y, x]
            if level != 0:
                c_left = 0
                t_left = 0
                if slots[0] >= 0:
                    c_left = plane_sums[slots[0], 0, i]
                    t_left = plane_sums[slots[0], 1, i]
                c_mid = plane_sums[slots[1], 0, i] - 1  # the voxel is not its own neighbour
                t_mid = plane_sums[slots[1], 1, i] - level
                c_right = 0
                t_right = 0
                if slots[2] >= 0:
                    c_right = plane_sums[slots[2], 0, i]
                    t_right = plane_sums[slots[2], 1, i]
                ring[slot, 0, i] = _tone_term(
                    level, c_left + c_mid + c_right, t_left + t_mid + t_right, scale
                )
                ring[slot, 1, i] = _tone_term(level, c_mid + c_right, t_mid + t_right, scale)
                ring[slot, 2, i] = _tone_term(level, c_left + c_mid, t_left + t_mid, scale)
                ring[slot, 3, i] = _tone_term(level, c_mid, t_mid, scale)
            i += 1


@numba.njit(cache=True)
def _add_terms(levels, z0, z1, y0, y1, x, ring, slot, variant, sums, step):
    """``sums[level] += step * ring[slot, variant]`` over the voxels of plane ``x`` of the
    slab."""
    i = 0
    for z in range(z0, z1):
        for y in range(y0, y1):
            level = levels[z, y, x]
            if level != 0:
                sums[level] += step * ring[slot, variant, i]
            i += 1


@numba.njit(cache=True)
def _slid_tone_maps(levels, on, centres, starts, widths, n_levels, scale, common, out):
    """:func:`_tone_maps` for neighbours at distance 1, the kernel sliding along x.

    A voxel's :math:`|i - \\bar{A}|` depends on the box only through its x faces (its
    neighbours in the slab ``[z0, z1) x [y0, y1)`` of the line are fixed), so each plane's
    terms are computed once as it enters, in four variants (:func:`_plane_terms`), as exact
    integers: the term times ``common`` (a common multiple of the neighbour counts). The
    sum over the planes strictly inside the box is kept per level and updated as planes pass
    in and out; the first and last planes add their clipped variants per kernel. Exact integer
    sums make each value independent of the window's path.
    """
    nz, ny, nx = levels.shape
    width = 2 * widths[2] + 1
    slab = (2 * widths[0] + 1) * (2 * widths[1] + 1)
    ring = np.zeros((width, 4, slab), np.int64)
    plane_sums = np.zeros((width + 2, 2, slab), np.int64)  # by plane x % (width + 2)
    held = np.full(width + 2, -2, np.int64)  # the plane each slot holds (-2: none)
    slots = np.zeros(3, np.int64)  # slots of planes x - 1, x, x + 1 (-1: none)
    rows = np.zeros((2, slab), np.int64)
    hist = np.zeros(n_levels + 1, np.int64)
    present = np.empty(n_levels + 1, np.int64)
    inner = np.zeros(n_levels + 1, np.int64)  # scaled s_i over the planes inside the box
    kernel = np.zeros(n_levels + 1, np.int64)
    n = np.zeros(n_levels + 1, np.float64)
    s = np.zeros(n_levels + 1, np.float64)
    gathered = np.empty((4, n_levels + 1), np.float64)
    n_present = 0
    window = np.zeros(4, np.int64)  # planes counted, planes summed in ``inner`` (slide_planes)
    for line in range(starts.size - 1):
        for k in range(starts[line], starts[line + 1]):
            z0, z1, y0, y1, x0, x1 = kernel_box(
                centres[k, 0], centres[k, 1], centres[k, 2], nz, ny, nx,
                widths[0], widths[1], widths[2],
            )  # fmt: skip
            if k == starts[line]:  # a new slab: no plane sums held
                held[:] = -2
            restart, leaving, entering, inner_out, inner_in = slide_planes(
                window, x0, x1, k == starts[line]
            )
            if restart:  # a new line or a gap: start again
                for t in range(n_present):
                    hist[present[t]] = 0
                    inner[present[t]] = 0
                n_present = 0
            for x in range(inner_out[0], inner_out[1]):
                _add_terms(levels, z0, z1, y0, y1, x, ring, x % width, 0, inner, -1)
            n_present = count_planes(
                levels, z0, z1, y0, y1, leaving[0], leaving[1], hist, present, n_present, -1
            )
            for x in range(entering[0], entering[1]):
                # neighbourhood sums of planes x - 1, x, x + 1, each computed once per line
                for j in range(3):
                    xx = x - 1 + j
                    slots[j] = -1
                    if (on[2] == 0 and j != 1) or xx < 0 or xx >= nx:
                        continue
                    slot = xx % (width + 2)
                    if held[slot] != xx:
                        _plane_sums(levels, z0, z1, y0, y1, xx, on, plane_sums, slot, rows)
                        held[slot] = xx
                    slots[j] = slot
                _plane_terms(levels, z0, z1, y0, y1, x, plane_sums, slots, scale, ring, x % width)
            n_present = count_planes(
                levels, z0, z1, y0, y1, entering[0], entering[1], hist, present, n_present, 1
            )
            for x in range(inner_in[0], inner_in[1]):
                _add_terms(levels, z0, z1, y0, y1, x, ring, x % width, 0, inner, 1)
            for t in range(n_present):
                kernel[present[t]] = inner[present[t]]
            if x1 - x0 == 1:
                _add_terms(levels, z0, z1, y0, y1, x0, ring, x0 % width, 3, kernel, 1)
            else:
                _add_terms(levels, z0, z1, y0, y1, x0, ring, x0 % width, 1, kernel, 1)
                _add_terms(levels, z0, z1, y0, y1, x1 - 1, ring, (x1 - 1) % width, 2, kernel, 1)
            for t in range(n_present):
                g = present[t]
                n[g] = hist[g]
                s[g] = kernel[g] / common
            _features(present, n_present, n, s, gathered, out[k])


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
    """NGTDM features of the kernel of each centre, as PyRadiomics 3.0.1's voxel mode.

    Parameters
    ----------
    image : ndarray of float64, shape (z, y, x)
        Intensities of the box (unused: NGTDM reads grey levels only).
    %(binned)s
    %(kernel_mask)s
    %(centres)s
    %(n_levels)s
    %(kernel_radius)s
    settings : radflow.params.extraction.Settings
        ``distances``, ``force_2d`` and ``force_2d_dimension`` are read.
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm (unused by NGTDM).
    features : iterable of str, optional
        PyRadiomics names (``radflow.features.ngtdm.FEATURES``); default all five.

    Returns
    -------
    dict of str to ndarray of float64, shape (n,)
        One value per centre and feature (grey levels in bins).

    Raises
    ------
    InputError, SettingsError
        Inconsistent arrays, ``kernel_radius`` < 1, bad ``distances``, unknown feature names.
    """
    names = requested_features(features, ngtdm.FEATURES, ngtdm.FAMILY)
    levels, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    force2d = bool(settings.force_2d)
    widths = half_widths(kernel_radius, force2d, settings.force_2d_dimension)
    steps = offsets(settings.distances, force2d, settings.force_2d_dimension)  # checks them
    distances = np.unique(np.abs(steps).max(axis=1)).astype(np.int64)  # ascending
    on = (half_widths(1, force2d, settings.force_2d_dimension) > 0).astype(np.int64)
    out = np.empty((centres.shape[0], len(_COLUMNS)), np.float64)
    n_neighbours = int(np.prod(2 * on + 1)) - 1
    common = math.lcm(*range(1, n_neighbours + 1))
    kernel_volume = int(np.prod(2 * widths + 1))
    if (
        tuple(distances) == (1,)
        and kernel_radius >= 2
        and kernel_volume * int(n_levels) * common < _EXACT_LIMIT
    ):
        # Distance 1 (the default): exact integer sums, the kernel sliding along x (at
        # kernelRadius 1 the per-kernel tables below are as fast: 27 voxels a kernel).
        scale = np.array([0] + [common // c for c in range(1, n_neighbours + 1)], np.int64)
        order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0]))
        ordered = np.ascontiguousarray(centres[order])
        sorted_out = np.empty_like(out)
        if len(ordered):
            _slid_tone_maps(
                levels, on, ordered, line_starts(ordered), widths, int(n_levels), scale,
                float(common), sorted_out,
            )  # fmt: skip
        out[order] = sorted_out
    else:
        counts, totals = _summed_volumes(levels)
        _tone_maps(levels, counts, totals, distances, on, centres, widths, int(n_levels), out)
    return {name: out[:, _COLUMNS[name]] for name in names}
