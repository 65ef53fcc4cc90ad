"""Test program: its first argument is a label that starts each line it prints. It prints the
variables named on its command line (``NAME=value``, or for a name
after --hash only a digest of the value, so the test's output holds no secret), ``ready``, then
the name of every SIGHUP or SIGUSR1 it receives, until SIGTERM."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def main() -> None:
    label, hashed = sys.argv[1], False
    for name in sys.argv[2:]:
        if name == "--hash":
            hashed = True
            continue
        value = os.environ.get(name)
        shown = "<unset>" if value is None else digest(value) if hashed else value
        print(f"{label}: {name}={shown}", flush=True)

    def echo(signum: int, _frame: object) -> None:
        # os.write, not print: a signal that lands inside print() would make print reentrant.
        os.write(1, f"{label}: {signal.Signals(signum).name}\n".encode())

    for signum in (signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, echo)
    print(f"{label}: ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
