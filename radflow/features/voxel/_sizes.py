r"""What the voxel-mode GLSZM, GLDM and NGTDM maps share: input checks, neighbour bit sets and
the size-matrix features.

:func:`prepare` checks the arrays of ``compute_maps`` (the interface of
:mod:`radflow.features.voxel`) and gives the *level array* the compiled kernels walk: the grey
level of each voxel that may count in a kernel, 0 for the others.

:func:`neighbour_bits` records once, for every voxel, which of its neighbour offsets lead to a
counting voxel within ``alpha`` grey levels (GLSZM: the same level; GLDM: ``gldm_a``), one bit
per offset; :func:`room_masks` gives, for a voxel's place at the faces of a kernel box, the
offsets that stay in the box. A kernel then reads a voxel's links inside its box as
``bits & mask`` (:func:`popcount` to count them, :func:`lowest_bit` to walk them) instead of
testing every offset against the box and the grey levels.

:func:`size_features` evaluates, from the (grey level, size) entries of one kernel, the sixteen
formulas that PyRadiomics' GLSZM and GLDM share (:mod:`radflow.features._texture`, same
notation: :math:`\mathbf{P}(i, j)`, :math:`N_z`, :math:`N_p`, :math:`p_g`, :math:`p_s`) without
going over all :math:`N_g` levels: cells, rows and columns of :math:`\mathbf{P}` are counted
in scratch arrays whose touched entries are listed, visited and reset. PyRadiomics' voxel mode
evaluates dense per-voxel matrices, whose absent grey levels and sizes add exact zeros to
every sum, so the values agree with it to rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from radflow.errors import InputError, SettingsError

__all__ = [
    "SIZE_COLUMNS",
    "cell_features",
    "count_planes",
    "insert_sorted",
    "lowest_bit",
    "neighbour_bits",
    "popcount",
    "prepare",
    "remove_sorted",
    "room_masks",
    "size_features",
    "size_workspace",
]

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
def neighbour_bits(levels, steps, alpha, bits):
    """Set bit ``a % 64`` of ``bits[z, y, x, a // 64]`` when the neighbour of a counting voxel at
    ``steps[a]`` is in the array, counts, and differs from it by at most ``alpha`` levels (0:
    the same level, GLSZM's connectivity)."""
    nz, ny, nx = levels.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                level = levels[z, y, x]
                if level == 0:
                    continue
                for a in range(steps.shape[0]):
                    qz = z + steps[a, 0]
                    qy = y + steps[a, 1]
                    qx = x + steps[a, 2]
                    if qz < 0 or qz >= nz or qy < 0 or qy >= ny or qx < 0 or qx >= nx:
                        continue
                    other = levels[qz, qy, qx]
                    if other != 0 and abs(other - level) <= alpha:
                        bits[z, y, x, a >> 6] |= np.uint64(1) << np.uint64(a & 63)


@numba.njit(cache=True)
def popcount(word):
    """Number of set bits of a uint64."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + (
        (word >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((word * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True)
def room_masks(steps, reach, n_words):
    """``masks[lz, hz, ly, hy, lx, hx]``: the offsets that stay in a box with ``l`` voxels of
    room below and ``h`` above along each axis (room capped at ``reach``)."""
    side = reach + 1
    masks = np.zeros((side, side, side, side, side, side, n_words), np.uint64)
    for lz in range(side):
        for hz in range(side):
            for ly in range(side):
                for hy in range(side):
                    for lx in range(side):
                        for hx in range(side):
                            for a in range(steps.shape[0]):
                                dz = steps[a, 0]
                                dy = steps[a, 1]
                                dx = steps[a, 2]
                                if (
                                    -lz <= dz <= hz and -ly <= dy <= hy and -lx <= dx <= hx
                                ):  # fmt: skip
                                    masks[lz, hz, ly, hy, lx, hx, a >> 6] |= np.uint64(
                                        1
                                    ) << np.uint64(a & 63)
    return masks


#: Position of the lowest set bit from its de Bruijn product (see :func:`lowest_bit`).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_INDEX = np.zeros(64, np.int64)
for _bit in range(64):
    _BIT_INDEX[(((1 << _bit) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = _bit


@numba.njit(cache=True)
def lowest_bit(word):
    """Index of the lowest set bit of a non-zero uint64."""
    low = word & (~word + np.uint64(1))
    return _BIT_INDEX[(low * _DE_BRUIJN) >> np.uint64(58)]


def size_workspace(n_levels: int, n_sizes: int, max_entries: int):
    """Scratch arrays of :func:`size_features` for levels ``1..n_levels``, sizes
    ``1..n_sizes - 1`` and at most ``max_entries`` entries: zeroed counts per cell (cell
    ``(level << shift) + size``), row and column, the lists of cells, rows and columns seen,
    the tables :math:`1/i^2` and :math:`1/j^2` (multiplications instead of divisions per cell),
    :math:`c \\log_2 c` for the counts ``0..max_entries`` (the entropy without a log per cell)
    and ``shift`` (``2**shift >= n_sizes``: a cell's level and size without a division)."""
    inverse_squares_i = np.zeros(n_levels + 1, np.float64)
    inverse_squares_i[1:] = 1.0 / np.arange(1, n_levels + 1, dtype=np.float64) ** 2
    inverse_squares_j = np.zeros(n_sizes, np.float64)
    inverse_squares_j[1:] = 1.0 / np.arange(1, n_sizes, dtype=np.float64) ** 2
    counts = np.arange(max_entries + 1, dtype=np.float64)
    xlogx = counts * np.log2(np.maximum(counts, 1.0))
    shift = max(int(n_sizes - 1).bit_length(), 1)
    return (
        np.zeros((n_levels + 1) << shift, np.float64),
        np.empty(max_entries, np.int64),
        np.zeros(n_levels + 1, np.float64),
        np.empty(max_entries, np.int64),
        np.zeros(n_sizes, np.float64),
        np.empty(n_sizes, np.int64),
        inverse_squares_i,
        inverse_squares_j,
        xlogx,
        shift,
    )


@numba.njit(cache=True)
def size_features(entry_levels, entry_sizes, n, n_sizes, workspace, out):
    r"""Fill ``out`` (16 values, :data:`SIZE_COLUMNS`) from ``n`` (level, size) entries.

    ``entry_levels[:n]`` (>= 1) and ``entry_sizes[:n]`` (1 <= size < n_sizes) hold one zone
    (GLSZM) or voxel (GLDM) each. The entries are counted into the cells, rows (grey levels)
    and columns (sizes) of :math:`\mathbf{P}`, and the sums are taken over the cells met, as
    PyRadiomics sums its matrix. ``workspace`` (:func:`size_workspace`) is left zeroed: only
    the cells, rows and columns met are visited, never all of :math:`N_g` nor all sizes.
    """
    (
        cells, cell_list, rows, row_list, columns, column_list, inv_i2_table, inv_j2_table, xlogx,
        shift,
    ) = workspace  # fmt: skip
    n_cells = 0
    n_rows = 0
    n_columns = 0
    for k in range(n):
        level = entry_levels[k]
        size = entry_sizes[k]
        key = (level << shift) + size
        if cells[key] == 0.0:
            cell_list[n_cells] = key
            n_cells += 1
        cells[key] += 1.0
        if rows[level] == 0.0:
            row_list[n_rows] = level
            n_rows += 1
        rows[level] += 1.0
        if columns[size] == 0.0:  # keep the sizes seen ascending
            n_columns = insert_sorted(column_list, n_columns, size)
        columns[size] += 1.0
    cell_features(
        cells, cell_list, n_cells, rows, row_list, n_rows, columns, column_list, n_columns,
        shift, float(n), inv_i2_table, inv_j2_table, xlogx, out,
    )  # fmt: skip
    for k in range(n_cells):
        cells[cell_list[k]] = 0.0
    for k in range(n_rows):
        rows[row_list[k]] = 0.0
    for k in range(n_columns):
        columns[column_list[k]] = 0.0


@numba.njit(cache=True)
def cell_features(
    cells, cell_list, n_cells, rows, row_list, n_rows, columns, column_list, n_columns, shift,
    nz, inv_i2_table, inv_j2_table, xlogx, out,
):  # fmt: skip
    """The 16 values of :func:`size_features` from a counted matrix: ``cells`` (indexed by
    ``(level << shift) + size``) listed in ``cell_list[:n_cells]``, row sums ``rows`` listed
    in ``row_list[:n_rows]``, column sums ``columns`` listed (ascending) in
    ``column_list[:n_columns]``, ``nz`` entries in all (integer counts: the entropy is
    :math:`\\log_2 N_z - \\sum c \\log_2 c / N_z` from the table ``xlogx``). Changes
    nothing."""
    size_mask = (1 << shift) - 1
    s_inv_j2 = 0.0
    s_j2 = 0.0
    s_inv_i2 = 0.0
    s_i2 = 0.0
    s_inv_i2j2 = 0.0
    s_i2_j2 = 0.0
    s_j2_i2 = 0.0
    s_i2j2 = 0.0
    n_voxels = 0.0
    entropy = 0.0
    for k in range(n_cells):
        key = cell_list[k]
        count = cells[key]
        level = key >> shift
        size = key & size_mask
        i2 = float(level) * level
        j2 = float(size) * size
        inv_i2 = inv_i2_table[level]
        inv_j2 = inv_j2_table[size]
        s_inv_j2 += count * inv_j2
        s_j2 += count * j2
        s_inv_i2 += count * inv_i2
        s_i2 += count * i2
        s_inv_i2j2 += count * (inv_i2 * inv_j2)
        s_i2_j2 += count * (i2 * inv_j2)
        s_j2_i2 += count * (j2 * inv_i2)
        s_i2j2 += count * (i2 * j2)
        n_voxels += count * size
        entropy -= xlogx[int(count)]
    gln = 0.0
    mean_i = 0.0
    for k in range(n_rows):
        row = rows[row_list[k]]
        gln += row * row
        mean_i += row / nz * row_list[k]
    var_i = 0.0
    for k in range(n_rows):
        var_i += rows[row_list[k]] / nz * (row_list[k] - mean_i) ** 2
    szn = 0.0
    mean_j = 0.0
    for k in range(n_columns):
        j = column_list[k]
        column = columns[j]
        szn += column * column
        mean_j += column / nz * j
    var_j = 0.0
    for k in range(n_columns):
        j = column_list[k]
        var_j += columns[j] / nz * (j - mean_j) ** 2
    out[0] = s_inv_j2 / nz
    out[1] = s_j2 / nz
    out[2] = gln / nz
    out[3] = gln / (nz * nz)
    out[4] = szn / nz
    out[5] = szn / (nz * nz)
    out[6] = nz / n_voxels
    out[7] = var_i
    out[8] = var_j
    out[9] = np.log2(nz) + entropy / nz
    out[10] = s_inv_i2 / nz
    out[11] = s_i2 / nz
    out[12] = s_inv_i2j2 / nz
    out[13] = s_i2_j2 / nz
    out[14] = s_j2_i2 / nz
    out[15] = s_i2j2 / nz


@numba.njit(cache=True)
def count_planes(levels, z0, z1, y0, y1, xa, xb, hist, present, n_present, step):
    """Add ``step`` (1 or -1) to the voxel counts ``hist`` of the levels of planes ``[xa, xb)``
    of the slab ``[z0, z1) x [y0, y1)`` (level 0: not counted); keep ``present[:n_present]``,
    the levels with a count, ascending (a level enters as its count goes 0 -> 1 and leaves as
    it goes back to 0). Returns its new length."""
    for x in range(xa, xb):
        for z in range(z0, z1):
            for y in range(y0, y1):
                level = levels[z, y, x]
                if level == 0:
                    continue
                hist[level] += step
                if step > 0 and hist[level] == 1:
                    n_present = insert_sorted(present, n_present, level)
                elif step < 0 and hist[level] == 0:
                    n_present = remove_sorted(present, n_present, level)
    return n_present


@numba.njit(cache=True)
def insert_sorted(values, n, value):
    """Insert ``value`` (not there yet) into the ascending ``values[:n]``; returns ``n + 1``."""
    k = n
    while k > 0 and values[k - 1] > value:
        values[k] = values[k - 1]
        k -= 1
    values[k] = value
    return n + 1


@numba.njit(cache=True)
def remove_sorted(values, n, value):
    """Remove ``value`` (there once) from the ascending ``values[:n]``; returns ``n - 1``."""
    k = 0
    while values[k] != value:
        k += 1
    for m in range(k, n - 1):
        values[m] = values[m + 1]
    return n - 1
