"""SessionStart injection: valid JSON within budget, relevant content, stdlib-only hook path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import inject
from tests.helpers import PYTHON, REPO, load_script, run_memc

PAYLOAD = {
    "session_id": "s1",
    "transcript_path": "",
    "cwd": "/home/dev/acme-api",
    "hook_event_name": "SessionStart",
    "source": "startup",
}


def context_of(out: str) -> str:
    data = json.loads(out)
    assert data["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    return data["hookSpecificOutput"]["additionalContext"]


def test_empty_kb_gives_short_valid_json(settings):
    out = inject.build_injection(settings, PAYLOAD)
    text = context_of(out)
    assert "no articles yet" in text and "memc search" in text
    assert len(out) < 600


@pytest.fixture(scope="module")
def big_kb(tmp_path_factory):
    return load_script("bench_read").make_kb(tmp_path_factory.mktemp("kb") / "root", 600)


def test_large_kb_within_budget_and_relevant(big_kb):
    from pipeline.config import load_settings

    out = inject.build_injection(load_settings(big_kb), PAYLOAD)
    assert len(out) < inject.MAX_OUTPUT
    text = context_of(out)
    assert "## Related to acme-api" in text
    assert "## Recent decisions and follow-ups in acme-api" in text
    assert "## Recently updated" in text
    assert text.rstrip().endswith("or read knowledge/index.md.")
    related = text.split("## Related to acme-api")[1].split("##")[0]
    assert related.count("- [[") >= 3


def test_index_md_fallback_without_search_db(big_kb, tmp_path):
    import shutil

    from pipeline.config import load_settings

    copy = tmp_path / "copy"
    shutil.copytree(big_kb, copy)
    for name in ("search.db", "search.db-wal", "search.db-shm"):
        (copy / ".memc" / name).unlink(missing_ok=True)
    out = inject.build_injection(load_settings(copy), PAYLOAD)
    assert len(out) < inject.MAX_OUTPUT
    assert "## Recently updated" in context_of(out)


def test_fit_cuts_huge_context_at_line_boundaries():
    context = "\n".join(f"- line {i} " + 'é"\\' * 50 for i in range(2000))
    out = inject.fit(context)
    assert len(out) < inject.MAX_OUTPUT
    assert context_of(out).endswith("or read knowledge/index.md.")


def test_never_raises(settings, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(inject, "build_context", boom)
    assert "context unavailable" in context_of(inject.build_injection(settings, PAYLOAD))
    assert context_of(inject.build_injection(settings, "not a dict"))  # type: ignore[arg-type]


def test_hook_subprocess_prints_json_and_stays_stdlib(big_kb, memc_env):
    env = dict(memc_env, MEMC_ROOT=str(big_kb))
    probe = (
        "import sys\n"
        "from pipeline.entry import main\n"
        "code = main(['hook', 'session-start'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('yaml', 'click', 'claude_agent_sdk', 'tenacity', 'watchdog', 'jsonschema', 'mcp'))\n"
        "sys.stderr.write('BAD=' + ','.join(bad) + '\\n')\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [PYTHON, "-c", probe],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "BAD=\n" in proc.stderr
    assert "## Related to acme-api" in context_of(proc.stdout)
    real = subprocess.run(
        [PYTHON, "-m", "pipeline", "hook", "session-start"],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert real.returncode == 0 and len(real.stdout) < inject.MAX_OUTPUT
    context_of(real.stdout)


def test_recent_entries_lead_with_their_decisions_and_lessons(settings):
    from pipeline.daily import append_entry, render_entry
    from pipeline.models import Entry

    entry = Entry(
        True,
        title="Queue claims",
        context="Reworked the worker.",
        decisions=("Use pg_try_advisory_lock on a hashed job id",),
        lessons=("FOR UPDATE SKIP LOCKED releases the lock at commit",),
        action_items=("Add a lock-contention metric",),
    )
    block = render_entry(
        entry,
        entry_id="abcdefabcdef",
        time_hhmm="09:14",
        project="acme-api",
        session_id="s1",
        event="session-end",
    )
    append_entry(settings.paths.daily, "2026-11-20", block, "abcdefabcdef")
    out = inject.build_injection(
        settings,
        {"session_id": "n", "cwd": "/home/dev/acme-api", "hook_event_name": "SessionStart"},
    )
    context = context_of(out)
    assert "  - decision: Use pg_try_advisory_lock on a hashed job id" in context
    assert "  - lesson: FOR UPDATE SKIP LOCKED releases the lock at commit" in context
    assert "  - todo: Add a lock-contention metric" in context


# --- SessionStart: the injected context told the model to run a bare `memc` ---------------------


def test_session_start_context_names_a_runnable_memc_command(settings):
    from pipeline.inject import build_injection

    page = settings.root / "knowledge" / "concepts" / "acme.md"
    page.write_text("---\ntitle: acme\nsummary: the acme project\n---\n\nAcme notes.\n")
    assert run_memc(settings.root, "search", "acme") == 0  # builds the search index the hook reads

    doc = json.loads(build_injection(settings, {"cwd": "/home/dev/projects/acme"}))
    context = doc["hookSpecificOutput"]["additionalContext"]
    assert "memc search" in context  # the short form stays
    assert f"--root {settings.root}" in context
    assert str(Path(sys.executable).parent) in context or "-m pipeline" in context


def test_other_projects_entries_are_listed_however_many_articles_match(settings):
    """Other projects' entries are ranked among daily entries: before, they competed with every
    article for a dozen places, so a knowledge base with more matching articles than that
    listed none of them."""
    from pipeline import searchindex
    from pipeline.daily import append_entry, render_entry
    from pipeline.models import Entry
    from tests.helpers import write_page

    for i in range(30):  # articles that match the project's recent work better than any entry
        write_page(settings.paths, f"concepts/provider-{i}", f"Payment provider {i}", "payment")
    for i in range(40):  # and the rest of a knowledge base
        write_page(settings.paths, f"concepts/other-{i}", f"Other topic {i}", "unrelated")
    for n, (project, title) in enumerate(
        [("acme-api", "Payment provider retries"), ("billing", "Payment provider dedupe")]
    ):
        eid = f"{n + 1:012x}"
        block = render_entry(
            Entry(True, title=title, context="Worked on it."),
            entry_id=eid,
            time_hhmm="10:00",
            project=project,
            project_key=f"path:/home/dev/{project}",
            session_id=f"s{n}",
            event="session-end",
        )
        append_entry(settings.paths.daily, "2026-11-20", block, eid)
    searchindex.refresh(settings.paths)
    context = context_of(inject.build_injection(settings, PAYLOAD))
    assert "## From other projects" in context
    others = context.split("## From other projects")[1].split("\n## ")[0]
    assert "Payment provider dedupe" in others
    assert "retries" not in others  # the asking project's own entry is listed above
