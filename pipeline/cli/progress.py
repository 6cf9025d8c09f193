"""Progress lines for long commands (backfill, compile): on stderr, and only on a terminal.

Redirected or piped output (cron, CI, scripts, ``--json``) gets no progress noise; the final
summary on stdout is the same either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click


def on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_lines(as_json: bool = False) -> Callable[[str], None] | None:
    """A callable printing one progress line to stderr, or None when nobody is watching."""
    if as_json or not on_terminal():
        return None
    return lambda line: click.echo(line, err=True)
