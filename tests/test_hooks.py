"""`memc hook EVENT`: bad input of every kind -> exit 0, nothing on stdout, one log line, and it
ends by itself (a stdin that stays open and silent, a FIFO as the transcript).

A representative set runs through the real `python -m pipeline hook ...` subprocess; the rest
calls run_hook_cli in-process with a real pipe as stdin. How fast a hook is gets measured by
scripts/bench_hooks.py (ratios to the bare interpreter start), not here.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import hooks
from pipeline.hooks import parse_payload, run_hook_cli
from tests.helpers import PYTHON, hook_inproc, hook_payload, queued_envelopes, turn_line


def log_lines(root: Path) -> list[str]:
    path = root / ".memc" / "logs" / "hooks.log"
    return path.read_text().splitlines() if path.exists() else []


def hook_proc(env, event: str, stdin: bytes | None, *args: str, timeout: float = 60):
    """Run the hook subprocess; ``timeout`` only catches a hook that hangs (it fails the test)."""
    return subprocess.run(
        [PYTHON, "-m", "pipeline", *args, "hook", event],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )


# --- through the real subprocess -------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["empty", "not-json", "wrong-types", "missing-file", "fifo", "directory", "ok"]
)
def test_hook_subprocess_bad_input(memc_env, root, tmp_path, case):
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    stdin = {
        "empty": b"",
        "not-json": b"\x00garbage{{",
        "wrong-types": json.dumps({"session_id": 42, "transcript_path": ["x"]}).encode(),
        "missing-file": hook_payload("s1", tmp_path / "absent.jsonl"),
        "fifo": hook_payload("s1", tmp_path / "fifo"),
        "directory": hook_payload("s1", tmp_path),
        "ok": hook_payload("s1", t),
    }[case]
    if case == "fifo":
        os.mkfifo(tmp_path / "fifo")
    proc = hook_proc(memc_env, "session-end", stdin)
    assert proc.returncode == 0 and proc.stdout == b""
    assert len(log_lines(root)) == 1
    assert len(queued_envelopes(root)) == (1 if case == "ok" else 0)
    if case == "ok":
        assert " queued job=" in log_lines(root)[0]


def test_hook_subprocess_windows_backslashes(memc_env, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    raw = (
        '{"session_id":"s1","transcript_path":"' + str(t) + '",'
        '"cwd":"C:\\Users\\dev\\new-proj","hook_event_name":"Stop"}'
    ).encode()
    assert parse_payload(raw)[0]["cwd"] == "C:\\Users\\dev\\new-proj"
    proc = hook_proc(memc_env, "session-end", raw)
    assert proc.returncode == 0 and proc.stdout == b""
    [env] = queued_envelopes(root)
    assert env.cwd == "C:\\Users\\dev\\new-proj" and env.project == "new-proj"


def test_read_stdin_gives_up_on_a_silent_open_pipe():
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as stream:
            assert hooks.read_stdin(stream, timeout=0.05) == b""  # the writer never writes
            os.write(write_fd, b'{"session_id": "s"}')
            assert hooks.read_stdin(stream, timeout=0.05) == b'{"session_id": "s"}'
    finally:
        os.close(write_fd)


def test_hook_subprocess_absent_stdin_does_not_hang(memc_env, root):
    proc = subprocess.Popen(
        [PYTHON, "-m", "pipeline", "hook", "stop"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=memc_env,
    )
    try:  # stdin stays open and silent: the hook must give up on it by itself (the wait's
        # timeout only catches a hang; "empty stdin" below says the hook itself gave up)
        assert proc.wait(timeout=60) == 0
        out = proc.stdout.read()
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0 and out == b""
    assert "empty stdin" in log_lines(root)[0]


def test_hook_subprocess_memc_internal_does_nothing(memc_env, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    proc = hook_proc(dict(memc_env, MEMC_INTERNAL="1"), "session-end", hook_payload("s1", t))
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""
    assert log_lines(root) == [] and queued_envelopes(root) == []


def test_hook_subprocess_uninitialised_root(memc_env, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    proc = hook_proc(dict(memc_env, MEMC_ROOT=str(bare)), "session-end", hook_payload("s1", t))
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"memc init" in proc.stderr and proc.stderr.count(b"\n") == 1
    assert list(bare.iterdir()) == []


def test_hook_subprocess_root_flag_and_session_start(memc_env, root, tmp_path):
    env = dict(memc_env)
    env.pop("MEMC_ROOT")
    data = hook_payload("s1", tmp_path / "t.jsonl")
    proc = hook_proc(env, "session-start", data, "--root", str(root))
    assert proc.returncode == 0
    if proc.stdout:  # only SessionStart may print, and only Claude Code's JSON form
        out = json.loads(proc.stdout)
        assert out["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "session-start" in log_lines(root)[0]


# --- in-process ------------------------------------------------------------------------------


def test_bad_config_is_logged_not_raised(root, tmp_path, monkeypatch):
    (root / ".memc" / "config.toml").write_text("stop_min_lines = 'many'\n")
    assert hook_inproc(["stop"], root, hook_payload("s1", tmp_path / "t.jsonl"), monkeypatch) == 0
    assert "configuration error" in log_lines(root)[0]


@pytest.mark.parametrize(
    "data,why",
    [
        (b"[1, 2]", "not an object"),
        (b'"just a string"', "not an object"),
        (b"\xef\xbb\xbf" + b'{"session_id": null}', "session_id"),
        (b'{"session_id": "s", "cwd": 7}', "cwd"),
        (b'{"session_id": "   "}', "empty"),
        (b"[" * 200_000 + b"]" * 200_000, "not JSON"),  # RecursionError
        (b'{"a":' * 100_000, "not JSON"),
    ],
)
def test_bad_payloads_inprocess(root, monkeypatch, capsys, data, why):
    assert hook_inproc(["session-end"], root, data, monkeypatch) == 0
    assert capsys.readouterr().out == ""
    [logged] = log_lines(root)
    assert why in logged and "ignored" in logged


def test_unknown_event_and_no_event(root, monkeypatch, capsys):
    assert hook_inproc(["bogus"], root, b"{}", monkeypatch) == 0
    assert hook_inproc([], root, b"{}", monkeypatch) == 0
    assert capsys.readouterr().out == ""
    logged = log_lines(root)
    assert len(logged) == 2 and all("unknown hook event" in entry for entry in logged)


def test_oversized_payload_is_salvaged(root, tmp_path, monkeypatch):
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    big = hook_payload("s1", t, last_assistant_message="z" * (2 << 20))
    assert hook_inproc(["stop"], root, big, monkeypatch) == 0
    assert "below-threshold" in log_lines(root)[0]  # parsed from the first MiB


def test_empty_transcript_path_is_derived_from_session_and_cwd(root, tmp_path, monkeypatch):
    sid = "dac0186b-eeb1-4841-93d1-c67107d277e3"
    folder = Path(os.environ["HOME"]) / ".claude" / "projects" / "-home-dev-projects-demo"
    folder.mkdir(parents=True)
    (folder / f"{sid}.jsonl").write_bytes(turn_line(1))
    data = hook_payload(sid, "", cwd="/home/dev/projects/demo")
    assert hook_inproc(["pre-compact"], root, data, monkeypatch) == 0
    [env] = queued_envelopes(root)
    assert env.transcript_path == str(folder / f"{sid}.jsonl") and env.event == "pre-compact"
    assert hooks.derive_transcript_path("../x", "/a") == ""


def test_derived_transcript_path_uses_claude_config_dir_with_home_expanded():
    home = Path(os.environ["HOME"])
    got = hooks.derive_transcript_path("s1", "/a/b", env={"CLAUDE_CONFIG_DIR": "~/cc"})
    assert got == str(home / "cc" / "projects" / "-a-b" / "s1.jsonl")
    assert hooks.derive_transcript_path("s1", "/a/b", env={}) == str(
        home / ".claude" / "projects" / "-a-b" / "s1.jsonl"
    )


def test_internal_error_is_logged_and_exit_zero(root, tmp_path, monkeypatch, capsys):
    from pipeline import capture

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(capture, "capture", boom)
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    assert hook_inproc(["session-end"], root, hook_payload("s1", t), monkeypatch) == 0
    assert capsys.readouterr().out == ""
    assert "internal error RuntimeError" in log_lines(root)[0]


def test_session_start_prints_only_what_the_read_side_returns(root, monkeypatch, capsys):
    from pipeline import inject

    monkeypatch.setattr(inject, "build_injection", lambda settings, p: "CTX")  # the read side
    assert hook_inproc(["session-start"], root, hook_payload("s1", "x"), monkeypatch) == 0
    assert capsys.readouterr().out == "CTX\n"


# --- concurrency with real processes -----------------------------------------------------------


def _spools_cover_file(root: Path, sid: str, t: Path) -> None:
    envs = [e for e in queued_envelopes(root) if e.session_id == sid]
    assert envs, f"nothing captured for {sid}"
    assert envs[0].start == 0
    for a, b in itertools.pairwise(envs):
        assert a.end == b.start, f"gap or overlap in {sid}: {a.end} vs {b.start}"
    data = b"".join((root / ".memc" / e.spool).read_bytes() for e in envs)
    assert data == t.read_bytes()


def test_concurrent_hooks_queue_every_range_exactly_once(memc_env, root, tmp_path, settings):
    from pipeline.capture import capture

    sessions = {f"s{k}": tmp_path / f"s{k}.jsonl" for k in range(4)}
    for t in sessions.values():
        t.write_bytes(b"")
    for rnd in range(3):
        for t in sessions.values():
            with t.open("ab") as fh:
                fh.write(b"".join(turn_line(rnd * 100 + i) for i in range(20)))
        procs = []
        for sid, t in sessions.items():
            for _ in range(3):  # three hooks for the same session at once
                p = subprocess.Popen(
                    [PYTHON, "-m", "pipeline", "hook", "session-end"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=memc_env,
                )
                procs.append(p)
                p.stdin.write(hook_payload(sid, t))
                p.stdin.close()
        for p in procs:
            assert p.wait(timeout=60) == 0
            assert p.stdout.read() == b""
            p.stdout.close()
            p.stderr.close()
    for sid, t in sessions.items():  # a hook that found the lock busy left its range to the next
        capture(settings, transcript_path=str(t), session_id=sid)
        _spools_cover_file(root, sid, t)
    ids = [e.id for e in queued_envelopes(root)]
    assert len(ids) == len(set(ids))
    conn = sqlite3.connect(root / ".memc" / "state.db")
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == len(ids)
    conn.close()
    assert len(log_lines(root)) == 3 * 4 * 3


def test_verbose_hook_shows_traceback_on_stderr_only(root, tmp_path, monkeypatch, capsys):
    from pipeline import capture

    monkeypatch.setattr(capture, "capture", lambda *a, **k: 1 / 0)
    t = tmp_path / "t.jsonl"
    t.write_bytes(turn_line(1))
    (root.parent / "stdin-v").write_bytes(hook_payload("s1", t))
    with (root.parent / "stdin-v").open("rb") as stream:
        monkeypatch.setattr(sys, "stdin", stream)
        assert run_hook_cli(["session-end"], root=str(root), verbose=True) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "ZeroDivisionError" in captured.err
    assert len(log_lines(root)) == 1
