"""The file primitives and the one path guard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pipeline.errors import LockBusy, PathRefused
from pipeline.fsutil import (
    atomic_write,
    check_relative,
    clean_temp_files,
    file_lock,
    lock_is_held,
    safe_join,
)


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_creates_parents_and_bytes(tmp_path):
    target = tmp_path / "x" / "y" / "b.bin"
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_clean_temp_files(tmp_path):
    (tmp_path / ".tmp-a.md.123").write_text("x")
    (tmp_path / "keep.md").write_text("y")
    assert clean_temp_files(tmp_path, older_than_s=0) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.md"]


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "C:/x",
        "c:x",
        "a\\b",
        "a\x00b",
        "./a",
        "a//b",
        "~/.ssh/id_rsa",
        "a/" + "x" * 300,
        "a\nb",
        "x/" * 600,
    ],
)
def test_guard_refuses_lexically(tmp_path, rel):
    with pytest.raises(PathRefused):
        safe_join(tmp_path, rel)


def test_guard_refuses_hidden_when_asked(tmp_path):
    assert safe_join(tmp_path, ".obsidian/x") == tmp_path.resolve() / ".obsidian" / "x"
    with pytest.raises(PathRefused):
        safe_join(tmp_path, ".obsidian/x", allow_hidden=False)


def test_guard_accepts_plain_paths(tmp_path):
    assert safe_join(tmp_path, "concepts/a-b.md") == tmp_path.resolve() / "concepts" / "a-b.md"
    assert check_relative("qa/x.md") == ["qa", "x.md"]


def test_guard_refuses_symlinks_leading_out(tmp_path):
    base = tmp_path / "base"
    outside = tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    (base / "evil").symlink_to(outside, target_is_directory=True)
    (base / "file.md").symlink_to(outside / "target.md")
    (base / "inner").mkdir()
    (base / "ok").symlink_to(base / "inner", target_is_directory=True)
    with pytest.raises(PathRefused):
        safe_join(base, "evil/x.md")
    with pytest.raises(PathRefused):
        safe_join(base, "file.md")
    assert safe_join(base, "ok/x.md").name == "x.md"


def test_guard_refuses_symlink_loop(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(PathRefused):
        safe_join(tmp_path, "loop/x")


def test_locked_append_from_many_processes_never_interleaves(tmp_path):
    target = tmp_path / "log.txt"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from pipeline.fsutil import locked_append
        tag = sys.argv[1]
        for i in range(50):
            locked_append({str(target)!r}, (tag * 2000) + "\\n")
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, t]) for t in "abcd"]
    assert all(p.wait(60) == 0 for p in procs)
    lines = target.read_text().splitlines()
    assert len(lines) == 200
    assert all(len(set(line)) == 1 and len(line) == 2000 for line in lines)


def test_file_lock_nonblocking_and_released_on_death(tmp_path):
    lock = tmp_path / "w.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys,time; sys.path.insert(0, {os.getcwd()!r});"
            f"from pipeline.fsutil import file_lock\n"
            f"with file_lock({str(lock)!r}):\n print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_is_held(lock)
        with pytest.raises(LockBusy), file_lock(lock, blocking=False):
            pass
        with pytest.raises(LockBusy), file_lock(lock, timeout=0.1):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert not lock_is_held(lock)
    with file_lock(lock, blocking=False):
        pass
