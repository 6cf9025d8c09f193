"""`memc mcp`: the MCP server spoken to over stdio as a client would (JSON-RPC lines). One
server process serves the whole module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline import __version__
from tests.helpers import REPO, make_repo
from tests.homeguard import guarding_home, isolate_environment


class Client:
    def __init__(self, root, env):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--root", str(root), "mcp"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.next_id = 0

    def request(self, method, params=None):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            assert line, "server closed stdout"
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                return reply

    def notify(self, method):
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.proc.stdin.flush()

    def call(self, name, **arguments):
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        return reply["result"]

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One server for the whole module (its start dominates these tests); the tests only read.

    Module-scoped, so it sets up before conftest's per-test isolation and applies it itself."""
    from pipeline.config import load_settings
    from pipeline.setup import init_root

    with pytest.MonkeyPatch.context() as mp, guarding_home():
        isolate_environment(mp, tmp_path_factory.mktemp("mcp-home"))
        root = tmp_path_factory.mktemp("mcp") / "root"
        root.mkdir()
        init_root(load_settings(root))
        (root / "knowledge" / "concepts" / "advisory-locks.md").write_text(
            "---\ntitle: Advisory Locks\nsummary: Postgres advisory locks for the job queue\n---\n"
            "Use pg_try_advisory_lock so two workers never take the same job.\n"
        )
        (root / "daily" / "2026-11-20.md").write_text("# Daily Log: 2026-11-20\n")
        c = Client(root, dict(os.environ, MEMC_ROOT=str(root), PYTHONPATH=str(REPO)))
    try:
        init = c.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        )
        assert init["result"]["serverInfo"]["name"] == "memory-compiler"
        assert init["result"]["serverInfo"]["version"] == __version__
        c.notify("notifications/initialized")
        yield c
    finally:
        c.close()


def _text(result):
    return "".join(part.get("text", "") for part in result["content"])


def test_tools_listed(client):
    names = {t["name"] for t in client.request("tools/list")["result"]["tools"]}
    assert names == {"search", "read", "query", "recent", "remember"}


def test_search_and_read(client):
    found = _text(client.call("search", query="advisory lock"))
    assert "concepts/advisory-locks" in found
    page = _text(client.call("read", path="concepts/advisory-locks"))
    assert "pg_try_advisory_lock" in page
    assert "Daily Log" in _text(client.call("read", path="daily/2026-11-20.md"))


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "concepts/../../x", "knowledge/.obsidian/app"]
)
def test_read_refuses_paths_outside(client, path):
    result = client.call("read", path=path)
    out = _text(result)
    assert result["isError"] is True
    assert "refused:" in out or "not found:" in out
    assert "root:" not in out


def test_query_without_matches_makes_no_model_call(client):
    out = _text(client.call("query", question="kubernetes helm charts"))
    assert "nothing" in out.lower()


@pytest.fixture
def writer(root, memc_env):
    """A server of its own for the tests that write (the module's server is read-only)."""
    c = Client(root, memc_env)
    c.request(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    )
    c.notify("notifications/initialized")
    yield c
    c.close()


def test_remember_keeps_a_redacted_note_with_its_source_and_recent_lists_it(writer, root, tmp_path):
    project = make_repo(tmp_path / "work" / "api", "git@github.com:acme/billing.git")
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
    note = f"Staging deploys need the VPN; the deploy token {token} lives in the vault."
    kept = json.loads(_text(writer.call("remember", note=note, project=str(project))))
    assert kept["project"] == "billing" and kept["redacted"] >= 1
    daily = (root / kept["path"]).read_text()
    assert token not in daily and "[REDACTED:" in daily
    assert "Kept on request through the MCP remember tool" in daily
    assert "project=github.com/acme/billing" in daily and "event=remember" in daily
    assert "**Decisions:**" not in daily  # a note is data, not a decision
    listed = json.loads(_text(writer.call("recent", project=str(project / "src"))))
    assert listed["project"] == "billing"
    assert [e["title"] for e in listed["entries"]] == [kept["title"]]
    assert "VPN" in _text(writer.call("search", query="staging VPN"))


def test_remember_refuses_an_empty_note(writer, root):
    before = sorted(p.read_text() for p in (root / "daily").glob("*.md"))
    result = writer.call("remember", note="   ")
    assert result["isError"] is True and "non-empty note" in _text(result)
    assert sorted(p.read_text() for p in (root / "daily").glob("*.md")) == before
