"""The structural half of `memc lint`: one pass over knowledge/ and daily/, and its findings.

Role: read every article once, parse its links once, build one ``wiki.Resolver`` (path, file
name, alias/title; daily logs are extra paths) and derive every structural finding from that
single scan, so the cost is O(articles + links), never O(articles x links). The checks and their
severities are listed in ``pipeline.lint``; ``scan`` also records what ``--fix`` may rewrite
(``Scan.rewrites``, ``Scan.out_links``) for ``pipeline.lintfix``. Read-only: nothing here writes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline import daily
from pipeline.config import Paths
from pipeline.lintfix import _rel
from pipeline.wiki import SLUG_RE, SOURCE_RE, Article, Resolver, parse_article, parse_links

SPARSE_WORDS = 50


@dataclass(frozen=True)
class Issue:
    severity: str
    check: str
    file: str
    detail: str


@dataclass
class Scan:
    """Everything one pass learns: articles, raw texts, resolved link graph, findings."""

    articles: dict[str, Article]
    texts: dict[str, str]
    resolver: Resolver
    out_links: dict[str, set[str]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    rewrites: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {target: canonical}
    link_count: int = 0


def _load(knowledge: Path, cache_file: Path | None) -> tuple[dict[str, Article], dict[str, str]]:
    from pipeline.fmcache import FrontmatterCache
    from pipeline.wiki import article_files

    cache = FrontmatterCache(cache_file)
    articles: dict[str, Article] = {}
    texts: dict[str, str] = {}
    for key, path in article_files(knowledge):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        texts[key] = text
        articles[key] = parse_article(key, text, loader=cache.load)
    cache.save()
    return articles, texts


def _attachments(knowledge: Path) -> set[str]:
    names: set[str] = set()
    for dirpath, _dirs, files in os.walk(knowledge):
        rel = os.path.relpath(dirpath, knowledge)
        for name in files:
            if not name.endswith(".md"):
                names.add(name.lower())
                names.add((name if rel == "." else f"{rel}/{name}").lower())
    return names


def scan(paths: Paths, *, cache: bool = True) -> Scan:
    """One pass over knowledge/: articles, links, and every per-article finding.

    Frontmatter parses are cached between runs (``pipeline.fmcache``) unless ``cache=False``."""
    cache_file = paths.cache / "frontmatter.json" if cache else None
    articles, texts = _load(paths.knowledge, cache_file)
    days = daily.list_days(paths.daily)
    resolver = Resolver(
        articles.values(), extra_paths=[f"daily/{d}" for d in days] + ["index", "log"]
    )
    result = Scan(articles=articles, texts=texts, resolver=resolver)
    attachments: set[str] | None = None
    inbound: dict[str, int] = dict.fromkeys(articles, 0)
    for key, art in articles.items():
        result.issues.extend(_check_article(art))
        outs: set[str] = set()
        counted: set[str] = set()  # pages credited with an inbound link from this page
        for link in parse_links(art.body):
            result.link_count += 1
            if not link.target:
                continue  # [[#Heading]]: a heading of this page
            found = resolver.candidates(link.target)
            if (
                not found
                and "." in link.target.rsplit("/", 1)[-1]
                and not link.target.lower().endswith(".md")
            ):
                if attachments is None:
                    attachments = _attachments(paths.knowledge)
                if link.target.strip().lower() in attachments:
                    continue
            if not found:
                result.issues.append(
                    Issue(
                        "error", "broken_link", _rel(key), f"[[{link.target}]] resolves to no page"
                    )
                )
                continue
            pages = [f for f in found if f in articles]
            if len(found) > 1:
                result.issues.append(
                    Issue(
                        "warning",
                        "ambiguous_link",
                        _rel(key),
                        f"[[{link.target}]] could mean {', '.join(found[:5])}",
                    )
                )
            elif pages and link.target.strip() != pages[0]:
                result.rewrites.setdefault(key, {})[link.target] = pages[0]
                result.issues.append(
                    Issue(
                        "info",
                        "noncanonical_link",
                        _rel(key),
                        f"[[{link.target}]] -> [[{pages[0]}]]",
                    )
                )
            for page in pages:
                if page != key:
                    if page not in counted:
                        inbound[page] += 1
                        counted.add(page)
                    if len(found) == 1:  # an ambiguous link links no one page: no backlink owed
                        outs.add(page)
        result.out_links[key] = outs
    for key in articles:
        if inbound[key] == 0:
            result.issues.append(Issue("warning", "orphan", _rel(key), "no other page links here"))
    for key, outs in result.out_links.items():
        for target in sorted(outs):
            if key not in result.out_links.get(target, ()):
                result.issues.append(
                    Issue(
                        "warning",
                        "missing_backlink",
                        _rel(target),
                        f"[[{key}]] links here but this page does not link back",
                    )
                )
    return result


def _is_date(text: str) -> bool:
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _check_article(art: Article) -> list[Issue]:
    """The findings about one article on its own (frontmatter, name, length)."""
    rel = _rel(art.key)
    issues: list[Issue] = []
    for problem in art.problems:
        issues.append(Issue("error", "frontmatter", rel, problem))
    if "missing frontmatter" in art.problems or any(
        "YAML" in p or "mapping" in p for p in art.problems
    ):
        pass  # the fields below would only repeat the same problem
    else:
        for name in ("summary", "created", "updated"):
            if not getattr(art, name).strip():
                issues.append(Issue("warning", "frontmatter", rel, f"missing {name}"))
        for name in ("created", "updated"):
            value = getattr(art, name).strip()
            if value and not _is_date(value):
                issues.append(
                    Issue("error", "frontmatter", rel, f"{name} {value[:40]!r} is not an ISO date")
                )
        bad = [s for s in art.sources if not SOURCE_RE.match(s)]
        if bad:
            issues.append(
                Issue(
                    "warning",
                    "frontmatter",
                    rel,
                    f"sources not of the form daily/YYYY-MM-DD.md: {', '.join(bad[:3])}",
                )
            )
    if not SLUG_RE.match(art.slug):
        issues.append(
            Issue("warning", "bad_name", rel, f"file name {art.slug!r} is not a lowercase slug")
        )
    words = len(art.body.split())
    if words < SPARSE_WORDS:
        issues.append(Issue("warning", "sparse", rel, f"{words} words (under {SPARSE_WORDS})"))
    return issues


def index_issues(paths: Paths, articles: dict[str, Article]) -> list[Issue]:
    """Pages missing from index.md, listed pages that are gone, or no index.md at all."""
    index = paths.knowledge / "index.md"
    try:
        text = index.read_text(encoding="utf-8", errors="replace")
    except OSError:
        if articles:
            return [
                Issue(
                    "warning",
                    "index_drift",
                    "knowledge/index.md",
                    f"index.md is missing ({len(articles)} articles); run `memc lint --fix`",
                )
            ]
        return []
    listed: set[str] = set()
    for link in parse_links(text):
        target = link.target.strip().lower()
        if target.endswith(".md"):
            target = target[:-3]
        if target:
            listed.add(target)
    lower = {k.lower(): k for k in articles}
    out = [
        Issue("warning", "index_drift", _rel(k), "not listed in index.md")
        for k in sorted(articles)
        if k.lower() not in listed
    ]
    out += [
        Issue(
            "warning", "index_drift", "knowledge/index.md", f"lists [[{t}]], which does not exist"
        )
        for t in sorted(listed)
        if t not in lower
    ]
    return out


def entry_hashes(entry: daily.DailyEntry) -> tuple[str, ...]:
    """Full sha256 hex digests a recorded content_hash may be (a prefix of)."""
    text = entry.text.rstrip("\n")
    # distil records sha256(rendered block)[:16] (the block ends with a blank line); compile's
    # scan of hand-written entries records sha256(entry.text)[:16].
    forms = {entry.text, text, text + "\n\n", entry.body, entry.body.strip()}
    return tuple(hashlib.sha256(f.encode("utf-8")).hexdigest() for f in forms)


def _partial(rel: str, entry: daily.DailyEntry, why: str) -> Issue:
    return Issue(
        "warning",
        "partial_entry",
        rel,
        f"entry {entry.id} ({entry.title[:60]}) may be cut short by an interrupted write ({why});"
        f" check it, or remove it and `memc retry` its job",
    )


def daily_issues(paths: Paths, conn: sqlite3.Connection | None, host: str = "") -> list[Issue]:
    """Entries never compiled (or unknown to state.db), and compiled entries edited since.
    Entries another host distilled (a synced root) are that host's to compile: counted apart,
    as ``info``, not as this root's warning (``host``: this machine's, ``Settings.this_host``)."""
    rows: dict[str, tuple[Any, str, str]] = {}
    if conn is not None:
        for row in conn.execute("SELECT id, compiled_at, content_hash, host FROM entries"):
            rows[row[0]] = (row[1], row[2] or "", row[3] or "")
    out: list[Issue] = []
    for day in daily.list_days(paths.daily):
        rel = f"daily/{day}.md"
        pending = unknown = 0
        waiting: dict[str, int] = {}
        try:
            raw = daily.daily_path(paths.daily, day).read_bytes()
        except OSError:
            continue
        entries = daily.parse_entries(raw.decode("utf-8", "replace"), day)
        if entries and not raw.endswith(b"\n"):
            out.append(_partial(rel, entries[-1], "the file ends inside it"))
        for entry in entries:
            known = rows.get(entry.id)
            if known is None:
                unknown += 1
                continue
            compiled_at, stored, owner = known
            matches = len(stored) < 8 or any(
                h.startswith(stored.lower()) for h in entry_hashes(entry)
            )
            if compiled_at is None and owner not in ("", host):
                name = owner if owner != "?" else "another machine"  # pending.FOREIGN
                waiting[name] = waiting.get(name, 0) + 1
            elif compiled_at is None:
                pending += 1
                if not matches:
                    out.append(_partial(rel, entry, "it differs from the block memc wrote"))
            elif not matches:
                out.append(
                    Issue(
                        "warning",
                        "edited_after_compile",
                        rel,
                        f"entry {entry.id} ({entry.title[:60]}) changed after it was compiled; "
                        f"run `memc compile --file {rel}`",
                    )
                )
        if pending or unknown:
            parts = [f"{pending} pending"] if pending else []
            parts += [f"{unknown} unknown to state.db"] if unknown else []
            out.append(
                Issue(
                    "warning",
                    "uncompiled",
                    rel,
                    f"{pending + unknown} entries never compiled ({', '.join(parts)}); "
                    "run `memc compile`",
                )
            )
        for name, count in sorted(waiting.items()):
            out.append(
                Issue(
                    "info",
                    "uncompiled_elsewhere",
                    rel,
                    f"{count} entries wait for {name} to compile them (its next compile and "
                    "sync bring them here)",
                )
            )
    return out
