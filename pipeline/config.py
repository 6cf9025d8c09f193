"""Settings, read in exactly one place.

Precedence: flag (``overrides``) > environment (``MEMC_*``) > ``ROOT/.memc/config.toml`` >
default. The data root is resolved by ``pipeline.roots`` (``--root`` > ``MEMC_ROOT`` > a data
root as the current folder > the remembered root > ``~/memory``); ``resolve_root`` here is the
short form (``--root`` > ``MEMC_ROOT`` > current folder) used by ``init``, which creates a root.
Every value is parsed here by its field's own parser in ``PARSERS`` (type and range: a count or
size must be a whole number in range, a duration or amount a finite number in range, a backend
one of ``BACKENDS``); a bad one raises ``ConfigError`` naming the key, where it came from and
what is accepted. Every ``Settings`` field but ``root`` has exactly one parser. Stdlib only.

``Paths``, ``resolve_root`` and ``claude_dir`` (Claude Code's own folder: settings, credentials,
transcripts) live in ``pipeline.paths`` and are re-exported here. No hook imports this module on
its hot path: ``pipeline.hookconfig`` reads the few settings a capture needs (for a
configuration this module has accepted; SessionStart and UserPromptSubmit need only the paths),
and the defaults of those keys are defined there (``HOOK_DEFAULTS``) and used here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, NotInitialised
from pipeline.hookconfig import HOOK_DEFAULTS
from pipeline.paths import ARTICLE_FOLDERS as ARTICLE_FOLDERS
from pipeline.paths import Paths as Paths
from pipeline.paths import claude_dir as claude_dir
from pipeline.paths import resolve_root as resolve_root


@dataclass(frozen=True)
class Settings:
    root: Path
    backend: str = "claude"
    claude_cli: str | None = None
    tz: str | None = None
    flush_model: str = "haiku"
    compile_model: str = "sonnet"
    query_model: str = "sonnet"
    daily_budget_usd: float = 5.0
    job_budget_share: float = 0.25  # of the daily budget, per job and day
    call_budget_usd: float = 1.0
    call_timeout_s: float = 300.0
    llm_max_attempts: int = 4
    llm_max_retry_s: float = 180.0
    breaker_failures: int = 3
    breaker_pause_min: float = 15.0
    compile_quiet_min: float = 10.0
    compile_max_delay_min: float = 360.0
    compile_min_interval_min: float = 30.0
    spawn_drain: bool = HOOK_DEFAULTS.spawn_drain
    stop_min_lines: int = HOOK_DEFAULTS.stop_min_lines
    stop_min_minutes: float = HOOK_DEFAULTS.stop_min_minutes
    idle_capture_min: float = 30.0
    spool_keep_days: int = 14
    chunk_chars: int = 60_000
    exclude_projects: tuple[str, ...] = HOOK_DEFAULTS.exclude_projects
    git: bool = True  # version the data root with git (pipeline.versioning) when git is installed
    host: str | None = None  # this machine's name in daily entries and sync (MEMC_HOST)
    sync_remote: str | None = None  # the git remote `memc sync` shares this root with
    schedule_sync: bool = False  # `memc schedule` runs `memc sync` too (opt-in)

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    @property
    def this_host(self) -> str:
        """This machine's host token (pipeline.hostname): the ``host`` setting / MEMC_HOST, else
        the name pinned in ``.memc/host``, else the system host name."""
        from pipeline.hostname import clean, pinned

        return clean(self.host) if self.host else pinned(self.paths.memc)

    def zone(self):
        """The ZoneInfo for MEMC_TZ (or the system zone when unset)."""
        return load_zone(self.tz)

    def day_of(self, at: float) -> str:
        """The day (YYYY-MM-DD) of the instant ``at`` (epoch seconds) in the configured zone:
        the one rule for which daily log, budget day and staleness day a moment belongs to."""
        from datetime import datetime

        return datetime.fromtimestamp(at, self.zone()).date().isoformat()


BACKENDS = ("claude", "extractive")

Parser = Callable[[Any], Any]  # a raw value (TOML value, env string, flag) -> the setting


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false")


def _whole(minimum: int) -> Parser:
    """A whole number >= ``minimum`` (``1.0`` is accepted, ``1.5`` is not)."""

    def parse(value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected a whole number")
        number = int(value)
        if number < minimum:
            raise ValueError("must not be negative" if minimum == 0 else f"must be >= {minimum}")
        return number

    return parse


def _number(minimum: float = 0.0, *, above: bool = False) -> Parser:
    """A finite number >= ``minimum`` (> ``minimum`` when ``above``)."""
    bound = f"{'>' if above else '>='} {minimum:g}"

    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        number = float(value)
        if not math.isfinite(number) or number < minimum or (above and number == minimum):
            raise ValueError(f"must be a finite number {bound}")
        return number

    return parse


def _share(value: Any) -> float:
    """A fraction in (0, 1]."""
    number = _number(0, above=True)(value)
    if number > 1:
        raise ValueError("must be a fraction > 0 and <= 1")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError("expected a string")
    return str(value).strip()


def _optional_text(value: Any) -> str | None:
    return _text(value) or None


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(p).strip() for p in value]
    else:
        raise ValueError("expected a list of strings or a comma-separated string")
    return tuple(p for p in items if p)


def _choice(options: tuple[str, ...]) -> Parser:
    def parse(value: Any) -> str:
        text = _text(value)
        if text not in options:
            raise ValueError(f"use one of {', '.join(options)}")
        return text

    return parse


# One parser per setting; its range is part of the contract (README "Configuration").
PARSERS: dict[str, Parser] = {
    "backend": _choice(BACKENDS),
    "claude_cli": _optional_text,
    "tz": _optional_text,  # checked when first used (Settings.zone): zoneinfo is not hook-cheap
    "flush_model": _text,
    "compile_model": _text,
    "query_model": _text,
    "daily_budget_usd": _number(0),  # 0: spend nothing (jobs wait)
    "job_budget_share": _share,
    "call_budget_usd": _number(0, above=True),
    "call_timeout_s": _number(0, above=True),
    "llm_max_attempts": _whole(1),
    "llm_max_retry_s": _number(0),
    "breaker_failures": _whole(0),  # 0: the breaker never opens
    "breaker_pause_min": _number(0),
    "compile_quiet_min": _number(0),
    "compile_max_delay_min": _number(0),
    "compile_min_interval_min": _number(0),
    "spawn_drain": _flag,
    "stop_min_lines": _whole(0),
    "stop_min_minutes": _number(0),
    "idle_capture_min": _number(0),  # 0: idle tails are not captured
    "spool_keep_days": _whole(0),
    "chunk_chars": _whole(1),
    "exclude_projects": _names,
    "git": _flag,  # false: never run git in this root (pipeline.versioning)
    "host": _optional_text,  # reduced to a host token by Settings.this_host
    "sync_remote": _optional_text,  # remembered by `memc sync --remote URL` (set_setting)
    "schedule_sync": _flag,
}


def load_zone(name: str | None):
    """ZoneInfo for an IANA name; None means the system's local zone. Bad names -> ConfigError."""
    from datetime import datetime

    if not name:
        return datetime.now().astimezone().tzinfo
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(
            f"MEMC_TZ={name!r} is not a known IANA time zone (e.g. Europe/Berlin, UTC): {exc}"
        ) from None


def parse_setting(key: str, value: Any, source: str) -> Any:
    """``value`` for setting ``key`` through its parser; ``source`` names where it came from."""
    try:
        return PARSERS[key](value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} from {source}: {value!r} is not valid ({exc})") from None


def _toml_problem(text: str, exc: Exception) -> str:
    """The TOML error, with the key of the offending line and, for a bare word, the fix."""
    import re

    match = re.search(r"at line (\d+)", str(exc))
    lines = text.splitlines()
    if not match or not 0 < int(match.group(1)) <= len(lines):
        return f"not valid TOML ({exc})"
    key, sep, value = lines[int(match.group(1)) - 1].partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        return f"not valid TOML ({exc})"
    hint = ""
    if re.fullmatch(r"[A-Za-z_][\w.-]*", value) and value not in ("true", "false"):
        hint = f'; text needs quotes: {key} = "{value}"'
    return f"{key}: not valid TOML ({exc}){hint}"


def read_toml(path: Path, fix: str) -> dict[str, Any]:
    """The table in a TOML file ({} when there is no file). ConfigError when it cannot be read
    or is not valid TOML; ``fix`` ends that message ("fix or remove it")."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; fix its permissions") from None
    import tomllib  # only for a file to parse: most roots have none, and it costs start-up

    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc}); {fix}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {_toml_problem(text, exc)}; {fix}") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    data = read_toml(path, "fix or remove it")
    unknown = sorted(k for k in data if k not in PARSERS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(PARSERS))}"
        )
    return data


def load_settings(
    root: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from flag > env > config.toml > default. Raises ConfigError on bad values."""
    env = os.environ if env is None else env
    root_path = resolve_root(root, env)
    values: dict[str, Any] = {}
    for key, value in _read_config_file(Paths(root_path).config_file).items():
        values[key] = parse_setting(key, value, "config.toml")
    for key in PARSERS:
        env_key = "MEMC_" + key.upper()
        if env_key in env and env[env_key] != "":
            values[key] = parse_setting(key, env[env_key], env_key)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in PARSERS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = parse_setting(key, value, "the command line")
    return Settings(root=root_path, **values)


def set_setting(paths: Paths, key: str, value: str) -> None:
    """Write ``key = "value"`` into .memc/config.toml (replacing that key's line, keeping the
    rest), checked by the key's parser first and the whole file read back after."""
    import json
    import re

    from pipeline.fsutil import atomic_write

    parse_setting(key, value, "memc")
    path = paths.config_file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    line = f"{key} = {json.dumps(value)}"  # a JSON string is a valid TOML basic string
    ours = re.compile(rf"^\s*{re.escape(key)}\s*=")
    kept = [old for old in lines if not ours.match(old)]
    atomic_write(path, "\n".join([line, *kept]) + "\n")  # first: before any [table]
    _read_config_file(path)


def require_initialised(settings: Settings) -> None:
    if not settings.paths.is_initialised():
        raise NotInitialised(
            f"{settings.root} is not a memory-compiler data root; run `memc init` there "
            "or pass --root DIR (or set MEMC_ROOT)"
        )
