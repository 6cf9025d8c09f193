"""capture(): lossless, exactly-once spooling of transcript deltas, and what it refuses."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from pipeline import capture as cap
from pipeline import cursor, idle, spawn, tailfile
from pipeline.capture import capture, project_name
from pipeline.config import load_settings
from pipeline.models import Envelope

NOW = 1_800_000_000.0


def line(i: int, extra: str = "") -> bytes:
    msg = {
        "type": "user",
        "entrypoint": "cli",
        "message": {"role": "user", "content": f"turn {i}{extra}"},
    }
    return (json.dumps(msg) + "\n").encode()


def envelopes(root: Path) -> list[Envelope]:
    inbox = root / ".memc" / "inbox"
    return sorted(
        (Envelope.from_json(p.read_text()) for p in inbox.glob("*.json")),
        key=lambda e: (e.session_id, e.captured_at, e.start),
    )


def spooled(root: Path, session_id: str | None = None) -> bytes:
    return b"".join(
        (root / ".memc" / e.spool).read_bytes()
        for e in envelopes(root)
        if session_id is None or e.session_id == session_id
    )


def jobs(root: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(root / ".memc" / "state.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
    finally:
        conn.close()


def run(settings, path, sid="s1", **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("sleep", lambda s: None)
    return capture(settings, transcript_path=str(path), session_id=sid, **kw)


def test_lossless_over_appends_with_half_written_last_line(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2) + b'{"type":"assi')
    r1 = run(settings, t, cwd="/home/dev/acme-api", event="session-end")
    assert r1.status == "queued" and r1.bytes == len(line(1) + line(2))
    assert run(settings, t).status == "nothing-new"  # the half line is not consumed
    with t.open("ab") as fh:
        fh.write(b'stant"}\n' + line(3))
    r2 = run(settings, t, now=NOW + 1)
    assert r2.status == "queued"
    with t.open("ab") as fh:
        fh.write(line(4) + line(5))
    assert run(settings, t, now=NOW + 2).status == "queued"
    assert spooled(root) == t.read_bytes()
    envs = envelopes(root)
    assert [(e.start, e.end) for e in envs] == [
        (0, envs[0].end),
        (envs[0].end, envs[1].end),
        (envs[1].end, t.stat().st_size),
    ]
    assert envs[0].project == "acme-api" and envs[0].event == "session-end"
    assert envs[0].captured_at.endswith("+00:00")
    assert [j["status"] for j in jobs(root)] == ["queued"] * 3


def test_same_range_is_never_queued_twice(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2))
    first = run(settings, t)
    conn = sqlite3.connect(root / ".memc" / "state.db")
    conn.execute("DELETE FROM cursors")  # as if the cursor advance had been lost
    conn.commit()
    conn.close()
    again = run(settings, t)
    assert again.status == "nothing-new" and again.job_id == first.job_id
    assert len(envelopes(root)) == 1 and len(jobs(root)) == 1
    assert run(settings, t).status == "nothing-new"  # and the cursor moved past it


def test_crash_between_envelope_and_cursor_is_repaired_even_after_growth(
    settings, root, tmp_path, monkeypatch
):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2))
    real_write = cap.atomic_write

    def dies_after_the_envelope(path, data, **kw):
        real_write(path, data, **kw)
        if Path(path).parent == settings.paths.inbox:  # the envelope landed; the cursor did not
            raise KeyboardInterrupt("killed after the envelope landed")

    monkeypatch.setattr(cap, "atomic_write", dies_after_the_envelope)
    with pytest.raises(KeyboardInterrupt):
        run(settings, t)
    monkeypatch.setattr(cap, "atomic_write", real_write)
    assert len(envelopes(root)) == 1 and jobs(root) == []
    with t.open("ab") as fh:
        fh.write(line(3))
    r = run(settings, t, now=NOW + 5)
    assert r.status == "queued" and r.bytes == len(line(3))
    assert spooled(root) == t.read_bytes()
    assert len(jobs(root)) == 2


def test_crash_before_envelope_discards_orphan_spool(settings, root, tmp_path, monkeypatch):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))

    def broken(values):
        raise KeyboardInterrupt("killed before the envelope")

    monkeypatch.setattr(cap.envelope, "encode", broken)
    with pytest.raises(KeyboardInterrupt):
        run(settings, t)
    monkeypatch.undo()
    assert envelopes(root) == [] and len(list((root / ".memc/spool").iterdir())) == 1
    with t.open("ab") as fh:
        fh.write(line(2))
    r = run(settings, t)
    assert r.status == "queued" and r.bytes == len(line(1) + line(2))
    assert [p.name for p in (root / ".memc/spool").iterdir()] == [f"{r.job_id}.jsonl"]


def test_a_killed_hooks_temp_envelope_does_not_count_as_queued(settings, root, tmp_path):
    """A hook killed after writing its envelope's temp file, before the rename, committed
    nothing: the next capture must queue the range, not skip it as 'already queued'."""
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2))
    from pipeline.setup import init_root

    (tmp_path / "other").mkdir()
    other = load_settings(tmp_path / "other")
    init_root(other)
    first = run(other, t)  # the same range in another root: the same job id
    assert first.status == "queued" and first.job_id
    inbox = settings.paths.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f".tmp-20261120143205-{first.job_id}.json.k1ll3d").write_text('{"v": 1, "id"')
    again = run(settings, t)
    assert again.status == "queued" and again.job_id == first.job_id
    assert [e.id for e in envelopes(root)] == [first.job_id]
    assert spooled(root) == line(1) + line(2)


def test_stop_is_a_checkpoint(root, tmp_path):
    settings = load_settings(root, {"stop_min_lines": 5, "stop_min_minutes": 10})
    t = tmp_path / "t.jsonl"
    t.write_bytes(b"".join(line(i) for i in range(3)))
    below = run(settings, t, event="stop", now=NOW)
    assert below.status == "below-threshold" and "3 new lines" in below.reason
    assert run(settings, t, event="stop", now=NOW + 9 * 60).status == "below-threshold"
    assert run(settings, t, event="stop", now=NOW + 10 * 60).status == "queued"  # minutes
    with t.open("ab") as fh:
        fh.write(b"".join(line(i) for i in range(3, 7)))
    assert run(settings, t, event="stop", now=NOW + 11 * 60).status == "below-threshold"
    with t.open("ab") as fh:
        fh.write(line(7))
    assert run(settings, t, event="stop", now=NOW + 12 * 60).status == "queued"  # 5 lines
    with t.open("ab") as fh:
        fh.write(line(8))
    assert run(settings, t, event="stop", now=NOW + 13 * 60, force=True).status == "queued"
    with t.open("ab") as fh:
        fh.write(line(9))
    assert run(settings, t, event="session-end", now=NOW + 14 * 60).status == "queued"
    assert spooled(root) == t.read_bytes()


def test_rewritten_transcript_restarts_from_zero(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2) + line(3))
    run(settings, t)
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(line(10))
    os.replace(replacement, t)  # new inode, new first line, shorter
    r = run(settings, t, now=NOW + 1)
    assert r.status == "queued" and "replaced" in r.reason and r.bytes == len(line(10))
    with t.open("ab") as fh:
        fh.write(line(11))
    r = run(settings, t, now=NOW + 2)
    assert r.status == "queued" and r.bytes == len(line(11))  # then grows normally: only the delta
    assert spooled(root).endswith(t.read_bytes())


def test_truncated_in_place_restarts(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1) + line(2) + line(3))
    run(settings, t)
    with t.open("r+b") as fh:
        fh.truncate(len(line(1)))
    with t.open("ab") as fh:
        fh.write(line(4)[:5] + b"\n")
    r = run(settings, t, now=NOW + 1)
    assert r.status == "queued" and r.bytes == len(line(1)) + 6


def test_sdk_transcripts_are_skipped(settings, root, tmp_path):
    t = tmp_path / "sdk.jsonl"
    t.write_bytes(
        b'{"type":"queue-operation","operation":"enqueue"}\n'
        b'{"type":"attachment","entrypoint": "sdk-py","cwd":"/x"}\n' + line(1)
    )
    r = run(settings, t)
    assert r.status == "skipped" and "sdk-py" in r.reason
    assert envelopes(root) == []


def test_private_marker_marks_session_private(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))
    assert run(settings, t).status == "queued"
    # the marker straddles the 1 MiB block boundary of the copy
    head = b'{"type":"user","message":{"role":"user","content":"'
    pad = b"x" * (tailfile.BLOCK - 5 - len(head))
    delta = head + pad + b'[memc:private] please"}}\n'
    assert delta.index(b"[memc:private]") == tailfile.BLOCK - 5
    with t.open("ab") as fh:
        fh.write(delta)
    r = run(settings, t, now=NOW + 1)
    assert r.status == "skipped" and "private" in r.reason
    assert len(envelopes(root)) == 1
    with t.open("ab") as fh:
        fh.write(line(2))
    assert run(settings, t, now=NOW + 2).reason == "session is private"
    assert len(list((root / ".memc/spool").iterdir())) == 1


def test_excluded_projects(root, tmp_path):
    settings = load_settings(root, {"exclude_projects": "secret-*,/work/clients/*"})
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))
    assert run(settings, t, cwd="/home/me/secret-stuff").status == "skipped"
    assert run(settings, t, cwd="/work/clients/acme").status == "skipped"
    assert run(settings, t, cwd="/home/me/public").status == "queued"


@pytest.mark.parametrize(
    "kind",
    ["missing", "directory", "fifo", "symlink-fifo", "symlink-dir", "dangling", "unreadable"],
)
def test_bad_transcript_paths_are_skipped_without_blocking(settings, root, tmp_path, kind):
    target = tmp_path / "target"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink-fifo":
        os.mkfifo(tmp_path / "fifo")
        target.symlink_to(tmp_path / "fifo")
    elif kind == "symlink-dir":
        (tmp_path / "d").mkdir()
        target.symlink_to(tmp_path / "d")
    elif kind == "dangling":
        target.symlink_to(tmp_path / "nowhere")
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        target.write_bytes(line(1))
        target.chmod(0)
    sleeps: list[float] = []  # the retry waits go to this injected sleep, never to the clock
    r = capture(settings, transcript_path=str(target), session_id="s", sleep=sleeps.append)
    assert r.status == "skipped" and r.reason
    if kind in ("missing", "dangling"):
        assert sleeps == [tailfile.RETRY_DELAY_S] * (cap.RETRY_ATTEMPTS - 1)
    else:
        assert sleeps == []
    assert envelopes(root) == []


def test_not_yet_written_transcript_is_retried(settings, root, tmp_path):
    t = tmp_path / "late.jsonl"
    calls: list[float] = []

    def sleep(s):
        calls.append(s)
        if len(calls) == 2:
            t.write_bytes(line(1))

    r = capture(settings, transcript_path=str(t), session_id="s", sleep=sleep)
    assert r.status == "queued" and len(calls) == 2


def test_empty_transcript_gives_up_quietly(settings, root, tmp_path):
    t = tmp_path / "empty.jsonl"
    t.write_bytes(b"")
    r = run(settings, t)
    assert r.status == "skipped" and "empty" in r.reason


def test_hostile_session_ids_never_become_paths(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))
    before = sorted(p.name for p in tmp_path.iterdir())
    sids = {"../../etc/passwd", "a/b\\c", "..", "/abs"}
    for sid in sids:
        assert run(settings, t, sid=sid).status == "queued"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    names = {p.name for p in (root / ".memc").rglob("*")}
    assert not any("passwd" in n or n in ("abs", "..") for n in names)
    assert {e.session_id for e in envelopes(root)} == sids


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02binary\xff\xfe\n",
        "caf\u00e9 not utf-8\n".encode("latin-1"),
        b"\xef\xbb\xbf" + line(1),
        line(1).replace(b"\n", b"\r\n") + line(2).replace(b"\n", b"\r\n"),
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'{"type":"user","message":{"content":[{"type":"weird","x":1}]}}\n',
    ],
    ids=["binary", "latin1", "bom", "crlf", "deeply-nested", "unknown-blocks"],
)
def test_odd_transcripts_are_copied_byte_for_byte(settings, root, tmp_path, content):
    t = tmp_path / "t.jsonl"
    t.write_bytes(content)
    r = run(settings, t)
    assert r.status == "queued" and spooled(root) == content


def test_thirty_megabyte_single_line(settings, root, tmp_path):
    t = tmp_path / "big.jsonl"
    body = b'{"type":"user","message":{"content":"' + b"y" * (30 << 20) + b'"}}'
    t.write_bytes(body)
    assert run(settings, t).status == "nothing-new"  # no newline yet: not a complete line
    with t.open("ab") as fh:
        fh.write(b"\n")
    r = run(settings, t)
    assert r.status == "queued" and r.bytes == len(body) + 1
    assert (root / ".memc" / envelopes(root)[0].spool).stat().st_size == len(body) + 1


def test_uninitialised_root_is_refused(tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))
    r = run(load_settings(tmp_path / "nowhere"), t)
    assert r.status == "skipped" and "memc init" in r.reason
    assert not (tmp_path / "nowhere").exists()


def test_project_name_is_sanitized():
    assert project_name("/home/dev/acme-api/") == "acme-api"
    assert project_name(r"C:\Users\me\My Project") == "My-Project"
    assert project_name("") == "unknown"
    assert project_name("/x/..") == "unknown"


def test_spawn_drain_guards(root, monkeypatch):
    settings = load_settings(root, {"spawn_drain": True})
    assert spawn.spawn_drain(load_settings(root)) == "drain=off"  # MEMC_SPAWN_DRAIN=0 in tests
    monkeypatch.setattr(spawn, "DRAIN_MODULES", ("pipeline.no_such_module",))
    assert spawn.spawn_drain(settings).startswith("drain=unavailable")
    from pipeline.fsutil import file_lock

    with file_lock(settings.paths.lock("watcher")):
        assert spawn.spawn_drain(settings) == "drain=watcher"


def test_spawn_drain_starts_detached_internal_child(root, tmp_path, monkeypatch):
    settings = load_settings(root, {"spawn_drain": True})
    out = tmp_path / "child.json"
    fake = tmp_path / "fake_python"
    fake.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'internal': os.environ.get('MEMC_INTERNAL'),"
        f" 'sid': os.getsid(0), 'pid': os.getpid(),"
        f" 'null_io': [os.path.samestat(os.fstat(fd), os.stat(os.devnull)) for fd in (0, 1, 2)]}},"
        f" open({str(out)!r}, 'w'))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(spawn, "DRAIN_MODULES", ("pipeline.capture",))
    monkeypatch.setattr(sys, "executable", str(fake))
    said = spawn.spawn_drain(settings)
    assert said.startswith("drain=spawned")
    deadline = time.monotonic() + 60  # only catches a child that never runs
    while not out.exists() or not out.read_text().endswith("}"):
        assert time.monotonic() < deadline, "the drain child never ran"
        time.sleep(0.02)
    child = json.loads(out.read_text())
    assert child["argv"] == ["-m", "pipeline", "--root", str(settings.root), "drain"]
    assert child["internal"] == "1" and child["sid"] == child["pid"]
    assert child["null_io"] == [True, True, True]  # holds none of the hook's pipes open


from tests.helpers import SHARED as CORPUS  # noqa: E402


@pytest.mark.corpus
def test_corpus_transcripts_are_captured_losslessly_in_pieces(settings, root, tmp_path):
    files = sorted((CORPUS / "corpus" / "public-transcripts").glob("*.jsonl"))
    if not files:
        pytest.skip("../shared/corpus is absent")
    for src in files:
        data = src.read_bytes()
        t = tmp_path / src.name
        cuts = [len(data) // 3, len(data) // 3 + 7, 2 * len(data) // 3, len(data)]  # mid-line too
        written = 0
        for k, cut in enumerate(cuts):
            with t.open("ab") as fh:
                fh.write(data[written:cut])
            written = cut
            assert run(settings, t, sid=src.stem, now=NOW + k).status in ("queued", "nothing-new")
        assert spooled(root, src.stem) == data


@pytest.mark.corpus
def test_reference_sdk_transcripts_are_skipped(settings, root):
    files = sorted((CORPUS / "reference" / "claude-code" / "transcripts").glob("*.jsonl"))
    if not files:
        pytest.skip("../shared/reference is absent")
    for src in files:
        r = run(settings, src, sid=src.stem)
        assert r.status == "skipped" and "sdk-py" in r.reason
    assert envelopes(root) == []


def test_capture_command(root, tmp_path, capsys):
    from pipeline.cli import main

    t = tmp_path / "abc123.jsonl"
    t.write_bytes(line(1))
    assert main(["--root", str(root), "capture", str(t), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "queued" and out["bytes"] == len(line(1))
    assert envelopes(root)[0].session_id == "abc123"  # default session id: the file stem
    assert main(["--root", str(root), "capture", str(t)]) == 0
    assert "nothing-new" in capsys.readouterr().out
    assert main(["--root", str(root), "capture", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--root", str(root), "capture", str(tmp_path)]) == 2
    os.mkfifo(tmp_path / "fifo")
    assert main(["--root", str(root), "capture", str(tmp_path / "fifo"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "error"
    assert main(["--root", str(tmp_path / "bare"), "capture", str(t)]) == 2
    assert "memc init" in capsys.readouterr().err


def test_spool_is_readable_by_the_owner_only(settings, root, tmp_path):
    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(line(1) + line(2))
    result = run(settings, transcript)
    assert result.status == "queued"
    spool = root / ".memc" / "spool" / f"{result.job_id}.jsonl"
    assert spool.read_bytes() == line(1) + line(2)
    assert spool.stat().st_mode & 0o777 == 0o600


def test_lock_files_do_not_grow_with_sessions(settings, root, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_bytes(line(1))
    for i in range(200):
        assert run(settings, t, sid=f"session-{i}").status == "queued"
    locks = [p.name for p in (root / ".memc" / "locks").iterdir() if p.name.startswith("capture-")]
    assert 0 < len(locks) <= cursor.LOCK_STRIPES


def test_idle_tail_of_a_session_without_session_end_is_captured(settings, root, tmp_path):
    """A terminal closed after the last Stop checkpoint: the tail is captured once idle."""
    t = tmp_path / "s.jsonl"
    t.write_bytes(b"".join(line(i) for i in range(50)))
    first = run(settings, t, sid="quit", event="stop", now=NOW)
    assert first.status == "queued"  # 50 lines >= stop_min_lines
    with t.open("ab") as fh:
        fh.write(line(50) + line(51))  # the last turns; no SessionEnd ever comes
    mtime = NOW + 60
    os.utime(t, (mtime, mtime))
    assert idle.capture_idle(settings, now=mtime + 60) == []  # not idle yet
    [tail] = idle.capture_idle(settings, now=mtime + settings.idle_capture_min * 60 + 1)
    assert tail.status == "queued" and tail.bytes == len(line(50) + line(51))
    assert spooled(root, "quit") == t.read_bytes()  # every byte, exactly once
    assert idle.capture_idle(settings, now=mtime + 7200) == []  # nothing left to capture


def test_idle_capture_can_be_turned_off(root, tmp_path):
    settings = load_settings(root, {"idle_capture_min": 0})
    t = tmp_path / "s.jsonl"
    t.write_bytes(b"".join(line(i) for i in range(50)))
    run(settings, t, sid="x", event="stop", now=NOW)
    with t.open("ab") as fh:
        fh.write(line(99))
    assert idle.capture_idle(settings, now=NOW + 10**6) == []


# --- `memc capture` without --cwd filed every entry under project "unknown" --------------------


def test_capture_command_takes_the_project_from_the_transcript(root, tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.models import Envelope

    t = tmp_path / "s-1.jsonl"
    row = {
        "type": "user",
        "cwd": "/home/dev/acme-api",
        "sessionId": "s-1",
        "uuid": "u1",
        "message": {"role": "user", "content": "switch the job queue to advisory locks"},
    }
    t.write_text(json.dumps(row) + "\n")
    assert main(["--root", str(root), "capture", str(t), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "queued"
    (env_file,) = (root / ".memc" / "inbox").glob("*.json")
    envelope = Envelope.from_json(env_file.read_bytes())
    assert envelope.project == "acme-api" and envelope.cwd == "/home/dev/acme-api"
    # an explicit --cwd still wins
    t2 = tmp_path / "s-2.jsonl"
    t2.write_text(json.dumps({**row, "sessionId": "s-2"}) + "\n")
    assert main(["--root", str(root), "capture", str(t2), "--cwd", "/x/other", "--json"]) == 0
    capsys.readouterr()
    projects = {
        Envelope.from_json(f.read_bytes()).project
        for f in (root / ".memc" / "inbox").glob("*.json")
    }
    assert projects == {"acme-api", "other"}


def test_transcript_head_reads_cwd_and_sdk_flag_and_never_blocks(tmp_path):
    import os

    from pipeline.tailfile import transcript_head

    plain = tmp_path / "plain.jsonl"
    plain.write_text('not json\n{"type":"user"}\n{"cwd":"/home/dev/acme","type":"user"}\n')
    assert transcript_head(plain) == ("/home/dev/acme", False)
    sdk = tmp_path / "sdk.jsonl"
    sdk.write_text('{"entrypoint":"sdk-py","cwd":"/w"}\n')
    assert transcript_head(sdk) == ("/w", True)
    assert transcript_head(tmp_path / "missing.jsonl") == ("", False)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # nobody writes to it: a blocking open would hang here
    assert transcript_head(fifo) == ("", False)
