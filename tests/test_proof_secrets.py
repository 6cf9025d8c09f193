"""Proof suite (issue 7, part 4): no secret is stored or sent, end to end.

A transcript carries the secret corpus of tests/data/secrets/ (provider tokens from recipes.json
in the contexts of contexts.txt, context-bound secrets of bound.txt) in user text, assistant
text, Bash commands, tool errors, JSON and URLs, each next to a harmless CANARY marker. It goes
through the real hook process -> `memc drain` -> daily/ -> `memc compile` -> knowledge/:
- with the claude backend through the REAL claude-agent-sdk and the fake `claude` CLI: no secret
  in any prompt the CLI received (its log records argv, system prompt and message), and none in
  failed/ error records even when the CLI's error text itself quotes one;
- with the extractive backend, which copies transcript sentences verbatim into daily/ and
  knowledge/ (the worst case for a leak): the canaries arrive, the secrets do not.
Then no secret may appear in daily/, knowledge/, .memc/logs/, .memc/search.db, .memc/state.db
or .memc/inbox/failed/. A secret "appears" when any 12-character window of its random part does.

Spool files (.memc/spool/) hold the raw transcript bytes by design, secrets included: they are a
local copy of what Claude Code already stores under ~/.claude/projects, kept for `memc retry`
and pruned after spool_keep_days. They are created owner-only (0600); that is asserted here.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, bound_samples, contexts, provider_secrets

DISTIL = {
    "worth_saving": True,
    "title": "Rotated the deploy credentials",
    "context": "Keys were pasted into the session while debugging the deploy.",
    "decisions": ["Move every credential to the vault"],
    "lessons": [],
    "action_items": ["rotate the leaked keys"],
    "key_exchanges": [],
}
COMPILE = {
    "articles": [
        {
            "path": "concepts/credential-hygiene",
            "title": "Credential hygiene",
            "summary": "Keep keys out of sessions",
            "body": "Use the vault.",
            "sources": [],
        }
    ]
}


def secret_table() -> list[tuple[str, str, str]]:
    """(kind, text to embed, random part that must never survive)."""
    out = []
    ctx = contexts()
    for i, (kind, secret) in enumerate(provider_secrets(seed=23)):
        out.append((kind, ctx[i % len(ctx)].replace("{secret}", secret), secret[-24:]))
    for kind, text, secret in bound_samples(seed=29):
        out.append((kind, text, secret.replace("\n", "")[-24:]))
    return out


def _line(obj: dict) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def secret_transcript(path: Path, session: str, table) -> None:
    """A Claude Code JSONL transcript with every secret in a varied place, beside a canary."""
    base = {"sessionId": session, "cwd": "/home/dev/acme-api", "timestamp": "2026-11-20T14:00:00Z"}
    lines = []
    for i, (_kind, text, _secret) in enumerate(table):
        canary = f"CANARY{i:03d}"
        where = i % 4
        lines.append(
            _line(
                {
                    **base,
                    "type": "user",
                    "uuid": f"u{i}",
                    "message": {
                        "role": "user",
                        "content": f"We decided {canary} matters. Here is the config:\n{text}"
                        if where != 3
                        else f"We decided {canary} matters. Please run the deploy.",
                    },
                }
            )
        )
        blocks = [
            {
                "type": "text",
                "text": f"We decided to keep {canary} because it works."
                + (f" The value was {text}" if where == 1 else ""),
            }
        ]
        if where in (2, 3):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"t{i}",
                    "name": "Bash",
                    "input": {"command": f"deploy --verbose # {text}"[:2000]},
                }
            )
        lines.append(
            _line(
                {
                    **base,
                    "type": "assistant",
                    "uuid": f"a{i}",
                    "message": {"id": f"m{i}", "role": "assistant", "content": blocks},
                }
            )
        )
        if where == 3:
            lines.append(
                _line(
                    {
                        **base,
                        "type": "user",
                        "uuid": f"r{i}",
                        "message": {
                            "role": "user",
                            "content": [
                                {
                                    "type": "tool_result",
                                    "tool_use_id": f"t{i}",
                                    "is_error": True,
                                    "content": f"Error: rejected {text}",
                                }
                            ],
                        },
                    }
                )
            )
    path.write_bytes(b"".join(lines))


def leaks(root: Path, table, extra_texts: list[str] = ()) -> list[str]:
    """Every (place, kind) where a secret's random part survives."""
    places: dict[str, str] = {}
    for folder in ("daily", "knowledge", ".memc/logs", ".memc/inbox/failed"):
        for p in (root / folder).rglob("*"):
            if p.is_file():
                places[str(p.relative_to(root))] = p.read_bytes().decode("utf-8", "replace")
    for db in (".memc/search.db", ".memc/state.db"):
        for suffix in ("", "-wal"):
            p = root / (db + suffix)
            if p.exists():
                places[db + suffix] = p.read_bytes().decode("utf-8", "replace")
    for n, text in enumerate(extra_texts):
        places[f"prompt #{n}"] = text
    found = []
    for place, text in places.items():
        flat = text.replace("\n", "").replace("\\n", "")
        for kind, _t, secret in table:
            if any(secret[i : i + 12] in flat for i in range(0, len(secret) - 11)):
                found.append(f"{place}: {kind}")
    return found


def _run(args: list[str], env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _hook(root: Path, transcript: Path, session: str, env: dict) -> None:
    payload = json.dumps(
        {
            "session_id": session,
            "transcript_path": str(transcript),
            "cwd": "/home/dev/acme-api",
            "hook_event_name": "SessionEnd",
        }
    )
    proc = _run(["--root", str(root), "hook", "session-end"], env, payload)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr


@pytest.fixture
def env_for(tmp_path):
    def build(root: Path) -> dict:
        return dict(
            os.environ,
            MEMC_ROOT=str(root),
            PYTHONPATH=str(REPO),
            MEMC_SPAWN_DRAIN="0",
            MEMC_CHUNK_CHARS="6000",
        )

    return build


def test_secrets_never_reach_the_cli_or_any_stored_file(root, tmp_path, fake_claude, env_for):
    table = secret_table()
    assert len(table) >= 40
    transcript = tmp_path / "secret-session.jsonl"
    secret_transcript(transcript, "sess-secret", table)
    # Chunk 1 fails for good with an error text quoting a secret (a CLI echoing a bad key);
    # every later call succeeds. The failed job is retried, then everything is compiled.
    fake_claude.script(
        [
            {
                "kind": "error_status",
                "status": 401,
                "text": f"Failed to authenticate: invalid key {table[0][1]}",
            }
        ]
    )
    fake_claude.default(DISTIL)
    env = env_for(root)
    _hook(root, transcript, "sess-secret", env)
    spools = list((root / ".memc" / "spool").glob("*.jsonl"))
    assert spools and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in spools)
    first = _run(["drain", "--json"], env)
    assert json.loads(first.stdout)["failed"] == 1, first.stderr
    assert list((root / ".memc" / "inbox" / "failed").glob("*.error.json"))
    assert leaks(root, table) == []  # the error record and the logs are scrubbed too
    assert _run(["retry"], env).returncode == 0
    second = _run(["drain", "--json"], env)
    assert json.loads(second.stdout)["failed"] == 0, second.stderr
    fake_claude.default(COMPILE)
    compiled = _run(["compile", "--json"], env)
    assert json.loads(compiled.stdout)["status"] == "compiled", compiled.stdout
    assert _run(["search", "credential"], env).returncode == 0  # builds search.db
    calls = fake_claude.prompts()
    tasks = [c["prompt"][:40] for c in calls]
    assert len(calls) >= 3, tasks
    sent = [json.dumps(c) for c in calls]
    assert "[REDACTED:" in "".join(sent)
    assert leaks(root, table, sent) == []


def test_extractive_path_copies_text_but_never_secrets(root, tmp_path, env_for):
    table = secret_table()
    transcript = tmp_path / "secret-session.jsonl"
    secret_transcript(transcript, "sess-extract", table)
    env = dict(env_for(root), MEMC_BACKEND="extractive")
    _hook(root, transcript, "sess-extract", env)
    drained = _run(["drain", "--json"], env)
    assert json.loads(drained.stdout)["failed"] == 0, drained.stderr
    assert json.loads(_run(["compile", "--json"], env).stdout)["status"] == "compiled"
    assert _run(["search", "CANARY001"], env).returncode == 0
    daily_text = "".join(p.read_text() for p in (root / "daily").glob("*.md"))
    knowledge_text = "".join(p.read_text() for p in (root / "knowledge").rglob("*.md"))
    seen = [i for i in range(len(table)) if f"CANARY{i:03d}" in daily_text]
    # the sentences around the secrets really were copied (so the check below means something)
    assert len(seen) >= 8, f"only {len(seen)} canaries reached daily/"  # 8 = MAX_ITEMS per list
    assert "CANARY" in knowledge_text
    assert leaks(root, table) == []
