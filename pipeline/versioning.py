"""The versioned data root: what memc commits, when, and as whom (git itself is pipeline.vcs).

Invariants:
- The root is versioned when ``git`` is on PATH, the setting ``git`` is true and ROOT is the top
  of a git work tree (``memc init`` creates one unless ``--no-git``). Otherwise nothing here runs
  git and every command works as before.
- Only ``daily/``, ``knowledge/``, ``.gitignore`` and ``.gitattributes`` are ever committed;
  ``.gitignore`` keeps ``.memc/`` (raw spools, state) and temp files out, and a commit naming a
  path under ``.memc/`` is refused outright. ``.gitattributes`` names the daily logs' merge
  driver (``pipeline.dailymerge``), registered in the repository's config by ``init_repo``.
- Each memc write batch (one compile run, one drain, one ``lint --fix``, one
  ``query --file-back``, one ``undo``) is one commit whose subject a person can read
  (``compile: 3 entries -> created concepts/x, updated concepts/y``) and whose trailers say
  what it was (``Memc-Op``), on which machine (``Memc-Host``) and which daily entries it
  compiled (``Memc-Entries``). memc commits
  are authored by ``memc <memc@memory-compiler.invalid>``; the committer is the user's own git
  identity when one is configured.
- Before a batch writes, uncommitted edits made by a person are committed on their own, authored
  by the user's git identity, so they are never mixed into (or reverted with) memc's commits.
  "Made by a person" is decided per file: a knowledge page is memc's when its bytes are memc's
  last write (``pipeline.pages``); a daily log is memc's when its change is a pure append of
  entries state.db knows with their recorded content; index.md and log.md are generated, and
  so are the compiled-entry records under ``daily/.compiled/``.
- Pre-commit check: every line a commit adds is run through the redactor; a line it would change
  refuses the whole commit (nothing staged is left behind), naming file and line.
- Git trouble never fails the write it follows: the batch's files are on disk, the reason is
  logged and returned, and the next batch commits what is left.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import fsutil, state, vcs
from pipeline.errors import MemcError, SecretRefused

MEMC_AUTHOR = ("memc", "memc@memory-compiler.invalid")
SCOPE = ("daily", "knowledge", ".gitignore", ".gitattributes")
GENERATED = ("knowledge/index.md", "knowledge/log.md")
RECORD_PREFIX = "daily/.compiled/"  # pipeline.compiledrecord: written only by memc
GITIGNORE = """# memory-compiler: machine state and temp files stay out of git
.memc/
.tmp-*
**/.tmp-*
*.swp
.DS_Store
"""
TRAILER_OP = "Memc-Op"
TRAILER_ENTRIES = "Memc-Entries"
TRAILER_REVERTS = "Memc-Reverts"
TRAILER_HOST = "Memc-Host"  # the machine that made the commit (pipeline.hostname)
FIX = "remove it from the file (the next memc run commits it then)"  # check_secrets' advice


@dataclass
class Batch:
    """One memc write batch; the caller sets ``subject`` (and ``entries``) before it ends."""

    op: str
    scope: tuple[str, ...]
    subject: str = ""
    entries: list[str] = field(default_factory=list)
    extra_trailers: list[tuple[str, str]] = field(default_factory=list)
    name_paths: bool = False  # end the subject with " -> " and the committed paths
    versioned: bool = False
    host: str = ""  # Memc-Host trailer: the machine whose batch this is
    commit: str | None = None
    user_commit: str | None = None
    error: str = ""  # why something was left uncommitted ("" when all went well)

    def message(self, paths: Sequence[str] = ()) -> str:
        subject = " ".join((self.subject or f"{self.op}: changes").split())
        if self.name_paths and paths:
            subject += " -> " + ", ".join(paths[:4]) + (" ..." if len(paths) > 4 else "")
        trailers = [(TRAILER_OP, self.op), *self.extra_trailers]
        if self.host:
            trailers.append((TRAILER_HOST, self.host))
        if self.entries:
            trailers.append((TRAILER_ENTRIES, " ".join(self.entries)))
        return subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers) + "\n"


def enabled(settings) -> bool:
    return (
        bool(getattr(settings, "git", True))
        and vcs.git_exe() is not None
        and vcs.is_repo(settings.root)
    )


def why_not(settings) -> str:
    if not getattr(settings, "git", True):
        return "git = false in .memc/config.toml (or MEMC_GIT=0)"
    if vcs.git_exe() is None:
        return "git is not installed (not on PATH)"
    if not vcs.is_repo(settings.root):
        return "the root is not a git repository (run `memc init` with git installed)"
    return ""


def ensure_gitignore(root: Path) -> bool:
    """Write ``.gitignore`` (or add the ``.memc/`` line to the user's own). True if written."""
    return fsutil.ensure_block(
        root / ".gitignore", GITIGNORE, lambda lines: bool(lines & {".memc/", ".memc", "/.memc/"})
    )


def init_repo(settings) -> str:
    """Make the root a repository (reusing one) and commit what is there. Returns what it did."""
    root = settings.root
    if vcs.git_exe() is None:
        return "git is not installed: the root is not versioned (install git, run `memc init`)"
    if not getattr(settings, "git", True):
        return "git = false: the root is not versioned"
    reused = vcs.is_repo(root)
    if not reused:
        vcs.init(root)
    from pipeline import dailymerge

    try:
        dailymerge.install(root)
    except (MemcError, OSError) as exc:  # the root still works; sync and doctor say so again
        _logger(settings).warning("init: daily merge driver not registered: %s", exc)
    with batch(settings, "init", scope=SCOPE) as b:
        b.subject = "init: memory-compiler data root (.gitignore, .gitattributes)"
    if b.error:
        return f"git repository {'reused' if reused else 'created'}; first commit failed: {b.error}"
    return "reused the existing git repository" if reused else "created a git repository"


def user_identity(root: Path) -> tuple[str, str]:
    """The user's git identity, or a local stand-in (``doctor`` says how to set a real one)."""
    found = vcs.identity(root, "AUTHOR")
    if found:
        return found
    import getpass
    import socket

    user = getpass.getuser() or "user"
    return (user, f"{user}@{socket.gethostname() or 'localhost'}.local")


def _read(root: Path, rel: str) -> bytes | None:
    try:
        return (root / rel).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _daily_is_memc(root: Path, conn: sqlite3.Connection, rel: str, now: bytes | None) -> bool:
    """A daily log whose change since HEAD only appends entries memc recorded, unchanged."""
    from pipeline import daily

    if now is None:
        return False
    before = vcs.show(root, "HEAD", rel) or ""
    text = now.decode("utf-8", errors="replace")
    if not text.startswith(before.rstrip("\n")):
        return False
    day = Path(rel).stem
    tail = text[len(before.rstrip("\n")) :]
    entries = daily.parse_entries(tail, day)
    rest = tail
    for entry in entries:
        row = conn.execute("SELECT content_hash FROM entries WHERE id=?", (entry.id,)).fetchone()
        if row is None or not daily.hash_matches(entry, row[0]):
            return False
        rest = rest.replace(entry.text.strip("\n"), "", 1)
    rest = rest.replace(f"# Daily Log: {day}", "", 1) if not before.strip() else rest
    return not rest.strip()


def _gitignore_is_memc(root: Path, now: bytes | None) -> bool:
    """``.gitignore`` as ``ensure_gitignore`` wrote it (fresh, or its block after the user's)."""
    if now is None:
        return False
    text = now.decode("utf-8", errors="replace")
    before = (vcs.show(root, "HEAD", ".gitignore") or "").rstrip("\n")
    return text == GITIGNORE or (bool(before) and text == before + "\n\n" + GITIGNORE)


def _gitattributes_is_memc(root: Path, now: bytes | None) -> bool:
    from pipeline.dailymerge import gitattributes_is_memc

    if now is None:
        return False
    before = vcs.show(root, "HEAD", ".gitattributes") or ""
    return gitattributes_is_memc(now.decode("utf-8", errors="replace"), before)


def classify(
    settings,
    conn: sqlite3.Connection,
    scope: Sequence[str] = SCOPE,
    found: Sequence[vcs.Change] | None = None,
) -> tuple[list[str], list[str]]:
    """(paths a person changed, paths memc changed) among the uncommitted changes in ``scope``
    (``found``: those changes when the caller already asked git, ``repostate``)."""
    root = settings.root
    user: list[str] = []
    memc: list[str] = []
    from pipeline import pages

    for change in vcs.changes(root, scope) if found is None else found:
        rel = change.path
        if rel.startswith(".memc/") or "/.memc/" in rel:
            continue  # never ours to commit (and ignored by .gitignore anyway)
        current = None if change.deleted else _read(root, rel)
        ours = (
            rel in GENERATED
            or rel.startswith(RECORD_PREFIX)
            or (rel == ".gitignore" and _gitignore_is_memc(root, current))
            or (rel == ".gitattributes" and _gitattributes_is_memc(root, current))
            or (rel.startswith("knowledge/") and pages.memc_wrote(conn, rel, current))
            or (rel.startswith("daily/") and _daily_is_memc(root, conn, rel, current))
        )
        (memc if ours else user).append(rel)
    return user, memc


def check_secrets(added: Sequence[tuple[str, int, str]], *, verb="committed", fix=FIX) -> None:
    """SecretRefused when one of the ``added`` lines (path, number, text) would be changed by the
    redactor; the message names the first such file and line (``verb``: committed / pushed)."""
    from pipeline.redact import redact_counts

    _, counts = redact_counts("\n".join(text for _, _, text in added))
    if not counts:
        return
    for path, line, text in added:
        _, found = redact_counts(text)
        if found:
            kinds = ", ".join(sorted(found))
            raise SecretRefused(
                f"not {verb}: {path}:{line} holds what looks like a secret ({kinds}); {fix}"
            )
    raise SecretRefused(
        f"not {verb}: the change holds what looks like a secret ({', '.join(sorted(counts))}) "
        f"spanning several lines in {', '.join(sorted({p for p, _, _ in added}))}"
    )


def _commit(
    root: Path, paths: list[str], message: str, *, author, committer=None, fallback=None
) -> str | None:
    if not paths:
        return None
    if any(p.startswith(".memc") or "/.memc/" in p for p in paths):
        raise SecretRefused("refusing to commit a path under .memc/ (machine state)")
    base = vcs.head(root)
    vcs.stage(root, paths)
    try:
        changed, added = vcs.staged_diff(root, paths, base)
        check_secrets(added)
        if not changed:
            return None
        return vcs.commit(
            root, paths, message, author=author, committer=committer, fallback_committer=fallback
        )
    except BaseException:
        vcs.unstage(root, paths)
        raise


def commit_user_edits(settings, conn: sqlite3.Connection) -> str | None:
    """Commit what a person changed in daily/ and knowledge/, as that person. Returns the id."""
    root = settings.root
    user, _ = classify(settings, conn)
    if not user:
        return None
    shown = ", ".join(user[:5]) + (f" and {len(user) - 5} more" if len(user) > 5 else "")
    ident = user_identity(root)
    message = f"edit: {shown}\n\n{TRAILER_OP}: user-edit\n{TRAILER_HOST}: {settings.this_host}\n"
    return _commit(root, user, message, author=ident, committer=ident)


@contextlib.contextmanager
def batch(settings, op: str, scope: Sequence[str] = ("knowledge",)) -> Iterator[Batch]:
    """One memc write batch = one commit. User edits are committed first (as the user); on exit
    memc's own changes under ``scope`` are committed with ``Batch.message()``."""
    b = Batch(op, tuple(scope), host=settings.this_host)
    if not enabled(settings):
        yield b
        return
    b.versioned = True
    paths = settings.paths
    log = _logger(settings)
    try:
        with _git_lock(paths), contextlib.closing(state.connect(paths.state_db)) as conn:
            b.user_commit = commit_user_edits(settings, conn)
    except (MemcError, OSError, sqlite3.Error) as exc:
        b.error = f"user edits not committed: {exc}"
        log.warning("%s: %s", op, b.error)
    try:
        yield b
    finally:
        try:
            with _git_lock(paths), contextlib.closing(state.connect(paths.state_db)) as conn:
                _, mine = classify(settings, conn, b.scope)
                b.commit = _commit(
                    settings.root,
                    mine,
                    b.message(mine),
                    author=MEMC_AUTHOR,
                    fallback=MEMC_AUTHOR,  # the user's identity as committer when git has one
                )
        except (MemcError, OSError, sqlite3.Error) as exc:
            b.error = str(exc)
            log.warning("%s: changes left uncommitted: %s", op, exc)


def _git_lock(paths):
    return fsutil.file_lock(paths.lock("git"), timeout=120)


def _logger(settings):
    from pipeline.logs import pipeline_logger

    return pipeline_logger(settings.paths.logs)


def summarise(op: str, created: Sequence[str], updated: Sequence[str], lead: str = "") -> str:
    """``op: lead -> created a, b, updated c`` with long lists shortened."""

    def names(verb: str, keys: Sequence[str]) -> str:
        if not keys:
            return ""
        shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
        return f"{verb} {shown}"

    parts = [p for p in (names("created", created), names("updated", updated)) if p]
    what = "; ".join(parts) or "no page changed"
    return f"{op}: {lead} -> {what}" if lead else f"{op}: {what}"


def doctor_check(settings) -> tuple[str, str, str]:
    """(ok|warn|fail, detail, fix) about versioning, for `memc doctor`."""
    root = settings.root
    ignore = root / ".gitignore"
    try:
        ignored = ".memc/" in ignore.read_text(encoding="utf-8").split()
    except OSError:
        ignored = False
    if not getattr(settings, "git", True):
        return "ok", "not versioned: git = false", ""
    if vcs.git_exe() is None:
        return (
            "warn",
            "git is not installed: the root is not versioned (no `memc history`, no `memc undo`)",
            "install git, then run `memc init` again",
        )
    if not vcs.is_repo(root):
        return "warn", "the root is not a git repository", "run `memc init` (or set git = false)"
    if not ignored:
        return (
            "fail",
            ".gitignore does not keep .memc/ out: raw transcripts could be committed",
            "run `memc init` (it adds the .memc/ line)",
        )
    from pipeline.repostate import repo_state

    st = repo_state(settings)
    detail = f"versioned with git; {len(st.uncommitted_user)} uncommitted edit(s) of yours"
    if vcs.identity(root) is None:
        who = user_identity(root)
        return (
            "warn",
            detail + f"; no git identity, your edits are committed as {who[0]} <{who[1]}>",
            "git config --global user.name 'Your Name'; git config --global user.email you@...",
        )
    return "ok", detail, ""
