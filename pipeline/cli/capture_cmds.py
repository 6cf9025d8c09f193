"""CLI commands of the capture stage: `memc capture` and the `memc hook` group.

Real hook calls never reach click: `pipeline.entry` sends `memc hook EVENT` straight to
`pipeline.hooks.run_hook_cli` (stdlib only, fast). The click group exists for `memc hook --help`
and `memc hook EVENT --help`, and delegates to the same function if it is ever invoked.
"""

from __future__ import annotations

import os

import click

from pipeline.cli import App, emit_json, pass_app, warn

_EVENT_HELP = {
    "session-start": "SessionStart: print context for the new session (stdout), exit 0.",
    "session-end": "SessionEnd: capture the transcript delta, start a detached drain, exit 0.",
    "pre-compact": "PreCompact: capture before Claude Code compacts the conversation, exit 0.",
    "stop": "Stop: cheap checkpoint; captures once enough new lines or minutes accumulated.",
    "user-prompt-submit": "UserPromptSubmit: print memories relevant to the prompt, if any.",
}


@click.group("hook")
def hook_group() -> None:
    """Claude Code hook entry points (JSON payload on stdin; always exit 0).

    Installed by `memc install-hooks`. Every call logs one line to .memc/logs/hooks.log; with
    MEMC_INTERNAL set (memc's own child processes) a hook does nothing at all.
    """


def _hook_command(event: str) -> click.Command:
    @click.pass_obj
    def run(app: App) -> int:
        from pipeline.hooks import run_hook_cli

        return run_hook_cli([event], root=app.root_flag, verbose=app.verbose)

    return click.Command(event, callback=run, help=_EVENT_HELP[event])


for _event in _EVENT_HELP:
    hook_group.add_command(_hook_command(_event))


@click.command("capture")
@click.argument("transcript", type=click.Path(dir_okay=True, path_type=str))
@click.option("--session-id", default=None, help="Session id (default: the file name's stem).")
@click.option(
    "--cwd",
    "cwd",
    default="",
    help="Project folder of the session (names the project; default: the cwd recorded "
    "in the transcript).",
)
@click.option("--event", default="manual", show_default=True, help="Event recorded in the job.")
@click.option("--force", is_flag=True, help="With --event stop: ignore the Stop thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def capture_cmd(
    app: App,
    transcript: str,
    session_id: str | None,
    cwd: str,
    event: str,
    force: bool,
    as_json: bool,
) -> int:
    """Capture what TRANSCRIPT gained since its last capture, as a hook would.

    Exit 0 when a job was queued, there was nothing new, or the session is skipped (private,
    excluded project, Agent SDK transcript); 2 when the file is missing, not a regular file or
    unreadable.
    The job waits in .memc/inbox until `memc drain` (or the watcher) processes it.
    """
    from pipeline.capture import capture

    settings = app.settings()
    sid = session_id or os.path.splitext(os.path.basename(transcript.rstrip("/\\")))[0]
    problem = _file_problem(transcript)
    if not problem and not cwd:  # as a hook would get it: the session's folder names the project
        from pipeline.tailfile import transcript_head

        cwd = transcript_head(transcript)[0]
    if problem:
        result = {"status": "error", "job_id": None, "reason": problem, "bytes": 0}
    else:
        res = capture(
            settings,
            transcript_path=transcript,
            session_id=sid,
            cwd=cwd,
            event=event,
            force=force,
            attempts=1,
        )
        result = {
            "status": res.status,
            "job_id": res.job_id,
            "reason": res.reason,
            "bytes": res.bytes,
        }
    if as_json:
        emit_json(result)
    elif problem:
        warn(f"memc: cannot capture {transcript}: {problem}")
    elif result["status"] == "queued":
        click.echo(
            f"Queued job {result['job_id']} ({result['bytes']} bytes). "
            "Run `memc drain` to distil it (or let the watcher pick it up)."
        )
    else:
        click.echo(f"{result['status']}: {result['reason']}")
    return 2 if problem else 0


def _file_problem(path: str) -> str:
    """Why the CLI refuses a path (exit 2), or "" when capture may try it."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file; pass the path of a Claude Code .jsonl transcript"
    except OSError as exc:
        return f"{exc.strerror or exc}; check the path and its permissions"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file; pass the path of a .jsonl transcript"
    if not os.access(path, os.R_OK):
        return "not readable; check its permissions"
    return ""


COMMANDS: list[click.Command] = [capture_cmd, hook_group]
