"""The guarded writer: applies article operations from a model reply to knowledge/.

Used by compile and by ``query --file-back``. The model never writes files; it proposes
operations ``{"path","title","summary","aliases","tags","body","sources"}`` and this module
decides what reaches disk.

Invariants:
- Each operation is validated on its own (``pipeline.operation``: path, slug, the one path guard,
  bounded fields). A bad operation is rejected with a reason; the valid ones of the same reply are
  still applied.
- Nothing is ever written outside knowledge/; every write is ``fsutil.atomic_write``.
- No duplicates: an operation whose path is new but whose title names an existing page (its title
  or an alias), or one of whose aliases is an existing page's title (or whose slug exists in
  another folder, or in another letter case) updates that page instead; such a redirected
  operation never replaces that page's body, it is appended as an update. Two pages that merely
  share an alias stay two pages, and a name several pages share redirects nothing.
- One reply creates or updates at most ``operation.MAX_PAGES_PER_REPLY`` pages; further writes
  are reported as one rejection. Validation itself (paths, near-miss normalisation, reserved names,
  HTML neutralising, bounds) lives in ``pipeline.operation``.
- Updates merge: ``created`` kept, ``updated`` set, sources/aliases/tags unioned. A body replaces
  the old one only when the model was shown the old page in full (``seen``); otherwise the new text
  is appended as a dated section, so an update can never silently erase what the model did not see.
  A rewrite keeps the ``## Related`` bullets ``lint --fix`` added (``carry_related``).
- A user-edited page (``pipeline.pages``: its file differs from memc's last write, or memc never
  wrote it) is never replaced: title and summary stay, and every line of its body stays; new text
  is merged in by a clean 3-way merge or appended as a dated section, never truncated.
- Idempotent: an operation that changes nothing (same merged frontmatter and body) writes nothing.
- Writes hold the ``knowledge`` lock, so compile and ``query --file-back`` never interleave.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from contextlib import closing as _closing
from dataclasses import dataclass, replace
from typing import Any

from pipeline import fsutil, wiki
from pipeline.config import ARTICLE_FOLDERS
from pipeline.errors import PathRefused
from pipeline.operation import (  # re-exported: the validator's limits and entry point
    MAX_BODY_CHARS,
    MAX_PAGES_PER_REPLY,
    Operation,
    flat,
    guard,
    validate_operation,
)

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_STORED_BODY_CHARS",
    "ApplyReport",
    "Operation",
    "Rejection",
    "apply_articles",
    "carry_related",
    "merge",
    "new_material",
    "sweep_temp_files",
    "validate_operation",
]

MAX_STORED_BODY_CHARS = 200_000  # a page after appending updates


@dataclass(frozen=True)
class Rejection:
    index: int  # position of the operation in the reply
    path: str
    reason: str


@dataclass(frozen=True)
class ApplyReport:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    redirected: tuple[tuple[str, str], ...] = ()  # (proposed path, existing page updated)
    index_written: bool = False

    @property
    def written(self) -> tuple[str, ...]:
        return self.created + self.updated


def _union(old: Iterable[str], new: Iterable[str], drop: Iterable[str] = ()) -> tuple[str, ...]:
    out: list[str] = []
    lowered = {d.lower() for d in drop}
    for item in (*old, *new):
        if item and item.lower() not in lowered and item.lower() not in (o.lower() for o in out):
            out.append(item)
    return tuple(out)


def sweep_temp_files(paths, *, now: float | None = None) -> int:
    """Remove temp files a writer killed mid-``atomic_write`` left in knowledge/. Returns count.

    Every memc write into knowledge/ (articles, and index.md from apply, compile and lint --fix)
    holds the ``knowledge`` lock, so while holding it every temp file there is an orphan, however
    young: a kill a moment ago leaves nothing behind after the next compile."""
    removed = 0
    with fsutil.file_lock(paths.lock("knowledge"), timeout=120):
        for folder in ("", *ARTICLE_FOLDERS):
            removed += fsutil.clean_temp_files(paths.knowledge / folder, older_than_s=0, now=now)
    return removed


def _read(path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


_AMBIGUOUS = "\x00ambiguous"  # an alias map value: the name belongs to several pages


class _Pages:
    """Existing pages by key, with title/alias/slug lookup (from the search index)."""

    def __init__(self, paths):
        from pipeline import search, searchindex

        searchindex.refresh(paths, full=True)  # a writer: every file, not only signalled ones
        self.knowledge = paths.knowledge
        self.meta = {a.key: a for a in search.indexed_articles(paths)}
        self._title: dict[str, str] = {}  # page title -> key
        self._alias: dict[str, str] = {}  # page alias -> key
        self._slug: dict[str, str] = {}
        for art in sorted(self.meta.values(), key=lambda a: a.key):
            self._note(art.key, art.title, art.aliases)

    @staticmethod
    def _claim(table: dict[str, str], name: str, key: str) -> None:
        owner = table.get(name)
        if owner is None:
            table[name] = key
        elif owner != key:  # two pages share the name: it identifies neither
            table[name] = _AMBIGUOUS

    def _note(self, key: str, title: str, aliases: Iterable[str]) -> None:
        self._claim(self._title, flat(title).lower(), key)
        for name in {flat(n).lower() for n in aliases}:
            self._claim(self._alias, name, key)
        # Case-folded: a hand-made ``Foo.md`` is the page ``foo`` on case-insensitive disks.
        self._slug.setdefault(key.rsplit("/", 1)[-1].lower(), key)

    def target_for(self, op: Operation) -> str:
        """The existing page an operation is about: its own path, else a page whose title or
        alias is the proposal's title, else one whose title is one of the proposal's aliases,
        else the same slug in another folder or case. Two pages merely sharing an alias are
        distinct pages, and a name that several pages share redirects nothing."""
        if op.key in self.meta:
            return op.key
        title = op.title.lower()
        candidates = [self._title.get(title), self._alias.get(title)]
        candidates += [self._title.get(a.lower()) for a in op.aliases]
        for found in candidates:
            if found and found != _AMBIGUOUS:
                return found
        return self._slug.get(op.key.rsplit("/", 1)[-1].lower(), op.key)

    def load(self, key: str) -> wiki.Article | None:
        if key not in self.meta:
            return None
        return wiki.load_article(self.knowledge, key)

    def remember(self, art: wiki.Article) -> None:
        from pipeline.search import IndexedArticle

        self.meta[art.key] = IndexedArticle(
            art.key, art.title, art.summary, art.updated, art.aliases
        )
        self._note(art.key, art.title, art.aliases)


def new_material(old_body: str, new_body: str) -> str:
    """The part of ``new_body`` that ``old_body`` does not already contain.

    Works by blank-line separated blocks: a block already present is dropped; in a list block,
    items already present as lines are dropped. '' when nothing new remains (headings alone do
    not count as new material).
    """
    old_lines = {line.strip() for line in old_body.splitlines() if line.strip()}
    kept: list[str] = []
    for block in re.split(r"\n\s*\n", new_body.strip("\n")):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines or block.strip() in old_body:
            continue
        if all(re.match(r"^\s*([-*+]|\d+\.)\s", ln) for ln in lines):
            lines = [ln for ln in lines if ln.strip() not in old_lines]
            if not lines:
                continue
            block = "\n".join(lines)
        kept.append(block)
    if all(re.match(r"^#{1,6}\s", b) and "\n" not in b for b in kept):
        return ""
    return "\n\n".join(kept)


def merge(
    old: wiki.Article | None,
    op: Operation,
    key: str,
    *,
    today: str,
    seen: bool,
    default_sources: Sequence[str] = (),
    user_edited: bool = False,
    merged_body: str | None = None,
) -> wiki.Article:
    """The page after applying ``op`` to ``old`` (None = new page); ``updated`` left to caller.

    A ``user_edited`` page keeps its title, summary and every line of its body: the new text
    goes in as ``merged_body`` (a clean 3-way merge, see pipeline.pages) or a dated section."""
    sources = _union(op.sources, default_sources)
    if old is None:
        return wiki.Article(
            key=key,
            title=op.title,
            summary=op.summary,
            aliases=_union(op.aliases, (), drop=(op.title,)),
            tags=op.tags,
            sources=sources,
            created=today,
            updated=today,
            body=op.body,
        )
    renamed = key == op.key and op.title.lower() != old.title.lower() and not user_edited
    title = op.title if renamed else old.title
    extra_aliases = (old.title,) if renamed else (op.title,)
    aliases = _union(old.aliases, (*op.aliases, *extra_aliases), drop=(title,))
    body = old.body.strip("\n")
    new_body = op.body.strip("\n")
    if user_edited and merged_body:
        body = merged_body
    elif seen and not user_edited:
        body = carry_related(body, new_body) if new_body else body
    elif new_material(body, new_body):
        body = f"{body}\n\n## Update {today}\n\n{new_material(body, new_body)}".strip("\n")
        if len(body) > MAX_STORED_BODY_CHARS and not user_edited:
            body = body[-MAX_STORED_BODY_CHARS:]
    return replace(
        old,
        title=title,
        summary=old.summary if user_edited and old.summary else op.summary or old.summary,
        aliases=aliases,
        tags=_union(old.tags, op.tags),
        sources=_union(old.sources, sources),
        created=old.created or today,
        body=body,
        problems=(),
    )


def carry_related(old_body: str, new_body: str) -> str:
    """``new_body`` plus the ``## Related`` bullets of ``old_body`` it dropped, so a rewrite never
    removes the backlinks ``lint --fix`` added."""
    from pipeline.lintfix import RELATED_RE, add_related

    match = RELATED_RE.search(old_body)
    if match is None:
        return new_body
    nxt = re.compile(r"^#{1,2}[ \t]", re.M).search(old_body, match.end())
    section = old_body[match.end() : nxt.start() if nxt else len(old_body)]
    missing = [
        ln.rstrip()
        for ln in section.splitlines()
        if ln.strip().startswith("- ") and ln.strip() not in new_body
    ]
    return add_related(new_body, missing).strip("\n") if missing else new_body


def _same(old: wiki.Article, new: wiki.Article) -> bool:
    """True when writing ``new`` would change nothing but the ``updated`` date."""

    def fields(a: wiki.Article) -> tuple:
        return (a.title, a.summary, a.aliases, a.tags, a.sources, a.created, a.body.strip())

    return fields(old) == fields(new)


def apply_articles(
    settings,
    articles: Any,
    *,
    origin: str = "compile",
    seen: Iterable[str] = (),
    default_sources: Sequence[str] = (),
    now: float | None = None,
    log_lines: Sequence[str] = (),
) -> ApplyReport:
    """Validate and apply ``articles`` (the reply's list); regenerate index.md; append log.md."""
    paths = settings.paths
    seen_keys = set(seen)
    if not isinstance(articles, list):
        return ApplyReport(rejected=(Rejection(-1, "", "reply 'articles' is not a list"),))
    today = settings.day_of(time.time() if now is None else now)
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    rejected: list[Rejection] = []
    redirected: list[tuple[str, str]] = []
    from pipeline import pages as pagerec
    from pipeline import state, versioning

    git_root = paths.root if versioning.enabled(settings) else None
    kept: list[str] = []
    over = 0  # valid page writes past MAX_PAGES_PER_REPLY
    with (
        fsutil.file_lock(paths.lock("knowledge"), timeout=120),
        _closing(state.connect(paths.state_db)) as conn,
    ):
        pages = _Pages(paths)
        for i, raw in enumerate(articles):
            shown = raw.get("path") if isinstance(raw, dict) else None
            shown = shown if isinstance(shown, str) else ""
            try:
                op = validate_operation(raw, paths.knowledge)
                key = pages.target_for(op)
                target = guard(paths.knowledge, key)
            except (PathRefused, ValueError) as exc:
                shown = fsutil.writable_text(shown.replace("\x00", "\\0"))
                rejected.append(Rejection(i, shown[:200], str(exc)))
                continue
            if key != op.key:
                redirected.append((op.key, key))
            old = pages.load(key)
            rel = f"knowledge/{key}.md"
            state_ = pagerec.page_state(conn, rel, _read(target) if old is not None else None)
            user_edited = old is not None and state_.user_edited
            # A redirected proposal was meant as a new page: the model did not intend to rewrite
            # the page it collided with, so that page's body is only appended to.
            seen_here = key in seen_keys and key == op.key
            merged_body = None
            if user_edited and seen_here and old is not None:
                merged_body = pagerec.three_way(
                    git_root, state_.base_sha, old.body.strip("\n"), op.body
                )
            new = merge(
                old,
                op,
                key,
                today=today,
                seen=seen_here,
                default_sources=default_sources,
                user_edited=user_edited,
                merged_body=merged_body,
            )
            if old is not None and _same(old, new):
                unchanged.append(key)
                continue
            if len(created) + len(updated) >= MAX_PAGES_PER_REPLY:  # one reply cannot flood
                over += 1
                continue
            new = replace(new, updated=today)
            text = wiki.render_article(new)
            fsutil.atomic_write(target, text)
            pagerec.record(conn, rel, text, user_edited=user_edited, now=now)
            pages.remember(new)
            (updated if old is not None else created).append(key)
            if user_edited:
                kept.append(key)
        if over:
            why = f"{over} page write(s) past the first {MAX_PAGES_PER_REPLY} of one reply"
            rejected.append(Rejection(-1, "", why + " were not applied"))
        index_written = False
        if created or updated or rejected:
            from pipeline import wikiindex

            index_written = wikiindex.write_index(paths).written
            lines = [f"created [[{k}]]" for k in created] + [f"updated [[{k}]]" for k in updated]
            lines += [f"redirected {a} -> [[{b}]] (same title/alias)" for a, b in redirected]
            lines += [f"rejected {r.path or '?'}: {r.reason}" for r in rejected]
            lines += [f"kept every line of [[{k}]] (edited by you)" for k in kept]
            lines += list(log_lines)
            wikiindex.append_log(
                paths,
                origin,
                f"{len(created)} created, {len(updated)} updated, {len(rejected)} rejected",
                lines,
                now=now,
                tz=settings.zone(),
            )
    return ApplyReport(
        tuple(created),
        tuple(updated),
        tuple(unchanged),
        tuple(rejected),
        tuple(redirected),
        index_written,
    )
