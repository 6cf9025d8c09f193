"""How a sync resolves the paths a merge left conflicted: never markers, never a lost entry.

knowledge/ is derived from daily/, so a page both roots compiled is not merged line by line: the
remote's version is taken and this host's entries that touched the page since the merge base
become pending again, so this root's next compile puts them back into the page (the union of
both sides' entries, compiled). The rules, per conflicted path:

- ``knowledge/index.md``: ours (it is regenerated from the merged pages right after).
- ``knowledge/log.md`` (append-only): both sides' sections, a line union.
- ``daily/*.md``: the entry-level merge (``pipeline.dailymerge.merge``), as the driver would.
- ``daily/.compiled/<host>.txt``: a line union (one writer per file; only a reused host name
  can make two).
- A knowledge page memc wrote on our side: theirs; our entries of ``git log BASE..OURS --
  page`` (``Memc-Entries`` of commits whose ``Memc-Host`` is ours) are made pending again and
  leave our compiled record. A page deleted on one side and changed on the other is kept.
- A knowledge page a person edited on our side: ours kept whole, and theirs' new text joins it
  by a clean 3-way merge or as a dated section (``pipeline.pages`` rule): no line of theirs or
  the person's is dropped.
- Anything else (a person's own file outside memc's folders): not ours to decide; the caller
  aborts the merge and says which file to merge by hand.

Invariants: reads the three stages from git, writes each resolution through
``vcsremote.resolve_path`` (atomic, staged); touches nothing but the conflicted paths, the
compiled record and state.db rows of the re-pended entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import compiledrecord, pages, vcs, vcsremote, versioning
from pipeline.errors import SyncFailed

_TRAILER = re.compile(r"^(Memc-[A-Za-z]+):\s*(.*)$", re.M)


@dataclass
class Resolution:
    taken_theirs: list[str] = field(default_factory=list)
    kept_ours: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    repended: list[str] = field(default_factory=list)  # entry ids to compile again here


def our_entries(root: Path, base: str | None, ours: str, rel: str, host: str) -> list[str]:
    """This host's entries compiled into ``rel`` by commits in base..ours (newest first)."""
    rng = f"{base}..{ours}" if base else ours
    proc = vcs.run(root, "log", "--format=%x1e%B", rng, "--", rel)
    out: list[str] = []
    for body in proc.stdout.split("\x1e")[1:]:
        trailers = dict(_TRAILER.findall(body))
        made_on = trailers.get(versioning.TRAILER_HOST, "")
        if made_on and made_on != host:
            continue  # another host's batch that reached us by an earlier sync
        out.extend(trailers.get(versioning.TRAILER_ENTRIES, "").split())
    return list(dict.fromkeys(out))


def _union(ours: str, base: str, theirs: str) -> str:
    merged = vcs.merge_text(ours, base, theirs, union=True)[0]
    return merged if merged.endswith("\n") or not merged else merged + "\n"


def _user_page(ours: str, base: str, theirs: str, today: str) -> str:
    """Ours whole plus what theirs adds: a clean merge keeping every line, else a section."""
    from pipeline.apply import new_material
    from pipeline.wiki import split_frontmatter

    merged, clean = vcs.merge_text(ours, base, theirs)
    if clean and pages.keeps_every_line(ours, merged) and pages.keeps_every_line(theirs, merged):
        return merged
    extra = new_material(split_frontmatter(ours)[1], split_frontmatter(theirs)[1])
    if not extra:
        return ours
    return f"{ours.rstrip()}\n\n## From another machine {today}\n\n{extra}\n"


def resolve(settings, conn, base: str | None, ours: str, today: str) -> Resolution:
    """Resolve every conflicted path of the merge in progress (see the module docstring).
    SyncFailed naming the first path that is not memc's to resolve (nothing written for it)."""
    root = Path(settings.root)
    host = settings.this_host
    res = Resolution()
    conflicted = vcsremote.unmerged(root)
    foreign = [p for p in conflicted if not p.startswith(("knowledge/", "daily/"))]
    if foreign:
        raise SyncFailed(
            f"{foreign[0]} changed here and on the remote and is not memc's to merge: "
            "merge it by hand (git merge), then run `memc sync` again"
        )
    for rel in conflicted:
        b = vcsremote.stage_text(root, 1, rel)
        o = vcsremote.stage_text(root, 2, rel)
        t = vcsremote.stage_text(root, 3, rel)
        if rel == "knowledge/index.md":
            vcsremote.resolve_path(root, rel, o if o is not None else t)
            continue
        if rel == "knowledge/log.md" or rel.startswith(versioning.RECORD_PREFIX):
            vcsremote.resolve_path(root, rel, _union(o or "", b or "", t or ""))
            res.merged.append(rel)
            continue
        if rel.startswith("daily/"):
            from pipeline import dailymerge

            text = dailymerge.merge(b or "", o or "", t or "") if o and t else (o or t)
            vcsremote.resolve_path(root, rel, text)
            res.merged.append(rel)
            continue
        if o is None or t is None:  # deleted on one side, changed on the other: keep it
            vcsremote.resolve_path(root, rel, o if o is not None else t)
            res.kept_ours.append(rel) if o is not None else res.taken_theirs.append(rel)
            continue
        if pages.page_state(conn, rel, o.encode("utf-8")).user_edited:
            vcsremote.resolve_path(root, rel, _user_page(o, b or "", t, today))
            res.kept_ours.append(rel)
            continue
        vcsremote.resolve_path(root, rel, t)
        res.taken_theirs.append(rel)
        res.repended.extend(our_entries(root, base, ours, rel, host))
    res.repended = list(dict.fromkeys(res.repended))
    if res.repended:
        gone = compiledrecord.remove(settings.paths.daily, host, res.repended)
        if gone:
            record = compiledrecord.record_file(settings.paths.daily, host)
            vcs.run(root, "add", "--", record.relative_to(root).as_posix())
        conn.executemany(
            "UPDATE entries SET compiled_at=NULL WHERE id=? AND withdrawn_at IS NULL",
            [(e,) for e in res.repended],
        )
    return res
