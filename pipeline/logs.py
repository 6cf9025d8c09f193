"""Size-capped log files under ``.memc/logs/``. Stdlib only (hooks log here).

- ``hook_log``: exactly one line per hook call in ``hooks.log``.
- ``pipeline_logger``: a ``logging`` logger writing ``pipeline.log`` through a rotating handler.
Both pass every message through ``pipeline.redact.redact`` so no secret reaches a log file, and
neither ever raises: logging must not break a hook or a job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

MAX_BYTES = 1_000_000
BACKUPS = 3


def _scrub(text: str) -> str:
    try:
        from pipeline.redact import redact

        return redact(text)
    except Exception:  # redaction must never stop a log line; fall back to dropping it
        return "[log line dropped: redaction failed]"


def _rotate(path: Path) -> None:
    for i in range(BACKUPS - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


def hook_log(logs_dir: Path, message: str, now: float | None = None) -> None:
    """Append one line to hooks.log (rotating past MAX_BYTES). Never raises."""
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        path = logs_dir / "hooks.log"
        try:
            if path.stat().st_size > MAX_BYTES:
                _rotate(path)
        except FileNotFoundError:
            pass
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        line = f"{stamp} pid={os.getpid()} {_scrub(message)}".replace("\n", " ") + "\n"
        # One O_APPEND write of one line: concurrent hooks never interleave within a line, and
        # the hook pays no lock or fsync (fsutil.locked_append) for a diagnostic log.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except Exception:
        pass


def pipeline_logger(logs_dir: Path) -> logging.Logger:
    """The `memc.pipeline` logger, writing to logs_dir/pipeline.log (rotating, redacted)."""
    import logging  # imported here: hooks only need hook_log and must start fast
    import logging.handlers

    class _RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return _scrub(super().format(record))

    logger = logging.getLogger("memc.pipeline")
    target = str(logs_dir / "pipeline.log")
    for old in logger.handlers:
        if getattr(old, "baseFilename", None) == target:
            return logger
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(
        _RedactingFormatter("%(asctime)s pid=%(process)d %(levelname)s %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
