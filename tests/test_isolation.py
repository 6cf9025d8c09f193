"""The test harness itself: HOME is a temp folder, and a write to the real home fails.

Every other test relies on this (conftest's ``_isolate_env``, tests/homeguard.py), so it is proved
here by trying, for each kind of write, and checking that nothing reached the real home.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.homeguard import HOME_GUARD, REAL_HOMES

pytestmark = pytest.mark.skipif(not REAL_HOMES, reason="no real home directory to protect")


@pytest.fixture
def probe():
    """A path in the real home that must never come to exist."""
    path = Path(REAL_HOMES[0]) / f".memc-test-probe-{uuid.uuid4().hex}"
    yield path
    assert not os.path.lexists(path), f"{path} was created in the real home"
    HOME_GUARD.refused.clear()  # the refusals this test provoked on purpose


def test_home_is_a_temp_folder_not_the_real_one():
    home = Path.home().resolve()
    assert str(home) not in REAL_HOMES
    assert Path(os.path.expanduser("~")) == Path(os.environ["HOME"])
    (home / ".claude").mkdir()  # the temp home is writable
    (home / ".claude" / "settings.json").write_text("{}")


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_text("x"),
        lambda p: open(p, "a").close(),
        lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY)),
        lambda p: p.mkdir(),
        lambda p: p.touch(),
        lambda p: sqlite3.connect(p).close(),
        lambda p: shutil.copyfile(__file__, p),
        lambda p: p.symlink_to(__file__),
    ],
    ids=["write_text", "open-append", "os.open", "mkdir", "touch", "sqlite", "copy", "symlink"],
)
def test_a_write_to_the_real_home_raises(probe, write):
    with pytest.raises(PermissionError, match="real home"):
        write(probe)
    assert HOME_GUARD.refused and HOME_GUARD.refused[-1][1] == str(probe)


def test_moving_a_file_into_the_real_home_raises(probe, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(PermissionError):
        os.replace(src, probe)
    assert src.exists()


def test_a_swallowed_refusal_still_fails_the_test(probe):
    try:
        probe.write_text("x")
    except OSError:
        pass  # what a hook that never raises would do
    assert HOME_GUARD.refused == [("open", str(probe))]  # so conftest's teardown would fail it


def test_reading_the_real_home_is_allowed():
    assert os.path.isdir(REAL_HOMES[0])
    os.listdir(REAL_HOMES[0])


def test_child_processes_get_the_temp_home():
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.path.expanduser('~'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out == os.environ["HOME"] and out not in REAL_HOMES
