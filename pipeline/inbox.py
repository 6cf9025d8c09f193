"""The inbox as a folder queue: pending, claim, complete, fail, release, retry, withdraw.

Layout (``Paths``): ``inbox/<stamp>-<id>.json`` are pending envelopes (names sort by capture time);
``inbox/claimed/`` holds the envelopes a worker is processing, each with ``<stem>.owner.json``
(``{"pid","started_at","host","proc_start"}``) beside it; ``inbox/failed/`` holds dead letters, each
with ``<stem>.error.json`` (``{"error_class","message","attempts","stderr_tail","failed_at"}``).
``<stem>`` is the envelope file name without ``.json``.

Invariants:
- A claim is one ``os.rename`` from ``inbox/`` into ``claimed/``: of N workers racing for a file,
  exactly one rename succeeds; the others get ``None``. One job, one worker.
- Files move between the three folders only by rename, so a job is always in exactly one of
  them (or gone once complete); a crash at any moment loses no envelope and no spool.
- A claim whose owner process is dead is renamed back to ``inbox/`` by
  ``pipeline.reclaim.release_dead_claims`` (the crash recovery, in its own module).
- A malformed envelope never crashes a worker: it is moved to ``failed/`` with the reason.
- Each job's transcript bytes are its spool (``pipeline.spool``), removed only by
  ``withdraw`` (`memc private`) or ``spool.prune_spools`` (long after the job is done).
Times in this module are epoch seconds; ``now=None`` means ``time.time()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline import envelope as envelope_format
from pipeline import procs
from pipeline.config import Paths
from pipeline.errors import PathRefused
from pipeline.fsutil import atomic_write
from pipeline.spool import spool_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.models import Envelope

OWNER_SUFFIX = envelope_format.OWNER_SUFFIX
ERROR_SUFFIX = envelope_format.ERROR_SUFFIX
MALFORMED = "MalformedEnvelope"


@dataclass(frozen=True)
class Claim:
    envelope: Envelope
    path: Path  # inbox/claimed/<stem>.json

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def owner_path(self) -> Path:
        return sidecar(self.path, OWNER_SUFFIX)


@dataclass(frozen=True)
class InboxCounts:
    pending: int
    claimed: int
    failed: int


@dataclass(frozen=True)
class FailedJob:
    id: str
    error_class: str
    message: str
    attempts: int
    failed_at: str
    file_name: str = ""


def envelope_files(folder: Path) -> list[Path]:
    """The envelope files of one of the three folders, sorted (temp files and sidecars skipped)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [
        folder / n
        for n in sorted(names)
        if envelope_format.is_envelope_name(n) and (folder / n).is_file()
    ]


def sidecar(envelope: Path, suffix: str) -> Path:
    """The record beside an envelope file: ``<stem>.json`` -> ``<stem><suffix>`` (``OWNER_SUFFIX``
    in claimed/, ``ERROR_SUFFIX`` in failed/)."""
    return envelope.with_name(envelope.name.removesuffix(".json") + suffix)


job_id_of = envelope_format.job_id_of  # the envelope format owns its file names


def pending(paths: Paths) -> list[Path]:
    """Pending envelope files, oldest capture first (temp and hidden files ignored)."""
    return envelope_files(paths.inbox)


def claimed_envelopes(paths: Paths) -> list[Path]:
    return envelope_files(paths.claimed)


def failed_envelopes(paths: Paths) -> list[Path]:
    return envelope_files(paths.failed)


def read_envelope(path: Path) -> Envelope | None:
    """The envelope in a job file; None when the file is gone or malformed."""
    try:
        from pipeline.models import Envelope  # here: `memc status` counts without it

        return Envelope.from_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def withdraw(paths: Paths, path: Path, envelope: Envelope) -> bool:
    """Remove a pending or failed job for good: its envelope file, error record and spool.
    False when the envelope was no longer there (a drain claimed it meanwhile): nothing removed."""
    try:
        path.unlink()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        os.unlink(sidecar(path, ERROR_SUFFIX))  # a failed job's reason
    with contextlib.suppress(OSError, PathRefused):
        os.unlink(spool_path(paths, envelope))
    return True


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _move_to_failed(paths: Paths, src: Path, record: dict) -> Path | None:
    """Rename ``src`` into failed/ and write its error record. None if ``src`` vanished."""
    dest = paths.failed / src.name
    paths.failed.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except FileNotFoundError:
        return None
    atomic_write(
        sidecar(dest, ERROR_SUFFIX),
        json.dumps(record, ensure_ascii=False, indent=1) + "\n",
    )
    return dest


def claim(paths: Paths, path: Path, now: float | None = None) -> Claim | None:
    """Take a pending envelope for this process. None if another worker got it first (or it
    was malformed: then it now sits in failed/ with the reason)."""
    now = time.time() if now is None else now
    dest = paths.claimed / path.name
    paths.claimed.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None
    try:  # the claim's age (for owner-less claims) counts from now, not from the capture
        os.utime(dest, (now, now))
    except OSError:
        pass
    import socket  # here: `memc status` reads the inbox without it

    pid = os.getpid()
    owner = {
        "pid": pid,
        "started_at": now,
        "host": socket.gethostname(),
        "proc_start": procs.proc_start(pid),
    }
    atomic_write(sidecar(dest, OWNER_SUFFIX), json.dumps(owner) + "\n")
    try:
        from pipeline.models import Envelope

        envelope = Envelope.from_json(dest.read_bytes())
    except (ValueError, OSError) as exc:
        drop_owner(dest)
        _move_to_failed(
            paths,
            dest,
            {
                "error_class": MALFORMED,
                "attempts": 0,
                "stderr_tail": "",
                "failed_at": _iso(now),
                "message": f"{exc}; the capture that wrote it is broken: inspect the file, then "
                "delete it (`memc retry` will only fail it again)",
            },
        )
        return None
    return Claim(envelope=envelope, path=dest)


def drop_owner(claimed_path: Path) -> None:
    """Remove a claimed job's owner record (it is returned, done or failed)."""
    try:
        os.unlink(sidecar(claimed_path, OWNER_SUFFIX))
    except FileNotFoundError:
        pass


def record_job(
    conn: sqlite3.Connection,
    envelope: Envelope,
    status: str,
    *,
    now: float | None = None,
    entries: int | None = None,
    detail: str | None = None,
    attempt: bool = False,
) -> None:
    """Upsert the job's ledger row (capture usually created it as ``queued``)."""
    now = time.time() if now is None else now
    conn.execute(
        "INSERT INTO jobs(id, session_id, event, project, status, created_at, updated_at, attempts,"
        " bytes, entries, detail) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
        " status=excluded.status, updated_at=excluded.updated_at,"
        " attempts=jobs.attempts + ?, entries=COALESCE(?, jobs.entries),"
        " detail=COALESCE(?, jobs.detail)",
        (
            envelope.id,
            envelope.session_id,
            envelope.event,
            envelope.project,
            status,
            now,
            now,
            1 if attempt else 0,
            max(0, envelope.end - envelope.start),
            entries or 0,
            detail or "",
            1 if attempt else 0,
            entries,
            detail,
        ),
    )


def complete(
    paths: Paths,
    claim: Claim,
    *,
    conn: sqlite3.Connection | None = None,
    entries: int | None = None,
    detail: str | None = None,
    now: float | None = None,
) -> None:
    """Finish a job: mark it done (when ``conn`` is given), then remove the claimed envelope and
    its owner file. The spool stays until ``prune_spools``."""
    if conn is not None:
        record_job(conn, claim.envelope, "done", now=now, entries=entries, detail=detail)
    try:
        os.unlink(claim.path)
    except FileNotFoundError:
        pass
    drop_owner(claim.path)


def fail(
    paths: Paths,
    claim: Claim,
    *,
    error_class: str,
    message: str,
    attempts: int,
    stderr_tail: str = "",
    now: float | None = None,
    conn: sqlite3.Connection | None = None,
) -> None:
    """Dead-letter a job into failed/ with ``<stem>.error.json``; its spool is kept for `retry`."""
    from pipeline.redact import redact  # a CLI error may quote a key: scrub before storing

    message, stderr_tail = redact(message), redact(stderr_tail)
    now = time.time() if now is None else now
    drop_owner(claim.path)
    _move_to_failed(
        paths,
        claim.path,
        {
            "error_class": error_class,
            "message": message,
            "attempts": int(attempts),
            "stderr_tail": stderr_tail[-4000:],
            "failed_at": _iso(now),
        },
    )
    if conn is not None:
        record_job(
            conn, claim.envelope, "failed", now=now, detail=f"{error_class}: {message}"[:500]
        )


def release(paths: Paths, claim: Claim) -> bool:
    """Put a claimed job back in the inbox untouched (budget deferral, circuit open, shutdown)."""
    try:
        os.rename(claim.path, paths.inbox / claim.path.name)
    except FileNotFoundError:
        return False
    drop_owner(claim.path)
    return True


def _read_error(path: Path) -> dict:
    try:
        data = json.loads(sidecar(path, ERROR_SUFFIX).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def failed_jobs(paths: Paths) -> list[FailedJob]:
    """Every dead-lettered job with its error record, oldest capture first."""
    out = []
    for path in envelope_files(paths.failed):
        err = _read_error(path)
        attempts = err.get("attempts", 0)
        out.append(
            FailedJob(
                id=job_id_of(path.name),
                error_class=str(err.get("error_class", "unknown")),
                message=str(err.get("message", "no error record")),
                attempts=attempts if isinstance(attempts, int) else 0,
                failed_at=str(err.get("failed_at", "")),
                file_name=path.name,
            )
        )
    return out


def retry(paths: Paths, ids: list[str] | None = None) -> list[str]:
    """Move failed jobs back to the inbox (all when ``ids`` is None or empty). An id matches a
    job id, an envelope file stem, or a unique prefix of a job id. Returns the ids moved."""
    jobs = envelope_files(paths.failed)
    if ids:
        chosen: list[Path] = []
        for want in ids:
            want = want.strip().removesuffix(".json")
            hits = [
                p for p in jobs if job_id_of(p.name) == want or p.name.removesuffix(".json") == want
            ]
            if not hits:
                hits = [p for p in jobs if job_id_of(p.name).startswith(want)] if want else []
                hits = hits if len(hits) == 1 else []
            chosen.extend(h for h in hits if h not in chosen)
    else:
        chosen = jobs
    moved = []
    for path in chosen:
        try:
            os.rename(path, paths.inbox / path.name)
        except FileNotFoundError:
            continue
        try:
            os.unlink(sidecar(path, ERROR_SUFFIX))
        except FileNotFoundError:
            pass
        moved.append(job_id_of(path.name))
    return moved


def counts(paths: Paths) -> InboxCounts:
    return InboxCounts(
        len(envelope_files(paths.inbox)),
        len(envelope_files(paths.claimed)),
        len(envelope_files(paths.failed)),
    )
