"""NOTIFY_SOCKET with real senders: Python's sendto, a passed descriptor, systemd-notify."""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from roled.errors import RoledError
from roled.notify import Message, NotifySocket, owner, parent_pid

SEND = """\
import os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for text in sys.argv[1:]:
    sock.sendto(text.encode(), os.environ["NOTIFY_SOCKET"])
print("sent", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    directory = Path(tempfile.mkdtemp(prefix="nt-", dir="/tmp"))
    directory.chmod(0o700)
    sock = NotifySocket(directory)
    yield sock
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait(10)


def receive(sock: NotifySocket, count: int, timeout: float = 10.0) -> list[Message]:
    """Wait on the socket as roled's loop does until count messages came."""
    messages: list[Message] = []
    with selectors.DefaultSelector() as selector:
        selector.register(sock.fileno(), selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while len(messages) < count:
            assert time.monotonic() < deadline, f"only {messages} arrived"
            if selector.select(0.1):
                messages += sock.on_readable()
    return messages


def start(
    processes: list[subprocess.Popen[str]], argv: list[str], sock: NotifySocket
) -> subprocess.Popen[str]:
    env = {**os.environ, "NOTIFY_SOCKET": str(sock.path)}
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    processes.append(process)
    return process


def test_socket_is_private(notify: NotifySocket) -> None:
    mode = os.lstat(notify.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert os.lstat(notify.path).st_uid == os.geteuid()


def test_python_sender_is_matched_to_its_program(
    notify: NotifySocket, processes: list[subprocess.Popen[str]]
) -> None:
    """A message from the program's child carries the child's pid; the tree leads to the
    program."""
    shell = start(
        processes,
        [
            "sh",
            "-c",
            'exec 3<&0; "$0" -c "$1" "$2" <&3',
            sys.executable,
            SEND,
            "READY=1\nSTATUS=up",
        ],
        notify,
    )
    assert shell.stdout is not None
    assert shell.stdout.readline() == "sent\n"
    (message,) = receive(notify, 1)
    (child,) = psutil.Process(shell.pid).children()
    assert message == Message(child.pid, ready=True, status="up")
    assert owner(child.pid, {shell.pid: "web"}, parent_pid) == "web"
    assert owner(child.pid, {os.getpid() + 10_000_000: "web"}, parent_pid) is None


def test_passed_descriptors_are_closed(notify: NotifySocket) -> None:
    """BARRIER=1 comes with a descriptor: roled closes it, so its fds do not grow."""
    before = len(os.listdir("/proc/self/fd"))
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        # Fewer than the kernel's queue of 10: nothing reads while this sends.
        sender.settimeout(5)
        for _ in range(5):
            sender.sendmsg(
                [b"BARRIER=1"],
                [
                    (
                        socket.SOL_SOCKET,
                        socket.SCM_RIGHTS,
                        bytes(memoryview(bytearray(write_end.to_bytes(4, sys.byteorder)))),
                    )
                ],
                0,
                str(notify.path),
            )
        messages = receive(notify, 5)
    os.close(write_end)
    # Every copy of the write end is closed: the pipe reads as ended.
    assert os.read(read_end, 1) == b""
    os.close(read_end)
    assert messages == [Message(os.getpid())] * 5
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_message_too_long_is_dropped(notify: NotifySocket) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.settimeout(5)
        sender.sendto(b"READY=1\nSTATUS=" + b"x" * 10_000, str(notify.path))
        sender.sendto(b"WATCHDOG=1", str(notify.path))
    assert receive(notify, 1) == [Message(os.getpid(), watchdog=True)]


def test_a_burst_never_leaves_its_sender_blocked(
    notify: NotifySocket, processes: list[subprocess.Popen[str]]
) -> None:
    """1000 blocking sendto calls, far beyond the kernel's queue of 10: roled reads as they
    come, and the sender finishes."""
    sender = start(processes, [sys.executable, "-c", SEND, *["WATCHDOG=1"] * 1000], notify)
    messages = receive(notify, 1000)
    assert sender.stdout is not None
    assert sender.stdout.readline() == "sent\n"
    assert messages == [Message(sender.pid, watchdog=True)] * 1000


def test_systemd_notify(notify: NotifySocket, processes: list[subprocess.Popen[str]]) -> None:
    """Debian's systemd-notify, run from the program's shell, is matched to the program; it
    then waits on BARRIER=1 until roled closes the descriptor it passed, and succeeds."""
    tool = shutil.which("systemd-notify")
    if tool is None:
        pytest.skip("systemd-notify is not installed (Debian's systemd package)")
    script = f"{tool} --ready --status=serving && echo sent && exec cat"
    shell = start(processes, ["sh", "-c", script], notify)
    ready, barrier = receive(notify, 2)
    assert shell.stdout is not None
    assert shell.stdout.readline() == "sent\n"
    assert (ready.ready, ready.status, barrier) == (True, "serving", Message(barrier.pid))
    # It sends READY=1 in its parent's name (root may), so the shell's program is found even
    # after the tool has exited; BARRIER=1 carries nothing roled uses.
    assert ready.pid == shell.pid
    assert owner(ready.pid, {shell.pid: "web"}, parent_pid) == "web"


def test_stale_socket_replaced_other_entries_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stale:
        stale.bind(str(tmp_path / "notify"))
    sock = NotifySocket(tmp_path)
    sock.close()
    assert not (tmp_path / "notify").exists()
    (tmp_path / "notify").write_text("planted")
    with pytest.raises(RoledError, match=r"notify: exists and is not a socket"):
        NotifySocket(tmp_path)
