"""Test program: speaks sd_notify over NOTIFY_SOCKET as a systemd service would.

``notifier.py DELAY INTERVAL STOP``: sends READY=1 after DELAY seconds, then WATCHDOG=1 every
INTERVAL seconds (with a STATUS= line roled ignores) until the file STOP exists.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path


def main() -> None:
    delay, interval, stop = float(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    address = os.environ["NOTIFY_SOCKET"]
    print(f"notifier: WATCHDOG_USEC={os.environ.get('WATCHDOG_USEC')}", flush=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    time.sleep(delay)
    sock.sendto(b"READY=1\nSTATUS=serving", address)
    while not stop.exists():
        sock.sendto(b"WATCHDOG=1", address)
        time.sleep(interval)
    print("notifier: keep-alives stopped", flush=True)
    time.sleep(1000)


if __name__ == "__main__":
    main()
