"""The high-entropy catch-all of ``pipeline.redact``: random-looking tokens that no provider
pattern or keyword names.

Invariants (the rule must not fire on what is ordinary in a coding session):
- Hex strings (git SHAs, sha256 digests, UUIDs), identifiers without digits or without mixed
  case, URL paths, ``sha512-`` integrity hashes, ``data:...;base64,`` payloads and Anthropic
  object ids (``toolu_``, ``srvtoolu_``, ``msg_``, ``req_``) are left alone.
- File paths are judged segment by segment (see ``_path_token``): only a segment that looks
  random by itself is replaced.
- Linear: one bounded scan for candidate tokens, constant work per candidate character.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

_OBJECT_ID = re.compile(
    r"^(?:srv)?toolu_(?:vrtx_|bdrk_)?[A-Za-z0-9]{20,40}$|^(?:msg|req)_(?:vrtx_|bdrk_)?[A-Za-z0-9]{20,40}$"
)
_WORD_SEGMENT = re.compile(
    r"^(?:[A-Za-z][a-z]{2,}|[a-z0-9]+(?:[-_.][a-z0-9]+)+|[a-z]{2,}\d{0,3}|\d+)$"
)
_FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}\b")
SEGMENT_MIN = 16  # a path segment shorter than this is never judged random
ENTROPY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/=_\-]{32,}(?![A-Za-z0-9+/=_\-])")
_HEXISH = re.compile(r"^[0-9a-fA-F\-]+$")
_INTEGRITY = re.compile(r"^(?:sha1|sha256|sha384|sha512)-", re.I)
ENTROPY_THRESHOLD = 4.0  # bits/char; random base62 of 32+ chars scores ~4.5-5.2, words ~3-4


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def looks_random(token: str, threshold: float = ENTROPY_THRESHOLD) -> bool:
    """Is this 32+ char token a likely key rather than a hash, identifier or path?"""
    if _HEXISH.match(token) or _INTEGRITY.match(token):
        return False
    body = token.rstrip("=")
    digits = sum(ch.isdigit() for ch in body)
    upper = sum(ch.isupper() for ch in body)
    lower = sum(ch.islower() for ch in body)
    if digits < 2 or upper < 2 or lower < 2:
        return False
    # Identifiers split by _ or - into words: random keys rarely have 3+ long alphabetic runs.
    words = re.findall(r"[A-Za-z][a-z]{3,}", body)
    if sum(len(w) for w in words) > 0.6 * len(body):
        return False
    return shannon_entropy(body) >= threshold


def _segment_random(segment: str) -> bool:
    """A path segment that looks like a key by itself; the entropy bar scales with its length
    (a string of n distinct chars has at most log2(n) bits/char)."""
    if len(segment) < SEGMENT_MIN:
        return False
    return looks_random(segment, min(ENTROPY_THRESHOLD, 0.8 * math.log2(len(segment))))


def _path_token(token: str, before: str, after: str) -> bool:
    """Is this token (with ``/``) a file path rather than a key that happens to hold ``/``?"""
    if "/" not in token:
        return False
    if not (token.startswith("/") or before in ("~", ".") or _FILE_EXTENSION.match(after)):
        return False
    words = sum(1 for seg in token.split("/") if _WORD_SEGMENT.match(seg))
    return words >= 2


def entropy_replacer(marker: str) -> Callable[[re.Match], str]:
    """The replacer for ``ENTROPY_TOKEN`` matches: ``marker`` for a random-looking token, the
    token itself otherwise (ids, hashes, paths judged segment by segment)."""

    def repl(m: re.Match) -> str:
        return _judge(m, marker)

    return repl


def _judge(m: re.Match, marker: str) -> str:
    token = m.group(0)
    if _OBJECT_ID.match(token.rsplit("=", 1)[-1]):  # also `tool_use_id=toolu_...`
        return token
    text, start = m.string, m.start()
    path = _path_token(token, text[start - 1] if start else "", text[m.end() : m.end() + 10])
    if not path and not looks_random(token):
        return token
    word_start = max(text.rfind(ch, 0, start) for ch in " \t\n\"'(<[`") + 1
    prefix = text[word_start:start]
    if prefix.endswith(";base64,") or ("://" in prefix and "?" not in prefix and "=" not in prefix):
        return token
    if path:  # judged segment by segment: only a random-looking segment goes
        return "/".join(marker if _segment_random(s) else s for s in token.split("/"))
    return marker
