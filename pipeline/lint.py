"""`memc lint`: health checks of the knowledge base, in one pass, and the safe repairs.

Role: run the checks and write the report. The structural checks come from one scan
(``pipeline.lintscan``: O(articles + links), never O(articles x links)), the contradiction check
from the model (``pipeline.lintmodel``), the repairs from ``pipeline.lintfix``.

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
- ``uncompiled_elsewhere`` [info]: entries another host distilled and has not compiled yet (a
  synced root: each host compiles its own entries, ``pipeline.pending``), one per file and host.
- ``edited_after_compile`` [warning]: a compiled entry whose text no longer matches the
  ``content_hash`` recorded for it. Decision: the hash, not mtimes, is the test, because appending
  a new entry to the same day's file changes its mtime without editing anything compiled. Rows
  with an empty hash cannot be judged and are skipped. Accepted hash forms: sha256 hex (or a
  prefix of at least 8 characters) of the entry's text (as parsed by ``daily.parse_entries``, or
  as rendered by ``daily.render_entry``, which distil records) or of its body.
- ``partial_entry`` [warning]: an entry an interrupted append may have cut (memc before the
  whole-or-absent append, ``fsutil.append_all``, could leave one on a full disk). Rule: the file
  has entries and its last byte is not a newline (memc's blocks always end in a blank line, so
  the cut is in the last entry), or an entry state.db knows and has not compiled no longer
  matches the ``content_hash`` recorded when it was written (a cut the next append closed with a
  separator; a hand edit of an uncompiled entry is reported the same way). A compiled entry
  that differs is ``edited_after_compile``.
- ``contradiction`` [warning]: from the model, over clusters of linked pages (``lintmodel``):
  at most ``CLUSTER_PAGES`` pages of at most ``PAGE_CHARS`` each per call and ``MAX_CLUSTERS``
  calls per run, never the whole wiki; skipped with a note on the extractive backend.

The repairs themselves live in ``pipeline.lintfix``. Invariants: ``--fix`` touches only what is
unambiguous, rewrites only article bodies (the
frontmatter block is kept byte for byte), writes with ``fsutil.atomic_write``, appends one line to
log.md, and a second ``--fix`` changes nothing. Expected findings are return values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline import fsutil, state
from pipeline.config import Paths, Settings
from pipeline.lintfix import add_related, apply_fixes, regenerate_index, rewrite_links
from pipeline.lintmodel import CLUSTER_PAGES, MAX_CLUSTERS, PAGE_CHARS, clusters, contradictions
from pipeline.lintscan import (
    SOURCE_RE,
    SPARSE_WORDS,
    Issue,
    Scan,
    daily_issues,
    entry_hashes,
    index_issues,
    scan,
)

__all__ = [  # the checks' and repairs' public names stay importable from here
    "CLUSTER_PAGES",
    "MAX_CLUSTERS",
    "PAGE_CHARS",
    "SEVERITIES",
    "SOURCE_RE",
    "SPARSE_WORDS",
    "Issue",
    "LintReport",
    "Scan",
    "add_related",
    "apply_fixes",
    "clusters",
    "contradictions",
    "daily_issues",
    "entry_hashes",
    "index_issues",
    "regenerate_index",
    "render_markdown",
    "rewrite_links",
    "run_lint",
    "scan",
]

SEVERITIES = ("error", "warning", "info")


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

    @functools.cached_property
    def _tally(self) -> tuple[dict[str, int], dict[str, int]]:
        """(issues per severity, issues per check in first-seen order), counted once: the
        report files, the summary and the CLI all ask (130,000 issues at 20,000 articles)."""
        severities: dict[str, int] = {}
        checks: dict[str, int] = {}
        for issue in self.issues:
            severities[issue.severity] = severities.get(issue.severity, 0) + 1
            checks[issue.check] = checks.get(issue.check, 0) + 1
        return severities, checks

    def count(self, severity: str) -> int:
        return self._tally[0].get(severity, 0)

    @property
    def errors(self) -> int:
        return self.count("error")

    def by_check(self) -> dict[str, int]:
        return dict(self._tally[1])

    def to_dict(self, per_check: int | None = None) -> dict[str, Any]:
        """The report as JSON data; ``per_check`` keeps only that many issues of each check
        (the report files), and ``omitted`` says how many of each were left out."""
        kept, omitted = _bounded(self.issues, per_check)
        return {
            "issues": [
                {"severity": i.severity, "check": i.check, "file": i.file, "detail": i.detail}
                for i in kept
            ],
            **({"omitted": omitted} if per_check is not None else {}),
            "summary": {s: self.count(s) for s in SEVERITIES} | {"by_check": self.by_check()},
            "articles": self.articles,
            "links": self.links,
            "fixed": list(self.fixed),
            "notes": list(self.notes),
            "contradiction_calls": self.contradiction_calls,
            "report": self.report_path,
            "duration_s": round(self.duration_s, 3),
        }


REPORT_PER_CHECK = 200  # issues of each check listed in the report files


def _bounded(
    issues: tuple[Issue, ...], per_check: int | None
) -> tuple[list[Issue], dict[str, int]]:
    if per_check is None:
        return list(issues), {}
    kept: list[Issue] = []
    seen: dict[str, int] = {}
    for issue in issues:
        n = seen.get(issue.check, 0)
        seen[issue.check] = n + 1
        if n < per_check:
            kept.append(issue)
    return kept, {c: n - per_check for c, n in seen.items() if n > per_check}


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


@contextlib.contextmanager
def _no_cycle_collector() -> Iterator[None]:
    """The cyclic garbage collector paused while a lint builds its values (pages, links,
    findings: none of them in a reference cycle, so reference counting frees them all). Its
    full passes walk the whole growing heap: a seventh of the time at 20,000 articles, and more
    than linear in them. A cycle some library made meanwhile waits for the collector's next
    pass."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_lint(
    settings: Settings,
    *,
    structural_only: bool = False,
    fix: bool = False,
    backend: Any = None,
    clock: Callable[[], float] = time.time,
    write_report: bool = True,
    cache: bool = True,
) -> LintReport:
    """Lint the knowledge base; with ``fix`` repair the unambiguous first, then report the rest."""
    with _no_cycle_collector():
        return _run_lint(settings, structural_only, fix, backend, clock, write_report, cache)


def _run_lint(
    settings: Settings,
    structural_only: bool,
    fix: bool,
    backend: Any,
    clock: Callable[[], float],
    write_report: bool,
    cache: bool,
) -> LintReport:
    started = time.monotonic()
    paths = settings.paths
    fixed: list[str] = []
    notes: list[str] = []
    if not fix:
        result = scan(paths, cache=cache)
    else:
        # Same lock as compile and query --file-back: repairs never interleave with their writes.
        from pipeline import versioning

        with (
            versioning.batch(settings, "lint --fix") as vb,
            fsutil.file_lock(paths.lock("knowledge"), timeout=120),
        ):
            result = scan(paths, cache=cache)
            fixed = apply_fixes(paths, result)
            if fixed:
                _log_fix(paths, fixed, clock())
                result = scan(paths, cache=cache)
            vb.subject = f"lint --fix: {len(fixed)} change(s): " + "; ".join(fixed[:3])
    conn = state.connect(paths.state_db) if paths.memc.is_dir() else None
    try:
        issues = list(result.issues)
        issues += index_issues(paths, result.articles)
        issues += daily_issues(paths, conn, settings.this_host)
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


def render_markdown(report: LintReport, per_check: int | None = None) -> str:
    """The report as markdown, grouped by check; ``per_check`` bounds each group."""
    kept, omitted = _bounded(report.issues, per_check)
    counts = report.by_check()
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
    current = ""
    for issue in kept:
        if issue.check != current:
            if current in omitted:
                lines.append(f"- ... and {omitted[current]} more (`memc lint --json` lists all)")
            current = issue.check
            lines += ["", f"## {current} ({counts[current]})", ""]
        lines.append(f"- **{issue.severity}** `{issue.file}`: {issue.detail}")
    if current in omitted:
        lines.append(f"- ... and {omitted[current]} more (`memc lint --json` lists all)")
    return "\n".join(lines).rstrip() + "\n"


def _write_report(paths: Paths, report: LintReport, at: float) -> LintReport:
    base = paths.reports / f"lint-{_stamp(at)}"
    report = dataclasses.replace(report, report_path=str(base) + ".md")
    fsutil.atomic_write(base.with_suffix(".md"), render_markdown(report, REPORT_PER_CHECK))
    data = report.to_dict(per_check=REPORT_PER_CHECK)
    fsutil.atomic_write(
        base.with_suffix(".json"), json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    )
    return report
