"""Test program: forks COUNT children that each wait for a signal, prints a ready line, waits.

On SIGTERM the parent exits alone: its children become orphans that roled must clean up.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    count = int(sys.argv[1])
    for _ in range(count):
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                signal.pause()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os._exit(0))
    print(f"ready {count}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
