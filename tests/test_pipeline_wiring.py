"""The stages wired together: a drain ends with `compile --if-stale`."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import state
from pipeline.capture import capture
from pipeline.daily import list_days
from pipeline.drain import drain
from pipeline.wiki import iter_articles

REPO = Path(__file__).resolve().parent.parent


def _capture_sample(settings, name: str, at: float):
    sample = sorted((REPO / "samples").glob("*.jsonl"))[0]
    return capture(settings, transcript_path=str(sample), session_id=name, cwd="/work/acme-api",
                   event="session-end", now=at, force=True)


def test_drain_compiles_prior_day_entries(settings):
    yesterday = time.time() - 26 * 3600
    assert _capture_sample(settings, "s-old", yesterday).status == "queued"
    report = drain(settings)
    assert report.done == 1 and report.entries >= 1
    assert len(list_days(settings.paths.daily)) == 1
    # prior days are always eligible: the drain's after_drain step compiled them
    articles = list(iter_articles(settings.paths.knowledge))
    assert articles, "after_drain did not compile the prior day's entries"
    conn = state.connect(settings.paths.state_db)
    try:
        pending = conn.execute("SELECT count(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0]
        assert pending == 0
        assert state.kv_get(conn, "last_compile_at") is not None
    finally:
        conn.close()
    assert (settings.paths.knowledge / "index.md").is_file()


def test_drain_leaves_fresh_entries_for_the_quiet_period(settings):
    assert _capture_sample(settings, "s-new", time.time()).status == "queued"
    report = drain(settings)
    assert report.entries >= 1
    assert list(iter_articles(settings.paths.knowledge)) == []  # not stale yet: still quiet
    conn = state.connect(settings.paths.state_db)
    try:
        pending = conn.execute("SELECT count(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0]
        assert pending == report.entries
    finally:
        conn.close()
