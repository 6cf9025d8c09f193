"""The claude backend through the REAL claude-agent-sdk against the fake CLI (tests/fake_claude.py).

Each test spawns the fake CLI; no network, no real `claude`. Retries use an injected sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest

from pipeline.config import load_settings
from pipeline.errors import InvalidReplyError, PermanentLLMError, TransientLLMError
from pipeline.llm import calls
from pipeline.llm.backends import make_backend
from pipeline.llm.base import LLMRequest, load_prompt, load_schema
from pipeline.llm.claude import ClaudeBackend, parse_json_reply
from pipeline.state import connect

ENTRY = {
    "worth_saving": True,
    "title": "Switched queue to advisory locks",
    "context": "Worked on the job queue.",
    "decisions": ["Use advisory locks"],
    "lessons": [],
    "action_items": [],
    "key_exchanges": [],
}


def _request(**kw) -> LLMRequest:
    base = {
        "task": "distil",
        "payload": {"project": "acme", "transcript": "User: fix the queue"},
        "schema": load_schema("distil"),
        "model": "haiku",
        "max_budget_usd": 0.5,
        "timeout_s": 20,
        "ref": "job-1",
    }
    base.update(kw)
    return LLMRequest(**base)


@pytest.fixture
def backend(fake_claude, tmp_path):
    return ClaudeBackend(cli_path=fake_claude.cli_path, cwd=tmp_path / "neutral")


@pytest.fixture
def conn(settings):
    c = connect(settings.paths.state_db)
    yield c
    c.close()


def _rows(conn):
    return [dict(r) for r in conn.execute("SELECT * FROM llm_calls ORDER BY id")]


def test_success_records_cost_and_usage(settings, conn, backend, fake_claude):
    fake_claude.script([{"kind": "ok", "reply": ENTRY, "cost": 0.0042}])
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert reply.data == ENTRY
    assert reply.attempts == 1 and reply.backend == "claude" and reply.model == "haiku"
    assert reply.cost_usd == pytest.approx(0.0042)
    assert reply.usage.input_tokens == 1000 and reply.usage.output_tokens == 50
    [row] = _rows(conn)
    assert row["outcome"] == "ok" and row["cost_usd"] == pytest.approx(0.0042)
    assert row["task"] == "distil" and row["backend"] == "claude" and row["ref"] == "job-1"
    assert row["input_tokens"] == 1000 and row["output_tokens"] == 50
    assert calls.spent_today(conn, settings) == pytest.approx(0.0042)


def test_call_is_isolated_and_sends_our_prompt(backend, fake_claude, tmp_path):
    fake_claude.script([{"kind": "ok", "reply": ENTRY}])
    backend.run(_request())
    [seen] = fake_claude.prompts()
    argv = seen["argv"]
    assert seen["memc_internal"] == "1"
    assert argv[argv.index("--tools") + 1] == ""
    assert "--setting-sources=" in argv
    assert "--no-session-persistence" in argv  # the call leaves no transcript behind
    assert argv[argv.index("--max-turns") + 1] == "3"
    assert float(argv[argv.index("--max-budget-usd") + 1]) == 0.5
    assert argv[argv.index("--model") + 1] == "haiku"
    assert seen["system_prompt"] == load_prompt("distil")
    assert seen["json_schema"] == load_schema("distil")
    assert '"transcript": "User: fix the queue"' in seen["prompt"]
    assert os.path.realpath(seen["cwd"]) == os.path.realpath(tmp_path / "neutral")


def test_default_cwd_is_neutral_not_the_callers(fake_claude, tmp_path, monkeypatch):
    project = tmp_path / "someproject"
    project.mkdir()
    monkeypatch.chdir(project)
    fake_claude.script([{"kind": "ok", "reply": ENTRY}])
    ClaudeBackend(cli_path=fake_claude.cli_path).run(_request())
    assert os.path.realpath(fake_claude.prompts()[0]["cwd"]) != os.path.realpath(project)


def test_429_twice_then_success_three_attempts_three_rows(settings, conn, backend, fake_claude):
    fake_claude.script(
        [
            {"kind": "error_status", "status": 429},
            {"kind": "error_status", "status": 429},
            {"kind": "ok", "reply": ENTRY, "cost": 0.01},
        ]
    )
    slept: list[float] = []
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=slept.append)
    assert reply.data == ENTRY and reply.attempts == 3
    assert [r["outcome"] for r in _rows(conn)] == ["transient", "transient", "ok"]
    assert len(slept) == 2 and 0 <= slept[0] <= 1 and 0 <= slept[1] <= 2
    assert len(fake_claude.prompts()) == 3


@pytest.mark.parametrize("status", [500, 529])
def test_server_errors_are_transient(backend, fake_claude, status):
    fake_claude.script([{"kind": "error_status", "status": status}])
    with pytest.raises(TransientLLMError) as info:
        backend.run(_request())
    assert info.value.status == status


def test_401_is_permanent_after_one_attempt(settings, conn, backend, fake_claude):
    fake_claude.script([{"kind": "error_status", "status": 401}, {"kind": "ok", "reply": ENTRY}])
    with pytest.raises(PermanentLLMError) as info:
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert info.value.status == 401
    assert "login" in str(info.value)
    assert [r["outcome"] for r in _rows(conn)] == ["permanent"]
    assert fake_claude.steps_taken() == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "not_logged_in"},
        {"kind": "not_logged_in", "is_error": False, "exit": 1},
        {"kind": "not_logged_in", "is_error": False, "exit": 0},
    ],
)
def test_not_logged_in_is_permanent_and_names_the_fix(settings, conn, backend, fake_claude, spec):
    fake_claude.script([spec, {"kind": "ok", "reply": ENTRY}])
    with pytest.raises(PermanentLLMError) as info:
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert "Not logged in" in str(info.value) and "/login" in str(info.value)
    assert "run `claude` once" in str(info.value)
    assert [r["outcome"] for r in _rows(conn)] == ["permanent"]
    assert fake_claude.steps_taken() == 1


def test_crash_is_transient_with_stderr_tail(backend, fake_claude):
    fake_claude.script(["crash"])
    with pytest.raises(TransientLLMError) as info:
        backend.run(_request())
    assert "TypeError: cannot read properties" in info.value.stderr_tail


def test_crash_before_initialize_is_transient(backend, fake_claude):
    fake_claude.script([{"kind": "crash", "early": True}])
    with pytest.raises(TransientLLMError) as info:
        backend.run(_request())
    assert "segmentation fault" in info.value.stderr_tail


def test_malformed_json_stream_is_transient(backend, fake_claude):
    fake_claude.script(["garbage"])
    with pytest.raises(TransientLLMError, match="stream broke"):
        backend.run(_request())


def test_hang_times_out_and_leaves_no_child(backend, fake_claude):
    fake_claude.script(["hang"])
    with pytest.raises(TransientLLMError, match=r"no reply within 1\.5s"):
        backend.run(_request(timeout_s=1.5))
    # run() returned, so the SDK's grace, SIGTERM, SIGKILL escalation ended; and it ended with
    # the child gone:
    pid = fake_claude.prompts()[0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped (a zombie would still accept signal 0)


def test_stall_times_out_and_leaves_no_child(backend, fake_claude):
    fake_claude.script(["stall"])
    # Retryable either way; the message is "the claude CLI failed (exit 1)", not the timeout:
    # the fake exits 1 on stdin EOF, and that error surfaces while the cancelled call cleans up.
    with pytest.raises(TransientLLMError):
        backend.run(_request(timeout_s=0.5))
    with pytest.raises(ProcessLookupError):
        os.kill(fake_claude.prompts()[0]["pid"], 0)


def test_budget_exhausted_is_permanent_and_cost_recorded(settings, conn, backend, fake_claude):
    fake_claude.script([{"kind": "budget", "cost": 0.003}])
    with pytest.raises(PermanentLLMError, match="budget"):
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    [row] = _rows(conn)
    assert row["outcome"] == "permanent" and row["cost_usd"] == pytest.approx(0.003)


def test_cli_not_found_is_permanent_with_fix(tmp_path):
    missing = ClaudeBackend(cli_path=str(tmp_path / "no-such-claude"), cwd=tmp_path)
    with pytest.raises(PermanentLLMError, match="set MEMC_CLAUDE_CLI or install Claude Code"):
        missing.run(_request())


def test_json_in_text_and_fences_accepted(backend, fake_claude):
    fake_claude.script(
        [{"kind": "text", "reply": ENTRY}, {"kind": "text", "reply": ENTRY, "fence": True}]
    )
    assert backend.run(_request()).data == ENTRY
    assert backend.run(_request()).data == ENTRY


def test_not_json_is_invalid_reply(backend, fake_claude):
    fake_claude.script([{"kind": "ok", "raw_text": "Sure! Here is a summary of the session."}])
    with pytest.raises(InvalidReplyError):
        backend.run(_request())


def test_invalid_then_valid_is_repaired(settings, conn, backend, fake_claude):
    fake_claude.script(
        [
            {"kind": "invalid", "reply": {"title": "no worth_saving key"}},
            {"kind": "ok", "reply": ENTRY},
        ]
    )
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert reply.data == ENTRY and reply.attempts == 2
    assert [r["outcome"] for r in _rows(conn)] == ["invalid", "ok"]
    second = fake_claude.prompts()[1]["prompt"]
    assert "_repair" in second and "worth_saving" in second and "no worth_saving key" in second


def test_invalid_twice_raises(settings, conn, backend, fake_claude):
    fake_claude.script(
        [
            {"kind": "invalid", "reply": {"worth_saving": "yes"}},
            {"kind": "ok", "raw_text": "still not json"},
            {"kind": "ok", "reply": ENTRY},
        ]
    )
    with pytest.raises(InvalidReplyError, match="invalid twice"):
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert [r["outcome"] for r in _rows(conn)] == ["invalid", "invalid"]
    assert fake_claude.steps_taken() == 2


def test_max_turns_is_invalid_reply(backend, fake_claude):
    fake_claude.script(["max_turns"])
    with pytest.raises(InvalidReplyError):
        backend.run(_request())


def test_make_backend_uses_memc_claude_cli_and_default_reply(root, fake_claude):
    settings = load_settings(root)
    assert settings.backend == "claude" and settings.claude_cli == fake_claude.cli_path
    fake_claude.default(ENTRY)
    backend = make_backend(settings)
    assert backend.run(_request()).data == ENTRY
    fake_claude.default_path.unlink()  # no default: a minimal reply derived from --json-schema
    assert backend.run(_request()).data == {"worth_saving": False}


def test_run_works_inside_a_running_event_loop(backend, fake_claude):
    fake_claude.script([{"kind": "ok", "reply": ENTRY}])

    async def inside():
        return backend.run(_request())

    assert asyncio.run(inside()).data == ENTRY


def test_parse_json_reply_variants():
    assert parse_json_reply('{"a": 1}') == {"a": 1}
    assert parse_json_reply('noise ```json\n{"a": 2}\n``` tail') == {"a": 2}
    assert parse_json_reply('Here: {"a": {"b": 3}} and {"c": 4}') == {"a": {"b": 3}}
    assert parse_json_reply("[1, 2]") is None
    assert parse_json_reply("{broken") is None


def test_timeout_request_field_is_respected(backend, fake_claude):
    fake_claude.script([{"kind": "ok", "reply": ENTRY, "delay": 0.3}])
    assert backend.run(dataclasses.replace(_request(), timeout_s=10)).data == ENTRY


@pytest.mark.parametrize(
    "subtype,status,text,stderr,expected",
    [
        ("success", 429, "rate limited", "", TransientLLMError),
        ("success", 529, "overloaded", "", TransientLLMError),
        ("success", 503, "", "", TransientLLMError),
        ("success", 400, "invalid_request_error", "", PermanentLLMError),
        ("success", 403, "forbidden", "", PermanentLLMError),
        ("success", None, "Invalid API key · Please run /login", "", PermanentLLMError),
        ("success", None, "", "OAuth token has expired", PermanentLLMError),
        ("error_max_budget_usd", None, "Reached maximum budget", "", PermanentLLMError),
        ("error_max_turns", None, "Reached maximum number of turns", "", InvalidReplyError),
        ("error_during_execution", None, "something broke", "", TransientLLMError),
    ],
)
def test_classification_table(subtype, status, text, stderr, expected):
    from pipeline.llm.claude import classify_result

    assert classify_result(subtype, status, text, stderr) is expected


def test_initialize_timeout_and_unknown_errors_are_transient(tmp_path):
    backend = ClaudeBackend(cwd=tmp_path)
    err = backend._classify_exception(
        Exception("Control request timeout: initialize"), _request(), "tail"
    )
    assert isinstance(err, TransientLLMError) and err.stderr_tail == "tail"
    grouped = BaseExceptionGroup("g", [Exception("Control request timeout: initialize")])
    assert isinstance(backend._classify_exception(grouped, _request(), ""), TransientLLMError)


def test_reply_kept_when_only_the_cli_exit_is_slow(backend, fake_claude):
    fake_claude.script([{"kind": "ok", "reply": ENTRY, "linger": 2.5}])
    assert backend.run(_request(timeout_s=1)).data == ENTRY
