"""``roled ctl``: supervisorctl against the running instance, with its socket and credentials.

supervisorctl runs in this process, so the password never appears in a process list. The few
commands that would break what roled promises are refused, in one line that says what to do,
and ``shutdown`` is roled's own clean stop.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roled.errors import EXIT_USAGE, RoledError
from roled.locate import REQUESTS
from roled.runtime import Instance, find_instance
from roled.tails import DEFAULT_BYTES, BadRequest, Request, parse_answer

# How long a tail may wait for roled to accept and answer (it answers from memory, at once).
CONNECT_TIMEOUT = 5.0
# An answer line is short; more is not roled.
MAX_ANSWER = 4096


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
    return None


def stop_roled(instance: Instance) -> str:
    """``shutdown``: roled's own clean stop (SIGTERM), not supervisord's, which roled would see
    as supervisord ending on its own (exit 3)."""
    os.kill(instance.pid, signal.SIGTERM)
    return f"roled: stopping (sent SIGTERM to roled, pid {instance.pid})"


class _Refusals:
    """A supervisorctl plugin asked before supervisorctl's own commands, in the shell too."""

    def __init__(self, controller: Any, instance: Instance, runtime_dir: Path) -> None:
        self.ctl = controller
        self.instance = instance
        self.runtime_dir = runtime_dir

    def _refuse(self, command: str) -> None:
        self.ctl.output(f"roled: error: {refusal(command)}")
        self.ctl.exitstatus = EXIT_USAGE

    def do_reload(self, _arg: str) -> None:
        self._refuse("reload")

    def do_tail(self, arg: str) -> None:
        self._locally(["tail", *arg.split()], "do_tail", arg)

    def do_maintail(self, arg: str) -> None:
        self._locally(["maintail", *arg.split()], "do_maintail", arg)

    def do_clear(self, arg: str) -> None:
        self._locally(["clear", *arg.split()], "do_clear", arg)

    def _locally(self, words: list[str], method: str, arg: str) -> None:
        """roled answers for what it carries; supervisorctl for the rest (files of their own)."""
        from supervisor.supervisorctl import DefaultControllerPlugin  # noqa: PLC0415

        try:
            code = serve_locally(self.runtime_dir, words)
        except RoledError as exc:
            self.ctl.output(f"roled: error: {exc}")
            self.ctl.exitstatus = EXIT_USAGE
            return
        if code is None:
            getattr(DefaultControllerPlugin(self.ctl), method)(arg)
        elif code:
            self.ctl.exitstatus = code

    def do_shutdown(self, _arg: str) -> None:
        # supervisorctl asks too: a slip of the keyboard would stop the container.
        if self.ctl.options.interactive and not _confirm("Really stop roled y/N? "):
            return
        self.ctl.output(stop_roled(self.instance))


# supervisorctl commands roled answers itself for the programs whose output it carries.
LOCAL = ("tail", "maintail", "clear")


def parse_local(args: Sequence[str]) -> list[Request]:
    """supervisorctl's ``tail [-f] [-N] NAME [stdout|stderr]``, ``maintail [-f] [-N]`` and
    ``clear NAME...|all`` as requests to roled."""
    command, words = args[0], list(args[1:])
    if command == "clear":
        if not words:
            raise RoledError("roled ctl clear: name a program, or all")
        return [Request("clear", name) for name in words]
    follow, count = False, DEFAULT_BYTES
    rest: list[str] = []
    for word in words:
        if word == "-f":
            follow = True
        elif word.startswith("-") and word[1:].isdigit():
            count = int(word[1:])
        else:
            rest.append(word)
    usage = (
        "roled ctl maintail [-f] [-N]"
        if command == "maintail"
        else "roled ctl tail [-f] [-N] PROGRAM [stdout|stderr]"
    )
    if command == "maintail":
        if rest:
            raise RoledError(f"usage: {usage}")
        return [Request("tail", "", "stderr", count, follow)]
    if not 1 <= len(rest) <= 2 or (len(rest) == 2 and rest[1] not in ("stdout", "stderr")):
        raise RoledError(f"usage: {usage}")
    channel = rest[1] if len(rest) == 2 else "stdout"
    return [Request("tail", rest[0], channel, count, follow)]


def serve_locally(runtime_dir: Path, args: Sequence[str]) -> int | None:
    """Answer tail, maintail or clear from roled's buffers; None when roled does not carry
    that output (supervisorctl answers then), else the exit code."""
    requests = parse_local(args)
    passed = [request for request in requests if not _ask_roled(runtime_dir, request)]
    if not passed:
        return 0
    if len(passed) < len(requests):
        # clear of several names: those roled does not carry go to supervisorctl one by one.
        raise RoledError(
            f"roled ctl clear: {', '.join(r.name for r in passed)}: not carried by roled; "
            "clear them on their own"
        )
    return None


def _ask_roled(runtime_dir: Path, request: Request) -> bool:
    """Send one request and copy its answer to stdout; False when it is not roled's."""
    path = runtime_dir / REQUESTS
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(str(path))
            sock.sendall(request.encode())
            reader = sock.makefile("rb", buffering=0)
            first = reader.readline(MAX_ANSWER)
        except OSError as exc:
            raise RoledError(f"{path}: roled does not answer: {exc.strerror or exc}") from exc
        try:
            reply = parse_answer(first)
        except BadRequest as exc:
            raise RoledError(str(exc)) from exc
        if reply.status == "pass":
            return False
        if reply.status != "ok":
            raise RoledError(reply.message)
        if request.op == "clear":
            print(f"{request.name}: cleared")
            return True
        if request.follow:
            print("==> Press Ctrl-C to exit <==", flush=True)
            # A follower waits for lines as long as it takes.
            sock.settimeout(None)
        _copy(sock)
    return True


def _copy(sock: socket.socket) -> None:
    out = sys.stdout.buffer
    try:
        while data := sock.recv(1 << 16):
            out.write(data)
            out.flush()
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise RoledError(f"roled ended the tail: {exc.strerror or exc}") from exc


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
    if args and args[0] in LOCAL:
        code = serve_locally(runtime_dir, args)
        if code is not None:
            return code
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
    options.plugin_factories.insert(
        0, ("roled", _Refusals, {"instance": instance, "runtime_dir": runtime_dir})
    )
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
