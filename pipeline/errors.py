"""The exception hierarchy: every exception class the package defines lives here.

One base, few leaves. Every message says what to do next. Expected outcomes (nothing to do,
lint findings, an empty inbox) are return values, never exceptions. An exception declares its
fields in ``__init__`` (as huey's do); nothing adds attributes to one after it is raised.
``exit_code`` is what the CLI's single error handler exits with: 2 for usage and configuration
errors, 1 for every other known failure (an unexpected exception exits 3, Ctrl-C 130).
Stdlib only: the hook path imports this module.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the hook path does not import typing
if TYPE_CHECKING:  # annotation only: llm.base imports config, which the hook path avoids
    from pipeline.llm.base import Usage

# The CLI's exit codes (hooks always exit 0).
EXIT_OK = 0
EXIT_FAILURE = 1  # a known failure: a MemcError, lint errors, a failed job
EXIT_USAGE = 2  # usage or configuration error
EXIT_CRASH = 3  # an unexpected exception: a bug; the traceback is in .memc/logs/pipeline.log
EXIT_INTERRUPTED = 130  # Ctrl-C


class MemcError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_FAILURE


class ConfigError(MemcError):
    """A setting, flag or config file is wrong; the message names it and the fix."""

    exit_code = EXIT_USAGE


class NotInitialised(ConfigError):
    """The data root was never set up with `memc init`."""


class RootNotFound(ConfigError):
    """No flag, no MEMC_ROOT, not in a data root and nothing remembered."""


class SettingsFileInvalid(ConfigError):
    """The Claude Code settings file is not valid JSON (or not an object); it was not touched."""


class SettingsNotWritable(MemcError):
    """The Claude Code settings file (or its folder) may not be replaced; nothing was written."""


class PathRefused(MemcError):
    """The one path guard refused a data-derived path (traversal, symlink out, bad name)."""


class LockBusy(MemcError):
    """A non-blocking lock is held by another process."""


class StateDamaged(MemcError):
    """state.db cannot be used: damaged (``reason`` says how; it could not be set aside) or
    unusable for another reason (``reason`` empty: permissions, a full disk)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class FrontmatterError(ValueError):
    """The frontmatter block cannot be read safely.

    A ``ValueError``, not a ``MemcError``: it is how the parser rejects a bad value, and every
    caller turns it into a lint finding or a refused operation rather than letting it escape.
    """


class LLMError(MemcError):
    """A model call failed (one attempt).

    ``stderr_tail`` is what the CLI printed, ``status`` the HTTP status when known. A failed
    attempt can still have cost money: ``cost_usd``, ``usage`` and ``model`` say what it spent,
    so the ledger records it. ``raw_text`` is the reply text, when there was one (the repair
    request quotes it back to the model).
    """

    def __init__(
        self,
        message: str,
        *,
        stderr_tail: str = "",
        status: int | None = None,
        cost_usd: float = 0.0,
        usage: Usage | None = None,
        model: str = "",
        raw_text: str = "",
    ):
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.status = status
        self.cost_usd = cost_usd
        self.usage = usage
        self.model = model
        self.raw_text = raw_text


class TransientLLMError(LLMError):
    """Worth retrying: timeouts, 429, 5xx/529, a crashed CLI, a broken JSON stream."""


class PermanentLLMError(LLMError):
    """Retrying cannot help: auth, missing CLI, budget exhausted, invalid request."""


class InvalidReplyError(LLMError):
    """The model answered, but not with JSON matching the schema (after one repair try)."""


class BudgetDeferred(MemcError):
    """Today's spend reached MEMC_DAILY_BUDGET_USD; the job stays pending until tomorrow."""


class JobBudgetDeferred(BudgetDeferred):
    """One job spent its share of today's budget (``job_budget_share``): it waits until tomorrow
    while the drain goes on with the other jobs, so one huge session cannot starve the rest."""


class CircuitOpen(MemcError):
    """Several transient failures in a row: the worker pauses instead of burning retries."""


class Interrupted(MemcError):
    """A stop was requested between chunks; the job goes back to the inbox and resumes later."""


class PrivateMarker(Exception):
    """Capture-internal: the delta being spooled carries the opt-out marker ``[memc:private]``.

    Raised inside the spool copy and caught by capture, which marks the session private; it
    never leaves ``pipeline.capture``.
    """


class GitError(MemcError):
    """A git command failed (pipeline.vcs); the message carries git's own words."""


class SecretRefused(MemcError):
    """The pre-commit check found text the redactor would redact; nothing was committed."""


class NotVersioned(MemcError):
    """history/undo on a data root that git does not version."""


class SyncFailed(MemcError):
    """``memc sync`` could not finish (remote unreachable, push refused, diverged after retries,
    a conflict that is not memc's to merge); nothing local was lost."""


class UndoRefused(MemcError):
    """The undo would lose or clash with a later change; nothing was written."""


class AppendLost(MemcError):
    """The daily file kept being replaced (an editor's atomic save) under an append."""
