"""Which daily entries wait for a compile: the scan of daily/, the staleness trigger, selection.

Invariants:
- An entry is pending while ``compiled_at`` and ``withdrawn_at`` are both NULL in state.db.
- ``sync_entries`` rescans only daily files whose (mtime, size) changed. In a rescanned file:
  an entry state.db does not know is inserted (created_at = the file's mtime); an entry whose
  text no longer matches its recorded content hash (the user edited it) is pending again, so it
  is recompiled; an entry that is gone (the user deleted it, or the whole file) is withdrawn:
  ``withdrawn_at`` set, never compiled, never silently marked compiled. An entry that comes back
  (an undo) is active again. Each edit and withdrawal is one human-readable note for the caller.
- ``should_compile`` is the staleness test of DESIGN.md ("Compile"): no model, no writes but this
  bookkeeping.
- Who compiles what (roots sharing one history, ``pipeline.sync``): an entry is compiled by the
  host that distilled it. state.db's ``host`` is '' for this root's own entries (distil records
  them so) and the marker's ``host=`` for entries read from a file; an entry a sync brought in
  without a host belongs to the root that distilled it (``FOREIGN``). Only own entries are
  pending here (``OWN``): ``--all`` and ``--file`` too, so no entry is compiled on two roots.
  ``reconcile`` marks compiled what any host's committed record (``pipeline.compiledrecord``)
  lists with the entry's current hash.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from pipeline import state
from pipeline.daily import DailyEntry, hash_matches, list_days, read_entries
from pipeline.tailfile import sha256  # not hashlib: OpenSSL's start-up is `memc status`'s cost

SCAN_KEY = "compile_scan"
LAST_COMPILE_KEY = "last_compile_at"
PENDING = "compiled_at IS NULL AND withdrawn_at IS NULL"
OWN = "host IN ('', ?)"  # the parameter: Settings.this_host
FOREIGN = "?"  # state.db host of a hostless entry that arrived by sync: never equals a host token


@dataclass(frozen=True)
class TriggerDecision:
    fire: bool
    reason: str
    pending: int


def entry_hash(entry: DailyEntry) -> str:
    return sha256(entry.text.encode("utf-8")).hexdigest()[:16]


def insert_entry(
    conn, entry: DailyEntry, created_at: float, *, compiled_at: float | None = None
) -> None:
    """The one INSERT of a daily entry state.db does not know yet (the scan, and the rebuild of
    a damaged state.db); its host is the marker's, so another host's entry stays that host's."""
    conn.execute(
        "INSERT OR IGNORE INTO entries(id, day, daily_path, session_id, project, title, "
        "content_hash, created_at, compiled_at, host) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            entry.id,
            entry.day,
            entry.daily_path,
            entry.session,
            entry.project,
            entry.title,
            entry_hash(entry),
            created_at,
            compiled_at,
            entry.host,
        ),
    )


def sync_entries(
    settings, conn, *, force: bool = False, notes: list[str] | None = None, now: float | None = None
) -> int:
    """Bring state.db in line with changed daily files (see the module docstring). Returns how
    many entries were inserted; edits and withdrawals are appended to ``notes``."""
    daily = settings.paths.daily
    now = time.time() if now is None else now
    stored = state.kv_get(conn, SCAN_KEY, "{}") or "{}"
    try:
        seen = json.loads(stored)
    except ValueError:
        seen = {}
    notes = [] if notes is None else notes
    inserted = 0
    days = list_days(daily)
    for day in days:
        try:
            st = os.stat(daily / f"{day}.md")
        except OSError:
            continue
        stamp = [st.st_mtime_ns, st.st_size]
        if not force and seen.get(day) == stamp:
            continue
        present = read_entries(daily, day)
        for entry in present:
            inserted += _sync_one(conn, entry, st.st_mtime, notes)
        _withdraw(conn, day, {e.id for e in present}, now, notes)
        seen[day] = stamp
    for day in set(seen) - set(days):  # a whole daily file deleted
        _withdraw(conn, day, set(), now, notes)
        del seen[day]
    scanned = json.dumps(seen, sort_keys=True)
    if scanned != stored:  # a reader that found nothing new (`memc status`) writes nothing
        state.kv_set(conn, SCAN_KEY, scanned)
    return inserted


def _sync_one(conn, entry: DailyEntry, mtime: float, notes: list[str]) -> int:
    row = conn.execute(
        "SELECT content_hash, compiled_at, withdrawn_at, host FROM entries WHERE id=?", (entry.id,)
    ).fetchone()
    if row is None:
        insert_entry(conn, entry, mtime)
        return 1
    stored, compiled_at, withdrawn_at, host = row
    if not host and entry.host:  # a row written before hosts (or rebuilt) learns its owner
        conn.execute("UPDATE entries SET host=? WHERE id=?", (entry.host, entry.id))
    changed = bool(stored) and not hash_matches(entry, stored)
    if changed or not stored:
        conn.execute(
            "UPDATE entries SET content_hash=?, title=?, compiled_at=NULL, withdrawn_at=NULL "
            "WHERE id=?",
            (entry_hash(entry), entry.title, entry.id),
        )
        if changed and compiled_at is not None:
            notes.append(
                f"entry {entry.id} ({entry.title[:60]}) was edited in {entry.daily_path} after "
                "it was compiled: it compiles again"
            )
    elif withdrawn_at is not None:
        conn.execute("UPDATE entries SET withdrawn_at=NULL WHERE id=?", (entry.id,))
        notes.append(f"entry {entry.id} ({entry.title[:60]}) is back in {entry.daily_path}")
    return 0


def _withdraw(conn, day: str, present: set[str], now: float, notes: list[str]) -> None:
    rows = conn.execute(
        "SELECT id, title, compiled_at FROM entries WHERE day=? AND withdrawn_at IS NULL", (day,)
    ).fetchall()
    gone = [r for r in rows if r[0] not in present]
    if not gone:
        return
    conn.executemany("UPDATE entries SET withdrawn_at=? WHERE id=?", [(now, r[0]) for r in gone])
    for entry_id, title, compiled_at in gone:
        notes.append(
            f"entry {entry_id} ({(title or '')[:60]}) was deleted from daily/{day}.md: withdrawn"
            + (
                " (the pages compiled from it keep their text; edit them or `memc undo` that "
                "compile)"
                if compiled_at is not None
                else ", it will not be compiled"
            )
        )


def should_compile(settings, conn, now: float | None = None) -> TriggerDecision:
    """The staleness test of DESIGN.md ("Compile"); cheap, no model, no writes but bookkeeping."""
    now = time.time() if now is None else now
    sync_entries(settings, conn, now=now)
    row = conn.execute(
        "SELECT COUNT(*), MIN(created_at), MAX(created_at), MIN(day) FROM entries "
        f"WHERE {PENDING} AND {OWN}",
        (settings.this_host,),
    ).fetchone()
    pending, oldest, newest, first_day = row[0], row[1], row[2], row[3]
    if not pending:
        return TriggerDecision(False, "no pending entries", 0)
    # Times stored while the clock ran ahead are unknown, so a corrected clock stalls nothing.
    oldest, newest = state.not_future(oldest, now), state.not_future(newest, now)
    last = state.kv_time(conn, LAST_COMPILE_KEY, now)
    interval = settings.compile_min_interval_min * 60
    if last and now - last < interval:
        wait = (interval - (now - last)) / 60
        return TriggerDecision(
            False,
            f"the last compile was {(now - last) / 60:.0f} min ago, under "
            f"MEMC_COMPILE_MIN_INTERVAL_MIN ({settings.compile_min_interval_min:g}); "
            f"next in {wait:.0f} min",
            pending,
        )
    if first_day and first_day < settings.day_of(now):
        return TriggerDecision(True, f"entries from a prior day ({first_day}) are pending", pending)
    if now - oldest >= settings.compile_max_delay_min * 60:
        return TriggerDecision(
            True, "the oldest pending entry is past MEMC_COMPILE_MAX_DELAY_MIN", pending
        )
    if now - newest >= settings.compile_quiet_min * 60:
        return TriggerDecision(True, "no new entry for MEMC_COMPILE_QUIET_MIN", pending)
    quiet = (settings.compile_quiet_min * 60 - (now - newest)) / 60
    return TriggerDecision(
        False, f"entries still arriving; quiet period ends in {quiet:.0f} min", pending
    )


def _day_of_file(settings, file: str) -> str:
    name = os.path.basename(str(file))
    day = name[:-3] if name.endswith(".md") else name
    if not os.path.exists(settings.paths.daily / f"{day}.md"):
        from pipeline.errors import ConfigError

        raise ConfigError(f"--file {file}: no daily log daily/{day}.md; see `ls daily/`")
    return day


def select_entries(
    settings,
    conn,
    *,
    all: bool = False,
    file: str | None = None,
    now: float | None = None,
    notes: list[str] | None = None,
) -> list[DailyEntry]:
    """The entries to compile: pending ones, every one (``all``), or one daily file's. Call after
    ``sync_entries``: a pending entry missing from its file is then already withdrawn."""
    daily = settings.paths.daily
    if file is not None or all:
        days = [_day_of_file(settings, file)] if file is not None else list_days(daily)
        foreign = _foreign_ids(settings, conn)
        return [e for day in days for e in read_entries(daily, day) if e.id not in foreign]
    rows = conn.execute(
        f"SELECT id, day FROM entries WHERE {PENDING} AND {OWN}", (settings.this_host,)
    ).fetchall()
    wanted: dict[str, set[str]] = {}
    for entry_id, day in rows:
        wanted.setdefault(day, set()).add(entry_id)
    out: list[DailyEntry] = []
    for day in sorted(wanted):
        present = read_entries(daily, day)
        out.extend(e for e in present if e.id in wanted[day])
        if wanted[day] - {e.id for e in present}:  # gone since the last scan
            _withdraw(conn, day, {e.id for e in present}, time.time() if now is None else now,
                      [] if notes is None else notes)  # fmt: skip
    return out


def _foreign_ids(settings, conn) -> set[str]:
    rows = conn.execute(f"SELECT id FROM entries WHERE NOT {OWN}", (settings.this_host,))
    return {row[0] for row in rows}


def mark_foreign(conn, entry_ids) -> None:
    """Entries a sync brought in without a ``host=`` belong to the root that distilled them."""
    conn.executemany(
        "UPDATE entries SET host=? WHERE id=? AND host=''", [(FOREIGN, e) for e in entry_ids]
    )


def reconcile(settings, conn, now: float | None = None) -> int:
    """Mark compiled every entry some host's committed record lists with the entry's current
    hash (``pipeline.compiledrecord``); returns how many changed. Never marks an entry pending:
    records began with this feature, so an entry missing from them says nothing."""
    from pipeline import compiledrecord

    now = time.time() if now is None else now
    records = compiledrecord.read_all(settings.paths.daily)
    if not records:
        return 0
    before = conn.total_changes
    conn.executemany(
        "UPDATE entries SET compiled_at=? WHERE id=? AND content_hash=? AND compiled_at IS NULL "
        "AND withdrawn_at IS NULL",
        [(now, entry_id, digest) for entry_id, (_, digest) in records.items()],
    )
    return conn.total_changes - before


def waiting_by_host(settings, conn) -> dict[str, int]:
    """{host: entries it has not compiled yet} for the other hosts' entries known here."""
    rows = conn.execute(
        f"SELECT host, COUNT(*) FROM entries WHERE {PENDING} AND NOT {OWN} GROUP BY host",
        (settings.this_host,),
    ).fetchall()
    return {("another machine" if host == FOREIGN else host): n for host, n in rows}
