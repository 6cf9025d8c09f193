"""One proposed article operation from a model reply -> a validated ``Operation``, or a refusal.

The model proposes ``{"path","title","summary","aliases","tags","body","sources"}``; nothing in it
is trusted. ``validate_operation`` turns each into an ``Operation`` or refuses it with the reason
(``PathRefused`` / ``ValueError``); ``pipeline.apply`` turns a refusal into a rejection of this
operation only, and resolves and writes the valid ones. Pure: nothing here writes.

Invariants:
- ``path`` is ``concepts/|connections/|qa/`` + one slug (``wiki.SLUG_RE``) and resolves through
  ``fsutil.safe_join(knowledge, path + ".md", allow_hidden=False)``; symlinked folders or files,
  and anything that exists but is not a regular file, are refused (``guard``).
- Common near-misses are normalised before validation, never guessed beyond them: a ``.md``
  suffix, a leading ``knowledge/``, a singular folder (``concept/``).
- Reserved names (Windows device names, and ``index``/``log``, which would shadow the generated
  files in Obsidian's link resolution) are refused as slugs.
- Text from the model is data: raw HTML tags outside code are escaped and remote image embeds
  (``![x](https://...)``) become plain links, so opening the vault fetches nothing.
- Every field is bounded (title, summary, list lengths and items, body size), in time linear in
  the reply's size.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from pipeline import fsutil, wiki
from pipeline.config import ARTICLE_FOLDERS
from pipeline.errors import PathRefused

MAX_BODY_CHARS = 60_000  # one proposed body
MAX_TITLE_CHARS = 200
MAX_SUMMARY_CHARS = 300
MAX_LIST_ITEMS = 30
MAX_ITEM_CHARS = 120
MAX_PAGES_PER_REPLY = 40  # pages one reply may create or update; further writes are rejected
PATH_RE = re.compile(rf"^({'|'.join(ARTICLE_FOLDERS)})/([^/]+)$")
RESERVED_SLUGS = frozenset(
    {"con", "prn", "aux", "nul", "index", "log"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)
_SINGULAR = {"concept": "concepts", "connection": "connections", "qas": "qa", "q-a": "qa"}
_FENCE = re.compile(r"^(?:```|~~~)", re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]{0,2000}`")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,40}(?=[\s/>])[^<>\n]{0,2000}>")
_REMOTE_EMBED = re.compile(r"!\[([^\]\n]{0,500})\]\(\s{0,20}(?=[A-Za-z][A-Za-z0-9+.-]{0,20}://)")


@dataclass(frozen=True)
class Operation:
    """A validated operation (not yet resolved against existing pages)."""

    key: str
    title: str
    summary: str
    aliases: tuple[str, ...]
    tags: tuple[str, ...]
    body: str
    sources: tuple[str, ...]


def flat(text: str) -> str:
    """One line: whitespace runs collapsed, lone surrogates made writable."""
    return fsutil.writable_text(" ".join(str(text).split()))


def _text_field(op: dict, name: str) -> str:
    value = op.get(name)
    return value if isinstance(value, str) else ""


def str_list(value: Any, *, pattern: re.Pattern | None = None) -> tuple[str, ...]:
    """Up to MAX_LIST_ITEMS distinct (case-insensitively) short strings from a JSON list."""
    if not isinstance(value, list):
        return ()
    out: list[str] = []
    for item in value:
        if len(out) >= MAX_LIST_ITEMS:  # a 100,000-item list must not cost O(n^2)
            break
        if not isinstance(item, str):
            continue
        one = flat(item)[:MAX_ITEM_CHARS]
        if not one or (pattern is not None and not pattern.match(one)):
            continue
        if one.lower() not in (o.lower() for o in out):
            out.append(one)
    return tuple(out)


def normalise_path(path: str) -> str:
    """Fix the near-misses models make (``.md``, ``knowledge/``, a singular folder name)."""
    if path.startswith("knowledge/"):
        path = path[len("knowledge/") :]
    if path.endswith(".md"):
        path = path[:-3]
    folder, sep, rest = path.partition("/")
    return f"{_SINGULAR.get(folder, folder)}{sep}{rest}" if sep else path


def neutralise_html(text: str) -> str:
    """Escape raw HTML tags and turn remote image embeds into links, outside code.

    Fenced code blocks and inline code spans are left as written (they render literally)."""
    out: list[str] = []
    parts = _FENCE.split(text)
    fences = _FENCE.findall(text)
    for i, part in enumerate(parts):
        inside_fence = i % 2 == 1
        if inside_fence:
            out.append(part)
        else:
            out.append(_neutralise_prose(part))
        if i < len(fences):
            out.append(fences[i])
    return "".join(out)


def _neutralise_prose(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for code in _INLINE_CODE.finditer(text):
        pieces.append(_escape(text[last : code.start()]))
        pieces.append(code.group(0))
        last = code.end()
    pieces.append(_escape(text[last:]))
    return "".join(pieces)


def _escape(text: str) -> str:
    text = _TAG.sub(lambda m: m.group(0).replace("<", "&lt;").replace(">", "&gt;"), text)
    return _REMOTE_EMBED.sub(lambda m: f"[{m.group(1)}](", text)


def guard(knowledge_dir, key: str):
    """The file path for an article key, or PathRefused (escape, symlinked folder or file)."""
    target = fsutil.safe_join(knowledge_dir, key + ".md", allow_hidden=False)
    if os.path.islink(target.parent):
        raise PathRefused(f"folder {key.split('/')[0]}/ is a symlink; refusing to write through it")
    if os.path.islink(target):
        raise PathRefused(f"{key}.md is a symlink; refusing to write through it")
    if target.exists() and not target.is_file():
        raise PathRefused(f"{key}.md exists and is not a regular file")
    return target


def validate_operation(op: Any, knowledge_dir) -> Operation:
    """An Operation, or PathRefused/ValueError with the reason it was refused."""
    if not isinstance(op, dict):
        raise ValueError("operation is not a JSON object")
    path = op.get("path")
    if not isinstance(path, str):
        raise ValueError("path is missing or not a string")
    fsutil.check_relative(path, allow_hidden=False)  # NUL, absolute, backslash, '..', hidden
    path = normalise_path(path)
    match = PATH_RE.match(path)
    if not match:
        raise PathRefused(f"path {path[:80]!r} is not concepts/, connections/ or qa/ + one slug")
    slug = match.group(2)
    if not wiki.SLUG_RE.match(slug):
        raise PathRefused(f"slug {slug[:80]!r} is not [a-z0-9][a-z0-9-]{{0,79}}")
    if slug in RESERVED_SLUGS:
        raise PathRefused(f"slug {slug!r} is a reserved name; choose a descriptive slug")
    guard(knowledge_dir, path)
    title = neutralise_html(flat(_text_field(op, "title")))
    if not title:
        raise ValueError("title is missing or empty")
    if len(title) > MAX_TITLE_CHARS:
        raise ValueError(f"title is longer than {MAX_TITLE_CHARS} characters")
    body = op.get("body")
    if not isinstance(body, str):
        raise ValueError("body is missing or not a string")
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"body is longer than {MAX_BODY_CHARS} characters")
    body = fsutil.writable_text(body.replace("\r\n", "\n").replace("\x00", "")).strip("\n")
    return Operation(
        key=path,
        title=title,
        summary=neutralise_html(flat(_text_field(op, "summary"))[:MAX_SUMMARY_CHARS]),
        aliases=tuple(neutralise_html(a) for a in str_list(op.get("aliases"))),
        tags=str_list(op.get("tags")),
        body=neutralise_html(body),
        sources=str_list(op.get("sources"), pattern=wiki.SOURCE_RE),
    )
