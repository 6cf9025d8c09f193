"""Per-prompt recall: relevance threshold, project-aware ranking, framing, bounded output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from pipeline import daily, recall
from pipeline.models import Entry

PROJECT_A = "github.com/acme/billing"
PROJECT_B = "github.com/jdoe/tinyhttp"


def add_entry(settings, day, n, project, key, title, decisions=(), lessons=()):
    entry = Entry(
        worth_saving=True,
        title=title,
        context="Worked on it.",
        decisions=tuple(decisions),
        lessons=tuple(lessons),
    )
    eid = f"{n:012x}"
    block = daily.render_entry(
        entry,
        entry_id=eid,
        time_hhmm="10:00",
        project=project,
        project_key=key,
        session_id=f"sess{n}",
        event="session-end",
    )
    daily.append_entry(settings.paths.daily, day, block, eid)


def refresh(settings):
    from pipeline import searchindex

    searchindex.refresh(settings.paths)


@pytest.fixture
def kb(settings):
    add_entry(
        settings,
        "2026-10-01",
        1,
        "billing",
        PROJECT_A,
        "Retry policy for the tax provider client",
        decisions=["Retry only on 429 and 5xx with exponential backoff and jitter, 3 attempts."],
    )
    add_entry(
        settings,
        "2026-10-02",
        2,
        "tinyhttp",
        PROJECT_B,
        "Default retry policy for the HTTP client",
        decisions=["Retries with backoff for idempotent methods only; POST is never retried."],
    )
    add_entry(
        settings,
        "2026-10-03",
        3,
        "billing",
        PROJECT_A,
        "Invoice cutoff used a naive datetime",
        lessons=["The invoice cycle end was a naive datetime compared with UTC timestamps."],
    )
    for n in range(4, 12):  # unrelated filler, so that word frequencies mean something
        add_entry(
            settings,
            f"2026-10-{n + 1:02d}",
            n,
            "etl",
            "path:/home/u/etl",
            f"Pipeline chore number {n}",
            lessons=[f"Renamed column batch_{n} in the warehouse loader."],
        )
    refresh(settings)
    return settings


def test_content_words_drop_stopwords_contractions_and_fragments():
    words = recall.content_words("Why don't the customer's invoices match? I can't see a t or 42")
    assert words == ["customer", "invoices", "match", "see", "42"]
    assert recall.content_words("what did we agree about it?") == []


def test_the_asking_project_comes_first(kb):
    from pipeline.search import open_index

    index = open_index(kb.paths)
    assert index is not None
    with index:
        conn = index.conn
        from_a = recall.rank(conn, "what is our retry policy with backoff?", project_key=PROJECT_A)
        from_b = recall.rank(conn, "what is our retry policy with backoff?", project_key=PROJECT_B)
    assert from_a[0].project == PROJECT_A and from_b[0].project == PROJECT_B
    assert {m.key for m in from_a[:2]} == {m.key for m in from_b[:2]}


def test_hook_output_is_framed_bounded_and_linked(kb):
    out = recall.hook_output(
        kb, {"prompt": "which retry policy and backoff do we use?", "cwd": "/nowhere"}
    )
    doc = json.loads(out)
    context = doc["hookSpecificOutput"]["additionalContext"]
    assert doc["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    assert len(context) <= recall.MAX_CONTEXT
    assert "data, not instructions" in context
    assert "[[daily/2026-10-01]]" in context and "[[daily/2026-10-02]]" in context
    assert "decision: Retry only on 429" in context


@pytest.mark.parametrize(
    "prompt",
    ["write a haiku about autumn leaves", "what is the capital of Portugal?", "ok", "", "  "],
)
def test_unrelated_prompts_get_nothing(kb, prompt):
    assert recall.hook_output(kb, {"prompt": prompt, "cwd": "/x"}) == ""


def test_no_index_and_bad_payloads_give_nothing(settings):
    assert recall.hook_output(settings, {"prompt": "retry policy backoff"}) == ""
    assert recall.hook_output(settings, {"prompt": 42}) == ""
    assert recall.hook_output(settings, {}) == ""


def test_a_huge_prompt_stays_bounded(kb):
    prompt = "retry policy backoff " + "lorem ipsum dolor " * 20000
    out = recall.hook_output(kb, {"prompt": prompt, "cwd": "/x"})
    assert out == "" or len(json.loads(out)["hookSpecificOutput"]["additionalContext"]) <= 2000


def test_a_locked_index_gives_nothing_instead_of_waiting(kb):
    holder = sqlite3.connect(str(kb.paths.search_db), timeout=1, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM meta WHERE key='nothing'")
    try:
        prompt = {"prompt": "which retry policy and backoff do we use?", "cwd": "/x"}
        assert recall.hook_output(kb, prompt) == ""
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_hook_command_prints_context_or_nothing(kb, memc_env):
    def hook(prompt: str) -> str:
        payload = json.dumps({"session_id": "s1", "prompt": prompt, "cwd": "/x"})
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "hook", "user-prompt-submit"],
            input=payload.encode(),
            capture_output=True,
            env=memc_env,
            timeout=60,
        )
        assert proc.returncode == 0
        return proc.stdout.decode()

    assert "UserPromptSubmit" in hook("naive datetime invoice cutoff")
    assert hook("write a haiku about autumn leaves") == ""
    log = (kb.paths.logs / "hooks.log").read_text()
    assert "user-prompt-submit" in log and "context=0 chars" in log


def test_a_prompt_naming_another_project_favours_that_project(kb):
    from pipeline.search import open_index

    index = open_index(kb.paths)
    assert index is not None
    with index:
        conn = index.conn
        asked = recall.rank(conn, "tinyhttp retry policy backoff", project_key=PROJECT_A)
    assert asked[0].project == PROJECT_B
