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

import re
from collections.abc import Callable
from typing import Any

from pipeline import redact_patterns as rp
from pipeline.redact_entropy import ENTROPY_TOKEN, entropy_replacer, looks_random, shannon_entropy
from pipeline.redact_patterns import TOKEN_CHARS as _TOKEN_CHARS
from pipeline.redact_patterns import TOKENS as _TOKENS

__all__ = ["drop_private", "looks_random", "redact", "redact_counts", "shannon_entropy"]

Replacer = Callable[[re.Match], str]


def _mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


_PRIVATE_TAG = re.compile(r"<(/?)private\s{0,20}>", re.I)

_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.\-]*)"
)

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
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|"
    r"secret[_\-]?key|private[_\-]?key(?:[_\-]?id)?|client[_\-]?secret|credentials?|auth[_\-]?key"
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
    r"(?P<val>[^\s\"'#|>&*!{\[][^\n#]*+)(?=\n|\Z)"
)  # possessive: a value is the rest of the line (no comment); the replacer wants 2+ words
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

_MARKER = re.compile(r"\[REDACTED:(\w+)\]")


def _has_letters_and_digits(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _value_is_secret(key: str, value: str, quoted: bool, sep: str, after: str) -> bool:
    if not value.strip() or "[REDACTED:" in value or _PLACEHOLDER.match(value.strip()):
        return False
    if quoted:
        return True
    if key.lower().endswith("pwd") and value.startswith(("/", "~")):
        return False  # `pwd: /home/dev/app` is the shell's working directory
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
    kind = "password" if re.search(r"(?i)pass|pwd", key) else "secret"
    if quoted:
        q = m.group("quote")
        return f"{m.group('head')}{q}{_mark(kind)}{q}"
    return m.group("head") + _mark(kind)


def _yaml_line(m: re.Match) -> str:
    key, raw = m.group("key"), m.group("val")
    value = raw.rstrip(" \t")
    if len(value.split()) < 2:  # one word: the assignment rule judges it
        return m.group(0)
    first = value.split()[0]
    nested = m.group("head")[:1] in (" ", "\t", "-")  # indented or a list item: config, not prose
    if "[REDACTED:" in value or _PLACEHOLDER.match(first):
        return m.group(0)
    if not nested and not _value_is_secret(key, first, False, ":", value[len(first) :][:1]):
        return m.group(0)
    kind = "password" if re.search(r"(?i)pass|pwd", key) else "secret"
    return m.group("head") + _mark(kind) + raw[len(value) :]


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


def drop_private(text: str, open_at_start: bool = False) -> tuple[str, int]:
    """``text`` without its ``<private>...</private>`` spans, and how many were dropped.

    One linear pass over the tags: a span ends at the first closing tag after its opening one,
    an unclosed span runs to the end, a stray closing tag is kept as written. With
    ``open_at_start`` the text begins inside a span opened earlier (another turn or job)."""
    out: list[str] = []
    spans = 1 if open_at_start else 0
    start = None if open_at_start else 0
    for tag in _PRIVATE_TAG.finditer(text):
        closing = tag.group(1) == "/"
        if start is not None and not closing:  # outside a span: this opens one
            out.append(text[start : tag.start()])
            start = None
            spans += 1
        elif start is None and closing:  # inside a span: the first close ends it
            start = tag.end()
    if start is not None:
        out.append(text[start:])
    return "".join(out), spans


def private_open_at_end(text: str, open_at_start: bool = False) -> bool:
    """Does a ``<private>`` span opened in ``text`` (or before it) run past its end?"""
    inside = open_at_start
    for tag in _PRIVATE_TAG.finditer(text):
        inside = tag.group(1) != "/"
    return inside


def _spoken(m: re.Match) -> str:
    value = m.group("val").rstrip(".,;:!?)")
    if _PLACEHOLDER.match(value) or not re.search(r"[\d\W_]", value):
        return m.group(0)  # "the password is wrong": prose
    return m.group("head") + _mark("password") + m.group("val")[len(value) :]


def _card(m: re.Match) -> str:
    digits = re.sub(r"[ \-]", "", m.group(0))
    if not 13 <= len(digits) <= 19 or not rp.luhn_ok(digits):
        return m.group(0)
    return _mark("card_number")


def _mysql(m: re.Match) -> str:
    text = m.string
    line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
    if not rp.MYSQL_CLIENT.search(line) or _PLACEHOLDER.match(m.group("val")):
        return m.group(0)
    return m.group("head") + _mark("password")


def _context_rules(text: str, sub: Callable[[str, re.Pattern, Any, str], str]) -> str:
    """Secrets without a prefix of their own, recognised by what surrounds them."""
    lowered = text.lower()
    if '"auth"' in text:
        text = sub(
            "docker_auth",
            rp.DOCKER_AUTH,
            lambda m: m.group("head") + _mark("docker_auth") + '"',
            text,
        )
    if "cookie" in lowered:
        text = sub("cookie", rp.COOKIE, _keep_head("cookie"), text)
    if "pass" in lowered or "pin" in lowered:
        text = sub("password", rp.SPOKEN_PASSWORD, _spoken, text)
    if "-p" in text and ("mysql" in lowered or "mariadb" in lowered):
        text = sub("password", rp.MYSQL_PASSWORD, _mysql, text)
    if "twilio" in lowered or "heroku" in lowered:
        text = sub(
            "secret",
            rp.PROVIDER_CONTEXT,
            lambda m: rp.CONTEXT_VALUE.sub(_mark("secret"), m.group(0)),
            text,
        )
    text = sub("card_number", rp.CARD, _card, text)
    text = sub("ssn", rp.SSN, _mark("ssn"), text)
    if "MII" in text:
        text = sub("private_key", rp.PEM_BODY, _mark("private_key"), text)
    return text


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
        text, spans = drop_private(text)
        if spans:
            counts["private"] = spans
    if "PRIVATE KEY" in text:
        text = sub("private_key", _PEM, _mark("private_key"), text)
    for kind, pattern in _TOKENS:
        text = sub(kind, pattern, _provider(kind), text)
    if "://" in text:
        text = sub("sentry_dsn", rp.SENTRY_DSN, _keep_head("sentry_dsn"), text)
        text = sub("url_password", _URL_CREDENTIALS, _keep_head("url_password"), text)
    text = _context_rules(text, sub)
    text = sub("bearer", _AUTH_HEADER, _keep_head("bearer"), text)
    text = sub("bearer", _BEARER, _bearer, text)
    text = sub("aws_secret", _AWS_SECRET, _keep_head("aws_secret"), text)
    text = sub("assignment", _YAML_LINE, _yaml_line, text)
    text = sub("assignment", _ASSIGNMENT, _assignment, text)
    text = sub("assignment", _FLAG, _flag, text)
    if "curl" in text:
        text = sub("password", _CURL_USER, _curl_user, text)
    text = sub("high_entropy", ENTROPY_TOKEN, entropy_replacer(_mark("high_entropy")), text)
    return text, counts


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED:kind]`` and ``<private>`` spans removed."""
    return redact_counts(text)[0]


class Redactor:
    """``redact`` for a sequence of texts in order, where a ``<private>`` span left open in one
    text also hides the following texts up to its ``</private>`` (they come back as '').
    ``in_private`` says whether the sequence starts inside a span (one opened by an earlier job
    of the same session) and, after each call, whether a span is still open."""

    def __init__(self, in_private: bool = False) -> None:
        self.in_private = in_private

    def __call__(self, text: str) -> str:
        was = self.in_private
        self.in_private = private_open_at_end(text, was)
        if was:
            text, _ = drop_private(text, open_at_start=True)
        return redact(text)
