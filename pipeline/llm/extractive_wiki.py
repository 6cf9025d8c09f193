"""Offline (no model) compile for the ``extractive`` backend (``query`` and ``lint`` are in
``pipeline.llm.extractive_read``).

A plain function ``compile(payload) -> dict`` returning JSON valid against
``pipeline/schemas/compile.json``.

``compile``: deterministic topic pages, honestly labelled as extractive:
- one concept page per project (``concepts/<project-slug>``) quoting each session's title, source
  and its decisions / lessons / action items;
- one concept page per salient term (a file name, a command-line tool, a technical name such as
  ``Postgres`` or ``FTS5``) that occurs in at least two entries of the batch, or that already has a
  page; it lists the entries that mention it;
- pages link each other (project <-> topic, topic <-> co-occurring topic) and the daily logs.
Same payload, same reply. When a page was sent in full (``related``) the reply carries the merged
page; when it is only listed (``existing``) the reply carries just the new blocks (the writer
appends them). Blocks are stable text, so recompiling the same entries changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.daily import entry_context, section_items
from pipeline.wiki import slugify

LABEL = (
    "_Extractive page: assembled offline from the daily logs without a language model. "
    "It lists and quotes entries; it does not summarise or interpret them._"
)
MAX_TOPICS = 12
MAX_TOPIC_LINKS = 8
MAX_BULLETS = 8
MAX_BLOCKS = 300  # per page, newest kept

_FILE_RE = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:py|js|ts|tsx|jsx|go|rs|rb|java|kt|c|h|cpp|sql|toml|"
    r"yaml|yml|json|sh|css|html|cfg|ini|lock|proto))\b"
)
_TICK_RE = re.compile(r"`([^`\n]{1,120})`")
_CAMEL_RE = re.compile(r"\b([A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*|[A-Z]{2,}[0-9]*[A-Za-z0-9]*)\b")
_MIDCAP_RE = re.compile(r"(?<=[a-z,] )([A-Z][a-z][A-Za-z0-9]{1,30})\b")
_GENERIC = frozenset(
    [
        "cd",
        "ls",
        "cat",
        "echo",
        "rm",
        "mv",
        "cp",
        "mkdir",
        "sudo",
        "source",
        "export",
        "grep",
        "sed",
        "awk",
        "head",
        "tail",
        "true",
        "false",
        "the",
        "this",
        "that",
        "then",
        "todo",
        "fixme",
        "note",
        "api",
        "url",
        "json",
        "yaml",
        "http",
        "https",
        "id",
        "ok",
        "llm",
        "ci",
        "pr",
        "bash",
        "read",
        "write",
        "edit",
        "multiedit",
        "glob",
        "grep",
        "task",
        "todowrite",
        "webfetch",
        "websearch",
        "notebookedit",
        "decided",
        "lesson",
        "lessons",
        "files",
        "commands",
        "context",
    ]
)
_SESSION_RE = re.compile(r"^### (\d{4}-\d{2}-\d{2} \d\d:\d\d) · ")


def _flat(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _link_text(text: str) -> str:
    return _flat(text, 120).replace("|", "-").replace("[", "(").replace("]", ")")


def _terms(entry: Mapping[str, Any]) -> dict[str, str]:
    """Candidate topic terms of one entry: {lower-case key: display form}."""
    text = f"{entry.get('title', '')}\n{entry.get('text', '')}"
    found: dict[str, str] = {}

    def add(term: str) -> None:
        term = term.strip(".,:;()[]{}'\"")
        key = term.lower()
        if len(term) < 2 or key in _GENERIC or re.fullmatch(r"[\d.-]+(md)?", key):
            return
        found.setdefault(key, term)

    for path in _FILE_RE.findall(text):
        add(path.rsplit("/", 1)[-1])
    for span in _TICK_RE.findall(text):
        first = span.split()[0] if span.split() else ""
        if re.fullmatch(r"[a-z][a-z0-9_-]{1,30}", first) and "/" not in first:
            add(first)
    for word in _CAMEL_RE.findall(text) + _MIDCAP_RE.findall(text):
        if len(word) >= 3:
            add(word)
    return found


def _bullets(text: str) -> list[str]:
    """Decisions, lessons and action items of a rendered daily entry, labelled."""
    singular = {"Decisions": "Decision", "Lessons": "Lesson", "Action items": "Action item"}
    return [
        f"- {singular[label]}: {_flat(_DOUBLED_LABEL.sub('', item, count=1), 280)}"
        for label, item in section_items(str(text))
    ][:MAX_BULLETS]


# An item that starts with its own label ("Decided: ...") would read "Decision: Decided: ...".
_DOUBLED_LABEL = re.compile(
    r"^(?:\*\*)?(?:lessons?(?: learned)?|decisions?|decided|action items?|todo)(?:\*\*)?\s*:\s*",
    re.I,
)


def _context(text: str) -> str:
    return _flat(entry_context(str(text)), 300)


def _day(entry: Mapping[str, Any]) -> str:
    m = re.search(r"(\d{4}-\d{2}-\d{2})", str(entry.get("source", "")))
    return m.group(1) if m else "undated"


def _stamp(entry: Mapping[str, Any]) -> str:
    m = re.match(r"^(\d\d:\d\d)", str(entry.get("time", "")))
    return f"{_day(entry)} {m.group(1) if m else '00:00'}"


def _session_block(entry: Mapping[str, Any], topics: list[tuple[str, str]]) -> str:
    lines = [
        f"### {_stamp(entry)} · {_flat(entry.get('title', ''), 160) or 'Untitled'}",
        f"Source: [[daily/{_day(entry)}]] · entry `{entry.get('id', '')}`",
    ]
    ctx = _context(entry.get("text", ""))
    if ctx:
        lines.append(f"Context: {ctx}")
    lines.extend(_bullets(entry.get("text", "")))
    if topics:
        lines.append("Topics: " + ", ".join(f"[[{k}|{_link_text(t)}]]" for k, t in topics))
    return "\n".join(lines)


def _mention_line(entry: Mapping[str, Any], project_key: str | None) -> str:
    project = _link_text(entry.get("project", "") or "unknown")
    where = f"[[{project_key}|{project}]]" if project_key else project
    return (
        f"- {_stamp(entry)} · {where} · {_flat(entry.get('title', ''), 160)} "
        f"([[daily/{_day(entry)}]])"
    )


def _old_blocks(body: str) -> list[str]:
    """Session blocks of an existing project page (### ... up to the next blank line)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in body.splitlines():
        if _SESSION_RE.match(line):
            if current:
                blocks.append("\n".join(current))
            current = [line]
        elif current and line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def _old_mentions(body: str) -> list[str]:
    return [ln for ln in body.splitlines() if ln.startswith("- ") and "[[daily/" in ln]


def _merge(old: list[str], new: list[str]) -> list[str]:
    merged = list(dict.fromkeys([*old, *new]))
    merged.sort()  # blocks and lines start with "YYYY-MM-DD HH:MM": chronological
    return merged[-MAX_BLOCKS:]


def _page(key: str, title: str, summary: str, kind: str, body: str, sources: list) -> dict:
    """One article operation of the offline compile (a project or a topic page)."""
    return {
        "path": key,
        "title": title,
        "summary": summary,
        "aliases": [],
        "tags": [kind, "extractive"],
        "body": body,
        "sources": sources,
    }


def compile(payload: Mapping[str, Any]) -> dict[str, Any]:
    entries = [e for e in payload.get("entries") or [] if isinstance(e, Mapping)]
    existing = {
        str(x.get("path")): str(x.get("title", ""))
        for x in payload.get("existing") or []
        if isinstance(x, Mapping)
    }
    related = {
        str(x.get("path")): x for x in payload.get("related") or [] if isinstance(x, Mapping)
    }
    known = {**existing, **{k: str(v.get("title", "")) for k, v in related.items()}}
    known_by_title = {t.lower(): k for k, t in known.items() if t}

    projects: dict[str, str] = {}  # key -> project name
    for e in entries:
        slug = slugify(str(e.get("project", "")))
        if slug:
            projects.setdefault(f"concepts/{slug}", str(e.get("project")))
    project_of = {
        id(e): f"concepts/{slugify(str(e.get('project', '')))}"
        for e in entries
        if slugify(str(e.get("project", "")))
    }

    per_entry = [_terms(e) for e in entries]
    counts: dict[str, int] = {}
    display: dict[str, str] = {}
    for terms in per_entry:
        for key, term in terms.items():
            counts[key] = counts.get(key, 0) + 1
            display.setdefault(key, term)
    topics: dict[str, str] = {}  # page key -> term
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        slug = slugify(display[key])
        page = known_by_title.get(key) or (f"concepts/{slug}" if slug else "")
        if not page or page in projects or page in topics:
            continue
        if counts[key] >= 2 or page in known:
            topics[page] = display[key]
        if len(topics) >= MAX_TOPICS:
            break
    topic_of_term = {t.lower(): k for k, t in topics.items()}
    entry_topics = [
        sorted((topic_of_term[k], topics[topic_of_term[k]]) for k in terms if k in topic_of_term)
        for terms in per_entry
    ]

    articles: list[dict[str, Any]] = []
    for key, name in sorted(projects.items()):
        mine = [
            (e, t)
            for e, t in zip(entries, entry_topics, strict=True)
            if project_of.get(id(e)) == key
        ]
        blocks = [_session_block(e, t) for e, t in mine]
        sources = sorted({str(e.get("source")) for e, _ in mine if e.get("source")})
        if key in related:
            blocks = _merge(_old_blocks(str(related[key].get("body", ""))), blocks)
        else:
            blocks = _merge([], blocks)
        body = (
            "\n\n".join(blocks)
            if key in existing and key not in related
            else (f"{LABEL}\n\n## Sessions\n\n" + "\n\n".join(blocks))
        )
        summary = f"Sessions logged for the {name} project (extractive page)"
        articles.append(_page(key, known.get(key) or name, summary, "project", body, sources))
    for key, term in sorted(topics.items()):
        mine = [
            (e, t)
            for e, t in zip(entries, entry_topics, strict=True)
            if any(k == key for k, _ in t)
        ]
        lines = [_mention_line(e, project_of.get(id(e))) for e, _ in mine]
        sources = sorted({str(e.get("source")) for e, _ in mine if e.get("source")})
        if key in related:
            lines = _merge(_old_mentions(str(related[key].get("body", ""))), lines)
        else:
            lines = _merge([], lines)
        near: dict[str, int] = {}
        for _, t in mine:
            for other, _name in t:
                if other != key:
                    near[other] = near.get(other, 0) + 1
        see = sorted(
            f"[[{k}|{_link_text(topics[k])}]]"
            for k in sorted(near, key=lambda k: (-near[k], k))[:MAX_TOPIC_LINKS]
        )
        if key in existing and key not in related:
            body = "\n".join(lines)  # only new mention lines; the writer appends what is new
        else:
            if key in related:  # keep the links the page already had
                old = re.search(r"^## See also\n\n(.+)$", str(related[key].get("body", "")), re.M)
                if old:
                    see = sorted(set(see) | set(re.findall(r"\[\[[^\]]+\]\]", old.group(1))))
            body = (
                f"{LABEL}\n\n## Mentioned in\n\n"
                + "\n".join(lines)
                + (f"\n\n## See also\n\n{', '.join(see)}" if see else "")
            )
        summary = f"Daily-log entries that mention {term} (extractive page)"
        articles.append(_page(key, known.get(key) or term, summary, "topic", body, sources))
    return {"articles": articles}
