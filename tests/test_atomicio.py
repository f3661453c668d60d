"""The atomic writer: old or new content, never torn; disk full is one line naming the file."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from mast import atomicio
from mast.errors import UserError


def test_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomicio.write_text(path, "one\n")
    atomicio.write_text(path, "two\n")
    assert path.read_text() == "two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_failure_inside_the_block_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    atomicio.write_bytes(path, b"old")
    with pytest.raises(RuntimeError, match="boom"), atomicio.atomic_open(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_disk_full_is_one_line_naming_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomicio.write_bytes(path, b"good")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomicio.os, "fsync", full)
    with pytest.raises(UserError) as info:
        atomicio.write_bytes(path, b"new")
    assert str(info.value) == f"no space left on device writing {str(path)!r}"
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_other_os_errors_pass_through(tmp_path, monkeypatch):
    def denied(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(atomicio.os, "fsync", denied)
    with pytest.raises(OSError) as info:
        atomicio.write_bytes(tmp_path / "x", b"1")
    assert not isinstance(info.value, UserError) and info.value.errno == errno.EIO


def test_sigkill_during_a_write_leaves_old_file_and_a_temp_that_is_cleaned(tmp_path):
    path = tmp_path / "metrics.csv"
    atomicio.write_text(path, "old\n")
    code = (
        "import os, signal, sys\n"
        "from mast import atomicio\n"
        "with atomicio.atomic_open(sys.argv[1], 'w') as fh:\n"
        "    fh.write('new, half written'); fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], env=os.environ.copy())
    assert proc.returncode == -9
    assert path.read_text() == "old\n"
    (temp,) = [p for p in tmp_path.iterdir() if p.name != "metrics.csv"]
    assert temp.name.startswith(".metrics.csv.") and temp.name.endswith(".tmp")
    assert atomicio.clean_stale_temps(tmp_path) == [temp]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_clean_keeps_temps_of_live_writers_and_other_files(tmp_path):
    mine = tmp_path / f".a.txt.{os.getpid()}.tmp"
    mine.write_text("in progress")
    (tmp_path / ".hidden.tmp").write_text("not ours")
    assert atomicio.clean_stale_temps(tmp_path) == []
    assert mine.exists() and (tmp_path / ".hidden.tmp").exists()


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomicio.atomic_open(tmp_path / "x", "a"):
            pass
