"""`memc history` and `memc undo`: reading and reverting memc's write batches.

Invariants:
- Both need a versioned root (pipeline.versioning); otherwise ``NotVersioned`` (exit 1) says why.
- A *batch* is a commit carrying a ``Memc-Op`` trailer other than ``user-edit``, ``init``,
  ``undo`` and ``sync`` (a merge); ``undo`` without a commit takes the newest batch not already
  undone.
- ``plan_undo`` writes nothing. Per file the batch changed (index.md and log.md excepted: they
  are regenerated and appended to), the batch's change is reverted onto the file as it is now
  with a 3-way merge (``git merge-file``, base = the batch's version). A file changed since, by a
  later commit or an uncommitted edit, in a way that merge cannot keep, is a conflict: the undo
  is refused as a whole, naming the file and who changed it, and nothing is written. The
  compiled record (``daily/.compiled/``) is not reverted as a file but edited (below).
- ``apply_undo`` holds the compile and knowledge locks, plans again under them, commits pending
  user edits first, writes the files, regenerates index.md, appends to log.md, makes the batch's
  entries pending again (taking them out of this host's compiled record), and commits the
  result as one ``undo:`` commit with a ``Memc-Reverts`` trailer.
- A batch another host made (``Memc-Host``, brought by ``memc sync``) is that host's to undo:
  refused here, and skipped when looking for the newest batch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import fsutil, vcs, versioning
from pipeline.config import ARTICLE_FOLDERS
from pipeline.errors import ConfigError, LockBusy, MemcError, NotVersioned, UndoRefused

NOT_BATCHES = ("user-edit", "init", "undo", "sync")
SEARCH_DEPTH = 500
_TRAILER = re.compile(r"^(Memc-[A-Za-z]+):\s*(.*)$", re.M)


@dataclass(frozen=True)
class Version:
    commit: str
    time: str
    author: str
    by: str  # "memc" or "user"
    op: str
    subject: str
    files: tuple[dict[str, Any], ...]
    trailers: dict[str, str] = field(default_factory=dict, compare=False)
    committer: str = ""  # who ran memc (the machine's git identity), for memc's commits
    host: str = ""  # the machine that made it (Memc-Host trailer; "" before hosts existed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        return data


@dataclass(frozen=True)
class FileUndo:
    path: str
    action: str  # delete | restore | merge
    text: str | None  # the file after the undo (None: deleted)
    added: int = 0
    removed: int = 0


@dataclass(frozen=True)
class UndoPlan:
    target: Version
    changes: tuple[FileUndo, ...]
    entries: tuple[str, ...]


def _require(settings) -> Path:
    if not versioning.enabled(settings):
        raise NotVersioned(
            f"{settings.root} is not versioned ({versioning.why_not(settings)}); "
            "history and undo need git"
        )
    return Path(settings.root)


def _version(entry: vcs.LogEntry, zone) -> Version:
    trailers = dict(_TRAILER.findall(entry.body))
    op = trailers.get(versioning.TRAILER_OP, "")
    by = "memc" if entry.author_email == versioning.MEMC_AUTHOR[1] else "user"
    when = _dt.datetime.fromtimestamp(entry.at, zone).isoformat(timespec="seconds")
    files = tuple({"path": p, "added": a, "removed": r} for p, a, r in entry.files)
    author = f"{entry.author_name} <{entry.author_email}>"
    committer = f"{entry.committer_name} <{entry.committer_email}>" if entry.committer_email else ""
    host = trailers.get(versioning.TRAILER_HOST, "")
    return Version(
        entry.commit, when, author, by, op or "commit", entry.subject, files, trailers,
        committer, host,
    )  # fmt: skip


def resolve_page(settings, page: str) -> str:
    """The root-relative file of ``page``: ``concepts/x``, ``knowledge/concepts/x.md``, a file
    name (``x``), ``daily/2026-12-01.md`` or a day. ConfigError when nothing matches."""
    text = page.strip().replace("\\", "/")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text = f"daily/{text}.md"
    text = text if text.endswith(".md") else text + ".md"
    candidates = [text] if text.startswith(("knowledge/", "daily/")) else [f"knowledge/{text}"]
    if "/" not in page.strip("/"):
        candidates += [f"knowledge/{folder}/{text}" for folder in ARTICLE_FOLDERS]
    root = Path(settings.root)
    for rel in candidates:
        try:
            fsutil.safe_join(root, rel, allow_hidden=False)
        except MemcError:
            continue
        if (root / rel).is_file() or vcs.log(root, [rel], limit=1):
            return rel
    raise ConfigError(f"no page {page!r}: give a path like concepts/slug (see knowledge/index.md)")


def history(settings, page: str | None = None, limit: int = 20) -> list[Version]:
    """Newest first: the versions of one page, or the last ``limit`` commits of the root."""
    root = _require(settings)
    paths = [resolve_page(settings, page)] if page else []
    return [_version(e, settings.zone()) for e in vcs.log(root, paths, limit=limit)]


def _batches(settings) -> list[Version]:
    root = Path(settings.root)
    return [_version(e, settings.zone()) for e in vcs.log(root, limit=SEARCH_DEPTH)]


def find_target(settings, commit: str | None) -> Version:
    root = _require(settings)
    versions = _batches(settings)
    undone = {v.trailers.get(versioning.TRAILER_REVERTS, "") for v in versions}
    if commit is None:
        for v in versions:
            if v.by == "memc" and v.op not in NOT_BATCHES and v.commit not in undone:
                if _elsewhere(settings, v):
                    continue  # another machine's batch: not this root's to undo
                return v
        raise UndoRefused("nothing to undo: no memc batch in the history that is not undone yet")
    full = vcs.resolve(root, commit)
    found = next((v for v in versions if v.commit == full), None)
    if full is None or found is None:
        raise ConfigError(f"no commit {commit!r} in the root's history; see `memc history`")
    if found.by != "memc" or found.op in NOT_BATCHES:
        raise UndoRefused(
            f"{full[:10]} ({found.subject}) is not a memc batch; `memc undo` reverts only memc's "
            f"own writes (for your commits use `git revert {full[:10]}`)"
        )
    if full in undone:
        raise UndoRefused(f"{full[:10]} ({found.subject}) was already undone")
    if _elsewhere(settings, found):
        raise UndoRefused(
            f"{full[:10]} ({found.subject}) was made on host {found.host}; its entries are that "
            f"machine's to compile: run `memc undo {full[:10]}` there, then `memc sync`"
        )
    return found


def _elsewhere(settings, version: Version) -> bool:
    """A batch another host made (a sync brought it): its entries and record are not ours."""
    return bool(version.host) and version.host != settings.this_host


def _later_changes(root: Path, rel: str, since: str) -> str:
    later = vcs.log(root, [rel], limit=5, rev=f"{since}..HEAD")
    who = [f"{e.commit[:10]} by {e.author_name} ({e.subject[:60]})" for e in later]
    if any(c.path == rel for c in vcs.changes(root, [rel])):
        who.append("an uncommitted edit")
    return ", ".join(who) or "a later change"


def plan_undo(settings, commit: str | None = None) -> UndoPlan:
    """What undoing the batch would do; UndoRefused on a conflict. Writes nothing."""
    root = _require(settings)
    target = find_target(settings, commit)
    parent = vcs.resolve(root, f"{target.commit}^")
    changes: list[FileUndo] = []
    conflicts: list[str] = []
    for _status, rel in vcs.changed_files(root, target.commit):
        if rel in versioning.GENERATED or not rel.startswith(("knowledge/", "daily/")):
            continue
        if rel.startswith(versioning.RECORD_PREFIX):
            continue  # the compiled record: apply_undo takes the batch's entries out of it
        before = vcs.show(root, parent, rel) if parent else None
        after = vcs.show(root, target.commit, rel)
        try:
            current: str | None = (root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == before:
            continue  # already as before the batch
        clean = False
        if current == after:
            result, action, clean = before, "delete" if before is None else "restore", True
        elif current is not None and after is not None and before is not None:
            result, clean = vcs.merge_text(current, after, before)
            action = "merge"
        if not clean:
            conflicts.append(f"{rel} (changed since by {_later_changes(root, rel, target.commit)})")
            continue
        old_lines = (current or "").splitlines()
        new_lines = (result or "").splitlines()
        added = len([ln for ln in new_lines if ln not in set(old_lines)])
        removed = len([ln for ln in old_lines if ln not in set(new_lines)])
        changes.append(FileUndo(rel, action, result, added, removed))
    if conflicts:
        raise UndoRefused(
            f"cannot undo {target.commit[:10]} ({target.subject}): a later change would be lost "
            "or clash: " + "; ".join(conflicts) + ". Nothing was changed."
        )
    entries = tuple(target.trailers.get(versioning.TRAILER_ENTRIES, "").split())
    return UndoPlan(target, tuple(changes), entries)


def apply_undo(settings, commit: str | None = None) -> tuple[UndoPlan, versioning.Batch]:
    """Undo the batch (see the module docstring). Returns the plan carried out and its batch."""
    from pipeline import pages, state, wikiindex

    paths = settings.paths
    try:
        locks = contextlib.ExitStack()
        with locks:
            locks.enter_context(fsutil.file_lock(paths.lock("compile"), blocking=False))
            locks.enter_context(fsutil.file_lock(paths.lock("knowledge"), timeout=120))
            plan = plan_undo(settings, commit)
            with versioning.batch(settings, "undo", ("knowledge", "daily")) as vb:
                conn = locks.enter_context(contextlib.closing(state.connect(paths.state_db)))
                for change in plan.changes:
                    target = fsutil.safe_join(paths.root, change.path, allow_hidden=False)
                    if change.text is None:
                        target.unlink(missing_ok=True)
                    else:
                        fsutil.atomic_write(target, change.text)
                    if change.path.startswith("knowledge/"):
                        pages.record(conn, change.path, change.text)
                wikiindex.write_index(paths)
                lines = [f"{c.action} {c.path}" for c in plan.changes]
                short = plan.target.commit[:10]
                wikiindex.append_log(paths, "undo", f"reverted {short} ({plan.target.subject})",
                                     lines, tz=settings.zone())  # fmt: skip
                if plan.entries:
                    conn.executemany(
                        "UPDATE entries SET compiled_at=NULL WHERE id=? AND withdrawn_at IS NULL",
                        [(e,) for e in plan.entries],
                    )
                    from pipeline import compiledrecord

                    compiledrecord.remove(paths.daily, settings.this_host, plan.entries)
                vb.subject = f"undo: {plan.target.subject}"
                vb.extra_trailers.append((versioning.TRAILER_REVERTS, plan.target.commit))
    except LockBusy:
        raise UndoRefused("a compile is running; run `memc undo` again when it is done") from None
    from pipeline import searchindex

    searchindex.refresh(paths, full=True)  # a writer: every file, not only signalled ones
    return plan, vb
