"""The watcher: picks a new job up through the file event (the sweep is an hour away, so only
the event can explain it), finds it by the sweep alone when events are off, stops cleanly with no
leaked threads, is a single instance per root, survives a failing cycle, and answers SIGTERM in a
real process. How fast the event path is (pick-up latency) is measured by scripts/bench_drain.py;
the waits here only bound a hang."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline import inbox, watcher
from pipeline.daily import list_days
from pipeline.drainreport import DrainReport, JobFailure
from pipeline.fsutil import file_lock
from tests.fakes import FakeBackend
from tests.helpers import ENTRY, make_job, transcript_lines


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)  # polling a condition under a deadline
    return predicate()


class Runner:
    """Run watch() in a thread; record each finished cycle."""

    def __init__(self, settings, backend, **kw):
        self.stop = threading.Event()
        self.cycles: list = []
        self.cycle_event = threading.Event()
        self.result: list[int] = []

        def on_cycle(report):
            self.cycles.append((time.monotonic(), report))
            self.cycle_event.set()

        self.thread = threading.Thread(
            target=lambda: self.result.append(
                watcher.watch(
                    settings, backend=backend, stop_event=self.stop, on_cycle=on_cycle, **kw
                )
            )
        )

    def __enter__(self):
        self.thread.start()
        assert _wait_for(lambda: self.cycles, 30), "the watcher never ran its first sweep"
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


def test_new_job_is_picked_up_through_the_file_event_and_stop_is_clean(settings, root):
    before = set(threading.enumerate())
    fake = FakeBackend(default=ENTRY)
    with Runner(settings, fake, sweep_s=3600, debounce_s=0.05) as run:
        for i in range(3):
            make_job(root, f"w{i}", transcript_lines(f"w{i}", [("ship it", "shipped")]))
            assert _wait_for(
                lambda want=i + 1: (
                    inbox.counts(settings.paths) == inbox.InboxCounts(0, 0, 0)
                    and len(fake.calls) == want
                    and len(run.cycles) >= want + 1
                ),
                60,  # far below the hour-long sweep: only the inbox event can wake the watcher
            ), "the inbox event did not wake the watcher"
        assert len(run.cycles) == 1 + 3  # the first sweep, then one cycle per event
    assert run.result == [0]
    assert len(list_days(root / "daily")) == 1
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


def test_second_instance_exits_zero_and_says_so(settings, root):
    said = []
    with file_lock(settings.paths.lock("watcher")):
        assert (
            watcher.watch(
                settings, backend=FakeBackend(), on_event=said.append, stop_event=threading.Event()
            )
            == 0
        )
    assert "already running" in said[0]


def test_sweep_is_the_truth_without_events(settings, root):
    # Events off: no Observer, nothing wakes the loop, so only the sweep can find the job.
    before = set(threading.enumerate())
    fake = FakeBackend(default=ENTRY)
    with Runner(settings, fake, sweep_s=0.5, debounce_s=0, events=False) as run:
        assert [t for t in threading.enumerate() if t not in before] == [run.thread]
        make_job(root, "sweep", transcript_lines("sweep", [("a", "b")]))
        assert _wait_for(lambda: len(fake.calls) == 1, 30)
        assert _wait_for(lambda: len(run.cycles) >= 2, 30)  # found by the second sweep


def test_a_failing_cycle_does_not_kill_the_daemon(settings, root, monkeypatch):
    from pipeline import drain as drain_mod

    calls = []
    real = drain_mod.drain

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return real(*a, **kw)

    monkeypatch.setattr(drain_mod, "drain", flaky)
    fake = FakeBackend(default=ENTRY)
    with Runner(settings, fake, sweep_s=0.3, debounce_s=0) as run:
        assert run.cycles[0][1] is None
        make_job(root, "after", transcript_lines("after", [("a", "b")]))
        assert _wait_for(lambda: len(fake.calls) == 1, 30)


@pytest.mark.slow
def test_sigterm_stops_a_real_watcher_process(root, memc_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "watch", "--sweep", "30"],
        env=memc_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from pipeline.config import load_settings
        from pipeline.fsutil import lock_is_held

        lock = load_settings(root).paths.lock("watcher")
        assert _wait_for(lambda: lock_is_held(lock), 30), "watcher did not take its lock"
        env = make_job(
            root,
            "real",
            transcript_lines(
                "real",
                [("We decided to use WAL mode because readers block. TODO: benchmark.", "ok")],
            ),
        )
        assert _wait_for(lambda: (root / "daily" / "2026-11-20.md").exists(), 30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert not lock_is_held(lock)
    assert env.id in (root / ".memc" / "state.db").read_bytes().decode("latin-1")


# --- a hook probing the watcher lock made a starting watcher exit as a "second instance" -------


def test_watcher_start_survives_a_momentary_lock_probe(root, settings):
    from pipeline.fsutil import file_lock
    from pipeline.watcher import watch

    held, release = threading.Event(), threading.Event()

    def prober():  # what lock_is_held does in a hook, stretched so the race is certain
        with file_lock(settings.paths.lock("watcher"), blocking=False):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=prober)
    thread.start()
    assert held.wait(5)
    stop, cycles, events = threading.Event(), [], []

    def on_cycle(report):
        cycles.append(report)
        stop.set()

    timer = threading.Timer(0.1, release.set)
    timer.start()
    try:
        assert (
            watch(settings, stop_event=stop, sweep_s=0.5, on_cycle=on_cycle, on_event=events.append)
            == 0
        )
    finally:
        release.set()
        timer.cancel()
        thread.join(5)
    assert cycles, events  # it ran instead of reporting another watcher


def test_second_watcher_still_exits_zero_when_one_really_runs(root, settings):
    from pipeline.fsutil import file_lock
    from pipeline.watcher import watch

    events: list[str] = []
    with file_lock(settings.paths.lock("watcher"), blocking=False):
        assert watch(settings, sweep_s=0.5, on_event=events.append, lock_wait_s=0.05) == 0
    assert any("already running" in e for e in events)


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
