"""The one `memc` command-line builder: hooks, schedulers, SessionStart and CLI hints agree."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from pipeline import program
from pipeline.install import HOOK_EVENTS, install_hooks
from pipeline.program import memc_command, memc_hint, memc_program


def test_this_venv_runs_its_console_script_and_is_installed():
    script = Path(sys.executable).parent / ("memc.exe" if sys.platform == "win32" else "memc")
    assert script.is_file()  # `make install` put it there
    assert memc_program() == [str(script)]
    assert program.package_installed()


def test_a_source_checkout_gets_its_pythonpath(tmp_path, monkeypatch):
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(python))  # no `memc` beside this interpreter
    monkeypatch.setattr(sys, "path", [str(tmp_path)])  # and no installed distribution
    assert not program.package_installed()
    checkout = str(Path(program.__file__).resolve().parent.parent)
    assert memc_program() == ["env", f"PYTHONPATH={checkout}", str(python), "-m", "pipeline"]
    # every consumer carries it, the SessionStart context included
    from pipeline.inject import closing

    assert f"PYTHONPATH={checkout}" in closing(tmp_path / "kb")
    assert memc_hint(tmp_path / "kb", "install-hooks").startswith(
        shlex.join(["env", f"PYTHONPATH={checkout}"])
    )
    # an interpreter named explicitly is not ours to inspect: no PYTHONPATH guess for it
    assert memc_program(str(python)) == [str(python), "-m", "pipeline"]


def test_hooks_and_session_start_name_the_same_command(tmp_path):
    root = tmp_path / "my kb"
    result = install_hooks(tmp_path / "settings.json", root)
    assert sorted(result.commands) == sorted(
        memc_command(root, "hook", slug) for _, slug, _ in HOOK_EVENTS
    )
    from pipeline.inject import closing

    assert f"`{memc_command(root)}`" in closing(root)
    assert shlex.split(memc_command(root, "drain")) == [
        *memc_program(),
        "--root",
        str(root),
        "drain",
    ]


def test_hint_names_the_root_only_when_a_bare_memc_would_miss_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMC_ROOT", raising=False)
    target = tmp_path / "kb"
    target.mkdir()
    monkeypatch.chdir(tmp_path)
    assert memc_hint(target, "install-hooks") == shlex.join(
        ["memc", "--root", str(target), "install-hooks"]
    )
    monkeypatch.chdir(target)
    assert memc_hint(target, "install-hooks") == "memc install-hooks"
    monkeypatch.setenv("MEMC_ROOT", str(tmp_path))
    assert memc_hint(target) == shlex.join(["memc", "--root", str(target)])
