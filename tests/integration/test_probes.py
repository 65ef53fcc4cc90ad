"""Probes against real servers on 127.0.0.1 and real commands, driven as roled's loop would."""

from __future__ import annotations

import contextlib
import http.server
import os
import selectors
import shlex
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from roled.checks import Check, Result, parse_ready
from roled.probes import GATHER, OUTPUT_LIMIT, Context, Probes

ORIGIN = "test"


def check(text: str) -> Check:
    return parse_ready(text, ORIGIN)


def drive(probes: Probes, selector: selectors.BaseSelector, count: int) -> dict[int, Result]:
    """Run the loop until ``count`` results are in; children are reaped as roled's reaper would."""
    results: dict[int, Result] = {}
    limit = time.monotonic() + 30
    while len(results) < count:
        assert time.monotonic() < limit, "probes never finished"
        for key, mask in selector.select(0.02):
            assert probes.owns(key)
            probes.handle(key, mask)
        probes.reap()
        probes.expire(time.monotonic())
        results.update(probes.take())
    return results


def probe(text: str, timeout: float = 3.0, context: Context | None = None) -> Result:
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        probes.start(1, check(text), timeout, time.monotonic(), context)
        result = drive(probes, selector, 1)[1]
        assert len(probes) == 0
        assert selector.get_map() == {}
        return result


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(2)
        code = {"/redirect": 302, "/bad": 503}.get(self.path, 200)
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 (in a thread of the test); its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes | None], int]]:
    """A listening socket that answers each connection with fixed bytes (None: says nothing)."""
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def serve(reply: bytes | None) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        sockets.append(listener)

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                sockets.append(conn)
                if reply is not None:
                    with contextlib.suppress(OSError):
                        # Read the request first: closing on unread data would be a reset.
                        conn.settimeout(5)
                        conn.recv(65536)
                        conn.sendall(reply)
                        conn.close()

        threading.Thread(target=accept, daemon=True).start()
        return int(listener.getsockname()[1])

    yield serve
    stop.set()
    for sock in sockets:
        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_accepted_and_refused(raw_server: Callable[[bytes | None], int]) -> None:
    port = raw_server(None)
    assert probe(f"tcp://127.0.0.1:{port}") == Result(True, "connected")
    assert probe(f"tcp://127.0.0.1:{free_port()}") == Result(False, "connection refused")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/healthz", Result(True, "HTTP 200 OK")),
        ("/redirect", Result(True, "HTTP 302 Found")),
        ("/bad", Result(False, "HTTP 503 Service Unavailable")),
    ],
)
def test_http_status(web: int, path: str, expected: Result) -> None:
    """2xx and 3xx pass, others fail, read from a real http.server."""
    assert probe(f"http://127.0.0.1:{web}{path}") == expected


def test_loopback_probes_need_no_wake_up_to_connect(
    raw_server: Callable[[bytes | None], int],
) -> None:
    """On loopback a tcp probe passes as it starts and an http probe sends its GET at once,
    before the loop has looked at anything: the loop wakes up for the answer only."""
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with listener, selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        probes.start(1, check(f"tcp://127.0.0.1:{raw_server(None)}"), 3.0, time.monotonic())
        assert probes.take() == [(1, Result(True, "connected"))]
        probes.start(2, check(f"http://127.0.0.1:{port}/"), 3.0, time.monotonic())
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            received.append(conn.recv(65536))
            assert selector.get_map() == {}
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            assert drive(probes, selector, 1) == {2: Result(True, "HTTP 204 No Content")}
    assert received[0].startswith(b"GET / HTTP/1.1\r\n")


def test_answers_of_a_batch_are_read_in_one_look() -> None:
    """Probes that start together are not waited on one by one: the loop's selector holds
    nothing until GATHER after the last start, and that one look takes every answer in."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    target = check(f"http://127.0.0.1:{listener.getsockname()[1]}/")
    with listener, selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        started = [time.monotonic() for _ in range(5)]
        for probe, now in enumerate(started, 1):
            probes.start(probe, target, 3.0, now)
        for _ in started:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        assert selector.select(0) == []
        assert probes.next_wakeup() == started[-1] + GATHER
        probes.expire(started[-1] + GATHER)
        assert sorted(probes.take()) == [(p, Result(True, "HTTP 200 OK")) for p in range(1, 6)]
        assert len(probes) == 0
        assert selector.get_map() == {}


def test_an_answer_later_than_the_look_wakes_the_loop(web: int) -> None:
    """A probe still waiting at the look is then waited on by the loop's selector."""
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        now = time.monotonic()
        probes.start(1, check(f"http://127.0.0.1:{web}/slow"), 5.0, now)
        probes.expire(now + GATHER)
        assert probes.take() == []
        assert len(selector.get_map()) == 1
        assert drive(probes, selector, 1) == {1: Result(True, "HTTP 200 OK")}
        assert selector.get_map() == {}


def test_http_refused() -> None:
    assert probe(f"http://127.0.0.1:{free_port()}/") == Result(False, "connection refused")


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (b"", "connection closed before a status line"),
        (b"hello\r\n", "not an HTTP status line: b'hello\\r\\n'"),
        (b"x" * 5_000_000, "not an HTTP status line: b'" + "x" * 60 + "'"),
        (b"HTTP/1.0 204\r\n\r\n", "HTTP 204"),
    ],
)
def test_http_bad_servers(
    raw_server: Callable[[bytes | None], int], reply: bytes, detail: str
) -> None:
    """Nonsense or megabytes without a line end: the probe reads at most 1 KiB and fails."""
    result = probe(f"http://127.0.0.1:{raw_server(reply)}/")
    assert result == Result(detail == "HTTP 204", detail)


def test_server_that_answers_after_two_seconds_times_out_without_blocking_others(
    web: int, raw_server: Callable[[bytes | None], int]
) -> None:
    """A slow answer fails at the timeout; meanwhile other probes finish (no blocking call)."""
    silent = raw_server(None)
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        now = time.monotonic()
        probes.start(1, check(f"http://127.0.0.1:{web}/slow"), 1.0, now)
        probes.start(2, check(f"http://127.0.0.1:{web}/slow"), 5.0, now)
        probes.start(3, check(f"http://127.0.0.1:{silent}/"), 0.5, now)
        probes.start(4, check(f"http://127.0.0.1:{web}/fast"), 5.0, now)
        order: list[int] = []
        results: dict[int, Result] = {}
        while len(results) < 4:
            done = drive(probes, selector, 1)
            order += sorted(done)
            results.update(done)
    assert order == [4, 3, 1, 2]
    assert results == {
        1: Result(False, "timed out after 1s (waiting for the status line)"),
        2: Result(True, "HTTP 200 OK"),
        3: Result(False, "timed out after 0.5s (waiting for the status line)"),
        4: Result(True, "HTTP 200 OK"),
    }


def test_exec_status_and_output() -> None:
    """Exit 0 passes; another status fails with the last lines of stdout and stderr kept."""
    assert probe("exec:true") == Result(True, "exit status 0")
    script = "echo out; echo err >&2; exit 3"
    assert probe(f"exec:sh -c {shlex.quote(script)}") == Result(False, "exit status 3", "out\nerr")


def test_exec_runs_with_the_programs_environment_directory_and_user(tmp_path: Path) -> None:
    context = Context({"FOO": "bar", "PATH": os.environ["PATH"]}, str(tmp_path))
    result = probe("exec:sh -c 'pwd; echo $FOO; id -u'", context=context)
    assert result == Result(True, "exit status 0", f"{tmp_path}\nbar\n{os.geteuid()}")
    if os.geteuid() != 0:
        pytest.skip("switching user needs root")
    as_nobody = Context({"PATH": os.environ["PATH"]}, None, "nobody")
    assert probe("exec:id -u", context=as_nobody).output == "65534"
    assert probe("exec:id -u", context=Context({"PATH": os.environ["PATH"]}, None, "root")) == (
        Result(True, "exit status 0", "0")
    )


def test_exec_that_cannot_start() -> None:
    empty = Context({"PATH": "/nonexistent"})
    assert probe("exec:nope", context=empty) == Result(
        False, "cannot run 'nope': no such file or directory"
    )
    assert probe("exec:true", context=Context({}, None, "no-such-user-x")) == Result(
        False, "unknown user 'no-such-user-x'"
    )


def _zombies_or_alive(pids: list[int]) -> list[int]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).ppid() in {os.getpid(), 1} or psutil.pid_exists(pid):
                found.append(pid)
    return found


def test_hanging_exec_is_killed_with_its_group_at_the_timeout_and_reaped() -> None:
    """sleep in the command and in a child it started: both killed, both gone, no zombie."""
    script = "sleep 60 & echo started; sleep 60"
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        before = set(psutil.Process().children())
        probes.start(1, check(f"exec:sh -c {shlex.quote(script)}"), 1.0, time.monotonic())
        (shell,) = set(psutil.Process().children()) - before
        tree = [shell.pid] + [child.pid for child in _wait_for_children(shell, 2)]
        result = drive(probes, selector, 1)[1]
        assert result == Result(
            False, "timed out after 1s; its process group was killed", "started"
        )
        deadline = time.monotonic() + 10
        while _zombies_or_alive(tree) and time.monotonic() < deadline:
            probes.reap()
            time.sleep(0.02)
        assert _zombies_or_alive(tree) == []


def _wait_for_children(process: psutil.Process, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = process.children()
        if len(children) >= count:
            return children
        time.sleep(0.02)
    raise AssertionError(f"{process.pid} never had {count} children")


def test_cancel_kills_the_command() -> None:
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        before = set(psutil.Process().children())
        probes.start(1, check("exec:sleep 60"), 30.0, time.monotonic())
        (child,) = set(psutil.Process().children()) - before
        probes.cancel(1)
        assert child.wait(10) == -9
        probes.reap()
        assert probes.take() == []
        assert selector.get_map() == {}


def test_exec_printing_megabytes_keeps_only_its_end() -> None:
    """50 MB of output: read as it comes, memory stays bounded, the last lines are kept."""
    code = "import sys\nfor n in range(500_000): sys.stdout.write(f'{n:099d}\\n')\nprint('end')"
    tracemalloc.start()
    try:
        result = probe(f"exec:{shlex.join([sys.executable, '-c', code])}", timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.passed
    assert result.output.endswith(f"\n{499_999:099d}\nend")
    assert len(result.output) <= OUTPUT_LIMIT
    assert peak < 2 * 1024 * 1024


def test_exit_reported_by_the_loops_reaper() -> None:
    """roled's reaper takes every child (waitpid -1): it hands the status over with ended()."""
    with selectors.DefaultSelector() as selector:
        probes = Probes(selector)
        probes.start(1, check("exec:sh -c 'exit 4'"), 10.0, time.monotonic())
        results: list[tuple[int, Result]] = []
        deadline = time.monotonic() + 10
        while not results and time.monotonic() < deadline:
            for key, mask in selector.select(0.02):
                probes.handle(key, mask)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                assert probes.ended(pid, status)
            results = probes.take()
        assert results == [(1, Result(False, "exit status 4"))]
        assert not probes.ended(999_999, 0)
