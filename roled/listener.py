"""roled's event listener, run by supervisord: forwards each event as one line into roled's FIFO.

It imports nothing but the standard library so it starts in milliseconds. Each line is written
with one write() of less than PIPE_BUF bytes, so it arrives whole.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import BinaryIO

# POSIX guarantees writes of up to this many bytes to a FIFO are not interleaved.
PIPE_BUF = 512


def forward(stdin: BinaryIO, stdout: BinaryIO, fifo: int) -> None:
    """Speak supervisor's listener protocol until stdin closes."""
    # The pid lets roled tell whether the listener supervisord runs is one it has heard from.
    os.write(fifo, b"LISTENER_READY pid:%d\n" % os.getpid())
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return
        fields = dict(token.split(b":", 1) for token in header.split() if b":" in token)
        payload = stdin.read(int(fields.get(b"len", b"0")))
        line = fields.get(b"eventname", b"UNKNOWN") + b" " + b" ".join(payload.split()) + b"\n"
        if len(line) > PIPE_BUF:
            line = line[: PIPE_BUF - 1] + b"\n"
        os.write(fifo, line)
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


def _stop(_signum: int, _frame: object) -> None:
    # An exit status in exitcodes: supervisord logs the stop as INFO, not as a WARN.
    raise SystemExit(0)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        fifo = os.open(sys.argv[1], os.O_WRONLY)
    except OSError as exc:
        # The runtime directory is gone; roled still polls supervisord over XML-RPC. Keep
        # answering supervisord so it neither blocks nor restarts this listener in a loop.
        print(f"roled: WARNING event listener cannot reach roled: {exc}", file=sys.stderr)
        fifo = os.open(os.devnull, os.O_WRONLY)
    try:
        forward(sys.stdin.buffer, sys.stdout.buffer, fifo)
    except BrokenPipeError:
        # roled is gone: there is nobody left to tell.
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
