"""Shared fixtures. Every test runs with HOME pointed at a temp folder and no MEMC_*/XDG_*
settings from the developer's environment, so no test can touch the real home directory, a real
knowledge base or (through the claude backend's CLI discovery) the network.

Redirecting HOME is not enough on its own (``pwd``, a path computed before the redirect, a
hard-coded ``/root``), so writes to the real home also *fail*: an audit hook (``sys.addaudithook``,
which permission bits cannot replace when the tests run as root) refuses, with PermissionError,
every open-for-writing, mkdir, rename, remove, chmod, utime, symlink, copy and sqlite connect
under the real home while a test runs, and the test fails at teardown even if the code under test
swallowed the error. The checkout, the interpreter's prefixes and the temp folder are exempt
(they may live under the home). Child processes are not audited; they inherit the temp HOME.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the checkout (CI); MEMC_TEST_SHARED points a worktree elsewhere at it.
SHARED = Path(os.environ.get("MEMC_TEST_SHARED") or REPO.parent / "shared")
PYTHON = sys.executable


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
sys.addaudithook(HOME_GUARD)  # cannot be removed; inert unless a test is running


@pytest.fixture(autouse=True)
def _isolate_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for key in list(os.environ):
        if key.startswith(("MEMC_", "CLAUDE_CODE_")) or key in (
            "ANTHROPIC_API_KEY",
            "CLAUDE_CONFIG_DIR",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
        ):
            monkeypatch.delenv(key, raising=False)
    # The claude backend is opt-in per test (with the fake CLI); everything else is offline.
    monkeypatch.setenv("MEMC_BACKEND", "extractive")
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    monkeypatch.setenv("MEMC_TZ", "UTC")
    # Real git in tests: no user or system config, a fixed identity for "the user".
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in (("NAME", "Test User"), ("EMAIL", "user@example.test")):
        monkeypatch.setenv(f"GIT_AUTHOR_{key}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{key}", value)
    HOME_GUARD.refused.clear()
    HOME_GUARD.active = True
    try:
        yield
    finally:
        HOME_GUARD.active = False
    refused, HOME_GUARD.refused[:] = list(HOME_GUARD.refused), []
    assert refused == [], f"the test tried to write to the real home directory: {refused}"


@pytest.fixture
def root(tmp_path) -> Path:
    """An initialised data root."""
    from pipeline.config import load_settings
    from pipeline.setup import init_root

    data_root = tmp_path / "root"
    data_root.mkdir()
    init_root(load_settings(data_root))
    return data_root


@pytest.fixture
def settings(root):
    from pipeline.config import load_settings

    return load_settings(root)


@pytest.fixture
def memc_env(root) -> dict[str, str]:
    """Environment for running `python -m pipeline` as a real subprocess against `root`."""
    env = dict(os.environ.items())
    env["MEMC_ROOT"] = str(root)
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def fake_claude(tmp_path, monkeypatch):
    """The fake `claude` CLI (tests/fake_claude.py) wired in: MEMC_BACKEND=claude, MEMC_CLAUDE_CLI
    set, plus its script/log/default env. Use `.script([...])`, `.default(reply)`, `.prompts()`,
    `.cli_path`. Child processes (drains) inherit it through the environment."""
    from tests.fake_claude import FakeClaude

    fake = FakeClaude(tmp_path / "fake-claude")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    return fake
