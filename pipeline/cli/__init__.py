"""The click application: `memc [--root DIR] [-v] COMMAND`.

Thin by design: each command parses its options, calls one domain function, and prints. Commands
live in small modules beside this one (grouped by pipeline stage); they import their domain
modules inside the command body so that `memc search` does not pay for the Agent SDK or watchdog.

One error handler for all commands (``main``): ``MemcError`` -> its message on stderr and its exit
code (2 for usage/configuration); anything unexpected -> a one-line message, exit 1, the traceback
in ``.memc/logs/pipeline.log`` (and on stderr with ``-v``). ``--json`` output is one JSON document
on stdout and nothing else there; diagnostics go to stderr.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import click

from pipeline import __version__
from pipeline.config import Settings, load_settings, require_initialised
from pipeline.errors import MemcError


@dataclass
class App:
    root_flag: str | None = None
    verbose: bool = False
    _settings: dict[tuple, Settings] = field(default_factory=dict)

    def settings(self, *, require_init: bool = True, **overrides: Any) -> Settings:
        key = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
        if key not in self._settings:
            self._settings[key] = load_settings(self.root_flag, overrides)
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
    help="Data root (default: $MEMC_ROOT, else the current directory).",
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
@pass_app
def init_cmd(app: App) -> None:
    """Create the data-root layout (daily/, knowledge/, .memc/). Safe to run again."""
    from pipeline.setup import init_root

    settings = app.settings(require_init=False)
    created = init_root(settings)
    if created:
        click.echo(f"Initialised memory-compiler data root at {settings.root}")
        for path in created:
            click.echo(f"  created {path.relative_to(settings.root)}")
    else:
        click.echo(f"{settings.root} is already initialised; nothing changed.")
    click.echo(
        f"Next: `{memc_for(settings)} install-hooks` to capture Claude Code sessions into it."
    )


def memc_for(settings: Settings) -> str:
    """`memc`, plus `--root DIR` when a bare `memc` run from here would not find this root."""
    import os
    import shlex
    from pathlib import Path

    try:
        found = Path(os.environ.get("MEMC_ROOT") or os.getcwd()).resolve()
    except OSError:
        found = None
    if found == Path(settings.root).resolve():
        return "memc"
    return f"memc --root {shlex.quote(str(settings.root))}"


@cli.command("mcp")
@pass_app
def mcp_cmd(app: App) -> None:
    """Serve the knowledge base over MCP (stdio): tools search, read and query.

    Register it with Claude Code, e.g. `claude mcp add memc -- memc --root DIR mcp`.
    """
    from pipeline.mcp_server import serve

    serve(app.settings())


def _register() -> None:
    from pipeline.cli import capture_cmds, compile_cmds, distil_cmds, ops_cmds, read_cmds

    for module in (capture_cmds, distil_cmds, compile_cmds, read_cmds, ops_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this directly)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    try:
        result = cli.main(args=argv, prog_name="memc", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except MemcError as exc:
        click.echo(f"memc: {exc}", err=True)
        if verbose:
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the single top-level handler for the unexpected
        _log_crash(argv)
        click.echo(
            f"memc: internal error: {type(exc).__name__}: {exc} "
            "(run with -v for the traceback; details in .memc/logs/pipeline.log)",
            err=True,
        )
        if verbose:
            traceback.print_exc()
        return 1
    return result if isinstance(result, int) else 0


def _log_crash(argv: list[str]) -> None:
    try:
        from pipeline.config import Paths, resolve_root
        from pipeline.logs import pipeline_logger

        root = None
        if "--root" in argv:
            idx = argv.index("--root")
            root = argv[idx + 1] if idx + 1 < len(argv) else None
        paths = Paths(resolve_root(root))
        if paths.memc.is_dir():
            pipeline_logger(paths.logs).error(
                "command %s crashed:\n%s", argv[:2], traceback.format_exc()
            )
    except Exception:
        pass
