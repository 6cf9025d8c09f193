"""Per-prompt recall latency: `memc hook user-prompt-submit` at 1k / 5k / 20k articles.

    .venv/bin/python scripts/bench_prompt_hook.py [--sizes 1000,5000,20000] [--runs 21]

For each size, builds a synthetic knowledge base (``bench_read.make_kb``: linked articles, daily
logs, the search index) in a temp folder, then times whole processes, interleaved so that load on
the machine hits both alike: the bare interpreter (``python -c pass``) and the hook as Claude Code
runs it (``python -m pipeline --root R hook user-prompt-submit`` with the payload on stdin), for a
prompt that matches the knowledge base and one that does not. Prints median and p95 wall time and
the ratio of the hook's median to the interpreter's (target: <= 3x at 5,000 articles, never
above 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

PROMPTS = {
    "related": "why did the kafka consumers keep rebalancing, and which assignor did we pick?",
    "unrelated": "write a haiku about autumn leaves",
}
# One page the related prompt is about (the synthetic pages share a small vocabulary).
NEEDLE = """---
title: Kafka consumer rebalance storms
summary: Consumers rebalanced in a loop; switched to the cooperative sticky assignor
aliases: []
tags: [kafka]
sources: [daily/2026-01-02.md]
created: '2026-01-02'
updated: '2026-01-02'
---

The consumers kept rebalancing because max.poll.interval.ms was shorter than a batch. We picked
the cooperative sticky assignor and raised the poll interval.
"""


def _wall(cmd: list[str], env: dict[str, str], stdin: str = "") -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, proc.stdout


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def bench(root: Path, runs: int) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMC_")}
    env["PYTHONPATH"] = str(REPO)
    base: list[float] = []
    hook: dict[str, list[float]] = {k: [] for k in PROMPTS}
    chars: dict[str, int] = {}
    cmd = [sys.executable, "-m", "pipeline", "--root", str(root), "hook", "user-prompt-submit"]
    for _ in range(runs):
        base.append(_wall([sys.executable, "-c", "pass"], env)[0])
        for name, prompt in PROMPTS.items():
            payload = json.dumps({"session_id": "bench", "prompt": prompt, "cwd": "/home/dev/x"})
            seconds, out = _wall(cmd, env, payload)
            hook[name].append(seconds)
            chars[name] = len(out.strip())
    rows = {"python -c pass": {"median": statistics.median(base), "p95": _p95(base)}}
    for name, times in hook.items():
        rows[f"hook, {name} prompt"] = {
            "median": statistics.median(times),
            "p95": _p95(times),
            "max": max(times),
            "ratio": statistics.median(times) / statistics.median(base),
            "output_chars": chars[name],
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from bench_read import make_kb

    from pipeline.config import load_settings

    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="memc-prompt-bench-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            root = make_kb(Path(tmp) / f"kb-{n}", n, index=False)
            (root / "knowledge" / "concepts" / "kafka-rebalance-storms.md").write_text(NEEDLE)
            from pipeline import wikiindex

            wikiindex.write_index(load_settings(root).paths)  # index.md and search.db
            built = time.perf_counter() - started
            results[n] = bench(root, args.runs)
            if not args.json:
                print(f"{n} articles (built in {built:.0f} s), {args.runs} runs each:")
                for name, row in results[n].items():
                    extra = ""
                    if "ratio" in row:
                        extra = (
                            f"  max {row['max'] * 1000:.0f} ms  ratio {row['ratio']:.2f}x  "
                            f"output {row['output_chars']:.0f} chars"
                        )
                    print(
                        f"  {name:<26} median {row['median'] * 1000:6.1f} ms  "
                        f"p95 {row['p95'] * 1000:6.1f} ms{extra}"
                    )
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
