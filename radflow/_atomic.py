"""Write files and directories under a temporary name, then rename them into place.

The one place radflow makes an output appear atomically (store series,
tables, reports, models, DICOM files, the synthetic archive). Readers never
see a half-written output: until the final rename the data lies under a
hidden name (``.<name>.tmp-<pid>-<random>``) in the same parent folder, which
every radflow reader ignores (:func:`is_temporary`). A process killed midway
leaves only such a hidden entry behind; the next write of the same name
removes it.

One writer per output name at a time is assumed (the pipeline writes each
series and each table from one task); writers of different names in the same
folder never touch each other's temporaries. :func:`publish_new` is for the
one output several processes may race to create (a key file): the first
writer wins, nobody replaces it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP = ".tmp-"
_OLD = ".old-"


def is_temporary(name: str) -> bool:
    """True when ``name`` is a temporary or replaced entry left by this module."""
    return name.startswith(".") and (_TMP in name or _OLD in name)


def temporary_path(final: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``final`` that :func:`is_temporary` recognises (not created)."""
    return _hidden_sibling(Path(final), _TMP)


def _hidden_sibling(final: Path, tag: str) -> Path:
    return final.parent / f".{final.name}{tag}{os.getpid()}-{secrets.token_hex(4)}"


def stale_entries(final: str | os.PathLike) -> list[Path]:
    """Temporaries and replaced versions of ``final`` left by interrupted writes."""
    final = Path(final)
    return _stale_in(final.parent, [final.name])


def _stale_in(folder: Path, names: Iterable[str]) -> list[Path]:
    """The stale entries of the outputs ``names`` of ``folder``, listing it once."""
    if not folder.is_dir():
        return []
    prefixes = tuple(f".{name}{tag}" for name in names for tag in (_TMP, _OLD))
    return sorted(p for p in folder.iterdir() if p.name.startswith(prefixes))


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
    return _clean_stale_of([Path(final)])


def _clean_stale_of(finals: list[Path]) -> list[Path]:
    """Delete the stale entries of every one of ``finals``; return the deleted paths."""
    stale = []
    for folder in dict.fromkeys(f.parent for f in finals):
        stale += _stale_in(folder, [f.name for f in finals if f.parent == folder])
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
    """Write the file ``final`` under a temporary name; rename it into place on success.

    :func:`atomic_files` for one file: the path yielded (beside ``final``, not
    yet created) is for the caller to write; ``fsync`` flushes it to disk before
    the rename. The parent of ``final`` is created if needed.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_file(out) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> out.read_text()
    'a,b\\n1,2\\n'
    """
    with atomic_files([final], fsync=fsync) as (tmp,):
        yield tmp


@contextmanager
def atomic_files(
    finals: Iterable[str | os.PathLike], *, fsync: bool = True
) -> Iterator[list[Path]]:
    """Write several files under temporary names; rename them all into place on success.

    For outputs made of many files that must appear together or not at all,
    as far as a reader that skips hidden names can tell (the slices of a
    DICOM series): no file is renamed until every one is written.

    Parameters
    ----------
    finals : iterable of str or path-like
        The files to create or replace. Their parents are created if needed.
    fsync : bool, optional
        Flush every file to disk before the renames.

    Yields
    ------
    list of pathlib.Path
        One path beside each of ``finals`` (not yet created), in the same
        order, for the caller to write.

    Notes
    -----
    On an exception every temporary is deleted and no ``final`` is touched.
    Each file is replaced in one rename; a process killed during the renames
    leaves the files renamed so far in place.
    """
    finals = [Path(f) for f in finals]
    for parent in dict.fromkeys(f.parent for f in finals):
        parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_of(finals)
    temps = [_hidden_sibling(f, _TMP) for f in finals]
    try:
        yield temps
        for tmp, final in zip(temps, finals):
            if not tmp.exists():
                raise FileNotFoundError(f"{tmp}: nothing was written for {final}")
        if fsync:
            for tmp in temps:
                _fsync_path(tmp)
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)  # a file, unlike a directory, is replaced in one step
        if fsync:
            for parent in dict.fromkeys(f.parent for f in finals):
                _fsync_path(parent)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        raise


def publish_new(tmp: str | os.PathLike, final: str | os.PathLike) -> bool:
    """Rename the written file ``tmp`` to ``final`` unless ``final`` exists; True if published.

    For an output several processes may create at once (a key file): a hard
    link never replaces an existing file, so every racer ends up with the
    first file written, not its own. Where the file system has no hard links,
    ``final`` is created by a rename unless it already exists. ``tmp`` is
    left for the caller to delete (name it with :func:`temporary_path`).
    """
    tmp, final = Path(tmp), Path(final)
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # file systems without hard links
        if final.exists():
            return False
        os.replace(tmp, final)
    return True
