"""The claude backend through the REAL Agent SDK and its REAL bundled Claude Code CLI, against a
local mock of the Messages API (tests/mock_anthropic.py, loopback only; no network).

This is what proves the isolation options hold with the actual CLI: no tools offered to the model
except the CLI's own StructuredOutput (how --json-schema is served), our system prompt, no user
settings, and no transcript of the call left under ~/.claude/projects (--no-session-persistence).
Skipped when the SDK wheel ships no bundled CLI for this platform.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import PermanentLLMError
from pipeline.llm.base import LLMRequest, load_schema
from pipeline.llm.claude import ClaudeBackend
from tests.mock_anthropic import MockAnthropic


def _bundled_cli() -> Path | None:
    try:
        import claude_agent_sdk
    except ImportError:
        return None
    folder = Path(claude_agent_sdk.__file__).parent / "_bundled"
    for name in ("claude", "claude.exe"):
        if (folder / name).is_file():
            return folder / name
    return None


CLI = _bundled_cli()
pytestmark = pytest.mark.skipif(CLI is None, reason="claude-agent-sdk ships no bundled CLI here")
ENTRY = {
    "worth_saving": True,
    "title": "Advisory locks for the job queue",
    "decisions": ["pg_try_advisory_lock on a hashed job id"],
}


@pytest.fixture
def api(monkeypatch):
    def start(reply=ENTRY, status=200):
        mock = MockAnthropic(reply, status)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", mock.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-" + "x" * 20)  # a dummy for the mock
        monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        return mock

    return start


def _request() -> LLMRequest:
    return LLMRequest(
        task="distil",
        payload={
            "project": "acme",
            "session_id": "s",
            "event": "stop",
            "chunk": 1,
            "chunks": 1,
            "earlier_entries": [],
            "transcript": "User: why do jobs run twice?",
        },
        schema=load_schema("distil"),
        model="haiku",
        max_budget_usd=0.5,
        timeout_s=90,
    )


def test_real_cli_structured_reply_isolated_and_unpersisted(api):
    with api() as mock:
        reply = ClaudeBackend(cli_path=str(CLI)).run(_request())
    assert reply.data == ENTRY
    assert reply.cost_usd > 0 and reply.usage.input_tokens > 0
    [sent] = mock.requests
    tools = [t.get("name") for t in sent.get("tools", [])]
    assert "StructuredOutput" in tools
    assert not {"Bash", "Write", "Edit", "Read", "WebFetch"} & set(tools)  # tools=[] holds
    system = " ".join(b.get("text", "") for b in sent.get("system", []) if isinstance(b, dict))
    assert "You distil one part of a Claude Code session" in system
    transcripts = list((Path.home() / ".claude" / "projects").rglob("*.jsonl"))
    assert transcripts == []  # --no-session-persistence: the call left no transcript


def test_real_cli_auth_failure_is_permanent(api):
    with api(status=401), pytest.raises(PermanentLLMError):
        ClaudeBackend(cli_path=str(CLI)).run(_request())


def test_real_cli_overload_is_transient(api):
    from pipeline.errors import TransientLLMError

    with api(status=529), pytest.raises(TransientLLMError) as info:
        ClaudeBackend(cli_path=str(CLI)).run(_request())
    assert info.value.status == 529
