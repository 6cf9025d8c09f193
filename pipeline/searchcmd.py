"""What `memc search` prints: the index brought up to date, the hits ranked, the output formed.

``report`` is the command's whole body; the click command (``pipeline.cli.read_cmds``) and the
console script's click-free path (``pipeline.entry``) both print what it returns, so the two
cannot drift apart. Text: one numbered line per hit (title, then the article key or the daily
path and entry id) with its snippet under it, or a line saying nothing matched. JSON: one
document, ``{"query", "hits": [...]}``. A query without a word raises ``ConfigError`` (exit 2).
Stdlib only.
"""

from __future__ import annotations

import json

from pipeline import search, searchindex
from pipeline.errors import ConfigError
from pipeline.paths import Paths


def report(
    paths: Paths, text: str, *, limit: int = 10, kind: str | None = None, as_json: bool = False
) -> str:
    """The output of `memc search TEXT` (without its final newline)."""
    if not search.terms(text):
        raise ConfigError(
            f"nothing to search for in {text!r}: give one or more words, "
            "e.g. memc search advisory locks"
        )
    searchindex.refresh(paths)
    hits = search.search(paths, text, limit=limit, kind=kind)
    if as_json:
        data = {"query": text, "hits": [vars(h) for h in hits]}
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if not hits:
        return f"No matches for {text!r}. Try fewer or different words."
    lines = []
    for n, hit in enumerate(hits, 1):
        label = hit.key if hit.kind == "article" else f"{hit.path} #{hit.key}"
        lines.append(f"{n:2}. {hit.title}  [{label}]")
        if hit.snippet:
            lines.append(f"    {hit.snippet}")
    return "\n".join(lines)
