"""CLI commands of the capture stage (filled in by its issue)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
