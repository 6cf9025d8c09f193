"""A broken setup is visible where the user is: capture keeps working, and SessionStart carries one
line naming the problem and its fix."""

from __future__ import annotations

import json
import time

import pytest

from pipeline import attention, state
from pipeline.config import Paths
from pipeline.install import install_hooks
from pipeline.llm.calls import BREAKER_UNTIL
from tests.helpers import hook_inproc, hook_payload, queued_envelopes, turn_line


def _start(root, monkeypatch, capsys) -> dict:
    capsys.readouterr()
    assert hook_inproc(["session-start"], root, hook_payload("s-next", ""), monkeypatch) == 0
    out = capsys.readouterr().out
    return json.loads(out)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("backend = extractive\n", 'backend = "extractive"'),  # unquoted: the fix is named
        ('chunk_chars = "many"\n', "chunk_chars"),
        ('backend = "gpt"\n', "backend"),
    ],
)
def test_a_bad_config_never_stops_capture_and_session_start_names_it(
    root, tmp_path, monkeypatch, capsys, config, named
):
    monkeypatch.delenv("MEMC_BACKEND")  # the file alone decides, as for a real user
    (root / ".memc" / "config.toml").write_text(config)
    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(turn_line(1) + turn_line(2))
    assert hook_inproc(["session-end"], root, hook_payload("s1", transcript), monkeypatch) == 0
    [job] = queued_envelopes(root)
    assert job.session_id == "s1" and job.end == transcript.stat().st_size
    log = (root / ".memc" / "logs" / "hooks.log").read_text()
    assert "queued" in log and "configuration error" in log

    doc = _start(root, monkeypatch, capsys)
    message = doc["systemMessage"]
    assert "\n" not in message and message.startswith("memc: configuration error")
    assert named in message and "Capture still works" in message
    assert doc["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert doc["hookSpecificOutput"]["additionalContext"].startswith(message)


def test_a_healthy_root_adds_no_line(root, monkeypatch, capsys):
    doc = _start(root, monkeypatch, capsys)
    assert "systemMessage" not in doc
    assert attention.notices(Paths(root)) == []


def test_failed_jobs_and_an_open_breaker_are_reported_with_their_fix(root):
    paths = Paths(root)
    (paths.failed / "20261201-abc.json").write_text("{}")
    (paths.failed / "20261201-abc.error.json").write_text("{}")
    conn = state.connect(paths.state_db)
    with conn:
        state.kv_set(conn, BREAKER_UNTIL, repr(time.time() + 600))  # as the model-call seam does
    conn.close()
    items = attention.notices(paths)
    assert any("1 job(s) failed" in i and "memc retry" in i for i in items)
    assert any("circuit breaker" in i and "memc doctor" in i for i in items)
    line_ = attention.summary(items)
    assert line_.startswith("memc: 1 job(s) failed") and "(+1 more" in line_


def test_hooks_capturing_into_another_root_are_named(root, tmp_path, monkeypatch):
    claude = tmp_path / "home-claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(claude))
    other = tmp_path / "elsewhere"
    install_hooks(claude / "settings.json", other, program=["/x/memc"])
    [item] = attention.notices(Paths(root))
    assert str(other) in item and f"memc --root {root} install-hooks" in item
    install_hooks(claude / "settings.json", root, program=["/x/memc"])
    assert attention.notices(Paths(root)) == []
