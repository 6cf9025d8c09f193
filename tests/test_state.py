"""state.db: schema creation, WAL, and a clear error when the file is damaged."""

from __future__ import annotations

import pytest

from pipeline import state
from pipeline.cli import main


def test_connect_creates_schema_and_wal(tmp_path):
    conn = state.connect(tmp_path / "s.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        state.kv_set(conn, "k", "v", now=1.0)
        assert state.kv_get(conn, "k") == "v" and state.kv_get(conn, "missing", "d") == "d"
        assert not state.is_private(conn, "s")
    finally:
        conn.close()
    again = state.connect(tmp_path / "s.db")  # idempotent
    assert state.kv_get(again, "k") == "v"
    again.close()


def test_damaged_database_is_set_aside_and_rebuilt(tmp_path):
    db = tmp_path / "state.db"
    garbage = b"this is not sqlite at all" * 100
    db.write_bytes(garbage)
    with pytest.raises(state.StateDamaged, match="move it aside"):
        state.connect(db, recover=False)
    conn = state.connect(db)  # the default heals: the file is kept aside, never deleted
    try:
        assert state.kv_get(conn, state.RECOVERY_KEY) is not None
    finally:
        conn.close()
    (aside,) = tmp_path.glob("state.db.damaged-*")
    assert aside.read_bytes() == garbage


def test_damaged_database_through_the_cli(root, capsys):
    (root / ".memc" / "state.db").write_bytes(b"garbage" * 200)
    assert main(["--root", str(root), "status"]) == 0
    out = capsys.readouterr().out
    assert "attention: state.db was damaged (file is not a database) and was rebuilt" in out


def test_unusable_but_undamaged_database_is_not_set_aside(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "state.db").mkdir()  # a folder where the file should be: not damage, never moved
    with pytest.raises(state.StateDamaged, match="cannot be used"):
        state.connect(folder / "state.db")
    assert (folder / "state.db").is_dir() and not list(folder.glob("state.db.damaged-*"))


def test_transaction_commits_or_rolls_back_everything(tmp_path):
    from pipeline.state import connect, kv_get, kv_set, transaction

    conn = connect(tmp_path / "state.db")
    with transaction(conn):
        kv_set(conn, "a", "1")
        kv_set(conn, "b", "2")
    try:
        with transaction(conn):
            kv_set(conn, "a", "changed")
            raise KeyboardInterrupt  # not only Exception: Ctrl-C mid-way rolls back too
    except KeyboardInterrupt:
        pass
    assert (kv_get(conn, "a"), kv_get(conn, "b")) == ("1", "2")
    assert not conn.in_transaction
    conn.close()
