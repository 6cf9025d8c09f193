"""Sync in the operations commands: `memc status` shows ahead/behind, the last sync and entries
waiting for another host; `memc doctor` reports an unreachable remote and an unregistered merge
driver; `memc schedule --sync` (or schedule_sync) runs sync after the compile; the benchmark
script measures real syncs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from pipeline import compiler
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.doctor import OK, WARN
from pipeline.schedule import cron_line, render
from pipeline.status import collect, render_text
from pipeline.syncstatus import check as check_sync
from tests.helpers import PYTHON, REPO, T0, bare_remote, distil_entry, git, sync_root


def test_status_shows_ahead_behind_last_sync_and_waiting_hosts(tmp_path, capsys):
    url = bare_remote(tmp_path)
    alpha = sync_root(tmp_path, "alpha")
    assert main(["--root", str(alpha.root), "sync", "--remote", url]) == 0
    beta = sync_root(tmp_path, "beta", from_url=url)
    distil_entry(beta, "b00000000001", "Beta one", "FACT-b")  # not compiled by beta yet
    distil_entry(beta, "b00000000002", "Beta two", "FACT-b2")
    assert main(["--root", str(beta.root), "sync"]) == 0
    distil_entry(alpha, "a00000000001", "Alpha one", "FACT-a")  # one commit not pushed yet
    assert main(["--root", str(alpha.root), "sync"]) == 0  # pulls beta's two entries
    distil_entry(alpha, "a00000000002", "Alpha two", "FACT-a2")
    st = collect(load_settings(alpha.root), now=T0)
    assert st.sync["remote"] == url
    assert (st.sync["ahead"], st.sync["behind"]) == (1, 0)
    assert st.sync["last"]["status"] == "synced"
    assert st.sync["waiting"] == {"beta": 2}
    assert st.entries_pending == 2  # alpha's own two, not beta's
    text = "\n".join(render_text(st, T0 + 60))
    assert "1 commit(s) to push, 0 to pull" in text
    assert "2 entries waiting for beta to compile" in text
    assert "last sync: " in text
    capsys.readouterr()
    assert main(["--root", str(alpha.root), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sync"]["ahead"] == 1
    assert compiler.run_compile(load_settings(beta.root)).ok
    assert main(["--root", str(beta.root), "sync"]) == 0
    assert main(["--root", str(alpha.root), "sync"]) == 0
    assert "waiting" not in collect(load_settings(alpha.root), now=T0).sync  # beta's record


def test_status_of_a_root_that_never_synced_has_no_sync_line(tmp_path):
    alpha = sync_root(tmp_path, "alpha")
    st = collect(alpha, now=T0)
    assert st.sync == {}
    assert not [line for line in render_text(st, T0) if "sync" in line]


def test_doctor_reports_an_unreachable_remote_and_an_unregistered_driver(tmp_path):
    url = bare_remote(tmp_path)
    alpha = sync_root(tmp_path, "alpha")
    assert check_sync(alpha).status == OK  # not shared: nothing to check
    assert main(["--root", str(alpha.root), "sync", "--remote", url]) == 0
    alpha = load_settings(alpha.root)
    check = check_sync(alpha)
    assert check.status == OK and "reachable" in check.detail
    git(alpha.root, "config", "--local", "--unset", "merge.memc-daily.driver")
    check = check_sync(alpha)
    assert check.status == WARN and "merge driver is not registered" in check.detail
    assert main(["--root", str(alpha.root), "sync"]) == 0  # sync registers it again
    subprocess.run(["rm", "-rf", url.removeprefix("file://")], check=True)
    check = check_sync(load_settings(alpha.root))
    assert check.status == WARN and "cannot be reached" in check.detail
    assert "memc sync --remote URL" in check.fix


def test_schedule_runs_sync_after_compile_only_when_asked(tmp_path, capsys):
    root = tmp_path / "my root"
    (root / ".memc" / "logs").mkdir(parents=True)
    fake = tmp_path / "fake-memc"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(tmp_path / "calls"))}\n'
        '[ "$3" = compile ] && exit 1\nexit 0\n'
    )
    fake.chmod(0o755)
    command = cron_line(root, [str(fake)], 15, sync=True).split(" ", 5)[5]
    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        f"--root {root} drain", f"--root {root} compile --if-stale", f"--root {root} sync"
    ]  # fmt: skip
    assert " sync" not in cron_line(root, [str(fake)], 15)
    units = render("systemd", root, [str(fake)], home=tmp_path, sync=True).files
    service = units[0].text
    assert "ExecStart=-" in service and service.rstrip().endswith("sync")
    alpha = sync_root(tmp_path, "alpha")
    assert main(["--root", str(alpha.root), "schedule", "cron"]) == 0
    assert " sync " not in capsys.readouterr().out
    config = alpha.root / ".memc" / "config.toml"
    config.write_text(config.read_text() + "schedule_sync = true\n")
    assert main(["--root", str(alpha.root), "schedule", "cron"]) == 0
    assert f"{alpha.root} sync" in capsys.readouterr().out.replace("'", "")
    assert main(["--root", str(alpha.root), "schedule", "cron", "--no-sync"]) == 0
    assert f"{alpha.root} sync" not in capsys.readouterr().out.replace("'", "")


def test_remembered_remote_is_written_into_config_toml_keeping_other_settings(tmp_path):
    from pipeline.config import set_setting

    alpha = sync_root(tmp_path, "alpha")
    set_setting(alpha.paths, "sync_remote", 'file:///srv/"odd" memory.git')
    set_setting(alpha.paths, "sync_remote", "file:///srv/memory.git")  # replaced, not added
    text = (alpha.root / ".memc" / "config.toml").read_text()
    assert text.count("sync_remote") == 1 and 'host = "alpha"' in text
    assert load_settings(alpha.root).sync_remote == "file:///srv/memory.git"


def test_bench_sync_measures_real_syncs(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the script makes its own home and roots
    done = subprocess.run(
        [PYTHON, str(REPO / "scripts" / "bench_sync.py"), "--sizes", "1", "3", "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    figures = json.loads(out[out.index("{") :])
    assert figures["interpreter_start_s"] > 0
    assert figures["push_s_3"] > figures["interpreter_start_s"]  # a real process ran
    assert "| 3 |" in out
