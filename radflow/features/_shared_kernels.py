"""Compiled kernels shared by the PyRadiomics-mode and the IBSI texture families.

Each kernel walks a flattened (z, y, x) *level index* (the position of each
voxel's grey level among the matrix rows, -1 outside the ROI, padded by -1
voxels so that no step leaves the array) and counts into a matrix. They check
nothing: the checked public functions that prepare their inputs are
:func:`radflow.features._directions.roi_levels` (PyRadiomics mode, rows for
the grey levels present) and :func:`radflow.features.ibsi.aggregation.level_index`
(IBSI mode, rows for all :math:`N_g` levels); neighbour steps come from
:func:`radflow.features._directions.flat_steps`.

=========================  ==============================  =================================
kernel                     PyRadiomics family              IBSI family
=========================  ==============================  =================================
:func:`count_pairs`        :mod:`~radflow.features.glcm`    :mod:`~radflow.features.ibsi.glcm`
:func:`count_runs`         :mod:`~radflow.features.glrlm`   :mod:`~radflow.features.ibsi.glrlm`
:func:`label_zones`        :mod:`~radflow.features.glszm`   :mod:`~radflow.features.ibsi.glszm`
:func:`dependence_counts`  :mod:`~radflow.features.gldm`    :mod:`~radflow.features.ibsi.ngldm`
:func:`tone_differences`   :mod:`~radflow.features.ngtdm`   :mod:`~radflow.features.ibsi.ngtdm`
=========================  ==============================  =================================

The two modes' definitions of these counts agree; where the IBSI differs
(runs along directions PyRadiomics drops, NGTDM voxels without neighbours)
the IBSI module corrects the counts after the kernel.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["count_pairs", "count_runs", "dependence_counts", "label_zones", "tone_differences"]


@numba.njit(cache=True)
def count_pairs(index, steps, out):
    """Add to ``out[a, i, j]`` the voxels of level index i whose neighbour at ``steps[a]`` has j.

    ``index`` is padded with -1 by the largest offset, so a neighbour is
    never outside; ``out`` has shape (n_offsets, N, N).
    """
    for v in range(index.size):
        i = index[v]
        if i < 0:
            continue
        for a in range(steps.size):
            j = index[v + steps[a]]
            if j >= 0:
                out[a, i, j] += 1.0


@numba.njit(cache=True)
def count_runs(index, steps, out):
    """Add to ``out[a, i, r - 1]`` the runs of level index i and length r along ``steps[a]``.

    ``index`` is padded by one -1 voxel on every side so that runs stop
    there; ``out`` has shape (n_directions, N, max_run).
    """
    for v in range(index.size):
        level = index[v]
        if level < 0:
            continue
        for a in range(steps.size):
            step = steps[a]
            if index[v - step] == level:
                continue  # not the first voxel of its run
            run = 1
            w = v + step
            while index[w] == level:
                run += 1
                w += step
            out[a, level, run - 1] += 1.0


@numba.njit(cache=True)
def label_zones(index, flat_offsets, n_voxels):
    """Level index and size of every zone, by flood fill from each unvisited voxel.

    ``index`` (int32, raveled, -1 outside the ROI, with a margin of -1) is
    consumed: visited voxels are set to -1. ``n_voxels`` (ROI size) bounds
    the number of zones and the stack depth.
    """
    zone_level = np.empty(n_voxels, np.int32)
    zone_size = np.empty(n_voxels, np.int64)
    stack = np.empty(n_voxels, np.int64)
    n_zones = 0
    for start in range(index.shape[0]):
        level = index[start]
        if level < 0:
            continue
        index[start] = -1
        stack[0] = start
        top = 1
        size = 0
        while top > 0:
            top -= 1
            k = stack[top]
            size += 1
            for a in range(flat_offsets.shape[0]):
                j = k + flat_offsets[a]
                if index[j] == level:
                    index[j] = -1
                    stack[top] = j
                    top += 1
        zone_level[n_zones] = level
        zone_size[n_zones] = size
        n_zones += 1
    return zone_level[:n_zones], zone_size[:n_zones]


@numba.njit(cache=True)
def dependence_counts(index, levels, flat_offsets, alpha):
    """Voxel counts per (level index, number of dependent neighbours).

    A neighbour is dependent when its grey level (``levels[index]``) differs
    by at most ``alpha``. ``index`` is raveled, -1 outside the ROI, with a
    margin of -1 at least as wide as the longest offset.
    """
    counts = np.zeros((levels.shape[0], flat_offsets.shape[0] + 1), np.int64)
    for i in range(index.shape[0]):
        li = index[i]
        if li < 0:
            continue
        dependent = 0
        if alpha == 0:
            # Same level index, same level; no gather, no branch (~3x faster).
            for a in range(flat_offsets.shape[0]):
                dependent += index[i + flat_offsets[a]] == li
        else:
            level = levels[li]
            for a in range(flat_offsets.shape[0]):
                lj = index[i + flat_offsets[a]]
                if lj >= 0 and abs(levels[lj] - level) <= alpha:
                    dependent += 1
        counts[li, dependent] += 1
    return counts


@numba.njit(cache=True)
def tone_differences(index, levels, flat_offsets):
    """Voxel count n and summed |level - neighbourhood mean| s per level index.

    Voxels without a neighbour in the ROI count in n and add 0 to s.
    ``index`` is raveled, -1 outside the ROI, with a margin of -1 at least as
    wide as the longest offset.
    """
    counts = np.zeros(levels.shape[0], np.int64)
    sums = np.zeros(levels.shape[0], np.float64)
    for i in range(index.shape[0]):
        li = index[i]
        if li < 0:
            continue
        n_neighbours = 0
        total = 0  # integer: exact like PyRadiomics' double sum, without a float add chain
        for a in range(flat_offsets.shape[0]):
            lj = index[i + flat_offsets[a]]
            if lj >= 0:
                n_neighbours += 1
                total += levels[lj]
        counts[li] += 1
        if n_neighbours > 0:
            sums[li] += abs(levels[li] - total / n_neighbours)
    return counts, sums
