"""Capture the idle tail of sessions closed without a SessionEnd (run by every drain).

A terminal closed (or a crash) after a session's last Stop checkpoint leaves its last turns
uncaptured, and no hook will ever fire for them. The cursors that hooks left say which
transcripts exist and how far they were captured; a transcript that grew past its cursor and has
not changed for ``idle_capture_min`` minutes is captured through ``capture.capture`` (so the same
exactly-once rules hold). Off the hook path: only ``drain`` calls this, and so the watcher's
sweeps and cron. ``idle_capture_min = 0`` turns it off.
"""

from __future__ import annotations

import os
import time

from pipeline import state
from pipeline.capture import CaptureResult, capture
from pipeline.config import Settings
from pipeline.tailfile import transcript_head


def capture_idle(
    settings: Settings, *, now: float | None = None, max_age_days: float = 30.0
) -> list[CaptureResult]:
    """Capture the uncaptured tail of sessions whose transcript has been idle for a while.

    A session closed without a clean SessionEnd (terminal closed, crash) keeps the turns after
    its last Stop checkpoint uncaptured; this finds them through the cursors that hooks left and
    captures them once the file has not changed for ``idle_capture_min`` minutes. Called by
    ``drain`` (and so by the watcher's sweeps and cron), never by a hook. 0 turns it off.
    """
    if settings.idle_capture_min <= 0:
        return []
    now = time.time() if now is None else now
    conn = state.connect(settings.paths.state_db)
    try:
        rows = conn.execute(
            "SELECT session_id, transcript_path, offset FROM cursors WHERE updated_at >= ?",
            (now - max_age_days * 86400,),
        ).fetchall()
    finally:
        conn.close()
    results = []
    for row in rows:
        try:
            st = os.stat(row["transcript_path"])
        except OSError:
            continue
        if st.st_size <= row["offset"] or now - st.st_mtime < settings.idle_capture_min * 60:
            continue
        cwd, _sdk = transcript_head(row["transcript_path"])
        results.append(
            capture(
                settings,
                transcript_path=row["transcript_path"],
                session_id=row["session_id"],
                cwd=cwd,
                event="idle",
                now=now,
                force=True,
            )
        )
    return results
