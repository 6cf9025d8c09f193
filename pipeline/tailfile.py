"""Reading a transcript file that another process is still appending to, safely and cheaply.

Used by capture on the hook's hot path (stdlib only). Invariants: only regular files are opened,
non-blocking, and re-checked with fstat after open (a FIFO or device never blocks a hook); reads
are positional (``pread``) and bounded by ``BLOCK``, so an 85 MB transcript is never held in
memory; "complete" always means up to the last newline, never a half-written line.
``tail_mark`` / ``same_prefix`` recognise the same transcript under a new inode (a backup
restore, a sync tool, a new disk): a cursor keeps a hash of the bytes just before its offset, and a
new file whose first line and those bytes hash the same is the old file, maybe grown; only that
stored range is read, never the whole file.
``transcript_head`` reads a transcript's first lines for the session's folder and whether it is
an Agent SDK session (capture of idle tails, `memc capture`, backfill), with the same care.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable

try:  # the builtin sha256: hashlib would first load OpenSSL, a few ms of a hook's start-up
    from _sha256 import sha256  # Python 3.11
except ImportError:  # pragma: no cover - 3.12 renamed it; some builds have only hashlib
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256

IDENTITY_BYTES = 4096
TAIL_BYTES = 16 * 1024  # hashed just before a cursor's offset (tail_mark)
HEAD_LINES = 50
HEAD_BYTES = 64 * 1024
BLOCK = 1 << 20
RETRY_DELAY_S = 0.05
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def open_transcript(path: str, attempts: int, sleep: Callable[[float], None]):
    """Return (fd, size) of a non-empty regular file, or (None, reason). Retries missing/empty."""
    reason = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            sleep(RETRY_DELAY_S)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            reason = "transcript does not exist (yet)"
            continue
        except OSError as exc:
            return None, f"cannot stat transcript: {exc.strerror or exc}"
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            return None, f"transcript is {kind}"
        if st.st_size == 0:
            reason = "transcript is empty"
            continue
        try:
            fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
        except OSError as exc:
            return None, f"cannot open transcript: {exc.strerror or exc}"
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between stat and open
            os.close(fd)
            return None, "transcript is not a regular file"
        return fd, st
    return None, reason + "; gave up"


def pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, size)  # pragma: no cover


def transcript_head(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """(the session's cwd, is an Agent SDK session) from the first lines of a transcript;
    ('', False) when it cannot be read or is not a regular file."""
    cwd, sdk = "", False
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except OSError:
        return cwd, sdk
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return cwd, sdk
        head = pread(fd, HEAD_BYTES, 0)
    except OSError:
        return cwd, sdk
    finally:
        os.close(fd)
    for raw in head.split(b"\n")[:HEAD_LINES]:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("entrypoint") == "sdk-py":
            sdk = True
        if not cwd and isinstance(obj.get("cwd"), str):
            cwd = obj["cwd"]
    return cwd, sdk


def identity(st: os.stat_result, head: bytes) -> str | None:
    """dev:ino plus a hash of the first line (or first 4 KiB); None until that is complete."""
    newline = head.find(b"\n", 0, IDENTITY_BYTES)
    if newline >= 0:
        key = head[: newline + 1]
    elif len(head) >= IDENTITY_BYTES:
        key = head[:IDENTITY_BYTES]
    else:
        return None
    return f"{st.st_dev}:{st.st_ino}:{sha256(key).hexdigest()[:16]}"


def tail_mark(fd: int, offset: int) -> str:
    """``lo:offset:hash`` of the (at most TAIL_BYTES) bytes before ``offset``; "" at offset 0."""
    if offset <= 0:
        return ""
    lo = max(0, offset - TAIL_BYTES)
    data = pread(fd, offset - lo, lo)
    if len(data) != offset - lo:
        return ""
    return f"{lo}:{offset}:{sha256(data).hexdigest()[:32]}"


def same_prefix(
    fd: int, size: int, identity: str, old_identity: str, mark: str, offset: int
) -> bool:
    """Is this file (``identity``, ``size``) the one a cursor at ``offset`` was taken from, under
    another inode? True when its first line hashes the same (the last field of the identity),
    it is at least ``offset`` long, and the bytes of the cursor's ``mark`` hash the same."""
    if offset <= 0 or size < offset or not mark:
        return False
    if identity.rsplit(":", 1)[-1] != old_identity.rsplit(":", 1)[-1]:
        return False
    lo, _, rest = mark.partition(":")
    hi, _, digest = rest.partition(":")
    try:
        start, end = int(lo), int(hi)
    except ValueError:
        return False
    if end != offset or not 0 <= start < end:
        return False
    data = pread(fd, end - start, start)
    return len(data) == end - start and sha256(data).hexdigest()[:32] == digest


def last_newline_end(fd: int, start: int, size: int) -> int:
    """Offset just past the last b"\\n" in [start, size), or start when there is none."""
    pos = size
    while pos > start:
        lo = max(start, pos - BLOCK)
        idx = pread(fd, pos - lo, lo).rfind(b"\n")
        if idx >= 0:
            return lo + idx + 1
        pos = lo
    return start


def count_lines(fd: int, start: int, end: int, enough: int) -> int:
    """Newlines in [start, end), stopping early once ``enough`` are seen."""
    count, pos = 0, start
    while pos < end and count < enough:
        block = pread(fd, min(BLOCK, end - pos), pos)
        if not block:
            break
        count += block.count(b"\n")
        pos += len(block)
    return count
