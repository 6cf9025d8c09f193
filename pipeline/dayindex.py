"""Which entry ids each daily log holds, so ``daily.append_entry`` costs O(1) per entry.

Role: ``append_entry`` must skip an id already in the day's file. Reading the whole file for each
entry made a busy day quadratic; this index (``.memc/cache/daily.db``, SQLite) remembers the ids
of each day together with the file's stamp (size, mtime, inode) as memc last left it.

Invariants:
- The file is the truth. The index answers only while the file's stamp is exactly the one
  recorded after memc's own last append or scan; any other change (an edit, a merge, a restore,
  another tool) makes the next append scan the file once and rebuild that day's ids.
- Used only under the daily file's lock (``append_entry`` holds it), so the stamp and the ids
  never disagree with what memc wrote. Only for an initialised data root (``ROOT/.memc``
  exists); anywhere else, and on any error, ``append_entry`` reads the file as before.
- Bookkeeping only: deleting the file loses nothing; it is written without fsync, and a
  damaged one is deleted and rebuilt.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS stamps (day TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                   ino INTEGER);
CREATE TABLE IF NOT EXISTS ids (day TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (day, id));
"""
_ID = re.compile(r"<!-- memc:entry id=(\S+) ")


def ids_in(text: str) -> set[str]:
    """Every id a ``<!-- memc:entry id=... `` marker names in ``text`` (well-formed or not)."""
    return set(_ID.findall(text))


def _stamp(st: os.stat_result | None) -> tuple[int, int, int]:
    return (-1, -1, -1) if st is None else (st.st_size, st.st_mtime_ns, st.st_ino)


class DayIndex:
    """The ids of the days of one daily folder. ``open`` returns None where there is no index."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, daily_dir: Path) -> DayIndex | None:
        memc = daily_dir.parent / ".memc"
        if not memc.is_dir():
            return None
        db = memc / "cache" / "daily.db"
        for _attempt in range(2):
            try:
                db.parent.mkdir(exist_ok=True)
                conn = sqlite3.connect(str(db), timeout=5, isolation_level=None)
                # A cache: no fsync (an append already fsyncs the daily file), no journal file
                # and no WAL to checkpoint on close. Damage after a power loss is rebuilt below.
                conn.execute("PRAGMA journal_mode=MEMORY")
                conn.execute("PRAGMA synchronous=OFF")
                conn.executescript(SCHEMA)
                return cls(conn)
            except sqlite3.OperationalError:  # busy or unwritable: append without the index
                return None
            except sqlite3.DatabaseError:
                try:
                    db.unlink()  # not a database any more: it is only a cache, start it again
                except OSError:
                    return None
            except (OSError, sqlite3.Error):
                return None
        return None

    def close(self) -> None:
        self.conn.close()

    def has(self, day: str, st: os.stat_result | None, entry_id: str) -> bool | None:
        """Whether the day's file holds ``entry_id``; None when the index cannot say (the file
        is not as memc left it)."""
        row = self.conn.execute(
            "SELECT size, mtime_ns, ino FROM stamps WHERE day=?", (day,)
        ).fetchone()
        if row is None or tuple(row) != _stamp(st):
            return None
        found = self.conn.execute("SELECT 1 FROM ids WHERE day=? AND id=?", (day, entry_id))
        return found.fetchone() is not None

    def reset(self, day: str, st: os.stat_result | None, ids: set[str]) -> None:
        """Record the ids a full read of the day's file found, with its stamp."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("DELETE FROM ids WHERE day=?", (day,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO ids VALUES (?, ?)", [(day, i) for i in ids]
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO stamps VALUES (?, ?, ?, ?)", (day, *_stamp(st))
            )

    def add(self, day: str, st: os.stat_result, entry_id: str) -> None:
        """Record memc's own append of ``entry_id``; ``st`` is the file's stamp after it."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (day, entry_id))
            self.conn.execute(
                "INSERT OR REPLACE INTO stamps VALUES (?, ?, ?, ?)", (day, *_stamp(st))
            )
