"""`memc init`: create the data-root layout of DESIGN.md. Idempotent: never touches what exists."""

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
    return created
