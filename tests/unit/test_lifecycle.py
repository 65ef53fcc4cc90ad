"""The lifecycle state machine, phase by phase and event by event, with a fake clock."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest

from roled import lifecycle as lc
from roled.lifecycle import Lifecycle, Phase, Timings
from roled.model import Assembly, Control, Ended, Process, ProcessState, ProgramConfig
from roled.policy import Rules

S = ProcessState
TIMINGS = Timings(shutdown_timeout=30.0, hang_timeout=10.0, plan_timeout=5.0)
ONESHOT = ProgramConfig(autorestart="false")


def assembly(*processes: Process, text: str = "config") -> Assembly:
    return Assembly(
        text=text,
        sections=(),
        control=Control(Path("/run/x.sock"), None, None),
        programs=tuple(p.group for p in processes),
        warnings=(),
        processes=processes,
    )


def process(namespec: str, priority: int = 999, config: ProgramConfig | None = None) -> Process:
    group = namespec.partition(":")[0]
    return Process(namespec, group, priority, 10, config or ProgramConfig())


WEB = process("web")
WORKER = process("worker", priority=10)
MIGRATE = process("migrate", config=ONESHOT)


def kinds(actions: list[lc.Action]) -> list[str]:
    # What roled status is shown is tested in test_lifecycle_health.py.
    return [type(action).__name__ for action in actions if not isinstance(action, lc.PublishHealth)]


def logs(actions: list[lc.Action]) -> list[str]:
    return [f"{a.level} {a.message}" for a in actions if isinstance(a, lc.Log)]


def exits(actions: list[lc.Action]) -> list[tuple[int, str]]:
    return [(a.verdict.code, a.verdict.reason) for a in actions if isinstance(a, lc.Exit)]


def seen(*states: tuple[str, ProcessState]) -> lc.Synced:
    return lc.Synced(tuple(lc.Seen(n, n.partition(":")[0], s, 0) for n, s in states))


def planned(*processes: Process, rules: Rules | None = None, text: str = "config") -> lc.Planned:
    return lc.Planned(TIMINGS, rules or Rules(), assembly(*processes, text=text))


def running(*processes: Process, rules: Rules | None = None) -> Lifecycle:
    """A lifecycle whose supervisord answered once with every process RUNNING."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(*processes, rules=rules), 0.1)
    machine.handle(lc.ListenerReady(42), 0.2)
    machine.handle(seen(*((p.namespec, S.RUNNING) for p in processes)), 0.3)
    assert machine.phase == Phase.RUNNING
    return machine


def stopping(*processes: Process) -> Lifecycle:
    machine = running(*processes)
    machine.handle(lc.Signal(signal.SIGTERM), 1.0)
    assert machine.phase == Phase.STOPPING
    return machine


# -- planning -----------------------------------------------------------------------------------


def test_start_runs_the_planner_with_its_deadline() -> None:
    """A run begins by planning, and must be woken at the planner's deadline."""
    machine = Lifecycle(TIMINGS)
    assert kinds(machine.start(100.0)) == ["RunPlanner"]
    assert machine.next_wakeup() == 105.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_while_planning_kills_the_planner_and_exits_0(signum: int) -> None:
    """A stop request during start-up planning is honoured at once, with nothing started."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    actions = machine.handle(lc.Signal(signum), 0.01)
    assert kinds(actions) == ["KillPlanner", "Exit"]
    assert exits(actions) == [
        (0, f"stopped on request ({signal.Signals(signum).name}) while starting")
    ]
    assert machine.phase == Phase.DONE
    assert machine.handle(lc.Tick(), 99.0) == []


def test_planner_past_its_deadline_is_killed_and_exits_2() -> None:
    """A config read that hangs (a hung mount) ends start-up with one line, not a hang."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    assert machine.handle(lc.Tick(), 4.9) == []
    actions = machine.handle(lc.Tick(), 5.0)
    assert kinds(actions) == ["KillPlanner", "Exit"]
    code, reason = exits(actions)[0]
    assert code == 2
    assert "did not finish within 5s" in reason


@pytest.mark.parametrize(("internal", "code"), [(False, 2), (True, 5)])
def test_planner_failure_at_start_up(internal: bool, code: int) -> None:
    """A refused config exits 2; the planner's own failure is roled's, exit 5."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    actions = machine.handle(lc.PlanFailed("bad", internal=internal), 0.1)
    assert exits(actions) == [(code, "bad")]


def test_plan_launches_supervisord_then_asks_it_at_once() -> None:
    """The validated config is launched, and supervisord is asked for its table right away."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    actions = machine.handle(planned(WEB), 0.1)
    assert kinds(actions) == ["Launch"]
    assert machine.phase == Phase.STARTING
    assert machine.next_wakeup() == 0.1
    assert machine.handle(lc.Tick(), 0.1) == [lc.Ask(full=True, listener_pid=0)]


def test_sighup_while_planning_reloads_once_running() -> None:
    """A SIGHUP during start-up is not lost: it is applied after the first full table."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    assert kinds(machine.handle(lc.Signal(signal.SIGHUP), 0.01)) == ["Log"]
    machine.handle(planned(WEB), 0.1)
    actions = machine.handle(seen(("web", S.RUNNING)), 0.2)
    assert kinds(actions)[-1] == "RunPlanner"
    assert machine.phase == Phase.RELOADING


# -- starting -----------------------------------------------------------------------------------


def test_stop_before_supervisord_answers_shuts_it_down() -> None:
    """With no answer yet there is no table to stop by level: supervisord is asked to go."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.1)
    actions = machine.handle(lc.Signal(signal.SIGTERM), 0.2)
    assert kinds(actions) == ["DrainOutput", "Log", "Shutdown"]
    assert kinds(machine.handle(lc.ShutdownFailed(), 0.21)) == ["SignalSupervisord"]
    # Killed by roled's own SIGTERM before its handlers existed: a clean stop all the same.
    assert exits(machine.handle(Ended(None, signal.SIGTERM), 0.3)) == [
        (0, "stopped on request (SIGTERM)")
    ]


def test_supervisord_that_never_answers_is_killed_with_3() -> None:
    """Silence past hang_timeout from the start is a supervisord that failed to start."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.0)
    assert kinds(machine.handle(lc.Silent("refused"), 5.0)) == []
    actions = machine.handle(lc.Silent("refused"), 10.0)
    assert kinds(actions) == ["Log", "KillAll"]
    assert machine.phase == Phase.KILLING
    assert exits(machine.handle(Ended(None, signal.SIGKILL), 10.1)) == [
        (3, "supervisord did not start answering")
    ]


def test_a_short_hang_timeout_waits_for_supervisord_to_start_at_least_five_seconds() -> None:
    """Before supervisord first answers, a hang timeout of 0.5 s counts as 5 s (its start-up
    on a loaded machine); once it has answered, 0.5 s of silence is a hang."""
    short = replace(TIMINGS, hang_timeout=0.5)

    def started() -> Lifecycle:
        machine = Lifecycle(short)
        machine.start(0.0)
        machine.handle(lc.Planned(short, Rules(), assembly(WEB)), 0.0)
        return machine

    machine = started()
    assert machine.handle(lc.Silent("refused"), 4.9) == []
    assert kinds(machine.handle(lc.Silent("refused"), 5.0)) == ["Log", "KillAll"]
    machine = started()
    machine.handle(seen(("web", S.RUNNING)), 1.0)
    assert kinds(machine.handle(lc.Silent("timeout"), 1.5)) == ["Log", "KillAll"]


def test_busy_supervisord_gets_longer_before_it_counts_as_hung() -> None:
    """supervisord spawning a thousand programs answers nothing but uses CPU: not hung until
    ten hang_timeouts."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.0)
    assert machine.handle(lc.Silent("timeout", busy=True), 99.0) == []
    assert kinds(machine.handle(lc.Silent("timeout", busy=True), 100.0)) == ["Log", "KillAll"]


def test_supervisord_ending_before_answering_is_3() -> None:
    """supervisord that dies on its own before answering failed to start."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.0)
    assert exits(machine.handle(Ended(2, None), 0.5)) == [
        (3, "supervisord failed to start (exit status 2)")
    ]


# -- running ------------------------------------------------------------------------------------


def test_first_answer_moves_to_running_and_names_the_programs() -> None:
    """The first full table starts RUNNING and is logged once."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB, WORKER), 0.0)
    actions = machine.handle(seen(("web", S.STARTING), ("worker", S.STARTING)), 0.1)
    assert logs(actions) == ["INFO supervisord is up; programs: web, worker"]
    assert machine.phase == Phase.RUNNING
    assert logs(machine.handle(seen(("web", S.RUNNING), ("worker", S.RUNNING)), 0.2)) == []


def test_running_checks_cheaply_once_events_flow() -> None:
    """With a listener heard from and a full table read, a check only asks about the listener."""
    machine = running(WEB)
    assert machine.next_wakeup() == pytest.approx(5.3)
    assert machine.handle(lc.Tick(), 5.3) == [lc.Ask(full=False, listener_pid=42)]
    machine.handle(lc.Answered(), 5.31)
    assert machine.next_wakeup() == pytest.approx(10.31)


def test_first_listener_after_a_full_read_needs_no_second_read() -> None:
    """supervisord's first listener brings every event since start-up: a full table read before
    it announced itself is not read again (for 200 processes that took 0.15 s)."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.1)
    assert machine.handle(lc.Tick(), 0.1) == [lc.Ask(full=True, listener_pid=0)]
    machine.handle(seen(("web", S.STARTING)), 0.2)
    assert machine.handle(lc.ListenerReady(42), 0.3) == []
    assert machine.next_wakeup() == pytest.approx(5.2)
    assert machine.handle(lc.Tick(), 5.2) == [lc.Ask(full=False, listener_pid=42)]


def test_restarted_listener_makes_roled_read_the_whole_table() -> None:
    """A listener supervisord restarted may have lost events around its restart: read at once."""
    machine = running(WEB)
    assert machine.handle(lc.ListenerReady(43), 1.0) == []
    assert machine.next_wakeup() == 1.0
    assert machine.handle(lc.Tick(), 1.0) == [lc.Ask(full=True, listener_pid=43)]


def test_listener_before_the_first_read_reads_once() -> None:
    """A listener heard from before supervisord answered: the first read is the only one."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(WEB), 0.1)
    machine.handle(lc.ListenerReady(42), 0.1)
    assert machine.handle(lc.Tick(), 0.1) == [lc.Ask(full=True, listener_pid=42)]
    machine.handle(seen(("web", S.STARTING)), 0.2)
    assert machine.handle(lc.Tick(), 5.2) == [lc.Ask(full=False, listener_pid=42)]


def test_fatal_while_running_blames_and_stops_by_level() -> None:
    """A FATAL program ends the container: report, then stop the highest priority first."""
    machine = running(WEB, WORKER)
    actions = machine.handle(lc.Changed("web", "web", S.RUNNING, S.FATAL), 1.0)
    assert kinds(actions) == ["Blame", "DrainOutput", "Log", "StopProcesses"]
    assert lc.StopProcesses(("worker",)) in actions
    assert machine.verdict is not None
    assert machine.verdict.code == 1


def test_same_state_through_both_channels_is_judged_once() -> None:
    """An event and a sync both reporting one FATAL give one warning, not two."""
    machine = running(WEB, rules=Rules(noncritical=("web",)))
    first = machine.handle(lc.Changed("web", "web", S.RUNNING, S.FATAL), 1.0)
    again = machine.handle(seen(("web", S.FATAL)), 1.1)
    assert kinds(first) == ["Warn"]
    assert kinds(again) == []


def test_event_that_lags_behind_a_sync_is_not_judged_again() -> None:
    """A sync saw FATAL before the listener's older events arrive: one warning, and the stale
    events neither go back in time nor make roled read the whole table again (which, while
    events lag, only overtook them again)."""
    machine = running(WEB, rules=Rules(noncritical=("web",)))
    assert kinds(machine.handle(seen(("web", S.FATAL)), 1.0)) == ["Warn"]
    assert machine.handle(lc.Changed("web", "web", S.STARTING, S.BACKOFF), 1.1) == []
    assert machine.handle(lc.Changed("web", "web", S.BACKOFF, S.FATAL), 1.2) == []
    assert machine.handle(lc.Tick(), 1.2) == []
    assert machine.table.state("web") == S.FATAL


def test_an_event_that_does_not_follow_once_events_caught_up_makes_roled_read_again() -> None:
    """Events were missed: once they had caught up with the sync, one that does not follow
    from the table's state makes roled read the whole table."""
    machine = running(WEB)
    assert machine.handle(lc.Changed("web", "web", S.STARTING, S.RUNNING), 1.0) == []
    assert machine.handle(lc.Changed("web", "web", S.BACKOFF, S.FATAL), 1.1) == []
    assert machine.handle(lc.Tick(), 1.1) == [lc.Ask(full=True, listener_pid=42)]
    assert machine.table.state("web") == S.RUNNING


def test_silence_within_hang_timeout_only_retries() -> None:
    """One unanswered call is not a hang: roled asks again after a call's timeout."""
    machine = running(WEB)
    assert machine.handle(lc.Silent("timeout"), 5.0) == []


def test_held_output_is_not_a_hang() -> None:
    """While roled holds output back, supervisord may block writing it: no check, no verdict."""
    machine = running(WEB)
    machine.handle(lc.OutputHeld(True), 1.0)
    assert machine.handle(lc.Tick(), 5.3) == []
    assert machine.handle(lc.Silent("timeout"), 12.0) == []


def test_usr2_is_forwarded_and_usr1_refused() -> None:
    """SIGUSR2 reopens supervisord's logs; SIGUSR1 would kill supervisord, so it is dropped."""
    machine = running(WEB)
    assert kinds(machine.handle(lc.Signal(signal.SIGUSR2), 1.0)) == ["Log", "SignalSupervisord"]
    assert kinds(machine.handle(lc.Signal(signal.SIGUSR1), 1.0)) == ["Log"]
    assert kinds(machine.handle(lc.Signal(signal.SIGWINCH), 1.0)) == []


def test_supervisord_exiting_on_its_own_is_3_or_the_fatal_program() -> None:
    """An unrequested end names a FATAL program when there is one."""
    machine = running(WEB)
    assert exits(machine.handle(Ended(0, None), 1.0)) == [
        (3, "supervisord exited on its own (exit status 0)")
    ]
    machine = running(WEB, rules=Rules(noncritical=("web",)))
    machine.handle(lc.Changed("web", "web", S.RUNNING, S.FATAL), 1.0)
    assert exits(machine.handle(Ended(0, None), 1.1)) == [(1, "program 'web' is FATAL")]


# -- exit when done -----------------------------------------------------------------------------


def test_exit_when_done_waits_for_the_whole_table() -> None:
    """A one-shot that ends before the first full read does not end a run whose other program
    was not reported yet (the race of issue 11, item 7)."""
    rules = Rules(exit_when_done=True)
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(MIGRATE, WEB, rules=rules), 0.0)
    assert (
        exits(machine.handle(lc.Changed("migrate", "migrate", S.STARTING, S.EXITED, True, 0), 0.1))
        == []
    )
    actions = machine.handle(seen(("migrate", S.EXITED), ("web", S.RUNNING)), 0.2)
    assert machine.phase == Phase.RUNNING
    assert "Shutdown" not in kinds(actions)
    assert machine.verdict is None


def test_exit_when_done_with_no_program_stops_at_once() -> None:
    """Zero programs are all done: the run does not wait forever."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(rules=Rules(exit_when_done=True)), 0.0)
    actions = machine.handle(seen(), 0.1)
    assert "INFO every program is done" in logs(actions)
    assert machine.phase == Phase.STOPPING


def test_exit_when_done_does_not_count_a_reload_stop() -> None:
    """A reload that stops a changed program is not that program being done."""
    machine = running(WEB, rules=Rules(exit_when_done=True))
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    machine.handle(planned(WEB, text="changed"), 1.1)
    machine.handle(lc.Reconfigured((), ("web",), ()), 1.2)
    actions = machine.handle(seen(("web", S.STOPPED)), 1.3)
    assert kinds(actions).count("SwapGroups") == 1
    assert machine.verdict is None
    assert machine.phase == Phase.RUNNING
    assert exits(machine.handle(seen(("web", S.RUNNING)), 1.4)) == []
    assert machine.verdict is None


# -- reloading ----------------------------------------------------------------------------------


def test_reload_plans_without_blocking_and_applies_the_difference() -> None:
    """SIGHUP plans in the background; the changed group is stopped, swapped, and running."""
    machine = running(WEB, WORKER)
    assert kinds(machine.handle(lc.Signal(signal.SIGHUP), 1.0)) == ["RunPlanner"]
    assert machine.phase == Phase.RELOADING
    new = assembly(WEB, WORKER, text="changed")
    assert machine.handle(lc.Planned(TIMINGS, Rules(), new), 1.1) == [lc.Reconfigure(new)]
    actions = machine.handle(lc.Reconfigured(("extra",), ("web",), ()), 1.2)
    assert actions[-1] == lc.StopGroups(("web",))
    assert kinds(machine.handle(seen(("web", S.STOPPING), ("worker", S.RUNNING)), 1.3)) == []
    actions = machine.handle(seen(("web", S.STOPPED), ("worker", S.RUNNING)), 1.4)
    assert lc.SwapGroups(("web",), ("web", "extra")) in actions
    assert logs(actions)[-1].startswith("INFO reloaded: added extra, changed web")
    assert machine.phase == Phase.RUNNING


def test_unchanged_config_reload_is_a_no_op() -> None:
    """A SIGHUP with nothing changed says so and touches nothing."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    actions = machine.handle(planned(WEB), 1.1)
    assert logs(actions) == ["INFO SIGHUP: the config has not changed"]
    assert machine.phase == Phase.RUNNING


def test_second_sighup_during_a_reload_is_applied_after_it() -> None:
    """A SIGHUP during a reload is remembered and reloads again once the first is done."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    assert kinds(machine.handle(lc.Signal(signal.SIGHUP), 1.01)) == ["Log"]
    assert kinds(machine.handle(lc.Signal(signal.SIGHUP), 1.02)) == []
    actions = machine.handle(lc.PlanFailed("roles/web.conf: bad"), 1.1)
    assert kinds(actions) == ["Log", "RunPlanner"]
    assert logs(actions)[0].startswith("ERROR reload refused, still running the previous config")
    assert machine.phase == Phase.RELOADING
    machine.handle(planned(WEB), 1.2)
    assert machine.phase == Phase.RUNNING


def test_reload_past_its_deadline_is_refused_and_running_goes_on() -> None:
    """A planner that hangs during a reload is killed; the running config stays."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    actions = machine.handle(lc.Tick(), 6.0)
    assert kinds(actions) == ["KillPlanner", "Log"]
    assert "did not finish within 5s" in logs(actions)[0]
    assert machine.phase == Phase.RUNNING
    assert machine.verdict is None


def test_fatal_while_reloading_stops_and_kills_the_planner() -> None:
    """A program that fails during a reload's planning still ends the container."""
    machine = running(WEB, WORKER)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    actions = machine.handle(lc.Changed("worker", "worker", S.RUNNING, S.FATAL), 1.1)
    assert kinds(actions)[:2] == ["Blame", "KillPlanner"]
    assert machine.phase == Phase.STOPPING
    # The planner's late answer changes nothing.
    assert kinds(machine.handle(planned(WEB, text="late"), 1.2)) == []


def test_stop_during_reload_cancels_it() -> None:
    """SIGTERM while a reload plans: the planner is killed and everything stops."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    actions = machine.handle(lc.Signal(signal.SIGTERM), 1.1)
    assert kinds(actions) == ["KillPlanner", "DrainOutput", "Log", "StopProcesses"]


def test_reconfigure_failure_keeps_running() -> None:
    """supervisord refusing the new config is logged; the old one runs on."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    machine.handle(planned(WEB, text="changed"), 1.1)
    actions = machine.handle(lc.ReconfigureFailed("disk full"), 1.2)
    assert logs(actions) == ["ERROR reload failed, still running the previous config: disk full"]
    assert machine.phase == Phase.RUNNING


# -- stopping -----------------------------------------------------------------------------------


def test_stop_goes_level_by_level_then_shuts_supervisord_down() -> None:
    """Highest priority number first; supervisord is asked to go once all are down."""
    machine = stopping(WEB, WORKER)
    assert machine.handle(seen(("web", S.STOPPING), ("worker", S.RUNNING)), 1.1) == []
    actions = machine.handle(seen(("web", S.STOPPED), ("worker", S.RUNNING)), 1.2)
    assert actions == [lc.StopProcesses(("worker",))]
    actions = machine.handle(seen(("web", S.STOPPED), ("worker", S.STOPPED)), 1.3)
    assert actions == [lc.Shutdown()]
    assert exits(machine.handle(Ended(0, None), 1.4)) == [(0, "stopped on request (SIGTERM)")]


def test_stop_asks_a_process_reported_up_after_its_level_was_asked() -> None:
    """A program a reload added just before the stop (UNKNOWN when the level was asked) is
    asked too once a sync shows it running, not waited for forever."""
    machine = running(WEB)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    extra = process("extra")
    machine.handle(planned(WEB, extra, text="more"), 1.1)
    machine.handle(lc.Reconfigured(("extra",), (), ()), 1.2)
    assert machine.table.state("extra") == S.UNKNOWN
    actions = machine.handle(lc.Signal(signal.SIGTERM), 1.3)
    assert actions[-1] == lc.StopProcesses(("web",))
    actions = machine.handle(seen(("web", S.STOPPING), ("extra", S.RUNNING)), 1.4)
    assert actions == [lc.StopProcesses(("extra",))]
    assert machine.handle(seen(("web", S.STOPPED), ("extra", S.STOPPING)), 1.5) == []
    assert machine.handle(seen(("web", S.STOPPED), ("extra", S.STOPPED)), 1.6) == [lc.Shutdown()]


def test_stop_request_that_fails_goes_straight_to_shutdown() -> None:
    """A level's stop that cannot be sent leaves the rest to supervisord's own shutdown."""
    machine = stopping(WEB)
    assert machine.handle(lc.StopFailed(), 1.1) == [lc.Shutdown()]


def test_repeated_sigterm_changes_nothing() -> None:
    """A second SIGTERM while stopping neither restarts nor hurries the stop."""
    machine = stopping(WEB)
    assert machine.handle(lc.Signal(signal.SIGTERM), 2.0) == []


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (signal.SIGINT, "a second SIGINT while stopping"),
        (signal.SIGTERM, "SIGINT after SIGTERM while stopping"),
    ],
)
def test_sigint_while_stopping_kills_at_once(first: int, reason: str) -> None:
    """Ctrl-C during a slow stop kills; the reason says which signals led there."""
    machine = running(WEB)
    machine.handle(lc.Signal(first), 1.0)
    # The same SIGINT delivered twice (to the process and its group) is not a second one.
    assert machine.handle(lc.Signal(signal.SIGINT), 1.2) == []
    actions = machine.handle(lc.Signal(signal.SIGINT), 1.6)
    assert kinds(actions) == ["Log", "DrainOutput", "KillAll"]
    assert machine.verdict is not None
    assert machine.verdict.code == 4
    assert machine.verdict.reason.startswith(reason)


def test_shutdown_deadline_kills_what_is_left() -> None:
    """Past the shutdown deadline, the programs still up are killed and named: exit 4."""
    machine = stopping(WEB, WORKER)
    assert kinds(machine.handle(lc.Tick(), 30.9)) == ["Ask"]
    actions = machine.handle(lc.Tick(), 31.0)
    assert kinds(actions) == ["Log", "DrainOutput", "KillAll"]
    assert machine.verdict is not None
    assert machine.verdict.reason == ("the shutdown deadline of 30s passed; killed 'web', 'worker'")
    assert exits(machine.handle(Ended(None, signal.SIGKILL), 31.1))[0][0] == 4


def test_hung_supervisord_while_stopping_is_3_not_4() -> None:
    """A supervisord that stops answering during a stop is noticed as hung (issue 11, item 14)."""
    machine = stopping(WEB)
    assert machine.handle(lc.Silent("timeout"), 5.0) == []
    actions = machine.handle(lc.Silent("timeout"), 10.3)
    assert kinds(actions) == ["Log", "KillAll"]
    assert exits(machine.handle(Ended(None, signal.SIGKILL), 10.4)) == [
        (3, "supervisord stopped answering")
    ]


def test_sighup_while_stopping_is_ignored() -> None:
    """A reload makes no sense once stopping: it is refused with a warning."""
    machine = stopping(WEB)
    assert logs(machine.handle(lc.Signal(signal.SIGHUP), 1.1)) == [
        "WARNING SIGHUP ignored: roled is stopping"
    ]


def test_transitions_while_stopping_are_not_judged() -> None:
    """Programs stopped by roled are not failures."""
    machine = stopping(WEB)
    assert kinds(machine.handle(lc.Changed("web", "web", S.RUNNING, S.FATAL), 1.1)) != ["Blame"]
    assert machine.verdict is not None
    assert machine.verdict.code == 0


def test_supervisord_shutting_down_is_only_woken() -> None:
    """Once supervisord shuts down by itself, roled only keeps its loop turning."""
    machine = stopping(WEB)
    machine.handle(lc.SupervisordStopping(), 1.1)
    machine.handle(lc.StopFailed(), 1.1)
    assert machine.handle(lc.Tick(), 1.2) == [lc.Wake()]


def test_ended_badly_while_stopping_is_3() -> None:
    """A clean stop whose supervisord then exits non-zero is not clean."""
    machine = stopping(WEB)
    assert exits(machine.handle(Ended(1, None), 1.5)) == [
        (3, "supervisord ended badly while stopping (exit status 1)")
    ]


def test_done_ignores_everything() -> None:
    """After the exit decision, events are ignored and nothing wakes the loop."""
    machine = stopping(WEB)
    machine.handle(Ended(0, None), 1.5)
    assert machine.phase == Phase.DONE
    assert machine.next_wakeup() is None
    assert machine.handle(lc.Signal(signal.SIGTERM), 2.0) == []


# -- watched files ------------------------------------------------------------------------------


def test_a_watched_file_with_a_signal_signals_only_the_running_watchers() -> None:
    """roled_on_change=HUP: the processes that are up get SIGHUP through supervisord."""
    machine = running(WEB, WORKER)
    actions = machine.handle(lc.WatchedChanged(("web",), ("/etc/app/a",), "HUP"), 1.0)
    assert [a for a in actions if not isinstance(a, lc.Log)] == [
        lc.SignalProcesses(("web",), "HUP")
    ]
    assert logs(actions) == ["INFO /etc/app/a changed: sending SIGHUP to 'web'"]


def test_a_restart_stops_then_starts_without_a_verdict() -> None:
    """restart: stop, and once down start again; the stop is not judged a failure."""
    machine = running(WEB, rules=Rules(exit_when_done=True))
    actions = machine.handle(lc.WatchedChanged(("web",), ("/etc/app/a",), None), 1.0)
    assert kinds(actions) == ["Log", "StopProcesses"]
    stopped = lc.Changed("web", "web", S.STOPPING, S.STOPPED)
    machine.handle(lc.Changed("web", "web", S.RUNNING, S.STOPPING), 1.1)
    assert kinds(machine.handle(stopped, 1.2)) == ["StartProcesses"]
    assert machine.phase == Phase.RUNNING
    assert machine.restarting == set()


def test_a_config_file_change_reloads_or_waits_for_the_reload_under_way() -> None:
    """An env file change is a reload when running; during a reload it is one more after it."""
    machine = running(WEB)
    actions = machine.handle(lc.ConfigFilesChanged(("/etc/app/app.env",)), 1.0)
    assert kinds(actions) == ["Log", "RunPlanner"]
    assert logs(actions) == ["INFO /etc/app/app.env changed: reloading the config"]
    assert machine.phase == Phase.RELOADING
    again = machine.handle(lc.ConfigFilesChanged(("/etc/app/app.env",)), 1.5)
    assert logs(again) == [
        "INFO /etc/app/app.env changed while reloading: reloading once that is done"
    ]
    assert machine.reload_pending


def test_watched_changes_while_stopping_do_nothing() -> None:
    """A stop is never interrupted by a file change."""
    machine = stopping(WEB)
    assert machine.handle(lc.ConfigFilesChanged(("/a",)), 2.0) == []
    assert machine.handle(lc.WatchedChanged(("web",), ("/a",), "HUP"), 2.0) == []
