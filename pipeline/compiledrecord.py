"""The committed record of which daily entries are compiled: ``daily/.compiled/<host>.txt``.

Several roots share one history over git (``pipeline.sync``); each compiles only the entries its
own host distilled (``pipeline.pending``). What each host has compiled is kept in the repository,
so any root can tell, from files alone, which entries are compiled and which still wait for their
host: one file per host, one line per compiled entry, ``<entry_id> <entry_hash>`` (the hash of
the entry's text when it was compiled, ``pending.entry_hash``).

Invariants:
- A host writes only its own file, so two roots never change the same file and a merge of the
  record cannot conflict. A compile batch appends its entries in the same commit as its pages;
  ``undo`` and a sync that gives up a conflicting page remove entries (a rewrite of the file).
- For one id the last line wins; an entry whose hash no longer matches its text was edited since
  it was compiled and counts as not compiled.
- The folder is hidden: the daily-log readers (``daily.list_days``, search, lint) skip it.
- Writes are atomic (``fsutil.atomic_write``) and happen under the caller's compile lock.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline import fsutil

FOLDER = ".compiled"
REL = f"daily/{FOLDER}"  # the pathspec a versioning batch commits
_LINE = re.compile(r"^([0-9a-f]{6,40}) ([0-9a-f]{6,64})$")
_HOST = re.compile(r"^[a-z0-9-]{1,63}$")


def folder(daily_dir: Path) -> Path:
    return daily_dir / FOLDER


def record_file(daily_dir: Path, host: str) -> Path:
    if not _HOST.match(host):
        raise ValueError(f"not a host token: {host!r}")
    return folder(daily_dir) / f"{host}.txt"


def read_host(daily_dir: Path, host: str) -> dict[str, str]:
    """{entry id: hash} that ``host`` recorded as compiled ({} when it has no file)."""
    try:
        text = record_file(daily_dir, host).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        found = _LINE.match(line.strip())
        if found:
            out[found.group(1)] = found.group(2)
    return out


def read_all(daily_dir: Path) -> dict[str, tuple[str, str]]:
    """{entry id: (host, hash)} over every host's file. An id two hosts both recorded (a host
    renamed, or MEMC_HOST reused) keeps the first host in name order; either way it is compiled."""
    out: dict[str, tuple[str, str]] = {}
    try:
        names = sorted(os.listdir(folder(daily_dir)))
    except OSError:
        return out
    for name in names:
        host = name[:-4] if name.endswith(".txt") else ""
        if not _HOST.match(host):
            continue
        for entry_id, digest in read_host(daily_dir, host).items():
            out.setdefault(entry_id, (host, digest))
    return out


def _write(daily_dir: Path, host: str, records: Mapping[str, str]) -> None:
    path = record_file(daily_dir, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{entry_id} {digest}\n" for entry_id, digest in records.items())
    fsutil.atomic_write(path, body)


def add(daily_dir: Path, host: str, compiled: Iterable[tuple[str, str]]) -> int:
    """Record ``compiled`` (entry id, hash) pairs in ``host``'s file; returns how many changed.
    The file is rewritten with one line per id (so an entry recompiled after an edit does not
    grow it), in the order entries were first compiled."""
    records = read_host(daily_dir, host)
    changed = 0
    for entry_id, digest in compiled:
        if records.get(entry_id) != digest:
            records[entry_id] = digest
            changed += 1
    if changed:
        _write(daily_dir, host, records)
    return changed


def remove(daily_dir: Path, host: str, entry_ids: Iterable[str]) -> list[str]:
    """Take ``entry_ids`` out of ``host``'s file (they are to be compiled again); returns those
    that were there."""
    records = read_host(daily_dir, host)
    gone = [e for e in dict.fromkeys(entry_ids) if e in records]
    if gone:
        for entry_id in gone:
            del records[entry_id]
        _write(daily_dir, host, records)
    return gone
