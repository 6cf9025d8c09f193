"""A Claude Code 2.1.x session, hook to distil prompt: every word the human typed arrives once.

The session in tests/data/transcripts-2.1 is self-made from the shapes in
../shared/reference/claude-code/ENTRY-TYPES.md (invented values): queued messages, a subagent
(Task result + subagents/agent-*.jsonl, plus a compaction agent's file), AskUserQuestion, an
approved plan, a rejection with feedback, an interruption, a task notification, a compaction,
a slash command, other tools' command output, and long paths and tool ids.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline import drain
from tests.fakes import FakeBackend
from tests.helpers import hook_inproc, hook_payload

DATA = Path(__file__).parent / "data" / "transcripts-2.1"
SID = "7c1e2d3f-0a4b-4c5d-8e9f-a0b1c2d3e4f5"
CWD = "/Users/Dev/Projects/MyApp2"
REPLY = {"worth_saving": False}

HUMAN = [
    "User: fix the double label in the buttons",
    "User: [queued] also check the Storybook stories",
    "User: Asked: Fix all 60 buttons or only Button3? -> answered: Only Button3 now; "
    "the rest after the release",
    "User: [rejected Bash] keep that output, it has the failing snapshot",
    "User: /review the Button3 change",
]


def _session(tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    shutil.copytree(DATA, folder)
    return folder / "-Users-Dev-Projects-MyApp2" / f"{SID}.jsonl"


def _prompts(settings) -> list[str]:
    """The transcript text of every distil call a drain makes."""
    fake = FakeBackend(default=REPLY)
    drain.drain(settings, backend=fake, sleep=lambda s: None, run_after=False)
    return [c.payload["transcript"] for c in fake.calls]


def test_every_human_word_reaches_the_prompt_once_and_machine_text_does_not(
    root, settings, tmp_path, monkeypatch
):
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    main = _session(tmp_path)
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    prompts = _prompts(settings)
    assert len(prompts) == 2  # the session and its Explore subagent; not the compaction agent
    parent = next(p for p in prompts if p.startswith("User: fix the double label"))
    subagent = next(p for p in prompts if p is not parent)
    for words in HUMAN:
        assert parent.count(words) == 1, words
    assert parent.count("User: ") == len(HUMAN)  # nothing else speaks as the human
    assert "[plan]\n# Plan: keep every word the human typed" in parent
    assert "<- [plan approved]" in parent and "[cut " in parent
    assert "[subagent report] ## Findings" in parent
    assert "Conclusion: fix the label prop in Button3.tsx first." in parent
    assert "[interrupted]" in parent and "[task notification: completed]" in parent
    for noise in (
        "This session is being continued",  # its turns are in the same job
        "doesn't want to proceed",
        "agentId:",
        "User has answered your questions",
        "<local-command-stdout>",
        "<task-notification>",
        "REDACTED",  # paths and tool ids are not secrets
    ):
        assert noise not in parent, noise
    assert "/Users/Dev/Projects/MyApp2/src/components/Button3.tsx" in parent
    assert subagent.startswith("[subagent task] Search src/components")
    assert "User: " not in subagent
    assert "Summarise the conversation so far" not in parent + subagent


def test_compaction_summary_of_turns_captured_earlier_is_left_out(
    root, settings, tmp_path, monkeypatch
):
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    main = _session(tmp_path)
    data = main.read_bytes()
    cut = data.index(b'"subtype": "compact_boundary"')
    cut = data.rindex(b"\n", 0, cut) + 1
    main.write_bytes(data[:cut])  # a Stop checkpoint before the compaction
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    main.write_bytes(data)
    assert hook_inproc(["session-end"], root, hook_payload(SID, main, CWD), monkeypatch) == 0
    prompts = _prompts(settings)
    later = [p for p in prompts if p.startswith("User: /review")]
    assert later == [
        "User: /review the Button3 change\n\n"
        "[command output] other-plugin: indexed 1,204 files in 3.2s\n\n"
        "Assistant: Reviewed: the Button3 change is minimal and covered by the "
        "snapshot test."
    ]
    assert not any("This session is being continued" in p for p in prompts)
