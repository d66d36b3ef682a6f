"""Sets of task keys in 16 bytes each: what keeps ``radflow run``'s client small.

A unit's key is ``"radflow-extract-<32 hex>"`` (:mod:`radflow.pipeline.plan`): 16 bytes
of digest under a constant prefix. Held as Python strings in a set, a key costs about 150
bytes; as one row of a sorted numpy array of 16-byte strings it costs 16, and membership
of many keys at once is one ``searchsorted``. :class:`KeySet` holds the planned, done and
kept keys of a run that way; keys of another form (tables written by hand, by tests, or a
future prefix) keep their strings, beside, so that any key a table holds is handled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["DIGEST", "PREFIX", "KeySet", "digest_of", "key_of", "keys_of", "pack", "unpack"]

#: The prefix of a unit's key; the rest is 32 lowercase hex digits.
PREFIX = "radflow-extract-"
#: numpy type of one key's digest (fixed 16 bytes; read back with ``tobytes``, since numpy
#: drops trailing zero bytes of a single ``S16`` item).
DIGEST = np.dtype("S16")
_LENGTH = len(PREFIX) + 32


def digest_of(key: str) -> bytes | None:
    """The 16 bytes of a ``radflow-extract-<32 hex>`` key; None for a key of another form.

    Only the canonical spelling (lowercase hex, nothing else) gives a digest, so that the
    key is exactly ``PREFIX + digest.hex()`` again.
    """
    if len(key) != _LENGTH or not key.startswith(PREFIX):
        return None
    try:
        digest = bytes.fromhex(key[len(PREFIX) :])
    except ValueError:
        return None
    return digest if len(digest) == 16 and digest.hex() == key[len(PREFIX) :] else None


def key_of(digest: bytes) -> str:
    """The key of 16 bytes of digest (the inverse of :func:`digest_of`)."""
    return PREFIX + digest.hex()


def keys_of(digests: np.ndarray) -> Iterator[str]:
    """The keys of an array of digests, in its order."""
    raw = np.ascontiguousarray(digests, dtype=DIGEST).tobytes()
    for start in range(0, len(raw), 16):
        yield PREFIX + raw[start : start + 16].hex()


def _split(keys: Iterable[str]) -> tuple[bytearray, list[str]]:
    raw, other = bytearray(), []
    for key in keys:
        digest = digest_of(key)
        if digest is None:
            other.append(key)
        else:
            raw += digest
    return raw, other


def pack(keys: Iterable[str]) -> bytes | frozenset[str]:
    """The task keys of one case in compact form: their digests, sorted, as one ``bytes``.

    A case holding a key of another form keeps all its keys as a frozenset of strings.
    :func:`unpack` gives the sorted keys back.
    """
    keys = set(keys)
    digests = sorted(map(digest_of, keys), key=lambda d: b"" if d is None else d)
    if digests and digests[0] is None:
        return frozenset(keys)
    return b"".join(digests)


def unpack(packed: bytes | frozenset[str]) -> list[str]:
    """The sorted keys of :func:`pack`'s compact form."""
    if isinstance(packed, bytes):
        return list(keys_of(np.frombuffer(packed, DIGEST)))
    return sorted(packed)


class KeySet:
    """An immutable set of task keys: a sorted array of digests, other keys as strings.

    Supports ``key in keys``, ``len``, iteration (keys as strings), and
    :meth:`contains` / :meth:`members` for many keys at once.

    Parameters
    ----------
    digests : numpy.ndarray of ``S16``, optional
        Digests, in any order and with repeats (sorted and made unique here).
    other : iterable of str
        Keys that are not ``radflow-extract-<32 hex>``.
    """

    __slots__ = ("digests", "other")

    def __init__(self, digests: np.ndarray | None = None, other: Iterable[str] = ()):
        digests = np.empty(0, DIGEST) if digests is None else np.asarray(digests, DIGEST)
        #: Sorted, unique digests.
        self.digests = np.unique(digests)
        self.other = frozenset(other)

    @classmethod
    def from_keys(cls, keys: Iterable[str]) -> KeySet:
        raw, other = _split(keys)
        return cls(np.frombuffer(bytes(raw), DIGEST), other)

    @classmethod
    def union(cls, packed: Iterable[bytes | frozenset[str]]) -> KeySet:
        """The union of several cases' keys in :func:`pack`'s form."""
        raw, other = bytearray(), set()
        for item in packed:
            if isinstance(item, bytes):
                raw += item
            else:
                other |= item
        extra, odd = _split(other)
        return cls(np.frombuffer(bytes(raw + extra), DIGEST), odd)

    def contains(self, digests: np.ndarray) -> np.ndarray:
        """Whether each digest of an array is in the set (a bool array of its shape)."""
        digests = np.asarray(digests, DIGEST)
        if not len(self.digests) or not digests.size:
            return np.zeros(digests.shape, bool)
        where = np.minimum(np.searchsorted(self.digests, digests), len(self.digests) - 1)
        return self.digests[where] == digests

    def members(self, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` (strings) that the set holds, in their order."""
        keys = list(keys)
        digests = [digest_of(k) for k in keys]
        inside = self.contains(
            np.array([d if d is not None else b"" for d in digests], DIGEST).reshape(-1)
        )
        return [
            k
            for k, d, hit in zip(keys, digests, inside.tolist())
            if (hit if d is not None else k in self.other)
        ]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        digest = digest_of(key)
        if digest is None:
            return key in self.other
        return bool(self.contains(np.array([digest], DIGEST))[0])

    def __len__(self) -> int:
        return len(self.digests) + len(self.other)

    def __iter__(self) -> Iterator[str]:
        yield from keys_of(self.digests)
        yield from sorted(self.other)

    def __repr__(self) -> str:
        return f"KeySet({len(self)} keys)"
