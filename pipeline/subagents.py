"""Subagent transcripts: captured with the session that started them. Stdlib only (hook path).

Claude Code 2.1.x keeps a subagent's turns in ``<dir>/<session>/subagents/agent-<id>.jsonl``
beside the main ``<dir>/<session>.jsonl``; hooks are handed only the main path. Every line of such
a file carries the parent's ``sessionId`` and ``"isSidechain": true``.

Invariants:
- A subagent transcript is captured under its parent's session id (private, excluded and SDK
  sessions are skipped by ``capture`` exactly as for the parent) with its own cursor: the cursor
  key hashes the transcript path, so parent and subagents never share a byte range.
- ``agent-acompact-*`` files (the compaction agent's own work, not the user's) are never captured.
- Cheap: one directory listing per capture; nothing when the folder does not exist.
"""

from __future__ import annotations

import os

from pipeline import capture as _capture
from pipeline.config import Settings

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
    settings: Settings, *, transcript_path: str, session_id: str, **kwargs
) -> list[_capture.CaptureResult]:
    """``capture`` of a main transcript, then of each of its subagent transcripts."""
    capture = _capture.capture  # looked up per call (tests replace it)
    results = [capture(settings, transcript_path=transcript_path, session_id=session_id, **kwargs)]
    if isinstance(transcript_path, str) and transcript_path and "\x00" not in transcript_path:
        for path in subagent_transcripts(os.path.abspath(transcript_path)):
            results.append(capture(settings, transcript_path=path, session_id=session_id, **kwargs))
    return results
