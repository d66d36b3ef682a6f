r"""What the voxel-mode GLSZM, GLDM and NGTDM maps share: input checks and size-matrix features.

:func:`prepare` checks the arrays of ``compute_maps`` (the interface of
:mod:`radflow.features.voxel`) and gives the *level array* the compiled kernels walk: the grey
level of each voxel that may count in a kernel, 0 for the others.

:func:`size_features` evaluates, from the (grey level, size) entries of one kernel, the sixteen
formulas that PyRadiomics' GLSZM and GLDM share (:mod:`radflow.features._texture`, same
notation: :math:`\mathbf{P}(i, j)`, :math:`N_z`, :math:`N_p`, :math:`p_g`, :math:`p_s`) without
building the matrix: the entries are sorted by (level, size), so rows and cells of
:math:`\mathbf{P}` are runs of the sorted keys, and the column sums go into a small scratch
array indexed by size. PyRadiomics' voxel mode evaluates its dense per-voxel matrices, whose
absent grey levels and sizes contribute exact zeros to every sum, so the values agree with it
to rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from radflow.errors import InputError, SettingsError

__all__ = ["SIZE_COLUMNS", "prepare", "size_features"]

#: Column of each shared formula in the rows :func:`size_features` fills (names of
#: :mod:`radflow.features._texture`).
SIZE_COLUMNS = {
    "small_emphasis": 0,
    "large_emphasis": 1,
    "grey_non_uniformity": 2,
    "grey_non_uniformity_normalized": 3,
    "size_non_uniformity": 4,
    "size_non_uniformity_normalized": 5,
    "percentage": 6,
    "grey_variance": 7,
    "size_variance": 8,
    "entropy": 9,
    "low_grey_emphasis": 10,
    "high_grey_emphasis": 11,
    "small_low_grey_emphasis": 12,
    "small_high_grey_emphasis": 13,
    "large_low_grey_emphasis": 14,
    "large_high_grey_emphasis": 15,
}

_EPS = np.spacing(1)


def prepare(image, binned, kernel_mask, centres, n_levels, kernel_radius):
    """Checked inputs of a ``compute_maps``: ``(levels, centres)`` for the compiled kernels.

    Returns
    -------
    levels : ndarray of int32, shape (z, y, x), C order
        ``binned`` where ``kernel_mask``, 0 elsewhere.
    centres : ndarray of int64, shape (n, 3), C order

    Raises
    ------
    InputError
        Shapes that differ, a non-integer ``binned``, a grey level outside
        ``0..n_levels`` in the kernel region or 0 at a centre, centres outside the array.
    SettingsError
        ``kernel_radius`` < 1 or ``n_levels`` < 1.
    """
    binned = np.asarray(binned)
    kernel_mask = np.asarray(kernel_mask)
    if binned.ndim != 3:
        raise InputError("binned", f"expected a 3D (z, y, x) array, got shape {binned.shape}")
    if not np.issubdtype(binned.dtype, np.integer):
        raise InputError("binned", f"expected integer grey levels, got dtype {binned.dtype}")
    for name, array in (("image", image), ("kernel_mask", kernel_mask)):
        if np.shape(array) != binned.shape:
            raise InputError(
                name, f"shape {np.shape(array)} differs from binned shape {binned.shape}"
            )
    if isinstance(kernel_radius, bool) or int(kernel_radius) != kernel_radius or kernel_radius < 1:
        raise SettingsError(f"kernelRadius must be an integer >= 1, got {kernel_radius!r}")
    if isinstance(n_levels, bool) or int(n_levels) != n_levels or n_levels < 1:
        raise SettingsError(f"n_levels must be an integer >= 1, got {n_levels!r}")
    centres = np.ascontiguousarray(np.asarray(centres, dtype=np.int64).reshape(-1, 3))
    if centres.size and (
        centres.min() < 0 or np.any(centres.max(axis=0) >= np.asarray(binned.shape))
    ):
        raise InputError("centres", f"voxel indices outside the array of shape {binned.shape}")
    levels = np.where(kernel_mask.astype(bool), binned, 0).astype(np.int32)
    if levels.size and (levels.min() < 0 or levels.max() > n_levels):
        raise InputError(
            "binned", f"grey levels in the kernel region must lie in 0..{n_levels} (n_levels)"
        )
    if centres.size and levels[tuple(centres.T)].min() < 1:
        raise InputError(
            "centres", "every centre must be a voxel of the kernel region (level >= 1)"
        )
    return np.ascontiguousarray(levels), centres


@numba.njit(cache=True)
def size_features(keys, n, n_sizes, scratch, out):
    """Fill ``out`` (16 values, :data:`SIZE_COLUMNS`) from ``n`` (level, size) entries.

    ``keys[:n]`` hold ``level * n_sizes + size`` (level >= 1, 1 <= size < n_sizes), one per
    zone (GLSZM) or voxel (GLDM); they are sorted in place. ``scratch`` (float64, length
    ``n_sizes``, all zero) is left all zero.
    """
    keys[:n].sort()
    nz = float(n)
    s_inv_j2 = 0.0
    s_j2 = 0.0
    s_inv_i2 = 0.0
    s_i2 = 0.0
    s_inv_i2j2 = 0.0
    s_i2_j2 = 0.0
    s_j2_i2 = 0.0
    s_i2j2 = 0.0
    n_voxels = 0.0
    for k in range(n):
        i = float(keys[k] // n_sizes)
        j = float(keys[k] % n_sizes)
        i2 = i * i
        j2 = j * j
        s_inv_j2 += 1.0 / j2
        s_j2 += j2
        s_inv_i2 += 1.0 / i2
        s_i2 += i2
        s_inv_i2j2 += 1.0 / (i2 * j2)
        s_i2_j2 += i2 / j2
        s_j2_i2 += j2 / i2
        s_i2j2 += i2 * j2
        n_voxels += j
        scratch[keys[k] % n_sizes] += 1.0
    # Rows (grey levels) and cells of P are runs of the sorted keys.
    gln = 0.0
    mean_i = 0.0
    entropy = 0.0
    k = 0
    while k < n:
        level = keys[k] // n_sizes
        row = 0.0
        while k < n and keys[k] // n_sizes == level:
            key = keys[k]
            cell = 0.0
            while k < n and keys[k] == key:
                cell += 1.0
                k += 1
            p = cell / nz
            entropy -= p * np.log2(p + _EPS)
            row += cell
        gln += row * row
        mean_i += row / nz * level
    var_i = 0.0
    k = 0
    while k < n:
        level = keys[k] // n_sizes
        row = 0.0
        while k < n and keys[k] // n_sizes == level:
            row += 1.0
            k += 1
        var_i += row / nz * (level - mean_i) ** 2
    # Columns (sizes) from the scratch counts.
    szn = 0.0
    mean_j = 0.0
    for j in range(1, n_sizes):
        column = scratch[j]
        if column != 0.0:
            szn += column * column
            mean_j += column / nz * j
    var_j = 0.0
    for j in range(1, n_sizes):
        column = scratch[j]
        if column != 0.0:
            var_j += column / nz * (j - mean_j) ** 2
            scratch[j] = 0.0
    out[0] = s_inv_j2 / nz
    out[1] = s_j2 / nz
    out[2] = gln / nz
    out[3] = gln / (nz * nz)
    out[4] = szn / nz
    out[5] = szn / (nz * nz)
    out[6] = nz / n_voxels
    out[7] = var_i
    out[8] = var_j
    out[9] = entropy
    out[10] = s_inv_i2 / nz
    out[11] = s_i2 / nz
    out[12] = s_inv_i2j2 / nz
    out[13] = s_i2_j2 / nz
    out[14] = s_j2_i2 / nz
    out[15] = s_i2j2 / nz
