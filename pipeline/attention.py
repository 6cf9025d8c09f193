"""What needs the user's attention, in one short line for SessionStart.

A broken setup is reported where the user is: at the start of each session. ``notices`` returns
every problem found, most urgent first, each with the command that fixes it:

- state.db is damaged (read from the one query this module always makes: only its failure is
  looked into), or was rebuilt from a damaged copy in the last days (``pipeline.staterecovery``:
  what came back and what was lost, until that copy is deleted);
- the configuration does not load (``config.toml: backend ...``: the file and the key);
- the drain's dependencies are missing or still installing (the plugin says which through
  ``MEMC_PLUGIN_DEPS``), so captured sessions wait in the inbox;
- jobs failed for good (``memc status`` shows why, ``memc retry`` re-queues them);
- the circuit breaker is open (repeated model failures; ``memc doctor`` checks the CLI);
- Claude Code's user settings run memc hooks for a different data root than this one.

``summary`` folds them into one line (the first, plus how many more). Cheap and stdlib only
(the SessionStart hook calls it): a folder listing, one read-only SQLite query, one small JSON
file. Never raises: a check that cannot run is skipped.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline import state
from pipeline.paths import Paths

DRAIN_IMPORTS = ("click", "tenacity", "yaml", "jsonschema", "claude_agent_sdk")


def _count(folder: Path, suffix: str = ".json", skip: str = ".error.json") -> int:
    try:
        return sum(
            1 for e in os.scandir(folder) if e.name.endswith(suffix) and not e.name.endswith(skip)
        )
    except OSError:
        return 0


def _deps_missing() -> str | None:
    import importlib.util

    for name in DRAIN_IMPORTS:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _state_facts(paths: Paths) -> tuple[dict[str, str], str | None]:
    """(the kv values this module reads, what is wrong with state.db or None): one read-only
    query, the one SessionStart always made; damage is only looked into when it fails."""
    db = paths.state_db
    if not db.is_file():
        return {}, None
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=0.2)
        try:
            sql = "SELECT key, value FROM kv WHERE key IN ('breaker_open_until', ?)"
            rows = conn.execute(sql, (state.RECOVERY_KEY,)).fetchall()
        finally:
            conn.close()
        return {str(k): str(v) for k, v in rows}, None
    except sqlite3.Error as exc:
        emptied = "file is not a database (0 bytes: it was emptied)"
        return {}, state.damage(exc) or (emptied if state.emptied(db) else None)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _recovered(raw: str | None, now: float) -> str | None:
    """The notice for a recovery of the last NOTICE_DAYS whose damaged copy is still kept."""
    import json

    from pipeline.staterecovery import NOTICE_DAYS, describe

    try:
        record = json.loads(raw) if raw else None
        if not isinstance(record, dict) or now - float(record["at"]) > NOTICE_DAYS * 86400:
            return None
        if not os.path.exists(str(record["moved_to"])):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return (
        f"{describe(record)}. Nothing else to do: delete the damaged copy once you no longer "
        "need it (this note then stops)"
    )


def _other_root(root: Path, env: Mapping[str, str]) -> str | None:
    from pipeline.install import installed_hooks, settings_path

    try:
        path = settings_path("user")
        roots = {h.root for h in installed_hooks(path) if h.root}
    except Exception:
        return None
    others = sorted(r for r in roots if os.path.abspath(r) != str(root))
    return f"{others[0]} (in {path})" if others else None


def notices(
    paths: Paths,
    *,
    config_error: str | None = None,
    env: Mapping[str, str] | None = None,
    now: float | None = None,
) -> list[str]:
    env = os.environ if env is None else env
    now = time.time() if now is None else now
    out: list[str] = []
    if config_error:
        out.append(
            f"configuration error, {config_error}. Capture still works; fix it, then "
            "`memc doctor` checks it"
        )
    waiting = _count(paths.inbox)
    plugin = env.get("MEMC_PLUGIN_DEPS", "")
    install = f"`python3 {env.get('MEMC_PLUGIN_LAUNCHER') or '<plugin>/bin/memc'} bootstrap`"
    if plugin == "failed":
        out.append(
            f"the plugin could not install its dependencies (log: {env.get('MEMC_PLUGIN_LOG')}); "
            f"{waiting} captured session(s) wait in the inbox. Retry and see why: {install}"
        )
    elif plugin == "disabled":
        out.append(
            f"the plugin's dependencies are not installed (MEMC_PLUGIN_BOOTSTRAP=0); {waiting} "
            f"captured session(s) wait in the inbox. Install them: {install}"
        )
    elif plugin in ("installing", "missing"):
        out.append(
            f"the plugin is installing its dependencies in the background; {waiting} captured "
            "session(s) wait in the inbox until then"
        )
    elif not plugin and waiting and not env.get("MEMC_WATCHER") and (name := _deps_missing()):
        out.append(
            f"{waiting} captured session(s) wait in the inbox: the drain needs the Python "
            f"package {name!r}, missing here; install memory-compiler with its dependencies "
            "(`pipx install memory-compiler` or `pip install .`)"
        )
    facts, damaged = _state_facts(paths)
    if damaged:
        out.insert(
            0,
            f"state.db is damaged ({damaged}). Capture still spools: the next capture (or "
            "`memc doctor --fix`, now) sets the file aside, never deleting it, and rebuilds it; "
            "`memc doctor` then says what was lost",
        )
    elif recovered := _recovered(facts.get(state.RECOVERY_KEY), now):
        out.append(recovered)
    failed = _count(paths.failed)
    if failed:
        out.append(f"{failed} job(s) failed; `memc status` shows why, `memc retry` re-queues them")
    until = _float(facts.get("breaker_open_until"))
    if until and until > now:
        clock = time.strftime("%H:%M", time.localtime(until))
        out.append(
            f"model calls paused until {clock} after repeated failures (circuit breaker); "
            "`memc doctor` checks the Claude CLI and credentials"
        )
    other = _other_root(paths.root, env)
    if other:
        out.append(
            f"Claude Code's hooks also capture into another root, {other}; run "
            f"`memc --root {paths.root} install-hooks` (or `memc setup`) to point them here"
        )
    return out


def summary(items: list[str]) -> str:
    """One line: ``memc: <first>`` plus ``(+N more: memc doctor)``; "" when all is well."""
    if not items:
        return ""
    more = f" (+{len(items) - 1} more: `memc status`)" if len(items) > 1 else ""
    return f"memc: {items[0]}{more}"
