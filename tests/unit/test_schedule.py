"""Schedules (pure): cron and @every parsing, time zones, and next due times as reference tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roled.errors import RoledError
from roled.schedule import (
    UTC_ZONE,
    Cron,
    Every,
    Zone,
    next_cron,
    next_due,
    next_every,
    parse_schedule,
    parse_timezone,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
LORD_HOWE = zoneinfo.ZoneInfo("Australia/Lord_Howe")

UTC = dt.timezone.utc


def cron(text: str) -> Cron:
    schedule = parse_schedule(text)
    assert isinstance(schedule, Cron)
    return schedule


def times(text: str, zone: dt.tzinfo, start: str, count: int) -> list[str]:
    """The next count due times after start (a wall time in zone), as ISO times in zone."""
    expression = cron(text)
    moment = dt.datetime.fromisoformat(start).replace(tzinfo=zone)
    found = []
    for _ in range(count):
        due = next_cron(expression, zone, moment)
        assert due is not None
        assert due.tzinfo is UTC
        found.append(due.astimezone(zone).isoformat())
        moment = due
    return found


NOT_ELEMENT = "*, a number, a range like 1-5, a list or a step like */15"
NOT_DURATION = "like 90s, 5m, 1h or 1h30m (units h, m, s in that order)"
FIVE_FIELDS = (
    "expected 5 fields (minute hour day-of-month month day-of-week), @hourly, @daily, ... "
    "or @every DURATION"
)
SHORTCUT_LIST = (
    "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION"
)

# -- parsing ------------------------------------------------------------------------------------


def test_fields_expand_to_their_values() -> None:
    """Lists, ranges, steps, names and 7-as-Sunday expand to exact value sets."""
    expression = cron("0,15-20/5,*/30 9-17/4 1,15,31 jan-mar,DEC mon-fri,7")
    assert expression.minutes == (0, 15, 20, 30)
    assert expression.hours == (9, 13, 17)
    assert expression.days == {1, 15, 31}
    assert expression.months == {1, 2, 3, 12}
    assert expression.weekdays == {0, 1, 2, 3, 4, 5}
    assert not expression.periodic
    assert expression.day_or


@pytest.mark.parametrize(
    ("text", "minutes", "hours", "weekdays"),
    [
        ("* * * * *", tuple(range(60)), tuple(range(24)), set(range(7))),
        ("5/20 * * * *", (5, 25, 45), tuple(range(24)), set(range(7))),
        ("0 0 * * 0", (0,), (0,), {0}),
        ("0 0 * * 7", (0,), (0,), {0}),
        ("0 0 * * 5-7", (0,), (0,), {5, 6, 0}),
        ("0 0 * * sun-sat", (0,), (0,), set(range(7))),
        ("59 23 * * SAT", (59,), (23,), {6}),
        ("  0   12  *  *  * ", (0,), (12,), set(range(7))),
    ],
)
def test_field_table(
    text: str, minutes: tuple[int, ...], hours: tuple[int, ...], weekdays: set[int]
) -> None:
    """Steps from a start, 0 and 7 as Sunday, names, and extra blanks."""
    expression = cron(text)
    assert (expression.minutes, expression.hours, expression.weekdays) == (minutes, hours, weekdays)


@pytest.mark.parametrize(
    ("text", "periodic", "day_or"),
    [
        ("30 2 * * *", False, False),
        ("* 2 * * *", True, False),
        ("*/15 2 * * *", True, False),
        ("0 */2 * * *", True, False),
        ("0 1-23/2 * * *", False, False),
        ("0 0 13 * 5", False, True),
        ("0 0 */2 * 5", False, False),
        ("0 0 13 * *", False, False),
    ],
)
def test_vixie_flags(text: str, periodic: bool, day_or: bool) -> None:
    """Periodic: minute or hour starts with '*'; the OR day rule: neither day field does."""
    expression = cron(text)
    assert (expression.periodic, expression.day_or) == (periodic, day_or)


@pytest.mark.parametrize(
    ("shortcut", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@HOURLY", "0 * * * *"),
    ],
)
def test_shortcuts(shortcut: str, fields: str) -> None:
    """Each @ shortcut means the five fields cron gives it, and keeps its own text."""
    expression = cron(shortcut)
    assert expression.text == shortcut
    assert expression == dataclasses.replace(cron(fields), text=shortcut)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("@every 90s", 90),
        ("@every 5m", 300),
        ("@every 1h", 3600),
        ("@every 1h30m", 5400),
        ("@every 1h0m1s", 3601),
        ("@EVERY   2M", 120),
        ("@every 8784h", 366 * 86400),
    ],
)
def test_every(text: str, seconds: int) -> None:
    """@every takes hours, minutes and seconds in that order."""
    assert parse_schedule(text) == Every(" ".join(text.split()), seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("61 * * * *", "'61 * * * *': minute 61 is out of range 0-59"),
        ("* 24 * * *", "'* 24 * * *': hour 24 is out of range 0-23"),
        ("0 0 0 * *", "'0 0 0 * *': day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", "'0 0 32 * *': day-of-month 32 is out of range 1-31"),
        ("0 0 * 13 *", "'0 0 * 13 *': month 13 is out of range 1-12"),
        ("0 0 * * 8", "'0 0 * * 8': day-of-week 8 is out of range 0-7"),
        ("0 0 * foo *", "'0 0 * foo *': month 'foo' is not a number or a month name"),
        (
            "0 0 * * funday",
            "'0 0 * * funday': day-of-week 'funday' is not a number or a day-of-week name",
        ),
        ("x * * * *", "'x * * * *': minute 'x' is not a number"),
        ("0 jan * * *", "'0 jan * * *': hour 'jan' is not a number"),
        ("5-2 * * * *", "'5-2 * * * *': minute range '5-2' is backwards"),
        ("0 0 * * sat-sun", "'0 0 * * sat-sun': day-of-week range 'sat-sun' is backwards"),
        ("*/0 * * * *", "'*/0 * * * *': minute step 0 in '*/0' must be at least 1"),
        (
            "1,,2 * * * *",
            "'1,,2 * * * *': minute '' is not " + NOT_ELEMENT,
        ),
        (
            "-1 * * * *",
            "'-1 * * * *': minute '-1' is not " + NOT_ELEMENT,
        ),
        (
            "? * * * *",
            "'? * * * *': minute '?' is not " + NOT_ELEMENT,
        ),
        ("0 0 L * *", "'0 0 L * *': day-of-month 'L' is not a number"),
        (
            "* * * *",
            "'* * * *': " + FIVE_FIELDS + "; got 4 fields",
        ),
        (
            "0 * * * * *",
            "'0 * * * * *': " + FIVE_FIELDS + "; got 6 fields",
        ),
        (
            "daily",
            "'daily': " + FIVE_FIELDS + "; got 1 field",
        ),
        ("0 0 30 2 *", "'0 0 30 2 *': day-of-month 30 never occurs in February"),
        ("0 0 31 4,6 *", "'0 0 31 4,6 *': day-of-month 31 never occurs in April, June"),
        ("@reboot", "'@reboot': @reboot is not supported (use roled_run_on_start=true)"),
        (
            "@fortnightly",
            "'@fortnightly': unknown shortcut (use " + SHORTCUT_LIST + ")",
        ),
        ("@every", "'@every': expected @every DURATION, such as @every 90s, 5m, 1h or 1h30m"),
        (
            "@every 1m 2s",
            "'@every 1m 2s': expected @every DURATION, such as @every 90s, 5m, 1h or 1h30m",
        ),
        ("@everyday", "'@everyday': expected @every DURATION, such as @every 90s, 5m, 1h or 1h30m"),
        (
            "@every 90",
            "'@every 90': duration '90' is not " + NOT_DURATION,
        ),
        (
            "@every 30m1h",
            "'@every 30m1h': duration '30m1h' is not " + NOT_DURATION,
        ),
        (
            "@every 1.5h",
            "'@every 1.5h': duration '1.5h' is not " + NOT_DURATION,
        ),
        ("@every 0s", "'@every 0s': the interval must be longer than 0s"),
        ("@every 0h0m", "'@every 0h0m': the interval must be longer than 0s"),
        ("@every 8785h", "'@every 8785h': the interval must be at most 366 days"),
    ],
)
def test_bad_expressions(value: str, message: str) -> None:
    """A bad expression is one line naming the key, the value and what is wrong."""
    with pytest.raises(RoledError) as caught:
        parse_schedule(value)
    assert str(caught.value) == f"roled_schedule: {message}"


def test_bad_expression_names_its_origin_and_cuts_a_long_value() -> None:
    """The caller's origin leads the line; a long value is cut, so the line stays one line."""
    with pytest.raises(RoledError) as caught:
        parse_schedule("9" * 200, "roles/web.conf: [program:report] roled_schedule")
    message = str(caught.value)
    assert message.startswith("roles/web.conf: [program:report] roled_schedule: '999")
    assert "\n" not in message
    assert len(message) < 250


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 5000 + " * * * *", "minute '" + "9" * 60 + "'... is not *, a number"),
        ("@every " + "9" * 5000 + "h", "duration '" + "9" * 60 + "'... is not like 90s"),
    ],
)
def test_huge_numbers_are_refused_in_one_short_line(value: str, message: str) -> None:
    """Thousands of digits are an error line, not a conversion that fails with a traceback."""
    with pytest.raises(RoledError) as caught:
        parse_schedule(value)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 300


def test_empty_expression() -> None:
    """An empty roled_schedule is an error, not a schedule that never runs."""
    with pytest.raises(RoledError, match=r"^roled_schedule: is empty \(expected a cron"):
        parse_schedule("  ")


# -- time zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "name"),
    [
        (None, {}, "UTC"),
        (None, {"TZ": ""}, "UTC"),
        (None, {"TZ": "Europe/Berlin"}, "Europe/Berlin"),
        (None, {"TZ": ":America/New_York"}, "America/New_York"),
        (None, {"TZ": "/usr/share/zoneinfo/Asia/Tokyo"}, "Asia/Tokyo"),
        ("UTC", {"TZ": "Europe/Berlin"}, "UTC"),
        (" Australia/Lord_Howe ", {"TZ": "Europe/Berlin"}, "Australia/Lord_Howe"),
        ("Etc/GMT+5", {}, "Etc/GMT+5"),
    ],
)
def test_timezone(value: str | None, environ: dict[str, str], name: str) -> None:
    """roled_timezone wins, else the container's TZ, else UTC."""
    zone = parse_timezone(value, environ, "roled_timezone")
    assert zone.name == name
    assert dt.datetime(2026, 7, 1, tzinfo=zone.tzinfo).utcoffset() == (
        dt.datetime(2026, 7, 1, tzinfo=zoneinfo.ZoneInfo(name)).utcoffset()
    )


def test_utc_needs_no_time_zone_database() -> None:
    """The default zone is the standard library's UTC, which slim images without tzdata have."""
    assert parse_timezone(None, {}, "roled_timezone") == UTC_ZONE == Zone("UTC")
    assert UTC_ZONE.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "environ", "message"),
    [
        ("Mars/Olympus", {}, "roled_timezone: unknown time zone 'Mars/Olympus'"),
        ("Europe", {}, "roled_timezone: unknown time zone 'Europe'"),
        ("europe/berlin", {}, "roled_timezone: unknown time zone 'europe/berlin'"),
        ("../../etc/passwd", {}, "roled_timezone: unknown time zone '../../etc/passwd'"),
        ("/etc/passwd", {}, "roled_timezone: unknown time zone '/etc/passwd'"),
        ("", {}, "roled_timezone: unknown time zone ''"),
        (
            None,
            {"TZ": "CET-1CEST,M3.5.0,M10.5.0/3"},
            "roled_timezone is not set and TZ='CET-1CEST,M3.5.0,M10.5.0/3' is not a zoneinfo "
            "name (set roled_timezone, such as Europe/Berlin)",
        ),
    ],
)
def test_bad_timezone(value: str | None, environ: dict[str, str], message: str) -> None:
    """An unknown zone, or a TZ that is no zoneinfo name, is one line naming the key."""
    with pytest.raises(RoledError) as caught:
        parse_timezone(value, environ, "roled_timezone")
    assert str(caught.value) == message


# -- next due times: reference tables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        # Month ends: the 31st only in months that have one.
        (
            "0 0 31 * *",
            "2026-01-31T00:00",
            [
                "2026-03-31T00:00:00+00:00",
                "2026-05-31T00:00:00+00:00",
                "2026-07-31T00:00:00+00:00",
                "2026-08-31T00:00:00+00:00",
                "2026-10-31T00:00:00+00:00",
                "2026-12-31T00:00:00+00:00",
                "2027-01-31T00:00:00+00:00",
            ],
        ),
        (
            "0 12 30 * *",
            "2027-01-30T12:00",
            ["2027-03-30T12:00:00+00:00", "2027-04-30T12:00:00+00:00"],
        ),
        # Feb 29 in leap years only; 2100 is not one.
        (
            "0 0 29 2 *",
            "2024-02-29T00:00",
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
        ),
        (
            "30 6 29 feb *",
            "2096-03-01T00:00",
            ["2104-02-29T06:30:00+00:00"],
        ),
        # The last minute of February in a leap year and in another.
        (
            "59 23 28,29 2 *",
            "2027-02-28T00:00",
            [
                "2027-02-28T23:59:00+00:00",
                "2028-02-28T23:59:00+00:00",
                "2028-02-29T23:59:00+00:00",
                "2029-02-28T23:59:00+00:00",
            ],
        ),
        # Year rollover.
        (
            "@yearly",
            "2026-12-31T23:59",
            ["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"],
        ),
        (
            "*/20 * * * *",
            "2026-12-31T23:30",
            ["2026-12-31T23:40:00+00:00", "2027-01-01T00:00:00+00:00", "2027-01-01T00:20:00+00:00"],
        ),
        (
            "0 9 * * mon",
            "2026-12-30T00:00",
            ["2027-01-04T09:00:00+00:00", "2027-01-11T09:00:00+00:00"],
        ),
        # Both day fields restricted: either matches (Friday or the 13th).
        (
            "0 12 13 * fri",
            "2026-02-01T00:00",
            [
                "2026-02-06T12:00:00+00:00",
                "2026-02-13T12:00:00+00:00",
                "2026-02-20T12:00:00+00:00",
                "2026-02-27T12:00:00+00:00",
                "2026-03-06T12:00:00+00:00",
                "2026-03-13T12:00:00+00:00",
            ],
        ),
        # One day field starts with '*': both must match (odd days that are Mondays).
        (
            "0 0 */2 * 1",
            "2026-06-01T00:00",
            ["2026-06-15T00:00:00+00:00", "2026-06-29T00:00:00+00:00", "2026-07-13T00:00:00+00:00"],
        ),
        # Only the day-of-week restricted: weekdays.
        (
            "0 8 * * 1-5",
            "2026-05-29T08:00",
            ["2026-06-01T08:00:00+00:00", "2026-06-02T08:00:00+00:00"],
        ),
        # Strictly after: a due time equal to "now" is the next one's predecessor.
        (
            "@hourly",
            "2026-05-01T10:00",
            ["2026-05-01T11:00:00+00:00", "2026-05-01T12:00:00+00:00"],
        ),
    ],
)
def test_next_times_in_utc(text: str, start: str, expected: list[str]) -> None:
    """Month ends, leap days, year rollover and the day-of-month/day-of-week OR rule."""
    assert times(text, UTC, start, len(expected)) == expected


def test_seconds_in_the_start_time() -> None:
    """A start in the middle of a minute looks at the next minute, never the current one."""
    moment = dt.datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC)
    assert next_cron(cron("* * * * *"), UTC, moment) == dt.datetime(2026, 5, 1, 10, 1, tzinfo=UTC)


# Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
# New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
# Lord Howe (half an hour): 2026-04-05 02:00 +11 -> 01:30 +10:30;
# 2026-10-04 02:00 +10:30 -> 02:30 +11.
DST = [
    # Spring, a fixed time in the skipped hour: once, when the skip ends.
    (
        "30 2 * * *",
        BERLIN,
        "2026-03-28T12:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        "30 2 * * *",
        NEW_YORK,
        "2026-03-07T12:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    # Two fixed times in the skip and one right after it: one run at the end of the skip.
    (
        "0,59 2,3 * * *",
        BERLIN,
        "2026-03-29T00:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-29T03:59:00+02:00", "2026-03-30T02:00:00+02:00"],
    ),
    # Spring, a fixed time outside the skip is untouched.
    (
        "30 1 * * *",
        BERLIN,
        "2026-03-28T12:00",
        ["2026-03-29T01:30:00+01:00", "2026-03-30T01:30:00+02:00"],
    ),
    # Spring, a periodic job has no run in the skipped hour.
    (
        "*/30 * * * *",
        BERLIN,
        "2026-03-29T01:00",
        ["2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"],
    ),
    (
        "15 * * * *",
        NEW_YORK,
        "2026-03-08T01:00",
        ["2026-03-08T01:15:00-05:00", "2026-03-08T03:15:00-04:00"],
    ),
    # Fall, a fixed time in the repeated hour: once, at its first occurrence.
    (
        "30 2 * * *",
        BERLIN,
        "2026-10-24T12:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    (
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    # Fall, started inside the repeated hour's second pass: the first pass ran already.
    ("30 1 * * *", NEW_YORK, "2026-11-01T06:10+00:00", ["2026-11-02T01:30:00-05:00"]),
    # Fall, a periodic job runs in both passes of the repeated hour.
    (
        "*/30 * * * *",
        BERLIN,
        "2026-10-25T01:30",
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    (
        "0 * * * *",
        NEW_YORK,
        "2026-11-01T00:00",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"],
    ),
    (
        "45 */1 * * *",
        NEW_YORK,
        "2026-11-01T00:50",
        ["2026-11-01T01:45:00-04:00", "2026-11-01T01:45:00-05:00", "2026-11-01T02:45:00-05:00"],
    ),
    # A periodic minute in a fixed hour is periodic too (Vixie's rule), in both directions.
    (
        "*/20 2 * * *",
        BERLIN,
        "2026-10-25T00:00",
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:20:00+02:00",
            "2026-10-25T02:40:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:20:00+01:00",
            "2026-10-25T02:40:00+01:00",
            "2026-10-26T02:00:00+01:00",
        ],
    ),
    ("*/20 2 * * *", BERLIN, "2026-03-29T00:00", ["2026-03-30T02:00:00+02:00"]),
    # Half-hour shifts.
    (
        "15 2 * * *",
        LORD_HOWE,
        "2026-10-03T12:00",
        ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
    ),
    (
        "*/15 * * * *",
        LORD_HOWE,
        "2026-10-04T01:30",
        ["2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"],
    ),
    (
        "45 1 * * *",
        LORD_HOWE,
        "2026-04-04T12:00",
        ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
    ),
    (
        "*/15 * * * *",
        LORD_HOWE,
        "2026-04-05T01:15",
        [
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ],
    ),
]


@pytest.mark.parametrize(("text", "zone", "start", "expected"), DST)
def test_daylight_saving_changes(
    text: str, zone: dt.tzinfo, start: str, expected: list[str]
) -> None:
    """Vixie cron's rules in two zones with one-hour shifts and one with a half-hour shift."""
    if "+" in start:
        moment = dt.datetime.fromisoformat(start)
        first = next_cron(cron(text), zone, moment)
        assert first is not None
        assert [first.astimezone(zone).isoformat()] == expected
        return
    assert times(text, zone, start, len(expected)) == expected


def simulate_cron(
    expression: Cron, zone: dt.tzinfo, start: dt.datetime, end: dt.datetime
) -> list[dt.datetime]:
    """What cron's minute loop does: look at each real minute, run fixed-time jobs once per wall
    time (the skipped ones when the skip ends), periodic jobs at every wall time that occurs."""

    def matches(wall: dt.datetime) -> bool:
        return (
            wall.minute in expression.minutes
            and wall.hour in expression.hours
            and expression.matches_day(wall.date())
        )

    runs = []
    minute = dt.timedelta(minutes=1)
    previous = (start - minute).astimezone(zone).replace(tzinfo=None)
    latest = previous
    moment = start
    while moment < end:
        wall = moment.astimezone(zone).replace(tzinfo=None)
        if expression.periodic:
            due = matches(wall)
        else:
            skipped = []
            probe = previous + minute
            while probe < wall:
                skipped.append(probe)
                probe += minute
            due = (wall > latest and matches(wall)) or any(matches(probe) for probe in skipped)
        if due:
            runs.append(moment)
        latest = max(latest, wall)
        previous = wall
        moment += minute
    return runs


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (BERLIN, "2026-03-29"),
        (BERLIN, "2026-10-25"),
        (NEW_YORK, "2026-03-08"),
        (NEW_YORK, "2026-11-01"),
        (LORD_HOWE, "2026-04-05"),
        (LORD_HOWE, "2026-10-04"),
    ],
)
@pytest.mark.parametrize(
    "text",
    [
        "30 2 * * *",
        "0 1-3 * * *",
        "*/30 * * * *",
        "7 * * * *",
        "*/10 1,2 * * *",
        "0,45 1,2 * * *",
        "15 2,3 * * *",
    ],
)
def test_next_times_agree_with_crons_minute_loop(text: str, zone: dt.tzinfo, day: str) -> None:
    """Around each change, the due times equal those of a simulated cron looking every minute."""
    expression = cron(text)
    start = dt.datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC) - dt.timedelta(
        hours=6
    )
    end = start + dt.timedelta(hours=36)
    expected = simulate_cron(expression, zone, start, end)
    found = []
    moment = start - dt.timedelta(minutes=1)
    while True:
        due = next_cron(expression, zone, moment)
        assert due is not None
        if due >= end:
            break
        found.append(due)
        moment = due
    assert found == expected
    assert expected


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=4),
    hours=st.sets(st.integers(0, 23), min_size=1, max_size=4),
    days=st.one_of(
        st.just("*"),
        st.sets(st.integers(1, 31), min_size=1, max_size=3).map(
            lambda s: ",".join(map(str, sorted(s)))
        ),
    ),
    weekdays=st.one_of(
        st.just("*"),
        st.sets(st.integers(0, 7), min_size=1, max_size=3).map(
            lambda s: ",".join(map(str, sorted(s)))
        ),
    ),
    start=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2090, 1, 1)),
)
def test_next_time_is_the_first_matching_minute(
    minutes: set[int], hours: set[int], days: str, weekdays: str, start: dt.datetime
) -> None:
    """In UTC, the next due time matches, is after start, and no minute between them matches."""
    listed = [",".join(map(str, sorted(values))) for values in (minutes, hours)]
    text = f"{listed[0]} {listed[1]} {days} * {weekdays}"
    expression = cron(text)
    moment = start.replace(tzinfo=UTC)
    due = next_cron(expression, UTC, moment)
    assert due is not None
    assert due > moment
    assert due.minute in minutes
    assert due.hour in hours
    assert expression.matches_day(due.date())
    # No matching day strictly between, and no matching minute earlier on the due day.
    day = moment.date()
    while day < due.date():
        assert day == moment.date() or not expression.matches_day(day)
        day += dt.timedelta(days=1)
    earlier = max(moment, due.replace(hour=0, minute=0, second=0, microsecond=0))
    probe = earlier.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while probe < due:
        assert not (
            probe.minute in minutes and probe.hour in hours and expression.matches_day(probe.date())
        )
        probe += dt.timedelta(minutes=1)


def test_never_within_the_horizon() -> None:
    """A rule with no date in 50 years (parsing refuses one; this is the search's guard) is
    never due, and next_due says so."""
    impossible = dataclasses.replace(cron("0 0 31 1 *"), months=frozenset({2}))
    moment = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert next_cron(impossible, UTC, moment) is None
    assert next_due(impossible, UTC, 0.0, moment.timestamp()) is None


# -- @every and the epoch-seconds entry point ---------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "after", "expected"),
    [
        (1000.0, 1000.0, 1090.0),
        (1000.0, 1089.9, 1090.0),
        (1000.0, 1090.0, 1180.0),
        (1000.0, 1500.0, 1540.0),
        (1000.0, 900.0, 1090.0),
        (0.1, 0.1 + 90 * 3, 0.1 + 90 * 4),
    ],
)
def test_next_every(anchor: float, after: float, expected: float) -> None:
    """@every 90s is due at the anchor plus a whole number of intervals, at least one."""
    assert next_every(Every("@every 90s", 90), anchor, after) == pytest.approx(expected)


def test_next_due_in_epoch_seconds() -> None:
    """next_due answers in seconds since the epoch for both kinds of schedule."""
    start = dt.datetime(2026, 3, 28, 12, tzinfo=UTC).timestamp()
    due = next_due(parse_schedule("30 2 * * *"), BERLIN, start, start)
    assert due == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    assert next_due(parse_schedule("@every 1h"), BERLIN, start, start + 10) == start + 3600
