"""One run of one contender: start it on a fresh layout, measure, stop it, clean up.

Start-up and FATAL times come from the probe listener's time.monotonic() stamps, exit times from
a pidfd, and output line times from the reader thread: one clock (CLOCK_MONOTONIC) for all.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

from bench.contenders import Contender
from bench.layout import (
    EARLY,
    LATE,
    Layout,
    Program,
    failing,
    remove_layout,
    sleepers_in_roles,
    write_layout,
)
from bench.procs import Launched, kill_all, wait_until

EXIT_TIMEOUT = 60.0


class TrialError(RuntimeError):
    """A trial could not be measured (timeout, unexpected exit); the message says why."""


@dataclass(frozen=True)
class Event:
    """One line of the probe's log."""

    time: float
    name: str
    process: str


def read_events(layout: Layout) -> list[Event]:
    """Every event the probe has logged so far."""
    try:
        text = layout.events_file.read_text()
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            events.append(Event(float(parts[0]), parts[1], parts[2]))
    return events


def last_running(layout: Layout, programs: tuple[str, ...]) -> float | None:
    """Time of the RUNNING event that completed ``programs``, or None while some are missing."""
    firsts: dict[str, float] = {}
    for e in read_events(layout):
        if e.name == "PROCESS_STATE_RUNNING" and e.process not in firsts:
            firsts[e.process] = e.time
    if any(p not in firsts for p in programs):
        return None
    return max(firsts[p] for p in programs)


@contextlib.contextmanager
def running(
    contender: Contender, roles: dict[str, list[Program]], probe_priority: int = LATE
) -> Iterator[tuple[Launched, Layout]]:
    """Launch ``contender`` on a new layout; on the way out kill everything and delete files."""
    layout = write_layout(roles, probe_priority)
    launched = None
    try:
        launched = contender.launch(layout)
        yield launched, layout
    finally:
        if launched is not None and launched.exited is None:
            with contextlib.suppress(psutil.Error):
                launched.proc.send_signal(signal.SIGKILL)
            launched.wait_exit(5)
        kill_all()
        remove_layout(layout)


def wait_all_running(launched: Launched, layout: Layout, timeout: float) -> float:
    """Seconds from exec until the last program was RUNNING (by the probe's stamps)."""
    programs = layout.programs
    if not wait_until(
        lambda: last_running(layout, programs) is not None or launched.proc.poll() is not None,
        timeout,
    ):
        raise TrialError(f"not all {len(programs)} programs RUNNING within {timeout:.0f} s")
    done = last_running(layout, programs)
    if done is None:
        raise TrialError(f"contender exited during start-up:\n{launched.output()[-2000:]}")
    return done - launched.started


def stop(launched: Launched) -> tuple[float, int]:
    """SIGTERM the contender; return (seconds until its process exited, exit status)."""
    sent = time.monotonic()
    launched.proc.send_signal(signal.SIGTERM)
    exited = launched.wait_exit(EXIT_TIMEOUT)
    if exited is None:
        raise TrialError(f"no exit within {EXIT_TIMEOUT:.0f} s of SIGTERM")
    return exited - sent, launched.proc.returncode


@dataclass(frozen=True)
class Usage:
    """CPU seconds over an idle window, and memory after start-up, of one process."""

    cpu: float
    rss: int
    uss: int


def usage(proc: psutil.Process, idle: float, others: list[psutil.Process]) -> list[Usage]:
    """Memory now, then CPU (user + system) over ``idle`` seconds, for ``proc`` and ``others``."""
    procs = [proc, *others]
    mem = [p.memory_full_info() for p in procs]
    before = [p.cpu_times() for p in procs]
    time.sleep(idle)
    after = [p.cpu_times() for p in procs]
    return [
        Usage(cpu=(a.user + a.system) - (b.user + b.system), rss=m.rss, uss=m.uss)
        for m, b, a in zip(mem, before, after, strict=True)
    ]


@dataclass(frozen=True)
class Lifecycle:
    """What one start-stop run measured (seconds, bytes); usage fields are None when skipped."""

    startup: float
    stop: float
    status: int
    supervisord: Usage | None = None
    own: Usage | None = None
    extra: dict[str, float] = field(default_factory=dict)


def lifecycle_trial(contender: Contender, n: int, idle: float | None = None) -> Lifecycle:
    """Start N sleepers, time all-RUNNING; optionally measure usage over ``idle``; time the stop."""
    with running(contender, sleepers_in_roles(n)) as (launched, layout):
        startup = wait_all_running(launched, layout, timeout=30 + n * 0.2)
        sup_usage = own_usage = None
        if idle is not None:
            sup = contender.supervisord(launched)
            own = contender.own(launched)
            if sup is None:
                raise TrialError("supervisord's process not found")
            measured = usage(own or sup, idle, [sup] if own else [])
            own_usage, sup_usage = (measured[0], measured[1]) if own else (None, measured[0])
        stop_time, status = stop(launched)
        return Lifecycle(startup, stop_time, status, sup_usage, own_usage)


@dataclass(frozen=True)
class Fatal:
    """One FATAL run: exec to exit, probe-seen FATAL to the contender's stop line and to exit."""

    to_exit: float
    status: int
    fatal_to_exit: float | None
    detection: float | None


def fatal_trial(contender: Contender, n: int) -> Fatal:
    """N sleepers plus one /bin/false that goes FATAL at once; wait for the contender to quit."""
    roles = {**sleepers_in_roles(n, ("web",)), "broken": [failing("broken")]}
    with running(contender, roles, probe_priority=EARLY) as (launched, layout):
        exited = launched.wait_exit(EXIT_TIMEOUT)
        if exited is None:
            raise TrialError(f"no exit within {EXIT_TIMEOUT:.0f} s of a FATAL program")
        fatal = next(
            (e.time for e in read_events(layout) if e.name == "PROCESS_STATE_FATAL"),
            None,
        )
        line = launched.first_line(lambda s: contender.stop_line(s, "broken"))
        return Fatal(
            to_exit=exited - launched.started,
            status=launched.proc.returncode,
            fatal_to_exit=None if fatal is None else exited - fatal,
            detection=None if fatal is None or line is None else line[0] - fatal,
        )
