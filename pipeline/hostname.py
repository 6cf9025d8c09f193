"""The name of this machine as memc writes it: into daily entry markers (``host=``) and sync.

Several machines (or teammates) share one data root over git; each daily entry records the host
that distilled it, so every machine can tell its own entries from the ones a sync brought in.

Invariants:
- ``MEMC_HOST`` overrides the system host name; either is reduced to a DNS-label-like token
  (lowercase ``a-z``, digits and ``-``, at most 63 characters, the first label of a dotted name),
  so it is safe inside an HTML comment, a file name and a git ref.
- Never empty: a name with nothing usable left becomes ``host``.
- The system name is pinned per data root (``.memc/host``, written by ``pin`` when the root is
  initialised or first writes an entry): a laptop whose host name changes with the network
  (macOS, DHCP) keeps compiling its own earlier entries. ``MEMC_HOST`` and the ``host`` setting
  still override it; delete the file to take the system name again.
- Stdlib only and cheap (``os.uname`` on POSIX, no socket import).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
FALLBACK = "host"


def clean(name: str) -> str:
    """``name`` as a host token: first dotted label, lowercase, ``[a-z0-9-]``, bounded."""
    label = name.strip().split(".", 1)[0].lower()
    token = _NOT_LABEL.sub("-", label).strip("-")[:63].strip("-")
    return token or FALLBACK


def host_name(environ: Mapping[str, str] | None = None) -> str:
    """This machine's host token: ``MEMC_HOST`` when set and non-blank, else the system's."""
    env = os.environ if environ is None else environ
    override = env.get("MEMC_HOST", "").strip()
    if override:
        return clean(override)
    try:
        # What socket.gethostname() returns on POSIX, without importing socket (it costs more
        # than the call, and `memc status` asks)
        return clean(os.uname().nodename)
    except AttributeError:  # no os.uname (Windows)
        import socket

        try:
            return clean(socket.gethostname())
        except OSError:
            return FALLBACK


def _pin_file(memc_dir: Path) -> Path:
    return memc_dir / "host"


def pinned(memc_dir: Path) -> str:
    """The root's pinned host token (``.memc/host``), else the system's (not written here)."""
    try:
        text = _pin_file(memc_dir).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return clean(text) if text else host_name({})


def pin(memc_dir: Path) -> str:
    """Pin the system's host token for this root unless one is pinned already; returns it.
    Best effort: a root whose .memc cannot be written keeps using the system name."""
    current = pinned(memc_dir)
    path = _pin_file(memc_dir)
    if not path.exists() and memc_dir.is_dir():
        try:
            from pipeline.fsutil import atomic_write

            atomic_write(path, current + "\n")
        except OSError:
            pass
    return current


def repin(memc_dir: Path, token: str) -> None:
    """Pin ``token`` (cleaned) as this root's host name, replacing any pinned one."""
    from pipeline.fsutil import atomic_write

    atomic_write(_pin_file(memc_dir), clean(token) + "\n")
