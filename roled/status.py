"""``roled status``: a truthful probe for ``docker exec`` and Kubernetes exec probes, no port.

It runs every few seconds in every pod, so it is a thin client: it finds the running roled
through its runtime directory and asks it over roled's own socket; roled reads supervisord
afresh and judges (``roled.statusview``). It never waits longer than its timeout, even for a
roled or a supervisord that hangs. Only the standard library's cheapest parts are imported.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence

from roled.errors import EXIT_UNREACHABLE, EXIT_USAGE, RoledError
from roled.locate import (
    DEFAULT_LEVEL,
    DEFAULT_PROBE_TIMEOUT,
    LEVELS,
    REQUESTS,
    NotRunning,
    check_alive,
    check_ours,
    locate_runtime_dir,
    read_instance_document,
    read_roled_section,
)

_VALUE_OPTIONS = {
    "-c": "config",
    "--configuration": "config",
    "--runtime-dir": "runtime_dir",
    "--timeout": "timeout",
    "--level": "level",
}
# The ones the command line also takes before the command (``roled -c FILE status``).
_GLOBAL_OPTIONS = {"-c", "--configuration", "--runtime-dir"}


def fast(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """``roled status`` without the full command line's machinery; None when ``argv`` is not a
    plain status call (help, a mistake, another command), which the full parser then answers
    with its own words."""
    options = _parse(argv)
    if options is None:
        return None
    flags = {"config": options.get("config"), "runtime_dir": options.get("runtime_dir")}
    timeout = float(options.get("timeout") or DEFAULT_PROBE_TIMEOUT)
    try:
        runtime_dir = locate_runtime_dir(flags, environ, read_roled_section)
        return status(str(runtime_dir), timeout, "json" in options, options["level"])
    except RoledError as exc:
        print(f"roled: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE


def _parse(argv: Sequence[str]) -> dict[str, str] | None:
    options: dict[str, str] = {}
    words = list(argv)
    seen_command = False
    while words:
        word = words.pop(0)
        name, equals, value = word.partition("=")
        if word == "status" and not seen_command:
            seen_command = True
        elif word == "--json" and seen_command:
            options["json"] = ""
        elif name in _VALUE_OPTIONS and (seen_command or name in _GLOBAL_OPTIONS):
            if not equals:
                if not words:
                    return None
                value = words.pop(0)
            options[_VALUE_OPTIONS[name]] = value
        else:
            return None
    if not seen_command or not _positive(options.get("timeout", "1")):
        return None
    if options.setdefault("level", DEFAULT_LEVEL) not in LEVELS:
        return None
    return options


def _positive(value: str) -> bool:
    try:
        seconds = float(value)
    except ValueError:
        return False
    return math.isfinite(seconds) and seconds > 0


def status(runtime_dir: str, timeout: float, as_json: bool, level: str = DEFAULT_LEVEL) -> int:
    """Print every program's state; 0 when all are fine at ``level``, 1 when not, 3 when
    nobody answers."""
    deadline = time.monotonic() + timeout
    try:
        check_ours(runtime_dir)
        request = {"op": "status", "timeout": timeout, "json": as_json, "level": level}
        reply = _ask(runtime_dir, request, deadline)
    except NotRunning as exc:
        return _unreachable(str(exc), as_json)
    code, out, why = reply.get("code"), reply.get("out"), reply.get("error")
    if isinstance(why, str):
        # roled answered, supervisord did not.
        return _unreachable(why, as_json)
    if not isinstance(code, int) or not isinstance(out, str):
        return _unreachable(f"{runtime_dir}: roled's answer makes no sense", as_json)
    sys.stdout.write(out)
    return code


def _ask(runtime_dir: str, request: dict[str, object], deadline: float) -> dict[str, object]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    data = bytearray()
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.connect(os.path.join(runtime_dir, REQUESTS))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            # No one listens: starting, stopping, or killed with its directory left behind.
            document = read_instance_document(runtime_dir)
            pid = document.get("pid")
            if isinstance(pid, int):
                check_alive(runtime_dir, pid)
            raise NotRunning(f"{runtime_dir}: no roled is running here ({exc.strerror})") from exc
        sock.sendall(json.dumps(request).encode() + b"\n")
        while chunk := sock.recv(65536):
            data += chunk
            sock.settimeout(max(0.001, deadline - time.monotonic()))
    except TimeoutError as exc:
        raise NotRunning(f"roled did not answer within {request['timeout']:g}s") from exc
    except OSError as exc:
        raise NotRunning(f"{runtime_dir}: cannot ask roled: {exc.strerror or exc}") from exc
    finally:
        sock.close()
    head, _, body = bytes(data).partition(b"\n")
    try:
        answer, reply = json.loads(head), json.loads(body)
    except ValueError as exc:
        raise NotRunning(f"{runtime_dir}: roled's answer makes no sense") from exc
    if not isinstance(answer, dict) or answer.get("status") != "ok" or not isinstance(reply, dict):
        message = answer.get("message") if isinstance(answer, dict) else None
        raise NotRunning(f"{runtime_dir}: roled refused: {message or 'no answer'}")
    return reply


def _unreachable(why: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, "code": EXIT_UNREACHABLE, "error": why}, indent=2))
    print(f"roled: error: cannot reach roled: {why}", file=sys.stderr)
    return EXIT_UNREACHABLE
