"""git's view of the root for `memc status` and `memc doctor`: versioned or not, what is
uncommitted (a person's edits and memc's), HEAD; reused between `memc status` calls while nothing
signals a change.

`git status` over a root of 20,000 pages stats every file: it alone costs about twice a bare
interpreter start. `memc status` follows the rule the search index already follows
(``pipeline.searchindex``): the last answer stands while the cheap signals are unchanged and it
is younger than ``FULL_CHECK_S``; otherwise git is asked again, started first so that it stats
the tree on another core while status reads the rest.

The signals: the folders' own stamps (``searchjournal.signals`` plus knowledge/ and the root:
any file created, renamed or deleted, so every atomic save by an editor or by memc), the length
of memc's change journal (appends memc makes in place), and the stamps of ``.git/index``,
``.git/HEAD`` and ``.git/logs/HEAD`` (every commit, merge, reset or checkout, by memc or by
hand). What none of them shows is another program rewriting a file in place; that is seen by the
next full check, at most ``FULL_CHECK_S`` later, as for search.

Invariants:
- Only `memc status` reads the cache (``start_repo_state``); doctor (``repo_state``), commits and
  sync always ask git.
- The cache is a file under ``.memc/cache/`` written atomically after a full check; a missing,
  unreadable or foreign cache is a full check. Never raises for the cache itself.
- A root whose ``.git`` is not a folder (a worktree or submodule link) is always checked in full.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import fsutil, searchindex, searchjournal, state, vcs
from pipeline.errors import MemcError
from pipeline.paths import Paths
from pipeline.versioning import SCOPE, classify, enabled, why_not

FULL_CHECK_S = searchindex.FULL_CHECK_S  # the same bound as search's full walk
VERSION = 1
Found = tuple[list[vcs.Change], str | None]  # (uncommitted changes, HEAD)


def cache_file(paths: Paths):
    return paths.memc / "cache" / "git-status.json"


def _stamp(path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def signature(paths: Paths) -> str | None:
    """The cheap signals, or None when the root's git folder cannot be watched this way."""
    git_dir = paths.root / ".git"
    if not git_dir.is_dir():
        return None
    parts = [searchjournal.signals(paths), _stamp(paths.knowledge), _stamp(paths.root)]
    parts.append(_stamp(searchjournal.journal_file(paths)))
    parts += [_stamp(git_dir / name) for name in ("index", "HEAD", os.path.join("logs", "HEAD"))]
    return "|".join(parts)


def _load(paths: Paths) -> dict | None:
    try:
        data = json.loads(cache_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == VERSION else None


def start(paths: Paths, scope: tuple[str, ...], now: float) -> Callable[[], Found]:
    """The root's uncommitted changes and HEAD: from the cache when it still stands, else git
    started now (collect the result by calling what this returns)."""
    sig = signature(paths)
    cached = _load(paths) if sig is not None else None
    if cached is not None and cached.get("signature") == sig:
        age = now - float(cached.get("at", 0.0))
        if 0 <= age < FULL_CHECK_S:
            try:
                found = [vcs.Change(str(s), str(p)) for s, p in cached["changes"]]
                head = cached.get("head")
            except (KeyError, TypeError, ValueError):
                found = None
            if found is not None:
                return lambda: (found, head)
    started = vcs.start_changes(paths.root, scope)

    def collect() -> Found:
        found = started()
        head = vcs.head(paths.root)
        if sig is not None:
            record = {
                "version": VERSION,
                "signature": sig,  # taken before git looked: a change meanwhile shows next time
                "at": now,
                "head": head,
                "changes": [[c.status, c.path] for c in found],
            }
            try:
                cache_file(paths).parent.mkdir(parents=True, exist_ok=True)
                fsutil.atomic_write(cache_file(paths), json.dumps(record))
            except OSError:
                pass
        return found, head

    return collect


@dataclass(frozen=True)
class RepoState:
    versioned: bool
    reason: str  # why not, or "git repository"
    head: str | None = None
    uncommitted_user: tuple[str, ...] = ()
    uncommitted_memc: tuple[str, ...] = ()


def start_repo_state(settings, now: float | None = None) -> Callable[[], RepoState]:
    """``repo_state`` for `memc status`: git's answer reused while nothing signals a change
    (the module docstring), else git started now, on another core, while the caller does
    its other reading; call the result for the state."""
    if not enabled(settings):
        return lambda: RepoState(False, why_not(settings))
    try:
        started = start(settings.paths, SCOPE, time.time() if now is None else now)
    except MemcError as exc:
        reason = f"git repository (cannot read its status: {exc})"  # exc is unbound after this
        return lambda: RepoState(True, reason)
    return lambda: repo_state(settings, started)


def repo_state(
    settings, started: Callable[[], tuple[list[vcs.Change], str | None]] | None = None
) -> RepoState:
    """For status and doctor: versioned or why not, and what is uncommitted (no writes).
    ``started``: (changes, HEAD) already asked for (``start_repo_state``)."""
    if not enabled(settings):
        return RepoState(False, why_not(settings))
    root = settings.root
    try:
        found, head = started() if started is not None else (None, None)
        with contextlib.closing(state.connect(settings.paths.state_db)) as conn:
            user, memc = classify(settings, conn, found=found)
        head = head if started is not None else vcs.head(root)
        return RepoState(True, "git repository", head, tuple(user), tuple(memc))
    except (MemcError, OSError, sqlite3.Error) as exc:
        return RepoState(True, f"git repository (cannot read its status: {exc})")
