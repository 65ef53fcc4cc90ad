"""The per-program keys ``roled_env_files``, ``roled_watch`` and ``roled_on_change``, parsed.

Pure: ``(value, origin) -> parsed``; an error is a RoledError that starts with ``origin``.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from roled.errors import RoledError

# Where a key may stand: roled_env_files also in common.conf (defaults for every program).
PROGRAM_KEYS = ("roled_env_files", "roled_watch", "roled_on_change")
COMMON_KEYS = ("roled_env_files",)
_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True, slots=True)
class OnChange:
    """What roled does when a watched file changes: send ``signal`` (a name without SIG, as
    supervisord's signalProcess takes it), or restart the program when it is None."""

    signal: str | None = None

    def __str__(self) -> str:
        return "restart" if self.signal is None else self.signal


RESTART = OnChange()


def parse_env_files(value: str, origin: str) -> tuple[str, ...]:
    """``roled_env_files``: comma-separated absolute paths, in the order they apply. May be empty,
    so a program can clear what common.conf sets."""
    return _absolute_paths(value, origin)


def parse_watch(value: str, origin: str) -> tuple[str, ...]:
    """``roled_watch``: comma-separated absolute paths of files or folders, or globs; at least
    one."""
    paths = _absolute_paths(value, origin)
    if not paths:
        raise RoledError(f"{origin}: expected one or more comma-separated paths")
    return paths


def parse_on_change(value: str, origin: str) -> OnChange:
    """``roled_on_change``: ``restart`` (the default), or a signal name: HUP, SIGHUP, usr1..."""
    word = value.strip()
    if word.lower() == "restart":
        return RESTART
    name = word.upper().removeprefix("SIG")
    if not name or f"SIG{name}" not in signal.Signals.__members__:
        raise RoledError(
            f"{origin}: expected restart or a signal name such as HUP or USR1, got {word!r}"
        )
    return OnChange(name)


def is_glob(path: str) -> bool:
    return _MAGIC.search(path) is not None


def _absolute_paths(value: str, origin: str) -> tuple[str, ...]:
    paths = tuple(item.strip() for item in value.split(",") if item.strip())
    seen: set[str] = set()
    for path in paths:
        if not path.startswith("/"):
            raise RoledError(f"{origin}: {path!r} is not an absolute path")
        if path in seen:
            raise RoledError(f"{origin}: {path!r} is listed twice")
        seen.add(path)
    return paths
