#!/usr/bin/env python3
"""What the distil step receives from real transcripts: render every *.jsonl under a folder.

For each file (``agent-acompact-*`` subagent files excluded, as capture excludes them), the
whole file is parsed as one job would see it (``parse_bytes``), every turn is
redacted (``redact_counts``, as distil does before chunking) and the turns are rendered
(``render_turns``, the text the prompt carries). One line per file, then a total:

- bytes in: the file's size;
- prompt chars: characters of the rendered, redacted transcript;
- turns: turns by kind (``user``, ``assistant``, ``summary``, ``report``, ... with ``sub:`` for
  sidechain turns and ``/kind`` where the parser names a shape: ``user/queued``, ``user/answer``);
- marker chars: characters of the parser's own bracketed markers (``[interrupted]``,
  ``[command output]`` without its excerpt, ``[rejected Bash]``, ``[plan]``, ``[cut N chars]``,
  ...), i.e. what machine text costs once reduced to a marker;
- redactions: replacements by kind.

    .venv/bin/python scripts/bench_transcripts.py ../shared/corpus
    .venv/bin/python scripts/bench_transcripts.py ~/.claude/projects --json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.redact import redact_counts
from pipeline.transcript import parse_bytes, render_turns

# Markers the parser writes in place of machine text or around a shape (turn prefixes such as
# "User: " or "[subagent] " are not counted; nor is the excerpt after "[command output]").
_MARKER = re.compile(
    r"\[(?:command output|image|document|interrupted|task notification[^\]]*|rejected[^\]]*|"
    r"plan(?: approved| rejected)?|queued|cut [0-9,]+ chars)\]"
)


def _kind(turn) -> str:
    kind = getattr(turn, "kind", "") or ""
    label = turn.role + (f"/{kind}" if kind else "")
    return ("sub:" if turn.sidechain else "") + label


def measure(path: Path) -> dict:
    data = path.read_bytes()
    parsed = parse_bytes(data)
    turns = []
    redactions: Counter = Counter()
    for turn in parsed.turns:
        text, counts = redact_counts(turn.text)
        redactions.update(counts)
        if text.strip():
            turns.append(type(turn)(**{**turn.__dict__, "text": text}))
    rendered = render_turns(turns)
    return {
        "file": str(path),
        "bytes_in": len(data),
        "prompt_chars": len(rendered),
        "turns": dict(sorted(Counter(_kind(t) for t in turns).items())),
        "marker_chars": sum(len(m.group(0)) for m in _MARKER.finditer(rendered)),
        "redactions": dict(sorted(redactions.items())),
        "sdk_session": parsed.sdk_session,
    }


def _fmt(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    # as capture does: a compaction agent's own transcript is not the user's
    files = sorted(
        p
        for p in args.folder.rglob("*.jsonl")
        if p.is_file() and not p.name.startswith("agent-acompact-")
    )
    if not files:
        print(f"no *.jsonl under {args.folder}", file=sys.stderr)
        return 2
    rows = [measure(p) for p in files]
    total = {
        "file": "TOTAL",
        "bytes_in": sum(r["bytes_in"] for r in rows),
        "prompt_chars": sum(r["prompt_chars"] for r in rows),
        "turns": dict(sorted(sum((Counter(r["turns"]) for r in rows), Counter()).items())),
        "marker_chars": sum(r["marker_chars"] for r in rows),
        "redactions": dict(
            sorted(sum((Counter(r["redactions"]) for r in rows), Counter()).items())
        ),
    }
    if args.json:
        print(json.dumps({"files": rows, "total": total}, indent=2))
        return 0
    for row in [*rows, total]:
        name = row["file"] if row is total else str(Path(row["file"]).relative_to(args.folder))
        print(
            f"{name}\n  bytes in {row['bytes_in']:,} | prompt chars {row['prompt_chars']:,} | "
            f"marker chars {row['marker_chars']:,}\n  turns: {_fmt(row['turns'])}\n"
            f"  redactions: {_fmt(row['redactions'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
