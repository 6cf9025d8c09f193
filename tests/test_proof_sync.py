"""Proof of issue 17: three roots share one bare remote (file://, real git, real processes).

Interleaved sessions, drains, compiles and syncs on each root (the offline extractive backend
compiles), then syncs everywhere until quiet: every planted fact is in exactly one daily entry on
every root, knowledge/ is byte-identical on all roots and holds every fact, no conflict marker
anywhere, and the remote's history holds no .memc file, no planted secret and nothing of a
private session or an excluded project. Two syncs racing as real processes end consistent, and
a push that loses a race between fetch and push integrates again."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pipeline import compiler, state
from pipeline.capture import capture
from pipeline.config import load_settings
from pipeline.drain import drain
from pipeline.private import make_private
from tests.helpers import (
    CONFLICT_MARKERS,
    PYTHON,
    REPO,
    all_entries,
    bare_remote,
    distil_entry,
    git,
    sync_root,
    tree_files,
)
from tests.helpers import memc_sync as sync

SECRET = "ghp_" + "k3Yq9ZtR7wLmN2vB8xC4dF6gH1jK5pQ0sT9uV"  # a GitHub-token-shaped fake


def session(settings, sid: str, fact: str, project: str = "acme", extra: str = "") -> None:
    """A Claude Code transcript under the temp home, captured as its SessionEnd hook would."""
    cwd = f"/home/dev/projects/{project}"
    folder = Path.home() / ".claude" / "projects" / sid
    folder.mkdir(parents=True, exist_ok=True)
    turns = [
        (
            "user",
            f"Please fix the queue: we decided to use advisory locks, remember {fact}.{extra}",
        ),
        ("assistant", f"Done. We decided to use advisory locks because of {fact}; see queue.py."),
        ("user", "Thanks, and add a test."),
        ("assistant", "Added tests/test_queue.py."),
    ]
    lines = [
        json.dumps(
            {
                "type": k,
                "cwd": cwd,
                "sessionId": sid,
                "uuid": f"{sid}-{i}",
                "message": {"role": k, "content": text},
            }
        )
        for i, (k, text) in enumerate(turns)
    ]
    path = folder / f"{sid}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    capture(settings, transcript_path=str(path), session_id=sid, cwd=cwd, event="session-end")


def work(settings, sid: str, fact: str, *, compile: bool = True, **kw) -> None:
    session(settings, sid, fact, **kw)
    assert drain(settings, run_after=False).failed == 0
    if compile:
        assert compiler.run_compile(settings).ok


def own_pending(settings) -> int:
    conn = state.connect(settings.paths.state_db)
    try:
        compiler.sync_entries(settings, conn)
        return len(compiler.select_entries(settings, conn))
    finally:
        conn.close()


def test_three_roots_converge_with_every_fact_once_and_nothing_private_pushed(tmp_path):
    url = bare_remote(tmp_path)
    alpha = sync_root(tmp_path, "alpha")
    (alpha.root / ".memc" / "config.toml").write_text(
        'host = "alpha"\nbackend = "extractive"\nexclude_projects = ["*clientx*"]\n'
    )
    alpha = load_settings(alpha.root)
    beta = sync_root(tmp_path, "beta")
    facts: list[str] = []

    def fact(name: str) -> str:
        facts.append(f"FACT-{name}")
        return facts[-1]

    work(alpha, "a1", fact("a1"), extra=f" The token is {SECRET}.")
    assert sync(alpha, "--remote", url) == 0
    work(beta, "b1", fact("b1"))  # compiled concurrently into the same page as alpha's
    assert sync(beta, "--remote", url) == 0
    gamma = sync_root(tmp_path, "gamma", from_url=url)
    work(gamma, "g1", fact("g1"))
    work(alpha, "a2", fact("a2"), compile=False)  # drained, not compiled yet
    make_private(alpha, "p1")
    session(alpha, "p1", "PRIVATE-p1-words")  # a private session: never captured
    session(alpha, "x1", "EXCLUDED-x1-words", project="clientx")  # an excluded project
    assert drain(alpha, run_after=False).failed == 0
    assert sync(gamma) == 0
    assert sync(alpha) == 0
    work(beta, "b2", fact("b2"))
    work(gamma, "g2", fact("g2"), compile=False)
    assert sync(beta) == 0
    work(alpha, "a3", fact("a3"))
    assert sync(alpha) == 0
    roots = (alpha, beta, gamma)
    for _ in range(4):  # compile what is each host's own, sync, until nothing moves
        for settings in roots:
            if own_pending(settings):
                assert compiler.run_compile(settings).ok
            assert sync(settings) == 0
        heads = {git(s.root, "rev-parse", "HEAD") for s in roots}
        if len(heads) == 1 and not any(own_pending(s) for s in roots):
            break
    for settings in roots:  # the final sync everywhere
        assert sync(settings) == 0
    remote = url.removeprefix("file://")
    heads = {git(s.root, "rev-parse", "HEAD") for s in roots} | {git(remote, "rev-parse", "HEAD")}
    assert len(heads) == 1
    knowledge = tree_files(alpha.root, "knowledge")
    for settings in roots:
        entries = all_entries(settings.root)
        assert len({e.id for e in entries}) == len(entries) == len(facts)
        for f in facts:
            assert sum(f in e.text for e in entries) == 1, (settings.root.name, f)
        assert tree_files(settings.root, "knowledge") == knowledge
        files = {**tree_files(settings.root, "daily"), **knowledge}
        for rel, data in files.items():
            assert not any(m in data.decode() for m in CONFLICT_MARKERS), rel
        assert not git(settings.root, "status", "--porcelain")
        assert own_pending(settings) == 0
    wiki = "".join(data.decode() for rel, data in knowledge.items() if rel.count("/") == 2)
    for f in facts:
        assert f in wiki, f
    history = git(remote, "log", "-p", "--all", "--format=%H%n%B")
    names = git(remote, "log", "--all", "--name-only", "--format=")
    assert ".memc" not in names
    assert SECRET not in history and "[REDACTED" in history
    assert "PRIVATE-p1" not in history and "EXCLUDED-x1" not in history
    assert "clientx" not in history
    records = {n.split("/")[-1] for n in names.split() if n.startswith("daily/.compiled/")}
    assert records == {"alpha.txt", "beta.txt", "gamma.txt"}  # each host compiled its own


def _two_roots(tmp_path, fact_a: str, fact_b: str):
    """alpha pushed to a fresh remote, beta made from it, one new entry on each."""
    url = bare_remote(tmp_path)
    alpha = sync_root(tmp_path, "alpha")
    assert sync(alpha, "--remote", url) == 0
    beta = sync_root(tmp_path, "beta", from_url=url)
    distil_entry(alpha, "a00000000001", "Alpha one", fact_a)
    distil_entry(beta, "b00000000001", "Beta one", fact_b)
    return alpha, beta, url


def test_two_syncs_racing_as_processes_end_consistent(tmp_path):
    alpha, beta, _url = _two_roots(tmp_path, "FACT-race-a", "FACT-race-b")
    assert compiler.run_compile(alpha).ok and compiler.run_compile(beta).ok
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([PYTHON, "-m", "pipeline", "--root", str(s.root), "sync", "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for s in (alpha, beta)
    ]  # fmt: skip
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sync(alpha) == 0 and sync(beta) == 0
    for settings in (alpha, beta):
        if own_pending(settings):  # the one whose page lost recompiles its entry
            assert compiler.run_compile(settings).ok
    assert sync(alpha) == 0 and sync(beta) == 0 and sync(alpha) == 0
    assert git(alpha.root, "rev-parse", "HEAD") == git(beta.root, "rev-parse", "HEAD")
    assert tree_files(alpha.root, "knowledge") == tree_files(beta.root, "knowledge")
    page = (alpha.root / "knowledge/concepts/acme.md").read_text()
    assert "FACT-race-a" in page and "FACT-race-b" in page
    for settings in (alpha, beta):
        assert sorted(e.id for e in all_entries(settings.root)) == ["a00000000001", "b00000000001"]


def test_a_push_that_loses_the_race_fetches_and_integrates_again(tmp_path, monkeypatch):
    from pipeline import sync as syncmod
    from pipeline import vcsremote

    alpha, beta, url = _two_roots(tmp_path, "FACT-a", "FACT-b")
    real_fetch = vcsremote.fetch
    calls = []

    def fetch_then_beta_pushes(root, remote, branch):
        got = real_fetch(root, remote, branch)
        if not calls:  # the remote moves between alpha's fetch and alpha's push
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            done = subprocess.run([PYTHON, "-m", "pipeline", "--root", str(beta.root), "sync"],
                                  env=env, capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr
        calls.append(got)
        return got

    monkeypatch.setattr(vcsremote, "fetch", fetch_then_beta_pushes)
    report = syncmod.run_sync(load_settings(alpha.root))
    assert report.attempts == 2 and report.pushed >= 1
    remote = url.removeprefix("file://")
    assert git(remote, "rev-parse", "HEAD") == git(alpha.root, "rev-parse", "HEAD")
    assert sorted(e.id for e in all_entries(alpha.root)) == ["a00000000001", "b00000000001"]
