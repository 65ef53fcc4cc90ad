"""supervisord as roled's child: ``python -m roled.spawned ROLED_PID SUPERVISORD_ARGS``.

It asks the kernel for a SIGTERM when roled dies (prctl(2) PR_SET_PDEATHSIG), so supervisord
stops its programs instead of outliving a roled that was SIGKILLed, then runs supervisord in
this same process. The request survives exec but not a parent that died first, so that is
checked after it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parent = int(argv[0])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        print(
            f"roled: WARNING no parent-death signal: {os.strerror(ctypes.get_errno())}",
            file=sys.stderr,
        )
    if os.getppid() != parent:
        # roled is already gone: there is nobody to supervise for.
        return 0
    from supervisor import supervisord  # noqa: PLC0415 (only once the guard is in place)

    sys.argv = ["supervisord", *argv[1:]]
    supervisord.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
