"""pipeline.llm.calls: retry schedule, budget deferral, circuit breaker, repair, ledger.

The backend is tests/fakes.py FakeBackend (the LLM seam); time and sleep are injected.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline import state
from pipeline.config import load_settings
from pipeline.errors import (
    BudgetDeferred,
    CircuitOpen,
    InvalidReplyError,
    PermanentLLMError,
    TransientLLMError,
)
from pipeline.llm import calls
from pipeline.llm.base import LLMRequest, load_schema
from pipeline.llm.extractive import ExtractiveBackend
from pipeline.state import connect, kv_get
from tests.fakes import FakeBackend

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()
OK = {"worth_saving": False}


class Clock:
    """now() and sleep() over one fake timeline: sleeping advances the clock."""

    def __init__(self, start: float = NOON):
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def conn(settings):
    c = connect(settings.paths.state_db)
    yield c
    c.close()


def _settings(root, **over):
    return load_settings(root, overrides=over)


def _request(**kw) -> LLMRequest:
    base = {
        "task": "distil",
        "payload": {"transcript": "User: hi"},
        "schema": load_schema("distil"),
        "model": "haiku",
        "ref": "job-x",
    }
    base.update(kw)
    return LLMRequest(**base)


def _outcomes(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT outcome FROM llm_calls ORDER BY id")]


def test_retry_schedule_is_jittered_exponential_and_bounded(settings, conn):
    backend = FakeBackend().enqueue(*[TransientLLMError("429")] * 3, OK)
    clock = Clock()
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert reply.attempts == 4 and reply.data == OK
    assert len(clock.slept) == 3
    for attempt, wait in enumerate(clock.slept, start=1):
        assert 0 <= wait <= min(60, 2 ** (attempt - 1))
    assert _outcomes(conn) == ["transient"] * 3 + ["ok"]


def test_attempts_exhausted_raises_last_transient(settings, conn):
    backend = FakeBackend().enqueue(*[TransientLLMError(f"boom {i}") for i in range(6)])
    clock = Clock()
    with pytest.raises(TransientLLMError, match="boom 3"):
        calls.call(settings, backend, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert len(backend.calls) == settings.llm_max_attempts == 4
    assert len(clock.slept) == 3
    assert kv_get(conn, "breaker_failures") == "1"


def test_total_retry_time_is_bounded_on_the_injected_clock(root, conn):
    settings = _settings(root, llm_max_attempts=50, llm_max_retry_s=5)
    backend = FakeBackend().enqueue(*[TransientLLMError("slow")] * 50)
    clock = Clock()
    with pytest.raises(TransientLLMError):
        calls.call(settings, backend, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert sum(clock.slept) <= 5
    assert len(backend.calls) < 50


def test_permanent_fails_at_once(settings, conn):
    backend = FakeBackend().enqueue(PermanentLLMError("401"), OK)
    with pytest.raises(PermanentLLMError):
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert len(backend.calls) == 1 and _outcomes(conn) == ["permanent"]


def test_invalid_reply_gets_one_repair_with_the_error(settings, conn):
    backend = FakeBackend().enqueue({"worth_saving": "maybe"}, OK)
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert reply.data == OK and reply.attempts == 2
    repair = backend.calls[1].payload["_repair"]
    assert "worth_saving" in repair["error"] and "maybe" in repair["previous_reply"]
    assert backend.calls[1].payload["transcript"] == "User: hi"
    assert _outcomes(conn) == ["invalid", "ok"]


def test_invalid_twice_raises_invalid_reply(settings, conn):
    backend = FakeBackend().enqueue({"nope": 1}, InvalidReplyError("not json"), OK)
    with pytest.raises(InvalidReplyError, match="invalid twice"):
        calls.call(settings, backend, _request(), conn=conn, sleep=pytest.fail)
    assert len(backend.calls) == 2


def test_transient_during_repair_is_retried(settings, conn):
    backend = FakeBackend().enqueue({"nope": 1}, TransientLLMError("529"), OK)
    clock = Clock()
    reply = calls.call(settings, backend, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert reply.attempts == 3 and len(clock.slept) == 1
    assert _outcomes(conn) == ["invalid", "transient", "ok"]


def test_budget_reached_defers_before_calling(root, conn):
    settings = _settings(root, daily_budget_usd=0.05)
    backend = FakeBackend(default=OK, cost_usd=0.03)
    clock = Clock()
    calls.call(settings, backend, _request(), conn=conn, clock=clock.now)
    calls.call(settings, backend, _request(), conn=conn, clock=clock.now)  # 0.03 < 0.05: allowed
    with pytest.raises(BudgetDeferred) as info:
        calls.call(settings, backend, _request(), conn=conn, clock=clock.now)
    assert len(backend.calls) == 2
    assert "$0.0600" in str(info.value) and "MEMC_DAILY_BUDGET_USD" in str(info.value)
    clock.t += 86_400  # tomorrow: the budget is fresh
    calls.call(settings, backend, _request(), conn=conn, clock=clock.now)
    assert len(backend.calls) == 3


def test_budget_is_checked_again_before_a_retry(root, conn):
    settings = _settings(root, daily_budget_usd=0.05)
    backend = FakeBackend(default=OK)
    # the failed attempt was billed and crossed the budget
    failing = TransientLLMError("529 overloaded", cost_usd=0.06)
    backend.enqueue(failing)
    clock = Clock()
    with pytest.raises(BudgetDeferred):
        calls.call(settings, backend, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert len(backend.calls) == 1  # no retry once the budget is spent
    assert _outcomes(conn) == ["transient"]


def test_budget_day_follows_memc_tz(root, conn, monkeypatch):
    monkeypatch.setenv("MEMC_TZ", "America/New_York")
    settings = _settings(root, daily_budget_usd=1.0)
    late_utc = datetime(2026, 11, 21, 2, 0, tzinfo=UTC).timestamp()  # 21:00 on the 20th NY
    calls.record(
        conn,
        settings,
        at=late_utc,
        task="distil",
        backend="fake",
        model="m",
        usage=calls.Usage(),
        cost_usd=1.0,
        duration_s=0,
        outcome="ok",
        ref="",
    )
    assert calls.spent_today(conn, settings, now=NOON) == 1.0  # noon UTC on the 20th = NY 20th
    next_morning_ny = datetime(2026, 11, 21, 14, 0, tzinfo=UTC).timestamp()
    assert calls.spent_today(conn, settings, now=next_morning_ny) == 0.0


def test_extractive_backend_ignores_budget(root, conn):
    settings = _settings(root, daily_budget_usd=0)
    reply = calls.call(settings, ExtractiveBackend(), _request(), conn=conn)
    assert reply.backend == "extractive" and reply.cost_usd == 0
    assert _outcomes(conn) == ["ok"]


def test_circuit_breaker_opens_pauses_and_resets(root, conn):
    settings = _settings(root, breaker_failures=2, breaker_pause_min=10, llm_max_attempts=2)
    clock = Clock()
    failing = FakeBackend().enqueue(*[TransientLLMError("503")] * 4)
    for _ in range(2):
        with pytest.raises(TransientLLMError):
            calls.call(settings, failing, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    opened_at = clock.t
    assert float(kv_get(conn, "breaker_open_until")) == pytest.approx(opened_at + 600)
    healthy = FakeBackend(default=OK)
    with pytest.raises(CircuitOpen, match="paused"):
        calls.call(settings, healthy, _request(), conn=conn, clock=clock.now)
    assert healthy.calls == []
    summary = calls.ledger_summary(conn, settings, now=clock.now())
    assert summary["breaker_open_until"] == pytest.approx(opened_at + 600)
    clock.t = opened_at + 601
    calls.call(settings, healthy, _request(), conn=conn, clock=clock.now)
    assert kv_get(conn, "breaker_failures") == "0"
    assert calls.ledger_summary(conn, settings, now=clock.now())["breaker_open_until"] is None


def test_breaker_set_while_the_clock_ran_a_year_ahead_ends_on_time(root, conn):
    settings = _settings(root, breaker_failures=2, breaker_pause_min=10, llm_max_attempts=2)
    clock = Clock()
    year = 365 * 86400
    clock.t += year  # the clock runs a year ahead while the breaker opens
    failing = FakeBackend().enqueue(*[TransientLLMError("503")] * 4)
    for _ in range(2):
        with pytest.raises(TransientLLMError):
            calls.call(settings, failing, _request(), conn=conn, sleep=clock.sleep, clock=clock.now)
    assert calls.ledger_summary(conn, settings, now=clock.now())["breaker_open_until"]
    clock.t -= year  # corrected
    assert calls.ledger_summary(conn, settings, now=clock.now())["breaker_open_until"] is None
    healthy = FakeBackend(default=OK)
    calls.call(settings, healthy, _request(), conn=conn, clock=clock.now)
    assert len(healthy.calls) == 1


def test_breaker_reopens_at_once_when_still_failing_after_pause(root, conn):
    settings = _settings(root, breaker_failures=1, breaker_pause_min=1, llm_max_attempts=1)
    clock = Clock()
    failing = FakeBackend().enqueue(TransientLLMError("a"), TransientLLMError("b"))
    with pytest.raises(TransientLLMError):
        calls.call(settings, failing, _request(), conn=conn, clock=clock.now)
    clock.t += 61
    with pytest.raises(TransientLLMError):
        calls.call(settings, failing, _request(), conn=conn, clock=clock.now)
    with pytest.raises(CircuitOpen):
        calls.call(settings, failing, _request(), conn=conn, clock=clock.now)


def test_permanent_failures_do_not_trip_the_breaker(root, conn):
    settings = _settings(root, breaker_failures=1)
    backend = FakeBackend().enqueue(PermanentLLMError("auth"), OK)
    with pytest.raises(PermanentLLMError):
        calls.call(settings, backend, _request(), conn=conn)
    calls.call(settings, backend, _request(), conn=conn)


def test_ledger_summary_groups_today_by_task(settings, conn):
    clock = Clock()
    backend = FakeBackend(default=OK, cost_usd=0.25)
    calls.call(settings, backend, _request(), conn=conn, clock=clock.now)
    calls.call(
        settings,
        backend,
        _request(task="query", schema={"type": "object"}),
        conn=conn,
        clock=clock.now,
    )
    with pytest.raises(PermanentLLMError):
        calls.call(
            settings,
            FakeBackend().enqueue(PermanentLLMError("x")),
            _request(),
            conn=conn,
            clock=clock.now,
        )
    summary = calls.ledger_summary(conn, settings, now=clock.now())
    assert summary["day"] == "2026-11-20"
    assert summary["spent_usd"] == pytest.approx(0.5)
    assert summary["remaining_usd"] == pytest.approx(settings.daily_budget_usd - 0.5)
    assert summary["by_task"]["distil"]["calls"] == 2
    assert summary["by_task"]["distil"]["failed_attempts"] == 1
    assert summary["by_task"]["query"]["cost_usd"] == pytest.approx(0.25)
    assert summary["by_outcome"] == {"ok": 2, "permanent": 1}
    assert summary["budget_reached"] is False


def test_retries_are_logged_to_pipeline_log(settings, conn):
    backend = FakeBackend().enqueue(TransientLLMError("flaky"), OK)
    calls.call(settings, backend, _request(), conn=conn, sleep=lambda s: None)
    text = (settings.paths.logs / "pipeline.log").read_text()
    assert "transient failure on attempt 1" in text and "flaky" in text


@pytest.mark.parametrize(
    ("task", "hint"),
    [("distil", "memc retry"), ("query", "ask again"), ("compile", "memc compile")],
)
def test_an_invalid_reply_hint_fits_the_command(settings, conn, task, hint):
    backend = FakeBackend().enqueue({"nope": 1}, InvalidReplyError("not json"))
    with pytest.raises(InvalidReplyError) as caught:
        calls.call(settings, backend, _request(task=task), conn=conn, sleep=pytest.fail)
    assert hint in str(caught.value)
    assert task == "distil" or "memc retry" not in str(caught.value)


# --- budget: "the job stays pending" was said by query/compile/lint; budget 0 read as "reached" ---


def _spend(settings, usd: float) -> None:

    conn = state.connect(settings.paths.state_db)
    conn.execute(
        "INSERT INTO llm_calls(at, day, task, backend, cost_usd, outcome) VALUES(?,?,?,?,?,?)",
        (1.0, settings.day_of(__import__("time").time()), "distil", "claude", usd, "ok"),
    )
    conn.close()


def test_budget_message_fits_every_command_and_explains_a_zero_budget(root):
    from pipeline.errors import BudgetDeferred
    from pipeline.llm.calls import check_budget

    for budget, expected in (
        (0.0, "allows no model calls at all"),
        (0.01, "model calls resume tomorrow"),
    ):
        settings = load_settings(root, {"daily_budget_usd": budget})
        _spend(settings, 0.0 if budget == 0 else 0.02)
        conn = state.connect(settings.paths.state_db)
        try:
            check_budget(conn, settings, __import__("time").time())
            raise AssertionError("no BudgetDeferred")
        except BudgetDeferred as exc:
            assert expected in str(exc) and "the job" not in str(exc)
            assert "MEMC_DAILY_BUDGET_USD" in str(exc)
        finally:
            conn.close()
