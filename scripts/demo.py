"""`make demo`: run the whole pipeline on samples/*.jsonl into a git-ignored demo-root/.

capture (as the SessionEnd hook would) -> drain (distil into daily/) -> compile (knowledge/) ->
a few searches. Offline by default (MEMC_BACKEND=extractive); MEMC_BACKEND=claude uses the real
model. Idempotent: a second run captures nothing new and compiles nothing. Each sample is captured
at the time of its last transcript line, so the daily logs are dated like the sessions were.

Usage: python scripts/demo.py [--root DIR] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEARCHES = ("advisory locks", "timezone postgres", "uv cache", "rate limit redis")


def _session_info(path: Path) -> tuple[str, str, float | None]:
    """(session id, cwd, epoch of the last timestamp) read from a transcript."""
    session, cwd, last = path.stem, "", None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        session = obj.get("sessionId") or session
        cwd = obj.get("cwd") or cwd
        stamp = obj.get("timestamp")
        if isinstance(stamp, str):
            try:
                last = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
    return session, cwd, last


def _persist_backend(settings) -> None:
    """Write the demo's backend into its root's config.toml, so that the follow-up commands it
    suggests (`memc --root demo-root search/status/lint/compile`) use it too, without the env."""
    import tomllib

    path = settings.paths.config_file
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if "backend" in tomllib.loads(text):
        return
    line = f'backend = "{settings.backend}"  # written by the demo\n'
    path.write_text(text + ("\n" if text and not text.endswith("\n") else "") + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "demo-root"))
    parser.add_argument("--samples", default=str(REPO / "samples"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("MEMC_BACKEND", "extractive")
    os.environ.setdefault("MEMC_SPAWN_DRAIN", "0")  # the demo drains in-process

    from pipeline.capture import capture
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings
    from pipeline.drain import drain
    from pipeline.search import search
    from pipeline.setup import init_root

    say = (lambda *a: None) if args.quiet else print
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    settings = load_settings(root)
    init_root(settings)
    _persist_backend(settings)
    say(f"memory-compiler demo: data root {root} (backend: {settings.backend})")

    samples = sorted(Path(args.samples).glob("*.jsonl"))
    if not samples:
        print(f"no samples in {args.samples}", file=sys.stderr)
        return 1
    for path in samples:
        session, cwd, last = _session_info(path)
        result = capture(
            settings,
            transcript_path=str(path),
            session_id=session,
            cwd=cwd,
            event="session-end",
            now=last,
        )
        status = result.status.replace("-", " ")
        say(f"  capture {path.name}: {status}" + (f" ({result.reason})" if result.reason else ""))
    report = drain(settings, run_after=False)
    say(f"  drain: {report.summary()}")
    if report.failed:
        print("some jobs failed; see `memc --root demo-root status`", file=sys.stderr)
    compiled = run_compile(settings, progress=say)
    say(f"  compile: {compiled.message}")
    data = compiled.to_dict()
    for r in data["rejected"]:
        say(f"    rejected {r['path']}: {r['reason']}")

    daily = sorted(p.name for p in settings.paths.daily.glob("*.md"))
    articles = sorted(
        str(p.relative_to(settings.paths.knowledge))
        for p in settings.paths.knowledge.glob("*/*.md")
    )
    say("")
    say(f"Daily logs ({len(daily)}): {settings.paths.daily}")
    for name in daily:
        say(f"  {name}")
    say(f"Wiki ({len(articles)} articles): {settings.paths.knowledge}")
    say(f"  start at {settings.paths.knowledge / 'index.md'}")
    say("")
    for query in SEARCHES:
        hits = search(settings.paths, query, limit=3)
        say(f"search {query!r}:")
        for hit in hits:
            where = hit.key if hit.kind == "article" else hit.path
            say(f"  {hit.title}  [{where}]")
    rel = os.path.relpath(root, Path.cwd())
    say("")
    say("Open it: in Obsidian, 'Open folder as vault' and pick " + str(root))
    say(
        f"  (or any editor: {rel}/knowledge/index.md). Try: "
        f"`.venv/bin/memc --root {rel} search postgres`, `... status`, `... lint`."
    )
    return 0 if compiled.ok and not getattr(report, "failed", 0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
