"""The exception hierarchy.

One base, few leaves. Every message says what to do next. Expected outcomes (nothing to do,
lint findings, an empty inbox) are return values, never exceptions. `exit_code` is what the CLI's
single error handler exits with: 2 for usage and configuration errors, 1 for everything else.
Stdlib only: the hook path imports this module.
"""

from __future__ import annotations


class MemcError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(MemcError):
    """A setting, flag or config file is wrong; the message names it and the fix."""

    exit_code = 2


class NotInitialised(ConfigError):
    """The data root was never set up with `memc init`."""


class PathRefused(MemcError):
    """The one path guard refused a data-derived path (traversal, symlink out, bad name)."""


class LockBusy(MemcError):
    """A non-blocking lock is held by another process."""


class LLMError(MemcError):
    """A model call failed. `stderr_tail` carries what the CLI printed, if anything."""

    def __init__(self, message: str, *, stderr_tail: str = "", status: int | None = None):
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.status = status


class TransientLLMError(LLMError):
    """Worth retrying: timeouts, 429, 5xx/529, a crashed CLI, a broken JSON stream."""


class PermanentLLMError(LLMError):
    """Retrying cannot help: auth, missing CLI, budget exhausted, invalid request."""


class InvalidReplyError(LLMError):
    """The model answered, but not with JSON matching the schema (after one repair try)."""


class BudgetDeferred(MemcError):
    """Today's spend reached MEMC_DAILY_BUDGET_USD; the job stays pending until tomorrow."""


class CircuitOpen(MemcError):
    """Several transient failures in a row: the worker pauses instead of burning retries."""
