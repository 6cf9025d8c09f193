"""Helpers shared by several test modules (test modules never import each other).

- Jobs and transcripts in the inbox's on-disk format: ``transcript_lines``, ``make_job``,
  ``make_envelope``, ``queue_job``, ``fail_job``.
- Work that must grow linearly: ``cpu_ratio`` compares the CPU time of the same call on a small
  and a large input, so a test asserts "8x the input costs about 8x, not 64x" instead of a
  wall-clock threshold that a loaded machine breaks and a fast one hides.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def cpu_seconds(fn: Callable[[], object], reps: int = 3) -> float:
    """The least CPU time of this process over ``reps`` calls of ``fn``: CPU time, so other
    processes on the machine barely move it; the least of a few, so one GC pause does not."""
    best = float("inf")
    for _ in range(reps):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def cpu_ratio(fn: Callable[[object], object], small: object, large: object) -> float:
    """CPU time of ``fn(large)`` over ``fn(small)`` (each the least of three runs)."""
    fn(small)  # warm caches and lazy imports before measuring
    base = cpu_seconds(lambda: fn(small))
    return cpu_seconds(lambda: fn(large)) / max(base, 1e-6)
