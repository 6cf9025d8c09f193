"""Who compiles what across roots sharing one history: only this host's entries are pending here,
each compile batch lands in this host's committed record (daily/.compiled/<host>.txt), undo takes
entries out of it, records mark entries compiled on any root, and history names host and person."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline import compiledrecord, compiler, daily, pending, state
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.models import Entry
from tests.fakes import FakeBackend
from tests.helpers import DAY, T0, git


def plant(settings, eid: str, title: str, host: str = "", day: str = DAY) -> str:
    """An entry appended to the day's log as distil writes it, with the marker's host."""
    block = daily.render_entry(
        Entry(True, title=title, context=f"{title} context"),
        entry_id=eid, time_hhmm="10:00", project="acme", session_id="s1", event="stop",
        host=host,
    )  # fmt: skip
    daily.append_entry(settings.paths.daily, day, block, eid)
    return block


def reply(request):
    return {
        "articles": [
            {
                "path": "concepts/acme",
                "title": "Acme",
                "summary": "acme",
                "body": "\n".join(e["title"] for e in request.payload["entries"]),
                "sources": [e["source"] for e in request.payload["entries"]],
            }
        ]
    }


@pytest.fixture
def alpha(tmp_path):
    root = tmp_path / "alpha"
    assert main(["--root", str(root), "init"]) == 0
    (root / ".memc" / "config.toml").write_text('host = "alpha"\n')
    return load_settings(root)


def test_only_this_hosts_entries_are_pending_and_compiled(alpha):
    plant(alpha, "a00000000001", "Mine with host", host="alpha")
    plant(alpha, "a00000000002", "Mine before hosts")
    plant(alpha, "b00000000001", "Beta's entry", host="beta")
    fake = FakeBackend(default=reply)
    report = compiler.run_compile(alpha, backend=fake, clock=lambda: T0)
    assert report.status == "compiled"
    [request] = fake.calls
    assert {e["title"] for e in request.payload["entries"]} == {
        "Mine with host",
        "Mine before hosts",
    }
    conn = state.connect(alpha.paths.state_db)
    assert conn.execute("SELECT host FROM entries WHERE id='b00000000001'").fetchone()[0] == "beta"
    assert pending.waiting_by_host(alpha, conn) == {"beta": 1}
    # --all and --file stay with this host's entries too: no entry compiled on two roots
    assert [e.id for e in pending.select_entries(alpha, conn, all=True)] == [
        "a00000000001", "a00000000002"
    ]  # fmt: skip
    assert "b00000000001" not in {e.id for e in pending.select_entries(alpha, conn, file=DAY)}
    record = compiledrecord.read_host(alpha.paths.daily, "alpha")
    assert set(record) == {"a00000000001", "a00000000002"}
    assert "daily/.compiled/alpha.txt" in git(alpha.root, "show", "--name-only", "HEAD")
    assert "Memc-Host: alpha" in git(alpha.root, "log", "-1", "--format=%B")
    assert daily.list_days(alpha.paths.daily) == [DAY]  # the hidden record folder is no day
    from pipeline import lintscan, searchjournal

    assert [rel for rel, _, _ in searchjournal.walk(alpha.paths) if ".compiled" in rel] == []
    issues = lintscan.daily_issues(alpha.paths, conn)
    assert not [i for i in issues if ".compiled" in str(i)]


def test_records_mark_entries_compiled_wherever_they_were_compiled(alpha):
    plant(alpha, "b00000000001", "Beta's entry", host="beta")
    block = plant(alpha, "b00000000002", "Beta's other", host="beta")
    conn = state.connect(alpha.paths.state_db)
    pending.sync_entries(alpha, conn)
    [entry] = [e for e in daily.read_entries(alpha.paths.daily, DAY) if e.id == "b00000000002"]
    assert entry.text.strip() == block.strip()
    compiledrecord.add(alpha.paths.daily, "beta", [(entry.id, pending.entry_hash(entry))])
    compiledrecord.add(alpha.paths.daily, "beta", [("b00000000001", "0123456789abcdef")])
    assert pending.reconcile(alpha, conn, now=T0) == 1  # the stale hash does not count
    rows = dict(conn.execute("SELECT id, compiled_at FROM entries").fetchall())
    assert rows == {"b00000000001": None, "b00000000002": T0}
    assert pending.waiting_by_host(alpha, conn) == {"beta": 1}
    assert compiledrecord.remove(alpha.paths.daily, "beta", ["b00000000002", "nope00"]) == [
        "b00000000002"
    ]
    assert set(compiledrecord.read_all(alpha.paths.daily)) == {"b00000000001"}


def test_undo_takes_the_batch_entries_out_of_the_record(alpha):
    plant(alpha, "a00000000001", "Mine", host="alpha")
    compiler.run_compile(alpha, backend=FakeBackend(default=reply), clock=lambda: T0)
    assert set(compiledrecord.read_host(alpha.paths.daily, "alpha")) == {"a00000000001"}
    assert main(["--root", str(alpha.root), "undo", "--yes"]) == 0
    assert compiledrecord.read_host(alpha.paths.daily, "alpha") == {}
    assert not git(alpha.root, "status", "--porcelain", "--", "daily/.compiled")


def test_another_hosts_batch_is_not_undone_here(alpha, capsys):
    plant(alpha, "a00000000001", "Mine", host="alpha")
    compiler.run_compile(alpha, backend=FakeBackend(default=reply), clock=lambda: T0)
    head = git(alpha.root, "rev-parse", "HEAD").strip()
    beta = load_settings(alpha.root, overrides={"host": "beta"})
    from pipeline.errors import UndoRefused
    from pipeline.history import find_target

    with pytest.raises(UndoRefused, match="made on host alpha"):
        find_target(beta, head)
    with pytest.raises(UndoRefused, match="nothing to undo"):
        find_target(beta, None)


def test_history_names_the_host_and_the_person_who_ran_memc(alpha, capsys):
    plant(alpha, "a00000000001", "Mine", host="alpha")
    compiler.run_compile(alpha, backend=FakeBackend(default=reply), clock=lambda: T0)
    capsys.readouterr()
    assert main(["--root", str(alpha.root), "history", "--json"]) == 0
    newest = json.loads(capsys.readouterr().out)[0]
    assert newest["host"] == "alpha" and newest["committer"].startswith("Test User <")
    assert main(["--root", str(alpha.root), "history", "-n", "1"]) == 0
    assert "memc for Test User <" in capsys.readouterr().out


def test_a_state_db_of_an_earlier_release_gains_the_host_column(tmp_path):
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    old = state.SCHEMA.replace(",\n    host TEXT NOT NULL DEFAULT ''", "")
    assert "host TEXT" not in old
    conn.executescript(old)
    conn.execute("INSERT INTO entries(id, day, daily_path, created_at) VALUES ('e1','d','p',1)")
    conn.commit()
    conn.close()
    conn = state.connect(path)
    assert conn.execute("SELECT host FROM entries").fetchone()[0] == ""
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
