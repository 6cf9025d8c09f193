"""`memc doctor`: check the setup and say what to fix.

Each check returns a ``Check`` (ok / warn / fail, what was found, the fix). ``fail`` means the
pipeline cannot work as configured; ``warn`` means it works but something is missing or odd. Only
the selected backend's requirements can fail: with ``MEMC_BACKEND=extractive`` a missing Claude
CLI or missing credentials are warnings.

Secrets: credentials are checked for PRESENCE only (environment variable set, credentials file
exists). Their values are never read, compared or printed.
The only side effects: a temporary file created and removed in ``.memc/`` (to prove the root is
writable) and one ``<claude> --version`` subprocess with a timeout. state.db is opened without
its automatic recovery and checked with SQLite's quick_check (``pipeline.staterecovery``);
only `memc doctor --fix` repairs it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from pipeline.config import Settings, load_zone
from pipeline.errors import ConfigError

OK, WARN, FAIL = "ok", "warn", "fail"
REQUIRED_PACKAGES = (
    "claude-agent-sdk",
    "tenacity",
    "watchdog",
    "PyYAML",
    "click",
    "jsonschema",
    "mcp",
    "tzdata",
)
CREDENTIAL_ENV = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
CLOUD_ENV = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
VERSION_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def blocking(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def check_python(version: tuple[int, int] | None = None) -> Check:
    version = version or sys.version_info[:2]
    text = f"{version[0]}.{version[1]}"
    if version >= (3, 11):
        return Check("python", OK, f"Python {text} ({sys.executable})")
    return Check("python", FAIL, f"Python {text} is too old", "use Python 3.11 or newer")


def check_packages() -> list[Check]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    missing = []
    found = []
    for name in REQUIRED_PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            missing.append(name)
    if missing:
        out.append(
            Check(
                "packages",
                FAIL,
                "missing: " + ", ".join(missing),
                "reinstall: pip install -e . (or pip install memory-compiler)",
            )
        )
    else:
        out.append(Check("packages", OK, "; ".join(found)))
    try:
        own = version("memory-compiler")
        out.append(Check("memory-compiler", OK, f"installed, version {own}"))
    except PackageNotFoundError:
        out.append(
            Check(
                "memory-compiler",
                WARN,
                "running from a source checkout (not installed)",
                "pip install -e . gives the `memc` command; hooks work either way",
            )
        )
    return out


def bundled_cli() -> Path | None:
    """The CLI shipped inside claude_agent_sdk/_bundled (found without importing the SDK)."""
    spec = find_spec("claude_agent_sdk")
    if spec is None or not spec.submodule_search_locations:
        return None
    name = "claude.exe" if sys.platform == "win32" else "claude"
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_bundled" / name
        if candidate.is_file():
            return candidate
    return None


def resolve_cli(settings: Settings) -> tuple[str | None, str]:
    """(path, where it came from), in the SDK's order: MEMC_CLAUDE_CLI, bundled, PATH."""
    if settings.claude_cli:
        # a bare name (`claude_cli = "claude"`) is looked up on PATH, as starting the SDK does
        named = settings.claude_cli
        if os.sep not in named and not (os.altsep and os.altsep in named):
            return shutil.which(named) or named, "claude_cli setting, found on PATH"
        return named, "claude_cli setting (config.toml or MEMC_CLAUDE_CLI)"
    bundled = bundled_cli()
    if bundled:
        return str(bundled), "bundled with claude-agent-sdk"
    found = shutil.which("claude")
    return (found, "PATH") if found else (None, "")


def check_cli(
    settings: Settings, run: Callable[..., subprocess.CompletedProcess] = subprocess.run
) -> Check:
    level = FAIL if settings.backend == "claude" else WARN
    path, source = resolve_cli(settings)
    if not path:
        return Check(
            "claude-cli",
            level,
            "no Claude CLI found (none bundled, none on PATH)",
            "install Claude Code, or set MEMC_CLAUDE_CLI to the `claude` executable",
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return Check(
            "claude-cli",
            level,
            f"{path} ({source}) is not an executable file",
            "point MEMC_CLAUDE_CLI at the `claude` executable",
        )
    env = {**os.environ, "MEMC_INTERNAL": "1"}
    try:
        proc = run(
            [path, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        return Check(
            "claude-cli",
            level,
            f"{path} did not answer --version within {VERSION_TIMEOUT_S:.0f} s",
            "check the CLI runs by hand: `<path> --version`",
        )
    except OSError as exc:
        return Check(
            "claude-cli",
            level,
            f"{path} cannot be run: {exc.strerror or exc}",
            "reinstall Claude Code or fix MEMC_CLAUDE_CLI",
        )
    first = (proc.stdout or "").strip().splitlines()[:1]
    if proc.returncode != 0:
        return Check(
            "claude-cli",
            level,
            f"{path} --version exited {proc.returncode}",
            "run it by hand to see why; reinstall Claude Code or fix MEMC_CLAUDE_CLI",
        )
    return Check(
        "claude-cli", OK, f"{first[0] if first else 'answers --version'} ({source}: {path})"
    )


def check_credentials(settings: Settings, env: Mapping[str, str], home: Path) -> Check:
    present = [k for k in CREDENTIAL_ENV + CLOUD_ENV if env.get(k)]
    from pipeline.config import claude_dir

    creds_file = (
        claude_dir(None if env.get("CLAUDE_CONFIG_DIR") else home, env) / ".credentials.json"
    )
    if creds_file.exists():
        present.append(str(creds_file))
    if present:
        return Check("credentials", OK, "found: " + ", ".join(present) + " (values not read)")
    if settings.backend != "claude":
        return Check(
            "credentials",
            WARN,
            "none found (not needed by the extractive backend)",
            "for the claude backend: run `claude` once and log in, or set ANTHROPIC_API_KEY",
        )
    if sys.platform == "darwin":  # Claude Code keeps the login in the Keychain there
        return Check(
            "credentials",
            WARN,
            "no API key in the environment; a Keychain login cannot be checked",
            "if model calls fail with 401: run `claude` and log in, or set ANTHROPIC_API_KEY",
        )
    return Check(
        "credentials",
        FAIL,
        "no ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ~/.claude/.credentials.json",
        "run `claude` once and log in, or export ANTHROPIC_API_KEY "
        "(or use MEMC_BACKEND=extractive)",
    )


def check_backend(settings: Settings, env: Mapping[str, str]) -> Check:
    """Which backend runs here, and whether unattended runs (hook-started drains, cron, systemd,
    launchd) would pick the same one: they read .memc/config.toml but usually not this shell's
    exports, so MEMC_BACKEND=extractive exported here can still mean paid model calls there."""
    from pipeline.config import load_settings

    here = settings.backend
    if not env.get("MEMC_BACKEND"):
        return Check("backend", OK, f"{here} (from .memc/config.toml or the default)")
    try:
        unattended = load_settings(settings.root, env={}).backend
    except ConfigError:  # the config file problem is reported by the command itself
        return Check("backend", OK, f"{here} (from MEMC_BACKEND)")
    if unattended == here:
        return Check("backend", OK, f"{here} (MEMC_BACKEND agrees with .memc/config.toml)")
    return Check(
        "backend",
        WARN,
        f"{here} here (MEMC_BACKEND in this shell), but drains started by hooks or a "
        f"schedule, which read .memc/config.toml, would use {unattended}",
        f'put backend = "{here}" in {settings.paths.config_file} so every run agrees',
    )


def check_hooks(settings: Settings, home: Path, cwd: Path) -> Check:
    from pipeline.install import HOOK_EVENTS, installed_hooks, settings_path

    root = str(settings.root)
    here, elsewhere = set(), set()
    files = []
    shared = settings_path("project-shared", cwd=cwd, home=home)
    if installed_hooks(shared):
        return Check(
            "hooks",
            WARN,
            f"memc hooks in the team's shared {shared}: they hold this machine's paths",
            "run `memc install-hooks --scope project` (moves them to .claude/settings.local.json)",
        )
    for scope in ("user", "project"):
        path = settings_path(scope, cwd=cwd, home=home)
        for hook in installed_hooks(path):
            files.append(str(path))
            if hook.root and os.path.abspath(hook.root) == root:
                here.add(hook.event)
            else:
                elsewhere.add(hook.root or "?")
    wanted = {event for event, _, _ in HOOK_EVENTS}
    if here == wanted:
        return Check(
            "hooks",
            OK,
            f"all {len(wanted)} hooks point at this root ({', '.join(sorted(set(files)))})",
        )
    if here:
        missing = ", ".join(sorted(wanted - here))
        return Check(
            "hooks", WARN, f"hooks for this root lack {missing}", "run `memc install-hooks` again"
        )
    if elsewhere:
        return Check(
            "hooks",
            WARN,
            f"hooks installed for another root: {', '.join(sorted(elsewhere))}",
            f"run `memc --root {root} install-hooks` to capture into this root",
        )
    return Check(
        "hooks",
        WARN,
        "no memc hooks in ~/.claude/settings.json or ./.claude/settings.local.json",
        "run `memc install-hooks` (sessions are captured only by hooks, `capture` or `backfill`)",
    )


def check_root(settings: Settings) -> Check:
    paths = settings.paths
    if not paths.is_initialised():
        return Check("root", FAIL, f"{settings.root} is not initialised", "run `memc init` there")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".doctor-", dir=paths.memc)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return Check(
            "root",
            FAIL,
            f"cannot write in {paths.memc}: {exc.strerror}",
            "fix the folder's permissions",
        )
    return Check("root", OK, f"{settings.root} is initialised and writable")


def check_state(settings: Settings) -> Check:
    from pipeline.staterecovery import doctor_check

    status, detail, fix = doctor_check(settings.paths.state_db)
    return Check("state-db", status, detail, fix)


def check_timezone(settings: Settings) -> Check:
    try:
        zone = load_zone(settings.tz)
    except ConfigError as exc:
        return Check(
            "timezone", FAIL, str(exc), "set MEMC_TZ to an IANA name such as Europe/Berlin"
        )
    return Check("timezone", OK, f"{settings.tz or 'system zone'} ({zone})")


def check_fts5() -> Check:
    try:
        conn = sqlite3.connect(":memory:")
        try:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Check(
            "sqlite-fts5",
            FAIL,
            f"SQLite {sqlite3.sqlite_version} lacks FTS5 ({exc})",
            "use a Python build whose SQLite has FTS5 (python.org, Homebrew and most distros do)",
        )
    return Check("sqlite-fts5", OK, f"SQLite {sqlite3.sqlite_version} with FTS5")


def check_git(settings: Settings) -> Check:
    from pipeline.versioning import doctor_check

    status, detail, fix = doctor_check(settings)
    return Check("git", {"ok": OK, "warn": WARN}.get(status, FAIL), detail, fix)


def check_failed_jobs(settings: Settings) -> Check:
    if not settings.paths.is_initialised():
        return Check("failed-jobs", OK, "no inbox yet")
    from pipeline import inbox

    failed = inbox.failed_jobs(settings.paths)
    if not failed:
        return Check("failed-jobs", OK, "none")
    kinds = sorted({j.error_class for j in failed})
    return Check(
        "failed-jobs",
        WARN,
        f"{len(failed)} failed job(s): {', '.join(kinds)}",
        "`memc status` shows the reasons; fix the cause, then `memc retry`",
    )


def run_checks(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> list[Check]:
    """Every check, in the order a user should fix them."""
    from pipeline.syncstatus import check as check_sync

    env = os.environ if env is None else env
    home = home or Path.home()
    cwd = cwd or Path.cwd()
    return [
        check_python(),
        *check_packages(),
        check_root(settings),
        check_state(settings),
        check_timezone(settings),
        check_fts5(),
        check_backend(settings, env),
        check_cli(settings, run),
        check_credentials(settings, env, home),
        check_hooks(settings, home, cwd),
        check_git(settings),
        check_sync(settings),
        check_failed_jobs(settings),
    ]
