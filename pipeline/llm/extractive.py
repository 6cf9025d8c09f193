"""The ``extractive`` backend: no model, no network, no cost; deterministic output.

For air-gapped or privacy-first use and for the demo. ``run`` dispatches on ``request.task``:
``distil`` is built here from the rendered transcript, read back with
``pipeline.transcript.split_rendered`` (user, assistant, subagent, task, report, summary and
event blocks; tool lines ``-> Tool: arg``; failed tool results ``<- error: ...``). The entry is
content-derived only:
- title: a headline made from the first substantive request (its first sentence, without
  "can you ..." / "please", cut at a clause or word, never mid-word and without "…");
- decisions / lessons / action_items: sentences carrying cue words ("decided", "switched to",
  "from now on", "the cause is", "root cause", "the fix was", "turns out", "TODO", "next step",
  ...), each sentence in at most one list, a leading label ("Lesson:", "Decided:", "TODO:")
  removed since the section already names it;
- requests are the human's blocks only: not a subagent's task prompt, not an event marker such
  as ``[interrupted]``; answers to the assistant's questions (``Asked: ... -> answered: ...``)
  are counted apart and kept as key exchanges;
- context: counts, files and commands touched, and how the session ended (``Ended: ...``: the
  last assistant sentence, an interruption, or a final error);
- worth_saving is False when there is no substantive request, tool call or cue at all.
Every entry says it is an extractive summary. Same input, same output, always.
Other tasks go to ``pipeline.llm.extractive_wiki`` (``compile``) and ``extractive_read``
(``query``, ``lint``), imported lazily.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PermanentLLMError
from pipeline.llm.base import LLMReply, LLMRequest

LABEL = "(extractive summary, no model)"
MAX_ITEMS = 8
MAX_SENTENCE = 300
TITLE_CHARS = 80
HEADLINE_CHARS = 60  # longer first sentences are cut at their first clause
_TOOL = re.compile(r"^\s*-> ([\w.:-]+)(?:: (.*))?$")
_ERROR = re.compile(r"^\s*<- error: ?(.*)$")
# Sentences end at . ! ? before a capital, at blank lines, and before list items or headings; a
# single newline inside a paragraph is a soft wrap, not a boundary.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[]|\*\*)|\n\s*\n|\n(?=\s*(?:[-*+#>|]|\d+[.)]\s))"
)
_EXT = (
    r"\.(?:py|pyi|js|jsx|ts|tsx|go|rs|rb|java|kt|c|h|cc|cpp|hpp|cs|swift|php|sh|sql|md|rst|"
    r"txt|toml|yaml|yml|json|ini|cfg|lock|html|css|scss|vue|tf)\b"
)
# In prose, a file is a path with a folder (src/app.py) or a `backticked` name: "Next.js" is not.
_PATH = re.compile(r"(?<![\w/.*-])((?:[\w.-]+/)+[\w.-]+" + _EXT + r")|`([\w.-]+" + _EXT + r")`")
_ACTION_STRONG = re.compile(r"(?:^|\s)(?:TODO|FIXME)(?::|\(|\s+-)")  # "TODO app" is not a TODO
_ACTION_STRONG_CI = re.compile(r"\b(?:follow[- ]up|next steps?|left to do|still need)\b", re.I)
_DECISION = re.compile(
    r"\b(decided|decide to|we'll use|we will use|chose|choose|chosen|switched to|switch to|"
    r"instead of|went with|go with|going with|opted|settled on|prefer)\b",
    re.I,
)
_LESSON = re.compile(
    r"\b(learned|lesson|gotcha|turns out|turned out|root cause|because|caused by|the fix|fixed by|"
    r"the problem was|the issue was|caveat|note that|workaround|the cause|cause (?:is|was)|"
    r"the reason (?:is|was)|fixed it|the solution (?:is|was))\b",
    re.I,
)
# Conventions the session settles ("from now on ...") are decisions, wherever they appear.
_CONVENTION = re.compile(
    r"\b(from now on|going forward|as a rule|by convention|the convention|always use|never use)\b",
    re.I,
)
# A label that repeats the section it lands in ("Lesson: ...", "**Decided:** ...", "TODO: ...").
_LEADING_LABEL = re.compile(
    r"^(?:\*\*)?(?:lessons?(?: learned)?|learned|decisions?|decided|action items?|follow[- ]ups?|"
    r"next steps?|todo|fixme)(?:\*\*)?\s*[:\-–]\s*(?:\*\*\s*)?",
    re.I,
)
_ANSWER = re.compile(r"^Asked: ")
_POLITE = re.compile(
    r"^(?:(?:hey|hi|ok(?:ay)?|so|now|please|pls)[,!]?\s+)*"
    r"(?:(?:can|could|would|will) you(?: please)?\s+|please\s+|"
    r"i (?:want|need|would like)(?: you)? to\s+|help me(?: to)?\s+)?",
    re.I,
)
_ASK_TAIL = re.compile(r",?\s+(?:can|could|would|will) you\b.*$", re.I | re.S)
_CLAUSE = re.compile(r"[,;:]\s|\s[-–]\s")
_ACTION_WEAK = re.compile(r"\b(need to|needs to|should also|later we|remember to)\b", re.I)
_TRIVIAL = re.compile(
    r"^(hi|hello|hey|thanks?( you)?|thx|ok(ay)?|yes|no|y|n|sure|great|cool|"
    r"continue|go on|go ahead|done|nice|perfect)[.!?]*$",
    re.I,
)
# The assistant narrating its own next move ("Let me check...", "I need to read...") is not a
# decision or a follow-up; such sentences only count with an explicit TODO.
_NARRATION = re.compile(
    r"^(?:now,? |first,? |next,? |ok(?:ay)?,? |great,? )?(?:let me|let's|i'll|i will|i need to|"
    r"i'm going to|i am going to|i can see|i see|i should|i have to|i must)\b",
    re.I,
)
_FILE_TOOLS = {"Read", "Edit", "Write", "MultiEdit", "NotebookEdit"}


@dataclass
class _Parsed:
    requests: list[str] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)  # user + assistant text, in order
    tools: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    assistant_chars: int = 0
    answers: list[str] = field(default_factory=list)
    outcome: str = ""  # how the session ended (see _outcome)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parse_rendered(transcript: str) -> _Parsed:
    """Split rendered turns (``pipeline.transcript.split_rendered``) into requests, answers,
    prose, tool calls and errors. Requests are the human's turns only: not a subagent's task
    prompt, not an event marker."""
    from pipeline.transcript import split_rendered

    out = _Parsed()
    for label, block in split_rendered(transcript):
        lines: list[str] = []
        last = ""  # what the block ends with: text, a tool call or an error
        for raw in block.splitlines():
            tool = _TOOL.match(raw)
            error = _ERROR.match(raw)
            if tool:
                out.tools.append((tool.group(1), (tool.group(2) or "").strip()))
                last = "tool"
            elif error:
                out.errors.append(_one_line(error.group(1), 200))
                out.outcome = "error: " + _one_line(error.group(1), 160)
                last = "error"
            else:
                lines.append(raw)
                last = "text" if raw.strip() else last
        text = "\n".join(lines).strip()
        if label == "event" and text.startswith("[interrupted]"):
            out.outcome = "interrupted by the user"
        if not text:
            continue
        if label == "user":
            (out.answers if _ANSWER.match(text) else out.requests).append(text)
        elif label == "assistant":
            out.assistant_chars += len(text)
            if last == "text":
                out.outcome = "said: " + text
        if label in ("user", "assistant", "subagent", "report"):
            out.prose.append(text)
    return out


def _outcome(parsed: _Parsed) -> str:
    """``Ended: ...`` for the context line: the last assistant sentence, or what cut it short."""
    kind, _, text = parsed.outcome.partition(": ")
    if not kind:
        return ""
    if kind == "said":
        sentences = _sentences([text])
        last = sentences[-1] if sentences else _one_line(text, 160)
        return f"Ended: {_one_line(last, 160)}"
    if kind == "error":
        return f"Ended on an error: {text}"
    return f"Ended: {kind} {text}".rstrip() + "."


def _headline(request: str) -> str:
    """A title from a request: its first sentence, without "can you ..." or "please", cut at a
    clause or a word boundary (never mid-word, no "…")."""
    text = request.strip()
    if text.startswith("[queued] "):
        text = text[len("[queued] ") :]
    command = re.match(r"^/[\w:-]+\s+(?=\S)", text)
    if command:  # "/orchestrator create a TODO app": the arguments are the request
        text = text[command.end() :]
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0]
    first = _ASK_TAIL.sub("", _POLITE.sub("", first, count=1)).strip(" .!?:;,")
    if len(first.split()) < 2:
        first = _one_line(text, 400).strip(" .!?:;,")
    first = " ".join(first.split())
    if len(first) > HEADLINE_CHARS:  # a headline is one clause: the first that says enough
        cuts = [m.start() for m in _CLAUSE.finditer(first, 0, TITLE_CHARS) if m.start() >= 25]
        cut = cuts[0] if cuts else first.rfind(" ", 0, TITLE_CHARS)
        if len(first) > TITLE_CHARS or cuts:
            first = first[: cut if cut > 0 else TITLE_CHARS].rstrip(" ,;:-–")
    return first[:1].upper() + first[1:]


def _substantive(request: str) -> bool:
    text = request.strip()
    if not text or text.startswith(("<", "[interrupted]", "[Request interrupted")):
        return False
    if _TRIVIAL.match(text):
        return False
    return len(re.findall(r"\w+", text)) >= 3


def _sentences(texts: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for text in texts:
        for piece in _SENTENCE_END.split(text):
            sentence = _one_line(piece.strip(" -*#>\t"), MAX_SENTENCE)
            key = sentence.lower()
            if len(sentence) >= 12 and key not in seen:
                seen.add(key)
                out.append(sentence)
    return out


def _classify(sentences: list[str]) -> tuple[list[str], list[str], list[str]]:
    decisions: list[str] = []
    lessons: list[str] = []
    actions: list[str] = []
    for sentence in sentences:
        if _ACTION_STRONG.search(sentence):
            target = actions
        elif _CONVENTION.search(sentence):
            target = decisions
        elif _NARRATION.match(sentence):
            continue
        elif _ACTION_STRONG_CI.search(sentence):
            target = actions
        elif _DECISION.search(sentence):
            target = decisions
        elif _LESSON.search(sentence):
            target = lessons
        elif _ACTION_WEAK.search(sentence):
            target = actions
        else:
            continue
        item = _LEADING_LABEL.sub("", sentence, count=1).strip()
        if len(target) < MAX_ITEMS and len(item) >= 12 and item not in target:
            target.append(item[:1].upper() + item[1:])
    return decisions, lessons, actions


def _touched(parsed: _Parsed) -> tuple[list[str], list[str]]:
    files: list[str] = []
    commands: list[str] = []
    for name, arg in parsed.tools:
        if name == "Bash" and arg:
            command = _one_line(arg, 120)
            if command not in commands:
                commands.append(command)
        elif name in _FILE_TOOLS and arg:
            path = arg.split()[0]
            if path not in files:
                files.append(path)
    for text in parsed.prose:
        for match in _PATH.finditer(text):
            path = match.group(1) or match.group(2)
            if path not in files:
                files.append(path)
    return files, commands


def distil_entry(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic entry for one distil payload (see the module docstring)."""
    parsed = parse_rendered(str(payload.get("transcript", "")))
    requests = [r for r in parsed.requests if _substantive(r)]
    decisions, lessons, actions = _classify(_sentences(parsed.prose))
    files, commands = _touched(parsed)
    worth = bool(requests or decisions or lessons or actions or parsed.tools)
    if not worth:
        return {
            "worth_saving": False,
            "title": "Nothing substantive",
            "context": LABEL,
            "decisions": [],
            "lessons": [],
            "action_items": [],
            "key_exchanges": [],
        }
    project = str(payload.get("project") or "").strip()
    title = (
        _headline(requests[0])
        if requests
        else (f"Work in {project}" if project else "Session without a typed request")
    )
    tool_counts: dict[str, int] = {}
    for name, _ in parsed.tools:
        tool_counts[name] = tool_counts.get(name, 0) + 1
    counts = ", ".join(f"{n}×{c}" for n, c in sorted(tool_counts.items()))
    answers = f", {len(parsed.answers)} answer(s) to its questions" if parsed.answers else ""
    parts = [
        f"{len(requests)} user request(s){answers}, {len(parsed.tools)} tool call(s)"
        + (f" ({counts})" if counts else "")
        + (f" in {project}" if project else "")
        + "."
    ]
    if files:
        parts.append("Files: " + ", ".join(files[:12]) + (" …" if len(files) > 12 else "") + ".")
    if commands:
        parts.append(
            "Commands: "
            + "; ".join(f"`{c}`" for c in commands[:6])
            + (" …" if len(commands) > 6 else "")
            + "."
        )
    if parsed.errors:
        last = parsed.errors[-1]
        end = "" if last.endswith((".", "!", "?")) else "."
        parts.append(f"{len(parsed.errors)} tool error(s), last: {last}{end}")
    outcome = _outcome(parsed)
    if outcome:
        parts.append(outcome if outcome.endswith((".", "!", "?")) else outcome + ".")
    chunk, chunks = payload.get("chunk"), payload.get("chunks")
    if isinstance(chunks, int) and chunks > 1:
        parts.append(f"Part {chunk} of {chunks}.")
    parts.append(LABEL)
    return {
        "worth_saving": True,
        "title": title,
        "context": _one_line(" ".join(parts), 3900),
        "decisions": decisions,
        "lessons": lessons,
        "action_items": actions,
        "key_exchanges": [
            _one_line(r, MAX_SENTENCE) for r in (requests + parsed.answers)[:MAX_ITEMS]
        ],
    }


class ExtractiveBackend:
    """Offline backend: cost 0, model "extractive", deterministic replies."""

    name = "extractive"

    def run(self, request: LLMRequest) -> LLMReply:
        if request.task == "distil":
            data = distil_entry(request.payload)
        elif request.task == "compile":
            from pipeline.llm.extractive_wiki import compile as compile_pages

            data = compile_pages(request.payload)
        elif request.task in ("query", "lint"):
            from pipeline.llm import extractive_read

            data = getattr(extractive_read, request.task)(request.payload)
        else:
            raise PermanentLLMError(
                f"the extractive backend has no task {request.task!r}; "
                "use one of distil, compile, query, lint"
            )
        return LLMReply(data=data, backend=self.name, model="extractive", cost_usd=0.0)
