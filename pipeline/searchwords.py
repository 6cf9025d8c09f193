"""Words and FTS5 match expressions: what the index is asked for.

- ``terms`` tokenises user text (lower-cased, deduplicated, in order; ``STOPWORDS`` dropped on
  request); ``salient_terms`` picks the most frequent words of a long text; ``match_expression``
  and ``fts_query`` quote words into a MATCH expression, so user text never reaches FTS5 as
  syntax and no query can raise a syntax error.
- ``frequencies`` counts the documents that hold each word; ``informative_words`` (and
  ``rarest_within``) choose the words a ranking uses: none that match nothing or half the index
  (they move no bm25 score), and the rarest within ``POSTINGS_BUDGET`` matched documents, so a
  SessionStart ranking costs the same at 2,000 articles or 50,000 (and is exact while its words
  match fewer documents than the budget).

Stdlib + sqlite3 only; ``pipeline.search`` re-exports every name (its callers use them there).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping

MAX_QUERY_TERMS = 32
# An OR query costs what its words match: words whose document counts add up past this are left
# out of a ranking, rarest kept (``informative_words``). Below it, rankings are exact.
POSTINGS_BUDGET = 5_000
MIN_DOCS_FOR_COMMON = 20  # below this many documents, common words still rank
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by can did do does for from had has have how i if in into is it its"  # noqa: SIM905 (reads best as one string)
    " me my no not of on or our so than that the their them then there these they this to too up"
    " us was we were what when where which while who why will with you your yes just also use used"
    " using via per about after before over under should would could may might must been being any"
    " all some such only very more most other same each both few new"
    # what is left of a contraction once the tokenizer splits it at the apostrophe
    " don doesn didn isn aren wasn weren won wouldn shouldn couldn haven hasn ll ve re".split()
)


def terms(text: str, *, drop_stopwords: bool = False) -> list[str]:
    """Word tokens of ``text``, lower-cased, deduplicated, in order."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(str(text).lower()):
        if drop_stopwords and (tok in STOPWORDS or len(tok) < 2):
            continue
        if tok not in out:
            out.append(tok)
    return out


def salient_terms(text: str, limit: int = 24) -> list[str]:
    """The most frequent non-stopword terms of a long text (ties broken by first use)."""
    counts: dict[str, int] = {}
    for tok in _TOKEN_RE.findall(str(text).lower()):
        if tok in STOPWORDS or len(tok) < 3 or tok.isdigit():
            continue
        counts[tok] = counts.get(tok, 0) + 1
    order = {t: i for i, t in enumerate(counts)}
    return sorted(counts, key=lambda t: (-counts[t], order[t]))[:limit]


def match_expression(words: Iterable[str], mode: str = "OR") -> str:
    """An FTS5 MATCH expression joining each word, quoted as a string, with AND or OR."""
    return f" {mode} ".join('"' + w.replace('"', '""') + '"' for w in words)


def frequencies(
    conn: sqlite3.Connection,
    words: Iterable[str],
    *,
    cap: int | None = None,
    known: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """How many documents hold each word (FTS5 matching: stemmed, any column), in the order
    given; counted up to ``cap`` when given (then ``cap`` means "that many or more"). Words in
    ``known`` (counts taken before with the same ``cap``) are not counted again."""
    sql = "SELECT count(*) FROM fts WHERE fts MATCH ?"
    if cap is not None:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM fts WHERE fts MATCH ? LIMIT {int(cap)})"
    known = known or {}
    out: dict[str, int] = {}
    for word in words:
        if word in known:
            out[word] = known[word]
        elif word not in out:
            out[word] = int(conn.execute(sql, (match_expression([word]),)).fetchone()[0])
    return out


def informative_words(
    counts: dict[str, int], total: int, budget: int = POSTINGS_BUDGET
) -> list[str]:
    """The words worth ranking by, rarest first, from their document counts.

    - A word no document holds matches nothing.
    - A word held by half the documents or more changes no bm25 order: FTS5 clamps its inverse
      document frequency, log((N - n + 0.5) / (n + 0.5)), to 1e-6 once that is not positive.
      (An index of fewer than ``MIN_DOCS_FOR_COMMON`` documents keeps such words: there every
      word is in half the documents.)
    - The rest, rarest first, while their counts add up to at most ``budget``: the rarest words
      carry most of a bm25 score, and an OR query costs what its words match. So where the
      words match fewer documents than ``budget`` in all, the ranking is the one an OR query
      over all of them gives; past it, the words that would make it costlier are left out.

    ``counts`` (from ``frequencies``) may be counted up to ``budget + 1`` only."""
    common = total >= MIN_DOCS_FOR_COMMON
    return rarest_within(
        {w: n for w, n in counts.items() if n > 0 and not (common and 2 * n >= total)}, budget
    )


def rarest_within(counts: dict[str, int], budget: int) -> list[str]:
    """The words of ``counts`` rarest first (ties in their order), while their document counts
    add up to at most ``budget``."""
    chosen: list[str] = []
    spent = 0
    for word in sorted(counts, key=lambda w: counts[w]):
        if spent + counts[word] > budget:
            break
        chosen.append(word)
        spent += counts[word]
    return chosen


def fts_query(text: str, *, mode: str = "AND") -> str:
    """A valid FTS5 MATCH expression for arbitrary user text ('' when it has no words)."""
    return match_expression(terms(text)[:MAX_QUERY_TERMS], mode)
