r"""GLRLM feature maps: PyRadiomics 3.0.1 voxel mode (``voxelBased=True``), one value per centre.

For each centre the kernel is its box (:mod:`radflow.features.voxel._kernel`). Along each
direction (13 in 3D, 4 with ``force2D``; :func:`radflow.features._directions.offsets` with the
box size, as PyRadiomics' ``calculate_glrlm``) every line of the box is walked: consecutive
``kernel_mask`` voxels of one grey level form a run, a voxel outside ``kernel_mask`` or the box
ends it. A direction in which no line of the box holds two ``kernel_mask`` voxels gets an empty
matrix (PyRadiomics' ``multiElement`` rule, per kernel). The sixteen features are those of
:mod:`radflow.features.glrlm` (formulas in :mod:`radflow.features._texture`), per direction and
averaged with ``nanmean`` (an empty direction gives NaN and is skipped); with
``weightingNorm`` the directions' matrices are summed, each weighted by its step length in mm.

Computation: the runs are found once for the whole array, not re-walked per kernel. For every
voxel and direction two tables hold the length of its run forward and backward along the
direction (same-level ``kernel_mask`` voxels, capped at the kernel side), so the run of any
voxel clipped to any box is a ``min`` of a table entry and the distance to the box faces. The
kernel then slides along x, as in :mod:`radflow.features.voxel.firstorder`, keeping one run
matrix per direction (rows: the grey levels present in the kernel, columns: run lengths up to
the kernel side): when the plane ``x = x0`` leaves the box, each of its voxels is the first
voxel of its line in a direction with an x step, so its clipped run loses one voxel (length
``L`` -> ``L - 1``); a plane entering at ``x1`` appends one voxel to the last run of each such
line; in the directions without an x step the lines lie in the plane, whose runs leave or
enter whole. A move of the kernel therefore costs ``2 (2r + 1)^2`` voxels times the
directions, instead of ``(2r + 1)^3`` per direction, and the features are read from the
matrices' entries over the levels present only. Memory: two uint8 tables of one byte per voxel
and direction (26 bytes a voxel in 3D) plus one kernel's matrices; nothing depends on
``n_levels`` beyond a lookup table.
"""

from __future__ import annotations

import numba
import numpy as np

from radflow.features import glrlm as _segment
from radflow.features._checks import requested_features
from radflow.features._directions import offset_lengths_mm, offsets
from radflow.features.voxel._kernel import (
    document_maps,
    half_widths,
    kernel_box,
    line_starts,
    mean_over_matrices,
)
from radflow.features.voxel._sizes import insert_sorted, prepare, remove_sorted

__all__ = ["compute_maps"]

#: Features the compiled kernel computes, in its output column order.
_COLUMNS = tuple(f.name for f in _segment.FEATURES)


@document_maps
def compute_maps(
    image,
    binned,
    kernel_mask,
    centres,
    *,
    n_levels,
    kernel_radius,
    settings,
    spacing_zyx,
    features,
) -> dict[str, np.ndarray]:
    """GLRLM features of the kernel of each centre, as PyRadiomics 3.0.1 voxel mode.

    Parameters
    ----------
    image : ndarray of float64, shape (z, y, x)
        Intensities of the box (unused: GLRLM works on ``binned``).
    %(binned)s
    %(kernel_mask)s
    %(centres)s
    %(n_levels)s
    %(kernel_radius)s
    settings : radflow.params.extraction.Settings
        Reads ``weighting_norm``, ``force_2d``, ``force_2d_dimension``.
    spacing_zyx : sequence of 3 float
        Voxel spacing, mm (``weightingNorm`` weights).
    features : iterable of str or None
        PyRadiomics GLRLM feature names; None: all of them.

    Returns
    -------
    dict of str to ndarray of float64, shape (n,)
        Feature name -> value per centre (NaN where PyRadiomics gives NaN, e.g. a kernel in
        which no direction holds two voxels).

    Raises
    ------
    InputError, SettingsError
        Inconsistent arrays, ``kernel_radius`` < 1, unknown feature names
        (:func:`radflow.features.voxel._sizes.prepare`).
    """
    names = requested_features(features, _segment.FEATURES, "GLRLM")
    levels, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    force2d = bool(settings.force_2d)
    steps = offsets((1,), force2d, settings.force_2d_dimension, False, size_zyx=levels.shape)
    # A run is the same walked either way: every direction with an x step as +x.
    steps = np.ascontiguousarray(np.where(steps[:, 2:3] < 0, -steps, steps))
    if settings.weighting_norm is None:
        weights = np.empty(0)
    else:
        weights = offset_lengths_mm(steps, spacing_zyx, settings.weighting_norm)
    half = half_widths(kernel_radius, force2d, settings.force_2d_dimension)
    out = np.full((len(centres), len(_COLUMNS)), np.nan)
    if len(centres) and len(steps):
        # The sliding window needs the centres of one (z, y) line together, by increasing x.
        order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0]))
        ordered = np.ascontiguousarray(centres[order])
        n_lengths = int(2 * half.max() + 1)  # the longest run a box can hold
        cap_type = np.uint8 if n_lengths <= 255 else np.uint16
        forward = np.empty(levels.shape + (len(steps),), cap_type)
        backward = np.empty_like(forward)
        _run_tables(levels, steps, n_lengths, forward, backward)
        sorted_out = np.empty_like(out)
        _glrlm_maps(
            levels,
            forward,
            backward,
            ordered,
            line_starts(ordered),
            steps,
            half,
            weights,
            int(n_levels),
            sorted_out,
        )
        out[order] = sorted_out
    return {name: out[:, _COLUMNS.index(name)].copy() for name in names}


@numba.njit(cache=True)
def _run_tables(levels, steps, cap, forward, backward):
    """``forward[z, y, x, a]``: how many voxels from (z, y, x) on along ``steps[a]`` have its grey
    level (itself included, capped at ``cap``; 0 where the voxel does not count);
    ``backward``: the same against the step."""
    sz, sy, sx = levels.shape
    for a in range(steps.shape[0]):
        dz, dy, dx = steps[a, 0], steps[a, 1], steps[a, 2]
        for sign in (1, -1):
            table = forward if sign == 1 else backward
            ez, ey, ex = sign * dz, sign * dy, sign * dx
            # visit a voxel after its neighbour at +e
            for iz in range(sz):
                z = sz - 1 - iz if ez > 0 else iz
                for iy in range(sy):
                    y = sy - 1 - iy if ey > 0 else iy
                    for ix in range(sx):
                        x = sx - 1 - ix if ex > 0 else ix
                        g = levels[z, y, x]
                        if g == 0:
                            table[z, y, x, a] = 0
                            continue
                        qz, qy, qx = z + ez, y + ey, x + ex
                        n = 1
                        if 0 <= qz < sz and 0 <= qy < sy and 0 <= qx < sx:
                            if levels[qz, qy, qx] == g:
                                n = min(int(table[qz, qy, qx, a]) + 1, cap)
                        table[z, y, x, a] = n


@numba.njit(cache=True)
def _room(c, d, lo, hi):
    """Voxels from index ``c`` to the box face ``[lo, hi)`` along a step ``d`` of -1, 0 or 1
    (``c`` included; a large number for 0)."""
    if d > 0:
        return hi - c
    if d < 0:
        return c - lo + 1
    return 1 << 30


@numba.njit(cache=True)
def _plane(levels, forward, backward, steps, z0, z1, y0, y1, xlo, xhi, x, sign, state):
    """Take the plane ``x`` out of the box (``sign`` -1; ``x == xlo``, box ``[xlo, xhi)``) or put
    it in (``sign`` +1; ``x == xhi - 1``, box ``[xlo, xhi)`` after the move), updating the run
    matrices, the level counts, the slots and the sorted list of levels of ``state``."""
    counts, hist, slot_of, free, present, sizes, runs = state
    if sign > 0:  # a level new to the box takes a free slot (its matrix rows are zero)
        for z in range(z0, z1):
            for y in range(y0, y1):
                g = levels[z, y, x]
                if g != 0 and slot_of[g] < 0:
                    sizes[2] -= 1
                    slot_of[g] = free[sizes[2]]
                    sizes[0] = insert_sorted(present, sizes[0], g)  # the levels present
    na = steps.shape[0]
    for z in range(z0, z1):
        for y in range(y0, y1):
            g = levels[z, y, x]
            if g == 0:
                continue
            s = slot_of[g]
            for a in range(na):
                dz, dy, dx = steps[a, 0], steps[a, 1], steps[a, 2]
                if dx != 0:
                    if sign < 0:  # the first voxel of its line: its run loses it
                        room = min(xhi - x, _room(z, dz, z0, z1), _room(y, dy, y0, y1))
                        length = min(int(forward[z, y, x, a]), room)
                    else:  # the last voxel of its line: it ends the line's last run
                        room = min(x - xlo + 1, _room(z, -dz, z0, z1), _room(y, -dy, y0, y1))
                        length = min(int(backward[z, y, x, a]), room)
                    counts[a, s, length - 1] += sign
                    if length > 1:
                        counts[a, s, length - 2] -= sign
                    else:
                        runs[a] += sign
                else:  # the line lies in the plane: count its runs by their first voxel
                    bz, by = z - dz, y - dy
                    if backward[z, y, x, a] > 1 and z0 <= bz < z1 and y0 <= by < y1:
                        continue  # not the first voxel of its run in the box
                    room = min(_room(z, dz, z0, z1), _room(y, dy, y0, y1))
                    counts[a, s, min(int(forward[z, y, x, a]), room) - 1] += sign
                    runs[a] += sign
            hist[g] += sign
            sizes[1] += sign
            if hist[g] == 0:  # the level left the box: its rows are zero, its slot is free
                free[sizes[2]] = s
                sizes[2] += 1
                slot_of[g] = -1
                sizes[0] = remove_sorted(present, sizes[0], g)


@numba.njit(cache=True)
def _clear(state):
    """Empty the box of ``state``."""
    counts, hist, slot_of, free, present, sizes, runs = state
    runs[:] = 0
    for k in range(sizes[0]):
        g = present[k]
        counts[:, slot_of[g], :] = 0.0
        free[sizes[2]] = slot_of[g]
        sizes[2] += 1
        hist[g] = 0
        slot_of[g] = -1
    sizes[0] = 0
    sizes[1] = 0


@numba.njit(cache=True)
def _two_on_a_line(levels, dz, dy, dx, z0, z1, y0, y1, x0, x1):
    """Whether a line of the box along (dz, dy, dx) holds two counting voxels."""
    for z in range(z0, z1):
        for y in range(y0, y1):
            for x in range(x0, x1):
                bz, by, bx = z - dz, y - dy, x - dx
                if z0 <= bz < z1 and y0 <= by < y1 and x0 <= bx < x1:
                    continue  # not the first voxel of a line
                elements = 0
                wz, wy, wx = z, y, x
                while z0 <= wz < z1 and y0 <= wy < y1 and x0 <= wx < x1:
                    if levels[wz, wy, wx] != 0:
                        elements += 1
                        if elements > 1:
                            return True
                    wz += dz
                    wy += dy
                    wx += dx
    return False


@numba.njit(cache=True)
def _glrlm_maps(levels, forward, backward, centres, starts, steps, half, weights, n_levels, out):
    """Fill ``out[c, :]`` (columns of ``_COLUMNS``) for each centre c (C order)."""
    sz, sy, sx = levels.shape
    na = steps.shape[0]
    weighted = weights.shape[0] > 0
    nm = 1 if weighted else na
    kvol = (2 * half[0] + 1) * (2 * half[1] + 1) * (2 * half[2] + 1)
    nr = 2 * max(half[0], max(half[1], half[2])) + 1
    lmax = min(kvol, n_levels)
    counts = np.zeros((na, lmax, nr))
    state = (
        counts,
        np.zeros(n_levels + 1, np.int64),  # voxels of each level in the box
        np.full(n_levels + 1, -1, np.int64),  # matrix row (slot) of each level present
        np.arange(lmax)[::-1].copy(),  # free slots (a stack)
        np.empty(lmax, np.int64),  # the levels present, ascending
        np.array([0, 0, lmax]),  # levels present, voxels in the box, free slots
        np.zeros(na, np.int64),  # runs in each direction
    )
    runs = state[6]
    slot_of = state[2]
    present = state[4]
    sizes = state[5]
    combined = np.zeros((1, lmax, nr))
    # c log2 c and log2 c for integer counts (an unweighted matrix's entropy without a log
    # per cell), squares and inverse squares of the run lengths and grey levels
    xlogx = np.zeros(kvol + 1)
    log2s = np.zeros(kvol + 1)
    for c in range(1, kvol + 1):
        log2s[c] = np.log2(c)
        xlogx[c] = c * log2s[c]
    lengths = np.arange(1, nr + 1).astype(np.float64)
    grey = np.arange(n_levels + 1).astype(np.float64)
    grey[0] = 1.0  # never read
    squares = lengths**2
    inverse_squares = 1.0 / squares
    level_squares = grey**2
    level_inverse_squares = 1.0 / level_squares
    pg = np.zeros(lmax)
    pr = np.zeros(nr)
    values = np.empty((nm, out.shape[1]))
    for line in range(starts.size - 1):
        _clear(state)
        px0 = 0
        px1 = 0
        for k in range(starts[line], starts[line + 1]):
            z0, z1, y0, y1, x0, x1 = kernel_box(
                centres[k, 0], centres[k, 1], centres[k, 2], sz, sy, sx, half[0], half[1], half[2]
            )
            if x0 >= px1:  # no overlap with the box held: start again
                _clear(state)
                px0 = x0
                px1 = x0
            while px0 < x0:
                _plane(levels, forward, backward, steps, z0, z1, y0, y1, px0, px1, px0, -1, state)
                px0 += 1
            while px1 < x1:
                px1 += 1
                _plane(
                    levels, forward, backward, steps, z0, z1, y0, y1, px0, px1, px1 - 1, 1, state
                )
            n_present = sizes[0]
            if weighted:
                for t in range(n_present):
                    combined[0, slot_of[present[t]], :] = 0.0
            for a in range(na):
                # As many runs as voxels: every run has length 1, but a line may hold two.
                multi = runs[a] < sizes[1] or _two_on_a_line(
                    levels, steps[a, 0], steps[a, 1], steps[a, 2], z0, z1, y0, y1, x0, x1
                )
                if not multi:  # an empty matrix
                    if not weighted:
                        values[a, :] = np.nan
                elif weighted:
                    for t in range(n_present):
                        s = slot_of[present[t]]
                        for r in range(nr):
                            combined[0, s, r] += weights[a] * counts[a, s, r]
                else:
                    _matrix_features(
                        counts, a, present, n_present, slot_of, nr, True, xlogx, log2s, squares,
                        inverse_squares, level_squares, level_inverse_squares, pg, pr, values, a,
                    )  # fmt: skip
            if weighted:
                _matrix_features(
                    combined, 0, present, n_present, slot_of, nr, False, xlogx, log2s, squares,
                    inverse_squares, level_squares, level_inverse_squares, pg, pr, values, 0,
                )  # fmt: skip
            mean_over_matrices(values, out[k])


@numba.njit(cache=True)
def _matrix_features(
    counts, a, present, n_present, slot_of, nr, tabled, xlogx, log2s, squares, inverse_squares,
    level_squares, level_inverse_squares, pg, pr, values, row_out,
):  # fmt: skip
    """``values[row_out]``: the sixteen features of the (slot x run length) matrix
    ``counts[a]``; NaN if it is empty.

    Rows are visited in the order of the levels ``present[:n_present]`` (ascending), so a
    kernel's values do not depend on the path of the window. ``tabled``: the counts are
    integers and the entropy is :math:`\\log_2 N_r - \\sum c \\log_2 c / N_r` from the
    tables ``xlogx`` (:math:`c \\log_2 c`) and ``log2s``; else (weighted counts) one log per
    cell. ``squares``, ``inverse_squares``: :math:`j^2`, :math:`1/j^2` per run length;
    ``level_squares``, ``level_inverse_squares`` the same per grey level.
    """
    for r in range(nr):
        pr[r] = 0.0
    total = 0.0
    sre = 0.0
    lre = 0.0
    gln = 0.0
    lgl = 0.0
    hgl = 0.0
    srlgl = 0.0
    srhgl = 0.0
    lrlgl = 0.0
    lrhgl = 0.0
    entropy_sum = 0.0
    for t in range(n_present):
        g = present[t]
        s = slot_of[g]
        row = 0.0
        short = 0.0  # sum_j P(i, j) / j^2
        long = 0.0  # sum_j P(i, j) j^2
        for r in range(nr):
            v = counts[a, s, r]
            row += v
            pr[r] += v
            short += v * inverse_squares[r]
            long += v * squares[r]
            if tabled:
                entropy_sum += xlogx[int(v)]
        pg[t] = row
        total += row
        i2 = level_squares[g]
        inv_i2 = level_inverse_squares[g]
        sre += short
        lre += long
        gln += row * row
        lgl += row * inv_i2
        hgl += row * i2
        srlgl += short * inv_i2
        srhgl += short * i2
        lrlgl += long * inv_i2
        lrhgl += long * i2
    if total == 0.0:
        values[row_out, :] = np.nan
        return
    inv_total = 1.0 / total
    if tabled:
        entropy = log2s[int(total)] - entropy_sum * inv_total
    else:
        eps = np.spacing(1.0)
        entropy = 0.0
        for t in range(n_present):
            s = slot_of[present[t]]
            for r in range(nr):
                v = counts[a, s, r]
                if v != 0.0:
                    p = v * inv_total
                    entropy -= p * np.log2(p + eps)
    rln = 0.0
    n_voxels = 0.0
    for r in range(nr):
        rln += pr[r] * pr[r]
        n_voxels += pr[r] * (r + 1.0)
    mean_j = n_voxels * inv_total
    var_j = 0.0
    for r in range(nr):
        d = r + 1.0 - mean_j
        var_j += pr[r] * (d * d)
    mean_i = 0.0
    for t in range(n_present):
        mean_i += pg[t] * present[t]
    mean_i *= inv_total
    var_i = 0.0
    for t in range(n_present):
        d = present[t] - mean_i
        var_i += pg[t] * (d * d)
    values[row_out, 0] = sre * inv_total
    values[row_out, 1] = lre * inv_total
    values[row_out, 2] = gln * inv_total
    values[row_out, 3] = gln * inv_total * inv_total
    values[row_out, 4] = rln * inv_total
    values[row_out, 5] = rln * inv_total * inv_total
    values[row_out, 6] = total / n_voxels
    values[row_out, 7] = var_i * inv_total
    values[row_out, 8] = var_j * inv_total
    values[row_out, 9] = entropy
    values[row_out, 10] = lgl * inv_total
    values[row_out, 11] = hgl * inv_total
    values[row_out, 12] = srlgl * inv_total
    values[row_out, 13] = srhgl * inv_total
    values[row_out, 14] = lrlgl * inv_total
    values[row_out, 15] = lrhgl * inv_total
