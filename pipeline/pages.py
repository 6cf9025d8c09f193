"""Who wrote a page last: memc's record of every file it writes under knowledge/.

The ``pages`` table of state.db holds, per file (``knowledge/concepts/x.md``), the git blob id of
the text as memc last wrote it (``vcs.blob_sha``: computed in Python, so the record works without
git) and whether a person ever edited that page.

Invariants:
- Every memc write of an article records its blob id right after the write, under the
  ``knowledge`` lock (``record``).
- A page is *user-edited* when its file differs from the record, when it has no record (written
  by hand, or by a release before this record existed), or when it was user-edited before: the
  flag is sticky, because once a person has written in a page no later memc write may remove a
  line of it, even after memc has appended to it.
- ``three_way`` merges new model text into a user-edited page with ``git merge-file`` (base =
  memc's last version, read from git's object store) and returns the result only when the merge
  is clean and keeps every line of the current page; otherwise the caller appends the new
  material as a dated section. Either way no line the user wrote is ever removed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PageState:
    rel: str
    user_edited: bool
    base_sha: str | None  # blob id of memc's last version (None: memc never wrote it)


def rel_path(root: Path, file: Path) -> str:
    return file.resolve().relative_to(root.resolve()).as_posix()


def page_state(conn: sqlite3.Connection, rel: str, current: bytes | None) -> PageState:
    """The state of ``rel`` whose bytes on disk are ``current`` (None: no such file)."""
    from pipeline.vcs import blob_sha

    row = conn.execute("SELECT sha, user_edited FROM pages WHERE path=?", (rel,)).fetchone()
    if current is None:
        return PageState(rel, bool(row and row[1]), row[0] if row and row[0] else None)
    if row is None:
        return PageState(rel, True, None)
    sha, sticky = row[0], bool(row[1])
    return PageState(rel, sticky or blob_sha(current) != sha, sha or None)


def memc_wrote(conn: sqlite3.Connection, rel: str, current: bytes | None) -> bool:
    """True when the file's present state (``current``; None = deleted) is memc's last write."""
    from pipeline.vcs import blob_sha

    row = conn.execute("SELECT sha FROM pages WHERE path=?", (rel,)).fetchone()
    if row is None:
        return False
    if current is None:
        return row[0] == ""
    return row[0] == blob_sha(current)


def record(
    conn: sqlite3.Connection,
    rel: str,
    text: str | bytes | None,
    *,
    user_edited: bool = False,
    now: float | None = None,
) -> None:
    """Remember ``text`` (None: memc deleted the file) as memc's last write of ``rel``."""
    from pipeline.vcs import blob_sha

    sha = "" if text is None else blob_sha(text)
    conn.execute(
        "INSERT INTO pages(path, sha, user_edited, written_at) VALUES(?,?,?,?) "
        "ON CONFLICT(path) DO UPDATE SET sha=excluded.sha, "
        "user_edited=max(pages.user_edited, excluded.user_edited), written_at=excluded.written_at",
        (rel, sha, int(user_edited), time.time() if now is None else now),
    )


def flag_user_edited(paths, related: list[dict]) -> None:
    """Set ``user_edited`` on each related-article payload item (for the compile prompt)."""
    if not related:
        return
    from pipeline import state

    with contextlib.closing(state.connect(paths.state_db)) as conn:
        for item in related:
            try:
                current: bytes | None = (paths.knowledge / f"{item['path']}.md").read_bytes()
            except OSError:
                current = None
            rel = f"knowledge/{item['path']}.md"
            item["user_edited"] = current is not None and page_state(conn, rel, current).user_edited


def keeps_every_line(current: str, merged: str) -> bool:
    """True when every non-blank line of ``current`` is still in ``merged`` (as often)."""
    have = Counter(line.rstrip() for line in merged.splitlines() if line.strip())
    need = Counter(line.rstrip() for line in current.splitlines() if line.strip())
    return all(have[line] >= n for line, n in need.items())


def three_way(root: Path | None, base_sha: str | None, current: str, proposed: str) -> str | None:
    """``proposed`` merged into ``current`` against memc's last version, or None when that
    version is unknown, git is not there, the merge conflicts, or it would drop a current line."""
    if root is None or not base_sha:
        return None
    from pipeline import vcs, wiki
    from pipeline.errors import GitError

    try:
        base_file = vcs.blob(root, base_sha)
        if base_file is None:
            return None
        base = wiki.split_frontmatter(base_file)[1].strip("\n")
        merged, clean = vcs.merge_text(current + "\n", base + "\n", proposed + "\n")
    except GitError:
        return None
    merged = merged.strip("\n")
    if not clean or not keeps_every_line(current, merged) or merged == current.strip("\n"):
        return None
    return merged
