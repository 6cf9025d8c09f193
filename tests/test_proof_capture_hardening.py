"""Proof suite (issue 12, capture side): a full disk during the daily append, an entry id unique
across days, symlinks in daily/ and behind a hook's transcript_path, the private marker only
from the human's typed text, killed hooks' temp files, a transcript under a new inode, and a
``<private>`` span open across a checkpoint capture. Each test fails on the code before the fix.
"""

from __future__ import annotations

import errno
import os

import pytest

from pipeline import daily, fsutil, inbox, state
from pipeline.drain import drain
from pipeline.errors import PathRefused
from pipeline.models import Entry
from tests.fakes import FakeBackend
from tests.helpers import ENTRY, all_entries, make_job, transcript_lines


def _block(eid: str, title: str = "Switched queue") -> str:
    entry = Entry(
        worth_saving=True, title=title, context="We moved the queue.", decisions=("Use locks",)
    )
    return daily.render_entry(
        entry, entry_id=eid, time_hhmm="14:32", project="acme", session_id="s1", event="stop"
    )


def _short_then_full(limit: int):
    """A writer that writes at most ``limit`` bytes, then fails with ENOSPC (a disk filling up)."""
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return os.write(fd, data[:limit])
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


# --- finding: disk full during the daily append -------------------------------------------------


def test_disk_full_append_leaves_the_daily_file_byte_identical(tmp_path):
    days = tmp_path / "daily"
    assert daily.append_entry(days, "2026-11-20", _block("a" * 12), "a" * 12)
    path = days / "2026-11-20.md"
    before = path.read_bytes()
    with pytest.raises(OSError) as exc:
        daily.append_entry(
            days, "2026-11-20", _block("b" * 12), "b" * 12, write=_short_then_full(17)
        )
    assert exc.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    # Space freed: the same entry appends whole, once.
    assert daily.append_entry(days, "2026-11-20", _block("b" * 12), "b" * 12)
    assert [e.id for e in daily.read_entries(days, "2026-11-20")] == ["a" * 12, "b" * 12]


def test_short_writes_are_continued_not_dropped(tmp_path):
    target = tmp_path / "log.txt"

    def dribble(fd: int, data: bytes) -> int:
        return os.write(fd, data[:3])

    fsutil.locked_append(target, "0123456789abcdef", write=dribble)
    assert target.read_text() == "0123456789abcdef"


def test_locked_append_is_whole_or_absent(tmp_path):
    target = tmp_path / "log.txt"
    target.write_text("kept\n")
    with pytest.raises(OSError):
        fsutil.locked_append(target, "x" * 100, write=_short_then_full(40))
    assert target.read_bytes() == b"kept\n"


def test_disk_full_job_goes_back_to_the_inbox_and_is_retried(settings, root):
    env = make_job(root, "full", transcript_lines("full", [("We chose advisory locks.", "ok")]))
    report = drain(settings, backend=FakeBackend(default=ENTRY), daily_write=_short_then_full(5))
    assert report.failed == 0 and report.done == 0 and "disk full" in report.stopped
    assert inbox.counts(settings.paths).pending == 1  # back in the inbox, not in failed/
    assert not list(settings.paths.failed.iterdir())
    assert all_entries(root) == []
    for day_file in settings.paths.daily.glob("*.md"):
        assert "memc:entry" not in day_file.read_text()  # nothing partial left behind
    conn = state.connect(settings.paths.state_db)
    try:
        row = conn.execute("SELECT status, detail FROM jobs WHERE id=?", (env.id,)).fetchone()
    finally:
        conn.close()
    assert row["status"] == "queued" and "disk full" in row["detail"]
    again = drain(settings, backend=FakeBackend(default=ENTRY))  # space freed
    assert again.done == 1 and len(all_entries(root)) == 1


# --- finding: a symlink in daily/ ---------------------------------------------------------------


def test_daily_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    days = root / "daily"
    days.mkdir(parents=True)
    outside = tmp_path / "authorized_keys"
    outside.write_text("ssh-ed25519 AAAA me\n")
    (days / "2026-11-20.md").symlink_to(outside)
    with pytest.raises(PathRefused):
        daily.append_entry(days, "2026-11-20", _block("c" * 12), "c" * 12)
    assert outside.read_text() == "ssh-ed25519 AAAA me\n"
    dangling = tmp_path / "created-outside.md"
    (days / "2026-11-21.md").symlink_to(dangling)
    with pytest.raises(PathRefused):
        daily.append_entry(days, "2026-11-21", _block("d" * 12), "d" * 12)
    assert not dangling.exists()


def test_daily_special_file_is_refused(tmp_path):
    days = tmp_path / "root" / "daily"
    days.mkdir(parents=True)
    os.mkfifo(days / "2026-11-20.md")
    with pytest.raises(PathRefused, match="not a regular file"):
        daily.append_entry(days, "2026-11-20", _block("e" * 12), "e" * 12)


def test_daily_symlink_fails_the_job_with_its_reason(settings, root, tmp_path):
    outside = tmp_path / "authorized_keys"
    outside.write_text("keys\n")
    make_job(root, "sym", transcript_lines("sym", [("We chose advisory locks.", "ok")]))
    (settings.paths.daily / "2026-11-20.md").symlink_to(outside)
    report = drain(settings, backend=FakeBackend(default=ENTRY))
    assert report.failed == 1
    assert report.failures[0].error_class == "BrokenJob"
    assert "2026-11-20.md" in report.failures[0].message
    assert "outside" in report.failures[0].message
    assert outside.read_text() == "keys\n"


def test_fsutil_append_all_counts_a_zero_write_as_disk_full(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        with pytest.raises(OSError) as exc:
            fsutil.append_all(fd, b"abc", write=lambda fd, data: 0)
    finally:
        os.close(fd)
    assert exc.value.errno == errno.ENOSPC and (tmp_path / "f").read_bytes() == b""


def test_lint_reports_a_partial_entry_from_an_older_version(settings, root):
    from pipeline.lint import run_lint

    days = settings.paths.daily
    whole, cut = _block("f" * 12, "Whole one"), _block("a1" * 6, "Cut one")
    (days / "2026-11-20.md").write_text("# Daily Log: 2026-11-20\n\n" + whole + cut[:-25])
    conn = state.connect(settings.paths.state_db)
    try:
        for eid, block in (("f" * 12, whole), ("a1" * 6, cut)):
            import hashlib

            conn.execute(
                "INSERT INTO entries(id, day, daily_path, content_hash, created_at)"
                " VALUES(?,?,?,?,1.0)",
                (eid, "2026-11-20", "daily/2026-11-20.md",
                 hashlib.sha256(block.encode()).hexdigest()[:16]),
            )  # fmt: skip
    finally:
        conn.close()
    partial = [i for i in run_lint(settings).issues if i.check == "partial_entry"]
    assert len(partial) == 2 and all("a1a1a1a1a1a1" in i.detail for i in partial)
    # The cut closed by a later append (separator added) is still found through its hash.
    with (days / "2026-11-20.md").open("a") as fh:
        fh.write("\n\n")
    partial = [i for i in run_lint(settings).issues if i.check == "partial_entry"]
    assert len(partial) == 1 and "a1a1a1a1a1a1" in partial[0].detail
    assert "ffffffffffff" not in " ".join(i.detail for i in partial)


# --- finding: an entry id unique across days ----------------------------------------------------


def test_entry_id_is_unique_across_days_after_a_crash_and_a_tz_change(root, monkeypatch):
    from pipeline.config import load_settings

    env = make_job(
        root,
        "tz",
        transcript_lines("tz", [("We chose advisory locks.", "ok")]),
        captured_at="2026-11-20T23:30:00+00:00",
    )
    eid = daily.entry_id(env.id, 0)
    # The crashed run: appended in UTC (2026-11-20), killed before its state record.
    daily.append_entry(root / "daily", "2026-11-20", _block(eid), eid)
    monkeypatch.setenv("MEMC_TZ", "Asia/Tokyo")  # now the capture falls on 2026-11-21
    settings = load_settings(root)
    fake = FakeBackend(default=ENTRY)
    report = drain(settings, backend=fake)
    assert report.done == 1
    assert [e.id for e in all_entries(root)] == [eid]  # one file, once
    assert not (root / "daily" / "2026-11-21.md").exists()
    assert fake.calls == []  # found before paying for the model call
    conn = state.connect(settings.paths.state_db)
    try:
        row = conn.execute("SELECT day FROM entries WHERE id=?", (eid,)).fetchone()
    finally:
        conn.close()
    assert row["day"] == "2026-11-20"


# --- finding: the private marker counts only when the human typed it ----------------------------


def _capture(settings, path, sid="s1", **kw):
    from pipeline.capture import capture

    kw.setdefault("now", 1_800_000_000.0)
    return capture(settings, transcript_path=str(path), session_id=sid, **kw)


def _user(content, **extra) -> bytes:
    import json

    obj = {"type": "user", "message": {"role": "user", "content": content}, **extra}
    return (json.dumps(obj) + "\n").encode()


def _is_private(settings, sid="s1") -> bool:
    conn = state.connect(settings.paths.state_db)
    try:
        return state.is_private(conn, sid)
    finally:
        conn.close()


def test_marker_in_tool_output_does_not_make_a_session_private(settings, tmp_path):
    import json

    t = tmp_path / "t.jsonl"
    grep_result = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": "README.md:12: type [memc:private] to keep a session out",
    }
    assistant = {
        "type": "assistant",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "[memc:private]"}]},
    }
    t.write_bytes(
        _user("grep the README for the opt-out")
        + _user([grep_result], toolUseResult={"stdout": "[memc:private]"})
        + (json.dumps(assistant) + "\n").encode()
        + _user("<bash-stdout>x [memc:private] y</bash-stdout>")
        + _user("Caveat: [memc:private]", isMeta=True)
    )
    result = _capture(settings, t)
    assert result.status == "queued", result.reason
    assert not _is_private(settings)


def test_marker_typed_by_the_human_makes_the_session_private(settings, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(_user("hello") + _user([{"type": "text", "text": "[memc:private] off record"}]))
    result = _capture(settings, t)
    assert result.status == "skipped" and "private" in result.reason
    assert _is_private(settings)


# --- finding: a transcript_path symlink out of ~/.claude and the project, or into .memc ----------


def test_transcript_symlink_out_of_claude_and_project_is_not_copied(settings, root, tmp_path):
    secret = tmp_path / "elsewhere" / "id_rsa"
    secret.parent.mkdir()
    secret.write_bytes(_user("-----BEGIN OPENSSH PRIVATE KEY----- stolen"))
    link = tmp_path / "t.jsonl"
    link.symlink_to(secret)
    result = _capture(settings, link, cwd=str(tmp_path / "project"))
    assert result.status == "skipped" and "symlink" in result.reason
    assert list(settings.paths.spool.iterdir()) == []
    # Into ROOT/.memc: never, symlink or not.
    result = _capture(settings, settings.paths.state_db, sid="s2")
    assert result.status == "skipped" and ".memc" in result.reason
    # A symlink into the project is fine.
    project = tmp_path / "project"
    project.mkdir()
    inside = project / "session.jsonl"
    inside.write_bytes(_user("hello"))
    link2 = tmp_path / "t2.jsonl"
    link2.symlink_to(inside)
    assert _capture(settings, link2, sid="s3", cwd=str(project)).status == "queued"


# --- finding: the same transcript under a new inode ---------------------------------------------


def _turns(lo: int, hi: int) -> bytes:
    import json

    return b"".join(
        (
            json.dumps({"type": "user", "uuid": f"u{i}", "message": {"content": f"fact {i}"}})
            + "\n"
        ).encode()
        for i in range(lo, hi)
    )


def _restore(path, data: bytes) -> None:
    """A backup restore or a sync tool: a new file (new inode) renamed over the old one."""
    copy = path.with_name(path.name + ".restored")
    copy.write_bytes(data)
    before = os.stat(path).st_ino
    os.replace(copy, path)
    assert os.stat(path).st_ino != before


def _queued(settings):
    from tests.helpers import queued_envelopes

    return [(e.start, e.end) for e in queued_envelopes(settings.paths.root)]


def _spooled(settings, start: int, job_id: str = "") -> bytes:
    from tests.helpers import queued_envelopes

    found = queued_envelopes(settings.paths.root)
    (env,) = [e for e in found if e.start == start and job_id in (e.id, "")]
    return (settings.paths.memc / env.spool).read_bytes()


def test_restored_copy_with_the_same_bytes_queues_nothing(settings, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(_turns(0, 6))
    assert _capture(settings, t).status == "queued"
    _restore(t, t.read_bytes())
    again = _capture(settings, t, now=1_800_000_060.0)
    assert again.status == "nothing-new", again.reason
    assert _queued(settings) == [(0, len(_turns(0, 6)))]


def test_restored_copy_plus_appended_turns_queues_only_those(settings, tmp_path):
    t = tmp_path / "t.jsonl"
    old = _turns(0, 6)
    t.write_bytes(old)
    assert _capture(settings, t).status == "queued"
    _restore(t, old + _turns(6, 8))
    grown = _capture(settings, t, now=1_800_000_060.0)
    assert grown.status == "queued" and grown.bytes == len(_turns(6, 8)), grown.reason
    assert _queued(settings) == [(0, len(old)), (len(old), len(old) + len(_turns(6, 8)))]
    assert _spooled(settings, len(old)) == _turns(6, 8)
    # From then on the new inode is the cursor's: the next turn alone, as for any transcript.
    with t.open("ab") as fh:
        fh.write(_turns(8, 9))
    assert _capture(settings, t, now=1_800_000_120.0).bytes == len(_turns(8, 9))


def test_different_file_at_the_same_path_is_captured_from_zero(settings, tmp_path):
    t = tmp_path / "t.jsonl"
    old = _turns(0, 6)
    t.write_bytes(old)
    assert _capture(settings, t).status == "queued"
    # Same first line, longer, but not the same bytes before the cursor: another file.
    other = _turns(0, 1) + _turns(100, 110)
    assert len(other) >= len(old)
    _restore(t, other)
    r = _capture(settings, t, now=1_800_000_060.0)
    assert r.status == "queued" and "replaced" in r.reason and r.bytes == len(other)
    assert sorted(_queued(settings)) == [(0, len(old)), (0, len(other))]
    assert _spooled(settings, 0, r.job_id) == other


def test_restore_after_a_capture_that_left_its_cursor_behind(settings, tmp_path, monkeypatch):
    """The marker of a capture whose cursor advance never happened carries the hash too."""
    from pipeline import cursor

    t = tmp_path / "t.jsonl"
    old = _turns(0, 6)
    t.write_bytes(old)
    real = cursor.advance
    monkeypatch.setattr(cursor, "advance", lambda conn, **kw: False)  # state.db stayed busy
    assert _capture(settings, t).status == "queued"
    monkeypatch.setattr(cursor, "advance", real)
    _restore(t, old + _turns(6, 7))
    r = _capture(settings, t, now=1_800_000_060.0)
    assert r.status == "queued" and r.bytes == len(_turns(6, 7)), r.reason
    assert _queued(settings) == [(0, len(old)), (len(old), len(old) + len(_turns(6, 7)))]


def test_restore_is_recognised_in_a_database_from_before_the_tail_column(settings, tmp_path):
    t = tmp_path / "t.jsonl"
    conn = state.connect(settings.paths.state_db)
    try:
        conn.execute("ALTER TABLE cursors DROP COLUMN tail")  # as an older release created it
    finally:
        conn.close()
    old = _turns(0, 4)
    t.write_bytes(old)
    assert _capture(settings, t).status == "queued"  # adds the column with its first write
    _restore(t, old + _turns(4, 5))
    assert _capture(settings, t, now=1_800_000_060.0).bytes == len(_turns(4, 5))


def test_restored_subagent_transcripts_queue_only_what_they_gained(settings, tmp_path):
    from pipeline.subagents import capture_session

    main = tmp_path / "s1.jsonl"
    main.write_bytes(_turns(0, 3))
    agents = tmp_path / "s1" / "subagents"
    agents.mkdir(parents=True)
    agent = agents / "agent-a1.jsonl"
    agent.write_bytes(_turns(50, 53))
    first = capture_session(settings, transcript_path=str(main), session_id="s1", now=1.8e9)
    assert [r.status for r in first] == ["queued", "queued"]
    _restore(main, main.read_bytes())
    _restore(agent, agent.read_bytes() + _turns(53, 55))
    again = capture_session(settings, transcript_path=str(main), session_id="s1", now=1.8e9 + 60)
    assert [r.status for r in again] == ["nothing-new", "queued"], [r.reason for r in again]
    assert again[1].bytes == len(_turns(53, 55))
    assert len(_queued(settings)) == 3
