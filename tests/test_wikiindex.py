"""index.md generation from frontmatter and the append-only log.md."""

from __future__ import annotations

from types import SimpleNamespace as NS

from pipeline import wikiindex
from tests.helpers import write_page


def test_render_groups_sorts_and_escapes():
    text = wikiindex.render_index(
        [
            NS(key="qa/why", title="Why?", summary="an answer"),
            NS(key="concepts/b", title="B | [[evil]]", summary="line\nbreak"),
            NS(key="concepts/a", title="A", summary=""),
            NS(key="connections/x-y", title="X and Y", summary="s" * 500),
        ]
    )
    lines = text.splitlines()
    assert "4 articles." in lines
    heads = [ln for ln in lines if ln.startswith("## ")]
    assert heads == ["## Concepts (2)", "## Connections (1)", "## Q&A (1)"]
    assert lines.index("- [[concepts/a|A]]") < lines.index(
        "- [[concepts/b|B - ((evil))]] — line break"
    )
    long = next(ln for ln in lines if ln.startswith("- [[connections/x-y"))
    assert len(long) < 300 and long.endswith("…")
    assert text == wikiindex.render_index(
        [  # deterministic, order-independent
            NS(key="connections/x-y", title="X and Y", summary="s" * 500),
            NS(key="concepts/a", title="A", summary=""),
            NS(key="qa/why", title="Why?", summary="an answer"),
            NS(key="concepts/b", title="B | [[evil]]", summary="line\nbreak"),
        ]
    )


def test_empty_index_says_what_to_do():
    assert "memc compile" in wikiindex.render_index([])


def test_write_index_only_when_changed(settings):
    paths = settings.paths
    write_page(paths, "concepts/a", "Alpha", "x", summary="first")
    first = wikiindex.write_index(paths)
    assert first.written and first.articles == 1
    assert "[[concepts/a|Alpha]] — first" in (paths.knowledge / "index.md").read_text()
    assert not wikiindex.write_index(paths).written
    write_page(paths, "concepts/a", "Alpha", "x", summary="second")
    assert wikiindex.write_index(paths).written
    assert "— second" in (paths.knowledge / "index.md").read_text()
    (paths.knowledge / "concepts" / "a.md").unlink()
    assert wikiindex.write_index(paths).articles == 0


def test_index_ignores_body_and_hand_edits_are_replaced(settings):
    paths = settings.paths
    write_page(paths, "concepts/a", "Alpha", "- [[concepts/fake|Fake]] in the body")
    (paths.knowledge / "index.md").write_text("hand edited")
    wikiindex.write_index(paths)
    text = (paths.knowledge / "index.md").read_text()
    assert "fake" not in text and "hand edited" not in text


def test_append_log_only_grows(settings):
    paths = settings.paths
    wikiindex.append_log(paths, "compile", "2 created", ["created [[concepts/a]]"], now=0)
    wikiindex.append_log(paths, "lint --fix", "1 fixed\nsecond line", [], now=60)
    text = (paths.knowledge / "log.md").read_text()
    assert text.startswith("# Build log")
    assert text.count("# Build log") == 1
    assert "## [1970-01-01 00:00 UTC] compile | 2 created" in text
    assert "- created [[concepts/a]]" in text
    assert "## [1970-01-01 00:01 UTC] lint --fix | 1 fixed second line" in text


def test_parse_index_reads_back_what_render_index_wrote():
    arts = [
        NS(key="concepts/b", title="B | [[evil]]", summary="line\nbreak"),
        NS(key="concepts/a", title="A", summary=""),
        NS(key="qa/why", title="Why?", summary="an answer — with a dash"),
    ]
    parsed = wikiindex.parse_index(wikiindex.render_index(arts))
    assert [(a.key, a.title, a.summary) for a in parsed] == [
        ("concepts/a", "A", ""),
        ("concepts/b", "B - ((evil))", "line break"),
        ("qa/why", "Why?", "an answer — with a dash"),
    ]
