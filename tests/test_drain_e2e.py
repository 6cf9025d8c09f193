"""End to end through the REAL claude-agent-sdk against the fake `claude` CLI (fake_claude.py):
a real capture (pipeline.capture) -> `python -m pipeline drain` -> exactly one daily entry; secrets
never reach the CLI's prompt; 429 twice then success; 401 dead-letters after one attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import inbox
from pipeline.config import load_settings
from pipeline.daily import list_days, read_entries
from tests.helpers import transcript_lines

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-ant-api03-" + "Q7w" * 12
REPLY = {
    "worth_saving": True,
    "title": "Adopted WAL mode for the state database",
    "context": "Readers blocked writers.",
    "decisions": ["WAL mode"],
    "lessons": [],
    "action_items": ["benchmark"],
    "key_exchanges": [],
}


def _entries(root):
    return [e for d in list_days(root / "daily") for e in read_entries(root / "daily", d)]


def _transcript(tmp_path, session) -> Path:
    path = tmp_path / f"{session}.jsonl"
    path.write_bytes(
        transcript_lines(
            session,
            [
                (
                    f"Switch state.db to WAL mode; my key is {SECRET}",
                    "Done: PRAGMA journal_mode=WAL.",
                ),
            ],
        )
    )
    return path


def _capture(root, tmp_path, session):
    from pipeline.capture import capture

    result = capture(
        load_settings(root),
        transcript_path=str(_transcript(tmp_path, session)),
        session_id=session,
        cwd=str(tmp_path),
        event="session-end",
    )
    assert result.status == "queued", result
    return result


def test_capture_drain_exactly_once_through_sdk(root, tmp_path, fake_claude):
    fake_claude.default(REPLY)
    job = _capture(root, tmp_path, "e2e-1")
    env = dict(os.environ, MEMC_ROOT=str(root), PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "drain", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["done"], report["entries"]) == (1, 1)
    [entry] = _entries(root)
    assert entry.title == REPLY["title"] and entry.session == "e2e-1"
    calls = fake_claude.prompts()
    assert len(calls) == 1 and calls[0]["memc_internal"] == "1"
    assert SECRET not in json.dumps(calls) and "[REDACTED:anthropic]" in json.dumps(calls)
    assert SECRET not in (root / "daily" / f"{entry.day}.md").read_text()
    # the same range again: the capture dedupes, a second drain finds nothing to do
    from pipeline.capture import capture

    again = capture(
        load_settings(root),
        transcript_path=str(tmp_path / "e2e-1.jsonl"),
        session_id="e2e-1",
        cwd=str(tmp_path),
        event="session-end",
    )
    assert again.status != "queued"
    run2 = subprocess.run(
        [sys.executable, "-m", "pipeline", "drain", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(run2.stdout)["processed"] == 0 and len(_entries(root)) == 1
    assert job.job_id


def test_429_twice_then_success_makes_one_entry(root, tmp_path, fake_claude):
    from pipeline.drain import drain

    fake_claude.script(
        [{"kind": "error_status", "status": 429}] * 2 + [{"kind": "ok", "reply": REPLY}]
    )
    _capture(root, tmp_path, "e2e-429")
    slept: list[float] = []
    report = drain(load_settings(root), sleep=slept.append)
    assert report.done == 1 and report.entries == 1 and len(slept) == 2
    assert fake_claude.steps_taken() == 3 and len(_entries(root)) == 1


def test_401_fails_at_once_into_failed(root, tmp_path, fake_claude):
    from pipeline.drain import drain

    fake_claude.script([{"kind": "error_status", "status": 401}])
    job = _capture(root, tmp_path, "e2e-401")
    report = drain(load_settings(root), sleep=lambda s: pytest.fail("must not retry a 401"))
    assert report.failed == 1 and fake_claude.steps_taken() == 1
    [failed] = inbox.failed_jobs(load_settings(root).paths)
    assert failed.id == job.job_id and failed.attempts == 1
    assert failed.error_class == "PermanentLLMError"
    assert _entries(root) == []
