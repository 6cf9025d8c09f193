"""What `memc status` and `memc doctor` say about sync (``pipeline.sync``).

Invariants:
- ``summary`` reads only local state: the remembered remote, the local tracking ref of the
  remote branch (as the last fetch left it: no network), state.db's last-sync record and the
  entries other hosts have not compiled yet. A root that never synced pays one state.db query.
- ``doctor_check`` may reach the network (``git ls-remote``, time-limited) and writes nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline import pending, state, versioning
from pipeline.errors import MemcError

LAST_SYNC_KEY = "last_sync"  # kv: {"at", "status", "message"} of the last `memc sync`


def shown_url(url: str) -> str:
    """``url`` without a password or token in it (for messages and status)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def last_sync(conn) -> dict[str, Any] | None:
    try:
        data = json.loads(state.kv_get(conn, LAST_SYNC_KEY) or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def summary(settings, conn) -> dict[str, Any]:
    """{remote, ahead, behind, last: {at, status, message}, waiting: {host: n}} (keys only when
    known); {} when the root never synced and holds no other host's entries."""
    out: dict[str, Any] = {}
    waiting = pending.waiting_by_host(settings, conn)
    if waiting:
        out["waiting"] = waiting
    last = last_sync(conn)
    if last:
        out["last"] = last
    if not settings.sync_remote or not versioning.enabled(settings):
        return out
    out["remote"] = shown_url(settings.sync_remote)
    try:
        counts = _ahead_behind(settings)
    except (MemcError, OSError):
        counts = None
    if counts is not None:
        out["ahead"], out["behind"] = counts
    return out


def _ahead_behind(settings) -> tuple[int, int] | None:
    from pipeline import vcsremote

    root = Path(settings.root)
    branch = vcsremote.branch(root)
    if branch is None:
        return None
    origin = vcsremote.remote_url(root, "origin")
    name = "origin" if origin == settings.sync_remote else "memc"
    return vcsremote.ahead_behind(root, vcsremote.tracking_ref(name, branch))


def lines(info: dict[str, Any], now: float) -> list[str]:
    """Human lines for `memc status`."""
    from pipeline.status import ago

    out: list[str] = []
    if "remote" in info:
        where = f"sync: {info['remote']}"
        if "ahead" in info:
            where += f"; {info['ahead']} commit(s) to push, {info['behind']} to pull (as of the "
            where += "last fetch)"
        out.append(where)
    last = info.get("last")
    if last:
        when = ago(float(last.get("at") or 0) or None, now)
        out.append(f"  last sync: {when}, {last.get('status')}: {last.get('message', '')[:160]}")
        if last.get("status") == "failed":
            out.append("  -> fix the cause, then `memc sync` (nothing local was lost)")
    for host, n in sorted(info.get("waiting", {}).items()):
        out.append(f"  {n} entr{'y' if n == 1 else 'ies'} waiting for {host} to compile")
    return out


def check(settings):
    """``doctor_check`` as `memc doctor`'s ``Check`` named ``sync`` (a warning at worst)."""
    from pipeline.doctor import OK, WARN, Check

    status, detail, fix = doctor_check(settings)
    return Check("sync", OK if status == "ok" else WARN, detail, fix)


def doctor_check(settings) -> tuple[str, str, str]:
    """(ok|warn, detail, fix): a configured remote that cannot be reached, or a daily-log merge
    driver that is not registered for this installation."""
    if not settings.sync_remote:
        return "ok", "not shared (run `memc sync --remote URL` to share this root)", ""
    if not versioning.enabled(settings):
        return (
            "warn",
            f"sync_remote is set but the root is not versioned ({versioning.why_not(settings)})",
            "run `memc init` with git installed (or remove sync_remote from .memc/config.toml)",
        )
    from pipeline import dailymerge, vcsremote

    root = Path(settings.root)
    shown = shown_url(settings.sync_remote)
    if not dailymerge.registered(root):
        return (
            "warn",
            "the daily-log merge driver is not registered for this installation: a sync could "
            "merge daily logs line by line",
            "run `memc init` (or `memc sync`, which registers it first)",
        )
    started = time.monotonic()
    try:
        vcsremote.ls_remote(root, settings.sync_remote)
    except MemcError as exc:
        return (
            "warn",
            f"the sync remote {shown} cannot be reached: {exc}",
            ("check the URL, your network and credentials; `memc sync --remote URL` changes it"),
        )
    took = time.monotonic() - started
    return "ok", f"shared with {shown} (reachable, {took:.1f} s); merge driver registered", ""
