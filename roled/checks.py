"""Health checks: the ``roled_ready``/``roled_alive`` forms and their keys, and the state machine
that decides when each program's checks run and what a run of failures means.

Pure: the time is passed in; probes are run by roled.probes and notifications read by
roled.notify, whose results come back here as calls.
"""

from __future__ import annotations

import enum
import heapq
import math
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from roled.errors import RoledError

READY, ALIVE = "ready", "alive"
KINDS = ("http", "tcp", "exec", "log", "notify")
ON_UNHEALTHY = ("restart", "exit", "ignore")
# Until a ready check first passes it is retried this often, so readiness is noticed within
# about a second whatever the period.
RETRY_INTERVAL = 1.0
# Probes run on a grid of a tenth of their interval (at most a second): those due within the
# same step start together, at most a step late. 100 checks every second then wake roled 10
# times a second instead of 100, and each wake-up costs more than a probe's own sockets.
GRID_SHARE = 10
GRID_MAX = 1.0
# What a result keeps of a probe's output for logs, reports and --json.
OUTPUT_LINES = 10
OUTPUT_CHARS = 2000
# A value quoted in an error is cut here: it is one line, whatever was written.
_QUOTED_CHARS = 200
_HOST = r"\[[^\]/\s]*\]|[^/:\[\]@\s]+"
_URL = re.compile(
    rf"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>{_HOST})(?::(?P<port>[^/]*))?(?P<path>/.*)?\Z",
    re.DOTALL,
)
# A path goes into the request line as written: visible ASCII only, so no header can be forged.
_PATH = re.compile(r"/[\x21-\x7e]*\Z")


@dataclass(frozen=True, slots=True)
class Check:
    """One check as written (``text``) and what a probe needs of it."""

    kind: str
    text: str
    host: str = ""
    port: int = 0
    path: str = ""
    argv: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    @property
    def target(self) -> str:
        """What the check looks at, without its kind: a URL, an address, a command, a regex."""
        return self.text.partition(":")[2] if self.kind in {"exec", "log"} else self.text


@dataclass(frozen=True, slots=True)
class Timing:
    """``roled_check_period``, ``_timeout``, ``_threshold`` and ``_delay``."""

    period: float = 10.0
    timeout: float = 3.0
    threshold: int = 3
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class ProgramChecks:
    """A program's checks, from its parsed ``roled_*`` keys."""

    ready: Check | None = None
    alive: Check | None = None
    on_unhealthy: str = "restart"
    timing: Timing = field(default_factory=Timing)

    def uses_notify(self) -> bool:
        return any(
            check is not None and check.kind == "notify" for check in (self.ready, self.alive)
        )


# -- parsing the keys ---------------------------------------------------------------------------


def _quoted(value: str) -> str:
    text = value if len(value) <= _QUOTED_CHARS else value[:_QUOTED_CHARS] + "..."
    return repr(text)


def parse_ready(value: str, origin: str) -> Check:
    """``roled_ready``: http://, tcp://, exec:, log: or notify."""
    return _parse_check(value, origin, READY)


def parse_alive(value: str, origin: str) -> Check:
    """``roled_alive``: http://, tcp://, exec: or notify (a log line cannot say a program lives)."""
    return _parse_check(value, origin, ALIVE)


_FORMS = "http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND, log:REGEX or notify"


def _parse_check(value: str, origin: str, level: str) -> Check:
    text = value.strip()
    if text == "notify":
        return Check("notify", text)
    scheme, colon, rest = text.partition(":")
    kind = scheme.lower()
    if kind == "exec" and colon:
        return _parse_exec(text, rest, origin)
    if kind == "log" and colon:
        if level == ALIVE:
            raise RoledError(
                f"{origin}: a log: check can only say a program is ready, not that it lives; "
                "use it as roled_ready"
            )
        return _parse_log(text, rest, origin)
    if kind in {"http", "https", "tcp"} and rest.startswith("//"):
        return _parse_url(text, kind, origin)
    raise RoledError(f"{origin}: expected {_FORMS}, got {_quoted(value)}")


def _parse_exec(text: str, command: str, origin: str) -> Check:
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise RoledError(f"{origin}: cannot split the command {_quoted(command)}: {exc}") from None
    if not argv:
        raise RoledError(f"{origin}: exec: needs a command, as in exec:pg_isready -q")
    return Check("exec", text, argv=argv)


def _parse_log(text: str, regex: str, origin: str) -> Check:
    if not regex:
        raise RoledError(f"{origin}: log: needs a regular expression, as in log:Listening on")
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise RoledError(f"{origin}: bad regular expression {_quoted(regex)}: {exc}") from None
    return Check("log", text, pattern=pattern)


def _parse_url(text: str, kind: str, origin: str) -> Check:
    if kind == "https":
        # ssl costs PID 1 about 4 MiB of RSS and 20 ms to import, for every container.
        raise RoledError(
            f"{origin}: https:// checks are not supported (TLS would weigh on PID 1); check "
            "the port with tcp://HOST:PORT, or use exec: with a client such as curl -fsk URL"
        )
    if "@" in text.partition("//")[2].partition("/")[0]:
        # Said without the value: user:password@ would be echoed otherwise.
        raise RoledError(f"{origin}: a {kind}:// check takes no user or password")
    match = _URL.match(text)
    if match is None:
        raise RoledError(f"{origin}: expected {kind}://HOST:PORT, got {_quoted(text)}")
    host = _address(match.group("host"), origin)
    port = _port(match.group("port"), kind, origin)
    path = match.group("path")
    if kind == "tcp":
        if path is not None:
            raise RoledError(f"{origin}: a tcp:// check takes no path, got {_quoted(text)}")
        return Check("tcp", text, host, port)
    path = path or "/"
    if not _PATH.match(path):
        raise RoledError(
            f"{origin}: the path may hold visible ASCII characters only (percent-encode the "
            f"rest), got {_quoted(path)}"
        )
    return Check("http", text, host, port, path)


def _address(host: str, origin: str) -> str:
    """An IP address as written, or 127.0.0.1 for localhost: resolving a name could block
    roled's loop, and a check looks at a program in the same container."""
    if host.lower() == "localhost":
        return "127.0.0.1"
    bare = host[1:-1] if host.startswith("[") else host
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    try:
        socket.inet_pton(family, bare)
    except OSError:
        raise RoledError(
            f"{origin}: HOST must be an IP address or localhost (roled does not resolve names "
            f"in its loop), got {_quoted(host)}"
        ) from None
    return bare


def _port(text: str | None, kind: str, origin: str) -> int:
    if text is None and kind == "http":
        return 80
    if text is None or not text.isdigit() or not 1 <= int(text) <= 65535:
        shown = "nothing" if text is None else _quoted(text)
        raise RoledError(f"{origin}: expected a port from 1 to 65535, got {shown}")
    return int(text)


def parse_on_unhealthy(value: str, origin: str) -> str:
    word = value.strip().lower()
    if word not in ON_UNHEALTHY:
        raise RoledError(f"{origin}: expected {', '.join(ON_UNHEALTHY)}, got {_quoted(value)}")
    return word


def _seconds(value: str, origin: str, *, zero: bool) -> float:
    try:
        seconds = float(value.strip().removesuffix("s"))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        least = "0 or more" if zero else "more than 0"
        raise RoledError(f"{origin}: expected seconds, {least}, got {_quoted(value)}")
    return seconds


def parse_period(value: str, origin: str) -> float:
    return _seconds(value, origin, zero=False)


def parse_timeout(value: str, origin: str) -> float:
    return _seconds(value, origin, zero=False)


def parse_delay(value: str, origin: str) -> float:
    return _seconds(value, origin, zero=True)


def parse_threshold(value: str, origin: str) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise RoledError(f"{origin}: expected a whole number, 1 or more, got {_quoted(value)}")
    return int(text)


# The keys, ready to be registered in roled's key table: each parser takes (value, origin) and
# raises RoledError starting with origin.
PARSERS: dict[str, Callable[[str, str], object]] = {
    "roled_ready": parse_ready,
    "roled_alive": parse_alive,
    "roled_on_unhealthy": parse_on_unhealthy,
    "roled_check_period": parse_period,
    "roled_check_timeout": parse_timeout,
    "roled_check_threshold": parse_threshold,
    "roled_check_delay": parse_delay,
}
# common.conf may set defaults for these; a check itself names one program's port or command.
IN_COMMON = frozenset(PARSERS) - {"roled_ready", "roled_alive"}


def program_checks(values: Mapping[str, object]) -> ProgramChecks | None:
    """A program's checks from its parsed keys (as PARSERS returned them); None without any."""
    ready, alive = values.get("roled_ready"), values.get("roled_alive")
    if ready is None and alive is None:
        return None
    defaults = Timing()
    timing = Timing(
        period=_number(values, "roled_check_period", defaults.period),
        timeout=_number(values, "roled_check_timeout", defaults.timeout),
        threshold=int(_number(values, "roled_check_threshold", defaults.threshold)),
        delay=_number(values, "roled_check_delay", defaults.delay),
    )
    return ProgramChecks(
        ready=ready if isinstance(ready, Check) else None,
        alive=alive if isinstance(alive, Check) else None,
        on_unhealthy=str(values.get("roled_on_unhealthy", "restart")),
        timing=timing,
    )


def _number(values: Mapping[str, object], key: str, default: float) -> float:
    value = values.get(key, default)
    return float(value) if isinstance(value, (int, float)) else default


def notify_environment(checks: ProgramChecks, socket_path: str) -> dict[str, str]:
    """What a program using ``notify`` finds in its environment (as systemd sets it).

    WATCHDOG_PID is left out: roled does not know the pid before supervisord spawns it, and
    without it sd_watchdog_enabled() accepts any process of the program.
    """
    if not checks.uses_notify():
        return {}
    env = {"NOTIFY_SOCKET": socket_path}
    if checks.alive is not None and checks.alive.kind == "notify":
        env["WATCHDOG_USEC"] = str(round(checks.timing.period * 1_000_000))
    return env


# -- results and what the machine asks for ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """What one probe found: passed or not, a short description, the end of its output."""

    passed: bool
    detail: str
    output: str = ""


def on_grid(due: float, interval: float) -> float:
    """The first step of the probes' grid (a GRID_SHARE-th of their interval) at or after due."""
    step = min(interval / GRID_SHARE, GRID_MAX)
    return math.ceil(due / step - 1e-9) * step


def trim_output(text: str, lines: int = OUTPUT_LINES, chars: int = OUTPUT_CHARS) -> str:
    """The last lines of a probe's output, at most ``chars`` characters."""
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept[-chars:]


@dataclass(frozen=True, slots=True)
class RunProbe:
    """Run this http, tcp or exec check for a program; answer with ``Health.result(probe)``."""

    probe: int
    program: str
    level: str
    check: Check
    timeout: float


@dataclass(frozen=True, slots=True)
class CancelProbe:
    """The program left RUNNING: stop this probe (kill an exec's group); no result is wanted."""

    probe: int


@dataclass(frozen=True, slots=True)
class Log:
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class ReadyChanged:
    """A program's readiness (its ready check) changed: publish it for ``roled status``."""

    program: str
    ready: bool


@dataclass(frozen=True, slots=True)
class Restart:
    """An alive check failed: restart this program only (it counts as a restart)."""

    program: str
    reason: str


@dataclass(frozen=True, slots=True)
class Fail:
    """An alive check failed with ``roled_on_unhealthy=exit``: end the container with 1."""

    program: str
    reason: str
    output: str


Action = RunProbe | CancelProbe | Log | ReadyChanged | Restart | Fail


class State(str, enum.Enum):
    """A check's state: waiting (not running, or no answer yet), passing or failing."""

    WAITING = "waiting"
    PASSING = "passing"
    FAILING = "failing"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class CheckView:
    """One check as ``roled status --json`` shows it."""

    level: str
    kind: str
    target: str
    state: State
    failures: int
    last_result: str
    last_output: str


# -- the state machine --------------------------------------------------------------------------


class _Run:
    """One check of one process: its schedule, its in-flight probe and its record."""

    __slots__ = (
        "check",
        "critical",
        "due",
        "failures",
        "held",
        "last",
        "level",
        "marked",
        "order",
        "passed_once",
        "probe",
        "program",
        "running",
        "settings",
        "slot",
        "state",
    )

    def __init__(self, program: str, level: str, check: Check, settings: ProgramChecks) -> None:
        self.program = program
        self.level = level
        self.check = check
        self.settings = settings
        self.critical = True
        # Where the process stands among the watched ones: probes due together start in it.
        self.order = 0
        self.state = State.WAITING
        self.failures = 0
        self.last = Result(False, "")
        self.running = False
        # Probes: when the next is due. notify as alive: when a missing keep-alive counts.
        self.due: float | None = None
        self.probe: int | None = None
        # When the probe in flight was due (not when the loop got to it): the next one is due
        # a period after that.
        self.slot = 0.0
        self.passed_once = False
        # READY=1 or a matching line seen since the process started (before RUNNING counts).
        self.marked = False
        # Restarting after a failure: no checks until the program runs again.
        self.held = False

    @property
    def name(self) -> str:
        return f"program {self.program!r}: {self.level} check {self.check.text}"

    @property
    def probed(self) -> bool:
        return self.check.kind in {"http", "tcp", "exec"}

    @property
    def watchdog(self) -> bool:
        return self.level == ALIVE and self.check.kind == "notify"

    def view(self) -> CheckView:
        return CheckView(
            self.level,
            self.check.kind,
            self.check.target,
            self.state,
            self.failures,
            self.last.detail,
            trim_output(self.last.output),
        )


class Health:
    """Every process's checks, driven by the loop: states, probe results, notifications, lines
    and the time go in; probes to run or cancel, log lines, readiness and outcomes come out."""

    __slots__ = (
        "_by_probe",
        "_dues",
        "_next_probe",
        "_order",
        "_pushed",
        "_runs",
        "_watched",
    )

    def __init__(self) -> None:
        self._runs: dict[str, list[_Run]] = {}
        self._by_probe: dict[int, _Run] = {}
        self._next_probe = 1
        # Every due time set, earliest first, so a wake-up looks at what is due and no more (100
        # checks a second otherwise walk every check several times a probe). An entry whose run
        # has moved on is stale and skipped: see _current.
        self._dues: list[tuple[float, int, _Run]] = []
        self._pushed = 0
        # Each process's place in the order poll() starts what is due together: the order it
        # was first watched in, as the walk over every process went.
        self._order: dict[str, int] = {}
        self._watched = 0

    def watch(self, program: str, checks: ProgramChecks, *, critical: bool = True) -> None:
        """Check this process (a namespec) from now on; a non-critical one never ends the run."""
        runs: list[_Run] = []
        if program not in self._order:
            self._watched += 1
            self._order[program] = self._watched
        order = self._order[program]
        for level, check in ((READY, checks.ready), (ALIVE, checks.alive)):
            if check is not None:
                run = _Run(program, level, check, checks)
                run.critical = critical
                run.order = order * 2 + len(runs)
                runs.append(run)
        self._runs[program] = runs

    def forget(self, program: str) -> list[Action]:
        """The process left the config (a reload): its probe in flight is cancelled."""
        actions: list[Action] = []
        self._order.pop(program, None)
        for run in self._runs.pop(program, []):
            self._cancel(run, actions)
        return actions

    # -- questions the loop and the levels ask ---------------------------------------------

    def ready(self, program: str) -> bool | None:
        """Whether the process's ready check passes; None when it has none."""
        for run in self._runs.get(program, ()):
            if run.level == READY:
                return run.running and run.state is State.PASSING
        return None

    def views(self, program: str) -> tuple[CheckView, ...]:
        return tuple(run.view() for run in self._runs.get(program, ()))

    def wants_lines(self, program: str) -> bool:
        """Whether the process's output lines should be shown to ``line`` (a log: check waits)."""
        return any(
            run.check.kind == "log" and not run.marked for run in self._runs.get(program, ())
        )

    def next_wakeup(self) -> float | None:
        """When ``poll`` has something to do (a probe due, a keep-alive missed), if ever."""
        dues = self._dues
        while dues and not self._current(dues[0]):
            heapq.heappop(dues)
        return dues[0][0] if dues else None

    # -- events ----------------------------------------------------------------------------

    def observe(self, program: str, state: str, now: float) -> list[Action]:
        """The process is in this supervisord state (a ProcessState or its name)."""
        actions: list[Action] = []
        for run in self._runs.get(program, ()):
            if state == "STARTING":
                # A new process: nothing it did before counts, nor the old one's record.
                self._stop(run, actions)
                run.marked = run.held = False
                run.failures = 0
                run.last = Result(False, "")
            elif state == "RUNNING":
                if not run.running:
                    self._start(run, now, actions)
            else:
                self._stop(run, actions)
        return actions

    def poll(self, now: float) -> list[Action]:
        """Start the probes that are due and count the keep-alives that were missed."""
        actions: list[Action] = []
        due: dict[int, _Run] = {}
        dues = self._dues
        while dues and dues[0][0] <= now:
            entry = heapq.heappop(dues)
            if self._current(entry):
                due[entry[2].order] = entry[2]
        for _, run in sorted(due.items()):
            if run.watchdog:
                self._missed_keepalives(run, now, actions)
            else:
                self._launch(run, now, actions)
        return actions

    def changes_nothing(self, probe: int, result: Result) -> bool:
        """Whether this result of a probe in flight would leave every view as it is: the same
        passing result as last time (what most results are, period after period)."""
        run = self._by_probe.get(probe)
        return (
            run is not None
            and result.passed
            and run.state is State.PASSING
            and run.failures == 0
            and run.last == result
        )

    def result(self, probe: int, result: Result, now: float) -> list[Action]:
        """A probe finished; one that was cancelled is ignored."""
        run = self._by_probe.pop(probe, None)
        if run is None or run.probe != probe:
            return []
        run.probe = None
        actions: list[Action] = []
        self._record(run, result, actions)
        if run.running and not run.held:
            interval = (
                RETRY_INTERVAL
                if run.level == READY and not run.passed_once
                else run.settings.timing.period
            )
            self._schedule(run, max(now, on_grid(run.slot + interval, interval)))
        return actions

    def notified(
        self, program: str, now: float, *, ready: bool = False, watchdog: bool = False
    ) -> list[Action]:
        """The process's tree sent READY=1 and/or WATCHDOG=1 over NOTIFY_SOCKET."""
        actions: list[Action] = []
        for run in self._runs.get(program, ()):
            if run.check.kind != "notify":
                continue
            if run.level == READY and ready:
                self._mark(run, "READY=1 received", actions)
            elif run.watchdog and watchdog and run.running and not run.held:
                self._record(run, Result(True, "WATCHDOG=1 received"), actions)
                self._schedule(run, now + run.settings.timing.period)
        return actions

    def line(self, program: str, text: str | bytes, now: float) -> list[Action]:
        """One line of the process's output (only asked while ``wants_lines``)."""
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        actions: list[Action] = []
        for run in self._runs.get(program, ()):
            pattern = run.check.pattern
            if run.check.kind == "log" and not run.marked and pattern and pattern.search(text):
                self._mark(run, f"line matched: {trim_output(text, 1, 200)}", actions)
        return actions

    # -- the steps -------------------------------------------------------------------------

    def _schedule(self, run: _Run, due: float) -> None:
        run.due = due
        # The count breaks ties, so runs themselves are never compared.
        self._pushed += 1
        heapq.heappush(self._dues, (due, self._pushed, run))

    def _current(self, entry: tuple[float, int, _Run]) -> bool:
        """Whether a due time still stands: the run's latest, no probe in flight, still watched."""
        due, _, run = entry
        return run.due == due and run.probe is None and run in self._runs.get(run.program, ())

    def _start(self, run: _Run, now: float, actions: list[Action]) -> None:
        run.running = True
        run.state = State.WAITING
        run.passed_once = False
        if run.held:
            return
        timing = run.settings.timing
        if run.probed:
            self._schedule(run, now + timing.delay)
        elif run.watchdog:
            self._schedule(run, now + timing.delay + timing.period)
        elif run.marked:
            self._record(run, run.last, actions)

    def _stop(self, run: _Run, actions: list[Action]) -> None:
        was_ready = run.level == READY and run.running and run.state is State.PASSING
        run.running = False
        run.due = None
        run.state = State.WAITING
        self._cancel(run, actions)
        if was_ready:
            actions.append(ReadyChanged(run.program, False))

    def _cancel(self, run: _Run, actions: list[Action]) -> None:
        if run.probe is not None:
            self._by_probe.pop(run.probe, None)
            actions.append(CancelProbe(run.probe))
            run.probe = None

    def _launch(self, run: _Run, now: float, actions: list[Action]) -> None:
        probe = self._next_probe
        self._next_probe += 1
        run.probe = probe
        run.slot = now if run.due is None else min(run.due, now)
        self._by_probe[probe] = run
        actions.append(
            RunProbe(probe, run.program, run.level, run.check, run.settings.timing.timeout)
        )

    def _missed_keepalives(self, run: _Run, now: float, actions: list[Action]) -> None:
        period = run.settings.timing.period
        while run.due is not None and run.due <= now and not run.held:
            run.due += period
            self._record(run, Result(False, f"no WATCHDOG=1 within {period:g}s"), actions)
        if run.held:
            run.due = None
        elif run.due is not None:
            self._schedule(run, run.due)

    def _mark(self, run: _Run, detail: str, actions: list[Action]) -> None:
        if run.marked:
            return
        run.marked = True
        run.last = Result(True, detail)
        if run.running:
            self._record(run, run.last, actions)

    def _record(self, run: _Run, result: Result, actions: list[Action]) -> None:
        run.last = result
        if result.passed:
            run.failures = 0
            if run.state is not State.PASSING:
                self._passing(run, actions)
            return
        run.failures += 1
        threshold = run.settings.timing.threshold
        if run.failures != threshold:
            return
        if run.level == READY and not run.passed_once:
            actions.append(
                Log("INFO", f"{run.name} has not passed yet ({self._why(run)}); still waiting")
            )
            return
        if run.state is State.FAILING:
            return
        run.state = State.FAILING
        if run.level == READY:
            actions.append(Log("WARNING", f"{run.name} failing ({self._why(run)}); not ready"))
            actions.append(ReadyChanged(run.program, False))
            return
        self._unhealthy(run, actions)

    def _passing(self, run: _Run, actions: list[Action]) -> None:
        again = run.state is State.FAILING
        run.state = State.PASSING
        first = not run.passed_once
        run.passed_once = True
        if run.level == READY:
            if first:
                actions.append(Log("INFO", f"program {run.program!r} is ready ({run.last.detail})"))
            else:
                actions.append(Log("INFO", f"{run.name} passes again; ready"))
            actions.append(ReadyChanged(run.program, True))
        elif again:
            actions.append(Log("INFO", f"{run.name} passes again"))

    def _unhealthy(self, run: _Run, actions: list[Action]) -> None:
        action = run.settings.on_unhealthy
        why = self._why(run)
        if action == "restart":
            run.held = True
            run.due = None
            actions.append(Log("WARNING", f"{run.name} failing ({why}); restarting it"))
            actions.append(Restart(run.program, f"{run.name} failed ({why})"))
        elif action == "exit" and run.critical:
            run.held = True
            run.due = None
            actions.append(Log("ERROR", f"{run.name} failing ({why})"))
            actions.append(
                Fail(
                    run.program,
                    f"program {run.program!r} failed its alive check {run.check.text} ({why})",
                    trim_output(run.last.output),
                )
            )
        elif action == "exit":
            actions.append(
                Log(
                    "WARNING",
                    f"{run.name} failing ({why}); not exiting: the program is non-critical",
                )
            )
        else:
            actions.append(
                Log("WARNING", f"{run.name} failing ({why}); ignored (roled_on_unhealthy=ignore)")
            )

    @staticmethod
    def _why(run: _Run) -> str:
        count = run.failures
        times = "1 failure" if count == 1 else f"{count} failures in a row"
        return f"{times}; last: {run.last.detail}" if run.last.detail else times
