"""roled's own log lines on stderr: ``roled: LEVEL message``, in the container's log format.

While the log pump runs, lines go through it so they never cut into a program's line; before and
after, they are written straight to stderr.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from roled.logformat import Formatter
from roled.secrets import Secrets

Sink = Callable[[bytes], None]


class _Route:
    """Where roled's lines go and in which format; one per process, shared by its threads."""

    __slots__ = ("formatter", "lock", "minimum", "secrets", "sink")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.formatter = Formatter()
        self.sink: Sink | None = None
        self.minimum = 0
        self.secrets = Secrets()


_route = _Route()


def configure(formatter: Formatter) -> None:
    """Use this format for every line from now on."""
    _route.formatter = formatter


# supervisord's loglevel names, ranked against roled's own levels.
_RANKS = {"INFO": 20, "WARNING": 30, "ERROR": 40}
LOGLEVELS = {
    "blather": 0,
    "trace": 0,
    "debug": 10,
    "info": 20,
    "warn": 30,
    "warning": 30,
    "error": 40,
    "critical": 50,
}


def follow_loglevel(loglevel: str) -> None:
    """Drop roled's lines below supervisord's ``loglevel`` (an unknown name changes nothing)."""
    _route.minimum = LOGLEVELS.get(loglevel.strip().lower(), _route.minimum)


def hide(secrets: Secrets) -> None:
    """Mask these values (from env files and *_FILE files) too, in every line from now on."""
    _route.secrets = _route.secrets | secrets


def secrets() -> Secrets:
    return _route.secrets


def mask(text: str) -> str:
    """Text with every secret roled knows of masked: for what it writes other than lines."""
    return _route.secrets.mask(text)


def mask_bytes(data: bytes) -> bytes:
    """Output read from supervisord, secrets masked; bytes that are not UTF-8 pass unchanged."""
    if not _route.secrets:
        return data
    return mask(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def attach(sink: Sink | None) -> None:
    """Send lines to sink (the log pump), or straight to stderr again with None."""
    with _route.lock:
        _route.sink = sink


def line(text: str) -> None:
    """Write one line that starts with ``roled: ``; a closed or broken stderr never takes roled
    down."""
    data = _route.formatter.own_line(mask(text))
    with _route.lock:
        if _route.sink is not None:
            _route.sink(data)
            return
        try:
            while data:
                data = data[os.write(2, data) :]
        except OSError:
            pass


def log(level: str, message: str) -> None:
    if _RANKS.get(level, 0) >= _route.minimum:
        line(f"roled: {level} {message}")


def info(message: str) -> None:
    log("INFO", message)


def warning(message: str) -> None:
    log("WARNING", message)


def error(message: str) -> None:
    log("ERROR", message)
