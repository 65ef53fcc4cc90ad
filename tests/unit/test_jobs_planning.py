"""Scheduled programs in the planner: what supervisord is told, what roled keeps and refuses."""

from __future__ import annotations

from supervisor.states import ProcessStates

from roled import jobs
from roled.schedule import parse_schedule
from roled.statusview import assess
from roled.supervisor import ProcessInfo
from tests.conftest import Layout
from tests.unit.test_assemble import assemble_layout, error_of, programs

JOBS = """
[program:report]
command=/bin/true
roled_schedule=30 2 * * *
roled_timezone=Europe/Berlin
autostart=true
startsecs=5
exitcodes=0,3
[program:beat]
command=/bin/true
roled_schedule=@every 90s
roled_run_on_start=true
roled_on_failure=exit
[program:web]
command=/bin/sleep 1
"""


def test_supervisord_gets_jobs_that_wait_for_roled(layout: Layout) -> None:
    """A job is autostart=false, autorestart=false, startsecs=0 whatever common.conf or its
    section says; other programs keep common.conf's values."""
    layout.common("autorestart=true\nstartsecs=2\n")
    layout.role("jobs", JOBS)
    found = programs(assemble_layout(layout, "jobs"), layout.root)
    assert {
        name: (bool(p.autostart), str(p.autorestart), p.startsecs) for name, p in found.items()
    } == {
        "report": (False, "False", 0),
        "beat": (False, "False", 0),
        "web": (True, "<class 'supervisor.datatypes.RestartUnconditionally'>", 2),
    }


def test_each_job_is_settled_with_its_zone_and_exitcodes(layout: Layout) -> None:
    """The planner hands PID 1 each job: zone from the key, else TZ; exitcodes from supervisor."""
    layout.role("jobs", JOBS)
    assembly = assemble_layout(layout, "jobs", {"TZ": ":America/New_York"})
    settled = {job.program: job for job in jobs.jobs_of(assembly.processes)}
    assert sorted(settled) == ["beat", "report"]
    report, beat = settled["report"], settled["beat"]
    assert (report.schedule, report.zone.name, report.exitcodes) == (
        parse_schedule("30 2 * * *"),
        "Europe/Berlin",
        (0, 3),
    )
    assert (beat.zone.name, beat.run_on_start, beat.on_failure) == (
        "America/New_York",
        True,
        "exit",
    )


def test_a_schedule_key_may_not_stand_in_common(layout: Layout) -> None:
    """common.conf would make every program a job: refused in one line."""
    layout.common("roled_schedule=@daily\n")
    layout.role("jobs", JOBS)
    assert error_of(layout, "jobs") == (
        f"{layout.common_path}: roled_schedule: may not stand in common.conf, only in a program"
    )


def test_common_autorestart_does_not_refuse_a_job(layout: Layout) -> None:
    """Only the job's own autorestart=true is refused, not common.conf's default."""
    layout.common("autorestart=true\n")
    layout.role("jobs", JOBS)
    assemble_layout(layout, "jobs")


def info(name: str, state: str, exitstatus: int = 0) -> ProcessInfo:
    return ProcessInfo(name, name, getattr(ProcessStates, state), 0, exitstatus, "", "", 0, 0)


def test_status_calls_a_scheduled_program_fine_whatever_its_last_run() -> None:
    """Idle, or after a failed run, a job is fine for the probe; a plain program is not."""
    schedule = {
        "expression": "@every 1m",
        "next_run": "2026-01-01T00:01:00+00:00",
        "last": {"exitstatus": 3, "duration": 1.5, "ok": False},
    }
    statuses = assess([info("job", "EXITED", 3), info("other", "EXITED", 3)], {}, {"job": schedule})
    assert [(s.name, s.ok, s.detail) for s in statuses] == [
        (
            "job",
            True,
            "next run 2026-01-01T00:01:00+00:00; last run: exit status 3 after 1.5s, failed",
        ),
        ("other", False, "exit status 3 (not expected)"),
    ]
