"""Health checks in the lifecycle (issue 13): probes, readiness, restarts and exits, with a fake
clock and exact action tables."""

from __future__ import annotations

from dataclasses import replace

from roled import checks, keys, levels
from roled import lifecycle as lc
from roled.lifecycle import Lifecycle, Phase
from roled.model import Process, ProcessState
from roled.policy import Budget, Rules
from tests.unit.test_lifecycle import TIMINGS, assembly, kinds, planned, process, seen

S = ProcessState
ORIGIN = "/etc/roles/web.conf: [program:web]"


def with_keys(base: Process, **raw: str) -> Process:
    values = keys.parse_keys({f"roled_{k}": v for k, v in raw.items()}, ORIGIN)
    return replace(base, roled=values)


WEB = with_keys(
    process("web"), ready="http://127.0.0.1:8000/", alive="tcp://127.0.0.1:8000",
    check_period="5", check_threshold="2",
)  # fmt: skip
WORKER = process("worker")


def running(*processes: Process, rules: Rules | None = None) -> tuple[Lifecycle, list[lc.Action]]:
    """Every process RUNNING at 0.3; the actions of that sync."""
    machine = Lifecycle(TIMINGS)
    machine.start(0.0)
    machine.handle(planned(*processes, rules=rules), 0.1)
    machine.handle(lc.ListenerReady(42), 0.2)
    actions = machine.handle(seen(*((p.namespec, S.RUNNING) for p in processes)), 0.3)
    assert machine.phase == Phase.RUNNING
    return machine, actions


def probes(actions: list[lc.Action]) -> list[tuple[int, str, str]]:
    return [(a.probe, a.program, a.level) for a in actions if isinstance(a, checks.RunProbe)]


def published(actions: list[lc.Action]) -> levels.Published | None:
    found = [a.published for a in actions if isinstance(a, lc.PublishHealth)]
    assert len(found) <= 1, "published once per event at most"
    return found[0] if found else None


PASS, FAIL = checks.Result(True, "HTTP 200 OK"), checks.Result(False, "connection refused")


def test_running_program_gets_both_checks_at_once() -> None:
    """RUNNING starts each check after its delay (0): both probes at the next tick."""
    machine, actions = running(WEB, WORKER)
    assert probes(actions) == []
    assert machine.next_wakeup() == 0.3
    actions = machine.handle(lc.Tick(), 0.3)
    assert probes(actions) == [(1, "web", "ready"), (2, "web", "alive")]


def test_ready_check_passing_publishes_readiness_and_reaches_startup() -> None:
    """Not ready (and startup not reached) until the ready check passes; then both are."""
    machine, _ = running(WEB, WORKER)
    first = machine.published
    assert first is not None
    assert (first.ready, first.ready_once) == ({"web": False}, False)
    machine.handle(lc.Tick(), 0.3)
    actions = machine.handle(lc.ProbeDone(1, PASS), 0.35)
    assert kinds(actions) == ["Log"]
    assert actions[0] == lc.Log("INFO", "program 'web' is ready (HTTP 200 OK)")
    now = published(actions)
    assert now is not None
    assert (now.ready, now.ready_once) == ({"web": True}, True)
    assert [(v.level, v.state.value, v.last_result) for v in now.checks["web"]] == [
        ("ready", "passing", "HTTP 200 OK"),
        ("alive", "waiting", ""),
    ]


def test_a_result_that_changes_nothing_publishes_nothing() -> None:
    """The same passing result again: no write for roled status."""
    machine, _ = running(WEB, WORKER)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(1, PASS), 0.35)
    machine.handle(lc.ProbeDone(2, PASS), 0.35)
    assert probes(machine.handle(lc.Tick(), 5.5)) == [(3, "web", "ready"), (4, "web", "alive")]
    assert machine.handle(lc.ProbeDone(3, PASS), 5.6) == []


def test_alive_failure_restarts_only_that_program() -> None:
    """threshold failures in a row: stop web (only), start it once down, not judged meanwhile."""
    machine, _ = running(WEB, WORKER)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(2, FAIL), 0.4)
    assert probes(machine.handle(lc.Tick(), 5.5)) == [(3, "web", "alive")]
    actions = machine.handle(lc.ProbeDone(3, FAIL), 5.6)
    assert kinds(actions) == ["Log", "StopProcesses"]
    assert actions[0] == lc.Log(
        "WARNING",
        "program 'web': alive check tcp://127.0.0.1:8000 failing "
        "(2 failures in a row; last: connection refused); restarting it",
    )
    assert actions[1] == lc.StopProcesses(("web",))
    machine.handle(lc.Changed("web", "web", S.RUNNING, S.STOPPING), 5.7)
    actions = machine.handle(lc.Changed("web", "web", S.STOPPING, S.STOPPED), 5.8)
    assert kinds(actions) == ["StartProcesses"]
    assert actions[0] == lc.StartProcesses(("web",))


def test_health_restarts_count_against_max_restarts() -> None:
    """ROLED_MAX_RESTARTS counts roled's own restarts: over budget, the container ends."""
    rules = Rules(max_restarts=Budget(0, 60))
    machine, _ = running(WEB, WORKER, rules=rules)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(2, FAIL), 0.4)
    assert probes(machine.handle(lc.Tick(), 5.5)) == [(3, "web", "alive")]
    actions = machine.handle(lc.ProbeDone(3, FAIL), 5.6)
    assert kinds(actions)[:3] == ["Log", "Blame", "DrainOutput"]
    assert machine.verdict is not None
    assert machine.verdict.reason == (
        "program 'web' restarted 1 times within 60s (ROLED_MAX_RESTARTS is 0/60)"
    )
    now = published(actions)
    assert now is not None
    assert now.failure == machine.verdict.reason


def test_on_unhealthy_exit_ends_the_run_naming_the_check_and_output() -> None:
    """roled_on_unhealthy=exit: exit 1 with the check, its last result and its output."""
    web = with_keys(process("web"), alive="exec:check-db", on_unhealthy="exit", check_threshold="1")
    machine, _ = running(web)
    machine.handle(lc.Tick(), 0.3)
    actions = machine.handle(lc.ProbeDone(1, checks.Result(False, "exit status 2", "db down")), 1)
    assert kinds(actions)[:3] == ["Log", "Blame", "DrainOutput"]
    assert machine.verdict == lc.Verdict(
        1,
        "program 'web' failed its alive check exec:check-db (1 failure; last: exit status 2); "
        "its last output: db down",
        ("web",),
    )


def test_noncritical_program_never_exits() -> None:
    """A non-critical program's failing alive check with exit is logged, never an exit."""
    web = with_keys(process("web"), alive="exec:check-db", on_unhealthy="exit", check_threshold="1")
    machine, _ = running(web, rules=Rules(noncritical=("web",)))
    machine.handle(lc.Tick(), 0.3)
    actions = machine.handle(lc.ProbeDone(1, checks.Result(False, "exit status 2")), 1.0)
    assert kinds(actions) == ["Log"]
    assert machine.verdict is None


def test_notify_and_log_checks_come_from_events() -> None:
    """READY=1 and a matching output line make a program ready; other processes are ignored."""
    svc = with_keys(process("svc"), ready="notify")
    app = with_keys(process("app"), ready="log:Listening on \\d+")
    machine, _ = running(svc, app)
    assert machine.handle(lc.Notified("other", ready=True, watchdog=False), 1.0) == []
    actions = machine.handle(lc.Notified("svc", ready=True, watchdog=False), 1.0)
    assert actions[0] == lc.Log("INFO", "program 'svc' is ready (READY=1 received)")
    actions = machine.handle(lc.Output("app", b"booting\nListening on 80\n"), 1.1)
    assert actions[0] == lc.Log("INFO", "program 'app' is ready (line matched: Listening on 80)")
    now = published(actions)
    assert now is not None
    assert now.ready == {"svc": True, "app": True}


def test_stopping_the_program_cancels_its_probe_and_unreadies_it() -> None:
    """A program that leaves RUNNING: its probe in flight is cancelled, it is not ready."""
    machine, _ = running(WEB, WORKER)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(1, PASS), 0.35)
    actions = machine.handle(lc.Changed("web", "web", S.RUNNING, S.EXITED, False, 1), 1.0)
    assert [a for a in actions if isinstance(a, checks.CancelProbe)] == [checks.CancelProbe(2)]
    now = published(actions)
    assert now is not None
    assert (now.ready, now.ready_once) == ({"web": False}, True)


def test_reload_forgets_removed_checks_and_watches_new_ones() -> None:
    """A reload whose config only changed roled's keys follows them at once."""
    machine, _ = running(WEB, WORKER)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.Signal(1), 1.0)
    worker = with_keys(WORKER, ready="tcp://127.0.0.1:9000")
    actions = machine.handle(lc.Planned(TIMINGS, Rules(), assembly(process("web"), worker)), 1.1)
    assert [a for a in actions if isinstance(a, checks.CancelProbe)] == [
        checks.CancelProbe(1),
        checks.CancelProbe(2),
    ]
    assert probes(machine.handle(lc.Tick(), 1.2)) == [(3, "worker", "ready")]


def test_health_wakes_the_loop_only_while_running() -> None:
    """The next probe is a wake-up while running, not while stopping."""
    machine, _ = running(WEB, WORKER)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(2, PASS), 0.4)
    assert machine._health_due() == 5.5
    machine.handle(lc.Signal(15), 1.0)
    assert machine._health_due() is None


def test_check_keys_are_registered() -> None:
    """Every check key is known; the checks themselves may not stand in common.conf."""
    table = keys.known()
    assert {name: table[name].in_common for name in checks.PARSERS} == {
        name: name in checks.IN_COMMON for name in checks.PARSERS
    }


def test_probes_due_within_a_grid_step_start_together() -> None:
    """Probes run on a grid of a tenth of their period: two programs whose checks passed
    0.2 s apart are probed together at the next step, and never before a period has passed."""
    db = with_keys(process("db"), alive="tcp://127.0.0.1:5432", check_period="5")
    machine, _ = running(WEB, db)
    assert probes(machine.handle(lc.Tick(), 0.3)) == [
        (1, "web", "ready"),
        (2, "web", "alive"),
        (3, "db", "alive"),
    ]
    machine.handle(lc.ProbeDone(1, PASS), 0.3)
    machine.handle(lc.ProbeDone(2, PASS), 0.3)
    machine.handle(lc.ProbeDone(3, PASS), 0.3)
    assert probes(machine.handle(lc.Tick(), 5.29)) == []
    assert machine._health_due() == 5.5
    assert probes(machine.handle(lc.Tick(), 5.5)) == [
        (4, "web", "ready"),
        (5, "web", "alive"),
        (6, "db", "alive"),
    ]


def test_a_probe_started_late_keeps_its_period() -> None:
    """The next probe is due a period after the step the last one was due at, not after the
    loop got to it: a loop a few ms late made a 5 s period 5.5 s (a step more, every time)."""
    db = with_keys(process("db"), alive="tcp://127.0.0.1:5432", check_period="5")
    machine, _ = running(db)
    machine.handle(lc.Tick(), 0.3)
    machine.handle(lc.ProbeDone(1, PASS), 0.31)
    assert machine._health_due() == 5.5
    assert probes(machine.handle(lc.Tick(), 5.52)) == [(2, "db", "alive")]
    machine.handle(lc.ProbeDone(2, PASS), 5.53)
    assert machine._health_due() == 10.5


def test_grid_steps_are_a_tenth_of_the_interval_and_at_most_a_second() -> None:
    table = {(5.3, 5.0): 5.5, (5.5, 5.0): 5.5, (1.01, 1.0): 1.1, (31.2, 30.0): 32.0}
    assert {case: checks.on_grid(*case) for case in table} == table
    assert checks.on_grid(61.5, 60.0) == 62.0


def test_ready_is_reached_only_when_the_last_unready_process_is_ready() -> None:
    """Ready is reached once every process is, whichever became ready first, and stays."""
    svc = with_keys(process("svc"), ready="notify")
    app = with_keys(process("app"), ready="log:Listening")
    for first, second in [("svc", "app"), ("app", "svc")]:
        machine, _ = running(svc, app)
        signs = {
            "svc": lc.Notified("svc", ready=True, watchdog=False),
            "app": lc.Output("app", b"Listening\n"),
        }
        machine.handle(lc.Notified("other", ready=True, watchdog=False), 1.0)
        assert machine.ready_once is False
        machine.handle(signs[first], 1.1)
        assert machine.ready_once is False
        machine.handle(signs[second], 1.2)
        assert machine.ready_once is True
        machine.handle(lc.Changed("svc", "svc", S.RUNNING, S.EXITED, False, 1), 1.3)
        assert machine.ready_once is True
