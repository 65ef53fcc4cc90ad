"""sd_notify messages and the sender-to-program match, as pure functions."""

from __future__ import annotations

import pytest

from roled.notify import MAX_DEPTH, Message, owner, parse_message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"READY=1", Message(7, ready=True)),
        (b"READY=1\nSTATUS=Serving\n", Message(7, ready=True, status="Serving")),
        (b"WATCHDOG=1", Message(7, watchdog=True)),
        (b"STATUS=a=b", Message(7, status="a=b")),
        (b"READY=0\nWATCHDOG=trigger", Message(7)),
        (b"BARRIER=1", Message(7)),
        (b"STOPPING=1\nMAINPID=3\nERRNO=2\nnonsense\n\n", Message(7)),
        (b"STATUS=\xff\nREADY=1", Message(7, ready=True, status="\ufffd")),
        (b"", Message(7)),
    ],
)
def test_parse_message(data: bytes, expected: Message) -> None:
    """READY=1, WATCHDOG=1 and STATUS= are read; everything else is accepted and ignored."""
    assert parse_message(data, 7) == expected


PARENTS = {300: 200, 200: 100, 100: 1, 400: 1, 500: 500}


@pytest.mark.parametrize(
    ("pid", "programs", "expected"),
    [
        (100, {100: "web"}, "web"),
        (300, {100: "web"}, "web"),
        (300, {200: "web:web_1", 100: "outer"}, "web:web_1"),
        (400, {100: "web"}, None),
        (999, {100: "web"}, None),
        (1, {1: "init"}, None),
        (500, {100: "web"}, None),
    ],
)
def test_owner_walks_up_the_process_tree(
    pid: int, programs: dict[int, str], expected: str | None
) -> None:
    """The nearest program process among the sender and its ancestors; pid 1 is nobody's."""
    assert owner(pid, programs, PARENTS) == expected
    assert owner(pid, programs, PARENTS.get) == expected


def test_owner_gives_up_on_a_deep_tree() -> None:
    chain = {pid: pid - 1 for pid in range(10, 10 + MAX_DEPTH + 5)}
    assert owner(9 + MAX_DEPTH, {10: "web"}, chain) == "web"
    assert owner(10 + MAX_DEPTH, {10: "web"}, chain) is None
