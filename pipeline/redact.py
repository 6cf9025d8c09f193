"""Secrets and ``<private>`` spans out of text, before anything is written or sent.

Role: distil runs every rendered chunk through ``redact`` before it reaches a prompt, a daily log
or a log line. Stdlib only; every pattern is compiled at import.

Invariants:
- A secret is replaced by ``[REDACTED:kind]``; for ``KEY=value`` assignments, URL credentials and
  ``Authorization`` headers the key, user name and scheme are kept so the text still reads.
- ``<private>...</private>`` spans (any case, multi-line) are removed; an unclosed ``<private>``
  removes everything after it. ``Redactor`` redacts a sequence of texts (a transcript's turns)
  and follows a span opened in one text through the next ones to its close; this module is the
  only one that knows the tags.
- Redaction is idempotent: ``redact(redact(t)) == redact(t)``; a marker is never re-redacted.
- Order matters and is fixed: private spans, PEM blocks, provider tokens, URL credentials,
  Authorization/Bearer headers, keyword assignments (``KEY=v``, ``"key": "v"``, YAML lines,
  ``--password v`` flags), curl's ``-u user:password``, then the high-entropy catch-all.
- Keyword assignments skip what reads as code: references (``$VAR``, ``${{ x }}``, ``<your-key>``),
  calls and attribute paths, type names, and lower-case names passed along (``token=token``).
  A YAML block scalar (``secret: |``) is not followed into its lines.
- The high-entropy rule leaves alone what is ordinary in a coding session: hex strings (git SHAs,
  sha256 digests, UUIDs), identifiers without digits or without mixed case, URL paths,
  ``sha512-`` integrity hashes, ``data:...;base64,`` payloads (images, not credentials) and
  Anthropic object ids (``toolu_``, ``srvtoolu_``, ``msg_``, ``req_``). Hex-only secrets are
  therefore caught only by a provider pattern or a keyword assignment, never by entropy alone.
- File paths are judged segment by segment. A token with ``/`` is a path when it starts with
  ``/``, follows ``~`` or ``.``, or is followed by a file extension (``Button3.tsx``), AND at
  least two of its segments read as words (``src``, ``Projects``, ``claude-1000``); then only
  a segment that looks random by itself (16+ chars, mixed case and digits, high entropy) is
  replaced. A random key that merely contains ``/`` has no word segments and is judged whole,
  as before.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

Replacer = Callable[[re.Match], str]


def _mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


_TAG_OPEN, _TAG_CLOSE = r"<private\s*>", r"</private\s*>"
_PRIVATE_CLOSED = re.compile(f"{_TAG_OPEN}.*?{_TAG_CLOSE}", re.I | re.S)
_PRIVATE_OPEN = re.compile(f"{_TAG_OPEN}.*\\Z", re.I | re.S)
_PRIVATE_START = re.compile(_TAG_OPEN, re.I)
_PRIVATE_END = re.compile(_TAG_CLOSE, re.I)

_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.\-]*)"
)

# Provider formats, most specific first. Each starts with its literal prefix (fast scanning);
# the token-start boundary is checked in the replacer, as a look-behind would slow every scan.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_E = r"(?![A-Za-z0-9_\-])"
_TOKENS: list[tuple[str, re.Pattern]] = [
    ("anthropic", re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai", re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + _E)),
    (
        "github",
        re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})" + _E),
    ),
    ("slack", re.compile(r"xox[abposre]-[A-Za-z0-9\-]{10,}")),
    ("slack", re.compile(r"xapp-\d-[A-Za-z0-9\-]{10,}")),
    (
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    ),
    ("stripe", re.compile(r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E)),
    ("stripe", re.compile(r"whsec_[A-Za-z0-9]{24,}" + _E)),
    ("google", re.compile(r"AIza[0-9A-Za-z_\-]{35}" + _E)),
    ("google", re.compile(r"GOCSPX-[A-Za-z0-9_\-]{20,}")),
    ("google", re.compile(r"ya29\.[0-9A-Za-z_\-]{20,}")),
    (
        "aws_access_key",
        re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("npm", re.compile(r"npm_[A-Za-z0-9]{36}" + _E)),
    ("huggingface", re.compile(r"hf_[A-Za-z0-9]{30,}" + _E)),
    ("gitlab", re.compile(r"gl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_\-]{20,}" + _E)),
    ("sendgrid", re.compile(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _E)),
    ("digitalocean", re.compile(r"do[opr]_v1_[a-f0-9]{64}" + _E)),
]
_MIXED_KINDS = frozenset({"openai"})  # "sk-" + words is common prose; demand letters and digits

_URL_CREDENTIALS = re.compile(  # anchored on "://" (the scheme before it is kept as is)
    r"(?P<head>://[^\s:/?#@\"'<>\[\]]*:)"  # the user may be empty: redis://:pw@host
    r"(?P<pw>[^\s/?#\"'<>]+)(?=@[A-Za-z0-9\[])"
)  # greedy: a password may hold "@"

_AUTH_HEADER = re.compile(
    r"(?=[aA])(?P<head>(?i:\bauthorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?i:bearer|token|basic|digest)?\s*)"
    r"(?P<val>[A-Za-z0-9._~+/=\-]{8,})"
)
_BEARER = re.compile(r"(?=[bB])(?P<head>\b(?i:bearer)\s+)(?P<val>[A-Za-z0-9._~+/=\-]{16,})")

_AWS_SECRET = re.compile(
    r"(?=[aAsS])(?P<head>(?i:aws_?secret(?:_access)?_key|secret_?access_?key)"
    r"[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<val>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)

_KEYWORDS = (
    r"password|passwd|passphrase|secret|token|api[_\-]?key|apikey|access[_\-]?key|"
    r"secret[_\-]?key|private[_\-]?key|client[_\-]?secret|credentials?|auth[_\-]?key"
)
# The match starts at the keyword (fast); the replacer extends the key backwards.
_ASSIGNMENT = re.compile(
    r"(?=[pPsStTaAcC])(?P<head>(?P<kw>(?i:" + _KEYWORDS + r"))"
    r"(?P<q1>[\"']?)(?P<sep>[ \t]*(?::=|=>|=(?!=)|:(?!:))[ \t]*))"
    r"(?:(?P<quote>[\"'])(?P<qval>[^\"'\n]{1,400})(?P=quote)"
    r"|(?P<val>[^\s\"'`,;(){}\[\]<>]{1,400}))"
)
# A YAML-style line whose unquoted value has several words: the whole value goes.
_YAML_LINE = re.compile(
    r"(?m)^(?P<head>[ \t]*(?:- )?(?P<key>[A-Za-z0-9_.\-]*(?i:" + _KEYWORDS + r"))"
    r"[\"']?[ \t]*:[ \t]+)"
    r"(?P<val>[^\s\"'#|>&*!{\[][^\n#]*?[ \t][^\n#]*?)[ \t]*$"
)
_FLAG = re.compile(
    r"(?=-)(?P<head>(?<![\w\-])--?"
    r"(?i:password|passwd|token|api-key|apikey|secret|client-secret)(?:=|[ \t]+))"
    r"(?P<val>[^\s\"'`-][^\s\"'`]{0,400})"
)

# curl's basic auth, `-u user:password` / `--user user:password` (only after `curl` on the line:
# `docker run -u 1000:1000` and `git push -u origin` are not credentials).
_CURL_USER = re.compile(
    r"(?=-)(?P<head>(?<![\w\-])(?:-u|--user)(?:=|[ \t]+)[\"']?(?P<user>[^\s:\"'@$]{1,100}):)"
    r"(?P<val>[^\s\"']{1,400})"
)

_PLACEHOLDER = re.compile(
    r"^(?:[|>][-+]?|\$.*|%[\w()]*%?|\{\{.*|<.*>|\*+|x{3,}|\.{3}|…|"
    r"null|none|nil|true|false|"
    r"str|string|int|bytes|bool|optional.*|any|required|undefined|env|secret|password|token|"
    r"changeme|redacted|\[redacted.*|example|your[_\-].*|process\.env.*|os\.environ.*)$",
    re.I,
)
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
_CAMEL_TYPE = re.compile(r"^[A-Z][a-z]+(?:[A-Z][a-z]*)*$")  # type names and TypeVars
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

_OBJECT_ID = re.compile(
    r"^(?:srv)?toolu_(?:vrtx_|bdrk_)?[A-Za-z0-9]{20,40}$|^(?:msg|req)_(?:vrtx_|bdrk_)?[A-Za-z0-9]{20,40}$"
)
_WORD_SEGMENT = re.compile(
    r"^(?:[A-Za-z][a-z]{2,}|[a-z0-9]+(?:[-_.][a-z0-9]+)+|[a-z]{2,}\d{0,3}|\d+)$"
)
_FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}\b")
SEGMENT_MIN = 16  # a path segment shorter than this is never judged random
_ENTROPY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/=_\-]{32,}(?![A-Za-z0-9+/=_\-])")
_HEXISH = re.compile(r"^[0-9a-fA-F\-]+$")
_INTEGRITY = re.compile(r"^(?:sha1|sha256|sha384|sha512)-", re.I)
ENTROPY_THRESHOLD = 4.0  # bits/char; random base62 of 32+ chars scores ~4.5-5.2, words ~3-4


_MARKER = re.compile(r"\[REDACTED:(\w+)\]")


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


def _has_letters_and_digits(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _value_is_secret(key: str, value: str, quoted: bool, sep: str, after: str) -> bool:
    if not value.strip() or "[REDACTED:" in value or _PLACEHOLDER.match(value.strip()):
        return False
    if quoted:
        return True
    if after[:1] in ("(", "[", ".") or value.startswith("#"):
        return False  # a call or subscript: code, not a literal
    if _DOTTED.match(value) or _CAMEL_TYPE.match(value):
        return False
    if value.lower() == key.lower():
        return False  # `token=token` keyword passing
    if _IDENT.match(value) and not any(c.isdigit() for c in value) and not key.isupper():
        return False  # `password: str`, `api_key=api_key_from_env`: names, not literals
    return not (":" in sep and value.endswith(":"))


_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _key_before(m: re.Match) -> str:
    text, start = m.string, m.start()
    while start > 0 and text[start - 1] in _KEY_CHARS:
        start -= 1
    return text[start : m.start()] + m.group("kw")


def _assignment(m: re.Match) -> str:
    key, sep = _key_before(m), m.group("sep")
    quoted = m.group("qval") is not None
    value = m.group("qval") if quoted else m.group("val")
    after = m.string[m.end() : m.end() + 1]
    if not _value_is_secret(key, value, quoted, sep, after):
        return m.group(0)
    kind = "password" if re.search(r"(?i)pass", key) else "secret"
    if quoted:
        q = m.group("quote")
        return f"{m.group('head')}{q}{_mark(kind)}{q}"
    return m.group("head") + _mark(kind)


def _yaml_line(m: re.Match) -> str:
    key, value = m.group("key"), m.group("val")
    first = value.split()[0]
    nested = m.group("head")[:1] in (" ", "\t", "-")  # indented or a list item: config, not prose
    if "[REDACTED:" in value or _PLACEHOLDER.match(first):
        return m.group(0)
    if not nested and not _value_is_secret(key, first, False, ":", value[len(first) :][:1]):
        return m.group(0)
    return m.group("head") + _mark("password" if re.search(r"(?i)pass", key) else "secret")


def _flag(m: re.Match) -> str:
    value = m.group("val")
    if "[REDACTED:" in value or _PLACEHOLDER.match(value):
        return m.group(0)
    kind = "password" if re.search(r"(?i)pass", m.group("head")) else "secret"
    return m.group("head") + _mark(kind)


def _curl_user(m: re.Match) -> str:
    text, value = m.string, m.group("val")
    line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
    if not re.search(r"\bcurl\b", line) or "[REDACTED:" in value or _PLACEHOLDER.match(value):
        return m.group(0)
    if value == m.group("user") or value.isdigit():
        return m.group(0)
    return m.group("head") + _mark("password")


def _provider(kind: str) -> Replacer:
    def repl(m: re.Match) -> str:
        start = m.start()
        if start and m.string[start - 1] in _TOKEN_CHARS:
            return m.group(0)  # inside a longer word: not a token start
        if kind in _MIXED_KINDS and not _has_letters_and_digits(m.group(0)):
            return m.group(0)
        return _mark(kind)

    return repl


def _bearer(m: re.Match) -> str:
    value = m.group("val")
    if re.fullmatch(r"[a-z_\-]+", value):  # "bearer authentication_scheme": prose, not a token
        return m.group(0)
    return _keep_head("bearer")(m)


def _keep_head(kind: str) -> Replacer:
    def repl(m: re.Match) -> str:
        value = m.group("val") if "val" in m.re.groupindex else m.group("pw")
        if "[REDACTED:" in value or _PLACEHOLDER.match(value):
            return m.group(0)
        return m.group("head") + _mark(kind)

    return repl


def _entropy(m: re.Match) -> str:
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
        return "/".join(
            _mark("high_entropy") if _segment_random(s) else s for s in token.split("/")
        )
    return _mark("high_entropy")


def redact_counts(text: str) -> tuple[str, dict[str, int]]:
    """Redact ``text``; also return how many replacements of each kind were made."""
    counts: dict[str, int] = {}

    def sub(kind: str, pattern: re.Pattern, repl: str | Replacer, s: str) -> str:
        def wrapped(m: re.Match) -> str:
            out = repl(m) if callable(repl) else repl
            if out != m.group(0):
                # count under the kind the marker names (assignments pick password/secret)
                for name in _MARKER.findall(out) or [kind]:
                    counts[name] = counts.get(name, 0) + 1
            return out

        return pattern.sub(wrapped, s)

    if not isinstance(text, str) or not text:
        return (text if isinstance(text, str) else ""), counts
    if "<" in text:
        text = sub("private", _PRIVATE_CLOSED, "", text)
        text = sub("private", _PRIVATE_OPEN, "", text)
    if "PRIVATE KEY" in text:
        text = sub("private_key", _PEM, _mark("private_key"), text)
    for kind, pattern in _TOKENS:
        text = sub(kind, pattern, _provider(kind), text)
    if "://" in text:
        text = sub("url_password", _URL_CREDENTIALS, _keep_head("url_password"), text)
    text = sub("bearer", _AUTH_HEADER, _keep_head("bearer"), text)
    text = sub("bearer", _BEARER, _bearer, text)
    text = sub("aws_secret", _AWS_SECRET, _keep_head("aws_secret"), text)
    text = sub("assignment", _YAML_LINE, _yaml_line, text)
    text = sub("assignment", _ASSIGNMENT, _assignment, text)
    text = sub("assignment", _FLAG, _flag, text)
    if "curl" in text:
        text = sub("password", _CURL_USER, _curl_user, text)
    text = sub("high_entropy", _ENTROPY_TOKEN, _entropy, text)
    return text, counts


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED:kind]`` and ``<private>`` spans removed."""
    return redact_counts(text)[0]


class Redactor:
    """``redact`` for a sequence of texts in order, where a ``<private>`` span left open in one
    text also hides the following texts up to its ``</private>`` (they come back as '')."""

    def __init__(self) -> None:
        self.in_private = False

    def __call__(self, text: str) -> str:
        if self.in_private:
            close = _PRIVATE_END.search(text)
            if close is None:
                return ""
            text = text[close.end() :]
            self.in_private = False
        last_open = None
        for last_open in _PRIVATE_START.finditer(text):  # noqa: B007 (the last one is wanted)
            pass
        if last_open is not None and not _PRIVATE_END.search(text, last_open.end()):
            self.in_private = True
        return redact(text)
