"""Writing Claude Code's settings file for install-hooks / uninstall-hooks: all or nothing.

Invariants:
- Before any write the old text is saved as ``<name>.memc-backup-<stamp>`` (mode 0600 from the
  first byte: ``fsutil.atomic_write``'s temp file is owner-only); only the newest three are kept.
- A symlinked settings.json is written through to its target (the link stays), and its backup
  sits beside the link, never beside the target: the target usually lives in a dotfiles folder,
  often a git repository that ignores or encrypts ``settings.json`` by name, where a new file
  holding the same keys would be committed. When the link's own folder is no safe place either
  (it is reached through a symlink, as with ``~/.claude -> ~/dotfiles/claude``, or lies inside a
  git work tree), the backup goes to the data root's ``.memc/backups/`` (owner-only, git-ignored)
  instead, and the command names it.
- A settings file memc may not replace is refused before anything is written
  (``SettingsNotWritable``, exit 1, one line naming the file and the fix): one without its owner's
  write bit, or in a folder without it (honoured even for root, who could write anyway). Any
  other failure of the write (``chattr +i``, a read-only mount, a full disk) removes the backup
  just made (``atomic_write`` removes its temp file), so a refused run leaves the folder as it was.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

from pipeline.errors import SettingsNotWritable
from pipeline.fsutil import atomic_write

BACKUP_INFIX = ".memc-backup-"
KEEP_BACKUPS = 3


def private_backups(root: Path | None) -> Path | None:
    """``root``'s ``.memc/backups`` when ``root`` is an initialised data root, else None."""
    if root is None:
        return None
    memc = Path(os.path.abspath(root)) / ".memc"
    return memc / "backups" if memc.is_dir() else None


def write_settings(
    path: Path,
    old_text: str | None,
    new_text: str,
    now: float | None,
    command: str,
    private: Path | None,
) -> Path | None:
    """Write through a symlink to its target (the link stays); the backup of the old text goes
    beside ``path`` itself (where the user looks), or into ``private`` when that folder is no safe
    place (``backup_folder``), mode 0600; only the newest KEEP_BACKUPS stay. All or nothing: a
    refused or failed write leaves no backup and no temp file behind."""
    target = path.resolve() if path.is_symlink() else path
    refuse_read_only(path, target, command)
    folder = backup_folder(path, private)
    backup = None
    try:
        if old_text is not None:
            if folder != path.parent:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
            backup = folder / f"{path.name}{BACKUP_INFIX}{stamp}"
            n = 1
            while backup.exists():
                n += 1
                backup = folder / f"{path.name}{BACKUP_INFIX}{stamp}-{n}"
            atomic_write(backup, old_text.encode("utf-8"), mode=0o600)
        atomic_write(target, new_text)
    except OSError as exc:
        if backup is not None:
            try:
                backup.unlink()
            except OSError:
                pass
        raise SettingsNotWritable(_cannot_write(path, target, exc, command)) from None
    _prune_backups(folder / path.name)
    return backup


def backup_folder(path: Path, private: Path | None) -> Path:
    """Where the backup of ``path`` goes: beside it, unless that folder is reached through a
    symlink or lies in a git work tree (a dotfiles repository would commit the keys it holds);
    then ``private`` (the data root's ``.memc/backups``), when there is one."""
    folder = Path(os.path.abspath(path.parent))
    if private is None:
        return folder
    real = folder.resolve()
    if real != folder or any((d / ".git").exists() for d in (real, *real.parents)):
        return Path(os.path.abspath(private))
    return folder


def refuse_read_only(path: Path, target: Path, command: str) -> None:
    """Refuse a settings file (or its folder) without its owner's write bit before any write.

    Root could replace it anyway; the missing bit is the user saying "do not change this"."""
    checks = [(target, "file"), (target.parent, "folder")]
    if path.parent != target.parent:
        checks.append((path.parent, "folder"))
    for item, kind in checks:
        try:
            mode = os.stat(item).st_mode
        except OSError:
            continue
        if not mode & stat.S_IWUSR:
            raise SettingsNotWritable(
                f"{path}: the {kind} {item} is read-only; make it writable (`chmod u+w {item}`) "
                f"and run `memc {command}` again, or edit the hooks by hand; nothing was changed"
            )


def _cannot_write(path: Path, target: Path, exc: OSError, command: str) -> str:
    where = f"{path} (-> {target})" if path != target else str(path)
    why = exc.strerror or str(exc)
    if exc.errno == errno.EPERM:
        fix = f"it may be immutable: `lsattr {target}`, then `chattr -i {target}`"
    elif exc.errno == errno.EROFS:
        fix = "it is on a read-only file system: remount it writable"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "the disk is full: free some space"
    else:
        fix = f"check the permissions of {target} and its folder"
    return (
        f"cannot write {where}: {why}; {fix}, then run `memc {command}` again; nothing was changed"
    )


def _prune_backups(path: Path, keep: int = 0) -> None:
    keep = keep or KEEP_BACKUPS
    backups = sorted(
        path.parent.glob(f"{path.name}{BACKUP_INFIX}*"), key=lambda p: (p.stat().st_mtime, p.name)
    )
    for old in backups[:-keep]:
        try:
            old.unlink()
        except OSError:
            pass


def read_raw(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
