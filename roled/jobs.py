"""Scheduled programs: their ``roled_*`` keys, how they are assembled, and the scheduler that
says when to start them, as a pure state machine driven by the time it is given.

The main loop feeds events in (start, tick, a run started or ended, reload) and carries the
answers out (programs to start, log records, a verdict); it sleeps until ``next_wakeup()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from roled.errors import EXIT_FAILED, RoledError
from roled.model import Process
from roled.policy import Verdict, describe_exit, parse_bool
from roled.schedule import (
    UTC_ZONE,
    Cron,
    Every,
    Schedule,
    Zone,
    next_due,
    parse_schedule,
    parse_timezone,
)

SCHEDULE = "roled_schedule"
TIMEZONE = "roled_timezone"
RUN_ON_START = "roled_run_on_start"
ON_FAILURE = "roled_on_failure"
KEYS = (SCHEDULE, TIMEZONE, RUN_ON_START, ON_FAILURE)
# Where the planner leaves a scheduled process's settled Job in ``Process.roled``: not a key
# anyone can write (it has no ``roled_`` prefix).
JOB = "job"
ON_FAILURE_CHOICES = ("warn", "exit")
# What supervisord must be told about a scheduled program: roled starts each run, and a run
# that ends quickly is a normal run, not a failure to start.
ASSEMBLED = {"autostart": "false", "autorestart": "false", "startsecs": "0"}


@dataclass(frozen=True, slots=True)
class Job:
    """A scheduled program's settings."""

    program: str
    schedule: Schedule
    zone: Zone = UTC_ZONE
    run_on_start: bool = False
    on_failure: str = "warn"
    exitcodes: tuple[int, ...] = (0,)

    def same_timing(self, other: Job) -> bool:
        """Whether other is due at the same times (a reload keeps the next due time then)."""
        return self.schedule == other.schedule and self.zone.name == other.zone.name


# -- configuration ------------------------------------------------------------------------------


def _origin(where: str, key: str) -> str:
    return f"{where} {key}" if where else key


def parse_job(
    program: str,
    options: Mapping[str, str],
    environ: Mapping[str, str],
    where: str = "",
    exitcodes: tuple[int, ...] = (0,),
) -> Job | None:
    """The job a program section describes, or None when it has no ``roled_schedule``.

    where names the file and section (``roles/web.conf: [program:report]``) for error lines;
    exitcodes are the program's, as supervisor's loader read them.
    """
    value = options.get(SCHEDULE)
    if value is None:
        stray = [key for key in KEYS if key in options]
        if stray:
            raise RoledError(f"{_origin(where, stray[0])} is set but {SCHEDULE} is not")
        return None
    on_failure = parse_on_failure(options.get(ON_FAILURE, "warn"), _origin(where, ON_FAILURE))
    return Job(
        program=program,
        schedule=parse_schedule(value, _origin(where, SCHEDULE)),
        zone=parse_timezone(options.get(TIMEZONE), environ, _origin(where, TIMEZONE)),
        run_on_start=parse_bool(options.get(RUN_ON_START, "false"), _origin(where, RUN_ON_START)),
        on_failure=on_failure,
        exitcodes=exitcodes,
    )


def parse_on_failure(value: str, origin: str) -> str:
    """``roled_on_failure``: ``warn`` or ``exit``."""
    on_failure = value.strip().lower()
    if on_failure not in ON_FAILURE_CHOICES:
        raise RoledError(f"{origin}: expected warn or exit, got {value!r}")
    return on_failure


def parse_zone(value: str, origin: str) -> Zone:
    """``roled_timezone`` as written; the default from ``TZ`` is settled by ``settle_jobs``."""
    return parse_timezone(value, {}, origin)


def settle_jobs(
    processes: Iterable[Process], environ: Mapping[str, str], origins: Mapping[str, str]
) -> tuple[Process, ...]:
    """The processes, each scheduled one carrying its Job in ``Process.roled[JOB]``: the time
    zone from the container's ``TZ`` when not set, the exitcodes supervisor's loader read.

    Done by the planner, so a bad ``TZ`` or a schedule key without ``roled_schedule`` is exit 2
    there. origins names each program's file and section (``FILE: [program:x]``).
    """
    settled: list[Process] = []
    for process in processes:
        values = process.roled
        where = origins.get(process.program, "")
        schedule = values.get(SCHEDULE)
        if not isinstance(schedule, Cron | Every):
            stray = [key for key in KEYS if key in values]
            if stray:
                raise RoledError(f"{_origin(where, stray[0])} is set but {SCHEDULE} is not")
            settled.append(process)
            continue
        zone = values.get(TIMEZONE)
        if not isinstance(zone, Zone):
            zone = parse_timezone(None, environ, _origin(where, TIMEZONE))
        job = Job(
            program=process.namespec,
            schedule=schedule,
            zone=zone,
            run_on_start=values.get(RUN_ON_START) is True,
            on_failure=str(values.get(ON_FAILURE, "warn")),
            exitcodes=process.config.exitcodes,
        )
        settled.append(replace(process, roled={**values, JOB: job}))
    return tuple(settled)


def jobs_of(processes: Iterable[Process]) -> tuple[Job, ...]:
    """The jobs ``settle_jobs`` put on the processes."""
    return tuple(job for process in processes if isinstance(job := process.roled.get(JOB), Job))


def check_scheduled(options: Mapping[str, str], where: str = "") -> None:
    """Refuse what a scheduled program cannot be: restarted by supervisord, or several processes.

    Pass the program's own section, before common.conf's defaults: roled overrides those.
    """
    if SCHEDULE not in options:
        return
    origin = _origin(where, SCHEDULE)
    if _always(options.get("autorestart", "")):
        raise RoledError(
            f"{origin}: a scheduled program cannot have autorestart=true "
            "(roled starts it each time it is due)"
        )
    numprocs = options.get("numprocs", "1").strip()
    if numprocs.isdigit() and int(numprocs) > 1:
        raise RoledError(f"{origin}: a scheduled program runs one process, not numprocs={numprocs}")


def _always(autorestart: str) -> bool:
    try:
        return parse_bool(autorestart, "autorestart")
    except RoledError:
        # "unexpected" (overridden for a scheduled program) or a value supervisor refuses.
        return False


# -- what the scheduler reports -----------------------------------------------------------------


def _when(instant: float, zone: Zone) -> str:
    import datetime as dt  # noqa: PLC0415 (see schedule's TYPE_CHECKING)

    return dt.datetime.fromtimestamp(instant, zone.tzinfo).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run began; ``why``: it was due (and when), run on start, or outside its schedule."""

    program: str
    at: float
    why: str

    level = "INFO"

    @property
    def message(self) -> str:
        return f"program {self.program!r} run started ({self.why})"


@dataclass(frozen=True, slots=True)
class RunEnded:
    """A run ended: ``exitstatus`` None when it was stopped on request."""

    program: str
    started: float
    ended: float
    exitstatus: int | None
    failed: bool = False
    exitcodes: tuple[int, ...] = (0,)

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def level(self) -> str:
        return "WARNING" if self.failed else "INFO"

    @property
    def message(self) -> str:
        after = f"after {self.duration:.1f}s"
        if self.exitstatus is None:
            return f"program {self.program!r} run stopped {after}"
        if self.failed:
            codes = ",".join(str(code) for code in self.exitcodes)
            return (
                f"program {self.program!r} run failed: {describe_exit(self.exitstatus)} {after} "
                f"(exitcodes {codes})"
            )
        return f"program {self.program!r} run ended: {describe_exit(self.exitstatus)} {after}"


@dataclass(frozen=True, slots=True)
class RunNotStarted:
    """A run roled asked for could not start (supervisord could not spawn it)."""

    program: str
    at: float
    reason: str

    level = "WARNING"

    @property
    def message(self) -> str:
        return f"program {self.program!r} run could not start: {self.reason}"


@dataclass(frozen=True, slots=True)
class RunSkipped:
    """A run was due while the previous one, started ``age`` seconds before, still ran."""

    program: str
    due: float
    age: float

    level = "WARNING"

    @property
    def message(self) -> str:
        return (
            f"program {self.program!r} skipped: the previous run, started {self.age:.0f}s ago, "
            "still runs"
        )


Record = RunStarted | RunEnded | RunNotStarted | RunSkipped


@dataclass(frozen=True, slots=True)
class Actions:
    """What the loop does after an event: start programs, log records, maybe end the container."""

    start: tuple[str, ...] = ()
    records: tuple[Record, ...] = ()
    verdict: Verdict | None = None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What ``roled status`` shows of a scheduled program."""

    program: str
    schedule: str
    zone: str
    next_due: float | None
    running_since: float | None
    last: RunEnded | None


def status_document(statuses: Iterable[JobStatus]) -> dict[str, dict[str, object]]:
    """What ``roled status`` shows of each scheduled program, by process name, as JSON data:
    times in the program's zone (ISO 8601), durations in seconds."""
    document: dict[str, dict[str, object]] = {}
    for status in statuses:
        # The zone was valid when the job was parsed; zoneinfo caches it by name.
        zone = parse_timezone(status.zone, {}, TIMEZONE)
        last = status.last
        document[status.program] = {
            "expression": status.schedule,
            "timezone": status.zone,
            "next_run": None if status.next_due is None else _when(status.next_due, zone),
            "running_since": None
            if status.running_since is None
            else _when(status.running_since, zone),
            "last": None
            if last is None
            else {
                "started": _when(last.started, zone),
                "ended": _when(last.ended, zone),
                "exitstatus": last.exitstatus,
                "duration": round(last.duration, 3),
                "ok": not last.failed,
            },
        }
    return document


def _verdict(job: Job, what: str) -> Verdict | None:
    """A failed run ends the container only with ``roled_on_failure=exit``."""
    if job.on_failure != "exit":
        return None
    return Verdict(
        EXIT_FAILED,
        f"scheduled program {job.program!r} {what} and roled_on_failure is 'exit'",
        (job.program,),
    )


# -- the scheduler ------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    job: Job
    # When the program's schedule began: @every counts its intervals from here.
    anchor: float
    due: float | None = None
    # Set when roled asks for a run (so a tick before supervisord answers cannot start another),
    # and again when the run is seen to start.
    running_since: float | None = None
    seen_running: bool = False
    last: RunEnded | None = None
    # Why the run roled asked for was started, for its log record.
    pending_why: str | None = None


class Scheduler:
    """When each scheduled program is due, which runs to start or skip, and what each run meant.

    Pure: every event carries the time (seconds since the epoch); nothing here reads a clock,
    sleeps or starts a thread. Runs missed while roled was not running are not caught up: a
    schedule starts at ``start(now)``, and a late tick runs a program once.
    """

    __slots__ = ("_started", "_states", "_stopping")

    def __init__(self, jobs: Iterable[Job]) -> None:
        self._states = {job.program: _State(job, anchor=0.0) for job in jobs}
        self._started = False
        self._stopping = False

    @property
    def programs(self) -> tuple[str, ...]:
        return tuple(sorted(self._states))

    def __contains__(self, program: object) -> bool:
        return program in self._states

    def statuses(self) -> tuple[JobStatus, ...]:
        return tuple(status for name in self.programs if (status := self.status(name)) is not None)

    def start(self, now: float) -> Actions:
        """Schedules begin: the first due times, and a run now for each ``roled_run_on_start``."""
        self._started = True
        return self._begin(list(self._states.values()), now)

    def tick(self, now: float) -> Actions:
        """Start each program that is due by now; skip one whose previous run still runs."""
        if not self._started or self._stopping:
            return Actions()
        start: list[str] = []
        records: list[Record] = []
        for name in self.programs:
            state = self._states[name]
            if state.due is None or state.due > now:
                continue
            if state.running_since is not None:
                records.append(RunSkipped(name, state.due, now - state.running_since))
            else:
                start.append(name)
                state.running_since = now
                state.pending_why = f"due {_when(state.due, state.job.zone)}"
            state.due = self._next(state, now)
        return Actions(tuple(start), tuple(records))

    def run_started(self, program: str, now: float) -> Actions:
        """supervisord reports the program running (roled started it, or someone else did)."""
        state = self._states.get(program)
        if state is None or state.seen_running:
            return Actions()
        state.seen_running = True
        state.running_since = now
        why, state.pending_why = state.pending_why, None
        return Actions(records=(RunStarted(program, now, why or "outside its schedule"),))

    def run_ended(self, program: str, exitstatus: int | None, now: float) -> Actions:
        """A run ended with exitstatus (negative: killed by a signal; None: stopped on request).

        An exit status not in the program's exitcodes is a failure: a warning, or with
        ``roled_on_failure=exit`` a verdict that ends the container with 1. While roled stops,
        no run is judged: the stop ended it.
        """
        state = self._states.get(program)
        if state is None or state.running_since is None:
            return Actions()
        job = state.job
        failed = exitstatus is not None and not self._stopping and exitstatus not in job.exitcodes
        record = RunEnded(program, state.running_since, now, exitstatus, failed, job.exitcodes)
        self._finish(state, record)
        verdict = None
        if failed:
            verdict = _verdict(job, f"failed ({describe_exit(exitstatus)})")
        return Actions(records=(record,), verdict=verdict)

    def start_failed(self, program: str, reason: str, now: float) -> Actions:
        """A run roled asked for did not start (supervisord refused, or the program went FATAL)."""
        state = self._states.get(program)
        if state is None or state.running_since is None:
            return Actions()
        state.running_since = None
        state.seen_running = False
        state.pending_why = None
        record = RunNotStarted(program, now, reason)
        verdict = None if self._stopping else _verdict(state.job, f"could not start ({reason})")
        return Actions(records=(record,), verdict=verdict)

    def reload(self, jobs: Iterable[Job], now: float) -> Actions:
        """Take a reload's jobs. An unchanged schedule keeps its next due time; a changed one is
        due by its new rule from now on; a run in progress is left alone. A program new to the
        config begins its schedule as at start-up; one that is gone is forgotten."""
        old = self._states
        self._states = {}
        new: list[_State] = []
        for job in jobs:
            state = old.get(job.program)
            if state is None:
                state = _State(job, anchor=now)
                new.append(state)
            elif not state.job.same_timing(job):
                state.job = job
                state.anchor = now
                state.due = self._next(state, now)
            else:
                state.job = job
            self._states[job.program] = state
        if not self._started:
            return Actions()
        return self._begin(new, now)

    def stop(self) -> None:
        """roled is stopping: start nothing more, and do not judge runs the stop ends."""
        self._stopping = True

    def next_wakeup(self) -> float | None:
        """The earliest due time of any program: the loop sleeps until then (None: no need)."""
        if not self._started or self._stopping:
            return None
        dues = [state.due for state in self._states.values() if state.due is not None]
        return min(dues, default=None)

    def status(self, program: str) -> JobStatus | None:
        state = self._states.get(program)
        if state is None:
            return None
        return JobStatus(
            program=program,
            schedule=state.job.schedule.text,
            zone=state.job.zone.name,
            next_due=state.due,
            running_since=state.running_since,
            last=state.last,
        )

    def _begin(self, states: list[_State], now: float) -> Actions:
        start: list[str] = []
        for state in sorted(states, key=lambda state: state.job.program):
            state.anchor = now
            state.due = self._next(state, now)
            if state.job.run_on_start and state.running_since is None:
                start.append(state.job.program)
                state.running_since = now
                state.pending_why = RUN_ON_START
        return Actions(tuple(start))

    @staticmethod
    def _next(state: _State, now: float) -> float | None:
        job = state.job
        return next_due(job.schedule, job.zone.tzinfo, state.anchor, now)

    @staticmethod
    def _finish(state: _State, record: RunEnded) -> None:
        state.last = record
        state.running_since = None
        state.seen_running = False
        state.pending_why = None
