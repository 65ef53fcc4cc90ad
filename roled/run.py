"""The main loop: start supervisord, watch it, turn what happens into the container's exit code."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import time
from collections.abc import Callable, Mapping

from roled import init, log, plan, policy
from roled.assemble import LISTENER, Assembly, Runtime
from roled.init import Exit, SignalQueue, signal_name
from roled.policy import Transition, Verdict
from roled.runtime import RuntimeDir, instance_of
from roled.settings import Settings
from roled.supervisor import Client, Event, EventChannel, Unavailable, supervisord_argv

# How often to try supervisord's socket while it starts; cheap, and start-up is latency-bound.
CONNECT_INTERVAL = 0.02
# A single XML-RPC call never blocks the loop longer than this.
CALL_TIMEOUT = 1.0
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def run(settings: Settings, environ: Mapping[str, str]) -> int:
    """Assemble, start supervisord, supervise until it ends; the container's exit code."""
    runtime = Runtime(settings.runtime_dir, secrets.token_urlsafe(32))
    assembly = plan.build(settings, runtime, environ)
    for warning in assembly.warnings:
        log.warning(warning)
    directory = RuntimeDir(settings.runtime_dir)
    directory.acquire()
    try:
        directory.make_dir("logs")
        directory.make_fifo("events")
        directory.write("supervisord.conf", assembly.text)
        directory.publish(instance_of(assembly.control, os.getpid()))
        return Supervision(settings, assembly, runtime, dict(environ)).run()
    finally:
        directory.remove()


class Supervision:
    """One supervisord from spawn to reaping, and the verdict on how it went."""

    def __init__(
        self,
        settings: Settings,
        assembly: Assembly,
        runtime: Runtime,
        environ: dict[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.assembly = assembly
        self.clock = clock
        self.signals = SignalQueue()
        self.events = EventChannel(runtime.events)
        self.client = Client(assembly.control, CALL_TIMEOUT)
        self.runtime = runtime
        self.environ = environ
        self.states: dict[str, str] = {}
        self.pid = 0
        self.connected = False
        self.shutting_down = False
        self.stop_requested = False
        self.verdict: Verdict | None = None
        self.ended: Exit | None = None
        self.started_at = 0.0
        self.last_answer = 0.0
        self.next_call = 0.0
        self.deadline: float | None = None

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        # Handlers before the spawn, so a SIGTERM during start-up is a stop, not a lost signal.
        self.signals.install()
        try:
            init.become_subreaper()
            self.pid = init.spawn(supervisord_argv(self.runtime.config), self.environ)
            self.started_at = self.last_answer = self.next_call = self.clock()
            while self.ended is None:
                self._wait()
                for signum in self.signals.take():
                    self._on_signal(signum)
                for event in self.events.read():
                    self._on_event(event)
                self._on_timers()
            return self._finish()
        finally:
            self.client.close()
            self.events.close()
            self.signals.uninstall()

    def _wait(self) -> None:
        wakeups = [self.next_call]
        if self.deadline is not None:
            wakeups.append(self.deadline)
        timeout = max(0.0, min(wakeups) - self.clock())
        select.select([self.signals.fileno, self.events.fileno], [], [], timeout)

    # -- signals ---------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            ended = init.reap_children(self.pid)
            if ended is not None:
                self.ended = ended
        elif signum in STOP_SIGNALS:
            if signum == signal.SIGINT and self.stop_requested:
                self._kill_now("a second SIGINT while stopping")
            else:
                self._stop(Verdict(policy.EXIT_OK, f"stopped on request ({signal_name(signum)})"))
        elif signum == signal.SIGUSR2:
            log.info("SIGUSR2: asking supervisord to reopen its logs")
            self._signal_supervisord(signal.SIGUSR2)
        elif signum == signal.SIGUSR1:
            log.warning("SIGUSR1 ignored: supervisord has no handler for it and would die")
        elif signum == signal.SIGHUP:
            log.warning("SIGHUP ignored: live reload is not available yet")

    def _signal_supervisord(self, signum: int) -> None:
        # Already gone is fine: its SIGCHLD is on the way.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    # -- events and states -------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.name == "LISTENER_READY":
            # A (re)started listener may have missed transitions: ask for the whole picture.
            self.next_call = self.clock()
        elif event.name == "SUPERVISOR_STATE_CHANGE_STOPPING":
            self.shutting_down = True
        elif event.name.startswith("PROCESS_STATE_"):
            group = event.fields.get("groupname", "")
            if group == LISTENER:
                return
            name = event.fields.get("processname", "")
            program = name if group == name else f"{group}:{name}"
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
        self.states[transition.program] = transition.to_state
        verdict = policy.judge(transition)
        if verdict is None or self.stop_requested:
            return
        log.error(f"{verdict.reason}: {self._why(transition.program)}")
        self._stop(verdict)

    def _why(self, program: str) -> str:
        try:
            info = self.client.process(program)
        except Unavailable:
            return "supervisord did not say why"
        return info.spawnerr or info.description or info.statename

    def _sync(self) -> None:
        """Read every program's state over XML-RPC and judge what changed."""
        processes = self.client.processes()
        if not self.connected:
            self.connected = True
            names = ", ".join(info.namespec for info in processes) or "none"
            log.info(f"supervisord is up (pid {self.pid}); programs: {names}")
        for info in processes:
            before = self.states.get(info.namespec, "UNKNOWN")
            if before != info.statename:
                self._transition(Transition(info.namespec, before, info.statename))

    # -- timers ----------------------------------------------------------------------------

    def _on_timers(self) -> None:
        now = self.clock()
        if self.deadline is not None and now >= self.deadline:
            self._kill_now(f"the shutdown deadline of {self.settings.shutdown_timeout:g}s passed")
            return
        if now < self.next_call or self.stop_requested or self.shutting_down:
            return
        try:
            self._sync()
        except Unavailable as exc:
            self._on_silence(now, exc)
            return
        self.last_answer = now
        self.next_call = now + max(self.settings.hang_timeout / 2, CONNECT_INTERVAL)

    def _on_silence(self, now: float, exc: Unavailable) -> None:
        silent_for = now - self.last_answer
        if silent_for >= self.settings.hang_timeout and self.ended is None:
            what = "did not start answering" if not self.connected else "stopped answering"
            log.error(f"supervisord {what} for {silent_for:.1f}s ({exc}): killing it")
            self.verdict = Verdict(policy.EXIT_SUPERVISORD, f"supervisord {what}")
            self.stop_requested = True
            self._signal_supervisord(signal.SIGKILL)
        self.next_call = now + (CALL_TIMEOUT if self.connected else CONNECT_INTERVAL)

    # -- stopping --------------------------------------------------------------------------

    def _stop(self, verdict: Verdict) -> None:
        """Ask supervisord to stop every program; a repeated request changes nothing."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self.verdict = verdict
        self.deadline = self.clock() + self.settings.shutdown_timeout
        log.info(f"stopping all programs: {verdict.reason}")
        self._signal_supervisord(signal.SIGTERM)

    def _running_programs(self) -> tuple[str, ...]:
        return tuple(
            program
            for program, state in sorted(self.states.items())
            if state not in {"STOPPED", "EXITED", "FATAL", "UNKNOWN"}
        )

    def _kill_now(self, why: str) -> None:
        programs = self._running_programs()
        named = ", ".join(repr(program) for program in programs) or "no program"
        log.error(f"{why}: killing {named} and everything else left")
        self.verdict = Verdict(policy.EXIT_KILLED, f"{why}; killed {named}", programs)
        self.stop_requested = True
        self.deadline = None
        self._signal_supervisord(signal.SIGKILL)
        init.kill_tree()
        if self.ended is None:
            self.ended = Exit(None, signal.SIGKILL)

    def _finish(self) -> int:
        ended = self.ended or Exit(None, None)
        leftovers = init.sweep(self.settings.kill_grace)
        if leftovers:
            log.warning(f"killed leftover processes: {', '.join(leftovers)}")
        verdict = self.verdict or self._unrequested_end(ended)
        if verdict.code == policy.EXIT_OK and ended.code != 0:
            verdict = Verdict(
                policy.EXIT_SUPERVISORD,
                f"supervisord ended badly while stopping ({ended.describe()})",
            )
        log.info(f"exiting with code {verdict.code}: {verdict.reason}")
        return verdict.code

    def _unrequested_end(self, ended: Exit) -> Verdict:
        fatal = tuple(program for program, state in sorted(self.states.items()) if state == "FATAL")
        if fatal:
            named = ", ".join(repr(program) for program in fatal)
            return Verdict(policy.EXIT_FAILED, f"program {named} is FATAL", fatal)
        if not self.connected:
            return Verdict(
                policy.EXIT_SUPERVISORD, f"supervisord failed to start ({ended.describe()})"
            )
        return Verdict(
            policy.EXIT_SUPERVISORD, f"supervisord exited on its own ({ended.describe()})"
        )
