"""Schedules of scheduled programs: cron expressions, ``@every`` intervals, time zones, and the
next time a schedule is due, with cron's rules for daylight-saving changes.

Pure: it is given the time, never reads a clock.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from roled.errors import RoledError

# datetime is imported by what computes a time: a PID 1 without scheduled programs does not
# keep it (half a MiB). typing.TYPE_CHECKING without importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# Written out, not taken from calendar: its names follow the locale, and PID 1 would keep
# calendar (and zoneinfo, imported only for a zone other than UTC) for nothing.
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# The longest each month gets: February has 29 days in leap years.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTHS = {name[:3].lower(): number for number, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_NAMES: tuple[Mapping[str, int], ...] = ({}, {}, {}, _MONTHS, _WEEKDAYS)
# Vixie cron's shortcuts, written out as the five fields they stand for.
SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ELEMENT = re.compile(
    r"(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?\Z", re.IGNORECASE
)
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
# Longer intervals are a typo in a container; the bound also keeps every time representable.
_MAX_INTERVAL = 366 * 86400
# A satisfiable day rule meets every weekday within 28 years (40 across a skipped leap day).
_HORIZON_DAYS = 50 * 366
_SHOWN = 60
# No valid field element or duration is longer ("jan-dec/12", "8784h59m59s").
_LONGEST = 16


@dataclass(frozen=True, slots=True)
class Cron:
    """A five-field cron expression, expanded to the values each field allows.

    ``periodic`` is Vixie cron's "wildcard job": its minute or hour field starts with ``*``.
    ``day_or`` is cron's rule that when both day fields are restricted (neither starts with
    ``*``), a day matches if either matches.
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    periodic: bool
    day_or: bool

    def matches_day(self, date: dt.date) -> bool:
        if date.month not in self.months:
            return False
        in_days = date.day in self.days
        # isoweekday: Monday 1 ... Sunday 7; cron: Sunday 0.
        in_weekdays = date.isoweekday() % 7 in self.weekdays
        return (in_days or in_weekdays) if self.day_or else (in_days and in_weekdays)

    def wall_times(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """Matching naive wall-clock times from ``start`` on, in order, for 50 years at most."""
        import datetime as dt  # noqa: PLC0415 (see TYPE_CHECKING)

        first = start.replace(second=0, microsecond=0)
        if first < start:
            first += dt.timedelta(minutes=1)
        date = first.date()
        if self.matches_day(date):
            # The first day starts at first's hour and minute, not at midnight.
            for hour in self.hours[bisect.bisect_left(self.hours, first.hour) :]:
                low = first.minute if hour == first.hour else 0
                for minute in self.minutes[bisect.bisect_left(self.minutes, low) :]:
                    yield dt.datetime.combine(date, dt.time(hour, minute))
        for _ in range(_HORIZON_DAYS):
            date += dt.timedelta(days=1)
            if self.matches_day(date):
                for hour in self.hours:
                    for minute in self.minutes:
                        yield dt.datetime.combine(date, dt.time(hour, minute))


@dataclass(frozen=True, slots=True)
class Every:
    """``@every D``: due every ``seconds`` from when the program's schedule began."""

    text: str
    seconds: int


Schedule = Cron | Every


@dataclass(frozen=True, slots=True)
class Zone:
    """A time zone by the name it was given, for status output and for comparing on reload."""

    name: str

    @property
    def tzinfo(self) -> dt.tzinfo:
        if self.name == "UTC":
            return utc()
        import zoneinfo  # noqa: PLC0415 (see _MONTH_NAMES)

        # zoneinfo keeps one instance a name.
        return zoneinfo.ZoneInfo(self.name)


def utc() -> dt.timezone:
    import datetime as dt  # noqa: PLC0415 (see TYPE_CHECKING)

    return dt.timezone.utc


UTC_ZONE = Zone("UTC")


def _shown(value: str) -> str:
    """A value for an error line: quoted, and cut if it is long."""
    return repr(value) if len(value) <= _SHOWN else f"{value[:_SHOWN]!r}..."


# -- parsing ------------------------------------------------------------------------------------


def parse_schedule(value: str, origin: str = "roled_schedule") -> Schedule:
    """A cron expression, an ``@`` shortcut or ``@every D``; else an error naming origin and value.

    origin names where the value came from (the caller adds file and section).
    """
    text = " ".join(value.split())
    if not text:
        raise RoledError(f"{origin}: is empty (expected a cron expression or @every DURATION)")
    try:
        if text.lower().startswith("@every"):
            return _parse_every(text)
        if text.startswith("@"):
            return _parse_shortcut(text)
        return _parse_cron(text, text)
    except _Invalid as exc:
        raise RoledError(f"{origin}: {_shown(value)}: {exc}") from None


class _Invalid(Exception):
    """What is wrong with an expression; parse_schedule adds where and which."""


def _parse_shortcut(text: str) -> Cron:
    fields = SHORTCUTS.get(text.lower())
    if fields is not None:
        return _parse_cron(fields, text)
    if text.lower() == "@reboot":
        raise _Invalid("@reboot is not supported (use roled_run_on_start=true)")
    raise _Invalid(f"unknown shortcut (use {', '.join(SHORTCUTS)} or @every DURATION)")


def _parse_every(text: str) -> Every:
    words = text.split(" ")
    if len(words) != 2 or words[0].lower() != "@every":
        raise _Invalid("expected @every DURATION, such as @every 90s, 5m, 1h or 1h30m")
    # Bounded before int(): Python refuses to convert numbers of thousands of digits.
    match = _DURATION.match(words[1].lower()) if len(words[1]) <= _LONGEST else None
    if match is None or not any(match.groups()):
        raise _Invalid(
            f"duration {_shown(words[1])} is not like 90s, 5m, 1h or 1h30m "
            "(units h, m, s in that order)"
        )
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise _Invalid("the interval must be longer than 0s")
    if total > _MAX_INTERVAL:
        raise _Invalid("the interval must be at most 366 days")
    return Every(text, total)


def _parse_cron(fields_text: str, text: str) -> Cron:
    fields = fields_text.split(" ")
    if len(fields) != len(FIELDS):
        raise _Invalid(
            f"expected 5 fields (minute hour day-of-month month day-of-week), "
            f"@hourly, @daily, ... or @every DURATION; got {len(fields)} field"
            f"{'' if len(fields) == 1 else 's'}"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(field, index) for index, field in enumerate(fields)
    )
    # 7 is Sunday as well as 0.
    weekdays = {day % 7 for day in weekdays}
    starred = [field.startswith("*") for field in fields]
    cron = Cron(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        periodic=starred[0] or starred[1],
        day_or=not (starred[2] or starred[4]),
    )
    _check_possible(cron)
    return cron


def _parse_field(field: str, index: int) -> set[int]:
    values: set[int] = set()
    for element in field.split(","):
        values.update(_parse_element(element, index))
    return values


def _parse_element(element: str, index: int) -> range:
    name = FIELDS[index]
    low, high = _BOUNDS[index]
    match = _ELEMENT.match(element) if len(element) <= _LONGEST else None
    if match is None:
        raise _Invalid(
            f"{name} {_shown(element)} is not *, a number, a range like 1-5, a list "
            "or a step like */15"
        )
    step = 1
    if match.group("step") is not None:
        step = int(match.group("step"))
        if step == 0:
            raise _Invalid(f"{name} step 0 in {element!r} must be at least 1")
    spec = match.group("range")
    if spec == "*":
        return range(low, high + 1, step)
    first_text, _, last_text = spec.partition("-")
    first = _value(first_text, index)
    # "5/15" is "5-59/15", as most crons read it.
    if last_text:
        last = _value(last_text, index)
    else:
        last = high if match.group("step") is not None else first
    if last < first:
        raise _Invalid(f"{name} range {spec!r} is backwards")
    return range(first, last + 1, step)


def _value(text: str, index: int) -> int:
    name = FIELDS[index]
    low, high = _BOUNDS[index]
    if text.isdigit():
        number = int(text)
    elif text.lower() in _NAMES[index]:
        return _NAMES[index][text.lower()]
    else:
        kind = "a number" + (f" or a {name} name" if _NAMES[index] else "")
        raise _Invalid(f"{name} {text!r} is not {kind}")
    if not low <= number <= high:
        raise _Invalid(f"{name} {number} is out of range {low}-{high}")
    return number


def _check_possible(cron: Cron) -> None:
    """A day-of-month rule that no month allows (``0 0 30 2 *``) would never run: refuse it."""
    if cron.day_or:
        return
    if any(day <= _MONTH_DAYS[month - 1] for month in cron.months for day in cron.days):
        return
    months = ", ".join(_MONTH_NAMES[month - 1] for month in sorted(cron.months))
    days = ", ".join(str(day) for day in sorted(cron.days))
    raise _Invalid(f"day-of-month {days} never occurs in {months}")


def parse_timezone(value: str | None, environ: Mapping[str, str], origin: str) -> Zone:
    """``roled_timezone``, else the container's ``TZ``, else UTC; a zone must be a zoneinfo name.

    origin names where value came from (``... roled_timezone``), for the error line.
    """
    if value is not None:
        return _zone(value.strip(), f"{origin}: unknown time zone {_shown(value)}")
    tz = environ.get("TZ", "")
    # glibc's TZ may start with ':' or be a path into the zoneinfo folder.
    name = tz.removeprefix(":").strip()
    if "zoneinfo/" in name:
        name = name.rpartition("zoneinfo/")[2]
    if not name:
        return UTC_ZONE
    return _zone(
        name,
        f"{origin} is not set and TZ={_shown(tz)} is not a zoneinfo name "
        "(set roled_timezone, such as Europe/Berlin)",
    )


def _zone(name: str, message: str) -> Zone:
    if name == "UTC":
        # Needs no time zone database, which slim images leave out.
        return UTC_ZONE
    import zoneinfo  # noqa: PLC0415 (see _MONTH_NAMES)

    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise RoledError(message) from None
    return Zone(name)


# -- when a schedule is due ---------------------------------------------------------------------


def next_cron(cron: Cron, zone: dt.tzinfo, after: dt.datetime) -> dt.datetime | None:
    """The first time ``cron`` is due strictly after ``after`` (aware), as an aware UTC time.

    Wall-clock times are read in ``zone`` with Vixie cron's rules for daylight-saving changes:
    a fixed-time job whose time falls in a skipped interval runs when the interval ends, and
    one whose time occurs twice runs at the first; a periodic job (``*`` or ``*/N`` in its
    minute or hour field) runs at every time that exists, so none in a skipped interval and
    twice in a repeated one. None: the expression matches nothing within 50 years.
    """
    after = after.astimezone(utc())
    # Wall times before ours may still come later when the clock is about to go back.
    start = after.astimezone(zone).replace(tzinfo=None) - _spread(zone, after)
    best: dt.datetime | None = None
    bound: dt.datetime | None = None
    for wall in cron.wall_times(start):
        if bound is not None and wall > bound:
            break
        for instant in _instants(cron, zone, wall):
            if instant > after and (best is None or instant < best):
                best = instant
                bound = best.astimezone(zone).replace(tzinfo=None) + _spread(zone, best)
    return best


def next_every(every: Every, anchor: float, after: float) -> float:
    """The first time ``@every`` is due strictly after ``after``: anchor plus a whole number of
    intervals, at least one."""
    count = max(1, int((after - anchor) // every.seconds) + 1)
    due = anchor + count * every.seconds
    # Float division can land one interval short of "strictly after".
    return due if due > after else due + every.seconds


def next_due(schedule: Schedule, zone: dt.tzinfo, anchor: float, after: float) -> float | None:
    """When a schedule is next due after ``after`` (seconds since the epoch); ``anchor`` is
    when the program's schedule began, which only ``@every`` counts from."""
    if isinstance(schedule, Every):
        return next_every(schedule, anchor, after)
    import datetime as dt  # noqa: PLC0415 (see TYPE_CHECKING)

    due = next_cron(schedule, zone, dt.datetime.fromtimestamp(after, dt.timezone.utc))
    return None if due is None else due.timestamp()


def _spread(zone: dt.tzinfo, instant: dt.datetime) -> dt.timedelta:
    """How far the zone's UTC offset moves within a day of instant (zero most of the year)."""
    import datetime as dt  # noqa: PLC0415 (see TYPE_CHECKING)

    day = dt.timedelta(days=1)
    offsets = [
        (instant + shift).astimezone(zone).utcoffset() or dt.timedelta(0)
        for shift in (-day, dt.timedelta(0), day)
    ]
    return max(offsets) - min(offsets)


def _instants(cron: Cron, zone: dt.tzinfo, wall: dt.datetime) -> list[dt.datetime]:
    """The UTC times at which a matching wall-clock time makes the job due."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(utc())
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        # The clock skipped this time: a fixed-time job runs when the skip ends, as cron does.
        return [] if cron.periodic else [_skip_end(zone, wall)]
    second = wall.replace(tzinfo=zone, fold=1).astimezone(utc())
    if second != first and cron.periodic:
        return [first, second]
    return [first]


def _skip_end(zone: dt.tzinfo, wall: dt.datetime) -> dt.datetime:
    """The moment the clock jumped over the skipped wall time: the first moment after the skip.

    Read with the offset before the jump the wall time lies after it; with the offset after,
    before it. Bisect the seconds in between for the jump.
    """
    import datetime as dt  # noqa: PLC0415 (see TYPE_CHECKING)

    before = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    offset = dt.datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return dt.datetime.fromtimestamp(after, dt.timezone.utc)
