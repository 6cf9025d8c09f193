"""`memc setup`: the one command a newcomer runs after installing the package.

Thin: resolves the root (``--root`` > ``MEMC_ROOT`` > the current folder if it is a data root >
the remembered root > ``~/memory``), asks once on a terminal (``--yes`` skips; without a terminal
``--yes`` is required), calls ``pipeline.onboarding.run_setup`` and prints one line per step.
"""

from __future__ import annotations

import sys

import click

from pipeline.cli import App, emit_json, pass_app
from pipeline.errors import ConfigError


@click.command("setup")
@click.option("-y", "--yes", is_flag=True, help="Do not ask; set everything up.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def setup_cmd(app: App, yes: bool, dry_run: bool, as_json: bool) -> int:
    """Set up capture in one step: create the knowledge base (default ~/memory), install the
    Claude Code hooks, register the MCP server, remember the root. Safe to run again."""
    from pipeline import roots
    from pipeline.install import settings_path
    from pipeline.onboarding import run_setup
    from pipeline.program import memc_program

    root = roots.find_root(app.root_flag, fallback=roots.default_root()).path
    if not (yes or dry_run):
        if not sys.stdin.isatty():
            raise ConfigError("memc setup: no terminal to ask on; pass --yes (or --dry-run)")
        click.confirm(
            f"Set up memory-compiler with its knowledge base in {root}?", default=True, abort=True
        )
    steps = run_setup(
        root, settings_file=settings_path("user"), program=memc_program(), dry_run=dry_run
    )
    changed = any(s.changed for s in steps)
    if as_json:
        emit_json(
            {
                "root": str(root),
                "dry_run": dry_run,
                "changed": changed,
                "steps": [
                    {"name": s.name, "changed": s.changed, "ok": s.ok, "detail": s.detail}
                    for s in steps
                ],
            }
        )
    else:
        for step in steps:
            mark = "!" if not step.ok else ("+" if step.changed else "=")
            click.echo(f"{mark} {step.name}: {step.detail}")
        if dry_run:
            click.echo("Dry run: nothing was changed." if changed else "Nothing would change.")
        elif changed:
            click.echo("Set up. Start a new Claude Code session; `memc status` shows captures.")
        else:
            click.echo(f"Already set up for {root}; nothing changed.")
    return 0 if all(s.ok for s in steps) else 1


COMMANDS: list[click.Command] = [setup_cmd]
