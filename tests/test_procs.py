"""Process liveness for the inbox's dead-claim recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from pipeline.procs import pid_alive, proc_start

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX process semantics")


def test_this_process_is_alive_and_keeps_its_start_time():
    me = os.getpid()
    assert pid_alive(me)
    assert pid_alive(me, proc_start(me))  # same process, same start time


@posix_only
def test_an_exited_process_is_dead():
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not pid_alive(int(child.stdout))
    assert not pid_alive(0) and not pid_alive(-5)


@posix_only
def test_a_zombie_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline_checks = 2000
        while pid_alive(child.pid) and deadline_checks:  # the kill lands asynchronously
            deadline_checks -= 1
            os.sched_yield()
        assert not pid_alive(child.pid)  # killed but not reaped yet: a zombie
    finally:
        child.wait()


def test_a_reused_pid_is_not_its_first_owner():
    me = os.getpid()
    if not proc_start(me):
        pytest.skip("no /proc start times here")
    assert not pid_alive(me, "1")  # same pid, another start time: a different process
