"""Test program: optionally waits, writes a line to stderr, and exits with the code given."""

from __future__ import annotations

import sys
import time


def main() -> None:
    code = int(sys.argv[1])
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    time.sleep(delay)
    print(f"exit_with: exiting with {code}", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
