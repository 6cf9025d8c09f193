"""CLI command `memc sync` (pipeline.sync): thin, parse options, call run_sync, print.

Exit 0 when synced or already up to date; 1 with one line saying why (remote unreachable,
authentication, push refused, a secret in an outgoing commit, diverged after retries); 2 when no
remote is known. ``--json`` prints the report (or ``{"status": "failed", "message": ...}``).
"""

from __future__ import annotations

import click

from pipeline.cli import App, emit_json, pass_app


@click.command("sync")
@click.option(
    "--remote",
    "remote",
    metavar="URL",
    default=None,
    help="The git remote to share this root with (remembered; e.g. file:///srv/memory.git).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@pass_app
def sync_cmd(app: App, remote: str | None, as_json: bool) -> int:
    """Share this root with other machines or teammates over git: commit, fetch, merge, push.

    Daily logs merge entry by entry; a knowledge page changed on both sides takes the remote's
    version and this machine's entries compile into it again. A push is refused when an
    outgoing commit holds a secret or anything from .memc/."""
    from pipeline.errors import ConfigError, MemcError
    from pipeline.sync import run_sync

    settings = app.settings()
    if not as_json:
        report = run_sync(settings, remote=remote)
        click.echo(report.message + ".")
        for rel in report.kept_ours:
            click.echo(f"  kept your edited {rel} with the remote's additions")
        return 0
    try:
        report = run_sync(settings, remote=remote)
    except ConfigError:
        raise
    except MemcError as exc:
        emit_json({"status": "failed", "message": str(exc)})
        return exc.exit_code
    emit_json(report.to_dict())
    return 0


COMMANDS: list[click.Command] = [sync_cmd]
