"""The inbox folder queue: pending order, claim races between real processes, complete, fail,
release, dead-claim recovery, retry, counts and spool pruning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline import inbox, reclaim, spool, state
from pipeline.config import load_settings
from pipeline.models import Envelope
from tests.helpers import make_job, transcript_lines

REPO = Path(__file__).resolve().parent.parent


def _jobs(root: Path, n: int) -> list[Envelope]:
    return [
        make_job(
            root,
            f"s{i:03d}",
            transcript_lines(f"s{i:03d}", [("hi", "there")]),
            captured_at=f"2026-11-20T14:{i % 60:02d}:05+00:00",
        )
        for i in range(n)
    ]


def test_pending_sorted_and_ignores_temp_and_other_files(settings, root):
    envs = _jobs(root, 3)
    (root / ".memc/inbox/.tmp-x.json.abc").write_text("{}")
    (root / ".memc/inbox/notes.txt").write_text("x")
    names = [p.name for p in inbox.pending(settings.paths)]
    assert names == sorted(e.file_name() for e in envs)


def test_claim_complete_cycle(settings, root):
    env = _jobs(root, 1)[0]
    paths = settings.paths
    [path] = inbox.pending(paths)
    job = inbox.claim(paths, path, now=1000.0)
    assert job is not None and job.envelope == env
    owner = json.loads(job.owner_path.read_text())
    assert owner["pid"] == os.getpid() and owner["started_at"] == 1000.0
    assert inbox.claim(paths, path) is None  # already taken
    assert inbox.counts(paths) == inbox.InboxCounts(0, 1, 0)
    conn = state.connect(paths.state_db)
    inbox.complete(paths, job, conn=conn, entries=2, detail="ok")
    assert inbox.counts(paths) == inbox.InboxCounts(0, 0, 0)
    assert not any(paths.claimed.iterdir())
    row = conn.execute("SELECT status, entries FROM jobs WHERE id=?", (env.id,)).fetchone()
    assert tuple(row) == ("done", 2)
    assert (paths.spool / f"{env.id}.jsonl").exists()  # kept for recompiles


def test_fail_writes_error_record_and_retry_moves_back(settings, root):
    envs = _jobs(root, 2)
    paths = settings.paths
    for path in inbox.pending(paths):
        job = inbox.claim(paths, path)
        inbox.fail(
            paths,
            job,
            error_class="PermanentLLMError",
            message="401: fix your login",
            attempts=1,
            stderr_tail="auth failed",
            now=0.0,
        )
    failed = inbox.failed_jobs(paths)
    assert [f.id for f in failed] == [e.id for e in envs]  # capture order
    assert failed[0].error_class == "PermanentLLMError" and failed[0].attempts == 1
    assert failed[0].failed_at.startswith("1970-01-01T00:00:00")
    record = json.loads(next(paths.failed.glob("*.error.json")).read_text())
    assert record["stderr_tail"] == "auth failed"
    assert not list(paths.claimed.iterdir())
    assert all((paths.spool / f"{e.id}.jsonl").exists() for e in envs)
    assert inbox.retry(paths, [envs[0].id[:8]]) == [envs[0].id]
    assert inbox.retry(paths, ["nope"]) == []
    assert inbox.counts(paths) == inbox.InboxCounts(1, 0, 1)
    assert inbox.retry(paths) == [envs[1].id]
    assert inbox.counts(paths) == inbox.InboxCounts(2, 0, 0)
    assert not list(paths.failed.iterdir())


def test_malformed_envelope_goes_to_failed_with_reason(settings, root):
    paths = settings.paths
    (paths.inbox / "20261120-bad.json").write_text("{not json")
    (paths.inbox / "20261120-old.json").write_text(json.dumps({"v": 99}))
    for path in inbox.pending(paths):
        assert inbox.claim(paths, path) is None
    failed = {f.file_name: f for f in inbox.failed_jobs(paths)}
    assert set(failed) == {"20261120-bad.json", "20261120-old.json"}
    assert failed["20261120-bad.json"].error_class == inbox.MALFORMED
    assert "not JSON" in failed["20261120-bad.json"].message
    assert "version" in failed["20261120-old.json"].message
    assert not list(paths.claimed.iterdir())


def test_release_puts_job_back_untouched(settings, root):
    env = _jobs(root, 1)[0]
    paths = settings.paths
    job = inbox.claim(paths, inbox.pending(paths)[0])
    assert inbox.release(paths, job)
    assert [p.name for p in inbox.pending(paths)] == [env.file_name()]
    assert not list(paths.claimed.iterdir())


def test_dead_claims_are_released_live_ones_kept(settings, root):
    paths = settings.paths
    a, b, c = _jobs(root, 3)
    live = inbox.claim(paths, paths.inbox / a.file_name())
    dead = inbox.claim(paths, paths.inbox / b.file_name())
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    owner = json.loads(dead.owner_path.read_text())
    owner["pid"] = int(proc.stdout)  # a process that has exited
    dead.owner_path.write_text(json.dumps(owner))
    ownerless = inbox.claim(paths, paths.inbox / c.file_name(), now=time.time())
    os.unlink(ownerless.owner_path)
    assert reclaim.release_dead_claims(paths) == 1  # the owner-less claim is fresh: kept for now
    assert [p.name for p in inbox.pending(paths)] == [b.file_name()]
    assert reclaim.release_dead_claims(paths, now=time.time() + 120) == 1
    assert sorted(p.name for p in inbox.pending(paths)) == sorted([b.file_name(), c.file_name()])
    assert live.path.exists() and live.owner_path.exists()


def test_reused_pid_is_not_mistaken_for_the_owner(settings, root):
    paths = settings.paths
    env = _jobs(root, 1)[0]
    job = inbox.claim(paths, paths.inbox / env.file_name())
    owner = json.loads(job.owner_path.read_text())
    if not owner["proc_start"]:
        return  # no /proc here: pid reuse cannot be told apart; nothing to check
    owner["proc_start"] = "1"  # same pid (ours), different process start time
    job.owner_path.write_text(json.dumps(owner))
    assert reclaim.release_dead_claims(paths) == 1


_CLAIMER = """
import json, sys
from pathlib import Path
from pipeline import inbox
from pipeline.config import load_settings
paths = load_settings(sys.argv[1]).paths
sys.stdin.readline()  # start together
got = []
for path in inbox.pending(paths):
    job = inbox.claim(paths, path)
    if job is not None:
        got.append(job.id)
print(json.dumps(got))
"""


def test_claim_race_between_processes_each_job_claimed_once(settings, root):
    envs = _jobs(root, 40)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    for p in procs:  # by now every interpreter has (likely) started; release them together
        p.stdin.write("go\n")
        p.stdin.flush()
    claimed: list[str] = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        claimed.extend(json.loads(out))
    assert sorted(claimed) == sorted(e.id for e in envs)  # every job once, none twice
    assert inbox.counts(settings.paths).claimed == 40


def test_prune_spools_only_old_done_jobs(settings, root):
    paths = settings.paths
    conn = state.connect(paths.state_db)
    old_done, new_done, failed, pending = _jobs(root, 4)
    for env in (old_done, new_done, failed):
        job = inbox.claim(paths, paths.inbox / env.file_name())
        if env is failed:
            inbox.fail(paths, job, error_class="X", message="m", attempts=1, conn=conn)
        else:
            inbox.complete(paths, job, conn=conn, now=0.0 if env is old_done else 10 * 86400.0)
    conn.execute("UPDATE jobs SET updated_at=0 WHERE id=?", (failed.id,))
    orphan = paths.spool / "deadbeefdeadbeefdead.jsonl"
    orphan.write_bytes(b"{}\n")
    os.utime(orphan, (0, 0))
    removed = spool.prune_spools(paths, conn, keep_days=7, now=12 * 86400.0)
    assert removed == 2
    left = {p.name[:-6] for p in paths.spool.iterdir()}
    assert left == {new_done.id, failed.id, pending.id}


def test_counts_on_missing_folders_are_zero(tmp_path):
    paths = load_settings(tmp_path).paths
    assert inbox.counts(paths) == inbox.InboxCounts(0, 0, 0)
    assert inbox.failed_jobs(paths) == []
    assert inbox.pending(paths) == []


def test_claims_of_another_host_are_trusted_for_a_day(settings, root):
    paths = settings.paths
    env = _jobs(root, 1)[0]
    now = time.time()
    job = inbox.claim(paths, paths.inbox / env.file_name(), now=now)
    owner = json.loads(job.owner_path.read_text())
    owner["host"] = "some-other-machine"  # e.g. the same laptop before a hostname change
    job.owner_path.write_text(json.dumps(owner))
    assert reclaim.release_dead_claims(paths, now=now + 3600) == 0
    assert inbox.pending(paths) == []
    assert reclaim.release_dead_claims(paths, now=now + reclaim.FOREIGN_CLAIM_S + 1) == 1
    assert [p.name for p in inbox.pending(paths)] == [env.file_name()]


def test_withdraw_removes_envelope_and_spool_unless_a_drain_claimed_it(settings, root):
    paths = settings.paths
    first, second = _jobs(root, 2)
    [p1, p2] = inbox.pending(paths)
    assert inbox.read_envelope(p1) == first
    assert inbox.claim(paths, p2) is not None  # a drain takes the second one first
    assert inbox.withdraw(paths, p1, first)
    assert inbox.withdraw(paths, p2, second) is False  # gone from inbox/: left to the drain
    assert inbox.pending(paths) == [] and len(inbox.claimed_envelopes(paths)) == 1
    spools = {p.stem for p in paths.spool.glob("*.jsonl")}
    assert spools == {second.id}
    assert inbox.read_envelope(p1) is None


def test_prune_touches_only_what_expired_and_sweeps_the_folder_daily(settings, root, monkeypatch):
    paths = settings.paths
    conn = state.connect(paths.state_db)
    envs = _jobs(root, 3)
    day = 86400.0
    for i, env in enumerate(envs):  # done on days 0, 1 and 2
        inbox.complete(
            paths, inbox.claim(paths, paths.inbox / env.file_name()), conn=conn, now=i * day
        )
    assert spool.prune_spools(paths, conn, keep_days=7, now=7.5 * day) == 1  # day 0 expired
    orphan = paths.spool / "deadbeefdeadbeefdead.jsonl"
    orphan.write_bytes(b"{}\n")
    os.utime(orphan, (0, 0))
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(spool.os, "listdir", lambda p=".": listed.append(str(p)) or real_listdir(p))
    assert spool.prune_spools(paths, conn, keep_days=7, now=8.4 * day) == 1  # day 1, no sweep
    assert str(paths.spool) not in listed and orphan.exists()
    left = {p.name[:-6] for p in paths.spool.iterdir()}
    assert envs[0].id not in left and envs[1].id not in left and envs[2].id in left
    assert spool.prune_spools(paths, conn, keep_days=7, now=9.6 * day) == 2  # day 2 + sweep
    assert str(paths.spool) in listed and not orphan.exists()


def test_the_daily_sweep_removes_temp_spools_of_killed_hooks(settings, root):
    """A hook killed mid-spool leaves a .tmp-* file (MBs) that no envelope names."""
    paths = settings.paths
    paths.spool.mkdir(parents=True, exist_ok=True)
    conn = state.connect(paths.state_db)
    now = 30 * 86400.0
    stale = paths.spool / ".tmp-abc123.jsonl.k1ll3d"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (now - 3600, now - 3600))
    young = paths.spool / ".tmp-def456.jsonl.wr1t1ng"  # a hook writing right now
    young.write_bytes(b"y")
    os.utime(young, (now - 5, now - 5))
    assert spool.prune_spools(paths, conn, keep_days=7, now=now) == 1
    assert not stale.exists() and young.exists()
    conn.close()
