#!/usr/bin/env python3
"""A fake ``claude`` executable for tests, speaking the CLI's stream-json protocol.

Driven through the REAL claude-agent-sdk via ``cli_path``: it answers the SDK's ``initialize``
control request, reads the one user message, emits ``system/init``, assistant frame(s) and a
``result`` frame shaped like the real CLI's (../shared/reference/claude-code/stream-frames), waits
for the SDK to close stdin, and exits 0 (or 1 after an error result, as the real CLI does).

Scripted by environment (stdlib only, so it runs under any Python):
- ``MEMC_FAKE_CLAUDE_SCRIPT``: path of a JSON list of per-invocation behaviours, consumed in order
  through a counter file beside it (``<script>.count``, under an flock, so concurrent invocations
  each take a distinct step). A behaviour is a string (``"ok"``, ``"crash"``, ``"hang"``,
  ``"hang_init"``, ``"stall"``, ``"garbage"``, ``"budget"``, ``"max_turns"``) or an object
  ``{"kind": ..., "reply": {...}, "status": 429, "text": "...", "cost": 0.01, "fence": true,
  "delay": 0.0, "linger": 0.0, "raw_text": "..."}`` (``delay``: seconds before answering;
  ``linger``: seconds between the result and going idle; ``raw_text``: the verbatim reply).
  Kinds:
  ``ok`` (reply as structured_output and as JSON text), ``text`` (JSON only in the result text,
  optionally in a ```json fence), ``invalid`` (a reply sent as structured_output that the caller's
  schema should reject), ``error_status`` (synthetic assistant error + ``result`` with
  ``is_error`` and ``api_error_status``, exit 1), ``crash`` (stderr noise, exit 1 without result),
  ``hang`` / ``hang_init`` (never answer; ignore stdin EOF, so the SDK must SIGTERM it),
  ``stall`` (never answer, exit on stdin EOF: a quick-to-clean-up timeout for other tests),
  ``garbage`` (a broken JSON line),
  ``budget`` (``error_max_budget_usd``), ``max_turns`` (``error_max_turns``).
- ``MEMC_FAKE_CLAUDE_DEFAULT``: a reply (JSON text, or the path of a JSON file) used for ``ok``
  when the script is absent or exhausted. Without it, a minimal reply is derived from the
  ``--json-schema`` argument (required keys filled with empty values).
- ``MEMC_FAKE_CLAUDE_LOG``: JSONL file; one line per invocation with argv, the system prompt,
  the user message, the JSON schema, MEMC_INTERNAL as seen by the child, cwd, pid and the step.

``FakeClaude`` (bottom) is the test-side helper the ``fake_claude`` fixture returns.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

CLI_VERSION = "2.1.329"


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _arg(argv: list[str], name: str) -> str | None:
    for i, item in enumerate(argv):
        if item == name and i + 1 < len(argv):
            return argv[i + 1]
        if item.startswith(name + "="):
            return item.split("=", 1)[1]
    return None


def _next_behaviour() -> tuple[int, Any]:
    """The next scripted step (index, behaviour), or (-1, None) when absent or exhausted."""
    script = os.environ.get("MEMC_FAKE_CLAUDE_SCRIPT")
    if not script or not os.path.exists(script):
        return -1, None
    import fcntl

    with open(script, encoding="utf-8") as fh:
        steps = json.load(fh)
    fd = os.open(script + ".count", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 64).decode() or "0"
        index = int(raw)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(index + 1).encode())
    finally:
        os.close(fd)
    if index < len(steps):
        return index, steps[index]
    return index, None


def _minimal_from_schema(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _minimal_from_schema(props.get(k, {})) for k in schema.get("required", [])}
    return {
        "array": [],
        "string": "fake",
        "boolean": False,
        "integer": 0,
        "number": 0,
        "null": None,
    }.get(kind if isinstance(kind, str) else "")


def _default_reply(schema_text: str | None) -> Any:
    raw = os.environ.get("MEMC_FAKE_CLAUDE_DEFAULT", "")
    if raw and not raw.lstrip().startswith(("{", "[")):
        raw = Path(raw).read_text(encoding="utf-8") if os.path.isfile(raw) else ""
    if raw.strip():
        return json.loads(raw)
    try:
        schema = json.loads(schema_text or "{}")
    except ValueError:
        schema = {}
    return _minimal_from_schema(schema) if schema else {}


def _log(entry: dict[str, Any]) -> None:
    path = os.environ.get("MEMC_FAKE_CLAUDE_LOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _read_frame() -> dict[str, Any] | None:
    while True:
        line = sys.stdin.readline()
        if not line:
            return None
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)


def _result(
    session: str,
    *,
    is_error: bool,
    subtype: str = "success",
    cost: float = 0.0,
    result: str | None = None,
    structured: Any = None,
    status: int | None = None,
    errors: list[str] | None = None,
    usage: tuple[int, int] = (0, 0),
    terminal: str = "completed",
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "duration_ms": 12,
        "duration_api_ms": 10,
        "num_turns": 1,
        "session_id": session,
        "stop_reason": "end_turn",
        "total_cost_usd": cost,
        "terminal_reason": terminal,
        "uuid": str(uuid.uuid4()),
        "usage": {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        "permission_denials": [],
    }
    if result is not None:
        frame["result"] = result
    if structured is not None:
        frame["structured_output"] = structured
    if status is not None:
        frame["api_error_status"] = status
    if errors:
        frame["errors"] = errors
    return frame


def _assistant(session: str, text: str, model: str, synthetic: bool = False) -> dict[str, Any]:
    return {
        "type": "assistant",
        "parent_tool_use_id": None,
        "session_id": session,
        "uuid": str(uuid.uuid4()),
        "message": {
            "id": f"msg_fake_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>" if synthetic else model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": None,
            "usage": {
                "input_tokens": 0 if synthetic else 1000,
                "output_tokens": 0 if synthetic else 50,
            },
        },
    }


def _wait_for_eof_and_exit(code: int) -> None:
    while sys.stdin.readline():
        pass
    sys.exit(code)


def main(argv: list[str]) -> None:
    step, behaviour = _next_behaviour()
    spec: dict[str, Any] = (
        {"kind": behaviour}
        if isinstance(behaviour, str)
        else dict(behaviour)
        if isinstance(behaviour, dict)
        else {"kind": "ok"}
    )
    kind = spec.get("kind", "ok")
    schema_text = _arg(argv, "--json-schema")
    model = _arg(argv, "--model") or "claude-fake-1"
    session = str(uuid.uuid4())
    entry: dict[str, Any] = {
        "step": step,
        "kind": kind,
        "argv": argv,
        "system_prompt": _arg(argv, "--system-prompt"),
        "json_schema": json.loads(schema_text) if schema_text else None,
        "model": model,
        "memc_internal": os.environ.get("MEMC_INTERNAL"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "prompt": None,
    }

    if kind == "crash" and spec.get("early"):
        _log(entry)
        sys.stderr.write("fake claude: segmentation fault before initialize\n")
        sys.exit(1)

    init = _read_frame()
    if kind == "hang_init":
        _log(entry)
        time.sleep(3600)
    if init is not None and init.get("type") == "control_request":
        _emit(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": init.get("request_id"),
                    "response": {"commands": [], "models": [], "account": {}},
                },
            }
        )
    user = _read_frame()
    if user is not None:
        content = user.get("message", {}).get("content")
        entry["prompt"] = content
    _log(entry)
    if float(spec.get("delay", 0) or 0) > 0:
        time.sleep(float(spec["delay"]))

    if kind == "hang":
        time.sleep(3600)
    if kind == "stall":  # never answers, but exits on stdin EOF: a timeout that cleans up fast
        _wait_for_eof_and_exit(1)
    _emit(
        {
            "type": "system",
            "subtype": "init",
            "cwd": os.getcwd(),
            "session_id": session,
            "tools": [],
            "mcp_servers": [],
            "model": model,
            "permissionMode": "default",
            "apiKeySource": "none",
            "claude_code_version": CLI_VERSION,
            "output_style": "default",
        }
    )
    if kind == "crash":
        sys.stderr.write("fake claude: TypeError: cannot read properties of undefined\n")
        sys.stderr.flush()
        sys.exit(1)
    if kind == "garbage":
        sys.stdout.write('{"type": "assistant", "message": {"content": [broken\n')
        sys.stdout.flush()
        _wait_for_eof_and_exit(1)

    cost = float(spec.get("cost", 0.0123))
    if kind == "error_status":
        status = int(spec.get("status", 500))
        label = {
            401: "Failed to authenticate. API Error: 401 authentication_error",
            429: "API Error: Request rejected (429) · rate_limit_error",
            529: "API Error: 529 overloaded_error",
        }.get(status, f"API Error: {status}")
        text = spec.get("text", label)
        _emit(_assistant(session, text, model, synthetic=True))
        _emit(_result(session, is_error=True, result=text, status=status, terminal="api_error"))
        _wait_for_eof_and_exit(1)
    if kind == "not_logged_in":  # the CLI without credentials: no API call, no status
        text = "Not logged in · Please run /login"
        _emit(_assistant(session, text, model, synthetic=True))
        _emit(_result(session, is_error=spec.get("is_error", True), result=text))
        _wait_for_eof_and_exit(int(spec.get("exit", 1)))
    if kind in ("budget", "max_turns"):
        subtype = "error_max_budget_usd" if kind == "budget" else "error_max_turns"
        err = (
            "Reached maximum budget ($0.001)"
            if kind == "budget"
            else "Reached maximum number of turns (2)"
        )
        _emit(_assistant(session, "partial", model))
        _emit(
            _result(
                session,
                is_error=True,
                subtype=subtype,
                cost=cost,
                errors=[err],
                usage=(1000, 50),
                terminal="budget_exhausted" if kind == "budget" else "max_turns",
            )
        )
        _wait_for_eof_and_exit(1)

    reply = spec.get("reply")
    if reply is None:
        reply = {"unexpected": True} if kind == "invalid" else _default_reply(schema_text)
    if "raw_text" in spec:
        text = str(spec["raw_text"])
    else:
        text = json.dumps(reply)
        if spec.get("fence"):
            text = f"Here is the entry:\n```json\n{text}\n```\n"
    structured = None if kind == "text" or "raw_text" in spec else reply
    _emit(_assistant(session, text, model))
    _emit(
        _result(
            session, is_error=False, cost=cost, result=text, structured=structured, usage=(1000, 50)
        )
    )
    if float(spec.get("linger", 0) or 0) > 0:  # answered, but slow to go idle and exit
        time.sleep(float(spec["linger"]))
    _emit(
        {
            "type": "system",
            "subtype": "session_state_changed",
            "state": "idle",
            "sdk_host_only": True,
            "session_id": session,
            "uuid": str(uuid.uuid4()),
        }
    )
    _wait_for_eof_and_exit(0)


class FakeClaude:
    """Test-side handle: script behaviours, set a default reply, read what the CLI was sent."""

    def __init__(self, folder: Path, python: str | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.script_path = folder / "script.json"
        self.log_path = folder / "calls.jsonl"
        self.default_path = folder / "default.json"
        wrapper = folder / "claude"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{python or sys.executable}" -S "{Path(__file__).resolve()}" "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
        self.cli_path = str(wrapper)

    def env(self) -> dict[str, str]:
        return {
            "MEMC_CLAUDE_CLI": self.cli_path,
            "MEMC_FAKE_CLAUDE_SCRIPT": str(self.script_path),
            "MEMC_FAKE_CLAUDE_LOG": str(self.log_path),
            "MEMC_FAKE_CLAUDE_DEFAULT": str(self.default_path),
        }

    def script(self, steps: list[Any]) -> FakeClaude:
        self.script_path.write_text(json.dumps(steps), encoding="utf-8")
        Path(str(self.script_path) + ".count").unlink(missing_ok=True)
        return self

    def default(self, reply: Any) -> FakeClaude:
        self.default_path.write_text(json.dumps(reply), encoding="utf-8")
        return self

    def prompts(self) -> list[dict[str, Any]]:
        """Every invocation logged so far (argv, system_prompt, prompt, memc_internal, ...)."""
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text("utf-8").splitlines() if line]

    def steps_taken(self) -> int:
        counter = Path(str(self.script_path) + ".count")
        return int(counter.read_text() or 0) if counter.exists() else 0


if __name__ == "__main__":
    main(sys.argv[1:])
