"""`memc sync` and `memc init --from` with real git: two roots and a local bare remote (file://).

Daily logs union entry by entry, a knowledge page both compiled takes the remote's version and
this host's entries compile into it again, index.md is regenerated, state.db and search.db
catch up, the remote is remembered, and failures (unreachable, refused, secret, .memc) exit 1
with one line and lose nothing."""

from __future__ import annotations

import json
import subprocess

import pytest

from pipeline import compiler, state
from pipeline.cli import main
from pipeline.config import load_settings
from tests.helpers import (
    CONFLICT_MARKERS,
    DAY,
    all_entries,
    bare_remote,
    distil_entry,
    git,
    sync_root,
    tree_files,
)
from tests.helpers import memc_sync as sync


def compile_now(settings):
    return compiler.run_compile(load_settings(settings.root))


@pytest.fixture
def url(tmp_path):
    return bare_remote(tmp_path)


@pytest.fixture
def alpha(tmp_path):
    return sync_root(tmp_path, "alpha")


@pytest.fixture
def beta(tmp_path):
    return sync_root(tmp_path, "beta")


def test_first_sync_pushes_and_remembers_the_remote(alpha, url, capsys):
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    assert sync(alpha, "--remote", url) == 0
    assert "pushed" in capsys.readouterr().out
    assert load_settings(alpha.root).sync_remote == url
    assert git(alpha.root, "remote", "get-url", "origin").strip() == url
    remote = url.removeprefix("file://")
    assert git(remote, "rev-parse", "HEAD") == git(alpha.root, "rev-parse", "HEAD")
    assert sync(alpha, "--json") == 0  # remembered: no --remote needed
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "up-to-date" and report["pushed"] == 0
    conn = state.connect(alpha.paths.state_db)
    from pipeline.sync import last_sync

    assert last_sync(conn)["status"] == "up-to-date"


def test_a_remote_that_never_worked_is_not_remembered(alpha, url, tmp_path, capsys):
    bad = f"file://{tmp_path}/no-such.git"
    assert sync(alpha, "--remote", bad) == 1
    settings = load_settings(alpha.root)
    assert settings.sync_remote is None and "origin" not in git(alpha.root, "remote")
    assert sync(alpha, "--remote", url) == 0  # the right one is kept once it worked
    assert sync(alpha, "--remote", bad) == 1
    assert load_settings(alpha.root).sync_remote == url
    assert git(alpha.root, "remote", "get-url", "origin").strip() == url


def test_no_remote_known_is_a_usage_error(alpha, capsys):
    assert sync(alpha) == 2
    assert "memc sync --remote URL" in capsys.readouterr().err


def test_concurrent_compiles_of_one_page_converge_with_every_entry(alpha, beta, url):
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")
    assert compile_now(alpha).status == compile_now(beta).status == "compiled"
    assert sync(alpha, "--remote", url) == 0
    assert sync(beta, "--remote", url) == 0  # unrelated histories; concepts/acme.md clashes
    page = beta.root / "knowledge/concepts/acme.md"
    assert "Alpha one" in page.read_text() and "Beta one" not in page.read_text()
    conn = state.connect(beta.paths.state_db)
    assert [e.id for e in compiler.select_entries(beta, conn)] == ["b00000000001"]
    assert not (beta.root / ".compiled").exists()
    assert "b00000000001" not in (beta.root / "daily/.compiled/beta.txt").read_text()
    assert compile_now(beta).status == "compiled"  # this host's entry goes back into the page
    assert sync(beta) == 0 and sync(alpha) == 0
    assert tree_files(alpha.root, "knowledge") == tree_files(beta.root, "knowledge")
    assert tree_files(alpha.root, "daily") == tree_files(beta.root, "daily")
    text = page.read_text()
    assert "Alpha one" in text and "Beta one" in text
    for root in (alpha.root, beta.root):
        assert sorted(e.id for e in all_entries(root)) == ["a00000000001", "b00000000001"]
        for rel, data in {**tree_files(root, "daily"), **tree_files(root, "knowledge")}.items():
            assert not any(m in data.decode() for m in CONFLICT_MARKERS), rel
        assert not git(root, "status", "--porcelain")
    # alpha's state.db learned beta's entry as beta's, compiled (beta's record says so)
    conn = state.connect(alpha.paths.state_db)
    row = conn.execute("SELECT host, compiled_at FROM entries WHERE id='b00000000001'").fetchone()
    assert row[0] == "beta" and row[1] is not None
    assert compiler.select_entries(alpha, conn) == []
    index = (alpha.root / "knowledge/index.md").read_text()
    assert "[[concepts/acme|" in index


def test_a_machine_without_a_git_identity_still_merges(alpha, beta, url, monkeypatch):
    """A fresh machine with no user.name/email: the merge commit falls back to memc's identity
    (as memc's own commits do) instead of failing the sync."""
    for who in ("AUTHOR", "COMMITTER"):
        for key in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{who}_{key}", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    subprocess.run(["git", "config", "--global", "user.useConfigOnly", "true"], check=True)
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")
    assert sync(alpha, "--remote", url) == 0
    assert sync(beta, "--remote", url) == 0  # diverged: a true merge, which needs an identity
    assert sorted(e.id for e in all_entries(beta.root)) == ["a00000000001", "b00000000001"]
    assert not git(beta.root, "status", "--porcelain")


def test_a_page_you_edited_keeps_your_lines_and_gains_the_remote_text(alpha, beta, url):
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    compile_now(alpha)
    assert sync(alpha, "--remote", url) == 0
    assert sync(beta, "--remote", url) == 0
    distil_entry(alpha, "a00000000002", "Alpha two", "Fact alpha-two")
    compile_now(alpha)
    assert sync(alpha) == 0
    page = beta.root / "knowledge/concepts/acme.md"
    page.write_text(page.read_text().replace("Alpha one", "Alpha one (my note: check this)"))
    assert sync(beta) == 0
    text = page.read_text()
    assert "Alpha one (my note: check this)" in text and "Alpha two" in text
    assert not any(m in text for m in CONFLICT_MARKERS)
    authors = git(beta.root, "log", "--format=%an", "--", "knowledge/concepts/acme.md").split()
    assert "Test" in authors  # the edit was committed as the person, before the merge


def test_a_page_a_person_edited_stays_theirs_on_every_root(alpha, beta, url):
    """beta's person edits a page, then beta's memc compiles into it (memc's commit is the
    newest): alpha must still know the page as one a person edited."""
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    compile_now(alpha)
    assert sync(alpha, "--remote", url) == 0 and sync(beta, "--remote", url) == 0
    page = beta.root / "knowledge/concepts/acme.md"
    page.write_text(page.read_text() + "\nMy own line about acme.\n")
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")  # commits the edit first
    assert compile_now(beta).status == "compiled"
    assert sync(beta) == 0 and sync(alpha) == 0
    for settings in (alpha, beta):
        conn = state.connect(settings.paths.state_db)
        row = conn.execute(
            "SELECT user_edited FROM pages WHERE path='knowledge/concepts/acme.md'"
        ).fetchone()
        conn.close()
        assert row is not None and row[0] == 1, settings.root.name


def test_a_refusing_remote_exits_1_and_keeps_everything(tmp_path, alpha, capsys):
    url = bare_remote(tmp_path, "ro.git", refuse="read-only mirror")
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    head = git(alpha.root, "rev-parse", "HEAD")
    assert sync(alpha, "--remote", url) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the push" in err[0] and "read-only mirror" in err[0]
    assert git(alpha.root, "rev-parse", "HEAD") == head
    assert not git(alpha.root, "status", "--porcelain")
    assert [e.id for e in all_entries(alpha.root)] == ["a00000000001"]
    from pipeline.sync import last_sync

    assert last_sync(state.connect(alpha.paths.state_db))["status"] == "failed"


def test_an_unreachable_remote_exits_1_with_a_reason(tmp_path, alpha, capsys):
    assert sync(alpha, "--remote", f"file://{tmp_path}/nowhere.git") == 1
    err = capsys.readouterr().err
    assert "not a git repository" in err or "does not appear" in err
    assert sync(alpha, "--remote", f"file://{tmp_path}/nowhere.git", "--json") == 1
    assert json.loads(capsys.readouterr().out)["status"] == "failed"


def test_a_secret_in_an_outgoing_commit_is_not_pushed(alpha, url, capsys):
    assert sync(alpha, "--remote", url) == 0
    note = alpha.root / "knowledge" / "concepts" / "mine.md"
    key = "sk-ant-api03-" + "Q7w" * 30
    note.write_text(f"---\ntitle: Mine\n---\nline one\nmy key {key}\n")
    git(alpha.root, "add", "knowledge/concepts/mine.md")
    git(alpha.root, "commit", "-q", "--no-verify", "-m", "my notes")  # by hand, past memc's check
    note.write_text("---\ntitle: Mine\n---\nline one\n")  # removed again: history still has it
    git(alpha.root, "commit", "-q", "-am", "drop key")
    capsys.readouterr()
    assert sync(alpha) == 1
    err = capsys.readouterr().err
    assert "not pushed: knowledge/concepts/mine.md:5" in err
    remote = url.removeprefix("file://")
    assert key not in git(remote, "log", "-p", "--all")
    assert "my notes" in git(alpha.root, "log", "--format=%s")  # local commits kept


@pytest.mark.parametrize("name", ["Café notes.md", 'tab\tand "quotes".md'])
def test_a_secret_in_a_page_with_an_unusual_name_is_not_pushed(alpha, url, capsys, name):
    """git C-quotes such names in diffs (`+++ "b/knowledge/Caf\\303\\251 notes.md"`): the scan
    reads them, instead of skipping every line of the file."""
    assert sync(alpha, "--remote", url) == 0
    note = alpha.root / "knowledge" / "concepts" / name
    key = "AKIA" + "Q7WZ" * 4
    note.write_text(f"---\ntitle: Mine\n---\nmy key {key} here\n")
    git(alpha.root, "add", "-A")
    git(alpha.root, "commit", "-q", "--no-verify", "-m", "my notes")
    capsys.readouterr()
    assert sync(alpha) == 1
    assert f"not pushed: knowledge/concepts/{name}:4" in capsys.readouterr().err
    assert key not in git(url.removeprefix("file://"), "log", "-p", "--all")


def test_a_memc_path_with_an_unusual_name_is_not_pushed(alpha, url, capsys):
    assert sync(alpha, "--remote", url) == 0
    odd = alpha.root / ".memc" / "spool" / "tab\there.jsonl"
    odd.write_text("raw session text\n")
    git(alpha.root, "add", "-f", str(odd))
    git(alpha.root, "commit", "-q", "--no-verify", "-m", "oops")
    capsys.readouterr()
    assert sync(alpha) == 1
    assert "touches .memc/spool/tab\there.jsonl" in capsys.readouterr().err


def test_an_edit_that_cannot_be_committed_is_the_reason_given(alpha, url, capsys):
    assert sync(alpha, "--remote", url) == 0
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    page = alpha.root / "knowledge" / "concepts" / "mine.md"
    page.write_text(f"---\ntitle: Mine\n---\nThe deploy key is {key} ok\n")
    capsys.readouterr()
    assert sync(alpha) == 1
    err = capsys.readouterr().err
    assert "could not be committed" in err and "knowledge/concepts/mine.md:4" in err
    assert key in page.read_text() and key not in git(url.removeprefix("file://"), "log", "-p")


def test_init_from_starts_with_the_shared_history(tmp_path, alpha, url, capsys):
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    compile_now(alpha)
    assert sync(alpha, "--remote", url) == 0
    gamma = sync_root(tmp_path, "gamma", from_url=url)
    assert "cloned" in capsys.readouterr().out
    assert gamma.sync_remote == url
    assert (gamma.root / "knowledge/concepts/acme.md").read_text() == (
        alpha.root / "knowledge/concepts/acme.md"
    ).read_text()
    from pipeline import dailymerge

    assert dailymerge.registered(gamma.root)
    conn = state.connect(gamma.paths.state_db)
    row = conn.execute("SELECT host, compiled_at FROM entries WHERE id='a00000000001'").fetchone()
    assert row[0] == "alpha" and row[1] is not None  # known, compiled by alpha: not pending here
    assert compiler.select_entries(gamma, conn) == []
    from pipeline.search import search

    assert search(gamma.paths, "Alpha", limit=5)  # search.db caught up
    distil_entry(gamma, "c00000000001", "Gamma one", "Fact gamma-one", day=DAY)
    assert sync(gamma) == 0 and sync(alpha) == 0
    assert sorted(e.id for e in all_entries(alpha.root)) == ["a00000000001", "c00000000001"]


def test_init_from_on_a_machine_with_the_same_host_name_takes_another(
    tmp_path, alpha, url, capsys, monkeypatch
):
    """Two laptops both called `alpha`: the second must not take the first one's entries for
    its own (each would compile the other's)."""
    from pipeline import hostname

    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")  # not compiled yet
    assert sync(alpha, "--remote", url) == 0
    monkeypatch.delenv("MEMC_HOST", raising=False)
    monkeypatch.setattr(hostname, "host_name", lambda environ=None: "alpha")
    twin = tmp_path / "twin"
    assert main(["--root", str(twin), "init", "--from", url]) == 0
    assert "this machine is 'alpha-2'" in capsys.readouterr().out
    settings = load_settings(twin)
    assert settings.this_host == "alpha-2"
    conn = state.connect(settings.paths.state_db)
    assert compiler.select_entries(settings, conn) == []  # alpha's entry stays alpha's
    conn.close()


def test_init_from_refuses_a_folder_that_is_not_empty(tmp_path, url, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.md").write_text("mine\n")
    assert main(["--root", str(tmp_path / "full"), "init", "--from", url]) == 2
    assert "new or empty folder" in capsys.readouterr().err
    assert (tmp_path / "full" / "notes.md").read_text() == "mine\n"


def test_sync_is_refused_on_an_unversioned_root(tmp_path, url, capsys):
    root = tmp_path / "plain"
    assert main(["--root", str(root), "init", "--no-git"]) == 0
    assert main(["--root", str(root), "sync", "--remote", url]) == 1
    assert "not versioned" in capsys.readouterr().err


def test_outgoing_diff_parser_reads_merges_and_plain_commits():
    from pipeline.vcsremote import parse_added

    diff = (
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +2,2 @@\n+two\n+three\n"
        "diff --cc y\n--- a/y\n+++ b/y\n@@@ -1,1 -1,1 +1,2 @@@\n  same\n++resolved\n"
    )
    assert parse_added(diff) == [("x", 2, "two"), ("x", 3, "three"), ("y", 2, "resolved")]


def _clashing_notes(alpha, beta, url):
    """Both roots commit their own notes.txt (a file of the person's, not memc's); alpha's is
    pushed first, so beta's next sync meets a conflict memc must not resolve."""
    assert sync(alpha, "--remote", url) == 0
    assert sync(beta, "--remote", url) == 0
    for settings, text in ((alpha, "alpha's words\n"), (beta, "beta's words\n")):
        (settings.root / "notes.txt").write_text(text)
        git(settings.root, "add", "notes.txt")
        git(settings.root, "commit", "-q", "-m", "notes")
    assert sync(alpha) == 0


def test_sync_leaves_no_merge_in_progress_when_a_conflict_is_not_memcs(alpha, beta, url, capsys):
    _clashing_notes(alpha, beta, url)
    head = git(beta.root, "rev-parse", "HEAD")
    capsys.readouterr()
    assert sync(beta) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert git(beta.root, "rev-parse", "HEAD") == head
    assert not (beta.root / ".git" / "MERGE_HEAD").exists()
    assert (beta.root / "notes.txt").read_text() == "beta's words\n"
    assert subprocess.run(["git", "-C", str(beta.root), "diff", "--quiet"]).returncode == 0


def test_a_merge_a_person_has_in_progress_is_left_alone(alpha, beta, url, capsys):
    _clashing_notes(alpha, beta, url)
    git(beta.root, "fetch", "-q", "origin")
    branch = git(beta.root, "symbolic-ref", "--short", "HEAD").strip()
    subprocess.run(["git", "-C", str(beta.root), "merge", f"origin/{branch}"], capture_output=True)
    assert (beta.root / ".git" / "MERGE_HEAD").exists()  # the person's own merge, conflicted
    capsys.readouterr()
    assert sync(beta) == 1
    assert "git merge is in progress" in capsys.readouterr().err
    assert (beta.root / ".git" / "MERGE_HEAD").exists()


def _killed_mid_merge(alpha, beta, url):
    """beta as a sync killed mid-merge leaves it: a merge in progress and memc's marker."""
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    compile_now(alpha)
    assert sync(alpha, "--remote", url) == 0
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")
    compile_now(beta)
    before = git(beta.root, "rev-parse", "HEAD").strip()
    git(beta.root, "remote", "add", "origin", url)
    git(beta.root, "fetch", "-q", "origin")
    branch = git(beta.root, "symbolic-ref", "--short", "HEAD").strip()
    args = ["merge", "--no-commit", "--allow-unrelated-histories", f"origin/{branch}"]
    subprocess.run(["git", "-C", str(beta.root), *args], capture_output=True)
    assert (beta.root / ".git" / "MERGE_HEAD").exists()
    (beta.paths.memc / "sync-merging").write_text(before + "\n")


def test_a_sync_killed_mid_merge_is_undone_by_the_next_one(alpha, beta, url):
    _killed_mid_merge(alpha, beta, url)
    assert sync(beta, "--remote", url) == 0
    assert not (beta.paths.memc / "sync-merging").exists()
    assert sorted(e.id for e in all_entries(beta.root)) == ["a00000000001", "b00000000001"]
    for rel, data in tree_files(beta.root, "knowledge").items():
        assert not any(m in data.decode() for m in CONFLICT_MARKERS), rel


def test_an_abort_that_fails_keeps_the_marker_for_the_next_sync(alpha, beta, url, capsys):
    _killed_mid_merge(alpha, beta, url)
    marker = beta.paths.memc / "sync-merging"
    lock = beta.root / ".git" / "index.lock"
    lock.write_text("")  # another git process (or a crashed one) holds the index
    capsys.readouterr()
    assert sync(beta, "--remote", url) == 1
    assert "merge --abort failed" in capsys.readouterr().err
    assert marker.exists()  # still memc's merge: the next sync may abort it
    lock.unlink()
    assert sync(beta) == 0 and not marker.exists()
    assert sorted(e.id for e in all_entries(beta.root)) == ["a00000000001", "b00000000001"]


def test_a_sync_killed_after_its_merge_commit_catches_up_next_time(alpha, beta, url):
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    assert sync(alpha, "--remote", url) == 0
    assert sync(beta, "--remote", url) == 0
    distil_entry(alpha, "a00000000002", "Alpha two", "Fact alpha-two")
    assert sync(alpha) == 0
    before = git(beta.root, "rev-parse", "HEAD").strip()
    git(beta.root, "fetch", "-q", "origin")
    branch = git(beta.root, "symbolic-ref", "--short", "HEAD").strip()
    git(beta.root, "merge", "-q", "--ff-only", f"origin/{branch}")  # merged, then killed
    (beta.paths.memc / "sync-merging").write_text(before + "\n")
    assert sync(beta) == 0
    conn = state.connect(beta.paths.state_db)
    row = conn.execute("SELECT host FROM entries WHERE id='a00000000002'").fetchone()
    assert row is not None and row[0] == "alpha"
    assert not (beta.paths.memc / "sync-merging").exists()


def test_lint_leaves_another_hosts_pending_entries_to_that_host(alpha, beta, url):
    from pipeline.lint import run_lint

    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")  # beta has not compiled it
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    assert sync(beta, "--remote", url) == 0 and sync(alpha, "--remote", url) == 0
    report = run_lint(load_settings(alpha.root), structural_only=True)
    found = {(i.check, i.severity): i.detail for i in report.issues if "uncompiled" in i.check}
    assert "1 pending" in found[("uncompiled", "warning")]  # alpha's own entry
    assert "wait for beta" in found[("uncompiled_elsewhere", "info")]


def test_a_drain_appending_during_the_sync_is_committed_not_refused(alpha, beta, url, monkeypatch):
    """A drain appends to today's log between the sync's own commit and its merge (drains take
    no git lock): the sync commits that entry too and merges, instead of git refusing."""
    from pipeline import vcsremote
    from tests.helpers import add_recorded_entry

    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")
    assert sync(alpha, "--remote", url) == 0
    real_fetch = vcsremote.fetch
    appended = []

    def fetch_while_a_drain_appends(*args, **kwargs):
        if not appended:  # the drain's append lands while the sync fetches
            add_recorded_entry(beta, "b00000000002", "Beta two", "Fact beta-two")
            appended.append(True)
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(vcsremote, "fetch", fetch_while_a_drain_appends)
    assert sync(beta, "--remote", url) == 0
    ids = sorted(e.id for e in all_entries(beta.root))
    assert ids == ["a00000000001", "b00000000001", "b00000000002"]
    assert not git(beta.root, "status", "--porcelain")  # the late entry is committed
    monkeypatch.setattr(vcsremote, "fetch", real_fetch)
    assert sync(alpha) == 0
    assert sorted(e.id for e in all_entries(alpha.root)) == ids
