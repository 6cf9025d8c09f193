"""The values a drain reports: one ``JobOutcome`` per inbox file, folded into a ``DrainReport``.

Frozen values only; ``pipeline.drain`` produces them and the CLI, the watcher and tests read
them. ``fold`` is pure: the report depends only on the outcomes, in the order they happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobFailure:
    id: str
    error_class: str
    message: str
    attempts: int


@dataclass(frozen=True)
class DrainReport:
    processed: int = 0
    done: int = 0
    failed: int = 0
    deferred: int = 0
    entries: int = 0
    not_worth_saving: int = 0
    cost_usd: float = 0.0
    released_dead: int = 0
    pruned_spools: int = 0
    stopped: str = ""  # why the drain stopped early ("" when it ran to the end)
    failures: tuple[JobFailure, ...] = field(default_factory=tuple)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"drained {self.processed} job(s): {self.done} done, {self.failed} failed, "
            f"{self.deferred} deferred; {self.entries} entr{'y' if self.entries == 1 else 'ies'}"
            f" appended, {self.not_worth_saving} not worth saving, ${self.cost_usd:.4f}"
        )
        return text + (f"; {self.stopped}" if self.stopped else "")


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one inbox file; ``drain`` folds these into its ``DrainReport``."""

    status: str  # "done" | "failed" | "deferred" | "malformed" (never claimed: not processed)
    entries: int = 0
    not_worth_saving: int = 0
    cost_usd: float = 0.0
    failure: JobFailure | None = None
    stopped: str = ""  # set when the drain must stop after this job, saying why


def fold(
    outcomes: list[JobOutcome], *, stopped: str, released: int, pruned: int, duration_s: float
) -> DrainReport:
    """The drain's report from its jobs' outcomes, in the order they happened."""
    cost = 0.0
    for outcome in outcomes:
        cost = round(cost + outcome.cost_usd, 6)
    return DrainReport(
        processed=sum(o.status != "malformed" for o in outcomes),
        done=sum(o.status == "done" for o in outcomes),
        failed=sum(o.status in ("failed", "malformed") for o in outcomes),
        deferred=sum(o.status == "deferred" for o in outcomes),
        entries=sum(o.entries for o in outcomes),
        not_worth_saving=sum(o.not_worth_saving for o in outcomes),
        cost_usd=cost,
        released_dead=released,
        pruned_spools=pruned,
        stopped=stopped,
        failures=tuple(o.failure for o in outcomes if o.failure is not None),
        duration_s=duration_s,
    )
