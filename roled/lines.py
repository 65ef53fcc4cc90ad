"""Whole lines out of a stream's chunks, the end of each stream kept for failure reports, and the
line-aligned pieces in which output is written. Pure: bytes in, bytes out, no I/O.
"""

from __future__ import annotations

import re

# A line longer than this is passed on in pieces: memory per stream stays bounded.
MAX_LINE = 8 << 20
# The end of each program stream kept for the failure report.
TAIL_BYTES = 4096
NEWLINE = b"\n"


class LineAssembler:
    """One stream's chunks in, whole lines out: a partial line waits for the rest, or for its
    process to end (``end``); one that reaches ``max_line`` bytes unended goes out as a piece."""

    __slots__ = ("_max_line", "_pending", "_pending_size")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max_line = max_line
        self._pending: list[bytes] = []
        self._pending_size = 0

    @property
    def pending(self) -> int:
        """Bytes of a line that has not ended yet."""
        return self._pending_size

    def feed(self, data: bytes) -> bytes:
        """The whole lines that data completes, each ending with a newline (b"" if none)."""
        end = data.rfind(NEWLINE)
        if end < 0:
            if not data:
                # Nothing read is not an empty line.
                return b""
            self._pending.append(data)
            self._pending_size += len(data)
            return self.end() if self._pending_size >= self._max_line else b""
        whole = data if end == len(data) - 1 else data[: end + 1]
        if self._pending:
            whole = b"".join([*self._pending, whole])
            self._pending.clear()
            self._pending_size = 0
        if end < len(data) - 1:
            self._pending.append(data[end + 1 :])
            self._pending_size = len(data) - end - 1
        return whole

    def end(self) -> bytes:
        """The line that has not ended, ended with a newline (its process is gone), or b""."""
        if not self._pending:
            return b""
        line = b"".join([*self._pending, NEWLINE])
        self._pending.clear()
        self._pending_size = 0
        return line


class Tail:
    """The last ``size`` bytes of a stream's whole lines."""

    __slots__ = ("_size", "value")

    def __init__(self, size: int = TAIL_BYTES) -> None:
        self._size = size
        self.value = b""

    def add(self, lines: bytes) -> None:
        self.value = (self.value + lines[-self._size :])[-self._size :]


def piece_end(data: bytes, start: int, limit: int) -> int:
    """Where the next write of ``data[start:]`` ends: after the last newline within ``limit``
    bytes, so that a write carries whole lines; a line longer than ``limit`` goes out ``limit``
    bytes at a time, and its last piece ends with it (the next line is a write of its own, so a
    deadline can fall between the two)."""
    stop = min(start + limit, len(data))
    if at_line_start(data, start):
        end = data.rfind(NEWLINE, start, stop)
    else:
        end = data.find(NEWLINE, start, stop)
    return end + 1 if end >= 0 else stop


def at_line_start(data: bytes, position: int) -> bool:
    """Whether ``position`` is the start of a line of data (nothing of that line is written)."""
    return position == 0 or data[position - 1 : position] == NEWLINE


def without_listener(lines: bytes, listener: str) -> bytes:
    """supervisord's log lines without those of a clean run of roled's own event listener
    (spawned, entered RUNNING, waited for, stopped with status 0): it is roled's machinery, not
    the user's program. Any other line naming it (a crash, a kill) is kept."""
    name = listener.encode()
    if name not in lines:
        return lines
    quoted = re.escape(name)
    clean = re.compile(
        rb"^[^\n]* (?:spawned: '"
        + quoted
        + rb"' with pid \d+|success: "
        + quoted
        + rb" entered RUNNING state,[^\n]*|stopped: "
        + quoted
        + rb" \(exit status 0\))\n",
        re.MULTILINE,
    )
    lines = clean.sub(b"", lines)
    return _WAITING.sub(lambda match: _without_name(match, name), lines)


# supervisord's shutdown names every process it still waits for, comma-separated.
_WAITING = re.compile(rb"^([^\n]* waiting for )([^\n]*)( to die\n)", re.MULTILINE)


def _without_name(match: re.Match[bytes], name: bytes) -> bytes:
    names = [each for each in match.group(2).split(b", ") if each != name]
    return b"".join([match.group(1), b", ".join(names), match.group(3)]) if names else b""
