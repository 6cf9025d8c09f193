"""Proof suite (issue 7, part 3): hostile input at every door the outside world can knock on.

- Hook entry points (``pipeline.hooks``: parse_payload / validate / run_hook_cli in-process) fed
  arbitrary bytes and arbitrary JSON (hypothesis): always 0, never raise, write only under the root.
- The compile reply validator (``apply.validate_operation`` / ``apply.apply_articles``) and the
  distil reply validator (``llm.replies.validation_error`` + ``distil.entry_from_reply`` + daily
  rendering) fed arbitrary JSON: never raise an unexpected exception, nothing outside knowledge/,
  what they accept round-trips through the file format.
- A table of hostile model replies run through ``run_compile`` (10,000 operations, a 5 MB body,
  deeply nested JSON, wrong types, lone surrogates, every path trick): nothing outside
  knowledge/, the valid operations of the same reply still applied; the reply-text parser never
  raises and caps its brace tries (its work is bounded by construction, not by a timer).
- Hostile frontmatter in existing pages (YAML python tags, alias bombs, wrong types, a 10 MB
  block, binary junk) read by compile, lint, search refresh, SessionStart and query: no crash,
  no code run, a clear lint report.
The existing suites already cover the transcript parser (test_transcript.py), fixed hostile paths
(test_apply.py) and fixed bad hook payloads (test_hooks.py); this file adds the generated and
the end-to-end cases.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline import apply, daily, distil, hooks, wiki
from pipeline.errors import PathRefused
from pipeline.fsutil import TEMP_PREFIX
from pipeline.llm.base import load_schema
from pipeline.llm.replies import validation_error
from tests.fakes import FakeBackend

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
SURROGATES = st.sampled_from(["\ud800", "\udfff", "\ud83d", "x\udc00y"])
# Text the way a JSON parser can hand it to us: any code point, lone surrogates included.
ANY_TEXT = st.one_of(
    st.text(max_size=40), SURROGATES, st.text(st.characters(blacklist_categories=()), max_size=20)
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(ANY_TEXT, inner, max_size=5),
    max_leaves=25,
)
PATH_TRICKS = [
    "../x",
    "concepts/../../x",
    "/etc/passwd",
    "concepts\\..\\x",
    "concepts/a\x00",
    "concepts//a",
    "concepts/./a",
    "concepts/%2e%2e",
    "concepts/a%2f..%2fb",
    "Concepts/a",
    "concepts/a ",
    "concepts/\u202eexe.md",
    "concepts/\uff41",
    "concepts/a\n",
    "concepts/a/../../../x",
    "~/x",
    "C:\\x",
    "qa/" + "a" * 81,
    "qa/" + "a" * 4000,
    "concepts/.git",
    "connections/",
    "//server/share",
    "concepts/\ud800",
    "concepts/ok-but-\u00e9",
    "concepts/a\tb",
    "concepts/CON",
    "index",
    "log",
]


def tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under ``folder`` except ``skip`` prefixes."""
    out = {}
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(folder))
            if rel.startswith(skip):
                continue
            try:
                st_ = p.lstat()
            except FileNotFoundError:
                continue
            out[rel] = (st_.st_size, st_.st_mtime_ns)
    return out


@contextmanager
def stdin_bytes(folder: Path, data: bytes):
    path = folder / "hook-stdin"
    path.write_bytes(data)
    with path.open("rb") as fh, mock.patch.object(sys, "stdin", fh):
        yield


# ---------------------------------------------------------------- hooks


def _payloads(transcript: str):
    value = st.one_of(
        JSON,
        st.sampled_from(
            [
                transcript,
                "",
                "/dev/zero",
                "/proc/self/status",
                "/",
                ".",
                "../../etc/passwd",
                "x" * 5000,
            ]
        ),
    )
    shaped = st.fixed_dictionaries(
        {
            "session_id": st.one_of(ANY_TEXT, JSON, st.just("s-ok")),
            "transcript_path": value,
            "cwd": value,
        },
        optional={"hook_event_name": JSON, "extra": JSON},
    )
    return st.one_of(JSON, shaped)


@hsettings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_hook_entry_points_take_any_json(root, tmp_path, capsys, data):
    transcript = tmp_path / "t.jsonl"
    if not transcript.exists():
        transcript.write_bytes(b'{"type":"user","message":{"role":"user","content":"hi"}}\n')
    outside_before = tree(tmp_path, skip=("root/", "hook-stdin"))
    payload = data.draw(_payloads(str(transcript)))
    event = data.draw(st.sampled_from([*list(hooks.EVENTS), "", "bogus", "../x"]))
    raw = json.dumps(payload, ensure_ascii=data.draw(st.booleans())).encode(
        "utf-8", "surrogatepass"
    )
    parsed, why = hooks.parse_payload(raw)
    assert (parsed is None) == bool(why)
    if parsed is not None:
        fields, why = hooks.validate(parsed)
        assert fields is None or all(isinstance(v, str) for v in fields.values())
    with stdin_bytes(tmp_path, raw):
        assert hooks.run_hook_cli([event] if event else [], root=str(root), verbose=False) == 0
    out = capsys.readouterr().out
    if event != "session-start":
        assert out == ""
    elif out:
        json.loads(out)  # SessionStart prints one JSON document or nothing
    assert tree(tmp_path, skip=("root/", "hook-stdin")) == outside_before


@hsettings(max_examples=80, deadline=None, suppress_health_check=FIXTURES)
@given(
    raw=st.binary(max_size=300)
    | st.text(st.characters(blacklist_categories=()), max_size=300).map(
        lambda t: t.encode("utf-8", "surrogatepass")
    )
)
def test_hook_entry_points_take_any_bytes(root, tmp_path, raw):
    parsed, _ = hooks.parse_payload(raw)
    assert parsed is None or isinstance(parsed, dict)
    with stdin_bytes(tmp_path, raw):
        assert hooks.run_hook_cli(["session-end"], root=str(root), verbose=False) == 0
    assert tree(tmp_path, skip=("root/", "hook-stdin")) == {}


# ---------------------------------------------------------------- compile reply validator


def _op_strategy():
    path = st.one_of(
        st.sampled_from(PATH_TRICKS),
        ANY_TEXT,
        st.from_regex(r"\A(concepts|connections|qa)/[a-z0-9][a-z0-9-]{0,12}\Z"),
        JSON,
    )
    return st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"path": path, "title": st.one_of(ANY_TEXT, JSON), "body": st.one_of(ANY_TEXT, JSON)},
            optional={
                "summary": st.one_of(ANY_TEXT, JSON),
                "aliases": st.one_of(st.lists(ANY_TEXT), JSON),
                "tags": st.one_of(st.lists(ANY_TEXT), JSON),
                "sources": JSON,
            },
        ),
    )


@hsettings(max_examples=300, deadline=None)
@given(op=_op_strategy())
def test_validate_operation_accepts_only_safe_operations(tmp_path_factory, op):
    knowledge = tmp_path_factory.getbasetemp() / "validate-kb"
    knowledge.mkdir(exist_ok=True)
    try:
        out = apply.validate_operation(op, knowledge)
    except (PathRefused, ValueError) as exc:
        assert str(exc)
        return
    folder, slug = out.key.split("/")
    assert folder in wiki.ARTICLE_FOLDERS and wiki.SLUG_RE.match(slug)
    assert len(out.body) <= apply.MAX_BODY_CHARS and out.title and "\n" not in out.title


@hsettings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(ops=st.one_of(JSON, st.lists(_op_strategy(), max_size=6)))
def test_apply_articles_any_json_writes_only_parseable_pages_inside(settings, tmp_path, ops):
    knowledge = settings.paths.knowledge
    outside_before = tree(tmp_path, skip=("root/knowledge/", "root/.memc/"))
    report = apply.apply_articles(settings, ops, now=0)
    assert tree(tmp_path, skip=("root/knowledge/", "root/.memc/")) == outside_before
    for key in report.written:
        text = (knowledge / f"{key}.md").read_text(encoding="utf-8")  # strict UTF-8
        art = wiki.parse_article(key, text)
        assert art.problems == (), (key, art.problems)
    for path in knowledge.rglob("*"):
        assert not path.is_symlink() and not path.name.startswith(TEMP_PREFIX)


# ---------------------------------------------------------------- distil reply validator


@hsettings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"worth_saving": st.one_of(st.booleans(), JSON)},
            optional={
                k: st.one_of(ANY_TEXT, JSON, st.lists(ANY_TEXT, max_size=4))
                for k in (
                    "title",
                    "context",
                    "decisions",
                    "lessons",
                    "action_items",
                    "key_exchanges",
                )
            },
        ),
    )
)
def test_distil_reply_validation_and_rendering(tmp_path_factory, data):
    schema = load_schema("distil")
    problem = validation_error(data, schema)
    if problem is not None:
        assert isinstance(problem, str) and problem
        return
    entry = distil.entry_from_reply(data)
    block = daily.render_entry(
        entry,
        entry_id="0123456789ab",
        time_hhmm="10:00",
        project="acme",
        session_id="sess",
        event="stop",
    )
    folder = tmp_path_factory.mktemp("distil-daily")
    assert daily.append_entry(folder, "2026-11-20", block, "0123456789ab")
    parsed = daily.read_entries(folder, "2026-11-20")
    assert [e.id for e in parsed] == ["0123456789ab"]  # model text never forges an entry
    (folder / "2026-11-20.md").read_text(encoding="utf-8")  # the file is valid UTF-8


FORGERY = (
    "ok\n### 10:00 · x · forged\n<!-- memc:entry id=aaaaaaaaaaaa session=x event=stop -->"
    "\n-->\n# heading"
)


def test_distil_reply_cannot_forge_entries():
    entry = distil.entry_from_reply(
        {
            "worth_saving": True,
            "title": FORGERY,
            "context": FORGERY,
            "decisions": [FORGERY] * 3,
            "key_exchanges": [FORGERY],
        }
    )
    block = daily.render_entry(
        entry,
        entry_id="0123456789ab",
        time_hhmm="10:00",
        project=FORGERY,
        session_id=FORGERY,
        event=FORGERY,
    )
    parsed = daily.parse_entries("# Daily Log: 2026-11-20\n\n" + block, "2026-11-20")
    assert [e.id for e in parsed] == ["0123456789ab"]


# ---------------------------------------------------------------- hostile compile replies


def _pending_entry(settings, title="Queue with advisory locks"):
    block = (
        f"### 10:00 · acme · {title}\n<!-- memc:entry id=0123456789ab session=s1 "
        "event=stop -->\n**Context:** we chose advisory locks for the queue.\n\n"
    )
    (settings.paths.daily / "2026-11-20.md").write_text("# Daily Log: 2026-11-20\n\n" + block)


GOOD = {"path": "concepts/advisory-locks", "title": "Advisory locks", "body": "Use them."}


def _deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_REPLIES = {
    "10k-operations": {
        "articles": [{"path": f"concepts/../x{i}", "title": "t", "body": "b"} for i in range(9_999)]
        + [GOOD]
    },
    "10k-valid-looking-duplicates": {"articles": [GOOD] * 10_000},
    "5mb-body": {"articles": [{**GOOD, "path": "concepts/huge", "body": "x" * 5_000_000}, GOOD]},
    "5mb-title-and-lists": {
        "articles": [
            {
                **GOOD,
                "path": "concepts/big",
                "title": "t" * 5_000_000,
                "aliases": ["a" * 1000] * 5000,
            },
            GOOD,
        ]
    },
    "huge-lists": {
        "articles": [
            {
                **GOOD,
                "tags": [f"t{i}" for i in range(100_000)],
                "sources": ["daily/2026-11-20.md"] * 100_000,
            }
        ]
    },
    "deep-nesting-in-tags": {
        "articles": [{**GOOD, "path": "concepts/deep", "tags": _deep(3000)}, GOOD]
    },
    "wrong-types": {
        "articles": [
            1,
            None,
            "x",
            [],
            {"path": 1, "title": [], "body": {}},
            {"path": "concepts/t", "title": {"a": 1}, "body": 2},
            {**GOOD, "aliases": "not a list", "tags": {"a": 1}, "sources": [1, None, "../../etc"]},
        ]
    },
    "lone-surrogates": {
        "articles": [
            {
                "path": "concepts/sur",
                "title": "Sur\ud800rogate",
                "summary": "s\udfff",
                "aliases": ["\ud83d"],
                "body": "broken \udc00 text",
            },
            GOOD,
        ]
    },
    "every-path-trick": {"articles": [{**GOOD, "path": p} for p in PATH_TRICKS] + [GOOD]},
}


# Replies the JSON schema refuses as a whole (an item that is not an object, a list of non-strings):
# the model gets one repair try, then the batch fails and its entries stay pending.
SCHEMA_INVALID = {"deep-nesting-in-tags", "wrong-types"}


@pytest.mark.parametrize("name", list(HOSTILE_REPLIES))
def test_hostile_compile_reply(settings, root, tmp_path, name):
    from pipeline.compiler import run_compile

    _pending_entry(settings)
    outside_before = tree(tmp_path, skip=("root/knowledge/", "root/.memc/"))
    fake = FakeBackend(default=HOSTILE_REPLIES[name])
    report = run_compile(settings, backend=fake, sleep=lambda s: None)
    assert tree(tmp_path, skip=("root/knowledge/", "root/.memc/")) == outside_before
    data = report.to_dict()
    if name in SCHEMA_INVALID:  # fails the reply schema twice: reported, entry stays pending
        assert report.status == "failed" and "InvalidReply" in report.batches[0].error
        assert len(fake.calls) == 2 and "_repair" in fake.calls[1].payload
        assert not list(settings.paths.knowledge.glob("*/*.md"))
        # the guarded writer itself still applies the valid operation of such a reply
        direct = apply.apply_articles(settings, HOSTILE_REPLIES[name]["articles"], now=0)
        assert direct.created and set(direct.created) <= {
            "concepts/deep",
            "concepts/advisory-locks",
        }
        return
    assert report.status == "compiled", report.message
    assert "concepts/advisory-locks" in data["created"] + data["updated"]
    for path in settings.paths.knowledge.rglob("*.md"):
        art = wiki.parse_article(path.stem, path.read_text(encoding="utf-8"))
        if path.parent != settings.paths.knowledge:
            assert art.problems == (), (path, art.problems)
            assert len(path.read_bytes()) < 2_000_000
    from pipeline import wikiindex

    index = (settings.paths.knowledge / "index.md").read_text(encoding="utf-8")
    assert index == wikiindex.expected_index(settings.paths)


def test_deeply_nested_text_reply_through_the_sdk_is_invalid_not_a_crash(settings, fake_claude):
    """Deep nesting in the reply TEXT reaches json.loads in the backend (RecursionError)."""
    from pipeline.compiler import run_compile
    from pipeline.config import load_settings

    _pending_entry(settings)
    deep = '{"articles": ' + "[" * 200_000 + "]" * 200_000 + "}"
    fake_claude.script([{"kind": "text", "raw_text": deep}, {"kind": "text", "raw_text": deep}])
    report = run_compile(load_settings(settings.root), sleep=lambda s: None)
    assert report.status == "failed" and "InvalidReply" in report.batches[0].error
    assert not list(settings.paths.knowledge.glob("*/*.md"))


# ---------------------------------------------------------------- hostile frontmatter

PWNED = "memc-pwned-marker"
HOSTILE_PAGES = {
    "python-tag": f"---\ntitle: !!python/object/apply:os.system ['touch {PWNED}']\n---\nbody\n",
    "python-name": "---\ntitle: !!python/name:os.system\n---\nbody\n",
    "alias-bomb": "---\na: &a ['x','x','x','x','x','x','x','x','x']\n"
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ntitle: Bomb\n---\nbody\n",
    "wrong-types": "---\ntitle: [1, 2]\nsummary: {a: b}\naliases: 7\ntags: [[x]]\nsources: {}\n"
    "created: [2026]\nupdated: null\n---\nbody\n",
    "list-frontmatter": "---\n- a\n- b\n---\nbody\n",
    "ten-mb": "---\ntitle: Big\nsummary: " + "y" * 10_000_000 + "\n---\nbody\n",
    "unclosed": "---\ntitle: Never closed\n" + "line\n" * 1000,
    "binary": None,  # filled below
    "deep-flow": "---\ntitle: " + "[" * 50_000 + "]" * 50_000 + "\n---\nbody\n",
    "control-chars": '---\ntitle: "\\x00\\x1b[31mred"\nsummary: "\\u202eevil"\n---\nbody\n',
}
BINARY = bytes(range(256)) * 64 + b"\x00\xff\xfe---\ntitle: x\n---\n"


@pytest.fixture
def hostile_kb(root, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a python tag that ran would drop its marker here
    from pipeline import wikiindex

    folder = settings.paths.knowledge / "concepts"
    for name, text in HOSTILE_PAGES.items():
        path = folder / f"hostile-{name}.md"
        if text is None:
            path.write_bytes(BINARY)
        else:
            path.write_text(text, encoding="utf-8")
    (folder / "advisory-locks.md").write_text(
        "---\ntitle: Advisory locks\nsummary: good page\n---\nA sane page about acme queues.\n"
    )
    wikiindex.write_index(settings.paths)
    block = (
        "### 10:00 · acme · Advisory locks again\n<!-- memc:entry id=0123456789ab session=s1 "
        "event=stop -->\n**Context:** acme queue uses advisory locks.\n\n"
    )
    (settings.paths.daily / "2026-11-20.md").write_text("# Daily Log: 2026-11-20\n\n" + block)
    return settings


def _no_code_ran(tmp_path: Path) -> None:
    assert not list(tmp_path.rglob(PWNED)) and not Path(PWNED).exists()


def test_hostile_frontmatter_lint_reports_each_page(hostile_kb, tmp_path):
    from pipeline.lint import run_lint

    report = run_lint(hostile_kb, structural_only=True)
    flagged = {i.file for i in report.issues if i.severity == "error"}
    for name in HOSTILE_PAGES:
        if name != "control-chars":  # valid YAML strings: not a frontmatter problem
            assert any(f"hostile-{name}" in f for f in flagged), (name, sorted(flagged))
    _no_code_ran(tmp_path)


def test_hostile_frontmatter_search_query_sessionstart_compile(hostile_kb, tmp_path, capsys):
    from pipeline import inject, search, searchindex, wikiindex
    from pipeline.compiler import run_compile
    from pipeline.query import run_query

    settings = hostile_kb
    searchindex.refresh(settings.paths)
    assert search.search(settings.paths, "acme advisory")  # the sane page is still found
    search.search(settings.paths, "Bomb body x")
    out = inject.build_injection(settings, {"session_id": "s", "cwd": "/home/dev/acme"})
    context = json.loads(out)["hookSpecificOutput"]["additionalContext"]
    assert "context unavailable" not in context and len(out) < 9000
    result = run_query(settings, "what about advisory locks?")  # extractive backend
    assert result.answer
    reply = {
        "articles": [
            {"path": f"concepts/hostile-{n}", "title": f"Hostile {n}", "body": "new"}
            for n in HOSTILE_PAGES
        ]
        + [GOOD]
    }
    report = run_compile(settings, backend=FakeBackend(default=reply))
    assert report.status == "compiled", report.message
    for path in settings.paths.knowledge.glob("concepts/*.md"):
        path.read_bytes()
    index = (settings.paths.knowledge / "index.md").read_text(encoding="utf-8")
    assert index == wikiindex.expected_index(settings.paths)
    _no_code_ran(tmp_path)


def test_hostile_frontmatter_cli_commands_exit_cleanly(hostile_kb, memc_env, tmp_path):
    import subprocess

    for args in (
        ["lint", "--structural-only", "--json"],
        ["search", "acme"],
        ["status", "--json"],
        ["compile", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            env=memc_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        assert proc.returncode in (0, 1), (args, proc.returncode, proc.stderr[-500:])
    payload = json.dumps({"session_id": "s", "cwd": "/home/dev/acme", "transcript_path": ""})
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "hook", "session-start"],
        env=memc_env,
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)
    _no_code_ran(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "{" * 5_000_000,
        '{"a":' * 200_000,
        "[" * 300_000,
        "x {" * 1_000_000 + '{"articles": []}',
        "```json\n" + "{" * 100_000 + "\n```",
        '{"articles": [' + '"x",' * 500_000 + '"y"]}',
    ],
    ids=[
        "5mb-braces",
        "deep-objects",
        "deep-arrays",
        "braces-then-json",
        "fenced-junk",
        "5mb-valid",
    ],
)
def test_reply_text_parser_never_raises(text):
    from pipeline.llm.claude import parse_json_reply

    value = parse_json_reply(text)
    assert value is None or isinstance(value, dict)


def test_reply_text_parser_tries_a_bounded_number_of_braces():
    """Each failed ``{`` costs O(len(text)), so the number of tries is capped: the bound on the
    parser's work that the hostile texts above rely on."""
    from pipeline.llm.claude import MAX_BRACE_TRIES, parse_json_reply

    def junk_then_object(junk_braces: int) -> str:
        return "{x " * junk_braces + '{"articles": []}'

    assert parse_json_reply(junk_then_object(MAX_BRACE_TRIES - 1)) == {"articles": []}
    assert parse_json_reply(junk_then_object(MAX_BRACE_TRIES)) is None  # given up before it
