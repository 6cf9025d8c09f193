"""Choosing the LLM backend: ``make_backend(settings)`` builds the one MEMC_BACKEND names.

Kept apart from ``pipeline.llm.base`` (the ``Backend`` Protocol and the request/reply values) so
that the interface module imports no backend. Invariant: a backend's module is imported only
when that backend is chosen, so the Agent SDK is loaded only for ``claude``.
"""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.llm.base import Backend


def make_backend(settings: Settings) -> Backend:
    """The backend MEMC_BACKEND names. Imports the SDK only when the claude backend is chosen."""
    if settings.backend == "extractive":
        from pipeline.llm.extractive import ExtractiveBackend

        return ExtractiveBackend()
    if settings.backend == "claude":
        from pipeline.llm.claude import ClaudeBackend

        return ClaudeBackend(cli_path=settings.claude_cli)
    raise ConfigError(f"unknown backend {settings.backend!r}; use claude or extractive")
