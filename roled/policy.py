"""What a program's transition means for the container: nothing, a warning, or a verdict.

Pure: it sees states, transitions and the time it is given, never processes or signals. The
exit policy (``ROLED_EXIT_ON``, ``ROLED_NONCRITICAL``, ``ROLED_MAIN``, ``ROLED_MAX_RESTARTS``,
``ROLED_EXIT_WHEN_DONE``) is parsed here too, so its errors read the same everywhere.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from roled.errors import EXIT_FAILED, EXIT_OK, RoledError
from roled.model import ProcessState, ProgramConfig
from roled.programs import matches, names_of

EXIT_ON = ("fatal", "unexpected", "any")
# States in which a program has ended on its own (supervisord may still start it again).
ENDED = frozenset({ProcessState.EXITED, ProcessState.BACKOFF, ProcessState.FATAL})
# States in which a program is, or is about to be, alive.
ALIVE = frozenset(
    {ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STOPPING}
)
_BUDGET = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*\Z")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Transition:
    """A program moved from one state to another (supervisor's state names).

    ``expected`` is supervisord's own judgement of an exit (the EXITED event carries it);
    ``exitstatus`` is the exit status when it is known (-1: killed by a signal).
    """

    program: str
    from_state: ProcessState
    to_state: ProcessState
    expected: bool | None = None
    exitstatus: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why roled stops the container, and the exit code it will report."""

    code: int
    reason: str
    programs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notice:
    """A failure the exit policy forgives: logged as a warning, the container keeps running."""

    reason: str
    program: str


@dataclass(frozen=True, slots=True)
class Budget:
    """A crash-loop budget: more than ``restarts`` restarts within ``seconds`` is a failure."""

    restarts: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.restarts}/{self.seconds:g}"


@dataclass(frozen=True, slots=True)
class Rules:
    """The exit policy: which of a program's endings end the container, and with what code."""

    exit_on: str = "fatal"
    noncritical: tuple[str, ...] = ()
    main: str | None = None
    max_restarts: Budget | None = None
    exit_when_done: bool = False

    def is_noncritical(self, program: str) -> bool:
        return any(matches(glob, program) for glob in self.noncritical)

    def is_main(self, program: str) -> bool:
        return self.main is not None and self.main in names_of(program)


# -- parsing the settings -----------------------------------------------------------------------


def parse_exit_on(value: str, origin: str) -> str:
    policy = value.strip().lower()
    if policy not in EXIT_ON:
        raise RoledError(f"{origin}: unknown exit policy {value!r} (choose {', '.join(EXIT_ON)})")
    return policy


def parse_budget(value: str, origin: str) -> Budget | None:
    """``N/SECONDS``: ``5/60`` is more than 5 restarts within 60 s; ``none`` is no budget."""
    if value.strip().lower() in {"", "none", "off"}:
        return None
    match = _BUDGET.match(value)
    seconds = float(match.group(2)) if match else math.nan
    if not math.isfinite(seconds) or seconds <= 0 or match is None:
        raise RoledError(
            f"{origin}: expected RESTARTS/SECONDS such as 5/60 (more than 5 restarts within "
            f"60 s is a failure), got {value!r}"
        )
    return Budget(int(match.group(1)), seconds)


def parse_names(value: str) -> tuple[str, ...]:
    """Program names or globs, separated by commas and/or whitespace, duplicates dropped."""
    return tuple(dict.fromkeys(name for name in re.split(r"[,\s]+", value) if name))


def parse_bool(value: str, origin: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise RoledError(f"{origin}: expected true or false, got {value!r}")


def check_main(rules: Rules, processes: Iterable[str], origin: str = "ROLED_MAIN") -> None:
    """A main program must be one that runs: a typo would otherwise never end the container."""
    known = list(processes)
    if rules.main is not None and not any(rules.is_main(namespec) for namespec in known):
        listed = ", ".join(sorted(known)) or "none"
        raise RoledError(
            f"{origin}: {rules.main!r} is not a program, group or process of the selected roles "
            f"(processes: {listed})"
        )


# -- judging ------------------------------------------------------------------------------------


def healthy(state: ProcessState, exitstatus: int, config: ProgramConfig) -> bool:
    """What a probe calls fine: running, a one-shot done as expected, or never meant to start."""
    if state == ProcessState.RUNNING:
        return True
    if state == ProcessState.EXITED:
        expected = config.expects(exitstatus)
        return expected and not config.restarts_after(expected)
    return state == ProcessState.STOPPED and not config.autostart


def describe_exit(exitstatus: int | None) -> str:
    """How a program ended; empty when supervisord no longer knows (it restarted it since)."""
    if exitstatus is None:
        return ""
    if exitstatus < 0:
        return "killed by a signal"
    return f"exit status {exitstatus}"


def _parenthesized(text: str) -> str:
    return f" ({text})" if text else ""


class Policy:
    """The exit policy applied to transitions as they come, with the restart history it needs."""

    __slots__ = ("_expected", "_restarts", "_started", "configs", "rules")

    def __init__(self, rules: Rules, configs: Mapping[str, ProgramConfig] | None = None) -> None:
        self.rules = rules
        self.configs: dict[str, ProgramConfig] = dict(configs or {})
        self._restarts: dict[str, collections.deque[float]] = {}
        self._expected: dict[str, bool] = {}
        self._started: set[str] = set()

    def configure(self, configs: Mapping[str, ProgramConfig]) -> None:
        """Learn each program's autostart, autorestart and exitcodes (asked of supervisord)."""
        self.configs = dict(configs)

    def config(self, program: str) -> ProgramConfig:
        return self.configs.get(program, ProgramConfig())

    def judge(self, transition: Transition, now: float) -> Verdict | Notice | None:
        """The consequence of one transition observed at ``now`` (monotonic seconds)."""
        program = transition.program
        if transition.to_state not in {ProcessState.STOPPED, ProcessState.UNKNOWN}:
            self._started.add(program)
        expected = self._expected_exit(transition)
        if transition.to_state == ProcessState.EXITED:
            self._expected[program] = expected
        if self.rules.is_main(program) and transition.to_state in ENDED:
            return self._main_ended(transition, expected)
        return self._judged(program, self._failure(transition, expected, now))

    def restarted(self, program: str, now: float) -> Verdict | Notice | None:
        """roled restarted the program itself (its alive check failed): that counts against
        ROLED_MAX_RESTARTS as supervisord's own restarts do."""
        return self._judged(program, self._count_restart(program, now))

    def _judged(self, program: str, failure: str | None) -> Verdict | Notice | None:
        if failure is None:
            return None
        if self.rules.is_noncritical(program):
            # Forget the loop it was in, so the next warning needs a fresh one.
            self._restarts.pop(program, None)
            return Notice(failure, program)
        return Verdict(EXIT_FAILED, failure, (program,))

    def _expected_exit(self, transition: Transition) -> bool:
        if transition.expected is not None:
            return transition.expected
        if transition.exitstatus is None:
            return True
        return self.config(transition.program).expects(transition.exitstatus)

    def _failure(self, transition: Transition, expected: bool, now: float) -> str | None:
        program, state = transition.program, transition.to_state
        if state == ProcessState.FATAL:
            return f"program {program!r} is FATAL"
        if state == ProcessState.STARTING and transition.from_state in {
            ProcessState.EXITED,
            ProcessState.BACKOFF,
        }:
            looping = self._count_restart(program, now)
            if looping is not None:
                return looping
        if self.rules.exit_on == "fatal":
            return None
        if state == ProcessState.BACKOFF:
            return f"program {program!r} exited while starting (BACKOFF)"
        if state != ProcessState.EXITED:
            return None
        status = _parenthesized(describe_exit(transition.exitstatus))
        if not expected:
            return f"program {program!r} exited unexpectedly{status}"
        if self.rules.exit_on == "any":
            return f"program {program!r} exited{status} and ROLED_EXIT_ON is 'any'"
        return None

    def _count_restart(self, program: str, now: float) -> str | None:
        budget = self.rules.max_restarts
        if budget is None:
            return None
        history = self._restarts.setdefault(program, collections.deque())
        history.append(now)
        while history and history[0] < now - budget.seconds:
            history.popleft()
        if len(history) <= budget.restarts:
            return None
        return (
            f"program {program!r} restarted {len(history)} times within {budget.seconds:g}s "
            f"(ROLED_MAX_RESTARTS is {budget})"
        )

    def _main_ended(self, transition: Transition, expected: bool) -> Verdict:
        program = transition.program
        if transition.to_state == ProcessState.BACKOFF:
            # supervisord forgets the exit status of an exit within startsecs.
            return Verdict(
                EXIT_FAILED,
                f"main program {program!r} exited while starting (within startsecs)",
                (program,),
            )
        if transition.to_state == ProcessState.FATAL:
            return Verdict(EXIT_FAILED, f"main program {program!r} is FATAL", (program,))
        code = self._main_code(transition, expected)
        reason = (
            f"main program {program!r} exited{_parenthesized(describe_exit(transition.exitstatus))}"
        )
        return Verdict(code, reason, (program,) if code != EXIT_OK else ())

    def _main_code(self, transition: Transition, expected: bool) -> int:
        status = transition.exitstatus
        if status is not None and 0 <= status <= 255:
            return status
        exitcodes = self.config(transition.program).exitcodes
        if status is None and expected and len(exitcodes) == 1:
            # Restarted before roled could ask; supervisord said it was expected, so one code.
            return exitcodes[0]
        return EXIT_FAILED

    def done(self, states: Mapping[str, ProcessState]) -> Verdict | None:
        """With exit_when_done: every program has ended for good, so the container is done.

        ``states`` must be the whole table (a process not reported yet is UNKNOWN): judged on
        part of it, a one-shot that ended first would end the container. No program at all is
        done at once.
        """
        if not self.rules.exit_when_done:
            return None
        for program, state in states.items():
            config = self.config(program)
            if state in ALIVE or state == ProcessState.UNKNOWN:
                return None
            if state == ProcessState.EXITED and config.restarts_after(
                self._expected.get(program, True)
            ):
                return None
            if state == ProcessState.STOPPED and config.autostart and program not in self._started:
                return None
        failed = tuple(
            program
            for program, state in sorted(states.items())
            if (
                state == ProcessState.FATAL
                or (state == ProcessState.EXITED and not self._expected.get(program, True))
            )
            and not self.rules.is_noncritical(program)
        )
        if failed:
            named = ", ".join(repr(program) for program in failed)
            return Verdict(EXIT_FAILED, f"every program is done, but {named} failed", failed)
        return Verdict(EXIT_OK, "every program is done")


# -- supervisord ending on its own -----------------------------------------------------------------

# How soon after a program failed supervisord may end on its own for the failure to be the
# reason: exit-on-failure listeners (kill $PPID, kill $(cat pidfile)) act within a second.
BLAME_WINDOW = 10.0


@dataclass(frozen=True, slots=True)
class Failure:
    """A program's failure and when roled saw it."""

    program: str
    what: str
    at: float


def failure_of(transition: Transition, now: float) -> Failure | None:
    """The transition as a failure an exit-on-failure listener reacts to, if it is one."""
    if transition.to_state == ProcessState.FATAL:
        return Failure(transition.program, "went FATAL", now)
    if transition.to_state == ProcessState.BACKOFF:
        return Failure(transition.program, "exited too quickly (BACKOFF)", now)
    if transition.to_state == ProcessState.EXITED and transition.expected is False:
        status = "" if transition.exitstatus is None else f" with status {transition.exitstatus}"
        return Failure(transition.program, f"exited unexpectedly{status}", now)
    return None


def blame_own_end(failure: Failure | None, ended_at: float) -> Verdict | None:
    """supervisord ended on its own right after a program failed: that program is the reason.

    Images end supervisord from an event listener when a program fails; the container's exit
    then says which program, not only that supervisord is gone.
    """
    if failure is None or ended_at - failure.at > BLAME_WINDOW:
        return None
    return Verdict(
        EXIT_FAILED,
        f"supervisord ended on its own right after program {failure.program!r} {failure.what}",
        (failure.program,),
    )
