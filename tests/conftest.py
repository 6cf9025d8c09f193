"""Shared fixtures. Every test runs with HOME (and the XDG folders) pointed at a temp folder and
no MEMC_* or Claude settings from the developer's environment, so no test can touch the real
home directory, a real knowledge base or (through the claude backend's CLI discovery) the network.

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

from tests.homeguard import HOME_GUARD, REPO, guarding_home, isolate_environment

sys.addaudithook(HOME_GUARD)  # cannot be removed; inert unless a test is running


@pytest.fixture(autouse=True)
def _isolate_env(tmp_path_factory, monkeypatch):
    isolate_environment(monkeypatch, tmp_path_factory.mktemp("home"))
    with guarding_home():
        yield


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
