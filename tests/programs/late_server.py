"""Test program: an HTTP server on 127.0.0.1 that starts answering only after a delay.

``late_server.py PORT DELAY MARKER``: sleeps DELAY seconds, creates the file MARKER once it
listens, then answers every GET with 200.
"""

from __future__ import annotations

import http.server
import sys
import time
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port, delay, marker = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    time.sleep(delay)
    server = http.server.HTTPServer(("127.0.0.1", port), _Handler)
    marker.touch()
    print(f"late_server: listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
