"""Daily logs merge entry by entry (pipeline.dailymerge): the three-way rules on texts, the git
driver in real repositories (two clones of a local bare remote), and the host in entry markers."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from pipeline import daily, dailymerge, hostname
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.models import Entry
from tests.helpers import git

DAY = "2026-11-20"
HEADER = f"# Daily Log: {DAY}\n\n"


def block(n: int, time: str = "", body: str = "", host: str = "") -> str:
    return daily.render_entry(
        Entry(True, title=f"Entry {n}", context=body or f"fact number {n}"),
        entry_id=f"{n:012x}",
        time_hhmm=time or f"{10 + n % 10:02d}:{n % 60:02d}",
        project="acme",
        session_id="s1",
        event="stop",
        host=host,
    )


def ids(text: str) -> list[str]:
    return [e.id for e in daily.parse_entries(text, DAY)]


def test_both_sides_append_every_entry_kept_once_in_time_order():
    base = HEADER + block(1, "09:00")
    ours = base + block(2, "10:00") + block(4, "12:00")
    theirs = base + block(3, "11:00") + block(5, "13:00")
    merged = dailymerge.merge(base, ours, theirs)
    assert ids(merged) == [f"{n:012x}" for n in (1, 2, 3, 4, 5)]
    assert merged.startswith(HEADER) and "<<<<<<<" not in merged and ">>>>>>>" not in merged
    for n in (1, 2, 3, 4, 5):
        assert merged.count(f"fact number {n}\n") == 1


def test_theirs_adding_nothing_leaves_ours_byte_for_byte():
    base = HEADER + block(1)
    ours = base + "my own note at the end\n\n\n" + block(2)
    assert dailymerge.merge(base, ours, base) == ours
    assert dailymerge.merge(base, ours, ours) == ours


def test_one_side_edits_other_deletes_the_edit_is_kept():
    base = HEADER + block(1) + block(2)
    edited = HEADER + block(1, body="fact number 1, corrected by hand") + block(2)
    deleted = HEADER + block(2)
    for ours, theirs in ((edited, deleted), (deleted, edited)):
        merged = dailymerge.merge(base, ours, theirs)
        assert "corrected by hand" in merged and ids(merged).count(f"{1:012x}") == 1


def test_deleted_on_one_side_unchanged_on_the_other_stays_deleted():
    base = HEADER + block(1) + block(2)
    ours = HEADER + block(2)
    merged = dailymerge.merge(base, ours, base + block(3))
    assert ids(merged) == [f"{2:012x}", f"{3:012x}"]


def test_both_edit_one_entry_differently_keeps_both_words_without_markers():
    base = HEADER + block(1, body="line a\nline b\nline c")
    ours = HEADER + block(1, body="line A (mine)\nline b\nline c")
    theirs = HEADER + block(1, body="line a\nline b\nline C (theirs)")
    clean = dailymerge.merge(base, ours, theirs)  # separate lines: git merge-file merges them
    assert "line A (mine)" in clean and "line C (theirs)" in clean
    assert ids(clean) == [f"{1:012x}"] and dailymerge.EDITED_ELSEWHERE not in clean
    theirs_same_line = HEADER + block(1, body="line X (theirs)\nline b\nline c")
    kept = dailymerge.merge(base, ours, theirs_same_line)
    assert "line A (mine)" in kept and "line X (theirs)" in kept
    assert dailymerge.EDITED_ELSEWHERE in kept and ids(kept) == [f"{1:012x}"]
    assert "<<<<<<<" not in kept and "=======" not in kept


def test_add_add_with_empty_base_is_a_union():
    merged = dailymerge.merge("", HEADER + block(1), HEADER + block(2))
    assert merged.count("# Daily Log") == 1 and ids(merged) == [f"{1:012x}", f"{2:012x}"]


def test_user_text_before_the_first_entry_merges_as_the_preamble():
    base = HEADER + block(1)
    ours = f"# Daily Log: {DAY}\n\nMy plan for today.\n\n" + block(1)
    theirs = base + block(2)
    merged = dailymerge.merge(base, ours, theirs)
    assert "My plan for today." in merged and ids(merged) == [f"{1:012x}", f"{2:012x}"]


def test_random_histories_keep_exactly_the_surviving_entries():
    rng = random.Random(20261202)
    for _ in range(200):
        base_ids = rng.sample(range(1, 40), rng.randint(0, 8))
        gone_ours = {i for i in base_ids if rng.random() < 0.2}
        gone_theirs = {i for i in base_ids if rng.random() < 0.2}
        new_ours = rng.sample(range(40, 70), rng.randint(0, 5))
        new_theirs = rng.sample(range(70, 99), rng.randint(0, 5))
        base = HEADER + "".join(block(i) for i in base_ids)
        ours = HEADER + "".join(block(i) for i in base_ids + new_ours if i not in gone_ours)
        theirs = HEADER + "".join(block(i) for i in base_ids + new_theirs if i not in gone_theirs)
        merged = dailymerge.merge(base, ours, theirs)
        expect = (set(base_ids) - gone_ours - gone_theirs) | set(new_ours) | set(new_theirs)
        got = ids(merged)
        assert sorted(got) == sorted(f"{i:012x}" for i in expect)  # each exactly once
        assert dailymerge.merge(base, merged, merged) == merged


def test_merge_files_never_fails_and_writes_only_ours(tmp_path):
    base, ours, theirs = (tmp_path / n for n in ("O", "A", "B"))
    base.write_bytes(HEADER.encode())
    ours.write_bytes((HEADER + block(1)).encode() + b"\xff\xfe not utf-8\n")
    theirs.write_bytes((HEADER + block(2)).encode())
    assert dailymerge.merge_files(str(base), str(ours), str(theirs)) == 0
    result = ours.read_bytes()
    assert b"\xff\xfe not utf-8" in result  # undecodable bytes survive untouched
    assert ids(result.decode("utf-8", "replace")) == [f"{1:012x}", f"{2:012x}"]
    assert theirs.read_text() == HEADER + block(2)


def _clone(remote: Path, path: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(remote), str(path)], check=True)
    return path


def _append_commit(repo: Path, text: str, message: str) -> None:
    day_file = repo / "daily" / f"{DAY}.md"
    day_file.parent.mkdir(exist_ok=True)
    with day_file.open("a", encoding="utf-8") as handle:
        handle.write(text)
    git(repo, "add", "daily")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def two_clones(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    a = _clone(remote, tmp_path / "a")
    dailymerge.install(a)
    git(a, "add", ".gitattributes")
    _append_commit(a, HEADER + block(1, "09:00"), "day starts")
    git(a, "push", "-q", "origin", "HEAD")
    b = _clone(remote, tmp_path / "b")
    return remote, a, b


def test_real_git_merge_of_concurrent_appends_has_no_conflict(two_clones):
    _remote, a, b = two_clones
    dailymerge.install(b)
    _append_commit(a, block(2, "10:00"), "a appends")
    _append_commit(b, block(3, "11:00"), "b appends")
    git(a, "push", "-q", "origin", "HEAD")
    git(
        b,
        "pull",
        "-q",
        "--no-rebase",
        "--no-edit",
        "origin",
        git(b, "branch", "--show-current").strip(),
    )
    text = (b / "daily" / f"{DAY}.md").read_text()
    assert ids(text) == [f"{n:012x}" for n in (1, 2, 3)]
    assert "<<<<<<<" not in text and not git(b, "status", "--porcelain")


def test_without_the_driver_git_itself_conflicts(two_clones):
    """The control: the same histories conflict when the driver is not registered."""
    _remote, a, b = two_clones
    _append_commit(a, block(2, "10:00"), "a appends")
    _append_commit(b, block(3, "11:00"), "b appends")
    git(a, "push", "-q", "origin", "HEAD")
    branch = git(b, "branch", "--show-current").strip()
    proc = subprocess.run(
        ["git", "-C", str(b), "pull", "-q", "--no-rebase", "--no-edit", "origin", branch],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "<<<<<<<" in (b / "daily" / f"{DAY}.md").read_text()


def test_install_is_idempotent_and_keeps_the_users_attributes(tmp_path):
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitattributes").write_text("*.png binary\n")
    assert dailymerge.install(repo) is True
    text = (repo / ".gitattributes").read_text()
    assert text.startswith("*.png binary\n") and dailymerge.ATTRIBUTE_LINE in text
    assert dailymerge.registered(repo)
    assert dailymerge.install(repo) is False and (repo / ".gitattributes").read_text() == text
    git(repo, "config", "--local", "merge.memc-daily.driver", "/old/venv/bin/memc merge-daily")
    assert not dailymerge.registered(repo) and dailymerge.install(repo) is True
    assert dailymerge.registered(repo)


def test_merge_daily_command_is_the_driver(tmp_path):
    base, ours, theirs = (tmp_path / n for n in ("O", "A", "B"))
    base.write_text(HEADER)
    ours.write_text(HEADER + block(1))
    theirs.write_text(HEADER + block(2))
    assert main(["merge-daily", str(base), str(ours), str(theirs), f"daily/{DAY}.md"]) == 0
    assert ids(ours.read_text()) == [f"{1:012x}", f"{2:012x}"]


def test_entry_marker_carries_the_host_and_parses_back():
    text = HEADER + block(1, host="laptop-2") + block(2)
    first, second = daily.parse_entries(text, DAY)
    assert first.host == "laptop-2" and second.host == ""
    assert "event=stop host=laptop-2 -->" in text
    assert "host=" not in block(3, host="")


@pytest.mark.parametrize(
    "raw, token",
    [
        ("MacBook-Pro.local", "macbook-pro"),
        ("  Büro PC #2 ", "b-ro-pc-2"),
        ("...", "host"),
        ("x" * 100, "x" * 63),
        ("evil --> <!--", "evil"),
    ],
)
def test_host_tokens_are_safe(raw, token):
    assert hostname.clean(raw) == token


def test_host_comes_from_memc_host_then_config_then_system(root, monkeypatch):
    monkeypatch.setenv("MEMC_HOST", "Desk.Top")
    assert load_settings(root).this_host == "desk"
    monkeypatch.delenv("MEMC_HOST")
    (root / ".memc" / "config.toml").write_text('host = "team-box"\n')
    assert load_settings(root).this_host == "team-box"
    (root / ".memc" / "config.toml").write_text("")
    assert load_settings(root).this_host == hostname.host_name({})


def test_the_host_name_is_the_systems_without_memc_host(monkeypatch):
    import socket

    from pipeline.hostname import clean, host_name

    assert host_name({}) == clean(socket.gethostname())
    assert host_name({"MEMC_HOST": "Build-Box.example.org"}) == "build-box"


def test_the_host_name_is_pinned_per_root_so_a_renamed_machine_keeps_its_entries(
    tmp_path, monkeypatch
):
    """macOS and DHCP change the system host name; a root's own entries must stay its own."""
    monkeypatch.delenv("MEMC_HOST", raising=False)
    root = tmp_path / "r"
    assert main(["--root", str(root), "init", "--no-git"]) == 0
    first = load_settings(root).this_host
    assert (root / ".memc" / "host").read_text().strip() == first == hostname.host_name({})
    monkeypatch.setattr(hostname, "host_name", lambda environ=None: "renamed-by-dhcp")
    assert load_settings(root).this_host == first  # pinned, not the new system name
    monkeypatch.setenv("MEMC_HOST", "chosen")
    assert load_settings(root).this_host == "chosen"  # the override still wins
