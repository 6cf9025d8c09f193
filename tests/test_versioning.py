"""The versioned data root, with real git in tmp_path: init, one commit per batch, user edits
committed first and as the user, nothing under .memc/ ever committed, the secret check."""

from __future__ import annotations

import subprocess

import pytest

from pipeline import compiler
from pipeline.cli import main
from pipeline.config import load_settings
from tests.fakes import FakeBackend
from tests.helpers import T0, add_recorded_entry, commits, git


@pytest.fixture
def vroot(tmp_path):
    root = tmp_path / "vroot"
    assert main(["--root", str(root), "init"]) == 0
    return root


@pytest.fixture
def vsettings(vroot):
    return load_settings(vroot)


def page_reply(path: str, title: str, body: str):
    def reply(request):
        return {
            "articles": [
                {
                    "path": path,
                    "title": title,
                    "summary": title,
                    "body": body,
                    "sources": [e["source"] for e in request.payload["entries"]],
                }
            ]
        }

    return reply


def test_init_creates_repo_gitignore_and_one_commit(vroot, capsys):
    assert (vroot / ".git").is_dir()
    assert ".memc/" in (vroot / ".gitignore").read_text()
    assert git(vroot, "ls-files").split() == [".gitattributes", ".gitignore"]
    assert "daily/*.md merge=memc-daily" in (vroot / ".gitattributes").read_text()
    assert "merge-daily %O %A %B" in git(vroot, "config", "--local", "merge.memc-daily.driver")
    [(author, _, subject, body)] = commits(vroot)
    assert author == "memc" and subject.startswith("init:") and "Memc-Op: init" in body
    assert main(["--root", str(vroot), "init"]) == 0  # again: reused, no new commit
    assert "reused the existing git repository" in capsys.readouterr().out
    assert len(commits(vroot)) == 1


def test_init_reuses_existing_repo_and_commits_its_pages_as_the_user(tmp_path):
    root = tmp_path / "vault"
    (root / "knowledge" / "concepts").mkdir(parents=True)
    (root / "knowledge" / "concepts" / "mine.md").write_text("---\ntitle: Mine\n---\nmy note\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    assert main(["--root", str(root), "init"]) == 0
    log = commits(root)
    assert [c[2].split(":")[0] for c in log] == ["init", "edit"]
    assert log[1][0] == "Test User" and "knowledge/concepts/mine.md" in log[1][2]


def test_init_no_git_and_git_false_opt_out(tmp_path):
    a = tmp_path / "a"
    assert main(["--root", str(a), "init", "--no-git"]) == 0
    assert not (a / ".git").exists() and ".memc/" in (a / ".gitignore").read_text()
    b = tmp_path / "b"
    (b / ".memc").mkdir(parents=True)
    (b / ".memc" / "config.toml").write_text("git = false\n")
    assert main(["--root", str(b), "init"]) == 0
    assert not (b / ".git").exists()


def test_compile_is_one_commit_by_memc_with_the_user_as_committer(vsettings, vroot):
    add_recorded_entry(vsettings, "a1b2c3d4e5f6", "Queue locks", "advisory locks for the queue")
    add_recorded_entry(vsettings, "b1b2c3d4e5f6", "Queue retries", "retries with backoff")
    fake = FakeBackend(default=page_reply("concepts/queue", "Queue", "How the queue works."))
    report = compiler.run_compile(vsettings, backend=fake, clock=lambda: T0)
    assert report.status == "compiled" and report.extra["commit"]
    author, committer, subject, body = commits(vroot)[0]
    assert (author, committer) == ("memc", "Test User")
    assert subject == "compile: 2 entries -> created concepts/queue"
    assert "Memc-Op: compile" in body and "Memc-Entries: a1b2c3d4e5f6 b1b2c3d4e5f6" in body
    files = git(vroot, "show", "--name-only", "--format=", "HEAD").split()
    record = f"daily/.compiled/{vsettings.this_host}.txt"  # this host's compiled-entry record
    assert set(files) == {
        "knowledge/concepts/queue.md", "knowledge/index.md", "knowledge/log.md", record
    }  # fmt: skip
    lines = (vroot / record).read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["a1b2c3d4e5f6", "b1b2c3d4e5f6"]
    assert not git(vroot, "status", "--porcelain", "--", "knowledge", record)


def test_drain_appends_are_one_commit_per_drain(vsettings, vroot):
    from pipeline.drain import drain
    from tests.helpers import ENTRY, make_job, transcript_lines

    for name in ("s1", "s2"):
        make_job(
            vroot,
            name,
            transcript_lines(name, [("We decided to use advisory locks.", "done")]),
            captured_at="2026-11-20T14:00:00+00:00",
        )
    report = drain(vsettings, backend=FakeBackend(default=ENTRY), run_after=False)
    assert report.entries == 2
    author, _, subject, _ = commits(vroot)[0]
    assert author == "memc" and subject == "drain: 2 entries from 2 job(s) -> daily/2026-11-20.md"
    again = drain(vsettings, backend=FakeBackend(), run_after=False)
    assert again.processed == 0 and len(commits(vroot)) == 2  # an idle drain commits nothing


def test_user_edits_are_committed_first_as_the_user(vsettings, vroot):
    add_recorded_entry(vsettings, "d1b2c3d4e5f6", "Queue", "first")
    fake = FakeBackend(default=page_reply("concepts/queue", "Queue", "Queue body."))
    compiler.run_compile(vsettings, backend=fake, clock=lambda: T0)
    page = vroot / "knowledge" / "concepts" / "queue.md"
    page.write_text(page.read_text() + "\nMy own note, keep it.\n")
    (vroot / "knowledge" / "concepts" / "notes.md").write_text("---\ntitle: Notes\n---\nmine\n")
    add_recorded_entry(vsettings, "e1b2c3d4e5f6", "Queue again", "second")
    compiler.run_compile(vsettings, backend=fake, clock=lambda: T0 + 3600)
    (a2, _, s2, _), (a1, c1, s1, _) = commits(vroot)[:2]
    assert a1 == c1 == "Test User" and s1.startswith("edit: ")
    assert set(git(vroot, "show", "--name-only", "--format=", "HEAD~1").split()) == {
        "knowledge/concepts/queue.md",
        "knowledge/concepts/notes.md",
    }
    assert a2 == "memc" and s2.startswith("compile: 1 entry")
    assert "My own note, keep it." in git(vroot, "show", "HEAD~1:knowledge/concepts/queue.md")


def test_memc_folder_is_never_committed(vsettings, vroot):
    add_recorded_entry(vsettings, "f1b2c3d4e5f6", "Queue", "x")
    (vroot / ".memc" / "spool" / "job.jsonl").write_text('{"raw": "sk-ant-api03-secret"}\n')
    compiler.run_compile(
        vsettings, backend=FakeBackend(default=page_reply("concepts/q", "Q", "b")), clock=lambda: T0
    )
    git(vroot, "add", "-A")  # even the user's own `git add -A`
    tracked = git(vroot, "ls-files").split() + git(vroot, "diff", "--cached", "--name-only").split()
    assert tracked and not [p for p in tracked if p.startswith(".memc")]


def test_a_planted_secret_is_refused_by_the_commit_check(vsettings, vroot):
    from pipeline import versioning

    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    page = vroot / "knowledge" / "concepts" / "leak.md"
    page.write_text(f"---\ntitle: Leak\n---\nThe deploy key is {key} ok\n")
    before = len(commits(vroot))
    with versioning.batch(vsettings, "compile") as vb:
        pass
    assert "knowledge/concepts/leak.md:4" in vb.error and "secret" in vb.error
    assert len(commits(vroot)) == before
    assert not git(vroot, "diff", "--cached", "--name-only")  # nothing left staged
    assert key in page.read_text()  # the file itself is untouched


def test_a_secret_in_a_page_git_quotes_the_name_of_is_refused(vsettings, vroot):
    from pipeline import versioning

    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    page = vroot / "knowledge" / "concepts" / "Café notes.md"  # `+++ "b/...Caf\303\251..."`
    page.write_text(f"---\ntitle: Leak\n---\nThe deploy key is {key} ok\n")
    with versioning.batch(vsettings, "compile") as vb:
        pass
    assert vb.error and "knowledge/concepts/Café notes.md:4" in vb.error
    assert key not in git(vroot, "log", "-p", "--all")


def test_without_a_git_identity_memc_still_commits(tmp_path, monkeypatch):
    for key in ("NAME", "EMAIL"):
        monkeypatch.delenv(f"GIT_AUTHOR_{key}")
        monkeypatch.delenv(f"GIT_COMMITTER_{key}")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tuseConfigOnly = true\n")  # git may not guess one either
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    root = tmp_path / "anon"
    assert main(["--root", str(root), "init"]) == 0
    s = load_settings(root)
    (root / "knowledge" / "concepts" / "mine.md").write_text("---\ntitle: Mine\n---\nmine\n")
    add_recorded_entry(s, "a9a9a9a9a9a9", "Anon", "anon")
    report = compiler.run_compile(
        s, backend=FakeBackend(default=page_reply("concepts/q", "Q", "q")), clock=lambda: T0
    )
    assert report.extra["commit"]
    (memc_a, memc_c, subject, _), (user_a, user_c, edit, _) = commits(root)[:2]
    assert (memc_a, memc_c) == ("memc", "memc") and subject.startswith("compile:")
    assert edit.startswith("edit: ") and user_a == user_c != "memc"


def test_init_commits_a_vault_too_big_for_one_command_line(tmp_path):
    """`memc init` of an existing vault commits its pages as the user's: thousands of paths
    (50,000 in a real vault) must not go on one git command line (E2BIG). The child runs with a
    small stack limit, which lowers the kernel's argument limit to about 256 KB."""
    import resource
    import sys

    root = tmp_path / "vault"
    folder = root / "knowledge" / "concepts"
    folder.mkdir(parents=True)
    for n in range(6000):
        (folder / f"a-rather-long-page-name-{n:05d}.md").write_text(f"---\ntitle: P{n}\n---\nx\n")

    def small_stack() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (1024 * 1024, resource.RLIM_INFINITY))

    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--root", str(root), "init"],
        capture_output=True,
        text=True,
        preexec_fn=small_stack,
    )
    assert proc.returncode == 0, proc.stderr
    assert "first commit failed" not in proc.stdout, proc.stdout
    assert len(git(root, "ls-files", "knowledge").split()) == 6000
    assert not git(root, "status", "--porcelain")
