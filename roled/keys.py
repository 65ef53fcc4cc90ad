"""roled's own per-program keys (``roled_*``): the table of known keys, how each is parsed, and
the whole-config checks run once every program is known. Pure: no files, no supervisor.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from roled import checks, deps, filekeys, jobs
from roled.errors import RoledError
from roled.model import Process
from roled.policy import parse_bool
from roled.schedule import parse_schedule

PREFIX = "roled_"


@dataclass(frozen=True, slots=True)
class Key:
    """One ``roled_*`` key: its parser (raising RoledError that starts with ``origin``), and
    whether ``common.conf`` may set it as a default for every program."""

    name: str
    parse: Callable[[str, str], object]
    in_common: bool = True
    help: str = ""


@dataclass(frozen=True, slots=True)
class Whole:
    """What a whole-config check sees: every process of the selected roles, and for each
    program (by its section's name, ``Process.program``) where it was written, as
    ``FILE: [program:x]``."""

    processes: tuple[Process, ...]
    origins: Mapping[str, str]
    # The processes of roles that are not selected, so a name of one is explained.
    elsewhere: tuple[deps.Elsewhere, ...] = ()


# One row per key. Features add their rows here (checks, dependencies, schedules, env files);
# tests extend the tuple with keys of their own.
KEYS: tuple[Key, ...] = (
    # Issue 16: env files, watched files and what a change of them does.
    Key("roled_env_files", filekeys.parse_env_files, help="dotenv files, later wins"),
    Key("roled_watch", filekeys.parse_watch, in_common=False, help="files, folders or globs"),
    Key("roled_on_change", filekeys.parse_on_change, in_common=False, help="a signal or restart"),
    # Scheduled programs (roled.jobs). Only in a program's own section: a schedule key in
    # common.conf would make every program of the roles a job.
    Key(jobs.SCHEDULE, parse_schedule, in_common=False, help="when the program runs"),
    Key(jobs.TIMEZONE, jobs.parse_zone, in_common=False, help="zone of the cron fields"),
    Key(jobs.RUN_ON_START, parse_bool, in_common=False, help="also run once at start-up"),
    Key(jobs.ON_FAILURE, jobs.parse_on_failure, in_common=False, help="warn or exit"),
    # Issue 13: health checks (roled.checks). A check names one program's port or command, so
    # only its timing and what a failure does may be defaults in common.conf.
    Key("roled_ready", checks.parse_ready, in_common=False, help="what says the program is ready"),
    Key("roled_alive", checks.parse_alive, in_common=False, help="what says the program lives"),
    Key("roled_on_unhealthy", checks.parse_on_unhealthy, help="restart, exit or ignore"),
    Key("roled_check_period", checks.parse_period, help="seconds between checks"),
    Key("roled_check_timeout", checks.parse_timeout, help="seconds a check may take"),
    Key("roled_check_threshold", checks.parse_threshold, help="failures in a row that count"),
    Key("roled_check_delay", checks.parse_delay, help="seconds after RUNNING to the first"),
    # Issue 14: start in order. Only in a program's own section: in common.conf every program
    # would wait for the same ones, itself included.
    Key(deps.KEY, deps.parse_depends_on, in_common=False, help="programs to wait for"),
)


def check_dependencies(whole: Whole) -> None:
    """Issue 14: every ``roled_depends_on`` names selected processes, no cycle, no condition
    that can never hold; a scheduled program is started by its schedule, never by the gate."""
    for process in whole.processes:
        if deps.KEY in process.roled and jobs.SCHEDULE in process.roled:
            where = whole.origins.get(process.program, f"[program:{process.program}]")
            raise RoledError(
                f"{where} {deps.KEY}: a scheduled program ({jobs.SCHEDULE}) cannot wait for "
                "dependencies: its schedule starts it"
            )
    deps.graph_of(whole.processes, whole.elsewhere, whole.origins)


# Checks that need every program at once (a dependency cycle, a name no program has): each
# raises RoledError naming what is wrong. Features add theirs here.
WHOLE_CHECKS: tuple[Callable[[Whole], None], ...] = (check_dependencies,)


def known() -> dict[str, Key]:
    """Every known key by name (read at call time, so a test may extend ``KEYS``)."""
    return {key.name: key for key in KEYS}


def is_roled_key(name: str) -> bool:
    """Whether a section key is roled's (and so never reaches supervisord)."""
    return name.startswith(PREFIX)


def parse_keys(
    options: Mapping[str, str], origin: str, *, common: bool = False
) -> dict[str, object]:
    """Parse every ``roled_*`` key of one section; other keys are left alone.

    ``origin`` names the section (``FILE: [program:x]``); an unknown key, or one that may not
    stand in common.conf, is an error naming it, because a typo must not silently disable a
    feature.
    """
    table = known()
    values: dict[str, object] = {}
    for name, value in options.items():
        if not is_roled_key(name):
            continue
        key = table.get(name)
        if key is None:
            raise RoledError(f"{origin} {name}: unknown roled key{_suggestion(name, table)}")
        if common and not key.in_common:
            raise RoledError(f"{origin} {name}: may not stand in common.conf, only in a program")
        values[name] = key.parse(value, f"{origin} {name}")
    return values


def _suggestion(name: str, table: Mapping[str, Key]) -> str:
    close = difflib.get_close_matches(name, table, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(sorted(table))})" if table else " (this roled knows none)"


def check_whole(whole: Whole, checks: Iterable[Callable[[Whole], None]] | None = None) -> None:
    """Run every whole-config check; the first error stops the plan."""
    for check in WHOLE_CHECKS if checks is None else checks:
        check(whole)
