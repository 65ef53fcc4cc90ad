"""supervisord as roled's child: ``python -m roled.spawned ROLED_PID LOGS SUPERVISORD_ARGS``.

It asks the kernel for a SIGTERM when roled dies (prctl(2) PR_SET_PDEATHSIG), so supervisord
stops its programs instead of outliving a roled that was SIGKILLed, then runs supervisord in
this same process. The request survives exec but not a parent that died first, so that is
checked after it.

roled reads the FIFOs in LOGS that supervisord writes programs' output (and its own log) into.
Once roled is gone, a thread here reads them instead: opening a FIFO waits for a reader, and
supervisord opens a program's FIFO each time it starts the process. A start caught between
roled's death and supervisord's turn to handle the SIGTERM waited there for ever (Python
retries the open after the handler), and every other program kept running.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import stat
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
# Without pidfd_open (Linux before 5.3), how often the thread asks whether roled is still there.
_PARENT_POLL = 1.0


def main(argv: list[str]) -> int:
    parent, logs = int(argv[0]), argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        print(
            f"roled: WARNING no parent-death signal: {os.strerror(ctypes.get_errno())}",
            file=sys.stderr,
        )
    if os.getppid() != parent:
        # roled is already gone: there is nobody to supervise for.
        return 0
    threading.Thread(target=read_for, args=(parent, logs), daemon=True).start()
    from supervisor import supervisord  # noqa: PLC0415 (only once the guard is in place)

    sys.argv = ["supervisord", *argv[2:]]
    supervisord.main()
    return 0


def read_for(parent: int, logs: str) -> None:
    """Once ``parent`` is gone, read (and drop) what is written into the FIFOs in ``logs``."""
    _wait_for_end(parent)
    readers: dict[int, str] = {}
    poller = select.poll()
    try:
        with os.scandir(logs) as entries:
            fifos = [entry.path for entry in entries if stat.S_ISFIFO(entry.stat().st_mode)]
    except OSError:
        return
    for path in fifos:
        _add(poller, readers, path)
    while readers:
        for fd, _ in poller.poll():
            try:
                if os.read(fd, 65536):
                    continue
            except BlockingIOError:
                continue
            # Its last writer closed it: a new reader is not readable until another one comes.
            poller.unregister(fd)
            os.close(fd)
            _add(poller, readers, readers.pop(fd))


def _add(poller: select.poll, readers: dict[int, str], path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    readers[fd] = path
    poller.register(fd, select.POLLIN)


def _wait_for_end(pid: int) -> None:
    try:
        watch = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while os.getppid() == pid:
            time.sleep(_PARENT_POLL)
        return
    poller = select.poll()
    poller.register(watch, select.POLLIN)
    poller.poll()
    os.close(watch)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
