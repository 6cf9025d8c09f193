"""CLI commands of the versioned root: `memc history` and `memc undo` (pipeline.history), and the
hidden `memc merge-daily`, the git merge driver for daily logs (pipeline.dailymerge).

Thin: parse options, call pipeline.history, print. Both exit 1 with a one-line reason when the
root is not versioned or the undo is refused. `merge-daily` needs no data root and always exits 0.
"""

from __future__ import annotations

import click

from pipeline.cli import App, emit_json, pass_app


@click.command("history")
@click.argument("page", required=False)
@click.option(
    "-n", "limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Most."
)
@click.option("--json", "as_json", is_flag=True, help="Print the versions as one JSON list.")
@pass_app
def history_cmd(app: App, page: str | None, limit: int, as_json: bool) -> int:
    """The versions of PAGE (e.g. concepts/slug), or the root's last N commits: time, author
    (memc, for whom, or a person), the machine and what changed."""
    from pipeline.history import history
    from pipeline.versioning import user_identity

    settings = app.settings()
    versions = history(settings, page, limit)
    name, email = user_identity(settings.root)
    me = f"{name} <{email}>"
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return 0
    if not versions:
        click.echo("No commits yet.")
    for v in versions:
        who = "memc" if v.by == "memc" else (f"you ({v.author})" if v.author == me else v.author)
        if v.by == "memc" and v.committer and v.committer != v.author:
            who += f" for {v.committer}"  # the git identity of the person who ran memc
        if v.host:
            who += f" on {v.host}"
        click.echo(f"{v.commit[:10]}  {v.time}  {who}")
        click.echo(f"    {v.subject}")
        for f in v.files[:8]:
            click.echo(f"      {f['path']}  +{f['added']} -{f['removed']}")
        if len(v.files) > 8:
            click.echo(f"      ... and {len(v.files) - 8} more files")
    return 0


@click.command("undo")
@click.argument("commit", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do it without asking.")
@pass_app
def undo_cmd(app: App, commit: str | None, yes: bool) -> int:
    """Revert one memc write batch (default: the latest) as a new commit.

    Your later edits are kept; if one clashes with the undo, nothing changes (exit 1). The
    batch's daily entries become pending again. Without --yes it shows what would change and
    asks."""
    from pipeline.history import apply_undo, plan_undo

    settings = app.settings()
    plan = plan_undo(settings, commit)
    click.echo(f"undo {plan.target.commit[:10]}  {plan.target.time}  {plan.target.subject}")
    verbs = {"delete": "delete", "restore": "restore", "merge": "revert into your version of"}
    for c in plan.changes:
        click.echo(f"  {verbs[c.action]} {c.path}  (+{c.added} -{c.removed} lines)")
    if not plan.changes:
        click.echo("  no page changes (index.md and log.md only)")
    if plan.entries:
        click.echo(f"  {len(plan.entries)} daily entries become pending again")
    if not yes and not click.confirm("Undo this batch?", default=False):
        click.echo("Nothing changed.")
        return 1
    _, batch = apply_undo(settings, commit)
    if batch.commit:
        click.echo(f"Undone as commit {batch.commit[:10]}.")
    else:
        click.echo(f"Undone; not committed: {batch.error or 'nothing to commit'}")
    return 0


@click.command("merge-daily", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.argument("name", required=False)
def merge_daily_cmd(base: str, ours: str, theirs: str, name: str | None) -> int:
    """Git merge driver for daily/*.md: merge entry by entry into OURS (registered by sync)."""
    from pipeline.dailymerge import merge_files

    return merge_files(base, ours, theirs)


COMMANDS: list[click.Command] = [history_cmd, undo_cmd, merge_daily_cmd]
