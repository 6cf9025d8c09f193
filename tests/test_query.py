"""memc query: bounded context, checked citations, no model call on no match, --file-back."""

from __future__ import annotations

import json

import pytest

from pipeline import query, wiki
from tests.fakes import FakeBackend
from tests.helpers import (
    FILLER,
    capture_session,
    load_script,
    run_memc,
    write_article,
)


@pytest.fixture
def kb(root):
    write_article(
        root,
        "concepts/advisory-locks",
        title="Postgres advisory locks",
        aliases=("Lock Alias",),
        body="We switched the job queue to Postgres advisory locks because SKIP LOCKED "
        "polling caused contention.\n\nTake pg_try_advisory_lock per job id; release on "
        "commit. " + FILLER,
    )
    write_article(
        root,
        "concepts/retry-backoff",
        title="Retry with backoff",
        body="Transient errors are retried with jittered exponential backoff, capped at "
        "four attempts. See [[concepts/advisory-locks]]. " + FILLER,
    )
    write_article(
        root,
        "connections/queue-and-retry",
        title="Queue and retry",
        body="The queue's lock and the retry policy interact: [[concepts/retry-backoff]]. "
        + FILLER,
    )
    return root


def test_nothing_found_makes_no_model_call(kb, settings):
    fake = FakeBackend()  # any call would raise
    result = query.run_query(settings, "What is the capital of France?", backend=fake)
    assert not result.found and not result.model_called and fake.calls == []
    assert "nothing on this" in result.answer


def test_only_existing_citations_are_kept(kb, settings):
    fake = FakeBackend().enqueue(
        {
            "answer": (
                "Use [[concepts/advisory-locks]] (see [[Lock Alias]]), "
                "not [[concepts/made-up|this]]."
            ),
            "citations": ["concepts/advisory-locks", "concepts/ghost", "[[retry-backoff]]"],
        }
    )
    result = query.run_query(settings, "how do advisory locks work?", backend=fake)
    assert [s.key for s in result.sources] == ["concepts/advisory-locks", "concepts/retry-backoff"]
    assert set(result.dropped) == {"concepts/ghost", "concepts/made-up"}
    assert "[[concepts/advisory-locks|Lock Alias]]" in result.answer
    assert "this [not in the knowledge base]" in result.answer and "made-up]]" not in result.answer
    payload = fake.calls[0].payload
    assert payload["articles"][0]["path"] == "concepts/advisory-locks"
    assert len(payload["articles"]) <= query.MAX_FULL + query.MAX_SUMMARIES


def test_query_through_the_real_sdk_and_fake_cli(kb, fake_claude, capsys):
    from pipeline.cli import main

    fake_claude.script(
        [
            {
                "kind": "ok",
                "reply": {
                    "answer": (
                        "Advisory locks per job id [[concepts/advisory-locks]]; [[concepts/nope]]."
                    ),
                    "citations": ["concepts/advisory-locks", "concepts/nope"],
                },
            }
        ]
    )
    code = main(["--root", str(kb), "query", "advisory", "locks", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["backend"] == "claude" and out["model_called"]
    assert out["citations"] == ["concepts/advisory-locks"]
    assert out["dropped"] == ["concepts/nope"]
    sent = fake_claude.prompts()
    assert len(sent) == 1 and "pg_try_advisory_lock" in json.dumps(sent[0])


def test_file_back_writes_a_qa_page_through_the_guarded_writer(kb, settings):
    fake = FakeBackend().enqueue(
        {
            "answer": "Per-job advisory locks. [[concepts/advisory-locks]]",
            "citations": ["concepts/advisory-locks"],
        }
    )
    result = query.run_query(settings, "How do we lock jobs?", backend=fake, file_back=True)
    assert result.filed == "qa/how-do-we-lock-jobs"
    page = (kb / "knowledge/qa/how-do-we-lock-jobs.md").read_text()
    assert (
        "title: 'Q: How do we lock jobs?'" in page
        and "[[concepts/advisory-locks|Postgres advisory locks]]" in page
    )
    assert "sources:\n- daily/2026-01-05.md" in page
    assert "[[qa/how-do-we-lock-jobs|" in (kb / "knowledge/index.md").read_text()
    assert "query --file-back" in (kb / "knowledge/log.md").read_text()


def test_extractive_backend_quotes_passages(kb, settings):
    result = query.run_query(settings, "why advisory locks instead of skip locked polling?")
    assert result.backend == "extractive" and result.answer.startswith("Extractive answer")
    assert result.sources and result.sources[0].key == "concepts/advisory-locks"
    assert not result.dropped


def test_prompt_size_is_flat_in_kb_size(tmp_path):
    from pipeline.config import load_settings

    bench = load_script("bench_read")
    sizes = {}
    for n in (50, 800):
        root = bench.make_kb(tmp_path / f"kb{n}", n)
        request, _ = query.build_request(
            load_settings(root), "postgres advisory locks retry backoff"
        )
        sizes[n] = len(request.prompt_text())
    assert sizes[800] <= 1.5 * sizes[50]
    assert sizes[800] <= query.TOTAL_CHARS + 20_000


def test_budget_exhausted_is_a_clear_error(kb, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("MEMC_BACKEND", "claude")
    monkeypatch.setenv("MEMC_DAILY_BUDGET_USD", "0")
    assert main(["--root", str(kb), "query", "advisory locks"]) == 1
    assert "budget" in capsys.readouterr().err.lower()


def test_cli_human_output_lists_sources(kb, capsys):
    from pipeline.cli import main

    assert main(["--root", str(kb), "query", "advisory", "locks", "--file-back"]) == 0
    out = capsys.readouterr().out
    assert "Extractive answer" in out and "Sources:" in out
    assert "[[concepts/advisory-locks]] Postgres advisory locks" in out
    assert "Filed as knowledge/qa/advisory-locks-qa.md" in out  # never merged into the concept page
    assert "Q: advisory locks" not in (kb / "knowledge/concepts/advisory-locks.md").read_text()


# --- query --file-back: the refreshed qa page quoted (and nested) its own previous answer ------


def test_file_back_twice_does_not_quote_its_own_page(settings, capsys):
    from pipeline.compiler import run_compile
    from pipeline.drain import drain

    capture_session(settings)
    drain(settings, run_after=False)
    run_compile(settings)
    question = "what happened in acme turn"
    assert run_memc(settings.root, "query", question, "--file-back") == 0
    assert run_memc(settings.root, "query", question, "--file-back") == 0
    pages = list((settings.root / "knowledge" / "qa").glob("*.md"))
    assert len(pages) == 1
    assert f"[[qa/{pages[0].stem}" not in pages[0].read_text()


@pytest.fixture
def kb_root(root):
    write_article(
        root,
        "concepts/advisory-locks",
        title="Postgres advisory locks",
        body="We switched the job queue to Postgres advisory locks; take "
        "pg_try_advisory_lock per job id and release on commit. " + FILLER,
    )
    return root


# ---------------------------------------------------------------- query --file-back


def test_file_back_of_a_different_question_keeps_the_earlier_answer(kb_root, settings):
    prefix = "how do we take postgres advisory locks for each job in the worker queue and "
    q1, q2 = prefix + "release them?", prefix + "monitor contention?"
    assert wiki.slugify(q1)[:60] == wiki.slugify(q2)[:60]
    fake = FakeBackend().enqueue(
        {"answer": "First answer [[concepts/advisory-locks]].", "citations": []},
        {"answer": "Second answer [[concepts/advisory-locks]].", "citations": []},
    )
    first = query.run_query(settings, q1, file_back=True, backend=fake)
    second = query.run_query(settings, q2, file_back=True, backend=fake)
    assert first.filed and second.filed and first.filed != second.filed
    one = wiki.load_article(settings.paths.knowledge, first.filed)
    two = wiki.load_article(settings.paths.knowledge, second.filed)
    assert "First answer" in one.body and one.title == "Q: " + q1
    assert "Second answer" in two.body and two.title == "Q: " + q2


def test_file_back_of_the_same_question_refreshes_its_page(kb_root, settings):
    q = "how do we take postgres advisory locks?"
    fake = FakeBackend().enqueue(
        {"answer": "Old answer [[concepts/advisory-locks]].", "citations": []},
        {"answer": "New answer [[concepts/advisory-locks]].", "citations": []},
    )
    first = query.run_query(settings, q, file_back=True, backend=fake)
    second = query.run_query(settings, q.upper(), file_back=True, backend=fake)
    assert first.filed == second.filed
    body = wiki.load_article(settings.paths.knowledge, second.filed).body
    assert "New answer" in body and "Old answer" not in body


# ---------------------------------------------------------------- extractive query


def test_extractive_refiled_answer_does_not_quote_its_own_question(kb_root, settings):
    """Asking again with --file-back must not turn the filed answer into a quote of itself."""
    q = "how do we take postgres advisory locks per job?"
    first = query.run_query(settings, q, file_back=True)
    second = query.run_query(settings, q, file_back=True)
    assert first.filed == second.filed
    assert "\u201c**Question:**" not in second.answer
    assert second.answer.count("Extractive answer (no language model)") == 1
    body = wiki.load_article(settings.paths.knowledge, second.filed).body
    assert "pg_try_advisory_lock" in body
