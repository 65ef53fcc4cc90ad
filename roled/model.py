"""What the planner hands PID 1: the assembled config and the facts roled needs to run it.

Plain data only. PID 1 imports this, never supervisor's loader: it stays resident for the
container's whole life, and the loader (with what it imports) costs it more than 10 MiB.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from roled.locate import REQUESTS, escape

LISTENER = "roled_events"
# NOTIFY_SOCKET of programs with a notify check (roled_ready=notify, roled_alive=notify).
NOTIFY = "notify"
CHANNELS = ("stdout", "stderr")


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """What supervisord was told about a program that matters to the policy and the probe."""

    autostart: bool = True
    autorestart: str = "unexpected"
    exitcodes: tuple[int, ...] = (0,)
    startsecs: int = 1

    def expects(self, exitstatus: int) -> bool:
        return exitstatus in self.exitcodes

    def state_when_started(self) -> ProcessState:
        """The state supervisord's ``startProcess`` leaves a process in when it accepts the
        start: it moves a process with ``startsecs=0`` to RUNNING before it answers (a start
        it refuses is a fault). A process that died at once goes on from there, and its
        events say so."""
        return ProcessState.RUNNING if self.startsecs == 0 else ProcessState.STARTING

    def presumed(self, state: ProcessState) -> ProcessState:
        """The state a process read in ``state`` counts in: with ``startsecs=0`` STARTING is
        RUNNING at supervisord's next turn whatever happens (even an exit goes through
        RUNNING), and what depends on it need not wait for that event."""
        return self.state_when_started() if state == ProcessState.STARTING else state

    def restarts_after(self, expected: bool) -> bool:
        """Whether supervisord starts the program again after an exit like this one."""
        return self.autorestart == "true" or (self.autorestart == "unexpected" and not expected)


def namespec(group: str, name: str) -> str:
    """supervisor's short name: ``web`` for a one-process program, ``group:name`` otherwise."""
    return name if group == name else f"{group}:{name}"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(frozen=True, slots=True)
class Ended:
    """How a child ended: its exit code, or the signal that killed it."""

    code: int | None
    signum: int | None

    @classmethod
    def from_status(cls, status: int) -> Ended:
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.waitstatus_to_exitcode(status), None)

    def describe(self) -> str:
        if self.signum is not None:
            return f"killed by {signal_name(self.signum)}"
        return f"exit status {self.code}"


class ProcessState(str, enum.Enum):
    """A process's state as supervisord names it (supervisor.states.ProcessStates).

    A str enum: it compares equal to supervisord's own state names, which arrive as text in
    events and replies, and is turned into a member once, where they arrive.
    """

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, name: str) -> ProcessState:
        """supervisord's name for a state; anything else is UNKNOWN."""
        try:
            return cls(name)
        except ValueError:
            return cls.UNKNOWN

    def __str__(self) -> str:
        return self.value


# Down: not running and not about to be (supervisord may still start it again).
DOWN = frozenset(
    {ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL, ProcessState.UNKNOWN}
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
    # supervisord runs as another user (``[supervisord] user=``): what it creates itself after
    # dropping privileges (its socket, its pidfile) goes in the folder handed to that user.
    handed: bool = False

    @property
    def socket(self) -> Path:
        return (self.logs if self.handed else self.directory) / "supervisor.sock"

    @property
    def events(self) -> Path:
        return self.directory / "events"

    @property
    def requests(self) -> Path:
        """roled's own socket for ``roled ctl tail``, ``clear`` and ``maintail``."""
        return self.directory / REQUESTS

    @property
    def config(self) -> Path:
        return self.directory / "supervisord.conf"

    @property
    def notify(self) -> Path:
        return self.directory / NOTIFY

    @property
    def pidfile(self) -> Path:
        return (self.logs if self.handed else self.directory) / "supervisord.pid"

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
    # Where an exec check runs: the program's own environment=, directory= and user= (a uid).
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)
    directory: str | None = None
    user: str | None = None


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
    # Values read from env files and *_FILE files (masked in all of roled's output), the files
    # they came from (a change reloads), and by section name the environment= that
    # ``roled check --print`` shows, those values masked.
    secrets: frozenset[str] = frozenset()
    config_files: tuple[str, ...] = ()
    shown_environment: Mapping[str, str] = field(default_factory=dict)
    # (uid, gid) supervisord drops to (``[supervisord] user=``, roled as root), or None: roled
    # hands it the files it opens after dropping privileges.
    handed_to: tuple[int, int] | None = None

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
