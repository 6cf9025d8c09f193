"""install-hooks / uninstall-hooks against real settings files (HOME is a temp folder)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.install import (
    HOOK_EVENTS,
    SettingsFileInvalid,
    install_hooks,
    installed_hooks,
    parse_ours,
    settings_path,
    uninstall_hooks,
)
from pipeline.program import memc_program

USER_SETTINGS = {
    "model": "opus",
    "hooks": {
        "Stop": [
            {"matcher": "", "hooks": [{"type": "command", "command": "say done", "timeout": 3}]}
        ],
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/guard.sh"}]}
        ],
    },
    "permissions": {"allow": ["Bash(ls:*)"]},
    "env": {"FOO": "bar"},
}
PROGRAM = ["/opt/venv/bin/memc"]


def _write(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) + "\n"
    path.write_text(text)
    return text


def _ours(data) -> list[str]:
    return [
        h["command"]
        for groups in data.get("hooks", {}).values()
        for g in groups
        for h in g["hooks"]
        if parse_ours(h["command"])
    ]


def test_install_twice_then_uninstall_keeps_users_hooks_and_keys(tmp_path, root):
    path = tmp_path / "claude" / "settings.json"
    original = _write(path, USER_SETTINGS)

    first = install_hooks(path, root, program=PROGRAM, now=1_000_000)
    assert first.changed and first.added == len(HOOK_EVENTS) and first.removed == 0
    assert first.backup is not None and first.backup.read_text() == original
    data = json.loads(path.read_text())
    assert list(data) == ["model", "hooks", "permissions", "env"]  # key order kept
    assert data["permissions"] == USER_SETTINGS["permissions"] and data["env"] == {"FOO": "bar"}
    # the user's own hooks come first, untouched
    assert data["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]
    assert data["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    for event, slug, timeout in HOOK_EVENTS:
        ours = [h for g in data["hooks"][event] for h in g["hooks"] if parse_ours(h["command"])]
        assert len(ours) == 1 and ours[0]["timeout"] == timeout
        assert shlex.split(ours[0]["command"]) == [*PROGRAM, "--root", str(root), "hook", slug]
    assert path.read_text().endswith("}\n")

    after_first = path.read_bytes()
    second = install_hooks(path, root, program=PROGRAM, now=1_000_100)
    assert not second.changed and second.backup is None
    assert path.read_bytes() == after_first
    assert len(list(path.parent.glob("settings.json.memc-backup-*"))) == 1

    gone = uninstall_hooks(path, now=1_000_200)
    assert gone.changed and gone.removed == len(HOOK_EVENTS)
    assert json.loads(path.read_text()) == USER_SETTINGS
    again = uninstall_hooks(path)
    assert not again.changed and again.removed == 0


def test_reinstall_replaces_entries_from_an_older_interpreter_and_root(tmp_path, root):
    path = tmp_path / "settings.json"
    install_hooks(path, tmp_path / "old-root", program=["/old/python3", "-m", "pipeline"])
    res = install_hooks(path, root, program=PROGRAM)
    assert res.changed and res.removed == len(HOOK_EVENTS)
    data = json.loads(path.read_text())
    assert len(_ours(data)) == len(HOOK_EVENTS)
    assert all(hook.root == str(root) for hook in installed_hooks(path))


def test_broken_settings_file_is_refused_and_untouched(tmp_path, root, capsys):
    path = tmp_path / "settings.json"
    path.write_text('{"hooks": {,}')
    with pytest.raises(SettingsFileInvalid):
        install_hooks(path, root, program=PROGRAM)
    code = main(["--root", str(root), "install-hooks", "--settings", str(path)])
    assert code == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert path.read_text() == '{"hooks": {,}'
    assert list(tmp_path.glob("*.memc-backup-*")) == []
    assert main(["--root", str(root), "uninstall-hooks", "--settings", str(path)]) == 2
    assert path.read_text() == '{"hooks": {,}'


@pytest.mark.parametrize("content", ["[1, 2]", '{"hooks": []}'])
def test_settings_that_are_not_an_object_are_refused(tmp_path, root, content):
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(SettingsFileInvalid):
        install_hooks(path, root, program=PROGRAM)
    assert path.read_text() == content


def test_missing_or_empty_file_is_created_without_backup(tmp_path, root):
    path = tmp_path / "new" / "settings.json"
    res = install_hooks(path, root, program=PROGRAM)
    assert res.changed and res.backup is None
    assert len(installed_hooks(path)) == len(HOOK_EVENTS)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert install_hooks(empty, root, program=PROGRAM).changed
    assert uninstall_hooks(tmp_path / "absent.json").changed is False


def test_symlinked_settings_file_keeps_its_link(tmp_path, root):
    target = tmp_path / "dotfiles" / "settings.json"
    _write(target, {"model": "opus"})
    link = tmp_path / "claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(target)
    install_hooks(link, root, program=PROGRAM)
    assert link.is_symlink()
    assert len(installed_hooks(target)) == len(HOOK_EVENTS)


def test_marker_matches_only_our_commands():
    assert parse_ours("/x/bin/memc --root /r hook session-end") == ("session-end", "/r")
    assert parse_ours("env PYTHONPATH=/c /usr/bin/python3 -m pipeline --root '/a b' hook stop") == (
        "stop",
        "/a b",
    )
    assert parse_ours("memc.exe --root=C:/r hook pre-compact") == ("pre-compact", "C:/r")
    for theirs in (
        "echo hook stop",
        "memc-notify hook stop",
        "/x/memc search hook",
        "python -m other hook stop",
        "/x/bin/memc --root /r hook unknown-event",
        "unbalanced 'quote",
        None,
        42,
    ):
        assert parse_ours(theirs) is None


def test_cli_project_scope_and_json(tmp_path, root, monkeypatch, capsys):
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    assert main(["--root", str(root), "install-hooks", "--scope", "project", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"] == str(project / ".claude" / "settings.local.json") and out["changed"]
    assert len(out["commands"]) == len(HOOK_EVENTS)
    assert not (Path.home() / ".claude" / "settings.json").exists()
    assert not (project / ".claude" / "settings.json").exists()  # the team's file: untouched
    assert settings_path("project") == project / ".claude" / "settings.local.json"


def test_user_scope_default_writes_under_home(root, capsys):
    assert main(["--root", str(root), "install-hooks"]) == 0
    assert f"Installed {len(HOOK_EVENTS)} hooks" in capsys.readouterr().out
    assert len(installed_hooks(Path.home() / ".claude" / "settings.json")) == len(HOOK_EVENTS)
    assert main(["--root", str(root), "install-hooks"]) == 0
    assert "nothing changed" in capsys.readouterr().out


def test_installed_command_runs_the_hook(tmp_path, root, memc_env):
    """The command written into settings.json starts this installation's hook and exits 0."""
    path = tmp_path / "settings.json"
    res = install_hooks(path, root)
    command = res.commands[1]  # session-end
    words = shlex.split(command)
    assert os.path.isabs(words[0]) or words[0] == "env"
    payload = json.dumps(
        {
            "session_id": "s1",
            "transcript_path": str(tmp_path / "missing.jsonl"),
            "cwd": str(tmp_path),
            "hook_event_name": "SessionEnd",
        }
    )
    env = {k: v for k, v in memc_env.items() if k not in ("MEMC_ROOT", "PYTHONPATH")}
    proc = subprocess.run(
        ["sh", "-c", command],
        input=payload,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "session-end" in (root / ".memc" / "logs" / "hooks.log").read_text()


def test_hook_program_prefers_console_script(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    python = bindir / "python"
    python.write_text("")
    assert memc_program(str(python)) == [str(python), "-m", "pipeline"]
    (bindir / ("memc.exe" if os.name == "nt" else "memc")).write_text("")
    assert memc_program(str(python)) == [str(bindir / "memc")]


def test_our_command_inside_a_users_group_is_removed_alone(tmp_path, root):
    path = tmp_path / "settings.json"
    mixed = {
        "hooks": {
            "SessionEnd": [
                {
                    "matcher": "",
                    "hooks": [
                        {"type": "command", "command": "notify-send bye"},
                        {
                            "type": "command",
                            "command": f"/old/bin/memc --root {root} hook session-end",
                            "timeout": 5,
                        },
                    ],
                }
            ]
        }
    }
    _write(path, mixed)
    res = uninstall_hooks(path)
    assert res.removed == 1
    assert json.loads(path.read_text()) == {
        "hooks": {
            "SessionEnd": [
                {"matcher": "", "hooks": [{"type": "command", "command": "notify-send bye"}]}
            ]
        }
    }


def test_uninstall_removes_only_this_roots_hooks_and_names_them(tmp_path, root):
    path = tmp_path / "claude" / "settings.json"
    install_hooks(path, root, program=PROGRAM)
    data = json.loads(path.read_text())
    other = "/opt/venv/bin/memc --root /data/other hook stop"  # another root's hand-made entry
    data["hooks"]["Stop"].append({"matcher": "", "hooks": [{"type": "command", "command": other}]})
    _write(path, data)
    res = uninstall_hooks(path, root)
    assert res.changed and res.removed == len(HOOK_EVENTS)
    assert all(f"--root {root} hook" in c for c in res.removed_commands)
    assert _ours(json.loads(path.read_text())) == [other]
    assert uninstall_hooks(path, root).changed is False  # nothing of this root is left
    assert uninstall_hooks(path).removed_commands == (other,)  # --all-roots


def test_cli_uninstall_names_what_it_removed(tmp_path, root, capsys):
    path = tmp_path / "settings.json"
    install_hooks(path, root, program=PROGRAM)
    capsys.readouterr()
    assert main(["uninstall-hooks", "--settings", str(path), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"Removed {len(HOOK_EVENTS)} memc hook command(s)" in out
    assert f"/opt/venv/bin/memc --root {root} hook session-end" in out


def test_installing_for_a_second_root_names_the_root_it_replaces(tmp_path, root, capsys):
    path = tmp_path / "settings.json"
    first = tmp_path / "first-root"
    install_hooks(path, first, program=PROGRAM)
    res = install_hooks(path, root, program=PROGRAM)
    assert res.changed and res.replaced_roots == (str(first),)
    assert {h.root for h in installed_hooks(path)} == {str(root)}
    install_hooks(path, first, program=PROGRAM)
    capsys.readouterr()
    assert main(["--root", str(root), "install-hooks", "--settings", str(path)]) == 0
    assert f"replaced the hooks that captured into {first}" in capsys.readouterr().out


def test_backups_are_pruned_to_the_newest_three(tmp_path, root):
    path = tmp_path / "settings.json"
    _write(path, USER_SETTINGS)
    for i in range(6):  # alternate roots so that every install writes (and backs up)
        res = install_hooks(path, tmp_path / f"r{i % 2}", program=PROGRAM, now=1_700_000_000 + i)
        assert res.changed
    backups = sorted(tmp_path.glob("settings.json.memc-backup-*"))
    assert len(backups) == 3
    assert res.backup in backups


def test_compound_user_commands_are_never_deleted(tmp_path, root):
    path = tmp_path / "settings.json"
    compound = [
        f"/opt/venv/bin/memc --root {root} hook stop; ~/bin/notify.sh",
        f"/opt/venv/bin/memc --root {root} hook stop && say done",
        f"/opt/venv/bin/memc --root {root} hook stop | tee -a ~/hooks.txt",
        f"/opt/venv/bin/memc --root {root} hook stop --extra",
    ]
    _write(
        path,
        {
            "hooks": {
                "Stop": [
                    {"matcher": "", "hooks": [{"type": "command", "command": c} for c in compound]}
                ]
            }
        },
    )
    install_hooks(path, root, program=PROGRAM)
    uninstall_hooks(path, root)
    uninstall_hooks(path)
    data = json.loads(path.read_text())
    assert [h["command"] for h in data["hooks"]["Stop"][0]["hooks"]] == compound


def test_symlinked_settings_backup_sits_beside_the_link_owner_only(tmp_path, root):
    target = tmp_path / "dotfiles" / "settings.json"
    original = _write(target, {"model": "opus"})
    link = tmp_path / "claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(target)
    res = install_hooks(link, root, program=PROGRAM)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert len(installed_hooks(target)) == len(HOOK_EVENTS)
    assert res.backup is not None and res.backup.parent == link.parent
    assert res.backup.read_text() == original
    assert (res.backup.stat().st_mode & 0o777) == 0o600
    assert not list(target.parent.glob("*.memc-backup-*"))


def test_project_scope_moves_our_hooks_out_of_the_shared_file(tmp_path, root, monkeypatch):
    project = tmp_path / "proj"
    shared = project / ".claude" / "settings.json"
    _write(shared, USER_SETTINGS)
    install_hooks(shared, root, program=PROGRAM)  # what an older version wrote
    monkeypatch.chdir(project)
    assert main(["--root", str(root), "install-hooks", "--scope", "project"]) == 0
    assert installed_hooks(shared) == []
    assert json.loads(shared.read_text())["permissions"] == USER_SETTINGS["permissions"]
    assert len(installed_hooks(project / ".claude" / "settings.local.json")) == len(HOOK_EVENTS)
