"""A damaged state.db is set aside and rebuilt; what was lost is recorded and reported.

``state.connect`` calls ``recover_damaged`` when opening state.db fails with damage (SQLite's
CORRUPT or NOTADB: a file cut short, overwritten with garbage, or emptied to 0 bytes), so every
command and every hook heals the root on its next use, and a capture hook still spools. `memc
doctor --fix` calls it for damage that only a full check finds (``integrity_problem``).

Invariants:
- The damaged file is never deleted or changed: it is renamed to ``state.db.damaged-<UTC stamp>``
  (its ``-wal`` and ``-shm`` beside it, with the same stamp) and only ever opened read-only.
- One recovery at a time (``locks/state-recovery.lock``); a process that waited for the lock
  and finds state.db healthy again does nothing (another process recovered it first).
- Rebuilt, in order: every row still readable in the damaged copy, table by table (cursors,
  jobs, entries, the cost ledger, private sessions, kv, pages: a table stops at its first
  unreadable page); then every daily entry the copy did not give back, from the files under
  daily/. Such an entry counts as compiled, so a rebuild never recompiles the whole history:
  in a root with committed records (``pipeline.compiledrecord``: any host's file), iff a record
  lists it with its current text (the record is the authority: `memc undo` and a sync that
  took the remote's page take entries out of it, while the original commit's trailer still
  names them); in a git root without records (older roots), when a commit's ``Memc-Entries``
  trailer names it and no ``Memc-Reverts`` trailer undid that commit; without git, when an
  article's frontmatter cites its daily file. `memc compile --file daily/DAY.md` compiles a
  day again by hand. It keeps the host its marker names, so a synced root never takes another
  host's entries as its own to compile.
- Lost, and said so (kv ``state_recovered``, which doctor, status and SessionStart read):
  cursors the copy did not give back. A session still on disk whose cursor is gone is captured
  again from its first byte at its next hook: job ids dedupe the same range (repeated hooks
  never queue it twice), but that range differs from the ones captured before, so its earlier
  facts may appear a second time in daily/. Likewise a lost ``memc private`` opt-out (the
  ``[memc:private]`` marker in a transcript is found again at capture) and today's spend.
- Stdlib only (hooks reach this); git is asked once, through ``pipeline.vcs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import state
from pipeline.errors import GitError, LockBusy, StateDamaged
from pipeline.fsutil import TEMP_PREFIX, file_lock, fsync_dir

RECORD_KEY = state.RECOVERY_KEY
NOTICE_DAYS = 7  # SessionStart mentions a recovery this long, while the damaged copy is kept
LOCK_WAIT_S = 5.0
_SKIP_KV = ("compile_scan", RECORD_KEY)  # the scan must see every daily file again
_DAILY_REF = re.compile(r"daily/(\d{4}-\d{2}-\d{2})\.md")


@dataclass(frozen=True)
class Recovery:
    moved_to: Path
    record: dict  # as stored under RECORD_KEY: at, reason, moved_to, salvaged, entries_from_files


def recover_damaged(
    path: Path, reason: str, *, deep: bool = False, now: float | None = None
) -> Recovery | None:
    """Set the damaged ``path`` aside and rebuild it (see the module docstring). None when
    another process already did. ``deep``: the damage was found past the open (a query, or
    doctor's full check), so health is judged by ``integrity_problem``. Raises ``StateDamaged``
    when it cannot (no lock, a read-only folder), naming the manual fix."""
    path = Path(path)
    now = time.time() if now is None else now
    try:
        with file_lock(path.parent / "locks" / "state-recovery.lock", timeout=LOCK_WAIT_S):
            if _healthy(path, deep):
                return None
            return _recover(path, reason, now)
    except (OSError, LockBusy, sqlite3.Error) as exc:
        raise StateDamaged(
            f"{path} is damaged ({reason}) and could not be set aside ({exc}). It is "
            f"bookkeeping: move it aside (mv {path} {path}.broken) and run `memc doctor --fix`",
            reason,
        ) from None


def _healthy(path: Path, deep: bool) -> bool:
    try:
        conn = state.connect(path, recover=False)
    except StateDamaged as exc:
        if not exc.reason:
            raise  # unusable, but not damaged: setting it aside would lose it for nothing
        return False
    try:
        return not deep or integrity_problem(conn) is None
    finally:
        conn.close()


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """SQLite's ``quick_check`` (every page read: proportional to the file, so never on a
    hook's normal path): None when the database is sound, else the first problem."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        return state.damage(exc) or None
    return None if rows == ["ok"] else "; ".join(rows)


def _recover(path: Path, reason: str, now: float) -> Recovery:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        if os.path.lexists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    fsync_dir(path.parent)
    conn = state.connect(path, recover=False)
    try:
        with state.transaction(conn):
            salvaged = salvage(aside, conn)
            from_files = rebuild_entries(path.parent.parent, conn, now)
            record = {
                "at": now,
                "reason": reason,
                "moved_to": str(aside),
                "salvaged": salvaged,
                "entries_from_files": from_files,
            }
            state.kv_set(conn, RECORD_KEY, json.dumps(record, sort_keys=True), now=now)
    finally:
        conn.close()
    _log(path, record)
    return Recovery(aside, record)


def _log(path: Path, record: dict) -> None:
    try:
        from pipeline.logs import pipeline_logger

        pipeline_logger(path.parent / "logs").warning(describe(record))
    except Exception:  # logging never breaks the recovery (or the hook that runs it)
        pass


def salvage(damaged: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Copy every row still readable in ``damaged`` into ``conn``'s fresh tables.

    Works on a temporary copy (the damaged file is never opened for writing), with its ``-wal``
    (recent commits may live only there), padded with zeros to the size its header states: a
    file cut short is otherwise refused whole, while padded, every page before the cut reads."""
    counts = dict.fromkeys(state.TABLES, 0)
    tmp = damaged.with_name(f"{TEMP_PREFIX}salvage-{os.urandom(4).hex()}")
    try:
        shutil.copyfile(damaged, tmp)
        if os.path.exists(f"{damaged}-wal"):
            shutil.copyfile(f"{damaged}-wal", f"{tmp}-wal")
        _pad_to_header(tmp)
        old = sqlite3.connect(tmp.resolve().as_uri() + "?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        _remove(tmp)
        return counts
    try:
        for table in state.TABLES:
            counts[table] = _copy_table(old, conn, table)
    finally:
        old.close()
        _remove(tmp)
    return counts


def _pad_to_header(path: Path) -> None:
    with open(path, "r+b") as fh:
        head = fh.read(100)
        if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
            return
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        size = page * int.from_bytes(head[28:32], "big")
        if size > os.fstat(fh.fileno()).st_size:
            fh.truncate(size)


def _remove(tmp: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{tmp}{suffix}")


def _copy_table(old: sqlite3.Connection, conn: sqlite3.Connection, table: str) -> int:
    fresh = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    try:
        present = {row[1] for row in old.execute(f"PRAGMA table_info({table})")}
        columns = [c for c in fresh if c in present]
        if not columns:
            return 0
        rows = old.execute(f"SELECT {', '.join(columns)} FROM {table}")
    except sqlite3.Error:
        return 0
    insert = (
        f"INSERT OR IGNORE INTO {table}({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    copied = 0
    while True:
        try:
            row = rows.fetchone()
        except sqlite3.Error:  # the first unreadable page ends this table
            break
        if row is None:
            break
        if table == "kv" and row[columns.index("key")] in _SKIP_KV:
            continue
        try:
            conn.execute(insert, tuple(row))
        except sqlite3.Error:  # a row that breaks a constraint of the fresh table
            continue
        copied += 1
    return copied


def rebuild_entries(root: Path, conn: sqlite3.Connection, now: float) -> int:
    """Insert every daily entry ``conn`` does not know, compiled or pending by the evidence in
    the files (see the module docstring). Returns how many were inserted."""
    from pipeline.compiledrecord import read_all
    from pipeline.daily import list_days, read_entries
    from pipeline.pending import entry_hash, insert_entry

    daily = root / "daily"
    known = {row[0] for row in conn.execute("SELECT id FROM entries")}
    recorded = read_all(daily)  # the committed records: {entry id: (host, hash)}
    compiled_ids = None if recorded else _compiled_by_git(root)
    cited = _cited_days(root / "knowledge") if not recorded and compiled_ids is None else set()
    inserted = 0
    for day in list_days(daily):
        try:
            mtime = (daily / f"{day}.md").stat().st_mtime
            entries = read_entries(daily, day)
        except (OSError, ValueError):
            continue
        for entry in entries:
            if entry.id in known:
                continue
            if recorded:  # undo and sync take entries out of the record: it is the authority
                done = recorded.get(entry.id, ("", ""))[1] == entry_hash(entry)
            elif compiled_ids is not None:
                done = entry.id in compiled_ids
            else:
                done = day in cited
            insert_entry(conn, entry, mtime, compiled_at=now if done else None)
            known.add(entry.id)
            inserted += 1
    return inserted


def _compiled_by_git(root: Path) -> set[str] | None:
    """Entry ids named by the ``Memc-Entries`` trailers of the root's commits that no
    ``Memc-Reverts`` trailer undid; None when the root is no git repository (or git cannot
    answer). Newest first, children before parents (``--topo-order``), so a commit is known to
    be reverted before its own trailers are read; a reverted commit's trailers count for
    nothing, its ``Memc-Reverts`` included (an undo of an undo would re-add the batch, though
    `memc undo` never reverts an undo today). A batch compiled again later is named by that
    later commit."""
    from pipeline import vcs
    from pipeline.versioning import TRAILER_ENTRIES, TRAILER_REVERTS

    if not vcs.is_repo(root) or vcs.git_exe() is None:
        return None
    fmt = "%x1e%H%x1f" + "%x1f".join(
        f"%(trailers:key={key},valueonly,separator=%x20)"
        for key in (TRAILER_ENTRIES, TRAILER_REVERTS)
    )
    try:
        if vcs.head(root) is None:
            return set()
        proc = vcs.run(root, "log", "--topo-order", f"--format={fmt}")
    except GitError:
        return None
    compiled: set[str] = set()
    reverted: set[str] = set()
    for record in proc.stdout.split("\x1e"):
        commit, _, rest = record.strip("\n").partition("\x1f")
        if not commit or commit in reverted:
            continue
        entries, _, reverts = rest.partition("\x1f")
        reverted.update(reverts.split())
        compiled.update(entries.split())
    return compiled


def _cited_days(knowledge: Path) -> set[str]:
    """Days whose daily file some article's frontmatter cites (its ``sources``)."""
    days: set[str] = set()
    for folder, _dirs, files in os.walk(knowledge):
        for name in files:
            if not name.endswith(".md"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as fh:
                    head = fh.read(16384)
            except OSError:
                continue
            if head.startswith("---"):
                end = head.find("\n---", 3)
                days.update(_DAILY_REF.findall(head[: end if end > 0 else len(head)]))
    return days


def last_recovery(conn: sqlite3.Connection) -> dict | None:
    """The record of the last recovery (``at``, ``reason``, ``moved_to``, ``salvaged``,
    ``entries_from_files``), or None."""
    try:
        raw = state.kv_get(conn, RECORD_KEY)
        record = json.loads(raw) if raw else None
    except (sqlite3.Error, ValueError):
        return None
    return record if isinstance(record, dict) else None


def describe(record: dict) -> str:
    """One sentence: what happened, what came back, what was lost."""
    salvaged = record.get("salvaged") or {}
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(record.get("at") or 0)))
    lost = []
    if not salvaged.get("cursors"):
        lost.append("capture cursors (sessions still on disk are captured again from the start")
        lost[-1] += ", so some facts may appear twice in daily/)"
    if not salvaged.get("private_sessions"):
        lost.append("`memc private` opt-outs (mark those sessions again)")
    if not salvaged.get("llm_calls"):
        lost.append("the cost ledger (today's spend starts at 0)")
    kept = sum(int(v) for v in salvaged.values())
    text = (
        f"state.db was damaged ({record.get('reason')}) and was rebuilt at {when}: {kept} rows "
        f"read back, {record.get('entries_from_files', 0)} daily entries restored from daily/; "
        f"the damaged copy is {record.get('moved_to')}"
    )
    return text + (f"; lost: {'; '.join(lost)}" if lost else "")


def diagnose(path: Path) -> tuple[str | None, dict | None, str]:
    """(damage found, the last recovery record while its copy is kept, why state.db cannot be
    opened at all): the full check (``integrity_problem``), and no repair. All empty when
    ``path`` is sound or does not exist yet."""
    if not path.exists():
        return None, None, ""
    try:
        conn = state.connect(path, recover=False)
    except StateDamaged as exc:
        return (exc.reason, None, "") if exc.reason else (None, None, str(exc))
    try:
        problem, record = integrity_problem(conn), last_recovery(conn)
    finally:
        conn.close()
    if record and not Path(str(record.get("moved_to"))).exists():
        record = None
    return problem, record, ""


def repair(path: Path) -> Recovery | None:
    """`memc doctor --fix`: recover ``path`` when ``diagnose`` finds it damaged; None when it is
    sound. Raises ``StateDamaged`` for a file that cannot be opened for another reason."""
    damaged, _record, unusable = diagnose(path)
    if unusable:
        raise StateDamaged(unusable)
    return recover_damaged(path, damaged, deep=True) if damaged else None


def doctor_check(path: Path) -> tuple[str, str, str]:
    """(ok / warn / fail, what was found, the fix) for `memc doctor`: damage is a failure, a
    rebuild whose damaged copy is still kept a warning."""
    damaged, record, unusable = diagnose(path)
    if unusable:
        return "fail", unusable, "fix the folder's permissions or free some space"
    if damaged:
        return (
            "fail",
            f"{path} is damaged ({damaged})",
            "run `memc doctor --fix` (any capture or command does it too): the file is set "
            "aside, never deleted, and rebuilt from what is still readable in it and from daily/",
        )
    if record:
        fix = f"nothing blocks; delete {record.get('moved_to')} once you no longer need it"
        return "warn", describe(record), fix
    return "ok", "sound (SQLite quick_check)" if path.exists() else "not created yet", ""
