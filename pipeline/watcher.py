"""`memc watch`: the long-running worker. The ONLY module that imports watchdog.

A watchdog Observer on ``inbox/`` turns created/moved ``*.json`` events into a wake-up hint; a
periodic sweep (every ``sweep_s``) is the truth, so a missed event (network filesystems, an
overflowing inotify queue, a platform without events) delays a job by one sweep at most. A wake
waits ``debounce_s`` so a burst of captures is drained in one pass. Each cycle is one
``pipeline.drain.drain``, which also calls ``after_drain`` (the staleness-triggered compile).

Invariants:
- Single instance per data root through the ``watcher`` lock (waited on for at most
  ``LOCK_WAIT_S``, since hooks probe it for an instant). A second instance
  returns 0 at once after saying one is running: the desired state ("a watcher runs") holds, so
  service managers and ``@reboot`` cron lines may start it twice without an error. Hooks see the
  lock and skip spawning their own drains.
- Signal handlers (SIGTERM, SIGINT; main thread only) just set the stop event; the current job is
  released between chunks and resumes later. Handlers are restored and the Observer is stopped and
  joined in ``finally``: no thread outlives ``watch``.
- Crash-safe restart: every drain first returns claims of dead workers to the inbox; an
  unexpected error in a cycle is logged and retried after a sweep instead of killing the daemon.
- After a budget deferral or an open circuit breaker, wake-ups are ignored until the next sweep,
  so new captures cannot make it re-parse big spools in a loop.
- It beats (``pipeline.watcherbeat``) when it starts, while it waits and between the jobs and
  chunks of a drain: a watcher stopped with Ctrl-Z or SIGSTOP still holds its lock, but once its
  beat is older than twice its sweep plus a minute, hooks count it as absent and start drains.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from pipeline.config import Settings
from pipeline.errors import LockBusy
from pipeline.fsutil import TEMP_PREFIX, file_lock
from pipeline.logs import pipeline_logger
from pipeline.watcherbeat import Beat

POLL_S = 0.1  # how often a wait re-checks an externally set stop event
# Hooks and `memc status` probe the watcher lock by taking it for an instant (lock_is_held): a
# watcher starting at that moment waits this long before concluding another watcher runs.
LOCK_WAIT_S = 1.0


def _wake_handler(inbox_dir: str, wake: threading.Event):
    from watchdog.events import FileSystemEventHandler

    class InboxHandler(FileSystemEventHandler):
        def _hint(self, path: str) -> None:
            name = os.path.basename(path)
            if (
                os.path.dirname(path) == inbox_dir
                and name.endswith(".json")
                and not name.startswith((TEMP_PREFIX, "."))
            ):
                wake.set()

        def on_created(self, event) -> None:
            if not event.is_directory:
                self._hint(os.fsdecode(event.src_path))

        def on_moved(self, event) -> None:
            if not event.is_directory:
                self._hint(os.fsdecode(event.dest_path))

    return InboxHandler()


def _wait(
    wake: threading.Event | None,
    stop: threading.Event,
    timeout: float,
    beat: Callable[[], None] = lambda: None,
) -> bool:
    """Wait up to ``timeout`` for ``wake`` (True) while watching ``stop`` (then False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        beat()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if wake is None:
            stop.wait(min(POLL_S, left))
        elif wake.wait(min(POLL_S, left)):
            return True
    return False


@contextlib.contextmanager
def _signals_set(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):  # only a flag: the loop does the rest
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def watch(
    settings: Settings,
    *,
    backend=None,
    stop_event: threading.Event | None = None,
    sweep_s: float = 30.0,
    debounce_s: float = 0.25,
    on_cycle: Callable | None = None,
    on_event: Callable[[str], None] | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
    events: bool = True,
) -> int:
    """Run until ``stop_event`` is set (or SIGTERM/SIGINT). Returns the exit code (always 0).

    ``events=False`` runs on the sweep alone, with no Observer (what a missed event degrades to)."""
    from pipeline.drain import drain

    say = on_event or (lambda message: None)
    stop = stop_event if stop_event is not None else threading.Event()
    paths = settings.paths
    log = pipeline_logger(paths.logs)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(paths.lock("watcher"), timeout=lock_wait_s))
        except LockBusy:
            say(
                f"memc watch: another watcher is already running for {settings.root}; nothing to do"
            )
            return 0
        beat = Beat(paths, sweep_s)
        beat.start()
        wake = threading.Event()
        observer = None
        if events:
            from watchdog.observers import Observer

            observer = Observer()
            inbox = str(paths.inbox)
            observer.schedule(_wake_handler(inbox, wake), inbox, recursive=False)
        stack.enter_context(_signals_set(stop))
        if observer is not None:
            observer.start()
        try:
            log.info("watcher started (pid %d, sweep %.1fs)", os.getpid(), sweep_s)
            say(f"memc watch: watching {paths.inbox} (sweep every {sweep_s:g}s); Ctrl-C to stop")
            _loop(settings, drain, backend, stop, wake, sweep_s, debounce_s, on_cycle, log, beat)
        finally:
            if observer is not None:
                _stop_observer(observer)
            log.info("watcher stopped")
        say("memc watch: stopped")
    return 0


def _stop_observer(observer) -> None:
    """Stop and join the Observer. watchdog 7 logs a spurious ERROR ("queue_events() called when
    the thread is inactive") while its inotify emitter winds down; that one is muted here."""
    quiet = logging.getLogger("watchdog.observers.inotify")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        observer.stop()
        observer.join(timeout=10)
    finally:
        quiet.setLevel(level)


def _loop(settings, drain, backend, stop, wake, sweep_s, debounce_s, on_cycle, log, beat) -> None:
    def halted() -> bool:  # asked between jobs and chunks: a working watcher beats there too
        beat()
        return stop.is_set()

    while not stop.is_set():
        wake.clear()
        report = None
        try:
            report = drain(settings, backend=backend, stop=halted)
        except Exception as exc:  # keep the daemon alive; the next sweep tries again
            log.exception("watcher cycle failed: %s", exc)
        if on_cycle is not None:
            on_cycle(report)
        if stop.is_set():
            break
        if report is None or report.stopped:
            _wait(None, stop, sweep_s, beat)  # deferred, paused or broken: only the sweep wakes us
        elif _wait(wake, stop, sweep_s, beat):
            stop.wait(debounce_s)
