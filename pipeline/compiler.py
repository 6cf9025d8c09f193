"""The compile stage: pending daily entries -> model -> guarded article operations.

Invariants:
- One compile at a time (``locks/compile.lock``, non-blocking): a second one returns "busy".
- An entry is pending until a batch containing it has been applied; a failed batch leaves its
  entries pending. Which entries are pending, edited or withdrawn is pipeline.pending's; its
  notes on hand edits of daily logs go to log.md and the report (``daily_changes``).
- A compile that writes is one versioning batch: one commit (pipeline.versioning). In a
  versioned root each applied batch's entries are added to this host's committed record
  (``pipeline.compiledrecord``) in that same commit; only this host's entries are selected.
- Bounded context, whatever the size of the knowledge base (pipeline.compile_context builds it).
- The model has no tools; it returns JSON operations that pipeline.apply validates and writes.
- ``dry_run`` builds the same prompts and reports their sizes, without a model call or a write.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline import fsutil, state
from pipeline.compile_context import build_payload, make_batches, prompt_chars, request_for
from pipeline.config import ARTICLE_FOLDERS
from pipeline.errors import BudgetDeferred, CircuitOpen, LLMError, LockBusy
from pipeline.pending import (  # re-exported: status, the CLI and tests use them from here
    LAST_COMPILE_KEY,
    TriggerDecision,
    select_entries,
    should_compile,
    sync_entries,
)


@dataclass(frozen=True)
class BatchReport:
    index: int
    entries: tuple[str, ...]
    prompt_chars: int
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    rejected: tuple[dict, ...] = ()
    cost_usd: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class CompileReport:
    status: str  # compiled | nothing | not-stale | busy | dry-run | failed | partial
    message: str
    pending: int = 0
    batches: tuple[BatchReport, ...] = ()
    trigger: TriggerDecision | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "partial")

    @property
    def entries_compiled(self) -> int:
        return sum(len(b.entries) for b in self.batches if not b.error and self.status != "dry-run")

    def _all(self, name: str) -> list:
        return [x for b in self.batches for x in getattr(b, name)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "pending": self.pending,
            "entries_compiled": self.entries_compiled,
            "created": self._all("created"),
            "updated": self._all("updated"),
            "rejected": self._all("rejected"),
            "cost_usd": round(sum(b.cost_usd for b in self.batches), 6),
            "prompt_chars_max": max((b.prompt_chars for b in self.batches), default=0),
            "batches": [
                {
                    "index": b.index,
                    "entries": len(b.entries),
                    "prompt_chars": b.prompt_chars,
                    "created": len(b.created),
                    "updated": len(b.updated),
                    "rejected": len(b.rejected),
                    "cost_usd": b.cost_usd,
                    "error": b.error,
                }
                for b in self.batches
            ],
            "trigger": None if self.trigger is None else vars(self.trigger),
            "commit": self.extra.get("commit"),
            "daily_changes": self.extra.get("daily_changes", []),
        }


# ---------------------------------------------------------------- the run


def run_compile(
    settings,
    *,
    backend=None,
    all: bool = False,
    file: str | None = None,
    dry_run: bool = False,
    if_stale: bool = False,
    clock: Callable[[], float] = time.time,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CompileReport:
    """Compile pending (or all / one file's) entries into knowledge/. Never raises for expected
    outcomes: busy, nothing pending, not stale, a failed batch are all in the report. ``clock``
    dates the compile and times its model calls (a drain passes its own)."""
    paths = settings.paths
    try:
        with fsutil.file_lock(paths.lock("compile"), blocking=False):
            if not dry_run:  # leftovers of a compile killed mid-write (see issue 7 proofs)
                from pipeline.apply import sweep_temp_files

                sweep_temp_files(paths, now=clock())
            conn = state.connect(paths.state_db)
            try:
                return _run(
                    settings,
                    conn,
                    backend=backend,
                    all=all,
                    file=file,
                    dry_run=dry_run,
                    if_stale=if_stale,
                    clock=clock,
                    progress=progress,
                    sleep=sleep,
                )
            finally:
                conn.close()
    except LockBusy:
        return CompileReport(
            "busy", "another compile is running; nothing to do (it will pick up these entries)"
        )


def _run(settings, conn, *, backend, all, file, dry_run, if_stale, clock, progress, sleep):
    at = clock()
    notes: list[str] = []
    sync_entries(settings, conn, notes=notes, now=at)
    trigger = None
    if if_stale and not all and file is None:
        trigger = should_compile(settings, conn, now=at)
        if not trigger.fire:
            return CompileReport(
                "not-stale",
                f"not compiling: {trigger.reason}",
                pending=trigger.pending,
                trigger=trigger,
            )
    entries = select_entries(settings, conn, all=all, file=file, now=at, notes=notes)
    knowledge = settings.paths.knowledge
    problem = None if dry_run or not entries else fsutil.unwritable(
        [knowledge, *(knowledge / f for f in ARTICLE_FOLDERS)]
    )  # fmt: skip
    if problem:  # checked before any model call: a compile that cannot write costs nothing
        return CompileReport(
            "failed",
            f"knowledge/ is not writable ({problem}); nothing was sent to the model: fix its "
            "permissions (e.g. `chmod -R u+w knowledge`) and run `memc compile`",
            pending=len(entries), trigger=trigger,
        )  # fmt: skip
    if notes and not dry_run:
        from pipeline import wikiindex

        wikiindex.append_log(
            settings.paths, "compile", "daily entries changed by hand", notes, now=at,
            tz=settings.zone(),
        )  # fmt: skip
    extra = {"daily_changes": notes}
    if not entries:
        return CompileReport(
            "nothing", "no pending entries; nothing to compile", trigger=trigger, extra=extra
        )
    from pipeline import versioning

    record = not dry_run and versioning.enabled(settings)
    run = functools.partial(_batches, settings, conn, entries, backend, dry_run, at, clock, record)
    if dry_run:
        return replace(run(trigger, progress, sleep), extra=extra)
    from pipeline import compiledrecord

    with versioning.batch(settings, "compile", ("knowledge", compiledrecord.REL)) as vb:
        report = run(trigger, progress, sleep)
        vb.entries = [x for b in report.batches if not b.error for x in b.entries]
        n = len(vb.entries)
        vb.subject = versioning.summarise(
            "compile", report._all("created"), report._all("updated"),
            lead=f"{n} entr{'y' if n == 1 else 'ies'}",
        )  # fmt: skip
    return replace(report, extra={**extra, "commit": vb.commit, "git_note": vb.error})


def _batches(
    settings, conn, entries, backend, dry_run, at, clock, record, trigger, progress, sleep
):
    from pipeline import compiledrecord, searchindex
    from pipeline.apply import apply_articles
    from pipeline.pending import entry_hash

    paths = settings.paths
    searchindex.refresh(paths, full=True)  # a writer: every file, not only signalled ones
    batches = make_batches(entries)
    if backend is None and not dry_run:
        from pipeline.llm.backends import make_backend

        backend = make_backend(settings)
    reports: list[BatchReport] = []
    for i, batch in enumerate(batches, 1):
        payload, seen = build_payload(settings, batch)
        ids = tuple(e.id for e in batch)
        request = request_for(
            settings,
            payload,
            ref="compile:" + hashlib.sha256("".join(ids).encode()).hexdigest()[:12],
        )
        size = prompt_chars(request)
        if progress and len(batches) > 1:
            progress(f"batch {i}/{len(batches)}: {len(batch)} entries, {size:,} prompt chars")
        if dry_run:
            reports.append(BatchReport(i, ids, size))
            continue
        try:
            from pipeline.llm.calls import call

            reply = call(settings, backend, request, conn=conn, sleep=sleep, clock=clock)
        except (LLMError, BudgetDeferred, CircuitOpen) as exc:
            reports.append(BatchReport(i, ids, size, error=f"{type(exc).__name__}: {exc}"))
            break
        sources = sorted({e.daily_path for e in batch})
        result = apply_articles(
            settings,
            reply.data.get("articles"),
            origin="compile",
            seen=seen,
            default_sources=sources,
            now=at,
            log_lines=[f"batch {i}/{len(batches)}: {len(batch)} entries from {', '.join(sources)}"],
        )
        rejected = tuple(
            {"index": r.index, "path": r.path, "reason": r.reason} for r in result.rejected
        )
        if rejected and not (result.created or result.updated or result.unchanged):
            # Nothing of the reply reached the wiki: these entries are not compiled.
            error = f"AllRejected: every operation was rejected ({rejected[0]['reason']})"
            reports.append(
                BatchReport(i, ids, size, rejected=rejected, cost_usd=reply.cost_usd, error=error)
            )
            continue
        conn.executemany("UPDATE entries SET compiled_at=? WHERE id=?", [(at, x) for x in ids])
        if record:
            compiledrecord.add(
                paths.daily, settings.this_host, [(e.id, entry_hash(e)) for e in batch]
            )
        reports.append(
            BatchReport(
                i,
                ids,
                size,
                result.created,
                result.updated,
                result.unchanged,
                rejected,
                cost_usd=reply.cost_usd,
            )
        )
    if dry_run:
        return CompileReport(
            "dry-run",
            f"would send {len(batches)} batch(es) of "
            f"{len(entries)} entries; no model call, nothing written",
            pending=len(entries),
            batches=tuple(reports),
            trigger=trigger,
        )
    from pipeline import wikiindex

    # Under the writers' lock: an index computed before a concurrent query --file-back or
    # lint --fix wrote a page must not land after theirs and drop that page from index.md.
    with fsutil.file_lock(paths.lock("knowledge"), timeout=120):
        wikiindex.write_index(paths)  # keeps index.md present even when nothing changed
    done = [b for b in reports if not b.error]
    if done:
        state.kv_set(conn, LAST_COMPILE_KEY, repr(at), now=at)
    failed = [b for b in reports if b.error]
    if failed:
        status = "partial" if done else "failed"
        waiting = failed[0].error.startswith(("BudgetDeferred", "CircuitOpen"))
        message = f"batch {failed[0].index} failed ({failed[0].error}); its entries stay " + (
            "pending and compile once model calls are allowed again (see `memc status`)"
            if waiting
            else "pending, run `memc compile` again (see `memc status`)"
        )
    else:
        status = "compiled"
        message = f"compiled {sum(len(b.entries) for b in done)} entries in {len(done)} batch(es)"
    return CompileReport(
        status, message, pending=len(entries), batches=tuple(reports), trigger=trigger
    )
