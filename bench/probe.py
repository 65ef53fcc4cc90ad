"""Independent event listener that the harness adds to every contender's config.

It appends one line per process state event, ``<monotonic> <EVENTNAME> <processname>``, to the
file named by argv[1]; it imports only the standard library so it starts fast under ``-I -S``.
"""

from __future__ import annotations

import os
import sys
import time


def parse_tokens(text: str) -> dict[str, str]:
    """Split supervisor's ``key:value key:value`` header or payload line into a dict."""
    return dict(token.split(":", 1) for token in text.split() if ":" in token)


def main() -> int:
    """Speak the eventlistener protocol on stdin/stdout until supervisord closes stdin."""
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return 0
        now = time.monotonic()
        header = parse_tokens(header_line.decode())
        payload = stdin.read(int(header.get("len", "0"))).decode()
        first_line = payload.split("\n", 1)[0]
        name = parse_tokens(first_line).get("processname", "-")
        os.write(fd, f"{now:.6f} {header.get('eventname', '-')} {name}\n".encode())
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
