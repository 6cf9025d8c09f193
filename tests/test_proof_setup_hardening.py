"""Proof suite (issue 12, setup and damaged state): install-hooks behind a symlink and on a
settings file it may not replace.

- A symlinked settings.json (``~/.claude/settings.json -> ~/dotfiles/claude/settings.json``, the
  dotfiles folder a git repository): the backup holding the user's keys sits beside the link,
  owner-only, and the dotfiles repository gains no file (main already did this; the test keeps
  it so: a backup "beside the real file" would be exactly the leak). When the folder itself is
  the link (``~/.claude -> ~/dotfiles/claude``) or lies in a git work tree, the backup goes to
  the data root's ``.memc/backups/`` instead (main wrote it into the dotfiles repository).
- An immutable (``chattr +i``), read-only or read-only-folder settings.json is a clear error:
  exit 1, one line naming the file and the fix, the file unchanged and no backup or temp file
  left. The same for uninstall-hooks.

The damaged-state.db findings are in tests/test_proof_state_damage.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.install import HOOK_EVENTS, install_hooks, installed_hooks

KEYS = {"env": {"ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key"}, "model": "opus"}
PROGRAM = ["/opt/venv/bin/memc"]


def _settings(path: Path, data=None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(KEYS if data is None else data, indent=2) + "\n"
    path.write_text(text)
    return text


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout


# --- a symlinked settings.json: the backup never lands in the dotfiles folder -----------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_symlinked_settings_backup_stays_out_of_the_dotfiles_repository(tmp_path, root):
    dotfiles = tmp_path / "dotfiles"
    real = dotfiles / "claude" / "settings.json"
    _settings(real)
    _git(dotfiles, "init", "-q")
    (dotfiles / ".gitignore").write_text("claude/settings.json\n")  # keys kept out by name
    _git(dotfiles, "add", ".gitignore")
    _git(dotfiles, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "dotfiles")
    link = tmp_path / "home" / ".claude" / "settings.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)

    assert _run(root, "install-hooks", "--settings", str(link)) == 0
    assert _run(root, "uninstall-hooks", "--settings", str(link)) == 0

    assert link.is_symlink() and json.loads(real.read_text()) == KEYS
    assert _git(dotfiles, "status", "--porcelain", "--untracked-files=all") == ""
    assert sorted(p.name for p in real.parent.iterdir()) == ["settings.json"]
    backups = sorted(link.parent.glob("settings.json.memc-backup-*"))
    assert len(backups) == 2  # one per write, both beside the link
    for backup in backups:
        assert "ANTHROPIC_API_KEY" in backup.read_text()
        assert backup.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("command", ["install-hooks", "uninstall-hooks"])
def test_symlinked_claude_folder_backup_goes_to_the_private_folder(tmp_path, root, command):
    dotfiles = tmp_path / "dotfiles"
    real = dotfiles / "claude" / "settings.json"
    _settings(real)
    _git(dotfiles, "init", "-q")
    (dotfiles / ".gitignore").write_text("claude/settings.json\n")
    _git(dotfiles, "add", ".gitignore")
    _git(dotfiles, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "dotfiles")
    claude = tmp_path / "home" / ".claude"
    claude.parent.mkdir()
    claude.symlink_to(dotfiles / "claude", target_is_directory=True)
    path = claude / "settings.json"
    if command == "uninstall-hooks":
        install_hooks(path, root, program=PROGRAM)
        for old in (root / ".memc" / "backups").glob("*"):
            old.unlink()
    before = real.read_text()

    assert _run(root, command, "--settings", str(path)) == 0

    assert _git(dotfiles, "status", "--porcelain", "--untracked-files=all") == ""
    backups = list((root / ".memc" / "backups").glob("settings.json.memc-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == before
    assert backups[0].stat().st_mode & 0o777 == 0o600
    assert (root / ".memc" / "backups").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_settings_inside_a_git_work_tree_is_backed_up_privately(tmp_path, root, capsys):
    home = tmp_path / "home"  # `git init ~`, the other common dotfiles layout
    path = home / ".claude" / "settings.json"
    _settings(path)
    _git(home, "init", "-q")
    assert _run(root, "install-hooks", "--settings", str(path)) == 0
    assert str(root / ".memc" / "backups") in capsys.readouterr().out
    assert sorted(os.listdir(path.parent)) == ["settings.json"]
    assert (
        _git(home, "status", "--porcelain", "--untracked-files=all") == "?? .claude/settings.json\n"
    )


def test_plain_settings_folder_keeps_its_backup_beside_the_file(tmp_path, root):
    path = tmp_path / "claude" / "settings.json"
    original = _settings(path)
    res = install_hooks(path, root, program=PROGRAM)
    assert res.backup is not None and res.backup.parent == path.parent
    assert res.backup.read_text() == original
    assert not (root / ".memc" / "backups").exists()


# --- a settings.json memc may not replace: one clear line, nothing left behind ----------------


@contextmanager
def _immutable(path: Path):
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr")
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _assert_refused(capsys, code: int, path: Path, fix: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and fix in err and "nothing was changed" in err, err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["install-hooks", "uninstall-hooks"])
def test_immutable_settings_is_a_clear_error_with_nothing_left(tmp_path, root, capsys, command):
    path = tmp_path / "claude" / "settings.json"
    if command == "uninstall-hooks":
        _settings(path)
        install_hooks(path, root, program=PROGRAM)
        for old in path.parent.glob("*.memc-backup-*"):
            old.unlink()
    else:
        _settings(path)
    before = _listing(path.parent)
    with _immutable(path):
        code = _run(root, command, "--settings", str(path))
        _assert_refused(capsys, code, path, f"chattr -i {path}")
        assert _listing(path.parent) == before  # no backup, no temp file, same text


@pytest.mark.parametrize("command", ["install-hooks", "uninstall-hooks"])
def test_read_only_settings_file_is_refused_not_replaced(tmp_path, root, capsys, command):
    path = tmp_path / "claude" / "settings.json"
    _settings(path)
    if command == "uninstall-hooks":
        install_hooks(path, root, program=PROGRAM)
        for old in path.parent.glob("*.memc-backup-*"):
            old.unlink()
    path.chmod(0o444)
    before = _listing(path.parent)
    code = _run(root, command, "--settings", str(path))
    _assert_refused(capsys, code, path, f"chmod u+w {path}")
    assert _listing(path.parent) == before
    assert path.stat().st_mode & 0o777 == 0o444


def test_read_only_folder_is_refused_before_any_write(tmp_path, root, capsys):
    path = tmp_path / "claude" / "settings.json"
    _settings(path)
    before = _listing(path.parent)
    path.parent.chmod(0o555)
    try:
        code = _run(root, "install-hooks", "--settings", str(path))
        _assert_refused(capsys, code, path, f"chmod u+w {path.parent}")
        assert _listing(path.parent) == before
    finally:
        path.parent.chmod(0o755)


def test_symlink_into_a_read_only_target_is_refused_with_the_target_named(tmp_path, root, capsys):
    real = tmp_path / "dotfiles" / "settings.json"
    _settings(real)
    link = tmp_path / "claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(real)
    real.chmod(0o444)
    code = _run(root, "install-hooks", "--settings", str(link))
    _assert_refused(capsys, code, link, f"chmod u+w {real}")
    assert sorted(os.listdir(link.parent)) == ["settings.json"]
    assert installed_hooks(real) == []


def test_setup_dry_run_names_a_read_only_settings_file(tmp_path, root):
    from pipeline.errors import SettingsNotWritable

    path = tmp_path / "claude" / "settings.json"
    _settings(path)
    path.chmod(0o444)
    with pytest.raises(SettingsNotWritable, match="read-only"):
        install_hooks(path, root, program=PROGRAM, dry_run=True)
    # a writable file is only described, never written
    path.chmod(0o644)
    res = install_hooks(path, root, program=PROGRAM, dry_run=True)
    assert res.changed and res.added == len(HOOK_EVENTS) and installed_hooks(path) == []
