"""UX review: what a new user saw walking through every command, pinned as tests.

Each test names the command and the problem a user met before the fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline import state
from pipeline.capture import capture
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.drain import DrainReport, JobFailure
from tests.helpers import queue_job, write_transcript


def _run(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


# --- memc private: a transcript path was accepted verbatim, so the session stayed capturable ---


def test_private_accepts_a_transcript_path_and_blocks_that_session(settings, capsys):
    sid = "4f1c9a2e-6b1d-4c55-9a51-1f0e7c2d8a10"
    path = write_transcript("/home/dev/projects/acme", sid)
    assert _run(settings.root, "private", str(path)) == 0
    assert f"Session {sid} is now private" in capsys.readouterr().out
    result = capture(
        settings,
        transcript_path=str(path),
        session_id=sid,
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    assert result.status == "skipped" and "private" in result.reason
    assert _run(settings.root, "private", f"{sid}.jsonl") == 0
    assert "already private" in capsys.readouterr().out
    assert _run(settings.root, "private", "..") == 2


def test_private_says_what_was_already_distilled_and_not_withdrawn(settings, capsys):
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO entries(id, day, daily_path, session_id, created_at) VALUES(?,?,?,?,?)",
        ("e1", "2026-11-20", "daily/2026-11-20.md", "s1", 1.0),
    )
    conn.close()
    assert _run(settings.root, "private", "s1") == 0
    out = capsys.readouterr().out
    assert "1 entry of it were already distilled into daily/2026-11-20.md" in out
    assert "withdrew 0" not in out  # nothing was withdrawn: no empty "withdrew" line


# --- budget: "the job stays pending" was said by query/compile/lint; budget 0 read as "reached" ---


def _spend(settings, usd: float) -> None:
    from pipeline.llm.calls import day_of

    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO llm_calls(at, day, task, backend, cost_usd, outcome) VALUES(?,?,?,?,?,?)",
        (1.0, day_of(settings, __import__("time").time()), "distil", "claude", usd, "ok"),
    )
    conn.close()


def test_budget_message_fits_every_command_and_explains_a_zero_budget(root):
    from pipeline.errors import BudgetDeferred
    from pipeline.llm.calls import check_budget

    for budget, expected in (
        (0.0, "allows no model calls at all"),
        (0.01, "model calls resume tomorrow"),
    ):
        settings = load_settings(root, {"daily_budget_usd": budget})
        _spend(settings, 0.0 if budget == 0 else 0.02)
        conn = state.connect(settings.paths.state_db)
        try:
            check_budget(conn, settings, __import__("time").time())
            raise AssertionError("no BudgetDeferred")
        except BudgetDeferred as exc:
            assert expected in str(exc) and "the job" not in str(exc)
            assert "MEMC_DAILY_BUDGET_USD" in str(exc)
        finally:
            conn.close()


def test_status_with_budget_zero_says_so_instead_of_suggesting_drain(root, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    monkeypatch.setenv("MEMC_DAILY_BUDGET_USD", "0")
    queue_job(root, "s1")
    assert _run(root, "status") == 0
    out = capsys.readouterr().out
    assert "the daily budget is 0: no model calls at all" in out
    assert "`memc drain` processes them now" not in out


def test_status_does_not_count_extractive_runs_as_model_calls(settings, capsys):
    from pipeline.drain import drain

    write_transcript("/home/dev/projects/acme", "s1", turns=6)
    path = next((Path.home() / ".claude" / "projects").rglob("s1.jsonl"))
    capture(
        settings,
        transcript_path=str(path),
        session_id="s1",
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    drain(settings, run_after=False)
    assert _run(settings.root, "status") == 0
    assert "(0 model calls)" in capsys.readouterr().out


def test_compile_over_budget_does_not_say_run_compile_again(root, fake_claude, monkeypatch):
    from pipeline.compiler import run_compile
    from pipeline.drain import drain

    ex = load_settings(root, {"backend": "extractive"})
    write_transcript("/home/dev/projects/acme", "s1", turns=6)
    path = next((Path.home() / ".claude" / "projects").rglob("s1.jsonl"))
    capture(
        ex,
        transcript_path=str(path),
        session_id="s1",
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    drain(ex, run_after=False)
    monkeypatch.setenv("MEMC_DAILY_BUDGET_USD", "0")
    report = run_compile(load_settings(root))
    assert report.status == "failed"
    assert "run `memc compile` again" not in report.message
    assert "once model calls are allowed again" in report.message
    assert fake_claude.prompts() == []  # no model call was made


# --- SessionStart: the injected context told the model to run a bare `memc` ---------------------


def test_session_start_context_names_a_runnable_memc_command(settings):
    from pipeline.inject import build_injection

    page = settings.root / "knowledge" / "concepts" / "acme.md"
    page.write_text("---\ntitle: acme\nsummary: the acme project\n---\n\nAcme notes.\n")
    assert _run(settings.root, "search", "acme") == 0  # builds the search index the hook reads

    doc = json.loads(build_injection(settings, {"cwd": "/home/dev/projects/acme"}))
    context = doc["hookSpecificOutput"]["additionalContext"]
    assert "memc search" in context  # the short form stays
    assert f"--root {settings.root}" in context
    assert str(Path(sys.executable).parent) in context or "-m pipeline" in context


# --- doctor: MEMC_BACKEND exported in the shell does not reach hook-started drains --------------


def test_doctor_warns_when_the_shell_backend_differs_from_unattended_runs(root):
    from pipeline.doctor import OK, WARN, check_backend

    settings = load_settings(root)  # MEMC_BACKEND=extractive from conftest
    check = check_backend(settings, {"MEMC_BACKEND": "extractive"})
    assert check.status == WARN and "would use claude" in check.detail
    assert 'backend = "extractive"' in check.fix and "config.toml" in check.fix
    (root / ".memc" / "config.toml").write_text('backend = "extractive"\n')
    assert check_backend(settings, {"MEMC_BACKEND": "extractive"}).status == OK
    assert check_backend(settings, {}).status == OK


# --- watch: a foreground watcher was silent about the jobs it processed or failed --------------


def test_watch_reports_each_busy_cycle_once():
    from pipeline.cli.distil_cmds import cycle_reporter

    said: list[str] = []
    report = cycle_reporter(said.append)
    report(DrainReport())  # idle sweep: quiet
    assert said == []
    report(DrainReport(processed=1, done=1, entries=1))
    assert "1 done" in said[-1]
    report(
        DrainReport(
            processed=1, failed=1, failures=(JobFailure("j1", "PermanentLLMError", "401", 1),)
        )
    )
    assert any("failed j1: PermanentLLMError" in s for s in said) and "memc retry" in said[-1]
    count = len(said)
    deferred = DrainReport(processed=1, deferred=1, stopped="deferred: daily budget reached")
    report(deferred)
    report(deferred)  # the same deferral at every sweep is said once
    assert len(said) == count + 1
    report(None)
    assert "cycle failed" in said[-1]


# --- query --file-back: the refreshed qa page quoted (and nested) its own previous answer ------


def test_file_back_twice_does_not_quote_its_own_page(settings, capsys):
    from pipeline.compiler import run_compile
    from pipeline.drain import drain

    write_transcript("/home/dev/projects/acme", "s1", turns=6)
    path = next((Path.home() / ".claude" / "projects").rglob("s1.jsonl"))
    capture(
        settings,
        transcript_path=str(path),
        session_id="s1",
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    drain(settings, run_after=False)
    run_compile(settings)
    question = "what happened in acme turn"
    assert _run(settings.root, "query", question, "--file-back") == 0
    assert _run(settings.root, "query", question, "--file-back") == 0
    pages = list((settings.root / "knowledge" / "qa").glob("*.md"))
    assert len(pages) == 1
    assert f"[[qa/{pages[0].stem}" not in pages[0].read_text()


# --- drain: new entries were left uncompiled without a word ------------------------------------


def test_drain_says_why_new_entries_are_not_compiled_yet(settings, capsys):
    write_transcript("/home/dev/projects/acme", "s1", turns=6)
    path = next((Path.home() / ".claude" / "projects").rglob("s1.jsonl"))
    capture(
        settings,
        transcript_path=str(path),
        session_id="s1",
        cwd="/home/dev/projects/acme",
        event="session-end",
    )
    assert _run(settings.root, "drain") == 0
    out = capsys.readouterr().out
    assert (
        "not yet in knowledge/: compile waits" in out and "`memc compile` compiles them now" in out
    )


# --- search: an empty query said "No matches" with exit 0 ---------------------------------------


def test_search_without_words_is_a_usage_error(root, capsys):
    assert _run(root, "search", "") == 2
    assert _run(root, "search", "*") == 2
    assert "give one or more words" in capsys.readouterr().err


# --- init: "Next: `memc install-hooks`" failed when the root was given with --root -------------


def test_init_next_step_carries_the_root(tmp_path, monkeypatch, capsys):
    target = tmp_path / "memory"
    monkeypatch.chdir(tmp_path)
    assert main(["--root", str(target), "init"]) == 0
    assert f"`memc --root {target} install-hooks`" in capsys.readouterr().out
    monkeypatch.chdir(target)
    assert main(["init"]) == 0
    assert "Next: `memc install-hooks`" in capsys.readouterr().out
