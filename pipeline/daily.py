"""Daily logs: ``daily/YYYY-MM-DD.md``, the human-readable source the compiler reads.

Format (DESIGN.md "Daily log")::

    # Daily Log: 2026-11-20

    ### 14:32 · acme-api · Switched job queue to Postgres advisory locks
    <!-- memc:entry id=3f9c2a1b7e4d session=cd613e30 event=session-end -->
    **Context:** ...

    **Decisions:**
    - ...

Invariants:
- Rendering is deterministic code (same entry, same bytes); model text is flattened so it cannot
  forge a heading+marker pair or an id marker.
- ``append_entry`` holds an exclusive lock on the daily file while it checks for the id and
  appends, so concurrent writers never interleave and an id is written at most once, ever; an
  append that lands in a file an editor replaced meanwhile is detected and redone (or fails).
  The id check costs O(1) while the file is as memc left it (``pipeline.dayindex``).
  The lock is waited on for at most ``LOCK_WAIT_S`` (``LockBusy``): a holder stopped with Ctrl-Z
  never blocks the next writer for good.
- An entry is the ``### `` line directly followed by a ``<!-- memc:entry ... -->`` line, up to the
  next such pair; ``parse_entries`` never raises on edited or damaged files.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import AppendLost, PathRefused
from pipeline.fsutil import Write, append_all, file_lock, safe_join, writable_text
from pipeline.tailfile import sha256  # not hashlib: SessionStart reads entries on the hook path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline.models import Entry

MARKER_RE = re.compile(
    r"^<!-- memc:entry id=(?P<id>[0-9a-f]{6,40}) session=(?P<session>\S*) event=(?P<event>\S*)"
    r"(?: project=(?P<project_key>\S+))?(?: host=(?P<host>[a-z0-9-]{1,63}))? -->$"
)
HEADING_RE = re.compile(r"^### (?P<time>\d\d:\d\d) · (?P<project>.*?) · (?P<title>.*)$")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SECTIONS = (
    ("decisions", "Decisions"),
    ("lessons", "Lessons"),
    ("action_items", "Action items"),
    ("key_exchanges", "Key exchanges"),
)


@dataclass(frozen=True)
class DailyEntry:
    id: str
    day: str
    time: str
    project: str
    title: str
    session: str
    event: str
    body: str  # the markdown under the marker line, stripped
    text: str  # heading + marker + body, as in the file
    project_key: str = ""  # pipeline.project key; "" for entries written before it existed
    host: str = ""  # pipeline.hostname of the machine that distilled it; "" before it existed

    @property
    def daily_path(self) -> str:
        return f"daily/{self.day}.md"


def entry_id(job_id: str, chunk: int = 0) -> str:
    """Stable id of the entry distilled from chunk ``chunk`` of job ``job_id``."""
    return sha256(f"{job_id}:{chunk}".encode()).hexdigest()[:12]


def _inline(text: str, limit: int = 2000) -> str:
    """One line of model text: no newlines, no HTML comments, bounded."""
    flat = writable_text(" ".join(str(text).split()))
    flat = flat.replace("<!--", "<!\u200b--").replace("-->", "--\u200b>")
    return flat[:limit]


def _block(text: str, limit: int = 6000) -> str:
    """A paragraph of model text: keep line breaks but defuse headings and markers."""
    lines = []
    for line in writable_text(str(text)).replace("\r\n", "\n").split("\n"):
        line = line.replace("<!--", "<!\u200b--").replace("-->", "--\u200b>")
        if line.lstrip().startswith("#"):
            line = "\\" + line.lstrip()
        lines.append(line.rstrip())
    return "\n".join(lines).strip()[:limit]


def render_entry(
    entry: Entry,
    *,
    entry_id: str,
    time_hhmm: str,
    project: str,
    session_id: str,
    event: str,
    project_key: str = "",
    host: str = "",
) -> str:
    """The markdown block of one entry, ending with a blank line."""
    title = _inline(entry.title, 200) or "Untitled session"
    project_name = _inline(project, 80).replace("·", "-") or "unknown"
    session = re.sub(r"[^A-Za-z0-9_-]", "", session_id)[:8] or "unknown"
    event_name = re.sub(r"[^a-z0-9-]", "", event.lower())[:20] or "capture"
    key = re.sub(r"[^\w./:@%+~-]", "", project_key)[:300]  # no ">" can pass: no "-->"
    owner = f" project={key}" if key else ""
    machine = re.sub(r"[^a-z0-9-]", "", host)[:63]
    owner += f" host={machine}" if machine else ""
    out = [
        f"### {time_hhmm} · {project_name} · {title}",
        f"<!-- memc:entry id={entry_id} session={session} event={event_name}{owner} -->",
    ]
    if entry.context.strip():
        out.append(f"**Context:** {_block(entry.context)}")
        out.append("")
    for field_name, label in SECTIONS:
        items = [i for i in (_inline(x) for x in getattr(entry, field_name)) if i]
        if items:
            out.append(f"**{label}:**")
            out.extend(f"- {item}" for item in items)
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n\n"


_LABEL_RE = re.compile(r"^\*\*(.+?):\*\*\s*(.*)$")


def entry_context(body: str) -> str:
    """The ``**Context:**`` paragraph of a rendered entry body ('' when there is none)."""
    lines = body.splitlines()
    for i, line in enumerate(lines):
        match = _LABEL_RE.match(line.strip())
        if match and match.group(1) == "Context":
            paragraph = [match.group(2)]
            for more in lines[i + 1 :]:
                if not more.strip() or _LABEL_RE.match(more.strip()):
                    break
                paragraph.append(more)
            return "\n".join(paragraph).strip()
    return ""


def section_items(
    body: str,
    labels: tuple[str, ...] = ("Decisions", "Lessons", "Action items"),
) -> list[tuple[str, str]]:
    """(label, item) for every bullet under the given section labels of a rendered entry body,
    in file order: the inverse of ``render_entry``'s sections."""
    found: list[tuple[str, str]] = []
    label = ""
    for line in body.splitlines():
        match = _LABEL_RE.match(line.strip())
        if match:
            label = match.group(1)
        elif label in labels and line.startswith("- "):
            found.append((label, line[2:].strip()))
    return found


def hash_matches(entry: DailyEntry, stored: str) -> bool:
    """True when ``stored`` (a recorded content_hash, a sha256 hex prefix) is this entry's text.

    distil records sha256(rendered block) (ending in a blank line); compile's scan of entries it
    did not write records sha256(entry.text); both forms, and the body alone, are accepted."""
    stored = (stored or "").lower()
    if len(stored) < 8:
        return False
    text = entry.text.rstrip("\n")
    forms = {entry.text, text, text + "\n\n", entry.body, entry.body.strip()}
    return any(sha256(f.encode("utf-8")).hexdigest().startswith(stored) for f in forms)


def daily_path(daily_dir: Path, day: str) -> Path:
    if not DAY_RE.match(day):
        raise ValueError(f"not a YYYY-MM-DD day: {day!r}")
    return daily_dir / f"{day}.md"


APPEND_ATTEMPTS = 5
LOCK_WAIT_S = 30.0  # appends hold the lock for milliseconds; longer means a stopped holder
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def guarded_daily_path(daily_dir: Path, day: str) -> Path:
    """The day's log path through the one path guard: refused (``PathRefused``) when it, or
    daily/ itself, is a symlink leading out of the data root, or when it exists and is not a
    regular file (a FIFO, a device, a folder)."""
    rel = f"{daily_dir.name}/{daily_path(daily_dir, day).name}"
    path = safe_join(daily_dir.parent, rel)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"{rel} is not a regular file; refusing to append to it")
    return path


def append_entry(
    daily_dir: Path,
    day: str,
    block: str,
    entry_id: str,
    *,
    write: Write | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> bool:
    """Append ``block`` to the day's log unless ``entry_id`` is already there. True if written.

    The id check costs O(1) while the file is as memc left it (``pipeline.dayindex``); after any
    other change to it, the first append reads it once.
    The path goes through ``guarded_daily_path`` first (a symlink out of the root raises
    ``PathRefused``, nothing is opened). The append is whole or absent (``fsutil.append_all``,
    ``write`` is its injectable writer): on ENOSPC the file is cut back and the OSError raised.

    An editor saving the file atomically (write a copy, rename it over) can replace it between
    our open and our write: the bytes then land in the unlinked old file. After each append the
    file's identity is compared with the one written to; on a change the append is checked and
    redone on the new file, and after ``APPEND_ATTEMPTS`` replacements ``AppendLost`` fails the
    job loudly (its progress is kept; ``memc retry`` appends it). A lock not free within
    ``lock_wait_s`` raises ``LockBusy`` with nothing written."""
    from pipeline.dayindex import DayIndex

    daily_dir.mkdir(parents=True, exist_ok=True)
    path = guarded_daily_path(daily_dir, day)
    index = DayIndex.open(daily_dir)  # opened before the lock: the lock creates the file
    try:
        for attempt in range(APPEND_ATTEMPTS):
            with file_lock(path, timeout=lock_wait_s):
                outcome = _append_locked(path, day, block, entry_id, index, write)
            if outcome == "present":
                return attempt > 0
            if outcome == "written":
                return True
    finally:
        if index is not None:
            index.close()
    raise AppendLost(
        f"{path.name} was replaced {APPEND_ATTEMPTS} times while entry {entry_id} was appended "
        "(an editor saving it?); close it in the editor and run `memc retry`"
    )


def _append_locked(
    path: Path, day: str, block: str, entry_id: str, index, write: Write | None = None
) -> str:
    """One checked append under the lock: "present", "written" or "replaced" (try again)."""
    import sqlite3

    from pipeline.dayindex import ids_in
    from pipeline.tailfile import pread

    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    present = None
    if index is not None:
        try:
            present = index.has(day, st, entry_id)
        except sqlite3.Error:
            index = None
    if present is None:  # no index, or the file changed outside memc: read it once
        try:
            existing = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            existing = ""
        ids = ids_in(existing)
        present = entry_id in ids
        if index is not None:
            try:
                index.reset(day, st, ids)
            except sqlite3.Error:
                index = None
    if present:
        return "present"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW, 0o644)
    try:
        size = os.fstat(fd).st_size
        # Only the file's start (is it blank?) and its last two bytes decide the separator.
        head = pread(fd, 4096, 0) if size <= 4096 else b"x"
        tail = pread(fd, 2, max(0, size - 2)) if size else b""
        prefix = ""
        if not head.decode("utf-8", "replace").strip():
            prefix = f"# Daily Log: {day}\n\n"
        elif not tail.endswith(b"\n\n"):
            prefix = "\n" if tail.endswith(b"\n") else "\n\n"
        append_all(fd, (prefix + block).encode("utf-8"), write=write)
        wrote = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return "replaced"  # deleted under us: append again to a new file
    if (now.st_dev, now.st_ino) != (wrote.st_dev, wrote.st_ino):
        return "replaced"
    if index is not None:  # an initialised data root
        try:
            index.add(day, wrote, entry_id)
        except sqlite3.Error:
            pass  # the next append sees a stamp it does not know and reads the file
        from pipeline.paths import Paths
        from pipeline.searchjournal import note_change

        note_change(Paths(path.parent.parent), f"daily/{day}.md")  # an append: no folder mtime
    return "written"


def find_entry(daily_dir: Path, entry_id: str, near: str) -> DailyEntry | None:
    """The entry ``entry_id`` if the log of ``near`` or of the day before or after holds it.

    An entry id is unique across days, not per file: a crash between an append and its state
    record, then a changed MEMC_TZ (or a capture time read in another zone), moves the entry's
    day by at most one, so the re-run looks in the adjacent days' files too before appending."""
    from datetime import date, timedelta

    try:
        centre = date.fromisoformat(near)
    except ValueError:
        return None
    needle = f"<!-- memc:entry id={entry_id} ".encode()
    for shift in (0, -1, 1):
        day = (centre + timedelta(days=shift)).isoformat()
        try:
            raw = daily_path(daily_dir, day).read_bytes()
        except OSError:
            continue
        if needle in raw:
            for entry in parse_entries(raw.decode("utf-8", "replace"), day):
                if entry.id == entry_id:
                    return entry
    return None


def parse_entries(text: str, day: str) -> list[DailyEntry]:
    """Every well-formed entry of a daily log, in file order."""
    lines = text.replace("\r\n", "\n").split("\n")
    starts: list[tuple[int, re.Match, re.Match]] = []
    for i in range(len(lines) - 1):
        heading = HEADING_RE.match(lines[i])
        if heading:
            marker = MARKER_RE.match(lines[i + 1].strip())
            if marker:
                starts.append((i, heading, marker))
    out: list[DailyEntry] = []
    for n, (i, heading, marker) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        body = "\n".join(lines[i + 2 : end]).strip()
        out.append(
            DailyEntry(
                id=marker["id"],
                day=day,
                time=heading["time"],
                project=heading["project"],
                title=heading["title"].strip(),
                session=marker["session"],
                event=marker["event"],
                body=body,
                text="\n".join(lines[i:end]).strip() + "\n",
                project_key=marker["project_key"] or "",
                host=marker["host"] or "",
            )
        )
    return out


def read_entries(daily_dir: Path, day: str) -> list[DailyEntry]:
    try:
        text = daily_path(daily_dir, day).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ValueError):
        return []
    return parse_entries(text, day)


def list_days(daily_dir: Path) -> list[str]:
    """Days that have a daily log, oldest first."""
    try:
        names = os.listdir(daily_dir)
    except OSError:
        return []
    return sorted(n[:-3] for n in names if n.endswith(".md") and DAY_RE.match(n[:-3]))
