"""`memc mcp`: the knowledge base as an MCP server over stdio (the only module importing mcp).

Tools: ``search`` (local FTS5, no model), ``read`` (one article or daily log, path-guarded),
``query`` (an answer with validated citations; uses the configured backend and its budget),
``recent`` (a project's latest daily entries and the latest updated pages) and ``remember``
(a note kept as a daily entry with its provenance, redacted, through the daily-log writer:
``pipeline.notes``). ``remember`` is the only tool that writes, and only that one entry. Works
with the mcp package's 2.x ``MCPServer`` and the 1.x ``FastMCP`` (same decorator API).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from pipeline.config import Settings
from pipeline.errors import MemcError, PathRefused
from pipeline.fsutil import safe_join

MAX_READ_CHARS = 200_000


def _mcp_attr(new: tuple[str, str], old: tuple[str, str]) -> Any:
    """``module, name`` from mcp 2.x, else from its 1.x location. Looked up by name because only
    one of the two exists in any installed release, so neither can be type-checked statically."""
    try:
        module, name = new
        return getattr(importlib.import_module(module), name)
    except ImportError:  # mcp 1.x
        module, name = old
        return getattr(importlib.import_module(module), name)


def _server_class() -> Any:
    return _mcp_attr(("mcp.server.mcpserver", "MCPServer"), ("mcp.server.fastmcp", "FastMCP"))


def _tool_error() -> type[Exception]:
    """The mcp package's "anticipated tool failure" (its text reaches the client, isError)."""
    return _mcp_attr(
        ("mcp.server.mcpserver.exceptions", "ToolError"),
        ("mcp.server.fastmcp.exceptions", "ToolError"),
    )


def tool_search(settings: Settings, query: str, limit: int = 10) -> list[dict[str, Any]]:
    from pipeline import search, searchindex

    searchindex.refresh(settings.paths)
    hits = search.search(settings.paths, query, limit=max(1, min(int(limit), 50)))
    return [
        {"kind": h.kind, "key": h.key, "title": h.title, "path": h.path, "snippet": h.snippet}
        for h in hits
    ]


def tool_read(settings: Settings, path: str) -> str:
    """Text of ``knowledge/...`` or ``daily/...`` (``.md`` optional); refuses anything else."""
    rel = path.strip().lstrip("/")
    if not rel.endswith(".md"):
        rel += ".md"
    if rel.startswith("daily/"):
        base, inner = settings.paths.daily, rel[len("daily/") :]
    else:
        base = settings.paths.knowledge
        inner = rel[len("knowledge/") :] if rel.startswith("knowledge/") else rel
    try:
        target = safe_join(base, inner, allow_hidden=False)
        return target.read_text(encoding="utf-8", errors="replace")[:MAX_READ_CHARS]
    except PathRefused as exc:
        return f"refused: {exc}"
    except (FileNotFoundError, IsADirectoryError):
        return f"not found: {path} (use the search tool to find pages)"


def tool_query(settings: Settings, question: str) -> dict[str, Any]:
    from pipeline.query import run_query

    try:
        return run_query(settings, question).to_dict()
    except MemcError as exc:
        return {"question": question, "error": str(exc)}


def tool_recent(settings: Settings, project: str = "", limit: int = 10) -> dict[str, Any]:
    from pipeline.notes import recent

    return recent(settings, project or os.getcwd(), limit)


def tool_remember(
    settings: Settings, note: str, title: str = "", project: str = ""
) -> dict[str, Any]:
    """The stored entry's facts; a MemcError (bad note) is raised for the caller to report."""
    from pipeline.notes import remember

    return remember(settings, note, title=title, project=project or os.getcwd()).to_dict()


def build_server(settings: Settings):
    from pipeline import __version__

    cls = _server_class()
    kwargs = {
        "instructions": "Search and read the user's memory-compiler knowledge base (compiled "
        "from past Claude Code sessions). Use search first, then read the pages it returns.",
    }
    try:  # serverInfo.version is memc's own (mcp 2.x takes it; 1.x reports its own version)
        server = cls("memory-compiler", version=__version__, **kwargs)
    except TypeError:
        server = cls("memory-compiler", **kwargs)

    @server.tool()
    def search(query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Full-text search over knowledge articles and daily entries (no model call)."""
        return tool_search(settings, query, limit)

    @server.tool()
    def read(path: str) -> str:
        """Read one page: 'concepts/slug', 'knowledge/qa/x.md' or 'daily/2026-11-20.md'."""
        text = tool_read(settings, path)
        if text.startswith(("refused:", "not found:")):
            raise _tool_error()(text)  # reported to the client as a tool error (isError)
        return text

    @server.tool()
    def query(question: str) -> dict[str, Any]:
        """Answer a question from the knowledge base with [[citations]] (may call the model)."""
        return tool_query(settings, question)

    @server.tool()
    def recent(project: str = "", limit: int = 10) -> dict[str, Any]:
        """Latest daily entries of a project (a folder path or a project name; default: the
        server's working folder) with their decisions and follow-ups, and the latest pages."""
        return tool_recent(settings, project, limit)

    @server.tool()
    def remember(note: str, title: str = "", project: str = "") -> dict[str, Any]:
        """Keep a note in the memory: appended to today's daily log as an entry of its own,
        with its source, after secrets are redacted. Compiled into the wiki like any entry."""
        try:
            return tool_remember(settings, note, title, project)
        except MemcError as exc:
            raise _tool_error()(str(exc)) from None

    return server


def serve(settings: Settings) -> None:
    build_server(settings).run()
