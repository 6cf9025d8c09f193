"""`memc query`: answer a question from the knowledge base, with checked [[citations]].

Flow: refresh the search index (incremental) -> full-text search with the question's content
words -> a bounded context (the top ``MAX_FULL`` articles with bodies cut to ``BODY_CHARS``, at
most ``TOTAL_CHARS`` in all; the next ``MAX_SUMMARIES`` hits as title + summary only; up to
``MAX_DAILY`` daily-entry excerpts) -> one ``query`` model call through ``llm.calls.call`` ->
citations checked against the files.

Invariants:
- The prompt never grows with the knowledge base: every part is capped by count and characters.
- No model call when the search finds nothing at all: the result says so plainly.
- Only citations that resolve to an existing page (an article by path, file name, or the title /
  alias of a page in the context; or an existing daily log) are kept; the rest are reported as
  dropped, and unresolved [[links]] in the answer text are unlinked and marked.
- ``--file-back`` writes ``qa/<slug of the question>`` through ``apply.apply_articles`` (the same
  guarded writer as compile; it regenerates index.md and appends log.md). Asking the same question
  again refreshes that page; a different question whose slug collides (same first 60 characters)
  gets ``qa/<slug>-<hash>`` instead of replacing the other answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline import search, searchindex, wiki
from pipeline.config import Settings
from pipeline.fsutil import safe_join

MAX_FULL = 6
BODY_CHARS = 4000
TOTAL_CHARS = 24_000
MAX_SUMMARIES = 14
MAX_DAILY = 4
DAILY_CHARS = 1200
UNVERIFIED = " [not in the knowledge base]"
_DAY_RE = re.compile(r"^daily/(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    path: str


@dataclass(frozen=True)
class QueryResult:
    question: str
    answer: str
    sources: tuple[Source, ...] = ()
    dropped: tuple[str, ...] = ()
    found: bool = True
    model_called: bool = False
    backend: str = ""
    prompt_chars: int = 0
    cost_usd: float = 0.0
    filed: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [s.key for s in self.sources],
            "sources": [{"key": s.key, "title": s.title, "path": s.path} for s in self.sources],
            "dropped": list(self.dropped),
            "found": self.found,
            "model_called": self.model_called,
            "backend": self.backend,
            "prompt_chars": self.prompt_chars,
            "cost_usd": round(self.cost_usd, 6),
            "filed": self.filed,
            "notes": list(self.notes),
        }


@dataclass
class Context:
    """What the model is shown, and what citations may point at."""

    articles: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, str]] = field(default_factory=list)
    loaded: dict[str, wiki.Article] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # key -> title of every hit


def select_context(settings: Settings, question: str, *, skip_own_answer: bool = False) -> Context:
    """Search hits turned into a bounded context (never the whole knowledge base).

    ``skip_own_answer`` (for --file-back) leaves out the qa/ page filed for this very question:
    refreshing that page from a quote of itself would nest the old answer deeper every time."""
    paths = settings.paths
    searchindex.refresh(paths)
    words = " ".join(search.terms(question, drop_stopwords=True)) or question
    own = _qa_title(question).lower()
    ctx = Context()
    total = 0
    for hit in search.search(paths, words, limit=MAX_FULL + MAX_SUMMARIES, kind="article"):
        art = wiki.load_article(paths.knowledge, hit.key)
        if art is None:
            continue
        if skip_own_answer and hit.key.startswith("qa/") and art.title.strip().lower() == own:
            continue
        ctx.titles[hit.key] = art.title
        item: dict[str, Any] = {"path": hit.key, "title": art.title, "summary": art.summary}
        body = art.body.strip()
        if len(ctx.loaded) < MAX_FULL and total < TOTAL_CHARS:
            item["body"] = body[: min(BODY_CHARS, TOTAL_CHARS - total)]
            total += len(item["body"])
            ctx.loaded[hit.key] = art
        ctx.articles.append(item)
    from pipeline.daily import read_entries

    for hit in search.search(paths, words, limit=MAX_DAILY, kind="daily"):
        day = hit.path[len("daily/") : -3]
        entry = next((e for e in read_entries(paths.daily, day) if e.id == hit.key), None)
        if entry is not None:
            ctx.daily.append(
                {
                    "path": f"daily/{day}",
                    "title": entry.title,
                    "project": entry.project,
                    "excerpt": entry.body[:DAILY_CHARS],
                }
            )
    return ctx


def _qa_title(question: str) -> str:
    return "Q: " + " ".join(question.split())[:190]


def build_request(settings: Settings, question: str, *, file_back: bool = False):
    """(LLMRequest or None when nothing matched, Context)."""
    from pipeline.llm.base import LLMRequest, load_prompt, load_schema

    ctx = select_context(settings, question, skip_own_answer=file_back)
    if not ctx.articles and not ctx.daily:
        return None, ctx
    payload: dict[str, Any] = {"question": question.strip()[:2000], "articles": ctx.articles}
    if ctx.daily:
        payload["daily"] = ctx.daily
    request = LLMRequest(
        task="query",
        payload=payload,
        schema=load_schema("query"),
        model=settings.query_model,
        system_prompt=load_prompt("query"),
        max_budget_usd=settings.call_budget_usd,
        timeout_s=settings.call_timeout_s,
        ref="query",
    )
    return request, ctx


def _norm(target: str) -> str:
    t = target.strip().strip("[]").split("|", 1)[0].split("#", 1)[0].strip().replace("\\", "/")
    t = t.lstrip("/")
    if t.lower().startswith("knowledge/"):
        t = t[len("knowledge/") :]
    if t.lower().endswith(".md"):
        t = t[:-3]
    return t


def resolve_citation(settings: Settings, ctx: Context, target: str) -> str | None:
    """The existing page a cited target means, or None. O(1) file checks, no full scan."""
    paths = settings.paths
    t = _norm(target)
    if not t:
        return None
    day = _DAY_RE.match(t.lower())
    if day:
        return f"daily/{day.group(1)}" if (paths.daily / f"{day.group(1)}.md").is_file() else None
    lower = t.lower()
    for key in ctx.titles:
        if key.lower() == lower:
            return key
    candidates = [t] if "/" in t else [f"{folder}/{t}" for folder in wiki.ARTICLE_FOLDERS]
    found = []
    for key in candidates:
        if key.split("/", 1)[0] not in wiki.ARTICLE_FOLDERS:
            continue
        try:
            if safe_join(paths.knowledge, f"{key}.md").is_file():
                found.append(key)
        except Exception:
            continue
    if len(found) == 1:
        return found[0]
    for key, art in ctx.loaded.items():
        if lower in (name.strip().lower() for name in (art.title, *art.aliases)):
            return key
    for key, title in ctx.titles.items():
        if title.strip().lower() == lower:
            return key
    return None


def check_citations(settings: Settings, ctx: Context, answer: str, citations: list[Any]):
    """(answer with unresolved links unlinked and marked, valid keys in order, dropped targets)."""
    valid: list[str] = []
    dropped: list[str] = []

    def keep(key: str) -> None:
        if key not in valid:
            valid.append(key)

    for item in citations:
        key = resolve_citation(settings, ctx, str(item)) if isinstance(item, str) else None
        if key:
            keep(key)
        elif str(item).strip() and str(item) not in dropped:
            dropped.append(str(item)[:200])

    def repl(m: re.Match) -> str:
        inner = m.group(2)
        target, _, display = inner.partition("|")
        key = resolve_citation(settings, ctx, target)
        if key is None:
            name = target.strip()
            if name not in dropped:
                dropped.append(name[:200])
            return (display.strip() or name) + UNVERIFIED
        keep(key)
        name, hash_, heading = target.partition("#")
        if _norm(name) == key:
            return m.group(0)
        return f"{m.group(1)}[[{key}{hash_}{heading}|{display.strip() or target.strip()}]]"

    return wiki.LINK_RE.sub(repl, answer), valid, dropped


def _title_of(settings: Settings, ctx: Context, key: str) -> str:
    if key in ctx.titles:
        return ctx.titles[key]
    if key.startswith("daily/"):
        return f"Daily log {key[6:]}"
    art = wiki.load_article(settings.paths.knowledge, key)
    return art.title if art else key


def run_query(
    settings: Settings,
    question: str,
    *,
    file_back: bool = False,
    backend: Any = None,
    clock: Callable[[], float] = time.time,
) -> QueryResult:
    """Answer ``question`` from the knowledge base. Model failures raise MemcError subclasses."""
    if not question.strip():
        from pipeline.errors import ConfigError

        raise ConfigError('the question is empty; usage: memc query "how did we ...?"')
    request, ctx = build_request(settings, question, file_back=file_back)
    if request is None:
        words = ", ".join(search.terms(question, drop_stopwords=True)[:8]) or question.strip()[:80]
        return QueryResult(
            question=question,
            found=False,
            answer=(
                "The knowledge base has nothing on this: no article or daily entry matches "
                f"({words}). Try other words with `memc search`, or compile pending sessions "
                "with `memc compile`."
            ),
        )
    from pipeline import state
    from pipeline.llm.backends import make_backend
    from pipeline.llm.calls import call

    backend = backend or make_backend(settings)
    conn = state.connect(settings.paths.state_db)
    try:
        reply = call(settings, backend, request, conn=conn, clock=clock)
    finally:
        conn.close()
    answer, valid, dropped = check_citations(
        settings, ctx, str(reply.data.get("answer", "")), list(reply.data.get("citations", []))
    )
    sources = tuple(
        Source(
            k,
            _title_of(settings, ctx, k),
            f"{k}.md" if k.startswith("daily/") else f"knowledge/{k}.md",
        )
        for k in valid
    )
    result = QueryResult(
        question=question,
        answer=answer.strip(),
        sources=sources,
        dropped=tuple(dropped),
        model_called=True,
        backend=backend.name,
        prompt_chars=len(request.prompt_text()),
        cost_usd=reply.cost_usd,
    )
    if file_back:
        result = file_answer(settings, ctx, result, now=clock())
    return result


def file_answer(
    settings: Settings, ctx: Context, result: QueryResult, *, now: float
) -> QueryResult:
    """Write the answer as a qa/ page through the guarded writer (index.md and log.md follow)."""
    from dataclasses import replace

    from pipeline.apply import apply_articles

    # The writer redirects a new page whose slug or title names an existing page into that page;
    # a Q&A must not be merged into a concept page, so it gets its own slug and a "Q:" title.
    slug = wiki.slugify(result.question)[:60].rstrip("-") or "question"
    knowledge = settings.paths.knowledge
    if not (knowledge / "qa" / f"{slug}.md").exists() and any(
        (knowledge / folder / f"{slug}.md").exists() for folder in wiki.ARTICLE_FOLDERS
    ):
        slug = f"{slug[:57].rstrip('-')}-qa"
    title = _qa_title(result.question)
    existing = wiki.load_article(knowledge, f"qa/{slug}")
    if existing is not None and existing.title.strip().lower() != title.lower():
        # Another question whose slug starts the same way owns this page: refreshing it would
        # replace that answer. This question gets a page of its own, named after its full text.
        import hashlib

        digest = hashlib.sha256(title.lower().encode("utf-8")).hexdigest()[:8]
        slug = f"{slug[:51].rstrip('-')}-{digest}"
    key = f"qa/{slug}"
    daily_sources: list[str] = []
    for src in result.sources:
        if src.key.startswith("daily/"):
            daily_sources.append(f"{src.key}.md")
        elif src.key in ctx.loaded:
            daily_sources.extend(ctx.loaded[src.key].sources)
    sources = list(
        dict.fromkeys(s for s in daily_sources if re.match(r"^daily/\d{4}-\d{2}-\d{2}\.md$", s))
    )
    lines = [f"- [[{s.key}|{s.title}]]" for s in result.sources] or ["- (no page was cited)"]
    body = (
        f"**Question:** {' '.join(result.question.split())}\n\n{result.answer}\n\n## Sources\n\n"
        + "\n".join(lines)
    )
    first = re.split(r"(?<=[.!?])\s", " ".join(result.answer.split()), maxsplit=1)[0]
    op = {
        "path": key,
        "title": title,
        "summary": first[:280],
        "aliases": [],
        "tags": ["qa"],
        "body": body,
        "sources": sources[:30],
    }
    from pipeline import versioning

    with versioning.batch(settings, "query --file-back") as vb:
        report = apply_articles(settings, [op], origin="query --file-back", seen=[key], now=now)
        vb.subject = versioning.summarise("query --file-back", report.created, report.updated)
    if report.rejected:
        return replace(result, notes=(*result.notes, f"not filed: {report.rejected[0].reason}"))
    written = (report.written or report.unchanged or (key,))[0]
    notes = tuple(
        f"filed into the existing page {b} (same title or alias)" for _, b in report.redirected
    )
    return replace(result, filed=written, notes=result.notes + notes)
