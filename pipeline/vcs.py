"""The git seam: the only module that runs git.

Choice: the ``git`` executable through ``subprocess``, not a library. The repository memc writes
is the user's own vault, which they also open with git, Obsidian Git or an IDE; driving the same
executable means memc sees exactly the repository, configuration, identity and object format they
see, and needs no new dependency (GitPython shells out to this executable anyway; pygit2 brings
libgit2 and its own view of config; dulwich has no ``merge-file``). A handful of short calls per
batch costs a few milliseconds each (``scripts/bench_git.py`` measures a whole compile).

Invariants:
- Every call is ``git -C ROOT ...`` with a fixed environment: no pager, no terminal prompt,
  ``LC_ALL=C`` (messages are parsed), ``GIT_OPTIONAL_LOCKS=0`` for read-only status, and a time
  limit. A failure raises ``GitError`` with git's own message; nothing here prints.
- Paths given and returned are POSIX paths relative to ROOT (``knowledge/concepts/x.md``).
- memc's commits run with ``--no-verify`` (the caller runs its own pre-commit check, the
  redactor) and commit only the paths they name (``git commit --only``), so whatever the user
  staged for themselves is neither committed nor lost.
- Nothing here decides *what* to commit or who wrote it: that policy is ``pipeline.versioning``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import GitError
from pipeline.gitpaths import chunks as chunks  # re-exported: callers read git's output
from pipeline.gitpaths import diff_target as diff_target  # through vcs
from pipeline.gitpaths import unquote as unquote

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

TIMEOUT_S = 60.0
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the empty tree in sha1 repositories
_FIELD = "\x1f"
_RECORD = "\x1e"


@dataclass(frozen=True)
class Change:
    status: str  # two-letter porcelain status: " M", "??", " D", "A ", ...
    path: str

    @property
    def deleted(self) -> bool:
        return "D" in self.status


@dataclass(frozen=True)
class LogEntry:
    commit: str
    at: float
    author_name: str
    author_email: str
    subject: str
    body: str
    files: tuple[tuple[str, int, int], ...]  # (path, lines added, lines removed)
    committer_name: str = ""
    committer_email: str = ""


def git_exe() -> str | None:
    """The git executable on PATH, or None when git is not installed."""
    return shutil.which("git")


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        PAGER="cat",
        LC_ALL="C",
        GIT_ASKPASS="true" if os.name != "nt" else "",
    )
    env.pop("GIT_DIR", None)  # a GIT_DIR inherited from a hook must not redirect our writes
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    if extra:
        env.update(extra)
    return env


def run(
    root: Path | str,
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``git -C root args...``; GitError when it fails (``check``) or git is missing."""
    import subprocess  # here: what runs no git (status of an unversioned root) never loads it

    exe = git_exe()
    if exe is None:
        raise GitError("git is not installed (not on PATH); install git or set `git = false`")
    try:
        proc = subprocess.run(
            [exe, "-C", str(root), *args],
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_env(env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout:.0f} s; try again") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise GitError(f"git {args[0]} failed: {' / '.join(tail) or f'exit {proc.returncode}'}")
    return proc


def is_repo(root: Path | str) -> bool:
    """True when ROOT itself is the top of a git work tree (``.git`` folder or file)."""
    return os.path.exists(os.path.join(root, ".git"))


def init(root: Path | str) -> None:
    run(root, "init", "-q")


def head(root: Path | str) -> str | None:
    proc = run(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def toplevel(root: Path | str) -> str | None:
    proc = run(root, "rev-parse", "--show-toplevel", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def changes(root: Path | str, pathspecs: Sequence[str]) -> list[Change]:
    """Uncommitted changes (staged, unstaged, untracked) under ``pathspecs``."""
    return start_changes(root, pathspecs)()


def start_changes(root: Path | str, pathspecs: Sequence[str]) -> Callable[[], list[Change]]:
    """``changes`` started now and collected later: the returned function waits for git and
    parses (GitError as ``run``). A reader with other work to do (``memc status``) lets git stat
    the tree on another core meanwhile instead of after it."""
    import subprocess

    exe = git_exe()
    if exe is None:
        raise GitError("git is not installed (not on PATH); install git or set `git = false`")
    args = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--"]
    try:
        proc = subprocess.Popen(
            [exe, "-C", str(root), *args, *pathspecs],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env({"GIT_OPTIONAL_LOCKS": "0"}),
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None

    def collect() -> list[Change]:
        try:
            raw, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise GitError(f"git status took longer than {TIMEOUT_S:.0f} s; try again") from None
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise GitError(f"git status failed: {' / '.join(tail) or f'exit {proc.returncode}'}")
        items = raw.decode("utf-8", "replace").split("\0")
        return [Change(item[:2], item[3:]) for item in items if len(item) > 3]

    return collect


def show(root: Path | str, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev``, or None when it does not exist there."""
    proc = run(root, "show", f"{rev}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def blob(root: Path | str, sha: str) -> str | None:
    """The text of a blob by id, or None when the object database does not hold it."""
    proc = run(root, "cat-file", "blob", sha, check=False)
    return proc.stdout if proc.returncode == 0 else None


def blob_sha(data: bytes | str) -> str:
    """The id git gives ``data`` as a blob (sha1 object format), without running git."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    import hashlib  # here, like tempfile below: `memc status` imports this module

    return hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()


def identity(root: Path | str, which: str = "AUTHOR") -> tuple[str, str] | None:
    """(name, email) git would use as author (or COMMITTER) here, or None when not configured."""
    proc = run(root, "var", f"GIT_{which}_IDENT", check=False)
    text = proc.stdout.strip()
    if proc.returncode != 0 or "<" not in text:
        return None
    name, _, rest = text.partition("<")
    email = rest.split(">", 1)[0]
    return (name.strip(), email.strip()) if name.strip() and email.strip() else None


def staged_diff(
    root: Path | str, paths: Sequence[str], base: str | None
) -> tuple[bool, list[tuple[str, int, str]]]:
    """(anything staged?, every added line as (path, line number, text)) of the staged ``paths``
    against ``base`` (HEAD; None before the first commit). Feeds the pre-commit secret check."""
    text = "".join(
        run(
            root,
            "diff",
            "--cached",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            base or EMPTY_TREE,
            "--",
            *part,
        ).stdout
        for part in chunks(paths)
    )
    out: list[tuple[str, int, str]] = []
    path, line = "", 0
    for raw in text.splitlines():
        if raw.startswith("+++ "):
            path = diff_target(raw)
        elif raw.startswith("@@"):
            plus = raw.split("+", 1)[1].split(" ", 1)[0]
            line = int(plus.split(",", 1)[0])
        elif raw.startswith("+") and path:
            out.append((path, line, raw[1:]))
            line += 1
    return bool(text.strip()), out


def stage(root: Path | str, paths: Sequence[str]) -> None:
    for part in chunks(paths):
        run(root, "add", "-A", "--", *part)


def unstage(root: Path | str, paths: Sequence[str]) -> None:
    born = head(root) is not None
    for part in chunks(paths):
        if born:
            run(root, "reset", "-q", "--", *part, check=False)
        else:
            run(root, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *part, check=False)


def commit(
    root: Path | str,
    paths: Sequence[str],
    message: str,
    *,
    author: tuple[str, str] | None = None,
    committer: tuple[str, str] | None = None,
    fallback_committer: tuple[str, str] | None = None,
) -> str:
    """Commit exactly ``paths`` (staged with ``stage``, known to differ) with ``message``;
    returns the new commit id. ``fallback_committer`` is used only when git has no identity of
    its own for the committer (rather than asking ``git var`` before every commit)."""
    env: dict[str, str] = {}
    if author:
        env.update(GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1])
    if committer:
        env.update(GIT_COMMITTER_NAME=committer[0], GIT_COMMITTER_EMAIL=committer[1])
    import tempfile  # here: read-only callers (`memc status`) never load it

    with tempfile.TemporaryDirectory(prefix="memc-commit-") as tmp:
        spec = Path(tmp, "paths")  # NUL-separated: any number of paths, any names
        spec.write_bytes(b"\0".join(p.encode("utf-8", "surrogateescape") for p in paths))
        args = ("commit", "-q", "--no-verify", "--no-gpg-sign", "-F", "-", "--only",
                f"--pathspec-from-file={spec}", "--pathspec-file-nul")  # fmt: skip
        proc = run(root, *args, input=message, env=env, check=False)
        if proc.returncode != 0 and fallback_committer and _no_identity(proc.stderr):
            env.update(GIT_COMMITTER_NAME=fallback_committer[0])
            env.update(GIT_COMMITTER_EMAIL=fallback_committer[1])
            proc = run(root, *args, input=message, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise GitError(f"git commit failed: {' / '.join(tail) or f'exit {proc.returncode}'}")
    return head(root) or ""


def _no_identity(stderr: str) -> bool:
    text = stderr.lower()
    return "tell me who you are" in text or "auto-detect" in text or "empty ident" in text


def log(
    root: Path | str, paths: Sequence[str] = (), *, limit: int = 20, rev: str = "HEAD"
) -> list[LogEntry]:
    """Newest first: commits reachable from ``rev`` touching ``paths`` (all when empty)."""
    if head(root) is None:
        return []
    fmt = _RECORD + _FIELD.join(("%H", "%at", "%an", "%ae", "%cn", "%ce", "%s", "%b")) + _FIELD
    args = ["log", f"-n{limit}", f"--format={fmt}", "--numstat", "--no-renames", rev, "--"]
    proc = run(root, *args, *paths)
    out: list[LogEntry] = []
    for record in proc.stdout.split(_RECORD)[1:]:
        parts = record.split(_FIELD)
        if len(parts) < 9:
            continue
        files: list[tuple[str, int, int]] = []
        for line in parts[8].strip("\n").splitlines():
            cols = line.split("\t")
            if len(cols) == 3:
                added = int(cols[0]) if cols[0].isdigit() else 0
                removed = int(cols[1]) if cols[1].isdigit() else 0
                files.append((cols[2], added, removed))
        out.append(
            LogEntry(
                parts[0],
                float(parts[1] or 0),
                parts[2],
                parts[3],
                parts[6],
                parts[7].strip(),
                tuple(files),
                parts[4],
                parts[5],
            )
        )
    return out


def changed_files(root: Path | str, commit_id: str) -> list[tuple[str, str]]:
    """(status letter A/M/D, path) of every file ``commit_id`` changed against its parent."""
    proc = run(root, "diff-tree", "-r", "--no-commit-id", "--root", "--no-renames",
               "--name-status", commit_id)  # fmt: skip
    out: list[tuple[str, str]] = []
    for line in proc.stdout.splitlines():
        status, _, path = line.partition("\t")
        if path:
            out.append((status[:1], path))
    return out


def resolve(root: Path | str, rev: str) -> str | None:
    proc = run(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def merge_text(ours: str, base: str, theirs: str, *, union: bool = False) -> tuple[str, bool]:
    """A 3-way merge of three texts with ``git merge-file``: (merged text, clean?). ``union``
    keeps both sides' lines where they clash (for append-only files), so it is always clean."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="memc-merge-") as tmp:
        names = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp, name)
            path.write_text(text, encoding="utf-8")
            names.append(str(path))
        flags = ["--union"] if union else []
        proc = run(tmp, "merge-file", "-p", *flags, "-L", "yours", "-L", "base", "-L", "memc",
                   *names, check=False)  # fmt: skip
    if proc.returncode < 0 or proc.returncode > 127:
        raise GitError(f"git merge-file failed: {proc.stderr.strip()[:200]}")
    return proc.stdout, proc.returncode == 0


def config_get(root: Path | str, key: str) -> str | None:
    """The repository's value of ``key`` (any scope git reads), or None when unset."""
    proc = run(root, "config", "--get", key, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def config_set(root: Path | str, key: str, value: str) -> None:
    """Set ``key`` in the repository's own ``.git/config`` (never the user's global config)."""
    run(root, "config", "--local", key, value)
