"""memc doctor: fresh root, failures, missing credentials, broken CLI; never prints a secret."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.doctor import FAIL, OK, WARN, blocking, check_cli, check_python, run_checks
from pipeline.install import install_hooks
from tests.helpers import fail_job

SECRET = "sk-ant-api03-THISISNOTAREALKEYbutLooksLikeOne0123456789abcdef"


def _exe(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_cli(tmp_path, monkeypatch) -> Path:
    cli = _exe(tmp_path / "claude", 'echo "9.9.9 (Claude Code)"')
    monkeypatch.setenv("MEMC_CLAUDE_CLI", str(cli))
    return cli


def _by_name(checks):
    return {c.name: c for c in checks}


def _doctor_json(root, capsys) -> tuple[int, dict]:
    code = main(["--root", str(root), "doctor", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_fresh_root_extractive_without_credentials_is_not_blocked(root, fake_cli, capsys):
    code, data = _doctor_json(root, capsys)
    checks = {c["name"]: c for c in data["checks"]}
    assert code == 0 and data["ok"] is True
    assert checks["claude-cli"]["status"] == OK and "9.9.9" in checks["claude-cli"]["detail"]
    assert checks["credentials"]["status"] == WARN
    assert checks["hooks"]["status"] == WARN and "install-hooks" in checks["hooks"]["fix"]
    for name in ("python", "packages", "root", "timezone", "sqlite-fts5", "failed-jobs"):
        assert checks[name]["status"] == OK, checks[name]


def test_claude_backend_without_credentials_blocks(root, fake_cli, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["--root", str(root), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] credentials" in out and "log in" in out
    assert "problem(s) block the pipeline" in out


def test_credentials_presence_only_never_printed(root, fake_cli, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    code, data = _doctor_json(root, capsys)
    checks = {c["name"]: c for c in data["checks"]}
    assert (
        checks["credentials"]["status"] == OK
        and "ANTHROPIC_API_KEY" in checks["credentials"]["detail"]
    )
    assert SECRET not in json.dumps(data) and SECRET[:12] not in json.dumps(data)
    assert code == 0


def test_credentials_file_counts_by_existence(root, fake_cli, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    creds = Path.home() / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps({"token": SECRET}))
    creds.chmod(0)  # doctor must not need to read it
    code, data = _doctor_json(root, capsys)
    assert code == 0
    assert SECRET not in json.dumps(data)


def test_root_with_failed_jobs_warns_with_retry_hint(root, fake_cli, capsys):
    fail_job(root, "s1")
    fail_job(root, "s2", error_class="InvalidReplyError", message="bad json", start=200)
    code, data = _doctor_json(root, capsys)
    check = {c["name"]: c for c in data["checks"]}["failed-jobs"]
    assert code == 0 and check["status"] == WARN
    assert "2 failed" in check["detail"] and "InvalidReplyError" in check["detail"]
    assert "memc retry" in check["fix"]


def test_missing_cli_blocks_only_the_claude_backend(root, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMC_CLAUDE_CLI", str(tmp_path / "no-such-claude"))
    assert _by_name(run_checks(load_settings(root)))["claude-cli"].status == WARN
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    checks = run_checks(load_settings(root), env={"ANTHROPIC_API_KEY": "x"})
    assert _by_name(checks)["claude-cli"].status == FAIL and blocking(checks)
    assert "MEMC_CLAUDE_CLI" in _by_name(checks)["claude-cli"].fix


def test_cli_that_fails_or_hangs(root, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMC_BACKEND", "claude")
    broken = _exe(tmp_path / "claude-broken", "echo boom >&2; exit 3")
    monkeypatch.setenv("MEMC_CLAUDE_CLI", str(broken))
    settings = load_settings(root)
    check = check_cli(settings)
    assert check.status == FAIL and "exited 3" in check.detail

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    check = check_cli(settings, run=hang)
    assert check.status == FAIL and "did not answer" in check.detail


def test_cli_gets_memc_internal(root, tmp_path, monkeypatch):
    cli = _exe(tmp_path / "claude", 'echo "internal=$MEMC_INTERNAL"')
    monkeypatch.setenv("MEMC_CLAUDE_CLI", str(cli))
    assert "internal=1" in check_cli(load_settings(root)).detail


def test_hooks_pointing_here_or_elsewhere(root, tmp_path, fake_cli, monkeypatch):
    user = Path.home() / ".claude" / "settings.json"
    install_hooks(user, tmp_path / "another-root", program=["/x/memc"])
    check = _by_name(run_checks(load_settings(root)))["hooks"]
    assert check.status == WARN and "another-root" in check.detail
    install_hooks(user, root, program=["/x/memc"])
    assert _by_name(run_checks(load_settings(root)))["hooks"].status == OK
    # project scope counts too
    user.unlink()
    project = tmp_path / "proj"
    install_hooks(project / ".claude" / "settings.local.json", root, program=["/x/memc"])
    assert _by_name(run_checks(load_settings(root), cwd=project))["hooks"].status == OK
    # hooks in the team's shared settings.json are flagged, with the command that moves them
    install_hooks(project / ".claude" / "settings.json", root, program=["/x/memc"])
    check = _by_name(run_checks(load_settings(root), cwd=project))["hooks"]
    assert check.status == WARN and "--scope project" in check.fix


def test_uninitialised_root_and_bad_timezone_block(tmp_path, fake_cli, monkeypatch, capsys):
    monkeypatch.setenv("MEMC_TZ", "Mars/Olympus_Mons")
    code, data = _doctor_json(tmp_path, capsys)
    checks = {c["name"]: c for c in data["checks"]}
    assert code == 1
    assert checks["root"]["status"] == FAIL and "memc init" in checks["root"]["fix"]
    assert checks["timezone"]["status"] == FAIL


def test_bad_config_is_reported_as_a_check(root, fake_cli, capsys):
    (root / ".memc" / "config.toml").write_text("daily_budget_usd = 'lots'\n")
    assert main(["--root", str(root), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] config" in out and "daily_budget_usd" in out


def test_python_version_check():
    assert check_python((3, 11)).status == OK
    assert check_python((3, 10)).status == FAIL


def test_credentials_and_hooks_follow_claude_config_dir(settings, tmp_path, monkeypatch):
    from pipeline.config import claude_dir
    from pipeline.doctor import check_credentials
    from pipeline.install import settings_path

    cfg = tmp_path / "claude-cfg"
    cfg.mkdir()
    (cfg / ".credentials.json").write_text("{}")
    env = {"CLAUDE_CONFIG_DIR": str(cfg)}
    check = check_credentials(settings, env, tmp_path / "nohome")
    assert check.status == "ok" and str(cfg / ".credentials.json") in check.detail
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(cfg))
    assert claude_dir() == cfg and settings_path("user") == cfg / "settings.json"
    assert settings_path("user", home=tmp_path) == tmp_path / ".claude" / "settings.json"


def test_a_bare_claude_cli_name_found_on_path_is_fine(root, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _exe(bindir / "claude", 'echo "9.9.9 (Claude Code)"')
    monkeypatch.setenv("PATH", str(bindir))
    (root / ".memc" / "config.toml").write_text('claude_cli = "claude"\n')
    check = check_cli(load_settings(root))
    assert check.status == OK and str(bindir / "claude") in check.detail


# --- doctor: MEMC_BACKEND exported in the shell does not reach hook-started drains --------------


def test_doctor_warns_when_the_shell_backend_differs_from_unattended_runs(root):
    from pipeline.doctor import OK, WARN, check_backend

    settings = load_settings(root)  # MEMC_BACKEND=extractive from conftest
    check = check_backend(settings, {"MEMC_BACKEND": "extractive"})
    assert check.status == WARN and "would use claude" in check.detail
    assert 'backend = "extractive"' in check.fix and "config.toml" in check.fix
    (root / ".memc" / "config.toml").write_text('backend = "extractive"\n')
    assert check_backend(settings, {"MEMC_BACKEND": "extractive"}).status == OK
    assert check_backend(settings, {}).status == OK
