"""`memc init`: create the data-root layout of DESIGN.md. Idempotent: never touches what exists.

``init_root`` makes the folders, state.db and ``.gitignore`` (which keeps ``.memc/`` and temp
files out of any repository, even one the user creates later); ``init_versioning`` then makes the
root a git repository (``pipeline.versioning``), unless ``--no-git`` / ``git = false`` or git is
not installed. The command runs both; library callers choose.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import state
from pipeline.config import Settings


def init_root(settings: Settings) -> list[Path]:
    """Create every folder of the layout and state.db; return what was newly created."""
    paths = settings.paths
    created: list[Path] = []
    for folder in paths.layout():
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            if folder == paths.memc:
                folder.chmod(0o700)  # spools and state hold raw session text: owner only
            created.append(folder)
    if not paths.state_db.exists():
        state.connect(paths.state_db).close()
        created.append(paths.state_db)
    from pipeline.hostname import pin

    pin(paths.memc)  # this root's own entries stay its own if the system name changes
    from pipeline.versioning import ensure_gitignore

    gitignore = paths.root / ".gitignore"
    existed = gitignore.exists()
    if ensure_gitignore(paths.root) and not existed:
        created.append(gitignore)
    return created


def init_versioning(settings: Settings) -> str:
    """Make the root a git repository (an existing one is reused); what happened, in words."""
    from pipeline.versioning import init_repo

    return init_repo(settings)
