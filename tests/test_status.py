"""memc status on a fresh root, with failures, spend and a held watcher lock."""

from __future__ import annotations

import json
import time

from pipeline import state
from pipeline.cli import main
from pipeline.status import ago, collect
from tests.helpers import capture_session, fail_job, queue_job, run_memc

NOW = 1_800_000_000.0


def test_fresh_root(settings, capsys):
    st = collect(settings, now=NOW)
    assert (st.pending, st.claimed, st.failed) == (0, 0, 0)
    assert st.last_capture_at is None and st.entries_pending == 0
    assert st.compile_would_fire is False and st.compile_reason
    assert st.spent_today_usd == 0 and st.budget_usd == settings.daily_budget_usd
    assert st.watcher_running is False and st.breaker_open_until is None
    assert (st.articles, st.daily_files) == (0, 0)
    assert main(["--root", str(settings.root), "status"]) == 0
    out = capsys.readouterr().out
    assert "0 pending, 0 being processed, 0 failed" in out and "last capture: never" in out


def test_status_with_failures_pending_spend_and_watcher(settings, capsys):
    root = settings.root
    queue_job(root, "sess-a")
    fail_job(root, "sess-b", message="authentication failed (401)")
    (root / "knowledge" / "concepts" / "x.md").write_text("# x\n")
    (root / "knowledge" / "qa" / "y.md").write_text("# y\n")
    (root / "knowledge" / "index.md").write_text("# index\n")
    (root / "daily" / "2027-01-15.md").write_text("# Daily Log: 2027-01-15\n")
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW))
    (root / "daily" / f"{day}.md").write_text(
        f"# Daily Log: {day}\n\n### 10:00 · p · T\n"
        "<!-- memc:entry id=e1e1e1e1 session=s event=e -->\n"
    )
    conn = state.connect(settings.paths.state_db)
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime(NOW))
        conn.execute(
            "INSERT INTO llm_calls(at, day, task, backend, cost_usd, outcome) VALUES(?,?,?,?,?,?)",
            (NOW - 60, day, "distil", "claude", 0.25, "ok"),
        )
        conn.execute(
            "INSERT INTO entries(id, day, daily_path, created_at) "
            "VALUES('e1e1e1e1', ?, 'daily/x.md', ?)",
            (day, NOW - 7200),
        )
        state.kv_set(conn, "last_capture_at", str(NOW - 600))
        state.kv_set(conn, "breaker_open_until", str(NOW + 300))
    finally:
        conn.close()
    with _held_elsewhere(settings.paths.lock("watcher")):
        st = collect(settings, now=NOW)
    assert (st.pending, st.failed) == (1, 1)
    assert st.failed_jobs[0].error_class == "PermanentLLMError"
    assert "401" in st.failed_jobs[0].message
    assert st.entries_pending == 1 and st.oldest_pending_at == NOW - 7200
    assert st.spent_today_usd == 0.25 and st.calls_today == 1
    assert st.breaker_open_until == NOW + 300
    assert st.watcher_running is True
    assert (st.articles, st.daily_files) == (2, 1)
    assert st.last_capture_at == NOW - 600

    assert main(["--root", str(root), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == 1 and data["failed_jobs"][0]["message"].startswith("authentication")
    assert any("1 job(s) failed" in item for item in data["attention"])
    conn = state.connect(settings.paths.state_db)
    try:  # the command reads the real clock: a breaker open for five more minutes from now
        state.kv_set(conn, "breaker_open_until", str(time.time() + 300))
    finally:
        conn.close()
    assert main(["--root", str(root), "status"]) == 0
    out = capsys.readouterr().out
    assert "memc retry" in out and "OPEN until" in out
    assert "attention: 1 job(s) failed; `memc status` shows why" in out


def test_status_on_uninitialised_root_says_init(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "status"]) == 2
    assert "memc init" in capsys.readouterr().err


def test_ago():
    assert ago(None, NOW) == "never"
    assert ago(NOW - 5, NOW) == "just now"
    assert ago(NOW - 300, NOW) == "5 min ago"
    assert ago(NOW - 7200, NOW) == "2 h ago"
    assert ago(NOW - 86400 * 3, NOW) == "3 days ago"


class _held_elsewhere:
    """Hold a lock from a child process, as a running watcher would (flock is per open file)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import subprocess
        import sys

        code = (
            "import sys, fcntl; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); sys.stdin.read()"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "held"
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def test_status_with_budget_zero_says_so_instead_of_suggesting_drain(root, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    monkeypatch.setenv("MEMC_DAILY_BUDGET_USD", "0")
    queue_job(root, "s1")
    assert run_memc(root, "status") == 0
    out = capsys.readouterr().out
    assert "the daily budget is 0: no model calls at all" in out
    assert "`memc drain` processes them now" not in out


def test_status_does_not_count_extractive_runs_as_model_calls(settings, capsys):
    from pipeline.drain import drain

    capture_session(settings)
    drain(settings, run_after=False)
    assert run_memc(settings.root, "status") == 0
    assert "(0 model calls)" in capsys.readouterr().out


# --- `memc status` runs without click (pipeline.entry) and prints what the click command prints --

STATUS_PROBE = """
import sys
from pipeline.entry import main
rc = main(sys.argv[1:])
sys.stderr.write("\\nPROBE rc=%d click=%s\\n" % (rc, "click" in sys.modules))
"""


def _probe(memc_env, *args):
    import subprocess

    from tests.helpers import PYTHON

    proc = subprocess.run(
        [PYTHON, "-c", STATUS_PROBE, *args], capture_output=True, env=memc_env, timeout=60
    )
    tail = proc.stderr.decode().rsplit("PROBE ", 1)[1].split()
    return proc.stdout.decode(), proc.stderr.decode(), tail


def test_status_runs_without_click_and_prints_the_click_commands_output(settings, memc_env, capsys):
    root = settings.root
    queue_job(root, "sess-a")
    fail_job(root, "sess-b", message="authentication failed (401)")
    (root / "knowledge" / "concepts" / "x.md").write_text("# x\n")
    for args in (["status"], ["status", "--json"], ["-v", "--root", str(root), "status"]):
        out, _err, tail = _probe(memc_env, *args)
        assert tail == ["rc=0", "click=False"], (args, _err)
        assert main(["--root", str(root), "status", *args[args.index("status") + 1 :]]) == 0
        clicked = capsys.readouterr().out  # the click command's
        if "--json" in args:
            assert json.loads(out) == json.loads(clicked)
        else:
            assert out == clicked
            assert "1 pending, 0 being processed, 1 failed" in out and "attention:" in out


def test_status_without_click_fails_and_crashes_like_the_cli(
    settings, memc_env, tmp_path, monkeypatch, capsys
):
    import pipeline.status
    from pipeline.entry import main as console

    env = dict(memc_env, MEMC_ROOT=str(tmp_path / "nowhere"))
    _out, err, tail = _probe(env, "status")
    assert tail[0] == "rc=2" and "memc: " in err and "is not a memory-compiler data root" in err

    # a bug: exit 3, the traceback in pipeline.log (the click handler's, loaded for a crash)
    def boom(*args, **kwargs):
        raise RuntimeError("status exploded")

    monkeypatch.setattr(pipeline.status, "report", boom)
    assert console(["--root", str(settings.root), "status"]) == 3
    assert "internal error" in capsys.readouterr().err
    assert "status exploded" in (settings.paths.logs / "pipeline.log").read_text()


def test_only_the_plain_status_forms_skip_click():
    from pipeline.entry import status_argv

    assert status_argv(["status"]) == (None, False, False)
    assert status_argv(["--root", "/r", "-v", "status", "--json"]) == ("/r", True, True)
    assert status_argv(["--root=/r", "status"]) == ("/r", False, False)
    for argv in (["status", "--help"], ["status", "-v"], ["status", "x"], ["-x", "status"]):
        assert status_argv(argv) is None, argv
    assert status_argv(["search", "status"]) is None
