"""What a hook may read: the transcript path it is handed, and who typed the opt-out marker.

Stdlib only and cheap: capture (the hook's hot path) calls both.

Invariants:
- ``transcript_refusal``: a ``transcript_path`` that resolves into ``ROOT/.memc`` is never copied
  (a payload must not make memc spool its own state, spools or inbox), and a path that is itself
  a symlink is followed only to a file inside the Claude Code config folder (``CLAUDE_CONFIG_DIR``
  or ``~/.claude``) or inside the session's project (``cwd``). A plain file anywhere is accepted:
  Claude Code decides where transcripts live.
- ``typed_marker``: ``[memc:private]`` opts a session out only when the human typed it: it must
  occur in the string content of a ``"type":"user"`` line (a plain string, or a ``text`` block),
  not in a ``tool_result`` block, not in a meta line (``isMeta``), and not only inside the shell
  output Claude Code records as user text (``<bash-stdout>``, ``<bash-stderr>``,
  ``<local-command-stdout>``). Only the lines that contain the marker are parsed (stdlib json);
  a line that cannot be parsed, or one longer than ``MAX_LINE`` bytes, counts as typed (when in
  doubt, private).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable

MARKER = "[memc:private]"
MAX_LINE = 16 << 20
BLOCK = 1 << 20
_SHELL_OUTPUT = re.compile(
    r"<(bash-stdout|bash-stderr|local-command-stdout|local-command-stderr)>.*?</\1>", re.S
)


def _inside(path: str, folder: str) -> bool:
    folder = os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def transcript_refusal(transcript: str, *, cwd: str, memc_dir: str, env=None) -> str:
    """Why ``transcript`` (an absolute path) must not be copied, or "" when it may be."""
    env = os.environ if env is None else env
    real = os.path.realpath(transcript)
    if _inside(real, memc_dir):
        return "transcript path points into the data root's .memc/; not copied"
    if not os.path.islink(transcript):
        return ""
    from pipeline.config import claude_dir  # only for a symlinked transcript: off the hot path

    config_dir = str(claude_dir(env=env))
    if _inside(real, config_dir) or (cwd and os.path.isabs(cwd) and _inside(real, cwd)):
        return ""
    return "transcript path is a symlink to a file outside ~/.claude and the project; not copied"


def _typed_in(obj) -> bool:
    if not isinstance(obj, dict) or obj.get("type") != "user" or obj.get("isMeta") is True:
        return False
    message = obj.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                text = block.get("text")
                if isinstance(text, str):
                    texts.append(text)
    return any(MARKER in _SHELL_OUTPUT.sub("", text) for text in texts)


def typed_marker(
    fd: int, at: int, lo: int, hi: int, pread: Callable[[int, int, int], bytes]
) -> tuple[bool, int]:
    """(typed?, end of its line) for the marker found at byte ``at`` of the file open at ``fd``,
    looking for its line's bounds only within [lo, hi) (capture's range: whole lines)."""
    start, pos = lo, at
    while pos > lo:
        left = max(lo, pos - BLOCK)
        idx = pread(fd, pos - left, left).rfind(b"\n")
        if idx >= 0:
            start = left + idx + 1
            break
        pos = left
    end, pos = hi, at
    while pos < hi:
        chunk = pread(fd, min(BLOCK, hi - pos), pos)
        if not chunk:
            break
        idx = chunk.find(b"\n")
        if idx >= 0:
            end = pos + idx + 1
            break
        pos += len(chunk)
    if end - start > MAX_LINE:
        return True, end
    parts, pos = [], start
    while pos < end:
        chunk = pread(fd, min(BLOCK, end - pos), pos)
        if not chunk:
            break
        parts.append(chunk)
        pos += len(chunk)
    try:
        obj = json.loads(b"".join(parts))
    except ValueError:
        return True, end
    return _typed_in(obj), end
