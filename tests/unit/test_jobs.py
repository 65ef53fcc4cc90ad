"""Scheduled programs (pure): keys, assembly rules, and the scheduler driven by a fake clock."""

from __future__ import annotations

import datetime as dt
import pickle
import threading

import pytest

from roled.errors import RoledError
from roled.jobs import (
    Actions,
    Job,
    JobStatus,
    RunEnded,
    RunNotStarted,
    RunSkipped,
    RunStarted,
    Scheduler,
    check_scheduled,
    parse_job,
)
from roled.policy import Verdict
from roled.schedule import UTC_ZONE, parse_schedule, parse_timezone

WHERE = "roles/jobs.conf: [program:report]"
BERLIN = parse_timezone("Europe/Berlin", {}, "roled_timezone")

UTC = dt.timezone.utc


def every(program: str, interval: str, **options: object) -> Job:
    return Job(program, parse_schedule(f"@every {interval}"), **options)  # type: ignore[arg-type]


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- keys ---------------------------------------------------------------------------------------


def test_a_program_without_a_schedule_is_no_job() -> None:
    """No roled_schedule: not a scheduled program."""
    assert parse_job("web", {"command": "serve"}, {}, WHERE) is None


def test_job_from_its_keys() -> None:
    """Every key read, with the exitcodes supervisor's loader gave."""
    options = {
        "roled_schedule": "30 2 * * *",
        "roled_timezone": "Europe/Berlin",
        "roled_run_on_start": "yes",
        "roled_on_failure": "EXIT",
    }
    job = parse_job("report", options, {"TZ": "Asia/Tokyo"}, WHERE, exitcodes=(0, 2))
    assert job == Job("report", parse_schedule("30 2 * * *"), BERLIN, True, "exit", (0, 2))


def test_job_defaults() -> None:
    """Zone from TZ, no run on start, failures warn, exit code 0 expected."""
    job = parse_job("report", {"roled_schedule": "@daily"}, {"TZ": "Europe/Berlin"}, WHERE)
    assert job == Job("report", parse_schedule("@daily"), BERLIN)
    job = parse_job("report", {"roled_schedule": "@daily"}, {}, WHERE)
    assert job is not None
    assert (job.zone, job.run_on_start, job.on_failure, job.exitcodes) == (
        UTC_ZONE,
        False,
        "warn",
        (0,),
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"roled_schedule": "61 * * * *"},
            f"{WHERE} roled_schedule: '61 * * * *': minute 61 is out of range 0-59",
        ),
        (
            {"roled_schedule": "@daily", "roled_timezone": "Mars/Base"},
            f"{WHERE} roled_timezone: unknown time zone 'Mars/Base'",
        ),
        (
            {"roled_schedule": "@daily", "roled_run_on_start": "sometimes"},
            f"{WHERE} roled_run_on_start: expected true or false, got 'sometimes'",
        ),
        (
            {"roled_schedule": "@daily", "roled_on_failure": "panic"},
            f"{WHERE} roled_on_failure: expected warn or exit, got 'panic'",
        ),
        (
            {"roled_timezone": "UTC"},
            f"{WHERE} roled_timezone is set but roled_schedule is not",
        ),
        (
            {"roled_run_on_start": "true", "roled_on_failure": "exit"},
            f"{WHERE} roled_run_on_start is set but roled_schedule is not",
        ),
    ],
)
def test_bad_keys(options: dict[str, str], message: str) -> None:
    """Each bad key is one line naming file, section, key and value."""
    with pytest.raises(RoledError) as caught:
        parse_job("report", options, {}, WHERE)
    assert str(caught.value) == message


def test_bad_tz_names_the_program_section() -> None:
    """A TZ that is no zoneinfo name fails only a scheduled program without roled_timezone."""
    environ = {"TZ": "EST5EDT4"}
    with pytest.raises(RoledError) as caught:
        parse_job("report", {"roled_schedule": "@daily"}, environ, WHERE)
    assert str(caught.value).startswith(f"{WHERE} roled_timezone is not set and TZ='EST5EDT4'")
    options = {"roled_schedule": "@daily", "roled_timezone": "UTC"}
    assert parse_job("report", options, environ, WHERE) is not None


def test_key_without_where() -> None:
    """Without a place, the line starts with the key."""
    with pytest.raises(RoledError, match=r"^roled_schedule: '@often': unknown shortcut"):
        parse_job("report", {"roled_schedule": "@often"}, {})


# -- validation and assembly --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"roled_schedule": "@daily", "autorestart": "true"},
            f"{WHERE} roled_schedule: a scheduled program cannot have autorestart=true "
            "(roled starts it each time it is due)",
        ),
        (
            {"roled_schedule": "@daily", "autorestart": " Yes "},
            f"{WHERE} roled_schedule: a scheduled program cannot have autorestart=true "
            "(roled starts it each time it is due)",
        ),
        (
            {"roled_schedule": "@daily", "numprocs": "3"},
            f"{WHERE} roled_schedule: a scheduled program runs one process, not numprocs=3",
        ),
    ],
)
def test_refused_program_settings(options: dict[str, str], message: str) -> None:
    """autorestart=true and numprocs>1 cannot go with a schedule."""
    with pytest.raises(RoledError) as caught:
        check_scheduled(options, WHERE)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "options",
    [
        {"roled_schedule": "@daily"},
        {"roled_schedule": "@daily", "autorestart": "unexpected", "numprocs": "1"},
        {"roled_schedule": "@daily", "autorestart": "false", "numprocs": "%(ENV_N)s"},
        {"autorestart": "true", "numprocs": "4"},
    ],
)
def test_accepted_program_settings(options: dict[str, str]) -> None:
    """Anything else passes: roled overrides it, or supervisor's loader judges it."""
    check_scheduled(options, WHERE)


# -- the scheduler ------------------------------------------------------------------------------


def test_every_runs_one_interval_after_start() -> None:
    """An @every 2s job: due 2 s after start, then every 2 s, each run logged start and end."""
    scheduler = Scheduler([every("beat", "2s")])
    assert scheduler.next_wakeup() is None
    assert scheduler.start(1000.0) == Actions()
    assert scheduler.next_wakeup() == 1002.0
    assert scheduler.tick(1001.0) == Actions()
    assert scheduler.tick(1002.0) == Actions(start=("beat",))
    assert scheduler.next_wakeup() == 1004.0
    started = scheduler.run_started("beat", 1002.1)
    assert started == Actions(
        records=(RunStarted("beat", 1002.1, "due 1970-01-01T00:16:42+00:00"),)
    )
    assert (
        started.records[0].message == "program 'beat' run started (due 1970-01-01T00:16:42+00:00)"
    )
    ended = scheduler.run_ended("beat", 0, 1002.6)
    assert ended == Actions(records=(RunEnded("beat", 1002.1, 1002.6, 0),))
    record = ended.records[0]
    assert (record.level, record.message) == (
        "INFO",
        "program 'beat' run ended: exit status 0 after 0.5s",
    )
    assert scheduler.tick(1004.0) == Actions(start=("beat",))


def test_timeline_of_an_overlapping_job() -> None:
    """A run due while the previous one runs is skipped, logged once per skip with its age."""
    scheduler = Scheduler([every("slow", "60s")])
    steps: list[tuple[str, float, Actions]] = [
        ("start", 0.0, Actions()),
        ("tick", 60.0, Actions(start=("slow",))),
        (
            "started",
            60.5,
            Actions(records=(RunStarted("slow", 60.5, "due 1970-01-01T00:01:00+00:00"),)),
        ),
        ("tick", 120.0, Actions(records=(RunSkipped("slow", 120.0, 59.5),))),
        ("tick", 150.0, Actions()),
        ("tick", 180.0, Actions(records=(RunSkipped("slow", 180.0, 119.5),))),
        ("ended", 200.5, Actions(records=(RunEnded("slow", 60.5, 200.5, 0),))),
        ("tick", 240.0, Actions(start=("slow",))),
    ]
    for event, now, expected in steps:
        if event == "start":
            actions = scheduler.start(now)
        elif event == "tick":
            actions = scheduler.tick(now)
        elif event == "started":
            actions = scheduler.run_started("slow", now)
        else:
            actions = scheduler.run_ended("slow", 0, now)
        assert (event, now, actions) == (event, now, expected)
    skipped = RunSkipped("slow", 120.0, 93.2)
    assert (skipped.level, skipped.message) == (
        "WARNING",
        "program 'slow' skipped: the previous run, started 93s ago, still runs",
    )


def test_a_requested_run_counts_as_running_before_supervisord_reports_it() -> None:
    """Between the start request and supervisord's answer, a due time is a skip, not a start."""
    scheduler = Scheduler([every("job", "1s")])
    scheduler.start(0.0)
    assert scheduler.tick(1.0) == Actions(start=("job",))
    assert scheduler.tick(2.0) == Actions(records=(RunSkipped("job", 2.0, 1.0),))


def test_late_tick_runs_once_and_does_not_catch_up() -> None:
    """A tick long after several due times starts one run; the next due time follows now."""
    scheduler = Scheduler([every("job", "60s")])
    scheduler.start(0.0)
    assert scheduler.tick(1000.0) == Actions(start=("job",))
    assert scheduler.next_wakeup() == 1020.0


def test_cron_job_in_its_zone() -> None:
    """A Berlin job at 02:30 on the night the clocks go forward runs at 03:00 CEST."""
    scheduler = Scheduler([Job("report", parse_schedule("30 2 * * *"), BERLIN)])
    scheduler.start(epoch("2026-03-28T12:00:00"))
    due = epoch("2026-03-29T01:00:00")
    assert scheduler.next_wakeup() == due
    assert scheduler.tick(due - 0.001) == Actions()
    assert scheduler.tick(due) == Actions(start=("report",))
    assert scheduler.run_started("report", due + 0.2) == Actions(
        records=(RunStarted("report", due + 0.2, "due 2026-03-29T03:00:00+02:00"),)
    )
    assert scheduler.next_wakeup() == epoch("2026-03-30T00:30:00")


@pytest.mark.parametrize(
    ("exitstatus", "on_failure", "level", "message", "verdict"),
    [
        (0, "warn", "INFO", "program 'job' run ended: exit status 0 after 2.0s", None),
        (2, "warn", "INFO", "program 'job' run ended: exit status 2 after 2.0s", None),
        (
            3,
            "warn",
            "WARNING",
            "program 'job' run failed: exit status 3 after 2.0s (exitcodes 0,2)",
            None,
        ),
        (
            -1,
            "warn",
            "WARNING",
            "program 'job' run failed: killed by a signal after 2.0s (exitcodes 0,2)",
            None,
        ),
        (None, "warn", "INFO", "program 'job' run stopped after 2.0s", None),
        (0, "exit", "INFO", "program 'job' run ended: exit status 0 after 2.0s", None),
        (
            3,
            "exit",
            "WARNING",
            "program 'job' run failed: exit status 3 after 2.0s (exitcodes 0,2)",
            Verdict(
                1,
                "scheduled program 'job' failed (exit status 3) and roled_on_failure is 'exit'",
                ("job",),
            ),
        ),
        (None, "exit", "INFO", "program 'job' run stopped after 2.0s", None),
    ],
)
def test_failure_table(
    exitstatus: int | None, on_failure: str, level: str, message: str, verdict: Verdict | None
) -> None:
    """An exit status not in exitcodes warns, or with roled_on_failure=exit ends the container."""
    scheduler = Scheduler([every("job", "10s", on_failure=on_failure, exitcodes=(0, 2))])
    scheduler.start(0.0)
    scheduler.tick(10.0)
    scheduler.run_started("job", 10.0)
    actions = scheduler.run_ended("job", exitstatus, 12.0)
    (record,) = actions.records
    assert (record.level, record.message, actions.verdict) == (level, message, verdict)
    assert actions.start == ()


def test_stop_starts_nothing_and_judges_no_run() -> None:
    """Once roled stops, nothing is due and a run the stop kills is not a failure."""
    scheduler = Scheduler([every("job", "10s", on_failure="exit")])
    scheduler.start(0.0)
    scheduler.tick(10.0)
    scheduler.run_started("job", 10.0)
    scheduler.stop()
    assert scheduler.next_wakeup() is None
    assert scheduler.tick(20.0) == Actions()
    assert scheduler.run_ended("job", -1, 21.0) == Actions(
        records=(RunEnded("job", 10.0, 21.0, -1, failed=False),)
    )


def test_run_on_start() -> None:
    """roled_run_on_start runs once at start; @every then counts its intervals from start."""
    scheduler = Scheduler(
        [
            every("beat", "30s", run_on_start=True),
            Job("nightly", parse_schedule("@daily"), run_on_start=True),
            every("quiet", "30s"),
        ]
    )
    now = epoch("2026-05-01T10:00:00")
    assert scheduler.start(now) == Actions(start=("beat", "nightly"))
    assert scheduler.run_started("beat", now + 0.1) == Actions(
        records=(RunStarted("beat", now + 0.1, "roled_run_on_start"),)
    )
    assert scheduler.status("beat") == JobStatus(
        "beat", "@every 30s", "UTC", now + 30, now + 0.1, None
    )
    assert scheduler.status("nightly") == JobStatus(
        "nightly", "@daily", "UTC", epoch("2026-05-02T00:00:00"), now, None
    )
    assert scheduler.next_wakeup() == now + 30


def test_run_started_by_someone_else() -> None:
    """A run started with supervisorctl is logged as outside the schedule and blocks overlaps."""
    scheduler = Scheduler([every("job", "10s")])
    scheduler.start(0.0)
    assert scheduler.run_started("job", 4.0) == Actions(
        records=(RunStarted("job", 4.0, "outside its schedule"),)
    )
    assert scheduler.run_started("job", 4.5) == Actions()
    assert scheduler.tick(10.0) == Actions(records=(RunSkipped("job", 10.0, 6.0),))
    assert scheduler.run_ended("job", 0, 11.0) == Actions(records=(RunEnded("job", 4.0, 11.0, 0),))
    assert scheduler.run_ended("job", 0, 11.5) == Actions()


def test_a_run_that_cannot_start() -> None:
    """A requested run that never starts is a warning (a verdict with exit), and frees the next."""
    scheduler = Scheduler([every("warns", "10s"), every("ends", "10s", on_failure="exit")])
    scheduler.start(0.0)
    assert scheduler.tick(10.0) == Actions(start=("ends", "warns"))
    warned = scheduler.start_failed("warns", "spawn error", 10.5)
    assert warned == Actions(records=(RunNotStarted("warns", 10.5, "spawn error"),))
    assert (warned.records[0].level, warned.records[0].message) == (
        "WARNING",
        "program 'warns' run could not start: spawn error",
    )
    ended = scheduler.start_failed("ends", "FATAL", 10.5)
    assert ended.verdict == Verdict(
        1,
        "scheduled program 'ends' could not start (FATAL) and roled_on_failure is 'exit'",
        ("ends",),
    )
    assert scheduler.start_failed("ends", "FATAL", 10.6) == Actions()
    assert scheduler.tick(20.0) == Actions(start=("ends", "warns"))
    scheduler.stop()
    assert scheduler.start_failed("ends", "FATAL", 20.5).verdict is None


def test_reload_keeps_or_changes_due_times() -> None:
    """Unchanged schedules keep their due time, changed ones apply from now, a running run stays."""
    scheduler = Scheduler([every("same", "60s"), every("changed", "60s"), every("gone", "60s")])
    scheduler.start(0.0)
    scheduler.tick(60.0)
    scheduler.run_started("changed", 60.0)
    actions = scheduler.reload(
        [
            every("same", "60s", exitcodes=(0, 1)),
            every("changed", "100s"),
            every("new", "50s", run_on_start=True),
            every("new-quiet", "50s"),
        ],
        90.0,
    )
    assert actions == Actions(start=("new",))
    assert scheduler.status("gone") is None
    assert scheduler.run_ended("gone", 0, 91.0) == Actions()
    dues = {
        name: status.next_due for name in scheduler.programs if (status := scheduler.status(name))
    }
    assert dues == {"same": 120.0, "changed": 190.0, "new": 140.0, "new-quiet": 140.0}
    # The run in progress keeps its start; it ends under the new settings.
    assert scheduler.run_ended("changed", 0, 95.0) == Actions(
        records=(RunEnded("changed", 60.0, 95.0, 0),)
    )
    # Both were started at 60; the reload's exitcodes (0, 1) judge the unchanged one's run.
    assert scheduler.run_ended("same", 1, 96.0) == Actions(
        records=(RunEnded("same", 60.0, 96.0, 1, exitcodes=(0, 1)),)
    )
    assert scheduler.programs == ("changed", "new", "new-quiet", "same")


def test_reload_of_a_changed_zone() -> None:
    """A new zone is a new timing: the due time follows it from the reload."""
    scheduler = Scheduler([Job("report", parse_schedule("0 3 * * *"))])
    start = epoch("2026-05-01T00:00:00")
    scheduler.start(start)
    assert scheduler.next_wakeup() == epoch("2026-05-01T03:00:00")
    scheduler.reload([Job("report", parse_schedule("0 3 * * *"), BERLIN)], start + 60)
    assert scheduler.next_wakeup() == epoch("2026-05-01T01:00:00")


def test_reload_before_start() -> None:
    """A reload before the schedules begin only replaces the jobs."""
    scheduler = Scheduler([every("job", "60s", run_on_start=True)])
    assert scheduler.reload([every("job", "30s", run_on_start=True)], 5.0) == Actions()
    assert scheduler.start(10.0) == Actions(start=("job",))
    assert scheduler.next_wakeup() == 40.0


def test_wakeup_is_the_earliest_due_time() -> None:
    """The loop sleeps until the earliest due time of all programs, and none without programs."""
    scheduler = Scheduler([every("a", "90s"), every("b", "1m"), every("c", "1h")])
    scheduler.start(0.0)
    assert scheduler.next_wakeup() == 60.0
    scheduler.tick(60.0)
    assert scheduler.next_wakeup() == 90.0
    empty = Scheduler([])
    empty.start(0.0)
    assert empty.next_wakeup() is None
    assert empty.tick(1.0) == Actions()


def test_events_for_unknown_programs_change_nothing() -> None:
    """Transitions of programs that are not scheduled are none of the scheduler's business."""
    scheduler = Scheduler([every("job", "10s")])
    scheduler.start(0.0)
    assert scheduler.run_started("web", 1.0) == Actions()
    assert scheduler.run_ended("web", 1, 2.0) == Actions()
    assert scheduler.start_failed("web", "FATAL", 2.0) == Actions()
    assert scheduler.status("web") is None
    assert scheduler.status("job") == JobStatus("job", "@every 10s", "UTC", 10.0, None, None)


def test_status_shows_the_last_run() -> None:
    """roled status: next run, the last run's result and duration."""
    scheduler = Scheduler([Job("report", parse_schedule("*/5 * * * *"), BERLIN, exitcodes=(0,))])
    now = epoch("2026-05-01T10:00:00")
    scheduler.start(now)
    scheduler.tick(now + 300)
    scheduler.run_started("report", now + 300)
    scheduler.run_ended("report", 4, now + 312.5)
    status = scheduler.status("report")
    assert status == JobStatus(
        "report",
        "*/5 * * * *",
        "Europe/Berlin",
        now + 600,
        None,
        RunEnded("report", now + 300, now + 312.5, 4, failed=True, exitcodes=(0,)),
    )
    assert status.last is not None
    assert status.last.duration == 12.5


def test_a_hundred_programs_need_no_thread() -> None:
    """The scheduler is plain data: a hundred jobs start no thread, and one wake-up serves all."""
    threads = threading.active_count()
    jobs = [every(f"job{number:03}", f"{60 + number}s") for number in range(100)]
    scheduler = Scheduler(jobs)
    scheduler.start(0.0)
    assert scheduler.next_wakeup() == 60.0
    assert scheduler.tick(60.0) == Actions(start=("job000",))
    assert scheduler.next_wakeup() == 61.0
    assert threading.active_count() == threads


def test_a_job_crosses_the_planner_pipe() -> None:
    """The planner hands PID 1 its jobs pickled; they arrive equal, zone included."""
    jobs = [
        Job("report", parse_schedule("30 2 * * *"), BERLIN, True, "exit", (0, 3)),
        every("beat", "90s"),
    ]
    assert pickle.loads(pickle.dumps(jobs)) == jobs
