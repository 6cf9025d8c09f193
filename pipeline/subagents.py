"""Subagent transcripts: captured with the session that started them. Stdlib only (hook path).

Claude Code 2.1.x keeps a subagent's turns in ``<dir>/<session>/subagents/agent-<id>.jsonl``
beside the main ``<dir>/<session>.jsonl``; hooks are handed only the main path. Every line of such
a file carries the parent's ``sessionId`` and ``"isSidechain": true``.

Invariants:
- A subagent transcript is captured under its parent's session id (private, excluded and SDK
  sessions are skipped by ``capture`` exactly as for the parent) with its own cursor: the cursor
  key hashes the transcript path, so parent and subagents never share a byte range.
- ``agent-acompact-*`` files (the compaction agent's own work, not the user's) are never captured.
- Cheap: one directory listing and one cursor query per hook call; a subagent file whose size is
  its cursor's offset is not opened (its capture would find nothing new).
"""

from __future__ import annotations

import os
import sqlite3

from pipeline import capture as _capture

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.hookconfig import HookSettings

COMPACTION_AGENT = "agent-acompact-"


def is_subagent_file(name: str) -> bool:
    return (
        name.startswith("agent-")
        and name.endswith(".jsonl")
        and not name.startswith(COMPACTION_AGENT)
    )


def subagent_transcripts(transcript_path: str) -> list[str]:
    """The subagent transcripts that belong to a main transcript, sorted by name; [] if none."""
    base, name = os.path.split(transcript_path)
    if not name.endswith(".jsonl") or len(name) <= len(".jsonl"):
        return []
    folder = os.path.join(base, name[: -len(".jsonl")], "subagents")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if is_subagent_file(n)]


def capture_session(
    settings: Settings | HookSettings, *, transcript_path: str, session_id: str, **kwargs
) -> list[_capture.CaptureResult]:
    """``capture`` of a main transcript, then of each of its subagent transcripts."""
    capture = _capture.capture  # looked up per call (tests replace it)
    results = [capture(settings, transcript_path=transcript_path, session_id=session_id, **kwargs)]
    if not isinstance(transcript_path, str) or not transcript_path or "\x00" in transcript_path:
        return results
    paths = subagent_transcripts(os.path.abspath(transcript_path))
    done = _fully_captured(settings, session_id, paths) if paths else {}
    for path in paths:
        if path in done:
            results.append(_capture.CaptureResult("nothing-new", None, "no new complete lines"))
        else:
            results.append(capture(settings, transcript_path=path, session_id=session_id, **kwargs))
    return results


def _fully_captured(
    settings: Settings | HookSettings, session_id: str, paths: list[str]
) -> dict[str, int]:
    """Subagent files whose size is their cursor's offset (nothing to copy), found with one query
    instead of one capture each: a session may hold dozens of finished subagents. A file that
    changed in any other way (grew, shrank, was replaced by one of another size) is captured."""
    from pipeline import cursor, state

    wanted = set(paths)
    try:  # a hook never waits long on a busy state.db (pipeline.cursor)
        conn = state.connect(settings.paths.state_db, timeout=cursor.DB_WAIT_S)
        try:
            rows = conn.execute(
                "SELECT transcript_path, offset FROM cursors WHERE session_id=?", (session_id,)
            ).fetchall()
        finally:
            conn.close()
    except (sqlite3.Error, OSError):  # locked or damaged: capture deals with each file itself
        return {}
    done = {}
    for row in rows:
        path = row["transcript_path"]
        if path not in wanted:
            continue
        try:
            if os.stat(path).st_size == row["offset"]:
                done[path] = row["offset"]
        except OSError:
            continue
    return done
