"""Helpers shared by the ops tests: queued and failed jobs in the inbox's on-disk format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipeline.models import Envelope, job_id_for


def make_envelope(
    session_id: str, start: int = 0, end: int = 100, at: float = 1_800_000_000.0
) -> Envelope:
    job_id = job_id_for(session_id, "1:2:abc", start, end)
    return Envelope(
        id=job_id,
        session_id=session_id,
        event="session-end",
        transcript_path=f"/t/{session_id}.jsonl",
        cwd="/home/dev/acme",
        project="acme",
        start=start,
        end=end,
        captured_at=datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds"),
        spool=f"spool/{job_id}.jsonl",
    )


def queue_job(root: Path, session_id: str, start: int = 0, end: int = 100) -> Envelope:
    env = make_envelope(session_id, start, end)
    (root / ".memc" / "spool" / f"{env.id}.jsonl").write_text('{"type":"user"}\n')
    (root / ".memc" / "inbox" / env.file_name()).write_text(env.to_json())
    return env


def fail_job(
    root: Path,
    session_id: str,
    *,
    error_class: str = "PermanentLLMError",
    message: str = "authentication failed (401): run `claude` and log in",
    start: int = 0,
) -> Envelope:
    env = make_envelope(session_id, start, start + 100)
    failed = root / ".memc" / "inbox" / "failed"
    (root / ".memc" / "spool" / f"{env.id}.jsonl").write_text('{"type":"user"}\n')
    (failed / env.file_name()).write_text(env.to_json())
    record = {
        "error_class": error_class,
        "message": message,
        "attempts": 1,
        "stderr_tail": "",
        "failed_at": "2027-01-15T08:00:00+00:00",
    }
    (failed / (env.file_name()[:-5] + ".error.json")).write_text(json.dumps(record))
    return env
