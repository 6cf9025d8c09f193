"""`memc status`: one cheap snapshot of the pipeline.

Counts only: folder listings of the inbox and the knowledge base, a handful of indexed SQLite
queries, and the trigger decision; no model call. File contents read: only the small error
records of failed jobs, and daily logs changed since the compiler's last scan. Status moves and
rewrites no file; its only write is the compiler's own entry bookkeeping in state.db
(``should_compile`` syncs daily entries first). Safe to run while hooks, drains, the watcher or a
compile are busy.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import pending, state, watcherbeat
from pipeline.config import Paths, Settings

FAILED_SHOWN = 20


@dataclass(frozen=True)
class FailedInfo:
    id: str
    error_class: str
    message: str
    attempts: int
    failed_at: str


@dataclass(frozen=True)
class Status:
    root: str
    pending: int
    claimed: int
    failed: int
    failed_jobs: tuple[FailedInfo, ...]
    last_capture_at: float | None
    last_drain_at: float | None
    last_compile_at: float | None
    entries_pending: int
    oldest_pending_at: float | None
    compile_would_fire: bool
    compile_reason: str
    spent_today_usd: float
    calls_today: int
    budget_usd: float
    breaker_open_until: float | None
    watcher_running: bool
    articles: int
    daily_files: int
    backend: str
    versioned: bool = False
    versioning: str = ""  # "git repository", or why the root is not versioned
    uncommitted_user: tuple[str, ...] = ()  # edits of yours the next memc batch commits first
    uncommitted_memc: tuple[str, ...] = ()
    sync: dict[str, Any] = field(default_factory=dict)  # pipeline.syncstatus.summary

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kv_time(conn, key: str) -> float | None:
    value = state.kv_get(conn, key)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _count_md(folder: Path, *, recursive: bool) -> int:
    if not folder.is_dir():
        return 0
    pattern = "**/*.md" if recursive else "*.md"
    return sum(1 for p in folder.glob(pattern) if p.is_file())


def count_articles(paths: Paths) -> int:
    """The articles of knowledge/, counted by the search index after a refresh (which costs a
    few stats when nothing changed: ``searchindex``), not by a glob of every file."""
    from pipeline import search, searchindex

    try:
        searchindex.refresh(paths)
        index = search.open_index(paths)
    except (OSError, sqlite3.Error):
        index = None
    if index is None:  # no usable index (read-only folder?): count the files
        return sum(
            _count_md(paths.knowledge / sub, recursive=True)
            for sub in ("concepts", "connections", "qa")
        )
    with index:
        return index.article_count()


def collect(settings: Settings, *, now: float | None = None) -> Status:
    """Gather the snapshot. ``now`` (epoch seconds) is injectable for tests. git's status of the
    root is started first and read last, so it stats the tree on another core meanwhile."""
    from pipeline.repostate import start_repo_state

    repo_state = start_repo_state(settings, now)
    try:
        return _collect(settings, time.time() if now is None else now, repo_state)
    except BaseException:
        with contextlib.suppress(Exception):
            repo_state()  # reap the git process before the error goes on
        raise


def _collect(settings: Settings, now: float, repo_state) -> Status:
    from pipeline import inbox
    from pipeline.llm import calls

    paths = settings.paths
    counts = inbox.counts(paths)
    failed = sorted(inbox.failed_jobs(paths), key=lambda j: str(j.failed_at), reverse=True)
    conn = state.connect(paths.state_db)
    try:
        decision = pending.should_compile(settings, conn, now=now)  # syncs entries first
        row = conn.execute(
            "SELECT count(*), min(created_at) FROM entries "
            f"WHERE {pending.PENDING} AND {pending.OWN}",
            (settings.this_host,),
        ).fetchone()
        ledger = calls.ledger_summary(conn, settings, now=now)
        from pipeline import syncstatus

        sync_info = syncstatus.summary(settings, conn)
        last = {
            k: _kv_time(conn, k) for k in ("last_capture_at", "last_drain_at", "last_compile_at")
        }
        # the extractive backend records its runs in the ledger too, but they are no model calls
        model_calls = int(
            conn.execute(
                "SELECT count(*) FROM llm_calls WHERE day=? AND backend != 'extractive'",
                (ledger["day"],),
            ).fetchone()[0]
        )
    finally:
        conn.close()
    repo = repo_state()
    return Status(
        root=str(settings.root),
        pending=counts.pending,
        claimed=counts.claimed,
        failed=counts.failed,
        failed_jobs=tuple(
            FailedInfo(j.id, j.error_class, j.message, j.attempts, str(j.failed_at))
            for j in failed[:FAILED_SHOWN]
        ),
        last_capture_at=last["last_capture_at"],
        last_drain_at=last["last_drain_at"],
        last_compile_at=last["last_compile_at"],
        entries_pending=int(row[0] or 0),
        oldest_pending_at=row[1],
        compile_would_fire=bool(decision.fire),
        compile_reason=decision.reason,
        spent_today_usd=float(ledger["spent_usd"]),
        calls_today=model_calls,
        budget_usd=float(ledger["budget_usd"]),
        breaker_open_until=ledger["breaker_open_until"],
        watcher_running=watcherbeat.running(paths, now),  # a stopped one counts as absent
        articles=count_articles(paths),
        daily_files=_count_md(paths.daily, recursive=False),
        backend=settings.backend,
        versioned=repo.versioned,
        versioning=repo.reason,
        uncommitted_user=repo.uncommitted_user,
        uncommitted_memc=repo.uncommitted_memc,
        sync=sync_info,
    )


def report(settings: Settings, *, as_json: bool = False, now: float | None = None) -> str:
    """What `memc status` prints: the snapshot's lines followed by the ``attention:`` lines
    SessionStart would show, or (``as_json``) one JSON document with ``attention`` in it."""
    from pipeline.attention import notices

    now = time.time() if now is None else now
    st = collect(settings, now=now)
    attention = notices(settings.paths, now=now)  # what SessionStart would flag, in full
    if as_json:
        data = {**st.to_dict(), "attention": attention}
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return "\n".join([*render_text(st, now), *(f"attention: {item}" for item in attention)])


def ago(ts: float | None, now: float) -> str:
    """'never', 'just now', '5 min ago', '3 h ago', '2 days ago'."""
    if ts is None:
        return "never"
    delta = max(0.0, now - ts)
    if delta < 60:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 86400 * 2:
        return f"{int(delta // 3600)} h ago"
    return f"{int(delta // 86400)} days ago"


def render_text(st: Status, now: float) -> list[str]:
    """Human lines for `memc status`, each ending with what to do when something needs care."""
    lines = [f"memory-compiler at {st.root} (backend: {st.backend})"]
    lines.append(f"inbox: {st.pending} pending, {st.claimed} being processed, {st.failed} failed")
    for job in st.failed_jobs:
        lines.append(
            f"  failed {job.id}: {job.error_class}: {job.message} (attempts {job.attempts}, "
            f"{job.failed_at})"
        )
    if st.failed:
        lines.append("  -> fix the cause, then `memc retry` (all) or `memc retry JOB_ID`")
    model = st.backend != "extractive"
    budget_hit = model and st.spent_today_usd >= st.budget_usd
    if st.pending and budget_hit:
        lines.append(
            "  -> they wait: model calls are over today's budget (see `spend today` below)"
        )
    elif st.pending and not st.watcher_running:
        lines.append(
            "  -> `memc drain` processes them now (or install a schedule: `memc schedule cron`)"
        )
    lines.append(
        f"last capture: {ago(st.last_capture_at, now)}; last drain: {ago(st.last_drain_at, now)}; "
        f"last compile: {ago(st.last_compile_at, now)}"
    )
    fire = "would run now" if st.compile_would_fire else "would wait"
    lines.append(
        f"entries not yet compiled: {st.entries_pending}; compile --if-stale {fire} "
        f"({st.compile_reason})"
    )
    lines.append(
        f"spend today: ${st.spent_today_usd:.2f} of ${st.budget_usd:.2f} "
        f"({st.calls_today} model calls)"
    )
    if budget_hit and st.budget_usd <= 0:
        lines.append(
            "  -> the daily budget is 0: no model calls at all; raise MEMC_DAILY_BUDGET_USD "
            "(or daily_budget_usd in .memc/config.toml), or use MEMC_BACKEND=extractive"
        )
    elif budget_hit:
        lines.append(
            "  -> budget reached: jobs wait until tomorrow, or raise MEMC_DAILY_BUDGET_USD"
        )
    if st.breaker_open_until:
        until = time.strftime("%H:%M:%S", time.localtime(st.breaker_open_until))
        lines.append(
            f"circuit breaker: OPEN until {until} (repeated transient failures; "
            "`memc doctor` checks the CLI)"
        )
    else:
        lines.append("circuit breaker: closed")
    lines.append(f"watcher: {'running' if st.watcher_running else 'not running'}")
    lines.append(f"knowledge base: {st.articles} articles, {st.daily_files} daily logs")
    from pipeline.syncstatus import lines as sync_lines

    lines.extend(sync_lines(st.sync, now))
    if not st.versioned:
        lines.append(f"versioned: no ({st.versioning}); `memc doctor` says how")
        return lines
    lines.append("versioned: yes (git; `memc history`, `memc undo`)")
    if st.uncommitted_user:
        shown = ", ".join(st.uncommitted_user[:5])
        more = f" and {len(st.uncommitted_user) - 5} more" if len(st.uncommitted_user) > 5 else ""
        lines.append(
            f"  uncommitted edits of yours: {shown}{more} (the next memc write commits them "
            "first, as you)"
        )
    if st.uncommitted_memc:
        lines.append(f"  uncommitted memc writes: {len(st.uncommitted_memc)} (see pipeline.log)")
    return lines
