"""The log pump in this process, on real FIFOs, pipes and files: what reaches an output, what a
deadline cuts (never a line) and what it counts (every line not written)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import struct
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roled.errors import RoledError
from roled.logs import (
    HIGH_WATER,
    PIPE_BUF,
    Dropped,
    LogPump,
    Output,
    make_fifos,
    raise_open_file_limit,
)
from roled.model import Stream
from tests.conftest import wait_until

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def numbered(count: int, width: int = 60) -> list[bytes]:
    """Numbered lines of width bytes each, newline included."""
    return [
        f"line {number:07d} ".encode().ljust(width - 1, b"x") + b"\n" for number in range(count)
    ]


def in_pipe(fd: int) -> int:
    """Bytes waiting in a pipe."""
    waiting = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", waiting)[0])


def read_all(fd: int) -> bytes:
    """What a pipe holds now (its write end may still be open)."""
    os.set_blocking(fd, False)
    data = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 1 << 16):
            data.append(chunk)
    return b"".join(data)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe nobody reads until the test does: a stalled log collector."""
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_a_deadline_cuts_no_line_and_counts_every_line_not_written(
    pipe: tuple[int, int],
) -> None:
    """Lines put to an output nobody reads: at the deadline the pipe holds whole lines only, and
    those plus the lines counted as dropped are every line put."""
    read_end, write_end = pipe
    output = Output(write_end, lambda: None)
    output.start()
    lines = numbered(5000)
    for start in range(0, len(lines), 7):
        output.put(b"".join(lines[start : start + 7]))
    dropped = output.close(time.monotonic() + 0.3)
    written = read_all(read_end)
    assert written.endswith(b"\n")
    assert written.splitlines(keepends=True) == lines[: written.count(b"\n")]
    assert dropped == Dropped(
        len(lines) - written.count(b"\n"), sum(map(len, lines)) - len(written)
    )
    output.put(b"late\n")
    assert output.dropped == dropped + Dropped(1, 5)


def test_a_long_line_begun_before_the_deadline_is_finished_in_its_grace(
    pipe: tuple[int, int],
) -> None:
    """A line longer than PIPE_BUF that is half written at the deadline is finished when the
    reader comes back within the grace; nothing after it is."""
    read_end, write_end = pipe
    capacity = fcntl.fcntl(write_end, F_GETPIPE_SZ)
    # Whole pieces of short lines fill every page of the pipe but the last.
    short = numbered((capacity - PIPE_BUF) // 64, width=64)
    long = b"L" * (4 * PIPE_BUF) + b"\n"
    output = Output(write_end, lambda: None)
    output.start()
    output.put(b"".join(short))
    output.put(long)
    output.put(b"after\n")
    # The long line's first piece takes the last page: the writer waits in the middle of it.
    wait_until(lambda: in_pipe(read_end) == capacity, what="the pipe to fill up")
    deadline = time.monotonic() + 0.1
    result: list[Dropped] = []
    closing = threading.Thread(target=lambda: result.append(output.close(deadline, grace=30)))
    closing.start()
    wait_until(lambda: time.monotonic() > deadline + 0.1, what="the deadline to pass")
    received = b""
    while closing.is_alive() or not received.endswith(b"\n"):
        received += read_all(read_end)
    closing.join(10)
    received += read_all(read_end)
    assert received == b"".join(short) + long
    assert result == [Dropped(1, 6)]


def test_a_broken_output_drops_and_counts(pipe: tuple[int, int]) -> None:
    """With the pipe's read end gone every line is counted as dropped, and nothing waits."""
    read_end, write_end = pipe
    os.close(read_end)
    output = Output(write_end, lambda: None)
    output.start()
    output.put(b"a\nb\n")
    wait_until(lambda: output.broken, what="the write to fail")
    output.put(b"c\n")
    assert output.close(time.monotonic() + 5) == Dropped(3, 6)


class Pump:
    """A LogPump on FIFOs in a folder, with its stdout a pipe and its stderr a file."""

    def __init__(self, folder: Path, kind: str, stdout: int, names: list[str]) -> None:
        self.err_path = folder / "stderr"
        self.err = os.open(self.err_path, os.O_WRONLY | os.O_CREAT, 0o600)
        self.streams = make_fifos(
            Stream(name, name, channel, folder / f"{name}.{channel}")
            for name in names
            for channel in ("stdout", "stderr")
        )
        self.pump = LogPump(kind, stdout_fd=stdout, stderr_fd=self.err)
        self.pump.watch(self.streams)
        self.writers = {
            (stream.label, stream.channel): os.open(stream.path, os.O_WRONLY)
            for stream in self.streams
        }

    def write(self, name: str, channel: str, data: bytes) -> None:
        fd = self.writers[name, channel]
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def stop(self) -> None:
        for fd in self.writers.values():
            os.close(fd)
        self.pump.detach(5)
        os.close(self.err)


@pytest.fixture
def pumps(tmp_path: Path) -> Iterator[list[Pump]]:
    made: list[Pump] = []
    yield made
    for pump in made:
        pump.stop()


def test_lines_reach_their_stream_whole_and_a_last_line_at_its_end(
    tmp_path: Path, pipe: tuple[int, int], pumps: list[Pump]
) -> None:
    """Pieces of lines become whole prefixed lines on their stream; an unended last line is
    passed on when its process ends, and the end of each stream is kept for reports."""
    read_end, write_end = pipe
    pump = Pump(tmp_path, "prefix", write_end, ["web", "worker"])
    pumps.append(pump)
    pump.pump.start()
    pump.write("web", "stdout", b"hel")
    pump.write("worker", "stdout", b"one\n")
    pump.write("web", "stdout", b"lo\nwor")
    pump.write("web", "stderr", b"oops\n")
    received = b""

    def has(expected: bytes) -> bool:
        nonlocal received
        received += read_all(read_end)
        return expected in received

    web, worker = pump.pump.formatter.prefix("web"), pump.pump.formatter.prefix("worker")
    wait_until(lambda: has(web + b"hello\n"), what="web's first line")
    pump.pump.finished("web")
    wait_until(lambda: has(web + b"wor\n"), what="web's unended line")
    assert sorted(received.splitlines()) == [web + b"hello", web + b"wor", worker + b"one"]
    assert pump.pump.tail("web", "stdout", 5) == b"hello\nwor\n"
    assert pump.pump.tail("web", "stderr", 5) == b"oops\n"
    assert pump.pump.tail("nobody", "stdout", 5) is None
    assert pump.pump.close(5) == Dropped()
    assert web + b"oops\n" in pump.err_path.read_bytes()


def test_an_unread_stdout_holds_back_then_close_counts_exactly(
    tmp_path: Path, pipe: tuple[int, int], pumps: list[Pump]
) -> None:
    """With stdout not read the pump holds back (and says so); on close every line a program
    wrote is either in the pipe, whole, or counted as dropped."""
    read_end, write_end = pipe
    pump = Pump(tmp_path, "plain", write_end, ["web"])
    pumps.append(pump)
    pump.pump.start()
    lines = numbered(3 * HIGH_WATER // 60)
    data = b"".join(lines)
    writer = threading.Thread(target=pump.write, args=("web", "stdout", data), daemon=True)
    writer.start()
    wait_until(lambda: pump.pump.holding_back, what="output held back")
    assert writer.is_alive()
    pump.pump.drain()
    writer.join(20)
    assert not writer.is_alive()
    pump.pump.finished("web")
    dropped = pump.pump.close(0.2)
    written = read_all(read_end)
    assert written.splitlines(keepends=True) == lines[: written.count(b"\n")]
    assert dropped.lines == len(lines) - written.count(b"\n") > 0
    assert b"stdout not being read: holding program output back" in pump.err_path.read_bytes()


def test_a_file_as_stdout_is_never_held_back(tmp_path: Path, pumps: list[Pump]) -> None:
    """A regular file as stdout gets every line, and the pump never reports holding back."""
    out = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT, 0o600)
    pump = Pump(tmp_path, "plain", out, ["web"])
    pumps.append(pump)
    pump.pump.start()
    big = b"A" * (HIGH_WATER + HIGH_WATER // 2) + b"\n"
    pump.write("web", "stdout", big)
    held = []
    wait_until(
        lambda: held.append(pump.pump.holding_back) or os.fstat(out).st_size == len(big),
        what="the line in the file",
    )
    assert not any(held)
    assert pump.pump.close(5) == Dropped()
    os.close(out)
    assert (tmp_path / "stdout").read_bytes() == big


def test_a_captured_pipe_is_read_to_its_end(tmp_path: Path, pumps: list[Pump]) -> None:
    """A child's captured output reaches stderr as supervisord's, its last line at its end."""
    out = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT, 0o600)
    pump = Pump(tmp_path, "prefix", out, ["web"])
    pumps.append(pump)
    write_end = pump.pump.capture()
    pump.pump.start()
    os.write(write_end, b"started\nno newline")
    os.close(write_end)
    wait_until(lambda: b"no newline\n" in pump.err_path.read_bytes(), what="the captured line")
    assert b"supervisord | started\nsupervisord | no newline\n" in pump.err_path.read_bytes()
    pump.pump.close(5)
    os.close(out)


def test_fifos_that_cannot_be_made_or_opened_are_one_line_errors(tmp_path: Path) -> None:
    """A plain file in a FIFO's place, a missing folder, and an open that fails name the path."""
    (tmp_path / "taken").write_text("")
    with pytest.raises(RoledError, match=r"taken: exists and is not a FIFO"):
        make_fifos([Stream("web", "web", "stdout", tmp_path / "taken")])
    with pytest.raises(RoledError, match=r"gone/web: cannot create FIFO: No such file"):
        make_fifos([Stream("web", "web", "stdout", tmp_path / "gone" / "web")])
    pump = LogPump("plain", stdout_fd=os.open(os.devnull, os.O_WRONLY))
    try:
        with pytest.raises(RoledError, match=r"missing: cannot open FIFO: No such file"):
            pump.watch([Stream("web", "web", "stdout", tmp_path / "missing")])
    finally:
        pump.detach(1)


def test_the_soft_limit_of_open_files_is_raised_to_the_hard_one() -> None:
    """roled holds two descriptors per FIFO: its soft limit is raised to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
    try:
        raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
