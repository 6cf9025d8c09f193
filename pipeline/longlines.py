"""Reading a spool in slices of complete lines, with memory bounded for any line length.

Role: ``distil`` parses a spool slice by slice. A transcript line can be enormous (a 100 MB pasted
log or tool result on one line); holding it whole, parsing it and splitting it into chunks cost
hundreds of MB and one model call per chunk. Here a line longer than ``max_line`` bytes is cut
to its first ``keep`` bytes and its last ``TAIL_BYTES`` while it is read, before any parsing.

Invariants:
- Slices are cut exactly where they always were (the last newline of each ``size`` block, plus
  the carried partial line) for every spool whose lines are all at most ``max_line`` bytes, so a
  job's chunks, and a re-run's progress, do not change.
- A cut line stays one valid JSON line when the cut falls inside one JSON string (the usual
  case: one huge text or tool output): head, a marker naming how many bytes were left out, and
  the rest of the line from where that string ends. Otherwise it becomes a short ``user`` line
  saying what was left out. Nothing is dropped silently.
- Memory stays O(``size`` + ``max_line``) whatever the input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TAIL_BYTES = 16 * 1024


def _marker(left_out: int) -> bytes:
    return f" …[memc: {left_out:,} bytes of this transcript line left out]… ".encode()


def _open_string_end(head: bytes) -> int | None:
    """Where ``head`` (the start of a JSON line) can be cut so that a string is still open
    there, or None if it does not end inside a string."""
    in_string = escaped = False
    hex_left = 0  # digits still to come of a \uXXXX escape
    last_safe = None
    for i, byte in enumerate(head):
        if in_string:
            if hex_left:
                hex_left -= 1
                continue
            if escaped:
                escaped = False
                hex_left = 4 if byte == 0x75 else 0  # \u
                continue
            if byte == 0x5C:  # backslash: cutting before it is clean
                last_safe = i
                escaped = True
                continue
            if byte == 0x22:  # quote
                in_string = False
                continue
            if byte < 0x80 or byte >= 0xC0:  # not inside a UTF-8 sequence: a clean cut point
                last_safe = i
        elif byte == 0x22:
            in_string = True
            last_safe = i + 1
    return last_safe if in_string else None


def _string_close(tail: bytes) -> int | None:
    """Index of the first quote in ``tail`` that surely closes a string (preceded by an even run
    of backslashes that starts inside ``tail``)."""
    i = tail.find(b'"')
    while i >= 0:
        run = 0
        while i - run - 1 >= 0 and tail[i - run - 1] == 0x5C:
            run += 1
        if run % 2 == 0 and i - run > 0:
            return i
        i = tail.find(b'"', i + 1)
    return None


def _clean_start(tail: bytes, close: int) -> int:
    """The first index of ``tail`` from which its string content reads unambiguously: not
    right after or at a backslash (an escape cut in two), not inside a UTF-8 sequence."""
    for j in range(1, close):
        byte = tail[j]
        if tail[j - 1] != 0x5C and byte != 0x5C and (byte < 0x80 or byte >= 0xC0):
            return j
    return close


def cut_line(head: bytes, tail: bytes, total: int) -> bytes:
    """One bounded JSON line standing for a ``total``-byte line that began with ``head`` and
    ended with ``tail`` (its newline excluded; ``tail`` lies wholly after ``head``)."""
    cut = _open_string_end(head)
    close = _string_close(tail)
    if cut is not None and close is not None:
        start = _clean_start(tail, close)
        left_out = total - cut - (len(tail) - start)
        candidate = head[:cut] + _marker(left_out) + tail[start:]
        try:
            if isinstance(json.loads(candidate), dict):
                return candidate + b"\n"
        except ValueError:
            pass
    note = {
        "type": "user",
        "message": {
            "role": "user",
            "content": f"[memc: a transcript line of {total:,} bytes was too long to read; "
            "it was left out]",
        },
    }
    return json.dumps(note).encode() + b"\n"


def _finish(fh: BinaryIO, start: bytes, size: int, keep: int) -> tuple[bytes, bytes]:
    """Read the rest of the long line that ``start`` begins; return (its cut form, what follows)."""
    head, tail, total = start[:keep], start[keep:][-TAIL_BYTES:], len(start)
    while True:
        block = fh.read(size)
        if not block:  # the file ends inside this line: so does its cut form
            return cut_line(head, tail, total)[:-1], b""
        nl = block.find(b"\n")
        if nl < 0:
            tail = (tail + block)[-TAIL_BYTES:]
            total += len(block)
            continue
        tail = (tail + block[:nl])[-TAIL_BYTES:]
        return cut_line(head, tail, total + nl), block[nl + 1 :]


def _cut_long_lines(data: bytes, max_line: int, keep: int) -> bytes:
    """``data`` (complete lines) with every line longer than ``max_line`` cut; the same object
    when there is none."""
    if len(data) <= max_line:
        return data
    out: list[bytes] = []
    pos = start = 0
    changed = False
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        if end - pos > max_line:
            out.append(data[start:pos])
            line = data[pos:end]
            cut = cut_line(line[:keep], line[keep:][-TAIL_BYTES:], len(line))
            out.append(cut if nl >= 0 else cut[:-1])
            start = end + 1 if nl >= 0 else end
            changed = True
        pos = end + 1
    if not changed:
        return data
    out.append(data[start:])
    return b"".join(out)


def read_slices(path: Path, size: int, max_line: int, keep: int) -> Iterator[bytes]:
    """The file's bytes in pieces of complete lines, each about ``size`` bytes; a trailing
    partial line is yielded last; lines longer than ``max_line`` come cut (module docstring)."""
    pending = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(size)
            if not block:
                break
            data = pending + block if pending else block
            pending = b""
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > max_line:
                    line, pending = _finish(fh, data, size, keep)
                    yield line
                else:
                    pending = data
                continue
            pending = data[cut + 1 :]
            yield _cut_long_lines(data[: cut + 1], max_line, keep)
            del data
            if len(pending) > max_line:
                line, pending = _finish(fh, pending, size, keep)
                yield line
    if pending:
        yield _cut_long_lines(pending, max_line, keep)
