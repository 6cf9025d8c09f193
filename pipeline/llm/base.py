"""The LLM seam: one narrow interface for every backend.

Structured JSON in (``LLMRequest.payload``), validated JSON out (``LLMReply.data``), with usage
and cost. Backends: ``claude`` (claude-agent-sdk; ``pipeline.llm.claude`` is the only module that
imports it), ``extractive`` (offline, no model), and the tests' fake. A backend's ``run`` makes ONE
attempt and raises ``TransientLLMError`` / ``PermanentLLMError`` / ``InvalidReplyError``;
retry, schema validation, budget checks and the cost ledger live in ``pipeline.llm.calls``;
``pipeline.llm.backends.make_backend`` picks the backend MEMC_BACKEND names.

Tasks and their reply schemas (``pipeline/schemas/<task>.json``):
- ``distil``: payload ``{"project", "session_id", "event", "chunk": i, "chunks": n,
  "earlier_entries": [titles already saved from this session], "transcript": str}``
  -> the entry schema of DESIGN.md.
- ``compile``: payload ``{"entries": [...], "existing": [{"path","title"}], "related": [...]}``
  -> ``{"articles": [...]}``.
- ``query``: payload ``{"question", "articles": [{"path","title","summary","body"?}],
  "daily"?: [{"path","title","project","excerpt"}]}`` (``body`` only for the top articles)
  -> ``{"answer", "citations": [...]}``.
- ``lint``: payload ``{"cluster": [{"path","title","body"}]}`` -> ``{"contradictions": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

TASKS = ("distil", "compile", "query", "lint")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class LLMRequest:
    task: str
    payload: Mapping[str, Any]
    schema: Mapping[str, Any]
    model: str = ""
    system_prompt: str = ""
    max_budget_usd: float = 1.0
    timeout_s: float = 300.0
    ref: str = ""  # job id or operation id, for the cost ledger

    def prompt_text(self) -> str:
        """The user message a model backend sends: the payload as JSON."""
        return json.dumps(self.payload, ensure_ascii=False, indent=1)


@dataclass(frozen=True)
class LLMReply:
    data: dict[str, Any]
    backend: str
    model: str = ""
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    duration_s: float = 0.0
    attempts: int = 1
    raw_text: str = ""


class Backend(Protocol):
    name: str

    def run(self, request: LLMRequest) -> LLMReply:
        """Make one attempt. Raise the LLMError leaves on failure; never retry here."""
        ...


def load_schema(task: str) -> dict[str, Any]:
    """The JSON schema shipped for a task, from pipeline/schemas/<task>.json."""
    from importlib import resources  # here: importing it costs `memc status` a few ms

    text = resources.files("pipeline").joinpath("schemas", f"{task}.json").read_text("utf-8")
    return json.loads(text)


def load_prompt(task: str) -> str:
    """The system prompt shipped for a task, from pipeline/prompts/<task>.md."""
    from importlib import resources

    return resources.files("pipeline").joinpath("prompts", f"{task}.md").read_text("utf-8")
