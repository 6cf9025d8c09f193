"""Frozen values passed between modules. Stdlib only (the hook path imports it).

- ``Envelope``: the versioned job record a capture writes into ``.memc/inbox/`` (DESIGN.md
  "Capture"); its format (JSON, file name, id, validation) is owned by ``pipeline.envelope``.
- ``Turn``: one conversational turn parsed from transcript bytes (``pipeline.transcript``).
- ``Entry``: the structured daily-log entry a backend returns for a chunk of turns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import envelope
from pipeline.envelope import ENVELOPE_VERSION as ENVELOPE_VERSION
from pipeline.envelope import job_id_for as job_id_for


@dataclass(frozen=True)
class Envelope:
    id: str
    session_id: str
    event: str
    transcript_path: str
    cwd: str
    project: str
    start: int
    end: int
    captured_at: str  # ISO 8601, UTC, e.g. 2026-11-20T21:41:27.152000+00:00
    spool: str  # path of the spool file relative to ROOT/.memc/
    v: int = ENVELOPE_VERSION
    project_key: str = ""  # pipeline.project identity; absent in envelopes written before it

    def to_json(self) -> str:
        return envelope.encode(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        """Parse an envelope; raises ValueError with a clear reason on anything malformed."""
        return cls(**envelope.decode(text))  # type: ignore[arg-type]

    def file_name(self) -> str:
        """Sortable inbox name: capture time first, then the id."""
        return envelope.file_name(self.captured_at, self.id)


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant" | "summary" | "report" | "event" (pipeline.transcript)
    text: str
    timestamp: str = ""
    sidechain: bool = False
    uuid: str = ""
    kind: str = ""  # the shape, when not plain typed text: queued, answer, feedback, command, ...


@dataclass(frozen=True)
class ParsedTranscript:
    turns: tuple[Turn, ...]
    skipped_lines: int = 0
    sdk_session: bool = False  # an Agent SDK transcript ("entrypoint":"sdk-py"): never distilled
    session_id: str = ""
    cwd: str = ""
    git_branch: str = ""
    summaries_dropped: int = 0  # compaction summaries left out (their turns are captured)


@dataclass(frozen=True)
class Entry:
    worth_saving: bool
    title: str = ""
    context: str = ""
    decisions: tuple[str, ...] = ()
    lessons: tuple[str, ...] = ()
    action_items: tuple[str, ...] = ()
    key_exchanges: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
