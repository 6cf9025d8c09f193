"""Daily logs merge entry by entry: the git merge driver for ``daily/*.md``.

Two machines (or teammates) append to the same day's log and sync over git. A line-based merge
would put both sides' new entries in one conflict hunk, and git's refinement of that hunk
interleaves their shared lines (``**Decisions:**``, blank lines). This driver merges the files as
what they are, a preamble and a list of entries keyed by their ids (``pipeline.daily``), so the
result holds every entry exactly once, by construction.

Rules, for the base (B), ours (O, the file in the work tree) and theirs (T):
- An entry in one side only (new there) is kept; an entry new on both sides with the same id is
  the same distillation and kept once (ours).
- An entry changed on one side only (a hand edit) takes that side's text; deleted on one side and
  unchanged on the other, it is deleted; deleted on one side and edited on the other, the edit is
  kept (nobody's words are dropped).
- An entry edited differently on both sides gets a clean ``git merge-file`` merge of the two, or
  else ours with theirs' version quoted below it under a note: never conflict markers, and the
  quote cannot form a second heading+marker pair, so the id stays unique.
- The preamble (the heading and anything a person wrote before the first entry) merges the same
  way. Text a person wrote after an entry travels with that entry (it is part of its block).
- Entries keep ours' order; theirs' new ones go in by their ``HH:MM`` time, after ours' entries of
  the same minute. When theirs adds nothing new, the result is ours byte for byte.

Invariants:
- The driver never fails a merge and never writes a conflict marker: any trouble reading the
  three versions falls back to ours plus theirs' entries that ours lacks (exit 0 either way).
- It reads only the three files git names and writes only ``%A``; no state, no network.
- ``install(root)`` is idempotent: it keeps ``.gitattributes``' line for ``daily/*.md`` and points
  the repository-local ``merge.memc-daily.driver`` at THIS installation (``pipeline.program``), so
  a moved virtualenv heals on the next sync.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil
from pipeline.daily import HEADING_RE, MARKER_RE

DRIVER = "memc-daily"
ATTRIBUTE_LINE = f"daily/*.md merge={DRIVER}"
GITATTRIBUTES = (
    "# memory-compiler: daily logs merge entry by entry (`memc merge-daily`), never with markers\n"
    f"{ATTRIBUTE_LINE}\n"
)
EDITED_ELSEWHERE = "*(memc sync: this entry was also edited on another machine; that version:)*"
_TIME = re.compile(r"^### (\d\d:\d\d) ")


@dataclass(frozen=True)
class Block:
    key: str  # the entry id; "" for the preamble
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip("\n")

    @property
    def time(self) -> str:
        found = _TIME.match(self.lines[0]) if self.lines else None
        return found.group(1) if found else ""


def split(text: str) -> list[Block]:
    """The preamble (always first, maybe empty) and the entry blocks of a daily log, in order.

    Entry starts are found exactly as ``daily.parse_entries`` finds them (a ``### `` heading
    directly followed by a marker line); a repeated id keeps its first block and folds the later
    one into it, so no text is lost and ids stay unique."""
    lines = text.replace("\r\n", "\n").split("\n")
    starts: list[tuple[int, str]] = []
    for i in range(len(lines) - 1):
        if HEADING_RE.match(lines[i]):
            marker = MARKER_RE.match(lines[i + 1].strip())
            if marker:
                starts.append((i, marker["id"]))
    first = starts[0][0] if starts else len(lines)
    blocks = [Block("", tuple(lines[:first]))]
    seen: dict[str, int] = {}
    for n, (i, key) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        block = Block(key, tuple(lines[i:end]))
        if key in seen:
            at = seen[key]
            blocks[at] = Block(key, blocks[at].lines + block.lines)
            continue
        seen[key] = len(blocks)
        blocks.append(block)
    return blocks


def _merge_one(base: str | None, ours: str | None, theirs: str | None) -> str | None:
    """The merged text of one block (None: deleted). See the module docstring's rules."""
    if ours == theirs:
        return ours
    if theirs is None:  # deleted there (or never there: then base is None and ours is new)
        return None if base is not None and ours == base else ours
    if ours is None:
        return None if base is not None and theirs == base else theirs
    if theirs == base:
        return ours
    if ours == base:
        return theirs
    from pipeline import vcs

    try:
        merged, clean = vcs.merge_text(ours + "\n", (base or "") + "\n", theirs + "\n")
    except Exception:  # git missing or failing: keep both, below
        clean = False
    if clean:
        return merged.strip("\n")
    quoted = "\n".join(f"> {line}".rstrip() for line in theirs.split("\n"))
    return f"{ours}\n\n{EDITED_ELSEWHERE}\n\n{quoted}"  # quoted: no second heading+marker pair


def merge(base: str, ours: str, theirs: str) -> str:
    """The entry-level three-way merge of one daily log's three versions."""
    b = {blk.key: blk for blk in split(base)}
    o = split(ours)
    t = split(theirs)
    o_keys = {blk.key for blk in o}
    t_map = {blk.key: blk for blk in t}

    def text(blocks: dict[str, Block], key: str) -> str | None:
        return blocks[key].text if key in blocks else None

    out: list[tuple[str, str]] = []  # (key, text)
    changed = False
    for blk in o:
        merged = _merge_one(text(b, blk.key), blk.text, text(t_map, blk.key))
        if merged != blk.text:
            changed = True
        if merged is not None or blk.key == "":
            out.append((blk.key, merged or ""))
    for blk in t:
        if blk.key in o_keys:
            continue
        merged = _merge_one(text(b, blk.key), None, blk.text)
        if merged is None:
            continue  # we deleted it and they left it alone
        changed = True
        _insert_by_time(out, blk.key, merged, blk.time)
    if not changed:
        return ours
    return render(out)


def _insert_by_time(out: list[tuple[str, str]], key: str, text: str, time: str) -> None:
    at = len(out)
    if time:
        for i in range(1, len(out)):
            found = _TIME.match(out[i][1])
            if found and found.group(1) > time:
                at = i
                break
    out.insert(at, (key, text))


def render(blocks: list[tuple[str, str]]) -> str:
    """Blocks joined by one blank line, ending with one; the preamble first when it has text."""
    parts = [text.strip("\n") for _, text in blocks if text.strip("\n")]
    return "\n\n".join(parts) + "\n\n" if parts else ""


def fallback(ours: str, theirs: str) -> str:
    """Ours plus theirs' entries ours lacks: what the driver writes when the merge itself fails."""
    have = {blk.key for blk in split(ours)}
    extra = [blk.text for blk in split(theirs) if blk.key and blk.key not in have]
    if not extra:
        return ours
    return ours.rstrip("\n") + "\n\n" + "\n\n".join(extra) + "\n\n"


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def merge_files(base_path: str, ours_path: str, theirs_path: str) -> int:
    """The driver: merge the three files git names and write the result over ``ours_path``."""
    ours = _read(ours_path)
    try:
        result = merge(_read(base_path), ours, _read(theirs_path))
    except Exception:  # never fail a merge: keep every entry of both sides
        result = fallback(ours, _read(theirs_path))
    if result != ours:
        fsutil.atomic_write(Path(ours_path), result.encode("utf-8", "surrogateescape"))
    return 0


def driver_command() -> str:
    """The ``merge.memc-daily.driver`` value: this installation's memc, absolute, quoted."""
    from pipeline.program import memc_program

    return shlex.join([*memc_program(), "merge-daily"]) + " %O %A %B %P"


def ensure_gitattributes(root: Path) -> bool:
    """Write ``.gitattributes`` or add the daily line to the user's own. True if written."""
    return fsutil.ensure_block(
        root / ".gitattributes", GITATTRIBUTES, lambda lines: ATTRIBUTE_LINE in lines
    )


def gitattributes_is_memc(text: str, before: str) -> bool:
    """``.gitattributes`` exactly as ``ensure_gitattributes`` left it (fresh or appended)."""
    before = before.rstrip("\n")
    return text == GITATTRIBUTES or (bool(before) and text == before + "\n\n" + GITATTRIBUTES)


def install(root: Path) -> bool:
    """Keep the attribute line and register the driver in ROOT's git config. True if changed."""
    from pipeline import vcs

    wrote = ensure_gitattributes(root)
    command = driver_command()
    changed = False
    if vcs.config_get(root, f"merge.{DRIVER}.driver") != command:
        vcs.config_set(root, f"merge.{DRIVER}.name", "memory-compiler daily logs, entry by entry")
        vcs.config_set(root, f"merge.{DRIVER}.driver", command)
        changed = True
    return wrote or changed


def registered(root: Path) -> bool:
    """True when ROOT's git config runs THIS installation's driver for daily logs."""
    from pipeline import vcs

    return vcs.config_get(root, f"merge.{DRIVER}.driver") == driver_command()


if __name__ == "__main__":  # pragma: no cover - git runs the CLI command; this is for debugging
    raise SystemExit(merge_files(*sys.argv[1:4]))
