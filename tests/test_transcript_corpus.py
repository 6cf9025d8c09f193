"""Parser and redaction over real transcripts nobody on this project wrote.

Skips when ../shared/corpus (or the reference captures) is absent. Facts asserted here were
checked by reading the files: counts come from an independent scan of the raw JSON, not from
the parser under test.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.redact import redact, redact_counts
from pipeline.transcript import parse_bytes, render_turns
from tests.helpers import SHARED

PUBLIC = SHARED / "corpus" / "public-transcripts"
REFERENCE = SHARED / "reference" / "claude-code" / "transcripts"
BIG = "claude-code-viewer-fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"
TOOLY = "claude-code-viewer-5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
SHORT = "claude-code-viewer-1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"
SDK_TEXT = "cli2.1.329_sdk_text_reply_with_sessionstart_hook.jsonl"
SDK_COMPACT = "cli2.1.329_sdk_write_tool_then_manual_compact.jsonl"
# Real sessions hold no secrets, so every change is a false positive; the measured rate is 0.
CORPUS_FP_LIMIT = 0.001

pytestmark = pytest.mark.corpus


def _path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is absent")
    return path


def _all_files() -> list[Path]:
    files = sorted(PUBLIC.glob("*.jsonl")) + sorted(REFERENCE.glob("*.jsonl"))
    if not files:
        pytest.skip("no corpus transcripts beside the checkout")
    return files


def _raw_entries(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _independent_counts(path: Path) -> dict[str, int]:
    """What the parser should find, counted straight from the JSON."""
    message_ids, errors, tool_uses, task_ids, reports = set(), 0, 0, set(), 0
    for entry in _raw_entries(path):
        content = (
            (entry.get("message") or {}).get("content")
            if entry.get("type") in ("user", "assistant")
            else None
        )
        if not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_use":
                tool_uses += 1
                if block.get("name") in ("Task", "Agent"):
                    task_ids.add(block["id"])
            if entry["type"] == "assistant" and block.get("type") in ("text", "tool_use"):
                message_ids.add(entry["message"]["id"])
            if block.get("type") == "tool_result":
                text = (
                    block["content"]
                    if isinstance(block["content"], str)
                    else json.dumps(block["content"])
                )
                if block.get("is_error") is True or text.lstrip().startswith("<tool_use_error>"):
                    errors += 1
                elif block.get("tool_use_id") in task_ids:
                    reports += 1
    return {
        "assistant_messages": len(message_ids),
        "errors": errors,
        "tool_uses": tool_uses,
        "reports": reports,
    }


def test_big_session_438_lines():
    path = _path(PUBLIC, BIG)
    parsed = parse_bytes(path.read_bytes())
    expected = _independent_counts(path)
    text = render_turns(parsed.turns)
    roles = Counter((t.role, t.sidechain) for t in parsed.turns)
    assert parsed.skipped_lines == 0 and not parsed.sdk_session
    assert (
        parsed.session_id == "fe5e1c67-53e7-4862-81ae-d0e013e3270b"
        and parsed.cwd == "/path/to/Demo"
    )
    assert len(parsed.turns) == 182
    assert roles == {
        ("assistant", True): 161,
        ("assistant", False): 9,
        ("user", True): 5,
        ("user", False): 2,
        ("report", False): 5,
    }
    assert roles[("report", False)] == expected["reports"]
    assert sum(t.role == "assistant" for t in parsed.turns) == expected["assistant_messages"] == 170
    assert text.count("<- error: ") == expected["errors"] == 23
    assert (
        sum(line.startswith("-> ") or ": -> " in line for line in text.splitlines())
        == expected["tool_uses"]
        == 167
    )
    user_turns = [t.text for t in parsed.turns if t.role == "user" and not t.sidechain]
    assert user_turns == [
        "/orchestrator create TODO app by Next.js",
        "Thanks! Please update CLAUDE.md for current changes",
    ]
    assert "-> Task: Setup Next.js project" in text
    assert "-> Bash: pnpm add lucide-react" in text
    assert "<- error: File has not been read yet. Read it first before writing to it." in text
    # the isMeta expansion of the slash command and the old-format summary title are gone
    assert "Split complex tasks into independent subtasks" not in text
    assert "Empty Repo Setup" not in text
    # a subagent's task prompt is the parent assistant's text, never a User: line
    assert "[subagent task] Create React components" in text
    assert "[subagent report] ## Component Summary" in text


def test_tool_heavy_and_short_sessions():
    tooly = parse_bytes(_path(PUBLIC, TOOLY).read_bytes())
    assert len(tooly.turns) == 25 and tooly.git_branch == "main"
    assert (
        sum(t.role == "report" for t in tooly.turns)
        == _independent_counts(_path(PUBLIC, TOOLY))["reports"]
    )
    assert sum(t.sidechain for t in tooly.turns) == 12
    assert tooly.turns[0].text == "/orchestrator @CLAUDE.md を最新の状態にアップデートしてください"
    assert "<- error: InputValidationError" in render_turns(tooly.turns)
    short = parse_bytes(_path(PUBLIC, SHORT).read_bytes())
    assert short.turns[0].text == "/init" and len(short.turns) == 8
    assert "<- error: Claude requested permissions" in render_turns(short.turns)


def test_sdk_transcripts_are_flagged_and_bookkeeping_dropped():
    plain = parse_bytes(_path(REFERENCE, SDK_TEXT).read_bytes())
    assert plain.sdk_session and [t.role for t in plain.turns] == ["user", "assistant"]
    assert plain.turns[0].text == "Say hello please"
    compact = parse_bytes(_path(REFERENCE, SDK_COMPACT).read_bytes())
    assert compact.sdk_session and compact.skipped_lines == 0
    # the compaction summary covers turns above it in the same file: left out
    assert [t.role for t in compact.turns] == ["user", "assistant", "assistant", "user", "event"]
    assert compact.summaries_dropped == 1
    text = render_turns(compact.turns)
    assert "-> Write: /home/dev/projects/demo/out.txt" in text
    assert "This session is being continued" not in text
    assert "User: /compact" in text
    assert "[command output] Compacted PreCompact" in text
    for noise in (
        "CTX-FROM-SESSIONSTART-HOOK",
        "system-reminder",
        "tools-used",
        "local-command-caveat",
        "totalCostUSD",
        "You are powered by",
    ):
        assert noise not in text


def test_every_file_parses_and_renders_deterministically():
    for path in _all_files():
        data = path.read_bytes()
        first, second = parse_bytes(data), parse_bytes(data)
        assert first == second and first.skipped_lines == 0
        assert render_turns(first.turns) == render_turns(second.turns)
        # a transcript cut anywhere (a live session) still parses; at most the cut line is lost
        cut = parse_bytes(data[: len(data) // 2])
        assert cut.skipped_lines <= 1


def test_corpus_false_positive_rate():
    rendered = "\n".join(render_turns(parse_bytes(p.read_bytes()).turns) for p in _all_files())
    raw = "\n".join(p.read_text(encoding="utf-8") for p in _all_files())
    for label, text in (("rendered turns", rendered), ("raw jsonl", raw)):
        out, counts = redact_counts(text)
        before, after = Counter(text.split()), Counter(out.split())
        changed, total = sum((before - after).values()), sum(before.values())
        print(
            f"\ncorpus {label}: {changed}/{total} tokens changed ({changed / total:.4%}), {counts}"
        )
        assert total > 5000
        assert changed / total <= CORPUS_FP_LIMIT
    assert redact(rendered) == rendered


_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
_MACHINE_START = (
    "<local-command",
    "<bash-stdout",
    "<bash-stderr",
    "<task-notification>",
    "[Request interrupted",
)


def _typed_by_the_human(path: Path) -> list[str]:
    """What the human typed, read straight from the JSON (not through the parser): main-chain
    user text that is not injected (isMeta), not a compaction summary and not machine output;
    a slash command as its name and arguments; and every queued message."""
    out = []
    for entry in _raw_entries(path):
        if entry.get("type") == "queue-operation" and entry.get("operation") == "enqueue":
            out.append(entry["content"])
        if entry.get("type") != "user" or entry.get("isMeta") or entry.get("isSidechain"):
            continue
        if entry.get("isCompactSummary"):
            continue
        content = entry["message"]["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            if block.get("type") != "text":
                continue
            text = _REMINDER.sub("", block["text"]).strip()
            if "<command-name>" in text:
                name = re.search(r"<command-name>(.*?)</command-name>", text, re.S)
                args = re.search(r"<command-args>(.*?)</command-args>", text, re.S)
                parts = (m.group(1).strip() for m in (name, args) if m)
                text = " ".join(parts)
            elif text.startswith(_MACHINE_START):
                continue
            if text.strip():
                out.append(text)
    return out


def test_every_human_typed_message_reaches_the_rendered_transcript():
    checked = 0
    for path in _all_files():
        turns = parse_bytes(path.read_bytes()).turns
        rendered = " ".join(redact(render_turns(turns)).split())
        for typed in _typed_by_the_human(path):
            assert " ".join(typed.split()) in rendered, (path.name, typed[:80])
            checked += 1
        human = [t for t in turns if t.role == "user" and not t.sidechain]
        assert all(not t.text.startswith(("[interrupted]", "[command output]")) for t in human)
    assert checked >= 8
