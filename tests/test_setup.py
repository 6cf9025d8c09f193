"""`memc setup` (idempotent, dry-run, with and without the Claude CLI) and the root resolution
order: --root > MEMC_ROOT > a data root as the current folder > the remembered root > ~/memory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pipeline import roots
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.install import installed_hooks
from pipeline.setup import init_root

FAKE_CLAUDE = """#!{python}
import json, os, sys
registry = os.environ["FAKE_MCP_REGISTRY"]
data = json.load(open(registry)) if os.path.exists(registry) else {{}}
args = sys.argv[1:]
with open(registry + ".log", "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["mcp", "get"]:
    if args[2] in data:
        print(args[2] + ": " + " ".join(data[args[2]]))
        sys.exit(0)
    print("No MCP server found", file=sys.stderr)
    sys.exit(1)
if args[:2] == ["mcp", "add"]:
    cut = args.index("--")
    data[args[cut - 1]] = args[cut + 1:]
elif args[:2] == ["mcp", "remove"]:
    data.pop(args[-1], None)
json.dump(data, open(registry, "w"))
"""


@pytest.fixture
def fake_cli(tmp_path, monkeypatch) -> Path:
    """A `claude` on PATH that keeps an MCP registry in a JSON file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "claude"
    script.write_text(FAKE_CLAUDE.format(python=sys.executable))
    script.chmod(0o755)
    registry = tmp_path / "mcp.json"
    monkeypatch.setenv("FAKE_MCP_REGISTRY", str(registry))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return registry


def _snapshot(*paths: Path) -> dict[str, bytes | None]:
    return {str(p): p.read_bytes() if p.exists() else None for p in paths}


def test_setup_twice_changes_nothing_the_second_time(fake_cli, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    home = Path.home()
    assert main(["setup", "--yes"]) == 0
    out = capsys.readouterr().out
    memory = home / "memory"
    assert roots.is_data_root(memory)
    settings_json = home / ".claude" / "settings.json"
    assert {h.root for h in installed_hooks(settings_json)} == {str(memory)}
    registered = json.loads(fake_cli.read_text())["memory-compiler"]
    assert registered[-3:] == ["--root", str(memory), "mcp"]
    assert roots.remembered_root() == memory
    assert out.count("+ ") == 4 and "schedule cron --install" in out

    config = roots.user_config_path()
    before = _snapshot(settings_json, config, fake_cli)
    assert main(["setup", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"Already set up for {memory}; nothing changed." in out
    assert "+ " not in out
    assert _snapshot(settings_json, config, fake_cli) == before
    calls = (fake_cli.parent / "mcp.json.log").read_text().splitlines()
    assert calls[-1] == "mcp get memory-compiler"  # the second run only looked

    # from any folder, commands now find the remembered root
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["root"] == str(memory)


def test_setup_dry_run_writes_nothing(fake_cli, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "kb"
    assert main(["setup", "--dry-run", "--root", str(target)]) == 0
    out = capsys.readouterr().out
    assert "would create the knowledge base" in out and "Dry run: nothing was changed." in out
    assert not target.exists()
    assert not (Path.home() / ".claude").exists()
    assert not roots.user_config_path().exists()
    assert not fake_cli.exists()


def test_setup_without_the_claude_cli_prints_the_mcp_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["--root", str(tmp_path / "kb"), "setup", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Claude Code CLI not on PATH" in out
    assert "claude mcp add --scope user memory-compiler --" in out


def test_setup_without_a_terminal_needs_yes(tmp_path, capsys, monkeypatch):
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        assert main(["--root", str(tmp_path / "kb"), "setup"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert not (tmp_path / "kb").exists()


def _init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    init_root(load_settings(path))
    return path


def test_root_resolution_order(tmp_path, monkeypatch):
    flag, env_root = tmp_path / "flag", tmp_path / "env"
    here = _init(tmp_path / "here")
    remembered = _init(tmp_path / "remembered")
    memory = Path.home() / "memory"
    elsewhere = tmp_path / "plain-folder"
    elsewhere.mkdir()

    def found(flag_=None, env=None, cwd=elsewhere):
        full = dict(os.environ, **(env or {}))
        return roots.find_root(flag_, full, cwd=cwd)

    with pytest.raises(roots.RootNotFound, match="memc setup"):
        found()
    _init(memory)
    assert found() == roots.FoundRoot(memory, "~/memory")
    roots.remember_root(remembered)
    assert found().path == remembered
    assert found(cwd=here).path == here
    assert found(env={"MEMC_ROOT": str(env_root)}, cwd=here).path == env_root
    assert found(str(flag), env={"MEMC_ROOT": str(env_root)}, cwd=here).path == flag
    assert roots.remember_root(remembered) is False  # already remembered: nothing written


def test_root_flag_after_the_command_and_the_error_naming_setup(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    assert "memc setup" in capsys.readouterr().err
    kb = _init(tmp_path / "kb")
    assert main(["status", "--json", "--root", str(kb)]) == 0
    assert json.loads(capsys.readouterr().out)["root"] == str(kb)
    assert main(["status", f"--root={kb}"]) == 0


def test_a_broken_user_config_names_its_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = roots.user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("root = /unquoted\n")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "memc setup" in err


def test_a_hook_takes_root_after_the_command_too(root, tmp_path, monkeypatch):
    from pipeline.entry import main as entry_main
    from tests.helpers import hook_payload, queued_envelopes, turn_line

    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(turn_line(1))
    stdin = tmp_path / "stdin"
    stdin.write_bytes(hook_payload("s-after", transcript))
    monkeypatch.chdir(tmp_path)  # not a data root, nothing remembered
    with stdin.open("rb") as stream:
        monkeypatch.setattr(sys, "stdin", stream)
        assert entry_main(["hook", "session-end", "--root", str(root)]) == 0
    assert [e.session_id for e in queued_envelopes(root)] == ["s-after"]
