"""git's view of the root for status (pipeline.repostate): the last `git status` answer is reused
only while the cheap signals stand and it is younger than FULL_CHECK_S; doctor always asks git."""

from __future__ import annotations

import os

import pytest

from pipeline import repostate
from pipeline.cli import main
from pipeline.config import load_settings
from tests.helpers import git

T = 1_900_000_000.0


@pytest.fixture
def vroot(tmp_path):
    root = tmp_path / "vroot"
    assert main(["--root", str(root), "init"]) == 0
    page = root / "knowledge" / "concepts" / "mine.md"
    page.write_text("---\ntitle: Mine\n---\nfirst\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "mine")
    return load_settings(root)


def status_at(settings, now):
    return repostate.start_repo_state(settings, now)()


def test_a_new_file_is_seen_at_once_through_its_folder(vroot):
    assert status_at(vroot, T).uncommitted_user == ()
    assert repostate.cache_file(vroot.paths).is_file()
    (vroot.root / "knowledge" / "concepts" / "new.md").write_text("---\ntitle: New\n---\nx\n")
    assert status_at(vroot, T + 1).uncommitted_user == ("knowledge/concepts/new.md",)


def test_an_in_place_rewrite_is_seen_by_the_next_full_check(vroot):
    assert status_at(vroot, T).uncommitted_user == ()
    page = vroot.root / "knowledge" / "concepts" / "mine.md"
    folder_stamp = os.stat(page.parent).st_mtime_ns
    with open(page, "r+", encoding="utf-8") as handle:  # in place: the folder does not change
        handle.seek(0, os.SEEK_END)
        handle.write("another line\n")
    assert os.stat(page.parent).st_mtime_ns == folder_stamp
    assert status_at(vroot, T + 1).uncommitted_user == ()  # the documented bound: not yet
    later = T + repostate.FULL_CHECK_S + 1
    assert status_at(vroot, later).uncommitted_user == ("knowledge/concepts/mine.md",)
    assert repostate.repo_state(vroot).uncommitted_user == ("knowledge/concepts/mine.md",)


def test_doctor_always_asks_git(vroot):
    assert status_at(vroot, T).uncommitted_user == ()
    page = vroot.root / "knowledge" / "concepts" / "mine.md"
    with open(page, "a", encoding="utf-8") as handle:
        handle.write("more\n")
    assert repostate.repo_state(vroot).uncommitted_user == ("knowledge/concepts/mine.md",)


def test_a_commit_by_hand_is_seen_through_the_index(vroot):
    (vroot.root / "knowledge" / "concepts" / "new.md").write_text("---\ntitle: New\n---\nx\n")
    first = status_at(vroot, T)
    assert first.uncommitted_user == ("knowledge/concepts/new.md",)
    git(vroot.root, "add", "-A")
    git(vroot.root, "commit", "-q", "-m", "new")
    second = status_at(vroot, T + 1)
    assert second.uncommitted_user == () and second.head != first.head


@pytest.mark.parametrize("junk", ["", "{not json", '{"version": 1, "signature": 3}', "[]"])
def test_a_damaged_cache_is_a_full_check(vroot, junk):
    status_at(vroot, T)
    (vroot.root / "knowledge" / "concepts" / "new.md").write_text("---\ntitle: New\n---\nx\n")
    repostate.cache_file(vroot.paths).write_text(junk)
    assert status_at(vroot, T + 1).uncommitted_user == ("knowledge/concepts/new.md",)


def test_a_cached_answer_matches_git(vroot):
    (vroot.root / "daily" / "2026-01-01.md").write_text("# Daily Log: 2026-01-01\n\nmine\n")
    fresh = status_at(vroot, T)
    cached = status_at(vroot, T + 1)
    assert cached == fresh == repostate.repo_state(vroot)
