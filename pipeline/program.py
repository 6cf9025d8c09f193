"""How to run THIS installation's `memc`: the one place that builds a `memc` command line.

Installed hooks and scheduler entries (``install``, ``schedule``), the SessionStart context
(``inject``) and the hints the CLI prints (``cli``) all take their command from here, so they
agree on every case: the ``memc`` console script beside the interpreter when there is one, else
``<python> -m pipeline``, prefixed with ``env PYTHONPATH=<checkout>`` when the package is not
installed at all (a source checkout), because those commands run from other folders.

Invariants:
- Stdlib only and cheap: SessionStart builds a command on the hook path. Whether the package is
  installed is answered by looking for its ``.dist-info``/``.egg-info`` on ``sys.path``, not by
  importing ``importlib.metadata`` (which pulls in email, zipfile and socket).
- One argv builder, ``memc_argv``: ``memc_command`` (hooks, schedulers, SessionStart) is it
  quoted with ``shlex`` and always names the data root; ``memc_hint`` (messages to a person)
  says plain ``memc`` when the console script is installed and names the root only when a bare
  `memc` run from the current folder would not find it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

_METADATA_DIR = re.compile(r"^memory_compiler(-[^-]+)?\.(dist-info|egg-info)$", re.IGNORECASE)


def _script(exe: Path) -> Path:
    return exe.parent / ("memc.exe" if sys.platform == "win32" else "memc")


def package_installed() -> bool:
    """True when the distribution is installed (normally or editable) on this ``sys.path``."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        if any(_METADATA_DIR.match(name) for name in names):
            return True
    return False


def memc_program(executable: str | None = None) -> list[str]:
    """The absolute argv prefix that runs memc from THIS installation, from any folder.

    ``executable`` names another interpreter (tests, or a scheduler entry for another venv); the
    checkout's PYTHONPATH is only added for the running interpreter, whose package we can see.
    """
    exe = Path(executable or sys.executable)
    script = _script(exe)
    if script.is_file():
        return [str(script)]
    program = [str(exe), "-m", "pipeline"]
    if executable is None and not package_installed():
        checkout = str(Path(__file__).resolve().parent.parent)
        program = ["env", f"PYTHONPATH={checkout}", *program]
    return program


def memc_argv(
    root: str | os.PathLike[str], *args: str, program: list[str] | None = None
) -> list[str]:
    """``memc --root ROOT ARGS...`` as argv, with ``program`` (default ``memc_program()``)."""
    return [*(program or memc_program()), "--root", str(root), *args]


def memc_command(root: str | os.PathLike[str], *args: str, program: list[str] | None = None) -> str:
    """``memc_argv`` as one shell command: for hooks, cron and the SessionStart context, which
    run in other folders (so the program is absolute and the root always named)."""
    return shlex.join(memc_argv(root, *args, program=program))


def memc_hint(root: str | os.PathLike[str], *args: str) -> str:
    """The command as a person at a terminal here would type it, for the CLI's messages: plain
    ``memc`` when the console script is installed (else the absolute program), and ``--root
    ROOT`` only when a bare `memc` run from here would not find that root."""
    from pipeline.config import resolve_root

    program = ["memc"] if _script(Path(sys.executable)).is_file() else memc_program()
    try:
        found: Path | None = resolve_root(None).resolve()
    except OSError:  # the current folder is gone
        found = None
    if found == Path(root).resolve():
        return shlex.join([*program, *args])
    return memc_command(root, *args, program=program)
