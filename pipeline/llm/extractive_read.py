"""Offline (no model) ``query`` and ``lint`` for the ``extractive`` backend: the read side.

Plain functions ``task(payload) -> dict`` returning JSON valid against ``pipeline/schemas/<task>``.
``query`` answers with the best-matching passages of the pages it was given, quoted and cited,
never with text of its own; ``lint`` finds no contradictions (it cannot judge meaning). Same
payload, same reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.llm.extractive_wiki import _flat

MAX_PASSAGES = 5
_QWORD_RE = re.compile(r"\w+", re.UNICODE)
_QLINK_RE = re.compile(r"!?\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]*))?\]\]")
_QSTOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "should",
        "would",
        "could",
        "about",
        "after",
        "before",
        "over",
        "under",
        "any",
        "all",
        "some",
    ]
)


def _qterms(text: str) -> set[str]:
    return {w for w in _QWORD_RE.findall(str(text).lower()) if len(w) > 1 and w not in _QSTOP}


def query(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Offline answer: the passages of the given pages sharing most words with the question.

    Honest by construction: it quotes, it does not answer, and it says so. Citations are the
    paths of the pages quoted, so they always resolve.
    """
    wanted = _qterms(payload.get("question", ""))
    scored: list[tuple[int, int, str, str]] = []
    order = 0
    for art in payload.get("articles") or []:
        path = str(art.get("path", ""))
        text = str(art.get("body") or art.get("summary") or "")
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            # Boilerplate of pages this module wrote (labels, a filed Q&A's question line and
            # answer preamble) is no passage: quoting it would make a re-filed answer quote itself.
            if not para or para.startswith(
                ("#", "_Extractive page", "**Question:**", "Extractive answer (no language model)")
            ):
                continue
            score = len(wanted & _qterms(para))
            if score:
                scored.append((-score, order, path, para))
            order += 1
    for item in payload.get("daily") or []:
        path = str(item.get("path", ""))
        para = " ".join(str(item.get("excerpt", "")).split())
        score = len(wanted & _qterms(f"{item.get('title', '')} {para}"))
        if para and score:
            scored.append((-score, order, path, f"{item.get('title', '')}: {para}"))
            order += 1
    best: list[tuple[int, int, str, str]] = []
    for item in sorted(scored):  # one passage per page, best pages first
        if len(best) < MAX_PASSAGES and all(item[2] != b[2] for b in best):
            best.append(item)
    if not best:
        return {
            "answer": "Extractive answer (no language model): none of the matching pages has a "
            "passage sharing words with the question.",
            "citations": [],
        }
    lines = [
        "Extractive answer (no language model): the passages that best match the question, "
        "quoted from the knowledge base. Read the cited pages for context.",
        "",
    ]
    for _, _, path, para in best:
        # Links inside a quote become plain text: only the quoted pages are cited.
        quote = _QLINK_RE.sub(lambda m: (m.group(2) or m.group(1)).strip(), para)
        lines.append(f"- [[{path}]]: \u201c{_flat(quote, 400)}\u201d")
    citations = list(dict.fromkeys(path for _, _, path, _ in best))
    return {"answer": "\n".join(lines), "citations": citations}


def lint(payload: Mapping[str, Any]) -> dict[str, Any]:
    """No offline contradiction check: finding contradictions needs a model. (`memc lint` skips the
    call on this backend and says so; this exists so the backend answers every task.)"""
    return {"contradictions": []}
