"""`memc history` and `memc undo` with real git, and every command with git absent."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from pipeline import compiler, state
from pipeline.cli import main
from pipeline.config import load_settings
from tests.fakes import FakeBackend
from tests.helpers import T0, USER_LINES, add_recorded_entry, commits, git


@pytest.fixture
def vs(tmp_path):
    root = tmp_path / "v"
    assert main(["--root", str(root), "init"]) == 0
    return load_settings(root)


def compile_pages(s, pages: dict[str, str], eid: str, now: float):
    """One compile whose reply writes every page in ``pages`` ({key: body})."""
    add_recorded_entry(s, eid, f"entry {eid}", f"facts of {eid}")

    def reply(request):
        return {
            "articles": [
                {"path": k, "title": k.split("/")[1], "summary": k, "body": b, "sources": []}
                for k, b in pages.items()
            ]
        }

    report = compiler.run_compile(s, backend=FakeBackend(default=reply), clock=lambda: now)
    assert report.status == "compiled", report.message
    return report


def pending(s) -> set[str]:
    conn = state.connect(s.paths.state_db)
    rows = conn.execute("SELECT id FROM entries WHERE compiled_at IS NULL").fetchall()
    conn.close()
    return {r[0] for r in rows}


def test_history_of_a_page_and_of_the_root(vs, capsys):
    compile_pages(vs, {"concepts/a": "A v1."}, "a" * 12, T0)
    page = vs.paths.knowledge / "concepts" / "a.md"
    page.write_text(page.read_text() + "\nmine\n")
    compile_pages(vs, {"concepts/b": "B."}, "b" * 12, T0 + 100)  # commits the edit first
    capsys.readouterr()
    assert main(["--root", str(vs.root), "history", "concepts/a", "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [v["by"] for v in versions] == ["user", "memc"]
    assert versions[0]["author"] == "Test User <user@example.test>"
    assert versions[1]["subject"] == "compile: 1 entry -> created concepts/a"
    assert versions[0]["files"] == [{"path": "knowledge/concepts/a.md", "added": 2, "removed": 0}]
    assert main(["--root", str(vs.root), "history", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "compile: 1 entry -> created concepts/b" in out and "you (Test User" in out
    subjects = [ln for ln in out.splitlines() if ln.startswith("    ") and ln[4] != " "]
    assert len(subjects) == 2  # two versions, one subject line each
    assert main(["--root", str(vs.root), "history", "no-such-page"]) == 2


def test_undo_round_trip(vs, capsys):
    compile_pages(vs, {"concepts/keep": "Keep v1."}, "1" * 12, T0)
    compile_pages(vs, {"concepts/new": "New page.", "concepts/keep": "Keep v2."}, "2" * 12, T0 + 1)
    other = vs.paths.knowledge / "concepts" / "other.md"
    other.write_text("---\ntitle: Other\n---\n\n" + USER_LINES[0] + "\n")  # a later user edit
    assert "2" * 12 not in pending(vs)
    capsys.readouterr()
    assert main(["--root", str(vs.root), "undo", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "delete knowledge/concepts/new.md" in out and "restore knowledge/concepts/keep.md" in out
    k = vs.paths.knowledge
    assert not (k / "concepts" / "new.md").exists()  # the created page is gone
    keep = (k / "concepts" / "keep.md").read_text()
    assert "Keep v1." in keep and "Keep v2." not in keep  # the updated page is back
    assert USER_LINES[0] in other.read_text()  # the later user edit is kept
    assert "concepts/new" not in (k / "index.md").read_text()
    assert "2" * 12 in pending(vs) and "1" * 12 not in pending(vs)  # its entries: pending
    subjects = [c[2] for c in commits(vs.root)]
    assert subjects[0] == "undo: compile: 1 entry -> created concepts/new; updated concepts/keep"
    assert subjects[1].startswith("edit: knowledge/concepts/other.md")
    assert "Memc-Reverts: " in git(vs.root, "log", "-1", "--format=%b")
    assert not git(vs.root, "status", "--porcelain", "--", "knowledge")
    # The next undo takes the batch before (the undone one is skipped).
    assert main(["--root", str(vs.root), "undo", "--yes"]) == 0
    assert not (k / "concepts" / "keep.md").exists()


def test_undo_keeps_a_later_edit_of_the_same_page_when_it_merges(vs):
    body = "Line one.\n\nLine two.\n\nLine three."
    compile_pages(vs, {"concepts/p": body}, "3" * 12, T0)
    compile_pages(vs, {"concepts/p": body.replace("one.", "one, better.")}, "4" * 12, T0 + 1)
    page = vs.paths.knowledge / "concepts" / "p.md"
    page.write_text(page.read_text().replace("Line one.\n", "Line one.\n\nMy own note.\n", 1))
    assert main(["--root", str(vs.root), "undo", "--yes"]) == 0
    text = page.read_text()
    assert "Line one." in text and "better" not in text and "My own note." in text


def test_undo_refuses_when_a_later_user_edit_conflicts(vs, capsys):
    compile_pages(vs, {"concepts/c": "Original line."}, "5" * 12, T0)
    page = vs.paths.knowledge / "concepts" / "c.md"
    page.write_text(page.read_text().replace("Original line.", "My rewrite of the line."))
    before = page.read_text()
    head = git(vs.root, "rev-parse", "HEAD")
    capsys.readouterr()
    assert main(["--root", str(vs.root), "undo", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "cannot undo" in err and "knowledge/concepts/c.md" in err
    assert "an uncommitted edit" in err and "Nothing was changed" in err
    assert page.read_text() == before and git(vs.root, "rev-parse", "HEAD") == head


def test_undo_without_yes_asks_and_a_no_changes_nothing(vs, monkeypatch, capsys):
    compile_pages(vs, {"concepts/q": "Q."}, "6" * 12, T0)
    head = git(vs.root, "rev-parse", "HEAD")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    assert main(["--root", str(vs.root), "undo"]) == 1
    out = capsys.readouterr().out
    assert "delete knowledge/concepts/q.md" in out and "Nothing changed." in out
    assert (vs.paths.knowledge / "concepts" / "q.md").exists()
    assert git(vs.root, "rev-parse", "HEAD") == head


def test_undo_refuses_a_user_commit(vs, capsys):
    compile_pages(vs, {"concepts/r": "R."}, "7" * 12, T0)
    page = vs.paths.knowledge / "concepts" / "r.md"
    page.write_text(page.read_text() + "\nmine\n")
    compile_pages(vs, {"concepts/s": "S."}, "8" * 12, T0 + 1)
    user_commit = git(vs.root, "rev-parse", "HEAD~1").strip()
    assert main(["--root", str(vs.root), "undo", user_commit, "--yes"]) == 1
    assert "is not a memc batch" in capsys.readouterr().err


def _path_without_git(tmp_path) -> str:
    """A PATH holding this Python (and nothing else), so `git` is not found."""
    bin_dir = tmp_path / "bin-no-git"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    return str(bin_dir)


def test_every_command_works_without_git(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", _path_without_git(tmp_path))
    assert shutil.which("git") is None
    root = tmp_path / "nogit"
    r = ["--root", str(root)]
    assert main([*r, "init"]) == 0
    assert "git is not installed" in capsys.readouterr().out
    assert not (root / ".git").exists() and ".memc/" in (root / ".gitignore").read_text()
    s = load_settings(root)
    compile_pages(s, {"concepts/x": "X v1."}, "9" * 12, T0)
    page = root / "knowledge" / "concepts" / "x.md"
    page.write_text(page.read_text() + "\nmine, no git\n")
    compile_pages(s, {"concepts/x": "X v2."}, "0" * 12, T0 + 100)
    assert "mine, no git" in page.read_text() and "X v2." in page.read_text()
    assert main([*r, "lint", "--structural-only", "--fix"]) in (0, 1)
    assert main([*r, "query", "what is x", "--file-back"]) == 0
    assert main([*r, "drain"]) == 0
    capsys.readouterr()
    assert main([*r, "status"]) == 0
    assert "versioned: no (git is not installed (not on PATH))" in capsys.readouterr().out
    main([*r, "doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["git"]["status"] == "warn" and "not installed" in checks["git"]["detail"]
    assert main([*r, "history"]) == 1
    assert "is not versioned (git is not installed" in capsys.readouterr().err
    assert main([*r, "undo", "--yes"]) == 1
    assert not Path(root, ".git").exists()
