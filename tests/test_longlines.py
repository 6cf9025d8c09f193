"""Spool slices with memory bounded for any line length (pipeline.longlines)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import longlines
from pipeline.longlines import TAIL_BYTES, cut_line, read_slices


def old_read_slices(path, size):
    """The slicing as it was before long lines were cut (the reference for normal input)."""
    carry = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(size)
            if not block:
                break
            data = carry + block if carry else block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            yield data[: cut + 1]
    if carry:
        yield carry


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 60), max_size=40),
    st.integers(1, 50),
    st.booleans(),
)
def test_slices_are_unchanged_when_no_line_is_long(tmp_path_factory, lengths, size, partial):
    data = b"".join(b"x" * n + b"\n" for n in lengths) + (b"tail" if partial else b"")
    path = tmp_path_factory.mktemp("s") / "spool.jsonl"
    path.write_bytes(data)
    assert list(read_slices(path, size, max_line=64, keep=16)) == list(old_read_slices(path, size))


def _line(text: str, **extra) -> bytes:
    entry = {"type": "user", "uuid": "u1", "message": {"role": "user", "content": text}, **extra}
    return json.dumps(entry).encode() + b"\n"


def test_a_huge_line_is_cut_to_a_bounded_valid_json_line(tmp_path):
    huge = "é" + 'lorem \\ "quoted" ' * 400_000 + "THE END"
    small = _line("before") + _line("after")
    path = tmp_path / "spool.jsonl"
    path.write_bytes(
        _line("before") + _line(huge, timestamp="2026-11-20T10:00:00Z") + _line("after")
    )
    out = b"".join(read_slices(path, 64 * 1024, max_line=200_000, keep=50_000))
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0] + b"\n" + lines[2] + b"\n" == small
    cut = json.loads(lines[1])
    assert len(lines[1]) <= 50_000 + TAIL_BYTES + 200
    text = cut["message"]["content"]
    assert text.startswith("élorem") and text.endswith("THE END")
    assert "bytes of this transcript line left out" in text
    assert cut["timestamp"] == "2026-11-20T10:00:00Z" and cut["uuid"] == "u1"


def test_long_lines_inside_one_block_and_at_the_end_are_cut_too(tmp_path):
    body = _line("a" * 5000) + _line("ok") + _line("b" * 5000).rstrip(b"\n")
    path = tmp_path / "spool.jsonl"
    path.write_bytes(body)
    for size in (100, 1 << 20):
        out = b"".join(read_slices(path, size, max_line=1000, keep=300))
        lines = out.split(b"\n")
        assert len(lines) == 3 and json.loads(lines[1])["message"]["content"] == "ok"
        assert all(len(x) < 300 + TAIL_BYTES + 200 for x in lines)
        assert json.loads(lines[0])["message"]["content"].startswith("aaa")
        assert json.loads(lines[2])["message"]["content"].endswith("bbb")


def test_a_line_that_cannot_be_cut_cleanly_says_so():
    head = b'{"type":"user","message":{"role":"user","content":[1,2,3,'
    out = json.loads(cut_line(head, b"4,5,6]}}", 10_000_000))
    assert "10,000,000 bytes" in out["message"]["content"]


def test_distil_of_a_huge_line_costs_a_bounded_number_of_model_calls(settings, root):
    from pipeline import inbox, state
    from pipeline.distil import distil_job
    from tests.fakes import FakeBackend
    from tests.helpers import ENTRY, make_job, transcript_lines

    text = "we chose advisory locks because " * 200_000  # 6.4 MB on one line
    env = make_job(root, "huge", transcript_lines("huge", [(text, "noted")]))
    fake = FakeBackend(default=ENTRY)
    conn = state.connect(settings.paths.state_db)
    job = inbox.claim(settings.paths, settings.paths.inbox / env.file_name())
    distil_job(settings, job.envelope, backend=fake, conn=conn)
    assert 1 <= len(fake.calls) <= 2  # not one call per 60,000 characters (~107)
    assert longlines.TAIL_BYTES  # the tail kept is part of the bound
