"""Reading the local full-text index (``.memc/search.db``): the one read API.

`memc search`, `memc query`, the MCP server, compile and SessionStart injection (and per-prompt
recall) all read the index through this module; ``pipeline.searchindex`` owns the schema and
builds and refreshes the index.

- ``open_index(paths)`` gives an ``Index`` (a read-only connection) or None; its methods answer
  ``search`` (ranked hits with snippets for user text), ``related`` (documents related to a long
  text), ``ranked_articles`` (article facts for a set of words), ``recent_articles``,
  ``article_count`` and ``articles``. The module functions of the same names open, ask and close.
- ``recent_entries`` reads the newest daily entries straight from ``daily/``, so entries captured
  after the last refresh are included.
- Words and match expressions (``terms``, ``match_expression``, ``fts_query``; the words a
  ranking uses, ``frequencies`` / ``informative_words`` within ``POSTINGS_BUDGET``) live in
  ``pipeline.searchwords`` and are re-exported here.

Invariants:
- Read-only: the index is opened with ``mode=ro`` and never created, migrated or refreshed here.
  A missing, outdated or unreadable one reads as None (no hits); callers that need the files'
  current state call ``searchindex.refresh`` first.
- User text never reaches FTS5 as syntax: ``match_expression`` quotes every word, and
  ``fts_query`` keeps word tokens only, so no query can raise a syntax error.
- The bm25 column weights are ``WEIGHTS``, one constant in the order of ``searchindex.FTS_COLUMNS``.
- Stdlib + sqlite3 only and cheap to import: SessionStart imports it on the hook path.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.paths import Paths
from pipeline.searchindex import ALIAS_SEP, SCHEMA_VERSION
from pipeline.searchwords import MAX_QUERY_TERMS as MAX_QUERY_TERMS
from pipeline.searchwords import MIN_DOCS_FOR_COMMON as MIN_DOCS_FOR_COMMON
from pipeline.searchwords import POSTINGS_BUDGET as POSTINGS_BUDGET
from pipeline.searchwords import STOPWORDS as STOPWORDS
from pipeline.searchwords import frequencies as frequencies
from pipeline.searchwords import fts_query as fts_query
from pipeline.searchwords import informative_words as informative_words
from pipeline.searchwords import match_expression as match_expression
from pipeline.searchwords import rarest_within as rarest_within
from pipeline.searchwords import salient_terms as salient_terms
from pipeline.searchwords import terms as terms

if TYPE_CHECKING:
    from pipeline.daily import DailyEntry

# bm25 weights per FTS column: title, aliases, tags, summary, body
WEIGHTS = (10.0, 8.0, 3.0, 4.0, 1.0)
BM25 = f"bm25(fts, {', '.join(str(w) for w in WEIGHTS)})"
_MATCHED = "FROM fts JOIN docs d ON d.id = fts.rowid WHERE fts MATCH ?"
_ARTICLE_COLUMNS = "key, title, summary, updated, aliases"


@dataclass(frozen=True)
class Hit:
    kind: str  # "article" | "daily"
    key: str  # article key ("concepts/slug") or daily entry id
    title: str
    snippet: str
    score: float  # higher is better
    path: str  # relative to ROOT: "knowledge/concepts/slug.md", "daily/2026-11-20.md"


@dataclass(frozen=True)
class IndexedArticle:
    key: str
    title: str
    summary: str
    updated: str
    aliases: tuple[str, ...] = ()


def _article(key: str, title: str, summary: str, updated: str, aliases: str) -> IndexedArticle:
    return IndexedArticle(
        key, title, summary, updated, tuple(a for a in aliases.split(ALIAS_SEP) if a)
    )


_SNIPPET_LINK = re.compile(r"!?\[\[([^\]|]*?)(?:\|([^\]]*))?\]\]")


def plain_links(text: str) -> str:
    """Wikilinks as a reader sees them: ``[[concepts/x|Shown]]`` -> ``Shown``, ``[[concepts/x]]``
    -> ``x`` (highlight marks inside are kept)."""

    def shown(m: re.Match) -> str:
        return m.group(2) if m.group(2) else m.group(1).rsplit("/", 1)[-1].split("#", 1)[0]

    # a link the snippet window cut in half keeps no brackets either
    return _SNIPPET_LINK.sub(shown, text).replace("[[", "").replace("]]", "")


def _kind_clause(kind: str | None) -> tuple[str, tuple]:
    if kind is None:
        return "", ()
    if kind not in ("article", "daily"):
        raise ValueError(f"kind must be 'article' or 'daily', not {kind!r}")
    return " AND d.kind = ?", (kind,)


# ---------------------------------------------------------------- the index, read-only


class Index:
    """A read-only connection to search.db (use ``open_index``); close it, or use ``with``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def hits(
        self,
        match: str,
        limit: int,
        kind: str | None = None,
        exclude: Iterable[str] = (),
        snippets: bool = True,
    ) -> list[Hit]:
        """Hits for a MATCH expression (from ``match_expression``), best first."""
        if not match:
            return []
        # snippet() is computed for every matching row before ORDER BY ... LIMIT, which costs
        # seconds on large pages; callers that only need the ranking skip it.
        snippet_sql = "snippet(fts, -1, '«', '»', '…', 12)" if snippets else "''"
        clause, args = _kind_clause(kind)
        excluded = set(exclude)
        sql = (
            f"SELECT d.kind, d.key, d.title, {snippet_sql}, {BM25} AS rank, d.path "
            f"{_MATCHED}{clause} ORDER BY rank LIMIT ?"
        )
        rows = self.conn.execute(sql, (match, *args, limit + len(excluded))).fetchall()
        hits = [
            Hit(
                kind=k,
                key=key,
                title=title,
                snippet=plain_links(" ".join(str(snip).split())),
                score=round(-float(rank), 4),
                path=path,
            )
            for k, key, title, snip, rank, path in rows
            if key not in excluded
        ]
        return hits[:limit]

    def search(self, query: str, limit: int = 10, kind: str | None = None) -> list[Hit]:
        """Ranked hits for user text: all words first; if nothing matches, any content word
        (stopwords and contraction fragments such as "don" never drive that fallback)."""
        limit = max(1, int(limit))
        hits = self.hits(fts_query(query, mode="AND"), limit, kind)
        words = terms(query, drop_stopwords=True)[:MAX_QUERY_TERMS]
        if not hits and len(terms(query)) > 1 and words:
            hits = self.hits(match_expression(words, "OR"), limit, kind)
        return hits

    def related(
        self,
        text: str,
        limit: int = 8,
        exclude: Iterable[str] = (),
        kind: str | None = "article",
        snippets: bool = False,
    ) -> list[Hit]:
        """Documents most related to a longer text (an OR query over its salient terms)."""
        match = match_expression(salient_terms(text, MAX_QUERY_TERMS), "OR")
        return self.hits(match, max(1, int(limit)), kind, exclude, snippets)

    def doc_count(self) -> int:
        """Documents in the index (articles and daily entries): FTS5's N in bm25."""
        return int(self.conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    def ranked_articles(
        self,
        words: Iterable[str],
        limit: int,
        *,
        budget: int = POSTINGS_BUDGET,
        counts: Mapping[str, int] | None = None,
    ) -> list[IndexedArticle]:
        """Articles matching any of ``words`` (already tokenised), best first.

        Ranked by bm25 over ``informative_words`` (within ``budget`` matched documents), so the
        query costs what those words match, not the whole index; when that ranks fewer than
        ``limit`` articles, the rest are the newest-indexed articles holding one of the
        other words. ``counts``: document counts already taken with ``cap=budget + 1``."""
        words = [w for w in dict.fromkeys(words) if w]
        if not words:
            return []
        counts = frequencies(self.conn, words, cap=budget + 1, known=counts)
        ranked = informative_words(counts, self.doc_count(), budget)
        rows: list[tuple] = []
        if ranked:
            rows = self.conn.execute(
                f"SELECT d.key, d.title, d.summary, d.updated, d.aliases {_MATCHED} "
                f"AND d.kind='article' ORDER BY {BM25} LIMIT ?",
                (match_expression(ranked, "OR"), limit),
            ).fetchall()
        rest = [w for w in words if w not in ranked]
        if len(rows) < limit and rest:
            # Words too common to rank by (or past the budget) still say "related"; FTS5 walks
            # them newest row first and stops at the limit, so this costs little.
            seen = {row[0] for row in rows}
            more = self.conn.execute(
                f"SELECT d.key, d.title, d.summary, d.updated, d.aliases {_MATCHED} "
                "AND d.kind='article' ORDER BY fts.rowid DESC LIMIT ?",
                (match_expression(rest, "OR"), limit + len(seen)),
            ).fetchall()
            rows += [row for row in more if row[0] not in seen][: limit - len(rows)]
        return [_article(*row) for row in rows]

    def recent_articles(self, limit: int) -> list[IndexedArticle]:
        """The most recently updated articles (by their ``updated`` field), newest first."""
        rows = self.conn.execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM docs WHERE kind='article' "
            "ORDER BY updated DESC, key LIMIT ?",
            (limit,),
        ).fetchall()
        return [_article(*row) for row in rows]

    def project_entries(self, project_key: str, limit: int) -> list[tuple[str, str]]:
        """(day, entry id) of a project's newest daily entries in the index, newest day first."""
        rows = self.conn.execute(
            "SELECT updated, key FROM docs WHERE kind='daily' AND project=? "
            "ORDER BY updated DESC, id DESC LIMIT ?",
            (project_key, limit),
        ).fetchall()
        return [(str(day), str(key)) for day, key in rows]

    def article_count(self) -> int:
        return int(
            self.conn.execute("SELECT count(*) FROM docs WHERE kind='article'").fetchone()[0]
        )

    def articles(self) -> list[IndexedArticle]:
        """Every article in the index, sorted by key."""
        rows = self.conn.execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM docs WHERE kind='article' ORDER BY key"
        ).fetchall()
        return [_article(*row) for row in rows]


def open_index(paths: Paths, *, timeout: float = 10.0) -> Index | None:
    """The index opened read-only, or None when it is missing, outdated or unreadable."""
    db = paths.search_db
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        if row is not None and row[0] == SCHEMA_VERSION:
            conn.execute("SELECT 1 FROM docs LIMIT 1")
            conn.execute("SELECT rowid FROM fts LIMIT 1")  # a damaged FTS table fails here
            return Index(conn)
    except sqlite3.Error:
        pass
    conn.close()
    return None


# ---------------------------------------------------------------- one question, open and close


def search(paths: Paths, query: str, limit: int = 10, kind: str | None = None) -> list[Hit]:
    """``Index.search`` on the index as of its last refresh ([] without an index)."""
    index = open_index(paths)
    if index is None:
        return []
    with index:
        return index.search(query, limit, kind)


def related(
    paths: Paths,
    text: str,
    limit: int = 8,
    exclude: Iterable[str] = (),
    kind: str | None = "article",
    snippets: bool = False,
) -> list[Hit]:
    """``Index.related``: no snippets unless asked (compile and query read whole pages)."""
    index = open_index(paths)
    if index is None:
        return []
    with index:
        return index.related(text, limit, exclude, kind, snippets)


def indexed_articles(paths: Paths) -> list[IndexedArticle]:
    """Every article in the index, sorted by key, as of the last ``searchindex.refresh``."""
    index = open_index(paths)
    if index is None:
        return []
    with index:
        return index.articles()


def recent_entries(
    paths: Paths, project: str | None = None, *, days: int = 14, limit: int = 8
) -> list[DailyEntry]:
    """The newest daily entries (of ``project`` when given) from the last ``days`` daily files,
    newest first, read from the files themselves."""
    from pipeline.daily import list_days, read_entries

    out: list[DailyEntry] = []
    for day in reversed(list_days(paths.daily)[-days:]):
        mine = [
            e for e in read_entries(paths.daily, day) if project is None or e.project == project
        ]
        out.extend(reversed(mine))
        if len(out) >= limit:
            break
    return out[:limit]
