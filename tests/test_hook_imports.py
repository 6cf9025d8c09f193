"""The hook's import graph is the standard library plus `pipeline` itself: nothing else.

Runs real hook calls (a capture that queues a job, and a SessionStart) inside a fresh
interpreter, then inspects its sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

from tests.helpers import PYTHON

HEAVY = ("claude_agent_sdk", "click", "yaml", "watchdog", "tenacity", "jsonschema", "mcp", "anyio")

PROBE = textwrap.dedent("""
    import io, json, os, sys
    before = set(sys.modules)  # what site.py loaded (e.g. setuptools' _distutils_hack)
    from pipeline.entry import main
    for event, payload in json.loads(sys.argv[1]):
        r, w = os.pipe()
        os.write(w, payload.encode())
        os.close(w)
        sys.stdin = os.fdopen(r, "r")
        out, sys.stdout = sys.stdout, io.StringIO()
        try:
            assert main(["hook", event]) == 0
        finally:
            sys.stdout = out
    top = {name.split(".")[0] for name in set(sys.modules) - before}
    print(json.dumps(sorted(top - set(sys.stdlib_module_names) - {"pipeline", "__main__"})))
""")


def test_hook_imports_only_the_standard_library(memc_env, root, tmp_path):
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"type":"user","message":{"role":"user","content":"hi"}}\n')
    payload = json.dumps(
        {
            "session_id": "s1",
            "transcript_path": str(transcript),
            "cwd": "/home/dev/demo",
            "hook_event_name": "SessionEnd",
        }
    )
    calls = [["session-end", payload], ["stop", payload], ["session-start", payload]]
    env = dict(memc_env)  # MEMC_SPAWN_DRAIN=0: no real drain is started by a test
    proc = subprocess.run(
        [PYTHON, "-c", PROBE, json.dumps(calls)], capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()
    outside = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert outside == [], f"the hook imported non-stdlib modules: {outside}"
    assert not set(HEAVY) & set(outside)
    assert list((root / ".memc" / "inbox").glob("*.json")), "the probe's capture queued nothing"


# What a capture hook must not pay for: the full settings parser (tomllib, dataclasses), the
# redactor's 50 patterns, typing, tempfile, OpenSSL's hashlib, and the model/value modules.
CAPTURE_MUST_NOT_IMPORT = (
    "dataclasses",
    "tomllib",
    "typing",
    "tempfile",
    "inspect",
    "pipeline.config",
    "pipeline.redact",
    "pipeline.models",
)

LIGHT_PROBE = textwrap.dedent("""
    import io, json, os, sys
    from pipeline.entry import main
    event, payload = json.loads(sys.argv[1])
    r, w = os.pipe()
    os.write(w, payload.encode())
    os.close(w)
    sys.stdin = os.fdopen(r, "r")
    assert main(["hook", event]) == 0
    print(json.dumps(sorted(sys.modules)))
""")


def test_capture_hooks_import_only_what_a_capture_needs(memc_env, root, tmp_path):
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"type":"user","message":{"role":"user","content":"hi"}}\n')
    (root / ".memc" / "config.toml").write_text(
        '# plain settings are read without tomllib\nstop_min_lines = 1\nbackend = "extractive"\n'
    )
    payload = json.dumps(
        {"session_id": "s1", "transcript_path": str(transcript), "cwd": "/home/dev/demo"}
    )
    first = True
    # The first capture with a configuration validates it with the full parser; the others
    # (the ones probed) trust that verdict.
    for event in ("session-end", "session-end", "stop", "pre-compact"):
        with transcript.open("a") as fh:
            fh.write('{"type":"user","message":{"role":"user","content":"more"}}\n')
        proc = subprocess.run(
            [PYTHON, "-c", LIGHT_PROBE, json.dumps([event, payload])],
            capture_output=True,
            env=dict(memc_env),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        loaded = set(json.loads(proc.stdout.decode().strip().splitlines()[-1]))
        assert "pipeline.capture" in loaded  # it did capture
        if first:
            first = False
            continue
        assert not loaded & set(CAPTURE_MUST_NOT_IMPORT), sorted(
            loaded & set(CAPTURE_MUST_NOT_IMPORT)
        )
    log = (root / ".memc" / "logs" / "hooks.log").read_text()
    assert log.count(" queued ") == 4, log  # stop too: its threshold came from config.toml


# SessionStart reads the index and the daily files: it needs the paths, not the settings parser.
CONTEXT_MUST_NOT_IMPORT = ("tomllib", "pipeline.config", "pipeline.models", "_hashlib", "click")


def test_session_start_imports_no_settings_parser(memc_env, root):
    (root / ".memc" / "config.toml").write_text('backend = "extractive"\n')
    payload = json.dumps({"session_id": "s1", "cwd": "/home/dev/demo"})
    loaded: list[set[str]] = []
    for _ in range(2):  # the first call validates the configuration with the full parser
        proc = subprocess.run(
            [PYTHON, "-c", LIGHT_PROBE, json.dumps(["session-start", payload])],
            capture_output=True,
            env=dict(memc_env),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        loaded.append(set(json.loads(proc.stdout.decode().strip().splitlines()[-1])))
    assert "pipeline.inject" in loaded[1]  # it did build the context
    assert not loaded[1] & set(CONTEXT_MUST_NOT_IMPORT), sorted(
        loaded[1] & set(CONTEXT_MUST_NOT_IMPORT)
    )
