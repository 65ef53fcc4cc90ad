"""What ``roled ctl tail``, ``clear`` and ``maintail`` read: the last bytes of each stream roled
carries, kept in bounded buffers, and the one-line requests that ask for them. No I/O.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from roled.locate import LEVELS

# Bytes kept per stream unless the tail_buffer setting says otherwise: supervisorctl shows the
# last 1600 by default, and 50 chatty programs' two streams stay within a few MiB.
TAIL_BUFFER = 64 << 10
# supervisorctl's own default for tail and maintail.
DEFAULT_BYTES = 1600
# The key of supervisord's own log among the streams (no program has an empty name).
MAIN_LOG = ("", "stderr")


class TailBuffer:
    """The last ``size`` bytes of a stream's whole lines, and their place in everything the stream
    carried since it was last cleared (offsets go on growing, so a follower sees only new bytes)."""

    __slots__ = ("_data", "_size", "_start")

    def __init__(self, size: int) -> None:
        self._size = size
        self._data = bytearray()
        self._start = 0

    @property
    def end(self) -> int:
        """The offset just after the last byte kept."""
        return self._start + len(self._data)

    def add(self, lines: bytes) -> None:
        self._data += lines
        excess = len(self._data) - self._size
        if excess > 0:
            # Cut at a line start where one is near, so a tail does not begin mid-line.
            cut = self._data.find(b"\n", excess, excess + 256)
            cut = excess if cut < 0 or cut + 1 >= len(self._data) else cut + 1
            del self._data[:cut]
            self._start += cut

    def clear(self) -> None:
        self._start += len(self._data)
        self._data.clear()

    def last(self, count: int) -> tuple[bytes, int]:
        """The last ``count`` bytes kept (all when 0) and the offset after them."""
        data = self._data[-count:] if count > 0 else self._data
        return bytes(data), self.end

    def since(self, offset: int) -> tuple[bytes, int]:
        """What came after ``offset`` that is still kept, and the offset after it."""
        skip = max(0, offset - self._start)
        return bytes(self._data[skip:]), self.end


class Buffers:
    """Every carried stream's buffer by (namespec, channel): filled by the log reader thread,
    read by the main loop, so each call takes the lock. ``wake`` is called after lines are added
    while someone follows (``following``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.following = False
        self.wake: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._buffers: dict[tuple[str, str], TailBuffer] = {}

    def keep(self, namespec: str, channel: str) -> None:
        """Keep this stream's lines from now on (a stream not kept is not roled's to tail)."""
        with self._lock:
            self._buffers.setdefault((namespec, channel), TailBuffer(self.size))

    def add(self, key: tuple[str, str], lines: bytes) -> None:
        with self._lock:
            buffer = self._buffers.get(key)
            if buffer is None:
                return
            buffer.add(lines)
        if self.following and self.wake is not None:
            self.wake()

    def kept(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._buffers

    def programs(self) -> list[str]:
        with self._lock:
            return sorted({namespec for namespec, _ in self._buffers if namespec})

    def last(self, key: tuple[str, str], count: int) -> tuple[bytes, int]:
        with self._lock:
            return self._buffers[key].last(count)

    def since(self, key: tuple[str, str], offset: int) -> tuple[bytes, int]:
        with self._lock:
            buffer = self._buffers.get(key)
            return (b"", offset) if buffer is None else buffer.since(offset)

    def clear(self, namespec: str) -> None:
        with self._lock:
            for (name, _), buffer in self._buffers.items():
                if name == namespec:
                    buffer.clear()


@dataclass(frozen=True, slots=True)
class Request:
    """One request: ``tail`` (a program's stream, or supervisord's log when ``name`` is
    empty), or ``clear``; ``follow`` streams new lines until the client goes away. Or
    ``status``, which ``roled status`` writes itself: roled answers within ``timeout``."""

    op: str
    name: str = ""
    channel: str = "stdout"
    count: int = DEFAULT_BYTES
    follow: bool = False
    timeout: float = 0.0
    as_json: bool = False
    level: str = ""

    def encode(self) -> bytes:
        fields = {
            "op": self.op,
            "name": self.name,
            "channel": self.channel,
            "count": self.count,
            "follow": self.follow,
        }
        return json.dumps(fields).encode() + b"\n"


class BadRequest(ValueError):
    """A request line that means nothing."""


def parse_request(line: bytes) -> Request:
    """A request line as ``Request.encode`` writes it."""
    try:
        fields = json.loads(line)
        if fields["op"] == "status":
            timeout = float(fields["timeout"])
            if not 0 < timeout < math.inf:
                raise ValueError(f"timeout {timeout}")
            level = str(fields["level"])
            if level not in LEVELS:
                raise ValueError(f"level {level!r}")
            return Request("status", timeout=timeout, as_json=bool(fields["json"]), level=level)
        request = Request(
            str(fields["op"]),
            str(fields["name"]),
            str(fields["channel"]),
            int(fields["count"]),
            bool(fields["follow"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"bad request: {exc}") from exc
    if request.op not in ("tail", "clear") or request.channel not in ("stdout", "stderr"):
        raise BadRequest(f"bad request: {request.op} {request.channel}")
    return request


@dataclass(frozen=True, slots=True)
class Answer:
    """The first line of an answer: ``ok`` (data follows), ``pass`` (not roled's: supervisorctl
    answers), or an error message."""

    status: str
    message: str = ""

    def encode(self) -> bytes:
        return json.dumps({"status": self.status, "message": self.message}).encode() + b"\n"


def parse_answer(line: bytes) -> Answer:
    try:
        fields = json.loads(line)
        return Answer(str(fields["status"]), str(fields["message"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"bad answer from roled: {line[:80]!r}") from exc


Follow = tuple[tuple[str, str], int]


def answer(buffers: Buffers, request: Request) -> tuple[Answer, bytes, Follow | None]:
    """What a request gets: the answer line, the data, and for ``follow`` the stream to go on
    following and the offset after the data (read on with ``Buffers.since``)."""
    key = (request.name, request.channel) if request.name else MAIN_LOG
    if request.op == "clear":
        if request.name == "all":
            for program in buffers.programs():
                buffers.clear(program)
            return Answer("ok"), b"", None
        if not buffers.kept((request.name, "stdout")) and not buffers.kept(
            (request.name, "stderr")
        ):
            return Answer("pass"), b"", None
        buffers.clear(request.name)
        return Answer("ok"), b"", None
    if not buffers.kept(key):
        if request.name and buffers.kept((request.name, "stdout")):
            return (
                Answer("error", f"{request.name}: its stderr goes to stdout (redirect_stderr)"),
                b"",
                None,
            )
        return Answer("pass"), b"", None
    if buffers.size == 0:
        return Answer("error", "roled keeps no output to tail: tail_buffer is 0"), b"", None
    data, end = buffers.last(key, request.count)
    return Answer("ok"), data, (key, end) if request.follow else None
