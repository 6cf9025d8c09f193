"""The click application: `memc [--root DIR] [-v] COMMAND`.

Thin by design: each command parses its options, calls one domain function, and prints. Commands
live in small modules beside this one (grouped by pipeline stage); they import their domain
modules inside the command body so that `memc search` does not pay for the Agent SDK or watchdog.

One error handler for all commands (``main``), with distinct exit codes (``pipeline.errors``):
0 success; 1 a known failure (``MemcError`` and its leaves, or a command reporting failure such as
lint errors) with its one-line message; 2 a usage or configuration error; 3 an unexpected
exception (a bug): one line on stderr saying where the traceback is, the traceback itself in
``.memc/logs/pipeline.log`` when the data root is initialised (else on stderr with ``-v``); 130
on Ctrl-C. ``--json`` output is one JSON document on stdout and nothing else there; diagnostics
go to stderr.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.config import Settings, load_settings, require_initialised, resolve_root
from pipeline.errors import EXIT_CRASH, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MemcError


@dataclass
class App:
    root_flag: str | None = None
    verbose: bool = False
    _settings: dict[tuple, Settings] = field(default_factory=dict)

    def root(self, *, create: bool = False, fallback: Path | None = None) -> Path:
        """The data root (``pipeline.roots`` order). ``create``: the root a command that makes one
        works on when none is named: ``--root`` > ``MEMC_ROOT`` > the current folder."""
        from pipeline import roots

        if create:
            return resolve_root(self.root_flag)
        return roots.find_root(self.root_flag, fallback=fallback).path

    def settings(
        self, *, require_init: bool = True, create: bool = False, **overrides: Any
    ) -> Settings:
        key = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
        key += (("__create__", create),)
        if key not in self._settings:
            from pipeline import roots

            fallback = None if require_init else roots.default_root()
            root = self.root(create=create, fallback=fallback)
            self._settings[key] = load_settings(root, overrides)
        settings = self._settings[key]
        if require_init:
            require_initialised(settings)
        return settings


pass_app = click.make_pass_decorator(App)


def emit_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str))


def warn(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--root",
    "root",
    type=click.Path(file_okay=False),
    default=None,
    help="Data root (also accepted after the command). Default: $MEMC_ROOT, else the current "
    "folder if it is one, else the root `memc setup` remembered, else ~/memory.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug detail on stderr.")
@click.version_option(__version__, prog_name="memc")
@click.pass_context
def cli(ctx: click.Context, root: str | None, verbose: bool) -> None:
    """memory-compiler: Claude Code sessions -> daily logs -> a markdown knowledge base.

    Pipeline: hooks capture transcript deltas into .memc/inbox; `drain` or `watch` distils them
    into daily/YYYY-MM-DD.md; `compile` turns new entries into knowledge/; `search`, `query`,
    `lint` and the SessionStart hook read it back.
    """
    ctx.obj = App(root_flag=root, verbose=verbose)


@cli.command("init")
@click.option("--no-git", is_flag=True, help="Do not make the root a git repository.")
@click.option(
    "--from",
    "from_url",
    metavar="URL",
    default=None,
    help="Start from a shared root: clone URL (pushed by `memc sync --remote URL`) into a new "
    "or empty folder.",
)
@pass_app
def init_cmd(app: App, no_git: bool, from_url: str | None) -> None:
    """Create the data-root layout (daily/, knowledge/, .memc/, .gitignore) and, when git is
    installed, a git repository (an existing one is reused). Safe to run again."""
    from pipeline.program import memc_hint
    from pipeline.setup import init_root, init_versioning

    if from_url is not None:
        if no_git:
            raise click.UsageError("--from clones a git repository; it cannot go with --no-git")
        from pipeline.syncinit import clone_into

        clone_into(app.root(create=True), from_url)
    settings = app.settings(require_init=False, create=True)
    created = init_root(settings)
    if created:
        click.echo(f"Initialised memory-compiler data root at {settings.root}")
        for path in created:
            click.echo(f"  created {path.relative_to(settings.root)}")
    else:
        click.echo(f"{settings.root} is already initialised; nothing changed.")
    if no_git:
        click.echo("  git: not versioned (--no-git)")
    else:
        click.echo(f"  git: {init_versioning(settings)}")
    if from_url is not None:
        from pipeline import syncinit

        learned = syncinit.catch_up(settings, from_url)
        click.echo(f"  sync: {syncinit.summary(settings, from_url, learned)}")
    click.echo(
        f"Next: `{memc_hint(settings.root, 'install-hooks')}` to capture Claude Code sessions "
        "into it."
    )


@cli.command("mcp")
@pass_app
def mcp_cmd(app: App) -> None:
    """Serve the knowledge base over MCP (stdio): tools search, read and query.

    Register it with Claude Code, e.g. `claude mcp add memc -- memc --root DIR mcp`.
    """
    from pipeline.mcp_server import serve

    serve(app.settings())


def _register() -> None:
    from pipeline.cli import (
        capture_cmds,
        compile_cmds,
        distil_cmds,
        history_cmds,
        ops_cmds,
        read_cmds,
        setup_cmds,
        sync_cmds,
    )

    for module in (
        setup_cmds,
        capture_cmds,
        distil_cmds,
        compile_cmds,
        read_cmds,
        ops_cmds,
        history_cmds,
        sync_cmds,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this directly)."""
    from pipeline.roots import hoist_root

    argv = hoist_root(list(sys.argv[1:] if argv is None else argv))
    verbose = any(a in ("-v", "--verbose") for a in argv)
    try:
        result = cli.main(args=argv, prog_name="memc", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's form of Ctrl-C (or EOF at a prompt)
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        click.echo("Interrupted." if interrupted else "Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except MemcError as exc:
        click.echo(f"memc: {exc}", err=True)
        if verbose:
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the single top-level handler for the unexpected
        return crashed(argv, exc, verbose)
    return result if isinstance(result, int) else EXIT_OK


def crashed(argv: list[str], exc: Exception, verbose: bool) -> int:
    """Report a bug: the traceback to pipeline.log (when the root is known) and, with -v, to
    stderr; then one line saying what happened and where the traceback is."""
    logged = _log_crash(argv)
    if verbose:
        traceback.print_exc()
    if logged is not None:
        where = f"traceback in {logged}"
    elif verbose:
        where = "traceback above"
    else:
        where = "run with -v for the traceback"
    click.echo(
        f"memc: internal error (a bug in memc): {type(exc).__name__}: {exc} ({where})", err=True
    )
    return EXIT_CRASH


def _root_arg(argv: list[str]) -> str | None:
    """The ``--root`` value in ``argv`` (before or after the command), if any."""
    for i, arg in enumerate(argv):
        if arg == "--root" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--root="):
            return arg.split("=", 1)[1]
    return None


def _log_crash(argv: list[str]) -> Path | None:
    """Write the current traceback, with versions, to the root's pipeline.log; return that
    file, or None when no initialised root is known or the log cannot be written."""
    import platform

    try:
        from pipeline.config import Paths, resolve_root
        from pipeline.logs import pipeline_logger

        paths = Paths(resolve_root(_root_arg(argv)))
        if not paths.memc.is_dir():
            return None
        logger = pipeline_logger(paths.logs)
        logger.error(
            "command %s crashed (memc %s, Python %s, %s):\n%s",
            argv[:2],
            __version__,
            platform.python_version(),
            sys.platform,
            traceback.format_exc(),
        )
        for handler in logger.handlers:
            handler.flush()
        log_file = paths.logs / "pipeline.log"
        return log_file if log_file.is_file() else None
    except Exception:  # reporting a crash must not crash
        return None
