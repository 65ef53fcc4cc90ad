"""PID-1 duties: take signals into one loop, reap every child, spawn with a clean signal state,
and sweep whatever is left of the process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from roled import log
from roled.model import Ended

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import psutil

# prctl(2): PR_SET_CHILD_SUBREAPER, so orphans of programs are re-parented to roled, not to the
# real PID 1, when roled itself is not PID 1 (docker run --init, a shell, a test).
PR_SET_CHILD_SUBREAPER = 36
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What roled's loop needs of a process: its parent and the CPU it has used."""

    ppid: int
    cpu_seconds: float


def proc_stat(pid: int) -> ProcStat | None:
    """A live (or not yet reaped) process's parent and user + system CPU, from /proc/PID/stat;
    None when it is gone or unreadable.

    Read directly, not through psutil, which PID 1 loads only for the final sweep: its import
    (with subprocess) would add 1-2 MiB to roled's steady-state memory.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            line = file.read()
        # The command name (field 2) is in parentheses and may itself hold ") ": the fields
        # that follow start after the last one. proc(5) numbers them from 1.
        fields = line[line.rindex(b")") + 2 :].split()
        ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ProcStat(ppid, (utime + stime) / _CLOCK_TICKS)


def become_subreaper() -> None:
    """Adopt orphaned descendants (a no-op for PID 1, which adopts them anyway)."""
    if os.getpid() == 1:
        return
    import ctypes  # noqa: PLC0415 (PID 1 never needs it: it stays out of its memory)

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")


def release_memory() -> None:
    """Give the C heap's free pages back to the kernel (glibc's malloc_trim(3)) when roled's
    modules were compiled at start-up, for want of cached bytecode (PYTHONDONTWRITEBYTECODE=1,
    a read-only install without it).

    Compiling leaves about 1 MiB free in the heap that glibc would keep for the whole run. With
    bytecode there is nothing to release, and ctypes would cost PID 1 more than it frees.
    A C library without malloc_trim (musl) keeps the pages.
    """
    cached = globals().get("__cached__")
    if cached is not None and os.path.exists(cached):
        return
    import ctypes  # noqa: PLC0415 (see become_subreaper)

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def spawn(argv: Sequence[str], env: dict[str, str], stdio: Mapping[int, int] | None = None) -> int:
    """Start a child in its own process group, with default signal mask and dispositions.

    roled's handlers would be reset by exec anyway; ignored signals would not, and the mask is
    inherited, so both are reset explicitly (as tini does before exec). ``stdio`` maps the
    child's fds 0-2 to fds of roled's; those not given are roled's own.
    """
    resettable = [signum for signum in signal.valid_signals() if signum not in _UNCATCHABLE]
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in (stdio or {}).items()]
    return os.posix_spawn(
        argv[0],
        list(argv),
        env,
        file_actions=actions,
        setpgroup=0,
        setsigmask=(),
        setsigdef=resettable,
    )


def reap_children(watched: int, others: Callable[[int, int], object] | None = None) -> Ended | None:
    """Reap every child that has exited; return the watched child's end if it was among them.
    ``others`` is given each other child's pid and status (a health check's command).

    ECHILD (no children left) is expected; anything else is a bug and propagates.
    """
    result: Ended | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return result
        if pid == 0:
            return result
        if pid == watched:
            result = Ended.from_status(status)
        elif others is not None:
            others(pid, status)


def descendants() -> list[psutil.Process]:
    # psutil is imported by the sweep's functions only: the sweep runs at the end, and the
    # import (with subprocess and threading) would otherwise weigh on PID 1 for the whole run.
    import psutil  # noqa: PLC0415

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def send(processes: Sequence[psutil.Process], signum: int) -> None:
    """Signal each process; one that is already gone (ESRCH) is not an error."""
    import psutil  # noqa: PLC0415 (see descendants)

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


def kill_tree(watched: int = -1, clock: Callable[[], float] = time.monotonic) -> Ended | None:
    """SIGKILL every process in roled's tree at once and reap them; the watched child's end
    if it was reaped here."""
    return _kill_until_gone(clock, watched)


def stop_child(pid: int, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
    """SIGTERM one child, SIGKILL it after grace seconds, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = clock() + grace
    while clock() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _kill_until_gone(clock: Callable[[], float], watched: int = -1) -> Ended | None:
    # A process may fork while its siblings are being killed: repeat until nothing is left.
    ended: Ended | None = None
    deadline = clock() + 5.0
    while clock() < deadline:
        left = _alive(descendants())
        if not left:
            break
        send(left, signal.SIGKILL)
        time.sleep(0.01)
        ended = reap_children(watched) or ended
    return reap_children(watched) or ended


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    import psutil  # noqa: PLC0415 (see descendants)

    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _labels(processes: Sequence[psutil.Process]) -> list[str]:
    import psutil  # noqa: PLC0415 (see descendants)

    labels = []
    for process in processes:
        try:
            labels.append(f"{process.name()}[{process.pid}]")
        except psutil.NoSuchProcess:
            continue
    return labels
