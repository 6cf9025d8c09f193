"""Per-session capture cursors, and the pending markers that make a capture exactly once.

Role: the bookkeeping half of ``pipeline.capture``. A capture writes its spool, then a pending
marker, then its envelope (the commit point), then advances the session's cursor and records the
job in one transaction (``advance``). Whatever happens after the envelope landed, the marker tells
the next capture of the session (or a drain, ``settle_all``) that the range is queued, so the
cursor moves past it and the range is never spooled twice.

Invariants:
- A marker names one range (job id, start, end, transcript identity). It lives in ``state.db``
  (``kv`` key ``capture-pending:<session key>``) or, when state.db is busy, in
  ``.memc/pending/<session key>.json``; a hook never waits on the database for more than
  ``DB_WAIT_S`` per write, and after one busy write it does not wait again.
- Markers of one session form a chain: each one starts where the previous one's range (or the
  cursor) ended. Settling walks them in order of their end: a marker whose envelope exists (in
  the inbox, claimed, failed, or recorded in ``jobs``) moves the cursor to its end; one whose
  envelope never landed had its spool orphaned (removed) and moves the cursor only to its start.
- Markers are removed only after the cursor advance that covers them is committed.
- A cursor also keeps its ``tail`` (``tailfile.tail_mark``: a hash of the bytes just before its
  offset), and so does each marker for both ends of its range, so the same transcript under a
  new inode is recognised (``tailfile.same_prefix``) wherever the cursor came from. Databases
  from before the column get it on their first cursor write (``advance``).
- All of this runs under the session's capture lock stripe (``stripe_lock``).
Stdlib only: this module is on the hook's hot path.
"""

from __future__ import annotations

import json
import os
import sqlite3

from pipeline import state
from pipeline.envelope import is_envelope_name, job_id_of
from pipeline.errors import LockBusy, PathRefused
from pipeline.fsutil import atomic_write, file_lock, safe_join
from pipeline.tailfile import sha256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.paths import Paths

DB_WAIT_S = 0.4  # the longest a hook waits on one state.db write
LOCK_STRIPES = 64  # capture locks: .memc/locks/capture-00 .. capture-63
KV_PREFIX = "capture-pending:"
BUSY_NOTE = "state.db busy: the next capture or the drain advances the cursor"
_HEX = frozenset("0123456789abcdef")
_ROW = "SELECT session_id, transcript_path, identity, offset, last_capture_at, {} FROM cursors"


def session_key(session_id: str, transcript_path: str) -> str:
    raw = f"{session_id}\x00{transcript_path}".encode("utf-8", "surrogatepass")
    return sha256(raw).hexdigest()[:24]


def stripe_lock(paths: Paths, key: str):
    """The lock file of this session's stripe. Sessions share a fixed set of stripes, so
    .memc/locks/ never grows with the number of sessions; two sessions meeting on one stripe
    only wait a few milliseconds."""
    return paths.lock(f"capture-{int(key[:8], 16) % LOCK_STRIPES:02d}")


def is_busy(exc: BaseException) -> bool:
    """Is this the database being locked or busy (as opposed to broken)?"""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def no_more_waiting(conn: sqlite3.Connection) -> None:
    """After one busy write, fail any further one at once instead of waiting again."""
    try:
        conn.execute("PRAGMA busy_timeout=0")
    except sqlite3.Error:
        pass


def queued(paths: Paths, conn: sqlite3.Connection | None, job_id: str) -> bool:
    """Is this job's envelope anywhere (inbox, claimed, failed) or recorded in the ledger?"""
    if conn is not None:
        try:
            if conn.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone():
                return True
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
    for folder in (paths.inbox, paths.claimed, paths.failed):
        try:  # committed envelopes only: a temp file left by a killed hook queued nothing
            if any(
                is_envelope_name(name) and job_id_of(name) == job_id for name in os.listdir(folder)
            ):
                return True
        except OSError:
            continue
    return False


def read_row(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    """The session's cursor row (with ``tail``: "" in a database from before that column)."""
    where = " WHERE session_key=?"
    try:
        return conn.execute(_ROW.format("tail") + where, (key,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such column" not in str(exc):
            raise
        return conn.execute(_ROW.format("'' AS tail") + where, (key,)).fetchone()


def _add_tail_column(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ALTER TABLE cursors ADD COLUMN tail TEXT NOT NULL DEFAULT ''")
    except sqlite3.OperationalError as exc:  # a concurrent capture added it first
        if "duplicate column" not in str(exc):
            raise


def _marker_file(paths: Paths, key: str):
    return safe_join(paths.pending, f"{key}.json")


def write_marker(
    paths: Paths, conn: sqlite3.Connection, key: str, marker: dict, *, busy: bool
) -> bool:
    """Record the marker before the envelope is written; returns the new ``busy`` state.

    In state.db when it takes the write within DB_WAIT_S, else (or when already ``busy``) as a
    file, written atomically and durably before the envelope."""
    text = json.dumps(marker, sort_keys=True)
    if not busy:
        try:
            state.kv_set(conn, KV_PREFIX + key, text, now=marker.get("at"))
            return False
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            no_more_waiting(conn)
    atomic_write(_marker_file(paths, key), text + "\n")
    return True


def _read_markers(paths: Paths, conn: sqlite3.Connection, key: str) -> list[dict]:
    found: list[dict] = []
    raws: list[str] = []
    try:
        raw = state.kv_get(conn, KV_PREFIX + key)
        if raw is not None:
            raws.append(raw)
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
    try:
        raws.append(_marker_file(paths, key).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PathRefused):
        pass
    for raw in raws:
        try:
            m = json.loads(raw)
            m.update(start=int(m["start"]), end=int(m["end"]), id=str(m["id"]))
            m["identity"] = str(m["identity"])
            found.append(m)
        except (ValueError, KeyError, TypeError):
            continue  # a damaged marker names nothing usable; it is cleared with the others
    return sorted(found, key=lambda m: m["end"])


_UPSERT = (
    "INSERT INTO cursors(session_key, session_id, transcript_path, identity, offset,"
    " last_capture_at, updated_at, tail) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(session_key) DO UPDATE"
    " SET identity=excluded.identity, offset=excluded.offset, tail=excluded.tail,"
    " updated_at=excluded.updated_at,"
    " last_capture_at=CASE WHEN ? THEN excluded.last_capture_at ELSE last_capture_at END"
)


def advance(
    conn: sqlite3.Connection,
    *,
    key: str,
    session_id: str,
    transcript: str,
    identity: str,
    offset: int,
    now: float,
    tail: str = "",
    jobs: list[tuple] = [],  # noqa: B006 - never mutated
    touch: bool = True,
) -> bool:
    """Move the cursor (and record the jobs) in one transaction and clear the state.db marker.
    ``tail`` is ``tailfile.tail_mark`` at ``offset`` ("" when unknown: no restore is recognised).

    Returns False, having written nothing, when state.db stayed busy (the markers remain)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        no_more_waiting(conn)
        return False
    try:
        values = (key, session_id, transcript, identity, offset, now, now, tail, 1 if touch else 0)
        try:
            conn.execute(_UPSERT, values)
        except sqlite3.OperationalError as exc:
            if "no column named tail" not in str(exc):
                raise
            _add_tail_column(conn)  # a database from before the column: inside this transaction
            conn.execute(_UPSERT, values)
        for job_id, event, project, size in jobs:
            conn.execute(
                "INSERT INTO jobs(id, session_id, event, project, status, created_at, updated_at,"
                " bytes) VALUES(?,?,?,?,'queued',?,?,?) ON CONFLICT(id) DO NOTHING",
                (job_id, session_id, event, project, now, now, size),
            )
        if jobs:
            previous = state.kv_get(conn, "last_capture_at")
            if previous is None or float(previous) < now:  # backfill captures carry old times
                state.kv_set(conn, "last_capture_at", repr(now), now=now)
        conn.execute("DELETE FROM kv WHERE key=?", (KV_PREFIX + key,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def settle(
    paths: Paths,
    conn: sqlite3.Connection,
    key: str,
    *,
    session_id: str,
    transcript: str,
    now: float,
    row: sqlite3.Row | None,
    busy: bool = False,
) -> tuple[tuple[str, int, str] | None, bool]:
    """Finish the captures of this session that queued an envelope but left the cursor behind.

    ``row`` is the session's cursor row (``read_row``, or None). Returns ((identity, offset,
    tail) the cursor stands at once the markers are applied, or None when there is neither a row
    nor a marker) and the new ``busy`` state. If state.db is busy the markers stay for the next
    try, but the returned cursor already accounts for them, so the caller never spools a queued
    range again."""
    cursor = (row["identity"], row["offset"], row["tail"] or "") if row is not None else None
    markers = _read_markers(paths, conn, key)
    if not markers:
        return cursor, busy
    jobs = []
    for m in markers:
        if queued(paths, conn, m["id"]):
            cursor = (m["identity"], m["end"], _text(m.get("tail")))
            jobs.append((m["id"], m.get("event", ""), m.get("project", ""), m["end"] - m["start"]))
        else:  # the envelope never landed: its spool is an orphan
            try:
                os.unlink(safe_join(paths.spool, f"{m['id']}.jsonl"))
            except (OSError, PathRefused):
                pass
            cursor = (m["identity"], m["start"], _text(m.get("tail_start")))
    if cursor is None:  # pragma: no cover - markers always yield a cursor
        return None, busy
    if not busy:
        common = {"key": key, "session_id": session_id, "transcript": transcript}
        identity, offset, tail = cursor
        if advance(
            conn,
            identity=identity,
            offset=offset,
            tail=tail,
            now=now,
            jobs=jobs,
            touch=False,
            **common,
        ):
            try:
                os.unlink(_marker_file(paths, key))
            except (OSError, PathRefused):
                pass
        else:
            busy = True
    return cursor, busy


def settle_all(paths: Paths, *, now: float) -> int:
    """Settle the markers of every session whose capture met a busy state.db (a drain calls
    this, so a session that never captures again still gets its cursor advanced).

    Returns how many sessions were settled; sessions whose capture lock is held are left to
    that capture, and nothing is waited on for longer than ``DB_WAIT_S`` per session."""
    try:
        keys = {n[:-5] for n in os.listdir(paths.pending) if n.endswith(".json") and n[0] != "."}
    except OSError:
        keys = set()
    conn = state.connect(paths.state_db)
    try:
        rows = conn.execute(
            "SELECT key FROM kv WHERE key >= ? AND key < ?", (KV_PREFIX, KV_PREFIX[:-1] + ";")
        ).fetchall()
        keys.update(r[0][len(KV_PREFIX) :] for r in rows)
        done = 0
        for key in sorted(k for k in keys if len(k) == 24 and all(c in _HEX for c in k)):
            try:
                with file_lock(stripe_lock(paths, key), timeout=DB_WAIT_S):
                    done += _settle_one(paths, conn, key, now)
            except LockBusy:
                continue
    finally:
        conn.close()
    return done


def _settle_one(paths: Paths, conn: sqlite3.Connection, key: str, now: float) -> int:
    row = read_row(conn, key)
    markers = _read_markers(paths, conn, key)
    if not markers:
        return 0
    if row is not None:
        session_id, transcript = row["session_id"], row["transcript_path"]
    else:
        session_id, transcript = markers[-1].get("session_id"), markers[-1].get("transcript")
    if not isinstance(session_id, str) or not isinstance(transcript, str):
        return 0  # an old marker without its session: the session's next capture settles it
    _cursor, busy = settle(
        paths, conn, key, session_id=session_id, transcript=transcript, now=now, row=row
    )
    return 0 if busy else 1
