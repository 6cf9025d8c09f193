"""Capture: spool the transcript bytes added since the last capture and queue one job for them.

Role: the only work a hook does. It copies bytes, it never parses a transcript.

Invariants:
- Lossless and exactly once per byte range. Per session (hash of session id + transcript path) a
  cursor in ``state.db`` holds the offset of the last complete line consumed and the file's
  identity (``st_dev:st_ino`` plus a hash of the first line). A capture copies ``[cursor, last
  complete newline)`` into ``.memc/spool/<job>.jsonl``, writes a pending marker, then the
  envelope into the inbox (atomic rename: the commit point), then advances the cursor and
  records the job in one transaction. The job id hashes (session, identity, start, end), so a
  range already queued is never queued again; the marker (``pipeline.cursor``) makes the next
  capture move past a range whose envelope landed even if the cursor advance never happened
  (a crash, or a busy state.db), even if the transcript grew in between.
- A busy or locked state.db never holds a capture for long: each write waits at most
  ``cursor.DB_WAIT_S`` once; the capture still spools and writes its envelope and leaves the
  cursor to the next capture or the drain. A database too locked even to read skips the
  capture (the cursor did not move, so the next capture takes the range).
- A half-written last line is never consumed; a replaced or truncated transcript (identity
  changed, or shorter than the cursor) is captured again from offset 0. The same transcript under
  a new inode (a backup restore, a sync tool, a new disk: first line and the bytes before the
  cursor hash the same, ``tailfile.same_prefix``) keeps its offset: only what it gained is
  captured.
- Never blocks: files are read through ``pipeline.tailfile`` (regular files only, O_NONBLOCK,
  re-checked with fstat, bounded positional reads); a session's lock is waited on for at most
  ``lock_timeout`` seconds.
- Never raises for expected outcomes: every result is a ``CaptureResult``.
- Skips private sessions (``private_sessions`` table, or a delta in which the human typed
  ``[memc:private]``, which also marks the session private; ``pipeline.hookguard``), transcript
  paths that lead into ``.memc/`` or symlink out of ``~/.claude`` and the project, excluded
  projects and Agent SDK transcripts (``"entrypoint":"sdk-py"`` in the first 64 KiB).
- The session id is data: file names use its hash, never the raw value.
- Subagent transcripts are captured with their parent by ``pipeline.subagents.capture_session``
  (same session id, their own cursors: the cursor key hashes the path).
Stdlib only, and light: this module is on the hook's hot path (no dataclasses, no datetime).
Starting a drain after a hook queued a job is ``pipeline.spawn``; capturing idle tails of
sessions closed without SessionEnd is ``pipeline.idle`` (run by the drain).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator

from pipeline import cursor, envelope, state, tailfile
from pipeline.cursor import session_key as session_key
from pipeline.errors import LockBusy, PrivateMarker
from pipeline.fsutil import atomic_write, file_lock, safe_join
from pipeline.hookguard import transcript_refusal, typed_marker
from pipeline.project import identify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.hookconfig import HookSettings

PRIVATE_MARKER = b"[memc:private]"
HEAD_BYTES = 64 * 1024  # scanned for the SDK entrypoint (the identity reads at most 4 KiB of it)
RETRY_ATTEMPTS = 5
_SDK: list[re.Pattern] = []


class CaptureResult:
    """What a capture did. ``status``: "queued" | "nothing-new" | "below-threshold" | "skipped"."""

    __slots__ = ("bytes", "job_id", "reason", "status")

    def __init__(self, status: str, job_id: str | None, reason: str, bytes: int = 0) -> None:
        self.status, self.job_id, self.reason, self.bytes = status, job_id, reason, bytes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaptureResult) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self.status, self.job_id, self.reason, self.bytes)

    def __repr__(self) -> str:
        return "CaptureResult(status={!r}, job_id={!r}, reason={!r}, bytes={!r})".format(
            *self._key()
        )


def project_name(cwd: str) -> str:
    """Display name of the project cwd belongs to (its git repository; see pipeline.project)."""
    return identify(cwd).name


def is_excluded(settings: Settings | HookSettings, project: str, cwd: str, key: str = "") -> bool:
    if not settings.exclude_projects:
        return False
    import fnmatch

    return any(
        fnmatch.fnmatch(project, pattern)
        or (cwd and fnmatch.fnmatch(cwd, pattern))
        or (key and fnmatch.fnmatch(key, pattern))
        for pattern in settings.exclude_projects
    )


def _skip(reason: str) -> CaptureResult:
    return CaptureResult("skipped", None, reason)


def _blocks(fd: int, start: int, end: int) -> Iterator[bytes]:
    """Yield [start, end) in blocks; raise PrivateMarker if the human typed the opt-out marker
    in it (``hookguard.typed_marker``: quoted in tool output it does not count)."""
    tail, pos, checked = b"", start, start
    while pos < end:
        block = tailfile.pread(fd, min(tailfile.BLOCK, end - pos), pos)
        if not block:
            raise OSError("transcript shrank while it was being copied")
        window, base = tail + block, pos - len(tail)
        idx = window.find(PRIVATE_MARKER)
        while idx >= 0:
            if base + idx >= checked:
                typed, checked = typed_marker(fd, base + idx, start, end, tailfile.pread)
                if typed:
                    raise PrivateMarker()
            idx = window.find(PRIVATE_MARKER, idx + 1)
        tail = block[-(len(PRIVATE_MARKER) - 1) :]
        pos += len(block)
        yield block


def capture(
    settings: Settings | HookSettings,
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
    try:
        conn = state.connect(paths.state_db, timeout=cursor.DB_WAIT_S)
    except sqlite3.OperationalError as exc:
        if cursor.is_busy(exc):
            return _skip("state.db is locked; the next capture takes this range")
        raise
    try:
        if state.is_private(conn, session_id):
            return _skip("session is private")
        fd, st = tailfile.open_transcript(transcript, attempts, sleep)
        if fd is None:
            return _skip(st)
        refused = transcript_refusal(transcript, cwd=cwd, memc_dir=str(paths.memc))
        if refused:  # checked once it exists: a dangling link is retried like a missing file
            os.close(fd)
            return _skip(refused)
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
    except sqlite3.OperationalError as exc:  # a read that met a locked database: nothing moved
        if cursor.is_busy(exc):
            return _skip("state.db is locked; the next capture takes this range")
        raise
    finally:
        conn.close()


def _is_sdk(head: bytes) -> bool:
    if not _SDK:
        _SDK.append(re.compile(rb'"entrypoint"\s*:\s*"sdk-py"'))
    return _SDK[0].search(head) is not None


def _capture_open(
    settings: Settings | HookSettings,
    conn: sqlite3.Connection,
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
    if _is_sdk(head):
        return _skip("Agent SDK transcript (entrypoint sdk-py)")
    identity = tailfile.identity(st, head)
    if identity is None:
        return CaptureResult("nothing-new", None, "no complete line yet")
    key = cursor.session_key(session_id, transcript)

    def move(
        offset: int, *, jobs: list[tuple] | None = None, touch: bool = True, tail: str | None = None
    ) -> bool:
        return cursor.advance(
            conn,
            key=key,
            session_id=session_id,
            transcript=transcript,
            identity=identity,
            offset=offset,
            tail=tailfile.tail_mark(fd, offset) if tail is None else tail,
            now=now,
            jobs=jobs or [],
            touch=touch,
        )

    try:
        with file_lock(cursor.stripe_lock(paths, key), timeout=lock_timeout):
            row = cursor.read_row(conn, key)
            at, busy = cursor.settle(
                paths, conn, key, session_id=session_id, transcript=transcript, now=now, row=row
            )
            size = os.fstat(fd).st_size
            start, note, moved = 0, "", ""
            if at is not None:
                if at[1] > size or (
                    at[0] != identity
                    and not tailfile.same_prefix(fd, size, identity, at[0], at[2], at[1])
                ):
                    note = "transcript was replaced; captured from the start"
                else:
                    start = at[1]
                    if at[0] != identity:  # a restored or synced copy: only what it gained
                        moved = "same transcript under a new inode; "
            end = tailfile.last_newline_end(fd, start, size)
            if end <= start:
                return CaptureResult("nothing-new", None, moved + "no new complete lines")
            if event == "stop" and not force:
                lines = tailfile.count_lines(fd, start, end, settings.stop_min_lines)
                since = now - (row["last_capture_at"] if row is not None and not note else now)
                if lines < settings.stop_min_lines and since < settings.stop_min_minutes * 60:
                    if (row is None or note) and not busy:  # start the minutes clock
                        move(start)
                    return CaptureResult(
                        "below-threshold",
                        None,
                        f"{lines} new lines, {since / 60:.1f} min since last capture",
                        end - start,
                    )
            job_id = envelope.job_id_for(session_id, identity, start, end)
            if cursor.queued(paths, conn, job_id):
                if not busy:
                    move(end, touch=False)
                return CaptureResult("nothing-new", job_id, f"range already queued as {job_id}")
            spool = safe_join(paths.spool, f"{job_id}.jsonl")
            try:
                atomic_write(
                    spool, _blocks(fd, start, end), mode=0o600
                )  # raw transcript: owner only
            except PrivateMarker:
                return _mark_private(conn, session_id, now, busy, lambda: move(end))
            end_tail = tailfile.tail_mark(fd, end)
            marker = {
                "id": job_id,
                "start": start,
                "end": end,
                "identity": identity,
                "tail": end_tail,
                "tail_start": at[2] if at is not None and start == at[1] else "",
                "event": event,
                "project": project,
                "session_id": session_id,
                "transcript": transcript,
                "at": now,
            }
            busy = cursor.write_marker(paths, conn, key, marker, busy=busy)
            captured_at = envelope.iso_utc(now)
            values = {
                "id": job_id,
                "session_id": session_id,
                "event": event,
                "transcript_path": transcript,
                "cwd": cwd,
                "project": project,
                "project_key": project_key,
                "start": start,
                "end": end,
                "captured_at": captured_at,
                "spool": f"spool/{job_id}.jsonl",
            }
            target = safe_join(paths.inbox, envelope.file_name(captured_at, job_id))
            atomic_write(target, envelope.encode(values))  # the commit point
            job = [(job_id, event, project, end - start)]
            if busy or not move(end, jobs=job, tail=end_tail):
                note = f"{note}; {cursor.BUSY_NOTE}" if note else cursor.BUSY_NOTE
            reason = note or f"{moved}bytes {start}..{end}"
            return CaptureResult("queued", job_id, reason, end - start)
    except LockBusy:
        return _skip("another capture of this session is running")


def _mark_private(
    conn: sqlite3.Connection, session_id: str, now: float, busy: bool, move: Callable[[], bool]
) -> CaptureResult:
    """The delta carries the opt-out marker: mark the session private and move past it."""
    if not busy:
        try:
            conn.execute(
                "INSERT OR IGNORE INTO private_sessions(session_id, at) VALUES(?,?)",
                (session_id, now),
            )
            move()
        except sqlite3.OperationalError as exc:  # busy: the next capture meets the marker again
            if not cursor.is_busy(exc):
                raise
    return _skip("opt-out marker [memc:private] found; session is now private")
