"""Lint over a synthetic knowledge base with a known number of each defect."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline import daily, lint, state
from pipeline.models import Entry
from tests.fakes import FakeBackend
from tests.helpers import FILLER, write_article

BLOCKS: dict[str, str] = {}


def add_entry(
    root: Path, day: str, job: str, title: str, project: str = "acme"
) -> daily.DailyEntry:
    eid = daily.entry_id(job, 0)
    block = daily.render_entry(
        Entry(True, title=title, context="Some context here."),
        entry_id=eid,
        time_hhmm="10:00",
        project=project,
        session_id="sess1234",
        event="session-end",
    )
    daily.append_entry(root / "daily", day, block, eid)
    BLOCKS[eid] = block
    return next(e for e in daily.read_entries(root / "daily", day) if e.id == eid)


def record(settings, entry: daily.DailyEntry, *, compiled: bool, content_hash: str) -> None:
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO entries(id, day, daily_path, content_hash, created_at, compiled_at) "
        "VALUES (?,?,?,?,?,?)",
        (entry.id, entry.day, entry.daily_path, content_hash, 1.0, 2.0 if compiled else None),
    )
    conn.close()


EXPECTED = {
    "broken_link": 2,
    "noncanonical_link": 3,
    "orphan": 1,
    "missing_backlink": 1,
    "sparse": 1,
    "frontmatter": 3,
    "index_drift": 2,
    "uncompiled": 1,
    "edited_after_compile": 1,
}


@pytest.fixture
def kb(root, settings):
    """The synthetic knowledge base; EXPECTED lists its defects."""
    others = [
        "concepts/beta",
        "concepts/gamma",
        "concepts/epsilon",
        "concepts/fm-tags",
        "concepts/fm-created",
        "concepts/fm-updated",
    ]
    hub_body = "\n".join(
        [
            FILLER,
            *(f"See [[{k}]]." for k in others),
            "Alias: [[Beta Alias]]. Suffix: [[concepts/beta.md]]. "
            "Name with display: [[beta|the beta page]].",
            "Heading: [[concepts/beta#Some Heading]]. Embed: ![[concepts/gamma]].",
            "Daily: [[daily/2026-01-05]] and [[2026-01-06]]. Same page: [[#Local heading]].",
            "Code is not a link: `[[in-code-missing]]`.",
            "```",
            "[[fenced-missing]]",
            "```",
            "Broken: [[concepts/does-not-exist]].",
        ]
    )
    write_article(root, "concepts/alpha", title="Alpha", body=hub_body)
    back = f"{FILLER}\n\nBack to [[concepts/alpha]]."
    write_article(
        root,
        "concepts/beta",
        title="Beta",
        aliases=("Beta Alias",),
        body=back + "\n\n## Some Heading\n\ntext",
    )
    write_article(
        root, "concepts/gamma", title="Gamma", body=back + " Missing: [[Nonexistent Thing]]."
    )
    write_article(
        root, "concepts/epsilon", title="Epsilon", body="Too short. Back to [[concepts/alpha]]."
    )
    write_article(
        root,
        "concepts/fm-tags",
        title="Tags wrong",
        body=back,
        raw_front=(
            "title: Tags wrong\nsummary: s\ntags: 5\ncreated: '2026-01-05'\nupdated: '2026-01-05'"
        ),
    )
    write_article(root, "concepts/fm-created", title="No created", body=back, created=None)
    write_article(
        root, "concepts/fm-updated", title="Bad updated", body=back, updated="last tuesday"
    )
    write_article(
        root, "connections/delta", title="Delta", body=f"{FILLER} Links [[concepts/alpha]]."
    )
    from pipeline import wikiindex

    wikiindex.write_index(settings.paths)
    index = root / "knowledge" / "index.md"
    text = index.read_text()
    lines = [ln for ln in text.splitlines() if "[[concepts/gamma|" not in ln]
    lines.append("- [[concepts/gone|Gone]] — removed page")
    index.write_text("\n".join(lines) + "\n")
    first = add_entry(root, "2026-01-05", "job1", "First entry")
    add_entry(root, "2026-01-05", "job2", "Second entry, never recorded")
    edited = add_entry(root, "2026-01-06", "job3", "Third entry")
    no_hash = add_entry(root, "2026-01-06", "job4", "Fourth entry")
    distilled = add_entry(root, "2026-01-06", "job5", "Fifth entry, hashed as distil does")
    record(
        settings, first, compiled=True, content_hash=hashlib.sha256(first.text.encode()).hexdigest()
    )
    record(settings, edited, compiled=True, content_hash="0123456789abcdef")
    record(settings, no_hash, compiled=True, content_hash="")
    record(
        settings,
        distilled,
        compiled=True,
        content_hash=hashlib.sha256(BLOCKS[distilled.id].encode()).hexdigest()[:16],
    )
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "knowledge").rglob("*"))
        if p.is_file() and p.name != "log.md"
    }


def test_known_defects_reported_exactly(kb, settings):
    report = lint.run_lint(settings, structural_only=True)
    assert report.by_check() == EXPECTED, list(report.issues)
    broken = sorted(i.detail for i in report.issues if i.check == "broken_link")
    assert broken == [
        "[[Nonexistent Thing]] resolves to no page",
        "[[concepts/does-not-exist]] resolves to no page",
    ]
    assert report.errors == 2 + 2  # broken links + tags type + bad updated date
    assert {i.file for i in report.issues if i.check == "orphan"} == {
        "knowledge/connections/delta.md"
    }
    assert Path(report.report_path).is_file()
    data = json.loads(Path(report.report_path).with_suffix(".json").read_text())
    assert len(data["issues"]) == sum(EXPECTED.values())


def test_fix_twice_changes_nothing_the_second_time(kb, settings):
    first = lint.run_lint(settings, structural_only=True, fix=True)
    assert first.fixed
    checks = first.by_check()
    for gone in ("noncanonical_link", "missing_backlink", "orphan", "index_drift"):
        assert gone not in checks
    assert checks["broken_link"] == 2  # ambiguous repairs are left to a person
    alpha = (kb / "knowledge/concepts/alpha.md").read_text()
    assert "[[concepts/beta|Beta Alias]]" in alpha and "[[concepts/beta|the beta page]]" in alpha
    assert "## Related\n\n- [[connections/delta|Delta]]" in alpha
    assert "`[[in-code-missing]]`" in alpha and "[[fenced-missing]]" in alpha
    assert alpha.startswith("---\ntitle: Alpha\n")  # frontmatter kept byte for byte
    log = (kb / "knowledge/log.md").read_text()
    before = snapshot(kb)
    second = lint.run_lint(settings, structural_only=True, fix=True)
    assert second.fixed == ()
    assert snapshot(kb) == before
    assert (kb / "knowledge/log.md").read_text() == log
    assert second.by_check() == checks


def test_fix_appends_to_an_existing_related_section():
    body = "Intro.\n\n## Related\n\n- [[concepts/x]]\n\n## Later\n\nMore."
    out = lint.add_related(body, ["- [[concepts/y|Y]]"])
    assert (
        out == "Intro.\n\n## Related\n\n- [[concepts/x]]\n- [[concepts/y|Y]]\n\n## Later\n\nMore."
    )
    assert lint.add_related("Text.\n", ["- [[a]]"]) == "Text.\n\n## Related\n\n- [[a]]\n"


def test_rewrite_keeps_heading_display_and_code():
    body = "[[B#H]] [[B|shown]] ![[B]] `[[B]]` [[C]]"
    out = lint.rewrite_links(body, {"B": "concepts/b"})
    assert out == "[[concepts/b#H|B#H]] [[concepts/b|shown]] ![[concepts/b]] `[[B]]` [[C]]"


def test_ambiguous_and_attachment_links(root, settings):
    write_article(
        root, "concepts/same", title="Same one", body=f"{FILLER} [[connections/same]] ![[pic.png]]"
    )
    write_article(
        root, "connections/same", title="Same two", body=f"{FILLER} [[concepts/same]] [[same]]"
    )
    (root / "knowledge" / "pic.png").write_bytes(b"\x89PNG")
    checks = lint.run_lint(settings, structural_only=True, write_report=False).by_check()
    assert checks.get("ambiguous_link") == 1
    assert "broken_link" not in checks


def test_contradiction_check_is_bounded(kb, settings, monkeypatch):
    monkeypatch.setattr(lint, "MAX_CLUSTERS", 2)
    seen = []

    def disagree(request):
        pages = [p["path"] for p in request.payload["cluster"]][:2]
        seen.extend(pages)
        return {
            "contradictions": [
                {"pages": [*pages, "concepts/not-in-cluster"], "detail": "They disagree."}
            ]
        }

    fake = FakeBackend(default={"contradictions": []}).enqueue(disagree)
    report = lint.run_lint(settings, backend=fake)
    assert 1 <= len(fake.calls) <= 2 and report.contradiction_calls == len(fake.calls)
    for call in fake.calls:
        cluster = call.payload["cluster"]
        assert 2 <= len(cluster) <= lint.CLUSTER_PAGES
        assert all(len(p["body"]) <= lint.PAGE_CHARS for p in cluster)
    found = [i for i in report.issues if i.check == "contradiction"]
    assert len(found) == 1 and found[0].file == f"knowledge/{seen[0]}.md"
    assert f"[[{seen[1]}]]" in found[0].detail and "not-in-cluster" not in found[0].detail


def test_extractive_backend_skips_contradictions_with_a_note(kb, settings):
    report = lint.run_lint(settings)
    assert report.contradiction_calls == 0
    assert any("extractive" in n for n in report.notes)


def test_cli_json_and_exit_code(kb, capsys):
    from pipeline.cli import main

    code = main(["--root", str(kb), "lint", "--structural-only", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {"severity", "check", "file", "detail"} <= set(data["issues"][0])
    assert data["summary"]["error"] == 4


def test_clean_kb_exits_zero(root, capsys):
    from pipeline.cli import main

    write_article(root, "concepts/a", title="A", body=f"{FILLER} [[concepts/b]]")
    write_article(root, "concepts/b", title="B", body=f"{FILLER} [[concepts/a]]")
    assert main(["--root", str(root), "lint", "--structural-only", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "0 errors" in out


# ---------------------------------------------------------------- lint --fix


def test_fix_adds_no_backlink_for_an_ambiguous_link(root, settings):
    """``[[same]]`` could mean either page: --fix must not claim that either one is linked."""
    write_article(root, "concepts/same", title="Same one", body=f"{FILLER}")
    write_article(root, "connections/same", title="Same two", body=f"{FILLER}")
    write_article(root, "concepts/hub", title="Hub", body=f"{FILLER} see [[same]]")
    report = lint.run_lint(settings, structural_only=True, fix=True, write_report=False)
    assert not any("backlink" in line for line in report.fixed)
    for key in ("concepts/same", "connections/same"):
        assert "concepts/hub" not in (root / "knowledge" / f"{key}.md").read_text()
    assert report.by_check().get("ambiguous_link") == 1


# --- scale: the frontmatter cache, the bounded report ---------------------------------------


def _lint_view(settings, **kw):
    report = lint.run_lint(settings, structural_only=True, write_report=False, **kw)
    return report.issues, report.articles, report.links


def test_lint_results_are_identical_with_and_without_the_cache(kb, settings, monkeypatch):
    # Frontmatter the cache must reproduce exactly: dates, a datetime, an int key, nesting,
    # a YAML error, an anchor (refused), and a block shared by two pages.
    odd = {
        "concepts/dates": "title: Dates\nsummary: s\ncreated: 2026-01-05\nupdated: 2026-01-06",
        "concepts/stamp": "title: Stamp\nsummary: s\nwhen: 2026-01-05 10:00:00+02:00",
        "concepts/intkey": "title: Int key\nsummary: s\n1: one\nnested: {a: [1, 2.5, null]}",
        "concepts/broken-yaml": "title: [unclosed\nsummary: s",
        "concepts/anchor": "title: &a Anchor\nsummary: *a",
        "concepts/twin-a": "title: Twin\nsummary: same block",
        "concepts/twin-b": "title: Twin\nsummary: same block",
    }
    for key, front in odd.items():
        write_article(kb, key, title="", body=f"{FILLER} [[concepts/alpha]]", raw_front=front)
    cache_file = settings.paths.cache / "frontmatter.json"
    uncached = _lint_view(settings, cache=False)
    assert not cache_file.exists()
    cold = _lint_view(settings)  # fills the cache
    assert cache_file.is_file()
    from pipeline import fmcache

    calls = []
    real = fmcache.load_frontmatter
    monkeypatch.setattr(fmcache, "load_frontmatter", lambda raw: calls.append(raw) or real(raw))
    warm = _lint_view(settings)
    assert uncached == cold == warm
    # every block but the one JSON cannot hold exactly (the int key) came from the cache
    assert len(calls) == 1 and "1: one" in calls[0]
    (kb / "knowledge" / "concepts" / "dates.md").write_text(
        "---\ntitle: Dates\nsummary: s\ncreated: 2026-02-01\nupdated: 2026-13-01\n---\n\nshort\n"
    )
    assert _lint_view(settings) == _lint_view(settings, cache=False)  # an edit is seen at once
    cache_file.write_text("{ damaged")
    assert _lint_view(settings) == _lint_view(settings, cache=False)


def test_report_files_are_bounded_and_grouped(root, settings, monkeypatch):
    monkeypatch.setattr(lint, "REPORT_PER_CHECK", 3)
    for i in range(8):
        write_article(
            root, f"concepts/lonely-{i}", title=f"Lonely {i}", body=f"{FILLER} [[gone-{i}]]"
        )
    report = lint.run_lint(settings, structural_only=True)
    assert report.by_check()["broken_link"] == 8 and len(report.issues) > 8
    data = json.loads(Path(report.report_path).with_suffix(".json").read_text())
    assert sum(1 for i in data["issues"] if i["check"] == "broken_link") == 3
    assert data["omitted"]["broken_link"] == 5
    assert data["summary"]["by_check"]["broken_link"] == 8  # the counts stay whole
    text = Path(report.report_path).read_text()
    assert "## broken_link (8)" in text and "... and 5 more" in text
    full = report.to_dict()  # what `memc lint --json` prints: every issue
    assert len(full["issues"]) == len(report.issues) and "omitted" not in full


def test_the_cycle_collector_is_paused_during_a_lint_and_back_after(kb, settings, monkeypatch):
    """A lint builds pages, links and findings that hold no reference cycles: the collector's
    passes over that growing heap are paused while it runs, and resumed after (also on error)."""
    import gc

    seen = []
    real_scan = lint.scan

    def scan(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(lint, "scan", scan)
    assert gc.isenabled()
    report = lint.run_lint(settings, structural_only=True)
    assert seen == [False] and gc.isenabled() and report.articles

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(lint, "scan", broken)
    with pytest.raises(OSError):
        lint.run_lint(settings, structural_only=True)
    assert gc.isenabled()


def test_report_counts_match_the_issues(kb, settings):
    report = lint.run_lint(settings, structural_only=True, write_report=False)
    for severity in lint.SEVERITIES:
        assert report.count(severity) == sum(i.severity == severity for i in report.issues)
    by_check: dict[str, int] = {}
    for issue in report.issues:
        by_check[issue.check] = by_check.get(issue.check, 0) + 1
    assert report.by_check() == by_check and list(report.by_check()) == list(by_check)
    assert report.errors == report.count("error") > 0
