"""Line assembly, tails and write pieces, as exact tables; and which outputs can stall."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roled.lines import LineAssembler, Tail, at_line_start, piece_end, without_listener
from roled.logs import Dropped, lost, never_blocks


@pytest.mark.parametrize(
    ("chunks", "out", "pending"),
    [
        ([b"a\n"], [b"a\n"], 0),
        ([b"a\nb\n"], [b"a\nb\n"], 0),
        ([b"ab"], [b""], 2),
        ([b"ab", b"c\n"], [b"", b"abc\n"], 0),
        ([b"a\nb"], [b"a\n"], 1),
        ([b"a\nb", b"c", b"d\ne"], [b"a\n", b"", b"bcd\n"], 1),
        ([b"", b"\n"], [b"", b"\n"], 0),
    ],
)
def test_feed_passes_on_whole_lines_and_keeps_the_rest(
    chunks: list[bytes], out: list[bytes], pending: int
) -> None:
    """Each chunk gives the lines it completes; the start of an unended line waits."""
    lines = LineAssembler()
    assert [lines.feed(chunk) for chunk in chunks] == out
    assert lines.pending == pending


def test_end_ends_the_waiting_line_once() -> None:
    """At its process's end a line without newline is passed on with one, then nothing."""
    lines = LineAssembler()
    assert lines.end() == b""
    lines.feed(b"x\nthe end")
    assert (lines.end(), lines.end(), lines.pending) == (b"the end\n", b"", 0)


def test_a_line_reaching_max_line_goes_out_in_pieces() -> None:
    """An unended line is passed on once it reaches max_line bytes; the rest starts anew."""
    lines = LineAssembler(max_line=4)
    assert [lines.feed(chunk) for chunk in (b"ab", b"cd", b"ef", b"g\n")] == [
        b"",
        b"abcd\n",
        b"",
        b"efg\n",
    ]


@given(st.lists(st.binary(max_size=30), max_size=20))
def test_every_byte_arrives_once_in_order(chunks: list[bytes]) -> None:
    """Whatever the chunking, feed then end gives back the bytes, newline-ended."""
    lines = LineAssembler(max_line=1 << 20)
    out = b"".join(lines.feed(chunk) for chunk in chunks) + lines.end()
    data = b"".join(chunks)
    assert out == (data if data.endswith(b"\n") or not data else data + b"\n")


def test_tail_keeps_the_last_bytes() -> None:
    """The tail holds the end of the lines added, at most its size."""
    tail = Tail(size=6)
    assert tail.value == b""
    tail.add(b"ab\n")
    assert tail.value == b"ab\n"
    tail.add(b"cd\nef\n")
    assert tail.value == b"cd\nef\n"
    tail.add(b"0123456789\n")
    assert tail.value == b"56789\n"


@pytest.mark.parametrize(
    ("data", "start", "limit", "end"),
    [
        (b"aa\nbb\ncc\n", 0, 100, 9),
        (b"aa\nbb\ncc\n", 0, 7, 6),
        (b"aa\nbb\ncc\n", 3, 6, 9),
        (b"aa\nbb\ncc\n", 0, 3, 3),
        (b"aa\nbb\ncc\n", 0, 2, 2),
        (b"aaaaaaaa\nb\n", 0, 4, 4),
        (b"aaaaaaaa\nb\n", 4, 4, 8),
        (b"aaaaaaaa\nb\n", 8, 4, 9),
        (b"aaaaaaaa\nb\n", 9, 4, 11),
        (b"aaaa\nbb\n", 2, 100, 5),
    ],
)
def test_pieces_end_after_whole_lines(data: bytes, start: int, limit: int, end: int) -> None:
    """A piece ends after its last newline within the limit, or at the limit in a long line."""
    assert piece_end(data, start, limit) == end


@pytest.mark.parametrize(
    ("position", "expected"), [(0, True), (1, False), (2, False), (3, True), (5, False)]
)
def test_line_start(position: int, expected: bool) -> None:
    """Only the first byte and each byte after a newline start a line."""
    assert at_line_start(b"ab\ncd\n", position) is expected


def test_lost_counts_whole_lines_and_bytes() -> None:
    """What a dropped chunk loses: one line per newline, and its size; counts add up."""
    assert lost(b"a\nbb\n") == Dropped(2, 5)
    assert lost(b"") + Dropped(1, 3) == Dropped(1, 3)
    assert Dropped(2, 7).describe() == "2 line(s), 7 byte(s)"


def test_files_and_memory_devices_never_block_but_pipes_and_sockets_can(tmp_path: Path) -> None:
    """A regular file and /dev/null take every write; a pipe, a socket, a closed fd may not."""
    with (tmp_path / "log").open("wb") as file, open(os.devnull, "wb") as null:
        assert never_blocks(file.fileno())
        assert never_blocks(null.fileno())
    read_end, write_end = os.pipe()
    left, right = socket.socketpair()
    try:
        assert not never_blocks(write_end)
        assert not never_blocks(left.fileno())
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        left.close()
        right.close()
    assert not never_blocks(read_end)


STAMP = "2026-01-01 00:00:00,000"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("INFO spawned: 'ev' with pid 12", ""),
        ("INFO success: ev entered RUNNING state, process has stayed up for > than 0 seconds", ""),
        ("INFO stopped: ev (exit status 0)", ""),
        ("INFO waiting for ev to die", ""),
        ("INFO waiting for web, ev, api to die", "INFO waiting for web, api to die"),
        ("WARN exited: ev (terminated by SIGKILL; not expected)", "same"),
        ("INFO stopped: ev (exit status 1)", "same"),
        ("INFO spawned: 'web' with pid 12", "same"),
        ("INFO spawned: 'every' with pid 12", "same"),
    ],
)
def test_without_listener_drops_only_its_clean_run(line: str, kept: str) -> None:
    """A clean run of roled's listener leaves no line; its failures and others' lines stay."""
    data = f"{STAMP} {line}\n".encode()
    expected = data if kept == "same" else (f"{STAMP} {kept}\n" if kept else "").encode()
    assert without_listener(b"a\n" + data + b"b\n", "ev") == b"a\n" + expected + b"b\n"
