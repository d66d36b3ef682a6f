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

Speed: the neighbours of a voxel at Chebyshev distance ``d`` form the shell between two cubes,
and a cube clipped to the kernel box is a box, so the count and level sum of a voxel's
neighbours in its kernel come from summed-volume tables of the whole array (exact int64) in 8
reads per cube, whatever the kernel's place or size; no neighbour is visited. Per-level sums go
into a scratch array indexed by grey level and are reset through the list of levels seen.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np

from radflow.features import ngtdm
from radflow.features._checks import requested_features
from radflow.features._directions import offsets
from radflow.features.voxel._kernel import document_maps, half_widths, kernel_box
from radflow.features.voxel._sizes import prepare

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
    counts, totals = _summed_volumes(levels)
    out = np.empty((centres.shape[0], len(_COLUMNS)), np.float64)
    _tone_maps(levels, counts, totals, distances, on, centres, widths, int(n_levels), out)
    return {name: out[:, _COLUMNS[name]] for name in names}
