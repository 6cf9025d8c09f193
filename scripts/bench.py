#!/usr/bin/env python3
"""The aggregated benchmark: every published performance figure in ONE markdown table.

Runs the stage benchmarks (scripts/bench_hooks.py as a subprocess, whose own table is parsed;
bench_drain.py, bench_compile.py and bench_read.py through their functions) on synthetic data in a
temp folder, with the offline ``extractive`` backend or an instant in-process model (no network,
no cost), and prints:

- hook latency, interpreter start included: first and incremental (+4 turns) capture, 1 and 85 MB;
- drain throughput (extractive backend and instant model), watcher pick-up latency;
- compile prompt size at 50 / 1,000 / 3,000 articles (the same 10 pending entries each time);
- structural lint time at 250 / 1,000 / 5,000 articles;
- `memc search` and `memc hook session-start` wall time at 5,000 articles;
- peak RSS of `memc drain` over a 200 MB spooled delta;
- the machine: CPU model, cores, RAM, Python.

    .venv/bin/python scripts/bench.py            # full sizes, several minutes
    .venv/bin/python scripts/bench.py --quick    # reduced sizes (seconds), same table shape
    .venv/bin/python scripts/bench.py --json     # raw figures as JSON after the table
    .venv/bin/python scripts/bench.py --scale    # scripts/bench_scale.py instead: 2k/20k/50k
                                                 # articles, a 2,000-entry day, 3,800 spools,
                                                 # a locked state.db, a 100 MB line (long)

Progress and the stage scripts' own chatter go to stderr; stdout carries only the table (and the
JSON when asked). Timings are wall-clock on whatever else the machine is doing: run it idle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(SCRIPTS))

FULL = {
    "big_mb": 85.0,
    "small_mb": 1.0,
    "hook_reps": 10,
    "jobs": 200,
    "latency_jobs": 30,
    "spool_mb": 200,
    "prompt_sizes": (50, 1000, 3000),
    "lint_sizes": (250, 1000, 5000),
    "read_size": 5000,
    "runs": 15,
}
QUICK = {
    "big_mb": 8.0,
    "small_mb": 1.0,
    "hook_reps": 3,
    "jobs": 30,
    "latency_jobs": 8,
    "spool_mb": 20,
    "prompt_sizes": (50, 300, 600),
    "lint_sizes": (100, 250, 500),
    "read_size": 500,
    "runs": 5,
}
_ROW = re.compile(r"^(?P<name>.+?)\s+(?P<median>[\d.]+)ms\s+(?P<min>[\d.]+)ms\s+(?P<max>[\d.]+)ms$")


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load_1min_at_start": round(load, 2) if load is not None else None,
    }


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMC_")}
    env.update(MEMC_BACKEND="extractive", MEMC_TZ="UTC", MEMC_SPAWN_DRAIN="0", PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has .pyc files; so may we
    return env


def bench_hooks(cfg: dict) -> dict:
    """Runs scripts/bench_hooks.py and parses its table: {row name: {median,min,max} in ms}."""
    cmd = [
        sys.executable,
        str(SCRIPTS / "bench_hooks.py"),
        "--big-mb",
        str(cfg["big_mb"]),
        "--small-mb",
        str(cfg["small_mb"]),
        "--reps",
        str(cfg["hook_reps"]),
    ]
    proc = subprocess.run(cmd, env=_clean_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_hooks.py failed:\n{proc.stderr[-3000:]}")
    rows = {}
    for line in proc.stdout.splitlines():
        match = _ROW.match(line.strip())
        if match:
            rows[match["name"].strip()] = {k: float(match[k]) for k in ("median", "min", "max")}
    return rows


def _hook_row(rows: dict, kind: str, mb: float) -> dict | None:
    for name, value in rows.items():
        if name.startswith(f"session-end {kind}") and name.endswith(f"{mb:.1f} MB"):
            return value
    return None


def bench_drain(cfg: dict, tmp: Path) -> dict:
    import bench_drain as bd

    return {
        "throughput": bd.bench_throughput(tmp, cfg["jobs"]),
        "watcher_latency": bd.bench_latency(tmp, cfg["latency_jobs"]),
        "big_spool": bd.bench_rss(tmp, cfg["spool_mb"], 16),
    }


def bench_prompts(cfg: dict, tmp: Path) -> dict[int, int]:
    import bench_compile as bc

    out = {}
    for n in cfg["prompt_sizes"]:
        root = tmp / f"prompt-{n}"
        root.mkdir()
        bc.build_kb(root, n)
        out[n] = bc.prompt_size(root)
        log(f"compile prompt at {n} articles: {out[n]:,} chars")
    return out


def _median_wall(cmd: list[str], env: dict, runs: int, stdin: str | None = None) -> float:
    subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, check=True)  # warm
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def bench_read(cfg: dict, tmp: Path) -> dict:
    import bench_read as br

    lint = br.bench_lint(tmp, list(cfg["lint_sizes"]))
    n = cfg["read_size"]
    root = tmp / f"lint-{n}" if n in cfg["lint_sizes"] else br.make_kb(tmp / f"read-{n}", n)
    env = dict(_clean_env(), MEMC_ROOT=str(root))
    search_s = _median_wall(
        [sys.executable, "-m", "pipeline", "search", "postgres advisory locks", "--limit", "10"],
        env,
        cfg["runs"],
    )
    payload = json.dumps(
        {
            "session_id": "bench",
            "transcript_path": "",
            "cwd": "/home/dev/acme-api",
            "hook_event_name": "SessionStart",
            "source": "startup",
        }
    )
    start_s = _median_wall(
        [sys.executable, "-m", "pipeline", "hook", "session-start"], env, cfg["runs"], stdin=payload
    )
    floor_s = _median_wall([sys.executable, "-c", "pass"], env, cfg["runs"])
    return {
        "lint_s": lint,
        "read_size": n,
        "search_s": search_s,
        "session_start_s": start_s,
        "python_floor_s": floor_s,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def render(results: dict, quick: bool) -> str:
    m = results["machine"]
    hooks, drain, prompts, read = (
        results["hooks"],
        results["drain"],
        results["prompts"],
        results["read"],
    )
    rows: list[tuple[str, str, str]] = []
    floor = hooks.get("python -c pass")
    for kind in ("first capture", "incremental"):
        for mb in (results["config"]["small_mb"], results["config"]["big_mb"]):
            r = _hook_row(hooks, kind, mb)
            if r:
                ratio = f", {r['median'] / floor['median']:.1f}x floor" if floor else ""
                rows.append(
                    (
                        f"hook `session-end`, {kind}",
                        f"{mb:g} MB transcript",
                        f"{r['median']:.0f} ms median (min {r['min']:.0f}, max {r['max']:.0f}"
                        f"{ratio})",
                    )
                )
    if floor:
        rows.append(
            ("`python -c pass` (interpreter floor)", "-", f"{floor['median']:.0f} ms median")
        )
    for label, t in drain["throughput"].items():
        rows.append(
            (
                f"drain throughput ({label} model)",
                f"{t['jobs']} jobs",
                f"{t['jobs_per_s']:.1f} jobs/s ({t['seconds']:.1f} s)",
            )
        )
    lat = drain["watcher_latency"]
    rows.append(
        (
            "watcher pick-up latency (commit -> done)",
            f"{lat['jobs']} jobs",
            f"p50 {_ms(lat['p50_s'])}, p95 {_ms(lat['p95_s'])}, max {_ms(lat['max_s'])}",
        )
    )
    for n, chars in prompts.items():
        rows.append(("compile prompt, largest batch", f"{n:,} articles", f"{chars:,} chars"))
    for n, secs in read["lint_s"].items():
        rows.append(("`lint --structural-only`", f"{n:,} articles", f"{secs:.2f} s"))
    n = read["read_size"]
    floor_s = read["python_floor_s"]
    rows.append(
        (
            "`memc search` wall time",
            f"{n:,} articles",
            f"{_ms(read['search_s'])} median ({read['search_s'] / floor_s:.1f}x floor)",
        )
    )
    rows.append(
        (
            "`memc hook session-start` wall time",
            f"{n:,} articles",
            f"{_ms(read['session_start_s'])} median "
            f"({read['session_start_s'] / floor_s:.1f}x floor)",
        )
    )
    big = drain["big_spool"]
    rows.append(
        (
            "`memc drain` peak RSS",
            f"{big['spool_mb']:g} MB spooled delta",
            f"{big['peak_rss_mb']:.0f} MB (tiny-delta baseline "
            f"{big['baseline_tiny_drain_rss_mb']:.0f} MB), {big['seconds']:.1f} s",
        )
    )
    out = ["| measure | size | result |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    ram = f"{m['ram_gb']} GB RAM" if m["ram_gb"] else "RAM unknown"
    out.append("")
    out.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {ram}, {m['os']}, Python {m['python']}; "
        f"1-min load {m['load_1min_at_start']} at start. "
        f"{'QUICK (reduced sizes)' if quick else 'Full sizes'}; "
        f"total {results['seconds']:.0f} s."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes (for a smoke run)")
    ap.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    ap.add_argument(
        "--scale",
        action="store_true",
        help="run scripts/bench_scale.py (large knowledge bases, ratios to the floor) instead",
    )
    args, rest = ap.parse_known_args(argv)
    if args.scale:
        import bench_scale

        return bench_scale.main(rest + (["--json"] if args.json else []))
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    cfg = dict(QUICK if args.quick else FULL)
    for key, value in _clean_env().items():  # the in-process stages read settings from here
        os.environ[key] = value
    for key in [k for k in os.environ if k.startswith("MEMC_")]:
        if key not in ("MEMC_BACKEND", "MEMC_TZ", "MEMC_SPAWN_DRAIN"):
            del os.environ[key]
    started = time.perf_counter()
    results: dict = {"machine": machine(), "config": cfg}
    with tempfile.TemporaryDirectory(prefix="memc-bench-all-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["HOME"] = str(tmp)  # nothing here may touch the real home directory
        with contextlib.redirect_stdout(sys.stderr):
            log("hooks (bench_hooks.py)")
            results["hooks"] = bench_hooks(cfg)
            log("drain throughput, watcher latency, big-spool RSS (bench_drain.py)")
            (tmp / "drain").mkdir()
            results["drain"] = bench_drain(cfg, tmp / "drain")
            log("compile prompt sizes (bench_compile.py)")
            (tmp / "prompts").mkdir()
            results["prompts"] = bench_prompts(cfg, tmp / "prompts")
            log("lint, search, session-start (bench_read.py)")
            (tmp / "read").mkdir()
            results["read"] = bench_read(cfg, tmp / "read")
    results["seconds"] = time.perf_counter() - started
    print(render(results, args.quick))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
