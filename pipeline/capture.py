"""Capture: spool the transcript bytes added since the last capture and queue one job for them.

Role: the only work a hook does. It copies bytes, it never parses a transcript.

Invariants:
- Lossless and exactly once per byte range. Per session (hash of session id + transcript path) a
  cursor in ``state.db`` holds the offset of the last complete line consumed and the file's
  identity (``st_dev:st_ino`` plus a hash of the first line). A capture copies ``[cursor, last
  complete newline)`` into ``.memc/spool/<job>.jsonl``, then writes the envelope into the inbox
  (atomic rename: the commit point), then advances the cursor and records the job, in one
  transaction. The job id hashes (session, identity, start, end), so a range already queued is
  never queued again. A crash between envelope and cursor is repaired by a pending marker
  (``kv`` key ``capture-pending:<session key>``) written just before the envelope: the next
  capture sees the envelope exists and advances the cursor instead of spooling the range again,
  even if the transcript grew in between.
- A half-written last line is never consumed; a replaced or truncated transcript (identity
  changed, or shorter than the cursor) is captured again from offset 0.
- Never blocks: files are read through ``pipeline.tailfile`` (regular files only, O_NONBLOCK,
  re-checked with fstat, bounded positional reads); a session's lock is waited on for at most
  ``lock_timeout`` seconds.
- Never raises for expected outcomes: every result is a ``CaptureResult``.
- Skips private sessions (``private_sessions`` table, or a delta containing ``[memc:private]``,
  which also marks the session private), excluded projects and Agent SDK transcripts
  (``"entrypoint":"sdk-py"`` in the first 64 KiB).
- The session id is data: file names use its hash, never the raw value.
- Subagent transcripts are captured with their parent by ``pipeline.subagents.capture_session``
  (same session id, their own cursors: the cursor key hashes the path).
Stdlib only: this module is on the hook's hot path. Starting a drain after a hook queued a job
is ``pipeline.spawn``; capturing idle tails of sessions closed without SessionEnd is
``pipeline.idle`` (run by the drain).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline import state, tailfile
from pipeline.config import Paths, Settings
from pipeline.errors import LockBusy, PathRefused, PrivateMarker
from pipeline.fsutil import atomic_write, file_lock, safe_join
from pipeline.models import Envelope, job_id_for
from pipeline.project import identify

PRIVATE_MARKER = b"[memc:private]"
HEAD_BYTES = 64 * 1024  # scanned for the SDK entrypoint (the identity reads at most 4 KiB of it)
RETRY_ATTEMPTS = 5
LOCK_STRIPES = 64  # capture locks: .memc/locks/capture-00 .. capture-63
_SDK = re.compile(rb'"entrypoint"\s*:\s*"sdk-py"')


@dataclass(frozen=True)
class CaptureResult:
    status: str  # "queued" | "nothing-new" | "below-threshold" | "skipped"
    job_id: str | None
    reason: str
    bytes: int = 0


def session_key(session_id: str, transcript_path: str) -> str:
    raw = f"{session_id}\x00{transcript_path}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:24]


def project_name(cwd: str) -> str:
    """Display name of the project cwd belongs to (its git repository; see pipeline.project)."""
    return identify(cwd).name


def is_excluded(settings: Settings, project: str, cwd: str, key: str = "") -> bool:
    return any(
        fnmatch.fnmatch(project, pattern)
        or (cwd and fnmatch.fnmatch(cwd, pattern))
        or (key and fnmatch.fnmatch(key, pattern))
        for pattern in settings.exclude_projects
    )


def _skip(reason: str) -> CaptureResult:
    return CaptureResult("skipped", None, reason)


def _blocks(fd: int, start: int, end: int) -> Iterator[bytes]:
    """Yield [start, end) in blocks; raise PrivateMarker if the opt-out marker is in it."""
    tail, pos = b"", start
    while pos < end:
        block = tailfile.pread(fd, min(tailfile.BLOCK, end - pos), pos)
        if not block:
            raise OSError("transcript shrank while it was being copied")
        if PRIVATE_MARKER in tail + block[: len(PRIVATE_MARKER)] or PRIVATE_MARKER in block:
            raise PrivateMarker()
        tail = block[-(len(PRIVATE_MARKER) - 1) :]
        pos += len(block)
        yield block


def _already_queued(paths: Paths, conn, job_id: str) -> bool:
    if conn.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone():
        return True
    for folder in (paths.inbox, paths.claimed, paths.failed):
        try:
            if any(job_id in name for name in os.listdir(folder)):
                return True
        except OSError:
            continue
    return False


def _commit(
    conn,
    *,
    key: str,
    session_id: str,
    transcript: str,
    identity: str,
    offset: int,
    now: float,
    job: tuple | None = None,
    touch: bool = True,
) -> None:
    """Advance the cursor (and record the job) in one transaction; clear the pending marker."""
    with state.transaction(conn):
        conn.execute(
            "INSERT INTO cursors(session_key, session_id, transcript_path, identity, offset,"
            " last_capture_at, updated_at) VALUES(?,?,?,?,?,?,?) ON CONFLICT(session_key) DO UPDATE"
            " SET identity=excluded.identity, offset=excluded.offset,"
            " updated_at=excluded.updated_at,"
            " last_capture_at=CASE WHEN ? THEN excluded.last_capture_at ELSE last_capture_at END",
            (key, session_id, transcript, identity, offset, now, now, 1 if touch else 0),
        )
        if job is not None:
            conn.execute(
                "INSERT INTO jobs(id, session_id, event, project, status, created_at, updated_at,"
                " bytes) VALUES(?,?,?,?,'queued',?,?,?) ON CONFLICT(id) DO NOTHING",
                (job[0], session_id, job[1], job[2], now, now, job[3]),
            )
            previous = state.kv_get(conn, "last_capture_at")
            if previous is None or float(previous) < now:  # backfill captures carry old times
                state.kv_set(conn, "last_capture_at", repr(now), now=now)
        conn.execute("DELETE FROM kv WHERE key=?", (f"capture-pending:{key}",))


def _recover_pending(
    paths: Paths, conn, key: str, session_id: str, transcript: str, now: float
) -> None:
    """Finish (or discard) a capture that died between its envelope and its cursor advance."""
    raw = state.kv_get(conn, f"capture-pending:{key}")
    if raw is None:
        return
    try:
        p = json.loads(raw)
        job_id, start, end, identity = p["id"], int(p["start"]), int(p["end"]), p["identity"]
    except (ValueError, KeyError, TypeError):
        conn.execute("DELETE FROM kv WHERE key=?", (f"capture-pending:{key}",))
        return
    if _already_queued(paths, conn, job_id):
        job = (job_id, p.get("event", ""), p.get("project", ""), end - start)
        _commit(
            conn,
            key=key,
            session_id=session_id,
            transcript=transcript,
            identity=identity,
            offset=end,
            now=now,
            job=job,
        )
        return
    try:  # the envelope never landed: its spool is an orphan
        os.unlink(safe_join(paths.spool, f"{job_id}.jsonl"))
    except (OSError, PathRefused):
        pass
    conn.execute("DELETE FROM kv WHERE key=?", (f"capture-pending:{key}",))


def capture(
    settings: Settings,
    *,
    transcript_path: str,
    session_id: str,
    cwd: str = "",
    event: str = "manual",
    now: float | None = None,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = RETRY_ATTEMPTS,
    lock_timeout: float = 1.0,
) -> CaptureResult:
    """Spool what the transcript gained since the last capture of this session; see module doc."""
    now = time.time() if now is None else now
    paths = settings.paths
    if not isinstance(session_id, str) or not session_id.strip():
        return _skip("no session id")
    if not isinstance(transcript_path, str) or not transcript_path:
        return _skip("no transcript path")
    if "\x00" in transcript_path or "\x00" in session_id:
        return _skip("NUL byte in session id or transcript path")
    if not paths.is_initialised():
        return _skip(f"{settings.root} is not initialised; run `memc init`")
    cwd = cwd if isinstance(cwd, str) else ""
    owner = identify(cwd)
    project = owner.name
    if is_excluded(settings, project, cwd, owner.key):
        return _skip(f"project {project!r} matches exclude_projects")
    transcript = os.path.abspath(transcript_path)
    conn = state.connect(paths.state_db)
    try:
        if state.is_private(conn, session_id):
            return _skip("session is private")
        fd, st = tailfile.open_transcript(transcript, attempts, sleep)
        if fd is None:
            return _skip(st)
        try:
            return _capture_open(
                settings,
                conn,
                fd,
                st,
                transcript=transcript,
                session_id=session_id,
                cwd=cwd,
                project=project,
                project_key=owner.key,
                event=event,
                now=now,
                force=force,
                lock_timeout=lock_timeout,
            )
        finally:
            os.close(fd)
    finally:
        conn.close()


def _capture_open(
    settings: Settings,
    conn,
    fd: int,
    st: os.stat_result,
    *,
    transcript: str,
    session_id: str,
    cwd: str,
    project: str,
    project_key: str,
    event: str,
    now: float,
    force: bool,
    lock_timeout: float,
) -> CaptureResult:
    paths = settings.paths
    head = tailfile.pread(fd, HEAD_BYTES, 0)
    if _SDK.search(head):
        return _skip("Agent SDK transcript (entrypoint sdk-py)")
    identity = tailfile.identity(st, head)
    if identity is None:
        return CaptureResult("nothing-new", None, "no complete line yet")
    key = session_key(session_id, transcript)
    try:
        # Sessions share a fixed set of lock stripes, so .memc/locks/ never grows with the
        # number of sessions; two sessions meeting on one stripe only wait a few milliseconds.
        with file_lock(
            paths.lock(f"capture-{int(key[:8], 16) % LOCK_STRIPES:02d}"), timeout=lock_timeout
        ):
            _recover_pending(paths, conn, key, session_id, transcript, now)
            row = conn.execute(
                "SELECT identity, offset, last_capture_at FROM cursors WHERE session_key=?", (key,)
            ).fetchone()
            size = os.fstat(fd).st_size
            start, note = 0, ""
            if row is not None:
                if row["identity"] != identity or row["offset"] > size:
                    note = "transcript was replaced; captured from the start"
                else:
                    start = row["offset"]
            end = tailfile.last_newline_end(fd, start, size)
            if end <= start:
                return CaptureResult("nothing-new", None, "no new complete lines")

            def commit(offset: int, job: tuple | None = None, touch: bool = True) -> None:
                _commit(
                    conn,
                    key=key,
                    session_id=session_id,
                    transcript=transcript,
                    identity=identity,
                    offset=offset,
                    now=now,
                    job=job,
                    touch=touch,
                )

            if event == "stop" and not force:
                lines = tailfile.count_lines(fd, start, end, settings.stop_min_lines)
                since = now - (row["last_capture_at"] if row is not None and not note else now)
                if lines < settings.stop_min_lines and since < settings.stop_min_minutes * 60:
                    if row is None or note:  # start the minutes clock for this transcript
                        commit(start)
                    return CaptureResult(
                        "below-threshold",
                        None,
                        f"{lines} new lines, {since / 60:.1f} min since last capture",
                        end - start,
                    )
            job_id = job_id_for(session_id, identity, start, end)
            if _already_queued(paths, conn, job_id):
                commit(end, touch=False)
                return CaptureResult("nothing-new", job_id, f"range already queued as {job_id}")
            spool = safe_join(paths.spool, f"{job_id}.jsonl")
            try:
                atomic_write(
                    spool, _blocks(fd, start, end), mode=0o600
                )  # raw transcript: owner only
            except PrivateMarker:
                conn.execute(
                    "INSERT OR IGNORE INTO private_sessions(session_id, at) VALUES(?,?)",
                    (session_id, now),
                )
                commit(end)
                return _skip("opt-out marker [memc:private] found; session is now private")
            envelope = Envelope(
                id=job_id,
                session_id=session_id,
                event=event,
                transcript_path=transcript,
                cwd=cwd,
                project=project,
                project_key=project_key,
                start=start,
                end=end,
                captured_at=datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds"),
                spool=f"spool/{job_id}.jsonl",
            )
            pending = {
                "id": job_id,
                "start": start,
                "end": end,
                "identity": identity,
                "event": event,
                "project": project,
            }
            state.kv_set(conn, f"capture-pending:{key}", json.dumps(pending), now=now)
            atomic_write(safe_join(paths.inbox, envelope.file_name()), envelope.to_json())
            commit(end, job=(job_id, event, project, end - start))
            reason = note or f"bytes {start}..{end}"
            return CaptureResult("queued", job_id, reason, end - start)
    except LockBusy:
        return _skip("another capture of this session is running")
