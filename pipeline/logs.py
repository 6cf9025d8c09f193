"""Size-capped log files under ``.memc/logs/``. Stdlib only (hooks log here).

- ``hook_log``: exactly one line per hook call in ``hooks.log``.
- ``pipeline_logger``: a ``logging`` logger writing ``pipeline.log`` through a rotating handler.
Both keep secrets out of the log files, and neither ever raises: logging must not break a hook
or a job. ``pipeline_logger`` passes every message through ``pipeline.redact.redact``.
``hook_log`` does the same only for a line that could hold something the redactor would
replace (``needs_redaction``): a hook's usual line (event, job id, byte counts, status words)
is written as is, so the hook does not pay for importing and running the full redactor.
``needs_redaction`` is a superset test of the redactor's rules (each rule needs one of its
keywords, ``<``, ``://``, a long token-shaped run, or digit groups shaped like a card or SSN);
tests hold it to ``redact`` on the secret corpus and on generated text, so a rule added to the
redactor must be covered here too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

MAX_BYTES = 1_000_000
BACKUPS = 3


# Words of 15+ characters that the hook's own lines use (status values, setting names).
_HOOK_WORDS = frozenset(
    {"below-threshold", "exclude_projects", "drain=unavailable", "session-start"}
)
_KEYWORDS = (
    "pass", "pwd", "pin", "secret", "token", "key", "credential", "auth", "bearer", "curl",
    "cookie", "mysql", "mariadb", "twilio", "heroku", "://", "<",
)  # fmt: skip
_RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HEX = frozenset("0123456789abcdef")


def needs_redaction(text: str) -> bool:
    """False only when ``redact(text) == text`` for certain: no keyword any redaction rule keys
    on, and no run of token characters (letters, digits, ``_.-``) of 15+ characters other than
    lower-case hex (job ids; never redacted without a keyword) or a word of the hook's own.
    The high-entropy rule needs a 32+ run of ``[A-Za-z0-9+/=_-]``; ``+/=`` are checked as well."""
    lowered = text.lower()
    if any(k in lowered for k in _KEYWORDS) or _digit_groups(text):
        return True
    run = 0
    wide = 0  # the high-entropy rule's alphabet adds + / =
    start = 0
    for i, ch in enumerate(text + " "):
        if ch in _RUN_CHARS:
            if run == 0:
                start = i
            run += 1
        else:
            if run >= 15:
                word = text[start : start + run]
                if word not in _HOOK_WORDS and not (len(word) <= 64 and set(word) <= _HEX):
                    return True
            run = 0
        wide = wide + 1 if ch in _RUN_CHARS or ch in "+/=" else 0
        if wide >= 32:
            return True
    return False


def _digit_groups(text: str) -> bool:
    """A card number or SSN shape: 13+ digits in a row, or 9+ digits in groups joined by single
    spaces or dashes (``4111 1111 ...``, ``123-45-6789``)."""
    digits, grouped, gap = 0, False, False
    for ch in text:
        if ch.isdigit():
            digits, gap = digits + 1, False
            if digits >= 13 or (grouped and digits >= 9):
                return True
        elif ch in " -" and digits and not gap:
            grouped = gap = True
        else:
            digits, grouped, gap = 0, False, False
    return False


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
        if needs_redaction(message):
            message = _scrub(message)
        line = f"{stamp} pid={os.getpid()} {message}".replace("\n", " ") + "\n"
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
