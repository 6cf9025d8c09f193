"""CLI command of the compile stage: `memc compile`.

Thin: parse options, call pipeline.compiler, print. Domain modules are imported inside the
command body so other commands never pay for the Agent SDK or PyYAML.
"""

from __future__ import annotations

import click

from pipeline.cli import App, emit_json, pass_app
from pipeline.cli.progress import progress_lines


@click.command("compile")
@click.option("--all", "all_", is_flag=True, help="Recompile every entry, not just pending ones.")
@click.option(
    "--file",
    "file",
    metavar="DAILY",
    default=None,
    help="Compile the entries of one daily log (daily/YYYY-MM-DD.md or the date).",
)
@click.option(
    "--dry-run", is_flag=True, help="Show batches and prompt sizes; no model call, no write."
)
@click.option(
    "--if-stale",
    is_flag=True,
    help="Only compile when the staleness trigger fires (for cron and the watcher).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report on stdout.")
@pass_app
def compile_cmd(
    app: App, all_: bool, file: str | None, dry_run: bool, if_stale: bool, as_json: bool
) -> int:
    """Compile pending daily-log entries into knowledge/ articles.

    Exit 1 when a batch failed (its entries stay pending); 0 otherwise, also when there is
    nothing to do or another compile is running.
    """
    from pipeline.compiler import run_compile

    settings = app.settings()
    report = run_compile(
        settings,
        all=all_,
        file=file,
        dry_run=dry_run,
        if_stale=if_stale,
        progress=progress_lines(as_json),
    )
    data = report.to_dict()
    if as_json:
        emit_json(data)
        return 0 if report.ok else 1
    click.echo(report.message)
    if report.status == "dry-run":
        for b in data["batches"]:
            click.echo(
                f"  batch {b['index']}: {b['entries']} entries, {b['prompt_chars']:,} prompt chars"
            )
    for key in data["created"]:
        click.echo(f"  created {key}")
    for key in data["updated"]:
        click.echo(f"  updated {key}")
    for r in data["rejected"]:
        click.echo(f"  rejected {r['path'] or '?'}: {r['reason']}")
    for note in data["daily_changes"]:
        click.echo(f"  {note}")
    if data["commit"]:
        click.echo(f"  committed {data['commit'][:10]} (`memc history`, `memc undo`)")
    elif report.extra.get("git_note"):
        click.echo(f"memc: not committed: {report.extra['git_note']}", err=True)
    if data["batches"] and report.status in ("compiled", "partial"):
        click.echo(
            f"  cost ${data['cost_usd']:.4f}; largest prompt "
            f"{data['prompt_chars_max']:,} chars; index: knowledge/index.md"
        )
    return 0 if report.ok else 1


COMMANDS: list[click.Command] = [compile_cmd]
