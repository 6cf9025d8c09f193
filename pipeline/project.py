"""Project identity: a project is its git repository, not the name of the folder it is in.

``identify(cwd)`` walks up from ``cwd`` to the first ``.git`` (a folder, or a file pointing at
one: worktrees and submodules) and names the project by:
1. its ``origin`` remote (else the first remote), normalised so that the ssh and https forms of
   one repository agree: ``git@github.com:acme/billing.git`` and
   ``https://github.com/acme/billing`` are both ``github.com/acme/billing``;
2. else the repository's root folder, ``path:/home/me/src/etl`` (the main worktree's root, so
   every worktree of one repository is one project);
3. else (no repository, or a relative path) the folder itself, ``path:/home/me/scratch``.
The display ``name`` is the remote's last path part or the root's folder name; it is what daily
headings show and may be shared by two projects. The ``key`` never is: two unrelated folders
called ``api`` have different keys, and ranking and filtering compare keys.

Invariants:
- Stdlib only and cheap (a few ``stat`` calls and one small file read, no ``git`` process):
  it runs on the hook path.
- Credentials in a remote URL (``https://user:token@host/...``) never reach the key or the name.
- Never raises: unreadable or odd ``.git`` contents fall back to the folder.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

MAX_DEPTH = 64
_SECTION = re.compile(r'^\s*\[\s*remote\s+"((?:[^"\\]|\\.)*)"\s*\]')
_ANY_SECTION = re.compile(r"^\s*\[")
_URL = re.compile(r"^\s*url\s*=\s*(.*?)\s*$", re.I)
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")  # git@host:owner/repo(.git)


# key: "github.com/acme/billing" or "path:/abs/root"; "" when there is no folder.
# name: display name, sanitised; "unknown" when there is nothing to name.
# A namedtuple, not a dataclass or typing.NamedTuple: this runs on the hook path.
ProjectId = namedtuple("ProjectId", ["key", "name"])


def folder_name(path: str) -> str:
    """Sanitised last part of a path (POSIX or Windows separators); "unknown" when empty."""
    base = re.split(r"[\\/]", path.rstrip("\\/"))[-1] if path else ""
    clean = re.sub(r"[^\w.-]+", "-", base).strip(".-")[:80]
    return clean or "unknown"


def normalise_remote(url: str) -> str:
    """``host/path`` of a remote URL without user, password, port, ``.git`` or trailing slash."""
    url = url.strip()
    if not url:
        return ""
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme.lower() == "file":
            return "path:" + _clean_path(rest)
        host, _, path = rest.partition("/")
        host = host.rpartition("@")[2].split(":")[0].lower()
    else:
        scp = _SCP.match(url)
        if scp is None or url.startswith(("/", ".")) or re.match(r"^[A-Za-z]:[\\/]", url):
            return "path:" + _clean_path(url)
        host, path = scp.group(1).lower(), scp.group(2)
    path = path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    return f"{host}/{path}" if path else host


_UNQUOTED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + "_.-~" + "/:@+"
)


def _quote(text: str) -> str:
    """``urllib.parse.quote(text, safe="/:@._-~+")``, without importing urllib.parse."""
    if all(ch in _UNQUOTED for ch in text):
        return text
    return "".join(
        ch if ch in _UNQUOTED else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in text
    )


def _clean_path(path: str) -> str:
    path = path.rstrip("/").removesuffix(".git").rstrip("/") or "/"
    return _quote(path)


def _read(path: str, limit: int = 1 << 16) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return ""


def remote_url(config_text: str) -> str:
    """The ``origin`` remote's URL in a git config file's text, else the first remote's."""
    remotes: list[tuple[str, str]] = []
    current = None
    for line in config_text.splitlines():
        section = _SECTION.match(line)
        if section:
            current = section.group(1)
            continue
        if _ANY_SECTION.match(line):
            current = None
            continue
        found = _URL.match(line) if current is not None else None
        if found and current is not None:
            remotes.append((current, found.group(1).strip('"')))
    for name, url in remotes:
        if name == "origin":
            return url
    return remotes[0][1] if remotes else ""


def _git_dirs(top: str) -> tuple[str, str] | None:
    """(common git dir, repository root) for a folder holding ``.git``; None if it is not one."""
    dot = os.path.join(top, ".git")
    if os.path.isdir(dot):
        return dot, top
    text = _read(dot, 4096).strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = text[len("gitdir:") :].strip()
    if not os.path.isabs(gitdir):
        gitdir = os.path.normpath(os.path.join(top, gitdir))
    common = _read(os.path.join(gitdir, "commondir"), 4096).strip()
    if not common:  # a submodule (or an odd layout): its own repository, rooted here
        return gitdir, top
    if not os.path.isabs(common):
        common = os.path.normpath(os.path.join(gitdir, common))
    root = os.path.dirname(common) if os.path.basename(common) == ".git" else common
    return common, root


def identify(cwd: str) -> ProjectId:
    """The project a folder belongs to (see the module docstring). Never raises."""
    if not isinstance(cwd, str) or not cwd.strip() or "\x00" in cwd:
        return ProjectId("", "unknown")
    if not os.path.isabs(cwd):  # hooks always send an absolute cwd; never resolve against ours
        return ProjectId("path:" + _clean_path(cwd), folder_name(cwd))
    try:
        start = os.path.normpath(cwd)
        folder = start
        for _ in range(MAX_DEPTH):
            found = _git_dirs(folder)
            if found is not None:
                common, root = found
                url = remote_url(_read(os.path.join(common, "config")))
                if url.startswith("."):  # a remote given relative to the repository
                    url = os.path.normpath(os.path.join(root, url))
                remote = normalise_remote(url)
                if remote:
                    return ProjectId(remote, folder_name(remote))
                return ProjectId("path:" + _clean_path(root), folder_name(root))
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        return ProjectId("path:" + _clean_path(start), folder_name(start))
    except (OSError, ValueError):
        return ProjectId("path:" + _clean_path(cwd), folder_name(cwd))
