"""Spools: the raw transcript bytes of each job, ``.memc/spool/<job id>.jsonl``.

A capture writes the spool before its envelope (the envelope's rename into the inbox is the
commit), so a spool exists for every job the inbox holds. Invariants:
- An envelope's spool is found only through ``spool_path``, which accepts a file directly in
  ``.memc/spool/`` and nothing else (an envelope is data: it must not point distil or
  `memc private` at ``state.db``).
- Spools are removed only for jobs recorded ``done`` more than ``keep_days`` ago (or orphans that
  old with no envelope anywhere); never for a pending, claimed or failed job (``inbox.withdraw``
  removes a withdrawn job's own spool).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from pipeline.config import Paths
from pipeline.errors import PathRefused
from pipeline.fsutil import safe_join
from pipeline.models import Envelope


def spool_path(paths: Paths, envelope: Envelope) -> Path:
    """The envelope's spool file, through the path guard (raises PathRefused).

    Only a file directly in ``.memc/spool/`` is accepted: an envelope naming ``state.db`` or
    ``config.toml`` must not get that file read as a transcript, or deleted by ``memc private``."""
    rel = envelope.spool
    if not (isinstance(rel, str) and rel.startswith("spool/") and rel.count("/") == 1):
        raise PathRefused(f"spool {str(rel)[:80]!r} is not a file in .memc/spool/")
    return safe_join(paths.memc, rel)


def prune_spools(
    paths: Paths, conn: sqlite3.Connection, keep_days: float, now: float | None = None
) -> int:
    """Delete spools of jobs done more than ``keep_days`` ago; returns how many were removed."""
    now = time.time() if now is None else now
    cutoff = now - keep_days * 86400
    try:
        names = [n for n in os.listdir(paths.spool) if n.endswith(".jsonl")]
    except OSError:
        return 0
    if not names:
        return 0
    from pipeline import inbox  # (inbox imports this module for spool_path)

    jobs = inbox.pending(paths) + inbox.claimed_envelopes(paths) + inbox.failed_envelopes(paths)
    live = {inbox.job_id_of(p.name) for p in jobs}
    removed = 0
    for name in names:
        job_id = name[:-6]
        if job_id in live:
            continue
        row = conn.execute("SELECT status, updated_at FROM jobs WHERE id=?", (job_id,)).fetchone()
        try:
            path = safe_join(paths.spool, name)
            if row is not None:
                if row[0] != "done" or row[1] >= cutoff:
                    continue
            elif os.stat(path).st_mtime >= cutoff:
                continue  # unknown job: only an orphan this old (a capture that never committed)
            os.unlink(path)
            removed += 1
        except (OSError, PathRefused):
            continue
    return removed
