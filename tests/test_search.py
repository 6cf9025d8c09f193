"""Search index: incremental refresh, ranking, safe queries, the CLI."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline import search, searchindex, searchjournal
from pipeline.wiki import Article, render_article
from tests.helpers import run_memc, write_page


def write_daily(paths, day, entries):
    blocks = [f"# Daily Log: {day}\n"]
    for i, (project, title, body) in enumerate(entries):
        blocks.append(
            f"### 10:0{i} · {project} · {title}\n"
            f"<!-- memc:entry id={day.replace('-', '')}{i:04d} session=s1 event=stop -->\n"
            f"{body}\n"
        )
    path = paths.daily / f"{day}.md"
    path.write_text("\n".join(blocks))
    return path


@pytest.fixture
def paths(settings):
    return settings.paths


def test_refresh_is_incremental(paths):
    a = write_page(paths, "concepts/advisory-locks", "Advisory locks", "pg_try_advisory_lock")
    write_page(paths, "qa/why-naive", "Why naive datetimes break", "timestamptz")
    write_daily(paths, "2026-11-20", [("acme", "Queue fix", "advisory locks in worker")])
    first = searchindex.refresh(paths)
    assert (first.added, first.updated, first.removed) == (3, 0, 0)
    again = searchindex.refresh(paths, full=True)
    assert again.changed == 0 and again.unchanged == 3
    # touched but identical content: re-hashed, not re-parsed (edits in place, as another tool
    # makes them, are found by the full walk: full=True, or FULL_CHECK_S later)
    os.utime(a, ns=(1, 1))
    touched = searchindex.refresh(paths, full=True)
    assert touched.changed == 0
    a.write_text(a.read_text().replace("pg_try_advisory_lock", "hashtextextended"))
    changed = searchindex.refresh(paths, full=True)
    assert changed.updated == 1
    assert [h.key for h in search.search(paths, "hashtextextended")] == ["concepts/advisory-locks"]
    assert search.search(paths, "pg_try_advisory_lock") == []
    a.unlink()
    gone = searchindex.refresh(paths)
    assert gone.removed == 1
    assert search.search(paths, "hashtextextended") == []


def test_title_and_alias_outrank_body(paths):
    write_page(paths, "concepts/postgres", "Postgres", "a database")
    write_page(paths, "concepts/other", "Other", "we mention postgres once in the body")
    write_page(paths, "concepts/pg", "PG tips", "tips", aliases=("postgres tricks",))
    searchindex.refresh(paths)
    keys = [h.key for h in search.search(paths, "postgres")]
    assert keys[0] == "concepts/postgres"
    assert keys.index("concepts/pg") < keys.index("concepts/other")


def test_daily_entries_are_rows_with_kind_filter(paths):
    write_daily(
        paths,
        "2026-11-19",
        [
            ("billing", "Flaky invoice test", "timestamptz naive"),
            ("acme", "Rate limit", "redis token bucket"),
        ],
    )
    write_page(paths, "concepts/redis", "Redis", "token bucket")
    searchindex.refresh(paths)
    daily = search.search(paths, "token bucket", kind="daily")
    assert [h.title for h in daily] == ["Rate limit"]
    assert daily[0].path == "daily/2026-11-19.md" and daily[0].kind == "daily"
    arts = search.search(paths, "token bucket", kind="article")
    assert [h.key for h in arts] == ["concepts/redis"]
    assert "«token»" in arts[0].snippet or "«bucket»" in arts[0].snippet


def test_all_words_then_any_word(paths):
    write_page(paths, "concepts/a", "Alpha", "postgres locks")
    write_page(paths, "concepts/b", "Beta", "redis")
    searchindex.refresh(paths)
    assert [h.key for h in search.search(paths, "postgres locks")] == ["concepts/a"]
    assert {h.key for h in search.search(paths, "postgres redis")} == {"concepts/a", "concepts/b"}


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "AND OR NOT",
        "*",
        "(",
        "NEAR(a b",
        "title:x",
        'a"b',
        "",
        "   ",
        "^foo",
        "-x",
        "' OR 1=1 --",
        "\x00",
    ],
)
def test_hostile_queries_never_raise(paths, query):
    write_page(paths, "concepts/a", "Alpha", "text")
    searchindex.refresh(paths)
    assert isinstance(search.search(paths, query), list)


@hsettings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_is_a_valid_query(tmp_path_factory, text):
    from pipeline.config import Paths

    root = tmp_path_factory.mktemp("q")
    (root / "knowledge" / "concepts").mkdir(parents=True)
    searchindex.refresh(Paths(root))  # an (empty) index, so the query really reaches FTS5
    assert search.search(Paths(root), text) == []  # never an FTS5 syntax error, whatever the text


def test_corrupt_database_is_rebuilt(paths):
    write_page(paths, "concepts/a", "Alpha", "text")
    paths.search_db.write_bytes(b"this is not sqlite" * 100)
    stats = searchindex.refresh(paths)
    assert stats.added == 1
    assert search.search(paths, "alpha")[0].key == "concepts/a"


def _damage_fts(paths):
    import sqlite3

    conn = sqlite3.connect(paths.search_db)
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("DELETE FROM sqlite_master WHERE name='fts_config'")  # an FTS shadow table
    conn.commit()
    conn.close()


def test_damaged_fts_table_is_rebuilt_for_search_compile_and_query(root, capsys, monkeypatch):
    """'vtable constructor failed' once crashed search, compile and query (exit 3)."""
    from pipeline.cli import main
    from pipeline.config import load_settings

    paths = load_settings(root).paths
    write_page(paths, "concepts/a", "Advisory locks", "postgres advisory locks")
    searchindex.refresh(paths)
    _damage_fts(paths)
    assert search.open_index(paths) is None  # readers see no index, never a crash
    monkeypatch.setenv("MEMC_BACKEND", "extractive")
    assert main(["--root", str(root), "search", "advisory", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["key"] == "concepts/a"
    _damage_fts(paths)
    assert main(["--root", str(root), "query", "what about advisory locks?", "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)
    _damage_fts(paths)
    assert main(["--root", str(root), "compile", "--json"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "search", "postgres", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["key"] == "concepts/a"


def test_lock_errors_are_not_mistaken_for_damage():
    import sqlite3

    assert searchindex.is_busy_error(sqlite3.OperationalError("database is locked"))
    assert not searchindex.is_busy_error(sqlite3.OperationalError("vtable constructor failed"))


def test_related_excludes_and_ignores_hidden_and_symlinks(paths, tmp_path):
    write_page(paths, "concepts/a", "Advisory locks", "postgres advisory locks worker")
    write_page(paths, "concepts/b", "Worker pool", "worker threads")
    (paths.knowledge / "concepts" / ".hidden.md").write_text("---\ntitle: Hidden worker\n---\n")
    outside = tmp_path / "outside.md"
    outside.write_text("---\ntitle: Outside worker\n---\nworker")
    (paths.knowledge / "concepts" / "link.md").symlink_to(outside)
    searchindex.refresh(paths)
    hits = search.related(paths, "the worker took postgres advisory locks", exclude=["concepts/b"])
    assert [h.key for h in hits] == ["concepts/a"]


def test_cli_search_json_and_text(root, capsys, monkeypatch):
    from pipeline.cli import main
    from pipeline.config import load_settings

    write_page(load_settings(root).paths, "concepts/a", "Advisory locks", "postgres")
    monkeypatch.chdir(root)
    assert main(["search", "advisory", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hits"][0]["key"] == "concepts/a"
    assert main(["search", "nothing-like-this"]) == 0
    assert "No matches" in capsys.readouterr().out


def test_read_api_never_creates_or_migrates_the_index(paths):
    write_page(paths, "concepts/a", "Alpha", "text")
    assert search.open_index(paths) is None
    assert search.search(paths, "alpha") == [] and search.indexed_articles(paths) == []
    assert not paths.search_db.exists()  # reading made no database
    searchindex.refresh(paths)
    conn = searchindex.connect(paths)
    conn.execute("UPDATE meta SET value='0' WHERE key='version'")
    conn.close()
    assert search.open_index(paths) is None  # an outdated schema reads as no index
    searchindex.refresh(paths)  # the writer rebuilds it
    assert [h.key for h in search.search(paths, "alpha")] == ["concepts/a"]


def test_index_ranked_and_recent_articles(paths):
    pages = [
        Article("concepts/locks", "Advisory locks", "one writer", body="pg", updated="2026-11-01"),
        Article("concepts/pool", "Worker pool", body="advisory in the body", updated="2026-11-03"),
        Article("concepts/other", "Other", aliases=("Else",), body="none", updated="2026-11-02"),
    ]
    for art in pages:
        (paths.knowledge / f"{art.key}.md").write_text(render_article(art))
    searchindex.refresh(paths)
    with search.open_index(paths) as index:
        ranked = index.ranked_articles(["advisory", 'we"ird'], limit=5)
        assert [a.key for a in ranked] == ["concepts/locks", "concepts/pool"]  # title outranks body
        assert ranked[0].summary == "one writer"
        assert index.ranked_articles([], limit=5) == []
        recent = index.recent_articles(2)
        assert [(a.key, a.updated) for a in recent] == [
            ("concepts/pool", "2026-11-03"),
            ("concepts/other", "2026-11-02"),
        ]
        assert recent[1].aliases == ("Else",)
        assert index.article_count() == 3


def test_match_expression_quotes_every_word():
    assert search.match_expression(["a", 'b"c'], "OR") == '"a" OR "b""c"'
    assert search.fts_query("NEAR(x y) OR z") == '"near" AND "x" AND "y" AND "or" AND "z"'
    assert search.match_expression([]) == ""


def test_recent_entries_newest_first_by_project(paths):
    write_daily(paths, "2026-11-01", [("acme", "Old acme", "b"), ("other", "Other work", "b")])
    write_daily(paths, "2026-11-02", [("acme", "First", "b"), ("acme", "Second", "b")])
    titles = [e.title for e in search.recent_entries(paths, "acme", limit=3)]
    assert titles == ["Second", "First", "Old acme"]
    assert [e.title for e in search.recent_entries(paths, days=1)] == ["Second", "First"]
    assert len(search.recent_entries(paths)) == 4


def test_snippets_show_links_as_text():
    from pipeline.search import plain_links

    assert plain_links("see [[concepts/«billing»-service|«billing»-service]] ·") == (
        "see «billing»-service ·"
    )
    assert plain_links("[[concepts/postgres]] and [[daily/2026-11-18#Notes]]") == (
        "postgres and 2026-11-18"
    )
    assert plain_links("…ends in [[concepts/bill…") == "…ends in concepts/bill…"


# --- search: an empty query said "No matches" with exit 0 ---------------------------------------


def test_search_without_words_is_a_usage_error(root, capsys):
    assert run_memc(root, "search", "") == 2
    assert run_memc(root, "search", "*") == 2
    assert "give one or more words" in capsys.readouterr().err


def test_refresh_walks_only_when_something_may_have_changed(paths, monkeypatch):
    from pipeline.daily import append_entry, render_entry
    from pipeline.models import Entry

    a = write_page(paths, "concepts/advisory-locks", "Advisory locks", "pg_try_advisory_lock")
    t0 = 1_900_000_000.0
    assert searchindex.refresh(paths, now=t0).added == 1
    walks = []
    real_walk = searchjournal.walk
    monkeypatch.setattr(searchjournal, "walk", lambda p: walks.append(1) or real_walk(p))
    assert searchindex.refresh(paths, now=t0 + 1).changed == 0 and walks == []  # a few stats
    # an edit in place by another tool: found by the periodic full check
    a.write_text(a.read_text().replace("pg_try_advisory_lock", "hashtextextended"))
    assert search.search(paths, "hashtextextended") == []
    assert searchindex.refresh(paths, now=t0 + searchindex.FULL_CHECK_S + 2).updated == 1
    assert walks == [1]
    # a new page (an atomic write, as memc's own writers do): the folder's mtime shows it at once
    write_page(paths, "concepts/new-page", "New page", "brandnewword")
    assert searchindex.refresh(paths, now=t0 + searchindex.FULL_CHECK_S + 3).added == 1
    assert [h.key for h in search.search(paths, "brandnewword")] == ["concepts/new-page"]

    # a daily append (in place, folder mtime unchanged): named in the change journal
    def block(i):
        return render_entry(
            Entry(True, title=f"entry {i}", context=f"journalword{i}"),
            entry_id=f"{i:012x}",
            time_hhmm="10:00",
            project="p",
            session_id="s",
            event="stop",
        )

    append_entry(paths.daily, "2026-11-20", block(1), f"{1:012x}")
    searchindex.refresh(paths, full=True, now=t0 + 100)  # the day file exists and is indexed
    walks.clear()
    append_entry(paths.daily, "2026-11-20", block(2), f"{2:012x}")
    inserted = []
    real_insert = searchindex._insert_rows
    monkeypatch.setattr(
        searchindex,
        "_insert_rows",
        lambda c, rel, rows: inserted.extend(rows) or real_insert(c, rel, rows),
    )
    assert searchindex.refresh(paths, now=t0 + 101).updated == 1 and walks == []
    assert [r[1] for r in inserted] == [f"{2:012x}"]  # one new row, the day's others kept
    assert {h.key for h in search.search(paths, "journalword1 OR journalword2")} == {
        f"{1:012x}",
        f"{2:012x}",
    }


def _ranking_index(paths, n_filler=24):
    """Pages where "shared" is in every page (too common to rank by), "rare" in three and
    "medium" in six; each filler page holds only "shared"."""
    for i in range(n_filler):
        write_page(paths, f"concepts/filler-{i:02d}", f"Filler {i}", f"shared text {i}")
    for i in range(3):
        write_page(paths, f"concepts/rare-{i}", f"Rare {i}", "rare shared " + "rare " * i)
    for i in range(6):
        write_page(paths, f"qa/medium-{i}", f"Medium {i}", "medium shared " + "medium " * i)
    searchindex.refresh(paths)


def test_informative_words_drop_absent_and_common_words_and_keep_the_rarest_in_budget():
    counts = {"absent": 0, "everywhere": 60, "half": 50, "rare": 3, "medium": 6, "tie": 6}
    assert search.informative_words(counts, 100, budget=100) == ["rare", "medium", "tie"]
    assert search.informative_words(counts, 100, budget=9) == ["rare", "medium"]
    assert search.informative_words(counts, 100, budget=2) == []
    # a tiny index keeps common words: there every word is in half the documents
    assert search.informative_words({"a": 3, "b": 1}, 4, budget=100) == ["b", "a"]


def test_ranked_articles_rank_exactly_as_the_full_or_query_below_the_budget(paths):
    _ranking_index(paths)
    words = ["shared", "rare", "medium"]
    with search.open_index(paths) as index:
        full = [
            key
            for (key,) in index.conn.execute(
                f"SELECT d.key {search._MATCHED} AND d.kind='article' "
                f"ORDER BY {search.BM25} LIMIT 9",
                (search.match_expression(words),),
            )
        ]
        ranked = [a.key for a in index.ranked_articles(words, limit=9)]
    assert sorted(full) == sorted(ranked) and len(ranked) == 9  # the 9 pages with rare/medium
    assert ranked == full  # and in the same order: "shared" moved no score


def test_ranked_articles_stay_within_the_budget_and_fill_with_the_newest(paths):
    _ranking_index(paths)
    queries: list[str] = []
    with search.open_index(paths) as index:
        index.conn.set_trace_callback(queries.append)
        ranked = [a.key for a in index.ranked_articles(["shared", "medium", "rare"], 5, budget=4)]
    ranking = [q for q in queries if "ORDER BY bm25" in q]
    assert len(ranking) == 1 and '"rare"' in ranking[0] and '"medium"' not in ranking[0]
    assert sorted(ranked[:3]) == ["concepts/rare-0", "concepts/rare-1", "concepts/rare-2"]
    # the rest hold the left-out words, the most recently indexed first
    with search.open_index(paths) as index:
        newest = [
            key
            for (key,) in index.conn.execute(
                "SELECT key FROM docs WHERE key LIKE 'qa/medium-%' ORDER BY id DESC LIMIT 2"
            )
        ]
    assert ranked[3:] == newest


def test_a_refresh_that_finds_nothing_new_writes_nothing(paths, monkeypatch):
    write_page(paths, "concepts/a", "Alpha", "text")
    searchindex.refresh(paths)
    statements: list[str] = []
    real_connect = searchindex.connect

    def connect(p):
        conn = real_connect(p)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(searchindex, "connect", connect)
    searchindex.refresh(paths)  # quiet: same folders, empty journal, last walk just now
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE"))]
    write_page(paths, "concepts/b", "Beta", "text")
    searchindex.refresh(paths)
    assert [s for s in statements if s.lstrip().upper().startswith("INSERT")]


# --- `memc search` runs without click (pipeline.entry) and prints what the click command prints --

SEARCH_PROBE = """
import sys
from pipeline.entry import main
rc = main(sys.argv[1:])
sys.stderr.write("\\nPROBE rc=%d click=%s\\n" % (rc, "click" in sys.modules))
"""


def test_search_without_click_prints_the_click_commands_output(paths, root, memc_env, capsys):
    import subprocess

    from pipeline.cli import main
    from tests.helpers import PYTHON

    write_page(paths, "concepts/advisory-locks", "Advisory locks", "pg_try_advisory_lock here")
    write_daily(paths, "2026-11-20", [("acme", "Queue fix", "advisory locks in the worker")])
    forms = (
        ["search", "advisory", "locks"],
        ["search", "advisory", "--limit", "1", "--json"],
        ["search", "--kind=daily", "advisory", "-n", "5"],
        ["search", "nothing-matches-this"],
        ["search", "???"],  # no word at all: a usage error, exit 2, on both paths
    )
    for args in forms:
        proc = subprocess.run(
            [PYTHON, "-c", SEARCH_PROBE, *args], capture_output=True, env=memc_env, timeout=60
        )
        err = proc.stderr.decode()
        rc, clicked = err.rsplit("PROBE ", 1)[1].split()
        assert clicked == "click=False", (args, err)
        code = main(["--root", str(root), *args])
        out = capsys.readouterr()
        assert rc == f"rc={code}", (args, err)
        assert proc.stdout.decode() == out.out, args
        if code:
            assert "nothing to search for" in err and "nothing to search for" in out.err


def test_only_valid_plain_search_forms_skip_click():
    from pipeline.entry import search_argv

    assert search_argv(["search", "a", "b"]) == (
        None,
        False,
        {"text": "a b", "limit": 10, "kind": None, "as_json": False},
    )
    assert search_argv(["--root", "/r", "search", "x", "--limit=3", "--kind", "article"]) == (
        "/r",
        False,
        {"text": "x", "limit": 3, "kind": "article", "as_json": False},
    )
    bad = (
        ["search"],
        ["search", "x", "--limit", "0"],
        ["search", "x", "-n", "201"],
        ["search", "x", "--kind", "page"],
        ["search", "x", "--help"],
        ["search", "x", "--"],
        ["search", "x", "--limit"],
    )
    for argv in bad:
        assert search_argv(argv) is None, argv


def test_the_click_free_search_accepts_exactly_what_the_click_command_accepts():
    import click

    from pipeline.cli.read_cmds import search_cmd
    from pipeline.entry import SEARCH_KINDS, SEARCH_MAX_LIMIT

    options = {p.name: p for p in search_cmd.params}
    limit = options["limit"].type
    assert isinstance(limit, click.IntRange) and (limit.min, limit.max) == (1, SEARCH_MAX_LIMIT)
    assert options["limit"].default == 10 and set(options["limit"].opts) == {"--limit", "-n"}
    assert tuple(options["kind"].type.choices) == SEARCH_KINDS
    assert options["kind"].opts == ["--kind"] and options["as_json"].opts == ["--json"]
    assert set(options) == {"query", "limit", "kind", "as_json"}
