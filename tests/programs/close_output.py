"""Test program: prints a ready line, closes its stdout and stderr, then runs until SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os._exit(0))
    print("ready", flush=True)
    # Closed, not redirected: supervisord sees end-of-file on both pipes while it still runs.
    sys.stdout.close()
    sys.stderr.close()
    os.close(1)
    os.close(2)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
