"""schedule: rendered content per system, idempotent install, never the real crontab or HOME."""

from __future__ import annotations

import plistlib
import shlex
import stat
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.schedule import cron_line, install, merge_crontab, render

PROGRAM = ["/opt/venv/bin/memc"]


@pytest.fixture
def fake_crontab(tmp_path, monkeypatch) -> Path:
    """A `crontab` stand-in keeping its table in a file; `-l` with no table fails like cron."""
    table = tmp_path / "crontab.txt"
    script = tmp_path / "crontab"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"t = pathlib.Path({str(table)!r})\n"
        "if sys.argv[1] == '-l':\n"
        "    if not t.exists():\n"
        "        sys.stderr.write('no crontab for tester\\n'); sys.exit(1)\n"
        "    sys.stdout.write(t.read_text())\n"
        "elif sys.argv[1] == '-':\n"
        "    t.write_text(sys.stdin.read())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("MEMC_CRONTAB_BIN", str(script))
    return table


def test_cron_line_content(tmp_path):
    root = tmp_path / "kb"
    line = cron_line(root, PROGRAM, 15)
    assert line.startswith("*/15 * * * * cd ")
    assert f"{PROGRAM[0]} --root {root} drain;" in line
    assert f"{PROGRAM[0]} --root {root} compile --if-stale;" in line
    assert f">> {root}/.memc/logs/cron.log 2>&1" in line
    assert line.endswith(f"# memc-schedule root={root}")
    assert cron_line(root, PROGRAM, 120).startswith("0 */2 * * * ")
    assert cron_line(root, PROGRAM, 1440).startswith("0 0 * * * ")
    # cron turns % into a newline; a root with % must be escaped
    assert "\\%" in cron_line(tmp_path / "100%", PROGRAM, 5)


def test_cron_line_runs_in_a_real_shell(tmp_path):
    """The command part is valid sh: both steps run, even when drain fails."""
    root = tmp_path / "my root"
    (root / ".memc" / "logs").mkdir(parents=True)
    fake = tmp_path / "fake-memc"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(tmp_path / "calls"))}\n'
        '[ "$3" = drain ] && exit 1\nexit 0\n'
    )
    fake.chmod(0o755)
    command = cron_line(root, [str(fake)], 15).split(" ", 5)[5]
    import subprocess

    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"--root {root} drain", f"--root {root} compile --if-stale"]


@pytest.mark.parametrize("every", [0, 61, 90, 2000])
def test_bad_interval_is_a_config_error(tmp_path, every):
    with pytest.raises(ConfigError):
        render("cron", tmp_path, PROGRAM, every_min=every)


def test_systemd_units(tmp_path):
    home = tmp_path / "home"
    sched = render("systemd", tmp_path / "kb", PROGRAM, every_min=30, home=home)
    service, timer = sched.files
    assert service.path.parent == home / ".config" / "systemd" / "user"
    assert service.path.suffix == ".service" and timer.path.suffix == ".timer"
    assert service.path.stem == timer.path.stem
    assert "Type=oneshot" in service.text
    assert f"ExecStart=-{PROGRAM[0]} --root {tmp_path / 'kb'} drain" in service.text
    assert f"ExecStart={PROGRAM[0]} --root {tmp_path / 'kb'} compile --if-stale" in service.text
    assert "OnUnitActiveSec=30min" in timer.text and "WantedBy=timers.target" in timer.text
    assert f"enable --now {timer.path.name}" in sched.enable_hint


def test_systemd_quotes_spaces_and_percent(tmp_path):
    sched = render("systemd", tmp_path / "a b%", PROGRAM, home=tmp_path)
    assert f'"{tmp_path}/a b%%"' in sched.files[0].text


def test_launchd_plist(tmp_path):
    home = tmp_path / "home"
    sched = render("launchd", tmp_path / "kb", PROGRAM, every_min=10, home=home)
    (plist,) = sched.files
    assert plist.path.parent == home / "Library" / "LaunchAgents"
    doc = plistlib.loads(plist.text.encode())
    assert doc["Label"] == plist.path.stem
    assert doc["StartInterval"] == 600
    assert doc["ProgramArguments"][:2] == ["/bin/sh", "-c"]
    assert "compile --if-stale" in doc["ProgramArguments"][2]
    assert doc["StandardOutPath"].endswith(".memc/logs/launchd.log")


def test_two_roots_get_distinct_units(tmp_path):
    a = render("systemd", tmp_path / "a", PROGRAM, home=tmp_path)
    b = render("systemd", tmp_path / "b", PROGRAM, home=tmp_path)
    assert a.files[0].path != b.files[0].path


def test_merge_crontab_keeps_other_lines():
    root = Path("/kb")
    line = cron_line(root, PROGRAM)
    other_root = cron_line(Path("/other"), PROGRAM)
    current = f"MAILTO=me\n0 1 * * * backup.sh\n{other_root}\n"
    merged = merge_crontab(current, line, root)
    assert merged == current + line + "\n"
    assert merge_crontab(merged, line, root) == merged


def test_cron_install_is_idempotent(fake_crontab, root, capsys):
    fake_crontab.write_text("0 1 * * * backup.sh\n")
    assert main(["--root", str(root), "schedule", "cron", "--install", "--every", "20"]) == 0
    table = fake_crontab.read_text()
    assert table.startswith("0 1 * * * backup.sh\n*/20 * * * * ")
    assert main(["--root", str(root), "schedule", "cron", "--install", "--every", "20"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert fake_crontab.read_text() == table
    assert main(["--root", str(root), "schedule", "cron", "--install", "--every", "5"]) == 0
    lines = fake_crontab.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("*/5 ")


def test_cron_install_with_no_crontab_yet(fake_crontab, root):
    assert not fake_crontab.exists()
    assert main(["--root", str(root), "schedule", "cron", "--install"]) == 0
    assert fake_crontab.read_text().count("memc-schedule") == 1


def test_missing_crontab_binary_says_what_to_do(tmp_path, monkeypatch, root, capsys):
    monkeypatch.setenv("MEMC_CRONTAB_BIN", str(tmp_path / "nope"))
    assert main(["--root", str(root), "schedule", "cron", "--install"]) == 2
    assert "systemd" in capsys.readouterr().err


def test_print_only_by_default(root, capsys):
    home = Path.home()
    assert main(["--root", str(root), "schedule", "systemd"]) == 0
    captured = capsys.readouterr()
    assert "[Timer]" in captured.out and "--install" in captured.err
    assert not (home / ".config").exists()


def test_systemd_and_launchd_install_write_under_home_idempotently(root):
    home = Path.home()
    for system in ("systemd", "launchd"):
        sched = render(system, root, PROGRAM, home=home)
        first = install(sched, root)
        assert first.changed and all(p.is_file() for p in first.written)
        assert not install(sched, root).changed
    assert list((home / ".config" / "systemd" / "user").glob("memc-*.timer"))
    assert list((home / "Library" / "LaunchAgents").glob("com.memory-compiler.*.plist"))


# ---------------------------------------------------------------- CLI: schedule


def test_schedule_cron_hint_is_said_once(root, capsys):
    from pipeline.cli import main

    assert main(["--root", str(root), "schedule", "cron"]) == 0
    err = capsys.readouterr().err
    assert err.count("memc schedule cron --install") == 1, err
