"""The `memc` console script.

`memc hook ...` is dispatched here without importing click or anything else outside the standard
library, so a hook costs little more than interpreter start-up. `memc status` (in its plain
forms: `[--root DIR] [-v] status [--json]`) runs here without click too: it is a snapshot
people run often, and click's import is a fifth of its cost; it prints what the click command
prints (``pipeline.status.report``) and exits the same way. Every other command, and every other
form (`status --help`, a misspelt option), goes to the click application in `pipeline.cli`.
"""

from __future__ import annotations

import sys


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


def _status_argv(argv: list[str]) -> tuple[str | None, bool, bool] | None:
    """If argv is `[--root DIR] [-v] status [--json]`, return (root, verbose, as_json)."""
    found = _command(argv)
    if found is None or found[2] != "status" or not set(found[3]) <= {"--json"}:
        return None
    root, verbose, _, rest = found
    return root, verbose, bool(rest)


def _run_status(argv: list[str], root: str | None, verbose: bool, as_json: bool) -> int:
    """`memc status` without click: the command's own settings, output and exit codes
    (``pipeline.cli``'s handler, imported only for a crash)."""
    from pipeline.errors import EXIT_INTERRUPTED, MemcError

    try:
        from pipeline import roots
        from pipeline.config import load_settings, require_initialised
        from pipeline.status import report

        settings = load_settings(roots.find_root(root).path)
        require_initialised(settings)
        sys.stdout.write(report(settings, as_json=as_json) + "\n")
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
        from pipeline.cli import _crashed

        return _crashed(argv, exc, verbose)
    return 0


def main(argv: list[str] | None = None) -> int:
    from pipeline.roots import hoist_root

    argv = hoist_root(list(sys.argv[1:] if argv is None else argv))
    hook = _hook_argv(argv)
    if hook is not None:
        from pipeline.hooks import run_hook_cli

        root, verbose, rest = hook
        return run_hook_cli(rest, root=root, verbose=verbose)
    status = _status_argv(argv)
    if status is not None:
        return _run_status(argv, *status)
    from pipeline.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
