"""Checking a model reply against its JSON schema, and the one repair request a bad reply gets.

Pure functions: ``validation_error`` names the first violation in one line (bounded for hostile,
deeply nested replies); ``repair_request`` is the original request plus the bad reply (cut to
``REPAIR_REPLY_CHARS``) and the error, asking for one corrected JSON object.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.llm.base import LLMRequest

REPAIR_REPLY_CHARS = 4000


def validation_error(data: Any, schema: Any) -> str | None:
    """The first schema violation as one line, or None when ``data`` matches."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    try:
        errors = sorted(
            validator_cls(schema).iter_errors(data), key=lambda e: list(e.absolute_path)
        )
    except RecursionError:  # a hostile reply nested thousands deep: invalid, not a crash
        return "at (top level): the reply is nested too deeply to validate"
    if not errors:
        return None
    err = errors[0]
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"at {where}: {err.message[:300]}"


def repair_request(request: LLMRequest, bad_reply: str, error: str) -> LLMRequest:
    payload = dict(request.payload)
    payload["_repair"] = {
        "previous_reply": bad_reply[:REPAIR_REPLY_CHARS],
        "error": error,
        "instruction": "Your previous reply was not valid. Reply again with ONE JSON object that "
        "matches the schema exactly, fixing the error above. No prose.",
    }
    return dataclasses.replace(request, payload=payload)
