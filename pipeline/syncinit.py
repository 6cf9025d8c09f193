"""`memc init --from URL`: a new data root that starts with a shared history.

The next machine (or teammate) clones the remote the first one pushed with ``memc sync
--remote URL``, then gets the usual init (``.memc/`` state, ``.gitignore``, the daily-log merge
driver registered for THIS installation) and catches up its local databases from the files:
state.db learns every daily entry (the ones without a host, or another host's, belong to the
machine that distilled them and are not compiled here; the committed records mark what is
compiled already), the pages table learns who wrote each page last, and search.db indexes it all.

Invariants:
- Only into a new or empty folder: an existing root joins with ``memc sync --remote URL``.
- A failed clone leaves no half root: the folder is removed again if this call created it.
- The URL is remembered (``sync_remote``) and is the clone's ``origin``.
- The new root's host name is one no machine in the history uses (``unique_host``: ``laptop``
  becomes ``laptop-2`` when a ``laptop`` already wrote entries), unless MEMC_HOST or the
  ``host`` setting names one.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from pipeline import state, vcs, vcsremote, versioning
from pipeline.errors import ConfigError, GitError, SyncFailed


def clone_into(root: Path, url: str) -> None:
    """Clone ``url`` as ROOT (new or empty). ConfigError: not empty; SyncFailed: clone failed."""
    if vcs.git_exe() is None:
        raise ConfigError("init --from needs git: install git (or run `memc init` without it)")
    existed = root.exists()
    if existed and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(
            f"init --from needs a new or empty folder; {root} is not: to share an existing root "
            "run `memc sync --remote URL` in it"
        )
    try:
        vcsremote.clone(url, root)
    except GitError as exc:
        if not existed:
            shutil.rmtree(root, ignore_errors=True)
        elif root.is_dir():
            for child in root.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
        from pipeline.sync import shown_url

        raise SyncFailed(f"cannot clone {shown_url(url)}: {exc}") from None


def catch_up(settings, url: str) -> int:
    """After the clone and the usual init: remember the remote, learn the entries and pages,
    index everything. Returns how many daily entries state.db learned."""
    from pipeline import config, searchindex, sync

    root = Path(settings.root)
    config.set_setting(settings.paths, "sync_remote", url)
    if not settings.host:  # an explicit MEMC_HOST / host setting is the user's choice
        unique_host(settings.paths)
    with contextlib.closing(state.connect(settings.paths.state_db)) as conn:
        head = vcs.head(root)
        if head is not None:  # every file is new here: pages, entries (not ours), records
            sync.catch_up(settings, conn, root, None, head)
        learned = int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    with contextlib.suppress(OSError):
        searchindex.refresh(settings.paths, full=True)
    return learned


def hosts_in_history(daily_dir: Path) -> set[str]:
    """Every host the shared files name: entry markers' ``host=`` and the compiled records."""
    from pipeline import compiledrecord, daily

    found = {host for host, _ in compiledrecord.read_all(daily_dir).values()}
    for day in daily.list_days(daily_dir):
        found.update(e.host for e in daily.read_entries(daily_dir, day) if e.host)
    return found


def unique_host(paths) -> str:
    """Pin a host name no machine in the history uses: two laptops both called ``macbook-pro``
    would otherwise each take the other's entries for their own (and compile them twice)."""
    from pipeline import hostname

    mine = hostname.pinned(paths.memc)
    taken = hosts_in_history(paths.daily)
    if mine in taken:
        n = 2
        while f"{mine[:59]}-{n}" in taken:
            n += 1
        mine = f"{mine[:59]}-{n}"
        hostname.repin(paths.memc, mine)
    return mine


def summary(settings, url: str, learned: int) -> str:
    from pipeline.sync import shown_url

    done = versioning.enabled(settings)
    return (
        f"cloned {shown_url(url)}: {learned} daily entries known; this machine is "
        f"'{settings.this_host}'"
        + ("" if done else " (not versioned: check `memc doctor`)")
        + "; `memc sync` shares new work from here"
    )
