"""The CLI frame: init, help for every command, the single error handler."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import cli, main
from tests.helpers import REPO


def test_init_is_idempotent(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "init"]) == 0
    first = capsys.readouterr().out
    assert "created .memc/inbox" in first
    assert main(["--root", str(tmp_path), "init"]) == 0
    assert "already initialised" in capsys.readouterr().out
    for sub in ("daily", "knowledge/concepts", "knowledge/qa", ".memc/inbox/failed", ".memc/locks"):
        assert (tmp_path / sub).is_dir()


def _leaf_commands(group, prefix=()):
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, (*prefix, name))
        yield (*prefix, name)


@pytest.mark.parametrize("path", list(_leaf_commands(cli)), ids=lambda p: " ".join(p))
def test_every_command_has_help(path, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: memc" in out and len(out.splitlines()) >= 3


def test_usage_error_exits_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_config_error_exits_2_with_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "nonsense")
    assert main(["--root", str(tmp_path), "init"]) == 2
    err = capsys.readouterr().err
    assert "MEMC_BACKEND" in err and "Traceback" not in err


def test_uninitialised_root_is_refused(tmp_path, capsys):
    commands = [
        c
        for c in (["status"], ["drain"], ["search", "x"], ["lint"], ["compile"])
        if c[0] in cli.commands
    ]
    assert commands, "no command besides init is registered"
    for command in commands:
        assert main(["--root", str(tmp_path / "never"), *command]) == 2, command
        assert "memc init" in capsys.readouterr().err


def test_python_dash_m_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "memc" in out.stdout


def test_machine_state_is_private_to_the_owner(tmp_path):
    assert main(["--root", str(tmp_path), "init"]) == 0
    assert (tmp_path / ".memc").stat().st_mode & 0o777 == 0o700


@pytest.fixture
def failing_command():
    """A real command registered for the test, raising what its argument names."""
    import click

    from pipeline.errors import MemcError

    raised = {
        "bug": lambda: RuntimeError("boom in the command"),
        "known": lambda: MemcError("the thing failed; do X to fix it"),
        "interrupt": KeyboardInterrupt,
    }

    @click.command("test-fail")
    @click.argument("kind")
    def test_fail(kind: str) -> None:
        raise raised[kind]()

    cli.add_command(test_fail)
    yield
    del cli.commands["test-fail"]


def test_crash_exits_3_and_the_traceback_is_in_the_log(tmp_path, failing_command, capsys):
    assert main(["--root", str(tmp_path), "init"]) == 0
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "test-fail", "bug"]) == 3
    err = capsys.readouterr().err
    log = tmp_path / ".memc" / "logs" / "pipeline.log"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "RuntimeError: boom in the command" in err and f"traceback in {log}" in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    assert "crashed (memc " in text  # versions recorded with the traceback


def test_crash_without_a_root_says_how_to_see_the_traceback(tmp_path, failing_command, capsys):
    never = tmp_path / "never"
    assert main(["--root", str(never), "test-fail", "bug"]) == 3
    err = capsys.readouterr().err
    assert "run with -v for the traceback" in err and "Traceback" not in err
    assert main([f"--root={never}", "-v", "test-fail", "bug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "traceback above" in err
    assert not never.exists()  # reporting a crash creates nothing


def test_known_failure_exits_1_and_ctrl_c_exits_130(tmp_path, failing_command, capsys):
    assert main(["--root", str(tmp_path), "test-fail", "known"]) == 1
    err = capsys.readouterr().err
    assert err == "memc: the thing failed; do X to fix it\n"
    assert main(["--root", str(tmp_path), "test-fail", "interrupt"]) == 130
    assert "Interrupted." in capsys.readouterr().err


def test_retry_of_an_unknown_job_exits_2(root, capsys):
    assert main(["--root", str(root), "retry", "no-such-job"]) == 2
    assert "no failed job matches 'no-such-job'" in capsys.readouterr().err
    assert main(["--root", str(root), "retry"]) == 0  # nothing failed: nothing to do, no error


# --- init: "Next: `memc install-hooks`" failed when the root was given with --root -------------


def test_init_next_step_carries_the_root(tmp_path, monkeypatch, capsys):
    target = tmp_path / "memory"
    monkeypatch.chdir(tmp_path)
    assert main(["--root", str(target), "init"]) == 0
    assert f"`memc --root {target} install-hooks`" in capsys.readouterr().out
    monkeypatch.chdir(target)
    assert main(["init"]) == 0
    assert "Next: `memc install-hooks`" in capsys.readouterr().out
