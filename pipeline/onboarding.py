"""`memc setup`: one idempotent step from an installed package to capturing sessions.

Steps, each reported as a ``Step`` (what it found, whether it changed anything):
1. the data root: initialised if it is not (default ``~/memory``);
2. the hooks in Claude Code's user settings, pinned to this installation's ``memc``;
3. the MCP server registered with Claude Code (``claude mcp add --scope user``) when the
   ``claude`` CLI is on PATH, else the one command to run is printed;
4. the root remembered in the user config (``pipeline.roots``), so commands work from any folder;
5. a schedule or watcher is offered, never installed (the hooks start a drain after each session).

A second run changes nothing and says so. ``dry_run`` reports what would change and writes
nothing. Only ``run`` (``subprocess.run``) talks to the Claude CLI, so tests pass a fake.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.program import memc_argv, memc_command

MCP_NAME = "memory-compiler"
CLI_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Step:
    name: str
    changed: bool
    detail: str
    ok: bool = True


def _root_step(root: Path, dry_run: bool) -> Step:
    from pipeline.config import load_settings
    from pipeline.roots import is_data_root
    from pipeline.setup import init_root, init_versioning

    if is_data_root(root):
        return Step("root", False, f"knowledge base at {root} (already initialised)")
    if dry_run:
        return Step("root", True, f"would create the knowledge base at {root}")
    settings = load_settings(root)
    init_root(settings)
    git = init_versioning(settings)  # as `memc init` does (git = false / no git: says so)
    return Step("root", True, f"created the knowledge base at {root}; git: {git}")


def _hooks_step(root: Path, settings_file: Path, program: list[str], dry_run: bool) -> Step:
    from pipeline.install import install_hooks

    res = install_hooks(settings_file, root, program=program, dry_run=dry_run)
    if not res.changed:
        return Step("hooks", False, f"hooks in {settings_file} (already pointing here)")
    verb = "would install" if dry_run else "installed"
    replaced = "".join(f"; replaces the hooks for {r}" for r in res.replaced_roots)
    return Step("hooks", True, f"{verb} {res.added} hooks in {settings_file}{replaced}")


def mcp_command(program: list[str], root: Path) -> list[str]:
    return memc_argv(root, "mcp", program=program)


def _mcp_step(
    root: Path, program: list[str], claude: str | None, dry_run: bool, run: Callable
) -> Step:
    server = mcp_command(program, root)
    add = ["mcp", "add", "--scope", "user", MCP_NAME, "--", *server]
    if not claude:
        hint = shlex.join(["claude", *add])
        return Step("mcp", False, f"Claude Code CLI not on PATH; to add the MCP server: {hint}")

    def call(args: list[str]) -> subprocess.CompletedProcess:
        return run(
            [claude, *args],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )

    try:
        found = call(["mcp", "get", MCP_NAME])
        if found.returncode == 0 and str(root) in found.stdout:
            return Step("mcp", False, f"MCP server {MCP_NAME!r} (already registered)")
        if dry_run:
            return Step("mcp", True, f"would register the MCP server: {shlex.join(add)}")
        if found.returncode == 0:  # registered for another root or installation: replace it
            call(["mcp", "remove", "--scope", "user", MCP_NAME])
        added = call(add)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Step("mcp", False, f"`claude mcp` did not run ({exc}); run it later", ok=False)
    if added.returncode != 0:
        why = (added.stderr or added.stdout).strip().splitlines()[-1:] or ["no output"]
        return Step("mcp", False, f"`claude mcp add` failed: {why[0]}", ok=False)
    return Step("mcp", True, f"registered the MCP server {MCP_NAME!r} with Claude Code")


def _config_step(root: Path, env, dry_run: bool) -> Step:
    from pipeline.errors import ConfigError
    from pipeline.roots import remember_root, remembered_root, user_config_path

    path = user_config_path(env)
    try:
        same = remembered_root(env) == root
    except ConfigError:
        same = False
    if same:
        return Step("config", False, f"root remembered in {path} (already)")
    if dry_run:
        return Step("config", True, f"would remember the root in {path}")
    remember_root(root, env)
    return Step("config", True, f"remembered the root in {path}")


def run_setup(
    root: Path,
    *,
    settings_file: Path,
    program: list[str],
    dry_run: bool = False,
    claude: str | None = None,
    run: Callable = subprocess.run,
    env=None,
) -> list[Step]:
    """Every step, in order; writes nothing with ``dry_run``."""
    import os

    env = os.environ if env is None else env
    claude = claude if claude is not None else shutil.which("claude") or ""
    memc = memc_command(root, program=program)
    return [
        _root_step(root, dry_run),
        _hooks_step(root, settings_file, program, dry_run),
        _mcp_step(root, program, claude or None, dry_run, run),
        _config_step(root, env, dry_run),
        Step(
            "schedule",
            False,
            "hooks start a drain after each session; optional safety net: "
            f"`{memc} schedule cron --install`, or keep `{memc} watch` running",
        ),
    ]
