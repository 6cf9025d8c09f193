"""`make demo` (scripts/demo.py) builds a browsable wiki offline and is idempotent; the
extractive compile is deterministic and recompiling the same entries changes nothing."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import REPO


def load_demo():
    spec = importlib.util.spec_from_file_location("memc_demo", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(root):
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("daily", "knowledge")
        for p in (root / folder).rglob("*.md")
    }


@pytest.fixture
def demo_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path / "demo-root"


def test_demo_builds_wiki_and_is_idempotent(demo_root, capsys):
    demo = load_demo()
    assert demo.main(["--root", str(demo_root)]) == 0
    out = capsys.readouterr().out
    assert "Obsidian" in out and "index.md" in out
    first = snapshot(demo_root)
    dailies = [k for k in first if k.startswith("daily/")]
    assert len(dailies) >= 2
    articles = [k for k in first if k.count("/") == 2]
    assert "knowledge/concepts/acme-api.md" in articles
    assert "knowledge/concepts/billing-service.md" in articles
    assert len(articles) >= 4
    index = first["knowledge/index.md"].decode()
    for key in articles:
        assert f"[[{key[len('knowledge/') : -3]}|" in index
    assert "extractive" in first["knowledge/concepts/acme-api.md"].decode().lower()
    assert demo.main(["--root", str(demo_root), "--quiet"]) == 0
    assert snapshot(demo_root) == first


def test_recompile_all_changes_nothing(demo_root):
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings

    load_demo().main(["--root", str(demo_root), "--quiet"])
    before = snapshot(demo_root)
    report = run_compile(load_settings(demo_root), all=True)
    assert report.status == "compiled" and report.entries_compiled >= 4
    assert report.to_dict()["created"] == [] and report.to_dict()["updated"] == []
    after = snapshot(demo_root)
    log_before = before.pop("knowledge/log.md")
    assert after.pop("knowledge/log.md") == log_before
    assert after == before


def test_extractive_compile_is_deterministic_and_links_pages():
    import jsonschema

    from pipeline.llm import extractive_wiki
    from pipeline.llm.base import load_schema

    entries = [
        {
            "id": "a" * 12,
            "source": "daily/2026-11-18.md",
            "time": "09:14",
            "project": "acme-api",
            "title": "Advisory locks",
            "text": "**Context:** ran `pytest -q` on worker.py with Postgres"
            "\n\n**Decisions:**\n- use advisory locks",
        },
        {
            "id": "b" * 12,
            "source": "daily/2026-11-19.md",
            "time": "10:00",
            "project": "billing",
            "title": "Invoice test",
            "text": "**Context:** fixed with Postgres; ran `pytest -q`",
        },
    ]
    payload = {"entries": entries, "existing": [], "related": []}
    reply = extractive_wiki.compile(payload)
    assert reply == extractive_wiki.compile(payload)
    jsonschema.validate(reply, load_schema("compile"))
    by_path = {a["path"]: a for a in reply["articles"]}
    assert set(by_path) == {
        "concepts/acme-api",
        "concepts/billing",
        "concepts/postgres",
        "concepts/pytest",
    }
    pg = by_path["concepts/postgres"]["body"]
    assert "[[concepts/acme-api|acme-api]]" in pg and "[[daily/2026-11-18]]" in pg
    assert "[[concepts/pytest|pytest]]" in pg
    assert "Decision: use advisory locks" in by_path["concepts/acme-api"]["body"]
    assert all("extractive" in a["tags"] for a in reply["articles"])


def test_the_demo_persists_its_backend_so_its_suggested_commands_work(demo_root, monkeypatch):
    from pipeline.cli import main

    load_demo().main(["--root", str(demo_root), "--quiet"])
    config = (demo_root / ".memc" / "config.toml").read_text()
    assert 'backend = "extractive"' in config
    monkeypatch.delenv("MEMC_BACKEND")  # a new shell, as the user runs the suggested commands
    assert main(["--root", str(demo_root), "compile"]) == 0
    load_demo().main(["--root", str(demo_root), "--quiet"])  # again: written once, not twice
    assert (demo_root / ".memc" / "config.toml").read_text() == config
