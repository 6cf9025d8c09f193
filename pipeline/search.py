"""Local full-text search: SQLite FTS5 (bm25) in ``.memc/search.db``.

Indexes articles (title, aliases, tags, summary, body) and daily entries (one row per entry:
title, project, body). The files are the truth; this database is a cache that can be deleted at
any time (``rebuild``), and a corrupt or outdated one is rebuilt without asking.

Invariants:
- ``refresh`` is incremental: a stat walk compares (mtime_ns, size) with what was indexed; only
  files that differ are read, and only files whose content hash differs are re-parsed. Rows of
  files that disappeared are deleted. The whole refresh is one write transaction, so a reader
  sees the old index or the new one.
- User text never reaches FTS5 as syntax: ``fts_query`` keeps word tokens only and quotes each
  one, so no query can raise a syntax error.
- Cheap to import (stdlib only at module level; PyYAML is imported only when an article changed)
  so that ``memc search`` stays fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = "2"
ARTICLE_FOLDERS = ("concepts", "connections", "qa")
# bm25 weights per column: title, aliases, tags, summary, body
WEIGHTS = (10.0, 8.0, 3.0, 4.0, 1.0)
MAX_QUERY_TERMS = 32
ALIAS_SEP = " ; "
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "yes",
        "just",
        "also",
        "use",
        "used",
        "using",
        "via",
        "per",
        "about",
        "after",
        "before",
        "over",
        "under",
        "should",
        "would",
        "could",
        "may",
        "might",
        "must",
        "been",
        "being",
        "were",
        "any",
        "all",
        "some",
        "such",
        "only",
        "very",
        "more",
        "most",
        "other",
        "same",
        "each",
        "both",
        "few",
        "new",
    ]
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, kind TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    title TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL DEFAULT '',
    aliases TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS docs_path ON docs(path);
CREATE INDEX IF NOT EXISTS docs_kind ON docs(kind, key);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    title, aliases, tags, summary, body,
    tokenize='porter unicode61 remove_diacritics 2'
);
INSERT OR REPLACE INTO meta(key, value) VALUES ('version', '{SCHEMA_VERSION}');
"""


@dataclass(frozen=True)
class Hit:
    kind: str  # "article" | "daily"
    key: str  # article key ("concepts/slug") or daily entry id
    title: str
    snippet: str
    score: float  # higher is better
    path: str  # relative to ROOT: "knowledge/concepts/slug.md", "daily/2026-11-20.md"


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


@dataclass(frozen=True)
class IndexedArticle:
    key: str
    title: str
    summary: str
    updated: str
    aliases: tuple[str, ...] = ()


# ---------------------------------------------------------------- database


def _open(paths) -> sqlite3.Connection:
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


def connect(paths) -> sqlite3.Connection:
    """Open search.db with the current schema; an outdated or corrupt one is recreated."""
    try:
        conn = _open(paths)
        row = None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        except sqlite3.DatabaseError:
            pass
        if row is None or row[0] != SCHEMA_VERSION:
            _reset(conn)
        return conn
    except sqlite3.DatabaseError:
        # Not a database (or damaged beyond use): it is only a cache, start over.
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(paths.search_db) + suffix)
            except OSError:
                pass
        conn = _open(paths)
        _reset(conn)
        return conn


def _reset(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in ("fts", "docs", "files", "meta"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.executescript(SCHEMA)


# ---------------------------------------------------------------- walking and parsing


def _walk(paths) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to ROOT, kind, stat) of every indexable file; no symlinks, no hidden files."""
    for folder in ARTICLE_FOLDERS:
        yield from _scan(paths.knowledge / folder, f"knowledge/{folder}/", "article")
    yield from _scan(paths.daily, "daily/", "daily", daily=True)


def _scan(folder: Path, prefix: str, kind: str, daily: bool = False):
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.endswith(".md") or name.startswith("."):
            continue
        if daily and not re.match(r"^\d{4}-\d{2}-\d{2}\.md$", name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        yield prefix + name, kind, st


def _rows_for(rel: str, kind: str, text: str) -> list[tuple]:
    """(kind, key, title, summary, updated, aliases, tags, body) rows for one file."""
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
            )
        ]
    from pipeline.daily import parse_entries

    day = rel[len("daily/") : -3]
    return [
        ("daily", e.id, e.title, f"{e.day} {e.time} · {e.project}", e.day, "", e.project, e.body)
        for e in parse_entries(text, day)
    ]


def _delete_path(conn: sqlite3.Connection, rel: str) -> None:
    conn.execute("DELETE FROM fts WHERE rowid IN (SELECT id FROM docs WHERE path=?)", (rel,))
    conn.execute("DELETE FROM docs WHERE path=?", (rel,))


def _insert_rows(conn: sqlite3.Connection, rel: str, rows: list[tuple]) -> None:
    for kind, key, title, summary, updated, aliases, tags, body in rows:
        cur = conn.execute(
            "INSERT INTO docs(path, kind, key, title, summary, updated, aliases) "
            "VALUES (?,?,?,?,?,?,?)",
            (rel, kind, key, title, summary, updated, aliases),
        )
        conn.execute(
            "INSERT INTO fts(rowid, title, aliases, tags, summary, body) VALUES (?,?,?,?,?,?)",
            (cur.lastrowid, title, aliases, tags, summary, body),
        )


def refresh(paths, *, now: float | None = None) -> RefreshStats:
    """Bring search.db up to date with knowledge/ and daily/ (incremental)."""
    started = time.perf_counter()
    conn = connect(paths)
    try:
        return _refresh(conn, paths, started)
    finally:
        conn.close()


def _refresh(conn: sqlite3.Connection, paths, started: float) -> RefreshStats:
    known = {
        row[0]: (row[1], row[2], row[3])
        for row in conn.execute("SELECT path, mtime_ns, size, hash FROM files")
    }
    on_disk = list(_walk(paths))
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
    conn.execute("BEGIN IMMEDIATE")
    try:
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
                _delete_path(conn, rel)
                _insert_rows(conn, rel, _rows_for(rel, kind, raw.decode("utf-8", "replace")))
                counts["updated" if previous is not None else "added"] += 1
            conn.execute(
                "INSERT OR REPLACE INTO files(path, kind, mtime_ns, size, hash) VALUES (?,?,?,?,?)",
                (rel, kind, st.st_mtime_ns, st.st_size, digest),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return RefreshStats(
        scanned=len(on_disk),
        added=counts["added"],
        updated=counts["updated"],
        removed=counts["removed"],
        unchanged=len(on_disk) - counts["added"] - counts["updated"],
        seconds=time.perf_counter() - started,
    )


def rebuild(paths) -> RefreshStats:
    """Drop the index and build it again from the files."""
    conn = connect(paths)
    try:
        _reset(conn)
        return _refresh(conn, paths, time.perf_counter())
    finally:
        conn.close()


# ---------------------------------------------------------------- querying


def terms(text: str, *, drop_stopwords: bool = False) -> list[str]:
    """Word tokens of ``text``, lower-cased, deduplicated, in order."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(str(text).lower()):
        if drop_stopwords and (tok in STOPWORDS or len(tok) < 2):
            continue
        if tok not in out:
            out.append(tok)
    return out


def fts_query(text: str, *, mode: str = "AND") -> str:
    """A valid FTS5 MATCH expression for arbitrary user text ('' when it has no words)."""
    toks = terms(text)[:MAX_QUERY_TERMS]
    quoted = ['"' + t.replace('"', '""') + '"' for t in toks]
    return f" {mode} ".join(quoted)


def _kind_clause(kind: str | None) -> tuple[str, tuple]:
    if kind is None:
        return "", ()
    if kind not in ("article", "daily"):
        raise ValueError(f"kind must be 'article' or 'daily', not {kind!r}")
    return " AND d.kind = ?", (kind,)


def _run(
    conn, match: str, limit: int, kind: str | None, exclude: Iterable[str], snippets: bool = True
) -> list[Hit]:
    if not match:
        return []
    # snippet() is computed for every matching row before ORDER BY ... LIMIT, which costs
    # seconds on large pages; callers that only need the ranking skip it.
    snippet_sql = "snippet(fts, -1, '«', '»', '…', 12)" if snippets else "''"
    clause, args = _kind_clause(kind)
    excluded = set(exclude)
    weights = ", ".join(str(w) for w in WEIGHTS)
    sql = (
        f"SELECT d.kind, d.key, d.title, {snippet_sql}, "
        f"bm25(fts, {weights}) AS rank, d.path "
        f"FROM fts JOIN docs d ON d.id = fts.rowid WHERE fts MATCH ?{clause} "
        f"ORDER BY rank LIMIT ?"
    )
    rows = conn.execute(sql, (match, *args, limit + len(excluded))).fetchall()
    hits = [
        Hit(
            kind=k,
            key=key,
            title=title,
            snippet=" ".join(str(snip).split()),
            score=round(-float(rank), 4),
            path=path,
        )
        for k, key, title, snip, rank, path in rows
        if key not in excluded
    ]
    return hits[:limit]


def search(paths, query: str, limit: int = 10, kind: str | None = None) -> list[Hit]:
    """Ranked hits for user text: all words first; if nothing matches, any word."""
    limit = max(1, int(limit))
    conn = connect(paths)
    try:
        hits = _run(conn, fts_query(query, mode="AND"), limit, kind, ())
        if not hits and len(terms(query)) > 1:
            hits = _run(conn, fts_query(query, mode="OR"), limit, kind, ())
        return hits
    finally:
        conn.close()


def salient_terms(text: str, limit: int = 24) -> list[str]:
    """The most frequent non-stopword terms of a long text (ties broken by first use)."""
    counts: dict[str, int] = {}
    for tok in _TOKEN_RE.findall(str(text).lower()):
        if tok in STOPWORDS or len(tok) < 3 or tok.isdigit():
            continue
        counts[tok] = counts.get(tok, 0) + 1
    order = {t: i for i, t in enumerate(counts)}
    return sorted(counts, key=lambda t: (-counts[t], order[t]))[:limit]


def related(
    paths,
    text: str,
    limit: int = 8,
    exclude: Iterable[str] = (),
    kind: str | None = "article",
    snippets: bool = False,
) -> list[Hit]:
    """Documents most related to a longer text (an OR query over its salient terms).

    Hits carry no snippet unless ``snippets`` is set: compile and query read the pages whole.
    """
    toks = salient_terms(text, MAX_QUERY_TERMS)
    if not toks:
        return []
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in toks)
    conn = connect(paths)
    try:
        return _run(conn, match, max(1, int(limit)), kind, exclude, snippets)
    finally:
        conn.close()


def indexed_articles(paths) -> list[IndexedArticle]:
    """Every article in the index (key, title, summary, updated), sorted by key.

    Reflects the files as of the last ``refresh``; call that first when it matters.
    """
    conn = connect(paths)
    try:
        rows = conn.execute(
            "SELECT key, title, summary, updated, aliases FROM docs "
            "WHERE kind='article' ORDER BY key"
        ).fetchall()
    finally:
        conn.close()
    return [
        IndexedArticle(
            key, title, summary, updated, tuple(a for a in aliases.split(ALIAS_SEP) if a)
        )
        for key, title, summary, updated, aliases in rows
    ]
