"""The model half of `memc lint`: contradictions between closely linked pages.

Pages are grouped into clusters of linked pages (``clusters``): at most ``CLUSTER_PAGES`` pages of
at most ``PAGE_CHARS`` characters each per call and at most ``MAX_CLUSTERS`` calls per run, never
the whole wiki. Skipped with a note on the extractive backend or without state.db; a model
failure stops the check with a note, never the lint run. Every call goes through
``pipeline.llm.calls.call`` (budget, retries, ledger).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from pipeline.config import Settings
from pipeline.lintfix import _rel
from pipeline.lintscan import Issue, Scan

CLUSTER_PAGES = 5
PAGE_CHARS = 2500
MAX_CLUSTERS = 8


def clusters(result: Scan, limit: int = 0) -> list[list[str]]:
    """Groups of closely linked pages: a well-connected seed plus its neighbours, little overlap."""
    limit = limit or MAX_CLUSTERS
    neighbours: dict[str, set[str]] = {k: set(v) for k, v in result.out_links.items()}
    for key, outs in result.out_links.items():
        for target in outs:
            neighbours.setdefault(target, set()).add(key)
    degree = {k: len(v) for k, v in neighbours.items()}
    covered: set[str] = set()
    out: list[list[str]] = []
    for seed in sorted(neighbours, key=lambda k: (-degree[k], k)):
        if len(out) >= limit:
            break
        if seed in covered or not neighbours[seed]:
            continue
        members = sorted(neighbours[seed] - covered, key=lambda k: (-degree[k], k))
        if not members:
            continue
        group = [seed, *members[: CLUSTER_PAGES - 1]]
        covered.update(group)
        out.append(group)
    return out


def contradictions(
    settings: Settings,
    result: Scan,
    *,
    backend: Any,
    conn: sqlite3.Connection | None,
    clock: Callable[[], float],
) -> tuple[list[Issue], int, list[str]]:
    """Ask the lint model about each cluster. Returns (issues, calls made, notes)."""
    from pipeline.errors import MemcError
    from pipeline.llm.backends import make_backend
    from pipeline.llm.base import LLMRequest, load_prompt, load_schema

    groups = clusters(result)
    if not groups:
        return [], 0, ["contradiction check: no linked pages to compare"]
    backend = backend or make_backend(settings)
    if backend.name == "extractive":
        return (
            [],
            0,
            [
                "contradiction check skipped: the extractive backend has no model "
                "(set MEMC_BACKEND=claude to run it, or pass --structural-only)"
            ],
        )
    if conn is None:
        return [], 0, ["contradiction check skipped: no state.db; run `memc init`"]
    from pipeline.llm.calls import call

    schema, prompt = load_schema("lint"), load_prompt("lint")
    issues: list[Issue] = []
    calls = 0
    for group in groups:
        cluster = [
            {
                "path": k,
                "title": result.articles[k].title,
                "body": result.articles[k].body.strip()[:PAGE_CHARS],
            }
            for k in group
        ]
        request = LLMRequest(
            task="lint",
            payload={"cluster": cluster},
            schema=schema,
            model=settings.query_model,
            system_prompt=prompt,
            max_budget_usd=settings.call_budget_usd,
            timeout_s=settings.call_timeout_s,
            ref="lint:" + group[0],
        )
        try:
            reply = call(settings, backend, request, conn=conn, clock=clock)
        except MemcError as exc:
            return issues, calls, [f"contradiction check stopped after {calls} call(s): {exc}"]
        calls += 1
        for item in reply.data.get("contradictions", []):
            pages = [p for p in item.get("pages", []) if p in result.articles and p in group]
            if not pages:
                pages = group[:1]
            others = ", ".join(f"[[{p}]]" for p in pages[1:])
            detail = str(item.get("detail", "")).strip()[:500]
            issues.append(
                Issue(
                    "warning",
                    "contradiction",
                    _rel(pages[0]),
                    f"{detail}" + (f" (see {others})" if others else ""),
                )
            )
    return (
        issues,
        calls,
        [f"contradiction check: {calls} cluster(s) of up to {CLUSTER_PAGES} pages"],
    )
