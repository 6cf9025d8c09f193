"""Entry shapes of Claude Code transcripts -> the short, faithful text a turn carries.

Role: the text-level half of ``pipeline.transcript``: one function per shape (tool call line,
error excerpt, rejection, AskUserQuestion exchange, ExitPlanMode plan, subagent report, machine
text in user entries). ``pipeline.transcript`` walks the JSON lines and decides where each piece
goes; this module only turns one piece of JSON into text. Stdlib only (hot-path safe).

Invariants:
- Pure functions of their arguments; never raise on any JSON value.
- Text that is cut short here is redacted (``pipeline.redact``) over a generous window BEFORE
  the cut, so a cut never leaves an unrecognisable key fragment.
- Markers are bracketed and short (``[interrupted]``, ``[rejected]``, ``[cut 1,234 chars]``);
  the human's own words are never cut by a marker rule, only bounded where a limit is named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

TOOL_SUMMARY_CHARS = 160
ERROR_EXCERPT_CHARS = 300
COMMAND_OUTPUT_CHARS = 160
NOTIFICATION_CHARS = 300
SUBAGENT_TASK_CHARS = 600
PLAN_CHARS = 6000
REPORT_HEAD_CHARS = 3000
REPORT_TAIL_CHARS = 1000
CUT_WINDOW = 8  # a text cut to N chars is redacted over its first (or last) 8*N chars first

# Which input field says the most about a call of each known tool.
_TOOL_FIELDS: dict[str, tuple[str, ...]] = {
    "Bash": ("command",),
    "Read": ("file_path",),
    "Write": ("file_path",),
    "Edit": ("file_path",),
    "MultiEdit": ("file_path",),
    "NotebookEdit": ("notebook_path",),
    "NotebookRead": ("notebook_path",),
    "Grep": ("pattern",),
    "Glob": ("pattern",),
    "LS": ("path",),
    "WebFetch": ("url",),
    "WebSearch": ("query",),
    "Task": ("description",),
    "Agent": ("description",),
    "Skill": ("skill", "command"),
    "SlashCommand": ("command",),
    "BashOutput": ("bash_id", "shell_id"),
    "TaskOutput": ("task_id", "bash_id", "shell_id"),
    "KillBash": ("shell_id", "bash_id"),
    "KillShell": ("shell_id",),
}
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})

SYSTEM_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.S)
_TAG = r"<{0}>(.*?)</{0}>"
_COMMAND_NAME = re.compile(_TAG.format("command-name"), re.S)
_COMMAND_ARGS = re.compile(_TAG.format("command-args"), re.S)
_COMMAND_BLOCKS = re.compile(
    r"<command-(?:name|message|args)>.*?</command-(?:name|message|args)>", re.S
)
_COMMAND_WRAPPERS = re.compile(
    r"</?(?:command-name|command-message|command-args|command-contents)>", re.S
)
_LOCAL_STDOUT = re.compile(
    r"<local-command-(?:stdout|stderr)>(.*?)(?:</local-command-(?:stdout|stderr)>|\Z)", re.S
)
_LOCAL_CAVEAT = re.compile(r"<local-command-caveat>.*?(?:</local-command-caveat>|\Z)", re.S)
_BASH_INPUT = re.compile(_TAG.format("bash-input"), re.S)
_BASH_OUTPUT = re.compile(r"<bash-(?:stdout|stderr)>(.*?)(?:</bash-(?:stdout|stderr)>|\Z)", re.S)
_INTERRUPTED = re.compile(r"\[Request interrupted by user[^\]\n]{0,80}\]")
_NOTIFICATION = re.compile(r"<task-notification>.*?(?:</task-notification>|\Z)", re.S)
_TOOL_USE_ERROR = re.compile(r"</?tool_use_error>")
_ERROR_START = re.compile(
    r"\s*(?:<tool_use_error>|Error\b|error:|Traceback \(most recent call last\))"
)
_REJECTED = re.compile(
    r"\s*The user doesn't want to (?:proceed with this tool use|take this action)"
)
_USER_SAID = re.compile(r"the user said:\s*", re.I)
_ANSWERED = re.compile(
    r"^\s*User has answered your questions?:\s*(.*?)\s*"
    r"(?:You can now continue with the user's answers in mind\.?)?\s*$",
    re.S,
)
_APPROVED_PLAN = re.compile(r"## Approved Plan:\s*\n(.*)\Z", re.S)
_AGENT_FOOTER = re.compile(r"(?m)^\s*agentId: [\w-]+.*$|<usage>.*?(?:</usage>|\Z)", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_WS = re.compile(r"\s+")


def one_line(text: str) -> str:
    return _WS.sub(" ", _ANSI.sub("", text)).strip()


def redacted_window(text: str, limit: int, *, tail: bool = False) -> str:
    """Redact a generous window of ``text`` BEFORE it is cut to ``limit``: a cut through a key
    would leave a fragment that no redaction rule recognises later (distil redacts turn text,
    which by then holds only the fragment)."""
    from pipeline.redact import redact

    window = limit * CUT_WINDOW
    return redact(text[-window:] if tail else text[:window])


def shorten(text: str, limit: int) -> str:
    """One-line excerpt keeping head and tail (an error's cause is often at the end)."""
    if len(text) <= limit:
        return text
    head = (limit * 2) // 3
    tail = limit - head - 3
    if tail <= 0:
        return redacted_window(text, limit)[:limit]
    return (
        redacted_window(text, limit)[:head]
        + " … "
        + redacted_window(text, limit, tail=True)[-tail:]
    )


def cut_marker(chars: int) -> str:
    return f"[cut {chars:,} chars]"


def head_at_line(text: str, limit: int) -> str:
    """At most ``limit`` chars of ``text``, cut at a line end when one is in the second half,
    with a ``[cut N chars]`` marker; the text itself when it fits."""
    if len(text) <= limit:
        return text
    size, text = len(text), redacted_window(text, limit)
    cut = text.rfind("\n", 0, limit)
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip() + "\n" + cut_marker(size - cut)


def head_and_tail(text: str, head: int, tail: int) -> str:
    """A long report bounded to its first ``head`` and last ``tail`` chars, cut at lines."""
    if len(text) <= head + tail + 40:
        return text
    first = redacted_window(text, head)
    cut = first.rfind("\n", 0, head)
    cut = cut if cut >= head // 2 else head
    last = redacted_window(text, tail, tail=True)
    start = last.find("\n", len(last) - tail)
    start = start + 1 if 0 <= start < len(last) - tail // 2 else len(last) - tail
    dropped = len(text) - cut - (len(last) - start)
    return f"{first[:cut].rstrip()}\n{cut_marker(max(dropped, 0))}\n{last[start:].lstrip()}"


def iter_lines(data: bytes) -> Iterator[bytes]:
    """Lines split on b"\\n" only (JSON strings may hold U+2028 raw), without copying the whole."""
    pos, size = 0, len(data)
    if data.startswith(b"\xef\xbb\xbf"):
        pos = 3
    while pos < size:
        end = data.find(b"\n", pos)
        if end < 0:
            end = size
        yield data[pos:end]
        pos = end + 1


def blocks(content: Any) -> list:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return content
    return []


def tool_summary(name: Any, tool_input: Any) -> str:
    """One line for a tool call: ``-> Bash: pytest -q``."""
    label = name if isinstance(name, str) and name else "tool"
    detail = ""
    if isinstance(tool_input, dict):
        for field in _TOOL_FIELDS.get(label, ()):
            value = tool_input.get(field)
            if isinstance(value, str) and value.strip():
                detail = value
                break
        else:
            if label == "TodoWrite" and isinstance(tool_input.get("todos"), list):
                detail = f"{len(tool_input['todos'])} items"
    if not detail and tool_input not in (None, {}, ""):
        try:
            detail = json.dumps(
                tool_input, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
            )
        except (ValueError, TypeError, RecursionError):
            detail = "…"
    detail = one_line(detail)
    if len(detail) > TOOL_SUMMARY_CHARS:
        detail = redacted_window(detail, TOOL_SUMMARY_CHARS)
        if len(detail) > TOOL_SUMMARY_CHARS:
            detail = detail[: TOOL_SUMMARY_CHARS - 1] + "…"
    return f"-> {label}: {detail}" if detail else f"-> {label}"


def result_text(content: Any) -> str:
    """The text of a tool result's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "image":
                    parts.append("[image]")
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""


def is_error_result(block: dict, text: str) -> bool:
    return block.get("is_error") is True or bool(_ERROR_START.match(text))


def error_excerpt(block: dict) -> str:
    """``<- error: ...`` for a failed tool result; "" when the result is not an error."""
    text = result_text(block.get("content"))
    if not is_error_result(block, text):
        return ""
    text = one_line(_TOOL_USE_ERROR.sub(" ", SYSTEM_REMINDER.sub(" ", text)))
    return "<- error: " + (shorten(text, ERROR_EXCERPT_CHARS) or "(no output)")


def rejection(text: str) -> tuple[bool, str]:
    """(is this a rejected tool call, the human's feedback after the boilerplate or "")."""
    if not _REJECTED.match(text):
        return False, ""
    said = _USER_SAID.search(text)
    feedback = text[said.end() :] if said else ""
    return True, SYSTEM_REMINDER.sub("", feedback).strip()


def questions_of(tool_input: Any) -> list[str]:
    """The question texts of an AskUserQuestion call, in order."""
    questions = tool_input.get("questions") if isinstance(tool_input, dict) else None
    out = []
    for q in questions if isinstance(questions, list) else []:
        text = q.get("question") if isinstance(q, dict) else None
        if isinstance(text, str) and text.strip():
            out.append(one_line(text))
    return out


def _answer_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def answer_exchange(questions: list[str], answers: Any, text: str) -> str:
    """``Asked: Q -> answered: A`` per question, from the structured answers or the result text.
    "" when neither holds an answer."""
    lines: list[str] = []
    if isinstance(answers, dict) and answers:
        remaining = {one_line(str(k)): v for k, v in answers.items()}
        for question in questions:
            if question in remaining:
                lines.append(
                    f"Asked: {question} -> answered: {_answer_text(remaining.pop(question))}"
                )
        lines.extend(f"Asked: {q} -> answered: {_answer_text(a)}" for q, a in remaining.items())
        return "\n".join(lines)
    match = _ANSWERED.match(SYSTEM_REMINDER.sub("", text))
    if match and match.group(1).strip():
        asked = "; ".join(questions)
        return (f"Asked: {asked} -> " if asked else "") + f"answered: {match.group(1).strip()}"
    return ""


def plan_text(tool_input: Any) -> str:
    plan = tool_input.get("plan") if isinstance(tool_input, dict) else None
    return plan.strip() if isinstance(plan, str) else ""


def approved_plan(text: str) -> str:
    """The plan copy inside an approval result (used when the call itself carried none)."""
    match = _APPROVED_PLAN.search(text)
    return match.group(1).strip() if match else ""


def plan_block(plan: str) -> str:
    return "[plan]\n" + head_at_line(plan, PLAN_CHARS)


def subagent_report(text: str) -> str:
    """The report a subagent returned, without its machine footer, bounded at head and tail."""
    body = SYSTEM_REMINDER.sub("", _AGENT_FOOTER.sub("", text)).strip()
    return head_and_tail(body, REPORT_HEAD_CHARS, REPORT_TAIL_CHARS) if body else ""


def subagent_task(text: str) -> str:
    """A subagent's task prompt (written by the parent assistant, not by the human), bounded."""
    return head_at_line(text.strip(), SUBAGENT_TASK_CHARS)


def _local_output(body: str) -> str:
    body = one_line(body)
    return "[command output] " + shorten(body, COMMAND_OUTPUT_CHARS) if body else ""


def _notification(block: str) -> str:
    def tag(name: str) -> str:
        m = re.search(_TAG.format(name), block, re.S)
        return one_line(m.group(1)) if m else ""

    status = tag("status")
    summary = tag("summary") or tag("description")
    marker = f"[task notification: {status}]" if status else "[task notification]"
    return f"{marker} {shorten(summary, NOTIFICATION_CHARS)}".strip()


def split_user_text(text: str) -> tuple[str, list[str]]:
    """(what the human typed, machine markers) of one user text block.

    Removed: ``<system-reminder>`` and ``<local-command-caveat>``. Reduced to the human's part:
    slash-command wrappers (``/name args``), ``<bash-input>`` (``$ cmd``). Moved out as short
    markers: ``[Request interrupted ...]`` (``[interrupted]``), ``<task-notification>``
    (``[task notification: status] summary``), local command and ``!`` shell output
    (``[command output] excerpt``)."""
    markers: list[str] = []

    def out(marker: str) -> str:
        if marker:
            markers.append(marker)
        return ""

    text = SYSTEM_REMINDER.sub("", text)
    text = _LOCAL_CAVEAT.sub("", text)
    text = _NOTIFICATION.sub(lambda m: out(_notification(m.group(0))), text)
    text = _INTERRUPTED.sub(lambda m: out("[interrupted]"), text)
    if "<command-name>" in text:
        name = _COMMAND_NAME.search(text)
        args = _COMMAND_ARGS.search(text)
        command = " ".join(
            p.strip()
            for p in (name.group(1) if name else "", args.group(1) if args else "")
            if p.strip()
        )
        rest = _COMMAND_WRAPPERS.sub("", _COMMAND_BLOCKS.sub("", text)).strip()
        text = "\n".join(p for p in (command, rest) if p)
    text = _LOCAL_STDOUT.sub(lambda m: out(_local_output(m.group(1))), text)
    text = _BASH_INPUT.sub(lambda m: "$ " + m.group(1).strip(), text)
    text = _BASH_OUTPUT.sub(lambda m: out(_local_output(m.group(1))), text)
    return text.strip(), markers


def clean_user_text(text: str) -> str:
    """The human's words of one user text block, machine markers dropped; "" when none."""
    return split_user_text(text)[0]
