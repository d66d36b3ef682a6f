"""Pseudonymisation of patient, study, series and frame identifiers.

No patient identifier leaves radflow: every PatientID, StudyInstanceUID,
SeriesInstanceUID and SOPInstanceUID (frame) is replaced by a pseudonym before
it reaches the store, a Parquet table, a log line or a report.

Scheme
------
A pseudonym is a truncated HMAC-SHA256 of the identifier under a secret key,
with a domain-separation prefix per kind of identifier::

    digest = HMAC-SHA256(key, b"radflow/v1/" + kind + b"\\x00" + value.strip())

=========  ==============  ==================  ==========================
kind       method          pseudonym           example
=========  ==============  ==================  ==========================
patient    ``patient()``   ``"P"`` + 12 hex    ``P3f9a0c41d2b7``
study      ``study()``     ``"ST"`` + 16 hex   ``ST0b1e...`` (18 chars)
series     ``series()``    ``"S"`` + 16 hex    ``S7c2d...`` (17 chars)
frame      ``frame()``     ``"F"`` + 16 hex    ``F91aa...`` (17 chars)
=========  ==============  ==================  ==========================

Pseudonyms are stable: the same identifier under the same key gives the same
pseudonym in every run, on every machine, so features from several runs of a
study can be joined. A different key gives unrelated pseudonyms. They are made
of ASCII letters and digits only, so they are valid file names, zarr keys and
Parquet partition values. The prefix keeps kinds apart: a patient whose
PatientID happens to equal a series UID still gets unrelated pseudonyms.

Why keyed
---------
A plain hash of a medical record number is not a pseudonym: MRNs and dates
of birth have few enough possible values that anyone can hash them all and
look the result up. With a keyed hash, nobody without the key can link a
pseudonym back to a patient, nor check a guess. The key must therefore be
kept secret, and kept: ids computed with a lost key can never be reproduced.

Setting the key
---------------
:func:`load_key` looks, in this order, at

1. an explicit key file (``radflow ingest ... --key-file PATH``);
2. the environment variable ``RADFLOW_PSEUDONYM_KEY`` (the key text itself);
3. the environment variable ``RADFLOW_PSEUDONYM_KEY_FILE`` (a path to a key file);
4. the per-user key file ``$XDG_CONFIG_HOME/radflow/pseudonym.key``
   (``~/.config/radflow/pseudonym.key`` when ``XDG_CONFIG_HOME`` is unset),
   created on first use with 32 random bytes written as hex, readable by
   the user only. A warning says where it is.

A key file holds the key as text on its first line; leading and trailing
white space is ignored, so ``RADFLOW_PSEUDONYM_KEY="$(cat pseudonym.key)"``
gives the same pseudonyms as the file. A key is at least 16 bytes long.
To run a study on several machines (a Dask cluster), give every worker the
same key, e.g. the same ``RADFLOW_PSEUDONYM_KEY_FILE``.

The local lookup
----------------
Ingest writes, beside a key file ``K.key``, the file ``K.lookup.csv``
(:func:`lookup_path`, :func:`update_lookup`): one row per patient folder (or
CSV manifest entry) with its pseudonym, so that the people who hold the key can
go from a ``case`` in a table back to the folder. It holds identifiers: it has
the key's file permissions, lies beside the key (never in the store or a
table) and must be kept like the key. A key given as text in
``RADFLOW_PSEUDONYM_KEY`` has no folder, so no lookup is written.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from radflow._atomic import atomic_file, publish_new, temporary_path
from radflow.errors import InputError, SettingsError

__all__ = [
    "Pseudonymiser",
    "load_key",
    "default_key_path",
    "key_path",
    "lookup_path",
    "update_lookup",
]

logger = logging.getLogger(__name__)

#: Environment variable holding the key text itself.
KEY_ENV = "RADFLOW_PSEUDONYM_KEY"
#: Environment variable holding the path of a key file.
KEY_FILE_ENV = "RADFLOW_PSEUDONYM_KEY_FILE"
#: Shortest key accepted, in bytes: shorter passphrases can be guessed.
MIN_KEY_BYTES = 16

# Bumping the version changes every pseudonym: only with a migration plan.
_DOMAIN = b"radflow/v1/"
_KIND = re.compile(r"[a-z][a-z0-9_]*\Z")


class Pseudonymiser:
    """Keyed pseudonyms (HMAC-SHA256) for patient, study, series and frame ids.

    Parameters
    ----------
    key : bytes
        The secret key, at least 16 bytes; see :func:`load_key`.

    Examples
    --------
    >>> p = Pseudonymiser(b"an example key, not a secret")
    >>> p.patient("12345678")
    'Pf2ad30d7c406'
    >>> p.patient("12345678") == p.patient(" 12345678 ")
    True
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError(f"key must be bytes, got {type(key).__name__}")
        if len(key) < MIN_KEY_BYTES:
            raise SettingsError(
                f"pseudonymisation key is {len(key)} bytes long; use at least "
                f"{MIN_KEY_BYTES} (a random key: python -c 'import secrets; "
                f"print(secrets.token_hex(32))')"
            )
        self._key = bytes(key)

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """A short fingerprint of the key (8 hex), safe to record beside outputs.

        Two runs whose ``key_id`` differ produce pseudonyms that do not match;
        the fingerprint reveals nothing about the key.
        """
        return self.text("key_id", "")[:8]

    def text(self, kind: str, value: str) -> str:
        """Pseudonym of `value` in the domain `kind`: 64 lower-case hex digits.

        Parameters
        ----------
        kind : str
            Domain-separation label, lower-case ``[a-z][a-z0-9_]*``
            (``"patient"``, ``"accession"``...). The same value in two kinds
            gives unrelated digests.
        value : str
            The identifier; leading and trailing white space (DICOM padding)
            is ignored.

        Returns
        -------
        str
            The full HMAC-SHA256 hex digest; callers truncate it.
        """
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise ValueError(f"kind must match [a-z][a-z0-9_]*, got {kind!r}")
        if not isinstance(value, str):
            raise TypeError(f"{kind} id must be str, got {type(value).__name__}")
        message = _DOMAIN + kind.encode("ascii") + b"\x00" + value.strip().encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _id(self, kind: str, value: str, prefix: str, n_hex: int) -> str:
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"{kind} id is empty")
        return prefix + self.text(kind, value)[:n_hex]

    def patient(self, pid: str) -> str:
        """Pseudonym of a PatientID (or patient folder name): ``"P"`` + 12 hex."""
        # 48 bits: collision odds below 1e-4 up to ~250 000 patients.
        return self._id("patient", pid, "P", 12)

    def study(self, uid: str) -> str:
        """Pseudonym of a StudyInstanceUID: ``"ST"`` + 16 hex."""
        return self._id("study", uid, "ST", 16)

    def series(self, uid: str) -> str:
        """Pseudonym of a SeriesInstanceUID (or image path): ``"S"`` + 16 hex."""
        return self._id("series", uid, "S", 16)

    def frame(self, uid: str) -> str:
        """Pseudonym of a SOPInstanceUID (one slice or frame): ``"F"`` + 16 hex."""
        return self._id("frame", uid, "F", 16)


def default_key_path() -> Path:
    """Where the per-user key lives: ``$XDG_CONFIG_HOME/radflow/pseudonym.key``.

    ``~/.config`` stands in for ``XDG_CONFIG_HOME`` when it is unset, empty
    or relative (the XDG base directory specification ignores relative paths).
    """
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "radflow" / "pseudonym.key"


def load_key(*, key_file: str | os.PathLike | None = None) -> bytes:
    """Find the pseudonymisation key, creating the per-user key on first use.

    Parameters
    ----------
    key_file : path-like, optional
        A key file to use instead of the environment and the per-user key.
        It must exist.

    Returns
    -------
    bytes
        The key, for :class:`Pseudonymiser`.

    Raises
    ------
    InputError
        A key file is missing, unreadable, empty or too short (names the file).
    SettingsError
        ``RADFLOW_PSEUDONYM_KEY`` is set but empty or too short.

    Notes
    -----
    The order is: `key_file`; ``RADFLOW_PSEUDONYM_KEY`` (the key text);
    ``RADFLOW_PSEUDONYM_KEY_FILE`` (a path); the per-user key file (see
    :func:`default_key_path`), created if absent. See the module docstring.
    """
    if key_file is not None:
        return _read_key_file(Path(key_file))
    text = os.environ.get(KEY_ENV)
    if text is not None:
        key = text.strip().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise SettingsError(
                f"{KEY_ENV} is set but holds {len(key)} bytes; "
                f"a key needs at least {MIN_KEY_BYTES} (or unset it to use a key file)"
            )
        return key
    path = os.environ.get(KEY_FILE_ENV)
    if path is not None:
        if not path.strip():
            raise SettingsError(f"{KEY_FILE_ENV} is set but empty; set it to a key file path")
        return _read_key_file(Path(path))
    path = default_key_path()
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)


def key_path(*, key_file: str | os.PathLike | None = None) -> Path | None:
    """The key file :func:`load_key` reads with the same argument and environment.

    Returns
    -------
    Path or None
        None when the key is given as text (``RADFLOW_PSEUDONYM_KEY``).
    """
    if key_file is not None:
        return Path(key_file)
    if os.environ.get(KEY_ENV) is not None:
        return None
    path = os.environ.get(KEY_FILE_ENV)
    if path is not None and path.strip():
        return Path(path)
    return default_key_path()


#: Columns of the lookup file, in order.
LOOKUP_COLUMNS = ("case_id", "institution", "patient", "location", "key_id")


def lookup_path(key_file: str | os.PathLike) -> Path:
    """The lookup beside a key file: ``pseudonym.key`` -> ``pseudonym.lookup.csv``."""
    key_file = Path(key_file)
    return key_file.with_name(f"{key_file.stem}.lookup.csv")


def update_lookup(
    key_file: str | os.PathLike, rows: Iterable[dict[str, str]], *, key_id: str
) -> Path:
    """Add patients to the lookup beside ``key_file`` (original location -> pseudonym).

    Parameters
    ----------
    key_file : path-like
        The key file the pseudonyms were made with.
    rows : iterable of dict
        ``case_id`` (the pseudonym), ``institution``, ``patient`` (the id as found)
        and ``location`` (the folder, or ``PATIENT in cohort.csv``).
    key_id : str
        :attr:`Pseudonymiser.key_id` of the key, recorded on every row.

    Returns
    -------
    Path
        The lookup file (:func:`lookup_path`).

    Notes
    -----
    Rows already there for another location or another key are kept; a row
    for the same location and key is replaced. The file is replaced atomically
    and has the permission bits of the key file (0600 for a key radflow made),
    set before its content is written.

    Raises
    ------
    InputError
        The existing lookup is not one (other columns): it names the file.
    """
    key_file = Path(key_file)
    path = lookup_path(key_file)
    merged: dict[tuple[str, str], dict[str, str]] = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != LOOKUP_COLUMNS:
                raise InputError(
                    path,
                    f"not a radflow pseudonym lookup (columns {', '.join(LOOKUP_COLUMNS)}); "
                    "move it away",
                )
            for row in reader:
                merged[(row["location"], row["key_id"])] = row
    for row in rows:
        row = {c: str(row.get(c, "")) for c in LOOKUP_COLUMNS} | {"key_id": key_id}
        merged[(row["location"], key_id)] = row
    mode = stat.S_IMODE(key_file.stat().st_mode) & 0o666 if key_file.exists() else 0o600
    with atomic_file(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the key's bits exactly, whatever the umask
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOOKUP_COLUMNS)
            writer.writeheader()
            writer.writerows(sorted(merged.values(), key=lambda r: (r["location"], r["key_id"])))
    return path


def _read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "pseudonymisation key file does not exist") from None
    except OSError as exc:
        reason = f"cannot read the pseudonymisation key file ({exc.strerror})"
        raise InputError(path, reason) from None
    lines = data.strip().splitlines()
    key = lines[0].strip() if lines else b""
    if not key:
        raise InputError(path, "pseudonymisation key file is empty")
    if len(key) < MIN_KEY_BYTES:
        raise InputError(
            path, f"pseudonymisation key is {len(key)} bytes long; use at least {MIN_KEY_BYTES}"
        )
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("pseudonymisation key file %s is readable by other users: chmod 600", path)
    return key


def _create_key_file(path: Path) -> None:
    """Write a new random key to `path`, unless another process gets there first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = temporary_path(path)  # a hidden name readers ignore
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        # When workers start at once, all of them end up with the first key written.
        if not publish_new(tmp, path):
            return
    finally:
        tmp.unlink(missing_ok=True)
    logger.warning(
        "created a new pseudonymisation key at %s. Use the same key for every run of "
        "a study (pseudonyms only match across runs with the same key), back it up, "
        "and keep it secret: whoever has it can check a guessed patient id.",
        path,
    )
