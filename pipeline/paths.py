"""Where things are: the data-root layout (``Paths``) and how the root is found (``resolve_root``).

Role: the one owner of every path under ROOT (DESIGN.md "Data root", plus ``.memc/spool/`` for
the raw transcript bytes of each job and ``.memc/pending/`` for captures whose cursor is still to
be advanced); nothing else builds these paths by hand. Also Claude Code's own folder
(``claude_dir``), which SessionStart's hook check reads. ``pipeline.config`` re-exports all three.

Invariants: ``Paths`` is an immutable value (equal and hashed by its root). Stdlib only and no
dataclass machinery: the hook imports this module on its hot path.
"""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# The folders of knowledge/ that hold articles (an article's key starts with one of them).
ARTICLE_FOLDERS = ("concepts", "connections", "qa")


class Paths:
    """The layout of one data root. ``Paths(root)``; every folder is a property."""

    __slots__ = ("root",)
    root: Path

    def __init__(self, root: Path) -> None:
        object.__setattr__(self, "root", root)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Paths is immutable; cannot set {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and other.root == self.root

    def __hash__(self) -> int:
        return hash((Paths, self.root))

    def __repr__(self) -> str:
        return f"Paths(root={self.root!r})"

    @property
    def daily(self) -> Path:
        return self.root / "daily"

    @property
    def knowledge(self) -> Path:
        return self.root / "knowledge"

    @property
    def memc(self) -> Path:
        return self.root / ".memc"

    @property
    def config_file(self) -> Path:
        return self.memc / "config.toml"

    @property
    def inbox(self) -> Path:
        return self.memc / "inbox"

    @property
    def claimed(self) -> Path:
        return self.inbox / "claimed"

    @property
    def failed(self) -> Path:
        return self.inbox / "failed"

    @property
    def spool(self) -> Path:
        """Raw transcript bytes of each job, ``<job id>.jsonl``; kept for a while once done."""
        return self.memc / "spool"

    @property
    def pending(self) -> Path:
        """Captures queued while state.db was busy: ``<session key>.json``, removed once the
        session's cursor is advanced past them (``pipeline.capture``)."""
        return self.memc / "pending"

    @property
    def cache(self) -> Path:
        """Caches that only save work (settings stamp, frontmatter parses); safe to delete."""
        return self.memc / "cache"

    @property
    def state_db(self) -> Path:
        return self.memc / "state.db"

    @property
    def search_db(self) -> Path:
        return self.memc / "search.db"

    @property
    def logs(self) -> Path:
        return self.memc / "logs"

    @property
    def reports(self) -> Path:
        return self.memc / "reports"

    @property
    def locks(self) -> Path:
        return self.memc / "locks"

    def lock(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    def layout(self) -> list[Path]:
        """Every folder `memc init` creates, parents first."""
        return [
            self.daily,
            self.knowledge,
            *(self.knowledge / folder for folder in ARTICLE_FOLDERS),
            self.memc,
            self.inbox,
            self.claimed,
            self.failed,
            self.spool,
            self.logs,
            self.reports,
            self.locks,
        ]

    def is_initialised(self) -> bool:
        return self.inbox.is_dir() and self.daily.is_dir() and self.knowledge.is_dir()


def resolve_root(flag: str | os.PathLike | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    raw = flag if flag not in (None, "") else env.get("MEMC_ROOT") or os.getcwd()
    return Path(os.path.abspath(os.path.expanduser(str(raw))))


def claude_dir(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Claude Code's own folder: $CLAUDE_CONFIG_DIR when set (and no ``home`` is forced), else
    ~/.claude. User settings, credentials and transcripts (projects/) live there; Claude Code
    sets CLAUDE_CONFIG_DIR in its hooks' environment, so a hook sees the folder it uses."""
    env = os.environ if env is None else env
    if home is None and env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]).expanduser()
    return (home or Path.home()) / ".claude"
