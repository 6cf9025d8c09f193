"""`memc lint --fix`: the safe repairs, applied to the findings of one ``lint.scan``.

Invariants: only what is unambiguous is touched (links that resolve to exactly one page are made
canonical, missing backlinks are added under a ``## Related`` section, index.md is regenerated
the way compile generates it); a page the user edited (``pipeline.pages``) only gains backlinks,
its links stay as written; each page written is recorded as memc's; only article bodies are
rewritten, the frontmatter block is kept byte for byte; every write is ``fsutil.atomic_write``
through ``fsutil.safe_join``; running the repairs twice changes nothing the second time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline import fsutil
from pipeline.config import Paths
from pipeline.wiki import _FENCE_RE, _INLINE_CODE_RE, LINK_RE, split_frontmatter
from pipeline.wikiindex import link_display

if TYPE_CHECKING:
    from pipeline.lintscan import Scan

RELATED_RE = re.compile(r"^##[ \t]+Related[ \t]*$", re.M | re.I)


def _rel(key: str) -> str:
    return f"knowledge/{key}.md"


def _code_spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _FENCE_RE.finditer(text)]
    for m in _INLINE_CODE_RE.finditer(text):
        if not any(a <= m.start() < b for a, b in spans):
            spans.append(m.span())
    return spans


def rewrite_links(body: str, mapping: dict[str, str]) -> str:
    """Replace link targets by their canonical keys outside code; keep heading and display."""
    spans = _code_spans(body)

    def repl(m: re.Match) -> str:
        if any(a <= m.start() < b for a, b in spans):
            return m.group(0)
        inner = m.group(2)
        target, bar, display = inner.partition("|")
        name, hash_, heading = target.partition("#")
        canonical = mapping.get(name.strip())
        if canonical is None:
            return m.group(0)
        if m.group(1) or bar:  # embeds and links that already show their own text
            return f"{m.group(1)}[[{canonical}{hash_}{heading}{bar}{display}]]"
        return f"[[{canonical}{hash_}{heading}|{target.strip()}]]"

    return LINK_RE.sub(repl, body)


def add_related(body: str, lines: list[str]) -> str:
    """Append bullet lines to the body's ``## Related`` section (created at the end if absent)."""
    block = "\n".join(lines)
    match = RELATED_RE.search(body)
    if match is None:
        return body.rstrip("\n") + "\n\n## Related\n\n" + block + "\n"
    nxt = re.compile(r"^#{1,2}[ \t]", re.M).search(body, match.end())
    end = nxt.start() if nxt else len(body)
    section = body[match.end() : end].rstrip("\n")
    tail = body[end:]
    return (
        body[: match.end()]
        + section
        + ("\n" if section.strip() else "\n\n")
        + block
        + "\n"
        + ("\n" + tail if tail else "")
    )


def apply_fixes(paths: Paths, result: Scan) -> list[str]:
    """Rewrite unambiguous links, add missing backlinks, regenerate index.md; return the changes."""
    import contextlib

    from pipeline import state

    with contextlib.closing(state.connect(paths.state_db)) as conn:
        return _apply_fixes(paths, result, conn)


def _apply_fixes(paths: Paths, result: Scan, conn) -> list[str]:
    from pipeline import pages

    backlinks: dict[str, list[str]] = {}
    for key, outs in result.out_links.items():
        for target in sorted(outs):
            if key not in result.out_links.get(target, ()):
                backlinks.setdefault(target, []).append(key)
    changed: list[str] = []
    for key in sorted(set(result.rewrites) | set(backlinks)):
        text = result.texts[key]
        _raw, body = split_frontmatter(text)
        prefix = text[: len(text) - len(body)]
        new_body = body
        rel = f"knowledge/{key}.md"
        # A page a person edited only ever gains lines: its links are left as written.
        user_edited = pages.page_state(conn, rel, text.encode("utf-8")).user_edited
        rewrite = key in result.rewrites and not user_edited
        if rewrite:
            new_body = rewrite_links(new_body, result.rewrites[key])
        if key in backlinks:
            bullets = [
                f"- [[{src}|{link_display(result.articles[src].title)}]]" for src in backlinks[key]
            ]
            new_body = add_related(new_body, bullets)
        if new_body != body:
            fsutil.atomic_write(fsutil.safe_join(paths.knowledge, f"{key}.md"), prefix + new_body)
            pages.record(conn, rel, prefix + new_body, user_edited=user_edited)
            what = []
            if rewrite:
                what.append(f"{len(result.rewrites[key])} link(s) made canonical")
            if key in backlinks:
                what.append(f"{len(backlinks[key])} backlink(s) added")
            changed.append(f"{_rel(key)}: {', '.join(what)}")
    if regenerate_index(paths):
        changed.append("knowledge/index.md: regenerated")
    return changed


def regenerate_index(paths: Paths) -> bool:
    """Write index.md as the compile step generates it, only if its content differs."""
    from pipeline import wikiindex

    return wikiindex.write_index(paths).written
