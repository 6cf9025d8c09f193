"""`memc lint`: health checks of the knowledge base, in one pass, and the safe repairs.

Role: read every article once, parse its links once, build one ``wiki.Resolver`` (path, file
name, alias/title; daily logs are extra paths) and derive every structural finding from that
single scan, so the cost is O(articles + links), never O(articles x links).

Checks (``Issue.check``; severity in brackets):
- ``broken_link`` [error]: the target resolves to nothing. Aliases, titles, ``#Heading`` and
  ``|Display`` parts, ``.md`` suffixes, a ``knowledge/`` prefix, embeds of existing pages or
  files, same-page ``[[#Heading]]`` links and links to existing daily logs are not broken.
- ``ambiguous_link`` [warning]: the target matches several pages of the same resolution class.
- ``noncanonical_link`` [info]: resolves to exactly one page, but not by its ``folder/slug`` key;
  ``--fix`` rewrites it to the key and keeps the text readers saw as the display part.
- ``orphan`` [warning]: no inbound link from another article (index.md and log.md do not count).
- ``missing_backlink`` [warning]: A links B, B does not link A; ``--fix`` adds A under a
  ``## Related`` section of B. An ambiguous link is no link to any one page here (it still keeps
  its candidates from being orphans).
- ``sparse`` [warning]: body under ``SPARSE_WORDS`` words.
- ``frontmatter`` [error for unreadable YAML, wrong types, missing title or bad dates; warning
  for a missing summary/created/updated or a source that is not a daily log path].
- ``bad_name`` [warning]: the file name is not a valid slug.
- ``index_drift`` [warning]: an article missing from index.md, a listed page that is gone, or
  index.md missing; ``--fix`` regenerates index.md.
- ``uncompiled`` [warning]: a daily log has entries that state.db does not know or never compiled
  (one issue per daily file).
- ``edited_after_compile`` [warning]: a compiled entry whose text no longer matches the
  ``content_hash`` recorded for it. Decision: the hash, not mtimes, is the test, because appending
  a new entry to the same day's file changes its mtime without editing anything compiled. Rows
  with an empty hash cannot be judged and are skipped. Accepted hash forms: sha256 hex (or a
  prefix of at least 8 characters) of the entry's text (as parsed by ``daily.parse_entries``, or
  as rendered by ``daily.render_entry``, which distil records) or of its body.
- ``contradiction`` [warning]: from the model, over clusters of linked pages (``contradictions``):
  at most ``CLUSTER_PAGES`` pages of at most ``PAGE_CHARS`` each per call and ``MAX_CLUSTERS``
  calls per run, never the whole wiki; skipped with a note on the extractive backend.

The repairs themselves live in ``pipeline.lintfix``. Invariants: ``--fix`` touches only what is
unambiguous, rewrites only article bodies (the
frontmatter block is kept byte for byte), writes with ``fsutil.atomic_write``, appends one line to
log.md, and a second ``--fix`` changes nothing. Expected findings are return values.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline import daily, fsutil, state
from pipeline.config import Paths, Settings
from pipeline.lintfix import (  # noqa: F401 - the repairs live there; re-exported for callers
    _rel,
    add_related,
    apply_fixes,
    regenerate_index,
    rewrite_links,
)
from pipeline.wiki import SLUG_RE, Article, Resolver, parse_article, parse_links

SPARSE_WORDS = 50
CLUSTER_PAGES = 5
PAGE_CHARS = 2500
MAX_CLUSTERS = 8
SEVERITIES = ("error", "warning", "info")
SOURCE_RE = re.compile(r"^daily/\d{4}-\d{2}-\d{2}\.md$")


@dataclass(frozen=True)
class Issue:
    severity: str
    check: str
    file: str
    detail: str


@dataclass(frozen=True)
class LintReport:
    issues: tuple[Issue, ...]
    articles: int = 0
    links: int = 0
    fixed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    contradiction_calls: int = 0
    report_path: str = ""
    duration_s: float = 0.0

    def count(self, severity: str) -> int:
        return sum(1 for i in self.issues if i.severity == severity)

    @property
    def errors(self) -> int:
        return self.count("error")

    def by_check(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for issue in self.issues:
            out[issue.check] = out.get(issue.check, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "issues": [asdict(i) for i in self.issues],
            "summary": {s: self.count(s) for s in SEVERITIES} | {"by_check": self.by_check()},
            "articles": self.articles,
            "links": self.links,
            "fixed": list(self.fixed),
            "notes": list(self.notes),
            "contradiction_calls": self.contradiction_calls,
            "report": self.report_path,
            "duration_s": round(self.duration_s, 3),
        }


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


def _load(knowledge: Path) -> tuple[dict[str, Article], dict[str, str]]:
    from pipeline.wiki import article_files

    articles: dict[str, Article] = {}
    texts: dict[str, str] = {}
    for key, path in article_files(knowledge):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        texts[key] = text
        articles[key] = parse_article(key, text)
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


def scan(paths: Paths) -> Scan:
    """One pass over knowledge/: articles, links, and every per-article finding."""
    articles, texts = _load(paths.knowledge)
    days = daily.list_days(paths.daily)
    resolver = Resolver(
        articles.values(), extra_paths=[f"daily/{d}" for d in days] + ["index", "log"]
    )
    result = Scan(articles=articles, texts=texts, resolver=resolver)
    attachments: set[str] | None = None
    inbound: dict[str, int] = dict.fromkeys(articles, 0)
    for key, art in articles.items():
        _check_article(art, result.issues)
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


def _check_article(art: Article, issues: list[Issue]) -> None:
    rel = _rel(art.key)
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


def daily_issues(paths: Paths, conn: sqlite3.Connection | None) -> list[Issue]:
    """Entries never compiled (or unknown to state.db), and compiled entries edited since."""
    rows: dict[str, tuple[Any, str]] = {}
    if conn is not None:
        for row in conn.execute("SELECT id, compiled_at, content_hash FROM entries"):
            rows[row[0]] = (row[1], row[2] or "")
    out: list[Issue] = []
    for day in daily.list_days(paths.daily):
        rel = f"daily/{day}.md"
        pending = unknown = 0
        for entry in daily.read_entries(paths.daily, day):
            known = rows.get(entry.id)
            if known is None:
                unknown += 1
                continue
            compiled_at, stored = known
            if compiled_at is None:
                pending += 1
            elif len(stored) >= 8 and not any(
                h.startswith(stored.lower()) for h in entry_hashes(entry)
            ):
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
    return out


# ---------------------------------------------------------------- contradictions


def clusters(result: Scan, limit: int = 0) -> list[list[str]]:
    """Groups of closely linked pages: a well-connected seed plus its neighbours, little overlap."""
    limit = limit or MAX_CLUSTERS
    neighbours: dict[str, set[str]] = {k: set(v) for k, v in result.out_links.items()}
    for key, outs in result.out_links.items():
        for target in outs:
            neighbours.setdefault(target, set()).add(key)
    degree = {k: len(v) for k, v in neighbours.items()}
    covered: set[str] = set()
    out: list[list[str]] = []
    for seed in sorted(neighbours, key=lambda k: (-degree[k], k)):
        if len(out) >= limit:
            break
        if seed in covered or not neighbours[seed]:
            continue
        members = sorted(neighbours[seed] - covered, key=lambda k: (-degree[k], k))
        if not members:
            continue
        group = [seed, *members[: CLUSTER_PAGES - 1]]
        covered.update(group)
        out.append(group)
    return out


def contradictions(
    settings: Settings,
    result: Scan,
    *,
    backend: Any,
    conn: sqlite3.Connection | None,
    clock: Callable[[], float],
) -> tuple[list[Issue], int, list[str]]:
    """Ask the lint model about each cluster. Returns (issues, calls made, notes)."""
    from pipeline.errors import MemcError
    from pipeline.llm.base import LLMRequest, load_prompt, load_schema, make_backend

    groups = clusters(result)
    if not groups:
        return [], 0, ["contradiction check: no linked pages to compare"]
    backend = backend or make_backend(settings)
    if backend.name == "extractive":
        return (
            [],
            0,
            [
                "contradiction check skipped: the extractive backend has no model "
                "(set MEMC_BACKEND=claude to run it, or pass --structural-only)"
            ],
        )
    if conn is None:
        return [], 0, ["contradiction check skipped: no state.db; run `memc init`"]
    from pipeline.llm.calls import call

    schema, prompt = load_schema("lint"), load_prompt("lint")
    issues: list[Issue] = []
    calls = 0
    for group in groups:
        cluster = [
            {
                "path": k,
                "title": result.articles[k].title,
                "body": result.articles[k].body.strip()[:PAGE_CHARS],
            }
            for k in group
        ]
        request = LLMRequest(
            task="lint",
            payload={"cluster": cluster},
            schema=schema,
            model=settings.query_model,
            system_prompt=prompt,
            max_budget_usd=settings.call_budget_usd,
            timeout_s=settings.call_timeout_s,
            ref="lint:" + group[0],
        )
        try:
            reply = call(settings, backend, request, conn=conn, clock=clock)
        except MemcError as exc:
            return issues, calls, [f"contradiction check stopped after {calls} call(s): {exc}"]
        calls += 1
        for item in reply.data.get("contradictions", []):
            pages = [p for p in item.get("pages", []) if p in result.articles and p in group]
            if not pages:
                pages = group[:1]
            others = ", ".join(f"[[{p}]]" for p in pages[1:])
            detail = str(item.get("detail", "")).strip()[:500]
            issues.append(
                Issue(
                    "warning",
                    "contradiction",
                    _rel(pages[0]),
                    f"{detail}" + (f" (see {others})" if others else ""),
                )
            )
    return (
        issues,
        calls,
        [f"contradiction check: {calls} cluster(s) of up to {CLUSTER_PAGES} pages"],
    )


# ---------------------------------------------------------------- run


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def run_lint(
    settings: Settings,
    *,
    structural_only: bool = False,
    fix: bool = False,
    backend: Any = None,
    clock: Callable[[], float] = time.time,
    write_report: bool = True,
) -> LintReport:
    """Lint the knowledge base; with ``fix`` repair the unambiguous first, then report the rest."""
    started = time.monotonic()
    paths = settings.paths
    fixed: list[str] = []
    notes: list[str] = []
    if not fix:
        result = scan(paths)
    else:
        # Same lock as compile and query --file-back: repairs never interleave with their writes.
        from pipeline import versioning

        with (
            versioning.batch(settings, "lint --fix") as vb,
            fsutil.file_lock(paths.lock("knowledge"), timeout=120),
        ):
            result = scan(paths)
            fixed = apply_fixes(paths, result)
            if fixed:
                _log_fix(paths, fixed, clock())
                result = scan(paths)
            vb.subject = f"lint --fix: {len(fixed)} change(s): " + "; ".join(fixed[:3])
    conn = state.connect(paths.state_db) if paths.memc.is_dir() else None
    try:
        issues = list(result.issues)
        issues += index_issues(paths, result.articles)
        issues += daily_issues(paths, conn)
        calls = 0
        if not structural_only:
            found, calls, more = contradictions(
                settings, result, backend=backend, conn=conn, clock=clock
            )
            issues += found
            notes += more
    finally:
        if conn is not None:
            conn.close()
    order = {s: i for i, s in enumerate(SEVERITIES)}
    issues.sort(key=lambda i: (order.get(i.severity, 9), i.check, i.file, i.detail))
    report = LintReport(
        issues=tuple(issues),
        articles=len(result.articles),
        links=result.link_count,
        fixed=tuple(fixed),
        notes=tuple(notes),
        contradiction_calls=calls,
        duration_s=time.monotonic() - started,
    )
    if write_report:
        report = _write_report(paths, report, clock())
    return report


def _log_fix(paths: Paths, fixed: list[str], at: float) -> None:
    from pipeline import wikiindex

    more = [f"... and {len(fixed) - 50} more"] if len(fixed) > 50 else []
    wikiindex.append_log(paths, "lint --fix", f"{len(fixed)} change(s)", fixed[:50] + more, now=at)


def render_markdown(report: LintReport) -> str:
    lines = [
        "# Lint report",
        "",
        f"{report.articles} articles, {report.links} links; "
        f"{report.errors} errors, {report.count('warning')} warnings, {report.count('info')} info.",
        "",
    ]
    if report.fixed:
        lines += ["## Fixed", ""] + [f"- {f}" for f in report.fixed] + [""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    current = None
    for issue in report.issues:
        if issue.check != current:
            current = issue.check
            lines += ["", f"## {current} ({report.by_check()[current]})", ""]
        lines.append(f"- **{issue.severity}** `{issue.file}`: {issue.detail}")
    return "\n".join(lines).rstrip() + "\n"


def _write_report(paths: Paths, report: LintReport, at: float) -> LintReport:
    base = paths.reports / f"lint-{_stamp(at)}"
    report = LintReport(**{**report.__dict__, "report_path": str(base) + ".md"})
    fsutil.atomic_write(base.with_suffix(".md"), render_markdown(report))
    fsutil.atomic_write(
        base.with_suffix(".json"), json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n"
    )
    return report
