"""Live tests against the real Claude API through the real SDK and its bundled CLI.

Opt-in only: they run when MEMC_LIVE_TESTS=1 and ANTHROPIC_API_KEY are set in the environment
that starts pytest (they cost a few cents). Everything else in the suite is offline.
"""

from __future__ import annotations

import os

import pytest

from pipeline import state
from pipeline.llm.base import LLMRequest, load_schema
from pipeline.llm.calls import call

# Read at import, before the autouse fixture scrubs the environment for every test.
LIVE = os.environ.get("MEMC_LIVE_TESTS") == "1"
API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (LIVE and API_KEY), reason="live tests: set MEMC_LIVE_TESTS=1 and ANTHROPIC_API_KEY"
    ),
]

TRANSCRIPT = (
    "User: Workers sometimes run the same job twice. Why?\n"
    "Assistant: claim() commits right after SELECT ... FOR UPDATE SKIP LOCKED, so the row lock is "
    "gone before the job runs. I switched the queue to pg_try_advisory_lock on a hashed job id, "
    "released in a finally block.\n"
    "-> Bash: pytest -q tests/test_worker_locks.py\n"
    "User: Good. Remember PgBouncer transaction pooling breaks session locks.\n"
)


@pytest.fixture
def live_settings(settings, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    from pipeline.config import load_settings

    return load_settings(settings.root)


def test_live_distil_returns_a_valid_entry(live_settings):
    from pipeline.llm.claude import ClaudeBackend

    request = LLMRequest(
        task="distil",
        payload={
            "project": "acme-api",
            "session_id": "live",
            "event": "session-end",
            "chunk": 1,
            "chunks": 1,
            "transcript": TRANSCRIPT,
        },
        schema=load_schema("distil"),
        model=live_settings.flush_model,
        max_budget_usd=0.2,
        timeout_s=120,
    )
    conn = state.connect(live_settings.paths.state_db)
    try:
        reply = call(live_settings, ClaudeBackend(), request, conn=conn)
        rows = conn.execute("SELECT outcome, cost_usd FROM llm_calls").fetchall()
    finally:
        conn.close()
    assert reply.data["worth_saving"] is True
    assert "advisory" in " ".join(map(str, reply.data.values())).lower()
    assert rows and rows[-1]["outcome"] == "ok" and rows[-1]["cost_usd"] > 0
