#!/usr/bin/env python3
"""Benchmark the distil stage with an instant model (no network, no cost).

1. drain throughput: N planted jobs drained in-process (jobs/s), with the extractive backend and
   with an in-process instant fake (pipeline overhead only);
2. watcher pick-up latency: a watcher thread with the instant fake; M jobs planted one at a time,
   latency from the envelope's commit to the job's completion (p50 / p95 / max);
3. peak RSS of `python -m pipeline drain` over one big spooled delta (--spool-mb, default 200),
   measured with resource.getrusage(RUSAGE_CHILDREN) in a fresh child per run, next to a
   baseline drain of a tiny spool.

    .venv/bin/python scripts/bench_drain.py [--jobs 200] [--latency-jobs 30] [--spool-mb 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.config import load_settings  # noqa: E402
from pipeline.fsutil import atomic_write  # noqa: E402
from pipeline.llm.base import LLMReply  # noqa: E402
from pipeline.models import Envelope, job_id_for  # noqa: E402
from pipeline.setup import init_root  # noqa: E402

REPLY = {
    "worth_saving": True,
    "title": "Bench entry",
    "context": "c",
    "decisions": ["d"],
    "lessons": [],
    "action_items": [],
    "key_exchanges": [],
}


class InstantBackend:
    name = "instant"

    def run(self, request):
        return LLMReply(data=REPLY, backend=self.name, model="instant")


def _line(obj) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def exchange(session: str, i: int, tool_bytes: int = 0) -> bytes:
    base = {"sessionId": session, "cwd": "/home/dev/bench", "timestamp": "2026-11-20T10:00:00Z"}
    out = _line(
        {
            **base,
            "type": "user",
            "uuid": f"{session}-u{i}",
            "message": {
                "role": "user",
                "content": (
                    f"Step {i}: we decided to cache results in module_{i}.py. TODO: test {i}."
                ),
            },
        }
    )
    out += _line(
        {
            **base,
            "type": "assistant",
            "uuid": f"{session}-a{i}",
            "message": {
                "id": f"m-{session}-{i}",
                "role": "assistant",
                "content": [
                    {
                        "type": "text",
                        "text": f"Done with step {i}; the root cause was a stale cache. " * 3,
                    },
                    {
                        "type": "tool_use",
                        "id": f"t{i}",
                        "name": "Read",
                        "input": {"file_path": f"src/m{i}.py"},
                    },
                ],
            },
        }
    )
    if tool_bytes:
        out += _line(
            {
                **base,
                "type": "user",
                "uuid": f"{session}-r{i}",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": f"t{i}",
                            "content": "x = 1\n" * (tool_bytes // 6),
                        }
                    ],
                },
            }
        )
    return out


def plant(root: Path, session: str, blocks, minute: int = 0) -> Envelope:
    """Write a spool (streamed) and then its envelope, as a capture does."""
    memc = root / ".memc"
    tmp_spool = memc / "spool" / f".bench-{session}"
    size = 0
    with open(tmp_spool, "wb") as fh:
        for block in blocks:
            fh.write(block)
            size += len(block)
    job = job_id_for(session, "bench", 0, size)
    os.replace(tmp_spool, memc / "spool" / f"{job}.jsonl")
    env = Envelope(
        id=job,
        session_id=session,
        event="session-end",
        transcript_path="/x.jsonl",
        cwd="/home/dev/bench",
        project="bench",
        start=0,
        end=size,
        captured_at=f"2026-11-20T10:{minute % 60:02d}:00+00:00",
        spool=f"spool/{job}.jsonl",
    )
    atomic_write(memc / "inbox" / env.file_name(), env.to_json())
    return env


def fresh_root(parent: Path, name: str, **overrides):
    root = parent / name
    root.mkdir()
    settings = load_settings(root, {"backend": "extractive", "tz": "UTC", **overrides})
    init_root(settings)
    return root, settings


def bench_throughput(tmp: Path, n: int) -> dict:
    from pipeline.drain import drain

    out = {}
    for label, backend in (("extractive", None), ("instant", InstantBackend())):
        root, settings = fresh_root(tmp, f"tp-{label}")
        for i in range(n):
            plant(root, f"s{i:05d}", [exchange(f"s{i:05d}", k) for k in range(4)], minute=i)
        t0 = time.perf_counter()
        report = drain(settings, backend=backend, run_after=False)
        elapsed = time.perf_counter() - t0
        assert report.done == n, report
        out[label] = {"jobs": n, "seconds": round(elapsed, 3), "jobs_per_s": round(n / elapsed, 1)}
    return out


def bench_latency(tmp: Path, n: int) -> dict:
    from pipeline import inbox, watcher

    root, settings = fresh_root(tmp, "latency")
    stop = threading.Event()
    cycles = []
    thread = threading.Thread(
        target=watcher.watch,
        args=(settings,),
        kwargs={
            "backend": InstantBackend(),
            "stop_event": stop,
            "sweep_s": 30,
            "on_cycle": cycles.append,
        },
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not cycles and time.monotonic() < deadline:
        time.sleep(0.005)
    latencies = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            plant(root, f"l{i:04d}", [exchange(f"l{i:04d}", 0)], minute=i)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                c = inbox.counts(settings.paths)
                if c.pending == 0 and c.claimed == 0:
                    break
                time.sleep(0.002)
            latencies.append(time.perf_counter() - t0)
    finally:
        stop.set()
        thread.join(timeout=15)
    latencies.sort()
    return {
        "jobs": n,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[max(0, round(0.95 * n) - 1)], 3),
        "max_s": round(latencies[-1], 3),
        "debounce_s": 0.25,
    }


def _child_drain_rss(root: Path) -> tuple[int, float, dict]:
    env = dict(
        os.environ,
        MEMC_ROOT=str(root),
        MEMC_BACKEND="extractive",
        MEMC_TZ="UTC",
        PYTHONPATH=str(REPO),
    )
    code = (
        "import resource,json,sys;from pipeline.cli import main;rc=main(['drain','--json']);"
        "sys.stderr.write('RSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"drain child failed: {proc.stderr[-2000:]}")
    rss = int(proc.stderr.rsplit("RSS_KB=", 1)[1].split()[0])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(rss, 0), elapsed, {"report": json.loads(proc.stdout), "children_max_kb": children}


def bench_rss(tmp: Path, spool_mb: int, tool_kb: int) -> dict:
    base_root, _ = fresh_root(tmp, "rss-base")
    plant(base_root, "tiny", [exchange("tiny", 0)])
    base_rss, base_s, _ = _child_drain_rss(base_root)
    root, _ = fresh_root(tmp, "rss-big")
    target = spool_mb * 1024 * 1024
    per = len(exchange("big", 0, tool_kb * 1024))
    count = max(1, target // per)
    plant(root, "big", (exchange("big", i, tool_kb * 1024) for i in range(count)))
    spool = next((root / ".memc" / "spool").glob("*.jsonl"))
    rss, elapsed, info = _child_drain_rss(root)
    report = info["report"]
    return {
        "spool_mb": round(spool.stat().st_size / 2**20, 1),
        "exchanges": count,
        "tool_result_kb_each": tool_kb,
        "peak_rss_mb": round(rss / 1024, 1),
        "baseline_tiny_drain_rss_mb": round(base_rss / 1024, 1),
        "seconds": round(elapsed, 1),
        "baseline_seconds": round(base_s, 2),
        "entries": report["entries"],
        "done": report["done"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--latency-jobs", type=int, default=30)
    ap.add_argument("--spool-mb", type=int, default=200, help="0 skips the RSS run")
    ap.add_argument(
        "--tool-kb",
        type=int,
        default=16,
        help="tool-result size per exchange in the big spool (dropped by the parser)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="memc-bench-") as tmp:
        results = {
            "throughput": bench_throughput(Path(tmp), args.jobs),
            "watcher_latency": bench_latency(Path(tmp), args.latency_jobs),
        }
        if args.spool_mb:
            results["big_spool"] = bench_rss(Path(tmp), args.spool_mb, args.tool_kb)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for label, r in results["throughput"].items():
        print(
            f"drain throughput ({label}): {r['jobs']} jobs in {r['seconds']}s "
            f"= {r['jobs_per_s']} jobs/s"
        )
    lat = results["watcher_latency"]
    print(
        f"watcher pick-up latency over {lat['jobs']} jobs: p50 {lat['p50_s']}s, "
        f"p95 {lat['p95_s']}s, max {lat['max_s']}s (debounce {lat['debounce_s']}s)"
    )
    if "big_spool" in results:
        b = results["big_spool"]
        print(
            f"drain of a {b['spool_mb']} MB spool ({b['exchanges']} exchanges): peak RSS "
            f"{b['peak_rss_mb']} MB (tiny-spool baseline {b['baseline_tiny_drain_rss_mb']} MB), "
            f"{b['seconds']}s, {b['entries']} entries"
        )


if __name__ == "__main__":
    main()
