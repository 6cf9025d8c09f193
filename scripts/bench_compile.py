"""Compile-stage benchmark: bounded prompts, index generation, search refresh, `memc search` time.

Builds synthetic knowledge bases (default 50 / 1,000 / 3,000 / 5,000 articles) in a temp folder,
each with the same pending daily entries, and prints:
- the largest compile prompt (chars) for those entries at each size, and the 3,000 / 50 ratio
  (target <= 1.5 and <= 120,000 chars);
- at the largest size: search-index first build, no-change refresh and 10-changed-files refresh
  seconds; index.md generation seconds;
- `memc search` median wall time including process start (target <= 200 ms).

Usage: python scripts/bench_compile.py [--sizes 50,1000,3000,5000] [--runs 15] [--keep DIR]
"""

from __future__ import annotations

import argparse
import functools
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

WORDS = [
    "queue",
    "worker",
    "postgres",
    "lock",
    "advisory",
    "session",
    "timeout",
    "retry",
    "redis",
    "cache",
    "index",
    "search",
    "schema",
    "migration",
    "deploy",
    "ci",
    "pytest",
    "fixture",
    "token",
    "bucket",
    "rate",
    "limit",
    "invoice",
    "timezone",
    "datetime",
    "parser",
    "transcript",
    "hook",
    "capture",
    "compile",
    "article",
    "link",
    "vault",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build_kb(root: Path, n: int, seed: int = 7) -> None:
    from pipeline.config import load_settings
    from pipeline.setup import init_root
    from pipeline.wiki import Article, render_article

    settings = load_settings(root)
    init_root(settings)
    rng = random.Random(seed)
    folders = ("concepts", "concepts", "concepts", "connections", "qa")
    for i in range(n):
        folder = folders[i % len(folders)]
        key = f"{folder}/topic-{i:05d}"
        body = "\n\n".join(
            f"## Part {p}\n\n{_text(rng, 90)} [[concepts/topic-{rng.randrange(n):05d}]]"
            for p in range(4)
        )
        art = Article(
            key=key,
            title=f"Topic {i} {rng.choice(WORDS)} {rng.choice(WORDS)}",
            summary=_text(rng, 12),
            aliases=(f"alias {i}",),
            tags=(rng.choice(WORDS),),
            sources=("daily/2026-11-01.md",),
            created="2026-11-01",
            updated="2026-11-01",
            body=body,
        )
        (settings.paths.knowledge / f"{key}.md").write_text(render_article(art), encoding="utf-8")
    rng = random.Random(99)  # same pending entries at every size
    blocks = ["# Daily Log: 2026-11-20\n\n"]
    for j in range(10):
        blocks.append(
            f"### 1{j % 10}:00 · acme-api · {_text(rng, 6)}\n"
            f"<!-- memc:entry id={j:012x} session=bench event=session-end -->\n"
            f"**Context:** {_text(rng, 300)}\n\n**Decisions:**\n- {_text(rng, 40)}\n\n"
        )
    (settings.paths.daily / "2026-11-20.md").write_text("".join(blocks), encoding="utf-8")


def prompt_size(root: Path) -> int:
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings

    report = run_compile(load_settings(root), dry_run=True)
    return max(b.prompt_chars for b in report.batches)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,1000,3000,5000")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", default=None, help="build under DIR and keep it")
    args = parser.parse_args(argv)
    os.environ["MEMC_BACKEND"] = "extractive"
    os.environ.setdefault("MEMC_TZ", "UTC")
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.keep or tempfile.mkdtemp(prefix="memc-bench-"))
    from pipeline import searchindex, wikiindex
    from pipeline.config import load_settings

    prompts: dict[int, int] = {}
    for n in sizes:
        root = base / f"kb-{n}"
        root.mkdir(parents=True, exist_ok=True)
        build_s, _ = timed(functools.partial(build_kb, root, n))
        first_s, _ = timed(lambda root=root: searchindex.refresh(load_settings(root).paths))
        prompts[n] = prompt_size(root)
        print(
            f"{n:>6} articles: built in {build_s:5.1f}s, search index first build "
            f"{first_s:5.2f}s, largest compile prompt {prompts[n]:,} chars"
        )
    if 50 in prompts and 3000 in prompts:
        ratio = prompts[3000] / prompts[50]
        print(
            f"prompt ratio 3000/50 articles: {ratio:.3f} (target <= 1.5); "
            f"max {max(prompts.values()):,} chars (target <= 120,000)"
        )

    n = max(sizes)
    root = base / f"kb-{n}"
    paths = load_settings(root).paths
    nochange_s, stats = timed(lambda: searchindex.refresh(paths))
    print(
        f"at {n}: no-change search refresh {nochange_s * 1000:.1f} ms "
        f"({stats.scanned} files stat'ed)"
    )
    for p in sorted(paths.knowledge.glob("concepts/*.md"))[:10]:
        p.write_text(p.read_text(encoding="utf-8") + "\nedited\n", encoding="utf-8")
    changed_s, stats = timed(lambda: searchindex.refresh(paths))
    print(
        f"at {n}: refresh after 10 edited articles {changed_s * 1000:.1f} ms "
        f"({stats.updated} re-indexed)"
    )
    (paths.knowledge / "index.md").unlink(missing_ok=True)
    index_s, res = timed(lambda: wikiindex.write_index(paths))
    print(f"at {n}: index.md generation {index_s:.3f}s ({res.articles} lines)")
    rebuild_s, _ = timed(lambda: searchindex.rebuild(paths))
    print(f"at {n}: full search-index rebuild {rebuild_s:.2f}s")

    env = dict(os.environ, PYTHONPATH=str(REPO), MEMC_ROOT=str(root))
    cmd = [sys.executable, "-m", "pipeline", "search", "queue worker lock", "--limit", "10"]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm caches
    walls = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    print(
        f"at {n}: `memc search` median {statistics.median(walls) * 1000:.0f} ms, "
        f"min {min(walls) * 1000:.0f} ms over {args.runs} runs (target <= 200 ms)"
    )
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
