"""How ``searchindex.refresh`` learns what changed without a stat walk of every file.

Two cheap signals: the folders' own stamps (``signals``: any file created, renamed or deleted in
an article folder or daily/ changes its folder's mtime, as every atomic write does), and a change
journal (``.memc/cache/search-changes``) where memc's writers name files they changed in place
(``note_change``: daily appends, which leave the folder's mtime alone). ``read`` returns the names
written after an offset (a line still being written is read next time); ``named_file`` turns one
name back into an indexable (rel, kind, stat), or None; ``walk`` is the full walk, every
indexable file (no symlinks, no hidden files). Stdlib only; never raises for I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from pipeline.paths import ARTICLE_FOLDERS, Paths

DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.md$")


def journal_file(paths: Paths) -> Path:
    return paths.memc / "cache" / "search-changes"


def note_change(paths: Paths, rel: str) -> None:
    """Tell the next ``refresh`` that memc changed ``rel`` (relative to ROOT) in place, where the
    folder's mtime does not show it (an append). One O_APPEND line; never raises."""
    try:
        path = journal_file(paths)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (rel.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def signals(paths: Paths) -> str:
    """The folders' own stamps: any file created, renamed or deleted in one changes them."""
    out = []
    for folder in (*(paths.knowledge / f for f in ARTICLE_FOLDERS), paths.daily):
        try:
            st = os.stat(folder)
            out.append(f"{st.st_ino}:{st.st_mtime_ns}")
        except OSError:
            out.append("-")
    return "|".join(out)


def read(paths: Paths, offset: int) -> tuple[set[str], int]:
    """Paths named in the journal after ``offset``, and the offset it was read to."""
    try:
        with open(journal_file(paths), "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return set(), 0
    except OSError:
        return set(), offset
    if offset and not data and os.path.getsize(journal_file(paths)) < offset:
        return set(), 0  # emptied meanwhile
    end = data.rfind(b"\n") + 1  # a line being written is read next time
    names = {n for n in data[:end].decode("utf-8", "replace").split("\n") if n}
    return names, offset + end


def named_file(paths: Paths, rel: str) -> tuple[str, str, os.stat_result] | None:
    """(rel, kind, stat) of one indexable file named by the journal, or None."""
    parts = rel.split("/")
    if len(parts) == 2 and parts[0] == "daily" and DAY_FILE.match(parts[1]):
        kind = "daily"
    elif len(parts) == 3 and parts[0] == "knowledge" and parts[1] in ARTICLE_FOLDERS:
        kind = "article"
        if not parts[2].endswith(".md") or parts[2].startswith("."):
            return None
    else:
        return None
    try:
        st = os.stat(os.path.join(paths.root, *parts), follow_symlinks=False)
    except OSError:
        return None
    import stat as _stat

    return (rel, kind, st) if _stat.S_ISREG(st.st_mode) else None


def walk(paths: Paths) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to ROOT, kind, stat) of every indexable file; no symlinks, no hidden files."""
    for folder in ARTICLE_FOLDERS:
        yield from _scan(paths.knowledge / folder, f"knowledge/{folder}/", "article")
    yield from _scan(paths.daily, "daily/", "daily", daily=True)


def _scan(
    folder: Path, prefix: str, kind: str, daily: bool = False
) -> Iterator[tuple[str, str, os.stat_result]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.endswith(".md") or name.startswith("."):
            continue
        if daily and not DAY_FILE.match(name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        yield prefix + name, kind, st
