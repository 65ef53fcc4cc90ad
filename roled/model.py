"""What the planner hands PID 1: the assembled config and the facts roled needs to run it.

Plain data only. PID 1 imports this, never supervisor's loader: it stays resident for the
container's whole life, and the loader (with what it imports) costs it more than 10 MiB.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from roled.policy import ProgramConfig

LISTENER = "roled_events"
CHANNELS = ("stdout", "stderr")


def escape(text: str) -> str:
    """Make text literal for supervisor's %-expansion."""
    return text.replace("%", "%%")


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
    # The name in its [program:x] or [fcgi-program:x] section (a group or numprocs renames the
    # process, not the program).
    program: str = ""
    # roled's own keys (``roled_*``) as parsed, common.conf's defaults applied. Left out of
    # the hash (a dict has none), so a Process stays usable as a key.
    roled: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Stream:
    """One FIFO: whose output it carries (``label`` is the log's program column) and which."""

    label: str
    namespec: str
    channel: str
    path: Path


@dataclass(frozen=True, slots=True)
class RoledKeys:
    """roled's own keys of one program section: as written (shown by ``roled check --print``)
    and as parsed (what the features use)."""

    raw: Mapping[str, str]
    values: Mapping[str, object]


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
    # By section name: roled's keys, kept out of ``text`` and ``sections`` (supervisord's).
    roled_keys: Mapping[str, RoledKeys] = field(default_factory=dict)

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
