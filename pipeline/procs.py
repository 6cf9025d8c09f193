"""Is the process that owns a claim still running? (the inbox's crash recovery asks this)

A pid alone is not enough: pids are reused, so on Linux the kernel's start time of the process
(from /proc) is recorded with a claim and compared. A zombie (killed, not yet reaped) counts as
dead. On Windows ``os.kill(pid, 0)`` would terminate the process, so the kernel is asked through
OpenProcess/GetExitCodeProcess instead. Stdlib only.
"""

from __future__ import annotations

import os
import sys


def proc_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from its first owner."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
        return raw.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only

    def _alive_windows(pid: int) -> bool:
        """os.kill(pid, 0) would TERMINATE the process on Windows; ask the kernel instead."""
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)


def pid_alive(pid: int, started: str = "") -> bool:
    """True while ``pid`` runs (and, when ``started`` is known, is still the same process)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()[0] == "Z":
                return False  # killed, not yet reaped by its parent
    except (OSError, IndexError):
        pass
    return not (started and proc_start(pid) not in ("", started))
