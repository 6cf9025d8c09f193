"""The MCP server's memory tools: ``recent`` (what a project did lately) and ``remember`` (keep a
note the agent or the user asks to keep).

``remember`` appends one daily entry, as a drain would, with its provenance in the entry itself
(event ``remember``, a context line saying it was kept on request and when) and in state.db, so
the next compile picks it up and versioning commits it as memc's own append.

Invariants:
- A note goes through the same redaction as transcripts (``pipeline.redact``) before it is
  written, and through the same writer (``daily.render_entry`` / ``daily.append_entry``: a locked
  append to a guarded path, model-proof rendering). Nothing else is written.
- A note is data: it is stored as the entry's context, never as a decision.
- Bad input (empty, not text, too long) is a ``MemcError`` naming what to change; nothing is
  written then.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.errors import MemcError

MAX_NOTE_CHARS = 8000
MAX_TITLE_CHARS = 120


@dataclass(frozen=True)
class Remembered:
    id: str
    path: str  # daily/YYYY-MM-DD.md
    title: str
    project: str
    redacted: int  # how many secrets were replaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "project": self.project,
            "redacted": self.redacted,
        }


def _project(project: str) -> tuple[str, str]:
    """(display name, key): an absolute folder is identified by its git repository."""
    from pipeline.project import folder_name, identify

    if project and os.path.isabs(project):
        owner = identify(project)
        return owner.name, owner.key
    return (folder_name(project) if project else "unknown"), ""


def remember(
    settings: Settings,
    note: Any,
    *,
    title: Any = "",
    project: str = "",
    source: str = "MCP remember tool",
    now: float | None = None,
) -> Remembered:
    """Append ``note`` to today's daily log as an entry of its own; see the module docstring."""
    from pipeline import daily, state, versioning
    from pipeline.models import Entry
    from pipeline.redact import redact_counts

    if not isinstance(note, str) or not note.strip():
        raise MemcError("remember needs a non-empty note (text to keep)")
    if len(note) > MAX_NOTE_CHARS:
        raise MemcError(f"the note has {len(note)} characters; keep it under {MAX_NOTE_CHARS}")
    if not isinstance(title, str):
        raise MemcError("title must be text")
    at = time.time() if now is None else now
    clean, found = redact_counts(note.strip())
    clean_title, found_title = redact_counts(" ".join((title or clean).split()))
    clean_title = clean_title[:MAX_TITLE_CHARS]
    name, key = _project(project)
    local = datetime.fromtimestamp(at, UTC).astimezone(settings.zone())
    day, hhmm = local.date().isoformat(), local.strftime("%H:%M")
    digest = hashlib.sha256(f"{key or name}\x00{at}\x00{clean}".encode()).hexdigest()
    eid = daily.entry_id(f"remember:{digest}")
    stamp = local.isoformat(timespec="seconds")
    entry = Entry(
        worth_saving=True,
        title=clean_title,
        context=f"{clean}\n\n(Kept on request through the {source}, {stamp}; "
        "not distilled from a transcript.)",
    )
    block = daily.render_entry(
        entry,
        entry_id=eid,
        time_hhmm=hhmm,
        project=name,
        project_key=key,
        session_id="remember",
        event="remember",
        host=settings.this_host,
    )
    with versioning.batch(settings, "remember", ("daily",)) as vb:
        vb.subject = f"remember: {clean_title[:60]}"
        vb.name_paths = True
        daily.append_entry(settings.paths.daily, day, block, eid)
        with contextlib.closing(state.connect(settings.paths.state_db)) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO entries(id, day, daily_path, job_id, session_id, project,"
                " title, content_hash, created_at) VALUES(?,?,?,?,?,?,?,?,?)",
                (
                    eid,
                    day,
                    f"daily/{day}.md",
                    "remember",
                    "remember",
                    name,
                    clean_title,
                    hashlib.sha256(block.encode("utf-8")).hexdigest()[:16],
                    at,
                ),
            )
            conn.commit()
    redacted = sum(found.values()) + sum(found_title.values())
    return Remembered(eid, f"daily/{day}.md", clean_title, name, redacted)


def recent(settings: Settings, project: str = "", limit: int = 10) -> dict[str, Any]:
    """The project's latest daily entries (with their decisions, lessons and follow-ups) and the
    most recently updated articles. ``project`` is a folder (identified by its git repository)
    or a project name; empty means every project."""
    from pipeline import search
    from pipeline.daily import entry_context
    from pipeline.inject import _highlights, project_entries

    limit = max(1, min(int(limit), 50))
    name, key = _project(project)
    index = search.open_index(settings.paths)
    with contextlib.ExitStack() as stack:
        if index is not None:
            stack.enter_context(index)
        if project:
            entries = project_entries(settings.paths, index, key, name, limit=limit)
        else:
            entries = search.recent_entries(settings.paths, None, limit=limit)
        articles = index.recent_articles(limit) if index is not None else []
    return {
        "project": name if project else "",
        "entries": [
            {
                "path": e.daily_path,
                "day": e.day,
                "time": e.time,
                "project": e.project,
                "title": e.title,
                "context": entry_context(e.body)[:600],
                "highlights": [f"{label}: {item}" for label, item in _highlights(e.body)],
            }
            for e in entries
        ],
        "articles": [
            {"key": a.key, "title": a.title, "summary": a.summary, "updated": a.updated}
            for a in articles
        ],
    }
