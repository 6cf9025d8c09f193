"""``.memc/state.db``: the SQLite bookkeeping shared by every stage.

WAL mode and a busy timeout so hooks, drains, the watcher and a compile can all use it at once.
The schema is created here and only here (``connect`` is idempotent); modules own their queries.
Everything in it is bookkeeping: daily/ and knowledge/ are the source of truth. Stdlib only.
A file ``connect`` finds damaged (``damage``: SQLite's CORRUPT or NOTADB, or 0 bytes in a used
root; never a lock or an I/O error) is set aside and rebuilt by ``pipeline.staterecovery``, so
no caller, hook or command, ever stops at it; a healthy open pays one ``stat`` for that.

Tables:
- ``cursors``: per (session, transcript) the byte offset consumed so far, the file identity and
  a hash of the bytes before the offset (``tail``; added by ``pipeline.cursor`` to older files).
- ``jobs``: the job ledger (queued, running, done, failed, deferred, cancelled) with outcome
  details.
- ``entries``: every daily entry appended, and when (if ever) it was compiled, or withdrawn
  (deleted from its daily log by hand); ``host`` is the machine that owns (compiles) it: ''
  for this root's own, else the ``host=`` of its marker (``pipeline.pending``).
- ``llm_calls``: the cost ledger, one row per model call attempt.
- ``private_sessions``: sessions the user opted out of capture.
- ``kv``: small named values (last drain, last compile, circuit-breaker state).
- ``pages``: per file under daily/ or knowledge/ memc wrote, the git blob id of the text as memc
  last wrote it and whether the user ever edited it (``pipeline.pages``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import StateDamaged

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    session_key TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    transcript_path TEXT NOT NULL,
    identity TEXT NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    last_capture_at REAL NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL DEFAULT 0,
    tail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    entries INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, updated_at);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    daily_path TEXT NOT NULL,
    job_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    compiled_at REAL,
    withdrawn_at REAL,
    host TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_pending ON entries(compiled_at, created_at);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    day TEXT NOT NULL,
    task TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    duration_s REAL NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    ref TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS llm_calls_day ON llm_calls(day);
CREATE TABLE IF NOT EXISTS private_sessions (
    session_id TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    path TEXT PRIMARY KEY,
    sha TEXT NOT NULL,
    user_edited INTEGER NOT NULL DEFAULT 0,
    written_at REAL NOT NULL
);
"""

RECOVERY_KEY = "state_recovered"  # kv: the last rebuild after damage (pipeline.staterecovery)
TABLES = ("cursors", "jobs", "entries", "llm_calls", "private_sessions", "kv", "pages")
BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 2  # PRAGMA user_version: 2 added entries.host; an older file is migrated once


def connect(
    db_path: Path | str, timeout: float = BUSY_TIMEOUT_MS / 1000, *, recover: bool = True
) -> sqlite3.Connection:
    """Open (creating if needed) the state database with WAL and a busy timeout (seconds).

    Hooks pass a short ``timeout``: a capture must not wait on a drain's transaction. A damaged
    file (``damage``) is set aside and rebuilt (``pipeline.staterecovery``) and the fresh database
    returned; ``recover=False`` raises ``StateDamaged`` instead. Only the failing open pays for
    that: a healthy database costs one ``stat`` more."""
    path = Path(db_path)
    try:
        return _open(path, timeout)
    except StateDamaged as exc:
        if not recover or not exc.reason:
            raise
        from pipeline.staterecovery import recover_damaged

        recover_damaged(path, exc.reason)
        return _open(path, timeout)


def damage(exc: BaseException) -> str | None:
    """What is wrong when ``exc`` says the database file itself is damaged (SQLite's CORRUPT or
    NOTADB); None for anything else: a lock, a full disk or an I/O error may pass, and a file
    that only needs waiting for must never be set aside."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return text
    if not name and ("malformed" in text or "not a database" in text):
        return text
    return None


def _open(path: Path, timeout: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    was_emptied = emptied(path)
    try:
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from None
    conn.row_factory = sqlite3.Row
    try:
        if was_emptied:  # before any pragma: switching to WAL would write a header into it
            raise sqlite3.DatabaseError("file is not a database (0 bytes: it was emptied)")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            # another process is switching it right now; WAL persists once set
        conn.execute("PRAGMA synchronous=NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION or not _has_schema(
            conn
        ):
            conn.executescript(SCHEMA)
            _migrate(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        reason = damage(exc)
        if reason is None:
            raise _unusable(path, exc) from None
        raise StateDamaged(
            f"{path} is damaged ({reason}) and could not be set aside. It is bookkeeping: move "
            f"it aside (mv {path.name} {path.name}.broken) and run `memc doctor --fix`; capture "
            "cursors then restart, so sessions still on disk may be captured once more",
            reason,
        ) from None
    return conn


def _unusable(path: Path, exc: sqlite3.Error) -> StateDamaged:
    return StateDamaged(
        f"{path} cannot be used ({exc}); check that {path.parent} is writable and the disk "
        "has space, then run the command again"
    )


def emptied(path: Path) -> bool:
    """A 0-byte state.db in a root memc has used (daily logs or spools exist): the database was
    truncated, not created (SQLite would silently start an empty one: every cursor lost). A file
    younger than two seconds may be another process creating it right now."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size or time.time() - st.st_mtime < 2:
        return False
    root = path.parent.parent
    for folder in (path.parent / "spool", root / "daily"):
        try:
            if any(not name.startswith(".") for name in os.listdir(folder)):
                return True
        except OSError:
            continue
    return False


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` when the block (or the commit) raises
    anything, Ctrl-C included. For connections opened with ``isolation_level=None`` (state.db and
    search.db both are); the write lock is taken at the start, so a busy database waits there."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _has_schema(conn: sqlite3.Connection) -> bool:
    return _table_count(conn) == len(TABLES)


def _table_count(conn: sqlite3.Connection) -> int:
    marks = ",".join("?" * len(TABLES))
    sql = f"SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ({marks})"
    return int(conn.execute(sql, TABLES).fetchone()[0])


def _migrate(conn: sqlite3.Connection) -> None:
    """Columns added after a table was first created (databases of earlier releases)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
    for name, decl in (("withdrawn_at", "REAL"), ("host", "TEXT NOT NULL DEFAULT ''")):
        if name in columns:
            continue
        try:
            conn.execute(f"ALTER TABLE entries ADD COLUMN {name} {decl}")
        except sqlite3.OperationalError as exc:  # a concurrent connect added it first
            if "duplicate column" not in str(exc):
                raise


def kv_get(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
    return default if row is None else row[0]


def kv_time(conn: sqlite3.Connection, key: str, now: float) -> float:
    """A stored instant; 0.0 (never) when unset, unreadable or later than ``now``.

    A clock that ran ahead (a year, say) and was set back leaves future times behind. Such a
    time says nothing about when the event was; read raw it would pause compiles and report
    negative ages until the clock caught up, so it counts as unknown."""
    return not_future(_float(kv_get(conn, key, "0")), now)


def not_future(at: float | None, now: float) -> float:
    """``at``, or 0.0 when it is missing or later than ``now`` (see ``kv_time``)."""
    return at if at is not None and at <= now else 0.0


def _float(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def kv_set(conn: sqlite3.Connection, key: str, value: str, now: float | None = None) -> None:
    conn.execute(
        "INSERT INTO kv(key, value, updated_at) VALUES(?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
        (key, value, time.time() if now is None else now),
    )


def is_private(conn: sqlite3.Connection, session_id: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM private_sessions WHERE session_id=?", (session_id,)).fetchone()
        is not None
    )
