"""Test program: writes numbered lines to stdout until SIGTERM, then writes to COUNT_FILE how many
it wrote, and exits 0.

Each write carries whole lines and fewer than PIPE_BUF bytes, so it reaches the pipe whole or not
at all: the count is exactly the lines that left the program.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

PER_WRITE = 40


def line(number: int) -> str:
    """The text of one line, without its newline."""
    return f"counted {number:09d} " + "x" * 60


def main() -> None:
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    written = 0
    while not stop:
        numbers = range(written, written + PER_WRITE)
        data = "".join(line(number) + "\n" for number in numbers).encode()
        # A write interrupted by the signal wrote nothing, and is retried after the handler.
        os.write(1, data)
        written += PER_WRITE
    Path(sys.argv[1]).write_text(f"{written}\n")


if __name__ == "__main__":
    main()
