"""Test program: prints a ready line, then the name of every signal it receives, forever.

With --ignore SIG, that signal is still printed but does not end the program.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args()
    ignored = {signal.Signals[name] for name in args.ignore}

    def echo(signum: int, _frame: object) -> None:
        # os.write, not print: a signal that lands inside print() would make print reentrant.
        os.write(1, f"{signal.Signals(signum).name}\n".encode())
        if signum in (signal.SIGTERM, signal.SIGINT) and signum not in ignored:
            sys.exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, echo)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
