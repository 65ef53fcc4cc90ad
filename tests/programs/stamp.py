"""Test program: appends ``MONOTONIC NAME EVENT`` lines to a shared file when it starts, when it
ends, and when a stop signal arrives, so a test reads the order of starts and stops from the
programs' own output.

``stamp.py FILE NAME [--exit CODE] [--delay SECONDS] [--listen PORT]``: with ``--exit`` it exits
with CODE after the delay; with ``--listen`` it accepts connections on 127.0.0.1:PORT after the
delay; otherwise it runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time


def stamp(path: str, name: str, event: str) -> None:
    # One write with O_APPEND: lines from several programs never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{time.monotonic():.6f} {name} {event}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("name")
    parser.add_argument("--exit", type=int, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--listen", type=int, default=None)
    args = parser.parse_args()

    def stop(signum: int, _frame: object) -> None:
        stamp(args.file, args.name, signal.Signals(signum).name)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    stamp(args.file, args.name, "start")
    time.sleep(args.delay)
    if args.exit is not None:
        stamp(args.file, args.name, f"exit {args.exit}")
        os._exit(args.exit)
    if args.listen is not None:
        server = socket.create_server(("127.0.0.1", args.listen))
        stamp(args.file, args.name, "listening")
        while True:
            connection, _ = server.accept()
            connection.close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
