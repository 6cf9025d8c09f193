#!/usr/bin/env python3
"""What versioning costs a compile: the median wall time of a compile with git on and off.

Two data roots made by `memc init` (one versioned, one `--no-git`), the same knowledge base of
``--articles`` pages in each, then ``--runs`` rounds: each round appends the same new daily entry
to both roots (as distil does) and times one `compile` in each, in alternating order, in this
process, offline (the ``extractive`` backend: no model, no network). A round with git pays for
the user-edit check before the batch and the commit after it (status, add, the redactor over the
added lines, commit). The bare interpreter start (``python -c pass``) is measured in the same run
as the unit the figures are also given in.

    .venv/bin/python scripts/bench_git.py              # 20 compiles each way
    .venv/bin/python scripts/bench_git.py --runs 50 --articles 500 --json

Needs git on PATH. Timings are wall clock on whatever else the machine is doing: run it idle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _entry(settings, eid: str, day: str, text: str) -> None:
    from pipeline import daily, state
    from pipeline.models import Entry

    block = daily.render_entry(
        Entry(True, title=f"Round {eid}", context=text, decisions=(text,)),
        entry_id=eid,
        time_hhmm="10:00",
        project="bench",
        session_id="bench",
        event="stop",
    )
    daily.append_entry(settings.paths.daily, day, block, eid)
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT OR IGNORE INTO entries(id, day, daily_path, title, content_hash, created_at) "
        "VALUES (?,?,?,?,?,?)",
        (eid, day, f"daily/{day}.md", f"Round {eid}",
         hashlib.sha256(block.encode()).hexdigest()[:16], time.time()),
    )  # fmt: skip
    conn.close()


def _root(base: Path, name: str, git: bool, articles: int):
    from pipeline import compiler
    from pipeline.cli import main
    from pipeline.config import load_settings

    root = base / name
    args = ["--root", str(root), "init"] + ([] if git else ["--no-git"])
    with open(os.devnull, "w") as sink:
        saved, sys.stdout = sys.stdout, sink
        try:
            main(args)
        finally:
            sys.stdout = saved
    settings = load_settings(root)
    for i in range(articles):  # a knowledge base to compile into, committed once
        _entry(settings, f"{i:012x}", "2026-11-01", f"topic{i} uses tool{i % 37} in file{i}.py")
    compiler.run_compile(settings, all=True)
    return settings


def median_start(runs: int = 5) -> float:
    """Median wall time of a bare `python -c pass` (the floor the figures are ratios to)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="compiles each way (default 20)")
    parser.add_argument("--articles", type=int, default=100, help="pages in each root")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if shutil.which("git") is None:
        print("git is not on PATH; nothing to compare", file=sys.stderr)
        return 1
    os.environ["MEMC_BACKEND"] = "extractive"
    os.environ["MEMC_COMPILE_MIN_INTERVAL_MIN"] = "0"
    from pipeline import compiler, versioning

    with tempfile.TemporaryDirectory(prefix="memc-bench-git-") as tmp:
        home = Path(tmp, "home")
        home.mkdir()
        os.environ.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"))
        os.environ.update(
            GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_COMMITTER_NAME="Bench"
        )
        os.environ.update(
            GIT_AUTHOR_EMAIL="bench@example.test", GIT_COMMITTER_EMAIL="bench@example.test"
        )
        roots = {
            "on": _root(Path(tmp), "git-on", True, args.articles),
            "off": _root(Path(tmp), "git-off", False, args.articles),
        }
        times: dict[str, list[float]] = {"on": [], "off": []}
        commits = 0
        for n in range(args.runs):
            order = ("on", "off") if n % 2 == 0 else ("off", "on")
            for mode in order:
                s = roots[mode]
                with versioning.batch(s, "drain", ("daily",)) as vb:  # as a drain commits it
                    _entry(s, f"ff{n:010x}", "2026-11-02", f"round {n}: topic{n % 7} and tool3")
                    vb.subject = "drain: 1 entry"
                started = time.perf_counter()
                report = compiler.run_compile(s)
                times[mode].append(time.perf_counter() - started)
                if report.status != "compiled":
                    print(f"round {n} ({mode}): {report.message}", file=sys.stderr)
                    return 1
                commits += mode == "on" and bool(report.extra.get("commit"))
        start_s = median_start(args.runs)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    figures = {
        "runs": args.runs,
        "articles": args.articles,
        "median_compile_git_off_s": round(off, 4),
        "median_compile_git_on_s": round(on, 4),
        "median_extra_s": round(on - off, 4),
        "ratio_on_to_off": round(on / off, 3),
        "interpreter_start_s": round(start_s, 4),
        "extra_in_interpreter_starts": round((on - off) / start_s, 2),
        "commits_made": commits,
    }
    print(f"compile, median of {args.runs} each way, {args.articles} articles, extractive backend")
    print("| measure | value |\n|---|---|")
    print(f"| git off | {off * 1000:.1f} ms |")
    print(f"| git on (one commit per compile: {commits}/{args.runs}) | {on * 1000:.1f} ms |")
    print(f"| extra with git | {(on - off) * 1000:.1f} ms (x{on / off:.2f}) |")
    print(f"| bare interpreter start | {start_s * 1000:.1f} ms |")
    print(f"| extra in interpreter starts | {(on - off) / start_s:.2f} |")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
