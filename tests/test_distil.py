"""distil_job with the FakeBackend at the LLM seam: rendering, not-worth-saving, chunking without
loss, redaction before anything is sent or written, SDK/private sessions, streaming slices,
resume after a budget deferral, and exactly-once on re-runs."""

from __future__ import annotations

import json

import pytest

from pipeline import daily, distil, state
from pipeline.config import load_settings
from pipeline.errors import BudgetDeferred, PathRefused
from tests.fakes import FakeBackend
from tests.helpers import ENTRY, make_job, transcript_lines


def _run(settings, env, backend, **kw):
    conn = state.connect(settings.paths.state_db)
    try:
        return distil.distil_job(
            settings, env, backend=backend, conn=conn, sleep=lambda s: None, **kw
        )
    finally:
        conn.close()


def _daily(root, day="2026-11-20"):
    path = root / "daily" / f"{day}.md"
    return path.read_text() if path.exists() else ""


def test_entry_rendered_and_recorded(settings, root):
    env = make_job(
        root, "sess1", transcript_lines("sess1", [("fix the queue", "done: used locks")])
    )
    fake = FakeBackend(default=ENTRY)
    result = _run(settings, env, fake)
    assert (result.appended, result.chunks, result.not_worth_saving) == (1, 1, 0)
    assert result.cost_usd == pytest.approx(0.01)
    text = _daily(root)
    assert text.startswith("# Daily Log: 2026-11-20\n")
    assert "### 14:32 · acme-api · Switched queue to advisory locks" in text
    eid = daily.entry_id(env.id, 0)
    host = settings.this_host
    marker = f"<!-- memc:entry id={eid} session=sess1 event=session-end host={host} -->"
    assert marker in text
    [req] = fake.calls
    assert req.task == "distil" and req.model == settings.flush_model
    assert req.payload["chunk"] == 1 and req.payload["chunks"] == 1
    assert "User: fix the queue" in req.payload["transcript"]
    conn = state.connect(settings.paths.state_db)
    row = conn.execute(
        "SELECT day, daily_path, job_id, session_id, title, compiled_at FROM entries"
    ).fetchone()
    assert tuple(row) == (
        "2026-11-20",
        "daily/2026-11-20.md",
        env.id,
        "sess1",
        "Switched queue to advisory locks",
        None,
    )
    assert (
        conn.execute("SELECT count(*) FROM kv WHERE key LIKE 'distil-progress:%'").fetchone()[0]
        == 0
    )


def test_rerun_appends_nothing_and_calls_nothing(settings, root):
    env = make_job(root, "sess1", transcript_lines("sess1", [("a", "b")]))
    _run(settings, env, FakeBackend(default=ENTRY))
    again = FakeBackend(default=ENTRY)
    result = _run(settings, env, again)
    assert result.appended == 0 and result.duplicates == 1 and again.calls == []
    assert _daily(root).count("memc:entry id=") == 1


def test_not_worth_saving_appends_nothing(settings, root):
    env = make_job(root, "s2", transcript_lines("s2", [("hi", "hello")]))
    fake = FakeBackend().enqueue({"worth_saving": False})
    result = _run(settings, env, fake)
    assert (result.appended, result.not_worth_saving) == (0, 1)
    assert not (root / "daily" / "2026-11-20.md").exists()
    # an entry marked worth saving but with nothing in it is treated the same way
    env2 = make_job(root, "s3", transcript_lines("s3", [("x", "y")]))
    assert _run(settings, env2, FakeBackend(default={"worth_saving": True})).not_worth_saving == 1


def test_big_delta_makes_several_calls_and_loses_no_turn_text(root):
    settings = load_settings(root, {"chunk_chars": 400})
    exchanges = [
        (f"question {i} token-U{i:03d} " + "q" * 60, f"answer {i} token-A{i:03d} " + "a" * 90)
        for i in range(40)
    ]
    env = make_job(root, "big", transcript_lines("big", exchanges))
    fake = FakeBackend(default=lambda req: {**ENTRY, "title": f"part {req.payload['chunk']}"})
    result = _run(settings, env, fake)
    n = len(fake.calls)
    assert n > 5 and result.chunks == n and result.appended == n
    assert [c.payload["chunk"] for c in fake.calls] == list(range(1, n + 1))
    assert {c.payload["chunks"] for c in fake.calls} == {n}
    sent = "\n".join(c.payload["transcript"] for c in fake.calls)
    for i in range(40):
        assert f"token-U{i:03d} " + "q" * 60 in sent and f"token-A{i:03d} " + "a" * 90 in sent
    assert all(len(c.payload["transcript"]) <= 400 for c in fake.calls)
    assert _daily(root).count("memc:entry id=") == n


def test_streamed_slices_cover_everything_and_match_chunk_ids(root):
    settings = load_settings(root, {"chunk_chars": 300})
    exchanges = [(f"ask {i} tok{i:03d}", f"reply {i} " + "r" * 50) for i in range(60)]
    env = make_job(root, "stream", transcript_lines("stream", exchanges))
    fake = FakeBackend(default=ENTRY)
    result = _run(settings, env, fake, slice_bytes=1024)
    assert {c.payload["chunks"] for c in fake.calls} == {None}  # total unknown while streaming
    sent = "\n".join(c.payload["transcript"] for c in fake.calls)
    assert all(f"ask {i} tok{i:03d}" in sent for i in range(60))
    assert result.appended == len(fake.calls)


SECRETS = [
    "sk-ant-api03-" + "Z9" * 20,
    "ghp_" + "a1B2" * 9,
    "hunter2-Secret-99",
    "AKIAIOSFODNN7EXAMPLE",
]


def test_secrets_never_reach_the_model_or_daily(settings, root):
    exchanges = [
        (f"my key is {SECRETS[0]} and token {SECRETS[1]}", "ok"),
        (f"export PASSWORD={SECRETS[2]}", f"aws key {SECRETS[3]} noted"),
        ("<private>my home address is 1 Secret Lane</private> please fix the tests", "fixed"),
        ("<private>starts here", "assistant text inside span"),
        ("still private TOPSECRET-SPAN</private> back to public", "sure"),
    ]
    env = make_job(root, "sec", transcript_lines("sec", exchanges))

    def echo(req):  # a model that repeats its input verbatim: the worst case for leaks
        return {
            **ENTRY,
            "context": req.payload["transcript"],
            "key_exchanges": [req.payload["transcript"]],
        }

    fake = FakeBackend(default=echo)
    _run(settings, env, fake)
    prompts = "".join(json.dumps(c.payload) + c.system_prompt for c in fake.calls)
    written = _daily(root)
    for needle in [*SECRETS, "1 Secret Lane", "assistant text inside span", "TOPSECRET-SPAN"]:
        assert needle not in prompts and needle not in written
    assert "[REDACTED:" in prompts and "please fix the tests" in prompts
    assert "back to public" in prompts


def test_sdk_sessions_are_never_distilled(settings, root):
    env = make_job(root, "sdk", transcript_lines("sdk", [("distil this", "{}")], sdk=True))
    fake = FakeBackend(default=ENTRY)
    result = _run(settings, env, fake)
    assert result.skipped == "sdk-session" and fake.calls == [] and _daily(root) == ""


def test_private_sessions_append_nothing(settings, root):
    env = make_job(root, "priv", transcript_lines("priv", [("secret plans", "ok")]))
    conn = state.connect(settings.paths.state_db)
    conn.execute("INSERT INTO private_sessions(session_id, at) VALUES('priv', 0)")
    fake = FakeBackend(default=ENTRY)
    assert _run(settings, env, fake).skipped == "private"
    assert fake.calls == [] and _daily(root) == ""


def test_budget_deferral_resumes_without_paying_twice(root):
    settings = load_settings(
        root, {"chunk_chars": 300, "daily_budget_usd": 0.025, "job_budget_share": 1.0}
    )
    exchanges = [(f"ask {i} " + "x" * 100, f"reply {i} " + "y" * 100) for i in range(12)]
    env = make_job(root, "budget", transcript_lines("budget", exchanges))
    # chunk 2 is not worth saving: only the progress record (not the entries table) can skip it
    fake = FakeBackend(
        default=lambda r: {"worth_saving": False} if r.payload["chunk"] == 2 else ENTRY,
        cost_usd=0.01,
    )
    with pytest.raises(BudgetDeferred):
        _run(settings, env, fake)
    assert len(fake.calls) == 3  # the 4th call is refused before it starts
    more = load_settings(root, {"chunk_chars": 9999, "daily_budget_usd": 100})  # changed setting
    fake2 = FakeBackend(default=ENTRY)
    result = _run(more, env, fake2)
    assert fake2.calls[0].payload["chunk"] == 4  # resumed at the refused chunk, old chunk size kept
    assert result.chunks == 3 + len(fake2.calls) and result.not_worth_saving == 1
    ids = [e.id for e in daily.read_entries(root / "daily", "2026-11-20")]
    assert len(ids) == len(set(ids)) == result.chunks - 1


def test_day_and_time_follow_the_configured_zone(root, monkeypatch):
    monkeypatch.setenv("MEMC_TZ", "America/Los_Angeles")
    settings = load_settings(root)
    env = make_job(
        root, "tz", transcript_lines("tz", [("a", "b")]), captured_at="2026-11-21T03:10:00+00:00"
    )
    _run(settings, env, FakeBackend(default=ENTRY))
    assert "### 19:10 · acme-api" in _daily(root, "2026-11-20")


def test_bad_capture_time_and_escaping_spool_are_errors(settings, root):
    env = make_job(root, "bad", transcript_lines("bad", [("a", "b")]), captured_at="yesterday")
    with pytest.raises(ValueError):
        _run(settings, env, FakeBackend(default=ENTRY))
    from dataclasses import replace

    evil = replace(make_job(root, "evil", b"{}\n"), spool="../../etc/passwd")
    with pytest.raises(PathRefused):
        _run(settings, evil, FakeBackend(default=ENTRY))


def test_stop_between_chunks_interrupts(root):
    settings = load_settings(root, {"chunk_chars": 300})
    env = make_job(
        root, "stop", transcript_lines("stop", [(f"q{i} " + "x" * 200, "ok") for i in range(5)])
    )
    fake = FakeBackend(default=ENTRY)
    calls = []
    with pytest.raises(distil.Interrupted):
        _run(settings, env, fake, stop=lambda: len(calls.append(1) or calls) > 2)
    assert len(fake.calls) == 2


def test_a_later_capture_is_told_what_the_session_already_saved(settings, root):
    first = make_job(
        root, "long", transcript_lines("long", [("fix the queue", "used locks")]), event="stop"
    )
    later = make_job(
        root,
        "long",
        transcript_lines("long", [("and the retries?", "backoff")]),
        start=10_000,
        captured_at="2026-11-20T15:02:05+00:00",
    )
    other = make_job(root, "other", transcript_lines("other", [("x", "y")]))
    fake = FakeBackend(default=ENTRY)
    for env in (first, later, other):
        _run(settings, env, fake)
    payloads = [c.payload for c in fake.calls]
    assert payloads[0]["earlier_entries"] == []
    assert payloads[1]["earlier_entries"] == [ENTRY["title"]]  # the Stop checkpoint's entry
    assert payloads[2]["earlier_entries"] == []  # another session's entries are not mixed in


def test_private_span_open_across_a_checkpoint_does_not_leak_into_the_next_job(root):
    settings = load_settings(root)
    first = transcript_lines("cp", [("plan: <private>the acquisition target is Initech", "ok")])
    env1 = make_job(root, "cp", first, captured_at="2026-11-20T14:00:00+00:00")
    second = transcript_lines("cp", [("Initech numbers</private> now the public part", "done")])
    env2 = make_job(root, "cp", second, start=len(first), captured_at="2026-11-20T14:05:00+00:00")
    fake = FakeBackend(default=ENTRY)
    _run(settings, env1, fake)
    _run(settings, env2, fake)
    prompts = [c.payload["transcript"] for c in fake.calls]
    assert all("Initech" not in p for p in prompts), prompts
    assert "now the public part" in prompts[-1]
    third = transcript_lines("cp", [("after the span closed", "ok")])
    env3 = make_job(root, "cp", third, start=len(first) + len(second))
    _run(settings, env3, fake)
    assert "after the span closed" in fake.calls[-1].payload["transcript"]
