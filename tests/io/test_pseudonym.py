"""Keyed pseudonyms: the documented HMAC scheme, key handling and key-file creation."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from radflow.errors import InputError, SettingsError
from radflow.io.pseudonym import (
    LOOKUP_COLUMNS,
    Pseudonymiser,
    default_key_path,
    key_path,
    load_key,
    lookup_path,
    update_lookup,
)

KEY = b"0123456789abcdef-study-key"
PID = "MRN-00472913"
UID = "1.2.826.0.1.3680043.8.498.10117442985741130290122451402339624883"


def hmac_hex(key: bytes, kind: str, value: str) -> str:
    """The scheme as the module docstring states it, written out independently."""
    message = b"radflow/v1/" + kind.encode() + b"\x00" + value.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@pytest.fixture
def no_env_key(monkeypatch, tmp_path):
    """No key in the environment; HOME and XDG_CONFIG_HOME point into tmp_path."""
    monkeypatch.delenv("RADFLOW_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("RADFLOW_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_ids_follow_the_documented_hmac_scheme():
    p = Pseudonymiser(KEY)
    assert p.patient(PID) == "P" + hmac_hex(KEY, "patient", PID)[:12]
    assert p.study(UID) == "ST" + hmac_hex(KEY, "study", UID)[:16]
    assert p.series(UID) == "S" + hmac_hex(KEY, "series", UID)[:16]
    assert p.frame(UID) == "F" + hmac_hex(KEY, "frame", UID)[:16]
    assert p.text("accession", "A77") == hmac_hex(KEY, "accession", "A77")


def test_stable_across_instances_and_processes():
    code = f"from radflow.io.pseudonym import Pseudonymiser as P;print(P({KEY!r}).patient({PID!r}))"
    other_process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Pseudonymiser(KEY).patient(PID) == Pseudonymiser(bytearray(KEY)).patient(PID)
    assert other_process == Pseudonymiser(KEY).patient(PID)


def test_different_keys_give_different_ids():
    a, b = Pseudonymiser(KEY), Pseudonymiser(KEY + b"!")
    assert a.patient(PID) != b.patient(PID)
    assert a.series(UID) != b.series(UID)
    assert a.key_id != b.key_id


def test_kinds_are_separated():
    p = Pseudonymiser(KEY)
    digests = {p.patient(UID)[1:], p.study(UID)[2:14], p.series(UID)[1:13], p.frame(UID)[1:13]}
    assert len(digests) == 4
    assert p.text("patient", UID) != p.text("series", UID)


def test_dicom_padding_is_ignored_and_distinct_ids_differ():
    p = Pseudonymiser(KEY)
    assert p.patient(PID + " ") == p.patient(" " + PID) == p.patient(PID)
    assert p.patient("1") != p.patient("2")


def test_ids_are_path_components_without_the_raw_id():
    p = Pseudonymiser(KEY)
    for out, raw in [
        (p.patient(PID), PID),
        (p.study(UID), UID),
        (p.series("CT/series 1/../x.nii.gz"), "series"),
        (p.frame(UID), UID),
    ]:
        assert re.fullmatch(r"[A-Z]{1,2}[0-9a-f]+", out)
        assert raw not in out and raw[:6] not in out
    assert re.fullmatch(r"P[0-9a-f]{12}", p.patient(PID))
    assert re.fullmatch(r"ST[0-9a-f]{16}", p.study(UID))


def test_repr_hides_the_key():
    p = Pseudonymiser(KEY)
    assert KEY.decode() not in repr(p) and KEY.hex() not in repr(p)
    assert re.fullmatch(r"[0-9a-f]{8}", p.key_id)


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (b"short", SettingsError, "5 bytes long"),
        ("a str key of 20 chars", TypeError, "must be bytes"),
    ],
)
def test_bad_keys(key, error, match):
    with pytest.raises(error, match=match):
        Pseudonymiser(key)


def test_bad_values():
    p = Pseudonymiser(KEY)
    with pytest.raises(ValueError, match="patient id is empty"):
        p.patient("  ")
    with pytest.raises(TypeError, match="series id must be str"):
        p.series(1234)
    with pytest.raises(ValueError, match="kind must match"):
        p.text("Patient/../", "x")


# key loading ---------------------------------------------------------------


def test_env_key_text_is_used(no_env_key, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "  env-key-0123456789 \n")
    assert load_key() == b"env-key-0123456789"
    assert not default_key_path().exists()


def test_explicit_key_file_beats_env(no_env_key, monkeypatch):
    key_file = no_env_key / "k.key"
    key_file.write_text("file-key-0123456789\n")
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "env-key-0123456789")
    assert load_key(key_file=key_file) == b"file-key-0123456789"


def test_env_key_beats_env_key_file(no_env_key, monkeypatch):
    key_file = no_env_key / "k.key"
    key_file.write_text("file-key-0123456789\n")
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY_FILE", str(key_file))
    assert load_key() == b"file-key-0123456789"
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "env-key-0123456789")
    assert load_key() == b"env-key-0123456789"


def test_key_file_and_env_text_give_the_same_key(no_env_key, monkeypatch):
    key_file = no_env_key / "k.key"
    key_file.write_text("  same-key-0123456789\n")
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", key_file.read_text())
    assert load_key() == load_key(key_file=key_file)


def test_user_key_created_once_with_mode_0600(no_env_key, caplog):
    path = no_env_key / "home" / ".config" / "radflow" / "pseudonym.key"
    with caplog.at_level(logging.WARNING, logger="radflow.io.pseudonym"):
        key = load_key()
    assert default_key_path() == path
    assert re.fullmatch(rb"[0-9a-f]{64}", key)
    assert path.read_bytes() == key + b"\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temp left
    message = caplog.text
    assert str(path) in message and "same key" in message and "secret" in message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radflow.io.pseudonym"):
        assert load_key() == key
    assert caplog.text == ""


def test_xdg_config_home_is_honoured(no_env_key, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(no_env_key / "xdg"))
    key = load_key()
    assert (no_env_key / "xdg" / "radflow" / "pseudonym.key").read_bytes().strip() == key
    assert not (no_env_key / "home").exists()
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/path")  # ignored, per the XDG spec
    assert default_key_path() == no_env_key / "home" / ".config" / "radflow" / "pseudonym.key"


def test_existing_user_key_is_never_replaced(no_env_key):
    path = default_key_path()
    path.parent.mkdir(parents=True)
    path.write_text("kept-key-0123456789\n")
    os.chmod(path, 0o600)
    assert load_key() == b"kept-key-0123456789"
    assert path.read_text() == "kept-key-0123456789\n"


def test_group_readable_key_file_warns(no_env_key, caplog):
    key_file = no_env_key / "k.key"
    key_file.write_text("file-key-0123456789\n")
    os.chmod(key_file, 0o644)
    with caplog.at_level(logging.WARNING, logger="radflow.io.pseudonym"):
        load_key(key_file=key_file)
    assert "readable by other users" in caplog.text


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "is empty"), (b" \n\n", "is empty"), (b"tooshort\n", "8 bytes long")],
)
def test_bad_key_file_names_the_file(no_env_key, content, match):
    key_file = no_env_key / "bad.key"
    key_file.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        load_key(key_file=key_file)
    assert info.value.source == str(key_file)


def test_missing_or_unreadable_key_file(no_env_key, monkeypatch):
    missing = no_env_key / "nope.key"
    with pytest.raises(InputError, match="does not exist") as info:
        load_key(key_file=missing)
    assert info.value.source == str(missing)
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY_FILE", str(missing))
    with pytest.raises(InputError, match="does not exist"):
        load_key()
    assert not missing.exists()  # a named key file is never invented
    with pytest.raises(InputError, match="cannot read") as info:
        load_key(key_file=no_env_key)  # a directory
    assert info.value.source == str(no_env_key)


def test_empty_env_settings_are_errors(no_env_key, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "")
    with pytest.raises(SettingsError, match="RADFLOW_PSEUDONYM_KEY is set"):
        load_key()
    monkeypatch.delenv("RADFLOW_PSEUDONYM_KEY")
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY_FILE", " ")
    with pytest.raises(SettingsError, match="RADFLOW_PSEUDONYM_KEY_FILE is set"):
        load_key()


def test_concurrent_creation_keeps_the_first_key(no_env_key):
    """A worker that lost the race to create the key file must not replace it."""
    from radflow.io.pseudonym import _create_key_file

    path = default_key_path()
    _create_key_file(path)
    first = path.read_bytes()
    _create_key_file(path)  # as if it had checked for the file before the first one wrote it
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]


def test_key_path_follows_the_order_of_load_key(no_env_key, monkeypatch):
    assert key_path(key_file="k.key") == Path("k.key")
    assert key_path() == default_key_path()
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY_FILE", "/keys/study.key")
    assert key_path() == Path("/keys/study.key")
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "the key as text, no file")
    assert key_path() is None
    assert key_path(key_file="k.key") == Path("k.key")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_lookup_beside_the_key_with_its_permissions_merged_atomically(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(KEY.decode() + "\n")
    key_file.chmod(0o640)
    p = Pseudonymiser(KEY)
    row = {"case_id": p.patient(PID), "institution": "SITE", "patient": PID, "location": "/a/MRN"}
    path = update_lookup(key_file, [row], key_id=p.key_id)
    assert path == tmp_path / "pseudonym.lookup.csv" == lookup_path(key_file)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    other = dict(row, patient="MRN-2", location="/b/MRN-2", case_id=p.patient("MRN-2"))
    update_lookup(key_file, [other, dict(row, institution="SITE_2")], key_id=p.key_id)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(LOOKUP_COLUMNS)
    assert lines[1:] == [
        f"{p.patient(PID)},SITE_2,{PID},/a/MRN,{p.key_id}",
        f"{p.patient('MRN-2')},SITE,MRN-2,/b/MRN-2,{p.key_id}",
    ]
    assert [e.name for e in tmp_path.iterdir() if e.name.startswith(".")] == []
    key_file.chmod(0o600)
    update_lookup(key_file, [], key_id=p.key_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_lookup_refuses_to_overwrite_a_file_that_is_not_one(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(KEY.decode() + "\n")
    lookup_path(key_file).write_text("notes of a colleague\n")
    with pytest.raises(InputError, match="not a radflow pseudonym lookup"):
        update_lookup(key_file, [], key_id="x")
    assert lookup_path(key_file).read_text() == "notes of a colleague\n"
