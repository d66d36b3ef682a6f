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
offset; no matrix is built.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np

from radflow.features import gldm
from radflow.features._checks import requested_features
from radflow.features._directions import offsets
from radflow.features.voxel._kernel import document_maps, half_widths, kernel_box
from radflow.features.voxel._sizes import (
    SIZE_COLUMNS,
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
    _dependence_maps(
        levels, bits, masks, reach, centres, widths, n_sizes, kernel_volume, workspace, out
    )
    values = {name: out[:, SIZE_COLUMNS[gldm._DEFINITIONS[name][0].__name__]] for name in names}
    if "DependencePercentage" in values:  # N_p = N_z in GLDM (one entry per voxel)
        values["DependencePercentage"] = np.ones(centres.shape[0])
    return values
