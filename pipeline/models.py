"""Frozen values passed between modules. Stdlib only (the hook path imports it).

- ``Envelope``: the versioned job record a capture writes into ``.memc/inbox/`` (DESIGN.md
  "Capture"). Its file name sorts by capture time; its atomic rename into the inbox is the commit
  point of a capture.
- ``Turn``: one conversational turn parsed from transcript bytes (``pipeline.transcript``).
- ``Entry``: the structured daily-log entry a backend returns for a chunk of turns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

ENVELOPE_VERSION = 1


def job_id_for(session_id: str, identity: str, start: int, end: int) -> str:
    """Job id = hash of (session, transcript identity, start, end): one range, one id, ever."""
    raw = f"{session_id}\x00{identity}\x00{start}\x00{end}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:20]


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
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        """Parse an envelope; raises ValueError with a clear reason on anything malformed."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"envelope is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("envelope is not a JSON object")
        if data.get("v") != ENVELOPE_VERSION:
            raise ValueError(f"unsupported envelope version {data.get('v')!r}")
        kwargs: dict[str, Any] = {}
        for name, kind in (
            ("id", str),
            ("session_id", str),
            ("event", str),
            ("transcript_path", str),
            ("cwd", str),
            ("project", str),
            ("start", int),
            ("end", int),
            ("captured_at", str),
            ("spool", str),
        ):
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"envelope field {name!r} is missing or not a {kind.__name__}")
            kwargs[name] = value
        key = data.get("project_key", "")
        kwargs["project_key"] = key if isinstance(key, str) else ""
        return cls(**kwargs)

    def file_name(self) -> str:
        """Sortable inbox name: capture time first, then the id."""
        stamp = "".join(ch for ch in self.captured_at[:26] if ch.isdigit())
        return f"{stamp}-{self.id}.json"


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
