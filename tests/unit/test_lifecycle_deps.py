"""The start gate in the lifecycle (issue 14): held starts, failures naming the chain, stop
order, reloads and the nudges, event by event with a fake clock."""

from __future__ import annotations

import signal
from pathlib import Path

from roled import deps
from roled import lifecycle as lc
from roled.gate import Waiting
from roled.lifecycle import Lifecycle, Phase
from roled.model import Assembly, Process, ProcessState, ProgramConfig, RoledKeys, Section
from roled.policy import Rules
from tests.unit.test_lifecycle import TIMINGS, assembly, kinds, logs, planned, seen

S = ProcessState
ONESHOT = ProgramConfig(autostart=True, autorestart="false")
GATED = ProgramConfig(autostart=False)


def gated(namespec: str, depends_on: str, priority: int = 999, **more: object) -> Process:
    """A process with dependencies, as the planner hands it over: autostart=false for
    supervisord, the user's own autostart kept beside its keys."""
    values = {
        deps.KEY: deps.parse_depends_on(depends_on, "test"),
        deps.AUTOSTART: True,
        **more,
    }
    group = namespec.partition(":")[0]
    return Process(namespec, group, priority, 10, GATED, program=group, roled=values)


def plain(namespec: str, priority: int = 999, config: ProgramConfig | None = None) -> Process:
    group = namespec.partition(":")[0]
    return Process(namespec, group, priority, 10, config or ProgramConfig(), program=group)


MIGRATE = plain("migrate", config=ONESHOT)
WEB = gated("web", "migrate")


def started(*processes: Process, rules: Rules | None = None) -> tuple[Lifecycle, list[lc.Action]]:
    """A lifecycle that launched supervisord with these processes: what planning returned."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    actions = machine.handle(planned(*processes, rules=rules), 0.1)
    machine.handle(lc.ListenerReady(42), 0.2)
    return machine, actions


def changed(namespec: str, before: S, after: S, exitstatus: int | None = None) -> lc.Changed:
    expected = None if exitstatus is None else exitstatus == 0
    return lc.Changed(namespec, namespec, before, after, expected, exitstatus)


def starts(actions: list[lc.Action]) -> list[tuple[str, ...]]:
    return [a.namespecs for a in actions if isinstance(a, lc.StartProcesses)]


def blamed(actions: list[lc.Action]) -> list[tuple[int, str, tuple[str, ...]]]:
    return [
        (a.verdict.code, a.verdict.reason, a.verdict.programs)
        for a in actions
        if isinstance(a, lc.Blame)
    ]


def test_a_dependent_is_held_then_started_the_moment_its_dependency_succeeds() -> None:
    """web waits while migrate runs, shown as WAITING; migrate's exit 0 starts it at once."""
    machine, actions = started(MIGRATE, WEB)
    assert kinds(actions) == ["PublishWaiting", "Launch"]
    assert actions[0] == lc.PublishWaiting((Waiting("web", ("migrate (succeeded)",)),))
    actions = machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    assert starts(actions) == []
    actions = machine.handle(changed("migrate", S.RUNNING, S.EXITED, 0), 1.0)
    assert [a for a in actions if not isinstance(a, lc.Log)] == [
        lc.StartProcesses(("web",)),
        lc.PublishWaiting(()),
    ]


def test_a_dependency_that_fails_ends_the_run_naming_the_chain() -> None:
    """migrate exits 3: web never starts, exit 1 with 'web waits for migrate, which exited 3'."""
    machine, _ = started(MIGRATE, WEB)
    machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    actions = machine.handle(changed("migrate", S.RUNNING, S.EXITED, 3), 1.0)
    assert blamed(actions) == [(1, "web waits for migrate, which exited 3", ("migrate",))]
    assert starts(actions) == []
    assert machine.phase == Phase.STOPPING


def test_a_chain_names_every_link() -> None:
    """api waits for db, web for api: db FATAL names the whole chain, web first."""
    db = plain("db")
    api = gated("api", "db:started")
    web = gated("web", "api:started")
    machine, _ = started(db, api, web)
    machine.handle(seen(("db", S.STARTING), ("api", S.STOPPED), ("web", S.STOPPED)), 0.3)
    actions = machine.handle(changed("db", S.STARTING, S.FATAL), 1.0)
    assert blamed(actions) == [
        (
            1,
            "api waits for db, which is FATAL; "
            "web waits for api, which waits for db, which is FATAL",
            ("db",),
        )
    ]


def test_a_noncritical_dependency_that_fails_skips_its_dependents_with_one_warning() -> None:
    """The dependents stay WAITING, the run goes on."""
    machine, _ = started(MIGRATE, WEB, rules=Rules(noncritical=("migrate",)))
    machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    actions = machine.handle(changed("migrate", S.RUNNING, S.EXITED, 3), 1.0)
    assert logs(actions) == [
        "WARNING not starting what depends on a non-critical failure (left WAITING): "
        "web waits for migrate, which exited 3"
    ]
    assert machine.phase == Phase.RUNNING
    assert (
        lc.PublishWaiting(
            (Waiting("web", ("migrate (succeeded)",), "web waits for migrate, which exited 3"),)
        )
        in actions
    )


def test_a_stop_while_programs_wait_never_starts_them() -> None:
    """SIGTERM while web waits: web is never started, even when migrate then succeeds."""
    machine, _ = started(MIGRATE, WEB)
    machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    actions = machine.handle(lc.Signal(signal.SIGTERM), 0.5)
    assert lc.PublishWaiting(()) in actions
    assert actions[-1] == lc.StopProcesses(("migrate",))
    later = machine.handle(changed("migrate", S.RUNNING, S.EXITED, 0), 0.6)
    assert starts(later) == []
    assert later == [lc.Shutdown()]


def test_dependents_stop_before_their_dependencies_whatever_the_priorities() -> None:
    """web (priority 1) depends on db (999): supervisord alone would stop db first."""
    db = plain("db")
    web = gated("web", "db:started", priority=1)
    cache = plain("cache", priority=500)
    machine, _ = started(db, web, cache)
    machine.handle(seen(("db", S.RUNNING), ("web", S.STOPPED), ("cache", S.RUNNING)), 0.3)
    machine.handle(changed("web", S.STOPPED, S.RUNNING), 0.4)
    actions = machine.handle(lc.Signal(signal.SIGTERM), 1.0)
    assert actions[-1] == lc.StopProcesses(("web",))
    actions = machine.handle(changed("web", S.RUNNING, S.STOPPED), 1.1)
    assert actions == [lc.StopProcesses(("db",))]
    actions = machine.handle(changed("db", S.RUNNING, S.STOPPED), 1.2)
    assert actions == [lc.StopProcesses(("cache",))]


def test_exit_when_done_waits_for_what_the_gate_started() -> None:
    """migrate done and web just started is not 'every program is done'."""
    web = gated("web", "migrate")
    machine, _ = started(
        MIGRATE, plain("other", config=ONESHOT), web, rules=Rules(exit_when_done=True)
    )
    machine.handle(seen(("migrate", S.RUNNING), ("other", S.EXITED), ("web", S.STOPPED)), 0.3)
    actions = machine.handle(changed("migrate", S.RUNNING, S.EXITED, 0), 1.0)
    assert starts(actions) == [("web",)]
    assert machine.phase == Phase.RUNNING
    machine.handle(changed("web", S.STOPPED, S.STARTING), 1.1)
    assert machine.phase == Phase.RUNNING


def test_readiness_reaches_the_gate_in_one_place() -> None:
    """A dependency running but not ready holds its dependent until it is ready."""
    redis = plain("redis")
    web = gated("web", "redis:ready, migrate")
    machine, _ = started(redis, MIGRATE, web)
    machine.handle(seen(("redis", S.RUNNING), ("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    actions: list[lc.Action] = []
    machine._readiness_changed("redis", False, 0.4, actions)
    assert starts(machine.handle(changed("migrate", S.RUNNING, S.EXITED, 0), 0.5)) == []
    machine._readiness_changed("redis", True, 2.0, actions)
    assert starts(actions) == [("web",)]


def test_supervisord_is_nudged_while_a_program_waits() -> None:
    """Every GATE_NUDGE seconds while waiting, less often after GATE_BUSY_FOR, never after."""
    machine, _ = started(MIGRATE, WEB)
    machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    assert kinds(machine.handle(lc.Tick(), 0.3)) == []
    assert machine.gate_nudge_at == 0.3 + lc.GATE_NUDGE
    assert "Nudge" in kinds(machine.handle(lc.Tick(), 0.3 + lc.GATE_NUDGE))
    machine.handle(lc.Tick(), 0.3 + lc.GATE_BUSY_FOR + 0.05)
    assert machine.gate_nudge_at == 0.3 + lc.GATE_BUSY_FOR + 0.05 + lc.GATE_NUDGE_IDLE
    machine.handle(changed("migrate", S.RUNNING, S.EXITED, 0), 6.0)
    machine.handle(lc.Tick(), 6.01)
    assert machine.gate_nudge_at is None


def sections_for(
    autostart: str, depends_on: str | None
) -> tuple[tuple[Section, ...], dict[str, RoledKeys]]:
    options = {"command": "/bin/web", "autostart": "false" if depends_on else autostart}
    keys: dict[str, RoledKeys] = {}
    if depends_on is not None:
        values = {
            deps.KEY: deps.parse_depends_on(depends_on, "t"),
            deps.AUTOSTART: autostart == "true",
        }
        keys["program:web"] = RoledKeys({deps.KEY: depends_on}, values)
    return (Section("program:web", options, Path("web.conf")),), keys


def with_sections(base: Assembly, depends_on: str | None, text: str) -> Assembly:
    sections, keys = sections_for("true", depends_on)
    return Assembly(
        text, sections, base.control, base.programs, (), base.processes, roled_keys=keys
    )


def test_a_running_program_that_gains_a_dependency_keeps_running() -> None:
    """supervisord calls web changed (autostart true -> false): roled keeps its group."""
    db = plain("db")
    web = plain("web")
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(lc.Planned(TIMINGS, Rules(), with_sections(assembly(db, web), None, "a")), 0.1)
    machine.handle(lc.ListenerReady(42), 0.2)
    machine.handle(seen(("db", S.RUNNING), ("web", S.RUNNING)), 0.3)
    machine.handle(lc.Signal(signal.SIGHUP), 1.0)
    new = with_sections(assembly(db, gated("web", "db:started")), "db:started", "b")
    machine.handle(lc.Planned(TIMINGS, Rules(), new), 1.1)
    actions = machine.handle(lc.Reconfigured((), ("web",), ()), 1.2)
    assert "StopGroups" not in kinds(actions)
    assert lc.SwapGroups((), ()) in actions
    assert starts(actions) == []
    assert machine.handle(seen(("db", S.RUNNING), ("web", S.RUNNING)), 1.3) == []
    assert machine.phase == Phase.RUNNING


def test_a_start_answered_running_releases_the_next_level_without_waiting_for_events() -> None:
    """supervisord answers a start with api already RUNNING (startsecs=0): web starts at once,
    api's events arriving later change nothing and make roled read nothing again."""
    db = plain("db")
    api = gated("api", "db:started")
    web = gated("web", "api:started")
    machine, _ = started(db, api, web)
    actions = machine.handle(seen(("db", S.RUNNING), ("api", S.STOPPED), ("web", S.STOPPED)), 0.3)
    assert starts(actions) == [("api",)]
    actions = machine.handle(lc.Started((lc.Seen("api", "api", S.RUNNING),)), 0.31)
    assert starts(actions) == [("web",)]
    assert machine.handle(changed("api", S.STOPPED, S.STARTING), 0.32) == []
    assert machine.handle(changed("api", S.STARTING, S.RUNNING), 0.33) == []
    assert machine.handle(lc.Tick(), 0.34) == []
    assert machine.table.state("api") == S.RUNNING


def test_start_up_is_not_reached_while_a_dependent_waits() -> None:
    """web waits for migrate: ready (and so startup) is reached only once web runs."""
    machine, _ = started(plain("migrate"), WEB)
    machine.handle(seen(("migrate", S.RUNNING), ("web", S.STOPPED)), 0.3)
    assert machine.ready_once is False
    machine.handle(changed("web", S.STOPPED, S.STARTING), 0.4)
    machine.handle(changed("web", S.STARTING, S.RUNNING), 1.4)
    assert machine.ready_once is True
