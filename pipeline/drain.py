"""`memc drain`: process every pending inbox job once, one at a time, then return.

Order: release dead claims (crash recovery), queue the idle tail of sessions closed without a
SessionEnd (``idle.capture_idle``), then claim -> distil -> complete/fail/release for
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
  envelope, a path refused by the guard, an unexpected bug), deferred (BudgetDeferred, or a full
  disk, ENOSPC/EDQUOT: released with its progress, drain stops; JobBudgetDeferred: this job's
  share of the day is spent, released, the drain goes on; LockBusy: the day's log stayed locked
  for ``lock_wait_s``, by a process stopped with Ctrl-Z most likely, released, drain stops and
  says so), paused (CircuitOpen: released, drain stops), interrupted (``stop()``: released,
  drain stops). No lock is waited on without a bound, so a stopped holder never wedges drains.
- A job's row in ``jobs`` says its status, attempts, entries and a one-line detail; every outcome
  is one line in pipeline.log. Expected outcomes are in the returned ``DrainReport``, never raised:
  each job yields a frozen ``JobOutcome`` and ``fold`` sums them into the report.
- One clock (``clock``, a callable) times every step, the ``compile --if-stale`` after it too.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import time
from collections.abc import Callable

from pipeline import daily, inbox, spool, state, versioning
from pipeline.config import Settings
from pipeline.cursor import settle_all
from pipeline.drainreport import DrainReport, JobFailure, JobOutcome, fold
from pipeline.errors import (
    AppendLost,
    BudgetDeferred,
    CircuitOpen,
    Interrupted,
    JobBudgetDeferred,
    LLMError,
    LockBusy,
    PathRefused,
)
from pipeline.idle import capture_idle
from pipeline.logs import pipeline_logger
from pipeline.reclaim import release_dead_claims


def after_drain(
    settings: Settings, report: DrainReport, *, clock: Callable[[], float] = time.time
) -> None:
    """Extension point called at the end of every drain (and every watcher sweep).

    Runs ``compile --if-stale`` on the drain's clock: cheap when nothing is stale (one query on
    state.db), a no-op when another compile holds the lock. An exception is logged by the
    caller, never propagated.
    """
    from pipeline.compiler import run_compile

    result = run_compile(settings, if_stale=True, clock=clock)
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
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
    run_after: bool = True,
    daily_write: Callable[[int, bytes], int] | None = None,
    lock_wait_s: float = daily.LOCK_WAIT_S,
) -> DrainReport:
    """Process every pending job once; see the module docstring. ``clock`` gives the time for
    every step, the compile after the drain included; ``daily_write`` and ``lock_wait_s`` (the
    longest wait for a day's log lock): ``daily.append_entry``."""
    started = clock()
    paths = settings.paths
    log = pipeline_logger(paths.logs)
    conn = state.connect(paths.state_db)
    outcomes: list[JobOutcome] = []
    stopped = ""
    seen: set[str] = set()
    commit = contextlib.ExitStack()  # one commit per drain, opened at its first job
    vb: versioning.Batch | None = None
    try:
        if not settings.host:  # roots made before hosts were pinned (pipeline.hostname)
            from pipeline.hostname import pin

            pin(paths.memc)
        released = release_dead_claims(paths, now=started)
        if released:
            log.info("drain: returned %d claim(s) of dead workers to the inbox", released)
        settled = settle_all(paths, now=started)
        if settled:
            log.info(
                "drain: moved %d cursor(s) past ranges queued while state.db was busy",
                settled,
            )
        idle = [r for r in capture_idle(settings, now=started) if r.status == "queued"]
        if idle:
            log.info(
                "drain: queued the idle tail of %d session(s) closed without SessionEnd", len(idle)
            )
        while not stopped:
            fresh = [p for p in inbox.pending(paths) if p.name not in seen]
            if not fresh:
                break
            for path in fresh:
                if stop():
                    stopped = "stopped: shutdown requested"
                    break
                seen.add(path.name)
                job = inbox.claim(paths, path, now=clock())
                if job is None:  # another worker took it, or it was malformed (now in failed/)
                    malformed = _malformed(paths, path.name, log)
                    if malformed is not None:
                        outcomes.append(malformed)
                    continue
                if backend is None:
                    from pipeline.llm.backends import make_backend

                    backend = make_backend(settings)
                if vb is None:
                    vb = commit.enter_context(versioning.batch(settings, "drain", ("daily",)))
                    vb.name_paths = True
                outcome = _run_one(
                    settings, job, backend=backend, conn=conn, clock=clock, sleep=sleep,
                    stop=stop, daily_write=daily_write, lock_wait_s=lock_wait_s,
                )  # fmt: skip
                outcomes.append(outcome)
                if outcome.stopped:
                    stopped = outcome.stopped
                    break
        pruned = spool.prune_spools(paths, conn, settings.spool_keep_days, now=clock())
        state.kv_set(conn, "last_drain_at", repr(clock()), now=clock())
    finally:
        try:
            if vb is not None:
                entries = sum(o.entries for o in outcomes)
                done = sum(o.status == "done" for o in outcomes)
                vb.subject = f"drain: {entries} entries from {done} job(s)"
            commit.close()
        finally:
            conn.close()
    report = fold(
        outcomes,
        stopped=stopped,
        released=released,
        pruned=pruned,
        duration_s=round(max(0.0, clock() - started), 3),
    )
    if report.processed or report.stopped:
        log.info("drain: %s", report.summary())
    if run_after:
        try:
            after_drain(settings, report, clock=clock)
        except Exception as exc:  # an extension must never turn a drain into a crash
            log.exception("after_drain failed: %s", exc)
    return report


def _malformed(paths, name: str, log) -> JobOutcome | None:
    """The outcome of an inbox file claim refused as malformed (None: another worker took it)."""
    if not (paths.failed / name).exists():
        return None
    info = next((f for f in inbox.failed_jobs(paths) if f.file_name == name), None)
    if info is None or info.error_class != inbox.MALFORMED:
        return None
    log.warning("inbox file %s is malformed, moved to failed/: %s", name, info.message)
    return JobOutcome("malformed", failure=JobFailure(info.id, info.error_class, info.message, 0))


_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_MISSING_SPOOL_HINT = (
    "the spool {spool} is gone, so this range cannot be distilled and `memc retry` would fail "
    "it again; the capture cursor is already past it, so delete the job from inbox/failed/"
)


def _run_one(
    settings: Settings,
    job: inbox.Claim,
    *,
    backend,
    conn: sqlite3.Connection,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    stop: Callable[[], bool],
    daily_write: Callable[[int, bytes], int] | None = None,
    lock_wait_s: float = daily.LOCK_WAIT_S,
) -> JobOutcome:
    from pipeline import distil

    paths = settings.paths
    log = pipeline_logger(paths.logs)
    env = job.envelope
    since = clock()
    inbox.record_job(conn, env, "running", now=since, attempt=True)

    def failed(exc: BaseException, error_class: str, *, stderr_tail="", hint="") -> JobOutcome:
        failure = _fail(
            settings,
            job,
            exc,
            error_class,
            conn,
            clock(),
            since,
            stderr_tail=stderr_tail,
            hint=hint,
        )
        return JobOutcome("failed", failure=failure)

    try:
        result = distil.distil_job(
            settings, env, backend=backend, conn=conn, clock=clock, sleep=sleep, stop=stop,
            daily_write=daily_write, lock_wait_s=lock_wait_s,
        )  # fmt: skip
    except LockBusy as exc:  # a holder stopped with Ctrl-Z: back to the inbox, the drain ends
        inbox.release(paths, job)
        detail = f"{exc} for {lock_wait_s:g}s (a memc stopped with Ctrl-Z? `fg` it or end it)"
        inbox.record_job(conn, env, "queued", now=clock(), detail=detail[:500])
        log.warning("job %s released: %s", env.id, detail)
        return JobOutcome("deferred", stopped=f"locked: {detail}; the job waits in the inbox")
    except JobBudgetDeferred as exc:  # this job's share is spent: the next jobs still run
        inbox.release(paths, job)
        inbox.record_job(conn, env, "deferred", now=clock(), detail=str(exc)[:500])
        log.info("job %s deferred: %s", env.id, exc)
        return JobOutcome("deferred")
    except BudgetDeferred as exc:
        inbox.release(paths, job)
        inbox.record_job(conn, env, "deferred", now=clock(), detail=str(exc)[:500])
        log.info("job %s deferred: %s", env.id, exc)
        return JobOutcome("deferred", stopped=_spent_text(settings, conn, clock()))
    except KeyboardInterrupt:  # Ctrl-C: the job goes back to the inbox now, not at the next drain
        inbox.release(paths, job)
        inbox.record_job(conn, env, "queued", now=clock(), detail="interrupted (Ctrl-C)")
        log.info("job %s released: interrupted", env.id)
        raise
    except (CircuitOpen, Interrupted) as exc:
        inbox.release(paths, job)
        inbox.record_job(conn, env, "queued", now=clock(), detail=str(exc)[:500])
        log.info("job %s released: %s", env.id, exc)
        paused = isinstance(exc, CircuitOpen)
        return JobOutcome(
            "deferred", stopped=f"paused: {exc}" if paused else "stopped: shutdown requested"
        )
    except LLMError as exc:  # permanent, invalid, or transient after the retries
        return failed(exc, type(exc).__name__, stderr_tail=exc.stderr_tail)
    except FileNotFoundError as exc:
        return failed(exc, "BrokenJob", hint=_MISSING_SPOOL_HINT.format(spool=env.spool))
    except AppendLost as exc:  # an editor kept replacing the daily file: retry appends it
        return failed(exc, "AppendLost")
    except PathRefused as exc:  # e.g. daily/<day>.md is a symlink out of the root
        return failed(exc, "BrokenJob", hint="nothing was written; fix it, then `memc retry`")
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            # Transient (the append was cut back): back to the inbox; the drain stops.
            inbox.release(paths, job)
            inbox.record_job(conn, env, "queued", now=clock(), detail=f"disk full: {exc}"[:500])
            log.warning("job %s released: disk full (%s)", env.id, exc)
            return JobOutcome("deferred", stopped=f"disk full ({exc.strerror or exc}): free space")
        return failed(
            exc, "BrokenJob", hint="inspect the envelope and its spool; `memc retry` once fixed"
        )
    except Exception as exc:  # a bug must dead-letter one job, not wedge the whole queue
        log.exception("job %s crashed the distil step", env.id)
        return failed(
            exc,
            type(exc).__name__,
            hint="this is a bug in memc (traceback in pipeline.log); `memc retry` after upgrading",
        )
    inbox.complete(
        paths, job, conn=conn, entries=result.appended, detail=result.summary(), now=clock()
    )
    log.info("job %s done: %s", env.id, result.summary())
    return JobOutcome(
        "done",
        entries=result.appended,
        not_worth_saving=result.not_worth_saving,
        cost_usd=result.cost_usd,
    )


def _fail(
    settings: Settings,
    job: inbox.Claim,
    exc: BaseException,
    error_class: str,
    conn: sqlite3.Connection,
    at: float,
    since: float,
    *,
    stderr_tail: str = "",
    hint: str = "",
) -> JobFailure:
    """Dead-letter the job. Its distil progress is kept, so `memc retry` resumes at the chunk
    that failed instead of paying again for the earlier ones."""
    message = str(exc) or error_class
    if hint:
        message = f"{message} ({hint})"
    attempts = _attempts(exc, conn, job.id, since)
    inbox.fail(
        settings.paths,
        job,
        error_class=error_class,
        message=message,
        attempts=attempts,
        stderr_tail=stderr_tail,
        now=at,
        conn=conn,
    )
    pipeline_logger(settings.paths.logs).warning(
        "job %s failed (%s): %s", job.id, error_class, message
    )
    return JobFailure(job.id, error_class, message, attempts)
