"""The name of this machine as memc writes it: into daily entry markers (``host=``) and sync.

Several machines (or teammates) share one data root over git; each daily entry records the host
that distilled it, so every machine can tell its own entries from the ones a sync brought in.

Invariants:
- ``MEMC_HOST`` overrides the system host name; either is reduced to a DNS-label-like token
  (lowercase ``a-z``, digits and ``-``, at most 63 characters, the first label of a dotted name),
  so it is safe inside an HTML comment, a file name and a git ref.
- Never empty: a name with nothing usable left becomes ``host``.
- Stdlib only and cheap (``socket.gethostname`` is a single system call).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

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
