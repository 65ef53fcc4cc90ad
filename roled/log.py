"""roled's own log lines on stderr: ``roled: LEVEL message``."""

from __future__ import annotations

import sys


def log(level: str, message: str) -> None:
    """Write one line to stderr; a closed or broken stderr never takes roled down."""
    try:
        sys.stderr.write(f"roled: {level} {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def info(message: str) -> None:
    log("INFO", message)


def warning(message: str) -> None:
    log("WARNING", message)


def error(message: str) -> None:
    log("ERROR", message)
