"""The job envelope's format, in one place: its id, its JSON, its file name, its validation.

Role: the envelope is the versioned record a capture writes into ``.memc/inbox/`` (DESIGN.md
"Capture"); its atomic rename into the inbox is the commit point of a capture. The hook writes it
through these functions (no dataclass machinery on its hot path); ``pipeline.models.Envelope``
is the typed value every other stage uses, and it encodes and decodes through the same functions.

Invariants: the job id hashes (session, transcript identity, start, end), so one byte range has
one id, ever; the JSON has sorted keys and a trailing newline; the file name starts with the
capture time's digits, so inbox names sort by capture time. Stdlib only.
"""

from __future__ import annotations

import json

from pipeline.fsutil import TEMP_PREFIX
from pipeline.tailfile import sha256

ENVELOPE_VERSION = 1
FIELDS: tuple[tuple[str, type], ...] = (
    ("id", str),
    ("session_id", str),
    ("event", str),
    ("transcript_path", str),
    ("cwd", str),
    ("project", str),
    ("start", int),
    ("end", int),
    ("captured_at", str),  # ISO 8601, UTC, e.g. 2026-11-20T21:41:27.152000+00:00
    ("spool", str),  # path of the spool file relative to ROOT/.memc/
)
# Fields added later: absent in envelopes written before them, read as their default.
OPTIONAL: tuple[tuple[str, type, object], ...] = (
    ("project_key", str, ""),  # pipeline.project identity
)


def job_id_for(session_id: str, identity: str, start: int, end: int) -> str:
    """Job id = hash of (session, transcript identity, start, end): one range, one id, ever."""
    raw = f"{session_id}\x00{identity}\x00{start}\x00{end}".encode("utf-8", "surrogatepass")
    return sha256(raw).hexdigest()[:20]


def encode(values: dict[str, object]) -> str:
    """The envelope JSON for the ``FIELDS`` values (``v`` is added when missing)."""
    data = {"v": ENVELOPE_VERSION, **values}
    return json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n"


def decode(text: str | bytes) -> dict[str, object]:
    """The ``FIELDS`` values of an envelope; raises ValueError with a clear reason if malformed."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"envelope is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("envelope is not a JSON object")
    if data.get("v") != ENVELOPE_VERSION:
        raise ValueError(f"unsupported envelope version {data.get('v')!r}")
    out: dict[str, object] = {}
    for name, kind in FIELDS:
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"envelope field {name!r} is missing or not a {kind.__name__}")
        out[name] = value
    for name, kind, default in OPTIONAL:
        value = data.get(name, default)
        out[name] = value if isinstance(value, kind) else default
    return out


def file_name(captured_at: str, job_id: str) -> str:
    """Sortable inbox name: capture time first, then the id."""
    stamp = "".join(ch for ch in captured_at[:26] if ch.isdigit())
    return f"{stamp}-{job_id}.json"


OWNER_SUFFIX = ".owner.json"  # inbox records beside an envelope: who claimed it,
ERROR_SUFFIX = ".error.json"  # and why a failed one failed


def is_envelope_name(name: str) -> bool:
    """A committed envelope's file name: ``<stamp>-<id>.json``, not a temp file, a hidden file or
    one of the inbox's sidecar records. Only these count as queued: a hook killed between its
    temp file and the rename has committed nothing."""
    return (
        name.endswith(".json")
        and not name.startswith((TEMP_PREFIX, "."))
        and not name.endswith((OWNER_SUFFIX, ERROR_SUFFIX))
    )


def job_id_of(name: str) -> str:
    """The job id in an envelope file name ``<stamp>-<id>.json`` (the stem without a stamp)."""
    return name.removesuffix(".json").rsplit("-", 1)[-1]


def iso_utc(at: float) -> str:
    """``at`` (epoch seconds) as ISO 8601 UTC with microseconds, without importing datetime."""
    import time

    seconds = int(at // 1)
    micro = round((at - seconds) * 1_000_000)  # as datetime.fromtimestamp rounds
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro:06d}+00:00"
