"""The recall benchmark's dataset is consistent and its scoring means what it says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_recall.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_recall", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_recall"] = module
    spec.loader.exec_module(module)
    return module


def test_every_label_names_a_session_and_every_answer_is_in_its_session(bench):
    sessions = {s.id: s for s in bench.load_sessions()}
    projects = {p.name for p in bench.load_projects()}
    assert len(sessions) == 30
    assert len({s.start.date() for s in sessions.values()}) == 30  # one session per day
    for s in sessions.values():
        assert s.project in projects
        text = " ".join(" ".join(t.split()) for _, t in s.turns).lower()
        assert s.answer.lower() in text, s.id
    prompts = bench.load_prompts()
    assert len({p.id for p in prompts}) == len(prompts)
    for p in prompts:
        assert p.project in projects
        assert p.kind in (*bench.KINDS, "unrelated")
        assert bool(p.answers) == (p.kind != "unrelated"), p.id
        assert all(a in sessions for a in p.answers), p.id


def test_split_is_fixed_and_holds_out_about_a_third(bench):
    prompts = bench.load_prompts()
    held = [p for p in prompts if p.split == "held-out"]
    assert 0.2 < len(held) / len(prompts) < 0.5
    assert bench.split("p01") == bench.split("p01")
    assert {p.split for p in prompts if p.kind == "paraphrased"} == {"dev", "held-out"}


def test_rank_gives_catch_all_pages_the_middle_place(bench):
    assert bench.rank_of([["s1"]], ("s1",)) == 1
    assert bench.rank_of([["s2"], ["s1"]], ("s1",)) == 2
    # a page citing four sessions: the answer shares places 1-4, so rank 2.5
    assert bench.rank_of([["s4", "s3", "s1", "s2"]], ("s1",)) == 2.5
    # sessions already seen take no new place
    assert bench.rank_of([["s2"], ["s2", "s1"]], ("s1",)) == 2
    assert bench.rank_of([["s2"]], ("s1",)) is None


def test_transcripts_render_as_claude_code_jsonl(bench):
    from pipeline.transcript import parse_bytes

    session = next(s for s in bench.load_sessions() if s.id == "s06")
    sid, data, last = bench.render_transcript(session, "/home/u/work/billing/api", "main")
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert all(line["sessionId"] == sid and line["cwd"].endswith("/api") for line in lines)
    parsed = parse_bytes(data)
    rendered = "\n".join(t.text for t in parsed.turns)
    assert "IntegrityError" in rendered  # the failed tool result is kept as an error excerpt
    assert last > session.start.timestamp()
