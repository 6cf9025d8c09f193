"""Settings precedence and validation."""

from __future__ import annotations

import pytest

from pipeline.config import load_settings, load_zone, require_initialised
from pipeline.errors import ConfigError, NotInitialised


def test_defaults(tmp_path):
    s = load_settings(tmp_path, env={})
    assert s.root == tmp_path
    assert s.backend == "claude"
    assert s.daily_budget_usd == 5.0
    assert (s.compile_quiet_min, s.compile_max_delay_min, s.compile_min_interval_min) == (
        10,
        360,
        30,
    )
    assert s.spawn_drain is True


def test_precedence_flag_env_file_default(tmp_path):
    (tmp_path / ".memc").mkdir()
    (tmp_path / ".memc" / "config.toml").write_text(
        'daily_budget_usd = 2.5\nflush_model = "file-model"\nexclude_projects = ["secret-*"]\n'
    )
    s = load_settings(tmp_path, env={})
    assert s.daily_budget_usd == 2.5 and s.flush_model == "file-model"
    assert s.exclude_projects == ("secret-*",)
    s = load_settings(tmp_path, env={"MEMC_DAILY_BUDGET_USD": "3"})
    assert s.daily_budget_usd == 3.0 and s.flush_model == "file-model"
    s = load_settings(tmp_path, {"daily_budget_usd": 4}, env={"MEMC_DAILY_BUDGET_USD": "3"})
    assert s.daily_budget_usd == 4.0


def test_root_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).root == tmp_path
    assert load_settings(env={"MEMC_ROOT": str(tmp_path / "r")}).root == tmp_path / "r"
    assert (
        load_settings(tmp_path / "f", env={"MEMC_ROOT": str(tmp_path / "r")}).root == tmp_path / "f"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"MEMC_BACKEND": "gpt"},
        {"MEMC_DAILY_BUDGET_USD": "lots"},
        {"MEMC_DAILY_BUDGET_USD": "-1"},
        {"MEMC_SPAWN_DRAIN": "maybe"},
        {"MEMC_STOP_MIN_LINES": "1.5"},
        {"MEMC_CHUNK_CHARS": "nan"},
    ],
)
def test_bad_env_values_are_config_errors(tmp_path, env):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env=env)
    assert err.value.exit_code == 2


def test_bad_config_file(tmp_path):
    (tmp_path / ".memc").mkdir()
    cfg = tmp_path / ".memc" / "config.toml"
    cfg.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, env={})
    cfg.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(tmp_path, env={})


def test_zone(tmp_path):
    assert load_zone("Europe/Berlin").key == "Europe/Berlin"
    assert load_zone(None) is not None
    with pytest.raises(ConfigError, match="IANA"):
        load_zone("Mars/Olympus")
    with pytest.raises(ConfigError):
        load_settings(tmp_path, env={"MEMC_TZ": "Nowhere/Land"}).zone()


def test_require_initialised(tmp_path):
    with pytest.raises(NotInitialised, match="memc init"):
        require_initialised(load_settings(tmp_path, env={}))
