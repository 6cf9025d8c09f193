"""CLI commands of the ops stage: install-hooks, uninstall-hooks, schedule, status, doctor,
backfill, private.

Thin: each parses options, calls one function of pipeline.install / schedule / status / doctor /
backfill, and prints. Writes outside the data root happen only here, and only when asked:
install-hooks / uninstall-hooks (Claude Code's settings.json) and `schedule --install`.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import App, emit_json, pass_app, warn
from pipeline.cli.progress import progress_lines


def _settings_file(scope: str, settings_opt: str | None) -> Path:
    from pipeline.install import settings_path

    return Path(settings_opt).expanduser().absolute() if settings_opt else settings_path(scope)


_scope = click.option(
    "--scope",
    type=click.Choice(["user", "project"]),
    default="user",
    show_default=True,
    help="user: ~/.claude/settings.json; project: ./.claude/settings.local.json (personal).",
)
_settings_opt = click.option(
    "--settings",
    "settings_opt",
    type=click.Path(dir_okay=False),
    default=None,
    help="Edit this settings file instead (overrides --scope).",
)
_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.command("install-hooks")
@_scope
@_settings_opt
@_json
@pass_app
def install_hooks_cmd(app: App, scope: str, settings_opt: str | None, as_json: bool) -> int:
    """Add memc's hooks (SessionStart, SessionEnd, PreCompact, Stop) to Claude Code.

    Safe to run again (nothing changes the second time). Your own hooks and settings are kept; the
    previous file is saved beside it as <name>.memc-backup-<time> (the newest 3 are kept; in the
    data root's .memc/backups/ when that folder is a symlink or in a git work tree, such as a
    dotfiles repository). One settings file captures into one root: installing for this root
    replaces another root's hooks there, and says which. Exit 2 if the file is not JSON, 1 if it
    may not be written (read-only, immutable): nothing is changed then.
    """
    from pipeline.install import install_hooks, settings_path, uninstall_hooks

    settings = app.settings()
    path = _settings_file(scope, settings_opt)
    res = install_hooks(path, settings.root)
    moved = None
    if scope == "project" and not settings_opt:  # take ours out of the team's shared file
        moved = uninstall_hooks(settings_path("project-shared"))
    if as_json:
        emit_json(
            {
                "settings": str(res.path),
                "changed": res.changed,
                "added": res.added,
                "replaced": res.removed,
                "replaced_roots": list(res.replaced_roots),
                "backup": str(res.backup) if res.backup else None,
                "commands": list(res.commands),
                "moved_from_shared": moved.removed if moved else 0,
            }
        )
        return 0
    if not res.changed:
        click.echo(f"Hooks already installed in {res.path}; nothing changed.")
    else:
        click.echo(f"Installed {res.added} hooks in {res.path} for data root {settings.root}.")
        for other in res.replaced_roots:
            click.echo(f"  replaced the hooks that captured into {other}")
        if res.removed and not res.replaced_roots:
            click.echo(f"  replaced {res.removed} older memc hook command(s)")
        if res.backup:
            click.echo(f"  previous file saved as {res.backup}")
    if moved and moved.changed:
        click.echo(f"  removed {moved.removed} memc hook(s) from the shared {moved.path}")
    click.echo(f"  e.g. {res.commands[1]}")
    click.echo(
        "Next: start a new Claude Code session; `memc status` shows captures as they arrive. "
        "`memc doctor` checks the whole setup."
    )
    return 0


@click.command("uninstall-hooks")
@_scope
@_settings_opt
@click.option(
    "--all-roots", is_flag=True, help="Remove memc hooks for every data root, not only this one."
)
@_json
@pass_app
def uninstall_hooks_cmd(
    app: App, scope: str, settings_opt: str | None, all_roots: bool, as_json: bool
) -> int:
    """Remove this root's memc hooks from Claude Code's settings (only ours; the rest stays)."""
    from pipeline.install import uninstall_hooks
    from pipeline.settingsfile import private_backups

    here = app.settings(require_init=False).root
    root = None if all_roots else here
    backups = private_backups(here)
    res = uninstall_hooks(_settings_file(scope, settings_opt), root, backups=backups)
    if as_json:
        emit_json(
            {
                "settings": str(res.path),
                "changed": res.changed,
                "removed": res.removed,
                "removed_commands": list(res.removed_commands),
                "backup": str(res.backup) if res.backup else None,
            }
        )
    elif res.changed:
        click.echo(f"Removed {res.removed} memc hook command(s) from {res.path}:")
        for command in res.removed_commands:
            click.echo(f"  {command}")
        click.echo(f"Backup: {res.backup}")
    else:
        which = "memc hooks" if root is None else f"memc hooks for {root}"
        click.echo(f"No {which} in {res.path}; nothing changed.")
    return 0


@click.command("schedule")
@click.argument("system", type=click.Choice(["cron", "systemd", "launchd"]))
@click.option(
    "--install", "do_install", is_flag=True, help="Write it (crontab / unit files / plist)."
)
@click.option(
    "--every",
    "every",
    type=int,
    default=15,
    show_default=True,
    help="Minutes between runs: 1-59, or whole hours up to 1440.",
)
@click.option(
    "--sync/--no-sync",
    "with_sync",
    default=None,
    help="Run `memc sync` after the compile (default: the schedule_sync setting, off).",
)
@pass_app
def schedule_cmd(
    app: App, system: str, do_install: bool, every: int, with_sync: bool | None
) -> int:
    """Print (or --install) a periodic `drain` + `compile --if-stale` (+ `sync`) for this root.

    Useful with MEMC_SPAWN_DRAIN=0, or as a safety net beside the hooks' own drains.
    """
    from pipeline.program import memc_program
    from pipeline.schedule import install, render

    settings = app.settings()
    sync = settings.schedule_sync if with_sync is None else with_sync
    sched = render(system, settings.root, memc_program(), every_min=every, sync=sync)
    if not do_install:
        if sched.cron_line:
            click.echo(sched.cron_line)
        for item in sched.files:
            click.echo(f"# {item.path}")
            click.echo(item.text)
        if system == "cron":  # its hint already names --install (and crontab -e)
            warn(f"Printed only. {sched.enable_hint}")
        else:
            warn(
                f"Printed only. Install with `memc schedule {system} --install`"
                + (f", then: {sched.enable_hint}" if sched.enable_hint else ".")
            )
        return 0
    outcome = install(sched, settings.root)
    click.echo(outcome.message)
    return 0


@click.command("status")
@_json
@pass_app
def status_cmd(app: App, as_json: bool) -> int:
    """Queue depth, failures, last runs, pending entries, spend and knowledge base size."""
    from pipeline.status import report

    # The console script runs `memc [--root DIR] [-v] status [--json]` without click
    # (pipeline.entry); both print ``report``.
    click.echo(report(app.settings(), as_json=as_json))
    return 0


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command("doctor")
@click.option(
    "--fix", is_flag=True, help="Repair what can be repaired (a damaged state.db), then check."
)
@_json
@pass_app
def doctor_cmd(app: App, fix: bool, as_json: bool) -> int:
    """Check the setup (Python, packages, root, state.db, timezone, FTS5, backend, Claude CLI,
    credentials, hooks, failed jobs).

    Exit 1 when something blocks the pipeline, else 0. Credentials are checked for presence only.
    --fix sets a damaged state.db aside (never deleting it) and rebuilds it first.
    """
    from pipeline.doctor import FAIL, Check, blocking, run_checks
    from pipeline.errors import ConfigError
    from pipeline.staterecovery import describe, repair

    try:
        settings = app.settings(require_init=False)
        done = repair(settings.paths.state_db) if fix and settings.paths.is_initialised() else None
        fixed = describe(done.record) if done else None
        checks = run_checks(settings)
    except ConfigError as exc:
        fixed, checks = None, [Check("config", FAIL, str(exc), "fix the setting named above")]
    if fixed and not as_json:
        click.echo(f"fixed: {fixed}")
    if as_json:
        emit_json(
            {"ok": not blocking(checks), "fixed": fixed, "checks": [c.__dict__ for c in checks]}
        )
    else:
        for c in checks:
            click.echo(f"[{_MARK.get(c.status, c.status)}] {c.name}: {c.detail}")
            if c.fix and c.status != "ok":
                click.echo(f"        fix: {c.fix}")
        problems = [c for c in checks if c.status == FAIL]
        click.echo(
            f"{len(problems)} problem(s) block the pipeline."
            if problems
            else "Nothing blocks the pipeline."
        )
    return 1 if blocking(checks) else 0


@click.command("backfill")
@click.option(
    "--since", default=None, help="Only transcripts modified since DATE (YYYY-MM-DD) or Nd (days)."
)
@click.option(
    "--project", default=None, help="Glob on the project folder name or the session's cwd."
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be captured and estimate model calls."
)
@_json
@pass_app
def backfill_cmd(
    app: App, since: str | None, project: str | None, dry_run: bool, as_json: bool
) -> int:
    """Capture existing transcripts from ~/.claude/projects before Claude Code deletes them.

    ($CLAUDE_CONFIG_DIR/projects when that is set.) Each session is dated by its last write.

    Uses the hooks' cursors: running it twice, or a hook after it, never queues a range twice.
    """
    from pipeline.backfill import backfill, parse_since

    settings = app.settings()

    say = progress_lines(as_json)

    def progress(i: int, total: int, item) -> None:
        if say and (i == total or i % 25 == 0):
            say(f"  {i}/{total} transcripts")

    res = backfill(
        settings,
        since=parse_since(since, settings),
        project=project,
        dry_run=dry_run,
        progress=progress,
    )
    if as_json:
        emit_json(
            {k: v for k, v in res.__dict__.items() if k != "items"}
            | {"items": [it.__dict__ for it in res.items]}
        )
        return 0
    if dry_run:
        for it in res.items:
            if it.status == "would-capture":
                click.echo(f"{it.project}  {it.session_id}  {it.bytes} bytes  ~{it.calls} call(s)")
        click.echo(
            f"Dry run: {res.queued} of {res.sessions} session(s) have {res.bytes} bytes not yet "
            f"captured; about {res.estimated_calls} model call(s) at most "
            f"({res.nothing_new} already captured, {res.skipped} skipped). Nothing was written."
        )
        return 0
    click.echo(
        f"Backfill: queued {res.queued} of {res.sessions} session(s), {res.bytes} bytes "
        f"({res.nothing_new} had nothing new, {res.skipped} skipped)."
    )
    if res.queued:
        click.echo(
            f"Next: `memc drain` distils them (about {res.estimated_calls} model call(s) at most)."
        )
    return 0


@click.command("private")
@click.argument("session_id")
@pass_app
def private_cmd(app: App, session_id: str) -> int:
    """Never capture SESSION_ID again, and withdraw its queued and failed jobs.

    SESSION_ID is the transcript's file name without .jsonl; the transcript's path or file name
    works too. Entries already in daily/ are kept (the command says which logs hold them).
    Inside a conversation, typing [memc:private] does the same from the next capture on.
    """
    from pipeline.private import make_private

    res = make_private(app.settings(), session_id)
    click.echo(
        f"Session {res.session_id} is {'already' if res.already_private else 'now'} private: "
        "hooks and backfill will not capture it."
    )
    if res.removed_pending or res.removed_failed:
        click.echo(
            f"  withdrew {res.removed_pending} queued and {res.removed_failed} failed job(s) "
            "(their spooled text was deleted)"
        )
    if res.distilled:
        click.echo(
            f"  {res.distilled} entr{'y' if res.distilled == 1 else 'ies'} of it were "
            "already distilled "
            f"into {', '.join(res.daily_files)} (and may be compiled into knowledge/); "
            "private does not remove them: delete them by hand if needed."
        )
    if res.claimed:
        click.echo(
            f"  {res.claimed} job(s) are being processed right now; if an entry appears in "
            "daily/, delete it by hand."
        )
    return 0


COMMANDS: list[click.Command] = [
    install_hooks_cmd,
    uninstall_hooks_cmd,
    schedule_cmd,
    status_cmd,
    doctor_cmd,
    backfill_cmd,
    private_cmd,
]
