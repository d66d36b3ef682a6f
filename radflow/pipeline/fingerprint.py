"""Content fingerprints: what decides that an input or a result is unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from os import PathLike


def file_digest(path: str | PathLike, *, block: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def content_fingerprint(files: Iterable[str | PathLike], *, salt: str = "") -> str:
    """Fingerprint of a set of files by content alone.

    File names and order do not count, so moving or renaming an archive does
    not trigger re-work; any changed byte does. ``salt`` adds what else the
    result depends on (e.g. the version of the conversion).

    Returns
    -------
    str
        32 hex characters (128 bits of SHA-256).
    """
    digests = sorted(file_digest(p) for p in files)
    total = hashlib.sha256(salt.encode())
    for d in digests:
        total.update(bytes.fromhex(d))
    return total.hexdigest()[:32]
