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


def test_damaged_database_gives_a_clear_error(tmp_path):
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(state.StateDamaged, match="move it aside"):
        state.connect(db)


def test_damaged_database_through_the_cli_and_a_hook(root, capsys):
    (root / ".memc" / "state.db").write_bytes(b"garbage" * 200)
    assert main(["--root", str(root), "status"]) == 1
    err = capsys.readouterr().err
    assert "state.db.broken" in err and "internal error" not in err


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
