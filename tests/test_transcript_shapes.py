"""Claude Code 2.1.x entry shapes that carry the human's words in unusual places.

Fixtures are written here from the shapes in ../shared/reference/claude-code/ENTRY-TYPES.md,
with invented values; each test names the rule of pipeline/transcript.py it checks.
"""

from __future__ import annotations

from pipeline.redact import redact
from pipeline.transcript import parse_bytes, render_turns, split_rendered
from pipeline.transcript_shapes import PLAN_CHARS, REPORT_HEAD_CHARS, REPORT_TAIL_CHARS
from tests.helpers import assistant, jsonl, tool_result, tool_use, user

REJECT = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). "
)
STOP = "STOP what you are doing and wait for the user to tell you how to proceed."


def queue(operation: str, content: str | None = None) -> dict:
    entry = {
        "type": "queue-operation",
        "operation": operation,
        "timestamp": "2026-11-20T10:00:02.000Z",
        "sessionId": "s-1",
    }
    if content is not None:
        entry["content"] = content
    return entry


def rendered(*entries, **kw) -> str:
    return render_turns(parse_bytes(jsonl(*entries), **kw).turns)


# --- queued messages ---------------------------------------------------------------------------


def test_removed_queue_item_reaches_the_prompt_once_at_its_place():
    text = rendered(
        user("refactor the parser"),
        assistant("m1", [tool_use("t1", "Bash", {"command": "pytest -q"})]),
        queue("enqueue", "also check the retry path"),
        user([tool_result("t1", "3 passed")]),
        queue("remove"),
        assistant("m2", [{"type": "text", "text": "Done; checking the retry path too."}]),
    )
    assert text.count("also check the retry path") == 1
    assert text == (
        "User: refactor the parser\n\nAssistant: -> Bash: pytest -q\n\n"
        "User: [queued] also check the retry path\n\n"
        "Assistant: Done; checking the retry path too."
    )


def test_dequeued_item_arrives_as_a_user_entry_and_is_not_repeated():
    text = rendered(
        queue("enqueue", "Say hello please"),
        queue("dequeue"),
        user("Say hello please"),
        assistant("m1", [{"type": "text", "text": "Hello."}]),
    )
    assert text == "User: Say hello please\n\nAssistant: Hello."


def test_removed_item_that_a_later_user_entry_carries_is_not_repeated():
    text = rendered(
        queue("enqueue", "use   the\nfixture"),
        queue("remove"),
        user("use the fixture"),
    )
    assert text == "User: use the fixture"


def test_queued_slash_command_is_matched_against_its_wrapper():
    text = rendered(
        queue("enqueue", "/compact"),
        queue("dequeue"),
        user("<command-name>/compact</command-name><command-message>compact</command-message>"),
    )
    assert text == "User: /compact"


def test_queued_command_attachment_counts_as_the_carrier():
    text = rendered(
        queue("enqueue", "also bump the version"),
        queue("remove"),
        {
            "type": "attachment",
            "attachment": {"type": "queued_command", "prompt": "also bump the version"},
        },
    )
    assert text.count("also bump the version") == 1


def test_item_still_queued_at_the_end_of_the_range_is_left_to_the_next_range():
    assert rendered(user("start"), queue("enqueue", "later words")) == "User: start"


def test_two_queued_items_resolve_first_in_first_out():
    text = rendered(
        queue("enqueue", "first thought"),
        queue("enqueue", "second thought"),
        queue("dequeue"),
        user("first thought"),
        queue("remove"),
    )
    # the removed item stands where it was typed: before the dequeued one's user entry
    assert text == "User: [queued] second thought\n\nUser: first thought"


# --- AskUserQuestion ---------------------------------------------------------------------------

QUESTIONS = {
    "questions": [
        {
            "question": "Which branch?",
            "header": "Branch",
            "options": [
                {"label": "main", "description": "x"},
                {"label": "dev", "description": "y"},
            ],
            "multiSelect": False,
        },
        {"question": "Run the slow tests?", "header": "Tests", "options": [], "multiSelect": False},
    ]
}
ANSWER_TEXT = (
    'User has answered your questions: "Which branch?"="dev, main is frozen", '
    '"Run the slow tests?"="No". You can now continue with the user\'s answers in mind.'
)


def test_ask_user_question_is_one_exchange_from_structured_answers():
    text = rendered(
        assistant("m1", [tool_use("q1", "AskUserQuestion", QUESTIONS)]),
        user(
            [tool_result("q1", ANSWER_TEXT)],
            toolUseResult={
                "questions": QUESTIONS["questions"],
                "answers": {"Run the slow tests?": "No", "Which branch?": "dev, main is frozen"},
            },
        ),
    )
    assert text == (
        "User: Asked: Which branch? -> answered: dev, main is frozen\n"
        "Asked: Run the slow tests? -> answered: No"
    )
    assert "options" not in text and "AskUserQuestion" not in text


def test_ask_user_question_answer_from_the_result_text_alone():
    text = rendered(
        assistant("m1", [tool_use("q1", "AskUserQuestion", QUESTIONS)]),
        user([tool_result("q1", [{"type": "text", "text": ANSWER_TEXT}])]),
    )
    assert text.startswith("User: Asked: Which branch?; Run the slow tests? -> answered: ")
    assert '"Which branch?"="dev, main is frozen"' in text
    assert "You can now continue" not in text


def test_ask_user_question_answer_whose_call_was_in_an_earlier_range():
    free_text = "Neither: cut a release branch from the v2 tag first"
    text = rendered(
        user(
            [tool_result("gone", "User has answered your questions: ...")],
            toolUseResult={"answers": {"Which branch?": free_text}},
        )
    )
    assert text == f"User: Asked: Which branch? -> answered: {free_text}"


def test_declined_question_with_feedback_is_the_humans_words():
    text = rendered(
        assistant("m1", [tool_use("q1", "AskUserQuestion", QUESTIONS)]),
        user(
            [
                tool_result(
                    "q1", REJECT + "To tell you how to proceed, the user said:\nask me later", True
                )
            ]
        ),
    )
    assert text == "User: [rejected AskUserQuestion] ask me later"


# --- ExitPlanMode ------------------------------------------------------------------------------


def _plan(lines: int) -> str:
    return "# Plan: move the queue to Postgres\n" + "".join(
        f"- step {i}: decide on advisory lock key scheme number {i}\n" for i in range(lines)
    )


def test_plan_text_is_kept_bounded_at_a_line_and_its_approval_marked():
    plan = _plan(300)
    assert len(plan) > PLAN_CHARS
    text = rendered(
        assistant("m1", [tool_use("p1", "ExitPlanMode", {"plan": plan, "allowedPrompts": []})]),
        user(
            [
                tool_result(
                    "p1",
                    "User has approved your plan. You can now start coding.\n\n## Approved Plan:\n"
                    + plan,
                )
            ]
        ),
    )
    body = text.split("[plan]\n", 1)[1].split("\n[cut ", 1)[0]
    assert plan.startswith(body) and body.endswith(f"number {body.count(chr(10)) - 1}")
    assert len(body) <= PLAN_CHARS
    assert f"[cut {len(plan) - len(body) - 1:,} chars]" in text
    assert text.endswith("<- [plan approved]")
    assert text.count("step 1:") == 1  # the approval's copy of the plan is not repeated


def test_short_plan_is_kept_whole_and_the_approved_copy_fills_a_call_without_one():
    plan = _plan(3)
    assert plan.strip() in rendered(
        assistant("m1", [tool_use("p1", "ExitPlanMode", {"plan": plan})])
    )
    text = rendered(
        assistant("m1", [tool_use("p1", "ExitPlanMode", {})]),
        user([tool_result("p1", "User has approved your plan.\n## Approved Plan:\n" + plan)]),
    )
    assert "[plan]\n# Plan: move the queue to Postgres" in text and "<- [plan approved]" in text


def test_rejected_plan_keeps_the_feedback_as_the_humans_words():
    text = rendered(
        assistant("m1", [tool_use("p1", "ExitPlanMode", {"plan": _plan(2)})]),
        user(
            [
                tool_result(
                    "p1",
                    REJECT + "To tell you how to proceed, the user said:\nno, keep SQLite",
                    True,
                )
            ]
        ),
    )
    assert text.endswith("User: [plan rejected] no, keep SQLite")
    assert "doesn't want to proceed" not in text


# --- tool rejections ---------------------------------------------------------------------------


def test_rejection_keeps_the_feedback_and_drops_the_boilerplate():
    text = rendered(
        assistant("m1", [tool_use("t1", "Bash", {"command": "rm -rf build"})]),
        user(
            [
                tool_result(
                    "t1",
                    REJECT + "To tell you how to proceed, the user said:\nuse the fixture instead",
                    True,
                ),
                {"type": "text", "text": "[Request interrupted by user for tool use]"},
            ]
        ),
    )
    assert text == (
        "Assistant: -> Bash: rm -rf build\n\n"
        "User: [rejected Bash] use the fixture instead\n\n[interrupted]"
    )


def test_rejection_without_feedback_is_a_short_marker_on_the_call():
    text = rendered(
        assistant("m1", [tool_use("t1", "Edit", {"file_path": "/a/b.py"})]),
        user([tool_result("t1", REJECT + STOP, True)]),
    )
    assert text == "Assistant: -> Edit: /a/b.py\n<- [rejected]"


# --- subagents ---------------------------------------------------------------------------------


def test_subagent_report_is_a_bounded_redacted_turn():
    secret = "ghp_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
    lines = [f"finding {i}: the parser drops queue-operation lines" for i in range(600)]
    lines[len(lines) // 2 - 41] = f"token seen in env: {secret}"
    report = "## Findings\n" + "\n".join(lines) + "\nConclusion: parse queue-operation entries."
    text = rendered(
        assistant(
            "m1",
            [
                tool_use(
                    "a1",
                    "Task",
                    {
                        "description": "Explore the parser",
                        "prompt": "look",
                        "subagent_type": "Explore",
                    },
                )
            ],
        ),
        user(
            [
                tool_result(
                    "a1",
                    [
                        {"type": "text", "text": report},
                        {"type": "text", "text": "agentId: a1b2c3 (for resuming)"},
                    ],
                )
            ],
            toolUseResult={"agentId": "a1b2c3", "totalDurationMs": 1, "totalTokens": 2},
        ),
    )
    head, body = text.split("\n\n[subagent report] ", 1)
    assert head == "Assistant: -> Task: Explore the parser"
    assert body.startswith("## Findings\nfinding 0:") and body.endswith(
        "Conclusion: parse queue-operation entries."
    )
    assert len(body) <= REPORT_HEAD_CHARS + REPORT_TAIL_CHARS + 40
    assert "[cut " in body and "agentId" not in body
    assert secret[4:16] not in redact(body)


def test_short_report_is_whole_and_an_error_stays_an_error():
    text = rendered(
        assistant(
            "m1",
            [
                tool_use("a1", "Agent", {"description": "d"}),
                tool_use("a2", "Task", {"description": "e"}),
            ],
        ),
        user(
            [
                tool_result("a1", "All three call sites use the old API."),
                tool_result("a2", "Error: agent crashed", True),
            ]
        ),
    )
    assert "[subagent report] All three call sites use the old API." in text
    assert "-> Task: e\n<- error: Error: agent crashed" in text


def test_subagent_task_prompt_is_not_a_human_request():
    blocks = split_rendered(
        rendered(
            user("look at the parser", isSidechain=True, agentId="a1"),
            assistant("m1", [{"type": "text", "text": "It skips queue lines."}], isSidechain=True),
        )
    )
    assert blocks == [("task", "look at the parser"), ("subagent", "It skips queue lines.")]


# --- machine text ------------------------------------------------------------------------------


def test_machine_text_is_never_a_user_line():
    notification = (
        "<task-notification>\n<task-id>b0be39e</task-id>\n<output-file>/tmp/x.output</output-file>\n"
        "<status>completed</status>\n"
        '<summary>Background command "npm test" completed (exit code 0)</summary>\n'
        "</task-notification>"
    )
    text = rendered(
        user(notification),
        user([{"type": "text", "text": "[Request interrupted by user]"}]),
        user("<local-command-stdout>other-tool hook: 12 files indexed</local-command-stdout>"),
        user(
            "<command-name>/review</command-name><command-message>review</command-message>"
            "<command-args>the lock change</command-args>"
        ),
        user("ship it <system-reminder>the date is 2026-11-20</system-reminder>"),
    )
    blocks = split_rendered(text)
    assert blocks == [
        (
            "event",
            '[task notification: completed] Background command "npm test" completed (exit code 0)',
        ),
        ("event", "[interrupted]"),
        ("event", "[command output] other-tool hook: 12 files indexed"),
        ("user", "/review the lock change"),
        ("user", "ship it"),
    ]


# --- compaction summaries ----------------------------------------------------------------------

SUMMARY = "This session is being continued from a previous conversation. We chose advisory locks."


def test_compaction_summary_is_left_out_when_its_turns_are_in_the_range():
    parsed = parse_bytes(
        jsonl(
            user("use advisory locks"),
            {"type": "system", "subtype": "compact_boundary", "content": "Conversation compacted"},
            user(SUMMARY, isCompactSummary=True),
            user("now the tests"),
        )
    )
    assert [t.text for t in parsed.turns] == ["use advisory locks", "now the tests"]
    assert parsed.summaries_dropped == 1


def test_compaction_summary_is_left_out_when_the_range_continues_a_capture():
    parsed = parse_bytes(jsonl(user(SUMMARY, isCompactSummary=True), user("go on")), continued=True)
    assert [t.text for t in parsed.turns] == ["go on"] and parsed.summaries_dropped == 1


def test_compaction_summary_is_kept_when_its_turns_were_never_captured():
    parsed = parse_bytes(jsonl(user(SUMMARY, isCompactSummary=True), user("go on")))
    assert [t.role for t in parsed.turns] == ["summary", "user"]
    assert render_turns(parsed.turns).startswith("[compact summary] This session")
