"""The watcher's heartbeat: how hooks tell a working watcher from a stopped one.

A watcher holds the ``watcher`` lock for as long as its process exists, stopped or not (Ctrl-Z,
SIGSTOP, a laptop's frozen session): the lock alone would have hooks hand every job to a watcher
that will not take it. So the watcher also beats: ``.memc/locks/watcher.beat``, whose mtime is the
last beat and whose text is the watcher's bound in seconds (``bound_for``: twice its sweep plus a
minute). It beats when it starts, while it waits for the next sweep, and between jobs and chunks
of a drain, at most every ``BEAT_S`` (one ``utime``).

Invariants:
- ``running`` is true when the watcher lock is held and the beat is within its bound of ``now``
  (either side: a clock set back leaves a beat "in the future", which says nothing either).
  A watcher that has not beaten for longer counts as absent, and hooks start their own drain.
  Concurrent drains are safe (claim by rename), so a watcher wrongly taken for stalled (a model
  call, or the compile after a drain, lasting longer than the bound) costs one more drain per
  hook meanwhile, never a wrong result.
- A held lock with no beat file (a watcher of an earlier version) counts as running, as before.
- Stdlib only, no writes: ``running`` is on the hook's hot path (one stat, one small read).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.paths import Paths

BEAT_S = 5.0  # the most often a watcher touches its beat file
MIN_BOUND_S = 60.0


def beat_file(paths: Paths):
    return paths.locks / "watcher.beat"


def bound_for(sweep_s: float) -> float:
    """How long a watcher sweeping every ``sweep_s`` may go without a beat and still count."""
    return 2 * max(0.0, sweep_s) + MIN_BOUND_S


def running(paths: Paths, now: float | None = None) -> bool:
    """Is a watcher holding the lock and beating? (See the module docstring.)"""
    from pipeline.fsutil import lock_is_held

    if not lock_is_held(paths.lock("watcher")):
        return False
    return not stalled(paths, now)


def stalled(paths: Paths, now: float | None = None) -> bool:
    """Has the watcher's last beat fallen out of its bound? False when there is no beat file."""
    now = time.time() if now is None else now
    try:
        fd = os.open(beat_file(paths), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unreadable: no evidence of a working watcher
    try:
        at = os.fstat(fd).st_mtime
        text = os.read(fd, 32)
    except OSError:
        return True
    finally:
        os.close(fd)
    try:
        bound = max(float(text.decode("ascii").strip()), MIN_BOUND_S)
    except (ValueError, UnicodeDecodeError):
        bound = MIN_BOUND_S
    return abs(now - at) > bound


class Beat:
    """The watcher's side: ``Beat(paths, sweep_s)()`` touches the file at most every BEAT_S.

    ``clock`` (monotonic) decides when to beat; the mtime written is the file system's now."""

    def __init__(self, paths: Paths, sweep_s: float, *, clock=time.monotonic) -> None:
        self.path = beat_file(paths)
        self.text = f"{bound_for(sweep_s):g}\n"
        self.clock = clock
        self.last: float | None = None

    def __call__(self) -> None:
        at = self.clock()
        if self.last is not None and at - self.last < BEAT_S:
            return
        self.last = at
        try:
            os.utime(self.path)
            return
        except FileNotFoundError:
            pass
        except OSError:
            return  # a beat is a hint: a failed one makes hooks start a drain, nothing worse
        try:
            from pipeline.fsutil import atomic_write

            atomic_write(self.path, self.text)
        except OSError:
            pass

    def start(self) -> None:
        """The first beat of this watcher: the file is (re)written with its own bound."""
        from pipeline.fsutil import atomic_write

        self.last = self.clock()
        try:
            atomic_write(self.path, self.text)
        except OSError:
            pass
