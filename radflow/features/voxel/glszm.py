"""GLSZM feature maps: PyRadiomics 3.0.1 voxel mode of :mod:`radflow.features.glszm`.

The kernel of each centre is the box of :mod:`radflow.features.voxel._kernel`; its zones are
the 26-connected (8 with ``force2D``, in-plane) groups of equal grey level among the voxels of
the box that may count (``kernel_mask``: the ROI when ``maskedKernel``), so zones are cut at the
kernel and ROI boundary exactly as PyRadiomics' ``calculate_glszm`` cuts them with its bounding
box. The features are those of the segment module evaluated on the kernel's zones
(:func:`radflow.features.voxel._sizes.size_features`).

Zones change non-locally when a kernel moves (one voxel can join or split zones), so each kernel
is labelled anew. From ``kernelRadius`` 2 on, the work shared by the kernels of a line is done
once (:func:`_slid_zone_maps`): each plane x of the line's slab is labelled on its own, with
the pairs of its zones that touch zones of plane x - 1, and a kernel joins the plane zones of
its planes by those pairs in a small union-find. At ``kernelRadius`` 1 (27 voxels) a flood
fill over the box is as fast: the fill follows precomputed links: each voxel's
same-level neighbours as a bit set, cut to the box by a mask chosen by the voxel's place at the
box faces, so it visits each kernel voxel once and only its zone's links; a stamp array stands
in for clearing a visited mask, and no matrix is built. Each kernel first copies its box into
small local arrays (grey levels, links already cut to the box), so the fill runs on flat
indices into a few hundred contiguous entries instead of 3D indices into the whole array.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np

from radflow.features import glszm
from radflow.features._checks import requested_features
from radflow.features._directions import offsets
from radflow.features.voxel._kernel import document_maps, half_widths, kernel_box, line_starts
from radflow.features.voxel._sizes import (
    SIZE_COLUMNS,
    lowest_bit,
    neighbour_bits,
    prepare,
    room_masks,
    size_features,
    size_workspace,
)

__all__ = ["compute_maps"]


@numba.njit(cache=True)
def _zone_maps(levels, bits, masks, steps, centres, widths, n_sizes, workspace, out):
    """Fill ``out[c]`` with the size features of the zones in the kernel of ``centres[c]``.

    ``bits`` (:func:`~radflow.features.voxel._sizes.neighbour_bits`, alpha 0) lists each
    voxel's same-level neighbours; ``masks`` (:func:`~radflow.features.voxel._sizes.room_masks`)
    drops those outside the kernel box. Each kernel first copies its box into small local
    arrays (levels, links, one flat index per voxel), so the fill runs on flat indices in a
    few hundred contiguous entries.
    """
    nz, ny, nx = levels.shape
    n_steps = steps.shape[0]
    kvol = n_sizes - 1
    local_levels = np.empty(kvol, np.int32)
    local_links = np.empty(kvol, np.uint64)
    stamp = np.zeros(kvol, np.int64)
    local_steps = np.empty(n_steps, np.int64)
    stack = np.empty(kvol, np.int64)
    zone_levels = np.empty(kvol, np.int64)
    zone_sizes = np.empty(kvol, np.int64)
    for c in range(centres.shape[0]):
        z0, z1, y0, y1, x0, x1 = kernel_box(
            centres[c, 0], centres[c, 1], centres[c, 2], nz, ny, nx,
            widths[0], widths[1], widths[2],
        )  # fmt: skip
        bx = x1 - x0
        bxy = (y1 - y0) * bx
        for a in range(n_steps):
            local_steps[a] = steps[a, 0] * bxy + steps[a, 1] * bx + steps[a, 2]
        i = 0
        for z in range(z0, z1):
            lz = min(z - z0, 1)
            hz = min(z1 - 1 - z, 1)
            for y in range(y0, y1):
                ly = min(y - y0, 1)
                hy = min(y1 - 1 - y, 1)
                for x in range(x0, x1):
                    level = levels[z, y, x]
                    local_levels[i] = level
                    if level != 0:
                        local_links[i] = (
                            bits[z, y, x, 0]
                            & masks[lz, hz, ly, hy, min(x - x0, 1), min(x1 - 1 - x, 1), 0]
                        )
                    i += 1
        n_box = i
        mark = c + 1
        n_zones = 0
        for i in range(n_box):
            level = local_levels[i]
            if level == 0 or stamp[i] == mark:
                continue
            stamp[i] = mark
            stack[0] = i
            top = 1
            size = 0
            while top > 0:
                top -= 1
                p = stack[top]
                size += 1
                links = local_links[p]
                while links:
                    q = p + local_steps[lowest_bit(links)]
                    links &= links - np.uint64(1)
                    if stamp[q] != mark:
                        stamp[q] = mark
                        stack[top] = q
                        top += 1
            zone_levels[n_zones] = level
            zone_sizes[n_zones] = size
            n_zones += 1
        size_features(zone_levels, zone_sizes, n_zones, n_sizes, workspace, out[c])


@numba.njit(cache=True)
def _label_plane(levels, bits, steps, geometry, x, previous, planes, slot, seen, stack):
    """Zones of plane ``x`` of the slab ``[z0, z1) x [y0, y1)`` alone, and their links to plane
    ``x - 1`` (held in slot ``previous``; -1: not held, no links), into ``planes`` slot
    ``slot``: see :func:`_slid_zone_maps`. ``geometry``: the slab's voxels (z, y, in-plane
    links mask, links-to-plane-x-1 mask, in (z, y) order) and its row length. ``seen`` (int64,
    (slab, slab)) is scratch, zero on entry and on return; ``stack`` scratch."""
    comp, size, level, pairs, n = planes
    zs, ys, in_plane, to_previous, ny = geometry
    n_voxels = zs.shape[0]
    for i in range(n_voxels):
        comp[slot, i] = -1
    n_comps = 0
    for i in range(n_voxels):
        g = levels[zs[i], ys[i], x]
        if g == 0 or comp[slot, i] >= 0:
            continue
        comp[slot, i] = n_comps
        stack[0] = i
        top = 1
        count = 0
        while top > 0:  # in-plane flood fill
            top -= 1
            p = stack[top]
            count += 1
            links = bits[zs[p], ys[p], x, 0] & in_plane[p]
            while links:
                a = lowest_bit(links)
                links &= links - np.uint64(1)
                q = p + steps[a, 0] * ny + steps[a, 1]
                if comp[slot, q] < 0:
                    comp[slot, q] = n_comps
                    stack[top] = q
                    top += 1
        size[slot, n_comps] = count
        level[slot, n_comps] = g
        n_comps += 1
    n[slot, 0] = n_comps
    n_pairs = 0
    if previous >= 0:  # the distinct (zone in x - 1, zone in x) pairs that touch
        for i in range(n_voxels):
            if comp[slot, i] < 0:
                continue
            links = bits[zs[i], ys[i], x, 0] & to_previous[i]
            while links:
                a = lowest_bit(links)
                links &= links - np.uint64(1)
                before = comp[previous, i + steps[a, 0] * ny + steps[a, 1]]
                here = comp[slot, i]
                if seen[before, here] == 0:
                    seen[before, here] = 1
                    pairs[slot, n_pairs, 0] = before
                    pairs[slot, n_pairs, 1] = here
                    n_pairs += 1
        for m in range(n_pairs):
            seen[pairs[slot, m, 0], pairs[slot, m, 1]] = 0
    n[slot, 1] = n_pairs


@numba.njit(cache=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True)
def _slid_zone_maps(
    levels, bits, masks, steps, left, centres, starts, widths, n_sizes, workspace, out
):
    """:func:`_zone_maps` with the planes of a line's slab labelled once, not per kernel.

    Along a line of centres the kernel box's z and y bounds are fixed, so each plane ``x`` of
    the slab is labelled once on its own (its in-plane zones, sizes and levels) together with
    the distinct pairs of its zones and those of plane ``x - 1`` that touch (26- or
    8-connected, same level). A kernel's zones are then the unions of the plane zones of its
    planes joined by the pairs between consecutive planes: a union-find over a few dozen plane
    zones instead of a flood fill over every voxel and link of the box. The union keeps the
    smallest index as root and zones are listed by root, so the entries come in an order fixed
    by the kernel's content, whatever the window's path.
    """
    nz, ny, nx = levels.shape
    slots = 2 * widths[2] + 2  # the planes a box spans, and the one before it
    slab = (2 * widths[0] + 1) * (2 * widths[1] + 1)
    planes = (
        np.empty((slots, slab), np.int64),  # zone of each slab voxel in its plane (-1: none)
        np.empty((slots, slab), np.int64),  # size of each plane zone
        np.empty((slots, slab), np.int64),  # level of each plane zone
        np.empty((slots, 9 * slab, 2), np.int64),  # touching pairs: <= 9 links a voxel
        np.zeros((slots, 2), np.int64),  # number of zones, of pairs
    )
    sizes = planes[1]
    plane_levels = planes[2]
    pairs = planes[3]
    counts = planes[4]
    held = np.full(slots, -1, np.int64)
    zs = np.empty(slab, np.int64)
    ys = np.empty(slab, np.int64)
    in_plane = np.empty(slab, np.uint64)
    to_previous = np.empty(slab, np.uint64)
    stack = np.empty(slab, np.int64)
    seen = np.zeros((slab, slab), np.int64)
    kvol = n_sizes - 1
    base = np.empty(slots + 1, np.int64)
    parent = np.empty(kvol, np.int64)
    total = np.empty(kvol, np.int64)
    zone_levels = np.empty(kvol, np.int64)
    zone_sizes = np.empty(kvol, np.int64)
    for line in range(starts.size - 1):
        held[:] = -1  # a new slab: its voxels and their link masks
        k = starts[line]
        z0, z1, y0, y1, x0, x1 = kernel_box(
            centres[k, 0], centres[k, 1], centres[k, 2], nz, ny, nx,
            widths[0], widths[1], widths[2],
        )  # fmt: skip
        i = 0
        for z in range(z0, z1):
            for y in range(y0, y1):
                zs[i] = z
                ys[i] = y
                lz = min(z - z0, 1)
                hz = min(z1 - 1 - z, 1)
                ly = min(y - y0, 1)
                hy = min(y1 - 1 - y, 1)
                in_plane[i] = masks[lz, hz, ly, hy, 0, 0, 0]
                to_previous[i] = left & masks[lz, hz, ly, hy, 1, 1, 0]
                i += 1
        geometry = (zs[:i], ys[:i], in_plane[:i], to_previous[:i], y1 - y0)
        for k in range(starts[line], starts[line + 1]):
            z0, z1, y0, y1, x0, x1 = kernel_box(
                centres[k, 0], centres[k, 1], centres[k, 2], nz, ny, nx,
                widths[0], widths[1], widths[2],
            )  # fmt: skip
            n_nodes = 0
            for x in range(x0, x1):
                slot = x % slots
                if held[slot] != x:
                    previous = (x - 1) % slots
                    if x - 1 < 0 or held[previous] != x - 1:
                        previous = -1
                    _label_plane(
                        levels, bits, steps, geometry, x, previous, planes, slot, seen, stack
                    )
                    held[slot] = x
                base[x - x0] = n_nodes
                n_nodes += counts[slot, 0]
            for node in range(n_nodes):
                parent[node] = node
                total[node] = 0
            for x in range(x0 + 1, x1):
                slot = x % slots
                for m in range(counts[slot, 1]):
                    a = _find(parent, base[x - 1 - x0] + pairs[slot, m, 0])
                    b = _find(parent, base[x - x0] + pairs[slot, m, 1])
                    if a < b:
                        parent[b] = a
                    elif b < a:
                        parent[a] = b
            for x in range(x0, x1):
                slot = x % slots
                for c in range(counts[slot, 0]):
                    total[_find(parent, base[x - x0] + c)] += sizes[slot, c]
            n_zones = 0
            for x in range(x0, x1):
                slot = x % slots
                for c in range(counts[slot, 0]):
                    node = base[x - x0] + c
                    if parent[node] == node:
                        zone_levels[n_zones] = plane_levels[slot, c]
                        zone_sizes[n_zones] = total[node]
                        n_zones += 1
            size_features(zone_levels, zone_sizes, n_zones, n_sizes, workspace, out[k])


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
    """GLSZM features of the kernel of each centre, as PyRadiomics 3.0.1's voxel mode.

    Parameters
    ----------
    image : ndarray of float64, shape (z, y, x)
        Intensities of the box (unused: GLSZM reads grey levels only).
    %(binned)s
    %(kernel_mask)s
    %(centres)s
    %(n_levels)s
    %(kernel_radius)s
    settings : radflow.params.extraction.Settings
        ``force_2d`` and ``force_2d_dimension`` are read.
    spacing_zyx : sequence of 3 float
        Voxel spacing in mm (unused by GLSZM).
    features : iterable of str, optional
        PyRadiomics names (``radflow.features.glszm.FEATURES``); default those PyRadiomics
        enables by default.

    Returns
    -------
    dict of str to ndarray of float64, shape (n,)
        One value per centre and feature, dimensionless.

    Raises
    ------
    InputError, SettingsError
        Inconsistent arrays, ``kernel_radius`` < 1, unknown feature names.
    """
    names = requested_features(features, glszm.FEATURES, glszm.FAMILY)
    levels, centres = prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius)
    force2d = bool(settings.force_2d)
    widths = half_widths(kernel_radius, force2d, settings.force_2d_dimension)
    steps = offsets((1,), force2d, settings.force_2d_dimension, bidirectional=True)
    steps = np.ascontiguousarray(steps)
    bits = np.zeros(levels.shape + (1,), np.uint64)  # 26 offsets: one word
    neighbour_bits(levels, steps, 0, bits)
    masks = room_masks(steps, 1, 1)
    n_sizes = int(np.prod(2 * widths + 1)) + 1  # zone sizes 1..kernel volume
    workspace = size_workspace(int(n_levels), n_sizes, n_sizes - 1)
    out = np.empty((centres.shape[0], len(SIZE_COLUMNS)), np.float64)
    if kernel_radius >= 2:
        # Planes labelled once per line (see _slid_zone_maps); at kernelRadius 1 a box has 27
        # voxels and the fill per kernel is as fast.
        left = np.uint64(0)
        for a in np.flatnonzero(steps[:, 2] == -1):
            left |= np.uint64(1) << np.uint64(a)
        order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0]))
        ordered = np.ascontiguousarray(centres[order])
        sorted_out = np.empty_like(out)
        if len(ordered):
            _slid_zone_maps(
                levels, bits, masks, steps, left, ordered, line_starts(ordered), widths, n_sizes,
                workspace, sorted_out,
            )  # fmt: skip
        out[order] = sorted_out
    else:
        _zone_maps(levels, bits, masks, steps, centres, widths, n_sizes, workspace, out)
    return {name: out[:, SIZE_COLUMNS[glszm._DEFINITIONS[name][0].__name__]] for name in names}
