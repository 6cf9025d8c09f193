"""`memc private SESSION_ID`: never capture a session again, and withdraw what is queued of it.

Marking a session private stops every future capture of it (capture checks the
``private_sessions`` table), and withdraws what is queued but not yet being processed: pending
envelopes, failed jobs (so `retry` cannot bring them back) and their spooled transcript bytes,
through ``inbox.withdraw``. A job already claimed by a drain is left alone (moving it under a
running worker could lose or duplicate work); the count is reported so the user knows an entry
may still appear. Entries already distilled into daily/ are counted, never removed.
Idempotent: marking a session twice changes nothing the second time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import inbox, state
from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.models import Envelope


@dataclass(frozen=True)
class PrivateResult:
    session_id: str
    already_private: bool
    removed_pending: int
    removed_failed: int
    claimed: int
    distilled: int = 0  # entries of this session already in daily/ (private does not remove them)
    daily_files: tuple[str, ...] = ()


def session_id_of(arg: str) -> str:
    """The session id a user meant: a transcript path or file name is reduced to its stem.

    Users copy the transcript path from ~/.claude/projects; storing it verbatim would mark a
    session id that never occurs, and the real session would go on being captured.
    """
    text = arg.strip()
    if "/" in text or "\\" in text or text.endswith(".jsonl"):
        text = Path(text.replace("\\", "/")).name
        if text.endswith(".jsonl"):
            text = text[: -len(".jsonl")]
    return text


def _of_session(paths: list[Path], session_id: str) -> list[tuple[Path, Envelope]]:
    out = []
    for path in paths:
        envelope = inbox.read_envelope(path)
        if envelope is not None and envelope.session_id == session_id:
            out.append((path, envelope))
    return out


def make_private(settings: Settings, session_id: str, *, now: float | None = None) -> PrivateResult:
    """Never capture ``session_id`` again; withdraw its queued and failed jobs. Idempotent."""
    session_id = session_id_of(session_id)
    if not session_id or "\x00" in session_id or session_id in (".", ".."):
        raise ConfigError("give the session id (the transcript file name without .jsonl)")
    now = time.time() if now is None else now
    paths = settings.paths
    conn = state.connect(paths.state_db)
    try:
        already = state.is_private(conn, session_id)
        conn.execute(
            "INSERT OR IGNORE INTO private_sessions(session_id, at) VALUES(?,?)", (session_id, now)
        )
        removed: dict[str, int] = {"pending": 0, "failed": 0}
        jobs = [("pending", p) for p in _of_session(inbox.pending(paths), session_id)]
        jobs += [("failed", p) for p in _of_session(inbox.failed_envelopes(paths), session_id)]
        for where, (path, envelope) in jobs:
            if inbox.withdraw(paths, path, envelope):
                removed[where] += 1
                conn.execute(
                    "UPDATE jobs SET status='cancelled', detail='session made private', "
                    "updated_at=? WHERE id=?",
                    (now, envelope.id),
                )
        claimed = len(_of_session(inbox.claimed_envelopes(paths), session_id))
        rows = conn.execute(
            "SELECT daily_path FROM entries WHERE session_id=?", (session_id,)
        ).fetchall()
    finally:
        conn.close()
    return PrivateResult(
        session_id,
        already,
        removed["pending"],
        removed["failed"],
        claimed,
        distilled=len(rows),
        daily_files=tuple(sorted({r[0] for r in rows})),
    )
