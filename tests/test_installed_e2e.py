"""The pipeline as a user installs it: the hook commands `install-hooks` writes, run by a shell
the way Claude Code runs them, with the drain the SessionEnd hook starts in the background."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from pipeline.daily import list_days, read_entries
from pipeline.install import install_hooks, installed_hooks

REPO = Path(__file__).resolve().parent.parent
SAMPLE = sorted((REPO / "samples").glob("*.jsonl"))[0]


def _run_hook(command: str, payload: dict, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=json.dumps(payload),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_installed_hooks_capture_and_the_spawned_drain_distils(root, tmp_path):
    (root / ".memc" / "config.toml").write_text('backend = "extractive"\n')
    settings_json = tmp_path / "claude" / "settings.json"
    install_hooks(settings_json, root)
    commands = {h.event: h.command for h in installed_hooks(settings_json)}
    assert set(commands) == {"SessionStart", "SessionEnd", "PreCompact", "Stop", "UserPromptSubmit"}

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMC_")}  # as Claude Code would
    transcript = tmp_path / "session.jsonl"
    transcript.write_bytes(SAMPLE.read_bytes())
    payload = {
        "session_id": "e2e-session",
        "transcript_path": str(transcript),
        "cwd": "/home/dev/projects/acme-api",
        "hook_event_name": "SessionEnd",
        "reason": "prompt_input_exit",
    }
    # The hook hands the distil step to a detached drain (own session, no inherited pipes:
    # test_capture.py::test_spawn_drain_starts_detached_internal_child); its speed is measured
    # by scripts/bench_hooks.py.
    done = _run_hook(commands["SessionEnd"], payload, env)
    assert done.returncode == 0 and done.stdout == ""

    deadline = time.monotonic() + 60  # the background drain: poll for its result, do not guess
    while not (
        list_days(root / "daily")
        and read_entries(root / "daily", list_days(root / "daily")[0])  # written, not just created
        and not list((root / ".memc" / "inbox").glob("*.json"))
    ):
        assert time.monotonic() < deadline, "the spawned drain never wrote the daily log"
        time.sleep(0.05)
    [day] = list_days(root / "daily")
    entries = read_entries(root / "daily", day)
    assert len(entries) == 1 and entries[0].project == "acme-api"
    assert "advisory" in entries[0].text.lower()
    log = (root / ".memc" / "logs" / "hooks.log").read_text()
    assert "session-end" in log and "queued" in log and "drain=spawned" in log

    # the same session ending again captures nothing new and appends nothing
    assert _run_hook(commands["SessionEnd"], payload, env).returncode == 0
    assert len(read_entries(root / "daily", day)) == 1

    # the next session starts with the context injected
    start = _run_hook(
        commands["SessionStart"],
        {
            "session_id": "next",
            "transcript_path": "",
            "cwd": "/home/dev/projects/acme-api",
            "hook_event_name": "SessionStart",
            "source": "startup",
        },
        env,
    )
    assert start.returncode == 0
    out = json.loads(start.stdout)
    context = out["hookSpecificOutput"]["additionalContext"]
    assert out["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert len(context) < 9000 and "memc search" in context
    assert entries[0].title[:40] in context  # the session just distilled is offered back
