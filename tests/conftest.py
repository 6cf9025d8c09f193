"""Shared fixtures. Every test runs with HOME pointed at a temp folder and no MEMC_*/XDG_*
settings from the developer's environment, so no test can touch the real home directory, a real
knowledge base or (through the claude backend's CLI discovery) the network.

Redirecting HOME is not enough on its own (``pwd``, a path computed before the redirect, a
hard-coded ``/root``), so writes to the real home also *fail*: tests/homeguard.py's audit hook
refuses them with PermissionError while a test runs, and the test fails at teardown even if the
code under test swallowed the error. Shared helpers live in tests/helpers.py, not here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.homeguard import HOME_GUARD, REPO

sys.addaudithook(HOME_GUARD)  # cannot be removed; inert unless a test is running


@pytest.fixture(autouse=True)
def _isolate_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    # the user config (remembered root) and the plugin's data live under these
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for key in list(os.environ):
        if key.startswith(("MEMC_", "CLAUDE_CODE_", "CLAUDE_PLUGIN_")) or key in (
            "ANTHROPIC_API_KEY",
            "CLAUDE_CONFIG_DIR",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
        ):
            monkeypatch.delenv(key, raising=False)
    # The claude backend is opt-in per test (with the fake CLI); everything else is offline.
    monkeypatch.setenv("MEMC_BACKEND", "extractive")
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    monkeypatch.setenv("MEMC_TZ", "UTC")
    # Real git in tests: no user or system config, a fixed identity for "the user".
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in (("NAME", "Test User"), ("EMAIL", "user@example.test")):
        monkeypatch.setenv(f"GIT_AUTHOR_{key}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{key}", value)
    HOME_GUARD.refused.clear()
    HOME_GUARD.active = True
    try:
        yield
    finally:
        HOME_GUARD.active = False
    refused, HOME_GUARD.refused[:] = list(HOME_GUARD.refused), []
    assert refused == [], f"the test tried to write to the real home directory: {refused}"


@pytest.fixture
def root(tmp_path) -> Path:
    """An initialised data root."""
    from pipeline.config import load_settings
    from pipeline.setup import init_root

    data_root = tmp_path / "root"
    data_root.mkdir()
    init_root(load_settings(data_root))
    return data_root


@pytest.fixture
def settings(root):
    from pipeline.config import load_settings

    return load_settings(root)


@pytest.fixture
def memc_env(root) -> dict[str, str]:
    """Environment for running `python -m pipeline` as a real subprocess against `root`."""
    env = dict(os.environ.items())
    env["MEMC_ROOT"] = str(root)
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def fake_claude(tmp_path, monkeypatch):
    """The fake `claude` CLI (tests/fake_claude.py) wired in: MEMC_BACKEND=claude, MEMC_CLAUDE_CLI
    set, plus its script/log/default env. Use `.script([...])`, `.default(reply)`, `.prompts()`,
    `.cli_path`. Child processes (drains) inherit it through the environment."""
    from tests.fake_claude import FakeClaude

    fake = FakeClaude(tmp_path / "fake-claude")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    return fake
