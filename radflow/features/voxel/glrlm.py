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

Computation: one pass per centre in a compiled kernel; the runs are counted into a small matrix
over the kernel's own grey levels (local slots, reset after each centre) and run lengths up to
the kernel side, and the features are read from its non-zero entries. Nothing depends on
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
    kernel_levels,
    mean_over_matrices,
)
from radflow.features.voxel._sizes import prepare

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
    binned, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    kmask = binned > 0  # prepare zeroes the levels outside kernel_mask
    force2d = bool(settings.force_2d)
    steps = offsets((1,), force2d, settings.force_2d_dimension, False, size_zyx=binned.shape)
    if settings.weighting_norm is None:
        weights = np.empty(0)
    else:
        weights = offset_lengths_mm(steps, spacing_zyx, settings.weighting_norm)
    out = np.full((len(centres), len(_COLUMNS)), np.nan)
    if len(centres) and len(steps):
        _glrlm_maps(
            binned,
            kmask,
            centres,
            np.ascontiguousarray(steps),
            half_widths(kernel_radius, force2d, settings.force_2d_dimension),
            weights,
            int(n_levels),
            out,
        )
    return {name: out[:, _COLUMNS.index(name)].copy() for name in names}


@numba.njit(cache=True)
def _glrlm_maps(binned, kmask, centres, steps, half, weights, n_levels, out):
    """Fill ``out[c, :]`` (columns of ``_COLUMNS``) for each centre c."""
    sz, sy, sx = binned.shape
    na = steps.shape[0]
    weighted = weights.shape[0] > 0
    nm = 1 if weighted else na
    kvol = (2 * half[0] + 1) * (2 * half[1] + 1) * (2 * half[2] + 1)
    nr = 2 * max(half[0], max(half[1], half[2])) + 1  # longest possible run
    lmax = min(kvol, n_levels)
    slot = np.full(n_levels + 1, -1, np.int64)
    glev = np.empty(lmax, np.int64)
    counts = np.zeros((nm, lmax, nr))
    # this direction's runs: (slot, length) of each, before they go into the matrix
    run_slot = np.empty(kvol, np.int64)
    run_len = np.empty(kvol, np.int64)
    pg = np.zeros(lmax)
    pr = np.zeros(nr)
    values = np.empty((nm, out.shape[1]))
    for c in range(centres.shape[0]):
        cz, cy, cx = centres[c, 0], centres[c, 1], centres[c, 2]
        z0, z1, y0, y1, x0, x1 = kernel_box(cz, cy, cx, sz, sy, sx, half[0], half[1], half[2])
        n_slots = kernel_levels(binned, kmask, z0, z1, y0, y1, x0, x1, slot, glev)
        for a in range(na):
            dz, dy, dx = steps[a, 0], steps[a, 1], steps[a, 2]
            n_runs = 0
            multi = False
            for z in range(z0, z1):
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        # a line starts where the step back leaves the box
                        bz, by, bx = z - dz, y - dy, x - dx
                        if z0 <= bz < z1 and y0 <= by < y1 and x0 <= bx < x1:
                            continue
                        level = -1
                        length = 0
                        elements = 0
                        wz, wy, wx = z, y, x
                        while z0 <= wz < z1 and y0 <= wy < y1 and x0 <= wx < x1:
                            if kmask[wz, wy, wx]:
                                elements += 1
                                g = slot[binned[wz, wy, wx]]
                                if level == g:
                                    length += 1
                                else:
                                    if level >= 0:
                                        run_slot[n_runs] = level
                                        run_len[n_runs] = length
                                        n_runs += 1
                                    level = g
                                    length = 1
                            elif level >= 0:
                                run_slot[n_runs] = level
                                run_len[n_runs] = length
                                n_runs += 1
                                level = -1
                            wz += dz
                            wy += dy
                            wx += dx
                        if level >= 0:
                            run_slot[n_runs] = level
                            run_len[n_runs] = length
                            n_runs += 1
                        if elements > 1:
                            multi = True
            if not multi:
                continue  # PyRadiomics empties a direction with one voxel per line
            m = 0
            w = 1.0
            if weighted:
                w = weights[a]
            else:
                m = a
            for r in range(n_runs):
                counts[m, run_slot[r], run_len[r] - 1] += w
        for m in range(nm):
            _matrix_features(counts[m], glev, n_slots, nr, pg, pr, values[m])
            counts[m, :n_slots, :] = 0.0
        mean_over_matrices(values, out[c])
        for s in range(n_slots):
            slot[glev[s]] = -1


@numba.njit(cache=True)
def _matrix_features(counts, glev, n_slots, nr, pg, pr, values):
    """The sixteen features of one (slot x run length) matrix; NaN if it is empty."""
    eps = np.spacing(1.0)
    total = 0.0
    for r in range(nr):
        pr[r] = 0.0
    for s in range(n_slots):
        row = 0.0
        for r in range(nr):
            row += counts[s, r]
            pr[r] += counts[s, r]
        pg[s] = row
        total += row
    if total == 0.0:
        values[:] = np.nan
        return
    sre = 0.0
    lre = 0.0
    rln = 0.0
    n_voxels = 0.0
    for r in range(nr):
        j = r + 1.0
        sre += pr[r] / (j * j)
        lre += pr[r] * (j * j)
        rln += pr[r] * pr[r]
        n_voxels += pr[r] * j
    gln = 0.0
    lgl = 0.0
    hgl = 0.0
    mean_i = 0.0
    for s in range(n_slots):
        i = float(glev[s])
        gln += pg[s] * pg[s]
        lgl += pg[s] / (i * i)
        hgl += pg[s] * (i * i)
        mean_i += pg[s] / total * i
    var_i = 0.0
    for s in range(n_slots):
        var_i += pg[s] / total * (glev[s] - mean_i) ** 2
    mean_j = 0.0
    for r in range(nr):
        mean_j += pr[r] / total * (r + 1.0)
    var_j = 0.0
    for r in range(nr):
        var_j += pr[r] / total * (r + 1.0 - mean_j) ** 2
    entropy = 0.0
    srlgl = 0.0
    srhgl = 0.0
    lrlgl = 0.0
    lrhgl = 0.0
    for s in range(n_slots):
        i2 = float(glev[s]) ** 2
        for r in range(nr):
            v = counts[s, r]
            if v == 0.0:
                continue
            j2 = (r + 1.0) ** 2
            p = v / total
            entropy -= p * np.log2(p + eps)
            srlgl += v / (i2 * j2)
            srhgl += v * i2 / j2
            lrlgl += v * j2 / i2
            lrhgl += v * (j2 * i2)
    values[0] = sre / total
    values[1] = lre / total
    values[2] = gln / total
    values[3] = gln / (total * total)
    values[4] = rln / total
    values[5] = rln / (total * total)
    values[6] = total / n_voxels
    values[7] = var_i
    values[8] = var_j
    values[9] = entropy
    values[10] = lgl / total
    values[11] = hgl / total
    values[12] = srlgl / total
    values[13] = srhgl / total
    values[14] = lrlgl / total
    values[15] = lrhgl / total
