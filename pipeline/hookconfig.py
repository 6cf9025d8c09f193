"""The few settings a capture hook needs, read without the machinery of ``pipeline.config``.

Role: keep the hook's hot path at the interpreter floor. A capture (SessionEnd, Stop, PreCompact)
uses only ``spawn_drain``, ``stop_min_lines``, ``stop_min_minutes`` and ``exclude_projects``;
``load_hook_settings`` reads those from the environment and ``.memc/config.toml`` with a small
line reader instead of importing ``tomllib`` and building the full ``Settings`` dataclass.

Invariants:
- One source of truth: the defaults of these keys are defined here (``HOOK_DEFAULTS``) and
  ``pipeline.config.Settings`` takes them from here. Precedence is the same: environment
  (``MEMC_<KEY>``, empty means unset) > config.toml > default.
- Never a second opinion: it is used only for a configuration that ``load_settings`` has
  accepted before in exactly this form (a stamp in ``.memc/cache/settings-ok``: a hash of
  config.toml's bytes and every MEMC_* value, written by ``remember_valid`` after a full load),
  so a mistake in any key still gets the full parser's error; and the reader accepts only plain
  forms whose meaning ``load_settings`` shares (``key = value`` lines; TOML booleans,
  non-negative numbers, simple strings and one-line arrays of them; env values
  ``0/1/true/false``, digits, comma lists). Anything else (a changed or never-accepted
  configuration, tables, multi-line values, escapes, an unreadable file) returns None and the
  caller falls back to ``pipeline.config.load_settings``.
Stdlib only; no dataclasses, no tomllib, no typing at run time.
"""

from __future__ import annotations

import os
import re

from pipeline.paths import Paths, resolve_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any


class _HookDefaults:
    """Defaults of the hook's keys (``pipeline.config.Settings`` uses these)."""

    spawn_drain: bool = True
    stop_min_lines: int = 40
    stop_min_minutes: float = 10.0
    exclude_projects: tuple[str, ...] = ()


HOOK_DEFAULTS = _HookDefaults()
HOOK_KEYS = ("spawn_drain", "stop_min_lines", "stop_min_minutes", "exclude_projects")


class HookSettings:
    """What a capture reads: ``root``, ``paths`` and the four hook keys."""

    __slots__ = ("exclude_projects", "root", "spawn_drain", "stop_min_lines", "stop_min_minutes")

    def __init__(
        self,
        root: Path,
        *,
        spawn_drain: bool = HOOK_DEFAULTS.spawn_drain,
        stop_min_lines: int = HOOK_DEFAULTS.stop_min_lines,
        stop_min_minutes: float = HOOK_DEFAULTS.stop_min_minutes,
        exclude_projects: tuple[str, ...] = HOOK_DEFAULTS.exclude_projects,
    ) -> None:
        self.root = root
        self.spawn_drain = spawn_drain
        self.stop_min_lines = stop_min_lines
        self.stop_min_minutes = stop_min_minutes
        self.exclude_projects = exclude_projects

    @property
    def paths(self) -> Paths:
        return Paths(self.root)


class _NotPlain(Exception):
    """The input needs the full parser."""


_STRING = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"|\'[^\'\x00-\x08\x0a-\x1f\x7f]*\''
_SCALAR = _STRING + r"|true|false|(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_compiled: dict[str, re.Pattern] = {}


def _pattern(name: str) -> re.Pattern:
    """Compiled on first use: a hook without config.toml never needs them."""
    if not _compiled:
        _compiled["line"] = re.compile(
            rf"([A-Za-z0-9_]+)[ \t]*=[ \t]*({_SCALAR}|\[[^\]]*\])[ \t]*(?:#[^\n]*)?"
        )
        _compiled["item"] = re.compile(rf"\s*({_SCALAR})\s*(?:,\s*|\Z)")
    return _compiled[name]


def _scalar(text: str) -> object:
    if text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return float(text) if "." in text else int(text)


def _toml_value(text: str) -> object:
    if not text.startswith("["):
        return _scalar(text)
    inner, items, pos = text[1:-1].strip(), [], 0
    while pos < len(inner):
        match = _pattern("item").match(inner, pos)
        if match is None or match.end() == pos:
            raise _NotPlain()
        items.append(_scalar(match.group(1)))
        pos = match.end()
    return items


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        raise _NotPlain() from None


def read_config_lines(path: Path, raw: bytes | None = None) -> dict[str, object]:
    """The ``key = value`` lines of a plain config.toml; raises _NotPlain for anything else."""
    raw = _read(path) if raw is None else raw
    if raw is None:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotPlain() from None
    out: dict[str, object] = {}
    for line in text.splitlines():
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        match = _pattern("line").fullmatch(stripped)
        if match is None or match.group(1) in out:
            raise _NotPlain()
        out[match.group(1)] = _toml_value(match.group(2))
    return out


def _from_toml(key: str, value: object) -> object:
    if key == "spawn_drain" and isinstance(value, bool):
        return value
    if key == "stop_min_lines" and type(value) is int:
        return value
    if key == "stop_min_minutes" and type(value) in (int, float):
        return float(value)  # type: ignore[arg-type]  # int or float, checked above
    if key == "exclude_projects":
        if isinstance(value, str):
            return _split(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(v.strip() for v in value if v.strip())
    raise _NotPlain()


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _from_env(key: str, text: str) -> object:
    if key == "spawn_drain":
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
    elif key == "stop_min_lines" and text.strip().isdigit() and text.strip().isascii():
        return int(text)
    elif key == "stop_min_minutes" and re.fullmatch(r"\s*[0-9]+(?:\.[0-9]+)?\s*", text):
        return float(text)
    elif key == "exclude_projects" and "\x00" not in text:
        return _split(text)
    raise _NotPlain()


def _stamp(raw: bytes | None, env: Mapping[str, str]) -> str:
    """What the whole configuration is made of: config.toml's bytes and every MEMC_* value."""
    from pipeline.tailfile import sha256

    parts = [b"<no config.toml>" if raw is None else raw]
    parts += [
        f"{k}={v}".encode("utf-8", "surrogatepass")
        for k, v in sorted(env.items())
        if k.startswith("MEMC_")
    ]
    return sha256(b"\x00".join(parts)).hexdigest()


def _stamp_file(paths: Paths) -> Path:
    return paths.cache / "settings-ok"


def remember_valid(root: str | os.PathLike | None, env: Mapping[str, str] | None = None) -> None:
    """Record that ``pipeline.config.load_settings`` accepted this configuration (the caller
    has just loaded it), so the next hook may trust the light reader. Never raises."""
    env = os.environ if env is None else env
    paths = Paths(resolve_root(root, env))
    try:
        stamp = _stamp(_read(paths.config_file), env)
        from pipeline.fsutil import atomic_write

        atomic_write(_stamp_file(paths), stamp + "\n")
    except (_NotPlain, OSError):
        pass


def load_hook_settings(
    root: str | os.PathLike | None, env: Mapping[str, str] | None = None
) -> HookSettings | None:
    """The hook's settings, or None when the input needs ``pipeline.config.load_settings``:
    a configuration that the full parser has not accepted in exactly this form (config.toml
    bytes and MEMC_* values, see ``remember_valid``), or that the light reader cannot read."""
    env = os.environ if env is None else env
    root_path = resolve_root(root, env)
    paths = Paths(root_path)
    values: dict[str, Any] = {}
    try:
        raw = _read(paths.config_file)
        try:
            accepted = _stamp_file(paths).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if accepted != _stamp(raw, env):
            return None
        for key, value in read_config_lines(paths.config_file, raw).items():
            if key in HOOK_KEYS:
                values[key] = _from_toml(key, value)
        for key in HOOK_KEYS:
            text = env.get("MEMC_" + key.upper(), "")
            if text != "":
                values[key] = _from_env(key, text)
    except _NotPlain:
        return None
    return HookSettings(root_path, **values)
