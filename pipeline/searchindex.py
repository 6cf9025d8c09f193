"""Building the local full-text index: SQLite FTS5 in ``.memc/search.db``.

This module writes the index (schema, ``refresh``, ``rebuild``); ``pipeline.search`` reads it.
Articles are indexed as one row each (title, aliases, tags, summary, body) and daily entries as one
row per entry (title, project, body). The files are the truth; the database is a cache that can be
deleted at any time (``rebuild``), and a corrupt or outdated one is rebuilt without asking.

Invariants:
- The schema (tables, FTS columns in the order ``search.WEIGHTS`` follows, ``SCHEMA_VERSION``) is
  defined here and only here.
- ``refresh`` is incremental: a stat walk compares (mtime_ns, size) with what was indexed; only
  files that differ are read, and only files whose content hash differs are re-parsed (a daily
  log entry by entry: a new entry adds one row, the day's other rows stay). Rows of files that
  disappeared are deleted. The whole refresh is one write transaction, so a reader sees the old
  index or the new one.
- The walk itself runs only when something may have changed (pipeline.searchjournal): the
  folders' own mtimes changed (a file created, renamed or deleted, as every atomic write does),
  or memc's writers named files they changed in place in the change journal (daily appends),
  which are then the only files looked at; or the last walk is ``FULL_CHECK_S`` old, which
  catches edits other tools made in place. So a search at 20,000 articles costs a few stats, not
  20,000.
- Damage is repaired, not reported: a search.db that is not a database or whose tables cannot be
  read is deleted and rebuilt from the files by the next ``connect``/``refresh`` (a lock held by
  another process is never mistaken for damage).
- Cheap to import (stdlib only, and hashlib and PyYAML only when files changed): ``search``
  imports it for the schema version on the SessionStart hook path, and ``memc search`` stays fast.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import searchjournal
from pipeline.paths import Paths
from pipeline.state import transaction

SCHEMA_VERSION = "4"
FULL_CHECK_S = 60.0  # a full stat walk at least this often (edits other tools made in place)
JOURNAL_MAX = 64 * 1024  # the change journal is emptied once this much of it has been read
# The FTS columns, in the order of the bm25 weights in ``search.WEIGHTS``.
FTS_COLUMNS = ("title", "aliases", "tags", "summary", "body")
ALIAS_SEP = " ; "

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, kind TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    title TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL DEFAULT '',
    aliases TEXT NOT NULL DEFAULT '', project TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS projects (key TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS docs_path ON docs(path);
CREATE INDEX IF NOT EXISTS docs_kind ON docs(kind, key);
CREATE INDEX IF NOT EXISTS docs_recent ON docs(kind, updated DESC, key);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    {", ".join(FTS_COLUMNS)},
    tokenize='porter unicode61 remove_diacritics 2'
);
INSERT OR REPLACE INTO meta(key, value) VALUES ('version', '{SCHEMA_VERSION}');
"""


@dataclass(frozen=True)
class RefreshStats:
    scanned: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.removed


# ---------------------------------------------------------------- database


def _open(paths: Paths) -> sqlite3.Connection:
    db = Path(paths.search_db)
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db), timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def is_busy_error(exc: sqlite3.Error) -> bool:
    """A lock held by another process: wait or give up, but never treat it as damage."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _discard(paths: Paths) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(str(paths.search_db) + suffix)
        except OSError:
            pass


def connect(paths: Paths) -> sqlite3.Connection:
    """search.db opened for writing with the current schema (resetting an outdated or bad one).

    A file that is not a database, or whose tables cannot be read (a damaged FTS shadow table
    fails with "vtable constructor failed"), is deleted and built again: it is only a cache of
    the files."""
    conn = None
    try:
        conn = _open(paths)
        row = None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        except sqlite3.DatabaseError as exc:
            if is_busy_error(exc):
                raise
        if row is None or row[0] != SCHEMA_VERSION:
            _reset(conn)
        conn.execute("SELECT rowid FROM fts LIMIT 1").fetchall()
        conn.execute("SELECT 1 FROM docs LIMIT 1").fetchall()
        return conn
    except sqlite3.DatabaseError as exc:
        if is_busy_error(exc):
            raise
        if conn is not None:
            conn.close()
        _discard(paths)
        conn = _open(paths)
        _reset(conn)
        return conn


def _reset(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        for table in ("fts", "docs", "files", "meta", "projects"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.executescript(SCHEMA)


# ---------------------------------------------------------------- parsing


def _rows_for(rel: str, kind: str, text: str) -> list[tuple]:
    """(kind, key, title, summary, updated, aliases, tags, body, project) rows for one file;
    ``project`` is a daily entry's project key (pipeline.project), '' for articles."""
    if kind == "article":
        from pipeline.wiki import parse_article

        key = rel[len("knowledge/") : -3]
        art = parse_article(key, text)
        return [
            (
                "article",
                key,
                art.title,
                art.summary,
                art.updated,
                ALIAS_SEP.join(art.aliases),
                " ".join(art.tags),
                art.body,
                "",
            )
        ]
    from pipeline.daily import parse_entries

    day = rel[len("daily/") : -3]
    return [
        (
            "daily",
            e.id,
            e.title,
            f"{e.day} {e.time} · {e.project}",
            e.day,
            "",
            e.project,
            e.body,
            e.project_key,
        )
        for e in parse_entries(text, day)
    ]


def _delete_path(conn: sqlite3.Connection, rel: str) -> None:
    conn.execute("DELETE FROM fts WHERE rowid IN (SELECT id FROM docs WHERE path=?)", (rel,))
    conn.execute("DELETE FROM docs WHERE path=?", (rel,))


def _insert_rows(conn: sqlite3.Connection, rel: str, rows: list[tuple]) -> None:
    for kind, key, title, summary, updated, aliases, tags, body, project in rows:
        cur = conn.execute(
            "INSERT INTO docs(path, kind, key, title, summary, updated, aliases, project) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (rel, kind, key, title, summary, updated, aliases, project),
        )
        conn.execute(
            "INSERT INTO fts(rowid, title, aliases, tags, summary, body) VALUES (?,?,?,?,?,?)",
            (cur.lastrowid, title, aliases, tags, summary, body),
        )
        if project:  # the projects seen, so that a prompt naming one can be told apart
            conn.execute(
                "INSERT OR REPLACE INTO projects(key, name) VALUES (?, ?)", (project, tags)
            )


# ---------------------------------------------------------------- refresh and rebuild


def refresh(paths: Paths, *, full: bool = False, now: float | None = None) -> RefreshStats:
    """Bring search.db up to date with knowledge/ and daily/ (incremental; see the module
    docstring for when it walks the folders). ``full`` walks them whatever the signals say."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    try:
        return _refresh_signalled(paths, full, now, started)
    except sqlite3.DatabaseError as exc:
        if is_busy_error(exc):
            raise
        # Damage the probe in ``connect`` could not see (a malformed page): rebuild from files.
        _discard(paths)
        return _refresh_signalled(paths, True, now, started)


def _refresh_signalled(paths: Paths, full: bool, now: float, started: float) -> RefreshStats:
    conn = connect(paths)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        signals = searchjournal.signals(
            paths
        )  # before the walk: a change during it shows next time
        offset = int(meta.get("journal_offset", "0") or 0)
        names, journal_end = searchjournal.read(paths, offset)
        walked_at = float(meta.get("full_check_at", "0") or 0)
        quiet = meta.get("signals") == signals and 0 <= now - walked_at < FULL_CHECK_S
        if quiet and not full:
            found = [
                one
                for one in (searchjournal.named_file(paths, rel) for rel in sorted(names))
                if one
            ]
            gone = set(names) - {rel for rel, _, _ in found}
            stats = _refresh(conn, paths, started, found, only=gone | {r for r, _, _ in found})
            updates = {"journal_offset": str(journal_end)}
        else:
            stats = _refresh(conn, paths, started, list(searchjournal.walk(paths)))
            updates = {"signals": signals, "full_check_at": repr(now)}
            updates["journal_offset"] = str(journal_end)
        if journal_end >= JOURNAL_MAX:
            try:
                if os.path.getsize(searchjournal.journal_file(paths)) == journal_end:
                    os.truncate(searchjournal.journal_file(paths), 0)
                    updates["journal_offset"] = "0"
            except OSError:
                pass
        if any(meta.get(k) != v for k, v in updates.items()):  # a quiet refresh writes nothing
            conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(updates.items())
            )
        return stats
    finally:
        conn.close()


def _refresh(
    conn: sqlite3.Connection,
    paths: Paths,
    started: float,
    on_disk: list[tuple[str, str, os.stat_result]],
    only: set[str] | None = None,
) -> RefreshStats:
    """Index what differs among ``on_disk``; a known file missing from it is deleted (only
    among ``only`` when given: a partial refresh knows nothing of the other files)."""
    if only is None:
        rows = conn.execute("SELECT path, mtime_ns, size, hash FROM files").fetchall()
    else:
        rows = [
            r
            for rel in sorted(only)
            for r in conn.execute(
                "SELECT path, mtime_ns, size, hash FROM files WHERE path=?", (rel,)
            ).fetchall()
        ]
    known = {row[0]: (row[1], row[2], row[3]) for row in rows}
    stale = [
        (rel, kind, st)
        for rel, kind, st in on_disk
        if known.get(rel, (None, None))[:2] != (st.st_mtime_ns, st.st_size)
    ]
    seen = {rel for rel, _, _ in on_disk}
    gone = [rel for rel in known if rel not in seen]
    counts = {"added": 0, "updated": 0, "removed": 0, "same": 0}
    if not stale and not gone:
        return RefreshStats(
            scanned=len(on_disk), unchanged=len(on_disk), seconds=time.perf_counter() - started
        )
    import hashlib  # only now: SessionStart imports this module, `memc status` refreshes

    with transaction(conn):
        for rel in gone:
            _delete_path(conn, rel)
            conn.execute("DELETE FROM files WHERE path=?", (rel,))
            counts["removed"] += 1
        for rel, kind, st in stale:
            try:
                raw = (paths.root / rel).read_bytes()
            except OSError:
                continue
            digest = hashlib.sha1(raw).hexdigest()
            previous = known.get(rel)
            if previous is not None and previous[2] == digest:
                counts["same"] += 1
            else:
                rows_for = _rows_for(rel, kind, raw.decode("utf-8", "replace"))
                if kind == "daily" and previous is not None:
                    _update_entries(conn, rel, rows_for)
                else:
                    _delete_path(conn, rel)
                    _insert_rows(conn, rel, rows_for)
                counts["updated" if previous is not None else "added"] += 1
            conn.execute(
                "INSERT OR REPLACE INTO files(path, kind, mtime_ns, size, hash) VALUES (?,?,?,?,?)",
                (rel, kind, st.st_mtime_ns, st.st_size, digest),
            )
    return RefreshStats(
        scanned=len(on_disk),
        added=counts["added"],
        updated=counts["updated"],
        removed=counts["removed"],
        unchanged=len(on_disk) - counts["added"] - counts["updated"],
        seconds=time.perf_counter() - started,
    )


def _update_entries(conn: sqlite3.Connection, rel: str, rows: list[tuple]) -> None:
    """A changed daily log, entry by entry: rows already indexed as they are stay; new or
    edited entries are inserted, vanished ones deleted (an append costs one insert)."""
    existing: dict[tuple, list[int]] = {}
    for doc_id, *values in conn.execute(
        "SELECT d.id, d.kind, d.key, d.title, d.summary, d.updated, d.aliases, f.tags, f.body,"
        " d.project FROM docs d JOIN fts f ON f.rowid = d.id WHERE d.path=?",
        (rel,),
    ):
        existing.setdefault(tuple(values), []).append(doc_id)
    fresh = []
    for row in rows:
        ids = existing.get(tuple(row))
        if ids:
            ids.pop()
        else:
            fresh.append(row)
    for ids in existing.values():
        for doc_id in ids:
            conn.execute("DELETE FROM fts WHERE rowid=?", (doc_id,))
            conn.execute("DELETE FROM docs WHERE id=?", (doc_id,))
    _insert_rows(conn, rel, fresh)


def rebuild(paths: Paths) -> RefreshStats:
    """Drop the index and build it again from the files."""
    conn = connect(paths)
    try:
        _reset(conn)
    finally:
        conn.close()
    return refresh(paths, full=True)
