"""The wiki model: articles, frontmatter, wikilinks and their resolution.

Shared by compile, search, query, lint and SessionStart so that every reader agrees on what a
page is and where a link points.

- An article is ``knowledge/<folder>/<slug>.md`` with YAML frontmatter (``title``, ``summary``,
  ``aliases``, ``tags``, ``sources``, ``created``, ``updated``); its key is the path relative to
  knowledge/ without ``.md`` (``concepts/postgres-advisory-locks``).
- Frontmatter is read with a safe YAML loader after refusing anchors/aliases (no alias bombs),
  YAML tags and oversized blocks; wrong types are reported, never trusted (``Article.problems``).
- Links: ``[[target]]``, ``[[target|Display]]``, ``[[target#Heading]]``, ``![[embed]]``; links in
  code spans and fenced code are not links. Resolution follows the order of DESIGN.md: path, then
  file name, then alias (and title), case-insensitively, as Obsidian resolves them.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import ARTICLE_FOLDERS
from pipeline.errors import FrontmatterError

GENERATED = ("index.md", "log.md")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
# An entry of an article's ``sources``: the daily log it was compiled from.
SOURCE_RE = re.compile(r"^daily/\d{4}-\d{2}-\d{2}\.md$")
MAX_FRONTMATTER = 64 * 1024
# libyaml's safe loader when PyYAML was built with it (4x faster on large wikis), else pure Python.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIST_FIELDS = ("aliases", "tags", "sources")
TEXT_FIELDS = ("title", "summary", "created", "updated")

_FENCE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
LINK_RE = re.compile(r"(!?)\[\[([^\[\]\n]+?)\]\]")


@dataclass(frozen=True)
class Article:
    key: str  # "concepts/slug"
    title: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    created: str = ""
    updated: str = ""
    body: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    problems: tuple[str, ...] = ()

    @property
    def rel_path(self) -> str:
        return f"{self.key}.md"

    @property
    def folder(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def slug(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Link:
    target: str  # as written, without heading or alias
    heading: str = ""
    display: str = ""
    embed: bool = False


def slugify(text: str, limit: int = 80) -> str:
    """A slug matching ``[a-z0-9][a-z0-9-]{0,79}``; '' when nothing usable remains."""
    norm = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")
    slug = slug[:limit].rstrip("-")
    return slug if SLUG_RE.match(slug) else ""


def split_frontmatter(text: str) -> tuple[str | None, str]:
    """(frontmatter text or None, body)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.startswith("---"):
        return None, text
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*(?:\r?\n|$)", text, re.S | re.M)
    if not match:
        return None, text
    return match.group(1), text[match.end() :]


def load_frontmatter(raw: str) -> dict[str, Any]:
    """Parse a frontmatter block safely. Raises FrontmatterError on anything unsafe or not a map."""
    if len(raw) > MAX_FRONTMATTER:
        raise FrontmatterError(f"frontmatter larger than {MAX_FRONTMATTER} bytes")
    try:
        for token in yaml.scan(raw, Loader=_SAFE_LOADER):
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                raise FrontmatterError("frontmatter uses YAML anchors/aliases; not allowed")
            if isinstance(token, yaml.TagToken):
                raise FrontmatterError("frontmatter uses YAML tags; not allowed")
        data = yaml.load(raw, Loader=_SAFE_LOADER)
    except FrontmatterError:
        raise
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise FrontmatterError(f"frontmatter is not valid YAML: {str(exc)[:200]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontmatterError("frontmatter is not a mapping")
    return data


def _as_text(value: Any) -> str | None:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def parse_article(
    key: str, text: str, loader: Callable[[str], dict[str, Any]] | None = None
) -> Article:
    """An Article from file text. Never raises: problems are recorded on the article.

    ``loader`` parses the frontmatter block (default ``load_frontmatter``; lint passes the
    ``pipeline.fmcache`` cache, which returns the same)."""
    problems: list[str] = []
    raw, body = split_frontmatter(text)
    meta: dict[str, Any] = {}
    if raw is None:
        problems.append("missing frontmatter")
    else:
        try:
            meta = (loader or load_frontmatter)(raw)
        except FrontmatterError as exc:
            problems.append(str(exc))
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = meta.get(name)
        if value is None:
            values[name] = ""
            continue
        text_value = _as_text(value)
        if text_value is None:
            problems.append(f"{name} is not text")
            text_value = ""
        values[name] = text_value
    for name in LIST_FIELDS:
        value = meta.get(name)
        if value is None:
            values[name] = ()
        elif isinstance(value, str):
            values[name] = (value,)
        else:
            texts = (
                [t for v in value if (t := _as_text(v)) is not None]
                if isinstance(value, list)
                else []
            )
            if isinstance(value, list) and len(texts) == len(value):
                values[name] = tuple(texts)
            else:
                problems.append(f"{name} is not a list of strings")
                values[name] = ()
    if not values["title"]:
        problems.append("missing title")
        values["title"] = key.rsplit("/", 1)[-1].replace("-", " ")
    extra = {k: v for k, v in meta.items() if k not in TEXT_FIELDS + LIST_FIELDS}
    return Article(
        key=key, body=body.lstrip("\r\n"), extra=extra, problems=tuple(problems), **values
    )


def render_article(article: Article) -> str:
    """File text for an article: YAML frontmatter (stable key order) + body."""
    meta: dict[str, Any] = {
        "title": article.title,
        "summary": article.summary,
        "aliases": list(article.aliases),
        "tags": list(article.tags),
        "sources": list(article.sources),
        "created": article.created,
        "updated": article.updated,
    }
    for k, v in article.extra.items():
        meta.setdefault(k, v)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    front = yaml.dump(meta, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000)
    body = article.body.strip("\n")
    return f"---\n{front}---\n\n{body}\n"


def article_files(knowledge_dir: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every article file under the article folders, sorted, no symlinks."""
    for folder in ARTICLE_FOLDERS:
        base = knowledge_dir / folder
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if (
                entry.name.endswith(".md")
                and not entry.name.startswith(".")
                and entry.is_file(follow_symlinks=False)
            ):
                yield f"{folder}/{entry.name[:-3]}", Path(entry.path)


def load_article(knowledge_dir: Path, key: str) -> Article | None:
    from pipeline.fsutil import safe_join

    path = safe_join(knowledge_dir, f"{key}.md")
    try:
        return parse_article(key, path.read_text(encoding="utf-8", errors="replace"))
    except (FileNotFoundError, IsADirectoryError):
        return None


def iter_articles(knowledge_dir: Path) -> Iterator[Article]:
    for key, path in article_files(knowledge_dir):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        yield parse_article(key, text)


def strip_code(text: str) -> str:
    """Text with fenced code blocks and inline code removed (links there are not links)."""
    if "`" not in text and "~~~" not in text:  # no code at all: two regex passes saved
        return text
    return _INLINE_CODE_RE.sub("", _FENCE_RE.sub("", text))


def parse_links(text: str) -> list[Link]:
    out = []
    for match in LINK_RE.finditer(strip_code(text)):
        inner = match.group(2)
        target, _, display = inner.partition("|")
        target, _, heading = target.partition("#")
        out.append(
            Link(
                target=target.strip(),
                heading=heading.strip(),
                display=display.strip(),
                embed=bool(match.group(1)),
            )
        )
    return out


def _norm(target: str) -> str:
    t = target.strip().replace("\\", "/").lstrip("/")
    if t.lower().endswith(".md"):
        t = t[:-3]
    if t.lower().startswith("knowledge/"):
        t = t[len("knowledge/") :]
    return t.lower()


class Resolver:
    """Resolves link targets to article keys (or to other known files such as daily logs)."""

    def __init__(self, articles: Iterable[Article], extra_paths: Iterable[str] = ()):
        self.by_path: dict[str, str] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_alias: dict[str, list[str]] = {}
        for art in articles:
            self.by_path[art.key.lower()] = art.key
            self.by_name.setdefault(art.slug.lower(), []).append(art.key)
            for name in (art.title, *art.aliases):
                if name.strip():
                    self.by_alias.setdefault(name.strip().lower(), []).append(art.key)
        for p in extra_paths:  # e.g. "daily/2026-11-20", "index", "log"
            key = _norm(p)
            self.by_path.setdefault(key, p)
            self.by_name.setdefault(key.rsplit("/", 1)[-1], []).append(p)
        # Every proper suffix of two or more components of every path ("b/c" of "a/b/c"): a
        # partial path resolves in one lookup instead of a scan of all paths per link.
        self.by_suffix: dict[str, list[str]] = {}
        for lk, k in self.by_path.items():
            parts = lk.split("/")
            for i in range(1, len(parts) - 1):
                self.by_suffix.setdefault("/".join(parts[i:]), []).append(k)

    def candidates(self, target: str) -> list[str]:
        """Every key the target could mean, in resolution order (first match class wins)."""
        t = _norm(target)
        if not t:
            return []
        if t in self.by_path:
            return [self.by_path[t]]
        if "/" in t and t in self.by_suffix:
            return sorted(self.by_suffix[t])
        name = t.rsplit("/", 1)[-1]
        if name in self.by_name:
            return sorted(set(self.by_name[name]))
        alias = target.strip().lower()
        if alias in self.by_alias:
            return sorted(set(self.by_alias[alias]))
        return []

    def resolve(self, target: str) -> str | None:
        found = self.candidates(target)
        return found[0] if found else None
