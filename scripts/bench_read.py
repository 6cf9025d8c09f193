"""Read-side benchmarks (issue 5): structural lint, SessionStart injection, query prompt size.

    .venv/bin/python scripts/bench_read.py [--sizes 250,1000,5000] [--inject-size 3000] [--runs 15]

Builds synthetic knowledge bases under a temp folder (``make_kb``, also used by the tests):
articles with frontmatter, aliases and wikilinks in every form (path, name, alias, heading,
display), a few real defects, daily logs for several projects, the search index and index.md.
Prints: structural lint seconds per size (target <= 1 s at 1,000), the median wall time of
``python -m pipeline hook session-start`` at 3,000 articles including interpreter start (target
<= 250 ms), and the query prompt size at 50 vs 3,000 articles (target: flat).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROJECTS = ("acme-api", "billing-service", "infra-tools")
TOPICS = (
    "postgres",
    "advisory",
    "locks",
    "queue",
    "retry",
    "backoff",
    "redis",
    "cache",
    "deploy",
    "kubernetes",
    "logging",
    "tracing",
    "migration",
    "schema",
    "pytest",
    "fixtures",
    "asyncio",
    "timeout",
    "webhook",
    "oauth",
    "token",
    "parser",
    "index",
    "search",
    "budget",
    "cron",
)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(
        rng.choice(TOPICS) if rng.random() < 0.3 else f"w{rng.randrange(500)}" for _ in range(n)
    )


def make_kb(root: Path, n: int, *, seed: int = 7, days: int = 20, index: bool = True) -> Path:
    """An initialised data root with ``n`` linked articles and ``days`` daily logs."""
    from pipeline.config import load_settings
    from pipeline.daily import append_entry, entry_id, render_entry
    from pipeline.models import Entry
    from pipeline.setup import init_root

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    settings = load_settings(root)
    init_root(settings)
    folders = ("concepts",) * 6 + ("connections",) * 3 + ("qa",)
    keys = [
        f"{folders[i % len(folders)]}/{rng.choice(TOPICS)}-{rng.choice(TOPICS)}-{i}"
        for i in range(n)
    ]
    titles = [k.rsplit("/", 1)[1].replace("-", " ").title() for k in keys]
    for i, key in enumerate(keys):
        links = []
        for _ in range(rng.randint(3, 6)):
            j = rng.randrange(n)
            form = rng.random()
            if form < 0.4:
                links.append(f"[[{keys[j]}]]")
            elif form < 0.6:
                links.append(f"[[{keys[j].rsplit('/', 1)[1]}]]")
            elif form < 0.75:
                links.append(f"[[Alias {j}]]")
            elif form < 0.9:
                links.append(f"[[{keys[j]}#Details|{titles[j]}]]")
            else:
                links.append(f"[[{keys[j]}.md]]")
        if i % 97 == 0:
            links.append(f"[[concepts/missing-page-{i}]]")
        project = PROJECTS[i % len(PROJECTS)]
        day = f"2026-01-{1 + i % days:02d}"
        body = (
            f"{_words(rng, 40)} in {project}.\n\n## Details\n\n{_words(rng, 60)}\n\n"
            f"See {', '.join(links)}.\n"
        )
        front = (
            f"---\ntitle: {titles[i]}\nsummary: {_words(rng, 10)}\naliases: [Alias {i}]\n"
            f"tags: [{project}]\nsources: [daily/{day}.md]\ncreated: '2026-01-01'\n"
            f"updated: '{day}'\n---\n\n"
        )
        path = root / "knowledge" / f"{key}.md"
        path.write_text(front + body, encoding="utf-8")
    for d in range(days):
        day = f"2026-01-{1 + d:02d}"
        for k in range(3):
            project = PROJECTS[(d + k) % len(PROJECTS)]
            eid = entry_id(f"bench-{d}-{k}")
            entry = Entry(
                True,
                title=f"{_words(rng, 5)} in {project}",
                context=_words(rng, 30),
                decisions=(_words(rng, 12),),
            )
            append_entry(
                root / "daily",
                day,
                render_entry(
                    entry,
                    entry_id=eid,
                    time_hhmm=f"1{k}:00",
                    project=project,
                    session_id="benchses",
                    event="session-end",
                ),
                eid,
            )
    if index:
        from pipeline import wikiindex

        wikiindex.write_index(settings.paths)  # refreshes search.db as well
    return root


def bench_lint(base: Path, sizes: list[int]) -> dict[int, float]:
    from pipeline.config import load_settings
    from pipeline.lint import run_lint

    out = {}
    for n in sizes:
        root = make_kb(base / f"lint-{n}", n)
        settings = load_settings(root)
        run_lint(settings, structural_only=True, write_report=False)  # warm the page cache
        started = time.perf_counter()
        report = run_lint(settings, structural_only=True)
        out[n] = time.perf_counter() - started
        print(
            f"structural lint {n:>5} articles: {out[n]:.3f} s "
            f"({report.links} links, {report.by_check().get('broken_link', 0)} broken)"
        )
    return out


def bench_inject(base: Path, n: int, runs: int) -> float:
    root = make_kb(base / f"inject-{n}", n)
    env = {**os.environ, "MEMC_ROOT": str(root), "PYTHONPATH": str(REPO)}
    env.pop("MEMC_INTERNAL", None)
    stdin = json.dumps(
        {
            "session_id": "bench",
            "transcript_path": "",
            "cwd": "/home/dev/acme-api",
            "hook_event_name": "SessionStart",
            "source": "startup",
        }
    )
    times = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "hook", "session-start"],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - started)
        size = len(proc.stdout.strip())
        json.loads(proc.stdout)
    median = statistics.median(times)
    print(
        f"session-start at {n} articles: median {median * 1000:.0f} ms over {runs} runs "
        f"(min {min(times) * 1000:.0f} ms), output {size} chars"
    )
    return median


def bench_query(base: Path) -> dict[int, int]:
    from pipeline.config import load_settings
    from pipeline.query import build_request

    out = {}
    for n in (50, 3000):
        root = make_kb(base / f"query-{n}", n)
        request, _ = build_request(
            load_settings(root), "how do postgres advisory locks and retry backoff work?"
        )
        out[n] = len(request.prompt_text()) if request else 0
        print(f"query prompt at {n:>4} articles: {out[n]} chars")
    print(f"query prompt ratio 3000/50: {out[3000] / max(1, out[50]):.2f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,1000,5000")
    parser.add_argument("--inject-size", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("MEMC_BACKEND", "extractive")
    with tempfile.TemporaryDirectory(prefix="memc-bench-read-") as tmp:
        base = Path(tmp)
        bench_lint(base, [int(s) for s in args.sizes.split(",") if s])
        bench_inject(base, args.inject_size, args.runs)
        bench_query(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
