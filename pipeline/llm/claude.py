"""The ``claude`` backend: one isolated claude-agent-sdk ``query()`` per attempt.

The ONLY module that imports ``claude_agent_sdk``. Invariants of every call:
- isolated: ``setting_sources=[]`` (the user's settings and hooks are not loaded), ``tools=[]``
  (no built-in tools), our own system prompt, a small ``max_turns``, the request's
  ``max_budget_usd``, ``MEMC_INTERNAL=1`` in the child's environment (every memc hook then does
  nothing), a neutral working directory (never the user's project), and
  ``--no-session-persistence`` (the call leaves no transcript under ~/.claude/projects);
- time-limited: an anyio deadline around the whole exchange. anyio, not ``asyncio.timeout``: the
  SDK's transport shields its terminate/kill escalation only against anyio cancellation, so this
  is what guarantees the child is reaped (stdin EOF, 5 s grace, SIGTERM, SIGKILL) after a timeout;
- classified: exactly one of ``TransientLLMError`` / ``PermanentLLMError`` / ``InvalidReplyError``
  is raised on failure, carrying the CLI's stderr tail and the HTTP status when known, plus its
  ``cost_usd`` / ``usage`` / ``model`` fields so the caller can still ledger what was spent.
One attempt per ``run``; retries, schema validation and the ledger live in ``pipeline.llm.calls``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from pipeline.errors import InvalidReplyError, LLMError, PermanentLLMError, TransientLLMError
from pipeline.llm.base import LLMReply, LLMRequest, Usage, load_prompt

MAX_TURNS = 3
STDERR_TAIL_CHARS = 4096
TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
PERMANENT_STATUS = {400, 401, 403, 404, 413, 422}
_AUTH_WORDS = re.compile(
    r"authenticat|invalid api key|invalid x-api-key|/login|not logged in|oauth token", re.I
)
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.S)
# The SDK logs "Fatal error in message reader" at ERROR for failures we classify and report
# ourselves; without a handler that line would go to the user's terminal via logging.lastResort.
logging.getLogger("claude_agent_sdk").addHandler(logging.NullHandler())


class _StderrTail:
    """Collects the CLI's stderr lines, keeping only the last ~4 KB."""

    def __init__(self, limit: int = STDERR_TAIL_CHARS):
        self.limit = limit
        self.lines: deque[str] = deque()
        self.size = 0

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.limit and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self.lines)[-self.limit :]


MAX_BRACE_TRIES = 200


def parse_json_reply(text: str) -> dict[str, Any] | None:
    """A JSON object from reply text: the whole text, a ```json fence, or the first {...}."""
    stripped = text.strip()
    candidates = [stripped] + [m.group(1) for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):  # deep nesting is an invalid reply, not a crash
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for n, match in enumerate(re.finditer(r"\{", text)):
        if n >= MAX_BRACE_TRIES:  # each failed try costs O(len(text)) in JSONDecodeError
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def classify_result(
    subtype: str, status: int | None, text: str, stderr_tail: str
) -> type[LLMError]:
    """Which error an error ``result`` frame (or a failed exchange) means."""
    if subtype == "error_max_budget_usd":
        return PermanentLLMError
    if subtype == "error_max_turns":
        return InvalidReplyError
    if status in PERMANENT_STATUS:
        return PermanentLLMError
    if status in TRANSIENT_STATUS or (status is not None and status >= 500):
        return TransientLLMError
    if _AUTH_WORDS.search(text) or _AUTH_WORDS.search(stderr_tail):
        return PermanentLLMError
    if re.search(r"invalid_request_error", text):
        return PermanentLLMError
    return TransientLLMError


def _refused(result: Any) -> bool:
    """An error result, or a CLI that could not even start the call ("Not logged in · Please
    run /login") and said so in a result not flagged as an error: permanent, never retried."""
    if result.is_error:
        return True
    text = result.result if isinstance(result.result, str) else ""
    return (
        not isinstance(result.structured_output, dict)
        and len(text) < 300
        and bool(_AUTH_WORDS.search(text))
        and parse_json_reply(text) is None
    )


def _hint(kind: type[LLMError], status: int | None, subtype: str) -> str:
    if subtype == "error_max_budget_usd":
        return "the per-call budget ran out; raise call_budget_usd in .memc/config.toml"
    if status in (401, 403) or (kind is PermanentLLMError and status is None):
        return "check the Claude Code login (run `claude` once and /login) or ANTHROPIC_API_KEY"
    if kind is PermanentLLMError:
        return "the request was refused; see the stderr tail and `memc doctor`"
    if kind is InvalidReplyError:
        return "the model did not return the JSON asked for"
    return "will be retried; if it persists, check the network and `memc doctor`"


class ClaudeBackend:
    """claude-agent-sdk backend; ``cli_path`` overrides the SDK's discovery (MEMC_CLAUDE_CLI)."""

    name = "claude"

    def __init__(self, cli_path: str | None = None, cwd: str | Path | None = None):
        self.cli_path = cli_path or None
        self.cwd = Path(cwd) if cwd else Path(tempfile.gettempdir()) / "memc-llm"

    def run(self, request: LLMRequest) -> LLMReply:
        """One attempt. Safe to call from a thread that already runs an event loop."""
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_sync(request)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memc-llm") as pool:
            return pool.submit(self._run_sync, request).result()

    def _run_sync(self, request: LLMRequest) -> LLMReply:
        import anyio

        stderr = _StderrTail()
        started = time.monotonic()
        try:
            return anyio.run(self._exchange, request, stderr, started)
        except LLMError:
            raise
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise self._classify_exception(exc, request, stderr.text()) from exc

    async def _exchange(self, request: LLMRequest, stderr: _StderrTail, started: float) -> LLMReply:
        import anyio
        from claude_agent_sdk import (
            AssistantMessage,
            ClaudeAgentOptions,
            ResultMessage,
            TextBlock,
            query,
        )

        self.cwd.mkdir(parents=True, exist_ok=True)
        options = ClaudeAgentOptions(
            model=request.model or None,
            system_prompt=request.system_prompt or load_prompt(request.task),
            tools=[],
            setting_sources=[],
            max_turns=MAX_TURNS,
            max_budget_usd=request.max_budget_usd,
            output_format={"type": "json_schema", "schema": dict(request.schema)},
            # MEMC_INTERNAL: every memc hook does nothing inside the call; no telemetry or
            # update checks from a background job.
            env={"MEMC_INTERNAL": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
            stderr=stderr,
            cli_path=self.cli_path,
            cwd=str(self.cwd),
            # Our calls hold redacted session text: keep Claude Code from saving them as
            # transcripts under ~/.claude/projects (checked against the bundled CLI 2.1.329).
            extra_args={"no-session-persistence": None},
        )
        texts: list[str] = []
        result: Any = None
        model = request.model
        try:
            with anyio.fail_after(request.timeout_s):
                async for message in query(prompt=request.prompt_text(), options=options):
                    if isinstance(message, AssistantMessage):
                        if message.model and message.model != "<synthetic>":
                            model = message.model
                        texts.extend(b.text for b in message.content if isinstance(b, TextBlock))
                    elif isinstance(message, ResultMessage):
                        # keep iterating: an error result is followed by an exception
                        result = message
        except TimeoutError:
            if result is not None:  # the answer came; only the CLI's exit was slow
                return self._finish(result, texts, model, request, stderr, started)
            raise TransientLLMError(
                f"claude gave no reply within {request.timeout_s:g}s; the call was stopped "
                "and will be retried (raise call_timeout_s if replies are just slow)",
                stderr_tail=stderr.text(),
            ) from None
        except Exception as exc:
            if result is not None and _refused(result):
                raise self._from_result(result, request, stderr.text()) from exc
            raise
        if result is None:
            raise TransientLLMError(
                "the claude CLI ended without a result frame; will be retried",
                stderr_tail=stderr.text(),
            )
        return self._finish(result, texts, model, request, stderr, started)

    def _finish(
        self,
        result: Any,
        texts: list[str],
        model: str,
        request: LLMRequest,
        stderr: _StderrTail,
        started: float,
    ) -> LLMReply:
        """The reply (or the classified error) from the ``result`` frame of one exchange."""
        duration = time.monotonic() - started
        if _refused(result):
            raise self._from_result(result, request, stderr.text())
        raw = result.result or "\n".join(texts)
        data = result.structured_output if isinstance(result.structured_output, dict) else None
        if data is None:
            data = parse_json_reply(raw)
        usage = _usage(result.usage)
        cost = float(result.total_cost_usd or 0.0)
        if data is None:
            raise InvalidReplyError(
                f"claude replied without a JSON object ({raw[:120]!r}...); a repair will be tried",
                stderr_tail=stderr.text(),
                cost_usd=cost,
                usage=usage,
                model=model,
                raw_text=raw,
            )
        return LLMReply(
            data=data,
            backend=self.name,
            model=model,
            cost_usd=cost,
            usage=usage,
            duration_s=duration,
            raw_text=raw,
        )

    def _from_result(self, result: Any, request: LLMRequest, stderr_tail: str) -> LLMError:
        status = result.api_error_status
        text = "; ".join(result.errors or []) or (result.result or "") or result.subtype
        kind = classify_result(result.subtype, status, text, stderr_tail)
        label = f"HTTP {status}" if status else result.subtype
        return kind(
            f"claude {request.task} call failed ({label}: {text[:200]}); "
            f"{_hint(kind, status, result.subtype)}",
            stderr_tail=stderr_tail,
            status=status,
            cost_usd=float(result.total_cost_usd or 0.0),
            usage=_usage(result.usage),
            model=request.model,
            raw_text=result.result or "",
        )

    def _classify_exception(
        self, exc: BaseException, request: LLMRequest, stderr_tail: str
    ) -> LLMError:
        from claude_agent_sdk import (
            ClaudeSDKError,
            CLIConnectionError,
            CLIJSONDecodeError,
            CLINotFoundError,
            ProcessError,
        )

        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        name = type(exc).__name__
        if isinstance(exc, CLINotFoundError):
            return PermanentLLMError(
                f"the claude CLI was not found ({exc}); set MEMC_CLAUDE_CLI or install Claude Code",
                stderr_tail=stderr_tail,
            )
        if isinstance(exc, ProcessError):
            # the SDK's own exception: its ResultError subclass (not in every supported SDK
            # release) carries these two; a plain ProcessError has neither
            status = getattr(exc, "api_error_status", None)
            subtype = getattr(exc, "subtype", None) or ""
            kind = (
                classify_result(subtype, status, str(exc), stderr_tail)
                if (status or subtype)
                else (PermanentLLMError if _AUTH_WORDS.search(stderr_tail) else TransientLLMError)
            )
            return kind(
                f"the claude CLI failed (exit {exc.exit_code}); {_hint(kind, status, subtype)}",
                stderr_tail=stderr_tail,
                status=status,
            )
        broken = isinstance(exc, (CLIJSONDecodeError, CLIConnectionError))
        if broken or "Control request timeout" in str(exc):
            return TransientLLMError(
                f"the claude CLI stream broke ({name}: {str(exc)[:200]}); will be retried",
                stderr_tail=stderr_tail,
            )
        if isinstance(exc, ClaudeSDKError):
            return TransientLLMError(
                f"claude SDK error ({name}: {str(exc)[:200]}); will be retried",
                stderr_tail=stderr_tail,
            )
        return TransientLLMError(
            f"unexpected {name} talking to claude: {str(exc)[:200]}", stderr_tail=stderr_tail
        )


def _usage(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}

    def num(key: str) -> int:
        value = raw.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return Usage(
        input_tokens=num("input_tokens")
        + num("cache_creation_input_tokens")
        + num("cache_read_input_tokens"),
        output_tokens=num("output_tokens"),
    )
