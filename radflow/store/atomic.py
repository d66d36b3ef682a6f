"""Write a file or directory under a temporary name, then rename it into place.

Readers never see a half-written output: until the final rename the data lies
under a hidden name (``.<name>.tmp-<pid>-<random>``) in the same parent folder,
which every radflow reader ignores. A process killed midway leaves only such a
hidden entry behind; the next write of the same name removes it.

One writer per output name at a time is assumed (the pipeline writes each
series and each table from one task); writers of different names in the same
folder never touch each other's temporaries.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP = ".tmp-"
_OLD = ".old-"


def is_temporary(name: str) -> bool:
    """True when ``name`` is a temporary or replaced entry left by this module."""
    return name.startswith(".") and (_TMP in name or _OLD in name)


def _hidden_sibling(final: Path, tag: str) -> Path:
    return final.parent / f".{final.name}{tag}{os.getpid()}-{secrets.token_hex(4)}"


def stale_entries(final: str | os.PathLike) -> list[Path]:
    """Temporaries and replaced versions of ``final`` left by interrupted writes."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    prefixes = (f".{final.name}{_TMP}", f".{final.name}{_OLD}")
    return sorted(p for p in final.parent.iterdir() if p.name.startswith(prefixes))


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def clean_stale(final: str | os.PathLike) -> list[Path]:
    """Delete what :func:`stale_entries` finds; return the deleted paths."""
    stale = stale_entries(final)
    for path in stale:
        _remove(path)
    return stale


def _fsync_path(path: Path) -> None:
    if os.name == "nt" and path.is_dir():  # directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync_path(Path(folder, name))
        _fsync_path(Path(folder))


def _publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, moving an older ``final`` away first."""
    old = None
    if final.exists() or final.is_symlink():
        # Directories cannot be replaced by one rename: the old one goes to a
        # hidden name first, and comes back if the second rename fails.
        old = _hidden_sibling(final, _OLD)
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    _fsync_path(final.parent)
    if old is not None:
        _remove(old)


@contextmanager
def atomic_dir(final: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Build a directory under a temporary name; rename it to ``final`` on success.

    Parameters
    ----------
    final : str or path-like
        The directory to create or replace. Its parent is created if needed.
    fsync : bool, optional
        Flush every file to disk before the rename, so that the rename never
        publishes data a power cut could still lose.

    Yields
    ------
    pathlib.Path
        An empty directory beside ``final`` to write into.

    Notes
    -----
    On an exception the temporary directory is deleted and ``final`` is left
    as it was. An older ``final`` is renamed away, the new one renamed in, and
    the old one deleted: a reader sees the old version, nothing, or the new
    version, never a mixture.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final)
    tmp = _hidden_sibling(final, _TMP)
    tmp.mkdir()
    try:
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        _publish(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_file(final: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Write a file under a temporary name; rename it to ``final`` on success.

    Parameters
    ----------
    final : str or path-like
        The file to create or replace. Its parent is created if needed.
    fsync : bool, optional
        Flush the file to disk before the rename.

    Yields
    ------
    pathlib.Path
        A path beside ``final`` (not yet created) for the caller to write.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_file(out) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> out.read_text()
    'a,b\\n1,2\\n'
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final)
    tmp = _hidden_sibling(final, _TMP)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written for {final}")
        if fsync:
            _fsync_path(tmp)
        os.replace(tmp, final)  # a file, unlike a directory, is replaced in one step
        if fsync:
            _fsync_path(final.parent)
    except BaseException:
        _remove(tmp)
        raise
