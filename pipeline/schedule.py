"""`memc schedule cron|systemd|launchd`: a periodic `drain` + `compile --if-stale` (+ `sync`).

Rendering is pure (``render``); only ``install`` writes, and only what the user asked for:
- cron: the user's crontab, read with ``crontab -l`` and written with ``crontab -`` (the program
  is ``$MEMC_CRONTAB_BIN`` when set, so tests never touch the real one). Our line ends with a
  ``# memc-schedule root=ROOT`` marker; installing strips lines carrying the marker for this
  root and appends the new one, so running it again changes nothing. Lines of other roots and
  the user's own lines are kept in order.
- systemd: ``~/.config/systemd/user/memc-<key>.service`` + ``.timer``; prints the
  ``systemctl --user`` command to enable it (nothing is started for the user).
- launchd: ``~/Library/LaunchAgents/com.memory-compiler.<key>.plist``; prints the load command.
``<key>`` is a short hash of the root, so several data roots can each have a schedule.

Each run does the drain first and compiles even when the drain reports a failed job (exit 1):
one bad job must not stop the knowledge base from being compiled. With ``sync`` (opt-in:
``schedule --sync`` or ``schedule_sync = true``) it then runs `memc sync`, whatever the compile
did, so new daily entries are shared even when a compile fails.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.fsutil import atomic_write
from pipeline.program import memc_argv, memc_command

SYSTEMS = ("cron", "systemd", "launchd")
CRON_MARKER = "# memc-schedule root="


@dataclass(frozen=True)
class ScheduleFile:
    path: Path
    text: str


@dataclass(frozen=True)
class Schedule:
    system: str
    every_min: int
    files: tuple[ScheduleFile, ...]  # empty for cron
    cron_line: str = ""
    enable_hint: str = ""


@dataclass(frozen=True)
class InstallOutcome:
    system: str
    changed: bool
    written: tuple[Path, ...]
    message: str


def root_key(root: Path) -> str:
    return hashlib.sha256(str(root).encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _check_every(every_min: int) -> None:
    if not (1 <= every_min <= 59 or (every_min % 60 == 0 and 60 <= every_min <= 1440)):
        raise ConfigError(
            f"--every {every_min}: use 1 to 59 minutes, "
            "or a whole number of hours (60, 120, ... 1440)"
        )


def shell_script(root: Path, program: list[str], sync: bool = False) -> str:
    """The POSIX shell command one run executes (drain, then compile --if-stale, then sync)."""
    drain = memc_command(root, "drain", program=program)
    compile_ = memc_command(root, "compile", "--if-stale", program=program)
    tail = f" {memc_command(root, 'sync', program=program)};" if sync else ""
    return f"cd {shlex.quote(str(root))} && {{ {drain}; {compile_};{tail} }}"


def cron_line(root: Path, program: list[str], every_min: int = 15, sync: bool = False) -> str:
    _check_every(every_min)
    when = f"*/{every_min} * * * *" if every_min < 60 else f"0 */{every_min // 60} * * *"
    if every_min == 1440:
        when = "0 0 * * *"
    log = shlex.quote(str(root / ".memc" / "logs" / "cron.log"))
    command = f"{shell_script(root, program, sync)} >> {log} 2>&1"
    # cron turns an unescaped % into a newline.
    command = command.replace("%", "\\%")
    return f"{when} {command} {_cron_marker(root)}"


def _cron_marker(root: Path) -> str:
    return f"{CRON_MARKER}{root}".replace("%", "\\%")


def _systemd_quote(arg: str) -> str:
    arg = arg.replace("%", "%%")
    if any(c.isspace() for c in arg) or '"' in arg or "\\" in arg:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def _systemd_line(argv: list[str]) -> str:
    return " ".join(_systemd_quote(a) for a in argv)


def _systemd_units(
    root: Path, program: list[str], every_min: int, unit_dir: Path, sync: bool = False
) -> tuple[ScheduleFile, ...]:
    name = f"memc-{root_key(root)}"
    drain = _systemd_line(memc_argv(root, "drain", program=program))
    compile_ = _systemd_line(memc_argv(root, "compile", "--if-stale", program=program))
    sync_line = _systemd_line(memc_argv(root, "sync", program=program))
    last = f"ExecStart=-{compile_}\nExecStart={sync_line}\n" if sync else f"ExecStart={compile_}\n"
    service = (
        "[Unit]\n"
        f"Description=memory-compiler: drain the inbox and compile stale entries ({root})\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_systemd_quote(str(root))}\n"
        "# '-' keeps going to compile when drain reports a failed job\n"
        f"ExecStart=-{drain}\n" + last
    )
    timer = (
        "[Unit]\n"
        f"Description=memory-compiler schedule every {every_min} min ({root})\n\n"
        "[Timer]\n"
        "OnBootSec=2min\n"
        f"OnUnitActiveSec={every_min}min\n"
        f"Unit={name}.service\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return (
        ScheduleFile(unit_dir / f"{name}.service", service),
        ScheduleFile(unit_dir / f"{name}.timer", timer),
    )


def _launchd_plist(
    root: Path, program: list[str], every_min: int, agent_dir: Path, sync: bool = False
) -> ScheduleFile:
    label = f"com.memory-compiler.{root_key(root)}"
    log = str(root / ".memc" / "logs" / "launchd.log")
    doc = {
        "Label": label,
        "ProgramArguments": ["/bin/sh", "-c", shell_script(root, program, sync)],
        "WorkingDirectory": str(root),
        "StartInterval": every_min * 60,
        "RunAtLoad": True,
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    text = plistlib.dumps(doc, sort_keys=False).decode("utf-8")
    return ScheduleFile(agent_dir / f"{label}.plist", text)


def render(
    system: str,
    root: Path,
    program: list[str],
    *,
    every_min: int = 15,
    home: Path | None = None,
    sync: bool = False,
) -> Schedule:
    """What `schedule SYSTEM` prints (and `--install` writes). Pure: reads and writes nothing."""
    _check_every(every_min)
    home = home or Path.home()
    root = Path(os.path.abspath(root))
    if system == "cron":
        return Schedule(
            system,
            every_min,
            (),
            cron_line(root, program, every_min, sync),
            "Install it with `memc schedule cron --install` (or paste it into `crontab -e`).",
        )
    if system == "systemd":
        files = _systemd_units(
            root, program, every_min, home / ".config" / "systemd" / "user", sync
        )
        timer = files[1].path.name
        return Schedule(
            system,
            every_min,
            files,
            enable_hint=f"systemctl --user daemon-reload && systemctl --user enable --now {timer}",
        )
    if system == "launchd":
        plist = _launchd_plist(root, program, every_min, home / "Library" / "LaunchAgents", sync)
        return Schedule(
            system,
            every_min,
            (plist,),
            enable_hint=f"launchctl load -w {shlex.quote(str(plist.path))}",
        )
    raise ConfigError(f"unknown schedule system {system!r}; use one of {', '.join(SYSTEMS)}")


def crontab_bin() -> str:
    return os.environ.get("MEMC_CRONTAB_BIN") or "crontab"


def merge_crontab(current: str, line: str, root: Path) -> str:
    """``current`` without our lines for ``root``, plus ``line``. Other lines keep their order."""
    marker = _cron_marker(Path(os.path.abspath(root)))
    kept = [ln for ln in current.splitlines() if not ln.rstrip().endswith(marker)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join([*kept, line]) + "\n"


def _read_crontab(binary: str) -> str:
    try:
        proc = subprocess.run([binary, "-l"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ConfigError(
            f"`{binary}` was not found; install cron or use `memc schedule systemd`"
        ) from None
    if proc.returncode != 0:
        if "no crontab" in (proc.stderr or "").lower():
            return ""
        raise ConfigError(
            f"`{binary} -l` failed: {(proc.stderr or '').strip()[:200]}; fix cron and retry"
        )
    return proc.stdout


def install(schedule: Schedule, root: Path) -> InstallOutcome:
    """Write what ``render`` produced. Idempotent: unchanged content is not rewritten."""
    if schedule.system == "cron":
        binary = crontab_bin()
        current = _read_crontab(binary)
        merged = merge_crontab(current, schedule.cron_line, root)
        if merged == current:
            return InstallOutcome(
                "cron", False, (), "crontab already has this schedule; nothing changed."
            )
        proc = subprocess.run(
            [binary, "-"], input=merged, capture_output=True, text=True, timeout=30
        )
        if proc.returncode != 0:
            raise ConfigError(
                f"`{binary} -` refused the new crontab: {(proc.stderr or '').strip()[:200]}"
            )
        return InstallOutcome("cron", True, (), "crontab updated (check with `crontab -l`).")
    written = []
    for item in schedule.files:
        try:
            if item.path.read_text(encoding="utf-8") == item.text:
                continue
        except OSError:
            pass
        atomic_write(item.path, item.text)
        written.append(item.path)
    changed = bool(written)
    message = (
        ("wrote " + ", ".join(str(p) for p in written))
        if changed
        else "already installed; nothing changed."
    )
    return InstallOutcome(
        schedule.system, changed, tuple(written), f"{message}\nNext: {schedule.enable_hint}"
    )
