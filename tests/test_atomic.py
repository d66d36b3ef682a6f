"""Temp-then-rename outputs: readers see the old version or the new one, never a part."""

from __future__ import annotations

import os

import pytest

from radflow import _atomic as atomic
from radflow._atomic import atomic_dir, atomic_file, clean_stale, is_temporary, stale_entries


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_dir_creates_and_replaces(tmp_path):
    final = tmp_path / "case" / "series"
    with atomic_dir(final) as tmp:
        assert tmp.parent == final.parent and is_temporary(tmp.name)
        assert not final.exists()  # invisible until the block ends
        (tmp / "a.txt").write_text("v1")
    assert (final / "a.txt").read_text() == "v1"

    with atomic_dir(final) as tmp:
        (tmp / "b.txt").write_text("v2")
        assert (final / "a.txt").read_text() == "v1"  # the old version stays readable meanwhile
    assert _entries(final) == ["b.txt"]
    assert _entries(final.parent) == ["series"]


def test_exception_leaves_the_old_version_and_no_temporary(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as tmp:
            (tmp / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert (final / "a.txt").read_text() == "v1"
    assert _entries(tmp_path) == ["out"]


def test_failed_second_rename_restores_the_old_version(tmp_path, monkeypatch):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("v1")
    rename = os.rename
    calls = []

    def rename_fails_second_time(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("no space left on device")
        rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename_fails_second_time)
    with pytest.raises(OSError, match="no space"):
        with atomic_dir(final) as tmp:
            (tmp / "a.txt").write_text("v2")
    assert (final / "a.txt").read_text() == "v1"
    assert _entries(tmp_path) == ["out"]


def test_stale_entries_of_the_same_name_only_are_cleaned(tmp_path):
    final = tmp_path / "series"
    for name in (".series.tmp-1-aa", ".series.old-2-bb", ".other.tmp-3-cc", ".series2.tmp-4-dd"):
        (tmp_path / name).mkdir()
    (tmp_path / ".series.tmp-5-ee").write_text("partial file")
    stale = [p.name for p in stale_entries(final)]
    assert stale == [".series.old-2-bb", ".series.tmp-1-aa", ".series.tmp-5-ee"]
    with atomic_dir(final) as tmp:
        (tmp / "x").write_text("x")
    assert _entries(tmp_path) == [".other.tmp-3-cc", ".series2.tmp-4-dd", "series"]
    assert clean_stale(tmp_path / "other") == [tmp_path / ".other.tmp-3-cc"]


def test_atomic_file(tmp_path):
    final = tmp_path / "sub" / "table.parquet"
    with atomic_file(final) as tmp:
        assert tmp.parent == final.parent and not tmp.exists()
        tmp.write_bytes(b"v1")
    assert final.read_bytes() == b"v1"
    with pytest.raises(RuntimeError):
        with atomic_file(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError
    assert final.read_bytes() == b"v1"
    with atomic_file(final) as tmp:
        tmp.write_bytes(b"v2")
    assert final.read_bytes() == b"v2"
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_file(final):
            pass
    assert _entries(final.parent) == ["table.parquet"]


def test_is_temporary():
    assert is_temporary(".s.tmp-12-ab") and is_temporary(".s.old-12-ab")
    assert not is_temporary("s") and not is_temporary(".hidden") and not is_temporary("s.tmp-1")


def test_atomic_files_appear_together_or_not_at_all(tmp_path):
    finals = [tmp_path / "series" / f"{k}.dcm" for k in range(3)]
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / ".1.dcm.tmp-9-aa").write_text("left by a killed writer")
    with pytest.raises(RuntimeError):
        with atomic.atomic_files(finals) as temps:
            temps[0].write_text("0")
            assert not finals[0].exists()
            raise RuntimeError
    assert _entries(tmp_path / "series") == []  # the stale temporary went too
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic.atomic_files(finals) as temps:
            temps[0].write_text("0")
    assert _entries(tmp_path / "series") == []
    with atomic.atomic_files(finals, fsync=False) as temps:
        assert [t.parent for t in temps] == [f.parent for f in finals]
        assert all(is_temporary(t.name) for t in temps)
        for k, tmp in enumerate(temps):
            tmp.write_text(str(k))
    assert [f.read_text() for f in finals] == ["0", "1", "2"]


def test_publish_new_never_replaces(tmp_path):
    final = tmp_path / "key"
    first, second = atomic.temporary_path(final), atomic.temporary_path(final)
    assert first != second and is_temporary(first.name)
    first.write_text("first")
    second.write_text("second")
    assert atomic.publish_new(first, final)
    assert not atomic.publish_new(second, final)
    assert final.read_text() == "first"


def test_a_killed_writer_leaves_only_a_hidden_entry(tmp_path):
    import signal
    import subprocess
    import sys

    final = tmp_path / "out"
    code = (
        "import sys, time\n"
        "from radflow._atomic import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'part').write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(final)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert not final.exists()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and is_temporary(left[0])
    with atomic_dir(final) as tmp:
        (tmp / "whole").write_text("v1")
    assert _entries(tmp_path) == ["out"]
