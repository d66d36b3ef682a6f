"""GLSZM feature maps: PyRadiomics 3.0.1 voxel mode of :mod:`radflow.features.glszm`.

The kernel of each centre is the box of :mod:`radflow.features.voxel._kernel`; its zones are
the 26-connected (8 with ``force2D``, in-plane) groups of equal grey level among the voxels of
the box that may count (``kernel_mask``: the ROI when ``maskedKernel``), so zones are cut at the
kernel and ROI boundary exactly as PyRadiomics' ``calculate_glszm`` cuts them with its bounding
box. The features are those of the segment module evaluated on the kernel's zones
(:func:`radflow.features.voxel._sizes.size_features`).

Zones change non-locally when a kernel moves (one voxel can join or split zones), so each kernel
is labelled anew by a flood fill over its box. The fill follows precomputed links: each voxel's
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
from radflow.features.voxel._kernel import document_maps, half_widths, kernel_box
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
    _zone_maps(levels, bits, masks, steps, centres, widths, n_sizes, workspace, out)
    return {name: out[:, SIZE_COLUMNS[glszm._DEFINITIONS[name][0].__name__]] for name in names}
