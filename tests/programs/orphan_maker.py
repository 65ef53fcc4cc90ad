"""Test program: double-forks COUNT children that outlive it (orphans), then sleeps or exits.

Each orphan runs ``sleep SECONDS`` (a long-lived daemon) or exits at once (a zombie to reap),
and its pid is appended to PIDFILE so a test can check what became of it.
"""

from __future__ import annotations

import argparse
import os
import time


def orphan(seconds: float, pidfile: str | None) -> None:
    if os.fork() != 0:
        return
    # The middle process exits at once, so the grandchild is re-parented.
    if os.fork() != 0:
        os._exit(0)
    if pidfile:
        with open(pidfile, "a") as file:
            file.write(f"{os.getpid()}\n")
    if seconds > 0:
        os.execvp("sleep", ["sleep", str(seconds)])
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--pidfile")
    parser.add_argument("--then", choices=["sleep", "exit"], default="sleep")
    args = parser.parse_args()
    for _ in range(args.count):
        orphan(args.seconds, args.pidfile)
        # Reap the middle process so only the orphan is left.
        os.wait()
    print("orphans made", flush=True)
    if args.then == "sleep":
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
