"""roled's own log lines on stderr: ``roled: LEVEL message``, in the container's log format.

While the log pump runs, lines go through it so they never cut into a program's line; before and
after, they are written straight to stderr.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from roled.logformat import Formatter

Sink = Callable[[bytes], None]


class _Route:
    """Where roled's lines go and in which format; one per process, shared by its threads."""

    __slots__ = ("formatter", "lock", "sink")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.formatter = Formatter()
        self.sink: Sink | None = None


_route = _Route()


def configure(formatter: Formatter) -> None:
    """Use this format for every line from now on."""
    _route.formatter = formatter


def attach(sink: Sink | None) -> None:
    """Send lines to sink (the log pump), or straight to stderr again with None."""
    with _route.lock:
        _route.sink = sink


def line(text: str) -> None:
    """Write one line that starts with ``roled: ``; a closed or broken stderr never takes roled
    down."""
    data = _route.formatter.own_line(text)
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
    line(f"roled: {level} {message}")


def info(message: str) -> None:
    log("INFO", message)


def warning(message: str) -> None:
    log("WARNING", message)


def error(message: str) -> None:
    log("ERROR", message)
