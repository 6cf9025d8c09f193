"""The `memc` console script.

`memc hook ...` is dispatched here without importing click or anything else outside the standard
library, so a hook costs little more than interpreter start-up. Every other command goes to the
click application in `pipeline.cli`.
"""

from __future__ import annotations

import sys


def _hook_argv(argv: list[str]) -> tuple[str | None, bool, list[str]] | None:
    """If argv is `[--root DIR] [-v] hook EVENT ...`, return (root, verbose, rest after 'hook')."""
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
        elif arg == "hook":
            rest = argv[i + 1 :]
            if any(a in ("-h", "--help") for a in rest):
                return None  # let click render help
            return root, verbose, rest
        else:
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    from pipeline.roots import hoist_root

    argv = hoist_root(list(sys.argv[1:] if argv is None else argv))
    hook = _hook_argv(argv)
    if hook is not None:
        from pipeline.hooks import run_hook_cli

        root, verbose, rest = hook
        return run_hook_cli(rest, root=root, verbose=verbose)
    from pipeline.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
