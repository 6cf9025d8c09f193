"""Paths as git prints and takes them: pure functions, no git run here (``pipeline.vcs`` runs it).

- ``unquote`` / ``diff_target``: git C-quotes a path with unusual characters in diffs and name
  lists (``"b/knowledge/Caf\\303\\251 notes.md"``); every reader of git's output unquotes it, and
  a diff header it cannot read is ``?``, so a secret scan never skips a file it cannot name.
- ``chunks``: a list of paths split into runs that fit a command line (a root of 50,000 pages
  committed at once would not: E2BIG).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def unquote(name: str) -> str:
    """A path as git prints it: plain, or C-quoted (``"caf\\303\\251.md"``: the quotes, ``\\``
    escapes and octal bytes of a name with unusual characters) -> the real name."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    out = bytearray()
    body, i = name[1:-1], 0
    simple = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            digits = body[i + 1 : i + 4]
            if len(digits) == 3 and all(c in "01234567" for c in digits):
                out.append(int(digits, 8) & 0xFF)
                i += 4
                continue
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "replace")


def diff_target(header: str) -> str:
    """The path of a ``+++ `` line of a diff: "" for ``/dev/null`` (a deletion), ``?`` when it
    cannot be read, so a caller scanning added lines never skips a file it cannot name."""
    name = unquote(header[4:].rstrip("\t"))
    if name == "/dev/null":
        return ""
    return name[2:] if name.startswith("b/") else "?"


ARGV_CHARS = 64_000  # paths per git call: far below any system's argument limit (E2BIG)


def chunks(paths: Sequence[str], limit: int = ARGV_CHARS) -> Iterator[list[str]]:
    """``paths`` in runs whose total length stays under ``limit``: a root of 50,000 pages
    committed at once (`memc init` of an existing vault) would not fit one command line."""
    run_: list[str] = []
    size = 0
    for path in paths:
        if run_ and size + len(path) + 1 > limit:
            yield run_
            run_, size = [], 0
        run_.append(path)
        size += len(path) + 1
    if run_:
        yield run_
