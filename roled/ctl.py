"""``roled ctl``: supervisorctl against the running instance, with its socket and credentials.

supervisorctl runs in this process, so the password never appears in a process list.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from roled.runtime import find_instance


def ctl(runtime_dir: Path, args: Sequence[str]) -> int:
    """Run one supervisorctl command (or its shell, without one); supervisorctl's exit code."""
    # Imported here, not at the top: supervisorctl pulls in xmlrpc.client and http.client,
    # megabytes that the long-lived PID 1 importing the CLI should not carry.
    from supervisor import supervisorctl  # noqa: PLC0415
    from supervisor.options import ClientOptions  # noqa: PLC0415

    instance = find_instance(runtime_dir)
    argv = ["-s", f"unix://{instance.socket}"]
    if instance.username:
        argv += ["-u", instance.username]
    if instance.password:
        argv += ["-p", instance.password]
    options = ClientOptions()
    # Never look for a config file: the user's supervisord.conf has no [supervisorctl] section,
    # and supervisorctl would stop with a usage error over it.
    options.searchpaths = []
    try:
        supervisorctl.main(args=[*argv, *args], options=options)
    except SystemExit as exc:
        return _code(exc.code)
    finally:
        sys.stdout.flush()
    return 0


def _code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    # sys.exit("message"): supervisorctl printed nothing yet, so the message is the error.
    print(code, file=sys.stderr)
    return 1
