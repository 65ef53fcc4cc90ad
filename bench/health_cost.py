"""What health checks cost roled (issue 13): 100 programs with an http check every second
against the same 100 programs without, alternately (roled's own CPU over an idle window, as %
of one core, and its RSS); and how soon after a program sends READY=1 ``roled status --level
ready`` answers 0.

    python -m bench.health_cost [--programs 100] [--pairs 3] [--idle 30] [--ready-trials 20]

The http server answering the checks runs in this process, so its CPU is not roled's. The
READY=1 latency is taken from the monotonic time the program stamps when it sends to the
first ``status`` call (in this process, without the interpreter's start-up) that answers 0.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench.contenders import Roled, find_roled
from bench.layout import Program, sleepers_in_roles
from bench.procs import wait_until
from bench.trials import TrialError, running, stop, usage, wait_all_running

SETTLE = 5.0
# Waits for READY=1 after the file GO appears (polled every millisecond), stamps the time it
# sent, then sleeps.
NOTIFIER = """
import os, socket, sys, time
go, stamp = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
sent = time.monotonic()
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
open(stamp, "w").write(repr(sent))
time.sleep(100000)
"""


# The least any prober in Python can spend on the same checks: every second, the same GETs on
# new connections, started in ten batches (as roled's grid starts them), nothing else.
BARE = """
import selectors, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n"
selector = selectors.DefaultSelector()
step = time.monotonic()
while True:
    step += 0.1
    time.sleep(max(0.0, step - time.monotonic()))
    for _ in range(count // 10):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        sock.connect_ex(("127.0.0.1", port))
        try:
            sock.send(request)
        except BlockingIOError:
            selector.register(sock, selectors.EVENT_WRITE)
        else:
            selector.register(sock, selectors.EVENT_READ)
    while selector.get_map():
        for key, events in selector.select(3):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                sock.send(request)
                selector.modify(sock, selectors.EVENT_READ)
            else:
                sock.recv(1024)
                selector.unregister(sock)
                sock.close()
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_server() -> Iterator[int]:
    # A listen backlog of 128, as servers have (Python's default of 5 drops the SYNs of probes
    # that start together, and their retries come a second later).
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def cpu_trial(roled: Roled, count: int, port: int | None, idle: float) -> tuple[float, int]:
    """roled's CPU as % of one core over ``idle`` seconds, and its RSS in bytes."""
    roles = sleepers_in_roles(count)
    if port is not None:
        check = {"roled_alive": f"http://127.0.0.1:{port}/healthz", "roled_check_period": "1"}
        roles = {
            role: [Program(p.name, {**p.options, **check}) for p in programs]
            for role, programs in roles.items()
        }
    with running(roled, roles) as (launched, layout):
        wait_all_running(launched, layout, timeout=30 + count * 0.2)
        time.sleep(SETTLE)
        own = roled.own(launched)
        if own is None:
            raise TrialError("roled's process not found")
        measured = usage(own, idle, [])[0]
        stop(launched)
    return measured.cpu * 100 / idle, measured.rss


def bare_trial(count: int, port: int, idle: float) -> tuple[float, float]:
    """The CPU of BARE probing as roled would, and the kernel's part of it (% of one core over
    ``idle`` seconds)."""
    bare = subprocess.Popen([sys.executable, "-c", BARE, str(port), str(count)])
    try:
        time.sleep(SETTLE)
        process = psutil.Process(bare.pid)
        before = process.cpu_times()
        time.sleep(idle)
        after = process.cpu_times()
    finally:
        bare.kill()
        bare.wait()
    kernel = after.system - before.system
    return (after.user - before.user + kernel) * 100 / idle, kernel * 100 / idle


def level_ready(runtime_dir: Path) -> int:
    from roled import status  # noqa: PLC0415 (roled is the contender, imported only here)

    with contextlib.redirect_stdout(io.StringIO()):
        return status.status(str(runtime_dir), 2.0, False, "ready")


def ready_trials(roled: Roled, trials: int, root: Path) -> list[float]:
    """Milliseconds from READY=1 sent to ``roled status --level ready`` answering 0."""
    go, stamp, script = root / "go", root / "stamp", root / "notifier.py"
    script.write_text(NOTIFIER)
    command = f"{sys.executable} {script} {go} {stamp}"
    svc = Program("svc", {"command": command, "startsecs": "0", "roled_ready": "notify"})
    latencies = []
    with running(roled, {"web": [svc]}) as (launched, layout):
        wait_all_running(launched, layout, timeout=30)
        ctl = [*roled.command, "-c", str(layout.main_conf), "ctl", "restart", "svc"]
        for _ in range(trials):
            go.unlink(missing_ok=True)
            stamp.unlink(missing_ok=True)
            subprocess.run(ctl, env=roled.env(layout), capture_output=True, timeout=30)
            if not wait_until(lambda: level_ready(layout.runtime_dir) == 1, 10):
                raise TrialError("svc did not become not-ready after a restart")
            go.touch()
            if not wait_until(lambda: level_ready(layout.runtime_dir) == 0, 10, interval=0):
                raise TrialError("READY=1 was not counted")
            answered = time.monotonic()
            wait_until(stamp.exists, 10)
            latencies.append((answered - float(stamp.read_text())) * 1000)
        stop(launched)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.health_cost")
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--ready-trials", type=int, default=20)
    parser.add_argument("--roled-cmd", default=None)
    args = parser.parse_args(argv)
    roled = find_roled(args.roled_cmd)
    if roled is None:
        print("roled not found: install it or pass --roled-cmd", file=sys.stderr)
        return 2
    plain: list[float] = []
    checked: list[float] = []
    floor: list[float] = []
    rss: list[int] = []
    with http_server() as port:
        for pair in range(args.pairs):
            without, _ = cpu_trial(roled, args.programs, None, args.idle)
            with_checks, size = cpu_trial(roled, args.programs, port, args.idle)
            bare, kernel = bare_trial(args.programs, port, args.idle)
            plain.append(without)
            checked.append(with_checks)
            floor.append(bare)
            rss.append(size)
            print(
                f"pair {pair}: without checks {without:.2f} %, with {args.programs} http "
                f"checks every 1 s {with_checks:.2f} % of a core, RSS {size / 2**20:.1f} MiB; "
                f"the same sockets in a bare loop {bare:.2f} % ({kernel:.2f} % in the kernel); "
                f"roled / bare loop {with_checks / bare:.2f}"
            )
    ratios = [roled_cpu / bare for roled_cpu, bare in zip(checked, floor, strict=True)]
    print(
        f"http checks: roled {statistics.median(checked):.2f} % of a core (without: "
        f"{statistics.median(plain):.2f} %; the same sockets in a bare Python loop: "
        f"{statistics.median(floor):.2f} %; roled / bare loop, median pair: "
        f"{statistics.median(ratios):.2f}), RSS {max(rss) / 2**20:.1f} MiB at most"
    )
    with tempfile.TemporaryDirectory(prefix="hc-") as root:
        latencies = ready_trials(roled, args.ready_trials, Path(root))
    print(
        f"READY=1 to status --level ready 0: median {statistics.median(latencies):.1f} ms, "
        f"min {min(latencies):.1f}, max {max(latencies):.1f} ({len(latencies)} trials)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
