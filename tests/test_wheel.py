"""`pip install .` (a built wheel, not editable) gives a working memc: prompts and schemas inside,
a hook that queues a job, a drain that distils it.

The fresh venv gets the wheel with --no-deps; its dependencies come from this test venv's
site-packages through a .pth line (plain paths in a .pth are not site dirs, so this venv's
editable install of the checkout is not activated there). The test checks that `pipeline` is
imported from the fresh venv, not from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO

SAMPLE = sorted((REPO / "samples").glob("*.jsonl"))[0]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # built from a copy, so the build leaves nothing in the checkout
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "pipeline", src / "pipeline", ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    built = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list((work / "dist").glob("memory_compiler-*.whl"))
    venv = work / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpython = venv / "bin" / "python"
    site = subprocess.run(
        [str(vpython), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed = subprocess.run(  # this venv's pip, acting on the fresh venv (pip --python)
        [PYTHON, "-m", "pip", "--python", str(vpython), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (venv / "bin" / "memc").is_file()  # the console script from the wheel's entry points
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "zz_test_deps.pth").write_text(deps + "\n")
    return venv


def _run(venv: Path, *args: str, env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "memc"), *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_built_wheel_runs_a_hook_and_a_drain(wheel_venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    root = tmp_path / "kb"
    where = subprocess.run(
        [
            str(wheel_venv / "bin" / "python"),
            "-c",
            "import pipeline, importlib.resources as r; f = r.files('pipeline');"
            "print(pipeline.__file__);"
            "print((f / 'prompts' / 'distil.md').read_text()[:20]);"
            "print((f / 'schemas' / 'compile.json').read_text()[:1])",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert where[0].startswith(str(wheel_venv)) and where[2] == "{"
    assert where[1].strip()
    version = _run(wheel_venv, "--version", env=env)
    assert version.returncode == 0 and "0." in version.stdout

    assert _run(wheel_venv, "--root", str(root), "init", env=env).returncode == 0
    transcript = tmp_path / "t.jsonl"
    transcript.write_bytes(SAMPLE.read_bytes())
    payload = {"session_id": "w1", "transcript_path": str(transcript), "cwd": "/work/acme-api"}
    hook = _run(
        wheel_venv, "--root", str(root), "hook", "session-end", env=env, stdin=json.dumps(payload)
    )
    assert hook.returncode == 0 and hook.stdout == ""
    assert len(list((root / ".memc" / "inbox").glob("*.json"))) == 1

    drain = _run(wheel_venv, "--root", str(root), "drain", "--json", env=env)
    assert drain.returncode == 0, drain.stderr
    days = list((root / "daily").glob("*.md"))
    assert len(days) == 1 and "acme-api" in days[0].read_text()
    assert not list((root / ".memc" / "inbox").glob("*.json"))
