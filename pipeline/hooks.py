"""Claude Code hook entry points: `memc [--root D] [-v] hook EVENT`, JSON payload on stdin.

Role: read the payload, capture the transcript delta (and its subagent transcripts), start a
detached drain, leave.

Invariants:
- Always exits 0 and prints nothing on stdout, except context: SessionStart always, and
  UserPromptSubmit only when a memory is relevant to the prompt (``pipeline.recall``).
- Never hangs: stdin is read with a deadline and a size cap (a hook run from a terminal or with
  no stdin reads nothing); capture opens only regular files, non-blocking.
- Does nothing at all when MEMC_INTERNAL is set (the pipeline's own child processes).
- Otherwise writes exactly one line per call to ROOT/.memc/logs/hooks.log. When the root was never
  initialised it writes nothing under it (a hook must not create .memc/ in a random folder) and
  says so in one line on stderr, which Claude Code shows only in its verbose view.
- Payload values are data: the session id is hashed before it names anything on disk.
- A damaged state.db never stops capture: ``state.connect`` sets it aside and rebuilds it, and
  damage a query meets later is healed here, then the capture runs once more.
- A configuration that does not load never stops capture: the delta is spooled with the default
  settings (no drain started) and SessionStart carries one line naming the bad file and key
  (``pipeline.attention``), with whatever else needs attention.
Stdlib only (`pipeline.entry` imports this without click): a test asserts the import graph.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import sys
import time

from pipeline.errors import ConfigError
from pipeline.logs import hook_log
from pipeline.paths import Paths, resolve_root
from pipeline.roots import find_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pipeline.config import Settings
    from pipeline.hookconfig import HookSettings

EVENTS = ("session-start", "session-end", "pre-compact", "stop", "user-prompt-submit")
CAPTURE_EVENTS = ("session-end", "pre-compact", "stop")
STDIN_LIMIT = 1 << 20
STDIN_TIMEOUT_S = 0.5
MAX_FIELD_CHARS = 4096
INJECT_LIMIT = 9000  # the SessionStart document stays under this (DESIGN.md "Read side")
_SAFE_SESSION = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"  # patterns compile on first use (re's cache)
_FIELD = r'"{}"\s*:\s*"((?:[^"\\]|\\.)*)"'


def read_stdin(stream=None, limit: int = STDIN_LIMIT, timeout: float = STDIN_TIMEOUT_S) -> bytes:
    """Up to ``limit`` bytes of stdin, waiting at most ``timeout`` seconds in all. Never raises."""
    stream = sys.stdin if stream is None else stream
    try:
        if stream is None or stream.closed or stream.isatty():
            return b""
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return b""
    if sys.platform == "win32":  # pragma: no cover - select() cannot wait on pipes there
        return _read_with_thread(fd, limit, timeout)
    import select

    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    try:
        while total < limit:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, min(65536, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except (OSError, ValueError):
        pass
    return b"".join(chunks)


def _read_with_thread(fd: int, limit: int, timeout: float) -> bytes:  # pragma: no cover
    import threading

    chunks: list[bytes] = []

    def reader() -> None:
        total = 0
        try:
            while total < limit:
                chunk = os.read(fd, min(65536, limit - total))
                if not chunk:
                    return
                chunks.append(chunk)
                total += len(chunk)
        except OSError:
            return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return b"".join(chunks)


def _repair_backslashes(text: str) -> str:
    """Windows payloads may carry raw backslashes in paths: make each one a literal backslash."""
    return re.sub(r'\\(?!")', r"\\\\", text)


def _salvage(text: str) -> dict[str, str]:
    """The string fields a capture needs, pulled out of a truncated or broken payload."""
    out: dict[str, str] = {}
    for name in ("session_id", "transcript_path", "cwd", "hook_event_name"):
        match = re.search(_FIELD.format(name), text)
        if match:
            try:
                out[name] = json.loads('"' + match.group(1) + '"')
            except ValueError:
                out[name] = match.group(1).replace("\\\\", "\\")
    return out


def parse_payload(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """Tolerant JSON parse of the hook payload: (payload, "") or (None, why not)."""
    if not raw.strip():
        return None, "empty stdin"
    text = raw.decode("utf-8", "replace").lstrip("\ufeff")
    truncated = len(raw) >= STDIN_LIMIT
    for repair in (False, True):
        try:
            data = json.loads(_repair_backslashes(text) if repair else text)
        except (ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            return None, f"payload is a JSON {type(data).__name__}, not an object"
        return data, ""
    salvaged = _salvage(text)
    if "session_id" in salvaged and "transcript_path" in salvaged:
        return salvaged, ""
    return None, "stdin is truncated JSON" if truncated else "stdin is not JSON"


def validate(payload: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """Check the fields a capture uses; return them as strings, or (None, what is wrong)."""
    out: dict[str, str] = {}
    for name, required in (("session_id", True), ("transcript_path", False), ("cwd", False)):
        value = payload.get(name)
        if value is None and not required:
            value = ""
        if not isinstance(value, str):
            return None, f"{name} is {type(value).__name__}, expected a string"
        if len(value) > MAX_FIELD_CHARS or "\x00" in value:
            return None, f"{name} is too long or contains NUL"
        out[name] = value
    if not out["session_id"].strip():
        return None, "session_id is empty"
    return out, ""


def derive_transcript_path(session_id: str, cwd: str, env=None) -> str:
    """Where Claude Code keeps this session's transcript, for payloads that left it empty."""
    env = os.environ if env is None else env
    if not cwd or not re.match(_SAFE_SESSION, session_id):
        return ""
    folder = re.sub(r"[^A-Za-z0-9]", "-", cwd)
    from pipeline.config import claude_dir  # rare (no transcript path given): off the hot path

    return str(claude_dir(env=env) / "projects" / folder / f"{session_id}.jsonl")


def _capture_settings(root: str | None) -> tuple[Settings | HookSettings, str]:
    """(settings, configuration error or "") for a capture, and for the context hooks (which
    read only ``paths``).

    A capture reads its few settings through ``pipeline.hookconfig`` (no tomllib, no
    dataclasses); only a configuration that reader leaves to the full parser costs more. A bad
    setting never stops capture: the defaults are used and no drain is started (it would stop
    on the same error)."""
    from pipeline.hookconfig import HookSettings, load_hook_settings, remember_valid

    light = load_hook_settings(root)
    if light is not None:
        return light, ""
    from pipeline.config import load_settings

    try:
        full = load_settings(root)
    except ConfigError as exc:
        return HookSettings(resolve_root(root), spawn_drain=False), str(exc)
    remember_valid(root)  # the next capture with this configuration takes the light path
    return full, ""


def _session_start(settings: Settings | HookSettings, payload: dict[str, Any]) -> str:
    """Context for a new session: the SessionStart JSON of pipeline.inject.

    pipeline.inject is stdlib only and never raises."""
    from pipeline.inject import build_injection

    return build_injection(settings, payload)


def _with_notice(text: str, paths: Paths, config_error: str) -> str:
    """The SessionStart document plus one line on what needs attention, if anything does.

    The line goes to the user (``systemMessage``) and, first, into the model's context."""
    from pipeline.attention import notices, summary

    line = summary(notices(paths, config_error=config_error or None))
    if not line:
        return text
    try:
        doc = json.loads(text) if text.strip() else {}
        specific = doc.setdefault("hookSpecificOutput", {"hookEventName": "SessionStart"})
        context = str(specific.get("additionalContext") or "")
        doc["systemMessage"] = line
        while True:
            specific["additionalContext"] = line + ("\n\n" + context if context else "")
            out = json.dumps(doc, ensure_ascii=False)
            if len(out) < INJECT_LIMIT or not context:
                return out
            context = context[: len(context) * 9 // 10].rstrip() + "…"
    except (ValueError, AttributeError, TypeError):
        return text


def _healed(paths: Paths, exc: sqlite3.DatabaseError) -> bool:
    """Set a state.db aside that failed a query with damage (``state.connect`` heals what
    fails to open); True when the capture may run again."""
    from pipeline import state

    reason = state.damage(exc)
    if reason is None:
        return False
    from pipeline.staterecovery import recover_damaged

    recover_damaged(paths.state_db, reason, deep=True)
    return True


def _log(paths: Paths | None, message: str, started: float) -> None:
    line = f"{message} ({(time.monotonic() - started) * 1000:.0f} ms)"
    if paths is not None:
        hook_log(paths.logs, line)
    else:
        try:
            sys.stderr.write(f"memc hook: {line}\n")
        except (OSError, ValueError):
            pass


def run_hook_cli(rest: list[str], root: str | None, verbose: bool) -> int:
    """Run one hook call; always returns 0. See the module docstring for the contract."""
    started = time.monotonic()
    if os.environ.get("MEMC_INTERNAL"):
        return 0
    event = rest[0] if rest else ""
    paths: Paths | None = None
    try:
        try:
            paths = Paths(find_root(root).path)
        except ConfigError as exc:
            _log(None, f"{event or '?'}: {exc}", started)
            return 0
        if not paths.is_initialised():
            _log(
                None,
                f"{event or '?'}: {paths.root} is not initialised; run `memc init` there "
                "or pass --root to the hook command",
                started,
            )
            return 0
        _log(paths, _run(event, str(paths.root), read_stdin()), started)
    except Exception as exc:  # a hook must never break the session
        _log(paths, f"{event or '?'}: internal error {type(exc).__name__}: {exc}", started)
        if verbose:
            import traceback

            traceback.print_exc()
    return 0


def _run(event: str, root: str, raw: bytes) -> str:
    if event not in EVENTS:
        return f"{event or '?'}: unknown hook event; expected one of {', '.join(EVENTS)}"
    payload, why = parse_payload(raw)
    if payload is None:
        return f"{event}: ignored, {why}"
    fields, why = validate(payload)
    if fields is None:
        return f"{event}: ignored, {why}"
    sid = fields["session_id"]
    tag = f"{event} session={sid[:8]!r}"
    if event in ("session-start", "user-prompt-submit"):
        full, config_error = _capture_settings(root)  # a configuration accepted before
        if config_error:
            tag += f" (configuration error, using defaults: {config_error})"
        if event == "session-start":
            text = _with_notice(_session_start(full, payload), full.paths, config_error)
        else:
            from pipeline.recall import hook_output

            text = hook_output(full, payload)
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
        return f"{tag} context={len(text)} chars"
    settings, config_error = _capture_settings(root)
    if config_error:
        tag += f" (configuration error, using defaults: {config_error})"
    from pipeline.spawn import spawn_drain
    from pipeline.subagents import capture_session

    transcript = fields["transcript_path"] or derive_transcript_path(sid, fields["cwd"])
    capture = functools.partial(
        capture_session, settings, transcript_path=transcript, session_id=sid, cwd=fields["cwd"]
    )
    try:
        result, *subagents = capture(event=event)
    except sqlite3.DatabaseError as exc:  # damage found past the open: heal, capture once more
        if not _healed(settings.paths, exc):
            raise
        result, *subagents = capture(event=event)
    queued = [r for r in (result, *subagents) if r.status == "queued"]
    drain = spawn_drain(settings) if queued else ""
    job = f" job={result.job_id}" if result.job_id else ""
    sub = (
        f" subagents={len(subagents)} queued={sum(r.status == 'queued' for r in subagents)}"
        if subagents
        else ""
    )
    return f"{tag} {result.status}{job} bytes={result.bytes} {result.reason}{sub} {drain}".rstrip()
