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

from pathlib import Path

from pipeline.config import Paths
from pipeline.errors import PathRefused
from pipeline.fsutil import safe_join

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.models import Envelope


def spool_path(paths: Paths, envelope: Envelope) -> Path:
    """The envelope's spool file, through the path guard (raises PathRefused).

    Only a file directly in ``.memc/spool/`` is accepted: an envelope naming ``state.db`` or
    ``config.toml`` must not get that file read as a transcript, or deleted by ``memc private``."""
    rel = envelope.spool
    if not (isinstance(rel, str) and rel.startswith("spool/") and rel.count("/") == 1):
        raise PathRefused(f"spool {str(rel)[:80]!r} is not a file in .memc/spool/")
    return safe_join(paths.memc, rel)


# Pruning is O(what expired) in pipeline.spools; re-exported here for the callers of this module.
from pipeline.spools import prune_spools as prune_spools  # noqa: E402
