"""What the planner hands PID 1: the assembled config and the facts roled needs to run it.

Plain data only. PID 1 imports this, never supervisor's loader: it stays resident for the
container's whole life, and the loader (with what it imports) costs it more than 10 MiB.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

LISTENER = "roled_events"
CHANNELS = ("stdout", "stderr")
# supervisor's %-expansion: %% or %(name)s, with an optional format.
FORMAT_TOKEN = re.compile(r"%%|%\((?P<name>[^)]*)\)(?P<spec>[-#0 +\d.]*[a-zA-Z])?")


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """What supervisord was told about a program that matters to the policy and the probe."""

    autostart: bool = True
    autorestart: str = "unexpected"
    exitcodes: tuple[int, ...] = (0,)

    def expects(self, exitstatus: int) -> bool:
        return exitstatus in self.exitcodes

    def restarts_after(self, expected: bool) -> bool:
        """Whether supervisord starts the program again after an exit like this one."""
        return self.autorestart == "true" or (self.autorestart == "unexpected" and not expected)


def namespec(group: str, name: str) -> str:
    """supervisor's short name: ``web`` for a one-process program, ``group:name`` otherwise."""
    return name if group == name else f"{group}:{name}"


def escape(text: str) -> str:
    """Make text literal for supervisor's %-expansion."""
    return text.replace("%", "%%")


def with_here(value: str, folder: Path) -> str:
    """A config value with ``%(here)s`` made the folder of the file it was written in."""
    here = escape(str(folder))
    return FORMAT_TOKEN.sub(
        lambda m: here if m.group(0) == "%(here)s" else m.group(0),
        value,
    )


@dataclass(frozen=True, slots=True)
class Section:
    """One INI section and the file it was written in."""

    name: str
    options: dict[str, str]
    source: Path


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the configuration lives: the main config, and common.conf and roles beside it."""

    main: Path
    common: Path | None
    roles_dir: Path | None


@dataclass(frozen=True, slots=True)
class Control:
    """How roled reaches supervisord's XML-RPC interface."""

    socket: Path
    username: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class Runtime:
    """The runtime directory's files, and how supervisord starts roled's listener."""

    directory: Path
    password: str
    listener_command: tuple[str, ...] = (sys.executable, "-m", "roled.listener")

    @property
    def socket(self) -> Path:
        return self.directory / "supervisor.sock"

    @property
    def events(self) -> Path:
        return self.directory / "events"

    @property
    def config(self) -> Path:
        return self.directory / "supervisord.conf"

    @property
    def pidfile(self) -> Path:
        return self.directory / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def supervisord_log(self) -> Path:
        """The FIFO supervisord writes its own log into, for roled to pass on to stderr."""
        return self.logs / "supervisord.log"

    def owns(self, value: str) -> bool:
        """Whether a config value is a path roled made in its log folder."""
        folder = escape(str(self.logs))
        return value.startswith((folder + "/", escape(folder) + "/"))


@dataclass(frozen=True, slots=True)
class Process:
    """One process supervisord will run, as its loader sees it."""

    namespec: str
    group: str
    priority: int
    stopwaitsecs: int
    config: ProgramConfig = field(default_factory=ProgramConfig)
    redirect_stderr: bool = False


@dataclass(frozen=True, slots=True)
class Stream:
    """One FIFO: whose output it carries (``label`` is the log's program column) and which."""

    label: str
    namespec: str
    channel: str
    path: Path


@dataclass(frozen=True, slots=True)
class Assembly:
    """The assembled supervisord config and what roled needs to run it."""

    text: str
    sections: tuple[Section, ...]
    control: Control
    programs: tuple[str, ...]
    warnings: tuple[str, ...]
    processes: tuple[Process, ...] = ()
    streams: tuple[Stream, ...] = ()

    def configs(self) -> dict[str, ProgramConfig]:
        return {process.namespec: process.config for process in self.processes}


def stop_levels(processes: Iterable[Process]) -> list[list[Process]]:
    """Processes grouped by priority, highest number first: the order supervisord stops them."""
    levels: dict[int, list[Process]] = {}
    for process in processes:
        levels.setdefault(process.priority, []).append(process)
    return [levels[priority] for priority in sorted(levels, reverse=True)]


def worst_stop_seconds(processes: Iterable[Process]) -> int:
    """How long a stop may take: each level waits for its slowest process, levels in turn."""
    return sum(max(process.stopwaitsecs for process in level) for level in stop_levels(processes))
