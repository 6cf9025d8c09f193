"""The hook's light settings reader agrees with pipeline.config, or steps aside for it.

And the hook log's light scrub: a line it writes unredacted is one the full redactor would not
change either.
"""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from pipeline.hookconfig import (
    HOOK_DEFAULTS,
    HOOK_KEYS,
    load_hook_settings,
    read_config_lines,
    remember_valid,
)
from pipeline.logs import hook_log, needs_redaction
from pipeline.redact import redact
from tests.helpers import bound_samples, contexts, provider_secrets


def both(root, env):
    try:
        full = load_settings(root, env=env)
    except ConfigError:
        full = None
    if full is not None:
        remember_valid(root, env)  # what the hook does after a full load
    return load_hook_settings(root, env), full


def test_defaults_have_one_source():
    full = Settings(root=None)  # type: ignore[arg-type]
    for key in HOOK_KEYS:
        assert getattr(full, key) == getattr(HOOK_DEFAULTS, key)


CONFIGS = [
    "",
    "# only a comment\n\n",
    "stop_min_lines = 3\nspawn_drain = false\n",
    'backend = "extractive"  # trailing comment\nstop_min_minutes = 2.5\n',
    "exclude_projects = ['scratch*', \"tmp,x\", ]\n",
    'exclude_projects = "a, b,,c"\n',
    "stop_min_minutes = 7\ntz = 'Europe/Berlin'\n",
]


@pytest.mark.parametrize("text", CONFIGS)
@pytest.mark.parametrize(
    "env",
    [{}, {"MEMC_STOP_MIN_LINES": "12", "MEMC_SPAWN_DRAIN": "0"}, {"MEMC_EXCLUDE_PROJECTS": "x, y"}],
)
def test_plain_input_reads_the_same_as_the_full_parser(tmp_path, text, env):
    (tmp_path / ".memc").mkdir()
    (tmp_path / ".memc" / "config.toml").write_text(text)
    light, full = both(tmp_path, env)
    assert light is not None and full is not None
    for key in HOOK_KEYS:
        assert getattr(light, key) == getattr(full, key), key
    assert light.root == full.root and light.paths == full.paths


@pytest.mark.parametrize(
    "text",
    [
        "stop_min_lines = 'many'\n",  # a bad value of a hook key: the full parser's error
        "stop_min_lines = 007\n",  # not TOML
        "[table]\nstop_min_lines = 3\n",
        'note = """\nspawn_drain = false\n"""\n',  # a multi-line string must not be read as keys
        'exclude_projects = [\n  "a",\n]\n',
        "stop_min_lines = 1_000\n",
        'name = "a\\"b"\n',
        "spawn_drain = 1\n",
        "stop_min_lines = 3\nstop_min_lines = 4\n",
    ],
)
def test_anything_else_is_left_to_the_full_parser(tmp_path, text):
    (tmp_path / ".memc").mkdir()
    (tmp_path / ".memc" / "config.toml").write_text(text)
    remember_valid(tmp_path, {})  # even if it were stamped: the reader itself steps aside
    assert load_hook_settings(tmp_path, {}) is None


def test_only_a_configuration_the_full_parser_accepted_is_trusted(tmp_path):
    config = tmp_path / ".memc" / "config.toml"
    config.parent.mkdir()
    config.write_text("stop_min_lines = 3\n")
    assert load_hook_settings(tmp_path, {}) is None  # never validated yet
    light, full = both(tmp_path, {})
    assert light is not None and light.stop_min_lines == full.stop_min_lines == 3
    config.write_text('stop_min_lines = 3\nchunk_chars = "many"\n')  # bad, in a key hooks ignore
    assert load_hook_settings(tmp_path, {}) is None  # changed: the full parser decides again
    assert both(tmp_path, {})[1] is None  # and it refuses it, so nothing is stamped
    assert load_hook_settings(tmp_path, {}) is None
    config.write_text("stop_min_lines = 3\n")
    assert load_hook_settings(tmp_path, {}) is not None  # the accepted form again
    assert load_hook_settings(tmp_path, {"MEMC_BACKEND": "gpt"}) is None  # env is part of it


@pytest.mark.parametrize(
    "env",
    [
        {"MEMC_SPAWN_DRAIN": "maybe"},
        {"MEMC_STOP_MIN_LINES": "-1"},
        {"MEMC_STOP_MIN_MINUTES": "1e3"},
    ],
)
def test_odd_environment_values_are_left_to_the_full_parser(tmp_path, env):
    remember_valid(tmp_path, env)
    assert load_hook_settings(tmp_path, env) is None


_scalar = st.one_of(
    st.booleans().map(lambda b: "true" if b else "false"),
    st.integers(0, 10**6).map(str),
    st.text(st.characters(codec="utf-8", exclude_characters='"\\\n\r'), max_size=12).map(
        lambda s: f'"{s}"'
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="'\n\r"), max_size=12).map(
        lambda s: f"'{s}'"
    ),
)
_line = st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), _scalar).map(
    lambda kv: f"{kv[0]} = {kv[1]}"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=6), st.sampled_from(["\n", "\r\n"]))
def test_whatever_the_reader_accepts_tomllib_reads_the_same(lines, newline):
    text = newline.join(lines) + newline
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        expected = None
    from pathlib import Path
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_bytes(text.encode("utf-8"))
        try:
            got = read_config_lines(path)
        except Exception as exc:  # _NotPlain: stepping aside is always allowed
            assert type(exc).__name__ == "_NotPlain"
            return
    assert got == expected


# --- the hook log's light scrub --------------------------------------------------------------

HOOK_LINES = [
    "session-end session='3f9c2a1b' queued job=1929601948d204f99aa0 bytes=2 bytes 0..2 drain=off",
    "stop session='cd613e30' below-threshold bytes=1500 1 new lines, 0.3 min since last capture",
    "pre-compact session='abc' nothing-new no new complete lines",
    "session-start session='abc' context=5321 chars",
    "session-end session='x' skipped project 'scratch' matches exclude_projects",
    "stop session='x' queued job=ed29da5e752a257ac01a bytes=118 bytes 116..234 "
    "drain=spawned(pid 81)",
]


@pytest.mark.parametrize("line", HOOK_LINES)
def test_usual_hook_lines_skip_the_redactor(line):
    assert not needs_redaction(line)
    assert redact(line) == line


def _secret_texts():
    ctx = contexts()
    out = [
        ctx[i % len(ctx)].replace("{secret}", s) for i, (_k, s) in enumerate(provider_secrets(7))
    ]
    out += [text for _kind, text, _s in bound_samples(seed=11)]
    return out


def test_every_corpus_secret_goes_through_the_redactor():
    for text in _secret_texts():
        if redact(text) != text:
            assert needs_redaction(text), text
        line = f"session-end: internal error OSError: {text}"
        if redact(line) != line:
            assert needs_redaction(line), line


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec="ascii", categories=("L", "N", "P", "S", "Zs")), max_size=120))
def test_the_light_check_never_misses_what_the_redactor_changes(text):
    if not needs_redaction(text):
        assert redact(text) == text


def test_hook_log_redacts_a_line_with_a_secret(tmp_path):
    secret = "sk-ant-api03-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    hook_log(tmp_path, f"session-end: internal error ValueError: bad {secret}")
    text = (tmp_path / "hooks.log").read_text()
    assert secret not in text and "[REDACTED:" in text
