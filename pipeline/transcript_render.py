"""Turns -> the plain text prompts carry, and back; chunking to a budget. Stdlib only.

Role: the rendering half of ``pipeline.transcript`` (which re-exports these names).
``render_turns`` is deterministic: one block per turn, its role prefix, a blank line between.
``split_rendered`` reads such a text back into labelled blocks for consumers that only get the
text (the offline backend). ``chunk_turns`` never drops text: the concatenation of the chunks'
texts, turn by turn, is the concatenation of the input turns' texts.

Prefixes: ``User: ``, ``Assistant: ``, ``[compact summary] ``, ``[subagent report] ``; sidechain
turns ``[subagent] Assistant: `` and ``[subagent task] `` (a task prompt, never the human's);
events (``[interrupted]``, ``[task notification: ...]``, ``[command output] ...``, orphan
``<- error: ...``) carry no prefix, their text starts with the marker.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pipeline.models import Turn

_PREFIX = {
    "user": "User: ",
    "assistant": "Assistant: ",
    "summary": "[compact summary] ",
    "report": "[subagent report] ",
    "event": "",
}
_SIDE_PREFIX = {
    "user": "[subagent task] ",
    "assistant": "[subagent] Assistant: ",
    "event": "[subagent] ",
}
_EVENT_START = r"\[(?:interrupted|task notification|command output|plan approved)|<- "
_BLOCK_START = re.compile(
    r"^(User: |Assistant: |\[subagent\] Assistant: |\[subagent task\] |\[subagent report\] |"
    r"\[compact summary\] |\[subagent\] User: |\[subagent\] (?=" + _EVENT_START + r")|"
    r"(?=" + _EVENT_START + r"))"
)
_LABELS = {
    "User: ": "user",
    "Assistant: ": "assistant",
    "[subagent] Assistant: ": "subagent",
    "[subagent] User: ": "task",
    "[subagent task] ": "task",
    "[subagent report] ": "report",
    "[compact summary] ": "summary",
    "[subagent] ": "event",
    "": "event",
}


def _prefix(turn: Turn) -> str:
    if turn.sidechain and turn.role in _SIDE_PREFIX:
        return _SIDE_PREFIX[turn.role]
    return _PREFIX.get(turn.role, f"{turn.role}: ")


def render_turn(turn: Turn) -> str:
    return _prefix(turn) + turn.text


def render_turns(turns: tuple[Turn, ...] | list[Turn]) -> str:
    """Deterministic plain text: one block per turn, separated by a blank line."""
    return "\n\n".join(render_turn(t) for t in turns)


def split_rendered(text: str) -> list[tuple[str, str]]:
    """(label, text) blocks of a ``render_turns`` text; labels: user, assistant, subagent, task,
    report, summary, event. For consumers that get only the rendered text (the offline backend).
    A block starts at a line that starts with a turn prefix."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _BLOCK_START.match(line)
        if match and (not out or not out[-1][1] or out[-1][1][-1] == "" or match.group(1)):
            out.append((_LABELS[match.group(1)], [line[match.end() :]]))
        elif out:
            out[-1][1].append(line)
        else:
            out.append(("event", [line]))
    return [(label, "\n".join(lines).strip()) for label, lines in out]


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
    keep its role, kind, timestamp and uuid. Nothing is dropped."""
    if budget_chars < 1:
        raise ValueError("budget_chars must be positive")
    chunks: list[tuple[Turn, ...]] = []
    current: list[Turn] = []
    used = 0
    for turn in turns:
        size = len(render_turn(turn))
        if size > budget_chars:
            room = max(1, budget_chars - len(_prefix(turn)))
            pieces = [replace(turn, text=p) for p in _split_text(turn.text, room)]
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
