"""A busy or locked state.db: the capture still commits its envelope, exactly once overall.

The lock is real: another SQLite connection holds a write transaction (or an exclusive lock)
on state.db while the capture runs, as a drain or a compile would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

from pipeline import cursor, state
from pipeline.capture import capture
from pipeline.drain import drain
from pipeline.models import Envelope
from tests.fakes import FakeBackend
from tests.helpers import ENTRY, PYTHON, transcript_lines

NOW = 1_800_000_000.0


def exchanges(session: str, start: int, n: int) -> bytes:
    return transcript_lines(
        session,
        [(f"question {i} about advisory locks", f"answer {i}: use pg locks") for i in range(n)],
        start=start,
    )


@contextmanager
def held(db: Path, *, exclusive: bool = False):
    """Hold state.db the way a long drain or compile transaction would (or lock it outright)."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    if exclusive:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
    conn.execute("INSERT OR REPLACE INTO kv(key, value, updated_at) VALUES('holder', 'x', 0)")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def run(settings, path: Path, sid: str = "busy-1", **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("sleep", lambda s: None)
    return capture(settings, transcript_path=str(path), session_id=sid, **kw)


def inbox_envelopes(root: Path) -> list[Envelope]:
    found = [Envelope.from_json(p.read_text()) for p in (root / ".memc/inbox").glob("*.json")]
    return sorted(found, key=lambda e: e.start)


def pending_files(settings) -> list[Path]:
    folder = settings.paths.pending
    return list(folder.iterdir()) if folder.exists() else []


def cursor_offset(settings, sid: str, path: Path) -> int | None:
    conn = state.connect(settings.paths.state_db)
    try:
        row = conn.execute(
            "SELECT offset FROM cursors WHERE session_key=?",
            (cursor.session_key(sid, str(path.resolve())),),
        ).fetchone()
        return None if row is None else row["offset"]
    finally:
        conn.close()


def test_locked_db_still_queues_then_the_range_is_processed_exactly_once(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(exchanges("busy-1", 0, 3))
    with held(settings.paths.state_db):
        first = run(settings, t)
    assert first.status == "queued" and cursor.BUSY_NOTE in first.reason
    [env] = inbox_envelopes(root)  # the envelope, the commit point, is written
    assert (env.id, env.start, env.end) == (first.job_id, 0, t.stat().st_size)
    assert cursor_offset(settings, "busy-1", t) is None  # the cursor was left behind
    assert pending_files(settings)  # with a marker saying where it stands

    size_before = t.stat().st_size
    with t.open("ab") as fh:
        fh.write(exchanges("busy-1", 3, 2))
    second = run(settings, t, now=NOW + 60)  # state.db is free again
    assert second.status == "queued" and cursor.BUSY_NOTE not in second.reason
    envs = inbox_envelopes(root)
    assert [(e.start, e.end) for e in envs] == [(0, size_before), (size_before, t.stat().st_size)]
    assert b"".join((root / ".memc" / e.spool).read_bytes() for e in envs) == t.read_bytes()
    assert cursor_offset(settings, "busy-1", t) == t.stat().st_size
    assert not pending_files(settings)

    fake = FakeBackend(default=ENTRY)
    report = drain(settings, backend=fake, sleep=lambda s: None)
    assert (report.processed, report.done, report.failed) == (2, 2, 0)
    assert len(fake.calls) == 2
    assert drain(settings, backend=FakeBackend()).processed == 0  # nothing is processed twice
    assert run(settings, t, now=NOW + 120).status == "nothing-new"


def test_busy_after_the_marker_leaves_it_in_the_db_and_the_next_capture_settles_it(
    settings, root, tmp_path, monkeypatch
):
    """The database is free for the marker and taken before the cursor advance."""
    t = tmp_path / "t.jsonl"
    t.write_bytes(exchanges("busy-2", 0, 2))
    real_write = cursor.write_marker
    holders = []

    def write_then_lock(*args, **kw):
        busy = real_write(*args, **kw)
        cm = held(settings.paths.state_db)
        cm.__enter__()
        holders.append(cm)
        return busy

    monkeypatch.setattr(cursor, "write_marker", write_then_lock)
    first = run(settings, t, sid="busy-2")
    monkeypatch.setattr(cursor, "write_marker", real_write)
    holders.pop().__exit__(None, None, None)
    assert first.status == "queued" and cursor.BUSY_NOTE in first.reason
    assert not pending_files(settings)  # the marker went into state.db
    again = run(settings, t, sid="busy-2", now=NOW + 5)
    assert again.status == "nothing-new"  # the queued range is not spooled again
    assert len(inbox_envelopes(root)) == 1
    assert cursor_offset(settings, "busy-2", t) == t.stat().st_size


def test_drain_settles_a_session_that_never_captures_again(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(exchanges("busy-3", 0, 2))
    with held(settings.paths.state_db):
        assert run(settings, t, sid="busy-3").status == "queued"
    report = drain(settings, backend=FakeBackend(default=ENTRY), sleep=lambda s: None)
    assert report.done == 1
    assert cursor_offset(settings, "busy-3", t) == t.stat().st_size
    assert not pending_files(settings)
    with t.open("ab") as fh:
        fh.write(exchanges("busy-3", 2, 1))
    tail = run(settings, t, sid="busy-3", now=NOW + 60)
    assert tail.status == "queued" and tail.bytes == len(exchanges("busy-3", 2, 1))


def test_db_locked_even_for_reading_skips_and_loses_nothing(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(exchanges("busy-4", 0, 2))
    run(settings, t, sid="other")  # state.db exists with its schema
    with held(settings.paths.state_db, exclusive=True):
        skipped = run(settings, t, sid="busy-4")
    assert skipped.status == "skipped" and "locked" in skipped.reason
    assert [e.session_id for e in inbox_envelopes(root)] == ["other"]
    later = run(settings, t, sid="busy-4", now=NOW + 5)
    assert later.status == "queued" and later.bytes == t.stat().st_size


def test_hook_process_with_a_locked_db_writes_its_envelope(memc_env, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(exchanges("busy-5", 0, 2))
    payload = {"session_id": "busy-5", "transcript_path": str(t), "cwd": "/home/dev/acme-api"}
    db = root / ".memc" / "state.db"
    state.connect(db).close()
    with held(db):
        proc = subprocess.run(
            [PYTHON, "-m", "pipeline", "hook", "session-end"],
            input=json.dumps(payload).encode(),
            env=memc_env,
            capture_output=True,
            timeout=60,
        )
    assert proc.returncode == 0 and proc.stdout == b""
    [env] = inbox_envelopes(root)
    assert env.session_id == "busy-5" and env.end == t.stat().st_size
    log = (root / ".memc" / "logs" / "hooks.log").read_text()
    assert "queued" in log and "state.db busy" in log
