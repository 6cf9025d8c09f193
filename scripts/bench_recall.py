"""Recall benchmark (`make eval`): does the right memory come back for a later prompt?

Runs fully offline, in a temp folder, at no cost:
1. creates the projects of ``scripts/recall_data/projects.txt`` as real git repositories (origin
   remotes, a worktree, two unrelated folders both named ``api``) under a fake home;
2. renders ``sessions.txt`` into Claude Code JSONL transcripts whose ``cwd`` is the project's
   folder, and captures each one at the time of its last line, as the SessionEnd hook would;
3. ``drain`` (distil, extractive backend) then ``compile`` (extractive) into a fresh data root;
4. asks every prompt of ``prompts.txt`` from its project's folder and scores each read path:
   - ``search``: ``memc search PROMPT`` (the top 10 hits);
   - ``query``: the context ``memc query`` would send the model (articles, then daily excerpts);
   - ``session-start``: the SessionStart context of a session started in that folder (it does
     not see the prompt);
   - ``prompt``: the per-prompt recall (``memc hook user-prompt-submit``) when present.

Scoring. Each result is mapped to the sessions it comes from: a daily entry to its session, an
article to the sessions of the daily logs in its ``sources`` (one session per day in this data).
A result that covers n sessions not yet seen takes the next n places of the session ranking and
the sessions in it are given the middle place (a page citing 6 sessions gives each rank ~3.5), so
catch-all pages earn partial credit only. recall@k = the share of prompts with an answering
session at rank <= k; MRR = the mean of 1/rank (0 when absent). ``answer`` = the share of prompts
whose delivered text (query context, SessionStart, per-prompt context) contains the answering
session's answer phrase. ``chars`` = mean characters delivered. Unrelated prompts score
``silent``: the share for which the per-prompt hook printed nothing.

Prompts are split into dev and held-out by a hash of their id, fixed up front; develop against
dev only (``--split dev``). Usage: python scripts/bench_recall.py [--split dev|held-out|all]
[--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "recall_data"
sys.path.insert(0, str(REPO))

KINDS = ("lexical", "paraphrased", "vague", "cross")
SURFACES = ("search", "query", "session-start", "prompt")


# ---------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Project:
    name: str
    folder: str
    remote: str
    worktree_of: str


@dataclass
class Session:
    id: str
    project: str
    start: datetime
    answer: str
    turns: list[tuple[str, str]] = field(default_factory=list)  # (tag, text)


@dataclass(frozen=True)
class Prompt:
    id: str
    kind: str
    project: str
    answers: tuple[str, ...]
    text: str

    @property
    def split(self) -> str:
        return split(self.id)


def split(prompt_id: str) -> str:
    """Fixed dev / held-out assignment: a third of the prompts are held out, by id hash."""
    return "held-out" if hashlib.sha256(prompt_id.encode()).digest()[0] % 3 == 0 else "dev"


def _rows(path: Path) -> list[list[str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            out.append([part.strip() for part in line.split(" | ")])
    return out


def load_projects() -> list[Project]:
    return [
        Project(n, f, "" if r == "-" else r, "" if w == "-" else w)
        for n, f, r, w in _rows(DATA / "projects.txt")
    ]


def load_sessions() -> list[Session]:
    sessions: list[Session] = []
    for line in (DATA / "sessions.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("=== "):
            sid, project, start, answer = (p.strip() for p in line[4:].split(" | "))
            when = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            sessions.append(Session(sid, project, when, answer.removeprefix("answer: ")))
        elif line.startswith("  ") and sessions and sessions[-1].turns:
            tag, text = sessions[-1].turns[-1]
            sessions[-1].turns[-1] = (tag, f"{text}\n{line.strip()}")
        else:
            tag, _, text = line.partition(": ")
            sessions[-1].turns.append((tag, text.strip()))
    return sessions


def load_prompts() -> list[Prompt]:
    return [
        Prompt(i, k, p, tuple(a.split()) if a != "-" else (), t)
        for i, k, p, a, t in _rows(DATA / "prompts.txt")
    ]


# ---------------------------------------------------------------- rendering transcripts

_TOOL_FIELD = {"Bash": "command", "WebFetch": "url", "Grep": "pattern", "Glob": "pattern"}


def render_transcript(session: Session, cwd: str, branch: str) -> tuple[str, bytes, float]:
    """(session uuid, JSONL bytes, epoch of the last line) in Claude Code's transcript format."""
    sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"memc-recall/{session.id}"))
    lines: list[dict[str, Any]] = []
    parent: str | None = None
    clock = session.start
    pending_tool = ""

    def emit(kind: str, message: dict[str, Any]) -> None:
        nonlocal parent, clock
        clock += timedelta(seconds=20)
        node = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sid}/{len(lines)}"))
        lines.append(
            {
                "parentUuid": parent,
                "isSidechain": False,
                "userType": "external",
                "cwd": cwd,
                "sessionId": sid,
                "version": "2.1.329",
                "gitBranch": branch,
                "type": kind,
                "uuid": node,
                "timestamp": clock.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "message": message,
            }
        )
        parent = node

    for n, (tag, text) in enumerate(session.turns):
        if tag == "user":
            emit("user", {"role": "user", "content": text})
        elif tag == "assistant":
            emit(
                "assistant",
                {
                    "id": f"msg_{sid[:8]}{n:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                },
            )
        elif tag == "tool":
            name, _, arg = (p.strip() for p in text.partition("|"))
            pending_tool = f"toolu_{sid[:8]}{n:04d}"
            emit(
                "assistant",
                {
                    "id": f"msg_{sid[:8]}{n:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": pending_tool,
                            "name": name,
                            "input": {_TOOL_FIELD.get(name, "file_path"): arg},
                        }
                    ],
                    "stop_reason": "tool_use",
                },
            )
        elif tag in ("result", "error", "page"):
            emit(
                "user",
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": pending_tool,
                            "content": text,
                            "is_error": tag == "error",
                        }
                    ],
                },
            )
        else:
            raise ValueError(f"{session.id}: unknown line tag {tag!r}")
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return sid, data, clock.timestamp()


def make_projects(home: Path, projects: list[Project]) -> dict[str, Path]:
    """Real git repositories (and one worktree) for the projects; name -> folder."""
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }

    def git(*args: str, cwd: Path) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    folders: dict[str, Path] = {}
    for p in projects:
        folder = home / p.folder
        folders[p.name] = folder
        if p.worktree_of:
            git("worktree", "add", "-q", "-b", p.name, str(folder), cwd=folders[p.worktree_of])
            continue
        folder.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=folder)
        if p.remote:
            git("remote", "add", "origin", p.remote, cwd=folder)
        git("commit", "-q", "--allow-empty", "-m", "start", cwd=folder)
    return folders


# ---------------------------------------------------------------- building the memory


@dataclass
class World:
    settings: Any
    folders: dict[str, Path]
    day_session: dict[str, str]  # daily/YYYY-MM-DD -> session id
    session_uuid: dict[str, str]  # uuid prefix -> session id
    answers: dict[str, str]  # session id -> answer phrase
    notes: list[str] = field(default_factory=list)


def build_world(tmp: Path) -> World:
    os.environ["MEMC_BACKEND"] = "extractive"
    os.environ["MEMC_SPAWN_DRAIN"] = "0"
    os.environ["MEMC_TZ"] = "UTC"
    os.environ["HOME"] = str(tmp / "home")
    os.environ.pop("MEMC_ROOT", None)
    from pipeline.capture import capture
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings
    from pipeline.drain import drain
    from pipeline.setup import init_root

    home = tmp / "home"
    home.mkdir()
    projects = load_projects()
    folders = make_projects(home, projects)
    sessions = load_sessions()
    root = tmp / "root"
    root.mkdir()
    settings = load_settings(root)
    init_root(settings)
    world = World(settings, folders, {}, {}, {s.id: s.answer for s in sessions})
    transcripts = tmp / "transcripts"
    transcripts.mkdir()
    for s in sessions:
        cwd = str(folders[s.project])
        sid, data, last = render_transcript(s, cwd, "main")
        path = transcripts / f"{sid}.jsonl"
        path.write_bytes(data)
        result = capture(
            settings,
            transcript_path=str(path),
            session_id=sid,
            cwd=cwd,
            event="session-end",
            now=last,
        )
        if result.status != "queued":
            world.notes.append(f"{s.id}: capture {result.status} {result.reason}")
        day = s.start.strftime("%Y-%m-%d")
        if f"daily/{day}" in world.day_session:
            raise ValueError(f"two sessions on {day}: the scoring needs one per day")
        world.day_session[f"daily/{day}"] = s.id
        world.session_uuid[sid[:8]] = s.id
    report = drain(settings, run_after=False)
    if report.failed:
        world.notes.append(f"drain: {report.summary()}")
    compiled = run_compile(settings)
    if not compiled.ok:
        world.notes.append(f"compile: {compiled.message}")
    return world


# ---------------------------------------------------------------- scoring


def sessions_of(world: World, kind: str, key: str, path: str) -> list[str]:
    """The dataset sessions one result comes from."""
    if kind == "daily":
        day = path[:-3] if path.endswith(".md") else path
        sid = world.day_session.get(day)
        return [sid] if sid else []
    from pipeline import wiki

    art = wiki.load_article(world.settings.paths.knowledge, key)
    if art is None:
        return []
    out = []
    for source in art.sources:
        sid = world.day_session.get(source[:-3] if source.endswith(".md") else source)
        if sid and sid not in out:
            out.append(sid)
    return out


def rank_of(groups: list[list[str]], answers: tuple[str, ...]) -> float | None:
    """Tie-aware rank of the first answering session (see the module docstring)."""
    seen: set[str] = set()
    place = 0
    for group in groups:
        new = [s for s in group if s not in seen]
        if not new:
            continue
        if any(s in answers for s in new):
            return place + (len(new) + 1) / 2
        seen.update(new)
        place += len(new)
    return None


def carries(text: str, world: World, answers: tuple[str, ...]) -> bool:
    flat = " ".join(text.split()).lower()
    return any(" ".join(world.answers[s].split()).lower() in flat for s in answers)


@dataclass
class Outcome:
    rank: float | None = None
    answered: bool | None = None
    chars: int | None = None
    silent: bool | None = None


def run_search(world: World, prompt: Prompt) -> Outcome:
    from pipeline import search, searchindex

    searchindex.refresh(world.settings.paths)
    hits = search.search(world.settings.paths, prompt.text, limit=10)
    groups = [sessions_of(world, h.kind, h.key, h.path) for h in hits]
    text = "\n".join(f"{h.title} {h.snippet}" for h in hits)
    return Outcome(rank=rank_of(groups, prompt.answers), chars=len(text))


def run_query(world: World, prompt: Prompt) -> Outcome:
    from pipeline.query import select_context

    ctx = select_context(world.settings, prompt.text)
    groups = [sessions_of(world, "article", a["path"], "") for a in ctx.articles]
    groups += [sessions_of(world, "daily", "", d["path"]) for d in ctx.daily]
    text = "\n".join(
        [f"{a['title']} {a.get('summary', '')} {a.get('body', '')}" for a in ctx.articles]
        + [f"{d['title']} {d['excerpt']}" for d in ctx.daily]
    )
    return Outcome(
        rank=rank_of(groups, prompt.answers),
        answered=carries(text, world, prompt.answers),
        chars=len(text),
    )


_DAY_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def run_session_start(world: World, prompt: Prompt, cache: dict[str, str]) -> Outcome:
    from pipeline.inject import build_injection

    cwd = str(world.folders[prompt.project])
    if cwd not in cache:
        doc = build_injection(world.settings, {"cwd": cwd, "session_id": "bench"})
        cache[cwd] = json.loads(doc)["hookSpecificOutput"]["additionalContext"]
    text = cache[cwd]
    return Outcome(answered=carries(text, world, prompt.answers), chars=len(text))


def run_prompt_hook(world: World, prompt: Prompt) -> Outcome | None:
    try:
        from pipeline import recall  # type: ignore[attr-defined]
    except ImportError:
        return None
    payload = {
        "prompt": prompt.text,
        "cwd": str(world.folders[prompt.project]),
        "session_id": "bench",
    }
    result = recall.prompt_recall(world.settings, payload)
    if result is None or not result.items:
        return Outcome(rank=None, answered=False, chars=0, silent=True)
    groups = [sessions_of(world, it.kind, it.key, it.path) for it in result.items]
    return Outcome(
        rank=rank_of(groups, prompt.answers),
        answered=carries(result.context, world, prompt.answers),
        chars=len(result.context),
        silent=False,
    )


def evaluate(world: World, prompts: list[Prompt]) -> dict[str, dict[str, list[Outcome]]]:
    """surface -> prompt id -> outcome (a list of one, to keep JSON simple)."""
    out: dict[str, dict[str, list[Outcome]]] = {s: {} for s in SURFACES}
    cache: dict[str, str] = {}
    for p in prompts:
        if p.kind != "unrelated":
            out["search"][p.id] = [run_search(world, p)]
            out["query"][p.id] = [run_query(world, p)]
            out["session-start"][p.id] = [run_session_start(world, p, cache)]
        hook = run_prompt_hook(world, p)
        if hook is not None:
            out["prompt"][p.id] = [hook]
    return out


def summarise(results, prompts: list[Prompt], which: str) -> dict[str, dict[str, Any]]:
    chosen = [p for p in prompts if which == "all" or p.split == which]
    table: dict[str, dict[str, Any]] = {}
    for surface in SURFACES:
        per = results[surface]
        if not per:
            continue
        rows: dict[str, Any] = {}
        for kind in (*KINDS, "all"):
            group = [p for p in chosen if p.kind != "unrelated" and kind in ("all", p.kind)]
            outs = [per[p.id][0] for p in group if p.id in per]
            if not outs:
                continue
            ranks = [o.rank for o in outs]
            row: dict[str, Any] = {"n": len(outs)}
            if surface != "session-start":
                row["r@1"] = sum(1 for r in ranks if r is not None and r <= 1) / len(outs)
                row["r@5"] = sum(1 for r in ranks if r is not None and r <= 5) / len(outs)
                row["mrr"] = sum(1 / r for r in ranks if r is not None) / len(outs)
            answered = [o.answered for o in outs if o.answered is not None]
            if answered:
                row["answer"] = sum(answered) / len(answered)
            chars = [o.chars for o in outs if o.chars is not None]
            if chars:
                row["chars"] = sum(chars) / len(chars)
            rows[kind] = row
        unrelated = [per[p.id][0] for p in chosen if p.kind == "unrelated" and p.id in per]
        if unrelated:
            rows["unrelated"] = {
                "n": len(unrelated),
                "silent": sum(1 for o in unrelated if o.silent) / len(unrelated),
            }
        table[surface] = rows
    return table


def _cell(row: dict[str, Any], key: str, fmt: str = "{:.2f}") -> str:
    return fmt.format(row[key]) if key in row else "-"


def print_table(title: str, table: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(
        f"  {'surface':<14}{'kind':<13}{'n':>3} {'r@1':>6} {'r@5':>6} {'MRR':>6} "
        f"{'answer':>7} {'chars':>7}"
    )
    for surface, rows in table.items():
        for kind, row in rows.items():
            if kind == "unrelated":
                print(
                    f"  {surface:<14}{kind:<13}{row['n']:>3}   silent on unrelated: "
                    f"{row['silent']:.2f}"
                )
                continue

            cells = [_cell(row, k) for k in ("r@1", "r@5", "mrr")]
            cells += [_cell(row, "answer"), _cell(row, "chars", "{:.0f}")]
            print(
                f"  {surface:<14}{kind:<13}{row['n']:>3} {cells[0]:>6} {cells[1]:>6} "
                f"{cells[2]:>6} {cells[3]:>7} {cells[4]:>7}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "held-out", "all", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", help="build the memory in this (new) folder and keep it")
    args = parser.parse_args(argv)
    prompts = load_prompts()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="memc-recall-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        world = build_world(tmp)
        results = evaluate(world, prompts)
        splits = ("dev", "held-out") if args.split == "both" else (args.split,)
        tables = {s: summarise(results, prompts, s) for s in splits}
        if args.json:
            print(json.dumps({"notes": world.notes, "tables": tables}, indent=1))
        else:
            counts = {s: sum(1 for p in prompts if p.split == s) for s in ("dev", "held-out")}
            print(
                f"recall benchmark: {len(load_sessions())} sessions, {len(prompts)} prompts "
                f"({counts['dev']} dev, {counts['held-out']} held-out), extractive backend"
            )
            for note in world.notes:
                print(f"  note: {note}")
            for s, table in tables.items():
                print_table(f"split: {s}", table)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
