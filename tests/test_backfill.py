"""memc backfill over a fake ~/.claude/projects (HOME is a temp folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline import state
from pipeline.backfill import backfill, find_transcripts, parse_since
from pipeline.capture import capture
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from tests.helpers import transcript_line, write_transcript

DAY = 86400.0
NOW = 1_800_000_000.0


def _inbox(root: Path) -> list[Path]:
    return sorted((root / ".memc" / "inbox").glob("*.json"))


def test_backfill_twice_captures_nothing_new_the_second_time(settings):
    a = write_transcript("/home/dev/acme-api", "sess-a")
    write_transcript("/home/dev/blog", "sess-b", turns=6)
    first = backfill(settings)
    assert (first.sessions, first.queued, first.nothing_new) == (2, 2, 0)
    assert first.bytes == sum(
        p.stat().st_size for p in (Path.home() / ".claude" / "projects").glob("*/*.jsonl")
    )
    assert len(_inbox(settings.root)) == 2
    envelope = json.loads(_inbox(settings.root)[0].read_text())
    assert envelope["event"] == "backfill"

    second = backfill(settings)
    assert (second.queued, second.nothing_new, second.bytes) == (0, 2, 0)
    assert len(_inbox(settings.root)) == 2

    # a later hook sees only what was appended after the backfill: the same cursor
    with a.open("a") as fh:
        fh.write(transcript_line("user", "one more", "/home/dev/acme-api", "sess-a"))
    res = capture(
        settings,
        transcript_path=str(a),
        session_id="sess-a",
        cwd="/home/dev/acme-api",
        event="session-end",
    )
    assert res.status == "queued" and res.bytes == len(
        transcript_line("user", "one more", "/home/dev/acme-api", "sess-a")
    )


def test_dry_run_writes_nothing_and_estimates(settings, capsys, monkeypatch):
    monkeypatch.setenv("MEMC_CHUNK_CHARS", "200")
    small = load_settings(settings.root)
    path = write_transcript("/home/dev/acme-api", "sess-a", turns=10)
    res = backfill(small, dry_run=True)
    size = path.stat().st_size
    assert res.dry_run and res.queued == 1 and res.bytes == size
    assert res.estimated_calls == -(-size // 200)
    assert _inbox(settings.root) == []
    conn = state.connect(settings.paths.state_db)
    try:
        assert conn.execute("SELECT count(*) FROM cursors").fetchone()[0] == 0
    finally:
        conn.close()
    assert main(["--root", str(settings.root), "backfill", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was written" in out and "sess-a" in out
    # after a real run, the dry run reports nothing left
    backfill(settings)
    again = backfill(settings, dry_run=True)
    assert again.queued == 0 and again.nothing_new == 1 and again.estimated_calls == 0


def test_since_and_project_filters(settings):
    write_transcript("/home/dev/acme-api", "old", mtime=NOW - 40 * DAY)
    write_transcript("/home/dev/acme-api", "new", mtime=NOW - 2 * DAY)
    write_transcript("/home/dev/blog", "blog", mtime=NOW - 1 * DAY)
    assert [t.session_id for t in find_transcripts()] == ["old", "new", "blog"]  # oldest first
    since = parse_since("7d", settings, now=NOW)
    assert [t.session_id for t in find_transcripts(since=since)] == ["new", "blog"]
    assert [t.session_id for t in find_transcripts(project="acme*")] == ["old", "new"]
    assert [t.session_id for t in find_transcripts(project="*-blog")] == ["blog"]  # folder name
    assert [t.session_id for t in find_transcripts(project="/home/dev/b*")] == ["blog"]  # cwd
    res = backfill(settings, since=since, project="acme-api")
    assert res.sessions == 1 and res.queued == 1


def test_parse_since_dates(settings):
    assert parse_since(None, settings) is None
    assert parse_since("2027-01-15", settings) == 1_799_971_200.0  # midnight UTC (MEMC_TZ=UTC)
    with pytest.raises(ConfigError):
        parse_since("last tuesday", settings)


def test_sdk_private_and_excluded_sessions_are_skipped(settings, monkeypatch):
    write_transcript("/home/dev/acme-api", "sdk-session", entrypoint="sdk-py")
    write_transcript("/home/dev/secret-project", "excluded")
    write_transcript("/home/dev/acme-api", "private-one")
    write_transcript("/home/dev/acme-api", "normal")
    monkeypatch.setenv("MEMC_EXCLUDE_PROJECTS", "secret-*")
    s = load_settings(settings.root)
    conn = state.connect(s.paths.state_db)
    conn.execute("INSERT INTO private_sessions(session_id, at) VALUES('private-one', 0)")
    conn.close()
    dry = backfill(s, dry_run=True)
    real = backfill(s)
    for res in (dry, real):
        assert res.sessions == 4 and res.queued == 1 and res.skipped == 3
        assert [it.session_id for it in res.items if it.status in ("queued", "would-capture")] == [
            "normal"
        ]
    assert len(_inbox(s.root)) == 1


def test_no_projects_folder(settings, capsys):
    res = backfill(settings)
    assert res.sessions == 0
    assert main(["--root", str(settings.root), "backfill", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sessions"] == 0


def test_cli_reports_progress_on_a_terminal_only_and_the_next_step(settings, capsys, monkeypatch):
    from pipeline.cli import progress

    for i in range(3):
        write_transcript("/home/dev/acme-api", f"s{i}")
    assert main(["--root", str(settings.root), "backfill"]) == 0
    captured = capsys.readouterr()
    assert "queued 3 of 3" in captured.out and "memc drain" in captured.out
    assert "transcripts" not in captured.err  # not a terminal: no progress noise
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    for i in range(3, 5):
        write_transcript("/home/dev/acme-api", f"s{i}")
    assert main(["--root", str(settings.root), "backfill"]) == 0
    assert "5/5 transcripts" in capsys.readouterr().err


def test_backfilled_sessions_are_dated_by_their_last_write(settings, tmp_path):
    import datetime as dt

    from pipeline.backfill import backfill
    from pipeline.daily import list_days
    from pipeline.drain import drain

    home = tmp_path / "bf-home"
    folder = home / ".claude" / "projects" / "-home-dev-acme"
    folder.mkdir(parents=True)
    old = folder / "1111aaaa-0000-4000-8000-000000000001.jsonl"
    old.write_text(
        '{"type":"user","cwd":"/home/dev/acme","message":{"role":"user","content":'
        '"Decided to switch the queue to advisory locks because rows stayed locked."}}\n'
    )
    when = dt.datetime(2026, 10, 30, 15, 0, tzinfo=dt.UTC).timestamp()
    os.utime(old, (when, when))
    result = backfill(settings, home=home)
    assert [i.status for i in result.items] == ["queued"]
    assert drain(settings).entries == 1
    assert list_days(settings.paths.daily) == ["2026-10-30"]


def test_projects_dir_honours_claude_config_dir(tmp_path, monkeypatch):
    from pipeline.backfill import projects_dir

    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert projects_dir() == tmp_path / "cfg" / "projects"
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    assert projects_dir(tmp_path) == tmp_path / ".claude" / "projects"
