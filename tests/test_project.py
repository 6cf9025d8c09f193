"""Project identity from real git repositories: remotes, roots, worktrees, same-named folders."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline.project import ProjectId, identify, normalise_remote, remote_url
from tests.helpers import make_repo


def git(*args: str, cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


repo = make_repo


@pytest.mark.parametrize(
    "url, key",
    [
        ("git@github.com:acme/billing.git", "github.com/acme/billing"),
        ("https://github.com/acme/billing", "github.com/acme/billing"),
        ("https://GitHub.com/acme/billing.git/", "github.com/acme/billing"),
        ("ssh://git@gitlab.com:2222/acme/infra.git", "gitlab.com/acme/infra"),
        ("https://bob:ghp_secret123@github.com/acme/x.git", "github.com/acme/x"),
        ("/srv/git/tools.git", "path:/srv/git/tools"),
        ("file:///srv/git/tools.git", "path:/srv/git/tools"),
        ("", ""),
    ],
)
def test_remote_urls_normalise_to_one_key(url, key):
    assert normalise_remote(url) == key


def test_two_unrelated_api_folders_are_two_projects(tmp_path):
    billing = repo(tmp_path / "work" / "billing" / "api", "git@github.com:acme/billing.git")
    oss = repo(tmp_path / "oss" / "api", "https://github.com/jdoe/tinyhttp.git")
    local_a = repo(tmp_path / "a" / "api")
    local_b = repo(tmp_path / "b" / "api")
    ids = [identify(str(p)) for p in (billing, oss, local_a, local_b)]
    assert ids[0] == ProjectId("github.com/acme/billing", "billing")
    assert ids[1] == ProjectId("github.com/jdoe/tinyhttp", "tinyhttp")
    assert ids[2].name == ids[3].name == "api"  # same display name ...
    assert len({i.key for i in ids}) == 4  # ... never the same project


def test_worktrees_and_subfolders_are_the_repository(tmp_path):
    main = repo(tmp_path / "storefront", "git@github.com:acme/storefront.git")
    (main / "app" / "checkout").mkdir(parents=True)
    git("worktree", "add", "-q", "-b", "feature", str(tmp_path / "storefront-wt"), cwd=main)
    here = identify(str(main / "app" / "checkout"))
    assert here == identify(str(main)) == identify(str(tmp_path / "storefront-wt"))
    assert here.key == "github.com/acme/storefront"
    local = repo(tmp_path / "etl")
    git("worktree", "add", "-q", "-b", "x", str(tmp_path / "etl-x"), cwd=local)
    assert identify(str(tmp_path / "etl-x")) == identify(str(local))
    assert identify(str(local)).key == "path:" + str(local)


def test_no_repository_is_the_folder_and_bad_input_never_raises(tmp_path):
    plain = tmp_path / "scratch"
    plain.mkdir()
    assert identify(str(plain)) == ProjectId("path:" + str(plain), "scratch")
    assert identify("") == ProjectId("", "unknown")
    assert identify("bad\x00path").name == "unknown"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").write_text("gitdir: /nowhere/at/all\n")
    assert identify(str(broken)).name == "broken"


def test_origin_wins_over_other_remotes_and_odd_sections_are_ignored():
    text = (
        '[core]\n\tbare = false\n[remote "upstream"]\n\turl = https://h/up/x.git\n'
        '[remote "origin"]\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
        '\turl = git@h:me/x.git\n[branch "main"]\n\turl = not-a-remote\n'
    )
    assert remote_url(text) == "git@h:me/x.git"
    assert remote_url('[remote "fork"]\nurl = a\n') == "a"
    assert remote_url("garbage [[[") == ""


def _transcript(path: Path, cwd: Path, session: str) -> Path:
    import json

    lines = [
        {
            "type": "user",
            "sessionId": session,
            "cwd": str(cwd),
            "uuid": "u1",
            "timestamp": "2026-11-20T10:00:00.000Z",
            "message": {
                "role": "user",
                "content": "Fix the flaky login test in tests/test_login.py",
            },
        },
        {
            "type": "assistant",
            "sessionId": session,
            "cwd": str(cwd),
            "uuid": "a1",
            "timestamp": "2026-11-20T10:00:05.000Z",
            "message": {
                "id": "m1",
                "role": "assistant",
                "content": [
                    {
                        "type": "text",
                        "text": "The root cause was a shared fixture; we decided to "
                        "switch to a per-test database.",
                    }
                ],
            },
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_daily_entries_carry_the_repository_key_through_capture_and_drain(tmp_path, settings):
    from pipeline.capture import capture
    from pipeline.daily import list_days, read_entries
    from pipeline.drain import drain

    billing = repo(tmp_path / "w" / "billing" / "api", "git@github.com:acme/billing.git")
    oss = repo(tmp_path / "o" / "api")
    for n, cwd in enumerate((billing, oss)):
        path = _transcript(tmp_path / f"s{n}.jsonl", cwd, f"sess-{n}")
        result = capture(
            settings,
            transcript_path=str(path),
            session_id=f"sess-{n}",
            cwd=str(cwd),
            event="session-end",
        )
        assert result.status == "queued"
    assert drain(settings, run_after=False).failed == 0
    entries = [
        e
        for day in list_days(settings.paths.daily)
        for e in read_entries(settings.paths.daily, day)
    ]
    assert {(e.project, e.project_key) for e in entries} == {
        ("billing", "github.com/acme/billing"),
        ("api", "path:" + str(oss)),
    }
