"""File primitives every writer uses, and the ONE path guard.

Invariants:
- ``atomic_write``: readers see the old file or the new one, never a mix; a crash leaves at most a
  stray ``.tmp-*`` file beside the target (``clean_temp_files`` sweeps them). An existing file's
  mode is kept.
- ``locked_append``: appends under an exclusive lock on the file itself, so concurrent appenders
  never interleave; the bytes are fsynced before the lock is released.
- ``append_all``: an append is whole or absent: short writes are continued, and on any OSError
  (ENOSPC, EDQUOT, EIO) the file is truncated back to its size before the append, fsynced, and the
  error re-raised. ``write`` is injectable (``os.write`` by default) so tests can run out of disk.
- ``file_lock``: an inter-process lock on a lock file (fcntl.flock on POSIX, msvcrt on Windows);
  the kernel drops it when the holder dies, so kill -9 never leaves a stale lock. A holder that is
  stopped (Ctrl-Z, SIGSTOP) keeps it, so waits that must end take a ``timeout`` (``LockBusy``);
  ``wait_unlocked`` checks one before costly work, without taking or creating it.
- ``safe_join``: every path derived from data (wikilinks, model output, hook payloads) is resolved
  through it; it returns a path inside ``base`` or raises ``PathRefused``.
Stdlib only: the hook path imports this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pipeline.errors import LockBusy, PathRefused

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int, blocking: bool) -> None:
        mode = msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK
        msvcrt.locking(fd, mode, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int, blocking: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


TEMP_PREFIX = ".tmp-"
MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_SURROGATE = re.compile("[\ud800-\udfff]")


def writable_text(text: str) -> str:
    """``text`` with lone surrogates (legal in JSON escapes, unencodable as UTF-8) made U+FFFD,
    so model output and payload text can always be written and logged."""
    return _SURROGATE.sub("\ufffd", text)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: Path | str, data: bytes | str | Iterable[bytes], mode: int | None = None
) -> Path:
    """Write ``data`` to ``path`` via temp file + fsync + os.replace. Keeps an existing mode.

    ``data`` may also be an iterable of byte blocks (streamed, so a large copy never sits in
    memory whole); if the iterable raises, the temp file is removed and the target is untouched.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(payload, (bytes, bytearray, memoryview)):
                fh.write(payload)
            else:
                for block in payload:
                    fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _mkstemp(path: Path) -> tuple[int, str]:
    """A new owner-only temp file beside ``path`` (as tempfile.mkstemp, which costs the hook an
    import of tempfile, shutil and random)."""
    flags = (
        os.O_RDWR
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_BINARY", 0)
    )
    for _ in range(100):
        tmp = os.path.join(path.parent, f"{TEMP_PREFIX}{path.name}.{os.urandom(6).hex()}")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


Write = Callable[[int, bytes], int]


def append_all(fd: int, payload: bytes, *, write: Write | None = None) -> None:
    """Append ``payload`` to the file open (O_APPEND) at ``fd`` wholly, then fsync; or not at all.

    ``os.write`` may write fewer bytes than asked (a full disk, a quota, a signal): the rest is
    written in a loop, and a write of 0 bytes counts as ENOSPC. On any OSError the file is cut
    back to its size before this call and fsynced, then the error is re-raised, so a reader
    never sees half an entry."""
    write = os.write if write is None else write  # looked up per call, not bound at import
    size = os.fstat(fd).st_size
    view = memoryview(payload)
    try:
        while view:
            count = write(fd, bytes(view))
            if count <= 0:
                raise OSError(errno.ENOSPC, "no space left on device (a write wrote 0 bytes)")
            view = view[count:]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        raise


def locked_append(path: Path | str, data: bytes | str, *, write: Write | None = None) -> None:
    """Append ``data`` wholly or not at all (``append_all``) under an exclusive lock on the file;
    fsync before unlocking."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _lock(fd, True)
        try:
            append_all(fd, payload, write=write)
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(
    path: Path | str, *, blocking: bool = True, timeout: float | None = None
) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on ``path`` (created if missing).

    ``blocking=False`` raises ``LockBusy`` at once when another process holds it; ``timeout``
    polls up to that many seconds, then raises ``LockBusy``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, path, blocking, timeout)
        try:
            yield path
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, blocking: bool, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            _lock(fd, blocking and deadline is None)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
                raise
            if deadline is None or time.monotonic() >= deadline:
                raise LockBusy(f"{path.name} is held by another process") from None
            time.sleep(0.02)


def wait_unlocked(path: Path | str, *, timeout: float) -> None:
    """Return once no process holds the lock on ``path``, or raise ``LockBusy`` after
    ``timeout`` seconds. A missing file is not locked and is not created.

    For a check before costly work whose result is written under that lock (a model call before
    a daily append): a holder stopped with Ctrl-Z then costs no call, only this wait."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return
    try:
        _acquire(fd, path, True, timeout)
        _unlock(fd)
    finally:
        os.close(fd)


def lock_is_held(path: Path | str) -> bool:
    """True when another process holds the lock at ``path`` right now."""
    try:
        with file_lock(path, blocking=False):
            return False
    except LockBusy:
        return True
    except OSError:
        return False


def check_relative(rel: str, *, allow_hidden: bool = True) -> list[str]:
    """Validate a data-derived relative path lexically; return its parts or raise PathRefused."""
    if not isinstance(rel, str) or not rel:
        raise PathRefused("empty path")
    if "\x00" in rel:
        raise PathRefused("path contains a NUL byte")
    if "\\" in rel:
        raise PathRefused(f"path contains a backslash: {rel[:80]!r}")
    if rel.startswith("/") or rel.startswith("~") or _DRIVE.match(rel):
        raise PathRefused(f"path is absolute: {rel[:80]!r}")
    if len(rel) > MAX_PATH_CHARS:
        raise PathRefused(f"path is longer than {MAX_PATH_CHARS} characters")
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise PathRefused(f"path has an empty, '.' or '..' component: {rel[:80]!r}")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise PathRefused(f"a path component is longer than {MAX_NAME_BYTES} bytes")
        if not allow_hidden and part.startswith("."):
            raise PathRefused(f"hidden path component {part[:40]!r}")
        if any(ord(c) < 32 for c in part):
            raise PathRefused(f"path has control characters: {rel[:80]!r}")
    return parts


def safe_join(base: Path | str, rel: str, *, allow_hidden: bool = True) -> Path:
    """Resolve ``rel`` inside ``base`` or raise PathRefused.

    Refuses ``..``, absolute paths, drive letters, backslashes, NUL and control characters,
    overlong names, and any symlink (folder or file, existing now) whose target lies outside
    ``base``. The returned path is absolute and lexically inside ``base.resolve()``.
    """
    parts = check_relative(rel, allow_hidden=allow_hidden)
    base_resolved = Path(base).resolve()
    candidate = base_resolved.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise PathRefused(f"cannot resolve {rel[:80]!r}: {exc}") from None
    if resolved != base_resolved and base_resolved not in resolved.parents:
        raise PathRefused(f"{rel[:80]!r} leads outside {base_resolved.name}/ (symlink)")
    return candidate


def ensure_block(path: Path, block: str, present: Callable[[set[str]], bool]) -> bool:
    """Write ``block`` as ``path`` (``.gitignore``, ``.gitattributes``), or append it after the
    user's own text unless ``present`` (given the file's stripped lines) says it is there.
    True if written; the user's lines are never changed."""
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        atomic_write(path, block)
        return True
    if present({line.strip() for line in current.splitlines()}):
        return False
    atomic_write(path, current.rstrip("\n") + "\n\n" + block)
    return True


def unwritable(folders: Iterable[Path]) -> str | None:
    """The first existing folder where no file can be created, with the reason; None if all can.

    Probes by creating (and removing) a temp file, so it holds for root, read-only mounts and
    immutable folders alike, where permission bits alone would mislead."""
    for folder in folders:
        if not folder.is_dir():
            continue
        try:
            fd, probe = _mkstemp(folder / "probe")
        except OSError as exc:
            return f"{folder}: {exc.strerror or exc}"
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return None


def clean_temp_files(folder: Path, older_than_s: float = 3600.0, now: float | None = None) -> int:
    """Remove stray atomic-write temp files left by a crash. Returns how many were removed."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime >= older_than_s:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                pass
    return removed
