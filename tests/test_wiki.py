"""The wiki model: frontmatter safety, links, resolution."""

from __future__ import annotations

import pytest

from pipeline.wiki import (
    Article,
    FrontmatterError,
    Resolver,
    load_frontmatter,
    parse_article,
    parse_links,
    render_article,
    slugify,
)


def test_round_trip():
    art = parse_article(
        "concepts/a",
        "---\ntitle: A\nsummary: s\naliases: [Alpha]\ntags: [x]\n"
        "sources: [daily/2026-11-20.md]\ncreated: 2026-11-20\nupdated: '2026-11-21'\n---\nBody\n",
    )
    assert art.problems == ()
    assert (art.title, art.aliases, art.created, art.updated) == (
        "A",
        ("Alpha",),
        "2026-11-20",
        "2026-11-21",
    )
    again = parse_article("concepts/a", render_article(art))
    assert again == art


@pytest.mark.parametrize(
    "front, problem",
    [
        ("a: &x [1,2]\nb: *x", "anchors"),
        ("title: !!python/object/apply:os.system ['echo hi']", "tags"),
        ("- just\n- a list", "not a mapping"),
        ("title: [unclosed", "not valid YAML"),
    ],
)
def test_hostile_frontmatter_is_refused(front, problem):
    with pytest.raises(FrontmatterError, match=problem):
        load_frontmatter(front)
    art = parse_article("concepts/x", f"---\n{front}\n---\nbody")
    assert any(problem in p for p in art.problems)


def test_wrong_types_are_reported():
    art = parse_article("concepts/x", "---\ntitle: {a: 1}\naliases: 3\ntags: [[1]]\n---\n")
    assert "title is not text" in art.problems
    assert "tags is not a list of strings" in art.problems
    assert art.aliases == ()  # 3 is neither a string nor a list
    assert "aliases is not a list of strings" in art.problems


def test_missing_frontmatter():
    art = parse_article("concepts/some-page", "just text")
    assert "missing frontmatter" in art.problems and art.title == "some page"


def test_links_forms_and_code_exclusion():
    text = (
        "[[concepts/a]] [[a|Shown]] [[concepts/a#Why it matters]] ![[b]]\n"
        "`[[not-a-link]]`\n```\n[[also-not]]\n```\n"
    )
    links = parse_links(text)
    assert [(k.target, k.heading, k.display, k.embed) for k in links] == [
        ("concepts/a", "", "", False),
        ("a", "", "Shown", False),
        ("concepts/a", "Why it matters", "", False),
        ("b", "", "", True),
    ]


def test_tilde_fences_hide_links_and_text_without_code_keeps_every_link():
    assert [k.target for k in parse_links("~~~\n[[hidden]]\n~~~\n[[shown]]")] == ["shown"]
    assert [k.target for k in parse_links("[[a]] and [[b|B]], no code")] == ["a", "b"]


def test_resolution_order():
    a = parse_article(
        "concepts/postgres-locks", "---\ntitle: Postgres Locks\naliases: [advisory locks]\n---\n"
    )
    b = parse_article("qa/postgres-locks", "---\ntitle: Q\n---\n")
    c = parse_article("connections/x", "---\ntitle: X\n---\n")
    r = Resolver([a, b, c], extra_paths=["daily/2026-11-20"])
    assert r.resolve("concepts/postgres-locks.md") == "concepts/postgres-locks"
    assert r.resolve("knowledge/qa/postgres-locks") == "qa/postgres-locks"
    assert r.candidates("postgres-locks") == ["concepts/postgres-locks", "qa/postgres-locks"]
    assert r.resolve("Advisory Locks") == "concepts/postgres-locks"
    assert r.resolve("postgres locks") == "concepts/postgres-locks"  # by title
    assert r.resolve("daily/2026-11-20") == "daily/2026-11-20"
    assert r.resolve("2026-11-20") == "daily/2026-11-20"
    assert r.resolve("nothing") is None


def test_slugify():
    assert slugify("Postgres Advisory Locks!") == "postgres-advisory-locks"
    assert slugify("Ünïcödé") == "unicode"
    assert slugify("???") == ""
    assert len(slugify("x" * 200)) == 80


def _candidates_by_scan(r, target):
    """The resolution order as it was written before the suffix map (one scan per link)."""
    from pipeline.wiki import _norm

    t = _norm(target)
    if not t:
        return []
    if t in r.by_path:
        return [r.by_path[t]]
    if "/" in t:
        suffix = [k for lk, k in r.by_path.items() if lk.endswith("/" + t)]
        if suffix:
            return sorted(suffix)
    name = t.rsplit("/", 1)[-1]
    if name in r.by_name:
        return sorted(set(r.by_name[name]))
    alias = target.strip().lower()
    if alias in r.by_alias:
        return sorted(set(r.by_alias[alias]))
    return []


def test_suffix_map_resolves_as_the_scan_did():
    import random

    rng = random.Random(5)
    parts = ["a", "b", "x", "concepts", "deep", "Deep", "b/c"]
    keys = sorted(
        {"/".join(rng.choice(parts) for _ in range(rng.randint(2, 5))) for _ in range(300)}
    )
    arts = [Article(key=k, title=k.rsplit("/", 1)[-1]) for k in keys]
    r = Resolver(arts, extra_paths=["daily/2026-11-20", "index", "a/b/daily"])
    targets = set(keys) | {"/".join(k.split("/")[i:]) for k in keys for i in range(4)}
    targets |= {t.upper() for t in list(targets)[:50]} | {"/b/c", "x/", "", "knowledge/a/b.md"}
    for target in sorted(targets):
        assert r.candidates(target) == _candidates_by_scan(r, target), target
