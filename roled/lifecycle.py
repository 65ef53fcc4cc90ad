"""A run's lifecycle as one pure state machine: events in, actions out.

It does no I/O and reads no clock: each call gets the time. The main loop (``roled.run``) waits,
turns what happened into events, feeds them here and carries out the actions returned, some of
which produce further events (an answer from supervisord, say). Phases:

    PLANNING -> STARTING -> RUNNING <-> RELOADING
        |          |           |            |
        +----------+-----------+------------+--> STOPPING -> KILLING -> DONE

A stop request in PLANNING ends the run at once; in any later phase it stops the programs one
priority level at a time, within the shutdown deadline, then supervisord.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field

from roled import checks, deps, jobs, levels
from roled.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_KILLED,
    EXIT_OK,
    EXIT_SUPERVISORD,
    EXIT_USAGE,
)
from roled.gate import Gate, Status, Step, Waiting
from roled.model import DOWN, Assembly, Ended, Process, ProcessState, signal_name, stop_levels
from roled.policy import (
    Failure,
    Notice,
    Policy,
    Rules,
    Transition,
    Verdict,
    blame_own_end,
    failure_of,
)
from roled.programs import ProgramTable

# How often to try supervisord's socket while it starts; cheap, and start-up is latency-bound.
CONNECT_INTERVAL = 0.02
# A single XML-RPC call never blocks the loop longer than this.
CALL_TIMEOUT = 1.0
# While roled waits on stops or a reload it asks supervisord this often: an event made when
# supervisord reaps a child is only dispatched on its next loop iteration, up to 1 s later,
# and each request both answers with the states and wakes that loop.
RESYNC_INTERVAL = 0.05
# A supervisord that is busy (using CPU) but not answering is given this many hang_timeouts
# before it counts as hung: it answers nothing while it spawns every program at start-up.
BUSY_LIMIT = 10
# supervisord's own start-up (loading Python, reading its config) can take seconds on a loaded
# machine, with no CPU seen between two connection attempts: a shorter hang timeout does not
# count before its first answer.
START_GRACE = 5.0
# A SIGINT this soon after the first stop signal is the same one delivered twice (GNU timeout,
# and process managers that signal a whole process group, send it to the process and to its
# group), not a person pressing Ctrl-C again.
REPEAT_INTERVAL = 0.5
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
# While a process waits for its dependencies, supervisord's loop is nudged this often: it
# dispatches a state's event only on its next turn, up to 1 s later, and a dependent must start
# within milliseconds of its condition. After GATE_BUSY_FOR seconds without a start, less often.
GATE_NUDGE = 0.01
GATE_NUDGE_IDLE = 0.25
GATE_BUSY_FOR = 5.0


class Phase(enum.Enum):
    PLANNING = "planning"
    STARTING = "starting"
    RUNNING = "running"
    RELOADING = "reloading"
    STOPPING = "stopping"
    KILLING = "killing"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Timings:
    """The settings that bound the run's waits, in seconds."""

    shutdown_timeout: float = 30.0
    hang_timeout: float = 10.0
    plan_timeout: float = 60.0


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    signum: int


@dataclass(frozen=True, slots=True)
class Planned:
    """The planner's result: the settings and the validated config."""

    timings: Timings
    rules: Rules
    assembly: Assembly


@dataclass(frozen=True, slots=True)
class PlanFailed:
    """The planner refused the config (a user mistake) or failed itself (``internal``)."""

    message: str
    internal: bool = False


@dataclass(frozen=True, slots=True)
class Seen:
    """One process as a full read of supervisord's table reports it, or as a start leaves it."""

    namespec: str
    group: str
    state: ProcessState
    exitstatus: int | None = None


@dataclass(frozen=True, slots=True)
class Synced:
    """supervisord answered with every process (roled's listener left out)."""

    processes: tuple[Seen, ...]


@dataclass(frozen=True, slots=True)
class Started:
    """Processes roled just started, in the state supervisord's start leaves them in."""

    processes: tuple[Seen, ...]


@dataclass(frozen=True, slots=True)
class Answered:
    """supervisord answered a cheap request; events are known to be flowing."""


@dataclass(frozen=True, slots=True)
class Silent:
    """supervisord did not answer a request in time, or answered nonsense; ``busy``: it used
    CPU since the last request (starting a thousand programs, say), so it is not hung."""

    why: str
    busy: bool = False


@dataclass(frozen=True, slots=True)
class Changed:
    """A process's transition, as roled's event listener forwarded it."""

    namespec: str
    group: str
    before: ProcessState
    after: ProcessState
    expected: bool | None = None
    exitstatus: int | None = None


@dataclass(frozen=True, slots=True)
class ListenerReady:
    """roled's (re)started listener announced itself: events before it may be missing."""

    pid: int


@dataclass(frozen=True, slots=True)
class SupervisordStopping:
    """supervisord began its own shutdown."""


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """supervisord re-read its config: the groups added, changed and removed."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReconfigureFailed:
    why: str


@dataclass(frozen=True, slots=True)
class StopFailed:
    """A level's stop request did not reach supervisord."""


@dataclass(frozen=True, slots=True)
class ShutdownFailed:
    """The shutdown request did not reach supervisord; a SIGTERM goes instead."""


@dataclass(frozen=True, slots=True)
class OutputHeld:
    """roled leaves program output unread (an output is full): supervisord may block on it."""

    held: bool


@dataclass(frozen=True, slots=True)
class ConfigFilesChanged:
    """Env files or ``*_FILE`` targets changed: a config change, reloaded as SIGHUP is."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WatchedChanged:
    """Files a program watches (``roled_watch``) changed: send it ``signal`` (a name without
    SIG), or restart it when None."""

    namespecs: tuple[str, ...]
    paths: tuple[str, ...]
    signal: str | None


@dataclass(frozen=True, slots=True)
class StartRefused:
    """supervisord refused to start a scheduled program roled asked it to start."""

    namespec: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProbeDone:
    """A health check's probe (``checks.RunProbe``) finished."""

    probe: int
    result: checks.Result


@dataclass(frozen=True, slots=True)
class Notified:
    """A process's tree sent READY=1 and/or WATCHDOG=1 over NOTIFY_SOCKET."""

    namespec: str
    ready: bool
    watchdog: bool


@dataclass(frozen=True, slots=True)
class Output:
    """Whole lines a process wrote (only carried for processes with a ``log:`` check)."""

    namespec: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (a wake-up with nothing else to report)."""


Event = (
    Signal
    | Planned
    | PlanFailed
    | Synced
    | Started
    | Answered
    | Silent
    | Changed
    | ListenerReady
    | SupervisordStopping
    | Reconfigured
    | ReconfigureFailed
    | StopFailed
    | ShutdownFailed
    | OutputHeld
    | ConfigFilesChanged
    | WatchedChanged
    | Ended
    | StartRefused
    | ProbeDone
    | Notified
    | Output
    | Tick
)


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunPlanner:
    """Start the planner (start-up, or a reload)."""


@dataclass(frozen=True, slots=True)
class KillPlanner:
    pass


@dataclass(frozen=True, slots=True)
class Launch:
    """Write the runtime files for this config and spawn supervisord."""

    assembly: Assembly


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask supervisord: every state (``full``), or only whether events still flow."""

    full: bool
    listener_pid: int


@dataclass(frozen=True, slots=True)
class Wake:
    """A cheap request that makes a shutting-down supervisord's loop turn."""


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Write this config and have supervisord re-read it (answered by Reconfigured)."""

    assembly: Assembly


@dataclass(frozen=True, slots=True)
class StopGroups:
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SwapGroups:
    """Remove these groups from supervisord, then add these (a reload's last step)."""

    remove: tuple[str, ...]
    add: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StopProcesses:
    namespecs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignalProcesses:
    """Send processes a signal through supervisord (its name, without SIG)."""

    namespecs: tuple[str, ...]
    signal: str


@dataclass(frozen=True, slots=True)
class StartProcesses:
    """Start these processes (scheduled programs that are due, programs restarted after a
    watched file changed); refusals come back as StartRefused."""

    namespecs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PublishJobs:
    """Let ``roled status`` see the scheduled programs' next and last runs."""

    statuses: tuple[jobs.JobStatus, ...]


@dataclass(frozen=True, slots=True)
class PublishHealth:
    """Let ``roled status`` answer its levels: readiness, checks, the exit policy."""

    published: levels.Published


@dataclass(frozen=True, slots=True)
class Nudge:
    """A cheap request that makes supervisord's loop turn, so the events it holds reach roled;
    its answer tells nothing."""


@dataclass(frozen=True, slots=True)
class PublishWaiting:
    """Let ``roled status`` show the processes held back and what each waits for."""

    waiting: tuple[Waiting, ...]


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop roled's listener and ask supervisord to shut down (SIGTERM if it cannot be asked)."""


@dataclass(frozen=True, slots=True)
class SignalSupervisord:
    signum: int


@dataclass(frozen=True, slots=True)
class KillAll:
    """SIGKILL supervisord and everything else in roled's tree."""


@dataclass(frozen=True, slots=True)
class DrainOutput:
    """Read program output whatever the state of roled's outputs (a stop must not block)."""


@dataclass(frozen=True, slots=True)
class Log:
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class Warn:
    """A forgiven failure: logged with what supervisord can tell about the program."""

    notice: Notice
    transition: Transition


@dataclass(frozen=True, slots=True)
class Blame:
    """Gather what supervisord can tell about the programs a failure verdict names."""

    verdict: Verdict
    transition: Transition


@dataclass(frozen=True, slots=True)
class Exit:
    """The run is over: clean up and exit with this verdict."""

    verdict: Verdict


Action = (
    RunPlanner
    | KillPlanner
    | Launch
    | Ask
    | Wake
    | Reconfigure
    | StopGroups
    | SwapGroups
    | StopProcesses
    | SignalProcesses
    | StartProcesses
    | PublishJobs
    | PublishHealth
    | checks.RunProbe
    | checks.CancelProbe
    | PublishWaiting
    | Nudge
    | Shutdown
    | SignalSupervisord
    | KillAll
    | DrainOutput
    | Log
    | Warn
    | Blame
    | Exit
)


@dataclass(slots=True)
class _Reload:
    """A reload under way: ``planning`` until the planner answers, then groups to stop, remove
    and add."""

    planning: bool = True
    assembly: Assembly | None = None
    remove: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    summary: str = ""
    applying: bool = False


@dataclass(slots=True)
class _Stop:
    """An ordered stop: the priority levels still to stop, and the processes of the first
    that were asked to stop."""

    levels: list[list[Process]] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)


class Lifecycle:
    """The run from planning to exit; see the module docstring."""

    def __init__(self, timings: Timings | None = None) -> None:
        self.phase = Phase.PLANNING
        self.timings = timings or Timings()
        self.assembly: Assembly | None = None
        self.processes: dict[str, Process] = {}
        self.table = ProgramTable()
        self.policy = Policy(Rules())
        self.verdict: Verdict | None = None
        self.connected = False
        self.synced = False
        self.listener_pid = 0
        self.in_sync = False
        # Processes whose state came from a read, ahead of their events still on the way.
        self.overtaken: set[str] = set()
        self.shutting_down = False
        self.output_held = False
        self.sent_sigterm = False
        self.reload: _Reload | None = None
        self.reload_pending = False
        self.stop: _Stop | None = None
        self.first_stop: tuple[int, float] | None = None
        self.plan_deadline: float | None = None
        self.stop_deadline: float | None = None
        self.next_call: float | None = None
        self.last_answer = 0.0
        # The last program failure, and when supervisord began to end without roled asking:
        # an image's event listener may end supervisord when a program fails.
        self.last_failure: Failure | None = None
        self.own_end_at: float | None = None
        # Processes roled stopped to restart them (a watched file changed): started again once
        # down, and not judged meanwhile.
        self.restarting: set[str] = set()
        # Scheduled programs are due by the wall clock; handle() is told it as an offset from
        # its monotonic now.
        self.scheduler = jobs.Scheduler(())
        self.wall_offset = 0.0
        # Health checks (roled_ready, roled_alive): the machine, each process's checks as
        # configured, what roled status was last shown, and what changed since.
        self.health = checks.Health()
        self.health_checks: dict[str, checks.ProgramChecks] = {}
        self.health_exits: dict[str, int | None] = {}
        self.ready_once = False
        # The process that kept ready from being reached when last asked (see _ready_reached).
        self.ready_blocker = ""
        self.published: levels.Published | None = None
        self.health_touched: set[str] = set()
        self.health_probes: dict[int, str] = {}
        # Issue 14: processes held back until their dependencies meet their conditions; those
        # the gate started and supervisord has not reported started yet; what status shows.
        self.graph = deps.Graph()
        self.gate = Gate(self.graph)
        self.gate_dependents: dict[str, set[str]] = {}
        self.gate_started: set[str] = set()
        self.gate_shown: tuple[Waiting, ...] = ()
        self.gate_nudge_at: float | None = None
        # While states read in one answer are taken in: the WAITING list is made after them.
        self.gate_quiet = False
        self.gate_moved_at = 0.0

    # -- entry points ----------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """The first actions of a run: plan, within the planner's deadline."""
        self.plan_deadline = now + self.timings.plan_timeout
        return [RunPlanner()]

    def next_wakeup(self) -> float | None:
        """When the loop must wake up even if nothing happens (None: only for events)."""
        times = [
            t
            for t in (
                self.plan_deadline,
                self.stop_deadline,
                self.next_call,
                self._jobs_due(),
                self._health_due(),
                self.gate_nudge_at,
            )
            if t is not None and self.phase != Phase.DONE
        ]
        return min(times, default=None)

    def handle(self, event: Event, now: float, wall: float | None = None) -> list[Action]:
        """The actions this event calls for at ``now``; ``wall``: the wall clock's time then
        (seconds since the epoch), which scheduled programs are due by."""
        if self.phase == Phase.DONE:
            return []
        if wall is not None:
            self.wall_offset = wall - now
        actions: list[Action] = []
        # The frequent events first: every wake-up is a Tick, and 100 checks a second are as
        # many ProbeDone.
        if isinstance(event, Tick):
            self._tick_jobs(now, actions)
            self._health_tick(now, actions)
            self._gate_tick(now, actions)
            self._on_tick(now, actions)
        elif isinstance(event, ProbeDone | Notified | Output):
            self._on_health(event, now, actions)
        elif isinstance(event, Signal):
            self._on_signal(event.signum, now, actions)
        elif isinstance(event, Planned):
            self._on_planned(event, now, actions)
        elif isinstance(event, PlanFailed):
            self._on_plan_failed(event, now, actions)
        elif isinstance(event, Synced):
            self._on_synced(event, now, actions)
        elif isinstance(event, Started):
            self._overtake(event.processes, now, actions)
            self._judge_done(actions, now)
        elif isinstance(event, Answered):
            self._answered(now)
        elif isinstance(event, Silent):
            self._on_silent(event, now, actions)
        elif isinstance(event, Changed):
            self._on_changed(event, now, actions)
        elif isinstance(event, ListenerReady):
            self._on_listener_ready(event, now)
        elif isinstance(event, SupervisordStopping):
            self.shutting_down = True
            if self.own_end_at is None:
                self.own_end_at = now
        elif isinstance(event, Reconfigured):
            self._on_reconfigured(event, now, actions)
        elif isinstance(event, ReconfigureFailed):
            actions.append(
                Log("ERROR", f"reload failed, still running the previous config: {event.why}")
            )
            self._end_reload(now, actions)
        elif isinstance(event, StopFailed):
            self.stop = None
            actions.append(Shutdown())
        elif isinstance(event, ShutdownFailed):
            self.sent_sigterm = True
            actions.append(SignalSupervisord(signal.SIGTERM))
        elif isinstance(event, OutputHeld):
            self.output_held = event.held
        elif isinstance(event, ConfigFilesChanged):
            self._on_config_files_changed(event, now, actions)
        elif isinstance(event, WatchedChanged):
            self._on_watched_changed(event, actions)
        elif isinstance(event, Ended):
            self._on_ended(event, now, actions)
            return actions
        elif isinstance(event, StartRefused) and event.namespec not in self.scheduler.programs:
            # A program restarted after a watched file changed, or one the gate released.
            self.gate_started.discard(event.namespec)
            actions.append(Log("WARNING", f"could not start {event.namespec!r}: {event.reason}"))
        elif isinstance(event, StartRefused):
            self._on_jobs(
                self.scheduler.start_failed(event.namespec, event.reason, self._wall(now)),
                now,
                actions,
            )
        self._advance(now, actions)
        self._health_publish(actions)
        return actions

    # -- signals ---------------------------------------------------------------------------

    def _on_signal(self, signum: int, now: float, actions: list[Action]) -> None:
        if signum in STOP_SIGNALS:
            self._on_stop_signal(signum, now, actions)
        elif signum == signal.SIGHUP:
            self._on_sighup(now, actions)
        elif signum == signal.SIGUSR2:
            if self.phase == Phase.PLANNING:
                actions.append(Log("INFO", "SIGUSR2 ignored: supervisord is not started yet"))
            else:
                actions.append(Log("INFO", "SIGUSR2: asking supervisord to reopen its logs"))
                actions.append(SignalSupervisord(signal.SIGUSR2))
        elif signum == signal.SIGUSR1:
            actions.append(
                Log("WARNING", "SIGUSR1 ignored: supervisord has no handler for it and would die")
            )

    def _on_stop_signal(self, signum: int, now: float, actions: list[Action]) -> None:
        name = signal_name(signum)
        if self.phase == Phase.PLANNING:
            actions.append(KillPlanner())
            self._exit(Verdict(EXIT_OK, f"stopped on request ({name}) while starting"), actions)
            return
        if self.first_stop is None:
            self.first_stop = (signum, now)
            self._stop(Verdict(EXIT_OK, f"stopped on request ({name})"), now, actions)
            return
        first, when = self.first_stop
        if signum != signal.SIGINT or now - when < REPEAT_INTERVAL:
            return
        if self.phase == Phase.KILLING:
            return
        what = "a second SIGINT" if first == signal.SIGINT else f"SIGINT after {signal_name(first)}"
        self._kill_now(f"{what} while stopping", actions)

    def _on_sighup(self, now: float, actions: list[Action]) -> None:
        if self.phase in {Phase.STOPPING, Phase.KILLING}:
            actions.append(Log("WARNING", "SIGHUP ignored: roled is stopping"))
        elif self.phase in {Phase.PLANNING, Phase.STARTING, Phase.RELOADING}:
            if not self.reload_pending:
                actions.append(
                    Log("INFO", f"SIGHUP while {self.phase.value}: reloading once that is done")
                )
            self.reload_pending = True
        else:
            self._begin_reload(now, actions)

    # -- watched files (roled_watch, env files, *_FILE targets) -------------------------------

    def _on_config_files_changed(
        self, event: ConfigFilesChanged, now: float, actions: list[Action]
    ) -> None:
        named = ", ".join(event.paths)
        if self.phase in {Phase.STOPPING, Phase.KILLING}:
            return
        if self.phase == Phase.RUNNING:
            actions.append(Log("INFO", f"{named} changed: reloading the config"))
            self._begin_reload(now, actions)
            return
        if not self.reload_pending:
            actions.append(
                Log(
                    "INFO", f"{named} changed while {self.phase.value}: reloading once that is done"
                )
            )
        self.reload_pending = True

    def _on_watched_changed(self, event: WatchedChanged, actions: list[Action]) -> None:
        if self.phase not in {Phase.RUNNING, Phase.RELOADING}:
            return
        up = self.table.up(event.namespecs)
        named = ", ".join(event.paths)
        if not up:
            return
        who = ", ".join(repr(namespec) for namespec in up)
        if event.signal is not None:
            actions.append(Log("INFO", f"{named} changed: sending SIG{event.signal} to {who}"))
            actions.append(SignalProcesses(up, event.signal))
            return
        actions.append(Log("INFO", f"{named} changed: restarting {who}"))
        self.restarting.update(up)
        actions.append(StopProcesses(up))

    def _restarted(self, transition: Transition, actions: list[Action]) -> bool:
        """Whether this transition is part of a restart roled asked for (not to be judged)."""
        if transition.program not in self.restarting:
            return False
        if transition.to_state in DOWN:
            self.restarting.discard(transition.program)
            actions.append(StartProcesses((transition.program,)))
        return True

    # -- planning --------------------------------------------------------------------------

    def _on_planned(self, event: Planned, now: float, actions: list[Action]) -> None:
        self.plan_deadline = None
        if self.phase == Phase.PLANNING:
            self.timings = event.timings
            self.policy = Policy(event.rules)
            self._adopt(event.assembly)
            self.scheduler = jobs.Scheduler(jobs.jobs_of(event.assembly.processes))
            self._health_follow(event.assembly, now, actions)
            self._gate_begin(event.assembly, actions)
            self.phase = Phase.STARTING
            self.last_answer = now
            self.next_call = now
            actions.append(Launch(event.assembly))
            return
        if self.reload is None or not self.reload.planning:
            return
        assert self.assembly is not None
        if event.assembly.text == self.assembly.text:
            # roled's keys are not in supervisord's text: a schedule may have changed alone.
            self._reschedule(event.assembly, now, actions)
            self._health_follow(event.assembly, now, actions)
            # roled's keys are not in supervisord's text either: dependencies may have changed.
            self._gate_reload(event.assembly, (), now, actions)
            actions.append(Log("INFO", "SIGHUP: the config has not changed"))
            self._end_reload(now, actions)
            return
        self.reload.planning = False
        self.reload.assembly = event.assembly
        actions.append(Reconfigure(event.assembly))

    def _on_plan_failed(self, event: PlanFailed, now: float, actions: list[Action]) -> None:
        self.plan_deadline = None
        if self.phase == Phase.PLANNING:
            code = EXIT_INTERNAL if event.internal else EXIT_USAGE
            self._exit(Verdict(code, event.message), actions)
            return
        if self.reload is not None and self.reload.planning:
            actions.append(
                Log("ERROR", f"reload refused, still running the previous config: {event.message}")
            )
            self._end_reload(now, actions)

    def _plan_overdue(self, now: float, actions: list[Action]) -> None:
        why = (
            f"reading the config did not finish within {self.timings.plan_timeout:g}s "
            "(ROLED_PLAN_TIMEOUT): is a config file on a hung file system?"
        )
        actions.append(KillPlanner())
        self._on_plan_failed(PlanFailed(why), now, actions)

    # -- reloading -------------------------------------------------------------------------

    def _begin_reload(self, now: float, actions: list[Action]) -> None:
        self.phase = Phase.RELOADING
        self.reload = _Reload()
        self.plan_deadline = now + self.timings.plan_timeout
        actions.append(RunPlanner())

    def _on_reconfigured(self, event: Reconfigured, now: float, actions: list[Action]) -> None:
        if self.reload is None or self.reload.assembly is None:
            return
        event = self._gate_kept(event, self.reload.assembly)
        self._adopt(self.reload.assembly, keep=True)
        for warning in self.reload.assembly.warnings:
            actions.append(Log("WARNING", warning))
        summary = ", ".join(
            f"{what} {', '.join(groups) or 'none'}"
            for what, groups in (
                ("added", event.added),
                ("changed", event.changed),
                ("removed", event.removed),
            )
        )
        actions.append(Log("INFO", f"SIGHUP: reloading: {summary}"))
        self.reload.remove = (*event.changed, *event.removed)
        self.reload.add = (*event.changed, *event.added)
        self.reload.summary = summary
        self.reload.applying = True
        if self.reload.remove:
            actions.append(StopGroups(self.reload.remove))
        self.next_call = now + RESYNC_INTERVAL

    def _advance_reload(self, now: float, actions: list[Action]) -> None:
        reload = self.reload
        assert reload is not None
        assert reload.assembly is not None
        if self.table.up(self.table.in_groups(reload.remove)):
            return
        actions.append(SwapGroups(reload.remove, reload.add))
        self.table.forget(self.table.in_groups(reload.remove))
        self._adopt(reload.assembly)
        self._reschedule(reload.assembly, now, actions)
        self._health_follow(reload.assembly, now, actions)
        self._gate_reload(reload.assembly, reload.add, now, actions)
        actions.append(Log("INFO", f"reloaded: {reload.summary}"))
        self._end_reload(now, actions)

    def _end_reload(self, now: float, actions: list[Action]) -> None:
        self.reload = None
        self.plan_deadline = None
        if self.phase != Phase.RELOADING:
            return
        self.phase = Phase.RUNNING
        self.next_call = now
        if self.reload_pending:
            self.reload_pending = False
            self._begin_reload(now, actions)

    def _reloading(self, namespec: str) -> bool:
        """Whether a reload stops this process (its group is changed or removed)."""
        return (
            self.reload is not None
            and self.reload.applying
            and self.table.group(namespec) in self.reload.remove
        )

    def _adopt(self, assembly: Assembly, *, keep: bool = False) -> None:
        """Run on this config from now on; ``keep``: its processes join the old ones until a
        reload has removed those."""
        self.assembly = assembly
        fresh = {process.namespec: process for process in assembly.processes}
        self.processes = {**self.processes, **fresh} if keep else fresh
        self.policy.configure(assembly.configs())
        if not keep:
            self.table.expect({n: p.group for n, p in fresh.items()})

    # -- what supervisord reports ------------------------------------------------------------

    def _answered(self, now: float) -> None:
        self.last_answer = now
        busy = self.phase in {Phase.STOPPING, Phase.KILLING} or (
            self.reload is not None and self.reload.applying
        )
        interval = RESYNC_INTERVAL if busy else self.timings.hang_timeout / 2
        self.next_call = now + max(interval, CONNECT_INTERVAL)

    def _on_listener_ready(self, event: ListenerReady, now: float) -> None:
        first = self.listener_pid == 0
        self.listener_pid = event.pid
        if first and self.synced:
            # supervisord's first listener gets every event since start-up: its pool subscribes
            # before any program starts and keeps them for it (buffer_size). A full read made
            # before it announced itself missed nothing; its older events are overtaken ones.
            self.in_sync = True
            return
        # A restarted listener may have lost events around its restart: only a read is current.
        self.in_sync = False
        self.next_call = now

    def _on_synced(self, event: Synced, now: float, actions: list[Action]) -> None:
        starting = not self.connected
        if not self.connected:
            self.connected = True
            names = ", ".join(seen.namespec for seen in event.processes) or "none"
            actions.append(Log("INFO", f"supervisord is up; programs: {names}"))
            if self.phase == Phase.STARTING:
                self.phase = Phase.RUNNING
        self._overtake(event.processes, now, actions)
        self.synced = True
        self.in_sync = self.listener_pid != 0
        if starting:
            self._on_jobs(self.scheduler.start(self._wall(now)), now, actions, publish=True)
        self._answered(now)
        self._judge_done(actions, now)
        if self.phase == Phase.RUNNING and self.reload_pending:
            self.reload_pending = False
            self._begin_reload(now, actions)

    def _overtake(self, processes: tuple[Seen, ...], now: float, actions: list[Action]) -> None:
        """States read from supervisord, which its events will bring again, later. The WAITING
        list is made once for them all: once per process cost hundreds of them 0.2 s."""
        self.gate_quiet = True
        for seen in processes:
            before = self.table.state(seen.namespec)
            if before != seen.state or seen.namespec not in self.table:
                exitstatus = seen.exitstatus if seen.state == ProcessState.EXITED else None
                self._transition(
                    Transition(seen.namespec, before, seen.state, exitstatus=exitstatus),
                    seen.group,
                    now,
                    actions,
                    judge_done=False,
                )
                self.overtaken.add(seen.namespec)
        self.gate_quiet = False
        self._gate_publish(actions)

    def _on_changed(self, event: Changed, now: float, actions: list[Action]) -> None:
        current = self.table.state(event.namespec)
        if current not in {event.before, event.after} and event.namespec in self.overtaken:
            # Made before the read that overtook it: no news, and no reason to read again
            # (reading again while events lag only overtook them again, every half second).
            return
        self.overtaken.discard(event.namespec)
        if current not in {event.before, event.after}:
            # Events lag behind replies: a sync may already have seen later states (a FATAL
            # judged twice), or events were missed. Only a full read is current.
            self.in_sync = False
            self.next_call = now
            return
        self._transition(
            Transition(event.namespec, event.before, event.after, event.expected, event.exitstatus),
            event.group,
            now,
            actions,
        )

    def _transition(
        self,
        transition: Transition,
        group: str,
        now: float,
        actions: list[Action],
        *,
        judge_done: bool = True,
    ) -> None:
        change = self.table.update(transition.program, group, transition.to_state)
        if change is None:
            # Already seen through the other channel (an event and a sync can both report it).
            return
        self._health_observe(transition, now, actions)
        if transition.program in self.scheduler:
            self._on_job_transition(transition, now, actions)
            return
        if self.phase in {Phase.STOPPING, Phase.KILLING} or self._reloading(transition.program):
            return
        if self._restarted(transition, actions):
            return
        step = self._gate_observe(transition)
        if step.failed:
            # Judged before the policy, so that the reason names the chain that waits.
            self._gate_failed(step, transition, now, actions)
            return
        self.last_failure = failure_of(transition, now) or self.last_failure
        outcome = self.policy.judge(transition, now)
        if isinstance(outcome, Notice):
            actions.append(Warn(outcome, transition))
        elif outcome is not None:
            if outcome.code != EXIT_OK:
                actions.append(Blame(outcome, transition))
            else:
                actions.append(Log("INFO", outcome.reason))
            self._stop(outcome, now, actions)
            return
        self._gate_apply(step, actions, transition.program)
        if judge_done:
            self._judge_done(actions, now)

    def _judge_done(self, actions: list[Action], now: float) -> None:
        # Only on the whole table, and not while a reload stops what it will start again.
        if not self.synced or self.phase != Phase.RUNNING or self.restarting:
            return
        if self.scheduler.programs or self._gate_pending():
            # A schedule is never done: its programs run again when they are due. Nor is a
            # program that waits for its dependencies, or one just started that supervisord
            # has not reported yet.
            return
        verdict = self.policy.done(self.table.states)
        if verdict is None:
            return
        if verdict.code == EXIT_OK:
            actions.append(Log("INFO", verdict.reason))
        else:
            actions.append(Log("ERROR", verdict.reason))
        self._stop(verdict, now, actions)

    def _on_silent(self, event: Silent, now: float, actions: list[Action]) -> None:
        silent_for = now - self.last_answer
        limit = self.timings.hang_timeout * (BUSY_LIMIT if event.busy else 1)
        if not self.connected:
            limit = max(limit, START_GRACE)
        if silent_for >= limit and self.phase != Phase.KILLING:
            what = "did not start answering" if not self.connected else "stopped answering"
            actions.append(
                Log("ERROR", f"supervisord {what} for {silent_for:.1f}s ({event.why}): killing it")
            )
            self.verdict = Verdict(EXIT_SUPERVISORD, f"supervisord {what}")
            self.phase = Phase.KILLING
            self.stop = None
            self.stop_deadline = None
            actions.append(KillAll())
            return
        self.next_call = now + (CALL_TIMEOUT if self.connected else CONNECT_INTERVAL)

    def _on_ended(self, event: Ended, now: float, actions: list[Action]) -> None:
        verdict = self.verdict or self._unrequested_end(event, now)
        stopped_early = self.sent_sigterm and event.signum == signal.SIGTERM
        if verdict.code == EXIT_OK and event.code != 0 and not stopped_early:
            verdict = Verdict(
                EXIT_SUPERVISORD, f"supervisord ended badly while stopping ({event.describe()})"
            )
        self._exit(verdict, actions)

    def _unrequested_end(self, event: Ended, now: float) -> Verdict:
        fatal = self.table.with_state(ProcessState.FATAL)
        if fatal:
            named = ", ".join(repr(program) for program in fatal)
            return Verdict(EXIT_FAILED, f"program {named} is FATAL", fatal)
        if not self.connected:
            return Verdict(EXIT_SUPERVISORD, f"supervisord failed to start ({event.describe()})")
        blamed = blame_own_end(self.last_failure, self.own_end_at or now)
        if blamed is not None:
            return blamed
        return Verdict(EXIT_SUPERVISORD, f"supervisord exited on its own ({event.describe()})")

    # -- time ------------------------------------------------------------------------------

    def _on_tick(self, now: float, actions: list[Action]) -> None:
        if self.stop_deadline is not None and now >= self.stop_deadline:
            self._kill_now(
                f"the shutdown deadline of {self.timings.shutdown_timeout:g}s passed", actions
            )
            return
        if self.plan_deadline is not None and now >= self.plan_deadline:
            self._plan_overdue(now, actions)
            return
        if self.next_call is None or now < self.next_call or self.phase == Phase.PLANNING:
            return
        if self.phase in {Phase.STOPPING, Phase.KILLING} and (
            self.shutting_down or self.stop is None
        ):
            # Nothing left to read: only make supervisord's shutdown go on (and see it answer).
            self.next_call = now + RESYNC_INTERVAL
            if self.phase == Phase.STOPPING:
                actions.append(Wake())
            return
        if self.output_held and self.phase != Phase.STOPPING:
            # supervisord may be blocked writing output that roled holds back: not a hang.
            self.last_answer = now
            self.next_call = now + CALL_TIMEOUT
            return
        waiting = self.stop is not None or (self.reload is not None and self.reload.applying)
        self.next_call = now + CALL_TIMEOUT
        actions.append(Ask(full=waiting or not self.in_sync, listener_pid=self.listener_pid))

    # -- scheduled programs ------------------------------------------------------------------

    def _wall(self, now: float) -> float:
        return now + self.wall_offset

    def _jobs_due(self) -> float | None:
        """When the next scheduled program is due, on the monotonic clock."""
        # A tuple, as in _health_due: asked every wake-up.
        if self.phase not in (Phase.RUNNING, Phase.RELOADING):
            return None
        due = self.scheduler.next_wakeup()
        return None if due is None else due - self.wall_offset

    def _tick_jobs(self, now: float, actions: list[Action]) -> None:
        due = self._jobs_due()
        if due is not None and now >= due:
            self._on_jobs(self.scheduler.tick(self._wall(now)), now, actions)

    def _reschedule(self, assembly: Assembly, now: float, actions: list[Action]) -> None:
        answer = self.scheduler.reload(jobs.jobs_of(assembly.processes), self._wall(now))
        self._on_jobs(answer, now, actions, publish=True)

    def _on_job_transition(self, transition: Transition, now: float, actions: list[Action]) -> None:
        """A scheduled program's run began or ended: the scheduler judges it, not the policy
        (a job that is not running is idle, not failed)."""
        program, state, wall = transition.program, transition.to_state, self._wall(now)
        if self.phase in {Phase.STOPPING, Phase.KILLING}:
            # Runs the stop ends are not failures, and nothing new starts.
            self.scheduler.stop()
            if self.phase == Phase.STOPPING and state in {
                ProcessState.STARTING,
                ProcessState.RUNNING,
            }:
                # Started just before the stop, after its level was asked to stop.
                actions.append(StopProcesses((program,)))
        if state in {ProcessState.STARTING, ProcessState.RUNNING}:
            answer = self.scheduler.run_started(program, wall)
        elif state == ProcessState.EXITED:
            # A run that ends quickly may be seen only as EXITED (a full read, before roled's
            # listener is up): it did start.
            began = self.scheduler.run_started(program, wall)
            ended = self.scheduler.run_ended(program, self._run_status(transition), wall)
            answer = jobs.Actions(records=began.records + ended.records, verdict=ended.verdict)
        elif state == ProcessState.STOPPED:
            answer = self.scheduler.run_ended(program, None, wall)
        elif state == ProcessState.FATAL:
            answer = self.scheduler.start_failed(program, "supervisord could not spawn it", wall)
        else:
            return
        self._on_jobs(answer, now, actions, transition)

    def _run_status(self, transition: Transition) -> int:
        if transition.exitstatus is not None:
            return transition.exitstatus
        # supervisord could not be asked: its own judgement of the exit stands in.
        codes = self.policy.config(transition.program).exitcodes
        return codes[0] if transition.expected is not False and codes else -1

    def _on_jobs(
        self,
        answer: jobs.Actions,
        now: float,
        actions: list[Action],
        transition: Transition | None = None,
        *,
        publish: bool = False,
    ) -> None:
        """Carry out the scheduler's answer: log its records, start what is due, and end the
        container on a verdict as a FATAL program would."""
        actions.extend(Log(record.level, record.message) for record in answer.records)
        if answer.start:
            actions.append(StartProcesses(answer.start))
        if (publish or answer.records or answer.start) and self.scheduler.programs:
            actions.append(PublishJobs(self.scheduler.statuses()))
        verdict = answer.verdict
        if verdict is not None:
            program = verdict.programs[0]
            cause = transition or Transition(program, self.table.state(program), ProcessState.FATAL)
            actions.append(Blame(verdict, cause))
            self._stop(verdict, now, actions)

    # -- health checks (roled_ready, roled_alive) ---------------------------------------------

    def _health_follow(self, assembly: Assembly, now: float, actions: list[Action]) -> None:
        """Check what this config asks for from now on: the checks of processes it removed or
        changed are forgotten, new ones watched (at once if the process already runs)."""
        wanted: dict[str, checks.ProgramChecks] = {}
        for process in assembly.processes:
            found = checks.program_checks(process.roled)
            if found is not None:
                wanted[process.namespec] = found
        for namespec, before in list(self.health_checks.items()):
            if wanted.get(namespec) != before:
                del self.health_checks[namespec]
                self.health_touched.add(namespec)
                self._health_carry(self.health.forget(namespec), now, actions)
        for namespec, found in wanted.items():
            if namespec in self.health_checks:
                continue
            critical = not self.policy.rules.is_noncritical(namespec)
            self.health.watch(namespec, found, critical=critical)
            self.health_checks[namespec] = found
            self.health_touched.add(namespec)
            if self.table.state(namespec) == ProcessState.RUNNING:
                self._health_carry(self.health.observe(namespec, "RUNNING", now), now, actions)

    def _health_observe(self, transition: Transition, now: float, actions: list[Action]) -> None:
        program = transition.program
        if transition.to_state == ProcessState.EXITED:
            self.health_exits[program] = transition.exitstatus
        if program in self.health_checks:
            self.health_touched.add(program)
            observed = self.health.observe(program, transition.to_state, now)
            self._health_carry(observed, now, actions)

    def _health_due(self) -> float | None:
        # A tuple, not a set: asked twice a wake-up, and hashing an Enum member runs Python code.
        if self.phase not in (Phase.RUNNING, Phase.RELOADING):
            return None
        return self.health.next_wakeup()

    def _health_tick(self, now: float, actions: list[Action]) -> None:
        due = self._health_due()
        if due is not None and now >= due:
            self._health_carry(self.health.poll(now), now, actions)

    def _on_health(
        self, event: ProbeDone | Notified | Output, now: float, actions: list[Action]
    ) -> None:
        if isinstance(event, ProbeDone):
            program = self.health_probes.pop(event.probe, "")
            if not self.health.changes_nothing(event.probe, event.result):
                self.health_touched.add(program)
            self._health_carry(self.health.result(event.probe, event.result, now), now, actions)
            return
        program = event.namespec
        if program not in self.health_checks:
            return
        self.health_touched.add(program)
        if isinstance(event, Notified):
            answer = self.health.notified(program, now, ready=event.ready, watchdog=event.watchdog)
            self._health_carry(answer, now, actions)
            return
        for line in event.data.splitlines():
            if not self.health.wants_lines(program):
                break
            self._health_carry(self.health.line(program, line, now), now, actions)

    def _health_carry(self, answer: list[checks.Action], now: float, actions: list[Action]) -> None:
        """Turn the health machine's answer into the run's actions."""
        for action in answer:
            if isinstance(action, checks.RunProbe):
                self.health_probes[action.probe] = action.program
                actions.append(action)
            elif isinstance(action, checks.CancelProbe):
                self.health_probes.pop(action.probe, None)
                actions.append(action)
            elif isinstance(action, checks.Log):
                actions.append(Log(action.level, action.message))
            elif isinstance(action, checks.ReadyChanged):
                self._readiness_changed(action.program, action.ready, now, actions)
            elif isinstance(action, checks.Restart):
                self._health_restart(action, now, actions)
            else:
                self._health_fail(action, now, actions)

    def _health_restart(self, restart: checks.Restart, now: float, actions: list[Action]) -> None:
        """An alive check failed: restart that program only, counted as a restart."""
        program = restart.program
        if self.phase not in {Phase.RUNNING, Phase.RELOADING} or program in self.restarting:
            return
        cause = Transition(program, self.table.state(program), ProcessState.STOPPING)
        outcome = self.policy.restarted(program, now)
        if isinstance(outcome, Verdict):
            actions.append(Blame(outcome, cause))
            self._stop(outcome, now, actions)
            return
        if isinstance(outcome, Notice):
            actions.append(Warn(outcome, cause))
        self.restarting.add(program)
        actions.append(StopProcesses((program,)))

    def _health_fail(self, fail: checks.Fail, now: float, actions: list[Action]) -> None:
        """An alive check failed with roled_on_unhealthy=exit: the container ends with 1."""
        lines = [line for line in fail.output.splitlines() if line.strip()][-3:]
        output = f"; its last output: {' | '.join(lines)}" if lines else ""
        verdict = Verdict(EXIT_FAILED, f"{fail.reason}{output}", (fail.program,))
        cause = Transition(fail.program, self.table.state(fail.program), ProcessState.RUNNING)
        actions.append(Blame(verdict, cause))
        self._stop(verdict, now, actions)

    def _health_view(
        self, namespec: str, state: ProcessState, held: frozenset[str]
    ) -> levels.ProgramView:
        rules = self.policy.rules
        return levels.ProgramView(
            name=namespec,
            state=state.value,
            config=self.policy.config(namespec),
            exitstatus=self.health_exits.get(namespec),
            critical=not rules.is_noncritical(namespec),
            main=rules.is_main(namespec),
            ready_check=self.health.ready(namespec),
            scheduled=namespec in self.scheduler.programs,
            # STOPPED with the assembled autostart=false alone would count as "not meant to
            # run", and so as ready, while it only waits for its dependencies.
            waiting="waits for its dependencies" if namespec in held else None,
        )

    def _ready_reached(self) -> bool:
        """Whether every process is ready. The one that was not, last time, is asked first:
        while a start-up waits for it, an event costs one look, not a walk over every process
        (5 ms with 200 processes, on each of the hundreds of events of their start)."""
        rules = self.policy.rules
        states = self.table.states
        # Held back, or released and not yet seen starting: neither is running yet.
        held = self.gate.held | self.gate_started
        blocker = self.ready_blocker
        if blocker in states and not levels.is_ready(
            self._health_view(blocker, states[blocker], held), rules
        ):
            return False
        for namespec, state in states.items():
            if not levels.is_ready(self._health_view(namespec, state, held), rules):
                self.ready_blocker = namespec
                return False
        return True

    def _health_publish(self, actions: list[Action]) -> None:
        """Publish what roled status needs whenever it changed (once per event at most)."""
        if self.phase in (Phase.PLANNING, Phase.DONE):
            return
        if not self.ready_once and self.synced and self.phase == Phase.RUNNING:
            self.ready_once = self._ready_reached()
        failing = self.verdict is not None and self.verdict.code != EXIT_OK
        failure = self.verdict.reason if failing and self.verdict is not None else None
        before = self.published
        if (
            before is not None
            and not self.health_touched
            and before.ready_once == self.ready_once
            and before.failure == failure
        ):
            return
        touched, self.health_touched = self.health_touched, set()
        touched.discard("")
        if (
            before is not None
            and before.ready_once == self.ready_once
            and before.failure == failure
            and not any(self._health_changed(namespec, before) for namespec in touched)
        ):
            # Most events (a probe passing again) change nothing: no walk over every process.
            return
        checks_before = before.checks if before is not None else {}
        views = {
            namespec: (
                self.health.views(namespec)
                if namespec in touched
                else checks_before.get(namespec, ())
            )
            for namespec in self.health_checks
        }
        ready = {
            namespec: answer
            for namespec in self.health_checks
            if (answer := self.health.ready(namespec)) is not None
        }
        published = levels.Published(self.policy.rules, self.ready_once, failure, ready, views)
        if published != before:
            self.published = published
            actions.append(PublishHealth(published))

    def _health_changed(self, namespec: str, before: levels.Published) -> bool:
        """Whether what was published of this process's checks is out of date."""
        if namespec not in self.health_checks:
            return namespec in before.checks
        return before.checks.get(namespec) != self.health.views(namespec) or before.ready.get(
            namespec
        ) != self.health.ready(namespec)

    # -- stopping --------------------------------------------------------------------------

    def _stop(self, verdict: Verdict, now: float, actions: list[Action]) -> None:
        """Stop every program, one priority level at a time; a repeated request changes nothing."""
        if self.phase in {Phase.STOPPING, Phase.KILLING, Phase.DONE}:
            return
        if self.reload is not None and self.reload.planning:
            actions.append(KillPlanner())
        self.phase = Phase.STOPPING
        self.verdict = verdict
        self.reload = None
        self.reload_pending = False
        self.restarting.clear()
        self.plan_deadline = None
        self._gate_stop(actions)
        # A supervisord blocked on a full log FIFO could not stop anything.
        actions.append(DrainOutput())
        self.stop_deadline = now + self.timings.shutdown_timeout
        actions.append(Log("INFO", f"stopping all programs: {verdict.reason}"))
        if self.connected and not self.shutting_down:
            # supervisord itself stops one program after another; roled stops each priority
            # level at once, so a stop takes the slowest program of each level, not the sum.
            self.stop = _Stop(self._stop_levels())
            self.next_call = now + RESYNC_INTERVAL
        else:
            actions.append(Shutdown())
            self.next_call = now + RESYNC_INTERVAL

    def _advance_stop(self, actions: list[Action]) -> None:
        stop = self.stop
        assert stop is not None
        while stop.levels:
            running = self.table.up(process.namespec for process in stop.levels[0])
            # A process the table learns is up only now (added by a reload just before the
            # stop, not reported yet) is asked too, not waited for forever.
            unasked = tuple(namespec for namespec in running if namespec not in stop.sent)
            if unasked:
                stop.sent.update(unasked)
                actions.append(StopProcesses(unasked))
                return
            if running:
                return
            stop.levels.pop(0)
            stop.sent = set()
        # Every program is down: supervisord may go.
        self.stop = None
        actions.append(Shutdown())

    def _kill_now(self, why: str, actions: list[Action]) -> None:
        programs = self.table.up()
        named = ", ".join(repr(program) for program in programs) or "no program"
        actions.append(Log("ERROR", f"{why}: killing {named} and everything else left"))
        self.verdict = Verdict(EXIT_KILLED, f"{why}; killed {named}", programs)
        self.phase = Phase.KILLING
        self.stop = None
        self.stop_deadline = None
        actions.append(DrainOutput())
        actions.append(KillAll())

    def _exit(self, verdict: Verdict, actions: list[Action]) -> None:
        self.phase = Phase.DONE
        self.verdict = verdict
        actions.append(Exit(verdict))

    def _advance(self, now: float, actions: list[Action]) -> None:
        """Move an ordered stop or a reload on, once what it waits for has happened."""
        if self.phase == Phase.STOPPING and self.stop is not None:
            self._advance_stop(actions)
        elif self.phase == Phase.RELOADING and self.reload is not None and self.reload.applying:
            self._advance_reload(now, actions)

    # -- the start gate (issue 14) ------------------------------------------------------------

    def _gate_begin(self, assembly: Assembly, actions: list[Action]) -> None:
        """Hold back every process with dependencies (and the user's autostart)."""
        self.graph = deps.graph_of(assembly.processes)
        self.gate = Gate(self.graph, self.policy.rules.is_noncritical, self._has_ready_check)
        self.gate_dependents = self.graph.dependents()
        self._gate_publish(actions)

    def _has_ready_check(self, namespec: str) -> bool:
        found = self.health_checks.get(namespec)
        return found is not None and found.ready is not None

    def _gate_observe(self, transition: Transition) -> Step:
        if transition.to_state not in {ProcessState.STOPPED, ProcessState.UNKNOWN}:
            self.gate_started.discard(transition.program)
        status = Status(transition.to_state.value, transition.exitstatus, transition.expected)
        return self.gate.observe(transition.program, status)

    def _readiness_changed(
        self, namespec: str, ready: bool, now: float, actions: list[Action]
    ) -> None:
        """A process's ready check passes now, or no longer: the one place readiness changes.
        roled status shows it, and what waits on the process may start (a process without a
        ready check is ready when RUNNING: the gate sees that in its state)."""
        self.health_touched.add(namespec)
        if self.phase not in {Phase.STARTING, Phase.RUNNING, Phase.RELOADING}:
            return
        step = self.gate.set_ready(namespec, ready)
        if step.failed:
            self._gate_failed(step, None, now, actions)
            return
        self._gate_apply(step, actions, namespec)

    def _gate_apply(self, step: Step, actions: list[Action], changed: str | None = None) -> None:
        """Start what the gate released, warn once of what it skips, and show what waits."""
        if step.skipped:
            actions.append(Log("WARNING", step.warning))
        if step.start:
            self.gate_started.update(step.start)
            actions.append(StartProcesses(step.start))
            self.gate_nudge_at = None
        waiters = self.gate_dependents.get(changed, set()) if changed is not None else set()
        if (
            step.start
            or step.skipped
            or changed is None
            or waiters & self.gate.held
            or any(entry.namespec == changed for entry in self.gate_shown)
        ):
            # Only then can what a held process waits for have changed (or, the last, a held
            # process was started by someone else). Listing them all for every event cost
            # hundreds of programs a quarter of a second at start-up.
            self._gate_publish(actions)

    def _gate_failed(
        self, step: Step, transition: Transition | None, now: float, actions: list[Action]
    ) -> None:
        """A held process can never start: exit 1 naming the chain that waits."""
        if step.skipped:
            actions.append(Log("WARNING", step.warning))
        culprits = tuple(dict.fromkeys(blocked.chain[-1] for blocked in step.failed))
        verdict = Verdict(EXIT_FAILED, step.reason, culprits)
        state = self.table.state(culprits[0])
        actions.append(Blame(verdict, transition or Transition(culprits[0], state, state)))
        self._stop(verdict, now, actions)

    def _gate_pending(self) -> bool:
        """Whether a process still waits to start (not one that never will), or was started
        and not yet seen starting: the config is not done while one does."""
        if not self.policy.rules.exit_when_done:
            return False
        return bool(self.gate_started) or any(not w.never for w in self.gate.waiting())

    def _gate_stop(self, actions: list[Action]) -> None:
        """A stop: whatever still waits is never started."""
        self.gate.stop()
        self.gate_started.clear()
        self._gate_publish(actions)

    def _gate_reload(
        self, assembly: Assembly, readded: tuple[str, ...], now: float, actions: list[Action]
    ) -> None:
        """A new config adds, removes and re-checks dependencies; they gate starts only."""
        self.graph = deps.graph_of(assembly.processes)
        self.gate_dependents = self.graph.dependents()
        step = self.gate.reload(self.graph, readded)
        if step.failed:
            self._gate_failed(step, None, now, actions)
            return
        self._gate_apply(step, actions)

    def _gate_tick(self, now: float, actions: list[Action]) -> None:
        """Nudge supervisord while a process waits, so its events come without its 1 s lag."""
        waiting = self.phase in {Phase.RUNNING, Phase.RELOADING} and any(
            not entry.never for entry in self.gate_shown
        )
        if not waiting:
            self.gate_nudge_at = None
            return
        if self.gate_nudge_at is not None and now < self.gate_nudge_at:
            return
        if self.gate_nudge_at is None:
            # Waiting began, or the gate just started something.
            self.gate_moved_at = now
        else:
            actions.append(Nudge())
        busy = now - self.gate_moved_at < GATE_BUSY_FOR
        self.gate_nudge_at = now + (GATE_NUDGE if busy else GATE_NUDGE_IDLE)

    def _gate_publish(self, actions: list[Action]) -> None:
        if self.gate_quiet:
            return
        shown = self.gate.waiting()
        if shown != self.gate_shown:
            self.gate_shown = shown
            actions.append(PublishWaiting(shown))

    def _gate_kept(self, event: Reconfigured, assembly: Assembly) -> Reconfigured:
        """supervisord's changed groups, less those whose only change is the gate's autostart:
        kept rather than re-added, so a running program that gains a dependency keeps running."""
        if self.assembly is None:
            return event
        before = self.assembly
        kept = {group for group in event.changed if _only_gate_changed(before, assembly, group)}
        if not kept:
            return event
        changed = tuple(group for group in event.changed if group not in kept)
        return Reconfigured(event.added, changed, event.removed)

    def _stop_levels(self) -> list[list[Process]]:
        """Dependents stop before what they depend on; priority orders the rest (issue 14)."""
        if not self.graph.edges:
            return stop_levels(self.processes.values())
        order = deps.stop_order(self.graph)
        levels = [[self.processes[n] for n in level if n in self.processes] for level in order]
        # Processes a reload under way is removing are not in the graph: they go first.
        stale = [p for n, p in self.processes.items() if n not in self.graph.nodes]
        return [*stop_levels(stale), *(level for level in levels if level)]


def _group_sections(assembly: Assembly, group: str) -> dict[str, dict[str, str]]:
    """A group's sections as written (roled's keys and the user's own autostart back in)."""
    by_name = {section.name: section for section in assembly.sections}
    grouped = by_name.get(f"group:{group}")
    members = [group] if grouped is None else grouped.options.get("programs", "").split(",")
    names = [f"{kind}:{m.strip()}" for m in members for kind in ("program", "fcgi-program")]
    found: dict[str, dict[str, str]] = {}
    if grouped is not None:
        found[grouped.name] = dict(grouped.options)
    for name in names:
        section = by_name.get(name)
        if section is None:
            continue
        options = dict(section.options)
        own = assembly.roled_keys.get(name)
        if own is not None and deps.KEY in own.values:
            # The gate's autostart=false out, the user's own (if written) back in.
            options.pop("autostart", None)
            autostart = own.values.get(deps.AUTOSTART)
            if isinstance(autostart, bool):
                options["autostart"] = "true" if autostart else "false"
        if own is not None:
            options.update(own.raw)
        found[name] = options
    return found


def _only_gate_changed(before: Assembly, after: Assembly, group: str) -> bool:
    """Whether a group supervisord calls changed differs only by what the gate did."""
    old, new = _group_sections(before, group), _group_sections(after, group)
    if not old or old.keys() != new.keys():
        return False
    gated = [name for name in old if deps.only_gate_changed(old[name], new[name])]
    plain = {k: v for k, v in old.items() if k not in gated}
    return bool(gated) and plain == {k: v for k, v in new.items() if k not in gated}
