"""Signals taken into one loop: recorded by a handler that only appends, read by the main loop.

roled's entry point installs the queue before it imports anything else, so a stop signal sent
while roled starts is recorded, not lost (the kernel drops a signal sent to a PID 1 that has no
handler for it). This module therefore imports only what the interpreter has loaded anyway.
"""

from __future__ import annotations

import collections
import os
import signal
from collections.abc import Callable

# Synchronous faults belong to the interpreter; a Python handler for them would loop forever.
_FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT}
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
# Stop and reload requests: re-sent to itself by a command that does not run the loop.
REQUESTS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


def catchable_signals() -> list[int]:
    return sorted(
        int(signum)
        for signum in signal.valid_signals()
        if signum not in _UNCATCHABLE and signum not in _FAULTS
    )


class SignalQueue:
    """Every catchable signal recorded in arrival order and taken by the main loop.

    The handler only appends; the loop does the work. A wake-up pipe interrupts the loop's
    wait, and the queue (not the pipe, which may drop bytes in a storm) is the record.
    """

    def __init__(self) -> None:
        self._pending: collections.deque[int] = collections.deque()
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: dict[int, Handler] = {}
        self._previous_wakeup = -1

    @property
    def fileno(self) -> int:
        return self._read_fd

    def install(self) -> None:
        """Record every catchable signal from now on; what was there before is kept."""
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in catchable_signals():
            self._previous[signum] = signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: object) -> None:
        self._pending.append(signum)

    def take(self, *, drain: bool = True) -> list[int]:
        """The signals received since the last call, oldest first; ``drain`` empties the
        wake-up pipe too (a loop that saw it readable)."""
        if drain:
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
        """Put back the handlers and dispositions found at install (Python's own: SIGINT's
        KeyboardInterrupt, SIGPIPE and SIGXFSZ ignored), not the kernel's defaults."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def hand_back(self) -> None:
        """Uninstall, then re-send to this process the requests recorded meanwhile, so a
        short-lived command (status, check) stops on them as it would have without the queue."""
        requests = [signum for signum in self.take() if signum in REQUESTS]
        self.uninstall()
        for signum in dict.fromkeys(requests):
            os.kill(os.getpid(), signum)
