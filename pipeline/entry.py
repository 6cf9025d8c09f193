"""The `memc` console script.

`memc hook ...` is dispatched here without importing click or anything else outside the standard
library, so a hook costs little more than interpreter start-up. `memc status` and `memc search`
run here without click too, in their plain forms (`[--root DIR] [-v] status [--json]`,
`[--root DIR] [-v] search WORD... [--limit N] [--kind K] [--json]` with valid values): they
are what people (and scripts) run most, and click's import is a fifth of their cost. They print
what the click commands print (``pipeline.status.report``, ``pipeline.searchcmd.report``) and
exit the same way. Every other command, and every other form (`--help`, a misspelt option, a
bad value), goes to the click application in `pipeline.cli`, which says what is wrong.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _command(argv: list[str]) -> tuple[str | None, bool, str, list[str]] | None:
    """`[--root DIR] [-v] COMMAND REST...` as (root, verbose, COMMAND, REST), else None."""
    root: str | None = None
    verbose = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
            i += 2
        elif arg.startswith("--root="):
            root = arg.split("=", 1)[1]
            i += 1
        elif arg in ("-v", "--verbose"):
            verbose = True
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return root, verbose, arg, argv[i + 1 :]
    return None


def _hook_argv(argv: list[str]) -> tuple[str | None, bool, list[str]] | None:
    """If argv is `[--root DIR] [-v] hook EVENT ...`, return (root, verbose, rest after 'hook')."""
    found = _command(argv)
    if found is None or found[2] != "hook":
        return None
    root, verbose, _, rest = found
    if any(a in ("-h", "--help") for a in rest):
        return None  # let click render help
    return root, verbose, rest


def status_argv(argv: list[str]) -> tuple[str | None, bool, bool] | None:
    """If argv is `[--root DIR] [-v] status [--json]`, return (root, verbose, as_json)."""
    found = _command(argv)
    if found is None or found[2] != "status" or not set(found[3]) <= {"--json"}:
        return None
    root, verbose, _, rest = found
    return root, verbose, bool(rest)


# The values `memc search --kind/--limit` accepts (pipeline.cli.read_cmds; a test compares them).
SEARCH_KINDS = ("article", "daily")
SEARCH_MAX_LIMIT = 200


def search_argv(argv: list[str]) -> tuple[str | None, bool, dict[str, Any]] | None:
    """If argv is `[--root DIR] [-v] search WORD... [--limit N] [--kind K] [--json]` with valid
    values, return (root, verbose, the report's arguments); anything else is click's to parse."""
    found = _command(argv)
    if found is None or found[2] != "search":
        return None
    root, verbose, _, rest = found
    words: list[str] = []
    options: dict[str, Any] = {"limit": "10", "kind": None, "as_json": False}
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=")
        if arg == "--json":
            options["as_json"] = True
        elif name in ("--limit", "--kind") and eq:
            options[name[2:]] = value
        elif arg in ("--limit", "-n", "--kind") and i + 1 < len(rest):
            options["kind" if arg == "--kind" else "limit"] = rest[i + 1]
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            words.append(arg)
        i += 1
    limit = str(options["limit"])
    if not words or not limit.isdigit() or not 1 <= int(limit) <= SEARCH_MAX_LIMIT:
        return None
    if options["kind"] is not None and options["kind"] not in SEARCH_KINDS:
        return None
    report = {
        "text": " ".join(words),
        "limit": int(limit),
        "kind": options["kind"],
        "as_json": options["as_json"],
    }
    return root, verbose, report


def _run_without_click(
    argv: list[str], root: str | None, verbose: bool, command: Callable[[Any], str]
) -> int:
    """Run ``command(settings) -> output`` as a click command would: the settings of the root
    found, the output on stdout, ``MemcError`` as its message and exit code, Ctrl-C as 130, and
    anything else through ``pipeline.cli``'s crash handler (imported only then)."""
    from pipeline.errors import EXIT_INTERRUPTED, MemcError

    try:
        from pipeline import roots
        from pipeline.config import load_settings, require_initialised

        settings = load_settings(roots.find_root(root).path)
        require_initialised(settings)
        sys.stdout.write(command(settings) + "\n")
        sys.stdout.flush()
    except MemcError as exc:
        sys.stderr.write(f"memc: {exc}\n")
        if verbose:
            import traceback

            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        from pipeline.cli import crashed

        return crashed(argv, exc, verbose)
    return 0


def _status_output(settings: Any, as_json: bool) -> str:
    from pipeline.status import report

    return report(settings, as_json=as_json)


def _search_output(settings: Any, args: dict[str, Any]) -> str:
    from pipeline.searchcmd import report

    return report(settings.paths, **args)


def main(argv: list[str] | None = None) -> int:
    from pipeline.roots import hoist_root

    argv = hoist_root(list(sys.argv[1:] if argv is None else argv))
    hook = _hook_argv(argv)
    if hook is not None:
        from pipeline.hooks import run_hook_cli

        root, verbose, rest = hook
        return run_hook_cli(rest, root=root, verbose=verbose)
    status = status_argv(argv)
    if status is not None:
        root, verbose, as_json = status
        return _run_without_click(argv, root, verbose, lambda s: _status_output(s, as_json))
    search = search_argv(argv)
    if search is not None:
        root, verbose, args = search
        return _run_without_click(argv, root, verbose, lambda s: _search_output(s, args))
    from pipeline.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
