"""The buffers behind ``roled ctl tail``: bounded, line-aligned, followable; and their answers."""

from __future__ import annotations

import pytest

from roled.tails import (
    MAIN_LOG,
    Answer,
    BadRequest,
    Buffers,
    Request,
    TailBuffer,
    answer,
    parse_answer,
    parse_request,
)


@pytest.mark.parametrize(
    ("adds", "kept", "end"),
    [
        ([b"a\n", b"b\n"], b"a\nb\n", 4),
        ([b"aaaaa\n", b"bb\n"], b"bb\n", 9),
        ([b"aaa\nbbb\n", b"c\n"], b"bbb\nc\n", 10),
        ([b"x" * 12 + b"\n"], b"x" * 7 + b"\n", 13),
        ([b""], b"", 0),
    ],
)
def test_a_buffer_keeps_the_last_bytes_from_a_line_start(
    adds: list[bytes], kept: bytes, end: int
) -> None:
    """At most size bytes stay, cut at a line start when one is there; offsets keep growing."""
    buffer = TailBuffer(8)
    for lines in adds:
        buffer.add(lines)
    assert buffer.last(0) == (kept, end)


def test_since_gives_only_new_bytes_and_skips_what_was_cut() -> None:
    """A follower gets what came after its offset, or what is left when it fell behind."""
    buffer = TailBuffer(8)
    buffer.add(b"a\nb\n")
    data, offset = buffer.last(2)
    assert (data, offset) == (b"b\n", 4)
    assert buffer.since(offset) == (b"", 4)
    buffer.add(b"c\n")
    assert buffer.since(offset) == (b"c\n", 6)
    buffer.add(b"dddddd\n")
    assert buffer.since(6) == (b"dddddd\n", 13)
    assert buffer.since(0) == (b"dddddd\n", 13)


def test_clear_empties_and_a_follower_goes_on_from_there() -> None:
    """After clear the tail is empty; the offset does not go back."""
    buffer = TailBuffer(8)
    buffer.add(b"a\n")
    buffer.clear()
    assert buffer.last(0) == (b"", 2)
    buffer.add(b"b\n")
    assert buffer.since(2) == (b"b\n", 4)


def buffers() -> Buffers:
    kept = Buffers(64)
    for key in [("web", "stdout"), ("web", "stderr"), ("one", "stdout"), MAIN_LOG]:
        kept.keep(*key)
    kept.add(("web", "stdout"), b"out\n")
    kept.add(("web", "stderr"), b"err\n")
    kept.add(("one", "stdout"), b"one\n")
    kept.add(MAIN_LOG, b"spawned\n")
    kept.add(("other", "stdout"), b"never kept\n")
    return kept


@pytest.mark.parametrize(
    ("request_", "reply", "data", "follow"),
    [
        (Request("tail", "web"), Answer("ok"), b"out\n", None),
        (Request("tail", "web", "stderr", 2), Answer("ok"), b"r\n", None),
        (Request("tail", "web", follow=True), Answer("ok"), b"out\n", (("web", "stdout"), 4)),
        (Request("tail", "", "stderr"), Answer("ok"), b"spawned\n", None),
        (Request("tail", "other"), Answer("pass"), b"", None),
        (
            Request("tail", "one", "stderr"),
            Answer("error", "one: its stderr goes to stdout (redirect_stderr)"),
            b"",
            None,
        ),
        (Request("clear", "other"), Answer("pass"), b"", None),
    ],
)
def test_answers(
    request_: Request, reply: Answer, data: bytes, follow: tuple[tuple[str, str], int] | None
) -> None:
    """Each request gets its answer: the stream's end, pass to supervisorctl, or an error."""
    assert answer(buffers(), request_) == (reply, data, follow)


def test_clear_one_and_all() -> None:
    """clear NAME empties that program's streams; clear all every program's, not supervisord's."""
    kept = buffers()
    assert answer(kept, Request("clear", "web"))[0] == Answer("ok")
    assert kept.last(("web", "stderr"), 0)[0] == b""
    assert kept.last(("one", "stdout"), 0)[0] == b"one\n"
    answer(kept, Request("clear", "all"))
    assert kept.last(("one", "stdout"), 0)[0] == b""
    assert kept.last(MAIN_LOG, 0)[0] == b"spawned\n"


def test_requests_and_answers_round_trip_and_nonsense_is_refused() -> None:
    """What ctl sends the server reads back; anything else is a BadRequest."""
    request = Request("tail", "web", "stderr", 10, follow=True)
    assert parse_request(request.encode()) == request
    assert parse_answer(Answer("error", "no").encode()) == Answer("error", "no")
    for line in [b"", b"{}", b"[1]", b'{"op":"rm","name":"","channel":"stdout","count":1,'
                 b'"follow":false}']:  # fmt: skip
        with pytest.raises(BadRequest):
            parse_request(line)
