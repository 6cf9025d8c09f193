"""Which data root a command works on, and the user config that remembers it.

Resolution order (DESIGN.md, 2026-12-01): ``--root`` > ``MEMC_ROOT`` > the current folder if it
is a data root > the root remembered in the user config > ``~/memory`` if it is initialised >
``RootNotFound`` (exit 2, naming ``memc setup``). Commands that create a root (``init``,
``setup``) pass a ``fallback`` instead of failing.

User config: ``$XDG_CONFIG_HOME/memory-compiler/config.toml`` (``~/.config/...`` when unset),
one key today: ``root = "/abs/path"``. It is written only by ``memc setup`` (and the plugin on
first use), atomically, mode 0600. A broken user config is a ``ConfigError`` naming the file.

Stdlib only: the hook path resolves the root.
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

from pipeline.errors import ConfigError, RootNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP_DIR = "memory-compiler"
DEFAULT_ROOT_NAME = "memory"


# path: the data root; source: "--root" | "MEMC_ROOT" | "current folder" | "user config" |
# "~/memory" | "default". A namedtuple, not a dataclass: hooks resolve their root with this.
FoundRoot = namedtuple("FoundRoot", ["path", "source"])


def _abs(raw: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(raw))))


def home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("HOME") or os.path.expanduser("~"))


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(home(env) / ".config")
    return _abs(base) / APP_DIR / "config.toml"


def default_root(env: Mapping[str, str] | None = None) -> Path:
    """``~/memory``: where ``memc setup`` and the plugin put the knowledge base by default."""
    return home(env) / DEFAULT_ROOT_NAME


def is_data_root(path: Path) -> bool:
    return (path / ".memc" / "inbox").is_dir() and (path / "daily").is_dir()


def read_user_config(env: Mapping[str, str] | None = None) -> dict:
    from pipeline.config import read_toml  # here: pipeline.config is not on the hook path

    path = user_config_path(env)
    data = read_toml(path, "fix it or run `memc setup`")
    root = data.get("root")
    if root is not None and (not isinstance(root, str) or not root.strip()):
        raise ConfigError(f"{path}: root must be a folder path in quotes; run `memc setup`")
    return data


def remembered_root(env: Mapping[str, str] | None = None) -> Path | None:
    root = read_user_config(env).get("root")
    return _abs(root) if root else None


def remember_root(root: Path, env: Mapping[str, str] | None = None) -> bool:
    """Write ``root`` into the user config; False when it already says so (nothing written)."""
    from pipeline.fsutil import atomic_write

    root = _abs(root)
    path = user_config_path(env)
    try:
        if remembered_root(env) == root:
            return False
    except ConfigError:
        pass  # a broken file is replaced by a good one
    path.parent.mkdir(parents=True, exist_ok=True)
    quoted = str(root).replace("\\", "\\\\").replace('"', '\\"')
    text = (
        "# memory-compiler user settings (written by `memc setup`)\n"
        "# root: the knowledge base commands use when run outside any data root\n"
        f'root = "{quoted}"\n'
    )
    atomic_write(path, text, mode=0o600)
    return True


def find_root(
    flag: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    fallback: Path | None = None,
) -> FoundRoot:
    """The data root by the resolution order above. Raises RootNotFound (or ConfigError)."""
    env = os.environ if env is None else env
    if flag not in (None, ""):
        return FoundRoot(_abs(flag), "--root")  # type: ignore[arg-type]
    if env.get("MEMC_ROOT"):
        return FoundRoot(_abs(env["MEMC_ROOT"]), "MEMC_ROOT")
    here = _abs(cwd if cwd is not None else os.getcwd())
    if is_data_root(here):
        return FoundRoot(here, "current folder")
    remembered = remembered_root(env)
    if remembered is not None:
        return FoundRoot(remembered, "user config")
    default = default_root(env)
    if is_data_root(default):
        return FoundRoot(default, "~/memory")
    if fallback is not None:
        return FoundRoot(_abs(fallback), "default")
    raise RootNotFound(
        f"no knowledge base here ({here}) and none set up yet; run `memc setup` "
        "(creates ~/memory), or pass --root DIR / set MEMC_ROOT"
    )


def hoist_root(argv: list[str]) -> list[str]:
    """``argv`` with a ``--root DIR`` / ``--root=DIR`` given after the command moved to the front,
    so ``memc status --root DIR`` works like ``memc --root DIR status``. Stops at ``--``."""
    out: list[str] = []
    moved: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == "--root" and i + 1 < len(argv):
            moved = [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--root="):
            moved = [arg]
        else:
            out.append(arg)
        i += 1
    return moved + out
