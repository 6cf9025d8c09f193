"""Review pass over the compile / read side: each test pins a defect found in review."""

from __future__ import annotations

from pipeline import apply, compiler, lint, query, wiki, wikiindex
from tests.fakes import FakeBackend
from tests.helpers import FILLER, write_article


def op(path, title="T", body="body", **kw):
    return {"path": path, "title": title, "body": body, **kw}


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


# ---------------------------------------------------------------- query --file-back


def test_file_back_of_a_different_question_keeps_the_earlier_answer(kb_root, settings):
    prefix = "how do we take postgres advisory locks for each job in the worker queue and "
    q1, q2 = prefix + "release them?", prefix + "monitor contention?"
    assert wiki.slugify(q1)[:60] == wiki.slugify(q2)[:60]
    fake = FakeBackend().enqueue(
        {"answer": "First answer [[concepts/advisory-locks]].", "citations": []},
        {"answer": "Second answer [[concepts/advisory-locks]].", "citations": []},
    )
    first = query.run_query(settings, q1, file_back=True, backend=fake)
    second = query.run_query(settings, q2, file_back=True, backend=fake)
    assert first.filed and second.filed and first.filed != second.filed
    one = wiki.load_article(settings.paths.knowledge, first.filed)
    two = wiki.load_article(settings.paths.knowledge, second.filed)
    assert "First answer" in one.body and one.title == "Q: " + q1
    assert "Second answer" in two.body and two.title == "Q: " + q2


def test_file_back_of_the_same_question_refreshes_its_page(kb_root, settings):
    q = "how do we take postgres advisory locks?"
    fake = FakeBackend().enqueue(
        {"answer": "Old answer [[concepts/advisory-locks]].", "citations": []},
        {"answer": "New answer [[concepts/advisory-locks]].", "citations": []},
    )
    first = query.run_query(settings, q, file_back=True, backend=fake)
    second = query.run_query(settings, q.upper(), file_back=True, backend=fake)
    assert first.filed == second.filed
    body = wiki.load_article(settings.paths.knowledge, second.filed).body
    assert "New answer" in body and "Old answer" not in body


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


# ---------------------------------------------------------------- compile and index.md


def test_compile_writes_index_under_the_knowledge_lock(settings, monkeypatch):
    """compile's final index.md regeneration must not race query --file-back / lint --fix."""
    from pipeline import fsutil

    held: list[bool] = []
    real = wikiindex.write_index

    def spy(paths):
        held.append(fsutil.lock_is_held(paths.lock("knowledge")))
        return real(paths)

    monkeypatch.setattr(wikiindex, "write_index", spy)
    day = "2026-11-20"
    (settings.paths.daily / f"{day}.md").write_text(
        f"# Daily Log: {day}\n\n### 10:00 · acme · Queue locks\n"
        "<!-- memc:entry id=3f9c2a1b7e4d session=cd613e30 event=stop -->\n"
        "**Context:** advisory locks\n\n"
    )
    reply = {
        "articles": [
            {
                "path": "concepts/queue",
                "title": "Queue",
                "summary": "jobs",
                "body": "advisory locks",
                "sources": [f"daily/{day}.md"],
            }
        ]
    }
    report = compiler.run_compile(settings, backend=FakeBackend(default=reply), now=1_800_000_000)
    assert report.status == "compiled"
    assert held and all(held)


# ---------------------------------------------------------------- fixtures


import pytest  # noqa: E402


@pytest.fixture
def kb_root(root):
    write_article(
        root,
        "concepts/advisory-locks",
        title="Postgres advisory locks",
        body="We switched the job queue to Postgres advisory locks; take "
        "pg_try_advisory_lock per job id and release on commit. " + FILLER,
    )
    return root


# ---------------------------------------------------------------- CLI: schedule


def test_schedule_cron_hint_is_said_once(root, capsys):
    from pipeline.cli import main

    assert main(["--root", str(root), "schedule", "cron"]) == 0
    err = capsys.readouterr().err
    assert err.count("memc schedule cron --install") == 1, err


# ---------------------------------------------------------------- extractive query


def test_extractive_refiled_answer_does_not_quote_its_own_question(kb_root, settings):
    """Asking again with --file-back must not turn the filed answer into a quote of itself."""
    q = "how do we take postgres advisory locks per job?"
    first = query.run_query(settings, q, file_back=True)
    second = query.run_query(settings, q, file_back=True)
    assert first.filed == second.filed
    assert "\u201c**Question:**" not in second.answer
    assert second.answer.count("Extractive answer (no language model)") == 1
    body = wiki.load_article(settings.paths.knowledge, second.filed).body
    assert "pg_try_advisory_lock" in body
