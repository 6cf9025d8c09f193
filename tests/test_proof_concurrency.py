"""Proof suite (issue 7, part 2): everything at once, in real processes.

Each round appends new turns (with planted FACT strings) to several transcripts, then starts at
the same moment: three `memc hook session-end` per session (same session racing itself, different
sessions racing each other), two `memc drain` and two `memc compile`. After the last round a final
capture + drain + compile settles what busy locks deferred. Then:
- every planted fact is in exactly one daily entry, no entry id twice (nothing lost, nothing
  duplicated);
- every daily file is exactly its header plus whole entries (no interleaved or torn text), each
  entry's marker directly under its heading;
- every entry is compiled, every article parses, index.md equals wikiindex.expected_index;
- one compile at a time: while the compile lock is held, `memc compile` says busy and exits 0.
Test_hooks.py already proves concurrent hooks alone queue each byte range once; this adds the
downstream stages running against them. Size: MEMC_PROOF_SCALE (default 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline import daily, fsutil, state, wiki, wikiindex
from pipeline.config import load_settings
from tests.helpers import transcript_lines

PYTHON = sys.executable
SCALE = float(os.environ.get("MEMC_PROOF_SCALE", "1") or 1)


def _popen(args: list[str], env: dict, stdin: bytes | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [PYTHON, "-m", "pipeline", *args],
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
        proc.stdin = None  # so communicate() does not flush the closed pipe
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def assert_daily_files_whole(root) -> list[daily.DailyEntry]:
    """Each daily file = header + its parsed entries, byte for byte: no torn or mixed text."""
    entries = []
    for day in daily.list_days(root / "daily"):
        text = (root / "daily" / f"{day}.md").read_bytes().decode("utf-8")
        parsed = daily.parse_entries(text, day)
        header = f"# Daily Log: {day}\n\n"
        assert text.startswith(header), day
        assert text == header + "".join(e.text + "\n" for e in parsed), f"{day}: stray text"
        headings = [ln for ln in text.splitlines() if ln.startswith("### ")]
        assert len(headings) == len(parsed), f"{day}: a heading without its marker"
        entries.extend(parsed)
    return entries


@pytest.mark.slow
def test_hooks_drains_and_compiles_at_once_lose_and_duplicate_nothing(root, memc_env, tmp_path):
    sessions = max(3, int(4 * SCALE))
    rounds = max(2, int(3 * SCALE))
    hooks_per_session = 3
    env = dict(memc_env, MEMC_SPAWN_DRAIN="0")
    transcripts = {f"sess-{k}": tmp_path / f"sess-{k}.jsonl" for k in range(sessions)}
    facts: list[str] = []
    for rnd in range(rounds):
        for k, (sid, path) in enumerate(transcripts.items()):
            fact = f"FACTR{rnd}S{k}"
            facts.append(fact)
            exchanges = [
                (f"We decided to adopt {fact} because it works. TODO: check {fact}.", "done")
            ]
            with path.open("ab") as fh:  # the transcript grows, as Claude Code writes it
                fh.write(transcript_lines(sid, exchanges, start=rnd))
        procs = []
        for sid, path in transcripts.items():
            payload = json.dumps(
                {"session_id": sid, "transcript_path": str(path), "cwd": "/home/dev/acme-api"}
            ).encode()
            procs += [
                ("hook", _popen(["hook", "session-end"], env, payload))
                for _ in range(hooks_per_session)
            ]
        procs += [("drain", _popen(["drain", "--json"], env)) for _ in range(2)]
        procs += [("compile", _popen(["compile", "--json"], env)) for _ in range(2)]
        for kind, proc in procs:
            code, out, err = _finish(proc)
            assert "Traceback" not in err, (kind, err[-2000:])
            if kind == "hook":
                assert code == 0 and out == ""
            elif kind == "drain":
                assert code == 0, err[-1000:]
                assert json.loads(out)["failed"] == 0
            else:
                assert code == 0, err[-1000:]
                assert json.loads(out)["status"] in ("compiled", "nothing", "busy")
    # settle: captures a busy lock deferred, the jobs they queue, the entries still pending
    from pipeline.capture import capture
    from pipeline.compiler import run_compile
    from pipeline.drain import drain

    settings = load_settings(root)
    for sid, path in transcripts.items():
        capture(settings, transcript_path=str(path), session_id=sid, cwd="/home/dev/acme-api")
    assert drain(settings, run_after=False).failed == 0
    assert run_compile(settings).status in ("compiled", "nothing")

    entries = assert_daily_files_whole(root)
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    for fact in facts:
        holders = [e.id for e in entries if fact in e.text]
        assert len(holders) == 1, (fact, holders)
    conn = state.connect(settings.paths.state_db)
    try:
        pending = conn.execute("SELECT COUNT(*) FROM entries WHERE compiled_at IS NULL").fetchone()
    finally:
        conn.close()
    assert pending[0] == 0
    for key, path in wiki.article_files(settings.paths.knowledge):
        assert wiki.parse_article(key, path.read_text(encoding="utf-8")).problems == ()
    index = (settings.paths.knowledge / "index.md").read_text(encoding="utf-8")
    assert index == wikiindex.expected_index(settings.paths)


def test_second_compile_reports_busy_and_exits_zero(root, memc_env):
    paths = load_settings(root).paths
    (root / "daily" / "2026-11-20.md").write_text(
        "# Daily Log: 2026-11-20\n\n### 10:00 · acme · Busy test\n"
        "<!-- memc:entry id=0123456789ab session=s1 event=stop -->\n**Context:** x\n\n"
    )
    with fsutil.file_lock(paths.lock("compile"), blocking=False):  # "a compile is running"
        proc = subprocess.run(
            [PYTHON, "-m", "pipeline", "compile", "--json"],
            env=memc_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        human = subprocess.run(
            [PYTHON, "-m", "pipeline", "compile"],
            env=memc_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "busy"
    assert human.returncode == 0 and "another compile is running" in human.stdout
    assert not list(paths.knowledge.glob("*/*.md"))  # the busy one wrote nothing
    after = subprocess.run(
        [PYTHON, "-m", "pipeline", "compile", "--json"],
        env=memc_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(after.stdout)["status"] == "compiled"
