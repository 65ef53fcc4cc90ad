"""Test program: optionally waits, writes a line to stderr, and exits with the code given.

``exit_with.py CODE [DELAY [NOISE]]``: with NOISE, that many long lines go to stderr first, so a
test can check what is kept of a huge stderr.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    code = int(sys.argv[1])
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    noise = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    time.sleep(delay)
    for number in range(noise):
        print(f"noise {number:06d} " + "x" * 500, file=sys.stderr)
    print(f"exit_with: exiting with {code}", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
