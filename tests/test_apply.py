"""The guarded writer: hostile paths, merges, redirects, idempotency."""

from __future__ import annotations

import os

import pytest

from pipeline import apply, wiki


def op(path, title="T", body="body", **kw):
    return {"path": path, "title": title, "body": body, **kw}


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


HOSTILE = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "/tmp/x",
    "concepts\\evil",
    "concepts/a\x00b",
    "concepts/" + "a" * 300,
    "concepts/" + "a" * 81,
    ".hidden/x",
    "concepts/.hidden",
    "concepts/a/b",
    "concepts/a/../../x",
    "notes/x",
    "daily/2026-11-20",
    "index",
    "concepts/",
    "concepts/Upper",
    "concepts/-x",
    "concepts/a b",
    "C:/x",
    "~/x",
    "concepts/./a",
    "",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_path_rejected(settings, path):
    paths = settings.paths
    report = apply.apply_articles(settings, [op(path), op("concepts/good", "Good")], now=0)
    assert [r.index for r in report.rejected] == [0]
    assert report.rejected[0].reason
    assert report.created == ("concepts/good",)
    written = sorted(
        p.relative_to(paths.knowledge).as_posix()
        for p in paths.knowledge.rglob("*.md")
        if p.name not in ("index.md", "log.md")
    )
    assert written == ["concepts/good.md"]  # the hostile one wrote nothing, anywhere in knowledge/


def test_hostile_batch_writes_nothing_outside(settings, tmp_path):
    paths = settings.paths
    outside = tmp_path / "outside"
    outside.mkdir()
    # a symlinked folder inside knowledge/ pointing outside, and a file symlink to outside
    (paths.knowledge / "qa").rmdir()
    (paths.knowledge / "qa").symlink_to(outside, target_is_directory=True)
    target = outside / "victim.md"
    target.write_text("do not touch")
    (paths.knowledge / "concepts" / "victim.md").symlink_to(target)

    def outside_knowledge():
        return {
            p: (tmp_path / p).read_bytes() if (tmp_path / p).is_file() else None
            for p in tree(tmp_path)
            if not p.startswith(("root/knowledge/", "root/.memc/"))
        }

    before = outside_knowledge()
    ops = [op(p) for p in HOSTILE] + [
        op("qa/escape"),
        op("concepts/victim", "Victim"),
        op("connections/ok", "Ok"),
        "not an object",
        op(123),
        {"path": "concepts/no-title", "body": "x"},
        op("concepts/huge", body="x" * (apply.MAX_BODY_CHARS + 1)),
    ]
    report = apply.apply_articles(settings, ops, now=0)
    assert report.created == ("connections/ok",)
    assert len(report.rejected) == len(ops) - 1
    assert target.read_text() == "do not touch"
    assert os.listdir(outside) == ["victim.md"]
    assert outside_knowledge() == before
    reasons = " ".join(r.reason for r in report.rejected)
    assert "symlink" in reasons and "NUL" in reasons and "absolute" in reasons
    log = (paths.knowledge / "log.md").read_text()
    assert "rejected" in log


def test_not_a_list(settings):
    report = apply.apply_articles(settings, {"path": "concepts/x"}, now=0)
    assert report.rejected and not report.written


def test_create_then_update_merges_frontmatter(settings):
    day1, day2 = 1_763_600_000.0, 1_763_700_000.0
    apply.apply_articles(
        settings,
        [
            op(
                "concepts/pg",
                "Postgres",
                "v1",
                summary="db",
                aliases=["pg"],
                tags=["db"],
                sources=["daily/2025-11-20.md", "../evil"],
            )
        ],
        now=day1,
    )
    art = wiki.load_article(settings.paths.knowledge, "concepts/pg")
    assert art.sources == ("daily/2025-11-20.md",) and art.created == art.updated
    report = apply.apply_articles(
        settings,
        [
            op(
                "concepts/pg",
                "Postgres",
                "v2",
                aliases=["postgresql"],
                tags=["sql"],
                sources=["daily/2025-11-21.md"],
            )
        ],
        seen={"concepts/pg"},
        now=day2,
    )
    assert report.updated == ("concepts/pg",)
    new = wiki.load_article(settings.paths.knowledge, "concepts/pg")
    assert new.created == art.created and new.updated > art.updated
    assert new.aliases == ("pg", "postgresql") and new.tags == ("db", "sql")
    assert new.sources == ("daily/2025-11-20.md", "daily/2025-11-21.md")
    assert new.body.strip() == "v2" and new.summary == "db"


def test_unseen_update_appends_instead_of_replacing(settings):
    apply.apply_articles(settings, [op("concepts/pg", "Postgres", "original text")], now=0)
    apply.apply_articles(settings, [op("concepts/pg", "Postgres", "new fact")], now=86400)
    body = wiki.load_article(settings.paths.knowledge, "concepts/pg").body
    assert "original text" in body and "## Update 1970-01-02\n\nnew fact" in body
    again = apply.apply_articles(settings, [op("concepts/pg", "Postgres", "new fact")], now=2e5)
    assert again.unchanged == ("concepts/pg",) and not again.written


def test_new_material_filters_list_items_and_blocks():
    old = "intro\n\n## Mentioned in\n\n- a\n- b"
    assert apply.new_material(old, "## Mentioned in\n\n- a\n- b") == ""
    assert apply.new_material(old, "## Mentioned in\n\n- a\n- c") == "- c"
    assert apply.new_material(old, "intro\n\nfresh paragraph") == "fresh paragraph"


def test_title_or_alias_match_updates_existing(settings):
    apply.apply_articles(
        settings,
        [
            op(
                "concepts/postgres-advisory-locks",
                "Postgres advisory locks",
                "v1",
                aliases=["pg advisory locks"],
            )
        ],
        now=0,
    )
    report = apply.apply_articles(
        settings,
        [
            op("concepts/advisory-locks", "Postgres Advisory Locks", "by title"),
            op(
                "connections/pg-locks",
                "PG lock notes",
                "by alias",
                aliases=["Postgres advisory locks"],
            ),
            op("qa/postgres-advisory-locks", "Something else", "by slug"),
        ],
        seen={"concepts/postgres-advisory-locks"},
        now=0,
    )
    assert report.created == ()
    assert set(report.updated) == {"concepts/postgres-advisory-locks"}
    assert [b for _, b in report.redirected] == ["concepts/postgres-advisory-locks"] * 3
    files = sorted(p.name for p in settings.paths.knowledge.rglob("*.md"))
    assert files == ["index.md", "log.md", "postgres-advisory-locks.md"]
    art = wiki.load_article(settings.paths.knowledge, "concepts/postgres-advisory-locks")
    assert art.title == "Postgres advisory locks"
    assert "PG lock notes" in art.aliases and "Something else" in art.aliases


def test_rename_in_place_keeps_old_title_as_alias(settings):
    apply.apply_articles(settings, [op("concepts/pg", "PG", "x")], now=0)
    report = apply.apply_articles(settings, [op("concepts/pg", "PostgreSQL", "x")], now=0)
    assert report.updated == ("concepts/pg",)
    art = wiki.load_article(settings.paths.knowledge, "concepts/pg")
    assert art.title == "PostgreSQL" and art.aliases == ("PG",)
    index = (settings.paths.knowledge / "index.md").read_text()
    assert "[[concepts/pg|PostgreSQL]]" in index


def test_same_ops_twice_change_nothing(settings):
    ops = [op("concepts/a", "A", "alpha", tags=["x"]), op("qa/b", "B?", "beta")]
    first = apply.apply_articles(settings, ops, seen={"concepts/a", "qa/b"}, now=0)
    assert len(first.created) == 2
    snapshot = {p: p.read_bytes() for p in settings.paths.knowledge.rglob("*.md")}
    second = apply.apply_articles(settings, ops, seen={"concepts/a", "qa/b"}, now=99999)
    assert second.unchanged == ("concepts/a", "qa/b") and not second.written
    assert {p: p.read_bytes() for p in settings.paths.knowledge.rglob("*.md")} == snapshot


def test_sweep_removes_every_temp_file_in_knowledge_however_young(settings):
    """A writer killed mid-atomic_write a moment ago: the next sweep (under the knowledge lock,
    which every knowledge/ writer holds) removes its temp file at once, beside index.md too."""
    from pipeline.fsutil import TEMP_PREFIX

    knowledge = settings.paths.knowledge
    orphans = [
        knowledge / f"{TEMP_PREFIX}index.md.k1ll3d",
        knowledge / "concepts" / f"{TEMP_PREFIX}queue.md.k1ll3d",
        knowledge / "qa" / f"{TEMP_PREFIX}why.md.k1ll3d",
    ]
    for orphan in orphans:
        orphan.write_text("---\ntitle: half a pa")  # written just now: no age to wait for
    kept = [knowledge / "concepts" / "queue.md", knowledge / "notes.txt"]
    for path in kept:
        path.write_text("the user's file\n")
    assert apply.sweep_temp_files(settings.paths) == len(orphans)
    assert [p for p in orphans if p.exists()] == []
    assert all(p.read_text() == "the user's file\n" for p in kept)


# ---------------------------------------------------------------- apply (the guarded writer)


def test_redirected_proposal_never_replaces_a_seen_page(settings):
    """A new page proposed under another slug but with an existing page's title is a duplicate,
    not a rewrite: even when the model was shown the existing page in full, its body is kept."""
    apply.apply_articles(
        settings,
        [
            op(
                "concepts/pg-locks",
                "Postgres advisory locks",
                "original explanation of advisory locks",
            )
        ],
        now=0,
    )
    report = apply.apply_articles(
        settings,
        [op("concepts/advisory-locks", "Postgres Advisory Locks", "a short new note")],
        seen={"concepts/pg-locks"},
        now=86400,
    )
    assert report.redirected == (("concepts/advisory-locks", "concepts/pg-locks"),)
    body = wiki.load_article(settings.paths.knowledge, "concepts/pg-locks").body
    assert "original explanation of advisory locks" in body
    assert "a short new note" in body


def test_same_slug_other_case_is_updated_not_shadowed(settings):
    """A hand-made ``concepts/Foo.md``: on a case-insensitive file system writing
    ``concepts/foo.md`` as a new page would overwrite it; it must be treated as that page."""
    knowledge = settings.paths.knowledge
    (knowledge / "concepts" / "Redis.md").write_text(
        "---\ntitle: Cache server\n---\n\nhand-written notes\n", encoding="utf-8"
    )
    report = apply.apply_articles(settings, [op("concepts/redis", "Redis", "model text")], now=0)
    assert report.created == ()
    assert report.redirected == (("concepts/redis", "concepts/Redis"),)
    body = wiki.load_article(knowledge, "concepts/Redis").body
    assert "hand-written notes" in body and "model text" in body
    assert sorted(p.name for p in (knowledge / "concepts").iterdir()) == ["Redis.md"]


def test_near_miss_paths_are_normalised_not_rejected(settings):
    report = apply.apply_articles(
        settings,
        [
            op("concepts/with-suffix.md", "With suffix"),
            op("concept/singular", "Singular folder"),
            op("knowledge/qa/prefixed.md", "Prefixed"),
        ],
        now=0,
    )
    assert report.rejected == ()
    assert set(report.created) == {"concepts/with-suffix", "concepts/singular", "qa/prefixed"}


@pytest.mark.parametrize("slug", ["con", "nul", "com1", "lpt9", "index", "log", "aux"])
def test_reserved_names_are_refused_as_slugs(settings, slug):
    report = apply.apply_articles(settings, [op(f"concepts/{slug}", "Reserved")], now=0)
    assert report.created == () and "reserved" in report.rejected[0].reason
    assert not (settings.paths.knowledge / "concepts" / f"{slug}.md").exists()


def test_raw_html_and_remote_images_are_neutralised(settings):
    body = (
        "Intro <img src=https://evil.example/p.png> and <iframe src='https://x.example'></iframe>\n\n"
        "![pixel](https://evil.example/t.gif) and ![local](pics/a.png) and <https://ok.example>\n\n"
        "Inline `<div>` stays.\n\n```html\n<script>alert(1)</script>\n```\n"
    )
    report = apply.apply_articles(
        settings,
        [op("concepts/html", "Title <b onmouseover=x>bold</b>", body, summary="<img src=x> s")],
        now=0,
    )
    assert report.created == ("concepts/html",)
    text = (settings.paths.knowledge / "concepts" / "html.md").read_text(encoding="utf-8")
    index = (settings.paths.knowledge / "index.md").read_text(encoding="utf-8")
    for written in (text, index):
        assert "<img" not in written and "<iframe" not in written and "<b " not in written
        assert "![pixel](https://" not in written
    assert "&lt;img src=https://evil.example/p.png&gt;" in text
    assert "[pixel](https://evil.example/t.gif)" in text and "![local](pics/a.png)" in text
    assert "<https://ok.example>" in text  # an autolink is not HTML
    assert "`<div>`" in text and "<script>alert(1)</script>" in text  # code is left as written


def test_one_reply_applies_a_bounded_number_of_operations(settings):
    from pipeline.operation import MAX_PAGES_PER_REPLY

    ops = [op(f"concepts/page-{i}", f"Page {i}") for i in range(MAX_PAGES_PER_REPLY + 25)]
    report = apply.apply_articles(settings, ops, now=0)
    assert len(report.created) == MAX_PAGES_PER_REPLY
    assert len(report.rejected) == 1 and "25 page write(s)" in report.rejected[0].reason
    assert len(list((settings.paths.knowledge / "concepts").glob("*.md"))) == MAX_PAGES_PER_REPLY


def test_pages_sharing_an_alias_are_not_merged(settings):
    first = apply.apply_articles(
        settings, [op("concepts/advisory-locks", "Advisory locks", aliases=["locks"])], now=0
    )
    second = apply.apply_articles(
        settings, [op("concepts/queue-locks", "Queue locks", aliases=["locks"])], now=0
    )
    third = apply.apply_articles(
        settings, [op("concepts/file-locks", "File locks", aliases=["locks"])], now=0
    )
    assert first.created == ("concepts/advisory-locks",)
    assert second.created == ("concepts/queue-locks",) and second.redirected == ()
    assert third.created == ("concepts/file-locks",) and third.redirected == ()
    # a proposal titled with the shared name belongs to neither page: it is its own page
    fourth = apply.apply_articles(settings, [op("concepts/locks", "Locks")], now=0)
    assert fourth.created == ("concepts/locks",) and fourth.redirected == ()
