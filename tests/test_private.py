"""Privacy controls (memc private, the [memc:private] marker) and secret-free logs."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import state
from pipeline.backfill import backfill
from pipeline.capture import capture
from pipeline.cli import main
from pipeline.logs import hook_log, pipeline_logger
from pipeline.private import make_private
from tests.helpers import envelope_naming_spool, fail_job, queue_job, run_memc, write_transcript

SECRET = "sk-ant-api03-Zx9QpL2mN8vR4tY6uI1oP3aS5dF7gH0jK2lZ4xC6vB8nM1qW3eR5tY7u"


def test_private_withdraws_queued_and_failed_jobs_of_that_session_only(settings, capsys):
    root = settings.root
    mine = [queue_job(root, "secret-sess", 0, 100), queue_job(root, "secret-sess", 100, 200)]
    other = queue_job(root, "other-sess")
    failed = fail_job(root, "secret-sess", start=500)
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO jobs(id, session_id, status, created_at, updated_at) VALUES(?,?,?,?,?)",
        (mine[0].id, "secret-sess", "queued", 1, 1),
    )
    conn.close()

    assert main(["--root", str(root), "private", "secret-sess"]) == 0
    out = capsys.readouterr().out
    assert "now private" in out and "withdrew 2 queued and 1 failed" in out

    names = [p.name for p in (root / ".memc" / "inbox").glob("*.json")]
    assert names == [other.file_name()]
    assert list((root / ".memc" / "inbox" / "failed").iterdir()) == []
    spools = {p.stem for p in (root / ".memc" / "spool").glob("*.jsonl")}
    assert spools == {other.id}
    assert failed.id not in spools
    conn = state.connect(settings.paths.state_db)
    try:
        assert state.is_private(conn, "secret-sess") and not state.is_private(conn, "other-sess")
        assert (
            conn.execute("SELECT status FROM jobs WHERE id=?", (mine[0].id,)).fetchone()[0]
            == "cancelled"
        )
    finally:
        conn.close()

    again = make_private(settings, "secret-sess")
    assert again.already_private and again.removed_pending == 0 and again.removed_failed == 0


def test_claimed_jobs_are_left_alone_and_reported(settings, capsys):
    env = queue_job(settings.root, "busy")
    src = settings.paths.inbox / env.file_name()
    src.rename(settings.paths.claimed / env.file_name())
    res = make_private(settings, "busy")
    assert res.claimed == 1 and res.removed_pending == 0
    assert (settings.paths.claimed / env.file_name()).exists()


def test_private_session_is_never_captured_by_hooks_or_backfill(settings):
    path = write_transcript("/home/dev/acme-api", "hush")
    make_private(settings, "hush")
    res = capture(
        settings,
        transcript_path=str(path),
        session_id="hush",
        cwd="/home/dev/acme-api",
        event="session-end",
    )
    assert res.status == "skipped"
    result = backfill(settings)
    assert result.queued == 0 and result.skipped == 1
    assert list(settings.paths.inbox.glob("*.json")) == []


def test_in_conversation_marker_makes_the_session_private(settings):
    path = write_transcript("/home/dev/acme-api", "marked")
    with path.open("a") as fh:
        fh.write(
            json.dumps(
                {
                    "type": "user",
                    "message": {"role": "user", "content": "[memc:private] off the record"},
                }
            )
            + "\n"
        )
    result = backfill(settings)
    assert result.queued == 0 and result.skipped == 1
    conn = state.connect(settings.paths.state_db)
    try:
        assert state.is_private(conn, "marked")
    finally:
        conn.close()


def test_private_needs_a_session_id(settings, capsys):
    assert main(["--root", str(settings.root), "private", "  "]) == 2
    assert "session id" in capsys.readouterr().err


def test_secrets_never_reach_log_files(settings):
    logs = settings.paths.logs
    hook_log(logs, f"session-end failed: ANTHROPIC_API_KEY={SECRET}")
    logger = pipeline_logger(logs)
    logger.error("job failed with header Authorization: Bearer %s", SECRET)
    for handler in logger.handlers:
        handler.flush()
    text = (logs / "hooks.log").read_text() + (logs / "pipeline.log").read_text()
    assert SECRET not in text and SECRET[10:40] not in text
    assert "REDACTED" in text


def test_verbose_flag_shows_tracebacks_for_errors(tmp_path, capsys):
    bad = tmp_path / "settings.json"
    bad.write_text("{nope")
    root = tmp_path / "r"
    assert main(["--root", str(root), "init"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "install-hooks", "--settings", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["--root", str(root), "-v", "install-hooks", "--settings", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "SettingsFileInvalid" in err
    assert Path(bad).read_text() == "{nope"


def test_private_never_deletes_a_non_spool_file_named_by_an_envelope(root, settings):
    db = root / ".memc" / "state.db"
    assert db.exists()
    envelope_naming_spool(root, "state.db")
    result = make_private(settings, "evil")
    assert result.removed_pending == 1
    assert db.exists()


# --- memc private: a transcript path was accepted verbatim, so the session stayed capturable ---


def test_private_accepts_a_transcript_path_and_blocks_that_session(settings, capsys):
    sid = "4f1c9a2e-6b1d-4c55-9a51-1f0e7c2d8a10"
    path = write_transcript("/home/dev/projects/acme", sid)
    assert run_memc(settings.root, "private", str(path)) == 0
    assert f"Session {sid} is now private" in capsys.readouterr().out
    result = capture(
        settings,
        transcript_path=str(path),
        session_id=sid,
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    assert result.status == "skipped" and "private" in result.reason
    assert run_memc(settings.root, "private", f"{sid}.jsonl") == 0
    assert "already private" in capsys.readouterr().out
    assert run_memc(settings.root, "private", "..") == 2


def test_private_says_what_was_already_distilled_and_not_withdrawn(settings, capsys):
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO entries(id, day, daily_path, session_id, created_at) VALUES(?,?,?,?,?)",
        ("e1", "2026-11-20", "daily/2026-11-20.md", "s1", 1.0),
    )
    conn.close()
    assert run_memc(settings.root, "private", "s1") == 0
    out = capsys.readouterr().out
    assert "1 entry of it were already distilled into daily/2026-11-20.md" in out
    assert "withdrew 0" not in out  # nothing was withdrawn: no empty "withdrew" line
