"""Transcript parser on self-written fixtures: every rule, every kind of bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.models import Turn
from pipeline.redact import redact
from pipeline.transcript import (
    ERROR_EXCERPT_CHARS,
    TOOL_SUMMARY_CHARS,
    chunk_turns,
    error_excerpt,
    parse_bytes,
    render_turns,
    tool_summary,
)
from tests.helpers import assistant, jsonl, tool_result, tool_use, user


def test_user_and_assistant_text_and_metadata():
    parsed = parse_bytes(
        jsonl(user("fix the flaky test"), assistant("m1", [{"type": "text", "text": "On it."}]))
    )
    assert [(t.role, t.text) for t in parsed.turns] == [
        ("user", "fix the flaky test"),
        ("assistant", "On it."),
    ]
    assert parsed.turns[0].timestamp == "2026-11-20T10:00:00.000Z"
    assert (parsed.session_id, parsed.cwd, parsed.git_branch) == ("s-1", "/home/dev/acme", "main")
    assert parsed.skipped_lines == 0 and parsed.sdk_session is False


def test_split_assistant_frames_merge_by_message_id_in_order_and_drop_thinking():
    data = jsonl(
        user("run the tests"),
        assistant(
            "m1", [{"type": "thinking", "thinking": "SECRET THOUGHTS", "signature": "x"}], "f1"
        ),
        assistant("m1", [{"type": "text", "text": "Running them."}], "f2"),
        assistant("m1", [tool_use("t1", "Bash", {"command": "pytest -q"})], "f3"),
        user([tool_result("t1", "3 passed")], uuid="r1"),
        assistant(
            "m2",
            [{"type": "redacted_thinking", "data": "zzz"}, {"type": "text", "text": "All green."}],
            "f4",
        ),
    )
    turns = parse_bytes(data).turns
    assert [t.role for t in turns] == ["user", "assistant", "assistant"]
    assert turns[1].text == "Running them.\n-> Bash: pytest -q"
    assert turns[1].uuid == "f1"
    assert turns[2].text == "All green."
    assert "SECRET THOUGHTS" not in render_turns(turns) and "zzz" not in render_turns(turns)


@pytest.mark.parametrize(
    "name,tool_input,expected",
    [
        ("Bash", {"command": "pytest -q", "description": "run"}, "-> Bash: pytest -q"),
        ("Read", {"file_path": "/a/b.py", "offset": 3}, "-> Read: /a/b.py"),
        ("Write", {"file_path": "/a/c.py", "content": "x" * 999}, "-> Write: /a/c.py"),
        (
            "Edit",
            {"file_path": "/a/d.py", "old_string": "a", "new_string": "b"},
            "-> Edit: /a/d.py",
        ),
        ("MultiEdit", {"file_path": "/a/e.py", "edits": []}, "-> MultiEdit: /a/e.py"),
        ("Grep", {"pattern": "def main", "path": "src"}, "-> Grep: def main"),
        ("Glob", {"pattern": "**/*.md"}, "-> Glob: **/*.md"),
        (
            "WebFetch",
            {"url": "https://example.com/x", "prompt": "p"},
            "-> WebFetch: https://example.com/x",
        ),
        ("WebSearch", {"query": "sqlite wal"}, "-> WebSearch: sqlite wal"),
        ("Task", {"description": "Setup project", "prompt": "long..."}, "-> Task: Setup project"),
        ("TodoWrite", {"todos": [{}, {}, {}]}, "-> TodoWrite: 3 items"),
        ("Bash", {"command": "echo a\n  && echo b"}, "-> Bash: echo a && echo b"),
        (
            "mcp__memc__search",
            {"query": "locks", "limit": 5},
            '-> mcp__memc__search: {"limit":5,"query":"locks"}',
        ),
        ("Bash", {}, "-> Bash"),
        (None, "raw", '-> tool: "raw"'),
    ],
)
def test_tool_summaries(name, tool_input, expected):
    assert tool_summary(name, tool_input) == expected


def test_tool_summary_is_truncated_to_one_short_line():
    line = tool_summary("Bash", {"command": "x" * 1000})
    assert len(line) <= len("-> Bash: ") + TOOL_SUMMARY_CHARS and line.endswith("…")
    assert "\n" not in tool_summary("Unknown", {"a": "line1\nline2" * 50})


def test_tool_results_only_errors_kept_short_after_their_call():
    long_error = (
        "Traceback (most recent call last):\n" + "frame\n" * 200 + "ValueError: the real cause"
    )
    data = jsonl(
        assistant(
            "m1",
            [
                tool_use("t1", "Bash", {"command": "ls"}),
                tool_use("t2", "Edit", {"file_path": "/x.py"}),
                tool_use("t3", "Bash", {"command": "make"}),
                tool_use("t4", "Read", {"file_path": "/y.py"}),
            ],
        ),
        user(
            [
                tool_result("t1", "file-a\nfile-b"),
                tool_result("t2", "<tool_use_error>File has not been read yet.</tool_use_error>"),
                tool_result("t3", [{"type": "text", "text": long_error}], is_error=True),
                tool_result("t4", "Error: it looked bad but is_error is false", is_error=False),
            ]
        ),
    )
    turns = parse_bytes(data).turns
    assert len(turns) == 1
    lines = turns[0].text.split("\n")
    assert lines[0] == "-> Bash: ls"
    assert lines[2] == "<- error: File has not been read yet."
    assert lines[4].startswith("<- error: Traceback") and lines[4].endswith(
        "ValueError: the real cause"
    )
    assert len(lines[4]) <= len("<- error: ") + ERROR_EXCERPT_CHARS
    assert "file-a" not in turns[0].text
    assert "Error: it looked bad" in turns[0].text  # text that reads as an error is kept
    assert len(lines) == 7


def test_orphan_error_becomes_its_own_turn():
    turns = parse_bytes(jsonl(user([tool_result("nope", "boom", is_error=True)]))).turns
    assert [(t.role, t.text) for t in turns] == [("event", "<- error: boom")]


def test_images_and_documents_become_placeholders():
    png = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR" * 100},
    }
    turns = parse_bytes(
        jsonl(
            user([{"type": "text", "text": "what is this?"}, png]),
            assistant("m1", [png, {"type": "text", "text": "A cat."}]),
            user([{"type": "document", "source": {}}]),
        )
    ).turns
    assert [t.text for t in turns] == ["what is this?\n[image]", "[image]\nA cat.", "[document]"]
    assert "iVBOR" not in render_turns(turns)


def test_compact_summary_is_marked():
    turns = parse_bytes(
        jsonl(
            user(
                "This session is being continued...\n<system-reminder>x</system-reminder>\nWe "
                "fixed the lock.",
                isCompactSummary=True,
            )
        )
    ).turns
    assert turns[0].role == "summary"
    assert "We fixed the lock." in turns[0].text and "system-reminder" not in turns[0].text
    assert render_turns(turns).startswith("[compact summary] This session")


def test_meta_and_bookkeeping_and_unknown_entries_are_dropped():
    data = jsonl(
        user("Caveat: injected", isMeta=True),
        {
            "type": "attachment",
            "attachment": {"type": "hook_additional_context", "content": ["CTX"]},
        },
        {"type": "queue-operation", "operation": "enqueue", "content": "QUEUED"},
        {"type": "last-prompt", "lastPrompt": "LASTPROMPT"},
        {"type": "cost-state", "totalCostUSD": 0.1},
        {"type": "api-request-blob", "message": {"role": "user", "content": "BLOB"}},
        {"type": "api-request", "params": {}},
        {"type": "api-request-shape", "shape": {}},
        {"type": "tools-used", "tools": ["Write"]},
        {"type": "atis-latch", "atis": ""},
        {"type": "file-history-snapshot", "snapshot": {}},
        {"type": "system", "subtype": "compact_boundary", "content": "Conversation compacted"},
        {"type": "summary", "summary": "Old Title", "leafUuid": "x"},
        {"type": "brand-new-type", "message": {"role": "user", "content": "NEW"}},
        user("real question"),
    )
    parsed = parse_bytes(data)
    assert [t.text for t in parsed.turns] == ["real question"]
    assert parsed.skipped_lines == 0


def test_slash_command_wrappers_are_reduced():
    turns = parse_bytes(
        jsonl(
            user(
                "<command-message>orchestrator is running…</command-message>\n"
                "<command-name>/orchestrator</command-name>\n<command-args>build a TODO "
                "app</command-args>"
            ),
            user(
                "<command-name>/compact</command-name>\n  "
                "<command-message>compact</command-message>\n"
                "  <command-args></command-args>"
            ),
            user(
                "<local-command-caveat>The command below was run directly...</local-command-caveat>"
            ),
            user(
                "<local-command-stdout>Compacted (ctrl+o to see full "
                "summary)</local-command-stdout>"
            ),
            user("<local-command-stdout></local-command-stdout>"),
            user("<bash-input>git status</bash-input>"),
            user(
                "<bash-stdout>On branch main\nnothing to "
                "commit</bash-stdout><bash-stderr></bash-stderr>"
            ),
            user("hello <system-reminder>injected context</system-reminder>there"),
        )
    ).turns
    assert [t.text for t in turns] == [
        "/orchestrator build a TODO app",
        "/compact",
        "[command output] Compacted (ctrl+o to see full summary)",
        "$ git status",
        "[command output] On branch main nothing to commit",
        "hello there",
    ]


def test_sidechain_and_rendering():
    turns = parse_bytes(
        jsonl(
            user("main question"),
            user("subagent prompt", isSidechain=True),
            assistant("m9", [{"type": "text", "text": "subagent answer"}], isSidechain=True),
        )
    ).turns
    assert [t.sidechain for t in turns] == [False, True, True]
    assert render_turns(turns) == (
        "User: main question\n\n[subagent task] subagent prompt\n\n"
        "[subagent] Assistant: subagent answer"
    )
    assert render_turns(turns) == render_turns(list(turns))


def test_sdk_entrypoint_is_flagged():
    assert parse_bytes(jsonl(user("x", entrypoint="sdk-py"))).sdk_session is True
    assert parse_bytes(jsonl({"type": "last-prompt", "entrypoint": "sdk-py"})).sdk_session is True
    assert parse_bytes(jsonl(user("x", entrypoint="cli"))).sdk_session is False


def test_repeated_uuid_is_counted_once():
    entry = user("same line", uuid="dup")
    assert len(parse_bytes(jsonl(entry, entry)).turns) == 1


def test_skipped_lines_count_non_objects_and_truncated_tail():
    data = (
        jsonl(user("ok"))
        + b'not json\n[1, 2]\n"str"\n42\nnull\n\n   \n'
        + b'{"type": "user", "mess'
    )
    parsed = parse_bytes(data)
    assert [t.text for t in parsed.turns] == ["ok"]
    assert parsed.skipped_lines == 6


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n",
        b"\xff\xfe\x00garbage\x80\n",
        bytes(range(256)) * 10,
        "\ufeff".encode() + jsonl(user("bom first")),
        jsonl(user("crlf one")).replace(b"\n", b"\r\n")
        + jsonl(user("crlf two")).replace(b"\n", b"\r\n"),
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n",
        jsonl(user("caf\xe9".encode("latin-1").decode("latin-1"))).replace("é".encode(), b"\xe9"),
    ],
)
def test_hostile_bytes_never_raise(data):
    parsed = parse_bytes(data)
    assert all(isinstance(t.text, str) and t.text for t in parsed.turns)


def test_bom_crlf_and_invalid_utf8_still_parse():
    assert [t.text for t in parse_bytes("\ufeff".encode() + jsonl(user("bom first"))).turns] == [
        "bom first"
    ]
    crlf = jsonl(user("one"), user("two")).replace(b"\n", b"\r\n")
    assert [t.text for t in parse_bytes(crlf).turns] == ["one", "two"]
    bad = jsonl(user("café")).replace("é".encode(), b"\xe9")
    assert parse_bytes(bad).turns[0].text == "caf\ufffd"


def test_deeply_nested_line_is_skipped_not_fatal():
    data = jsonl(user("before")) + b"[" * 200_000 + b"]" * 200_000 + b"\n" + jsonl(user("after"))
    parsed = parse_bytes(data)
    assert [t.text for t in parsed.turns] == ["before", "after"]
    assert parsed.skipped_lines == 1


def test_thirty_megabyte_single_line():
    big = "x" * (30 * 1024 * 1024)
    parsed = parse_bytes(jsonl(user(big), user("after")))
    assert len(parsed.turns) == 2 and len(parsed.turns[0].text) == len(big)
    unterminated = b'{"type":"user","message":{"content":"' + b"y" * (30 * 1024 * 1024)
    assert parse_bytes(unterminated).skipped_lines == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "user", "message": {"content": {"type": "text", "text": "dict content"}}},
        {"type": "user", "message": {"content": 42}},
        {"type": "user", "message": {"content": None}},
        {"type": "user", "message": "not a dict"},
        {"type": "user"},
        {"type": "assistant", "message": {"id": 7, "content": [None, 1, "s", [], {"text": 3}]}},
        {"type": "assistant", "message": {"content": [{"text": "block without type"}]}},
        {
            "type": "assistant",
            "message": {"content": [{"type": "tool_use", "name": 5, "input": [1, {"a": None}]}]},
        },
        {
            "type": "user",
            "message": {
                "content": [{"type": "tool_result", "content": {"weird": True}, "is_error": "yes"}]
            },
        },
        {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": ["x"],
                        "content": [1, None],
                        "is_error": True,
                    }
                ]
            },
        },
        {
            "type": "user",
            "isSidechain": "yes",
            "timestamp": 5,
            "uuid": 9,
            "message": {"content": "odd types"},
        },
        {"type": ["user"], "message": {"content": "x"}},
    ],
)
def test_unexpected_shapes_never_raise(entry):
    parsed = parse_bytes(jsonl(entry))
    for turn in parsed.turns:
        assert isinstance(turn.text, str) and isinstance(turn.timestamp, str)
        assert isinstance(turn.uuid, str) and isinstance(turn.sidechain, bool)


def test_block_without_type_and_dict_content_are_read():
    texts = [
        t.text
        for t in parse_bytes(
            jsonl(
                {"type": "user", "message": {"content": {"type": "text", "text": "dict content"}}},
                {"type": "assistant", "message": {"content": [{"text": "block without type"}]}},
            )
        ).turns
    ]
    assert texts == ["dict content", "block without type"]


# --- chunking -------------------------------------------------------------------------------


def _turns(*texts: str) -> tuple[Turn, ...]:
    return tuple(
        Turn(role="user" if i % 2 == 0 else "assistant", text=t, uuid=str(i))
        for i, t in enumerate(texts)
    )


def test_chunks_respect_budget_and_keep_order():
    turns = _turns("a" * 50, "b" * 50, "c" * 50, "d" * 50)
    chunks = chunk_turns(turns, 130)
    assert all(len(render_turns(c)) <= 130 for c in chunks)
    assert [t for c in chunks for t in c] == list(turns)
    assert len(chunks) == 2


def test_oversized_turn_is_split_not_dropped():
    words = " ".join(f"word{i}" for i in range(2000))
    turns = _turns("short", words, "tail")
    chunks = chunk_turns(turns, 500)
    assert all(len(render_turns(c)) <= 500 for c in chunks)
    pieces = [t for c in chunks for t in c if t.uuid == "1"]
    assert len(pieces) > 10 and "".join(p.text for p in pieces) == words
    assert all(p.role == "assistant" for p in pieces)


def test_chunk_budget_must_be_positive():
    with pytest.raises(ValueError):
        chunk_turns(_turns("x"), 0)
    assert chunk_turns((), 100) == []


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=400), max_size=12), st.integers(40, 600))
def test_chunking_property_nothing_lost_budget_kept(texts, budget):
    turns = _turns(*texts)
    chunks = chunk_turns(turns, budget)
    assert all(len(render_turns(c)) <= budget for c in chunks)
    rebuilt: dict[str, str] = {}
    for chunk in chunks:
        for piece in chunk:
            rebuilt[piece.uuid] = rebuilt.get(piece.uuid, "") + piece.text
    assert [rebuilt.get(t.uuid) for t in turns] == [t.text for t in turns]


# --- hostile input, property-based ------------------------------------------------------------


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    parsed = parse_bytes(data)
    assert all(isinstance(t.text, str) for t in parsed.turns)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "text",
                    "content",
                    "message",
                    "id",
                    "name",
                    "input",
                    "is_error",
                    "tool_use_id",
                    "isMeta",
                    "isSidechain",
                    "isCompactSummary",
                    "uuid",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
entry_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["user", "assistant", "summary", "system", "attachment"])
        | json_values,
        "message": st.fixed_dictionaries(
            {
                "id": st.sampled_from(["m1", "m2"]) | json_values,
                "content": json_values
                | st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(
                                ["text", "tool_use", "tool_result", "image", "thinking"]
                            )
                            | json_values,
                            "text": json_values,
                            "content": json_values,
                            "input": json_values,
                            "name": json_values,
                            "is_error": json_values,
                            "id": json_values,
                            "tool_use_id": json_values,
                        }
                    ),
                    max_size=4,
                ),
            }
        )
        | json_values,
    },
    optional={
        "isMeta": json_values,
        "isSidechain": json_values,
        "uuid": json_values,
        "isCompactSummary": json_values,
        "timestamp": json_values,
        "entrypoint": json_values,
    },
)


@hsettings(max_examples=150, deadline=None)
@given(st.lists(json_values | entry_like, max_size=6))
def test_arbitrary_json_lines_never_raise(values):
    data = b"".join(json.dumps(v).encode() + b"\n" for v in values)
    parsed = parse_bytes(data)
    for turn in parsed.turns:
        assert isinstance(turn.text, str) and turn.text
        assert turn.role in ("user", "assistant", "summary", "report", "event")
    assert isinstance(render_turns(parsed.turns), str)


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


# --- chunking: a separator right at the budget made a piece one char too long ------------------


def test_split_piece_never_exceeds_budget_when_space_sits_at_the_cut():
    from pipeline.models import Turn
    from pipeline.transcript import chunk_turns, render_turns

    text = "0" * 34 + " "  # "User: " + 34 chars fills a 40-char budget; the space is char 35
    chunks = chunk_turns((Turn(role="user", text=text, uuid="0"),), 40)
    assert all(len(render_turns(c)) <= 40 for c in chunks)
    assert "".join(t.text for c in chunks for t in c) == text
