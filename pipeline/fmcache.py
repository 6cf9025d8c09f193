"""A cache of parsed article frontmatter, kept between runs in ``.memc/cache/frontmatter.json``.

Role: lint (and anything else that reads every article) parses each distinct frontmatter block
once; a later run finds the parsed mapping by the block's hash instead of running YAML again.

Invariants:
- Keyed by a hash of the frontmatter text itself, so a hit is exactly what
  ``wiki.load_frontmatter`` would return for that text (the same mapping, or the same
  ``FrontmatterError`` message); an edited file simply misses. A mapping is stored only if it
  survives the JSON round trip unchanged (dates are tagged; anything else odd is not cached).
- Bookkeeping only: a missing, unreadable or damaged cache file means an empty cache. It is
  written atomically, at most once per run, and keeps only the blocks seen in that run, so it
  never grows past the knowledge base.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import fsutil
from pipeline.wiki import FrontmatterError, load_frontmatter

VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"__date__": value.isoformat()}
    raise TypeError(f"not cacheable: {type(value).__name__}")


def _decode(obj: dict) -> Any:
    if len(obj) == 1:
        if "__datetime__" in obj:
            return _dt.datetime.fromisoformat(obj["__datetime__"])
        if "__date__" in obj:
            return _dt.date.fromisoformat(obj["__date__"])
    return obj


class FrontmatterCache:
    """``load(raw)`` behaves as ``wiki.load_frontmatter(raw)``; ``save()`` persists the cache."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.old: dict[str, Any] = {}
        self.new: dict[str, Any] = {}
        self.hits = 0
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"), object_hook=_decode)
                if isinstance(data, dict) and data.get("v") == VERSION:
                    entries = data.get("entries")
                    self.old = entries if isinstance(entries, dict) else {}
            except (OSError, ValueError, TypeError):
                self.old = {}

    def load(self, raw: str) -> dict[str, Any]:
        digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        hit = self.old.get(digest)
        if isinstance(hit, dict) and ("meta" in hit or "error" in hit):
            self.hits += 1
            self.new[digest] = hit
            if "error" in hit:
                raise FrontmatterError(str(hit["error"]))
            return hit["meta"]
        try:
            meta = load_frontmatter(raw)
        except FrontmatterError as exc:
            self.new[digest] = {"error": str(exc)}
            raise
        try:
            text = json.dumps(meta, default=_encode)
            if json.loads(text, object_hook=_decode) == meta:
                self.new[digest] = {"meta": json.loads(text, object_hook=_decode)}
        except (TypeError, ValueError, RecursionError):
            pass  # not representable: parsed again next time
        return meta

    def save(self) -> None:
        if self.path is None or self.new.keys() == self.old.keys():
            return
        try:
            payload = json.dumps({"v": VERSION, "entries": self.new}, default=_encode)
            fsutil.atomic_write(self.path, payload + "\n")
        except (OSError, TypeError, ValueError):
            pass  # a cache that cannot be written is only slower next time
