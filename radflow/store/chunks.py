"""Chunk shape of the stored volumes.

A chunk is the unit of every read: about 2 MiB keeps the number of files per
series small (a 512 x 512 x 300 CT is 80 chunks) while an ROI's bounding box
still reads little more than itself.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Target bytes per uncompressed chunk.
CHUNK_BYTES = 2 * 1024 * 1024
#: In-plane chunk edge in voxels: 128 x 128 tiles a 512 x 512 slice in 16.
PLANE_EDGE = 128


def chunk_shape(
    shape_zyx: Sequence[int], itemsize: int, *, target_bytes: int = CHUNK_BYTES
) -> tuple[int, int, int]:
    """Chunk shape of about ``target_bytes`` for a (z, y, x) volume.

    In-plane the chunk is ``PLANE_EDGE`` voxels (or the whole plane when it is
    smaller); along z it takes as many slices as fit in ``target_bytes``, at
    least one and at most the volume's depth. An int16 CT gets
    (64, 128, 128), a float32 PET (32, 128, 128).

    Parameters
    ----------
    shape_zyx : sequence of 3 int
        Volume shape in voxels, (z, y, x).
    itemsize : int
        Bytes per voxel of the stored dtype.
    target_bytes : int, optional
        Wanted uncompressed bytes per chunk.

    Returns
    -------
    tuple of 3 int
        Chunk shape (z, y, x), each between 1 and the volume's size.

    Examples
    --------
    >>> chunk_shape((300, 512, 512), 2)
    (64, 128, 128)
    >>> chunk_shape((20, 100, 90), 4)
    (20, 100, 90)
    """
    shape_zyx = tuple(int(n) for n in shape_zyx)
    if len(shape_zyx) != 3 or min(shape_zyx) < 1:
        raise ValueError(f"shape_zyx must be 3 positive sizes, got {shape_zyx}")
    if int(itemsize) < 1:
        raise ValueError(f"itemsize must be a positive number of bytes, got {itemsize}")
    if int(target_bytes) < 1:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    nz, ny, nx = shape_zyx
    cy, cx = min(ny, PLANE_EDGE), min(nx, PLANE_EDGE)
    cz = int(target_bytes) // (int(itemsize) * cy * cx)
    return (max(1, min(nz, cz)), cy, cx)
