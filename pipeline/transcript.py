"""Claude Code JSONL transcript bytes -> conversational turns. Stdlib only (hot-path safe).

Role: the first step of distil. ``parse_bytes`` turns a spooled byte range of a transcript into
``ParsedTranscript`` (pipeline/models.py); ``render_turns`` makes the deterministic plain text the
prompts carry; ``chunk_turns`` splits turns to a character budget without losing any text. The
text of each entry shape is made in ``pipeline.transcript_shapes``.

Invariants:
- ``parse_bytes`` never raises on any input: bytes that are not UTF-8 are decoded with
  replacement characters, a BOM is ignored, CRLF is accepted, and a line that is not a JSON object
  (truncated, garbage, too deeply nested) is counted in ``skipped_lines`` and otherwise ignored.
- Every word the human typed reaches a ``User:`` turn; machine text never does.
- ``chunk_turns`` never drops text: the concatenation of the chunks' texts, turn by turn, is the
  concatenation of the input turns' texts.
- Text cut short here is redacted before the cut (``transcript_shapes.redacted_window``); distil
  still redacts every turn afterwards (redaction is idempotent).

Rules, entry by entry (roles: user, assistant, summary, report, event; ``Turn.kind`` names the
shape where it is not plain typed text):
- ``user`` / ``assistant`` entries make turns; ``isMeta`` entries, thinking blocks, bookkeeping
  types (attachment, last-prompt, cost-state, api-request*, tools-used, system, progress,
  file-history-snapshot, old ``summary`` titles, ...) and unknown types are ignored. One Turn per
  assistant message: frames sharing ``message.id`` are merged, blocks in order.
- Tool calls become one line (``-> Bash: pytest -q``); a result is kept only when it says
  something: an error as a short excerpt (``<- error: ...``) after its call.
- Queued messages (``queue-operation``): an ``enqueue`` becomes a ``User: [queued] ...`` turn at
  its place once the item is ``dequeue``d or ``remove``d (FIFO), unless a later user entry in the
  same range carries the same text (a dequeued item normally arrives as a user entry, so it is
  not repeated). An item still queued when the range ends is left to the range that resolves it.
  A ``queued_command`` attachment counts as a user entry carrying its text.
- AskUserQuestion: the call makes no line; its result becomes one user turn (kind ``answer``),
  ``Asked: <question> -> answered: <answer>``, from ``toolUseResult.answers`` or the result text.
- ExitPlanMode: the plan (``input.plan``, else the approved copy in the result) is kept as
  ``[plan]`` + its first ``PLAN_CHARS`` chars cut at a line; approval adds ``<- [plan approved]``.
- Rejected tool calls ("The user doesn't want to proceed ..."): with feedback, a user turn
  (kind ``feedback``) ``[rejected Bash] <feedback>`` / ``[plan rejected] <feedback>``; without,
  the call gets ``<- [rejected]``. The boilerplate itself never reaches the prompt.
- ``Task``/``Agent`` results: the subagent's report becomes a ``[subagent report]`` turn,
  bounded at head and tail, its ``agentId``/usage footer dropped. Sidechain turns (inline in
  1.0.x files, or a ``subagents/agent-*.jsonl`` file) are marked ``[subagent]``; a sidechain
  user text is the parent assistant's task prompt: ``[subagent task]`` (kind ``task``), bounded,
  never counted as the human's.
- Machine text in user entries is never a ``User:`` line: ``<system-reminder>`` and
  ``<local-command-caveat>`` are removed; ``[Request interrupted ...]`` becomes an
  ``[interrupted]`` event; ``<task-notification>`` a ``[task notification: status] summary``
  event; local command and ``!`` shell output a ``[command output] excerpt`` event; slash-command
  wrappers are reduced to ``/name args`` (kind ``command``), ``<bash-input>`` to ``$ cmd``.
- Compaction summaries (``isCompactSummary``) are left out when the turns they cover are in the
  same range (a conversation turn came before them) or were captured earlier
  (``parse_bytes(..., continued=True)``: the range does not start the transcript); otherwise
  they become a ``summary`` turn. ``summaries_dropped`` counts the ones left out.
- A uuid seen twice in one range (a resumed session repeating history) counts once.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from pipeline.models import ParsedTranscript, Turn
from pipeline.transcript_render import chunk_turns, render_turn, render_turns, split_rendered
from pipeline.transcript_shapes import (
    ERROR_EXCERPT_CHARS,
    SUBAGENT_TOOLS,
    SYSTEM_REMINDER,
    TOOL_SUMMARY_CHARS,
    answer_exchange,
    approved_plan,
    blocks,
    clean_user_text,
    error_excerpt,
    is_error_result,
    iter_lines,
    plan_block,
    plan_text,
    questions_of,
    rejection,
    result_text,
    split_user_text,
    subagent_report,
    subagent_task,
    tool_summary,
)

__all__ = [
    "ERROR_EXCERPT_CHARS",
    "TOOL_SUMMARY_CHARS",
    "chunk_turns",
    "clean_user_text",
    "error_excerpt",
    "parse_bytes",
    "render_turn",
    "render_turns",
    "split_rendered",
    "tool_summary",
]


def _norm(text: str) -> str:
    return " ".join(text.split())


class _Call:
    """A tool call waiting for its result: its name, input and line(s) in its turn."""

    __slots__ = ("input", "name", "part")

    def __init__(self, name: str, tool_input: Any, part: list[str]) -> None:
        self.name, self.input, self.part = name, tool_input, part


class _Builder:
    """Mutable turns while parsing; frozen into Turn values at the end."""

    def __init__(self, continued: bool) -> None:
        self.turns: list[dict] = []
        self.by_message: dict[str, int] = {}
        self.calls: dict[str, _Call] = {}
        self.queue: deque[int] = deque()  # indices of queued turns not yet dequeued/removed
        self.continued = continued  # the bytes before this range were captured already
        self.conversation = False  # a main-chain user or assistant turn was seen
        self.summaries_dropped = 0

    def add(
        self, role: str, parts: list[list[str]], entry: dict, message_id: str = "", kind: str = ""
    ) -> int:
        if message_id and message_id in self.by_message:
            index = self.by_message[message_id]
            self.turns[index]["parts"].extend(parts)
            return index
        timestamp, uuid = entry.get("timestamp"), entry.get("uuid")
        sidechain = entry.get("isSidechain") is True
        self.turns.append(
            {
                "role": role,
                "kind": kind,
                "parts": list(parts),
                "timestamp": timestamp if isinstance(timestamp, str) else "",
                "sidechain": sidechain,
                "uuid": uuid if isinstance(uuid, str) else "",
            }
        )
        if role in ("user", "assistant") and not sidechain and kind != "queued":
            self.conversation = True
        index = len(self.turns) - 1
        if message_id:
            self.by_message[message_id] = index
        return index

    def _drop_queued(self) -> set[int]:
        """Indices of queued turns to leave out: unresolved, or carried by a later user turn."""
        drop = set(self.queue)
        later: list[str] = []  # normalized texts of user turns after the current index
        for index in range(len(self.turns) - 1, -1, -1):
            t = self.turns[index]
            if t["role"] != "user" or t["sidechain"]:
                continue
            if t.get("queued") is not None:
                if any(t["queued"] in text for text in later):
                    drop.add(index)
            else:
                later.append(_norm("\n".join(line for part in t["parts"] for line in part)))
        return drop

    def freeze(self) -> tuple[Turn, ...]:
        drop = self._drop_queued() if any("queued" in t for t in self.turns) else set()
        out = []
        for index, t in enumerate(self.turns):
            text = "\n".join(line for part in t["parts"] for line in part if line).strip()
            if text and index not in drop:
                out.append(
                    Turn(
                        role=t["role"],
                        text=text,
                        timestamp=t["timestamp"],
                        sidechain=t["sidechain"],
                        uuid=t["uuid"],
                        kind=t["kind"],
                    )
                )
        return tuple(out)


def _assistant(entry: dict, message: dict, b: _Builder) -> None:
    parts: list[list[str]] = []
    for block in blocks(message.get("content")):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", None) and isinstance(block.get("text"), str):
            parts.append([block["text"].strip()])
        elif kind in ("tool_use", "server_tool_use"):
            name = block["name"] if isinstance(block.get("name"), str) else ""
            tool_input = block.get("input")
            if name == "AskUserQuestion":
                part: list[str] = []  # the exchange is rendered where the answer comes back
            elif name == "ExitPlanMode" and plan_text(tool_input):
                part = [plan_block(plan_text(tool_input))]
            else:
                part = [tool_summary(name, tool_input)]
            parts.append(part)
            if isinstance(block.get("id"), str):
                b.calls[block["id"]] = _Call(name, tool_input, part)
        elif kind == "image":
            parts.append(["[image]"])
        # thinking, redacted_thinking, *_tool_result and unknown blocks: dropped
    message_id = message["id"] if isinstance(message.get("id"), str) else ""
    if parts or message_id:  # a thinking-only first frame still starts the turn (uuid, time)
        b.add("assistant", parts, entry, message_id)


def _tool_result(block: dict, entry: dict, b: _Builder, emit) -> None:
    """Place what a tool result says: on its call's lines, or as a turn of its own."""
    tool_id = block.get("tool_use_id")
    call = b.calls.get(tool_id) if isinstance(tool_id, str) else None
    name = call.name if call else ""
    text = result_text(block.get("content"))
    extra = entry.get("toolUseResult")
    extra = extra if isinstance(extra, dict) else {}
    error = is_error_result(block, text)

    def on_call(line: str) -> None:
        if call is not None:
            call.part.append(line)
        else:
            emit("event", line)

    rejected, feedback = rejection(text) if error or not name else (False, "")
    if rejected:
        if feedback:
            label = "[plan rejected]" if name == "ExitPlanMode" else f"[rejected {name or 'tool'}]"
            emit("user", f"{label} {feedback}", "feedback")
        else:
            on_call("<- [rejected]")
        return
    answers = extra.get("answers")
    if name == "AskUserQuestion" or (not name and isinstance(answers, dict)):
        exchange = answer_exchange(questions_of(call.input if call else None), answers, text)
        if exchange:
            emit("user", exchange, "answer")
            return
    if not error and (name == "ExitPlanMode" or (not name and approved_plan(text))):
        if call is None or not call.part or not call.part[0].startswith("[plan]"):
            plan = approved_plan(text)
            if plan:
                on_call(plan_block(plan))
        if "approved" in text[:200].lower():
            on_call("<- [plan approved]")
        return
    if not error and (name in SUBAGENT_TOOLS or (not name and extra.get("agentId"))):
        report = subagent_report(text)
        if report:
            emit("report", report)
        return
    excerpt = error_excerpt(block)
    if excerpt:
        on_call(excerpt)


def _user(entry: dict, message: dict, b: _Builder) -> None:
    sidechain = entry.get("isSidechain") is True
    if entry.get("isCompactSummary") is True:
        if b.continued or b.conversation:
            b.summaries_dropped += 1
            return
        texts = [
            SYSTEM_REMINDER.sub("", blk["text"]).strip()
            for blk in blocks(message.get("content"))
            if isinstance(blk, dict) and isinstance(blk.get("text"), str)
        ]
        if any(texts):
            b.add("summary", [[t] for t in texts if t], entry)
        return
    typed: list[list[str]] = []
    kind = ""

    def flush() -> None:
        nonlocal typed
        if typed:
            b.add("user", typed, entry, kind=("task" if sidechain else kind))
            typed = []

    def emit(role: str, text: str, turn_kind: str = "") -> None:
        flush()
        b.add(role, [[text]], entry, kind=turn_kind)

    for block in blocks(message.get("content")):
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype in ("text", None) and isinstance(block.get("text"), str):
            raw = block["text"]
            human, markers = split_user_text(raw)
            if human:
                if "<command-name>" in raw:
                    kind = "command"
                typed.append([subagent_task(human) if sidechain else human])
            for marker in markers:
                emit("event", marker)
        elif btype == "tool_result":
            _tool_result(block, entry, b, emit)
        elif btype == "image":
            typed.append(["[image]"])
        elif btype == "document":
            typed.append(["[document]"])
    flush()


def _queue_operation(entry: dict, b: _Builder) -> None:
    op = entry.get("operation")
    if op == "enqueue":
        text = clean_user_text(result_text(entry.get("content")))
        if text:
            index = b.add("user", [["[queued] " + text]], entry, kind="queued")
            b.turns[index]["queued"] = _norm(text)
            b.queue.append(index)
    elif op in ("dequeue", "remove") and b.queue:
        b.queue.popleft()
    elif op in ("popAll", "clear"):
        b.queue.clear()


def _attachment(entry: dict, b: _Builder) -> None:
    attachment = entry.get("attachment")
    if isinstance(attachment, dict) and attachment.get("type") == "queued_command":
        text = clean_user_text(result_text(attachment.get("prompt") or attachment.get("content")))
        if text:
            b.add("user", [[text]], entry, kind="queued")


def parse_bytes(data: bytes, *, continued: bool = False) -> ParsedTranscript:
    """Parse transcript bytes into turns. Never raises (see the module docstring).
    ``continued``: the bytes before this range were captured already (compaction summaries of
    them add nothing)."""
    b = _Builder(continued)
    skipped = 0
    sdk = False
    meta = {"sessionId": "", "cwd": "", "gitBranch": ""}
    seen_uuids: set[str] = set()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return ParsedTranscript(turns=())
    data = bytes(data)
    for raw in iter_lines(data):
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
            if kind == "queue-operation":
                _queue_operation(entry, b)
                continue
            if kind == "attachment":
                _attachment(entry, b)
                continue
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
        summaries_dropped=b.summaries_dropped,
    )
