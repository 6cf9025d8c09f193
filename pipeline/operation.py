"""One proposed article operation from a model reply -> a validated ``Operation``, or a refusal.

The model proposes ``{"path","title","summary","aliases","tags","body","sources"}``; nothing in it
is trusted. ``validate_operation`` checks each field on its own: ``path`` is ``concepts/``,
``connections/`` or ``qa/`` + one slug (``wiki.SLUG_RE``) and resolves through
``fsutil.safe_join(knowledge, path + ".md", allow_hidden=False)`` with symlinked folders and files
refused (``_guard``); title, summary, lists and body are bounded (``MAX_*``), flattened where they
must be one line, and cleaned of NUL and lone surrogates. A bad field raises ``ValueError`` or
``PathRefused`` with the reason; ``pipeline.apply`` turns that into a rejection of this operation
only. Pure: nothing here writes.
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
PATH_RE = re.compile(rf"^({'|'.join(ARTICLE_FOLDERS)})/([^/]+)$")


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


def _flat(text: str) -> str:
    return fsutil.writable_text(" ".join(str(text).split()))


def _text_field(op: dict, name: str) -> str:
    value = op.get(name)
    return value if isinstance(value, str) else ""


def _str_list(value: Any, *, pattern: re.Pattern | None = None) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    out: list[str] = []
    for item in value:
        if len(out) >= MAX_LIST_ITEMS:  # a 100,000-item list must not cost O(n^2)
            break
        if not isinstance(item, str):
            continue
        flat = _flat(item)[:MAX_ITEM_CHARS]
        if not flat or (pattern is not None and not pattern.match(flat)):
            continue
        if flat.lower() not in (o.lower() for o in out):
            out.append(flat)
    return tuple(out[:MAX_LIST_ITEMS])


def validate_operation(op: Any, knowledge_dir) -> Operation:
    """An Operation, or PathRefused/ValueError with the reason it was refused."""
    if not isinstance(op, dict):
        raise ValueError("operation is not a JSON object")
    path = op.get("path")
    if not isinstance(path, str):
        raise ValueError("path is missing or not a string")
    fsutil.check_relative(path, allow_hidden=False)  # NUL, absolute, backslash, '..', hidden
    match = PATH_RE.match(path)
    if not match:
        raise PathRefused(f"path {path[:80]!r} is not concepts/, connections/ or qa/ + one slug")
    if not wiki.SLUG_RE.match(match.group(2)):
        raise PathRefused(f"slug {match.group(2)[:80]!r} is not [a-z0-9][a-z0-9-]{{0,79}}")
    _guard(knowledge_dir, path)
    title = _flat(_text_field(op, "title"))
    if not title:
        raise ValueError("title is missing or empty")
    if len(title) > MAX_TITLE_CHARS:
        raise ValueError(f"title is longer than {MAX_TITLE_CHARS} characters")
    body = op.get("body")
    if not isinstance(body, str):
        raise ValueError("body is missing or not a string")
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"body is longer than {MAX_BODY_CHARS} characters")
    summary = _text_field(op, "summary")
    return Operation(
        key=path,
        title=title,
        summary=_flat(summary)[:MAX_SUMMARY_CHARS],
        aliases=_str_list(op.get("aliases")),
        tags=_str_list(op.get("tags")),
        body=fsutil.writable_text(body.replace("\r\n", "\n").replace("\x00", "")).strip("\n"),
        sources=_str_list(op.get("sources"), pattern=wiki.SOURCE_RE),
    )


def _guard(knowledge_dir, key: str):
    """The file path for an article key, or PathRefused (escape, symlinked folder or file)."""
    target = fsutil.safe_join(knowledge_dir, key + ".md", allow_hidden=False)
    if os.path.islink(target.parent):
        raise PathRefused(f"folder {key.split('/')[0]}/ is a symlink; refusing to write through it")
    if os.path.islink(target):
        raise PathRefused(f"{key}.md is a symlink; refusing to write through it")
    if target.exists() and not target.is_file():
        raise PathRefused(f"{key}.md exists and is not a regular file")
    return target
