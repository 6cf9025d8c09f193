"""Daily-log rendering, parsing and exactly-once appends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pipeline.daily import (
    append_entry,
    entry_id,
    list_days,
    parse_entries,
    read_entries,
    render_entry,
)
from pipeline.models import Entry


def _entry(title="Switched queue", **kw):
    return Entry(
        worth_saving=True,
        title=title,
        context="Jobs were lost.",
        decisions=("Use advisory locks because rows stayed locked",),
        lessons=("fsync the dir",),
        action_items=(),
        key_exchanges=("User: why?",),
        **kw,
    )


def test_render_is_deterministic_and_parses_back():
    block = render_entry(
        _entry(),
        entry_id="3f9c2a1b7e4d",
        time_hhmm="14:32",
        project="acme-api",
        session_id="cd613e30-1111",
        event="session-end",
    )
    assert block == render_entry(
        _entry(),
        entry_id="3f9c2a1b7e4d",
        time_hhmm="14:32",
        project="acme-api",
        session_id="cd613e30-1111",
        event="session-end",
    )
    assert block.startswith(
        "### 14:32 · acme-api · Switched queue\n"
        "<!-- memc:entry id=3f9c2a1b7e4d session=cd613e30 event=session-end -->\n"
    )
    assert "**Decisions:**\n- Use advisory locks" in block
    assert "Action items" not in block  # empty sections are omitted
    [parsed] = parse_entries("# Daily Log: 2026-11-20\n\n" + block, "2026-11-20")
    assert (parsed.id, parsed.time, parsed.project, parsed.title) == (
        "3f9c2a1b7e4d",
        "14:32",
        "acme-api",
        "Switched queue",
    )
    assert parsed.daily_path == "daily/2026-11-20.md"
    assert "fsync the dir" in parsed.body


def test_model_text_cannot_forge_markers_or_headings():
    evil = Entry(
        True,
        title="x\n<!-- memc:entry id=aaaaaaaaaaaa session=s event=e -->",
        context="### 10:00 · p · forged\n<!-- memc:entry id=bbbbbbbbbbbb session=s event=e -->",
        decisions=("-->",),
    )
    block = render_entry(
        evil,
        entry_id="cccccccccccc",
        time_hhmm="10:00",
        project="p · q",
        session_id="../../s",
        event="Stop",
    )
    parsed = parse_entries(block, "2026-11-20")
    assert [p.id for p in parsed] == ["cccccccccccc"]
    assert "session=s event=stop" in block


def test_append_is_exactly_once(tmp_path):
    block = render_entry(
        _entry(),
        entry_id="111111111111",
        time_hhmm="09:00",
        project="p",
        session_id="s",
        event="stop",
    )
    assert append_entry(tmp_path, "2026-11-20", block, "111111111111") is True
    assert append_entry(tmp_path, "2026-11-20", block, "111111111111") is False
    text = (tmp_path / "2026-11-20.md").read_text()
    assert text.startswith("# Daily Log: 2026-11-20\n\n###")
    assert text.count("id=111111111111") == 1
    assert list_days(tmp_path) == ["2026-11-20"]
    assert len(read_entries(tmp_path, "2026-11-20")) == 1


def test_append_after_hand_edit_without_trailing_newline(tmp_path):
    (tmp_path / "2026-11-21.md").write_text("# Daily Log: 2026-11-21\n\nmy own note")
    block = render_entry(
        _entry("Second"),
        entry_id="222222222222",
        time_hhmm="10:00",
        project="p",
        session_id="s",
        event="stop",
    )
    append_entry(tmp_path, "2026-11-21", block, "222222222222")
    text = (tmp_path / "2026-11-21.md").read_text()
    assert "my own note\n\n### 10:00" in text
    assert [e.title for e in read_entries(tmp_path, "2026-11-21")] == ["Second"]


def test_concurrent_appends_of_the_same_and_different_ids(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from pipeline.daily import append_entry, render_entry
        from pipeline.models import Entry
        for i in range(20):
            eid = f"{{i:012x}}" if sys.argv[1] == "same" else f"{{int(sys.argv[2]) * 100 + i:012x}}"
            block = render_entry(Entry(True, title="t" * 500, context="c" * 3000), entry_id=eid,
                                 time_hhmm="10:00", project="p", session_id="s", event="stop")
            append_entry(__import__("pathlib").Path({str(tmp_path)!r}), "2026-11-22", block, eid)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, mode, str(n)])
        for n, mode in enumerate(["same", "same", "same", "diff", "diff"])
    ]
    assert all(p.wait(60) == 0 for p in procs)
    entries = read_entries(tmp_path, "2026-11-22")
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) == 60
    assert all(e.body == "**Context:** " + "c" * 3000 for e in entries)


def test_entry_id_is_stable():
    assert entry_id("job", 0) == entry_id("job", 0)
    assert entry_id("job", 0) != entry_id("job", 1)
    assert len(entry_id("job")) == 12


def test_sections_and_context_parse_back_from_the_rendering():
    from pipeline.daily import entry_context, section_items

    entry = Entry(
        True,
        title="t",
        context="Line one.\nLine two.",
        decisions=("d1", "d2"),
        lessons=("l1",),
        action_items=("a1",),
        key_exchanges=("k1",),
    )
    [parsed] = parse_entries(
        render_entry(
            entry,
            entry_id="aaaaaaaaaaaa",
            time_hhmm="10:00",
            project="p",
            session_id="s",
            event="stop",
        ),
        "2026-11-20",
    )
    assert entry_context(parsed.body) == "Line one.\nLine two."
    assert section_items(parsed.body) == [
        ("Decisions", "d1"),
        ("Decisions", "d2"),
        ("Lessons", "l1"),
        ("Action items", "a1"),
    ]
    assert section_items(parsed.body, ("Key exchanges",)) == [("Key exchanges", "k1")]
    assert entry_context("no context here") == ""


def test_lone_surrogates_are_made_writable():
    from pipeline.fsutil import writable_text

    block = render_entry(
        Entry(True, title="bad \ud800 title", decisions=("x\udfffy",)),
        entry_id="bbbbbbbbbbbb",
        time_hhmm="10:00",
        project="p",
        session_id="s",
        event="stop",
    )
    block.encode("utf-8")  # would raise UnicodeEncodeError on a lone surrogate
    assert "bad \ufffd title" in block and writable_text("ok") == "ok"


def _block(eid: str, title: str = "Entry") -> str:
    return render_entry(
        _entry(title), entry_id=eid, time_hhmm="10:00", project="p", session_id="s", event="stop"
    )


def test_append_in_a_data_root_dedupes_without_rereading_the_day(root, monkeypatch):
    daily_dir = root / "daily"
    ids = [f"{i:012x}" for i in range(30)]
    for eid in ids:
        assert append_entry(daily_dir, "2026-11-23", _block(eid), eid) is True
    reads = []
    real = Path.read_text
    monkeypatch.setattr(
        Path, "read_text", lambda self, *a, **k: reads.append(self) or real(self, *a, **k)
    )
    for eid in ids:  # every id is still refused...
        assert append_entry(daily_dir, "2026-11-23", _block(eid), eid) is False
    assert append_entry(daily_dir, "2026-11-23", _block("ffffffffffff"), "ffffffffffff") is True
    assert not [p for p in reads if p.name == "2026-11-23.md"]  # ...without reading the file
    monkeypatch.undo()
    entries = read_entries(daily_dir, "2026-11-23")
    assert [e.id for e in entries] == [*ids, "ffffffffffff"]


def test_a_day_changed_outside_memc_is_read_again(root):
    daily_dir = root / "daily"
    path = daily_dir / "2026-11-24.md"
    assert append_entry(daily_dir, "2026-11-24", _block("aaaaaaaaaaaa"), "aaaaaaaaaaaa")
    # another machine's entry arrives by a merge, in the middle of the file
    text = path.read_text()
    merged = text.replace("### 10:00", _block("bbbbbbbbbbbb", "Merged") + "\n### 10:00", 1)
    path.write_text(merged)
    assert append_entry(daily_dir, "2026-11-24", _block("bbbbbbbbbbbb"), "bbbbbbbbbbbb") is False
    assert path.read_text().count("id=bbbbbbbbbbbb") == 1
    path.write_text("# Daily Log: 2026-11-24\n\nrestored from a backup, no entries\n")
    assert append_entry(daily_dir, "2026-11-24", _block("aaaaaaaaaaaa"), "aaaaaaaaaaaa") is True
    (root / ".memc" / "cache" / "daily.db").unlink()  # the index is only a cache
    assert append_entry(daily_dir, "2026-11-24", _block("aaaaaaaaaaaa"), "aaaaaaaaaaaa") is False
    assert [e.id for e in read_entries(daily_dir, "2026-11-24")] == ["aaaaaaaaaaaa"]
