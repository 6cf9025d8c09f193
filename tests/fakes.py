"""The fake backend at the LLM seam (the only place tests fake anything).

``FakeBackend().enqueue(reply)`` queues a reply dict, an exception to raise, or a callable
``(LLMRequest) -> dict``; ``calls`` records every request in order. With nothing queued it
answers with ``default`` (or raises AssertionError when no default was given).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from pipeline.llm.base import LLMReply, LLMRequest, Usage


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        default: dict[str, Any] | Callable[[LLMRequest], dict] | None = None,
        cost_usd: float = 0.01,
    ):
        self.queue: deque = deque()
        self.calls: list[LLMRequest] = []
        self.default = default
        self.cost_usd = cost_usd

    def enqueue(self, *replies: Any) -> FakeBackend:
        self.queue.extend(replies)
        return self

    def run(self, request: LLMRequest) -> LLMReply:
        self.calls.append(request)
        if self.queue:
            item = self.queue.popleft()
        elif self.default is not None:
            item = self.default
        else:
            raise AssertionError(f"FakeBackend got an unexpected {request.task} call")
        if isinstance(item, BaseException):
            raise item
        data = item(request) if callable(item) else item
        return LLMReply(
            data=data,
            backend=self.name,
            model=request.model or "fake-model",
            cost_usd=self.cost_usd,
            usage=Usage(100, 20),
            duration_s=0.0,
        )
