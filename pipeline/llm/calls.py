"""Every model call goes through ``call``: budget, circuit breaker, retry, validation, ledger.

Order of one ``call``:
1. budget: today's spend (``llm_calls.day`` in MEMC_TZ) at or over ``daily_budget_usd`` ->
   ``BudgetDeferred`` before anything is spent (a budget of 0 therefore allows no model calls);
   a distil job that spent ``job_budget_share`` of today's budget -> ``JobBudgetDeferred`` (that
   job waits for tomorrow, the others go on: one huge session cannot starve the small ones);
2. circuit breaker: kv ``breaker_open_until`` in the future -> ``CircuitOpen``;
3. tenacity retry of ``TransientLLMError`` only: jittered exponential backoff
   (``wait_random_exponential(multiplier=1, max=60)``), at most ``llm_max_attempts`` attempts and
   never sleeping past ``llm_max_retry_s`` since the first one (measured on the injected clock);
   permanent errors fail at once;
4. the reply is validated against ``request.schema``; a non-JSON or non-matching reply gets ONE
   repair attempt (the payload gains ``_repair`` with the bad reply and the validation error),
   then ``InvalidReplyError``;
5. every attempt, failed or not, is one ``llm_calls`` row with its cost and outcome
   (ok / transient / permanent / invalid);
6. a call whose transient retries ran out counts one consecutive failure in kv
   ``breaker_failures``; at ``breaker_failures`` the breaker opens for ``breaker_pause_min``; any
   success closes it and resets the count. While the count stays at the threshold, one more
   exhausted call after a pause re-opens it at once (half-open).
Budget and breaker are skipped for the ``extractive`` backend, which costs nothing and calls no
service. ``sleep`` and ``clock`` are injectable so tests never sleep.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from pipeline.config import Settings
from pipeline.errors import (
    BudgetDeferred,
    CircuitOpen,
    InvalidReplyError,
    JobBudgetDeferred,
    LLMError,
    TransientLLMError,
)
from pipeline.llm.base import Backend, LLMReply, LLMRequest, Usage
from pipeline.llm.replies import repair_request, validation_error
from pipeline.state import kv_get, kv_set

BREAKER_UNTIL = "breaker_open_until"
# what to do after a reply that stayed invalid: only distil runs as an inbox job that `retry` moves
AGAIN = {
    "distil": "the job fails and can be retried with `memc retry`",
    "compile": "nothing was written; run `memc compile` again",
    "query": "ask again, perhaps worded differently",
    "lint": "run `memc lint` again",
}
BREAKER_COUNT = "breaker_failures"
FREE_BACKENDS = ("extractive",)


def spent_today(conn: sqlite3.Connection, settings: Settings, now: float | None = None) -> float:
    """Sum of ``cost_usd`` over today's ledger rows (today in MEMC_TZ)."""
    day = settings.day_of(time.time() if now is None else now)
    row = conn.execute(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE day=?", (day,)
    ).fetchone()
    return float(row[0])


def ledger_summary(
    conn: sqlite3.Connection, settings: Settings, now: float | None = None
) -> dict[str, Any]:
    """Today's spend, budget, attempts by task and outcome, breaker state: for `memc status`."""
    at = time.time() if now is None else now
    day = settings.day_of(at)
    by_task: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, int] = {}
    for row in conn.execute(
        "SELECT task, outcome, COUNT(*), COALESCE(SUM(cost_usd),0), COALESCE(SUM(input_tokens),0), "
        "COALESCE(SUM(output_tokens),0) FROM llm_calls WHERE day=? GROUP BY task, outcome",
        (day,),
    ):
        task, outcome, count, cost, tok_in, tok_out = row
        slot = by_task.setdefault(
            task,
            {
                "calls": 0,
                "cost_usd": 0.0,
                "failed_attempts": 0,
                "input_tokens": 0,
                "output_tokens": 0,
            },
        )
        slot["calls"] += count
        slot["cost_usd"] = round(slot["cost_usd"] + cost, 6)
        slot["input_tokens"] += tok_in
        slot["output_tokens"] += tok_out
        if outcome != "ok":
            slot["failed_attempts"] += count
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    spent = round(sum(t["cost_usd"] for t in by_task.values()), 6)
    return {
        "day": day,
        "spent_usd": spent,
        "budget_usd": settings.daily_budget_usd,
        "remaining_usd": round(max(0.0, settings.daily_budget_usd - spent), 6),
        "budget_reached": spent >= settings.daily_budget_usd,
        "attempts": sum(outcomes.values()),
        "by_outcome": outcomes,
        "by_task": by_task,
        "breaker_open_until": breaker_until(conn, settings, at),
        "consecutive_transient_failures": int(kv_get(conn, BREAKER_COUNT, "0") or 0),
    }


def record(
    conn: sqlite3.Connection,
    settings: Settings,
    *,
    at: float,
    task: str,
    backend: str,
    model: str,
    usage: Usage,
    cost_usd: float,
    duration_s: float,
    outcome: str,
    ref: str,
) -> None:
    conn.execute(
        "INSERT INTO llm_calls(at, day, task, backend, model, input_tokens, output_tokens, "
        "cost_usd, duration_s, outcome, ref) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        (
            at,
            settings.day_of(at),
            task,
            backend,
            model or "",
            usage.input_tokens,
            usage.output_tokens,
            cost_usd,
            duration_s,
            outcome,
            ref,
        ),
    )


def check_job_share(conn: sqlite3.Connection, settings: Settings, job: str, now: float) -> None:
    """Raise JobBudgetDeferred when distil job ``job`` spent its share of today's budget."""
    share = settings.job_budget_share * settings.daily_budget_usd
    prefix = job + ":"  # distil refs are "<job id>:<chunk>"
    row = conn.execute(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE day=? AND task='distil' "
        "AND substr(ref, 1, ?) = ?",
        (settings.day_of(now), len(prefix), prefix),
    ).fetchone()
    if row[0] >= share > 0:
        raise JobBudgetDeferred(
            f"job {job} spent ${row[0]:.4f} today, its share ({settings.job_budget_share:g} of the "
            f"${settings.daily_budget_usd:.2f} daily budget); it continues tomorrow where it "
            "stopped, while the other jobs go on (raise job_budget_share in .memc/config.toml)"
        )


def check_budget(conn: sqlite3.Connection, settings: Settings, now: float) -> None:
    spent = spent_today(conn, settings, now)
    if spent >= settings.daily_budget_usd:
        # Said by drain, compile, query and lint alike: no word about "the job" here.
        if settings.daily_budget_usd <= 0:
            raise BudgetDeferred(
                "the daily budget is $0.00, which allows no model calls at all (raise "
                "MEMC_DAILY_BUDGET_USD or daily_budget_usd in .memc/config.toml, or use "
                "MEMC_BACKEND=extractive to work without a model)"
            )
        raise BudgetDeferred(
            f"today's model spend ${spent:.4f} reached the daily budget "
            f"${settings.daily_budget_usd:.2f}; model calls resume tomorrow "
            "(raise MEMC_DAILY_BUDGET_USD or daily_budget_usd in .memc/config.toml to continue now)"
        )


def breaker_until(conn: sqlite3.Connection, settings: Settings, now: float) -> float | None:
    """When the breaker's pause ends, or None when it is closed.

    An end further away than one full pause was stored while the clock ran ahead: it says
    nothing true, so the breaker counts as closed (the next failure opens it again, on the
    corrected clock) instead of pausing model calls for as long as the clock was wrong."""
    try:
        until = float(kv_get(conn, BREAKER_UNTIL, "0") or 0)
    except ValueError:
        return None
    if until <= now or until > now + settings.breaker_pause_min * 60:
        return None
    return until


def check_breaker(conn: sqlite3.Connection, settings: Settings, now: float) -> None:
    """Raise CircuitOpen while the breaker's pause lasts."""
    until = breaker_until(conn, settings, now)
    if until is not None:
        raise CircuitOpen(
            f"model calls are paused for {until - now:.0f}s more after repeated transient failures "
            "(see .memc/logs/pipeline.log); jobs stay pending and resume by themselves"
        )


def _note_exhausted(conn: sqlite3.Connection, settings: Settings, now: float, log: Any) -> None:
    conn.execute(
        "INSERT INTO kv(key, value, updated_at) VALUES(?, '1', ?) ON CONFLICT(key) DO UPDATE SET "
        "value=CAST(CAST(value AS INTEGER) + 1 AS TEXT), updated_at=excluded.updated_at",
        (BREAKER_COUNT, now),
    )
    count = int(kv_get(conn, BREAKER_COUNT, "0") or 0)
    if settings.breaker_failures and count >= settings.breaker_failures:
        until = now + settings.breaker_pause_min * 60
        kv_set(conn, BREAKER_UNTIL, repr(until), now=now)
        log.warning(
            "circuit breaker open: %d calls in a row failed transiently; pausing model "
            "calls for %.0f min",
            count,
            settings.breaker_pause_min,
        )


def _note_success(conn: sqlite3.Connection, now: float) -> None:
    if kv_get(conn, BREAKER_COUNT, "0") != "0" or kv_get(conn, BREAKER_UNTIL, "0") != "0":
        kv_set(conn, BREAKER_COUNT, "0", now=now)
        kv_set(conn, BREAKER_UNTIL, "0", now=now)


def call(
    settings: Settings,
    backend: Backend,
    request: LLMRequest,
    *,
    conn: sqlite3.Connection,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> LLMReply:
    """Run one model call under the budget, breaker, retry, validation and ledger rules above."""
    from pipeline.logs import pipeline_logger

    log = pipeline_logger(settings.paths.logs)
    free = backend.name in FREE_BACKENDS
    if not free:
        check_budget(conn, settings, clock())
        if request.task == "distil" and ":" in request.ref:
            check_job_share(conn, settings, request.ref.rsplit(":", 1)[0], clock())
        check_breaker(conn, settings, clock())
    attempts = 0

    def attempt(req: LLMRequest) -> LLMReply:
        nonlocal attempts
        if attempts and not free:
            check_budget(conn, settings, clock())  # a retry or repair is spending too
        attempts += 1
        started = clock()
        try:
            reply = backend.run(req)
        except LLMError as exc:
            outcome = (
                "transient"
                if isinstance(exc, TransientLLMError)
                else "invalid"
                if isinstance(exc, InvalidReplyError)
                else "permanent"
            )
            record(
                conn,
                settings,
                at=started,
                task=req.task,
                backend=backend.name,
                model=exc.model or req.model,
                usage=exc.usage or Usage(),
                cost_usd=exc.cost_usd,
                duration_s=max(0.0, clock() - started),
                outcome=outcome,
                ref=req.ref,
            )
            log.info(
                "llm %s attempt %d (%s) failed: %s: %s",
                req.task,
                attempts,
                backend.name,
                outcome,
                exc,
            )
            raise
        problem = validation_error(reply.data, req.schema)
        record(
            conn,
            settings,
            at=started,
            task=req.task,
            backend=backend.name,
            model=reply.model or req.model,
            usage=reply.usage,
            cost_usd=reply.cost_usd,
            duration_s=reply.duration_s or max(0.0, clock() - started),
            outcome="ok" if problem is None else "invalid",
            ref=req.ref,
        )
        if problem is not None:
            try:
                bad = reply.raw_text or json.dumps(reply.data, ensure_ascii=False)
            except (RecursionError, ValueError, TypeError):
                bad = "(a reply that cannot be shown: nested too deeply or not JSON)"
            raise InvalidReplyError(
                f"the {req.task} reply does not match its schema ({problem})", raw_text=bad
            )
        return reply

    def with_retry(req: LLMRequest) -> LLMReply:
        try:
            return _retrying(settings, sleep, clock, log, req.task)(attempt, req)
        except TransientLLMError:
            _note_exhausted(conn, settings, clock(), log)
            raise

    try:
        reply = with_retry(request)
    except InvalidReplyError as first:
        bad = first.raw_text
        try:
            reply = with_retry(repair_request(request, bad, str(first)))
        except InvalidReplyError as second:
            raise InvalidReplyError(
                f"the model's {request.task} reply was invalid twice (last: {second}); "
                + AGAIN.get(request.task, "try again"),
                stderr_tail=second.stderr_tail,
            ) from second
    if not free:
        _note_success(conn, clock())
    return dataclasses.replace(reply, attempts=attempts)


def _retrying(
    settings: Settings,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    log: Any,
    task: str,
):
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_random_exponential,
    )
    from tenacity.stop import stop_base

    started = clock()

    class out_of_time(stop_base):
        # tenacity's stop_after_delay reads time.monotonic(); this reads the injected clock and
        # also refuses a sleep that would end past the limit.
        def __call__(self, retry_state: Any) -> bool:
            waited = clock() - started + (retry_state.upcoming_sleep or 0.0)
            return waited > settings.llm_max_retry_s

    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "llm %s: transient failure on attempt %d (%s); retrying in %.1fs",
            task,
            state.attempt_number,
            exc,
            state.upcoming_sleep,
        )

    return Retrying(
        retry=retry_if_exception_type(TransientLLMError),
        wait=wait_random_exponential(multiplier=1, max=60),
        stop=stop_after_attempt(max(1, settings.llm_max_attempts)) | out_of_time(),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
