"""The git seam's remote half: remotes, fetch, merge, push, clone (for ``pipeline.sync``).

Every call goes through ``pipeline.vcs.run`` (fixed environment, no prompt, a time limit), so
``pipeline.vcs`` stays the one place that starts git; this module only adds the commands a sync
needs and turns git's messages into short reasons. Nothing here prints or decides policy.

Invariants:
- Network commands (fetch, push, ls-remote, clone) never ask for a password
  (``GIT_TERMINAL_PROMPT=0``) and fail with ``GitError`` carrying a one-line reason
  (``reason``): authentication, unreachable, not a repository, refused by the remote.
- ``push`` tells a lost race (the remote moved: "fetch first", non-fast-forward) apart from a
  refusal: it returns False for the race, raises for anything else.
- Paths are POSIX paths relative to ROOT; revisions are full commit ids or ref names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline import vcs
from pipeline.errors import GitError

NET_TIMEOUT_S = 120.0
_HUNK = re.compile(r"^(@@+) .*?\+(\d+)")


def reason(stderr: str) -> str:
    """git's failure text as one short line saying what went wrong."""
    text = " ".join(stderr.split())
    low = text.lower()
    if "authentication failed" in low or "permission denied" in low or "could not read user" in low:
        return f"authentication failed ({text[:160]})"
    if "could not resolve host" in low or "connection refused" in low or "timed out" in low:
        return f"the remote is unreachable ({text[:160]})"
    if "does not appear to be a git repository" in low or "not found" in low:
        return f"not a git repository there ({text[:160]})"
    return text[:240] or "git failed"


def _net(root: Path | str, *args: str, env: Mapping[str, str] | None = None):
    proc = vcs.run(root, *args, env=env, check=False, timeout=NET_TIMEOUT_S)
    if proc.returncode != 0:
        raise GitError(reason(proc.stderr or proc.stdout))
    return proc


def remote_url(root: Path | str, name: str) -> str | None:
    proc = vcs.run(root, "remote", "get-url", name, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def set_remote(root: Path | str, name: str, url: str) -> None:
    if remote_url(root, name) is None:
        vcs.run(root, "remote", "add", name, url)
    else:
        vcs.run(root, "remote", "set-url", name, url)


def drop_remote(root: Path | str, name: str) -> None:
    vcs.run(root, "remote", "remove", name, check=False)


def branch(root: Path | str) -> str | None:
    """The checked-out branch (also before its first commit), or None on a detached HEAD."""
    proc = vcs.run(root, "symbolic-ref", "--short", "-q", "HEAD", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def tracking_ref(remote: str, branch_name: str) -> str:
    return f"refs/remotes/{remote}/{branch_name}"


def fetch(root: Path | str, remote: str, branch_name: str) -> str | None:
    """Fetch the remote's ``branch_name``; its commit id, or None when the remote has no such
    branch yet (an empty repository). GitError when the remote cannot be read."""
    ref = tracking_ref(remote, branch_name)
    spec = f"+refs/heads/{branch_name}:{ref}"
    proc = vcs.run(root, "fetch", "-q", "--no-tags", "--no-write-fetch-head", remote, spec,
                   check=False, timeout=NET_TIMEOUT_S)  # fmt: skip
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr.lower():
            return None
        raise GitError(reason(proc.stderr or proc.stdout))
    return vcs.resolve(root, ref)


def is_ancestor(root: Path | str, older: str, newer: str) -> bool:
    proc = vcs.run(root, "merge-base", "--is-ancestor", older, newer, check=False)
    return proc.returncode == 0


def merge_base(root: Path | str, a: str, b: str) -> str | None:
    proc = vcs.run(root, "merge-base", a, b, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def fast_forward(root: Path | str, rev: str) -> None:
    vcs.run(root, "merge", "-q", "--ff-only", "--no-verify", rev)


def merge_start(root: Path | str, rev: str, env: Mapping[str, str] | None = None) -> bool:
    """``git merge --no-commit`` of ``rev`` (unrelated histories allowed: two roots that began
    apart share nothing but their layout). True when no path conflicts. GitError when git
    refuses to start (local changes in the way), with nothing changed. ``env``: the identity
    the merge commit will carry (git asks for one before merging, even with ``--no-commit``)."""
    proc = vcs.run(root, "merge", "-q", "--no-ff", "--no-commit", "--no-verify",
                   "--allow-unrelated-histories", rev, env=env, check=False)  # fmt: skip
    if proc.returncode == 0:
        return True
    if merging(root):
        return False
    raise GitError(f"git merge failed: {reason(proc.stderr or proc.stdout)}")


def merging(root: Path | str) -> bool:
    return vcs.resolve(root, "MERGE_HEAD") is not None


def unmerged(root: Path | str) -> list[str]:
    proc = vcs.run(root, "diff", "--name-only", "-z", "--diff-filter=U")
    return sorted({p for p in proc.stdout.split("\0") if p})


def stage_text(root: Path | str, stage: int, path: str) -> str | None:
    """The text of ``path`` at merge stage 1 (base), 2 (ours) or 3 (theirs); None: absent."""
    proc = vcs.run(root, "show", f":{stage}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def resolve_path(root: Path | str, path: str, text: str | None) -> None:
    """Write the resolution of ``path`` (None: deleted) and mark it resolved. The path comes
    from git (another machine's history): it goes through the path guard (PathRefused)."""
    from pipeline import fsutil

    target = fsutil.safe_join(root, path)
    if text is None:
        vcs.run(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", path)
        target.unlink(missing_ok=True)
        return
    fsutil.atomic_write(target, text)
    vcs.run(root, "add", "--", path)


def merge_abort(root: Path | str) -> None:
    """Abort the merge in progress; GitError when git could not (the merge is still there)."""
    if merging(root):
        proc = vcs.run(root, "merge", "--abort", check=False)
        if merging(root):
            raise GitError(
                f"git merge --abort failed ({reason(proc.stderr or proc.stdout)}); the merge is "
                "still in progress: fix that, then run `memc sync` again (it aborts it)"
            )


def reset_keep(root: Path | str, commit: str) -> None:
    """Move back to ``commit`` keeping uncommitted changes (``reset --keep`` refuses rather than
    overwrite a file changed since)."""
    vcs.run(root, "reset", "-q", "--keep", commit)


def merge_commit(root: Path | str, message: str, env: Mapping[str, str]) -> str:
    vcs.run(root, "commit", "-q", "--no-verify", "--no-gpg-sign", "-F", "-", input=message,
            env=env)  # fmt: skip
    return vcs.head(root) or ""


def push(root: Path | str, remote: str, branch_name: str) -> bool:
    """Push HEAD to the remote's ``branch_name``. False when the remote moved since the fetch
    (fetch, integrate and push again); GitError when the remote refuses or cannot be reached."""
    spec = f"HEAD:refs/heads/{branch_name}"
    proc = vcs.run(root, "push", "-q", "--porcelain", "--no-verify", remote, spec, check=False,
                   timeout=NET_TIMEOUT_S)  # fmt: skip
    if proc.returncode == 0:
        return True
    out = (proc.stdout + "\n" + proc.stderr).lower()
    if "[rejected]" in out and ("fetch first" in out or "non-fast-forward" in out):
        return False
    if "stale info" in out or "cannot lock ref" in out:
        return False  # another push updated the ref at the same moment
    lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    hook = [ln.removeprefix("remote:").strip() for ln in lines if ln.startswith("remote:")]
    detail = "; ".join(h for h in hook if h)[:160]
    text = reason(proc.stderr or proc.stdout)
    if "pre-receive hook declined" in out or "hook declined" in out:
        text = f"the remote refused the push (its hook declined{': ' + detail if detail else ''})"
    raise GitError(text)


def ahead_behind(root: Path | str, upstream: str) -> tuple[int, int] | None:
    """(commits here not on ``upstream``, commits there not here), or None without upstream."""
    if vcs.resolve(root, upstream) is None or vcs.head(root) is None:
        return None
    proc = vcs.run(root, "rev-list", "--left-right", "--count", f"HEAD...{upstream}")
    left, _, right = proc.stdout.strip().partition("\t")
    return int(left or 0), int(right or 0)


def outgoing(root: Path | str, upstream: str | None) -> list[str]:
    """Commit ids reachable from HEAD and not from ``upstream`` (all of HEAD's without one)."""
    if vcs.head(root) is None:
        return []
    args = ["rev-list", "HEAD"] + (["--not", upstream] if upstream else [])
    return vcs.run(root, *args).stdout.split()


def outgoing_paths(root: Path | str, upstream: str | None) -> set[str]:
    """Every path a commit in ``outgoing`` touches."""
    if vcs.head(root) is None:
        return set()
    rng = [f"{upstream}..HEAD"] if upstream else ["HEAD"]
    proc = vcs.run(root, "log", "--format=", "--name-only", "-z", "--no-renames", "-m", *rng)
    return {name.strip("\n") for name in proc.stdout.split("\0") if name.strip("\n")}


def added_lines(root: Path | str, upstream: str | None) -> list[tuple[str, int, str]]:
    """(path, line, text) of every line an outgoing commit adds: each commit against its
    parent, and for a merge only what its resolution added (a combined diff), so a secret
    added by one commit and removed by a later one is still found."""
    if vcs.head(root) is None:
        return []
    rng = [f"{upstream}..HEAD"] if upstream else ["HEAD"]
    proc = vcs.run(root, "log", "-p", "--cc", "-U0", "--no-color", "--no-ext-diff",
                   "--no-renames", "--format=", *rng)  # fmt: skip
    return parse_added(proc.stdout)


def parse_added(diff: str) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    path, line, cols = "", 0, 1
    for raw in diff.splitlines():
        if raw.startswith("+++ "):
            path = vcs.diff_target(raw)
            continue
        hunk = _HUNK.match(raw)
        if hunk:
            cols = len(hunk.group(1)) - 1  # @@ = one parent, @@@ = a merge of two
            line = int(hunk.group(2))
            continue
        if not path or raw.startswith(("diff ", "index ", "--- ", "new file", "deleted file")):
            continue
        marks = raw[:cols]
        if len(marks) == cols and "+" in marks and "-" not in marks:
            out.append((path, line, raw[cols:]))
            line += 1
        elif len(marks) == cols and "-" not in marks:
            line += 1
    return out


def changed_between(root: Path | str, old: str | None, new: str) -> list[tuple[str, str]]:
    """(status letter, path) of every file that differs between commits ``old`` and ``new``."""
    proc = vcs.run(root, "diff", "--name-status", "--no-renames", "-z", old or vcs.EMPTY_TREE, new)
    parts = [p for p in proc.stdout.split("\0") if p]
    return [(parts[i][:1], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def touched_by_others(
    root: Path | str, old: str | None, new: str, paths: Sequence[str], email: str
) -> set[str]:
    """The ``paths`` some commit in old..new authored by anyone but ``email`` touches (one git
    call): a page a person edited stays theirs even when memc compiled into it afterwards."""
    if not paths:
        return set()
    rng = f"{old}..{new}" if old else new
    listing = "".join(
        vcs.run(
            root, "log", "--format=\x1e%ae", "--name-only", "-z", "--no-renames", rng, "--", *part
        ).stdout
        for part in vcs.chunks(paths)
    )
    out: set[str] = set()
    for record in listing.split("\x1e")[1:]:  # "EMAIL\0\nNAME\0NAME\0..."
        author, *names = (part.strip("\n") for part in record.split("\0"))
        if author != email:
            out.update(name for name in names if name)
    return out


def ls_remote(root: Path | str, url: str, timeout: float = 20.0) -> None:
    """GitError with a reason when ``url`` cannot be read (doctor's reachability check)."""
    proc = vcs.run(root, "ls-remote", "-q", "--heads", url, check=False, timeout=timeout)
    if proc.returncode != 0:
        raise GitError(reason(proc.stderr or proc.stdout))


def clone(url: str, dest: Path) -> None:
    """Clone ``url`` into the new folder ``dest``; GitError with a reason on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _net(dest.parent, "clone", "-q", "--no-tags", "--", url, str(dest))
