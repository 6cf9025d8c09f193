#!/usr/bin/env python3
"""Cost of capturing subagent transcripts on the hook path.

Builds, in a temporary folder, a session transcript with N finished subagent transcripts
(``<session>/subagents/agent-*.jsonl``), captures it once, then times the hook's capture step
(``pipeline.hooks._run("session-end", ...)``, in process: no interpreter start) when nothing is
new, for 0 and N subagents. Prints the medians and their ratio.

    .venv/bin/python scripts/bench_subagent_capture.py --subagents 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_ms(root: Path, subagents: int, runs: int) -> float:
    from pipeline import hooks

    sid = f"4d5611e5-8d1c-4abc-9def-{subagents:012d}"
    folder = root.parent / f"proj-{subagents}"
    (folder / sid / "subagents").mkdir(parents=True)
    line = json.dumps({"type": "user", "sessionId": sid, "message": {"content": "hi"}}) + "\n"
    (folder / f"{sid}.jsonl").write_text(line * 50)
    for i in range(subagents):
        (folder / sid / "subagents" / f"agent-a{i:04d}.jsonl").write_text(line * 20)
    payload = json.dumps(
        {"session_id": sid, "transcript_path": str(folder / f"{sid}.jsonl"), "cwd": "/x"}
    ).encode()
    hooks._run("session-end", str(root), payload)  # the first capture queues everything
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        hooks._run("session-end", str(root), payload)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subagents", type=int, default=50)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="memc-bench-subagents-"))
    try:
        root = tmp / "root"
        root.mkdir()
        os.environ.update(MEMC_ROOT=str(root), MEMC_SPAWN_DRAIN="0", HOME=str(tmp))
        from pipeline.config import load_settings
        from pipeline.setup import init_root

        init_root(load_settings(root))
        alone = _median_ms(root, 0, args.runs)
        many = _median_ms(root, args.subagents, args.runs)
        print(f"hook capture, nothing new, no subagents: {alone:.1f} ms median")
        print(
            f"hook capture, nothing new, {args.subagents} finished subagents: {many:.1f} ms "
            f"median ({many / alone:.1f}x)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
