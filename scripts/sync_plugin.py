"""Keep the plugin folder's generated files in step with pyproject.toml.

Writes plugin/requirements.txt (the drain's dependencies, which the plugin installs into its
private venv) and the version in plugin/.claude-plugin/plugin.json and the marketplace entry.
`--check` changes nothing and exits 1 when a file is stale (tests/test_plugin.py runs it).
The package itself reaches the plugin through the plugin/pipeline symlink, so it needs no copy.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugin"


def expected() -> dict[Path, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = (
        "# Generated from pyproject.toml by scripts/sync_plugin.py; do not edit.\n"
        + "".join(f"{dep}\n" for dep in project["dependencies"])
    )
    out = {PLUGIN / "requirements.txt": requirements}
    for path, pick in (
        (PLUGIN / ".claude-plugin" / "plugin.json", lambda d: d),
        (REPO / ".claude-plugin" / "marketplace.json", lambda d: d["plugins"][0]),
    ):
        data = json.loads(path.read_text())
        pick(data)["version"] = project["version"]
        out[path] = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str]) -> int:
    stale = [path for path, text in expected().items() if path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path.relative_to(REPO)} (run python scripts/sync_plugin.py)")
        return 1 if stale else 0
    for path, text in expected().items():
        if path in stale:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
