"""Spools: the raw transcript bytes of each job, ``.memc/spool/<job id>.jsonl``.

A capture writes the spool before its envelope (the envelope's rename into the inbox is the
commit), so a spool exists for every job the inbox holds. Invariants:
- An envelope's spool is found only through ``spool_path``, which accepts a file directly in
  ``.memc/spool/`` and nothing else (an envelope is data: it must not point distil or
  `memc private` at ``state.db``).
- Spools are removed only for jobs recorded ``done`` more than ``keep_days`` ago (or orphans that
  old with no envelope anywhere); never for a pending, claimed or failed job (``inbox.withdraw``
  removes a withdrawn job's own spool).
- Pruning (``prune_spools``, after every drain) costs what expired, not what is kept: the ledger
  (``jobs``, indexed by status and time) names the jobs done since the last prune's cutoff (kv
  ``spool_pruned_until``) and only their spools are touched. A full pass over the folder, for
  orphans (a spool whose capture never committed), temp files of killed hooks and anything the
  ledger pass missed, runs at most once per ``FULL_EVERY_S`` (kv ``spool_full_prune_at``). Names
  come from the ledger or the folder listing and must be plain job ids, so no path is built from
  anything else (no per-file resolve is needed to stay inside ``spool/``).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

from pipeline import state
from pipeline.errors import PathRefused
from pipeline.fsutil import clean_temp_files, safe_join
from pipeline.paths import Paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.models import Envelope

FULL_EVERY_S = 24 * 3600
TEMP_AGE_S = 600.0  # a spool temp file this old belongs to a hook that was killed
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def spool_path(paths: Paths, envelope: Envelope) -> Path:
    """The envelope's spool file, through the path guard (raises PathRefused).

    Only a file directly in ``.memc/spool/`` is accepted: an envelope naming ``state.db`` or
    ``config.toml`` must not get that file read as a transcript, or deleted by ``memc private``."""
    rel = envelope.spool
    if not (isinstance(rel, str) and rel.startswith("spool/") and rel.count("/") == 1):
        raise PathRefused(f"spool {str(rel)[:80]!r} is not a file in .memc/spool/")
    return safe_join(paths.memc, rel)


def _live(paths: Paths) -> set[str]:
    from pipeline import inbox  # inbox imports this module (spool_path)

    return {
        inbox.job_id_of(p.name)
        for folder in (paths.inbox, paths.claimed, paths.failed)
        for p in inbox.envelope_files(folder)
    }


def _unlink(paths: Paths, job_id: str) -> bool:
    try:
        os.unlink(os.path.join(paths.spool, f"{job_id}.jsonl"))
        return True
    except OSError:
        return False


def prune_spools(
    paths: Paths, conn: sqlite3.Connection, keep_days: float, now: float | None = None
) -> int:
    """Delete spools of jobs done more than ``keep_days`` ago; returns how many were removed."""
    now = time.time() if now is None else now
    cutoff = now - keep_days * 86400
    since = float(state.kv_get(conn, "spool_pruned_until") or 0.0)
    expired = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM jobs WHERE status='done' AND updated_at >= ? AND updated_at < ?",
            (min(since, cutoff), cutoff),
        )
        if _JOB_ID.fullmatch(row[0])
    ]
    removed = 0
    if expired:
        live = _live(paths)
        removed += sum(_unlink(paths, job_id) for job_id in expired if job_id not in live)
    state.kv_set(conn, "spool_pruned_until", repr(max(since, cutoff)), now=now)
    last_full = float(state.kv_get(conn, "spool_full_prune_at") or 0.0)
    if now - last_full >= FULL_EVERY_S or now < last_full:
        removed += _full_pass(paths, conn, cutoff, now)
        state.kv_set(conn, "spool_full_prune_at", repr(now), now=now)
    return removed


def _full_pass(paths: Paths, conn: sqlite3.Connection, cutoff: float, now: float) -> int:
    """Every spool in the folder: done long enough ago, or an orphan that old; and the temp
    files of captures killed mid-write (older than ``TEMP_AGE_S``: no hook writes that long)."""
    removed = clean_temp_files(paths.spool, older_than_s=TEMP_AGE_S, now=now)
    try:
        names = [n for n in os.listdir(paths.spool) if n.endswith(".jsonl")]
    except OSError:
        return removed
    if not names:
        return removed
    live = _live(paths)
    for name in names:
        job_id = name[:-6]
        if job_id in live or not _JOB_ID.fullmatch(job_id):
            continue
        row = conn.execute("SELECT status, updated_at FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is not None:
            if row[0] != "done" or row[1] >= cutoff:
                continue
        else:
            try:
                if os.stat(os.path.join(paths.spool, name)).st_mtime >= cutoff:
                    continue  # unknown job: only an orphan this old (a capture never committed)
            except OSError:
                continue
        removed += _unlink(paths, job_id)
    return removed
