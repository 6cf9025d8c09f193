"""Review pass over the capture / distil side: one regression test per defect found and fixed.

Each test failed before its fix (see the review report for the defect it pins down).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from pipeline.redact import redact
from pipeline.transcript import error_excerpt, parse_bytes, tool_summary

AWS_KEY = "AKIAZ7QRST2UVWX3YZ45"  # 20 chars: AKIA + 16
GH_TOKEN = "ghp_" + "Q7wErT9yUiO1pAsD3fGhJ5kLzX8cVbN2mQ4r"


def _leaks(secret: str, text: str, n: int = 6) -> bool:
    """True when any ``n``-char piece of ``secret`` survives in ``text``."""
    return any(secret[i : i + n] in text for i in range(len(secret) - n + 1))


# --- truncation must not split a secret past the redactor ------------------------------------


def test_tool_summary_cut_does_not_leave_a_secret_fragment():
    # The key starts near the 160-char cut: before the fix the summary kept 19 of its 20 chars,
    # which no redaction rule recognises any more.
    cmd = "aws configure set aws_access_key_id " + "x" * 100 + " --profile p " + AWS_KEY
    start = cmd.index(AWS_KEY)
    assert start < 160 < start + len(AWS_KEY) + len("-> Bash: ")
    summary = redact(tool_summary("Bash", {"command": cmd}))
    assert not _leaks(AWS_KEY, summary)
    assert "[REDACTED:" in summary


def test_tool_summary_cut_github_token_in_url():
    cmd = (
        "git remote set-url origin "
        + "https://ci-bot:"
        + GH_TOKEN
        + "@github.com/acme/"
        + "a" * 200
        + ".git"
    )
    pad = 160 - len("-> Bash: ") - len(cmd[: cmd.index(GH_TOKEN)]) - 20
    cmd = "cd " + "d" * max(0, pad) + " && " + cmd
    summary = redact(tool_summary("Bash", {"command": cmd}))
    assert not _leaks(GH_TOKEN, summary)


def test_error_excerpt_cut_does_not_leave_a_secret_fragment():
    # _shorten keeps head and tail: a cut through the key left a fragment in the tail.
    body = "Error: auth failed " + "z " * 300 + "for key " + AWS_KEY + " " + "q" * 88
    excerpt = redact(error_excerpt({"is_error": True, "content": body}))
    assert not _leaks(AWS_KEY, excerpt)


def test_parse_bytes_end_to_end_no_fragment():
    cmd = "aws configure set aws_access_key_id " + "x" * 100 + " --profile p " + AWS_KEY
    line = {
        "type": "assistant",
        "uuid": "u1",
        "message": {
            "id": "m1",
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": cmd}}
            ],
        },
    }
    parsed = parse_bytes((json.dumps(line) + "\n").encode())
    text = redact(parsed.turns[0].text)
    assert not _leaks(AWS_KEY, text)


# --- redaction gaps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://:Uq7Hb5BQJylPSim2@redis:6379/0",
        "mongodb+srv://:Dqib9Nl1oqq10J2x@cluster0.mongodb.net/app",
    ],
)
def test_url_credentials_with_empty_user(url):
    out = redact(f"connect with {url} now")
    assert "[REDACTED:url_password]" in out
    assert "Uq7Hb5" not in out and "Dqib9N" not in out
    assert out.count("@") == 1  # host kept


@pytest.mark.parametrize(
    "text,secret",
    [
        ("curl -u admin:Fo0PKr5LwPJ3 https://api.example.com", "Fo0PKr5LwPJ3"),
        ("curl --user deploy:hunter2-Secret https://x.example", "hunter2-Secret"),
        ('curl -s -u "ci:Zx9Pq2Lm7Nb4" https://x.example', "Zx9Pq2Lm7Nb4"),
    ],
)
def test_curl_basic_auth_password(text, secret):
    out = redact(text)
    assert secret not in out
    assert "[REDACTED:password]" in out


@pytest.mark.parametrize(
    "text",
    [
        "docker run -u 1000:1000 image",
        "git push -u origin main",
        "sort -u names.txt",
        "curl -u $USER:$TOKEN https://x.example",
        "python -u script.py",
    ],
)
def test_dash_u_ordinary_commands_survive(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "token,kind",
    [
        ("glpat-knwZoGri82Iqzv8C5G1N", "gitlab"),
        ("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", "sendgrid"),
        ("dop_v1_6d402f0bed5d1de9494969ef69cb7d94cde1c701eb54d9bd8eb8fe17faeb77dc", "digitalocean"),
    ],
)
def test_more_provider_tokens(token, kind):
    out = redact(f"token {token} here")
    assert out == f"token [REDACTED:{kind}] here"
    assert redact(out) == out


# --- chunking: a separator right at the budget made a piece one char too long ------------------


def test_split_piece_never_exceeds_budget_when_space_sits_at_the_cut():
    from pipeline.models import Turn
    from pipeline.transcript import chunk_turns, render_turns

    text = "0" * 34 + " "  # "User: " + 34 chars fills a 40-char budget; the space is char 35
    chunks = chunk_turns((Turn(role="user", text=text, uuid="0"),), 40)
    assert all(len(render_turns(c)) <= 40 for c in chunks)
    assert "".join(t.text for c in chunks for t in c) == text


# --- `memc capture` without --cwd filed every entry under project "unknown" --------------------


def test_capture_command_takes_the_project_from_the_transcript(root, tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.models import Envelope

    t = tmp_path / "s-1.jsonl"
    row = {
        "type": "user",
        "cwd": "/home/dev/acme-api",
        "sessionId": "s-1",
        "uuid": "u1",
        "message": {"role": "user", "content": "switch the job queue to advisory locks"},
    }
    t.write_text(json.dumps(row) + "\n")
    assert main(["--root", str(root), "capture", str(t), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "queued"
    (env_file,) = (root / ".memc" / "inbox").glob("*.json")
    envelope = Envelope.from_json(env_file.read_bytes())
    assert envelope.project == "acme-api" and envelope.cwd == "/home/dev/acme-api"
    # an explicit --cwd still wins
    t2 = tmp_path / "s-2.jsonl"
    t2.write_text(json.dumps({**row, "sessionId": "s-2"}) + "\n")
    assert main(["--root", str(root), "capture", str(t2), "--cwd", "/x/other", "--json"]) == 0
    capsys.readouterr()
    projects = {
        Envelope.from_json(f.read_bytes()).project
        for f in (root / ".memc" / "inbox").glob("*.json")
    }
    assert projects == {"acme-api", "other"}


# --- an envelope's spool field could name any file under .memc/ --------------------------------


def _envelope_file(root: Path, spool: str, session: str = "evil") -> Path:
    from pipeline.models import Envelope

    env = Envelope(
        id="e" * 20,
        session_id=session,
        event="manual",
        transcript_path="/x.jsonl",
        cwd="",
        project="p",
        start=0,
        end=10,
        captured_at="2026-11-20T10:00:00.000000+00:00",
        spool=spool,
    )
    path = root / ".memc" / "inbox" / env.file_name()
    path.write_text(env.to_json())
    return path


def test_private_never_deletes_a_non_spool_file_named_by_an_envelope(root, settings):
    from pipeline.backfill import make_private

    db = root / ".memc" / "state.db"
    assert db.exists()
    _envelope_file(root, "state.db")
    result = make_private(settings, "evil")
    assert result.removed_pending == 1
    assert db.exists()


def test_drain_fails_a_job_whose_spool_is_not_in_spool_dir(root, settings):
    from pipeline.drain import drain

    (root / ".memc" / "config.toml").write_text('# {"type":"user"}\n')
    _envelope_file(root, "config.toml")
    report = drain(settings, run_after=False)
    assert report.failed == 1 and report.failures[0].error_class == "BrokenJob"
    assert (root / ".memc" / "config.toml").exists()


# --- a hook probing the watcher lock made a starting watcher exit as a "second instance" -------


def test_watcher_start_survives_a_momentary_lock_probe(root, settings):
    from pipeline.fsutil import file_lock
    from pipeline.watcher import watch

    held, release = threading.Event(), threading.Event()

    def prober():  # what lock_is_held does in a hook, stretched so the race is certain
        with file_lock(settings.paths.lock("watcher"), blocking=False):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=prober)
    thread.start()
    assert held.wait(5)
    stop, cycles, events = threading.Event(), [], []

    def on_cycle(report):
        cycles.append(report)
        stop.set()

    timer = threading.Timer(0.1, release.set)
    timer.start()
    try:
        assert (
            watch(settings, stop_event=stop, sweep_s=0.5, on_cycle=on_cycle, on_event=events.append)
            == 0
        )
    finally:
        release.set()
        timer.cancel()
        thread.join(5)
    assert cycles, events  # it ran instead of reporting another watcher


def test_second_watcher_still_exits_zero_when_one_really_runs(root, settings):
    from pipeline.fsutil import file_lock
    from pipeline.watcher import watch

    events: list[str] = []
    with file_lock(settings.paths.lock("watcher"), blocking=False):
        assert watch(settings, sweep_s=0.5, on_event=events.append, lock_wait_s=0.05) == 0
    assert any("already running" in e for e in events)
