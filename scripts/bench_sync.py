#!/usr/bin/env python3
"""What `memc sync` costs: wall time of one sync carrying 1, 100 and 1,000 new daily entries.

For each size: a local bare remote (file://), root A (`memc init`, then `memc sync --remote`) and
root B (`memc init --from`). A distils N new entries (appended and committed as a drain does) and
compiles them offline (the ``extractive`` backend: no model, no network); then, each as a real
`memc` process, A's sync pushes them (the outgoing secret scan included) and B's sync pulls them
(merge, index.md, state.db and search notes catching up). A no-op sync is timed too. Every figure
is also given in bare interpreter starts (``python -c pass``, median of 5, same run).

    .venv/bin/python scripts/bench_sync.py             # 1, 100, 1000 entries
    .venv/bin/python scripts/bench_sync.py --sizes 1 10 --json

Needs git on PATH. Wall clock on whatever else the machine is doing: run it idle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_git import median_start  # scripts/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _quiet_main(args: list[str]) -> int:
    from pipeline.cli import main

    with open(os.devnull, "w") as sink:
        saved, sys.stdout = sys.stdout, sink
        try:
            return main(args)
        finally:
            sys.stdout = saved


def _distil(settings, n: int, tag: str) -> None:
    """``n`` entries over ten days, appended and recorded as distil does, one drain commit."""
    from pipeline import daily, state, versioning
    from pipeline.models import Entry
    from pipeline.pending import entry_hash

    with versioning.batch(settings, "drain", ("daily",)) as vb:
        conn = state.connect(settings.paths.state_db)
        for i in range(n):
            eid = f"{tag}{i:010x}"
            day = f"2026-11-{1 + i % 10:02d}"
            block = daily.render_entry(
                Entry(True, title=f"Session {i} on topic{i % 50}", context=f"Worked on file{i}.py",
                      decisions=(f"Use tool{i % 37} for topic{i % 50}",)),
                entry_id=eid, time_hhmm=f"{8 + i % 10:02d}:{i % 60:02d}", project=f"proj{i % 5}",
                session_id=f"s{i}", event="stop", host=settings.this_host,
            )  # fmt: skip
            daily.append_entry(settings.paths.daily, day, block, eid)
            [entry] = [e for e in daily.read_entries(settings.paths.daily, day) if e.id == eid]
            conn.execute(
                "INSERT INTO entries(id, day, daily_path, job_id, title, content_hash, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (eid, day, f"daily/{day}.md", f"job-{eid}", entry.title, entry_hash(entry),
                 time.time()),
            )  # fmt: skip
        conn.close()
        vb.subject = f"drain: {n} entries"


def _timed_sync(root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(root), "sync"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"sync of {root} failed: {proc.stderr.strip()}")
    return took


def _one_size(base: Path, n: int) -> dict[str, float]:
    from pipeline import compiler
    from pipeline.config import load_settings

    remote = base / f"remote-{n}.git"
    subprocess.run(["git", "init", "--bare", "-q", str(remote)], check=True)
    url = f"file://{remote}"
    a, b = base / f"a-{n}", base / f"b-{n}"
    os.environ["MEMC_HOST"] = "bench-a"
    assert _quiet_main(["--root", str(a), "init"]) == 0
    assert _quiet_main(["--root", str(a), "sync", "--remote", url]) == 0
    os.environ["MEMC_HOST"] = "bench-b"
    assert _quiet_main(["--root", str(b), "init", "--from", url]) == 0
    os.environ["MEMC_HOST"] = "bench-a"
    sa = load_settings(a)
    _distil(sa, n, "e")
    report = compiler.run_compile(sa)
    if report.status != "compiled":
        raise SystemExit(f"compile of {n} entries: {report.message}")
    push = _timed_sync(a)
    os.environ["MEMC_HOST"] = "bench-b"
    pull = _timed_sync(b)
    noop = _timed_sync(b)
    entries = sum(1 for p in (b / "daily").glob("*.md") for line in p.read_text().splitlines()
                  if line.startswith("<!-- memc:entry "))  # fmt: skip
    if entries != n:
        raise SystemExit(f"B holds {entries} entries after the sync, expected {n}")
    return {"push_s": push, "pull_s": pull, "noop_s": noop}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if shutil.which("git") is None:
        print("git is not on PATH; nothing to measure", file=sys.stderr)
        return 1
    os.environ.update(MEMC_BACKEND="extractive", MEMC_COMPILE_MIN_INTERVAL_MIN="0")
    with tempfile.TemporaryDirectory(prefix="memc-bench-sync-") as tmp:
        home = Path(tmp, "home")
        home.mkdir()
        os.environ.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"))
        os.environ.update(GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench")
        os.environ.update(GIT_COMMITTER_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.test")
        os.environ.update(GIT_COMMITTER_EMAIL="bench@example.test")
        figures = {n: _one_size(Path(tmp), n) for n in args.sizes}
        start_s = median_start()
    print("memc sync, one real process each, extractive backend, local bare remote (file://)")
    print(f"bare interpreter start: {start_s * 1000:.1f} ms\n")
    print("| new entries | push (A) | pull (B) | no-op sync |\n|---|---|---|---|")
    for n, f in figures.items():
        cells = [f"{f[k] * 1000:.0f} ms ({f[k] / start_s:.1f}x)" for k in ("push_s", "pull_s",
                                                                         "noop_s")]  # fmt: skip
        print(f"| {n:,} | " + " | ".join(cells) + " |")
    if args.json:
        out = {"interpreter_start_s": round(start_s, 4)}
        for n, f in figures.items():
            out.update({f"{k}_{n}": round(v, 4) for k, v in f.items()})
            out.update({f"{k}_{n}_in_starts": round(v / start_s, 2) for k, v in f.items()})
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
