"""Crash recovery for the inbox: claims of dead workers go back to ``inbox/``.

A claim whose owner process on this host is dead (pid gone, or reused: ``procs.pid_alive``
compares the kernel start time), or that has no owner file a minute after it was made
(``ORPHAN_CLAIM_S``), is renamed back to ``inbox/``; claims recorded by another host name cannot
be checked and are returned only after ``FOREIGN_CLAIM_S`` (a day). The same pass drops owner and
error records whose envelope is gone and temp files of writers that died. One reaper at a time
(a skip-if-busy lock). Moves are renames, as everywhere in the inbox, so nothing is lost.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from pipeline import procs
from pipeline.config import Paths
from pipeline.errors import LockBusy
from pipeline.fsutil import clean_temp_files, file_lock
from pipeline.inbox import ERROR_SUFFIX, OWNER_SUFFIX, drop_owner, envelope_files, sidecar

FOREIGN_CLAIM_S = 24 * 3600  # a claim owned by another host is returned after a day
ORPHAN_CLAIM_S = 60.0


def _owner_of(claimed_path: Path) -> dict | None:
    try:
        data = json.loads(sidecar(claimed_path, OWNER_SUFFIX).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def release_dead_claims(paths: Paths, now: float | None = None) -> int:
    """Return claims of dead workers to the inbox; also sweep crash debris. Returns how many.

    A claim is dead when its owner pid (on this host) is gone, when its owner is another host and
    it is older than ``FOREIGN_CLAIM_S``, or when it has no readable owner file and was made more
    than a minute ago. Only one process reaps at a time; a busy reaper
    lock means another process is doing this right now, so this call returns 0.
    """
    now = time.time() if now is None else now
    try:
        with file_lock(paths.lock("inbox-reaper"), blocking=False):
            return _reap(paths, now)
    except LockBusy:
        return 0


def _reap(paths: Paths, now: float) -> int:
    host = socket.gethostname()
    released = 0
    for path in envelope_files(paths.claimed):
        owner = _owner_of(path)
        if owner is not None:
            if owner.get("host") != host:
                # Another machine's worker (or this one under an old hostname): its pid cannot
                # be checked, so the claim is trusted until it is older than any real job.
                started = owner.get("started_at")
                if not isinstance(started, (int, float)) or now - started < FOREIGN_CLAIM_S:
                    continue
            else:
                pid = owner.get("pid")
                if isinstance(pid, int) and procs.pid_alive(
                    pid, str(owner.get("proc_start") or "")
                ):
                    continue
        else:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if now - max(st.st_mtime, st.st_ctime) < ORPHAN_CLAIM_S:
                continue  # just renamed; its owner file is being written
        try:
            os.rename(path, paths.inbox / path.name)
        except FileNotFoundError:
            continue
        drop_owner(path)
        released += 1
    for folder, suffix in ((paths.claimed, OWNER_SUFFIX), (paths.failed, ERROR_SUFFIX)):
        _drop_orphan_records(folder, suffix, now)
    for folder in (paths.inbox, paths.claimed, paths.failed):
        clean_temp_files(folder, older_than_s=ORPHAN_CLAIM_S, now=now)
    return released


def _drop_orphan_records(folder: Path, suffix: str, now: float) -> None:
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.endswith(suffix) or (folder / (name[: -len(suffix)] + ".json")).exists():
            continue
        try:
            if now - os.stat(folder / name).st_mtime >= ORPHAN_CLAIM_S:
                os.unlink(folder / name)
        except OSError:
            pass
