"""Proof suite (issue 12, damaged state): a state.db cut to half its size, overwritten with
garbage or emptied to 0 bytes.

On main every hook failed silently (no spool for a cut or garbage file; a 0-byte file silently
became a fresh database: cursors gone, every entry pending again), SessionStart said nothing,
`memc doctor` said "Nothing blocks the pipeline" and `memc status` exited 1. Now:
- a capture hook still spools: the damaged file is set aside (never deleted or changed) and
  rebuilt, from what is still readable in it and from daily/;
- SessionStart says what is wrong (before the rebuild) or what happened and what was lost
  (after it); doctor fails on damage (with `--fix` as the repair) and warns after a rebuild;
  status works and carries the same attention line;
- compiled entries stay compiled (no full recompile), rows readable in a cut file come back;
- a healthy database never loads the recovery code (the probe costs nothing per hook).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import textwrap
import time

import pytest

from pipeline import state
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.drain import drain
from pipeline.pending import PENDING
from tests.helpers import PYTHON, capture_session, hook_inproc, hook_payload, write_transcript

CWD = "/home/dev/projects/acme"
DAMAGES = ("half", "garbage", "zero")


@pytest.fixture
def used(root, monkeypatch):
    """A root with two captured, distilled and compiled sessions (extractive backend)."""
    from pipeline.compiler import run_compile

    monkeypatch.setenv("MEMC_BACKEND", "extractive")
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    settings = load_settings(root)
    for sid in ("s1", "s2"):
        assert capture_session(settings, cwd=CWD, sid=sid).status == "queued"
    drain(settings, run_after=False)
    assert run_compile(settings).status == "compiled"
    conn = state.connect(settings.paths.state_db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute(f"SELECT COUNT(*) FROM entries WHERE {PENDING}").fetchone()[0] == 0
    finally:
        conn.close()
    return settings


def _damage(db, how: str) -> bytes:
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{db}{suffix}"):
            os.unlink(f"{db}{suffix}")
    if how == "half":
        os.truncate(db, db.stat().st_size // 2)
    elif how == "garbage":
        db.write_bytes(hashlib.sha256(b"seed").digest() * 2000)
    else:
        db.write_bytes(b"")
    old = time.time() - 60  # not a file another process is creating this instant
    os.utime(db, (old, old))
    return db.read_bytes()


def _grow(sid: str) -> str:
    return str(write_transcript(CWD, sid, turns=10))  # 4 new turns after the captured 6


def _session_start(root, monkeypatch, capsys) -> dict:
    capsys.readouterr()
    payload = json.dumps({"session_id": "new", "cwd": CWD}).encode()
    assert hook_inproc(["session-start"], root, payload, monkeypatch) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("how", DAMAGES)
def test_hooks_still_spool_and_session_start_says_what_is_wrong(
    used, root, monkeypatch, capsys, how
):
    db = used.paths.state_db
    damaged = _damage(db, how)

    before = _session_start(root, monkeypatch, capsys)
    context = before["hookSpecificOutput"]["additionalContext"]
    assert "state.db is damaged" in before["systemMessage"] and "memc doctor --fix" in context
    assert db.read_bytes() == damaged  # SessionStart only reads

    inbox = root / ".memc" / "inbox"
    transcript = _grow("s1")
    assert hook_inproc(["session-end"], root, hook_payload("s1", transcript, CWD), monkeypatch) == 0
    assert list(inbox.glob("*.json")), (root / ".memc" / "logs" / "hooks.log").read_text()
    (aside,) = db.parent.glob("state.db.damaged-*")
    assert aside.read_bytes() == damaged  # kept as it was, never deleted

    after = _session_start(root, monkeypatch, capsys)
    note = after["systemMessage"]
    assert "state.db was damaged" in note and "rebuilt" in note and str(aside) in note
    assert "delete the damaged copy" in note


@pytest.mark.parametrize("how", DAMAGES)
def test_doctor_reports_damage_and_fix_repairs_it(used, root, capsys, how):
    db = used.paths.state_db
    damaged = _damage(db, how)
    assert main(["--root", str(root), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "state-db:" in out and "is damaged" in out and "memc doctor --fix" in out
    assert "Nothing blocks the pipeline" not in out
    assert db.read_bytes() == damaged  # doctor without --fix changes nothing

    main(["--root", str(root), "doctor", "--fix"])
    out = capsys.readouterr().out
    assert "fixed: state.db was damaged" in out
    from pipeline.doctor import check_state

    (aside,) = db.parent.glob("state.db.damaged-*")
    assert aside.read_bytes() == damaged
    check = check_state(used)
    assert check.status == "warn" and str(aside) in check.fix
    aside.unlink()
    assert check_state(used).status == "ok"


@pytest.mark.parametrize("how", DAMAGES)
def test_status_works_and_names_the_rebuild(used, root, capsys, how):
    _damage(used.paths.state_db, how)
    assert main(["--root", str(root), "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("state.db was damaged" in item for item in doc["attention"])


@pytest.mark.parametrize("how", DAMAGES)
def test_compiled_entries_stay_compiled_after_the_rebuild(used, how):
    from pipeline.compiler import run_compile

    _damage(used.paths.state_db, how)
    conn = state.connect(used.paths.state_db)
    try:
        rows = conn.execute("SELECT COUNT(*), COUNT(compiled_at) FROM entries").fetchone()
    finally:
        conn.close()
    assert rows[0] >= 2 and rows[0] == rows[1]  # every entry back, and known as compiled
    assert run_compile(used).status == "nothing"  # no recompile of the whole history


def test_rows_before_the_cut_come_back(root, monkeypatch):
    db = root / ".memc" / "state.db"
    conn = state.connect(db)
    with state.transaction(conn):
        for i in range(2000):
            conn.execute(
                "INSERT INTO cursors(session_key, session_id, transcript_path, identity, offset) "
                "VALUES (?,?,?,?,?)",
                (f"k{i:05}", f"s{i}", f"/t/{i}.jsonl", "id", i),
            )
            conn.execute("INSERT INTO private_sessions(session_id, at) VALUES (?, 1)", (f"p{i}",))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (root / "daily").joinpath("2026-11-20.md").write_text("# Daily Log: 2026-11-20\n")
    _damage(db, "half")

    conn = state.connect(db)
    try:
        cursors = conn.execute("SELECT COUNT(*) FROM cursors").fetchone()[0]
        private = conn.execute("SELECT COUNT(*) FROM private_sessions").fetchone()[0]
        record = json.loads(state.kv_get(conn, state.RECOVERY_KEY) or "{}")
    finally:
        conn.close()
    assert 0 < cursors < 2000 and 0 < private < 2000
    assert record["salvaged"]["cursors"] == cursors
    assert not [p for p in db.parent.iterdir() if p.name.startswith(".tmp-")]


_PROBE = textwrap.dedent("""
    import io, json, os, sys
    before = set(sys.modules)
    from pipeline.entry import main
    r, w = os.pipe()
    os.write(w, sys.argv[1].encode())
    os.close(w)
    sys.stdin = os.fdopen(r, "r")
    out, sys.stdout = sys.stdout, io.StringIO()
    assert main(["hook", "session-end"]) == 0
    sys.stdout = out
    top = {name.split(".")[0] for name in set(sys.modules) - before}
    outside = sorted(top - set(sys.stdlib_module_names) - {"pipeline", "__main__"})
    print(json.dumps(["pipeline.staterecovery" in sys.modules, outside]))
""")


@pytest.mark.parametrize("damaged", [False, True])
def test_the_hook_stays_stdlib_only_and_loads_recovery_only_on_damage(
    memc_env, root, tmp_path, damaged
):
    """A healthy database never loads the recovery code (the probe costs one stat per open);
    a damaged one is healed with the standard library alone (the plugin's bare python3)."""
    if damaged:
        _damage(root / ".memc" / "state.db", "garbage")
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"type":"user","message":{"role":"user","content":"hi"}}\n')
    payload = hook_payload("s1", transcript).decode()
    proc = subprocess.run(
        [PYTHON, "-c", _PROBE, payload], capture_output=True, text=True, env=memc_env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    loaded, outside = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded is damaged and outside == []
    assert list((root / ".memc" / "inbox").glob("*.json"))  # captured either way


def _corrupt_table(db, table: str) -> None:
    """Overwrite the root pages of ``table`` and its indexes: the file still opens (page 1 is
    intact), the first query on that table fails with "database disk image is malformed"."""
    conn = state.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        sql = "SELECT rootpage FROM sqlite_master WHERE tbl_name=? AND rootpage > 0"
        roots = [row[0] for row in conn.execute(sql, (table,))]  # the table and its indexes
    finally:
        conn.close()
    with open(db, "r+b") as fh:
        for rootpage in roots:
            fh.seek((rootpage - 1) * page_size)
            fh.write(b"\xa5" * page_size)


def test_damage_met_past_the_open_is_healed_by_the_hook(used, root, monkeypatch):
    db = used.paths.state_db
    _corrupt_table(db, "private_sessions")  # capture's first query
    conn = state.connect(db)  # opens: the damage is past the open
    conn.close()
    assert not list(db.parent.glob("state.db.damaged-*"))

    transcript = _grow("s2")
    assert hook_inproc(["session-end"], root, hook_payload("s2", transcript, CWD), monkeypatch) == 0
    assert list((root / ".memc" / "inbox").glob("*.json"))
    assert len(list(db.parent.glob("state.db.damaged-*"))) == 1
    assert "internal error" not in (root / ".memc" / "logs" / "hooks.log").read_text()


def test_doctor_finds_damage_past_the_open(used, root, capsys):
    from pipeline.doctor import check_state

    _corrupt_table(used.paths.state_db, "jobs")
    check = check_state(used)
    assert check.status == "fail" and "memc doctor --fix" in check.fix
    assert main(["--root", str(root), "doctor", "--fix"]) in (0, 1)
    assert "fixed: state.db was damaged" in capsys.readouterr().out
    assert check_state(used).status == "warn"


def test_a_second_recovery_finds_nothing_to_do(used):
    from pipeline.staterecovery import recover_damaged

    db = used.paths.state_db
    _damage(db, "garbage")
    first = recover_damaged(db, "file is not a database")
    second = recover_damaged(db, "file is not a database")  # a process that waited for the lock
    assert first is not None and second is None
    assert len(list(db.parent.glob("state.db.damaged-*"))) == 1


def test_locks_and_missing_files_are_never_damage(tmp_path):
    import sqlite3

    db = tmp_path / "plain.db"
    holder = sqlite3.connect(db, isolation_level=None)  # rollback journal: a writer locks readers
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(db, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("SELECT * FROM t").fetchall()
    holder.execute("ROLLBACK")
    holder.close()
    other.close()
    with pytest.raises(sqlite3.OperationalError) as missing:
        sqlite3.connect(f"file:{tmp_path / 'none.db'}?mode=ro", uri=True).execute("SELECT 1")
    db.write_bytes(b"x" * 4096)
    with pytest.raises(sqlite3.DatabaseError) as garbage:
        sqlite3.connect(db).execute("SELECT * FROM sqlite_master").fetchall()
    assert state.damage(locked.value) is None and state.damage(missing.value) is None
    assert state.damage(garbage.value) == "file is not a database"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_versioned_root_keeps_pending_entries_pending(tmp_path, monkeypatch):
    """With git, the rebuild knows exactly which entries were compiled (``Memc-Entries``): an
    entry distilled after the last compile, in a daily file that compile already cited, stays
    pending (the no-git rule, "its daily file is cited", would take it as compiled)."""
    from pipeline.compiler import run_compile

    monkeypatch.setenv("MEMC_BACKEND", "extractive")
    monkeypatch.setenv("MEMC_SPAWN_DRAIN", "0")
    root = tmp_path / "vroot"
    assert main(["--root", str(root), "init"]) == 0
    settings = load_settings(root)
    assert capture_session(settings, cwd=CWD, sid="s1").status == "queued"
    drain(settings, run_after=False)
    assert run_compile(settings).status == "compiled"
    assert capture_session(settings, cwd=CWD, sid="s2").status == "queued"
    drain(settings, run_after=False)

    def pending() -> set[str]:
        conn = state.connect(settings.paths.state_db)
        try:
            return {r[0] for r in conn.execute(f"SELECT id FROM entries WHERE {PENDING}")}
        finally:
            conn.close()

    waiting = pending()
    assert waiting  # s2's entries, same day as s1's compiled ones
    _damage(settings.paths.state_db, "garbage")
    assert pending() == waiting


def test_a_rebuilt_synced_root_leaves_other_hosts_entries_to_them(tmp_path):
    """A synced root whose state.db is rebuilt: an entry another host distilled and has not
    compiled stays that host's (not compiled here twice), and one that host's committed record
    lists counts as compiled."""
    from pipeline import compiler
    from tests.helpers import bare_remote, distil_entry, sync_root

    url = bare_remote(tmp_path)
    alpha, beta = sync_root(tmp_path, "alpha"), sync_root(tmp_path, "beta")
    distil_entry(beta, "b00000000001", "Beta one", "Fact beta-one")
    assert compiler.run_compile(load_settings(beta.root)).status == "compiled"
    distil_entry(beta, "b00000000002", "Beta two", "Fact beta-two")  # not compiled by beta yet
    assert main(["--root", str(beta.root), "sync", "--remote", url]) == 0
    assert main(["--root", str(alpha.root), "sync", "--remote", url]) == 0
    _damage(alpha.paths.state_db, "garbage")
    conn = state.connect(alpha.paths.state_db)  # set aside and rebuilt
    try:
        found = conn.execute("SELECT id, host, compiled_at FROM entries")
        rows = {r[0]: (r[1], r[2]) for r in found}
        assert rows["b00000000001"][0] == "beta" and rows["b00000000001"][1] is not None
        assert rows["b00000000002"] == ("beta", None)
        assert compiler.select_entries(alpha, conn) == []
    finally:
        conn.close()


def _compiled_twice(tmp_path):
    """A versioned root (host alpha) with entry a1 compiled in one batch, then a2 in a second
    batch that `memc undo --yes` reverted: a2 is pending again, a1 stays compiled."""
    from pipeline import compiler
    from tests.helpers import distil_entry, sync_root

    alpha = sync_root(tmp_path, "alpha")
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    assert compiler.run_compile(load_settings(alpha.root)).status == "compiled"
    distil_entry(alpha, "a00000000002", "Alpha two", "Fact alpha-two")
    assert compiler.run_compile(load_settings(alpha.root)).status == "compiled"
    assert main(["--root", str(alpha.root), "undo", "--yes"]) == 0
    assert _pending(alpha) == {"a00000000002"}
    return alpha


def _pending(settings) -> set[str]:
    """The pending entries, once every entry of the root is known to state.db."""
    conn = state.connect(settings.paths.state_db)  # sets a damaged file aside and rebuilds it
    try:
        known = {r[0] for r in conn.execute("SELECT id FROM entries")}
        assert known == {"a00000000001", "a00000000002"}
        return {r[0] for r in conn.execute(f"SELECT id FROM entries WHERE {PENDING}")}
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_undone_compile_is_pending_after_the_rebuild(tmp_path):
    """The undone batch's commit still names a2 in its ``Memc-Entries`` trailer; the record
    (which undo edited) decides, so a2 is compiled again rather than lost."""
    alpha = _compiled_twice(tmp_path)
    _damage(alpha.paths.state_db, "garbage")
    assert _pending(alpha) == {"a00000000002"}
    assert list(alpha.paths.state_db.parent.glob("state.db.damaged-*"))  # it was rebuilt


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_root_without_records_leaves_out_undone_batches(tmp_path):
    """An older root (no ``daily/.compiled/``): the trailers decide, less the batches a
    ``Memc-Reverts`` trailer names."""
    alpha = _compiled_twice(tmp_path)
    shutil.rmtree(alpha.paths.daily / ".compiled")
    _damage(alpha.paths.state_db, "garbage")
    assert _pending(alpha) == {"a00000000002"}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_entry_taken_out_of_the_record_is_pending_after_the_rebuild(tmp_path):
    """A sync that takes the remote's version of a page takes this host's entries that touched
    it out of the record (``compiledrecord.remove``); the compile commit's trailer still names
    them, but they compile again."""
    from pipeline import compiledrecord, compiler
    from tests.helpers import distil_entry, sync_root

    alpha = sync_root(tmp_path, "alpha")
    distil_entry(alpha, "a00000000001", "Alpha one", "Fact alpha-one")
    distil_entry(alpha, "a00000000002", "Alpha two", "Fact alpha-two")
    assert compiler.run_compile(load_settings(alpha.root)).status == "compiled"
    assert compiledrecord.remove(alpha.paths.daily, "alpha", ["a00000000001"]) == ["a00000000001"]
    _damage(alpha.paths.state_db, "garbage")
    assert _pending(alpha) == {"a00000000001"}
