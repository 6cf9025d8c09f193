"""End to end through the REAL claude-agent-sdk and the fake `claude` CLI: hook -> daily -> wiki."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

SAMPLE = REPO / "samples" / "4f1c9a2e-6b1d-4c55-9a51-1f0e7c2d8a10.jsonl"

DISTIL = {
    "worth_saving": True,
    "title": "Switched job queue to Postgres advisory locks",
    "context": "Workers claimed the same job twice under load.",
    "decisions": ["Claim jobs with pg_try_advisory_lock on a hashed job id"],
    "lessons": ["Advisory locks take bigint keys"],
    "action_items": [],
    "key_exchanges": [],
}

COMPILE = {
    "articles": [
        {
            "path": "concepts/postgres-advisory-locks",
            "title": "Postgres advisory locks",
            "summary": "Session-level locks for job queues",
            "aliases": ["advisory locks"],
            "tags": ["postgres"],
            "body": "Use `pg_try_advisory_lock(hashtextextended(id::text, 0))`.",
            "sources": [],
        },
        {"path": "../escape", "title": "x", "body": "x"},
        {"path": "/tmp/abs", "title": "x", "body": "x"},
        {"path": "qa/../../x", "title": "x", "body": "x"},
        {
            "path": "connections/queue-and-locks",
            "title": "Queue and locks",
            "body": "[[concepts/postgres-advisory-locks]] protects the worker.",
        },
    ]
}


def run_hook(root, transcript, env):
    stdin = json.dumps(
        {
            "session_id": "4f1c9a2e-6b1d-4c55-9a51-1f0e7c2d8a10",
            "transcript_path": str(transcript),
            "cwd": "/home/dev/projects/acme-api",
            "hook_event_name": "SessionEnd",
            "reason": "other",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--root", str(root), "hook", "session-end"],
        input=stdin,
        text=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def e2e(root, fake_claude, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), MEMC_SPAWN_DRAIN="0")
    transcript = tmp_path / "session.jsonl"
    shutil.copy(SAMPLE, transcript)
    return root, fake_claude, transcript, env


def test_hook_to_wiki_through_the_sdk(e2e):
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings
    from pipeline.drain import drain

    root, fake, transcript, env = e2e
    fake.script(
        [
            {"kind": "ok", "reply": DISTIL, "cost": 0.002},
            {"kind": "ok", "reply": COMPILE, "cost": 0.03},
        ]
    )
    run_hook(root, transcript, env)
    settings = load_settings(root)
    assert settings.backend == "claude"
    assert drain(settings, run_after=False).done == 1
    report = run_compile(settings, sleep=lambda s: None)
    data = report.to_dict()
    assert report.status == "compiled", report.message
    assert data["created"] == ["concepts/postgres-advisory-locks", "connections/queue-and-locks"]
    assert len(data["rejected"]) == 3
    assert data["cost_usd"] == pytest.approx(0.03)
    art = (root / "knowledge" / "concepts" / "postgres-advisory-locks.md").read_text()
    assert "hashtextextended" in art and "sources:\n- daily/" in art
    assert not (root / "escape.md").exists() and not (root.parent / "escape.md").exists()
    index = (root / "knowledge" / "index.md").read_text()
    assert "[[concepts/postgres-advisory-locks|Postgres advisory locks]]" in index
    calls = fake.prompts()
    assert len(calls) == 2
    compile_call = calls[1]
    assert "compile a personal knowledge base" in compile_call["system_prompt"]
    sent = json.loads(compile_call["prompt"])
    assert sent["entries"][0]["title"] == DISTIL["title"]
    assert compile_call["memc_internal"]
    # recompiling: nothing pending, no model call
    assert run_compile(settings).status == "nothing"
    assert len(fake.prompts()) == 2


def test_malformed_json_leaves_entries_pending(e2e):
    from pipeline import state
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings
    from pipeline.drain import drain

    root, fake, transcript, env = e2e
    fake.script(
        [
            {"kind": "ok", "reply": DISTIL},
            {"kind": "text", "raw_text": "Here are the articles: {not json"},
            {"kind": "text", "raw_text": "sorry, still {not json"},
        ]
    )
    run_hook(root, transcript, env)
    settings = load_settings(root)
    drain(settings, run_after=False)
    report = run_compile(settings, sleep=lambda s: None)
    assert report.status == "failed" and "InvalidReply" in report.batches[0].error
    assert not list((root / "knowledge").glob("*/*.md"))
    conn = state.connect(settings.paths.state_db)
    try:
        assert (
            conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0]
            == 1
        )
    finally:
        conn.close()
