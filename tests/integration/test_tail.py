"""``roled ctl tail``, ``maintail`` and ``clear``: supervisorctl's habits for the output roled
carries, answered from roled's bounded buffers over its own socket, never blocking its loop."""

from __future__ import annotations

import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from roled.tails import Request
from tests.conftest import Layout, Roled, clean_environ, program, wait_until

Start = Callable[..., Roled]
MIB = 1 << 20


def sleeper(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n{extra}"


def ctl(roled: Roled, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roled", "ctl", *args],
        env=clean_environ(ROLED_RUNTIME_DIR=str(roled.runtime_dir)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def poke(roled: Roled, name: str) -> None:
    """Make print_signals write one more line (SIGUSR1)."""
    pid = {info.namespec: info.pid for info in roled.client().processes()}[name]
    os.kill(pid, signal.SIGUSR1)


@pytest.fixture
def running(layout: Layout, start_roled: Start) -> Roled:
    emit = program("emit", 'stderr:b"oops\\n"', "--stay")
    noisy = f"[program:noisy]\ncommand={emit}\n"
    layout.role("web", sleeper("web") + noisy + "startsecs=0\n")
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "noisy": "RUNNING"})
    wait_until(lambda: "ready" in roled.stdout and "oops" in roled.stderr, what="first lines")
    return roled


def test_tail_shows_each_stream_roled_carries(running: Roled) -> None:
    """tail NAME is its stdout, tail NAME stderr its stderr, as supervisorctl shows them."""
    assert ctl(running, "tail", "web").stdout == "ready\n"
    poke(running, "web")
    wait_until(lambda: ctl(running, "tail", "web").stdout == "ready\nSIGUSR1\n", what="SIGUSR1")
    assert ctl(running, "tail", "-8", "web").stdout == "SIGUSR1\n"
    assert ctl(running, "tail", "noisy", "stderr").stdout == "oops\n"
    assert ctl(running, "tail", "noisy").stdout == ""
    mode = stat.S_IMODE(os.stat(running.runtime_dir / "roled.sock").st_mode)
    assert mode == 0o600


def test_clear_empties_the_buffer_and_never_the_fifo(running: Roled) -> None:
    """After clear the tail is empty; later lines reach the tail and the container log."""
    result = ctl(running, "clear", "web")
    assert (result.returncode, result.stdout) == (0, "web: cleared\n")
    assert ctl(running, "tail", "web").stdout == ""
    poke(running, "web")
    wait_until(lambda: "SIGUSR1" in running.stdout, what="the line in the container log")
    wait_until(lambda: ctl(running, "tail", "web").stdout == "SIGUSR1\n", what="the new tail")
    assert ctl(running, "clear", "all").returncode == 0
    assert ctl(running, "tail", "noisy", "stderr").stdout == ""


def test_maintail_shows_supervisords_own_log(running: Roled) -> None:
    """maintail is supervisord's log as roled passes it on, without roled's listener."""
    result = ctl(running, "maintail", "-100000")
    assert result.returncode == 0
    assert "spawned: 'web' with pid" in result.stdout
    assert "roled_events" not in result.stdout


def test_tail_f_streams_until_the_client_goes_away(running: Roled) -> None:
    """tail -f prints new lines as they come; when it is killed roled carries on."""
    follower = subprocess.Popen(
        [sys.executable, "-m", "roled", "ctl", "tail", "-f", "web"],
        env=clean_environ(ROLED_RUNTIME_DIR=str(running.runtime_dir)),
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in follower.stdout], daemon=True
    ).start()  # type: ignore[union-attr]
    try:
        assert lines.get(timeout=10) == "==> Press Ctrl-C to exit <==\n"
        assert lines.get(timeout=10) == "ready\n"
        poke(running, "web")
        assert lines.get(timeout=10) == "SIGUSR1\n"
    finally:
        follower.kill()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()
    poke(running, "web")
    wait_until(lambda: running.stdout.count("SIGUSR1") == 2, what="the second line")
    assert ctl(running, "status").returncode == 0
    running.send(signal.SIGTERM)
    assert running.wait() == 0


def test_a_follower_that_never_reads_is_dropped_and_the_loop_goes_on(
    layout: Layout, start_roled: Start
) -> None:
    """A tail -f client that reads nothing is cut off past its bound; roled keeps answering."""
    chatter = program("chatter", "big", "2000", "--size", "1000", "--stdout-only")
    layout.role("web", f"[program:big]\ncommand={chatter}\nstartsecs=0\nautorestart=true\n")
    roled = start_roled(layout, roles="web")
    wait_until((roled.runtime_dir / "roled.sock").exists, what="roled's socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(str(roled.runtime_dir / "roled.sock"))
        stuck.sendall(Request("tail", "big", follow=True).encode())
        wait_until(lambda: roled.out_path.stat().st_size > 8 * MIB, 60, "8 MiB of output")
        assert ctl(roled, "status").returncode == 0
        # Dropped: what reaches the client ends, within its bound and the sockets' buffers.
        stuck.settimeout(10)
        received = 0
        while (data := stuck.recv(1 << 16)) and received < 6 * MIB:
            received += len(data)
        assert data == b""
        assert received < 4 * MIB
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_a_program_with_its_own_log_file_is_supervisorctls(
    layout: Layout, start_roled: Start, tmp_path: Path
) -> None:
    """Output roled does not carry (a file of its own) is tailed by supervisorctl as before."""
    own = tmp_path / "web.log"
    layout.role("web", sleeper("web", f"stdout_logfile={own}\n"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: own.exists() and "ready" in own.read_text(), what="the program's file")
    assert ctl(roled, "tail", "web").stdout.strip() == "ready"
    missing = ctl(roled, "tail", "nope")
    assert "no such process name" in missing.stdout + missing.stderr


def test_tail_buffer_0_keeps_nothing(layout: Layout, start_roled: Start) -> None:
    """ROLED_TAIL_BUFFER=0 keeps no output: tail says so in one line, exit 2."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_TAIL_BUFFER": "0"})
    roled.wait_states({"web": "RUNNING"})
    result = ctl(roled, "tail", "web")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "roled: error: roled keeps no output to tail: tail_buffer is 0\n"
