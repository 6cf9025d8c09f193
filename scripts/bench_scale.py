#!/usr/bin/env python3
"""Scale benchmark (issue 15): fixed costs and per-call scans as the knowledge base grows.

Every figure is printed with its ratio to the bare interpreter start (``python -c pass``, the
"floor") measured in the same run, because this machine's speed varies with its load:

- hook hot path: ``memc hook session-end`` / ``stop`` / ``pre-compact`` on a transcript that
  grew by a few turns (median wall time, interpreter start included);
- a locked state.db (another connection holds a write transaction): the hook's wall time and
  whether its envelope was written;
- at each knowledge-base size (default 2,000 / 20,000 / 50,000 articles): ``memc search``,
  ``memc hook session-start`` and ``memc status`` (median of warm runs), and
  ``memc lint --structural-only`` (wall time and peak RSS; the 20k / 2k time ratio is printed);
- a 2,000-entry day: the time to append all entries, and ``memc search`` after one more entry;
- 3,800 kept spools (done jobs within spool_keep_days): ``memc drain`` with an empty inbox;
- a single 100 MB transcript line: ``memc drain`` peak RSS and time.

    .venv/bin/python scripts/bench_scale.py                   # the sizes above (many minutes)
    .venv/bin/python scripts/bench_scale.py --sizes 500,2000  # smaller knowledge bases
    .venv/bin/python scripts/bench_scale.py --only hooks,lock # a subset of the cases

``scripts/bench.py --scale`` runs it and prints its table. Everything happens in a temp folder
with the offline extractive backend; nothing touches the network or the home directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

CASES = ("hooks", "lock", "kb", "day", "spools", "huge")


def log(message: str) -> None:
    sys.stderr.write(f"[bench_scale {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def env_for(root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMC_")}
    env.update(
        MEMC_ROOT=str(root),
        MEMC_BACKEND="extractive",
        MEMC_TZ="UTC",
        MEMC_SPAWN_DRAIN="0",
        PYTHONPATH=str(REPO),
        HOME=str(home),
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    return env


def wall(cmd: list[str], env: dict, stdin: bytes = b"", check: bool = True) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if check and proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return elapsed


FLOORS: list[float] = []  # every floor sample taken beside a measurement


def median_wall(cmd: list[str], env: dict, runs: int, stdin: bytes = b"") -> float:
    """Median wall time of ``cmd``; each run is paired with a ``python -c pass`` run right
    before it (kept in FLOORS), so a ratio compares like with like on a machine whose load
    changes during the benchmark."""
    wall(cmd, env, stdin)  # warm: page cache, .pyc files, the first index refresh
    times = []
    for _ in range(runs):
        FLOORS.append(wall([sys.executable, "-c", "pass"], env))
        times.append(wall(cmd, env, stdin))
    return statistics.median(times)


def paired(cmd: list[str], env: dict, runs: int, stdin: bytes = b"") -> dict:
    """{"s": median of cmd, "floor_s": median of its paired floor runs}."""
    start = len(FLOORS)
    seconds = median_wall(cmd, env, runs, stdin)
    return {"s": seconds, "floor_s": statistics.median(FLOORS[start:])}


def memc(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def floor(env: dict, runs: int) -> float:
    wall([sys.executable, "-c", "pass"], env)
    return statistics.median(wall([sys.executable, "-c", "pass"], env) for _ in range(runs))


def init(root: Path, env: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(memc("init"), env=env, check=True, capture_output=True)


def bench_hooks(tmp: Path, runs: int) -> dict:
    import bench_hooks as bh

    root = tmp / "hooks"
    env = env_for(root, tmp)
    init(root, env)
    transcript = tmp / "hooks.jsonl"
    next_turn = bh.make_transcript(transcript, 1 << 20)
    out = {}
    for event in ("session-end", "stop", "pre-compact"):
        payload = json.dumps(
            {"session_id": f"scale-{event}", "transcript_path": str(transcript), "cwd": "/w/demo"}
        ).encode()
        wall(memc("hook", event), env, payload)  # first capture: the whole transcript
        times, floors = [], []
        for _ in range(runs + 1):
            with transcript.open("ab") as fh:
                for _ in range(4):
                    fh.write(bh.turn(next_turn))
                    next_turn += 1
            floors.append(wall([sys.executable, "-c", "pass"], env))
            times.append(wall(memc("hook", event), env, payload))
        out[event] = {"s": statistics.median(times[1:]), "floor_s": statistics.median(floors[1:])}
        bh.clear_queue(root)
    return out


def bench_lock(tmp: Path, runs: int) -> dict:
    import bench_hooks as bh

    root = tmp / "lock"
    env = env_for(root, tmp)
    init(root, env)
    transcript = tmp / "lock.jsonl"
    next_turn = bh.make_transcript(transcript, 1 << 16)
    payload = json.dumps(
        {"session_id": "scale-lock", "transcript_path": str(transcript), "cwd": "/w/demo"}
    ).encode()
    wall(memc("hook", "session-end"), env, payload)
    holder = sqlite3.connect(str(root / ".memc" / "state.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT OR REPLACE INTO kv(key, value, updated_at) VALUES('bench', 'x', 0)")
    times, floors = [], []
    try:
        for _ in range(runs):
            with transcript.open("ab") as fh:
                fh.write(bh.turn(next_turn))
                next_turn += 1
            floors.append(wall([sys.executable, "-c", "pass"], env))
            times.append(wall(memc("hook", "session-end"), env, payload))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    lines = (root / ".memc" / "logs" / "hooks.log").read_text().splitlines()[-runs:]
    queued = sum(" queued " in line for line in lines)
    envelopes = len(list((root / ".memc" / "inbox").glob("*.json")))
    return {
        "s": statistics.median(times),
        "floor_s": statistics.median(floors),
        "max_s": max(times),
        "queued": queued,
        "runs": runs,
        "envelopes": envelopes,
    }


def _rss_of(args: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one memc command run in a fresh interpreter."""
    # VmHWM (Linux): the peak of this process image. ru_maxrss would carry over the parent's
    # peak through fork+exec, and the parent holds the 100 MB line it just wrote.
    code = (
        "import resource,sys;from pipeline.entry import main;rc=main(sys.argv[1:]);"
        "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')];"
        "sys.stderr.write('RSS_KB=%s\\n' % (hwm[0] if hwm else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    text = proc.stderr.decode()
    if "RSS_KB=" not in text:
        raise SystemExit(f"{args} failed: {text[-2000:]}")
    return elapsed, int(text.rsplit("RSS_KB=", 1)[1].split()[0]) / 1024


def bench_kb(tmp: Path, sizes: list[int], runs: int) -> dict:
    import bench_read as br

    out = {}
    for n in sizes:
        log(f"building a knowledge base of {n:,} articles")
        root = tmp / f"kb-{n}"
        started = time.perf_counter()
        br.make_kb(root, n, days=30)
        built = time.perf_counter() - started
        env = env_for(root, tmp)
        start_payload = json.dumps(
            {
                "session_id": "bench",
                "transcript_path": "",
                "cwd": "/home/dev/acme-api",
                "hook_event_name": "SessionStart",
                "source": "startup",
            }
        ).encode()
        row = {"build_s": built}
        row["search"] = paired(memc("search", "postgres advisory locks"), env, runs)
        row["session_start"] = paired(memc("hook", "session-start"), env, runs, start_payload)
        row["status"] = paired(memc("status"), env, runs)
        if shutil.which("git"):  # what users have: `memc init` versions the root by default
            _version_root(root, env)
            row["status_git"] = paired(memc("status"), env, runs)
            # the same with git asked every time (the cache of pipeline.repostate removed first,
            # as after FULL_CHECK_S or any signal): includes one `sh` and one `rm` start
            cache = root / ".memc" / "cache" / "git-status.json"
            cold = f"rm -f {shlex.quote(str(cache))} && exec {shlex.join(memc('status'))}"
            row["status_git_full"] = paired(["sh", "-c", cold], env, runs)
        _rss_of(["lint", "--structural-only"], env)  # warm the page cache (and the lint cache)
        row["lint_s"], row["lint_rss_mb"] = _rss_of(["lint", "--structural-only"], env)
        reports = sorted((root / ".memc" / "reports").glob("*"))
        row["lint_report_kb"] = sum(p.stat().st_size for p in reports[-2:]) / 1024 if reports else 0
        out[n] = row
        log(f"{n:,} articles: {row}")
        shutil.rmtree(root, ignore_errors=True)
    return out


def _version_root(root: Path, env: dict) -> None:
    """Make the built knowledge base a git repository with everything committed, as `memc init`
    does for a root (its pages committed as the user's), then refresh git's index once."""
    ident = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid"}
    ident.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.invalid")
    subprocess.run(memc("init"), env={**env, **ident}, check=True, capture_output=True)
    subprocess.run(["git", "-C", str(root), "status", "-s"], check=True, capture_output=True)


def bench_day(tmp: Path, entries: int, runs: int) -> dict:
    from pipeline.config import load_settings
    from pipeline.daily import append_entry, entry_id, render_entry
    from pipeline.models import Entry
    from pipeline.setup import init_root

    root = tmp / "day"
    root.mkdir()
    settings = load_settings(root, {"backend": "extractive", "tz": "UTC"})
    init_root(settings)

    def one(i: int) -> None:
        eid = entry_id(f"day-{i}")
        text = render_entry(
            Entry(
                True,
                title=f"entry {i} about advisory locks",
                context=f"context {i} " * 20,
                decisions=(f"decision {i}",),
            ),
            entry_id=eid,
            time_hhmm="12:00",
            project="acme-api",
            session_id="benchday",
            event="session-end",
        )
        append_entry(root / "daily", "2026-11-20", text, eid)

    started = time.perf_counter()
    for i in range(entries):
        one(i)
    append_s = time.perf_counter() - started
    env = env_for(root, tmp)
    wall(memc("search", "advisory"), env)  # index the day once
    times, floors = [], []
    for k in range(runs):
        one(entries + k)
        floors.append(wall([sys.executable, "-c", "pass"], env))
        times.append(wall(memc("search", "advisory"), env))
    return {
        "entries": entries,
        "append_s": append_s,
        "search_after_append": {
            "s": statistics.median(times),
            "floor_s": statistics.median(floors),
        },
    }


def bench_spools(tmp: Path, count: int, runs: int) -> dict:
    from pipeline import state

    root = tmp / "spools"
    env = env_for(root, tmp)
    init(root, env)
    spool = root / ".memc" / "spool"
    now = time.time()
    conn = state.connect(root / ".memc" / "state.db")
    conn.execute("BEGIN")
    for i in range(count):
        job = f"{i:020x}"
        (spool / f"{job}.jsonl").write_bytes(b'{"type":"user"}\n')
        conn.execute(
            "INSERT INTO jobs(id, status, created_at, updated_at) VALUES(?, 'done', ?, ?)",
            (job, now - 3600, now - 3600),
        )
    conn.execute("COMMIT")
    conn.close()
    drain = paired(memc("drain"), env, runs)
    left = len(list(spool.glob("*.jsonl")))
    return {"spools": count, "drain": drain, "kept": left}


def bench_huge(tmp: Path, mb: int) -> dict:
    import bench_drain as bd

    root, _settings = bd.fresh_root(tmp, "huge")
    text = "x" * (mb << 20)
    line = (
        json.dumps(
            {
                "type": "user",
                "uuid": "u-huge",
                "sessionId": "huge",
                "timestamp": "2026-11-20T10:00:00Z",
                "message": {"role": "user", "content": text},
            }
        ).encode()
        + b"\n"
    )
    del text
    bd.plant(root, "huge", [bd.exchange("huge", 0), line, bd.exchange("huge", 1)])
    del line
    env = env_for(root, tmp)
    seconds, rss = _rss_of(["drain", "--json"], env)
    base_root, _ = bd.fresh_root(tmp, "huge-base")
    bd.plant(base_root, "tiny", [bd.exchange("tiny", 0)])
    _s, base_rss = _rss_of(["drain", "--json"], env_for(base_root, tmp))
    conn = sqlite3.connect(str(root / ".memc" / "state.db"))
    calls = conn.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
    conn.close()
    return {
        "line_mb": mb,
        "drain_s": seconds,
        "peak_rss_mb": rss,
        "baseline_rss_mb": base_rss,
        "model_calls": calls,
    }


def run(args) -> dict:
    only = set(args.only.split(",")) if args.only else set(CASES)
    tmp = Path(tempfile.mkdtemp(prefix="memc-bench-scale-"))
    results: dict = {"config": vars(args)}
    try:
        env = env_for(tmp / "none", tmp)
        results["floor_s"] = floor(env, max(args.runs, 9))
        log(f"floor {results['floor_s'] * 1000:.1f} ms")
        if "hooks" in only:
            results["hooks"] = bench_hooks(tmp, args.runs)
            log(f"hooks {results['hooks']}")
        if "lock" in only:
            results["lock"] = bench_lock(tmp, max(3, args.runs // 2))
            log(f"lock {results['lock']}")
        if "kb" in only:
            results["kb"] = bench_kb(tmp, [int(s) for s in args.sizes.split(",")], args.runs)
        if "day" in only:
            results["day"] = bench_day(tmp, args.day_entries, args.runs)
            log(f"day {results['day']}")
        if "spools" in only:
            results["spools"] = bench_spools(tmp, args.spools, args.runs)
            log(f"spools {results['spools']}")
        if "huge" in only:
            results["huge"] = bench_huge(tmp, args.huge_mb)
            log(f"huge {results['huge']}")
        results["floor_end_s"] = floor(env, max(args.runs, 9))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def rows(results: dict) -> list[tuple[str, str, str]]:
    """(measure, size, result with its ratio to the floor) for the markdown table. Each ratio
    divides by the median of the floor runs paired with that measurement."""
    f = results["floor_s"]

    def r(m: dict) -> str:
        return f"{m['s'] * 1000:,.0f} ms ({m['s'] / m['floor_s']:.1f}x floor)"

    out = [("`python -c pass` (the floor)", "-", f"{f * 1000:.1f} ms median at the start")]
    for event, m in results.get("hooks", {}).items():
        out.append((f"hook `{event}`, incremental (+4 turns)", "1 MB transcript", r(m)))
    if "lock" in results:
        lk = results["lock"]
        out.append(
            (
                "hook `session-end`, state.db locked by a writer",
                "+1 turn",
                f"{r(lk)}, max {lk['max_s'] * 1000:,.0f} ms; {lk['queued']}/{lk['runs']} queued",
            )
        )
    kb = results.get("kb", {})
    for n, row in kb.items():
        size = f"{int(n):,} articles"
        out.append(("`memc search`", size, r(row["search"])))
        out.append(("`memc hook session-start`", size, r(row["session_start"])))
        out.append(("`memc status`", size, r(row["status"])))
        if "status_git" in row:
            out.append(("`memc status`, root versioned with git", size, r(row["status_git"])))
            if "status_git_full" in row:
                label = "`memc status`, versioned, git asked (no reusable answer)"
                out.append((label, size, r(row["status_git_full"])))
        out.append(
            (
                "`memc lint --structural-only`",
                size,
                f"{row['lint_s']:.2f} s, peak RSS {row['lint_rss_mb']:.0f} MB, "
                f"report files {row['lint_report_kb']:.0f} KB",
            )
        )
    sizes = sorted(int(n) for n in kb)
    if 2000 in sizes and 20000 in sizes:
        ratio = kb[20000]["lint_s"] / kb[2000]["lint_s"]
        out.append(("lint time ratio", "20,000 / 2,000 articles", f"{ratio:.1f} (linear: 10)"))
    if "day" in results:
        d = results["day"]
        each = d["append_s"] / d["entries"] * 1000
        out.append(
            (
                "`daily.append_entry`, one day",
                f"{d['entries']:,} entries",
                f"{d['append_s']:.2f} s ({each:.2f} ms each)",
            )
        )
        out.append(
            (
                "`memc search` after one more entry",
                f"{d['entries']:,}-entry day",
                r(d["search_after_append"]),
            )
        )
    if "spools" in results:
        sp = results["spools"]
        out.append(("`memc drain`, empty inbox", f"{sp['spools']:,} kept spools", r(sp["drain"])))
    if "huge" in results:
        h = results["huge"]
        out.append(
            (
                "`memc drain` peak RSS",
                f"one {h['line_mb']} MB line",
                f"{h['peak_rss_mb']:.0f} MB (tiny job: {h['baseline_rss_mb']:.0f} MB), "
                f"{h['drain_s']:.1f} s, {h['model_calls']} model call(s)",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,50000")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--day-entries", type=int, default=2000)
    ap.add_argument("--spools", type=int, default=3800)
    ap.add_argument("--huge-mb", type=int, default=100)
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = run(args)
    print("| measure | size | result |\n|---|---|---|")
    for a, b, c in rows(results):
        print(f"| {a} | {b} | {c} |")
    print(
        f"\nFloor at start {results['floor_s'] * 1000:.1f} ms, at end "
        f"{results['floor_end_s'] * 1000:.1f} ms."
    )
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
