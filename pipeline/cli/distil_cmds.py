"""CLI commands of the distil stage: `drain`, `watch`, `retry`.

Thin: each parses options, calls one domain function (pipeline.drain, pipeline.watcher,
pipeline.inbox) and prints. Domain modules are imported inside the bodies so other commands do
not pay for them (the watcher is the only importer of watchdog).
"""

from __future__ import annotations

import click

from pipeline.cli import App, emit_json, pass_app, warn
from pipeline.errors import EXIT_USAGE


@click.command("drain")
@click.option("--json", "as_json", is_flag=True, help="Print the drain report as JSON.")
@pass_app
def drain_cmd(app: App, as_json: bool) -> int:
    """Process every inbox job once, then run `compile --if-stale`. Exit 1 if any job failed."""
    from pipeline.drain import drain

    report = drain(app.settings())
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(report.summary())
        for failure in report.failures:
            click.echo(f"  failed {failure.id}: {failure.error_class}: {failure.message}")
        if report.failures:
            click.echo("Fix the cause, then `memc retry` (see `memc status` for every failed job).")
        elif report.entries:
            _say_compile_state(app.settings())
        elif report.stopped.startswith("deferred") and app.settings().daily_budget_usd <= 0:
            click.echo(
                "The daily budget is 0, so no job is distilled until you raise "
                "MEMC_DAILY_BUDGET_USD (or daily_budget_usd in .memc/config.toml), or use "
                "MEMC_BACKEND=extractive."
            )
        elif report.stopped.startswith("deferred"):
            click.echo("Pending jobs resume by themselves after midnight (or raise the budget).")
    return 1 if report.failed else 0


def _say_compile_state(settings) -> None:
    """After new entries: did the drain's `compile --if-stale` compile them, and if not, why."""
    from pipeline import state
    from pipeline.compiler import should_compile

    conn = state.connect(settings.paths.state_db)
    try:
        decision = should_compile(settings, conn)
    finally:
        conn.close()
    if decision.pending:
        click.echo(
            f"{decision.pending} entr{'y' if decision.pending == 1 else 'ies'} "
            f"not yet in knowledge/: compile waits ({decision.reason}); "
            "`memc compile` compiles them now."
        )


@click.command("watch")
@click.option(
    "--sweep",
    "sweep_s",
    type=click.FloatRange(min=0.5),
    default=30.0,
    show_default=True,
    help="Seconds between full sweeps of the inbox (file events wake it sooner).",
)
@pass_app
def watch_cmd(app: App, sweep_s: float) -> int:
    """Daemon: distil inbox jobs as they arrive, until SIGTERM/SIGINT.

    After every drain and sweep it runs `compile --if-stale`. One watcher per data root: a
    second one says so and exits 0.
    """
    from pipeline.watcher import watch

    return watch(app.settings(), sweep_s=sweep_s, on_event=warn, on_cycle=cycle_reporter(warn))


def cycle_reporter(say):
    """on_cycle for a foreground `memc watch`: one line per cycle that did something, so the
    daemon is not mute; a deferral or pause repeated by every sweep is said once."""
    last = {"stopped": ""}

    def report_cycle(report) -> None:
        if report is None:
            say(
                "memc watch: a drain cycle failed (details in .memc/logs/pipeline.log); "
                "trying again at the next sweep"
            )
            return
        repeat = (
            report.stopped
            and report.stopped == last["stopped"]
            and not (report.done or report.failed)
        )
        last["stopped"] = report.stopped
        if repeat or not (report.processed or report.stopped or report.failed):
            return
        say(f"memc watch: {report.summary()}")
        for failure in report.failures:
            say(f"  failed {failure.id}: {failure.error_class}: {failure.message}")
        if report.failures:
            say("  fix the cause, then `memc retry` (see `memc status`)")

    return report_cycle


@click.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the moved job ids as JSON.")
@pass_app
def retry_cmd(app: App, job_ids: tuple[str, ...], as_json: bool) -> int:
    """Move failed jobs (all, or the given ids / id prefixes) back to the inbox.

    Exit 2 when a given id matches no failed job (the others are still moved)."""
    from pipeline.inbox import job_id_of, retry

    moved = retry(app.settings().paths, list(job_ids) or None)
    unknown = [
        j for j in job_ids if not any(m == job_id_of(j + ".json") or m.startswith(j) for m in moved)
    ]
    code = EXIT_USAGE if unknown else 0  # a job id that matches nothing is a usage error
    if as_json:
        emit_json({"retried": moved, "unknown": unknown})
        return code
    if moved:
        click.echo(f"moved {len(moved)} failed job(s) back to the inbox: {', '.join(moved)}")
        click.echo("Next: `memc drain` (or let the watcher pick them up).")
    else:
        click.echo("no failed jobs to retry" if not job_ids else "nothing moved")
    for job in unknown:
        warn(f"memc retry: no failed job matches {job!r}; `memc status` lists failed jobs")
    return code


COMMANDS: list[click.Command] = [drain_cmd, watch_cmd, retry_cmd]
