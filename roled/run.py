"""The main loop: wait, turn what happened into lifecycle events, carry out the actions returned.

What to do is decided in ``roled.lifecycle`` (pure); this module only does it: the planner child,
the runtime directory, supervisord's spawn, XML-RPC calls (each bounded by a timeout), signals,
reaping, output, and the last report. Anything unexpected in here is roled's own bug: it is
contained (``_contain``) so that no program outlives roled.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from roled import checks, compat, init, jobs, levels, lifecycle, log, report, statusview
from roled.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, RoledError
from roled.filekeys import RESTART, OnChange
from roled.inotify import Inotify
from roled.lifecycle import Action, Event, Lifecycle, Timings
from roled.logformat import Formatter
from roled.logs import ENDED_STATES, LogPump, make_fifos
from roled.model import (
    LISTENER,
    NOTIFY,
    Assembly,
    Ended,
    Process,
    ProcessState,
    Runtime,
    namespec,
    worst_stop_seconds,
)
from roled.notify import NotifySocket, owner, parent_pid
from roled.planning import PlanError, PlannerProcess, PlanOk, RuntimeAnnounced
from roled.policy import Transition, Verdict
from roled.probes import Context, Probes
from roled.report import ProgramReport
from roled.requests import RequestServer
from roled.rpc import Fault
from roled.runtime import RuntimeDir, instance_of
from roled.secrets import Secrets
from roled.settings import Settings
from roled.signals import SignalQueue
from roled.supervisor import (
    SHUTDOWN_STATE,
    Client,
    EventChannel,
    ProcessInfo,
    Unavailable,
    supervisord_argv,
)
from roled.supervisor import Event as ListenerEvent
from roled.tails import Request
from roled.watch import IDLE_INTERVAL, Watcher

# How long the failure report waits for the log reader to catch up with a failed program.
TAIL_WAIT = 0.5
# At exit, how long output may take to be written before what is left is dropped (and counted).
FLUSH_TIMEOUT = 2.0
# The share of a probe's timeout roled gives supervisord, so that its answer reaches the probe.
STATUS_SHARE = 0.8
# CPU seconds supervisord must have used between two unanswered requests to count as busy.
BUSY_CPU = 0.05
# Stop signals are counted one by one (a second SIGINT means "now"); others once per wake-up.
_COUNTED = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def run(
    argv: Sequence[str], environ: Mapping[str, str], signals: SignalQueue, plan_timeout: float
) -> int:
    """Plan, start supervisord, supervise until it ends; the container's exit code.

    argv is roled's own command line: the planner process resolves it again, on start-up
    and on every reload. ``signals`` has recorded every signal since roled's first line.
    """
    runner = Runner(argv, environ, signals, Timings(plan_timeout=plan_timeout))
    try:
        return runner.run()
    except RoledError:
        # A user mistake found while preparing (a planted runtime directory, a full disk):
        # one line and exit 2 from the CLI, after stopping whatever was started.
        runner.abort()
        raise
    except Exception as exc:  # roled's own bug: contained, so that no program survives it
        return runner.contain(exc)
    finally:
        runner.close()


def supervisord_loglevel(assembly: Assembly) -> str:
    """The ``[supervisord] loglevel`` roled's own lines follow too (default info)."""
    for section in assembly.sections:
        if section.name == "supervisord":
            return section.options.get("loglevel", "info")
    return "info"


def with_stop_deadline(settings: Settings, processes: tuple[Process, ...]) -> Settings:
    """Settings whose deadline lets the config's own stop finish; warns when it cannot, or when
    an orchestrator's default grace would kill the container first."""
    worst = worst_stop_seconds(processes)
    deadline = compat.stop_deadline(
        settings.shutdown_timeout, settings.shutdown_timeout_given, worst
    )
    if worst > deadline:
        log.warning(
            f"stopping every program may take {worst}s (the longest stopwaitsecs of each "
            f"priority level, summed), more than the shutdown deadline of {deadline:g}s "
            "(ROLED_SHUTDOWN_TIMEOUT): the slowest programs would be killed"
        )
    elif worst > compat.ORCHESTRATOR_GRACE:
        log.warning(
            f"stopping every program may take {worst}s (the longest stopwaitsecs of each "
            f"priority level, summed), more than the {compat.ORCHESTRATOR_GRACE:g}s an "
            "orchestrator gives by default: raise terminationGracePeriodSeconds or docker "
            "stop's timeout to at least that"
        )
    return replace(settings, shutdown_timeout=deadline)


@dataclass(frozen=True, slots=True)
class WatchSet:
    """What one watch set covers, and whom a change concerns: processes to signal (``signal``)
    or restart (None); no process at all for the config's own files (a reload)."""

    paths: tuple[str, ...]
    namespecs: tuple[str, ...] = ()
    signal: str | None = None


CONFIG_FILES = "config files"


def watch_sets(assembly: Assembly) -> dict[str, WatchSet]:
    """The watch sets of a config: its env files and *_FILE targets, and each program's
    ``roled_watch`` (one set per program and action, for all its processes)."""
    sets: dict[str, WatchSet] = {}
    if assembly.config_files:
        sets[CONFIG_FILES] = WatchSet(assembly.config_files)
    by_program: dict[str, list[Process]] = {}
    for process in assembly.processes:
        if "roled_watch" in process.roled:
            by_program.setdefault(process.program, []).append(process)
    for program, processes in sorted(by_program.items()):
        paths = processes[0].roled["roled_watch"]
        on_change = processes[0].roled.get("roled_on_change", RESTART)
        assert isinstance(paths, tuple)
        assert isinstance(on_change, OnChange)
        namespecs = tuple(process.namespec for process in processes)
        sets[f"program:{program}"] = WatchSet(paths, namespecs, on_change.signal)
    return sets


def _seen(info: ProcessInfo, process: Process | None) -> lifecycle.Seen:
    # The event that says RUNNING comes behind every other one (one per turn of supervisord's
    # loop: 2 ms each with 200 programs); dependents need not wait for it.
    state = ProcessState.parse(info.statename)
    if process is not None:
        state = process.config.presumed(state)
    return lifecycle.Seen(info.namespec, info.group, state, info.exitstatus)


def _first_read(client: Client, assembly: Assembly) -> tuple[list[ProcessInfo], list[Process]]:
    """supervisord's table at start-up: what it reports of the processes it starts itself, and
    those it does not (autostart=false, as every program that waits for its dependencies is
    assembled), which are STOPPED until something starts them, and their events say when.
    With 180 of 200 programs held back, the read is 24 kB instead of 240 kB, decoded in 7 ms
    instead of 70: the first level's dependents start that much sooner."""
    unstarted = [process for process in assembly.processes if not process.config.autostart]
    if not unstarted:
        return client.processes(), []
    started = [process.namespec for process in assembly.processes if process.config.autostart]
    return client.some_processes(started), unstarted


class Runner:
    """One run's effects: everything the lifecycle asks for, and the events that come back."""

    def __init__(
        self,
        argv: Sequence[str],
        environ: Mapping[str, str],
        signals: SignalQueue,
        timings: Timings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.argv = list(argv)
        self.environ = dict(environ)
        self.signals = signals
        self.clock = clock
        self.wall = wall
        self.password = os.urandom(24).hex()
        self.lifecycle = Lifecycle(timings)
        self.selector = selectors.DefaultSelector()
        self.selector.register(signals.fileno, selectors.EVENT_READ)
        self.queue: collections.deque[Event] = collections.deque()
        self.planner: PlannerProcess | None = None
        self.directory: RuntimeDir | None = None
        self.settings: Settings | None = None
        self.assembly: Assembly | None = None
        # The scheduled programs' next and last runs, as ``roled status`` shows them.
        self.schedules: dict[str, dict[str, object]] = {}
        self.client: Client | None = None
        self.events: EventChannel | None = None
        self.logs: LogPump | None = None
        self.requests: RequestServer | None = None
        self.pid = 0
        self.ended = False
        self.held = False
        self.verdict: Verdict | None = None
        self.details: tuple[ProgramReport, ...] = ()
        self.infos: dict[str, ProcessInfo] = {}
        self.cpu_used = 0.0
        # A plan leaves garbage in the C heap (start-up, a reload): released at the next idle wait.
        self.release_due = False
        self.watcher: Watcher | None = None
        self.inotify: Inotify | None = None
        self.watching: dict[str, WatchSet] = {}
        # Health checks: probes in flight, NOTIFY_SOCKET, and which pid is which process's.
        self.probes = Probes(self.selector)
        self.notify: NotifySocket | None = None
        self.notify_pids: dict[int, str] = {}
        # What only roled knows for ``roled status --level``: readiness, checks, the verdict.
        self.health = levels.Published()
        # The processes held back by their dependencies, and what each waits for.
        self.waiting: dict[str, str] = {}
        # Starts held back until the events at hand are handled (_carry).
        self.starts: list[str] = []

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        init.become_subreaper()
        self._carry(self.lifecycle.start(self.clock()))
        while self.verdict is None:
            self._collect(self._wait())
            self.queue.append(lifecycle.Tick())
            self._drain_queue()
        if self.verdict.code == EXIT_USAGE and not self.pid:
            # The config was refused before anything started: one line, like any user mistake.
            raise RoledError(self.verdict.reason)
        return self._finish(self.verdict)

    def _wait(self) -> set[int]:
        """Wait for the next fd or wake-up, handle what is ready; the fds found readable."""
        wakeup = self.lifecycle.next_wakeup()
        scan = self.watcher.next_wakeup() if self.watcher is not None else None
        for due in (scan, self.probes.next_wakeup()):
            if due is not None:
                wakeup = due if wakeup is None else min(wakeup, due)
        timeout = None if wakeup is None else max(0.0, wakeup - self.clock())
        ready = self.selector.select(timeout)
        if not ready and self.release_due:
            self.release_due = False
            init.release_memory()
        readable = {int(key.fd) for key, _ in ready}
        for key, events in ready:
            fd = int(key.fd)
            if self.planner is not None and fd in self.planner.fds:
                self._on_planner(fd)
            elif isinstance(key.data, RequestServer):
                key.data.on_ready(fd, events)
            elif self.probes.owns(key):
                self.probes.handle(key, events)
            elif self.notify is not None and key.data is self.notify:
                self._on_notify(self.notify)
            elif self.logs is not None and key.data is self.logs:
                for namespec, data in self.logs.take_lines():
                    self.queue.append(lifecycle.Output(namespec, data))
        return readable

    def _collect(self, ready_fds: set[int]) -> None:
        """Turn what happened since the last wake-up into events. The signal pipe and the event
        FIFO are read only when the wait found them readable: an empty read is a syscall,
        twenty times a second with checks."""
        seen: set[int] = set()
        for signum in self.signals.take(drain=self.signals.fileno in ready_fds):
            if signum in seen and signum not in _COUNTED:
                continue
            seen.add(signum)
            if signum == signal.SIGCHLD:
                self._reap()
            else:
                self.queue.append(lifecycle.Signal(signum))
        if self.events is not None and self.events.fileno in ready_fds:
            for event in self.events.read():
                self._on_listener(event)
        if self.watcher is not None:
            self._poll_watcher()
        if self.logs is not None and self.logs.holding_back != self.held:
            self.held = self.logs.holding_back
            self.queue.append(lifecycle.OutputHeld(self.held))
        self.probes.expire(self.clock())
        for probe, result in self.probes.take():
            self.queue.append(lifecycle.ProbeDone(probe, result))

    def _drain_queue(self) -> None:
        while self.queue and self.verdict is None:
            event = self.queue.popleft()
            self._carry(self.lifecycle.handle(event, self.clock(), self.wall()))
            if not self.queue or self.verdict is not None:
                # Its refusals come back as events, and are handled in this same drain.
                self._start_held()

    def _reap(self) -> None:
        # A health check's command is the probes' to judge; any other child is only reaped.
        ended = init.reap_children(self.pid if self.pid else -1, self.probes.ended)
        if ended is not None and self.pid and not self.ended:
            self.ended = True
            self.queue.append(ended)

    # -- what comes in ---------------------------------------------------------------------

    def _on_planner(self, fd: int) -> None:
        planner = self.planner
        assert planner is not None
        outcome = planner.on_readable(fd)
        if fd not in planner.fds:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        if isinstance(outcome, RuntimeAnnounced):
            if self.directory is None:
                self._prepare(outcome.path)
            planner.go()
        elif isinstance(outcome, PlanOk):
            self.release_due = True
            self._close_planner()
            settings = outcome.settings
            if self.settings is None:
                # The deadline a run keeps: long enough for the config's own stop.
                settings = self.settings = with_stop_deadline(settings, outcome.assembly.processes)
            timings = Timings(
                settings.shutdown_timeout, settings.hang_timeout, settings.plan_timeout
            )
            self.queue.append(lifecycle.Planned(timings, settings.rules, outcome.assembly))
        elif isinstance(outcome, PlanError):
            self._close_planner()
            self.queue.append(lifecycle.PlanFailed(outcome.message, outcome.internal))

    def _prepare(self, path: Path) -> None:
        acquired = RuntimeDir(path)
        acquired.acquire()
        # Only a directory roled holds the lock of is ever removed.
        self.directory = acquired
        self.directory.make_dir("logs")

    def _on_listener(self, event: ListenerEvent) -> None:
        if event.name == "LISTENER_READY":
            self.queue.append(lifecycle.ListenerReady(int(event.fields.get("pid", "0"))))
        elif event.name == "SUPERVISOR_STATE_CHANGE_STOPPING":
            self.queue.append(lifecycle.SupervisordStopping())
        elif event.name.startswith("PROCESS_STATE_"):
            group = event.fields.get("groupname", "")
            program = namespec(group, event.fields.get("processname", ""))
            state = event.name.removeprefix("PROCESS_STATE_")
            if state in ENDED_STATES and self.logs is not None:
                self.logs.finished(program)
            if group == LISTENER:
                return
            expected = event.fields.get("expected")
            after = ProcessState.parse(state)
            self.queue.append(
                lifecycle.Changed(
                    program,
                    group,
                    ProcessState.parse(event.fields.get("from_state", "UNKNOWN")),
                    after,
                    None if expected is None else expected == "1",
                    self._exitstatus(program) if after == ProcessState.EXITED else None,
                )
            )

    def _exitstatus(self, program: str) -> int | None:
        # Only while it is still EXITED: a restart resets supervisord's record of it.
        if self.client is None:
            return None
        try:
            info = self.client.process(program)
        except (Unavailable, Fault):
            return None
        return info.exitstatus if info.statename == ProcessState.EXITED else None

    # -- carrying out actions ----------------------------------------------------------------

    def _carry(self, actions: list[Action]) -> None:
        """Carry actions out in order, except that starts wait for the end of the drain (or
        the next other action): every process released by a burst of events then starts in one
        request. One request per process held supervisord's loop once each, and made the 10-level
        graph of the bench 2-3 times slower than the same programs without dependencies."""
        for action in actions:
            if isinstance(action, lifecycle.StartProcesses):
                self.starts.extend(action.namespecs)
            elif isinstance(action, lifecycle.PublishWaiting):
                self.waiting = {entry.namespec: entry.describe() for entry in action.waiting}
            else:
                self._start_held()
                self._do(action)

    def _start_held(self) -> None:
        starts, self.starts = self.starts, []
        if starts:
            self._start_processes(starts)

    def _do(self, action: Action) -> None:
        # Probes first: with 100 checks a second they are most of the actions.
        if isinstance(action, checks.RunProbe):
            self._run_probe(action)
        elif isinstance(action, checks.CancelProbe):
            self.probes.cancel(action.probe)
        elif isinstance(action, lifecycle.Log):
            log.log(action.level, action.message)
        elif isinstance(action, lifecycle.RunPlanner):
            self._start_planner()
        elif isinstance(action, lifecycle.KillPlanner):
            self._close_planner()
        elif isinstance(action, lifecycle.Launch):
            self._launch(action.assembly)
        elif isinstance(action, lifecycle.Ask):
            self.queue.append(self._ask(action))
        elif isinstance(action, lifecycle.Wake):
            self.queue.append(self._wake())
        elif isinstance(action, lifecycle.Reconfigure):
            self.queue.append(self._reconfigure(action.assembly))
        elif isinstance(action, lifecycle.StopGroups):
            for group in action.groups:
                self._call_quietly("stop_group", group)
        elif isinstance(action, lifecycle.SwapGroups):
            for group in action.remove:
                self._call_quietly("remove_group", group)
            for group in action.add:
                self._call_quietly("add_group", group)
        elif isinstance(action, lifecycle.StopProcesses):
            self._stop_processes(action.namespecs)
        elif isinstance(action, lifecycle.SignalProcesses):
            for namespec in action.namespecs:
                self._call_quietly("signal_process", namespec, action.signal)
        elif isinstance(action, lifecycle.PublishJobs):
            self.schedules = jobs.status_document(action.statuses)
        elif isinstance(action, lifecycle.PublishHealth):
            self.health = action.published
        elif isinstance(action, lifecycle.Nudge):
            self._nudge()
        elif isinstance(action, lifecycle.Shutdown):
            self._shutdown()
        elif isinstance(action, lifecycle.SignalSupervisord):
            self._signal_supervisord(action.signum)
        elif isinstance(action, lifecycle.KillAll):
            self._kill_all()
        elif isinstance(action, lifecycle.DrainOutput):
            if self.logs is not None:
                self.logs.drain()
        elif isinstance(action, lifecycle.Warn):
            why = self._gather(action.notice.program, action.transition).why
            log.warning(f"{action.notice.reason}: {why}; it is non-critical, so roled carries on")
        elif isinstance(action, lifecycle.Blame):
            self._blame(action.verdict, action.transition)
        elif isinstance(action, lifecycle.Exit):
            self.verdict = action.verdict

    def _start_planner(self) -> None:
        self.planner = PlannerProcess(self.argv, self.password, go=self.directory is not None)
        for fd in self.planner.fds:
            self.selector.register(fd, selectors.EVENT_READ)

    def _close_planner(self) -> None:
        if self.planner is None:
            return
        for fd in self.planner.fds:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        self.planner.kill()
        self.planner = None

    def _launch(self, assembly: Assembly) -> None:
        settings, directory = self.settings, self.directory
        assert settings is not None
        assert directory is not None
        self.assembly = assembly
        self._hide(assembly)
        self._watch(assembly)
        log.configure(Formatter(settings.log_format))
        for warning in assembly.warnings:
            log.warning(warning)
        log.follow_loglevel(supervisord_loglevel(assembly))
        runtime = Runtime(settings.runtime_dir, self.password)
        directory.make_fifo("events")
        directory.write("supervisord.conf", assembly.text)
        directory.publish(instance_of(assembly.control, os.getpid()))
        self.events = EventChannel(runtime.events)
        self.client = Client(assembly.control, lifecycle.CALL_TIMEOUT)
        self.logs = LogPump(settings.log_format, tail_buffer=settings.tail_buffer)
        # Read ends open before supervisord opens the write ends of its log FIFOs.
        self.logs.watch(make_fifos(assembly.streams))
        output = self.logs.capture()
        self.logs.start()
        self._serve_requests(runtime)
        self._hand_over(assembly)
        self._listen_notify(directory.path)
        self._carry_lines(assembly)
        try:
            self.pid = init.spawn(
                supervisord_argv(runtime.config, runtime.logs), self.environ, {1: output, 2: output}
            )
        finally:
            os.close(output)
        self.selector.register(self.events.fileno, selectors.EVENT_READ)

    def _hide(self, assembly: Assembly) -> None:
        """Mask the values read from env files and *_FILE files in all of roled's output, the
        probe's answers too. Earlier values stay masked: lines may still mention them."""
        log.hide(Secrets.of(assembly.secrets))

    def _serve_requests(self, runtime: Runtime) -> None:
        """``roled ctl tail``, ``clear`` and ``maintail`` from the buffers the log pump fills."""
        assert self.logs is not None
        try:
            self.requests = RequestServer(
                runtime.requests, self.logs.buffers, self.selector, self._status
            )
        except OSError as exc:
            raise RoledError(f"{runtime.requests}: cannot listen: {exc.strerror}") from exc

    def _hand_over(self, assembly: Assembly) -> None:
        """``[supervisord] user=``: supervisord opens its config (on reload), log, FIFOs and
        socket folder as that user, so they are handed to it."""
        if assembly.handed_to is None or self.directory is None:
            return
        runtime = Runtime(self.directory.path, "")
        handed = [runtime.logs, runtime.events, runtime.config]
        self.directory.hand_to(*assembly.handed_to, [*handed, *(s.path for s in assembly.streams)])

    def _ask(self, action: lifecycle.Ask) -> Event:
        client = self.client
        assert client is not None
        try:
            if not action.full:
                try:
                    listener: ProcessInfo | None = client.process(LISTENER)
                except Fault:
                    listener = None
                if (
                    listener is not None
                    and listener.pid == action.listener_pid
                    and listener.statename == ProcessState.RUNNING
                ):
                    return lifecycle.Answered()
            unstarted: list[Process] = []
            if self.lifecycle.connected or self.assembly is None:
                infos = client.processes()
            else:
                infos, unstarted = _first_read(client, self.assembly)
        except Unavailable as exc:
            return lifecycle.Silent(str(exc), self._busy())
        self.infos = {info.namespec: info for info in infos}
        self.notify_pids = {info.pid: info.namespec for info in infos if info.pid}
        processes = self.lifecycle.processes
        seen = [_seen(info, processes.get(info.namespec)) for info in infos]
        seen += [lifecycle.Seen(p.namespec, p.group, ProcessState.STOPPED) for p in unstarted]
        return lifecycle.Synced(tuple(seen))

    def _busy(self) -> bool:
        """Whether supervisord used CPU since this was last asked: busy, so not hung."""
        stat = init.proc_stat(self.pid)
        if stat is None:
            return False
        used = stat.cpu_seconds
        busy = used - self.cpu_used >= BUSY_CPU
        self.cpu_used = used
        return busy

    def _wake(self) -> Event:
        """Make supervisord's loop turn while it shuts down.

        When a child's pipes close before the child can be reaped, nothing else wakes that
        loop for up to a second (SIGCHLD does not interrupt its poll); a request does.
        """
        assert self.client is not None
        try:
            self.client.state()
        except Unavailable as exc:
            shutting_down = isinstance(exc.__cause__, Fault) and (
                exc.__cause__.code == SHUTDOWN_STATE
            )
            if shutting_down:
                return lifecycle.Answered()
            return lifecycle.Silent(str(exc), self._busy())
        except Fault:
            pass
        return lifecycle.Answered()

    def _reconfigure(self, assembly: Assembly) -> Event:
        directory, client, logs = self.directory, self.client, self.logs
        assert directory is not None
        assert client is not None
        assert logs is not None
        try:
            # New programs' FIFOs must exist and be read before supervisord opens them.
            logs.watch(make_fifos(assembly.streams))
            directory.replace("supervisord.conf", assembly.text)
            self._hand_over(assembly)
            added, changed, removed = client.reload_config()
        except (RoledError, Unavailable, Fault) as exc:
            return lifecycle.ReconfigureFailed(str(exc))
        self.assembly = assembly
        self._hide(assembly)
        self._watch(assembly)
        self._carry_lines(assembly)
        return lifecycle.Reconfigured(tuple(added), tuple(changed), tuple(removed))

    def _call_quietly(self, method: str, name: str, *args: str) -> None:
        assert self.client is not None
        try:
            getattr(self.client, method)(name, *args)
        except (Unavailable, Fault) as exc:
            log.warning(f"{method}({name!r}) failed: {exc}")

    # -- watched files ---------------------------------------------------------------------

    def _watch(self, assembly: Assembly) -> None:
        """Watch what this config names; a set already watched keeps its baseline, so a change
        made during a reload is not lost."""
        sets = watch_sets(assembly)
        if sets == self.watching:
            return
        self.watching = sets
        if not sets:
            self.watcher = None
            return
        patterns = [path for entry in sets.values() for path in entry.paths]
        if self.inotify is None:
            self.inotify = Inotify.open()
            if self.inotify is not None:
                self.selector.register(self.inotify.fd, selectors.EVENT_READ)
        if self.inotify is not None:
            self.inotify.watch(patterns)
        self.watcher = Watcher(
            {key: entry.paths for key, entry in sets.items()},
            idle_interval=IDLE_INTERVAL if self.inotify is not None else None,
        )
        self.watcher.poll(self.clock())

    def _poll_watcher(self) -> None:
        assert self.watcher is not None
        if self.inotify is not None and self.inotify.drain():
            self.watcher.wake(self.clock())
            # A swap may have brought new folders (a new ..data target): watch them too.
            self.inotify.watch([path for entry in self.watching.values() for path in entry.paths])
        for key, paths in self.watcher.poll(self.clock()).items():
            entry = self.watching[key]
            if entry.namespecs:
                self.queue.append(lifecycle.WatchedChanged(entry.namespecs, paths, entry.signal))
            else:
                self.queue.append(lifecycle.ConfigFilesChanged(paths))

    def _stop_processes(self, namespecs: Sequence[str]) -> None:
        assert self.client is not None
        try:
            refused = self.client.stop_processes(list(namespecs))
        except (Unavailable, Fault):
            self.queue.append(lifecycle.StopFailed())
            return
        for name, why in refused.items():
            # NOT_RUNNING or BAD_NAME: it stopped, or went away with a reload, meanwhile.
            log.info(f"{name!r} needed no stop: {why}")

    def _start_processes(self, namespecs: Sequence[str]) -> None:
        assert self.client is not None
        try:
            refused = self.client.start_processes(list(namespecs))
        except (Unavailable, Fault) as exc:
            refused = dict.fromkeys(namespecs, str(exc))
        processes = self.lifecycle.processes
        started = tuple(
            lifecycle.Seen(name, process.group, process.config.state_when_started())
            for name in namespecs
            if name not in refused and (process := processes.get(name)) is not None
        )
        if started:
            self.queue.append(lifecycle.Started(started))
        for name, why in refused.items():
            self.queue.append(lifecycle.StartRefused(name, why or "refused"))

    def _status(self, request: Request) -> bytes:
        """``roled status``: supervisord read afresh, judged with what roled knows. The read
        is bounded by the probe's own timeout: a hung supervisord holds the loop no longer
        than one probe waits for it."""
        assembly = self.assembly
        if assembly is None or self.ended:
            return json.dumps({"error": "roled is starting or stopping"}).encode()
        client = Client(assembly.control, request.timeout * STATUS_SHARE)
        try:
            infos = client.processes()
        except Unavailable as exc:
            why = f"supervisord did not answer within {request.timeout:g}s ({exc})"
            return json.dumps({"error": why}).encode()
        finally:
            client.close()
        code, out = statusview.answer(
            infos,
            assembly.configs(),
            self.schedules,
            log.secrets(),
            published=self.health,
            waiting=self.waiting,
            level=request.level,
            pid=os.getpid(),
            as_json=request.as_json,
        )
        return json.dumps({"code": code, "out": out}).encode()

    # -- health checks -----------------------------------------------------------------------

    def _listen_notify(self, path: Path) -> None:
        """NOTIFY_SOCKET, whether or not a program uses it yet (a reload may add one)."""
        try:
            self.notify = NotifySocket(path)
        except OSError as exc:
            raise RoledError(f"{path / NOTIFY}: cannot listen: {exc.strerror}") from exc
        self.selector.register(self.notify.fileno(), selectors.EVENT_READ, self.notify)

    def _carry_lines(self, assembly: Assembly) -> None:
        """Have the log pump hand over the lines of processes with a log: ready check."""
        logs = self.logs
        assert logs is not None
        wanted = []
        for process in assembly.processes:
            found = checks.program_checks(process.roled)
            if found is not None and found.ready is not None and found.ready.kind == "log":
                wanted.append(process.namespec)
        logs.carry_lines(wanted)
        if wanted and logs.lines_fd not in self.selector.get_map():
            self.selector.register(logs.lines_fd, selectors.EVENT_READ, logs)

    def _run_probe(self, action: checks.RunProbe) -> None:
        # Only a command needs the program's environment (a copy of roled's own, every probe).
        process = self.lifecycle.processes.get(action.program)
        context = None
        if process is not None and action.check.kind == "exec":
            environment = {**self.environ, **process.environment}
            context = Context(environment, process.directory, process.user)
        self.probes.start(action.probe, action.check, action.timeout, self.clock(), context)

    def _on_notify(self, sock: NotifySocket) -> None:
        """Tie each notification to a process by its sender's pid (or an ancestor's)."""
        refreshed = False
        for message in sock.on_readable():
            if message.pid is None or not (message.ready or message.watchdog):
                continue
            program = owner(message.pid, self.notify_pids, parent_pid)
            if program is None and not refreshed:
                # A process started since roled last read supervisord's table.
                refreshed = True
                self._refresh_pids()
                program = owner(message.pid, self.notify_pids, parent_pid)
            if program is not None:
                self.queue.append(lifecycle.Notified(program, message.ready, message.watchdog))

    def _refresh_pids(self) -> None:
        if self.client is None:
            return
        try:
            infos = self.client.processes()
        except (Unavailable, Fault):
            return
        self.notify_pids = {info.pid: info.namespec for info in infos if info.pid}

    def _nudge(self) -> None:
        # Any answer will do, and none is no news: the regular requests judge silence.
        if self.client is not None:
            with contextlib.suppress(Unavailable, Fault):
                self.client.state()

    def _shutdown(self) -> None:
        # A request wakes supervisord's loop at once. A SIGTERM does not: its handler only
        # records the signal and the interrupted poll() is resumed, so it waits up to 1 s.
        # roled's own listener is stopped in the same breath: supervisord's shutdown goes
        # through one priority group per loop pass, already stopped ones too, and reaches
        # the listener's (the first) last, one wake-up per group.
        if self.client is None or self.ended:
            return
        try:
            self.client.stop_processes([LISTENER])
            self.client.shutdown()
        except (Unavailable, Fault):
            self.queue.append(lifecycle.ShutdownFailed())

    def _signal_supervisord(self, signum: int) -> None:
        # Already gone is fine: its SIGCHLD is on the way.
        if self.pid and not self.ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _kill_all(self) -> None:
        if self.logs is not None:
            self.logs.drain()
        self._signal_supervisord(signal.SIGKILL)
        ended = init.kill_tree(self.pid)
        if not self.ended:
            self.ended = True
            self.queue.append(ended or Ended(None, signal.SIGKILL))

    # -- reports ---------------------------------------------------------------------------

    def _gather(self, program: str, transition: Transition) -> ProgramReport:
        own = transition.program == program
        assert self.client is not None
        logs = self.logs
        redirects = (
            {p.namespec: p.redirect_stderr for p in self.assembly.processes}
            if self.assembly
            else {}
        )
        return report.gather(
            self.client,
            program,
            transition.to_state if own else self.lifecycle.table.state(program),
            transition.exitstatus if own else None,
            self.infos.get(program),
            redirect_stderr=redirects.get(program, False),
            carried=None
            if logs is None
            else (lambda name, channel: logs.tail(name, channel, TAIL_WAIT)),
        )

    def _blame(self, verdict: Verdict, transition: Transition) -> None:
        """Keep what supervisord can tell about the programs at fault, then stop everything."""
        self.details = tuple(self._gather(program, transition) for program in verdict.programs)
        why = "; ".join(detail.why for detail in self.details)
        log.error(f"{verdict.reason}: {why}" if why else verdict.reason)

    def _finish(self, verdict: Verdict) -> int:
        # Checks in flight are over: exec commands' groups killed (the sweep reaps them).
        self.probes.close()
        kill_grace = self.settings.kill_grace if self.settings is not None else 3.0
        leftovers = init.sweep(kill_grace)
        if leftovers:
            log.warning(f"killed leftover processes: {', '.join(leftovers)}")
        if self.logs is not None:
            dropped = self.logs.close(FLUSH_TIMEOUT)
            if dropped.lines or dropped.bytes:
                log.warning(f"dropped {dropped.describe()} of output that could not be written")
        self._report(verdict)
        return verdict.code

    def _report(self, verdict: Verdict) -> None:
        """roled's last word: the reason line, then on failure the report, also for Kubernetes."""
        details = self.details if verdict.code != EXIT_OK else ()
        text = report.render(verdict.code, verdict.reason, details)
        for line in text.splitlines():
            # roled's last word is shown whatever loglevel says.
            log.line(f"roled: INFO {line}")
        if verdict.code != EXIT_OK:
            report.write_termination_log(self._termination_log(), log.mask(text))

    def _termination_log(self) -> Path | None:
        if self.settings is not None:
            return self.settings.termination_log
        from roled.settings import default_termination_log  # noqa: PLC0415

        value = self.environ.get("ROLED_TERMINATION_LOG")
        return Path(value) if value else default_termination_log()

    # -- roled's own failure -----------------------------------------------------------------

    def abort(self) -> None:
        """Stop the planner and supervisord, if started, and sweep what is left."""
        kill_grace = self.settings.kill_grace if self.settings is not None else 3.0
        self._close_planner()
        if self.logs is not None and not self.pid:
            # Nothing writes into the FIFOs yet; their descriptors may be what ran out.
            self.logs.close(FLUSH_TIMEOUT)
            self.logs.detach(FLUSH_TIMEOUT)
            self.logs = None
        if self.pid and not self.ended:
            init.stop_child(self.pid, kill_grace)
            self.ended = True
        init.sweep(kill_grace)

    def contain(self, exc: Exception) -> int:
        """A bug in roled: say so in one line (the traceback after it), stop supervisord and
        everything else, and exit with roled's own code, never leaving programs running."""
        log.error(f"internal error, stopping everything: {type(exc).__name__}: {exc}")
        import traceback  # noqa: PLC0415 (PID 1 keeps what it imports: only for this)

        for line in traceback.format_exception(exc):
            for part in line.rstrip("\n").splitlines():
                log.line(part)
        with contextlib.suppress(Exception):
            self.abort()
        with contextlib.suppress(Exception):
            self._finish(Verdict(EXIT_INTERNAL, f"roled failed: {type(exc).__name__}: {exc}"))
        return EXIT_INTERNAL

    def close(self) -> None:
        if self.requests is not None:
            self.requests.close()
        if self.logs is not None:
            self.logs.close(FLUSH_TIMEOUT)
            self.logs.detach(FLUSH_TIMEOUT)
        if self.client is not None:
            self.client.close()
        if self.events is not None:
            self.events.close()
        self._close_planner()
        if self.inotify is not None:
            self.inotify.close()
        self.probes.close()
        if self.notify is not None:
            self.notify.close()
        self.selector.close()
        if self.directory is not None:
            self.directory.remove()
