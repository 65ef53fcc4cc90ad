"""roled's entry point (``roled`` and ``python -m roled``): signals first, then everything else.

The kernel drops a signal sent to a PID 1 that has no handler for it, so the handlers go in
before any import that can wait: from here on, a SIGTERM during start-up is a stop, not lost.
``roled status`` goes its own light way first: it runs every few seconds in every pod.
"""

from __future__ import annotations

import os
import sys

from roled.signals import SignalQueue


def main() -> int:
    if "status" in sys.argv[1:]:
        from roled.status import fast  # noqa: PLC0415 (only the probe's own few imports)

        code = fast(sys.argv[1:], os.environ)
        if code is not None:
            return code
    signals = SignalQueue()
    signals.install()
    from roled.cli import main as command  # noqa: PLC0415 (after the handlers, on purpose)

    return command(sys.argv[1:], signals)


if __name__ == "__main__":
    raise SystemExit(main())
