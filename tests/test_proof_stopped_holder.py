"""Proof suite (issue 12, hangs): a lock holder stopped with SIGSTOP (Ctrl-Z on a drain inside the
daily lock, a stopped watcher). A real second process takes the lock and is stopped; drains then
return with the job still pending and distil it exactly once after the holder is gone, and hooks
stop handing work to a watcher whose heartbeat is out of date; a drain killed with -9 while it
waits loses and duplicates nothing. Waits here only bound a hang
(the holder's start-up); no assertion depends on how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import inbox, spawn, state, watcherbeat
from pipeline.config import load_settings
from pipeline.daily import guarded_daily_path
from pipeline.distil import capture_time
from pipeline.drain import drain
from pipeline.fsutil import lock_is_held
from tests.fakes import FakeBackend
from tests.helpers import (
    ENTRY,
    all_entries,
    hook_inproc,
    hook_payload,
    make_job,
    transcript_lines,
    write_transcript,
)

REPO = Path(__file__).resolve().parent.parent
HOLDER = (
    "import sys\n"
    "from pipeline.fsutil import file_lock\n"
    "with file_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)  # polling a condition under a deadline that only bounds a hang
    return predicate()


def _is_stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0] == b"T"


class StoppedHolder:
    """A second process holding the lock on ``path``, then stopped with SIGSTOP."""

    def __init__(self, path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def __enter__(self) -> StoppedHolder:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"held\n"
        os.kill(self.proc.pid, signal.SIGSTOP)
        assert _wait_for(lambda: _is_stopped(self.proc.pid)), "the holder never stopped"
        return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __exit__(self, *exc) -> None:
        self.kill()


def _job_row(settings, job_id: str):
    conn = state.connect(settings.paths.state_db)
    try:
        return conn.execute("SELECT status, detail FROM jobs WHERE id=?", (job_id,)).fetchone()
    finally:
        conn.close()


def _day_file(settings, env) -> Path:
    return guarded_daily_path(settings.paths.daily, capture_time(env, settings)[0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the T state")
def test_drain_returns_when_a_stopped_process_holds_the_daily_lock(settings, root):
    env = make_job(root, "held", transcript_lines("held", [("We chose advisory locks.", "ok")]))
    fake = FakeBackend(default=ENTRY)
    day_file = _day_file(settings, env)
    with StoppedHolder(day_file) as holder:
        report = drain(settings, backend=fake, lock_wait_s=0.05, run_after=False)
        assert report.done == 0 and report.failed == 0
        assert report.stopped.startswith("locked:") and day_file.name in report.stopped
        assert fake.calls == []  # no model call is paid while the log is held
        assert inbox.counts(settings.paths) == inbox.InboxCounts(1, 0, 0)  # back, unharmed
        row = _job_row(settings, env.id)
        assert row["status"] == "queued" and "held by another process" in row["detail"]
        log = (settings.paths.logs / "pipeline.log").read_text()
        assert f"job {env.id} released" in log and "Ctrl-Z" in log
        # Hook-started drains meanwhile end the same way instead of piling up.
        again = drain(settings, backend=fake, lock_wait_s=0.05, run_after=False)
        assert again.stopped.startswith("locked:") and fake.calls == []
        holder.kill()  # the kernel drops the lock of a killed holder
    report = drain(settings, backend=fake, lock_wait_s=0.05, run_after=False)
    assert report.done == 1 and len(fake.calls) == 1
    assert [e.title for e in all_entries(root)] == [ENTRY["title"]]
    assert drain(settings, backend=fake, run_after=False).processed == 0
    assert len(all_entries(root)) == 1 and len(fake.calls) == 1  # exactly once


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the T state")
def test_lock_taken_during_the_model_call_releases_the_job_not_the_entry(settings, root):
    """The holder appears after the check and before the append (a drain stopped mid-append)."""
    env = make_job(root, "mid", transcript_lines("mid", [("We chose advisory locks.", "ok")]))
    day_file = _day_file(settings, env)
    holders: list[StoppedHolder] = []

    def reply(request):
        if not holders:
            holders.append(StoppedHolder(day_file).__enter__())
        return ENTRY

    fake = FakeBackend(default=reply)
    try:
        report = drain(settings, backend=fake, lock_wait_s=0.05, run_after=False)
        assert report.stopped.startswith("locked:") and report.done == 0
        assert inbox.counts(settings.paths).pending == 1 and all_entries(root) == []
    finally:
        for holder in holders:
            holder.kill()
    report = drain(settings, backend=fake, lock_wait_s=0.05, run_after=False)
    assert report.done == 1
    assert [e.title for e in all_entries(root)] == [ENTRY["title"]]


def _fake_drain_child(tmp_path, monkeypatch) -> Path:
    """sys.executable as seen by spawn: a script that records that it ran (no real drain)."""
    out = tmp_path / "spawned"
    fake = tmp_path / "fake_python"
    fake.write_text(f"#!{sys.executable}\nopen({str(out)!r}, 'a').write('ran\\n')\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the T state")
def test_hooks_spawn_a_drain_when_the_watcher_is_stopped(root, memc_env, tmp_path, monkeypatch):
    settings = load_settings(root, {"spawn_drain": True})
    paths = settings.paths
    beat = watcherbeat.beat_file(paths)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "watch", "--sweep", "30"],
        env=memc_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: lock_is_held(paths.lock("watcher")) and beat.exists())
        assert beat.read_text().strip() == f"{watcherbeat.bound_for(30):g}"
        at = os.stat(beat).st_mtime
        assert spawn.spawn_drain(settings, now=at + 1) == "drain=watcher"  # a live beat
        os.kill(proc.pid, signal.SIGSTOP)
        assert _wait_for(lambda: _is_stopped(proc.pid))
        ran = _fake_drain_child(tmp_path, monkeypatch)
        later = at + watcherbeat.bound_for(30) + 1
        assert lock_is_held(paths.lock("watcher"))  # a stopped watcher still holds its lock
        assert not watcherbeat.running(paths, now=later)
        from pipeline.status import collect

        assert collect(settings, now=later).watcher_running is False  # status agrees
        said = spawn.spawn_drain(settings, now=later)
        assert said.startswith("drain=spawned") and "watcher stalled" in said
        assert _wait_for(ran.exists), "the drain child never ran"
        # The same through a real hook run: the beat aged on disk, the hook's own clock.
        aged = time.time() - 2 * watcherbeat.bound_for(30)
        os.utime(beat, (aged, aged))
        transcript = write_transcript("/home/dev/demo", "s-hook", turns=4)
        monkeypatch.setenv("MEMC_SPAWN_DRAIN", "1")
        payload = hook_payload("s-hook", transcript)
        assert hook_inproc(["session-end"], root, payload, monkeypatch) == 0
        hook_log = (paths.logs / "hooks.log").read_text()
        assert "watcher stalled" in hook_log.splitlines()[-1]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def test_a_beat_within_its_bound_counts_either_side_of_now(settings):
    paths = settings.paths
    assert not watcherbeat.stalled(paths)  # no beat file: a watcher of an earlier version
    ticks = iter([100.0, 101.0, 200.0])
    beat = watcherbeat.Beat(paths, 30, clock=lambda: next(ticks))
    beat.start()
    at = os.stat(watcherbeat.beat_file(paths)).st_mtime
    bound = watcherbeat.bound_for(30)
    assert not watcherbeat.stalled(paths, now=at + bound)
    assert watcherbeat.stalled(paths, now=at + bound + 1)
    assert watcherbeat.stalled(paths, now=at - bound - 1)  # a clock set back says nothing
    os.utime(watcherbeat.beat_file(paths), (1.0, 1.0))
    beat()  # 1 s after start: throttled, no write
    assert os.stat(watcherbeat.beat_file(paths)).st_mtime == 1.0
    beat()  # 100 s after start: beats
    assert os.stat(watcherbeat.beat_file(paths)).st_mtime > 1.0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the T state")
def test_drain_killed_while_it_waits_on_a_stopped_holder_loses_nothing(root, memc_env):
    """kill -9 of a real `memc drain` waiting on the held daily lock: the next drain distils the
    job exactly once (its claim is returned as a dead worker's)."""
    settings = load_settings(root)
    env = make_job(root, "kill", transcript_lines("kill", [("We chose advisory locks.", "ok")]))
    claimed = settings.paths.claimed
    with StoppedHolder(_day_file(settings, env)) as holder:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "drain"],
            env=dict(memc_env, MEMC_BACKEND="extractive"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def owned_claim() -> bool:  # claimed with its owner record: a dead worker's claim then
            jobs = inbox.envelope_files(claimed)  # (an owner-less one waits ORPHAN_CLAIM_S)
            return any(inbox.sidecar(p, inbox.OWNER_SUFFIX).exists() for p in jobs)

        try:  # claimed, then held at the lock for as long as the holder is stopped
            assert _wait_for(owned_claim)
            assert lock_is_held(_day_file(settings, env)) and proc.poll() is None
        finally:
            proc.kill()
            proc.wait(timeout=30)
        holder.kill()
    report = drain(settings, run_after=False)
    assert report.released_dead == 1 and report.done == 1
    assert len(all_entries(root)) == 1
    assert drain(settings, run_after=False).processed == 0 and len(all_entries(root)) == 1
