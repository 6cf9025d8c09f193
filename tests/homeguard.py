"""The test process's environment: a temp HOME, and the real home unwritable while a test runs.

``isolate_environment`` points HOME (and the XDG folders) at a temp folder and drops the
developer's MEMC_*/Claude settings; conftest's autouse fixture applies it to every test, and a
module-scoped fixture that starts a server applies it itself (it runs before that fixture).

An audit hook (``sys.addaudithook``: permission bits cannot do this when the tests run as root)
refuses, with PermissionError, every open-for-writing, mkdir, rename/replace, remove, chmod, chown,
utime, truncate, symlink, link, copy and sqlite connect whose path is under the real home (``~``
before HOME was redirected, and the account's home from ``pwd``), and remembers each refusal so
the test fails even when the code under test swallows the error. Exempt, since they may live under
the home: the checkout, the interpreter's prefixes and the temp folder. Reads are allowed. Child
processes are not audited; they inherit the temp HOME. Stdlib only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
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


def isolate_environment(mp, home: Path) -> None:
    """Point HOME at ``home`` and drop every setting that could reach the developer's own files,
    knowledge base or the network (``mp`` is a pytest MonkeyPatch, undone after its scope)."""
    for key in list(os.environ):
        if key.startswith(("MEMC_", "CLAUDE_CODE_", "CLAUDE_PLUGIN_")) or key in (
            "ANTHROPIC_API_KEY",
            "CLAUDE_CONFIG_DIR",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
        ):
            mp.delenv(key, raising=False)
    mp.setenv("HOME", str(home))
    mp.setenv("USERPROFILE", str(home))
    # the user config (remembered root) and the plugin's data live under these
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    # The claude backend is opt-in per test (with the fake CLI); everything else is offline.
    mp.setenv("MEMC_BACKEND", "extractive")
    mp.setenv("MEMC_SPAWN_DRAIN", "0")
    mp.setenv("MEMC_TZ", "UTC")
    # Real git in tests: no user or system config, a fixed identity for "the user".
    mp.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in (("NAME", "Test User"), ("EMAIL", "user@example.test")):
        mp.setenv(f"GIT_AUTHOR_{key}", value)
        mp.setenv(f"GIT_COMMITTER_{key}", value)


@contextlib.contextmanager
def guarding_home() -> Iterator[None]:
    """Refuse writes to the real home inside the block; fail if any was attempted (even one the
    code under test swallowed). Nests: an outer block stays active after an inner one ends."""
    was_active, before = HOME_GUARD.active, len(HOME_GUARD.refused)
    HOME_GUARD.active = True
    try:
        yield
    finally:
        HOME_GUARD.active = was_active
    refused = HOME_GUARD.refused[before:]
    del HOME_GUARD.refused[before:]
    assert refused == [], f"the test tried to write to the real home directory: {refused}"
