"""Scheduled programs in the lifecycle: due times on the wall clock it is told, runs started and
judged by the scheduler instead of the exit policy, with a fake clock."""

from __future__ import annotations

import signal

from roled import jobs
from roled import lifecycle as lc
from roled.lifecycle import Lifecycle, Phase
from roled.model import Process, ProcessState, ProgramConfig
from roled.policy import Rules
from roled.schedule import parse_schedule
from tests.unit.test_lifecycle import TIMINGS, WEB, kinds, logs, planned, seen

S = ProcessState
# The wall clock runs this far ahead of the monotonic one.
WALL = 1000.0


def scheduled(name: str, schedule: str = "@every 2s", on_failure: str = "warn") -> Process:
    job = jobs.Job(name, parse_schedule(schedule), on_failure=on_failure)
    config = ProgramConfig(autostart=False, autorestart="false")
    return Process(name, name, 999, 10, config, roled={jobs.JOB: job})


JOB = scheduled("job")


def handle(machine: Lifecycle, event: lc.Event, now: float) -> list[lc.Action]:
    return machine.handle(event, now, now + WALL)


def connected(*processes: Process, rules: Rules | None = None) -> Lifecycle:
    """Supervisord answered at 0.25 with the job idle and the rest RUNNING."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    handle(machine, planned(*processes, rules=rules), 0.125)
    handle(machine, lc.ListenerReady(42), 0.25)
    states = [(p.namespec, S.STOPPED if jobs.JOB in p.roled else S.RUNNING) for p in processes]
    actions = handle(machine, seen(*states), 0.25)
    assert machine.phase == Phase.RUNNING
    assert "StartProcesses" not in kinds(actions)
    return machine


def change(
    name: str, before: ProcessState, after: ProcessState, status: int | None = None
) -> lc.Changed:
    return lc.Changed(name, name, before, after, None, status)


def run(machine: Lifecycle, status: int, at: float = 2.25) -> list[lc.Action]:
    """The job is due at ``at``: started, seen running, then ended with status."""
    actions = handle(machine, lc.Tick(), at)
    assert [a for a in actions if isinstance(a, lc.StartProcesses)] == [lc.StartProcesses(("job",))]
    actions = handle(machine, change("job", S.STOPPED, S.STARTING), at + 0.125)
    actions += handle(machine, change("job", S.STARTING, S.RUNNING), at + 0.125)
    return actions + handle(machine, change("job", S.RUNNING, S.EXITED, status), at + 1.5)


def test_the_loop_wakes_at_the_next_due_time() -> None:
    """Due times are on the wall clock; the wake-up is on the monotonic one, exactly then."""
    machine = connected(WEB, JOB)
    assert machine.next_wakeup() == 2.25
    assert "StartProcesses" not in kinds(handle(machine, lc.Tick(), 2.0))
    assert machine.next_wakeup() == 2.25


def test_a_due_job_is_started_and_its_run_logged() -> None:
    """Due: one startProcess; the run's start and end are logged, the status published."""
    machine = connected(WEB, JOB)
    actions = run(machine, 0)
    assert logs(actions) == [
        "INFO program 'job' run started (due 1970-01-01T00:16:42+00:00)",
        "INFO program 'job' run ended: exit status 0 after 1.4s",
    ]
    assert "PublishJobs" in kinds(actions)
    assert machine.phase == Phase.RUNNING
    assert machine.next_wakeup() == 4.25


def test_a_failed_run_warns_and_the_container_goes_on() -> None:
    """An exit status not in exitcodes: a warning, never the exit policy's FATAL path."""
    machine = connected(WEB, JOB)
    actions = run(machine, 3)
    assert logs(actions)[-1] == (
        "WARNING program 'job' run failed: exit status 3 after 1.4s (exitcodes 0)"
    )
    assert "Blame" not in kinds(actions)
    assert machine.phase == Phase.RUNNING


def test_a_failed_run_with_on_failure_exit_ends_the_container_with_1() -> None:
    """roled_on_failure=exit: the failed run is blamed and everything stops with 1."""
    machine = connected(WEB, scheduled("job", on_failure="exit"))
    actions = run(machine, 3)
    blame = [a for a in actions if isinstance(a, lc.Blame)]
    assert [b.verdict.code for b in blame] == [1]
    assert blame[0].verdict.reason == (
        "scheduled program 'job' failed (exit status 3) and roled_on_failure is 'exit'"
    )
    assert blame[0].transition.program == "job"
    assert machine.phase == Phase.STOPPING


def test_a_job_that_cannot_start_is_a_warning_not_fatal() -> None:
    """FATAL (spawn error) of a job: the scheduler's warning, the container goes on."""
    machine = connected(WEB, JOB)
    handle(machine, lc.Tick(), 2.25)
    actions = handle(machine, seen(("web", S.RUNNING), ("job", S.FATAL)), 2.5)
    assert logs(actions) == [
        "WARNING program 'job' run could not start: supervisord could not spawn it"
    ]
    assert machine.phase == Phase.RUNNING


def test_a_refused_start_is_logged() -> None:
    """supervisord refuses startProcess: the run did not start, and the next one may."""
    machine = connected(WEB, JOB)
    handle(machine, lc.Tick(), 2.25)
    actions = handle(machine, lc.StartRefused("job", "SPAWN_ERROR: job"), 2.25)
    assert logs(actions) == ["WARNING program 'job' run could not start: SPAWN_ERROR: job"]
    assert [a for a in handle(machine, lc.Tick(), 4.25) if isinstance(a, lc.StartProcesses)] == [
        lc.StartProcesses(("job",))
    ]


def test_a_stop_during_a_run_stops_it_and_is_not_a_failure() -> None:
    """SIGTERM: the run is stopped with the rest, logged, nothing new starts; exit 0."""
    machine = connected(WEB, JOB)
    handle(machine, lc.Tick(), 2.25)
    handle(machine, change("job", S.STOPPED, S.RUNNING), 2.5)
    handle(machine, lc.Signal(signal.SIGTERM), 3.0)
    assert machine.phase == Phase.STOPPING
    handle(machine, change("job", S.RUNNING, S.STOPPING), 3.25)
    actions = handle(machine, change("job", S.STOPPING, S.STOPPED), 3.5)
    assert logs(actions) == ["INFO program 'job' run stopped after 1.0s"]
    assert machine.verdict is not None
    assert machine.verdict.code == 0
    assert "StartProcesses" not in kinds(handle(machine, lc.Tick(), 10.25))


def test_a_job_seen_starting_while_stopping_is_stopped() -> None:
    """A run started just before the stop request is stopped as soon as it shows up."""
    machine = connected(WEB, JOB)
    handle(machine, lc.Tick(), 2.25)
    handle(machine, lc.Signal(signal.SIGTERM), 2.5)
    actions = handle(machine, change("job", S.STOPPED, S.RUNNING), 2.75)
    assert lc.StopProcesses(("job",)) in actions


def test_reload_of_a_schedule_alone_applies_it() -> None:
    """roled's keys are not in supervisord's text: the same text with a new schedule still
    reschedules, from the reload on."""
    machine = connected(WEB, JOB)
    handle(machine, lc.Signal(signal.SIGHUP), 1.0)
    actions = handle(machine, planned(WEB, scheduled("job", "@every 5s")), 1.25)
    assert "INFO SIGHUP: the config has not changed" in logs(actions)
    assert machine.phase == Phase.RUNNING
    assert machine.scheduler.next_wakeup() == WALL + 6.25


def test_a_schedule_keeps_exit_when_done_from_ending_the_container() -> None:
    """ROLED_EXIT_WHEN_DONE: a schedule is never done, so its program keeps the container."""
    migrate = Process("migrate", "migrate", 999, 10, ProgramConfig(autorestart="false"))
    machine = connected(migrate, JOB, rules=Rules(exit_when_done=True))
    actions = handle(machine, change("migrate", S.RUNNING, S.EXITED, 0), 1.0)
    assert machine.phase == Phase.RUNNING
    assert "Exit" not in kinds(actions)
