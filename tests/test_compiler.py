"""Compile orchestration: trigger, pending entries, batching, bounded context, failures."""

from __future__ import annotations

import json
import os

import pytest

from pipeline import compile_context, compiler, fsutil, state, wikiindex
from pipeline.config import load_settings
from pipeline.errors import InvalidReplyError, TransientLLMError
from tests.fakes import FakeBackend
from tests.helpers import capture_session, write_page

T0 = 1_763_640_000.0  # 2025-11-20 12:00 UTC
MIN = 60.0


def entry_block(entry_id, title, body, project="acme", time="10:00"):
    return (
        f"### {time} · {project} · {title}\n"
        f"<!-- memc:entry id={entry_id} session=s1 event=stop -->\n{body}\n\n"
    )


def write_day(settings, day, blocks, mtime=None):
    path = settings.paths.daily / f"{day}.md"
    path.write_text(f"# Daily Log: {day}\n\n" + "".join(blocks))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def add_pending(conn, entry_id, day, created_at):
    conn.execute(
        "INSERT INTO entries(id, day, daily_path, created_at) VALUES (?,?,?,?)",
        (entry_id, day, f"daily/{day}.md", created_at),
    )


@pytest.fixture
def conn(settings):
    c = state.connect(settings.paths.state_db)
    yield c
    c.close()


def reply_for(request):
    ents = request.payload["entries"]
    return {
        "articles": [
            {
                "path": "concepts/queue",
                "title": "Queue",
                "summary": "jobs",
                "body": "\n".join(f"- {e['title']}" for e in ents),
                "sources": [e["source"] for e in ents],
            }
        ]
    }


# ---------------------------------------------------------------- trigger


def test_trigger_nothing_pending(settings, conn):
    d = compiler.should_compile(settings, conn, now=T0)
    assert (d.fire, d.pending) == (False, 0)


def test_trigger_quiet_max_delay_min_interval(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("a" * 12, "A", "a")])
    add_pending(conn, "a" * 12, "2025-11-20", T0 - 5 * MIN)
    d = compiler.should_compile(settings, conn, now=T0)
    assert not d.fire and "quiet" in d.reason and d.pending == 1
    d = compiler.should_compile(settings, conn, now=T0 + 6 * MIN)
    assert d.fire and "QUIET" in d.reason
    # entries keep arriving, but the oldest is past the max delay
    write_day(
        settings, "2025-11-20", [entry_block("a" * 12, "A", "a"), entry_block("b" * 12, "B", "b")]
    )
    add_pending(conn, "b" * 12, "2025-11-20", T0 + 359 * MIN)
    d = compiler.should_compile(settings, conn, now=T0 + 360 * MIN)
    assert d.fire and "MAX_DELAY" in d.reason
    state.kv_set(conn, compiler.LAST_COMPILE_KEY, repr(T0 + 350 * MIN))
    d = compiler.should_compile(settings, conn, now=T0 + 360 * MIN)
    assert not d.fire and "MIN_INTERVAL" in d.reason
    d = compiler.should_compile(settings, conn, now=T0 + 381 * MIN)
    assert d.fire


def test_trigger_is_not_stalled_by_times_stored_while_the_clock_ran_ahead(settings, conn):
    year = 365 * 86400.0
    write_day(settings, "2025-11-20", [entry_block("c" * 12, "C", "c")])
    add_pending(conn, "c" * 12, "2025-11-20", T0 + year)  # captured while a year ahead
    state.kv_set(conn, compiler.LAST_COMPILE_KEY, repr(T0 + year), now=T0 + year)
    later = T0 + 31 * MIN  # clock corrected, half an hour on
    decision = compiler.should_compile(settings, conn, now=later)
    assert decision.fire, decision.reason


def test_trigger_prior_day_always_eligible(settings, conn):
    add_pending(conn, "c" * 12, "2025-11-19", T0 - 1 * MIN)  # fresh, but yesterday's file
    d = compiler.should_compile(settings, conn, now=T0)
    assert d.fire and "prior day" in d.reason


def test_sync_inserts_hand_written_entries_with_file_mtime(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("d" * 12, "Hand", "written")], mtime=T0 - 3600)
    assert compiler.sync_entries(settings, conn) == 1
    assert compiler.sync_entries(settings, conn) == 0  # unchanged file: not even re-read
    row = conn.execute("SELECT created_at, compiled_at, title FROM entries").fetchone()
    assert row[0] == pytest.approx(T0 - 3600) and row[1] is None and row[2] == "Hand"


def test_a_scan_that_finds_nothing_new_writes_nothing(settings, conn):
    """Readers (`memc status`, SessionStart's trigger check) scan daily/ on every call: with
    nothing changed, the scan must not open a write transaction (a commit and fsync per call)."""
    write_day(settings, "2025-11-20", [entry_block("d" * 12, "Hand", "written")], mtime=T0 - 3600)
    compiler.sync_entries(settings, conn)
    conn.commit()
    before = conn.total_changes
    assert compiler.sync_entries(settings, conn) == 0
    assert conn.total_changes == before


def test_if_stale_does_not_compile_when_fresh(settings):
    write_day(settings, "2025-11-20", [entry_block("e" * 12, "New", "x")], mtime=T0)
    fake = FakeBackend(default=reply_for)
    report = compiler.run_compile(settings, backend=fake, if_stale=True, clock=lambda: T0 + MIN)
    assert report.status == "not-stale" and report.ok and not fake.calls
    report = compiler.run_compile(
        settings, backend=fake, if_stale=True, clock=lambda: T0 + 11 * MIN
    )
    assert report.status == "compiled" and len(fake.calls) == 1


# ---------------------------------------------------------------- running


def test_compile_applies_and_marks_entries(settings, conn):
    write_day(
        settings,
        "2025-11-20",
        [
            entry_block("a1" * 6, "Advisory locks", "postgres"),
            entry_block("b2" * 6, "Worker pool", "threads"),
        ],
    )
    fake = FakeBackend(default=reply_for)
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    assert report.status == "compiled" and report.entries_compiled == 2
    assert report.to_dict()["created"] == ["concepts/queue"]
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0] == 0
    request = fake.calls[0]
    assert request.task == "compile" and request.system_prompt
    assert [e["id"] for e in request.payload["entries"]] == ["a1" * 6, "b2" * 6]
    assert (settings.paths.knowledge / "index.md").read_text().count(
        "[[concepts/queue|Queue]]"
    ) == 1
    again = compiler.run_compile(settings, backend=fake, clock=lambda: T0 + 1)
    assert again.status == "nothing" and len(fake.calls) == 1
    ledger = conn.execute("SELECT task, cost_usd FROM llm_calls").fetchall()
    assert [tuple(r) for r in ledger] == [("compile", 0.01)]


def test_failed_batch_leaves_entries_pending(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("f" * 12, "X", "y")])
    fake = FakeBackend().enqueue(InvalidReplyError("not json"), InvalidReplyError("still not"))
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0, sleep=lambda s: None)
    assert report.status == "failed" and not report.ok
    assert "InvalidReplyError" in report.batches[0].error
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0] == 1
    assert not list(settings.paths.knowledge.rglob("*/*.md"))
    fake.enqueue(reply_for)
    assert compiler.run_compile(settings, backend=fake, clock=lambda: T0 + 1).status == "compiled"


def test_batch_whose_every_operation_is_rejected_stays_pending(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("e" * 12, "X", "y")])
    bad = {
        "articles": [
            {"path": "notes/x", "title": "X", "body": "b"},
            {"path": "concepts/../../escape", "title": "Y", "body": "b"},
        ]
    }
    fake = FakeBackend().enqueue(bad)
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0, sleep=lambda s: None)
    assert report.status == "failed" and not report.ok
    assert report.batches[0].error.startswith("AllRejected")
    assert len(report.batches[0].rejected) == 2 and report.entries_compiled == 0
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0] == 1
    fake.enqueue(reply_for)
    again = compiler.run_compile(settings, backend=fake, clock=lambda: T0 + 1)
    assert again.status == "compiled" and again.entries_compiled == 1


def test_near_miss_paths_in_a_reply_are_compiled(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("d" * 12, "X", "y")])
    near = {"articles": [{"path": "concept/queue.md", "title": "Queue", "body": "- X"}]}
    report = compiler.run_compile(settings, backend=FakeBackend().enqueue(near), clock=lambda: T0)
    assert report.status == "compiled" and report.to_dict()["created"] == ["concepts/queue"]


def test_malformed_reply_shape_is_rejected_by_schema(settings):
    write_day(settings, "2025-11-20", [entry_block("f" * 12, "X", "y")])
    fake = FakeBackend(default={"articles": "not a list"})
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0, sleep=lambda s: None)
    assert report.status == "failed" and len(fake.calls) == 2  # one repair try


def test_transient_errors_retry_then_stop(settings):
    write_day(settings, "2025-11-20", [entry_block("f" * 12, "X", "y")])
    fake = FakeBackend().enqueue(TransientLLMError("529"), reply_for)
    slept = []
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0, sleep=slept.append)
    assert report.status == "compiled" and len(slept) == 1


def test_second_compile_is_busy(settings):
    write_day(settings, "2025-11-20", [entry_block("f" * 12, "X", "y")])
    with fsutil.file_lock(settings.paths.lock("compile")):
        report = compiler.run_compile(settings, backend=FakeBackend(), clock=lambda: T0)
    assert report.status == "busy" and report.ok


def test_dry_run_calls_nothing_writes_nothing(settings, conn):
    write_day(
        settings, "2025-11-20", [entry_block(f"{i:012x}", f"T{i}", "b" * 5000) for i in range(30)]
    )
    report = compiler.run_compile(settings, backend=FakeBackend(), dry_run=True, clock=lambda: T0)
    assert report.status == "dry-run" and len(report.batches) >= 3
    assert all(b.prompt_chars > 0 for b in report.batches)
    assert not list(settings.paths.knowledge.rglob("*.md"))
    assert not (settings.paths.knowledge / "index.md").exists()
    assert (
        conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0] == 30
    )


def test_batches_are_bounded_and_progress_reported(settings):
    write_day(
        settings, "2025-11-20", [entry_block(f"{i:012x}", f"T{i}", "w " * 6000) for i in range(20)]
    )
    fake = FakeBackend(default={"articles": []})
    seen = []
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0, progress=seen.append)
    assert report.status == "compiled" and report.entries_compiled == 20
    for call in fake.calls:
        assert len(call.payload["entries"]) <= compile_context.BATCH_ENTRIES
        assert sum(len(e["text"]) for e in call.payload["entries"]) <= compile_context.BATCH_CHARS
    assert len(seen) == len(fake.calls) > 1 and seen[0].startswith("batch 1/")


def test_file_and_all_select_entries(settings, conn):
    write_day(settings, "2025-11-19", [entry_block("1" * 12, "Old", "x")])
    write_day(settings, "2025-11-20", [entry_block("2" * 12, "New", "y")])
    fake = FakeBackend(default={"articles": []})
    compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    report = compiler.run_compile(
        settings, backend=fake, file="daily/2025-11-19.md", clock=lambda: T0
    )
    assert [e["id"] for e in fake.calls[-1].payload["entries"]] == ["1" * 12]
    report = compiler.run_compile(settings, backend=fake, all=True, clock=lambda: T0)
    assert report.entries_compiled == 2
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError):
        compiler.run_compile(settings, backend=fake, file="2020-01-01", clock=lambda: T0)


def test_vanished_entries_stop_being_pending(settings, conn):
    write_day(settings, "2025-11-20", [entry_block("3" * 12, "Gone soon", "x")])
    compiler.sync_entries(settings, conn)
    write_day(settings, "2025-11-20", [])
    report = compiler.run_compile(settings, backend=FakeBackend(), clock=lambda: T0)
    assert report.status == "nothing"
    row = conn.execute("SELECT compiled_at, withdrawn_at FROM entries").fetchone()
    assert row[0] is None and row[1] == T0  # withdrawn, not marked compiled
    assert "withdrawn" in report.extra["daily_changes"][0]


def test_related_articles_are_sent_in_full_and_replaced(settings):
    write_page(
        settings.paths,
        "concepts/advisory-locks",
        "Advisory locks",
        "pg_try_advisory_lock keeps the lock per session",
    )
    write_day(
        settings,
        "2025-11-20",
        [entry_block("4" * 12, "More on advisory locks", "pg_try_advisory_lock needs bigint keys")],
    )
    fake = FakeBackend(
        default=lambda r: {
            "articles": [
                {
                    "path": "concepts/advisory-locks",
                    "title": "Advisory locks",
                    "body": r.payload["related"][0]["body"] + "\n\nKeys are bigint.",
                }
            ]
        }
    )
    compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    payload = fake.calls[0].payload
    assert payload["related"][0]["path"] == "concepts/advisory-locks"
    assert payload["existing"][0]["path"] == "concepts/advisory-locks"
    body = (settings.paths.knowledge / "concepts" / "advisory-locks.md").read_text()
    assert body.count("pg_try_advisory_lock keeps") == 1 and "## Update" not in body


def _kb(settings, n):
    for i in range(n):
        write_page(
            settings.paths,
            f"concepts/topic-{i:05d}",
            f"Topic {i} queue worker",
            ("worker queue postgres lock " * 40 + f"unique{i}\n") * 8,
            summary=f"summary {i}",
        )


def test_prompt_does_not_grow_with_the_knowledge_base(settings, tmp_path):
    from pipeline.config import load_settings
    from pipeline.setup import init_root

    day = [
        entry_block(f"{i:012x}", f"Queue worker {i}", "postgres lock worker " * 100)
        for i in range(8)
    ]
    sizes = []
    for n in (50, 400):
        root = tmp_path / f"kb{n}"
        root.mkdir()
        s = load_settings(root)
        init_root(s)
        _kb(s, n)
        write_day(s, "2025-11-20", day)
        report = compiler.run_compile(s, dry_run=True, clock=lambda: T0)
        sizes.append(max(b.prompt_chars for b in report.batches))
    assert sizes[1] <= 1.5 * sizes[0] and sizes[1] <= 120_000


def test_cli_compile_json(root, capsys, monkeypatch):
    from pipeline.cli import main
    from pipeline.config import load_settings

    write_day(load_settings(root), "2025-11-20", [entry_block("5" * 12, "Queue", "`pytest -q`")])
    monkeypatch.chdir(root)
    assert main(["compile", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "dry-run"
    assert main(["compile", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "compiled" and "concepts/acme" in data["created"]
    assert main(["compile", "--if-stale"]) == 0
    assert "no pending entries" in capsys.readouterr().out


def test_compile_over_budget_does_not_say_run_compile_again(root, fake_claude, monkeypatch):
    from pipeline.compiler import run_compile
    from pipeline.drain import drain

    ex = load_settings(root, {"backend": "extractive"})
    capture_session(ex)
    drain(ex, run_after=False)
    monkeypatch.setenv("MEMC_DAILY_BUDGET_USD", "0")
    report = run_compile(load_settings(root))
    assert report.status == "failed"
    assert "run `memc compile` again" not in report.message
    assert "once model calls are allowed again" in report.message
    assert fake_claude.prompts() == []  # no model call was made


# ---------------------------------------------------------------- compile and index.md


def test_compile_writes_index_under_the_knowledge_lock(settings, monkeypatch):
    """compile's final index.md regeneration must not race query --file-back / lint --fix."""
    from pipeline import fsutil

    held: list[bool] = []
    real = wikiindex.write_index

    def spy(paths):
        held.append(fsutil.lock_is_held(paths.lock("knowledge")))
        return real(paths)

    monkeypatch.setattr(wikiindex, "write_index", spy)
    day = "2026-11-20"
    (settings.paths.daily / f"{day}.md").write_text(
        f"# Daily Log: {day}\n\n### 10:00 · acme · Queue locks\n"
        "<!-- memc:entry id=3f9c2a1b7e4d session=cd613e30 event=stop -->\n"
        "**Context:** advisory locks\n\n"
    )
    reply = {
        "articles": [
            {
                "path": "concepts/queue",
                "title": "Queue",
                "summary": "jobs",
                "body": "advisory locks",
                "sources": [f"daily/{day}.md"],
            }
        ]
    }
    report = compiler.run_compile(
        settings, backend=FakeBackend(default=reply), clock=lambda: 1_800_000_000
    )
    assert report.status == "compiled"
    assert held and all(held)


@pytest.fixture
def read_only():
    """Make folders unwritable for this process (chmod, or chattr +i when running as root)."""
    import subprocess

    made: list = []

    def make(folder):
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            if done.returncode != 0:
                pytest.skip("running as root without chattr: cannot make a folder read-only")
        else:
            folder.chmod(0o555)
        made.append(folder)

    yield make
    for folder in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


def test_read_only_knowledge_fails_before_any_model_call(settings, conn, read_only):
    write_day(settings, "2025-11-20", [entry_block("f" * 12, "X", "y")])
    (settings.paths.knowledge / "concepts").mkdir(exist_ok=True)
    read_only(settings.paths.knowledge / "concepts")
    fake = FakeBackend(default=reply_for)
    report = compiler.run_compile(settings, backend=fake, clock=lambda: T0)
    assert report.status == "failed" and not report.ok
    assert "not writable" in report.message and "concepts" in report.message
    assert fake.calls == []  # nothing spent
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()[0] == 1
