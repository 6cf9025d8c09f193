"""What the compile model sees: entries split into batches, and each batch's bounded context.

Invariants:
- Bounded whatever the size of the knowledge base: each batch carries at most
  ``BATCH_ENTRIES`` entries / ``BATCH_CHARS`` characters (an entry past ``ENTRY_CHARS`` is cut
  with a marker), the ``EXISTING_CAP`` most relevant article paths+titles, and the full text of
  at most ``RELATED_COUNT`` related articles (``RELATED_CHARS`` in total).
- Only articles sent in full are "seen": the model may replace their bodies; updates to other
  pages are appended (pipeline.apply). Pages a person edited are flagged (pipeline.pages).
"""

from __future__ import annotations

from typing import Any

from pipeline.daily import DailyEntry

BATCH_ENTRIES = 12
BATCH_CHARS = 40_000
ENTRY_CHARS = 12_000
EXISTING_CAP = 120
RELATED_COUNT = 6
RELATED_ARTICLE_CHARS = 10_000
RELATED_CHARS = 36_000


def _entry_payload(e: DailyEntry) -> dict[str, str]:
    text = e.body if len(e.body) <= ENTRY_CHARS else e.body[:ENTRY_CHARS] + "\n[entry truncated]"
    return {
        "id": e.id,
        "source": e.daily_path,
        "time": e.time,
        "project": e.project,
        "title": e.title,
        "text": text,
    }


def make_batches(entries: list[DailyEntry]) -> list[list[DailyEntry]]:
    batches: list[list[DailyEntry]] = []
    current: list[DailyEntry] = []
    size = 0
    for e in entries:
        cost = min(len(e.body), ENTRY_CHARS) + len(e.title) + 100
        if current and (len(current) >= BATCH_ENTRIES or size + cost > BATCH_CHARS):
            batches.append(current)
            current, size = [], 0
        current.append(e)
        size += cost
    if current:
        batches.append(current)
    return batches


def build_payload(settings, batch: list[DailyEntry]) -> tuple[dict[str, Any], set[str]]:
    """(payload, keys of the articles whose full text it carries) for one batch."""
    from pipeline import search, wiki

    paths = settings.paths
    text = "\n".join(f"{e.project} {e.title}\n{e.body}" for e in batch)
    hits = search.related(paths, text, limit=EXISTING_CAP, kind="article")
    related: list[dict[str, Any]] = []
    seen: set[str] = set()
    budget = RELATED_CHARS
    for hit in hits[:RELATED_COUNT]:
        art = wiki.load_article(paths.knowledge, hit.key)
        if art is None:
            continue
        body = art.body.strip()
        full = len(body) <= min(RELATED_ARTICLE_CHARS, budget)
        if not full:
            body = body[: max(0, min(RELATED_ARTICLE_CHARS, budget))] + "\n[article truncated]"
        related.append(
            {
                "path": art.key,
                "title": art.title,
                "summary": art.summary,
                "aliases": list(art.aliases),
                "tags": list(art.tags),
                "body": body,
            }
        )
        if full:
            seen.add(art.key)
        budget -= len(body)
        if budget <= 0:
            break
    from pipeline.pages import flag_user_edited

    flag_user_edited(paths, related)  # the model is told which pages a person wrote in
    indexed = search.indexed_articles(paths)
    titles = {a.key: a.title for a in indexed}
    keys = [h.key for h in hits if h.key in titles]
    if len(keys) < EXISTING_CAP:  # fill with the rest, newest first, up to the cap
        chosen = set(keys)
        rest = sorted(
            (a for a in indexed if a.key not in chosen),
            key=lambda a: (a.updated, a.key),
            reverse=True,
        )
        keys.extend(a.key for a in rest[: EXISTING_CAP - len(keys)])
    existing = [{"path": k, "title": titles[k]} for k in keys[:EXISTING_CAP]]
    payload = {
        "entries": [_entry_payload(e) for e in batch],
        "existing": existing,
        "related": related,
    }
    return payload, seen


def request_for(settings, payload: dict[str, Any], ref: str):
    from pipeline.llm.base import LLMRequest, load_prompt, load_schema

    return LLMRequest(
        task="compile",
        payload=payload,
        schema=load_schema("compile"),
        model=settings.compile_model,
        system_prompt=load_prompt("compile"),
        max_budget_usd=settings.call_budget_usd,
        timeout_s=settings.call_timeout_s,
        ref=ref,
    )


def prompt_chars(request) -> int:
    return len(request.system_prompt) + len(request.prompt_text())
