"""Helpers shared by several test modules: test modules never import each other, they import
from here (and the LLM fake from tests/fakes.py, the fake `claude` CLI from tests/fake_claude.py).

- Work that must grow linearly: ``cpu_ratio`` compares the CPU time of the same call on a small
  and a large input, so a test asserts "8x the input costs about 8x" instead of a wall-clock
  threshold that a loaded machine breaks and a fast one hides.
- Jobs in the inbox's on-disk format: ``transcript_lines``, ``make_job`` (a capture planted the
  way pipeline.capture commits one), ``make_envelope``, ``queue_job``, ``fail_job``; ``ENTRY``, a
  distil reply worth saving.
- Knowledge pages: ``write_page`` (rendered by pipeline.wiki), ``write_article`` (hand-written
  frontmatter, for lint's defects), ``FILLER``.
- Claude Code's own files under the (temp) home: ``transcript_line``, ``write_transcript``;
  transcript entries for the parser: ``user``, ``assistant``, ``tool_use``, ``tool_result``,
  ``jsonl``.
- Hooks: ``turn_line``, ``hook_payload``, ``hook_inproc`` (run_hook_cli with a real stdin file),
  ``queued_envelopes``.
- Versioned data roots (real git): ``git``, ``commits``, ``add_recorded_entry``, ``T0``, ``DAY``,
  ``USER_LINES``.
- Fake secrets built from tests/data/secrets/ recipes with a seeded generator (no literal key in
  the repository): ``provider_secrets``, ``contexts``, ``bound_samples``.
- Kill tests: ``kill_when_progressed``, ``finish_and_compare``, ``check_exactly_once``,
  ``all_entries``.
- ``load_script``: a scripts/ module (benchmarks build their data sets with it too).
- ``REPO``, ``SHARED`` (../shared beside the checkout), ``PYTHON``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import random
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from pipeline import daily, inbox, state
from pipeline.config import load_settings
from pipeline.daily import list_days, read_entries
from pipeline.drain import drain
from pipeline.fsutil import atomic_write
from pipeline.models import Entry, Envelope, job_id_for
from pipeline.wiki import Article, render_article

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the checkout (CI); MEMC_TEST_SHARED points a worktree elsewhere at it.
SHARED = Path(os.environ.get("MEMC_TEST_SHARED") or REPO.parent / "shared")
PYTHON = sys.executable
SECRETS_DATA = Path(__file__).parent / "data" / "secrets"


# -- work ratios ---------------------------------------------------------------------------------


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


# -- inbox jobs ----------------------------------------------------------------------------------


def transcript_lines(
    session: str, exchanges: list[tuple[str, str]], *, sdk: bool = False, start: int = 0
) -> bytes:
    """Claude Code JSONL for a list of (user text, assistant text) exchanges."""
    out = []
    for i, (user, assistant) in enumerate(exchanges, start):
        base = {
            "sessionId": session,
            "cwd": "/home/dev/acme-api",
            "timestamp": "2026-11-20T14:00:00Z",
        }
        if sdk:
            base["entrypoint"] = "sdk-py"
        out.append(
            {
                **base,
                "type": "user",
                "uuid": f"{session}-u{i}",
                "message": {"role": "user", "content": user},
            }
        )
        out.append(
            {
                **base,
                "type": "assistant",
                "uuid": f"{session}-a{i}",
                "message": {
                    "id": f"msg-{session}-{i}",
                    "role": "assistant",
                    "content": [{"type": "text", "text": assistant}],
                },
            }
        )
    return "".join(json.dumps(o) + "\n" for o in out).encode()


def make_job(
    root: Path,
    session: str,
    data: bytes,
    *,
    captured_at: str = "2026-11-20T14:32:05+00:00",
    start: int = 0,
    event: str = "session-end",
    project: str = "acme-api",
) -> Envelope:
    """Plant a capture the way pipeline.capture commits one: spool first, envelope last."""
    memc = root / ".memc"
    job_id = job_id_for(session, f"ident-{session}", start, start + len(data))
    env = Envelope(
        id=job_id,
        session_id=session,
        event=event,
        transcript_path=f"/home/dev/.claude/projects/x/{session}.jsonl",
        cwd="/home/dev/acme-api",
        project=project,
        start=start,
        end=start + len(data),
        captured_at=captured_at,
        spool=f"spool/{job_id}.jsonl",
    )
    atomic_write(memc / "spool" / f"{job_id}.jsonl", data)
    atomic_write(memc / "inbox" / env.file_name(), env.to_json())
    return env


def make_envelope(
    session_id: str, start: int = 0, end: int = 100, at: float = 1_800_000_000.0
) -> Envelope:
    job_id = job_id_for(session_id, "1:2:abc", start, end)
    return Envelope(
        id=job_id,
        session_id=session_id,
        event="session-end",
        transcript_path=f"/t/{session_id}.jsonl",
        cwd="/home/dev/acme",
        project="acme",
        start=start,
        end=end,
        captured_at=datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds"),
        spool=f"spool/{job_id}.jsonl",
    )


def queue_job(root: Path, session_id: str, start: int = 0, end: int = 100) -> Envelope:
    env = make_envelope(session_id, start, end)
    (root / ".memc" / "spool" / f"{env.id}.jsonl").write_text('{"type":"user"}\n')
    (root / ".memc" / "inbox" / env.file_name()).write_text(env.to_json())
    return env


def fail_job(
    root: Path,
    session_id: str,
    *,
    error_class: str = "PermanentLLMError",
    message: str = "authentication failed (401): run `claude` and log in",
    start: int = 0,
) -> Envelope:
    env = make_envelope(session_id, start, start + 100)
    failed = root / ".memc" / "inbox" / "failed"
    (root / ".memc" / "spool" / f"{env.id}.jsonl").write_text('{"type":"user"}\n')
    (failed / env.file_name()).write_text(env.to_json())
    record = {
        "error_class": error_class,
        "message": message,
        "attempts": 1,
        "stderr_tail": "",
        "failed_at": "2027-01-15T08:00:00+00:00",
    }
    (failed / (env.file_name()[:-5] + ".error.json")).write_text(json.dumps(record))
    return env


ENTRY = {
    "worth_saving": True,
    "title": "Switched queue to advisory locks",
    "context": "Reworked the job queue.",
    "decisions": ["Use pg advisory locks"],
    "lessons": ["Redis visibility timeouts lost jobs"],
    "action_items": [],
    "key_exchanges": [],
}


# --- an envelope's spool field could name any file under .memc/ --------------------------------


def envelope_naming_spool(root: Path, spool: str, session: str = "evil") -> Path:
    """An envelope whose ``spool`` field names ``spool`` (a hostile or broken job)."""
    env = Envelope(
        id="e" * 20,
        session_id=session,
        event="manual",
        transcript_path="/x.jsonl",
        cwd="",
        project="p",
        start=0,
        end=10,
        captured_at="2026-11-20T10:00:00.000000+00:00",
        spool=spool,
    )
    path = root / ".memc" / "inbox" / env.file_name()
    path.write_text(env.to_json())
    return path


def run_memc(root: Path, *args: str) -> int:
    """``memc --root ROOT ARGS...`` in-process; returns the exit code."""
    from pipeline.cli import main

    return main(["--root", str(root), *args])


# -- knowledge pages -----------------------------------------------------------------------------


FILLER = " ".join(f"word{i}" for i in range(60))


def write_page(paths, key, title, body="", summary="", aliases=(), tags=()):
    """A page as memc would have compiled it (recorded as memc's last write, when the root has
    state: pages written by hand count as the user's, see pipeline.pages)."""
    path = paths.knowledge / f"{key}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_article(
        Article(
            key=key,
            title=title,
            summary=summary,
            aliases=tuple(aliases),
            tags=tuple(tags),
            body=body,
        )
    )
    path.write_text(text)
    if paths.memc.is_dir():
        from pipeline import pages, state

        conn = state.connect(paths.state_db)
        pages.record(conn, f"knowledge/{key}.md", text)
        conn.close()
    return path


def write_article(
    root: Path,
    key: str,
    *,
    title: str,
    body: str,
    aliases=(),
    extra_front: str = "",
    summary: str | None = "A one-line summary.",
    created: str | None = "2026-01-05",
    updated: str | None = "2026-01-06",
    raw_front: str | None = None,
) -> Path:
    """An article written by hand (frontmatter knobs for the defects lint must find), recorded
    as memc's own write when the root has state."""
    path = root / "knowledge" / f"{key}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw_front is None:
        lines = [f"title: {title}"]
        if summary is not None:
            lines.append(f"summary: {summary}")
        lines.append("aliases: [" + ", ".join(aliases) + "]")
        lines.append("tags: [demo]")
        lines.append("sources: [daily/2026-01-05.md]")
        if created is not None:
            lines.append(f"created: '{created}'")
        if updated is not None:
            lines.append(f"updated: '{updated}'")
        raw_front = "\n".join(lines) + ("\n" + extra_front if extra_front else "")
    path.write_text(f"---\n{raw_front}\n---\n\n{body}\n", encoding="utf-8")
    if (root / ".memc").is_dir():  # as memc wrote it (hand-written pages are the user's)
        from pipeline import pages

        conn = state.connect(root / ".memc" / "state.db")
        pages.record(conn, f"knowledge/{key}.md", path.read_bytes())
        conn.close()
    return path


# -- Claude Code's files under the temp home -----------------------------------------------------


def transcript_line(kind: str, text: str, cwd: str, sid: str, **extra) -> str:
    obj = {
        "type": kind,
        "cwd": cwd,
        "sessionId": sid,
        "message": {"role": kind, "content": text},
        **extra,
    }
    return json.dumps(obj) + "\n"


def write_transcript(
    cwd: str, sid: str, turns: int = 4, *, mtime: float | None = None, **extra
) -> Path:
    folder = Path.home() / ".claude" / "projects" / "".join(c if c.isalnum() else "-" for c in cwd)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sid}.jsonl"
    lines = [
        transcript_line(
            "user" if i % 2 == 0 else "assistant", f"turn {i} about {cwd}", cwd, sid, **extra
        )
        for i in range(turns)
    ]
    path.write_text("".join(lines))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def capture_session(settings, cwd: str = "/home/dev/projects/acme", sid: str = "s1", turns=6):
    """A transcript under the temp home, captured as its SessionEnd hook would (one job)."""
    from pipeline.capture import capture

    path = write_transcript(cwd, sid, turns=turns)
    return capture(
        settings, transcript_path=str(path), session_id=sid, cwd=cwd, event="session-end"
    )


def user(content, **extra) -> dict:
    """A Claude Code transcript ``user`` entry (``user``, ``assistant``, ``tool_use``,
    ``tool_result`` and ``jsonl`` build self-written transcripts for the parser's tests)."""
    entry = {
        "type": "user",
        "message": {"role": "user", "content": content},
        "uuid": extra.pop("uuid", f"u-{json.dumps(content)[:40]}"),
        "timestamp": "2026-11-20T10:00:00.000Z",
        "sessionId": "s-1",
        "cwd": "/home/dev/acme",
        "gitBranch": "main",
    }
    entry.update(extra)
    return entry


def assistant(msg_id: str, blocks: list, uuid: str = "", **extra) -> dict:
    entry = {
        "type": "assistant",
        "uuid": uuid or f"a-{msg_id}-{len(json.dumps(blocks))}",
        "timestamp": "2026-11-20T10:00:01.000Z",
        "message": {"id": msg_id, "role": "assistant", "content": blocks},
    }
    entry.update(extra)
    return entry


def tool_use(tool_id: str, name: str, tool_input) -> dict:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(tool_id: str, content, is_error=None) -> dict:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if is_error is not None:
        block["is_error"] = is_error
    return block


def jsonl(*entries) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries).encode()


# -- hooks ---------------------------------------------------------------------------------------


def turn_line(i: int) -> bytes:
    """One JSONL user turn, as a hook's transcript holds it."""
    msg = {"type": "user", "message": {"role": "user", "content": f"turn {i}"}}
    return (json.dumps(msg) + "\n").encode()


def queued_envelopes(root: Path) -> list[Envelope]:
    """The envelopes waiting in the inbox, by session then byte offset."""
    files = (root / ".memc" / "inbox").glob("*.json")
    return sorted(
        (Envelope.from_json(p.read_text()) for p in files), key=lambda e: (e.session_id, e.start)
    )


def hook_payload(sid: str, transcript, cwd: str = "/home/dev/demo", **extra) -> bytes:
    return json.dumps(
        {
            "session_id": sid,
            "transcript_path": str(transcript),
            "cwd": cwd,
            "hook_event_name": "SessionEnd",
            **extra,
        }
    ).encode()


def hook_inproc(rest, root, data: bytes, monkeypatch) -> int:
    """Run the hook in-process with ``data`` on stdin (a real file: a pipe would fill up)."""
    stdin_file = root.parent / f"stdin-{len(os.listdir(root.parent))}"
    stdin_file.write_bytes(data)
    with stdin_file.open("rb") as stream:
        monkeypatch.setattr(sys, "stdin", stream)
        from pipeline.hooks import run_hook_cli

        return run_hook_cli(rest, root=str(root), verbose=False)


# -- versioned data roots (real git) ------------------------------------------------------------

T0 = 1_763_640_000.0  # 2025-11-20 12:00 UTC
DAY = "2025-11-20"


def git(root, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def make_repo(path: Path, remote: str = "") -> Path:
    """A real git repository at ``path`` with one empty commit (and an origin remote if given);
    for project-identity tests. The identity variables make commits work with no git config."""
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    path.mkdir(parents=True)
    run("init", "-q", "-b", "main")
    if remote:
        run("remote", "add", "origin", remote)
    run("commit", "-q", "--allow-empty", "-m", "start")
    return path


def commits(root) -> list[tuple[str, str, str, str]]:
    """(author name, committer name, subject, body) newest first."""
    out = git(root, "log", "--format=%an%x1f%cn%x1f%s%x1f%b%x1e")
    return [tuple(r.strip("\n").split("\x1f")) for r in out.split("\x1e") if r.strip()]  # type: ignore[misc]


def add_recorded_entry(settings, eid: str, title: str, body: str, day: str = DAY) -> None:
    """An entry appended and recorded the way distil does it."""
    block = daily.render_entry(
        Entry(True, title=title, context=body),
        entry_id=eid,
        time_hhmm="10:00",
        project="acme",
        session_id="s1",
        event="stop",
    )
    daily.append_entry(settings.paths.daily, day, block, eid)
    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO entries(id, day, daily_path, title, content_hash, created_at) "
        "VALUES (?,?,?,?,?,?)",
        (eid, day, f"daily/{day}.md", title, hashlib.sha256(block.encode()).hexdigest()[:16], T0),
    )
    conn.close()


USER_LINES = [
    "My own note: the staging database needs `SET lock_timeout = '2s'` first.",
    "- a list item I wrote",
    "## My section",
    "Keep this sentence exactly.",
]


# -- fake secrets --------------------------------------------------------------------------------


ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "urlsafe": string.ascii_letters + string.digits + "-_",
    "base64": string.ascii_letters + string.digits + "+/",
    "base64s": string.ascii_letters + string.digits + "+/",
    "upper_digits": string.ascii_uppercase + string.digits,
    "digits": string.digits,
    "hex": "0123456789abcdef",
    "lower": string.ascii_lowercase,
    "lower_digits": string.ascii_lowercase + string.digits,
}


def _random(rng: random.Random, alphabet: str, length: int) -> str:
    chars = ALPHABETS[alphabet]
    while True:
        value = "".join(rng.choice(chars) for _ in range(length))
        mixed = (
            any(c.isupper() for c in value)
            + any(c.islower() for c in value)
            + any(c.isdigit() for c in value)
        )
        needed = sum(
            (
                any(c.isupper() for c in chars),
                any(c.islower() for c in chars),
                any(c.isdigit() for c in chars),
            )
        )
        if mixed == needed and (
            alphabet not in ("alnum", "base64", "urlsafe") or sum(c.isdigit() for c in value) >= 3
        ):
            return value


def _jwt(rng: random.Random) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part({"sub": str(rng.randrange(10**9)), "name": "Test User", "iat": 1795210886})
    return f"{header}.{payload}.{_random(rng, 'urlsafe', 43)}"


def _assemble(recipe: dict, rng: random.Random) -> str:
    out = []
    for piece in recipe["pieces"]:
        if isinstance(piece, str):
            out.append(piece)
        elif piece.get("jwt"):
            out.append(_jwt(rng))
        else:
            out.append(_random(rng, piece["alphabet"], piece["length"]))
    return "".join(out)


def provider_secrets(seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (r["kind"], _assemble(r, rng))
        for r in json.loads((SECRETS_DATA / "recipes.json").read_text())
    ]


def contexts() -> list[str]:
    return [c.strip("\n") for c in (SECRETS_DATA / "contexts.txt").read_text().split("\n----\n")]


def bound_samples(seed: int = 11) -> list[tuple[str, str, str]]:
    """(kind, text, the random part that must disappear) for context-bound secrets."""
    rng = random.Random(seed)
    out = []
    for line in (SECRETS_DATA / "bound.txt").read_text().splitlines():
        if not line.strip():
            continue
        kind, template = line.split("|", 1)
        template = template.replace("\\\\n", "\x00").replace("\\n", "\n").replace("\x00", "\\n")
        head, rest = template.split("{rand:", 1)
        spec, tail = rest.split("}", 1)
        alphabet, length = spec.split(":")
        if alphabet == "pem":
            body = _random(rng, "base64", int(length))
            secret = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        else:
            secret = _random(rng, alphabet, int(length))
        out.append((kind, head + secret + tail, secret))
    return out


# -- kill tests ----------------------------------------------------------------------------------


def all_entries(root):
    return [e for day in list_days(root / "daily") for e in read_entries(root / "daily", day)]


def check_exactly_once(root, facts, reference=None):
    """Every fact in exactly one entry, no id twice, no debris; and, given a reference root
    drained without interruption, exactly the same entries."""
    entries = all_entries(root)
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    if reference is None:
        assert len(ids) == len(facts)
    else:
        mine = {e.id: e.text for e in entries}
        theirs = {e.id: e.text for e in all_entries(reference)}
        assert sorted(set(mine) - set(theirs)) == sorted(set(theirs) - set(mine)) == []
        assert [i for i in mine if mine[i] != theirs[i]] == []
        assert sorted((e.id, e.text) for e in entries) == sorted(
            (e.id, e.text) for e in all_entries(reference)
        )
    for fact in facts:  # every planted fact in exactly one entry
        assert sum(fact in e.text for e in entries) == 1, fact
    paths = load_settings(root).paths
    assert inbox.counts(paths) == inbox.InboxCounts(0, 0, 0)
    assert not list(paths.claimed.iterdir())
    for folder in (paths.inbox, paths.claimed, paths.failed, paths.daily):
        assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def kill_when_progressed(proc, paths, target: int, deadline_s: float = 20.0) -> bool:
    """SIGKILL ``proc`` once ``target`` more jobs have left the inbox (or at once when 0).
    Returns whether it was killed while still running."""
    start = inbox.counts(paths).pending
    deadline = time.monotonic() + deadline_s
    while proc.poll() is None and time.monotonic() < deadline:
        if start - inbox.counts(paths).pending >= target:
            break
        time.sleep(0.002)  # polling a condition with a deadline, not waiting and hoping
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    return True


def finish_and_compare(root, tmp_path, facts, plant_reference, expected_jobs):
    """Drain what a kill test left "a minute later", then check every fact is in daily/ exactly
    once and the entries equal those of an uninterrupted drain of the same jobs."""
    from pipeline.setup import init_root

    final = drain(load_settings(root, {"chunk_chars": 400}), clock=lambda: time.time() + 120)
    assert final.failed == 0
    ref = tmp_path / "reference"
    ref.mkdir()
    ref_settings = load_settings(ref, {"chunk_chars": 400})
    init_root(ref_settings)
    plant_reference(ref)
    assert drain(ref_settings).done == expected_jobs
    check_exactly_once(root, facts, reference=ref)


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- several roots sharing one remote (memc sync) -------------------------------------------------


def bare_remote(tmp_path: Path, name: str = "remote.git", refuse: str = "") -> str:
    """A local bare repository as the shared remote; its file:// URL. ``refuse``: a pre-receive
    hook prints it and exits 1 (a read-only remote; chmod does not stop root)."""
    path = tmp_path / name
    subprocess.run(["git", "init", "--bare", "-q", str(path)], check=True)
    if refuse:
        hook = path / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\necho '{refuse}' >&2\nexit 1\n")
        hook.chmod(0o755)
    return f"file://{path}"


def memc_sync(settings, *args: str) -> int:
    """`memc --root ROOT sync ARGS...` in process; its exit code."""
    from pipeline.cli import main

    return main(["--root", str(settings.root), "sync", *args])


def sync_root(tmp_path: Path, host: str, *, from_url: str = ""):
    """An initialised, versioned data root whose host is ``host`` (extractive backend); with
    ``from_url``, made by ``memc init --from``."""
    from pipeline.cli import main

    root = tmp_path / host
    args = ["--root", str(root), "init"] + (["--from", from_url] if from_url else [])
    saved = os.environ.get("MEMC_HOST")
    os.environ["MEMC_HOST"] = host  # init --from learns the entries as this host's root
    try:
        assert main(args) == 0
    finally:
        os.environ.pop("MEMC_HOST") if saved is None else os.environ.update(MEMC_HOST=saved)
    config = root / ".memc" / "config.toml"
    kept = config.read_text() if config.exists() else ""
    config.write_text(f'host = "{host}"\nbackend = "extractive"\n{kept}')
    return load_settings(root)


def distil_entry(settings, eid: str, title: str, fact: str, day: str = DAY) -> None:
    """One entry appended, recorded and committed the way a drain does it (one batch)."""
    from pipeline import versioning
    from pipeline.pending import entry_hash

    block = daily.render_entry(
        Entry(True, title=title, context=f"Worked on {title}.", decisions=[fact]),
        entry_id=eid, time_hhmm="10:00", project="acme", session_id="s1", event="stop",
        host=settings.this_host,
    )  # fmt: skip
    with versioning.batch(settings, "drain", ("daily",)) as batch:
        daily.append_entry(settings.paths.daily, day, block, eid)
        [entry] = [e for e in read_entries(settings.paths.daily, day) if e.id == eid]
        conn = state.connect(settings.paths.state_db)
        conn.execute(
            "INSERT INTO entries(id, day, daily_path, job_id, title, content_hash, created_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (eid, day, f"daily/{day}.md", f"job-{eid}", title, entry_hash(entry), T0),
        )
        conn.close()
        batch.subject = f"drain: {title}"


def tree_files(root: Path, folder: str) -> dict[str, bytes]:
    """{path: bytes} of every file under ROOT/folder (hidden ones too)."""
    base = root / folder
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


CONFLICT_MARKERS = ("<<<<<<<", ">>>>>>>", "|||||||")
