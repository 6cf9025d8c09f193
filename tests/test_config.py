"""Settings precedence and validation."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pipeline.config import PARSERS, Settings, load_settings, load_zone, require_initialised
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
        {"MEMC_CHUNK_CHARS": "0"},
        {"MEMC_CALL_TIMEOUT_S": "0"},
        {"MEMC_CALL_TIMEOUT_S": "inf"},
        {"MEMC_LLM_MAX_ATTEMPTS": "0"},
        {"MEMC_CALL_BUDGET_USD": "0"},
        {"MEMC_SPOOL_KEEP_DAYS": "-3"},
    ],
)
def test_bad_env_values_are_config_errors(tmp_path, env):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env=env)
    assert err.value.exit_code == 2


def test_every_setting_has_one_parser():
    assert set(PARSERS) == {f.name for f in fields(Settings)} - {"root"}


def test_bad_values_name_the_setting_and_their_source(tmp_path):
    (tmp_path / ".memc").mkdir()
    cfg = tmp_path / ".memc" / "config.toml"
    cfg.write_text("backend = 'gpt'\n")
    with pytest.raises(ConfigError, match=r"backend from config\.toml: 'gpt' .*claude, extractive"):
        load_settings(tmp_path, env={})
    cfg.write_text("stop_min_lines = 1.5\n")  # a TOML float is not silently truncated
    with pytest.raises(ConfigError, match=r"stop_min_lines from config\.toml.*whole number"):
        load_settings(tmp_path, env={})
    cfg.write_text("stop_min_lines = 40.0\nchunk_chars = 2000\n")
    s = load_settings(tmp_path, env={})
    assert (s.stop_min_lines, s.chunk_chars) == (40, 2000)
    with pytest.raises(ConfigError, match=r"chunk_chars from MEMC_CHUNK_CHARS.*>= 1"):
        load_settings(tmp_path, env={"MEMC_CHUNK_CHARS": "0"})
    with pytest.raises(ConfigError, match=r"call_timeout_s from the command line.*> 0"):
        load_settings(tmp_path, {"call_timeout_s": 0}, env={})


def test_zero_keeps_its_documented_meaning(tmp_path):
    s = load_settings(
        tmp_path,
        env={
            "MEMC_DAILY_BUDGET_USD": "0",
            "MEMC_BREAKER_FAILURES": "0",
            "MEMC_IDLE_CAPTURE_MIN": "0",
            "MEMC_SPAWN_DRAIN": "0",
        },
    )
    assert (s.daily_budget_usd, s.breaker_failures, s.idle_capture_min) == (0, 0, 0)
    assert s.spawn_drain is False


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


def test_day_of_an_instant_is_taken_in_the_configured_zone(tmp_path):
    at = 1_795_176_000.0  # 2026-11-20 12:00 UTC
    assert Settings(root=tmp_path, tz="UTC").day_of(at) == "2026-11-20"
    assert Settings(root=tmp_path, tz="Pacific/Auckland").day_of(at) == "2026-11-21"
    assert Settings(root=tmp_path, tz="America/Los_Angeles").day_of(at - 10 * 3600) == "2026-11-19"
