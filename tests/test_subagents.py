"""Subagent transcripts (``<session>/subagents/agent-*.jsonl``) are captured with their parent.

Files are laid out as Claude Code 2.1.x writes them (ENTRY-TYPES.md), with invented content.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.backfill import backfill, find_transcripts
from pipeline.llm.extractive import distil_entry
from pipeline.models import Envelope
from pipeline.subagents import subagent_transcripts
from pipeline.transcript import parse_bytes, render_turns
from tests.helpers import hook_inproc, hook_payload

SID = "4d5611e5-8d1c-4abc-9def-0123456789ab"
CWD = "/home/dev/acme-api"


def _entry(kind: str, content, **extra) -> str:
    obj = {
        "type": kind,
        "sessionId": SID,
        "cwd": CWD,
        "message": {"role": kind, "content": content},
    }
    return json.dumps({**obj, **extra}) + "\n"


def session(folder: Path, agents: dict[str, str]) -> Path:
    """A main transcript and its subagents folder: {agent file stem: task prompt}."""
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / f"{SID}.jsonl"
    main.write_text(_entry("user", "find why the queue double-processes jobs"))
    sub = folder / SID / "subagents"
    sub.mkdir(parents=True)
    for stem, task in agents.items():
        (sub / f"{stem}.jsonl").write_text(
            _entry("user", task, isSidechain=True, agentId=stem[6:])
            + _entry(
                "assistant",
                [{"type": "text", "text": f"{stem}: the worker SELECTs without a lock."}],
                isSidechain=True,
                agentId=stem[6:],
            )
        )
    return main


AGENTS = {
    "agent-a1b2c3": "Explore the worker loop and report how rows are claimed.",
    "agent-d4e5f6": "Read the queue tests and list what they cover.",
    "agent-acompact-9z8y": "Summarise the conversation so far.",
}


def _inbox(root: Path) -> list[Envelope]:
    files = sorted((root / ".memc" / "inbox").glob("*.json"))
    return [Envelope.from_json(p.read_text()) for p in files]


def test_subagent_files_are_found_and_the_compaction_agent_is_not(tmp_path):
    main = session(tmp_path / "proj", AGENTS)
    found = [Path(p).name for p in subagent_transcripts(str(main))]
    assert found == ["agent-a1b2c3.jsonl", "agent-d4e5f6.jsonl"]
    assert subagent_transcripts(str(tmp_path / "proj" / "other.jsonl")) == []
    assert subagent_transcripts("") == []


def test_hook_captures_subagents_with_the_parent_session_and_own_cursors(
    root, tmp_path, monkeypatch
):
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    main = session(tmp_path / "proj", AGENTS)
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    jobs = _inbox(root)
    paths = sorted(Path(e.transcript_path).name for e in jobs)
    assert paths == [f"{SID}.jsonl", "agent-a1b2c3.jsonl", "agent-d4e5f6.jsonl"]
    assert {e.session_id for e in jobs} == {SID}
    assert {e.start for e in jobs} == {0}
    log = (root / ".memc" / "logs" / "hooks.log").read_text()
    assert "subagents=2 queued=2" in log

    # Nothing new: nothing queued. One subagent grows: only its delta is queued.
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    assert len(_inbox(root)) == 3
    grown = main.parent / SID / "subagents" / "agent-d4e5f6.jsonl"
    size = grown.stat().st_size
    with grown.open("a") as fh:
        fh.write(
            _entry(
                "assistant",
                [{"type": "text", "text": "Also: no test covers retries."}],
                isSidechain=True,
            )
        )
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    new = [e for e in _inbox(root) if e.start > 0]
    assert [(Path(e.transcript_path).name, e.start) for e in new] == [("agent-d4e5f6.jsonl", size)]


def test_finished_subagents_are_not_opened_again(root, tmp_path, monkeypatch):
    from pipeline import capture

    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    main = session(tmp_path / "proj", AGENTS)
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    opened: list[str] = []
    real = capture.capture

    def counting(settings, *, transcript_path, **kw):
        opened.append(Path(transcript_path).name)
        return real(settings, transcript_path=transcript_path, **kw)

    monkeypatch.setattr(capture, "capture", counting)
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    assert opened == [f"{SID}.jsonl"]  # both subagents are fully captured: not opened
    log = (root / ".memc" / "logs" / "hooks.log").read_text().splitlines()[-1]
    assert "subagents=2 queued=0" in log


def test_backfill_captures_subagents_under_the_parent_session(settings):
    folder = Path.home() / ".claude" / "projects" / "-home-dev-acme-api"
    session(folder, AGENTS)
    found = sorted((t.path.name, t.session_id) for t in find_transcripts())
    assert found == [
        (f"{SID}.jsonl", SID),
        ("agent-a1b2c3.jsonl", SID),
        ("agent-d4e5f6.jsonl", SID),
    ]
    first = backfill(settings)
    assert (first.sessions, first.queued) == (3, 3)
    again = backfill(settings)
    assert (again.queued, again.nothing_new) == (0, 3)


def test_a_subagent_task_prompt_is_not_a_human_request(tmp_path):
    main = session(tmp_path / "proj", AGENTS)
    sub = main.parent / SID / "subagents" / "agent-a1b2c3.jsonl"
    text = render_turns(parse_bytes(sub.read_bytes()).turns)
    assert text.startswith("[subagent task] Explore the worker loop")
    entry = distil_entry({"project": "acme-api", "transcript": text})
    assert entry["key_exchanges"] == []
    assert "Explore the worker loop" not in entry["title"]
    assert not entry["worth_saving"] or "0 user request(s)" in entry["context"]
