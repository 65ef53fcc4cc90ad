"""Start, watch and reliably kill the processes a benchmark launches.

The harness makes itself a child subreaper so programs orphaned by a contender come back to it
and are killed at the end of every trial, on exceptions and on Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil

PR_SET_CHILD_SUBREAPER = 36  # prctl(2)


def become_subreaper() -> bool:
    """Adopt orphaned descendants (prctl PR_SET_CHILD_SUBREAPER); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.001) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class Launched:
    """A started contender: its Popen, and its output lines stamped with time.monotonic()."""

    proc: subprocess.Popen[bytes]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    exited: float | None = None
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def first_line(self, predicate: Callable[[str], bool]) -> tuple[float, str] | None:
        """The first output line (with its arrival time) that matches ``predicate``."""
        return next(((t, line) for t, line in list(self.lines) if predicate(line)), None)

    def wait_exit(self, timeout: float) -> float | None:
        """Wait for exit with a pidfd (no polling granularity); return the exit time or None."""
        if self.exited is None:
            with _pidfd(self.proc.pid) as fd:
                ready, _, _ = select.select([fd], [], [], timeout)
                if not ready:
                    return None
                self.exited = time.monotonic()
            self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.exited

    def output(self) -> str:
        """Everything the contender printed, for error messages."""
        return "\n".join(line for _, line in self.lines)


@contextlib.contextmanager
def _pidfd(pid: int) -> Iterator[int]:
    fd = os.pidfd_open(pid)
    try:
        yield fd
    finally:
        os.close(fd)


def _read_lines(launched: Launched) -> None:
    assert launched.proc.stdout is not None
    for raw in launched.proc.stdout:
        launched.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))


def launch(argv: list[str], env: dict[str, str]) -> Launched:
    """Start ``argv`` with stdout and stderr merged into one timestamped line stream."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    launched = Launched(proc=proc, started=started)
    launched._reader = threading.Thread(target=_read_lines, args=(launched,), daemon=True)
    launched._reader.start()
    return launched


def run_timed(argv: list[str], env: dict[str, str], timeout: float) -> tuple[float, int, str]:
    """Run a short command to completion; return (seconds from exec to exit, status, output)."""
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
    elapsed = time.monotonic() - started
    return elapsed, done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def descendants() -> list[psutil.Process]:
    """Every live descendant of the harness (orphans included, as it is a subreaper)."""
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def kill_all(grace: float = 2.0) -> int:
    """SIGTERM every descendant, SIGKILL what is left after ``grace``, reap; return the count."""
    procs = descendants()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)
    reap_zombies()
    return len(procs)


def reap_zombies() -> None:
    """Collect exit statuses of adopted orphans (never of processes a Popen still owns)."""
    for p in descendants():
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if p.status() == psutil.STATUS_ZOMBIE and p.ppid() == os.getpid():
                os.waitpid(p.pid, os.WNOHANG)


def find_child(pid: int, needle: str, timeout: float) -> psutil.Process | None:
    """The first child of ``pid`` whose command line contains ``needle`` (e.g. supervisord)."""
    found: list[psutil.Process] = []

    def look() -> bool:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(pid).children():
                if needle in " ".join(child.cmdline()):
                    found.append(child)
                    return True
        return False

    wait_until(look, timeout, interval=0.01)
    return found[0] if found else None
