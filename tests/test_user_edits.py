"""The user's words are never lost: hand edits survive compile and lint --fix, daily-log edits
and deletions are recompiled or withdrawn, and an append survives an editor's atomic save."""

from __future__ import annotations

import os

import pytest

from pipeline import compiler, daily, lint, state, wiki
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.errors import AppendLost
from tests.fakes import FakeBackend
from tests.helpers import DAY, T0, USER_LINES, add_recorded_entry, commits, git


def rewrite_reply(path: str, title: str, body_of):
    """A model that was shown the page and returns its full new body (a rewrite)."""

    def reply(request):
        related = {r["path"]: r for r in request.payload["related"]}
        return {
            "articles": [
                {
                    "path": path,
                    "title": title,
                    "summary": f"{title} summary",
                    "body": body_of(related.get(path)),
                    "sources": [e["source"] for e in request.payload["entries"]],
                }
            ]
        }

    return reply


@pytest.fixture(params=["git", "no-git"])
def any_root(request, tmp_path):
    root = tmp_path / "r"
    args = ["--root", str(root), "init"] + (["--no-git"] if request.param == "no-git" else [])
    assert main(args) == 0
    return load_settings(root)


def hand_edit(settings, key: str) -> str:
    page = settings.paths.knowledge / f"{key}.md"
    page.write_text(page.read_text() + "\n" + "\n\n".join(USER_LINES) + "\n")
    return page.read_text()


def test_hand_edit_then_compile_keeps_every_user_line(any_root):
    s = any_root
    add_recorded_entry(s, "a1a1a1a1a1a1", "Advisory locks", "pg_try_advisory_lock per job")
    first = FakeBackend(default=rewrite_reply("concepts/locks", "Locks", lambda r: "Locks v1."))
    compiler.run_compile(s, backend=first, clock=lambda: T0)
    edited = hand_edit(s, "concepts/locks")
    add_recorded_entry(s, "b1b1b1b1b1b1", "Advisory locks again", "keys are bigint")
    # The model rewrites the page it was shown and drops the user's lines.
    fake = FakeBackend(default=rewrite_reply("concepts/locks", "New title", lambda r: "Locks v2."))
    report = compiler.run_compile(s, backend=fake, clock=lambda: T0 + 3600)
    assert report.status == "compiled"
    [related] = fake.calls[0].payload["related"]
    assert related["path"] == "concepts/locks" and related["user_edited"] is True
    art = wiki.load_article(s.paths.knowledge, "concepts/locks")
    after = (s.paths.knowledge / "concepts" / "locks.md").read_text()
    body_lines = wiki.split_frontmatter(edited)[1].splitlines()
    assert all(line in after.splitlines() for line in body_lines if line.strip())
    assert "Locks v2." in art.body  # the new material is there too
    assert art.title == "Locks" and art.summary == "Locks summary"  # title and summary kept
    log = (s.paths.knowledge / "log.md").read_text()
    assert "kept every line of [[concepts/locks]] (edited by you)" in log


def test_a_clean_three_way_merge_puts_new_text_in_place(tmp_path):
    root = tmp_path / "v"
    assert main(["--root", str(root), "init"]) == 0
    s = load_settings(root)
    add_recorded_entry(s, "a8a8a8a8a8a8", "Locks", "locks")
    reply = rewrite_reply("concepts/locks", "Locks", lambda r: "Intro.\n\nLocks v1.")
    compiler.run_compile(s, backend=FakeBackend(default=reply), clock=lambda: T0)
    edited = hand_edit(s, "concepts/locks")
    add_recorded_entry(s, "b8b8b8b8b8b8", "Locks 2", "locks 2")
    # The model keeps the page it was shown and inserts a sentence after the intro.
    inserted = rewrite_reply(
        "concepts/locks", "Locks", lambda r: r["body"].replace("Intro.", "Intro.\n\nNew fact.")
    )
    compiler.run_compile(s, backend=FakeBackend(default=inserted), clock=lambda: T0 + 3600)
    body = wiki.load_article(s.paths.knowledge, "concepts/locks").body
    assert "## Update" not in body and body.index("New fact.") < body.index("Locks v1.")
    old_body = wiki.split_frontmatter(edited)[1]
    assert all(line in body.splitlines() for line in old_body.splitlines() if line.strip())


def test_a_page_memc_never_wrote_is_the_users(any_root):
    s = any_root
    page = s.paths.knowledge / "concepts" / "mine.md"
    page.write_text("---\ntitle: Mine\n---\n\nHand-written from scratch.\n")
    add_recorded_entry(s, "c1c1c1c1c1c1", "Mine", "more about mine")
    fake = FakeBackend(default=rewrite_reply("concepts/mine", "Mine", lambda r: "replaced"))
    compiler.run_compile(s, backend=fake, clock=lambda: T0)
    text = page.read_text()
    assert "Hand-written from scratch." in text and "replaced" in text


def test_memc_pages_are_still_rewritten_and_keep_lint_related(settings):
    """A page only memc wrote may be rewritten, but the ## Related backlinks lint --fix added
    survive the rewrite."""
    add_recorded_entry(settings, "d1d1d1d1d1d1", "Queue", "queue facts")
    reply = rewrite_reply("concepts/queue", "Queue", lambda r: "Queue v1.")
    compiler.run_compile(settings, backend=FakeBackend(default=reply), clock=lambda: T0)
    other = rewrite_reply("concepts/worker", "Worker", lambda r: "Uses [[concepts/queue]].")
    add_recorded_entry(settings, "e1e1e1e1e1e1", "Worker", "worker facts")
    compiler.run_compile(settings, backend=FakeBackend(default=other), clock=lambda: T0 + 100)
    fixed = lint.run_lint(settings, structural_only=True, fix=True)
    assert any("backlink" in f for f in fixed.fixed)
    queue = settings.paths.knowledge / "concepts" / "queue.md"
    assert "[[concepts/worker|Worker]]" in queue.read_text()
    add_recorded_entry(settings, "f1f1f1f1f1f1", "Queue more", "queue facts 2")
    compiler.run_compile(
        settings,
        backend=FakeBackend(
            default=rewrite_reply("concepts/queue", "Queue", lambda r: "Queue v2.")
        ),
        clock=lambda: T0 + 200,
    )
    text = queue.read_text()
    assert "Queue v2." in text and "Queue v1." not in text  # memc's own text was rewritten
    assert "## Related" in text and "[[concepts/worker|Worker]]" in text


def test_lint_fix_after_a_hand_edit_only_adds(any_root):
    s = any_root
    pages = [
        ("concepts/queue", "Q."),
        ("concepts/worker", "Links [[concepts/queue]]."),
        ("concepts/extra", "Extra."),
    ]
    for i, (key, body) in enumerate(pages):
        add_recorded_entry(s, f"{i}a2a2a2a2a2a", key, key)
        reply = rewrite_reply(key, key.split("/")[1], lambda r, body=body: body)
        compiler.run_compile(
            s, backend=FakeBackend(default=reply), clock=lambda at=T0 + i * 100: at
        )
    page = s.paths.knowledge / "concepts" / "queue.md"
    page.write_text(page.read_text() + "\nMy note links [[extra]] my way.\n")
    edited = page.read_text()
    report = lint.run_lint(s, structural_only=True, fix=True)
    after = page.read_text()
    assert all(line in after.splitlines() for line in edited.splitlines() if line.strip())
    assert "My note links [[extra]] my way." in after  # the link stays as the user wrote it
    assert "## Related" in after and "[[concepts/worker|worker]]" in after
    assert any("queue.md: 1 backlink(s) added" in f for f in report.fixed)
    again = lint.run_lint(s, structural_only=True, fix=True)
    assert not [f for f in again.fixed if "queue" in f]


def test_edited_daily_entry_is_recompiled(settings):
    add_recorded_entry(settings, "a3a3a3a3a3a3", "Queue", "original fact")
    fake = FakeBackend(default=rewrite_reply("concepts/q", "Q", lambda r: "Q"))
    compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    path = settings.paths.daily / f"{DAY}.md"
    path.write_text(path.read_text().replace("original fact", "corrected fact"))
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0 + 3600)
    assert report.entries_compiled == 1
    sent = fake.calls[-1].payload["entries"]
    assert [e["id"] for e in sent] == ["a3a3a3a3a3a3"] and "corrected fact" in sent[0]["text"]
    assert any("was edited" in n for n in report.extra["daily_changes"])
    again = compiler.run_compile(settings, backend=fake, clock=lambda: T0 + 7200)
    assert again.status == "nothing"  # recompiled once, then compiled again


def test_deleted_daily_entry_is_withdrawn_not_marked_compiled(settings):
    add_recorded_entry(settings, "a4a4a4a4a4a4", "Keep", "kept")
    add_recorded_entry(settings, "b4b4b4b4b4b4", "Drop", "dropped by the user")
    path = settings.paths.daily / f"{DAY}.md"
    kept = [e for e in daily.read_entries(settings.paths.daily, DAY) if e.id == "a4a4a4a4a4a4"]
    path.write_text(f"# Daily Log: {DAY}\n\n" + kept[0].text)
    fake = FakeBackend(default=rewrite_reply("concepts/k", "K", lambda r: "K"))
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    assert [e["id"] for e in fake.calls[0].payload["entries"]] == ["a4a4a4a4a4a4"]
    conn = state.connect(settings.paths.state_db)
    row = conn.execute(
        "SELECT compiled_at, withdrawn_at FROM entries WHERE id='b4b4b4b4b4b4'"
    ).fetchone()
    conn.close()
    assert row[0] is None and row[1] is not None
    assert any("b4b4b4b4b4b4" in n and "withdrawn" in n for n in report.extra["daily_changes"])
    assert "withdrawn" in (settings.paths.knowledge / "log.md").read_text()


def _editor_save(path, text):
    tmp = path.with_name(path.name + ".editor-tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_an_append_during_an_editors_atomic_save_is_not_lost(settings, monkeypatch):
    path = settings.paths.daily / f"{DAY}.md"
    add_recorded_entry(settings, "a5a5a5a5a5a5", "First", "first")
    real_write = os.write
    saved = []

    def write(fd, data):
        if b"b5b5b5b5b5b5" in data and not saved:  # the editor saves right under our append
            saved.append(True)
            _editor_save(path, path.read_text() + "\nA line the user typed.\n")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    add_recorded_entry(settings, "b5b5b5b5b5b5", "Second", "second")
    monkeypatch.setattr(os, "write", real_write)
    text = path.read_text()
    assert saved and "A line the user typed." in text
    assert [e.id for e in daily.read_entries(settings.paths.daily, DAY)] == [
        "a5a5a5a5a5a5",
        "b5b5b5b5b5b5",
    ]


def test_an_append_that_keeps_losing_fails_loudly(settings, monkeypatch):
    path = settings.paths.daily / f"{DAY}.md"
    add_recorded_entry(settings, "a6a6a6a6a6a6", "First", "first")
    real_write = os.write

    def write(fd, data):
        if b"b6b6b6b6b6b6" in data:
            _editor_save(path, path.read_text().split("### 10:00 · acme · Second")[0])
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(AppendLost, match="close it in the editor and run `memc retry`"):
        add_recorded_entry(settings, "b6b6b6b6b6b6", "Second", "second")


def test_user_edit_and_memc_merge_are_separate_commits(tmp_path):
    root = tmp_path / "v"
    assert main(["--root", str(root), "init"]) == 0
    s = load_settings(root)
    add_recorded_entry(s, "a7a7a7a7a7a7", "Locks", "locks")
    reply = rewrite_reply("concepts/locks", "Locks", lambda r: "Locks v1.")
    compiler.run_compile(s, backend=FakeBackend(default=reply), clock=lambda: T0)
    hand_edit(s, "concepts/locks")
    add_recorded_entry(s, "b7b7b7b7b7b7", "Locks 2", "locks 2")
    reply2 = rewrite_reply("concepts/locks", "Locks", lambda r: "Locks v2.")
    compiler.run_compile(s, backend=FakeBackend(default=reply2), clock=lambda: T0 + 3600)
    subjects = [c[2] for c in commits(root)]
    assert subjects[0].startswith("compile: 1 entry") and subjects[1].startswith("edit: ")
    user_version = git(root, "show", "HEAD~1:knowledge/concepts/locks.md")
    assert USER_LINES[0] in user_version and "Locks v2." not in user_version
