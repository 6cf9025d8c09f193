"""The real home directory is unwritable while a test runs (installed by tests/conftest.py).

An audit hook (``sys.addaudithook``: permission bits cannot do this when the tests run as root)
refuses, with PermissionError, every open-for-writing, mkdir, rename/replace, remove, chmod, chown,
utime, truncate, symlink, link, copy and sqlite connect whose path is under the real home (``~``
before HOME was redirected, and the account's home from ``pwd``), and remembers each refusal so
the test fails even when the code under test swallows the error. Exempt, since they may live under
the home: the checkout, the interpreter's prefixes and the temp folder. Reads are allowed. Child
processes are not audited; they inherit the temp HOME. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _real_homes() -> tuple[str, ...]:
    homes = {os.path.expanduser("~")}
    if sys.platform != "win32":
        import pwd

        try:
            homes.add(pwd.getpwuid(os.getuid()).pw_dir)
        except KeyError:
            pass
    found = {os.path.realpath(h) for h in homes} | {os.path.abspath(h) for h in homes}
    return tuple(sorted(h for h in found if h and h != os.sep))


REAL_HOMES = _real_homes()
_EXEMPT = tuple(
    os.path.realpath(p)
    for p in (REPO, sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir())
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# audit event -> indexes of its path arguments that are written (open is handled on its own)
_WRITE_EVENTS = {
    "os.mkdir": (0,),
    "os.rename": (0, 1),  # os.rename and os.replace
    "os.remove": (0,),  # os.remove and os.unlink
    "os.rmdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.rmtree": (0,),
    "sqlite3.connect": (0,),
}


class HomeGuard:
    """Refuses writes under REAL_HOMES while ``active``; remembers each refusal."""

    def __init__(self) -> None:
        self.active = False
        self.refused: list[tuple[str, str]] = []

    def under_real_home(self, path) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            text = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False

        def inside(base: str) -> bool:
            return text == base or text.startswith(base.rstrip(os.sep) + os.sep)

        return any(inside(h) for h in REAL_HOMES) and not any(inside(e) for e in _EXEMPT)

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            path, _mode, flags = args
            targets = (path,) if isinstance(flags, int) and flags & _WRITE_FLAGS else ()
        elif event in _WRITE_EVENTS:
            if event == "sqlite3.connect" and "mode=ro" in str(args[0]):
                return
            targets = tuple(args[i] for i in _WRITE_EVENTS[event] if i < len(args))
        else:
            return
        for path in targets:
            if self.under_real_home(path):
                self.refused.append((event, os.fsdecode(path)))
                raise PermissionError(
                    errno.EACCES, "tests may not write to the real home directory", path
                )


HOME_GUARD = HomeGuard()
