"""Start a detached `memc drain` after a hook queued a job (the hook itself never distils).

Invariants: nothing is started when MEMC_SPAWN_DRAIN=0, when a working watcher holds the watcher
lock (it drains the inbox itself; one whose heartbeat is out of date, stopped with Ctrl-Z or
SIGSTOP, counts as absent: ``pipeline.watcherbeat``), or while the drain command does not
exist; the child gets MEMC_INTERNAL=1 (the hooks of its own LLM calls do nothing), its own
session (POSIX) or no console window (Windows), and no stdio. Never raises: the result is a
short text for the hook log. Stdlib only: this module is on the hook's hot path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: pipeline.config is not on the hook's hot path
    from pipeline.config import Settings
    from pipeline.hookconfig import HookSettings

# The module that provides `memc drain` (written by the distil stage). Until it exists, spawning a
# drain is a logged no-op rather than a child that fails with "no such command".
DRAIN_MODULES = ("pipeline.drain",)


def drain_available() -> bool:
    import importlib.util

    for name in DRAIN_MODULES:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def spawn_drain(settings: Settings | HookSettings, *, now: float | None = None) -> str:
    """Start a detached `memc drain` for this root; return what happened, for the hook log.

    Not started when MEMC_SPAWN_DRAIN=0, when a watcher holds the watcher lock and beats (it
    drains the inbox itself; ``now`` is the time its beat is judged at), or while the drain
    command does not exist yet. The child gets MEMC_INTERNAL=1
    so the hooks of its own LLM calls do nothing, its own session (POSIX) or no console window
    (Windows), and no stdio: it logs to .memc/logs/pipeline.log itself.
    """
    from pipeline.fsutil import lock_is_held
    from pipeline.watcherbeat import stalled

    if not settings.spawn_drain:
        return "drain=off"
    note = ""
    if lock_is_held(settings.paths.lock("watcher")):
        if not stalled(settings.paths, now):
            return "drain=watcher"
        note = ", watcher stalled"
    if not drain_available():
        return "drain=unavailable(no drain command yet; jobs wait in the inbox)"
    import subprocess
    import sys

    env = dict(os.environ, MEMC_INTERNAL="1")
    kwargs: dict = {}
    if sys.platform == "win32":  # pragma: no cover - Windows only
        kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--root", str(settings.root), "drain"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=str(settings.root),
            env=env,
            close_fds=True,
            **kwargs,
        )
    except OSError as exc:
        return f"drain=failed({exc.strerror or exc})"
    return f"drain=spawned(pid {child.pid}{note})"
