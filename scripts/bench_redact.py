#!/usr/bin/env python3
"""Throughput of the distil front end: parse_bytes, render_turns, redact, chunk_turns.

Builds a synthetic transcript of about --mb megabytes from self-made entries (user prompts,
split assistant frames with tool calls, tool results with errors, bookkeeping noise, planted fake
secrets) and prints one line per stage. Then how redaction's work grows: for inputs shaped like
each rule's prefix, repeated, the CPU time of 8x the input over 1x (linear is ~8, quadratic ~64;
tests/test_redact.py asserts the same ratios). Optional --clean DIR measures the redaction
false-positive rate (changed whitespace tokens / tokens) over the *.py files under DIR.

    .venv/bin/python scripts/bench_redact.py --mb 20
    .venv/bin/python scripts/bench_redact.py --clean .venv/lib/python3.11/site-packages/click
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.redact import redact, redact_counts
from pipeline.transcript import chunk_turns, parse_bytes, render_turns


def synthetic(mb: float, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits
    out, size, n = [], 0, 0
    while size < mb * 1_000_000:
        n += 1
        fake = "gh" + "p_" + "".join(rng.choice(alnum) for _ in range(36))
        lines = [
            {
                "type": "user",
                "uuid": f"u{n}",
                "message": {
                    "role": "user",
                    "content": f"step {n}: make the queue use advisory locks; token is {fake}",
                },
            },
            {
                "type": "assistant",
                "uuid": f"a{n}",
                "message": {
                    "id": f"m{n}",
                    "content": [
                        {"type": "thinking", "thinking": "hmm " * 50},
                        {"type": "text", "text": "Looking at the worker loop. " * 8},
                    ],
                },
            },
            {
                "type": "assistant",
                "uuid": f"b{n}",
                "message": {
                    "id": f"m{n}",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": f"t{n}",
                            "name": "Bash",
                            "input": {"command": f"pytest -q tests/test_queue.py -k lock_{n}"},
                        }
                    ],
                },
            },
            {
                "type": "user",
                "uuid": f"r{n}",
                "message": {
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": f"t{n}",
                            "is_error": n % 3 == 0,
                            "content": "E   AssertionError: lock not released\n"
                            + "trace line\n" * 40,
                        }
                    ]
                },
            },
            {"type": "attachment", "attachment": {"type": "file", "content": "x" * 2000}},
        ]
        for entry in lines:
            raw = json.dumps(entry) + "\n"
            out.append(raw)
            size += len(raw)
    return "".join(out).encode()


def timed(label: str, size: int, fn):
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(
        f"{label:<28} {elapsed * 1000:9.1f} ms  {size / elapsed / 1e6:8.1f} MB/s  "
        f"(input {size / 1e6:.1f} MB)"
    )
    return result


GROWTH_UNITS = {
    "assignments": "a=",
    "provider-prefixes": "sk-",
    "bearer-headers": "Authorization: Bearer ",
    "url-credentials": "https://a:",
    "mixed-case-token": "Ab3",
    "json-keys": '"password": "',
    "curl-user": "curl -u ",
    "flags": "--password ",
    "yaml-keys": "secret:\n",
    "pem-headers": "-----BEGIN RSA PRIVATE KEY-----\n",
    "unclosed-private-tags": "<private>",
}


def cpu_best(fn, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def growth(size: int) -> None:
    """CPU time of redact() on 8x the input over 1x, per rule-shaped input."""
    for name, unit in GROWTH_UNITS.items():
        small = (unit * (size // len(unit) + 1))[:size]
        large = (unit * (8 * size // len(unit) + 1))[: 8 * size]
        base = cpu_best(lambda s=small: redact(s))
        ratio = cpu_best(lambda s=large: redact(s)) / max(base, 1e-6)
        print(f"growth {name:<24} {size:>7} -> {8 * size:>7} chars: {ratio:6.1f}x CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument(
        "--growth-chars", type=int, default=2_500, help="1x size for the growth ratios (0: skip)"
    )
    parser.add_argument(
        "--clean", type=Path, help="folder of *.py files for the false-positive rate"
    )
    args = parser.parse_args()
    data = synthetic(args.mb)
    parsed = timed("parse_bytes", len(data), lambda: parse_bytes(data))
    text = timed("render_turns", len(data), lambda: render_turns(parsed.turns))
    _, counts = timed("redact (rendered)", len(text), lambda: redact_counts(text))
    timed("redact (raw jsonl)", len(data), lambda: redact(data.decode()))
    chunks = timed("chunk_turns (12k budget)", len(text), lambda: chunk_turns(parsed.turns, 12_000))
    print(f"turns {len(parsed.turns)}, chunks {len(chunks)}, redactions {counts}")
    if args.growth_chars:
        growth(args.growth_chars)
    if args.clean:
        corpus = "\n".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(args.clean.rglob("*.py"))
        )
        before, after = Counter(corpus.split()), Counter(redact(corpus).split())
        changed, total = sum((before - after).values()), sum(before.values())
        print(
            f"false positives on {args.clean}: {changed}/{total} tokens = "
            f"{changed / max(total, 1):.4%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
