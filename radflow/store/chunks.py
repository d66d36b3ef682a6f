"""Chunks of the stored volumes: their shape, and reads that fail loudly on a damaged chunk.

A chunk is the unit of every read: about 2 MiB keeps the number of files per
series small (a 512 x 512 x 300 CT is 80 chunks) while an ROI's bounding box
still reads little more than itself.

zarr writes no file for a chunk whose voxels all equal the fill value (0), and
reads a missing chunk file as zeros: a chunk file lost after writing would read
as zeros without a word. So the store records, when it writes an array, which
chunks have a file (:func:`written_runs`, in the array's ``zarr.json``
attributes under ``radflow.chunks_written``), and reads through
:class:`CheckedArray`, which refuses to read a recorded chunk whose file is gone
and names the chunk file that cannot be decoded. Arrays written before the record
existed are read unchecked for missing chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radflow.errors import InputError

if TYPE_CHECKING:
    import zarr

__all__ = [
    "CHUNKS_WRITTEN",
    "CheckedArray",
    "DamagedChunkError",
    "chunk_shape",
    "parse_runs",
    "written_runs",
]

#: Key, under an array's ``radflow`` attributes, of the runs of chunks that have a file.
CHUNKS_WRITTEN = "chunks_written"
#: Errors zarr's codecs raise for a chunk file they cannot decode (blosc: RuntimeError).
_DECODE_ERRORS = (RuntimeError, ValueError)


class DamagedChunkError(InputError):
    """A chunk file of the store is missing or cannot be decoded (``source``: the chunk file).

    Bad input, but not of the series' source data: restoring the file from a
    backup mends it without changing the series' fingerprint, so a batch run
    retries it rather than recording it as a known, permanent failure.
    """


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


def _grid(array: zarr.Array) -> tuple[int, ...]:
    """The number of chunks along each axis."""
    return tuple(-(-int(n) // int(c)) for n, c in zip(array.shape, array.chunks))


def _chunk_file(array: zarr.Array, folder: Path, index: Sequence[int]) -> Path:
    return folder / array.metadata.encode_chunk_key(tuple(int(i) for i in index))


def written_runs(array: zarr.Array, folder: Path) -> list[list[int]]:
    """Which chunks of a just-written array have a file, as runs of flat chunk indices.

    Parameters
    ----------
    array : zarr.Array
        The array, written.
    folder : pathlib.Path
        The array's folder (the one holding its ``zarr.json``).

    Returns
    -------
    list of [start, stop]
        Runs of C-order flat chunk indices, stop excluded: ``[[0, 80]]`` when
        every chunk of an 80-chunk array has a file.
    """
    grid = _grid(array)
    present = [_chunk_file(array, folder, index).is_file() for index in np.ndindex(*grid)]
    runs: list[list[int]] = []
    for flat, has_file in enumerate(present):
        if not has_file:
            continue
        if runs and runs[-1][1] == flat:
            runs[-1][1] = flat + 1
        else:
            runs.append([flat, flat + 1])
    return runs


def parse_runs(runs: Any, count: int, source: str | Path) -> np.ndarray:
    """The runs of :func:`written_runs` as one flag per chunk (bool, C order), checked."""
    flags = np.zeros(count, dtype=bool)
    if not isinstance(runs, list):
        raise InputError(source, f"radflow.{CHUNKS_WRITTEN} must be a list of [start, stop] runs")
    for run in runs:
        if not (
            isinstance(run, list)
            and len(run) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) for i in run)
            and 0 <= run[0] < run[1] <= count
        ):
            raise InputError(
                source, f"radflow.{CHUNKS_WRITTEN}: bad run {run!r} for {count} chunks"
            )
        flags[run[0] : run[1]] = True
    return flags


def _ranges(key: Any, shape: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """The (start, stop) index range a basic index reads along each axis; None: unknown."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) != len(shape):
        return None
    out = []
    for item, size in zip(key, shape):
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            if step != 1:
                return None
            out.append((start, max(start, stop)))
        elif isinstance(item, (int, np.integer)) and -size <= int(item) < size:
            index = int(item) % size
            out.append((index, index + 1))
        else:
            return None
    return out


class CheckedArray:
    """A stored zarr array whose reads fail loudly on a damaged chunk.

    Reads as the zarr array does (``array[key]`` with basic indices), but
    raises :class:`DamagedChunkError` (an :class:`~radflow.errors.InputError`),
    naming the series and the chunk file, for a chunk the array was written
    with whose file is gone (zarr would read it as zeros) and for a chunk file
    that cannot be decoded.

    Parameters
    ----------
    array : zarr.Array
        The stored array.
    folder : pathlib.Path
        The array's folder.
    written : numpy.ndarray of bool or None
        One flag per chunk (C order): the chunk had a file when written
        (:func:`parse_runs`); None for arrays written without the record.
    what : str
        The array in words, for messages (``"image of series P001/CT-1"``).
    """

    def __init__(
        self, array: zarr.Array, folder: Path, written: np.ndarray | None, what: str
    ) -> None:
        self.array = array
        self.folder = Path(folder)
        self.written = written
        self.what = what

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self.array.chunks)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def size(self) -> int:
        return int(self.array.size)

    def __repr__(self) -> str:
        return f"CheckedArray({self.what}, shape={self.shape}, chunks={self.chunks})"

    def _chunks_read(self, key: Any) -> np.ndarray:
        """Grid indices (n, ndim) of the chunks a read of ``key`` touches."""
        ranges = _ranges(key, self.shape)
        if ranges is None:  # an index this class does not map: every chunk
            ranges = [(0, n) for n in self.shape]
        if any(start >= stop for start, stop in ranges):
            return np.zeros((0, self.ndim), dtype=np.int64)
        axes = [
            np.arange(start // c, (stop - 1) // c + 1)
            for (start, stop), c in zip(ranges, self.chunks)
        ]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)

    def _where(self, index: Sequence[int]) -> tuple[Path, str]:
        path = _chunk_file(self.array, self.folder, index)
        return path, f"chunk {tuple(int(i) for i in index)} of the {self.what}"

    def __getitem__(self, key: Any) -> np.ndarray:
        touched = self._chunks_read(key)
        if self.written is not None and len(touched):
            flat = np.ravel_multi_index(touched.T, _grid(self.array))
            for index in touched[self.written[flat]]:
                path, what = self._where(index)
                if not path.is_file():
                    raise DamagedChunkError(
                        path,
                        f"{what} is missing on disk (it was written, and would now read as "
                        "zeros): restore the store from a backup or ingest the series again",
                    )
        try:
            return self.array[key]
        except _DECODE_ERRORS as exc:
            raise self._decode_error(touched, exc) from exc

    def _decode_error(self, touched: np.ndarray, exc: Exception) -> DamagedChunkError:
        """The error naming the first chunk of a failed read that cannot be decoded alone."""
        for index in touched:
            path, what = self._where(index)
            if not path.is_file():
                continue
            box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, self.chunks))
            try:
                self.array[box]
            except _DECODE_ERRORS as chunk_exc:
                reason = str(chunk_exc)
                if "checksum" in reason.lower():  # zarr's message quotes the raw bytes: noise
                    reason = "its CRC-32C checksum does not match: truncated or altered"
                return DamagedChunkError(
                    path,
                    f"{what} cannot be decoded ({reason}): the file is damaged; restore "
                    "the store from a backup or ingest the series again",
                )
        return DamagedChunkError(self.folder, f"the {self.what} cannot be read: {exc}")
