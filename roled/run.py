"""The main loop: start supervisord, watch it, turn what happens into the container's exit code."""

from __future__ import annotations

import base64
import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from roled import compat, init, log, policy, report
from roled.errors import RoledError
from roled.init import Exit, SignalQueue, signal_name
from roled.logformat import Formatter
from roled.logs import ENDED_STATES, LogPump, make_fifos
from roled.model import LISTENER, Assembly, Process, Runtime, stop_levels, worst_stop_seconds
from roled.policy import Notice, Policy, Transition, Verdict
from roled.report import ProgramReport
from roled.rpc import Fault
from roled.runtime import RuntimeDir, instance_of
from roled.settings import Settings
from roled.supervisor import (
    Client,
    Event,
    EventChannel,
    ProcessInfo,
    Unavailable,
    namespec,
    supervisord_argv,
)

# How often to try supervisord's socket while it starts; cheap, and start-up is latency-bound.
CONNECT_INTERVAL = 0.02
# A single XML-RPC call never blocks the loop longer than this.
CALL_TIMEOUT = 1.0
# While roled waits on stops or a reload it asks supervisord this often: an event made when
# supervisord reaps a child is only dispatched on its next loop iteration, up to 1 s later,
# and each request both answers with the states and wakes that loop.
RESYNC_INTERVAL = 0.05
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
# A SIGINT this soon after the first is the same one delivered twice (GNU timeout, and process
# managers that signal a whole process group, send it to the process and to its group), not a
# person pressing Ctrl-C again.
REPEAT_INTERVAL = 0.5
DOWN_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})
# How long the failure report waits for the log reader to catch up with a failed program.
TAIL_WAIT = 0.5
# The planner reads and validates every config file; a hung filesystem must not hang PID 1.
PLAN_TIMEOUT = 120.0
# At exit, how long output may take to be written before what is left is dropped (and counted).
FLUSH_TIMEOUT = 2.0


Plan = tuple[Settings, Assembly]


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Plan, start supervisord, supervise until it ends; the container's exit code.

    argv is roled's own command line: the planner process resolves it again, on start-up
    and on every reload.
    """
    password = base64.urlsafe_b64encode(os.urandom(24)).decode()
    directory: RuntimeDir | None = None

    def prepare(path: Path) -> None:
        nonlocal directory
        acquired = RuntimeDir(path)
        acquired.acquire()
        # Only a directory roled holds the lock of is ever removed.
        directory = acquired
        directory.make_dir("logs")

    try:
        settings, assembly = plan_in_child(argv, password, prepare)
        assert directory is not None
        log.configure(Formatter(settings.log_format))
        log.follow_loglevel(supervisord_loglevel(assembly))
        for warning in assembly.warnings:
            log.warning(warning)
        settings = with_stop_deadline(settings, assembly.processes)
        directory.make_fifo("events")
        directory.write("supervisord.conf", assembly.text)
        directory.publish(instance_of(assembly.control, os.getpid()))
        return Supervision(
            settings,
            assembly,
            Runtime(settings.runtime_dir, password),
            directory,
            dict(environ),
            replan=lambda: plan_in_child(argv, password, None),
        ).run()
    finally:
        if directory is not None:
            directory.remove()


def plan_in_child(
    argv: Sequence[str], password: str, prepare: Callable[[Path], None] | None
) -> Plan:
    """Settings and the validated assembly, from a planner process (``roled.plan``).

    prepare gets the runtime directory before the planner validates (supervisor wants the
    log folder there to exist); a user mistake comes back as RoledError.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "roled.plan", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(f"{password}\n".encode())
        child.stdin.flush()
        line = child.stdout.readline()
        answer = b""
        if line.startswith(b"RUNTIME "):
            if prepare is not None:
                prepare(Path(os.fsdecode(bytes.fromhex(line.split()[1].decode()))))
            answer = b"GO\n"
        out, err = child.communicate(answer, timeout=PLAN_TIMEOUT)
    except BaseException:
        child.kill()
        child.wait()
        raise
    message = err.decode(errors="replace").strip()
    if child.returncode == policy.EXIT_USAGE:
        raise RoledError(message)
    if child.returncode != 0:
        raise RuntimeError(f"the planner failed with exit status {child.returncode}:\n{message}")
    settings, assembly = pickle.loads(out)
    return settings, assembly


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


@dataclass(slots=True)
class Reload:
    """A reload under way: groups to stop and remove first, then groups to add."""

    remove: list[str]
    add: list[str]
    summary: str


class Supervision:
    """One supervisord from spawn to reaping, and the verdict on how it went."""

    def __init__(
        self,
        settings: Settings,
        assembly: Assembly,
        runtime: Runtime,
        directory: RuntimeDir,
        environ: dict[str, str],
        *,
        replan: Callable[[], Plan],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.assembly = assembly
        self.runtime = runtime
        self.directory = directory
        self.environ = environ
        self.clock = clock
        self.replan = replan
        self.signals = SignalQueue()
        self.events = EventChannel(runtime.events)
        self.client = Client(assembly.control, CALL_TIMEOUT)
        self.logs = LogPump(settings.log_format)
        self.states: dict[str, str] = {}
        # The listener that announced itself; while supervisord runs another, events may be
        # missing and every check is a full sync.
        self.listener_pid = 0
        self.groups: dict[str, str] = {}
        self.infos: dict[str, ProcessInfo] = {}
        self.policy = Policy(settings.rules, assembly.configs())
        self.redirects: dict[str, bool] = {}
        self._adopt(assembly)
        self.details: tuple[ProgramReport, ...] = ()
        self.pid = 0
        self.in_sync = False
        self.connected = False
        self.shutting_down = False
        self.stop_requested = False
        self.levels: list[list[Process]] | None = None
        self.level_sent = False
        self.reload: Reload | None = None
        self.verdict: Verdict | None = None
        self.ended: Exit | None = None
        self.last_answer = 0.0
        self.next_call = 0.0
        self.deadline: float | None = None
        self.first_interrupt = 0.0
        # The last program failure, and when supervisord began to end without roled asking.
        self.last_failure: compat.Failure | None = None
        self.own_end_at: float | None = None
        # roled SIGTERMed supervisord itself: before its handlers are installed (a stop during
        # start-up) that kills it, with no program started yet.
        self.sent_sigterm = False

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        # Handlers before the spawn, so a SIGTERM during start-up is a stop, not a lost signal.
        self.signals.install()
        try:
            init.become_subreaper()
            # Read ends open before supervisord opens the write ends of its log FIFOs.
            self.logs.watch(make_fifos(self.assembly.streams))
            output = self.logs.capture()
            self.logs.start()
            try:
                self.pid = init.spawn(supervisord_argv(self.runtime.config), self.environ, output)
            finally:
                os.close(output)
            self.last_answer = self.next_call = self.clock()
            while self.ended is None:
                self._wait()
                self._on_signals(self.signals.take())
                for event in self.events.read():
                    self._on_event(event)
                self._on_timers()
                self._advance()
            return self._finish()
        finally:
            self.logs.close(FLUSH_TIMEOUT)
            self.logs.detach(FLUSH_TIMEOUT)
            self.client.close()
            self.events.close()
            self.signals.uninstall()

    def _wait(self) -> None:
        wakeups = [self.next_call]
        if self.deadline is not None:
            wakeups.append(self.deadline)
        timeout = max(0.0, min(wakeups) - self.clock())
        select.select([self.signals.fileno, self.events.fileno], [], [], timeout)

    def _advance(self) -> None:
        """Move an ordered stop or a reload on, once what it waits for has happened."""
        if self.ended is not None:
            return
        if self.levels is not None:
            self._advance_stop()
        elif self.reload is not None:
            self._advance_reload()

    # -- signals ---------------------------------------------------------------------------

    def _on_signals(self, signums: list[int]) -> None:
        # In a storm the same signal may arrive many times: reap, reload and forward once
        # per wake-up, but count every SIGINT (the second one means "stop now").
        seen: set[int] = set()
        for signum in signums:
            if signum in seen and signum not in STOP_SIGNALS:
                continue
            seen.add(signum)
            self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            ended = init.reap_children(self.pid)
            if ended is not None:
                self.ended = ended
        elif signum in STOP_SIGNALS:
            now = self.clock()
            if signum == signal.SIGINT and self.stop_requested:
                if now - self.first_interrupt >= REPEAT_INTERVAL:
                    self._kill_now("a second SIGINT while stopping")
            else:
                self.first_interrupt = now
                self._stop(Verdict(policy.EXIT_OK, f"stopped on request ({signal_name(signum)})"))
        elif signum == signal.SIGHUP:
            self._start_reload()
        elif signum == signal.SIGUSR2:
            log.info("SIGUSR2: asking supervisord to reopen its logs")
            self._signal_supervisord(signal.SIGUSR2)
        elif signum == signal.SIGUSR1:
            log.warning("SIGUSR1 ignored: supervisord has no handler for it and would die")

    def _signal_supervisord(self, signum: int) -> None:
        # Already gone is fine: its SIGCHLD is on the way.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    # -- events and states -------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.name == "LISTENER_READY":
            # A (re)started listener may have missed transitions: ask for the whole picture.
            self.listener_pid = int(event.fields.get("pid", "0"))
            self.in_sync = False
            self.next_call = self.clock()
        elif event.name == "SUPERVISOR_STATE_CHANGE_STOPPING":
            self.shutting_down = True
            self.own_end_at = self.clock()
        elif event.name.startswith("PROCESS_STATE_"):
            group = event.fields.get("groupname", "")
            name = event.fields.get("processname", "")
            program = namespec(group, name)
            if event.name.removeprefix("PROCESS_STATE_") in ENDED_STATES:
                self.logs.finished(program)
            if group == LISTENER:
                return
            self.groups[program] = group
            expected = event.fields.get("expected")
            self._transition(
                Transition(
                    program,
                    event.fields.get("from_state", "UNKNOWN"),
                    event.name.removeprefix("PROCESS_STATE_"),
                    None if expected is None else expected == "1",
                )
            )

    def _transition(self, transition: Transition) -> None:
        if self.states.get(transition.program) == transition.to_state:
            # Already seen through the other channel (an event and a sync can both report it).
            return
        self.states[transition.program] = transition.to_state
        if self.stop_requested:
            return
        if transition.to_state == "EXITED" and transition.exitstatus is None:
            transition = replace(transition, exitstatus=self._exitstatus(transition.program))
        failure = compat.failure_of(transition, self.clock())
        if failure is not None:
            # Kept for when supervisord ends on its own: an image's listener may end it.
            self.last_failure = failure
        outcome = self.policy.judge(transition, self.clock())
        if outcome is None and self.connected:
            outcome = self.policy.done(self.states)
        if isinstance(outcome, Notice):
            why = self._gather(outcome.program, transition).why
            log.warning(f"{outcome.reason}: {why}; it is non-critical, so roled carries on")
        elif outcome is not None:
            self._judged(outcome, transition)

    def _exitstatus(self, program: str) -> int | None:
        # Only while it is still EXITED: a restart resets supervisord's record of it.
        try:
            info = self.client.process(program)
        except (Unavailable, Fault):
            return None
        return info.exitstatus if info.statename == "EXITED" else None

    def _judged(self, verdict: Verdict, transition: Transition) -> None:
        """Keep what supervisord can tell about the programs at fault, then stop everything."""
        self.details = tuple(
            self._gather(program, transition) for program in verdict.programs if verdict.code
        )
        why = "; ".join(f"{detail.why}" for detail in self.details)
        if verdict.code == policy.EXIT_OK:
            log.info(verdict.reason)
        else:
            log.error(f"{verdict.reason}: {why}" if why else verdict.reason)
        self._stop(verdict)

    def _gather(self, program: str, transition: Transition) -> ProgramReport:
        own = transition.program == program
        return report.gather(
            self.client,
            program,
            transition.to_state if own else self.states.get(program, "UNKNOWN"),
            transition.exitstatus if own else None,
            self.infos.get(program),
            redirect_stderr=self.redirects.get(program, False),
            carried=lambda name, channel: self.logs.tail(name, channel, TAIL_WAIT),
        )

    def _check(self, waiting: bool) -> None:
        """Prove supervisord answers; read every state only when events may have been missed.

        The cheap check asks about roled's own listener: if it is the one that announced
        itself, events are flowing and the full picture is already known. While a stop or a
        reload waits, every state is read each time: supervisord hands a listener one event
        per loop pass, so hundreds of stops would trickle in as events for seconds.
        """
        if self.in_sync and not waiting:
            try:
                listener = self.client.process(LISTENER)
            except Fault:
                listener = None
            if listener and listener.pid == self.listener_pid and listener.statename == "RUNNING":
                return
        self._sync()
        self.in_sync = self.listener_pid != 0

    def _sync(self) -> None:
        """Read every program's state over XML-RPC and judge what changed."""
        processes = self.client.processes()
        self.infos = {info.namespec: info for info in processes}
        if not self.connected:
            self.connected = True
            names = ", ".join(info.namespec for info in processes) or "none"
            log.info(f"supervisord is up (pid {self.pid}); programs: {names}")
        for info in processes:
            self.groups[info.namespec] = info.group
            before = self.states.get(info.namespec, "UNKNOWN")
            if before != info.statename:
                exitstatus = info.exitstatus if info.statename == "EXITED" else None
                self._transition(
                    Transition(info.namespec, before, info.statename, exitstatus=exitstatus)
                )

    # -- timers ----------------------------------------------------------------------------

    def _on_timers(self) -> None:
        now = self.clock()
        if self.deadline is not None and now >= self.deadline:
            self._kill_now(f"the shutdown deadline of {self.settings.shutdown_timeout:g}s passed")
            return
        if now < self.next_call:
            return
        waiting = self.levels is not None or self.reload is not None
        if self.shutting_down or (self.stop_requested and not waiting):
            self._wake_supervisord()
            self.next_call = now + RESYNC_INTERVAL
            return
        if self.logs.holding_back:
            # supervisord may be blocked writing output that roled holds back: not a hang.
            self.last_answer = now
            self.next_call = now + CALL_TIMEOUT
            return
        try:
            self._check(waiting)
        except Unavailable as exc:
            self._on_silence(now, exc)
            return
        self.last_answer = now
        # Decided after the check, which may itself have started a stop or judged a program.
        busy = self.stop_requested or self.levels is not None or self.reload is not None
        interval = RESYNC_INTERVAL if busy else self.settings.hang_timeout / 2
        self.next_call = now + max(interval, CONNECT_INTERVAL)

    def _wake_supervisord(self) -> None:
        """Make supervisord's loop turn while it shuts down.

        When a child's pipes close before the child can be reaped, nothing else wakes that
        loop for up to a second (SIGCHLD does not interrupt its poll); a request does.
        """
        with contextlib.suppress(Unavailable, Fault):
            self.client.state()

    def _on_silence(self, now: float, exc: Unavailable) -> None:
        silent_for = now - self.last_answer
        if silent_for >= self.settings.hang_timeout and self.ended is None:
            what = "did not start answering" if not self.connected else "stopped answering"
            log.error(f"supervisord {what} for {silent_for:.1f}s ({exc}): killing it")
            self.verdict = Verdict(policy.EXIT_SUPERVISORD, f"supervisord {what}")
            self.stop_requested = True
            self.levels = None
            self._signal_supervisord(signal.SIGKILL)
        self.next_call = now + (CALL_TIMEOUT if self.connected else CONNECT_INTERVAL)

    # -- reloading -------------------------------------------------------------------------

    def _start_reload(self) -> None:
        """Re-assemble; apply the difference as ``supervisorctl update`` would."""
        if self.stop_requested or self.reload is not None:
            log.warning("SIGHUP ignored: a stop or a reload is already under way")
            return
        try:
            _settings, assembly = self.replan()
        except RoledError as exc:
            log.error(f"reload refused, still running the previous config: {exc}")
            return
        if assembly.text == self.assembly.text:
            log.info("SIGHUP: the config has not changed")
            return
        try:
            # New programs' FIFOs must exist and be read before supervisord opens them.
            self.logs.watch(make_fifos(assembly.streams))
            self.directory.replace("supervisord.conf", assembly.text)
            added, changed, removed = self.client.reload_config()
        except (RoledError, Unavailable, Fault) as exc:
            log.error(f"reload failed, still running the previous config: {exc}")
            return
        self._adopt(assembly)
        for warning in assembly.warnings:
            log.warning(warning)
        summary = (
            f"added {added or 'none'}, changed {changed or 'none'}, removed {removed or 'none'}"
        )
        log.info(f"SIGHUP: reloading: {summary}")
        self.reload = Reload(remove=[*changed, *removed], add=[*changed, *added], summary=summary)
        for group in self.reload.remove:
            self._call_quietly(self.client.stop_group, group)
        self.next_call = self.clock() + RESYNC_INTERVAL

    def _advance_reload(self) -> None:
        assert self.reload is not None
        stopping = [
            program
            for program, group in self.groups.items()
            if group in self.reload.remove and self.states.get(program) not in DOWN_STATES
        ]
        if stopping:
            return
        for group in self.reload.remove:
            self._call_quietly(self.client.remove_group, group)
            for program in [p for p, g in self.groups.items() if g == group]:
                del self.groups[program]
                self.states.pop(program, None)
        for group in self.reload.add:
            self._call_quietly(self.client.add_group, group)
        log.info(f"reloaded: {self.reload.summary}")
        self.reload = None
        self.next_call = self.clock()

    def _adopt(self, assembly: Assembly) -> None:
        """Run on this assembly from now on: its programs' configs decide the policy's view."""
        self.assembly = assembly
        self.policy.configure(assembly.configs())
        self.redirects = {p.namespec: p.redirect_stderr for p in assembly.processes}

    def _call_quietly(self, call: Callable[[str], None], name: str) -> None:
        try:
            call(name)
        except (Unavailable, Fault) as exc:
            log.warning(f"{call.__name__}({name!r}) failed: {exc}")

    # -- stopping --------------------------------------------------------------------------

    def _stop(self, verdict: Verdict) -> None:
        """Stop every program, one priority level at a time; a repeated request changes nothing."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self.verdict = verdict
        self.reload = None
        # A supervisord blocked on a full log FIFO could not stop anything.
        self.logs.drain()
        self.deadline = self.clock() + self.settings.shutdown_timeout
        log.info(f"stopping all programs: {verdict.reason}")
        if self.connected and not self.shutting_down:
            # supervisord itself stops one program after another; roled stops each priority
            # level at once, so a stop takes the slowest program of each level, not the sum.
            self.levels = stop_levels(self.assembly.processes)
            self.level_sent = False
            self.next_call = self.clock() + RESYNC_INTERVAL
        else:
            self._shut_supervisord_down()

    def _advance_stop(self) -> None:
        assert self.levels is not None
        while self.levels:
            running = [
                p.namespec for p in self.levels[0] if self.states.get(p.namespec) not in DOWN_STATES
            ]
            if running and not self.level_sent:
                self.level_sent = True
                try:
                    refused = self.client.stop_processes(running)
                except (Unavailable, Fault):
                    break
                for namespec, why in refused.items():
                    # NOT_RUNNING or BAD_NAME: it stopped, or went away with a reload, meanwhile.
                    log.info(f"{namespec!r} needed no stop: {why}")
                return
            if running:
                return
            self.levels.pop(0)
            self.level_sent = False
        # Every program is down (or supervisord stopped answering): supervisord may go.
        self.levels = None
        self._shut_supervisord_down()

    def _shut_supervisord_down(self) -> None:
        # A request wakes supervisord's loop at once. A SIGTERM does not: its handler only
        # records the signal and the interrupted poll() is resumed, so it waits up to 1 s.
        # roled's own listener is stopped in the same breath: supervisord's shutdown goes
        # through one priority group per loop pass, already stopped ones too, and reaches
        # the listener's (the first) last, one wake-up per group.
        try:
            self.client.stop_processes([LISTENER])
            self.client.shutdown()
        except (Unavailable, Fault):
            self.sent_sigterm = True
            self._signal_supervisord(signal.SIGTERM)

    def _running_programs(self) -> tuple[str, ...]:
        return tuple(
            program for program, state in sorted(self.states.items()) if state not in DOWN_STATES
        )

    def _kill_now(self, why: str) -> None:
        programs = self._running_programs()
        named = ", ".join(repr(program) for program in programs) or "no program"
        log.error(f"{why}: killing {named} and everything else left")
        self.verdict = Verdict(policy.EXIT_KILLED, f"{why}; killed {named}", programs)
        self.stop_requested = True
        self.levels = None
        self.deadline = None
        self.logs.drain()
        self._signal_supervisord(signal.SIGKILL)
        init.kill_tree()
        if self.ended is None:
            self.ended = Exit(None, signal.SIGKILL)

    def _finish(self) -> int:
        ended = self.ended or Exit(None, None)
        leftovers = init.sweep(self.settings.kill_grace)
        if leftovers:
            log.warning(f"killed leftover processes: {', '.join(leftovers)}")
        dropped = self.logs.close(FLUSH_TIMEOUT)
        if dropped.lines or dropped.bytes:
            log.warning(f"dropped {dropped.describe()} of output that could not be written")
        verdict = self.verdict or self._unrequested_end(ended)
        stopped_early = self.sent_sigterm and ended.signal == signal.SIGTERM
        if verdict.code == policy.EXIT_OK and ended.code != 0 and not stopped_early:
            verdict = Verdict(
                policy.EXIT_SUPERVISORD,
                f"supervisord ended badly while stopping ({ended.describe()})",
            )
        self._report(verdict)
        return verdict.code

    def _report(self, verdict: Verdict) -> None:
        """roled's last word: the reason line, then on failure the report, also for Kubernetes."""
        details = self.details if verdict.code != policy.EXIT_OK else ()
        text = report.render(verdict.code, verdict.reason, details)
        for line in text.splitlines():
            # roled's last word is shown whatever loglevel says.
            log.line(f"roled: INFO {line}")
        if verdict.code != policy.EXIT_OK:
            report.write_termination_log(self.settings.termination_log, text)

    def _unrequested_end(self, ended: Exit) -> Verdict:
        fatal = tuple(program for program, state in sorted(self.states.items()) if state == "FATAL")
        if fatal:
            named = ", ".join(repr(program) for program in fatal)
            return Verdict(policy.EXIT_FAILED, f"program {named} is FATAL", fatal)
        if not self.connected:
            return Verdict(
                policy.EXIT_SUPERVISORD, f"supervisord failed to start ({ended.describe()})"
            )
        ended_at = self.own_end_at if self.own_end_at is not None else self.clock()
        blamed = compat.blame_own_end(self.last_failure, ended_at)
        if blamed is not None:
            return blamed
        return Verdict(
            policy.EXIT_SUPERVISORD, f"supervisord exited on its own ({ended.describe()})"
        )
