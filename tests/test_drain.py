"""drain(): outcomes per job (done, failed, deferred, paused), the jobs ledger, the CLI commands
(drain, retry), concurrent drains in real processes, and kill -9 of real drain processes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from pipeline import drain as drain_mod
from pipeline import inbox, state
from pipeline.cli import main as cli_main
from pipeline.config import load_settings
from pipeline.daily import list_days
from pipeline.drain import drain
from pipeline.errors import PermanentLLMError, TransientLLMError
from tests.fakes import FakeBackend
from tests.helpers import (
    ENTRY,
    all_entries,
    capture_session,
    check_exactly_once,
    envelope_naming_spool,
    finish_and_compare,
    kill_when_progressed,
    make_job,
    run_memc,
    transcript_lines,
)

PYTHON = sys.executable


_SEQ = iter(range(10**6))


def _job(root, name, text="We decided to use advisory locks in queue.py. TODO: migrate prod."):
    """A job captured one second after the previous one (inbox order = creation order)."""
    return make_job(
        root,
        name,
        transcript_lines(name, [(text, "done")]),
        captured_at=f"2026-11-20T14:00:{next(_SEQ) % 60:02d}+00:00",
    )


def _job_row(settings, job_id):
    conn = state.connect(settings.paths.state_db)
    try:
        return dict(conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())
    finally:
        conn.close()


def test_drain_processes_every_job_once(settings, root):
    envs = [_job(root, f"s{i}") for i in range(3)]
    fake = FakeBackend(default=ENTRY)
    report = drain(settings, backend=fake, sleep=lambda s: None)
    assert (report.processed, report.done, report.failed, report.entries) == (3, 3, 0, 3)
    assert report.cost_usd == pytest.approx(0.03)
    assert inbox.counts(settings.paths) == inbox.InboxCounts(0, 0, 0)
    row = _job_row(settings, envs[0].id)
    assert row["status"] == "done" and row["attempts"] == 1 and row["entries"] == 1
    assert "1 entry appended" in row["detail"]
    again = drain(settings, backend=FakeBackend())  # nothing left: no call, no error
    assert again.processed == 0 and len(all_entries(root)) == 3
    conn = state.connect(settings.paths.state_db)
    assert float(state.kv_get(conn, "last_drain_at")) > 0


def test_not_worth_saving_is_recorded_in_jobs(settings, root):
    env = _job(root, "meh")
    report = drain(settings, backend=FakeBackend(default={"worth_saving": False}))
    assert report.done == 1 and report.entries == 0 and report.not_worth_saving == 1
    row = _job_row(settings, env.id)
    assert row["status"] == "done" and "1 not worth saving" in row["detail"]
    assert list_days(root / "daily") == []


def test_permanent_failure_dead_letters_the_job(settings, root):
    bad, good = _job(root, "a"), _job(root, "b")
    fake = FakeBackend(default=ENTRY).enqueue(
        PermanentLLMError("401 authentication failed: run `claude login`", stderr_tail="auth!")
    )
    report = drain(settings, backend=fake, sleep=lambda s: None)
    assert (report.done, report.failed) == (1, 1)
    assert len(fake.calls) == 2  # one attempt for the permanent error, no retries
    [failed] = inbox.failed_jobs(settings.paths)
    assert (
        failed.id == bad.id and failed.error_class == "PermanentLLMError" and failed.attempts == 1
    )
    record = json.loads(next(settings.paths.failed.glob("*.error.json")).read_text())
    assert record["stderr_tail"] == "auth!" and "claude login" in record["message"]
    assert (settings.paths.spool / f"{bad.id}.jsonl").exists()
    assert _job_row(settings, bad.id)["status"] == "failed"
    assert _job_row(settings, good.id)["status"] == "done"  # one bad job does not stop the rest
    assert report.failures[0].id == bad.id
    assert "401" not in "".join(e.text for e in all_entries(root))  # errors never in daily/


def test_transient_exhausted_fails_after_bounded_attempts(settings, root):
    env = _job(root, "t")
    fake = FakeBackend().enqueue(*[TransientLLMError("HTTP 529 overloaded")] * 10)
    slept = []
    report = drain(settings, backend=fake, sleep=slept.append)
    assert report.failed == 1 and len(fake.calls) == settings.llm_max_attempts == 4
    assert len(slept) == 3  # backoff between attempts, injected: the test never sleeps
    [failed] = inbox.failed_jobs(settings.paths)
    assert (
        failed.id == env.id and failed.error_class == "TransientLLMError" and failed.attempts == 4
    )


def test_budget_deferral_keeps_jobs_pending(root):
    settings = load_settings(root, {"daily_budget_usd": 0.02})
    envs = [_job(root, f"b{i}") for i in range(4)]
    fake = FakeBackend(default=ENTRY, cost_usd=0.01)
    report = drain(settings, backend=fake)
    assert (report.done, report.deferred, report.failed) == (2, 1, 0)
    assert report.stopped == "deferred: daily budget reached ($0.02 of $0.02)"
    counts = inbox.counts(settings.paths)
    assert counts == inbox.InboxCounts(2, 0, 0)  # the deferred job and the untouched one
    assert _job_row(settings, envs[2].id)["status"] == "deferred"
    code = cli_main(["--root", str(root), "drain"])
    assert code == 0  # deferral is not a failure


def test_one_huge_job_cannot_starve_the_small_ones(root):
    """A pasted 3 MB log once spent the whole day's budget every day, so later sessions were
    never distilled: a job may spend only its share of the day, then the drain goes on."""
    settings = load_settings(root, {"daily_budget_usd": 0.10, "chunk_chars": 1000})
    turns = [(f"turn {i}: " + "log line with details " * 40, "ok") for i in range(12)]
    huge = make_job(
        root, "huge", transcript_lines("huge", turns), captured_at="2026-11-20T14:00:00+00:00"
    )
    small = _job(root, "small")
    fake = FakeBackend(default=ENTRY, cost_usd=0.01)
    report = drain(settings, backend=fake)
    assert report.stopped == ""  # the drain did not stop at the huge job
    assert _job_row(settings, small.id)["status"] == "done"
    row = _job_row(settings, huge.id)
    assert row["status"] == "deferred" and "share" in row["detail"]
    conn = state.connect(settings.paths.state_db)
    try:
        spent = conn.execute(
            "SELECT SUM(cost_usd) FROM llm_calls WHERE substr(ref, 1, ?) = ?",
            (len(huge.id) + 1, huge.id + ":"),
        ).fetchone()[0]
    finally:
        conn.close()
    assert spent <= 0.25 * 0.10 + 0.01  # its share, overshot by at most the call in flight
    assert inbox.counts(settings.paths).pending == 1  # the huge job waits for tomorrow


def test_circuit_open_releases_and_stops(settings, root):
    _job(root, "c1"), _job(root, "c2")
    conn = state.connect(settings.paths.state_db)
    state.kv_set(conn, "breaker_open_until", repr(time.time() + 600))
    fake = FakeBackend(default=ENTRY)
    report = drain(settings, backend=fake)
    assert report.stopped.startswith("paused:") and report.done == 0 and fake.calls == []
    assert inbox.counts(settings.paths) == inbox.InboxCounts(2, 0, 0)


def test_broken_jobs_fail_with_reason(settings, root):
    env = _job(root, "gone")
    os.unlink(settings.paths.spool / f"{env.id}.jsonl")
    (settings.paths.inbox / "20261120000000-zzz.json").write_text("garbage")
    report = drain(settings, backend=FakeBackend(default=ENTRY))
    assert report.failed == 2
    classes = {f.error_class for f in inbox.failed_jobs(settings.paths)}
    assert classes == {"BrokenJob", inbox.MALFORMED}


def test_dead_claims_are_recovered_first(settings, root):
    env = _job(root, "dead")
    job = inbox.claim(settings.paths, inbox.pending(settings.paths)[0])
    owner = json.loads(job.owner_path.read_text())
    owner["pid"] = 2**22 + 12345  # no such process
    job.owner_path.write_text(json.dumps(owner))
    report = drain(settings, backend=FakeBackend(default=ENTRY))
    assert report.released_dead == 1 and report.done == 1
    assert _job_row(settings, env.id)["status"] == "done"
    assert [e.id for e in all_entries(root)] and not list(settings.paths.claimed.iterdir())


def test_stop_requested_releases_job(settings, root):
    _job(root, "x")
    report = drain(settings, backend=FakeBackend(default=ENTRY), stop=lambda: True)
    assert report.stopped.startswith("stopped") and inbox.counts(settings.paths).pending == 1


def test_after_drain_extension_point_is_called_and_guarded(settings, root, monkeypatch):
    seen = []

    def hook(s, report, *, clock):
        seen.append((report, clock))
        raise RuntimeError("compile blew up")

    def clock():
        return 1_800_000_000.0

    monkeypatch.setattr(drain_mod, "after_drain", hook)
    report = drain(settings, backend=FakeBackend(), clock=clock)
    assert seen == [(report, clock)]  # the compile step runs on the drain's clock
    assert drain(settings, backend=FakeBackend(), run_after=False) and len(seen) == 1


def test_cli_drain_json_and_retry(root, capsys):
    settings = load_settings(root)
    env = _job(root, "cli")
    (settings.paths.spool / f"{env.id}.jsonl").rename(settings.paths.memc / "moved-away")
    assert cli_main(["--root", str(root), "drain", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == 1 and out["failures"][0]["id"] == env.id
    (settings.paths.memc / "moved-away").rename(settings.paths.spool / f"{env.id}.jsonl")
    assert (
        cli_main(["--root", str(root), "retry", "--json", env.id[:6], "nosuchjob"]) == 2
    )  # one id unknown: exit 2, the known one still moves
    assert json.loads(capsys.readouterr().out) == {"retried": [env.id], "unknown": ["nosuchjob"]}
    assert cli_main(["--root", str(root), "drain"]) == 0
    assert "1 done" in capsys.readouterr().out
    assert len(all_entries(root)) == 1


# -- real processes -------------------------------------------------------------------------------


def _plant(root, n, facts, filler=0):
    for i in range(n):
        fact = f"FACT{i:04d}"
        facts.append(fact)
        text = f"We decided to adopt {fact} because it works. TODO: check {fact}."
        pad = [
            (f"Please look at module_{i}_{k}.py and tell me what it does.", "It parses input. " * 8)
            for k in range(filler)
        ]
        make_job(
            root,
            f"p{i:04d}",
            transcript_lines(f"p{i:04d}", [*pad, (text, "done")]),
            captured_at=f"2026-11-2{i % 3}T1{i % 10}:0{i % 6}:00+00:00",
        )


@pytest.mark.slow
def test_concurrent_drains_each_entry_once(root, memc_env):
    facts: list[str] = []
    _plant(root, 40, facts)
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "pipeline", "drain", "--json"],
            env=memc_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    done = 0
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        done += json.loads(out)["done"]
    assert done == 40  # every job processed by exactly one of the three
    check_exactly_once(root, facts)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(root, memc_env, tmp_path):
    n_jobs = int(os.environ.get("KILL9_JOBS", "30"))
    kills = int(os.environ.get("KILL9_ROUNDS", "5"))
    facts: list[str] = []
    _plant(root, n_jobs, facts, filler=4)
    env = dict(memc_env, MEMC_CHUNK_CHARS="400")  # several chunks per job: kills land mid-job too
    paths = load_settings(root).paths
    rng = random.Random(int(os.environ.get("KILL9_SEED", "1234")))
    killed = 0
    for _ in range(kills):
        proc = subprocess.Popen(
            [PYTHON, "-m", "pipeline", "drain"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        remaining = inbox.counts(paths).pending
        killed += kill_when_progressed(proc, paths, rng.randint(0, max(0, remaining // 3)))
        proc.wait(timeout=30)
        if inbox.counts(paths) == inbox.InboxCounts(0, 0, 0):
            break
    assert killed >= 1
    # Then drain to completion "a minute later": a kill between a claim's rename and its owner
    # file leaves an owner-less claim that is released once it is older than a minute.
    finish_and_compare(root, tmp_path, facts, lambda ref: _plant(ref, n_jobs, [], filler=4), n_jobs)


def test_ctrl_c_during_a_job_returns_its_claim_to_the_inbox(settings, root):
    env = _job(root, "k1")
    fake = FakeBackend().enqueue(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        drain(settings, backend=fake, sleep=lambda s: None)
    assert inbox.counts(settings.paths) == inbox.InboxCounts(1, 0, 0)  # pending, not claimed
    assert _job_row(settings, env.id)["status"] == "queued"
    report = drain(settings, backend=FakeBackend(default=ENTRY), sleep=lambda s: None)
    assert report.done == 1 and report.released_dead == 0


def test_drain_fails_a_job_whose_spool_is_not_in_spool_dir(root, settings):
    from pipeline.drain import drain

    (root / ".memc" / "config.toml").write_text('# {"type":"user"}\n')
    envelope_naming_spool(root, "config.toml")
    report = drain(settings, run_after=False)
    assert report.failed == 1 and report.failures[0].error_class == "BrokenJob"
    assert (root / ".memc" / "config.toml").exists()


# --- drain: new entries were left uncompiled without a word ------------------------------------


def test_drain_says_why_new_entries_are_not_compiled_yet(settings, capsys):
    capture_session(settings)
    assert run_memc(settings.root, "drain") == 0
    out = capsys.readouterr().out
    assert (
        "not yet in knowledge/: compile waits" in out and "`memc compile` compiles them now" in out
    )
