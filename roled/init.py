"""PID-1 duties: take signals into one loop, reap every child, spawn with a clean signal state,
and sweep whatever is left of the process tree.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from roled import log

# prctl(2): PR_SET_CHILD_SUBREAPER, so orphans of programs are re-parented to roled, not to the
# real PID 1, when roled itself is not PID 1 (docker run --init, a shell, a test).
PR_SET_CHILD_SUBREAPER = 36
# Synchronous faults belong to the interpreter; a Python handler for them would loop forever.
_FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT}
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def become_subreaper() -> None:
    """Adopt orphaned descendants (a no-op for PID 1, which adopts them anyway)."""
    if os.getpid() == 1:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")


class SignalQueue:
    """Every catchable signal recorded in arrival order and taken by the main loop.

    The handler only appends; the loop does the work. A wake-up pipe interrupts the loop's
    select(), and the queue (not the pipe, which may drop bytes in a storm) is the record.
    """

    def __init__(self) -> None:
        self._pending: collections.deque[int] = collections.deque()
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous_wakeup = -1

    @property
    def fileno(self) -> int:
        return self._read_fd

    def install(self) -> None:
        for signum in catchable_signals():
            signal.signal(signum, self._record)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)

    def _record(self, signum: int, _frame: object) -> None:
        self._pending.append(signum)

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first."""
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        taken: list[int] = []
        while self._pending:
            taken.append(self._pending.popleft())
        return taken

    def uninstall(self) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum in catchable_signals():
            signal.signal(signum, signal.SIG_DFL)
        os.close(self._read_fd)
        os.close(self._write_fd)


def catchable_signals() -> list[int]:
    return sorted(
        int(signum)
        for signum in signal.valid_signals()
        if signum not in _UNCATCHABLE and signum not in _FAULTS
    )


def spawn(argv: Sequence[str], env: dict[str, str], output: int | None = None) -> int:
    """Start a child in its own process group, with default signal mask and dispositions.

    roled's handlers would be reset by exec anyway; ignored signals would not, and the mask is
    inherited, so both are reset explicitly (as tini does before exec). With ``output``, the
    child's stdout and stderr are that fd instead of roled's own.
    """
    resettable = [signum for signum in signal.valid_signals() if signum not in _UNCATCHABLE]
    actions = (
        []
        if output is None
        else [(os.POSIX_SPAWN_DUP2, output, 1), (os.POSIX_SPAWN_DUP2, output, 2)]
    )
    return os.posix_spawn(
        argv[0],
        list(argv),
        env,
        file_actions=actions,
        setpgroup=0,
        setsigmask=(),
        setsigdef=resettable,
    )


@dataclass(frozen=True, slots=True)
class Exit:
    """How a child ended: its exit code, or the signal that killed it."""

    code: int | None
    signal: int | None

    @classmethod
    def from_status(cls, status: int) -> Exit:
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.waitstatus_to_exitcode(status), None)

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        return f"exit status {self.code}"


def reap_children(watched: int) -> Exit | None:
    """Reap every child that has exited; return the watched child's end if it was among them.

    ECHILD (no children left) is expected; anything else is a bug and propagates.
    """
    result: Exit | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return result
        if pid == 0:
            return result
        if pid == watched:
            result = Exit.from_status(status)


def descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def send(processes: Sequence[psutil.Process], signum: int) -> None:
    """Signal each process; one that is already gone (ESRCH) is not an error."""
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied as exc:
            log.warning(f"cannot signal pid {process.pid}: {exc}")


def sweep(grace: float, clock: Callable[[], float] = time.monotonic) -> list[str]:
    """SIGTERM every process left in roled's tree, SIGKILL what is left after grace, reap all.

    Returns the names of processes that had to be killed.
    """
    left = descendants()
    if not left:
        reap_children(-1)
        return []
    log.info(f"sending SIGTERM to {len(left)} leftover process(es): {', '.join(_labels(left))}")
    send(left, signal.SIGTERM)
    deadline = clock() + grace
    while clock() < deadline:
        reap_children(-1)
        left = _alive(descendants())
        if not left:
            return []
        time.sleep(0.02)
    killed = _labels(_alive(descendants()))
    if killed:
        log.warning(f"sending SIGKILL to process(es) still running: {', '.join(killed)}")
    _kill_until_gone(clock)
    return killed


def kill_tree(clock: Callable[[], float] = time.monotonic) -> None:
    """SIGKILL every process in roled's tree at once and reap them."""
    _kill_until_gone(clock)


def _kill_until_gone(clock: Callable[[], float]) -> None:
    # A process may fork while its siblings are being killed: repeat until nothing is left.
    deadline = clock() + 5.0
    while clock() < deadline:
        left = _alive(descendants())
        if not left:
            break
        send(left, signal.SIGKILL)
        time.sleep(0.01)
        reap_children(-1)
    reap_children(-1)


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _labels(processes: Sequence[psutil.Process]) -> list[str]:
    labels = []
    for process in processes:
        try:
            labels.append(f"{process.name()}[{process.pid}]")
        except psutil.NoSuchProcess:
            continue
    return labels
