"""Claude Code JSONL transcript bytes -> conversational turns. Stdlib only (hot-path safe).

Role: the first step of distil. ``parse_bytes`` turns a spooled byte range of a transcript into
``ParsedTranscript`` (pipeline/models.py); ``render_turns`` makes the deterministic plain text the
prompts carry; ``chunk_turns`` splits turns to a character budget without losing any text.

Invariants:
- ``parse_bytes`` never raises on any input: bytes that are not UTF-8 are decoded with
  replacement characters, a BOM is ignored, CRLF is accepted, and a line that is not a JSON object
  (truncated, garbage, too deeply nested) is counted in ``skipped_lines`` and otherwise ignored.
- Only ``user`` and ``assistant`` entries produce turns. Bookkeeping types (attachment,
  queue-operation, last-prompt, cost-state, api-request*, tools-used, system, ...) and unknown
  types are ignored, as are ``isMeta`` entries. Old-format ``{"type":"summary"}`` lines are
  generated session titles that often describe another branch: they are ignored too.
- One Turn per assistant message: frames sharing ``message.id`` are merged, blocks in order.
  Thinking is dropped; tool calls become one line (``-> Bash: pytest -q``); a tool result is kept
  only when it is an error, as a short excerpt (``<- error: ...``) placed after its tool call.
- A user entry with ``isCompactSummary`` becomes a ``summary`` turn. Slash-command wrappers are
  reduced to ``/name args``; local command output to a short excerpt; injected
  ``<system-reminder>`` blocks are removed from user text.
- ``chunk_turns`` never drops text: the concatenation of the chunks' texts, turn by turn, is the
  concatenation of the input turns' texts.
- Text that is cut short here (tool summaries, error and command-output excerpts) is redacted
  (``pipeline.redact``) before the cut, so a cut never leaves an unrecognisable key fragment;
  distil still redacts every turn afterwards (redaction is idempotent).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pipeline.models import ParsedTranscript, Turn

TOOL_SUMMARY_CHARS = 160
ERROR_EXCERPT_CHARS = 300
COMMAND_OUTPUT_CHARS = 300
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
    "KillBash": ("shell_id", "bash_id"),
    "KillShell": ("shell_id",),
}

_SYSTEM_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.S)
_TAG = r"<{0}>(.*?)</{0}>"
_COMMAND_NAME = re.compile(_TAG.format("command-name"), re.S)
_COMMAND_ARGS = re.compile(_TAG.format("command-args"), re.S)
_COMMAND_WRAPPERS = re.compile(
    r"</?(?:command-name|command-message|command-args|command-contents)>", re.S
)
_LOCAL_STDOUT = re.compile(
    r"<local-command-(?:stdout|stderr)>(.*?)(?:</local-command-(?:stdout|stderr)>|\Z)", re.S
)
_LOCAL_CAVEAT = re.compile(r"<local-command-caveat>.*?(?:</local-command-caveat>|\Z)", re.S)
_BASH_INPUT = re.compile(_TAG.format("bash-input"), re.S)
_BASH_OUTPUT = re.compile(r"<bash-(?:stdout|stderr)>(.*?)(?:</bash-(?:stdout|stderr)>|\Z)", re.S)
_TOOL_USE_ERROR = re.compile(r"</?tool_use_error>")
_ERROR_START = re.compile(
    r"\s*(?:<tool_use_error>|Error\b|error:|Traceback \(most recent call last\))"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_WS = re.compile(r"\s+")


def _one_line(text: str) -> str:
    return _WS.sub(" ", _ANSI.sub("", text)).strip()


def _redacted_window(text: str, limit: int, *, tail: bool = False) -> str:
    """Redact a generous window of ``text`` BEFORE it is cut to ``limit``: a cut through a key
    would leave a fragment that no redaction rule recognises later (distil redacts turn text,
    which by then holds only the fragment)."""
    from pipeline.redact import redact

    window = limit * CUT_WINDOW
    return redact(text[-window:] if tail else text[:window])


def _shorten(text: str, limit: int) -> str:
    """Keep head and tail (an error's cause is often at the end); mark the cut."""
    if len(text) <= limit:
        return text
    head = (limit * 2) // 3
    tail = limit - head - 3
    if tail <= 0:
        return _redacted_window(text, limit)[:limit]
    return (
        _redacted_window(text, limit)[:head]
        + " … "
        + _redacted_window(text, limit, tail=True)[-tail:]
    )


def _iter_lines(data: bytes) -> Iterator[bytes]:
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
    detail = _one_line(detail)
    if len(detail) > TOOL_SUMMARY_CHARS:
        detail = _redacted_window(detail, TOOL_SUMMARY_CHARS)
        if len(detail) > TOOL_SUMMARY_CHARS:
            detail = detail[: TOOL_SUMMARY_CHARS - 1] + "…"
    return f"-> {label}: {detail}" if detail else f"-> {label}"


def _result_text(content: Any) -> str:
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


def error_excerpt(block: dict) -> str:
    """``<- error: ...`` for a failed tool result; "" when the result is not an error."""
    text = _result_text(block.get("content"))
    if block.get("is_error") is not True and not _ERROR_START.match(text):
        return ""
    text = _one_line(_TOOL_USE_ERROR.sub(" ", _SYSTEM_REMINDER.sub(" ", text)))
    return "<- error: " + (_shorten(text, ERROR_EXCERPT_CHARS) or "(no output)")


def clean_user_text(text: str) -> str:
    """Reduce Claude Code's wrappers around what the human typed; "" when nothing is left."""
    text = _SYSTEM_REMINDER.sub("", text)
    text = _LOCAL_CAVEAT.sub("", text)
    if "<command-name>" in text:
        name = _COMMAND_NAME.search(text)
        args = _COMMAND_ARGS.search(text)
        command = " ".join(
            p.strip()
            for p in (name.group(1) if name else "", args.group(1) if args else "")
            if p.strip()
        )
        rest = _COMMAND_WRAPPERS.sub(
            "",
            re.sub(
                r"<command-(?:name|message|args)>.*?</command-(?:name|message|args)>",
                "",
                text,
                flags=re.S,
            ),
        ).strip()
        text = "\n".join(p for p in (command, rest) if p)
    text = _LOCAL_STDOUT.sub(lambda m: _local_output(m.group(1)), text)
    text = _BASH_INPUT.sub(lambda m: "$ " + m.group(1).strip(), text)
    text = _BASH_OUTPUT.sub(lambda m: _local_output(m.group(1)), text)
    return text.strip()


def _local_output(body: str) -> str:
    body = _one_line(body)
    return "[command output] " + _shorten(body, COMMAND_OUTPUT_CHARS) if body else ""


def _blocks(content: Any) -> list:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return content
    return []


class _Builder:
    """Mutable turns while parsing; frozen into Turn values at the end."""

    def __init__(self) -> None:
        self.turns: list[dict] = []
        self.by_message: dict[str, int] = {}
        # tool_use id -> the part (a list: the call line, then any error lines) in its turn
        self.by_tool_use: dict[str, list[str]] = {}

    def add(self, role: str, parts: list[list[str]], entry: dict, message_id: str = "") -> int:
        if message_id and message_id in self.by_message:
            index = self.by_message[message_id]
            self.turns[index]["parts"].extend(parts)
            return index
        timestamp = entry.get("timestamp")
        uuid = entry.get("uuid")
        self.turns.append(
            {
                "role": role,
                "parts": list(parts),
                "timestamp": timestamp if isinstance(timestamp, str) else "",
                "sidechain": entry.get("isSidechain") is True,
                "uuid": uuid if isinstance(uuid, str) else "",
            }
        )
        index = len(self.turns) - 1
        if message_id:
            self.by_message[message_id] = index
        return index

    def freeze(self) -> tuple[Turn, ...]:
        out = []
        for t in self.turns:
            text = "\n".join(line for part in t["parts"] for line in part if line).strip()
            if text:
                out.append(
                    Turn(
                        role=t["role"],
                        text=text,
                        timestamp=t["timestamp"],
                        sidechain=t["sidechain"],
                        uuid=t["uuid"],
                    )
                )
        return tuple(out)


def _assistant(entry: dict, message: dict, b: _Builder) -> None:
    parts: list[list[str]] = []
    for block in _blocks(message.get("content")):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", None) and isinstance(block.get("text"), str):
            parts.append([block["text"].strip()])
        elif kind in ("tool_use", "server_tool_use"):
            part = [tool_summary(block.get("name"), block.get("input"))]
            parts.append(part)
            if isinstance(block.get("id"), str):
                b.by_tool_use[block["id"]] = part
        elif kind == "image":
            parts.append(["[image]"])
        # thinking, redacted_thinking, *_tool_result and unknown blocks: dropped
    message_id = message["id"] if isinstance(message.get("id"), str) else ""
    if parts or message_id:  # a thinking-only first frame still starts the turn (uuid, time)
        b.add("assistant", parts, entry, message_id)


def _user(entry: dict, message: dict, b: _Builder) -> None:
    role = "summary" if entry.get("isCompactSummary") is True else "user"
    parts: list[list[str]] = []
    for block in _blocks(message.get("content")):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", None) and isinstance(block.get("text"), str):
            if role == "summary":
                text = _SYSTEM_REMINDER.sub("", block["text"]).strip()
            else:
                text = clean_user_text(block["text"])
            if text:
                parts.append([text])
        elif kind == "tool_result":
            excerpt = error_excerpt(block)
            if not excerpt:
                continue
            tool_id = block.get("tool_use_id")
            owner = b.by_tool_use.get(tool_id) if isinstance(tool_id, str) else None
            if owner is not None:
                owner.append(excerpt)
            else:
                parts.append([excerpt])
        elif kind == "image":
            parts.append(["[image]"])
        elif kind == "document":
            parts.append(["[document]"])
    if parts:
        b.add(role, parts, entry)


def parse_bytes(data: bytes) -> ParsedTranscript:
    """Parse transcript bytes into turns. Never raises (see the module docstring)."""
    b = _Builder()
    skipped = 0
    sdk = False
    meta = {"sessionId": "", "cwd": "", "gitBranch": ""}
    seen_uuids: set[str] = set()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return ParsedTranscript(turns=())
    data = bytes(data)
    for raw in _iter_lines(data):
        line = raw.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
        if not line:
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            skipped += 1
            continue
        if not isinstance(entry, dict):
            skipped += 1
            continue
        try:
            if entry.get("entrypoint") == "sdk-py":
                sdk = True
            for key in meta:
                if not meta[key] and isinstance(entry.get(key), str):
                    meta[key] = entry[key]
            kind = entry.get("type")
            if kind not in ("user", "assistant") or entry.get("isMeta") is True:
                continue
            uuid = entry.get("uuid")
            if isinstance(uuid, str) and uuid:
                if uuid in seen_uuids:  # a resumed session repeats history
                    continue
                seen_uuids.add(uuid)
            message = entry.get("message")
            if not isinstance(message, dict):
                continue
            if kind == "assistant":
                _assistant(entry, message, b)
            else:
                _user(entry, message, b)
        except (RecursionError, ValueError, TypeError, AttributeError, KeyError):
            skipped += 1
    return ParsedTranscript(
        turns=b.freeze(),
        skipped_lines=skipped,
        sdk_session=sdk,
        session_id=meta["sessionId"],
        cwd=meta["cwd"],
        git_branch=meta["gitBranch"],
    )


def _prefix(turn: Turn) -> str:
    label = {"user": "User: ", "assistant": "Assistant: ", "summary": "[compact summary] "}.get(
        turn.role, f"{turn.role}: "
    )
    return ("[subagent] " + label) if turn.sidechain else label


def render_turn(turn: Turn) -> str:
    return _prefix(turn) + turn.text


def render_turns(turns: tuple[Turn, ...] | list[Turn]) -> str:
    """Deterministic plain text: one block per turn, separated by a blank line."""
    return "\n\n".join(render_turn(t) for t in turns)


def _split_text(text: str, size: int) -> list[str]:
    """Exact pieces of at most ``size`` chars, cut at a newline or space when one is near."""
    pieces = []
    while len(text) > size:
        # a separator at index size - 1 at most: it stays with the left piece, which must fit
        cut = max(text.rfind("\n", 0, size), text.rfind(" ", 0, size))
        if cut < size // 2:
            cut = size
        else:
            cut += 1  # the separator stays with the left piece, so nothing is lost
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def chunk_turns(turns: tuple[Turn, ...] | list[Turn], budget_chars: int) -> list[tuple[Turn, ...]]:
    """Group turns so each chunk renders to at most ``budget_chars`` (when the budget exceeds the
    longest role prefix, about 30 chars). A turn longer than the budget is split into pieces that
    keep its role, timestamp and uuid. Nothing is dropped."""
    if budget_chars < 1:
        raise ValueError("budget_chars must be positive")
    chunks: list[tuple[Turn, ...]] = []
    current: list[Turn] = []
    used = 0
    for turn in turns:
        size = len(render_turn(turn))
        if size > budget_chars:
            room = max(1, budget_chars - len(_prefix(turn)))
            pieces = [
                Turn(
                    role=turn.role,
                    text=p,
                    timestamp=turn.timestamp,
                    sidechain=turn.sidechain,
                    uuid=turn.uuid,
                )
                for p in _split_text(turn.text, room)
            ]
        else:
            pieces = [turn]
        for piece in pieces:
            size = len(render_turn(piece))
            extra = size + (2 if current else 0)
            if current and used + extra > budget_chars:
                chunks.append(tuple(current))
                current, used, extra = [], 0, size
            current.append(piece)
            used += extra
    if current:
        chunks.append(tuple(current))
    return chunks
