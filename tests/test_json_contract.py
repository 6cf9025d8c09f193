"""DESIGN.md: `--json` prints one JSON document on stdout and nothing else there.

Each command runs as a real process (stdout and stderr kept apart) on a root with content.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = sorted((REPO / "samples").glob("*.jsonl"))[0]

COMMANDS = [
    ["capture", str(SAMPLE), "--session-id", "j1", "--cwd", "/home/dev/acme-api"],
    ["drain"],
    ["compile"],
    ["search", "advisory lock"],
    ["search", "zzzz-no-such-word"],
    ["query", "why advisory locks?"],
    ["query", "zzzz-no-such-word"],
    ["lint", "--structural-only"],
    ["status"],
    ["doctor"],
    ["retry"],
    ["backfill", "--dry-run"],
    ["install-hooks", "--settings", "{tmp}/settings.json"],
    ["uninstall-hooks", "--settings", "{tmp}/settings.json"],
]


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    root = tmp_path_factory.mktemp("jsonroot")
    home = tmp_path_factory.mktemp("jsonhome")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "MEMC_BACKEND": "extractive",
        "MEMC_SPAWN_DRAIN": "0",
        "MEMC_TZ": "UTC",
        "PYTHONPATH": str(REPO),
    }
    subprocess.run(
        [sys.executable, "-m", "pipeline", "--root", str(root), "init"],
        env=env,
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return root, env


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_json_output_is_one_document(populated, command, tmp_path):
    root, env = populated
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "--root", str(root), *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)  # raises if anything else was printed on stdout
    assert isinstance(doc, (dict, list)) and doc
