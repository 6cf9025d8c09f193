"""Distil one inbox job: spooled transcript bytes -> daily-log entries, exactly once.

Steps of ``distil_job``: skip private sessions; read the spool in slices of complete lines
(``SLICE_BYTES``) so a 200 MB delta never sits in memory whole alongside its parsed copy; parse
each slice (``pipeline.transcript.parse_bytes``); stop at once for Agent SDK sessions (the
pipeline's own calls); redact every turn's text (``pipeline.redact``) BEFORE chunking, so no
secret reaches a prompt, a log or daily/; chunk by turns to ``settings.chunk_chars``; ask the flush
model once per chunk through ``pipeline.llm.calls.call``; render each reply deterministically
(``daily.render_entry``) and append it (``daily.append_entry``) under the daily lock.

Decisions (documented for the README):
- A large delta makes several calls: ONE ENTRY PER CHUNK that the model finds worth saving
  (no map-reduce: each entry stays traceable to its chunk, and a resumed job repeats nothing).
  ``chunk`` in the payload is 1-based; ``chunks`` is the total when the spool fits in one slice,
  and ``null`` for a streamed delta (the total is not known until the end).
- Entry id = ``daily.entry_id(job_id, chunk_index)``. Chunk boundaries are a pure function of
  the spool bytes, ``SLICE_BYTES`` and ``chunk_chars``, so a re-run (after kill -9, a budget
  deferral, a retry) produces the same ids; an id already in ``entries`` or in the log of the
  day or of an adjacent day (``daily.find_entry``: a MEMC_TZ change after a crash moves the day)
  is never appended again, and its model call is skipped.
- Progress is kept in kv ``distil-progress:<job id>`` (next chunk, chunk size, running counts)
  after every chunk, so a job interrupted half-way resumes without paying for earlier chunks.
  The stored chunk size wins over a changed setting, to keep ids stable.
- ``<private>`` spans are removed per turn by ``redact``; a span opened in one turn and closed in
  a later one drops everything in between too, also across jobs of one session: a job that ends
  inside a span records it (kv ``private-open:<session>``), and the session's next job (one that
  continues the transcript) starts inside the span.
- The day and HH:MM come from ``envelope.captured_at`` in ``settings.zone()``; a malformed stamp
  fails the job (a fallback to "now" would break exactly-once across days).
- Split assistant frames are merged only within a slice; across a slice boundary they stay two
  turns (no text is lost).
Pipeline errors never reach daily logs: only rendered model entries are appended.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from pipeline import daily, state
from pipeline.config import Settings
from pipeline.errors import Interrupted
from pipeline.fsutil import wait_unlocked
from pipeline.models import Entry, Envelope, Turn

SLICE_BYTES = 8 * 1024 * 1024
PROGRESS_KEY = "distil-progress:{}"
PRIVATE_OPEN_KEY = "private-open:{}"  # kv: a session's last job ended inside a <private> span
_LISTS = ("decisions", "lessons", "action_items", "key_exchanges")


@dataclass(frozen=True)
class DistilResult:
    job_id: str
    chunks: int = 0  # chunks seen (including ones done by an earlier, interrupted run)
    appended: int = 0
    duplicates: int = 0
    not_worth_saving: int = 0
    cost_usd: float = 0.0
    calls: int = 0  # model attempts made by this run
    skipped: str = ""  # "private", "sdk-session", "empty" when nothing was sent
    entry_ids: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.skipped:
            return f"skipped ({self.skipped})"
        return (
            f"{self.appended} entr{'y' if self.appended == 1 else 'ies'} appended, "
            f"{self.duplicates} duplicate(s), {self.not_worth_saving} not worth saving, "
            f"{self.chunks} chunk(s), ${self.cost_usd:.4f}"
        )


def read_slices(path: Path, size: int = SLICE_BYTES, chunk_chars: int = 60_000) -> Iterator[bytes]:
    """The file's bytes in pieces of complete lines, each about ``size`` bytes; a trailing
    partial line is yielded last. A line longer than ``4 * chunk_chars`` bytes is cut to its
    first ``chunk_chars`` bytes (and its end) before parsing (``pipeline.longlines``)."""
    from pipeline.longlines import read_slices as bounded

    return bounded(path, size, max_line=4 * chunk_chars, keep=chunk_chars)


def capture_time(envelope: Envelope, settings: Settings) -> tuple[str, str]:
    """(YYYY-MM-DD, HH:MM) of the capture in the configured zone. ValueError if malformed."""
    at = datetime.fromisoformat(envelope.captured_at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(settings.zone())
    return local.date().isoformat(), local.strftime("%H:%M")


class _SpoolChunks:
    """Every chunk of the spool in order; the last, possibly underfull chunk of a slice is
    carried into the next slice so boundaries do not depend on where a slice ended. Iteration
    stops at an Agent SDK transcript, and ``sdk_session`` then says so. ``continued``: the job
    does not start the transcript (its earlier bytes were captured), so compaction summaries are
    left out; later slices are always continued."""

    def __init__(
        self,
        path: Path,
        chunk_chars: int,
        slice_bytes: int,
        *,
        continued: bool,
        in_private: bool = False,
    ):
        self.path, self.chunk_chars, self.slice_bytes = path, chunk_chars, slice_bytes
        self.continued = continued
        self.sdk_session = False
        self.in_private = in_private  # after iterating: a <private> span runs past the end

    def __iter__(self) -> Iterator[tuple[Turn, ...]]:
        from pipeline.redact import Redactor
        from pipeline.transcript import chunk_turns, parse_bytes

        # A <private> span may run across turns, and across jobs: one opened before a checkpoint
        # capture and closed after it starts the next job inside the span.
        redact = Redactor(in_private=self.in_private)
        buffer: list[Turn] = []
        continued = self.continued
        for data in read_slices(self.path, self.slice_bytes, self.chunk_chars):
            parsed = parse_bytes(data, continued=continued)
            continued = True
            del data
            if parsed.sdk_session:
                self.sdk_session = True
                return
            for turn in parsed.turns:
                text = redact(turn.text)
                if text.strip():
                    buffer.append(replace(turn, text=text))
            del parsed
            groups = chunk_turns(buffer, self.chunk_chars) if buffer else []
            yield from groups[:-1]
            buffer = list(groups[-1]) if groups else []
        self.in_private = redact.in_private
        if buffer:
            yield from chunk_turns(buffer, self.chunk_chars)


EARLIER_ENTRIES = 8


def earlier_titles(conn, session_id: str) -> list[str]:
    """Titles of what this session already put in the daily log (a Stop checkpoint, an earlier
    chunk), newest last: the model is told not to repeat them, so a long session captured in
    several deltas reads as a sequence of new facts rather than overlapping summaries."""
    rows = conn.execute(
        "SELECT title FROM entries WHERE session_id=? AND title != '' "
        "ORDER BY created_at DESC, rowid DESC LIMIT ?",
        (session_id, EARLIER_ENTRIES),
    ).fetchall()
    return [r[0] for r in reversed(rows)]


def entry_from_reply(data: dict) -> Entry:
    """The Entry a validated distil reply describes; blank entries count as not worth saving."""

    def items(name: str) -> tuple[str, ...]:
        value = data.get(name) or []
        return (
            tuple(str(v).strip() for v in value if str(v).strip())
            if isinstance(value, list)
            else ()
        )

    entry = Entry(
        worth_saving=bool(data.get("worth_saving")),
        title=str(data.get("title") or "").strip(),
        context=str(data.get("context") or "").strip(),
        decisions=items("decisions"),
        lessons=items("lessons"),
        action_items=items("action_items"),
        key_exchanges=items("key_exchanges"),
    )
    if entry.worth_saving and not (
        entry.title or entry.context or any(getattr(entry, n) for n in _LISTS)
    ):
        return replace(entry, worth_saving=False)
    return entry


@dataclass
class Progress:
    """A job's distil progress, saved after every chunk (kv ``distil-progress:<job id>``, JSON
    with these field names) so an interrupted job resumes at ``next`` without paying again."""

    chunk_chars: int  # the chunk size the job started with; wins over a changed setting
    next: int = 0  # index of the first chunk not yet done
    appended: int = 0
    duplicates: int = 0
    not_worth: int = 0
    cost: float = 0.0
    ids: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, conn: sqlite3.Connection, job_id: str, chunk_chars: int) -> Progress:
        """The saved progress (fields of the wrong type ignored), else a fresh one."""
        raw = state.kv_get(conn, PROGRESS_KEY.format(job_id))
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or type(data.get("chunk_chars")) is not int:
            return cls(chunk_chars)
        kinds = {f.name: type(getattr(cls(chunk_chars), f.name)) for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in kinds and type(v) is kinds[k]})

    def save(self, conn: sqlite3.Connection, job_id: str, at: float) -> None:
        state.kv_set(conn, PROGRESS_KEY.format(job_id), json.dumps(asdict(self)), now=at)


def clear_progress(conn: sqlite3.Connection, job_id: str) -> None:
    conn.execute("DELETE FROM kv WHERE key=?", (PROGRESS_KEY.format(job_id),))


def _record_entry(
    conn: sqlite3.Connection,
    *,
    eid: str,
    day: str,
    envelope: Envelope,
    title: str,
    block: str,
    now: float,
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO entries(id, day, daily_path, job_id, session_id, project, title,"
        " content_hash, created_at) VALUES(?,?,?,?,?,?,?,?,?)",
        (
            eid,
            day,
            f"daily/{day}.md",
            envelope.id,
            envelope.session_id,
            envelope.project,
            title,
            hashlib.sha256(block.encode("utf-8")).hexdigest()[:16],
            now,
        ),
    )


def distil_job(
    settings: Settings,
    envelope: Envelope,
    *,
    backend,
    conn: sqlite3.Connection,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] | None = None,
    slice_bytes: int = SLICE_BYTES,
    daily_write: Callable[[int, bytes], int] | None = None,
    lock_wait_s: float = daily.LOCK_WAIT_S,
) -> DistilResult:
    """Distil one job's spool into daily entries. Raises the LLM errors of ``llm.calls.call``
    (BudgetDeferred, CircuitOpen, Permanent/Invalid/TransientLLMError), ``Interrupted`` when
    ``stop()`` turns true between chunks, ValueError/OSError/PathRefused for a broken job,
    ``LockBusy`` when the day's log stays locked for ``lock_wait_s`` (nothing of that chunk is
    written; earlier chunks' progress is kept)."""
    from pipeline.llm.base import LLMRequest, load_prompt, load_schema
    from pipeline.llm.calls import call
    from pipeline.spool import spool_path
    from pipeline.transcript import render_turns

    if state.is_private(conn, envelope.session_id):
        return DistilResult(envelope.id, skipped="private")
    day, hhmm = capture_time(envelope, settings)
    path = spool_path(settings.paths, envelope)
    progress = Progress.load(conn, envelope.id, max(1, settings.chunk_chars))
    known_total = path.stat().st_size <= slice_bytes
    schema, prompt = load_schema("distil"), load_prompt("distil")
    calls = 0
    total: int | None = None
    open_key = PRIVATE_OPEN_KEY.format(envelope.session_id)
    spool = _SpoolChunks(
        path, progress.chunk_chars, slice_bytes, continued=envelope.start > 0,
        in_private=envelope.start > 0 and state.kv_get(conn, open_key) == "1",
    )  # fmt: skip
    source: Iterator[tuple[Turn, ...]] = iter(spool)
    if known_total:  # one slice: small enough to count the chunks first
        materialized = list(source)
        total, source = len(materialized), iter(materialized)
    for index, chunk in enumerate(source):
        if index < progress.next:
            continue
        eid = daily.entry_id(envelope.id, index)
        if conn.execute("SELECT 1 FROM entries WHERE id=?", (eid,)).fetchone():
            progress.duplicates += 1
        elif (found := daily.find_entry(settings.paths.daily, eid, near=day)) is not None:
            # Appended before a crash, never recorded (its day may differ: MEMC_TZ changed).
            _record_entry(
                conn, eid=eid, day=found.day, envelope=envelope, title=found.title,
                block=found.text, now=clock(),
            )  # fmt: skip
            progress.duplicates += 1
            progress.ids.append(eid)
        else:
            if stop is not None and stop():
                raise Interrupted(f"stopped before chunk {index + 1} of job {envelope.id}")
            request = LLMRequest(
                task="distil",
                schema=schema,
                system_prompt=prompt,
                model=settings.flush_model,
                max_budget_usd=settings.call_budget_usd,
                timeout_s=settings.call_timeout_s,
                ref=f"{envelope.id}:{index}",
                payload={
                    "project": envelope.project,
                    "session_id": envelope.session_id,
                    "event": envelope.event,
                    "chunk": index + 1,
                    "chunks": total,
                    "earlier_entries": earlier_titles(conn, envelope.session_id),
                    "transcript": render_turns(chunk),
                },
            )
            # A daily log held by a stopped process must not cost a call per drain.
            wait_unlocked(daily.guarded_daily_path(settings.paths.daily, day), timeout=lock_wait_s)
            reply = call(settings, backend, request, conn=conn, sleep=sleep, clock=clock)
            calls += reply.attempts
            progress.cost += reply.cost_usd
            entry = entry_from_reply(reply.data)
            if not entry.worth_saving:
                progress.not_worth += 1
            else:
                block = daily.render_entry(
                    entry,
                    entry_id=eid,
                    time_hhmm=hhmm,
                    project=envelope.project,
                    project_key=envelope.project_key,
                    session_id=envelope.session_id,
                    event=envelope.event,
                    host=settings.this_host,
                )
                written = daily.append_entry(
                    settings.paths.daily, day, block, eid, write=daily_write,
                    lock_wait_s=lock_wait_s,
                )  # fmt: skip
                _record_entry(
                    conn,
                    eid=eid,
                    day=day,
                    envelope=envelope,
                    title=entry.title,
                    block=block,
                    now=clock(),
                )
                if written:
                    progress.appended += 1
                else:
                    progress.duplicates += 1
                progress.ids.append(eid)
        progress.next = index + 1
        progress.save(conn, envelope.id, clock())
    chunks_seen = progress.next
    if spool.in_private:  # the next job of this session starts inside the span
        state.kv_set(conn, open_key, "1", now=clock())
    else:
        conn.execute("DELETE FROM kv WHERE key=?", (open_key,))
    clear_progress(conn, envelope.id)
    if spool.sdk_session:
        return DistilResult(
            envelope.id,
            chunks=chunks_seen,
            calls=calls,
            skipped="sdk-session",
            appended=progress.appended,
            entry_ids=tuple(progress.ids),
        )
    if chunks_seen == 0:
        return DistilResult(envelope.id, skipped="empty")
    return DistilResult(
        envelope.id,
        chunks=chunks_seen,
        appended=progress.appended,
        duplicates=progress.duplicates,
        not_worth_saving=progress.not_worth,
        cost_usd=round(progress.cost, 6),
        calls=calls,
        entry_ids=tuple(progress.ids),
    )
