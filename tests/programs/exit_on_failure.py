"""Test program: an image's exit-on-failure event listener.

On an unexpected exit or a FATAL it ends supervisord, as real images do: SIGTERM to its parent
(``kill $PPID``), or SIGQUIT to the pid in ``--pidfile`` (``kill -QUIT $(cat pidfile)``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pidfile")
    args = parser.parse_args()
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = sys.stdin.readline()
        if not header:
            return
        fields = dict(token.split(":", 1) for token in header.split())
        payload = sys.stdin.read(int(fields["len"]))
        failed = fields["eventname"] == "PROCESS_STATE_FATAL" or (
            fields["eventname"] == "PROCESS_STATE_EXITED" and "expected:0" in payload
        )
        if failed and args.pidfile:
            with open(args.pidfile) as file:
                os.kill(int(file.read()), signal.SIGQUIT)
        elif failed:
            os.kill(os.getppid(), signal.SIGTERM)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
