"""`memc drain`: process every pending inbox job once, one at a time, then return.

Order: release dead claims (crash recovery), queue the idle tail of sessions closed without a
SessionEnd (``capture.capture_idle``), then claim -> distil -> complete/fail/release for
each pending envelope in name (capture-time) order, re-listing the inbox until nothing new is
left (so jobs captured during a drain are taken too, each at most once per drain), then prune old
spools, record kv ``last_drain_at`` (epoch seconds) and call the ``after_drain`` extension point.
A drain that took a job is one versioning batch: its daily appends become one commit
(``drain: 3 entries from 2 job(s) -> daily/2026-12-01.md``) when the root is versioned.

Invariants:
- Safe with concurrent drains, hooks and the watcher: claim-by-rename means one job, one worker;
  entry ids and the daily lock make a re-run after kill -9 append nothing twice.
- Outcomes per job: done (complete), failed (dead-lettered in inbox/failed/ with an error record:
  permanent or invalid model replies, transient errors after the retries, a broken spool or
  envelope, an unexpected bug), deferred (BudgetDeferred: released, drain stops), paused
  (CircuitOpen: released, drain stops), interrupted (``stop()``: released, drain stops).
- A job's row in ``jobs`` says its status, attempts, entries and a one-line detail; every outcome
  is one line in pipeline.log. Expected outcomes are in the returned ``DrainReport``, never raised.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import inbox, state, versioning
from pipeline.capture import capture_idle
from pipeline.config import Settings
from pipeline.errors import (
    AppendLost,
    BudgetDeferred,
    CircuitOpen,
    InvalidReplyError,
    LLMError,
    PathRefused,
    PermanentLLMError,
    TransientLLMError,
)
from pipeline.logs import pipeline_logger


@dataclass(frozen=True)
class JobFailure:
    id: str
    error_class: str
    message: str
    attempts: int


@dataclass(frozen=True)
class DrainReport:
    processed: int = 0
    done: int = 0
    failed: int = 0
    deferred: int = 0
    entries: int = 0
    not_worth_saving: int = 0
    cost_usd: float = 0.0
    released_dead: int = 0
    pruned_spools: int = 0
    stopped: str = ""  # why the drain stopped early ("" when it ran to the end)
    failures: tuple[JobFailure, ...] = field(default_factory=tuple)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"drained {self.processed} job(s): {self.done} done, {self.failed} failed, "
            f"{self.deferred} deferred; {self.entries} entr{'y' if self.entries == 1 else 'ies'}"
            f" appended, {self.not_worth_saving} not worth saving, ${self.cost_usd:.4f}"
        )
        return text + (f"; {self.stopped}" if self.stopped else "")


def after_drain(settings: Settings, report: DrainReport) -> None:
    """Extension point called at the end of every drain (and every watcher sweep).

    Runs ``compile --if-stale``: cheap when nothing is stale (one query on state.db), a no-op
    when another compile holds the lock. An exception is logged by the caller, never propagated.
    """
    from pipeline.compiler import run_compile

    result = run_compile(settings, if_stale=True)
    if result.status not in ("not-stale", "nothing"):
        pipeline_logger(settings.paths.logs).info("compile after drain: %s", result.message)


def _spent_text(settings: Settings, conn: sqlite3.Connection, at: float) -> str:
    try:
        from pipeline.llm.calls import spent_today

        spent = spent_today(conn, settings, at)
    except Exception:  # the ledger summary is cosmetic here
        return f"deferred: daily budget reached (${settings.daily_budget_usd:.2f})"
    return f"deferred: daily budget reached (${spent:.2f} of ${settings.daily_budget_usd:.2f})"


def _attempts(exc: BaseException, conn: sqlite3.Connection, job_id: str, since: float) -> int:
    """Model attempts behind a failure: this run's failed ledger rows for the job."""
    if not isinstance(exc, LLMError):
        return 0
    row = conn.execute(
        "SELECT count(*) FROM llm_calls WHERE ref LIKE ? AND at >= ? AND outcome != 'ok'",
        (f"{job_id}:%", since),
    ).fetchone()
    return max(1, int(row[0]))


def drain(
    settings: Settings,
    *,
    backend=None,
    now: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
    run_after: bool = True,
) -> DrainReport:
    """Process every pending job once; see the module docstring. ``now`` is a clock callable."""
    from pipeline import distil

    clock = now or time.time
    started = clock()
    paths = settings.paths
    log = pipeline_logger(paths.logs)
    conn = state.connect(paths.state_db)
    counts: dict[str, Any] = {
        "processed": 0,
        "done": 0,
        "failed": 0,
        "deferred": 0,
        "entries": 0,
        "not_worth_saving": 0,
        "cost_usd": 0.0,
        "stopped": "",
    }
    failures: list[JobFailure] = []
    seen: set[str] = set()
    commit = contextlib.ExitStack()  # one commit per drain, opened at its first job
    vb: versioning.Batch | None = None
    try:
        released = inbox.release_dead_claims(paths, now=started)
        if released:
            log.info("drain: returned %d claim(s) of dead workers to the inbox", released)
        idle = [r for r in capture_idle(settings, now=started) if r.status == "queued"]
        if idle:
            log.info(
                "drain: queued the idle tail of %d session(s) closed without SessionEnd", len(idle)
            )
        while not counts["stopped"]:
            fresh = [p for p in inbox.pending(paths) if p.name not in seen]
            if not fresh:
                break
            for path in fresh:
                if stop():
                    counts["stopped"] = "stopped: shutdown requested"
                    break
                seen.add(path.name)
                job = inbox.claim(paths, path, now=clock())
                if job is None:  # another worker took it, or it was malformed (now in failed/)
                    _note_malformed(paths, path.name, log, counts, failures)
                    continue
                if backend is None:
                    from pipeline.llm.base import make_backend

                    backend = make_backend(settings)
                if vb is None:
                    vb = commit.enter_context(versioning.batch(settings, "drain", ("daily",)))
                    vb.name_paths = True
                counts["processed"] += 1
                _run_one(
                    settings,
                    job,
                    backend=backend,
                    conn=conn,
                    clock=clock,
                    sleep=sleep,
                    stop=stop,
                    log=log,
                    counts=counts,
                    failures=failures,
                    distil=distil,
                )
                if counts["stopped"]:
                    break
        pruned = inbox.prune_spools(paths, conn, settings.spool_keep_days, now=clock())
        state.kv_set(conn, "last_drain_at", repr(clock()), now=clock())
    finally:
        try:
            if vb is not None:
                vb.subject = f"drain: {counts['entries']} entries from {counts['done']} job(s)"
            commit.close()
        finally:
            conn.close()
    report = DrainReport(
        released_dead=released,
        pruned_spools=pruned,
        failures=tuple(failures),
        duration_s=round(max(0.0, clock() - started), 3),
        **counts,
    )
    if report.processed or report.stopped:
        log.info("drain: %s", report.summary())
    if run_after:
        try:
            after_drain(settings, report)
        except Exception as exc:  # an extension must never turn a drain into a crash
            log.exception("after_drain failed: %s", exc)
    return report


def _note_malformed(paths, name: str, log, counts: dict, failures: list) -> None:
    if not (paths.failed / name).exists():
        return
    info = next((f for f in inbox.failed_jobs(paths) if f.file_name == name), None)
    if info is None or info.error_class != inbox.MALFORMED:
        return
    counts["failed"] += 1
    failures.append(JobFailure(info.id, info.error_class, info.message, 0))
    log.warning("inbox file %s is malformed, moved to failed/: %s", name, info.message)


def _run_one(
    settings: Settings,
    job: inbox.Claim,
    *,
    backend,
    conn,
    clock,
    sleep,
    stop,
    log,
    counts: dict,
    failures: list,
    distil,
) -> None:
    paths = settings.paths
    env = job.envelope
    since = clock()
    inbox.record_job(conn, env, "running", now=since, attempt=True)
    try:
        result = distil.distil_job(
            settings, env, backend=backend, conn=conn, now=clock, sleep=sleep, stop=stop
        )
    except BudgetDeferred as exc:
        inbox.release(paths, job)
        counts["deferred"] += 1
        counts["stopped"] = _spent_text(settings, conn, clock())
        inbox.record_job(conn, env, "deferred", now=clock(), detail=str(exc)[:500])
        log.info("job %s deferred: %s", env.id, exc)
    except KeyboardInterrupt:  # Ctrl-C: the job goes back to the inbox now, not at the next drain
        inbox.release(paths, job)
        inbox.record_job(conn, env, "queued", now=clock(), detail="interrupted (Ctrl-C)")
        log.info("job %s released: interrupted", env.id)
        raise
    except (CircuitOpen, distil.Interrupted) as exc:
        inbox.release(paths, job)
        counts["deferred"] += 1
        paused = isinstance(exc, CircuitOpen)
        counts["stopped"] = f"paused: {exc}" if paused else "stopped: shutdown requested"
        inbox.record_job(conn, env, "queued", now=clock(), detail=str(exc)[:500])
        log.info("job %s released: %s", env.id, exc)
    except (PermanentLLMError, InvalidReplyError, TransientLLMError, LLMError) as exc:
        _fail(
            paths,
            job,
            exc,
            type(exc).__name__,
            conn,
            clock,
            log,
            counts,
            failures,
            since=since,
            stderr_tail=exc.stderr_tail,
        )
    except FileNotFoundError as exc:
        _fail(
            paths,
            job,
            exc,
            "BrokenJob",
            conn,
            clock,
            log,
            counts,
            failures,
            since=since,
            hint=f"the spool {env.spool} is gone, so this range cannot be distilled and "
            "`memc retry` would fail it again; the capture cursor is already past it, so "
            "delete the job from inbox/failed/",
        )
    except AppendLost as exc:  # an editor kept replacing the daily file: retry appends it
        _fail(paths, job, exc, "AppendLost", conn, clock, log, counts, failures, since=since)
    except (ValueError, OSError, PathRefused) as exc:
        _fail(
            paths,
            job,
            exc,
            "BrokenJob",
            conn,
            clock,
            log,
            counts,
            failures,
            since=since,
            hint="inspect the envelope and its spool; `memc retry` once fixed",
        )
    except Exception as exc:  # a bug must dead-letter one job, not wedge the whole queue
        log.exception("job %s crashed the distil step", env.id)
        _fail(
            paths,
            job,
            exc,
            type(exc).__name__,
            conn,
            clock,
            log,
            counts,
            failures,
            since=since,
            hint="this is a bug in memc (traceback in pipeline.log); `memc retry` after upgrading",
        )
    else:
        inbox.complete(
            paths, job, conn=conn, entries=result.appended, detail=result.summary(), now=clock()
        )
        counts["done"] += 1
        counts["entries"] += result.appended
        counts["not_worth_saving"] += result.not_worth_saving
        counts["cost_usd"] = round(counts["cost_usd"] + result.cost_usd, 6)
        log.info("job %s done: %s", env.id, result.summary())


def _fail(
    paths,
    job: inbox.Claim,
    exc: BaseException,
    error_class: str,
    conn,
    clock,
    log,
    counts: dict,
    failures: list,
    *,
    since: float,
    stderr_tail: str = "",
    hint: str = "",
) -> None:
    """Dead-letter the job. Its distil progress is kept, so `memc retry` resumes at the chunk
    that failed instead of paying again for the earlier ones."""
    message = str(exc) or error_class
    if hint:
        message = f"{message} ({hint})"
    attempts = _attempts(exc, conn, job.id, since)
    inbox.fail(
        paths,
        job,
        error_class=error_class,
        message=message,
        attempts=attempts,
        stderr_tail=stderr_tail,
        now=clock(),
        conn=conn,
    )
    counts["failed"] += 1
    failures.append(JobFailure(job.id, error_class, message, attempts))
    log.warning("job %s failed (%s): %s", job.id, error_class, message)
