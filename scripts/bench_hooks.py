#!/usr/bin/env python3
"""Benchmark `memc hook` wall time (interpreter start included) on synthetic transcripts.

Generates JSONL transcripts of the requested sizes in a temp folder, initialises a data root
there, and runs the real `python -m pipeline hook ...` subprocess N times per case:
- `python -c pass` (the floor),
- session-end, incremental: a few new turns appended to an already-captured transcript,
- session-end, first capture: the whole transcript copied for a session seen for the first time,
- stop below its threshold (the cheapest checkpoint).
Targets (issue 2): incremental median <= 100 ms; first capture of 85 MB <= 0.3 s.
Usage: scripts/bench_hooks.py [--big-mb 85] [--small-mb 1] [--reps 10] [--turns 4]
"""

from __future__ import annotations

import argparse
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


def turn(i: int, width: int = 1500) -> bytes:
    role = "user" if i % 2 == 0 else "assistant"
    text = (f"turn {i}: " + "lorem ipsum dolor sit amet " * (width // 27))[:width]
    entry = {
        "parentUuid": f"u{i - 1}",
        "isSidechain": False,
        "type": role,
        "entrypoint": "cli",
        "sessionId": "bench",
        "uuid": f"u{i}",
        "timestamp": "2026-11-20T21:41:14.722Z",
        "cwd": "/home/dev/projects/demo",
        "message": {"role": role, "content": [{"type": "text", "text": text}]},
    }
    return (json.dumps(entry) + "\n").encode()


def make_transcript(path: Path, size: int) -> int:
    """Write turns until ``size`` bytes; return the number of the next turn."""
    i = 0
    with path.open("wb") as fh:
        block: list[bytes] = []
        written = 0
        while written < size:
            data = turn(i)
            block.append(data)
            written += len(data)
            i += 1
            if len(block) >= 1000:
                fh.write(b"".join(block))
                block = []
        fh.write(b"".join(block))
    return i


def timed(cmd: list[str], env: dict, stdin: bytes = b"") -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or proc.stdout:
        raise SystemExit(f"{cmd} failed: rc={proc.returncode} out={proc.stdout!r}")
    return elapsed


def hook(env: dict, event: str, sid: str, path: Path) -> float:
    payload = json.dumps(
        {
            "session_id": sid,
            "transcript_path": str(path),
            "cwd": "/home/dev/projects/demo",
            "hook_event_name": event,
        }
    )
    return timed([sys.executable, "-m", "pipeline", "hook", event], env, payload.encode())


def clear_queue(root: Path) -> None:
    """Drop spooled jobs between repetitions so disk use stays bounded (not timed)."""
    for folder in (root / ".memc" / "inbox", root / ".memc" / "spool"):
        for entry in folder.iterdir():
            if entry.is_file():
                entry.unlink()


def last_log(root: Path) -> str:
    return (root / ".memc" / "logs" / "hooks.log").read_text().splitlines()[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mb", type=float, default=85.0)
    ap.add_argument("--small-mb", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--turns", type=int, default=4, help="turns appended per incremental run")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    ap.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE (every run compiles pipeline/ from source)",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="memc-bench-"))
    root = tmp / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMC_")}
    env.update(
        MEMC_ROOT=str(root),
        MEMC_SPAWN_DRAIN="0",
        MEMC_BACKEND="extractive",
        PYTHONPATH=str(REPO),
        HOME=str(tmp),
    )
    if not args.no_bytecode:  # an installed package has .pyc files; let this checkout have them too
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "pipeline", "init"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    rows: list[tuple[str, list[float]]] = []
    try:
        rows.append(
            (
                "python -c pass",
                [timed([sys.executable, "-c", "pass"], env) for _ in range(args.reps)],
            )
        )
        for label, mb in (("big", args.big_mb), ("small", args.small_mb)):
            path = tmp / f"{label}.jsonl"
            next_turn = make_transcript(path, int(mb * (1 << 20)))
            size = f"{path.stat().st_size / (1 << 20):.1f} MB"
            first = []
            for rep in range(args.reps):
                first.append(hook(env, "session-end", f"{label}-first-{rep}", path))
                assert " queued " in last_log(root), last_log(root)
                clear_queue(root)
            rows.append((f"session-end first capture, {size}", first))
            hook(env, "session-end", f"{label}-inc", path)
            clear_queue(root)
            inc, stop = [], []
            for _ in range(args.reps):
                with path.open("ab") as fh:
                    for _ in range(args.turns):
                        fh.write(turn(next_turn))
                        next_turn += 1
                inc.append(hook(env, "session-end", f"{label}-inc", path))
                assert " queued " in last_log(root), last_log(root)
                with path.open("ab") as fh:
                    fh.write(turn(next_turn))
                    next_turn += 1
                stop.append(hook(env, "stop", f"{label}-inc", path))
                assert "below-threshold" in last_log(root), last_log(root)
            clear_queue(root)
            rows.append((f"session-end incremental (+{args.turns} turns), {size}", inc))
            rows.append((f"stop below threshold (+1 turn), {size}", stop))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{'case':<52} {'median':>9} {'min':>9} {'max':>9}   "
        f"(n={args.reps}, python {sys.version.split()[0]})"
    )
    for name, samples in rows:
        ms = [s * 1000 for s in samples]
        print(f"{name:<52} {statistics.median(ms):>7.1f}ms {min(ms):>7.1f}ms {max(ms):>7.1f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
