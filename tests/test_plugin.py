"""The Claude Code plugin: its layout, and its hooks run from a copy of the plugin folder (as a
marketplace install leaves it) by an interpreter that has nothing pip-installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO

PLUGIN = REPO / "plugin"
SAMPLE = sorted((REPO / "samples").glob("*.jsonl"))[0]
EVENTS = {
    "SessionStart": "session-start",
    "SessionEnd": "session-end",
    "PreCompact": "pre-compact",
    "Stop": "stop",
    "UserPromptSubmit": "user-prompt-submit",
}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_marketplace_names_the_plugin_folder_and_its_parts_exist():
    market = _json(REPO / ".claude-plugin" / "marketplace.json")
    assert market["name"] and market["owner"]["name"]
    [entry] = market["plugins"]
    folder = (REPO / entry["source"]).resolve()
    assert folder == PLUGIN.resolve()
    manifest = _json(folder / ".claude-plugin" / "plugin.json")
    assert manifest["name"] == entry["name"] == "memory-compiler"
    assert (folder / "bin" / "memc").is_file() and (folder / "requirements.txt").is_file()
    for name in ("status", "search", "recent"):
        text = (folder / "commands" / f"{name}.md").read_text()
        assert text.startswith("---\ndescription: ")
    for name in ("status", "recent"):  # the commands that run memc run the plugin's launcher
        text = (folder / "commands" / f"{name}.md").read_text()
        assert '"${CLAUDE_PLUGIN_ROOT}/bin/memc"' in text


def test_hooks_json_runs_the_launcher_for_every_event():
    hooks = _json(PLUGIN / "hooks" / "hooks.json")["hooks"]
    assert set(hooks) == set(EVENTS)
    for event, groups in hooks.items():
        [group] = groups
        [hook] = group["hooks"]
        assert hook["type"] == "command" and 1 <= hook["timeout"] <= 10
        assert hook["command"] == f'python3 "${{CLAUDE_PLUGIN_ROOT}}/bin/memc" hook {EVENTS[event]}'
    server = _json(PLUGIN / ".mcp.json")["mcpServers"]["memory-compiler"]
    assert server == {"command": "python3", "args": ["${CLAUDE_PLUGIN_ROOT}/bin/memc", "mcp"]}


def test_the_plugins_package_and_generated_files_are_current():
    link = PLUGIN / "pipeline"
    assert link.is_symlink() and os.readlink(link) == "../pipeline"
    assert link.resolve() == (REPO / "pipeline").resolve()
    done = subprocess.run(
        [PYTHON, str(REPO / "scripts" / "sync_plugin.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


@pytest.fixture
def bare_python(tmp_path) -> Path:
    """A fresh venv with nothing installed (not even pip): the 'system python3' of a newcomer."""
    venv = tmp_path / "bare"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python3"
    probe = subprocess.run([str(python), "-c", "import click"], capture_output=True)
    assert probe.returncode != 0  # really nothing pip-installed
    return python


@pytest.fixture
def installed_plugin(tmp_path) -> Path:
    """The plugin folder as a marketplace install copies it: symlinks followed, no repository."""
    dest = tmp_path / "cache" / "memory-compiler"
    shutil.copytree(PLUGIN, dest, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    assert not (dest / "pipeline").is_symlink()
    return dest


def _plugin_env(tmp_path, plugin: Path, bare_python: Path, **extra) -> dict[str, str]:
    env = {
        "PATH": f"{bare_python.parent}:/usr/bin:/bin",
        "HOME": os.environ["HOME"],
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "CLAUDE_PLUGIN_ROOT": str(plugin),
        "CLAUDE_PLUGIN_DATA": str(tmp_path / "plugin-data"),
        "MEMC_BACKEND": "extractive",
        "MEMC_TZ": "UTC",
    }
    env.update(extra)
    return env


def _hook(command: str, payload: dict, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=json.dumps(payload),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _commands() -> dict[str, str]:
    hooks = _json(PLUGIN / "hooks" / "hooks.json")["hooks"]
    return {event: groups[0]["hooks"][0]["command"] for event, groups in hooks.items()}


def test_session_end_from_the_installed_plugin_queues_a_job_with_nothing_installed(
    tmp_path, installed_plugin, bare_python
):
    env = _plugin_env(tmp_path, installed_plugin, bare_python, MEMC_PLUGIN_BOOTSTRAP="0")
    project = tmp_path / "acme-api"
    project.mkdir()
    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(SAMPLE.read_bytes())
    payload = {"session_id": "p1", "transcript_path": str(transcript), "cwd": str(project)}
    end = {**payload, "hook_event_name": "SessionEnd"}
    done = _hook(_commands()["SessionEnd"], end, env, project)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    memory = Path(env["HOME"]) / "memory"  # initialised on first use
    [job] = list((memory / ".memc" / "inbox").glob("*.json"))
    envelope = json.loads(job.read_text())
    assert envelope["session_id"] == "p1" and envelope["end"] == len(SAMPLE.read_bytes())
    log = (memory / ".memc" / "logs" / "hooks.log").read_text()
    assert "queued" in log and "drain=off" in log  # no drain before the dependencies exist
    assert not list(project.iterdir())  # nothing written into the project folder

    # the next session is told in one line that captured sessions are waiting
    start = _hook(
        _commands()["SessionStart"], {**payload, "hook_event_name": "SessionStart"}, env, project
    )
    assert start.returncode == 0, start.stderr
    doc = json.loads(start.stdout)
    line = doc["systemMessage"]
    assert "\n" not in line and "1 captured session(s) wait in the inbox" in line
    assert "bootstrap" in line  # says how to install them
    assert doc["hookSpecificOutput"]["additionalContext"].startswith(line)

    # an event this version does not know exits 0 and prints nothing
    other = _hook(_commands()["UserPromptSubmit"], {**payload, "prompt": "hi"}, env, project)
    assert other.returncode == 0 and other.stdout == ""

    # the `recent` slash command works before the venv too (stdlib only)
    recent = subprocess.run(
        [str(bare_python), str(installed_plugin / "bin" / "memc"), "recent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recent.returncode == 0 and "No entries yet" in recent.stdout


def test_a_command_that_needs_the_dependencies_says_they_are_missing(
    tmp_path, installed_plugin, bare_python
):
    env = _plugin_env(tmp_path, installed_plugin, bare_python, MEMC_PLUGIN_BOOTSTRAP="0")
    done = subprocess.run(
        [str(bare_python), str(installed_plugin / "bin" / "memc"), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "bootstrap" in done.stderr and "Traceback" not in done.stderr


def test_the_background_installer_runs_detached_and_a_failure_is_reported(
    tmp_path, installed_plugin, bare_python
):
    env = _plugin_env(tmp_path, installed_plugin, bare_python)
    # the venv's place is taken by a file: the installer's first step fails, fast and offline
    (tmp_path / "plugin-data").mkdir()
    (tmp_path / "plugin-data" / "venv").write_text("not a folder")
    project = tmp_path / "proj"
    project.mkdir()
    payload = {"session_id": "p2", "transcript_path": "", "cwd": str(project)}
    start = _hook(_commands()["SessionStart"], payload, env, project)
    assert start.returncode == 0
    assert (
        "installing its dependencies in the background" in json.loads(start.stdout)["systemMessage"]
    )
    failed = tmp_path / "plugin-data" / "bootstrap-failed"
    deadline = time.monotonic() + 120  # the detached installer: poll for its result
    while not failed.exists():
        assert time.monotonic() < deadline, "the background installer never finished"
        time.sleep(0.1)
    assert "exited" in failed.read_text()
    again = _hook(_commands()["SessionStart"], payload, env, project)
    message = json.loads(again.stdout)["systemMessage"]
    assert "could not install its dependencies" in message
    assert str(tmp_path / "plugin-data" / "bootstrap.log") in message


@pytest.mark.slow
def test_once_the_venv_is_ready_hooks_run_under_it_and_start_the_drain(
    tmp_path, installed_plugin, bare_python
):
    (installed_plugin / "requirements.txt").write_text("# nothing to install in this test\n")
    env = _plugin_env(tmp_path, installed_plugin, bare_python)
    launcher = installed_plugin / "bin" / "memc"
    boot = subprocess.run(
        [str(bare_python), str(launcher), "bootstrap"], env=env, capture_output=True, text=True
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    venv_python = tmp_path / "plugin-data" / "venv" / "bin" / "python"
    assert venv_python.exists()
    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(SAMPLE.read_bytes())
    payload = {"session_id": "p3", "transcript_path": str(transcript), "cwd": str(tmp_path)}
    done = _hook(_commands()["SessionEnd"], payload, env, tmp_path)
    assert done.returncode == 0, done.stderr
    log = (Path(env["HOME"]) / "memory" / ".memc" / "logs" / "hooks.log").read_text()
    # the drain is no longer held back: the hook ran in the venv and started it there
    assert re.search(r"queued .*drain=(spawned|watcher)", log), log
    assert "drain=off" not in log
