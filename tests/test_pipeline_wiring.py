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
    return capture(
        settings,
        transcript_path=str(sample),
        session_id=name,
        cwd="/work/acme-api",
        event="session-end",
        now=at,
        force=True,
    )


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
        pending = conn.execute("SELECT count(*) FROM entries WHERE compiled_at IS NULL").fetchone()[
            0
        ]
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
        pending = conn.execute("SELECT count(*) FROM entries WHERE compiled_at IS NULL").fetchone()[
            0
        ]
        assert pending == report.entries
    finally:
        conn.close()


def test_drain_captures_and_distils_the_idle_tail_of_an_abandoned_session(settings, tmp_path):
    import json
    import os

    def turn(i: int) -> bytes:
        text = f"Decided to use advisory lock variant {i} because rows stayed locked."
        return (
            json.dumps(
                {
                    "type": "user",
                    "cwd": "/home/dev/acme-api",
                    "message": {"role": "user", "content": text},
                }
            )
            + "\n"
        ).encode()

    t = tmp_path / "abandoned.jsonl"
    t.write_bytes(b"".join(turn(i) for i in range(45)))
    long_ago = time.time() - 3 * 3600
    assert (
        capture(
            settings,
            transcript_path=str(t),
            session_id="abandoned",
            cwd="/home/dev/acme-api",
            event="stop",
            now=long_ago,
        ).status
        == "queued"
    )
    with t.open("ab") as fh:
        fh.write(turn(1000))  # typed after the last checkpoint; then the terminal was closed
    os.utime(t, (long_ago + 60, long_ago + 60))
    report = drain(settings)
    assert report.done == 2  # the Stop checkpoint and the idle tail
    conn = state.connect(settings.paths.state_db)
    try:
        events = sorted(r[0] for r in conn.execute("SELECT event FROM jobs"))
    finally:
        conn.close()
    assert events == ["idle", "stop"]
    text = "".join(p.read_text() for p in settings.paths.daily.glob("*.md"))
    assert "variant 1000" in text
