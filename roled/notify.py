"""NOTIFY_SOCKET for programs that speak systemd's sd_notify: a datagram socket in roled's
runtime directory, read without blocking, each message tied to a program by its sender's pid.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from roled.errors import RoledError
from roled.init import proc_stat
from roled.model import NOTIFY

SOCKET_NAME = NOTIFY
# systemd reads at most this much of a message (NOTIFY_BUFFER_MAX); longer ones are dropped.
MESSAGE_LIMIT = 4096
# A sender blocks only while net.unix.max_dgram_qlen messages (10 by default, and a container
# cannot raise it) wait unread: the receive buffer does not matter for unix datagrams. So roled
# reads everything queued whenever the socket is readable, up to this many messages per wake-up
# so that a flood cannot keep the loop from the rest.
BATCH = 256
# How far up the process tree a sender may be from its program's process.
MAX_DEPTH = 64
_UCRED = struct.Struct("3i")
_SCM_MAX_FD = 253
_ANCILLARY = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(_SCM_MAX_FD * 4)


@dataclass(frozen=True, slots=True)
class Message:
    """What roled uses of one notification, and the pid the kernel vouches for (None: unknown)."""

    pid: int | None
    ready: bool = False
    watchdog: bool = False
    status: str | None = None


def parse_message(data: bytes, pid: int | None = None) -> Message:
    """``KEY=VALUE`` lines; READY=1, WATCHDOG=1 and STATUS= are read, anything else ignored."""
    ready = watchdog = False
    status = None
    for line in data.decode(errors="replace").split("\n"):
        key, equals, value = line.partition("=")
        if not equals:
            continue
        if key == "READY":
            ready = ready or value == "1"
        elif key == "WATCHDOG":
            watchdog = watchdog or value == "1"
        elif key == "STATUS":
            status = value
    return Message(pid, ready, watchdog, status)


def owner(
    pid: int,
    programs: Mapping[int, str],
    parent_of: Callable[[int], int | None] | Mapping[int, int],
) -> str | None:
    """The program whose process is ``pid`` or one of its ancestors, or None.

    ``programs`` maps each program's process pid (supervisord's) to its name; ``parent_of``
    gives a pid's parent (a map in tests, ``parent_pid`` at run time).
    """
    parent = parent_of.get if isinstance(parent_of, Mapping) else parent_of
    current: int | None = pid
    for _ in range(MAX_DEPTH):
        if current is None or current <= 1:
            return None
        if current in programs:
            return programs[current]
        current = parent(current)
    return None


def parent_pid(pid: int) -> int | None:
    """A live (or not yet reaped) process's parent, from /proc."""
    stat = proc_stat(pid)
    return None if stat is None else stat.ppid


class NotifySocket:
    """The socket programs notify; ``on_readable`` returns what arrived since the last call."""

    __slots__ = ("_sock", "path")

    def __init__(self, directory: Path) -> None:
        self.path = directory / SOCKET_NAME
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(mode):
                raise RoledError(f"{self.path}: exists and is not a socket; roled will not use it")
            # A socket left by an earlier roled in its own private directory.
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def on_readable(self) -> list[Message]:
        """Read what is queued, without blocking; passed descriptors are closed at once."""
        messages = []
        for _ in range(BATCH):
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(MESSAGE_LIMIT, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            pid = _read_ancillary(ancillary)
            if not flags & socket.MSG_TRUNC:
                messages.append(parse_message(data, pid))
        return messages

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _read_ancillary(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The sender's pid from its credentials; any descriptors (BARRIER=1 sends one) closed."""
    pid = None
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED.size:
            pid = _UCRED.unpack_from(data)[0]
        elif kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    return pid
