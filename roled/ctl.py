"""``roled ctl``: supervisorctl against the running instance, with its socket and credentials.

supervisorctl runs in this process, so the password never appears in a process list. The few
commands that would break what roled promises are refused, in one line that says what to do,
and ``shutdown`` is roled's own clean stop.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roled.errors import RoledError
from roled.policy import EXIT_USAGE
from roled.runtime import Instance, find_instance


def refusal(command: str) -> str | None:
    """Why roled refuses a supervisorctl command, or None when it passes through."""
    if command == "reload":
        # supervisord's restart re-execs it and restarts every program behind roled's back,
        # and roled stops checking that it still answers (issue: liveness lost after reload).
        return (
            "roled ctl reload is refused: supervisord would restart every program behind "
            "roled's back; to apply a changed config, send roled SIGHUP "
            "(docker kill -s HUP <container>, or kill -HUP <roled's pid>)"
        )
    if command == "clear":
        # clear truncates a program's log file, which is roled's FIFO: its output would be cut
        # off from the container log from then on.
        return (
            "roled ctl clear is refused: programs' output goes through roled to the container "
            "log, and supervisord keeps no log file to clear"
        )
    return None


def stop_roled(instance: Instance) -> str:
    """``shutdown``: roled's own clean stop (SIGTERM), not supervisord's, which roled would see
    as supervisord ending on its own (exit 3)."""
    os.kill(instance.pid, signal.SIGTERM)
    return f"roled: stopping (sent SIGTERM to roled, pid {instance.pid})"


class _Refusals:
    """A supervisorctl plugin asked before supervisorctl's own commands, in the shell too."""

    def __init__(self, controller: Any, instance: Instance) -> None:
        self.ctl = controller
        self.instance = instance

    def _refuse(self, command: str) -> None:
        self.ctl.output(f"roled: error: {refusal(command)}")
        self.ctl.exitstatus = EXIT_USAGE

    def do_reload(self, _arg: str) -> None:
        self._refuse("reload")

    def do_clear(self, _arg: str) -> None:
        self._refuse("clear")

    def do_shutdown(self, _arg: str) -> None:
        # supervisorctl asks too: a slip of the keyboard would stop the container.
        if self.ctl.options.interactive and not _confirm("Really stop roled y/N? "):
            return
        self.ctl.output(stop_roled(self.instance))


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower().startswith("y")
    except EOFError:
        return False


def ctl(runtime_dir: Path, args: Sequence[str]) -> int:
    """Run one supervisorctl command (or its shell, without one); supervisorctl's exit code."""
    why = refusal(args[0]) if args else None
    if why is not None:
        raise RoledError(why)
    # Imported here, not at the top: supervisorctl pulls in xmlrpc.client and http.client,
    # megabytes that no other command should carry.
    from supervisor import supervisorctl  # noqa: PLC0415
    from supervisor.options import ClientOptions  # noqa: PLC0415

    instance = find_instance(runtime_dir)
    if args and args[0] == "shutdown":
        print(stop_roled(instance))
        return 0
    argv = ["-s", f"unix://{instance.socket}"]
    if instance.username:
        argv += ["-u", instance.username]
    if instance.password:
        argv += ["-p", instance.password]
    options = ClientOptions()
    # Never look for a config file: the user's supervisord.conf has no [supervisorctl] section,
    # and supervisorctl would stop with a usage error over it.
    options.searchpaths = []
    # Asked before supervisorctl's own commands, so the shell refuses them as well.
    options.plugin_factories.insert(0, ("roled", _Refusals, {"instance": instance}))
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
