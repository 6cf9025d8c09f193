"""`memc install-hooks` / `uninstall-hooks`: merge our hooks into Claude Code's settings.

Invariants:
- Only the ``hooks`` entries that are ours change. Every other key, and the user's own hooks,
  keep their order and values; the file is rewritten with ``indent=2`` and a trailing newline.
- Idempotent: our entries are stripped, then added again, so a second install writes nothing.
- Marker: no extra key, comment or environment variable. A hook command is ours when it is
  exactly ``[env VAR=..] <our program> [options] hook <our event slug>``: a console script named
  ``memc`` or ``<python> -m pipeline``, nothing after the slug, no second command. This still
  recognises entries written by an older install whose interpreter path has since moved, so
  re-installing never leaves a stale twin; a compound command the user wrote around ours
  (``memc ... hook stop; notify.sh``) is theirs and is never removed.
- One settings file captures into one data root: installing for a new root replaces the old
  root's entries and names that root. Uninstalling removes only this root's entries (every
  root's with ``--all-roots``) and names each command removed.
- Scopes: user = <claude dir>/settings.json; project = ./.claude/settings.local.json (personal
  and git-ignored by Claude Code, because our commands hold this machine's absolute paths).
- A settings file that is not a JSON object is refused (``SettingsFileInvalid``, exit 2) and left
  untouched. Writing it (backups, symlinks, read-only and immutable files: all or nothing) is
  ``pipeline.settingsfile``'s.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, SettingsFileInvalid
from pipeline.paths import claude_dir
from pipeline.program import memc_command, memc_program
from pipeline.settingsfile import private_backups, read_raw, refuse_read_only, write_settings

# (Claude Code event, `memc hook` slug, timeout in seconds). SessionEnd shares a small total
# budget in Claude Code, and capture only spools, so the capture hooks get short timeouts;
# SessionStart reads the knowledge base for injection and PreCompact may copy a large delta.
HOOK_EVENTS: tuple[tuple[str, str, int], ...] = (
    ("SessionStart", "session-start", 10),
    ("SessionEnd", "session-end", 5),
    ("PreCompact", "pre-compact", 10),
    ("Stop", "stop", 5),
    # Runs before every prompt: recall answers in well under a second or prints nothing.
    ("UserPromptSubmit", "user-prompt-submit", 5),
)
_SLUGS = {slug for _, slug, _ in HOOK_EVENTS}


@dataclass(frozen=True)
class InstallResult:
    path: Path
    changed: bool  # (with dry_run: would change)
    added: int
    removed: int
    backup: Path | None
    commands: tuple[str, ...] = ()
    replaced_roots: tuple[str, ...] = ()  # install: the other roots whose hooks this replaced
    removed_commands: tuple[str, ...] = ()  # uninstall: exactly what was taken out


@dataclass(frozen=True)
class InstalledHook:
    event: str
    command: str
    root: str | None


def settings_path(
    scope: str = "user", *, cwd: Path | None = None, home: Path | None = None
) -> Path:
    """<claude dir>/settings.json (user) or <cwd>/.claude/settings.local.json (project: personal,
    git-ignored by Claude Code, because our commands carry this machine's absolute paths).
    ``project-shared`` is the team's <cwd>/.claude/settings.json, which we only ever clean."""
    if scope == "user":
        return claude_dir(home) / "settings.json"
    if scope == "project":
        return (cwd or Path.cwd()) / ".claude" / "settings.local.json"
    if scope == "project-shared":
        return (cwd or Path.cwd()) / ".claude" / "settings.json"
    raise ConfigError(f"unknown scope {scope!r}; use user or project")


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _compound(command: str) -> bool:
    """True when the shell would run more than one program (``;``, ``&&``, ``|``, ``$(...)``...)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return True
    return any(t and set(t) <= set("();<>|&") for t in tokens) or "`" in command or "$(" in command


def parse_ours(command: Any) -> tuple[str, str | None] | None:
    """(slug, root) when ``command`` is exactly one of our hook commands, else None.

    Exactly: an optional ``env VAR=value`` prefix, our program (``.../memc`` or
    ``<python> -m pipeline``), options, ``hook <slug>``, nothing after it, and no second command
    (``memc ... hook stop; notify.sh`` is the user's, and is never removed)."""
    if not isinstance(command, str) or _compound(command):
        return None
    words = _words(command)
    start = None
    for i, word in enumerate(words):
        base = os.path.basename(word).lower()
        if base in ("memc", "memc.exe"):
            start = i + 1
            break
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "pipeline":
            start = i + 2
            break
    if start is None:
        return None
    rest = words[start:]
    root = None
    for i, word in enumerate(rest):
        if word == "--root" and i + 1 < len(rest):
            root = rest[i + 1]
        elif word.startswith("--root="):
            root = word.split("=", 1)[1]
        elif word == "hook":
            slug = rest[i + 1] if i + 1 < len(rest) else ""
            return (slug, root) if slug in _SLUGS and len(rest) == i + 2 else None
    return None


def _same_root(a: str | None, b: Path | None) -> bool:
    return b is None or (a is not None and os.path.abspath(os.path.expanduser(a)) == str(b))


def load_settings_file(path: Path) -> dict[str, Any]:
    """The settings object ({} when the file is missing or empty). Refuses anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsFileInvalid(
            f"cannot read {path}: {exc}; fix its permissions or encoding"
        ) from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SettingsFileInvalid(
            f"{path} is not valid JSON ({exc}); fix it (or move it aside) and run install-hooks "
            "again; the file was not changed"
        ) from None
    if not isinstance(data, dict):
        raise SettingsFileInvalid(f"{path} does not hold a JSON object; fix it and run again")
    hooks = data.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise SettingsFileInvalid(f'{path}: "hooks" is not an object; fix it and run again')
    return data


def strip_ours(data: dict[str, Any], root: Path | None = None) -> tuple[dict[str, Any], int]:
    """A copy of ``data`` without our hook commands (only those for ``root`` when given); groups
    and events we emptied are dropped."""
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return dict(data), 0

    def ours(h: Any) -> bool:
        parsed = parse_ours(h.get("command")) if isinstance(h, dict) else None
        return parsed is not None and _same_root(parsed[1], root)

    removed = 0
    new_hooks: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            new_hooks[event] = groups
            continue
        kept_groups = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(inner, list):
                kept_groups.append(group)
                continue
            kept = [h for h in inner if not ours(h)]
            removed += len(inner) - len(kept)
            if kept or not inner:
                kept_groups.append({**group, "hooks": kept} if len(kept) != len(inner) else group)
        if kept_groups or not groups:
            new_hooks[event] = kept_groups
    out = dict(data)
    if new_hooks or not hooks:
        out["hooks"] = new_hooks
    else:
        del out["hooks"]
    return out, removed


def with_ours(
    data: dict[str, Any], root: Path, program: list[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``data`` with exactly one group of ours per event appended (after stripping old ones)."""
    out, _ = strip_ours(data)
    hooks = dict(out.get("hooks") or {})
    commands = []
    for event, slug, timeout in HOOK_EVENTS:
        command = memc_command(root, "hook", slug, program=program)
        commands.append(command)
        group = {
            "matcher": "",
            "hooks": [{"type": "command", "command": command, "timeout": timeout}],
        }
        hooks[event] = [*(hooks.get(event) or []), group]
    out["hooks"] = hooks
    return out, tuple(commands)


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def install_hooks(
    path: Path,
    root: Path,
    *,
    program: list[str] | None = None,
    now: float | None = None,
    dry_run: bool = False,
) -> InstallResult:
    """Merge our hooks into ``path`` for data root ``root``. Writes nothing when unchanged (or
    with ``dry_run``). One settings file captures into one root: the hooks of any other root in
    it are replaced, and named in ``replaced_roots``."""
    root = Path(os.path.abspath(root))
    data = load_settings_file(path)
    old_text = read_raw(path)
    _, removed = strip_ours(data)
    others = sorted({h.root or "?" for h in _ours_in(data) if not _same_root(h.root, root)})
    new_data, commands = with_ours(data, root, program or memc_program())
    new_text = render(new_data)
    if old_text is not None and (new_text == old_text or data == new_data):
        return InstallResult(path, False, 0, 0, None, commands)  # (maybe other formatting)
    if dry_run:  # says now what the real run would refuse
        refuse_read_only(path, path.resolve() if path.is_symlink() else path, "install-hooks")
        return InstallResult(path, True, len(HOOK_EVENTS), removed, None, commands, tuple(others))
    backup = write_settings(path, old_text, new_text, now, "install-hooks", private_backups(root))
    return InstallResult(path, True, len(HOOK_EVENTS), removed, backup, commands, tuple(others))


def uninstall_hooks(
    path: Path,
    root: Path | None = None,
    *,
    now: float | None = None,
    dry_run: bool = False,
    backups: Path | None = None,
) -> InstallResult:
    """Remove our hook commands for ``root`` (every root's when None) from ``path``; the user's
    own hooks, compound commands and keys stay. ``removed_commands`` names what went.
    ``backups``: the private folder for a backup that may not sit beside ``path`` (default:
    ``root``'s ``.memc/backups``; with no root, beside ``path`` whatever it is)."""
    if not path.exists():
        return InstallResult(path, False, 0, 0, None)
    root = Path(os.path.abspath(root)) if root is not None else None
    data = load_settings_file(path)
    gone = tuple(h.command for h in _ours_in(data) if _same_root(h.root, root))
    new_data, removed = strip_ours(data, root)
    if not removed:
        return InstallResult(path, False, 0, 0, None)
    if dry_run:
        return InstallResult(path, True, 0, removed, None, removed_commands=gone)
    private = private_backups(root) if backups is None else backups
    backup = write_settings(path, read_raw(path), render(new_data), now, "uninstall-hooks", private)
    return InstallResult(path, True, 0, removed, backup, removed_commands=gone)


def _ours_in(data: dict[str, Any]) -> list[InstalledHook]:
    found = []
    hooks = data.get("hooks")
    for event, groups in (hooks if isinstance(hooks, dict) else {}).items():
        for group in groups if isinstance(groups, list) else []:
            inner = group.get("hooks") if isinstance(group, dict) else None
            for hook in inner if isinstance(inner, list) else []:
                parsed = parse_ours(hook.get("command")) if isinstance(hook, dict) else None
                if parsed:
                    found.append(InstalledHook(event, hook["command"], parsed[1]))
    return found


def installed_hooks(path: Path) -> list[InstalledHook]:
    """Our hook commands found in ``path`` (empty when the file is missing or unreadable)."""
    try:
        return _ours_in(load_settings_file(path))
    except SettingsFileInvalid:
        return []
