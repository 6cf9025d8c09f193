"""The Claude Code plugin's launcher: run memc from the plugin's own files.

``plugin/bin/memc`` (run by ``python3``, as ``hooks/hooks.json``, ``.mcp.json`` and the slash
commands do) puts the plugin folder first on ``sys.path`` and calls ``main`` here. The plugin
folder holds the package (``plugin/pipeline`` links to the repository's ``pipeline/``; a
marketplace install copies it) and ``requirements.txt``, the drain's dependencies.

Invariants:
- Capture needs nothing but the standard library, so hooks work the moment the plugin is
  installed, with whatever ``python3`` is on PATH (3.11+), before anything is pip-installed.
- The drain's dependencies are installed once, into a private venv under
  ``$CLAUDE_PLUGIN_DATA`` (``deps_dir``), by a detached ``_bootstrap`` child that a hook starts
  and never waits for. One installer at a time (a lock); a failed install is retried an hour later
  at the earliest, and its log is kept. Until the venv is ready, hooks only spool
  (``MEMC_SPAWN_DRAIN=0``): jobs wait in the inbox, and SessionStart says so in one line
  (``MEMC_PLUGIN_DEPS`` tells ``pipeline.attention``).
- Once ready, every command re-executes itself under the venv's interpreter, so the drain a hook
  starts (``sys.executable -m pipeline``) has its dependencies; ``PYTHONPATH`` carries the
  plugin folder to it.
- The data root: ``--root`` / ``MEMC_ROOT`` / a data root as the current folder / the remembered
  root / ``~/memory``, which a hook initialises on first use (installing the plugin is the
  consent). Nothing is written anywhere else except the plugin's data folder.
Stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

READY, INSTALLING, FAILED, MISSING = "ready", "installing", "failed", "missing"
DISABLED = "disabled"  # missing, and MEMC_PLUGIN_BOOTSTRAP=0 forbids installing them
RETRY_AFTER_S = 3600.0
BOOTSTRAP_ENV = "MEMC_PLUGIN_BOOTSTRAP"  # "0": never install dependencies (tests, air-gapped)
STATE_ENV = "MEMC_PLUGIN_DEPS"  # for SessionStart: installing/failed/disabled (+ _LOG, _LAUNCHER)
_IN_VENV_ENV = "MEMC_PLUGIN_IN_VENV"


@dataclass(frozen=True)
class Deps:
    """The plugin's private venv and its bookkeeping files under the plugin data folder."""

    data: Path

    @property
    def venv(self) -> Path:
        return self.data / "venv"

    @property
    def python(self) -> Path:
        sub = ("Scripts", "python.exe") if os.name == "nt" else ("bin", "python")
        return self.venv.joinpath(*sub)

    @property
    def marker(self) -> Path:
        return self.venv / ".memc-ready"

    @property
    def failed(self) -> Path:
        return self.data / "bootstrap-failed"

    @property
    def log(self) -> Path:
        return self.data / "bootstrap.log"

    @property
    def lock(self) -> Path:
        return self.data / "bootstrap.lock"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$CLAUDE_PLUGIN_DATA`` (kept across plugin updates), else a folder under XDG data."""
    env = os.environ if env is None else env
    if env.get("CLAUDE_PLUGIN_DATA"):
        return Path(env["CLAUDE_PLUGIN_DATA"]).expanduser()
    base = env.get("XDG_DATA_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "memory-compiler" / "plugin"


def wanted(plugin_root: Path) -> str:
    """What a ready venv must have been built from: requirements.txt and this Python's version."""
    digest = hashlib.sha256((plugin_root / "requirements.txt").read_bytes()).hexdigest()[:16]
    return f"{digest} py{sys.version_info[0]}.{sys.version_info[1]}\n"


def deps_state(plugin_root: Path, deps: Deps, now: float | None = None) -> str:
    from pipeline.fsutil import lock_is_held

    now = time.time() if now is None else now
    try:
        if deps.python.exists() and deps.marker.read_text() == wanted(plugin_root):
            return READY
    except OSError:
        pass
    if deps.lock.exists() and lock_is_held(deps.lock):
        return INSTALLING
    try:
        if now - deps.failed.stat().st_mtime < RETRY_AFTER_S:
            return FAILED
    except OSError:
        pass
    return MISSING


def start_bootstrap(launcher: Path, deps: Deps) -> str:
    """Start the detached installer; return what happened (never waits, never raises)."""
    kwargs: dict = {}
    if os.name == "nt":  # pragma: no cover - Windows only
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kwargs["start_new_session"] = True
    try:
        deps.data.mkdir(parents=True, exist_ok=True)
        child = subprocess.Popen(
            [sys.executable, str(launcher), "_bootstrap"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, MEMC_INTERNAL="1"),
            close_fds=True,
            **kwargs,
        )
    except OSError as exc:
        return f"bootstrap=failed({exc})"
    return f"bootstrap=spawned(pid {child.pid})"


Runner = Callable[..., subprocess.CompletedProcess]


def bootstrap(plugin_root: Path, deps: Deps, *, run: Runner = subprocess.run) -> int:
    """Create the venv and pip-install requirements.txt into it; 0 on success, 1 on failure.

    Holds the bootstrap lock (a second installer returns 0 at once). Output goes to
    ``deps.log``; a failure writes ``deps.failed`` with the reason, success removes it.
    """
    from pipeline.errors import LockBusy
    from pipeline.fsutil import atomic_write, file_lock

    deps.data.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(deps.lock, blocking=False), open(deps.log, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} installing\n".encode())
            log.flush()
            steps = [
                [sys.executable, "-m", "venv", str(deps.venv)],
                [
                    str(deps.python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-r",
                    str(plugin_root / "requirements.txt"),
                ],
            ]
            for step in steps:
                done = run(step, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False)
                if done.returncode != 0:
                    why = f"`{' '.join(step[:4])} ...` exited {done.returncode}"
                    atomic_write(deps.failed, f"{why}; see {deps.log}\n")
                    log.write(f"failed: {why}\n".encode())
                    return 1
            atomic_write(deps.marker, wanted(plugin_root))
            deps.failed.unlink(missing_ok=True)
            log.write(b"ready\n")
            return 0
    except LockBusy:
        return 0


def _command(args: list[str]) -> tuple[str, str | None]:
    """(the command word, the --root value if given) of a memc argument list."""
    root = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--root" and i + 1 < len(args):
            root, i = args[i + 1], i + 2
        elif arg.startswith("--root="):
            root, i = arg.split("=", 1)[1], i + 1
        elif arg.startswith("-"):
            i += 1
        else:
            return arg, root
    return "", root


def resolve_root(env: Mapping[str, str], *, hook: bool) -> Path | None:
    """The data root for a plugin command; a hook initialises ``~/memory`` on first use."""
    from pipeline import roots
    from pipeline.errors import ConfigError

    try:
        found = roots.find_root(None, env, fallback=roots.default_root(env) if hook else None)
    except ConfigError:
        return None
    if hook and found.source == "default" and not roots.is_data_root(found.path):
        from pipeline.config import load_settings
        from pipeline.setup import init_root

        try:
            init_root(load_settings(found.path, env={}))
        except Exception:
            return found.path  # the hook logs that it is not initialised
    return found.path


def recent(root: Path, limit: int = 10) -> int:
    """`recent`: the newest daily-log entries, one line each (stdlib, works before the venv)."""
    from pipeline.daily import list_days, read_entries

    shown = 0
    for day in reversed(list_days(root / "daily")):
        for entry in reversed(read_entries(root / "daily", day)):
            print(f"{day} {entry.time} · {entry.project} · {entry.title}")
            shown += 1
            if shown >= limit:
                return 0
    if not shown:
        print(f"No entries yet in {root / 'daily'}; they appear after your next session ends.")
    return 0


def _not_ready(state: str, deps: Deps, launcher: Path) -> int:
    what = {
        INSTALLING: "are being installed in the background",
        FAILED: f"failed to install (see {deps.log})",
        MISSING: "are not installed yet (installing now, in the background)",
        DISABLED: f"are not installed ({BOOTSTRAP_ENV}=0)",
    }[state]
    sys.stderr.write(
        f"memc (plugin): the dependencies for this command {what}. Captured sessions wait in "
        f"the inbox meanwhile. To install now and see any error: python3 {launcher} bootstrap\n"
    )
    return 1


def main(argv: list[str], plugin_root: Path, launcher: Path) -> int:
    env = os.environ
    deps = Deps(data_dir(env))
    args = list(argv)
    if args[:1] == ["_bootstrap"]:
        return bootstrap(plugin_root, deps)
    if args[:1] == ["bootstrap"]:
        code = bootstrap(plugin_root, deps, run=subprocess.run)
        print("dependencies ready" if code == 0 else f"install failed; see {deps.log}")
        return code
    command, root_flag = _command(args)
    hook = command == "hook"
    state = deps_state(plugin_root, deps)
    paths = [str(plugin_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if state == READY and not env.get(_IN_VENV_ENV):
        env[_IN_VENV_ENV] = "1"
        if os.name == "nt":  # pragma: no cover - no exec there
            return subprocess.run([str(deps.python), str(launcher), *args], check=False).returncode
        os.execv(str(deps.python), [str(deps.python), str(launcher), *args])
    if state == MISSING and not env.get("MEMC_INTERNAL"):
        if env.get(BOOTSTRAP_ENV, "1") == "0":
            state = DISABLED
        else:
            start_bootstrap(launcher, deps)
            state = INSTALLING
    if state != READY:
        env.setdefault("MEMC_SPAWN_DRAIN", "0")  # no drain can run yet: jobs wait in the inbox
        env[STATE_ENV] = state
        env["MEMC_PLUGIN_LOG"] = str(deps.log)
        env["MEMC_PLUGIN_LAUNCHER"] = str(launcher)
    if root_flag is None:
        root = resolve_root(env, hook=hook)
        if root is not None:
            args = ["--root", str(root), *args]
            root_flag = str(root)
    if command == "recent":
        if root_flag is None:
            sys.stderr.write("memc: no knowledge base yet; run `memc setup` or start a session\n")
            return 2
        return recent(Path(root_flag))
    if not hook and state != READY:
        return _not_ready(state, deps, launcher)
    from pipeline.entry import main as memc_main

    return memc_main(args)
