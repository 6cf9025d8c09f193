"""`memc backfill`: capture transcripts already on disk in ``~/.claude/projects/*/*.jsonl``.

Claude Code deletes transcripts after ``cleanupPeriodDays`` (30 by default); backfill saves what
is still there. Every file goes through the same ``capture`` a hook uses (``event="backfill"``,
``force=True``), so the per-session cursors are shared: a later hook captures only what is new,
and running backfill twice queues nothing the second time. Private sessions, excluded projects
and Agent SDK transcripts are skipped by ``capture`` itself.

The session id is the file's stem, which is what Claude Code hands its hooks, so backfill and
hooks address the same cursor. Subagent transcripts (``<session>/subagents/agent-*.jsonl``, not
``agent-acompact-*``) are captured under their parent's session id, as the hooks do. Files are
visited oldest first. A dry run reads only the first lines of each file (for ``cwd`` and the SDK
entrypoint) and the cursor table, and writes nothing.
Each file is captured as of its modification time (its last write, when the session ended), so
its entries land in the daily log of the day the session happened, not the day backfill ran.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline import state
from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.tailfile import transcript_head

_RELATIVE = re.compile(r"^(\d+)\s*d(ays?)?$")


@dataclass(frozen=True)
class Transcript:
    path: Path
    session_id: str
    project_dir: str  # the folder name under ~/.claude/projects
    cwd: str
    sdk: bool
    size: int
    mtime: float


@dataclass(frozen=True)
class Item:
    path: str
    session_id: str
    project: str
    status: str  # capture's status, or for a dry run "would-capture" | "nothing-new" | "skipped"
    reason: str
    bytes: int
    calls: int = 0


@dataclass(frozen=True)
class BackfillResult:
    dry_run: bool
    sessions: int
    queued: int
    nothing_new: int
    skipped: int
    bytes: int
    estimated_calls: int
    items: tuple[Item, ...]


def projects_dir(home: Path | None = None) -> Path:
    """Where Claude Code keeps transcripts: $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects."""
    from pipeline.config import claude_dir

    return claude_dir(home) / "projects"


def parse_since(text: str | None, settings: Settings, now: float | None = None) -> float | None:
    """Epoch seconds for ``YYYY-MM-DD`` (midnight in MEMC_TZ) or ``Nd`` (N days ago)."""
    if not text:
        return None
    now = time.time() if now is None else now
    match = _RELATIVE.match(text.strip().lower())
    if match:
        return now - int(match.group(1)) * 86400
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: use a date YYYY-MM-DD or a number of days like 7d"
        ) from None
    return day.replace(tzinfo=settings.zone()).timestamp()


def find_transcripts(
    *, home: Path | None = None, since: float | None = None, project: str | None = None
) -> list[Transcript]:
    """Session transcripts and their subagent transcripts, oldest first, filtered by mtime and
    project glob."""
    from pipeline.subagents import is_subagent_file

    base = projects_dir(home)
    found = []
    try:
        folders = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return []
    for folder in folders:
        # A subagent's transcript is captured under its parent's session id (the folder name),
        # with its own cursor, as the hooks do; the compaction agent's files are not the user's.
        subagents = [
            (p, p.parent.parent.name)
            for p in folder.glob("*/subagents/agent-*.jsonl")
            if is_subagent_file(p.name)
        ]
        for path, session_id in [(p, p.stem) for p in folder.glob("*.jsonl")] + subagents:
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file() or (since is not None and st.st_mtime < since):
                continue
            cwd, sdk = transcript_head(path)
            if project and not _matches(project, folder.name, cwd):
                continue
            found.append(
                Transcript(path, session_id, folder.name, cwd, sdk, st.st_size, st.st_mtime)
            )
    found.sort(key=lambda t: (t.mtime, str(t.path)))
    return found


def _matches(pattern: str, folder: str, cwd: str) -> bool:
    from pipeline.capture import project_name

    names = [folder, cwd, project_name(cwd)] if cwd else [folder]
    return any(fnmatch.fnmatch(name, pattern) for name in names)


def _estimate(settings: Settings, conn, t: Transcript) -> Item:
    """What a capture of ``t`` would queue, without writing anything."""
    from pipeline.capture import is_excluded, project_name, session_key

    project = project_name(t.cwd)

    def item(status: str, reason: str, size: int = 0, calls: int = 0) -> Item:
        return Item(str(t.path), t.session_id, project, status, reason, size, calls)

    if t.sdk:
        return item("skipped", "Agent SDK transcript")
    if is_excluded(settings, project, t.cwd):
        return item("skipped", "project matches exclude_projects")
    if state.is_private(conn, t.session_id):
        return item("skipped", "session is private")
    row = conn.execute(
        "SELECT offset FROM cursors WHERE session_key=?",
        (session_key(t.session_id, os.path.abspath(t.path)),),
    ).fetchone()
    start = row["offset"] if row is not None and row["offset"] <= t.size else 0
    pending = t.size - start
    if pending <= 0:
        return item("nothing-new", "already captured")
    calls = max(1, math.ceil(pending / max(1, settings.chunk_chars)))
    return item("would-capture", f"bytes {start}..{t.size}", pending, calls)


def backfill(
    settings: Settings,
    *,
    since: float | None = None,
    project: str | None = None,
    dry_run: bool = False,
    home: Path | None = None,
    progress: Callable[[int, int, Item], None] | None = None,
    now: float | None = None,
) -> BackfillResult:
    """Capture (or with ``dry_run`` estimate) every matching transcript; see the module doc."""
    from pipeline.capture import capture, project_name

    transcripts = find_transcripts(home=home, since=since, project=project)
    items: list[Item] = []
    conn = state.connect(settings.paths.state_db) if dry_run else None
    try:
        for i, t in enumerate(transcripts, 1):
            if conn is not None:
                item = _estimate(settings, conn, t)
            else:
                # Captured "as of" the transcript's last write, so its entries land in the
                # daily log of the day the session happened rather than today's.
                at = t.mtime if now is None else min(now, t.mtime)
                res = capture(
                    settings,
                    transcript_path=str(t.path),
                    session_id=t.session_id,
                    cwd=t.cwd,
                    event="backfill",
                    now=at,
                    force=True,
                )
                calls = (
                    max(1, math.ceil(res.bytes / max(1, settings.chunk_chars)))
                    if res.status == "queued"
                    else 0
                )
                item = Item(
                    str(t.path),
                    t.session_id,
                    project_name(t.cwd),
                    res.status,
                    res.reason,
                    res.bytes if res.status == "queued" else 0,
                    calls,
                )
            items.append(item)
            if progress:
                progress(i, len(transcripts), item)
    finally:
        if conn is not None:
            conn.close()
    queued = sum(1 for it in items if it.status in ("queued", "would-capture"))
    return BackfillResult(
        dry_run=dry_run,
        sessions=len(items),
        queued=queued,
        nothing_new=sum(1 for it in items if it.status == "nothing-new"),
        skipped=sum(
            1 for it in items if it.status not in ("queued", "would-capture", "nothing-new")
        ),
        bytes=sum(it.bytes for it in items),
        estimated_calls=sum(it.calls for it in items),
        items=tuple(items),
    )
