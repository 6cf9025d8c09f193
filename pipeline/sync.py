"""`memc sync`: share one data root between machines and teammates over a git remote.

One sync, under the git lock and the compile lock (no compile, undo or memc commit runs
meanwhile): commit what is pending (a person's edits first, as themselves:
``pipeline.versioning``), keep the daily-log merge driver registered (``pipeline.dailymerge``),
fetch, integrate by merging (memc's commits are shared history: never rebased), regenerate
knowledge/index.md, check the outgoing commits, push. A push that loses a race (the remote moved
since the fetch) fetches and integrates again, up to ``ATTEMPTS`` times.

Invariants:
- Never leaves the work tree mid-merge or with conflict markers: daily logs merge entry by
  entry, conflicted knowledge pages resolve by ``pipeline.syncmerge``'s rules, and on any failure
  the merge is aborted (``git merge --abort``) and state.db's changes rolled back. A sync killed
  mid-integration leaves ``.memc/sync-merging`` (the commit it started from): the next sync
  aborts that merge, or catches state.db up when the merge commit was made. A merge a person
  has in progress is never touched: the sync is refused. Nothing local
  is lost: local commits stay, and a refused push keeps them for the next sync.
- Nothing private leaves: before every push each line the outgoing commits add is run through
  the redactor (``versioning.check_secrets``) and a commit touching ``.memc/`` is refused; either
  refuses the push naming file and line (exit 1, nothing pushed).
- After integrating, state.db and search.db catch up incrementally: knowledge pages the merge
  brought get their pages-table record (memc's when a memc commit wrote them last), daily files
  are rescanned (``pending.sync_entries``; entries without a host that arrived are another
  root's), the committed records mark entries compiled (``pending.reconcile``), and every changed
  file is noted for the search index.
- The remote: ``--remote URL`` is set as git remote ``origin`` (or ``memc`` when origin is
  something else) and remembered (``sync_remote`` in .memc/config.toml, never committed) once a
  sync with it worked; a URL that failed leaves both as they were.
- The last sync's time and result are kept in state.db (kv ``last_sync``) for ``memc status``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import fsutil, pending, state, vcs, vcsremote, versioning
from pipeline.errors import ConfigError, GitError, MemcError, NotVersioned, SyncFailed
from pipeline.syncstatus import LAST_SYNC_KEY, last_sync, shown_url

__all__ = ["SyncReport", "check_outgoing", "configure_remote", "last_sync", "run_sync", "shown_url"]

ATTEMPTS = 4
UNSAVED_ROUNDS = 3  # pre-commit + integrate again when a drain appended in between
ALT_REMOTE = "memc"


@dataclass(frozen=True)
class SyncReport:
    status: str  # synced | up-to-date
    message: str
    remote: str  # the URL, credentials hidden
    branch: str
    pulled: int = 0  # commits brought in
    pushed: int = 0  # commits sent
    attempts: int = 1
    taken_theirs: tuple[str, ...] = ()
    kept_ours: tuple[str, ...] = ()
    repended: tuple[str, ...] = ()  # this host's entries to compile again
    head: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def _require(settings) -> Path:
    if not versioning.enabled(settings):
        raise NotVersioned(
            f"{settings.root} is not versioned ({versioning.why_not(settings)}); sync needs git"
        )
    return Path(settings.root)


def configure_remote(settings, url: str | None) -> tuple[str, str, str | None]:
    """(git remote name, URL, that remote's URL before) to sync with; ConfigError when none is
    known. A given ``url`` is set on the git remote now and remembered in config.toml only once a
    sync with it has worked (``run_sync``), so a mistyped URL is not kept."""
    root = Path(settings.root)
    origin = vcsremote.remote_url(root, "origin")
    if url is not None:
        url = url.strip()
        if not url:
            raise ConfigError("--remote needs a URL (e.g. file:///srv/memory.git, git@host:me/m)")
    else:
        url = settings.sync_remote or origin
    if not url:
        raise ConfigError(
            "no remote to sync with: run `memc sync --remote URL` once (a git repository every "
            "machine can reach, e.g. an empty bare repository: git init --bare memory.git)"
        )
    name = "origin" if origin in (None, url) else ALT_REMOTE
    before = vcsremote.remote_url(root, name)
    if before != url:
        vcsremote.set_remote(root, name, url)
    return name, url, before


def run_sync(settings, *, remote: str | None = None, attempts: int = ATTEMPTS) -> SyncReport:
    """One sync (see the module docstring). SyncFailed / SecretRefused (exit 1) with a one-line
    reason when it cannot finish; the last result is remembered either way."""
    from pipeline import config

    root = _require(settings)
    name, url, before = configure_remote(settings, remote)
    try:
        report = _sync(settings, root, name, url, attempts)
    except BaseException as exc:
        if before != url:  # a new URL that did not work: the git remote goes back as it was
            with contextlib.suppress(MemcError):
                if before:
                    vcsremote.set_remote(root, name, before)
                else:
                    vcsremote.drop_remote(root, name)
        if isinstance(exc, GitError):
            message = f"sync with {shown_url(url)} failed: {exc}; nothing local was lost"
            _remember(settings, "failed", message)
            raise SyncFailed(message) from None
        if isinstance(exc, MemcError):
            _remember(settings, "failed", str(exc))
        raise
    if settings.sync_remote != url:
        config.set_setting(settings.paths, "sync_remote", url)
    _remember(settings, report.status, report.message)
    return report


def _remember(settings, status: str, message: str) -> None:
    value = json.dumps({"at": time.time(), "status": status, "message": message[:300]})
    try:
        with contextlib.closing(state.connect(settings.paths.state_db)) as conn:
            state.kv_set(conn, LAST_SYNC_KEY, value)
    except (MemcError, OSError, sqlite3.Error):
        pass  # bookkeeping only: the sync itself is done (or failed) either way


def _sync(settings, root: Path, name: str, url: str, attempts: int) -> SyncReport:
    from pipeline import dailymerge

    paths = settings.paths
    dailymerge.install(root)  # keeps .gitattributes and the driver of THIS installation
    with _locks(paths) as conn:  # before any commit: a commit cannot run mid-merge
        _recover(settings, conn, root)
    branch = vcsremote.branch(root)
    if branch is None:
        raise SyncFailed("the root's git HEAD is not on a branch: `git checkout` one, then sync")
    shown = shown_url(url)
    for _ in range(UNSAVED_ROUNDS):
        with versioning.batch(settings, "sync", scope=versioning.SCOPE) as pre:
            pre.subject = "sync: changes not yet committed"
        if pre.error:  # a secret in an edit, git refusing: say that, not what it leads to later
            raise SyncFailed(f"not synced: changes here could not be committed: {pre.error}")
        try:
            return _exchange(settings, root, name, branch, shown, attempts)
        except _Unsaved:
            continue  # a drain appended meanwhile: commit that too, then integrate again
    raise SyncFailed(
        f"sync with {shown} gave up: daily logs kept changing while it ran (a drain writing "
        "many entries?); nothing was lost, run `memc sync` again"
    )


class _Unsaved(Exception):
    """A daily log the integration would rewrite has changes not committed yet."""


def _exchange(settings, root: Path, name: str, branch: str, shown: str, attempts: int):
    with _locks(settings.paths) as conn:
        _recover(settings, conn, root)
        pulled, res = 0, None
        for attempt in range(1, attempts + 1):
            theirs = vcsremote.fetch(root, name, branch)
            if theirs and not vcsremote.is_ancestor(root, theirs, "HEAD"):
                got, merged = _integrate(settings, conn, root, theirs, shown)
                pulled += got
                res = merged or res
            upstream = vcsremote.tracking_ref(name, branch) if theirs else None
            out = vcsremote.outgoing(root, upstream)
            if out:
                check_outgoing(root, upstream)
                if not vcsremote.push(root, name, branch):
                    continue  # the remote moved since the fetch: fetch and integrate again
                vcs.run(root, "update-ref", vcsremote.tracking_ref(name, branch), "HEAD")
            return _report(settings, shown, branch, pulled, len(out), attempt, res, root)
    raise SyncFailed(
        f"sync with {shown} gave up: the remote kept moving during {attempts} attempts (other "
        "machines pushing at the same time); your commits are kept, run `memc sync` again"
    )


@contextlib.contextmanager
def _locks(paths):
    """The writers' locks in their order (compile, knowledge, git: as undo takes them, so
    nothing waits on a lock held by a process waiting on ours) and a state.db connection."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(fsutil.file_lock(paths.lock("compile"), timeout=600))
        stack.enter_context(fsutil.file_lock(paths.lock("knowledge"), timeout=120))
        stack.enter_context(fsutil.file_lock(paths.lock("git"), timeout=120))
        yield stack.enter_context(contextlib.closing(state.connect(paths.state_db)))


def _marker(settings) -> Path:
    """``.memc/sync-merging``: the commit an integration started from, while it runs."""
    return settings.paths.memc / "sync-merging"


def _recover(settings, conn, root: Path) -> None:
    """Finish what a sync killed mid-integration left: its merge in progress is aborted (back to
    the commit it started from), or, killed after its merge commit, state.db and search.db catch
    up now. A merge in progress that no sync started is a person's: refused, left alone."""
    marker = _marker(settings)
    try:
        start = marker.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        start = ""
    if vcsremote.merging(root) and not start:
        raise SyncFailed(
            "a git merge is in progress in the root (not memc's): finish it (`git commit`) or "
            "abort it (`git merge --abort`), then run `memc sync` again"
        )
    if vcsremote.merging(root):
        vcsremote.merge_abort(root)
    elif start and vcs.resolve(root, start) and vcs.head(root) not in (None, start):
        catch_up(settings, conn, root, start, vcs.head(root) or "HEAD")
    marker.unlink(missing_ok=True)


def _report(settings, shown, branch, pulled, pushed, attempt, res, root) -> SyncReport:
    parts = [f"pulled {pulled} commit(s)" if pulled else "", f"pushed {pushed}" if pushed else ""]
    done = " and ".join(p for p in parts if p)
    status = "synced" if done else "up-to-date"
    message = f"synced with {shown}: {done}" if done else f"up to date with {shown}"
    repended = tuple(res.repended) if res else ()
    if repended:
        message += (
            f"; {len(repended)} of this machine's entries compile again into pages the remote "
            "changed too (the next compile does it; `memc compile` now)"
        )
    return SyncReport(
        status, message, shown, branch, pulled, pushed, attempt,
        tuple(res.taken_theirs) if res else (), tuple(res.kept_ours) if res else (),
        repended, vcs.head(root),
    )  # fmt: skip


def check_outgoing(root: Path, upstream: str | None) -> None:
    """Refuse the push (SyncFailed / SecretRefused naming file and line) when an outgoing commit
    touches .memc/ or adds a line the redactor would change."""
    for rel in sorted(vcsremote.outgoing_paths(root, upstream)):
        if rel.startswith(".memc/") or "/.memc/" in rel:
            raise SyncFailed(
                f"not pushed: a commit here touches {rel} (machine state under .memc/, which "
                "holds raw session text); remove it from your history first"
            )
    versioning.check_secrets(
        vcsremote.added_lines(root, upstream),
        verb="pushed",
        fix="remove it and rewrite the commit that added it (git rebase -i / git commit "
        "--amend); your commits are kept and nothing was pushed",
    )


def _integrate(settings, conn, root: Path, theirs: str, shown: str):
    """Bring ``theirs`` in: a fast-forward, or a merge whose conflicts syncmerge resolves.
    Returns (commits brought in, the Resolution or None).

    Drains append to daily logs under each file's own lock (``daily.append_entry``) and take no
    git lock, so the daily logs the integration rewrites are held with that same lock while it
    runs: an append waits (and then lands in the merged file), and one made since the pre-sync
    commit sends the sync back to commit it first (``_Unsaved``) instead of git refusing."""
    from pipeline import daily

    before = vcs.head(root)
    logs = sorted({p for _, p in vcsremote.changed_between(root, before, theirs) if _is_daily(p)})
    with contextlib.ExitStack() as held:
        for rel in logs:
            log = daily.guarded_daily_path(root / "daily", Path(rel).stem)  # names from git
            if log.is_file():  # a lock would create a missing one: git must write it
                held.enter_context(fsutil.file_lock(log, timeout=daily.LOCK_WAIT_S))
        if logs and vcs.changes(root, logs):
            raise _Unsaved(logs[0])
        return _integrate_held(settings, conn, root, theirs, shown, before)


def _is_daily(rel: str) -> bool:
    from pipeline.daily import DAY_RE

    return rel.startswith("daily/") and rel.endswith(".md") and bool(DAY_RE.match(rel[6:-3]))


def _integrate_held(settings, conn, root: Path, theirs: str, shown: str, before: str | None):
    from pipeline import syncmerge, wikiindex

    count = len(vcs.run(root, "rev-list", f"HEAD..{theirs}").stdout.split())
    marker = _marker(settings)
    fsutil.atomic_write(marker, (before or "") + "\n")  # until caught up (see _recover)
    if before is None or vcsremote.is_ancestor(root, before, theirs):
        vcsremote.fast_forward(root, theirs)
        catch_up(settings, conn, root, before, theirs)
        _commit_index(settings, root)
        marker.unlink(missing_ok=True)
        return count, None
    base = vcsremote.merge_base(root, before, theirs)
    today = settings.day_of(time.time())  # the dated section's heading, in MEMC_TZ
    try:
        with state.transaction(conn):
            clean = vcsremote.merge_start(root, theirs, _env(root))
            res = None if clean else syncmerge.resolve(settings, conn, base, before, today)
            left = vcsremote.unmerged(root)
            if left:
                raise SyncFailed(f"not merged: {left[0]} is still conflicted; nothing changed")
            wikiindex.write_index(settings.paths)  # the caller holds the knowledge lock
            vcs.run(root, "add", "--", "knowledge/index.md")
            vcsremote.merge_commit(root, _merge_message(settings, shown, count, res), _env(root))
    except BaseException:
        vcsremote.merge_abort(root)
        marker.unlink(missing_ok=True)
        raise
    catch_up(settings, conn, root, before, vcs.head(root) or theirs)
    marker.unlink(missing_ok=True)
    return count, res


def _env(root: Path) -> dict[str, str]:
    committer = vcs.identity(root, "COMMITTER") or versioning.MEMC_AUTHOR
    name, email = versioning.MEMC_AUTHOR
    return {
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1],
    }  # fmt: skip


def _merge_message(settings, shown: str, count: int, res) -> str:
    subject = f"sync: merged {count} commit(s) from {shown}"
    if res and res.taken_theirs:
        subject += f"; {len(res.taken_theirs)} page(s) recompile here"
    trailers = [
        (versioning.TRAILER_OP, "sync"), (versioning.TRAILER_HOST, settings.this_host),
    ]  # fmt: skip
    return subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers) + "\n"


def _commit_index(settings, root: Path) -> None:
    """After a fast-forward: index.md regenerated (the caller holds the knowledge lock) and
    committed only when it changed."""
    from pipeline import wikiindex

    result = wikiindex.write_index(settings.paths)
    if getattr(result, "written", False):
        vcs.stage(root, ["knowledge/index.md"])
        changed, _ = vcs.staged_diff(root, ["knowledge/index.md"], vcs.head(root))
        if changed:
            message = (
                f"sync: index.md regenerated\n\n{versioning.TRAILER_OP}: sync\n"
                f"{versioning.TRAILER_HOST}: {settings.this_host}\n"
            )
            vcs.commit(root, ["knowledge/index.md"], message, author=versioning.MEMC_AUTHOR,
                       fallback_committer=versioning.MEMC_AUTHOR)  # fmt: skip


def catch_up(settings, conn, root: Path, old: str | None, new: str) -> None:
    """state.db and search.db learn what ``old..new`` changed (see the module docstring)."""
    from pipeline import pages, searchjournal

    paths = settings.paths
    changed = vcsremote.changed_between(root, old, new)
    know = [p for s, p in changed if p.startswith("knowledge/") and p not in versioning.GENERATED]
    people = vcsremote.touched_by_others(root, old, new, know, versioning.MEMC_AUTHOR[1])
    days = {Path(p).stem for _, p in changed if p.startswith("daily/") and p.count("/") == 1}
    marks = ",".join("?" * len(days))
    from pipeline import dailymerge

    ours: set[str] = set()  # entries this root had before: its own, or known already
    for day in days:
        before = vcs.show(root, old, f"daily/{day}.md") if old else None
        ours.update(b.key for b in dailymerge.split(before or ""))
    with state.transaction(conn):
        for rel in know:
            try:
                data: bytes | None = fsutil.safe_join(root, rel).read_bytes()
            except (OSError, MemcError):  # gone, or a path the guard refuses: no record of it
                data = None
            pages.record(conn, rel, data, user_edited=rel in people)  # the flag is sticky
        pending.sync_entries(settings, conn)
        rows = conn.execute(
            f"SELECT id FROM entries WHERE host='' AND day IN ({marks})", [*days]
        ).fetchall()
        pending.mark_foreign(conn, [r[0] for r in rows if r[0] not in ours])
        pending.reconcile(settings, conn)
    for _, rel in changed:
        if rel.endswith(".md"):  # the records under daily/.compiled/ are not indexed
            searchjournal.note_change(paths, rel)
