"""The start gate as exact tables: each event fed in, what the gate asks for after it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from roled.deps import Condition, Graph, Node, build_graph, parse_depends_on
from roled.gate import Gate, Outcome, Status, Step, Waiting, judge

Table = list[tuple[str, str]]


def node(namespec: str, deps: str = "", **fields: Any) -> Node:
    depends_on = parse_depends_on(deps, "test") if deps else ()
    return Node(namespec, depends_on=depends_on, **fields)


def one_shot(namespec: str, deps: str = "", **fields: Any) -> Node:
    return node(namespec, deps, autorestart="false", **fields)


def graph(*nodes: Node) -> Graph:
    return build_graph(nodes)


def summary(step: Step) -> str:
    """A step as one line: what starts, what fails, what is skipped."""
    parts = []
    if step.start:
        parts.append("start " + " ".join(step.start))
    if step.failed:
        parts.append("fail: " + step.reason)
    if step.skipped:
        parts.append("skip: " + "; ".join(blocked.message for blocked in step.skipped))
    return " | ".join(parts)


def feed(gate: Gate, event: str) -> Step:
    """``NAME STATE [EXITSTATUS [expected|unexpected]]``, ``NAME ready|unready``, ``stop``."""
    words = event.split()
    if words == ["stop"]:
        return gate.stop()
    name, what, *rest = words
    if what in {"ready", "unready"}:
        return gate.set_ready(name, what == "ready")
    exitstatus = int(rest[0]) if rest else None
    expected = {"expected": True, "unexpected": False}.get(rest[1]) if len(rest) > 1 else None
    return gate.observe(name, Status(what, exitstatus, expected))


def check(gate: Gate, table: Table) -> None:
    """Feed each event; the step after it must be exactly the one in the table."""
    seen = [(event, summary(feed(gate, event))) for event in [e for e, _ in table]]
    assert seen == table


def gate_of(
    *nodes: Node,
    noncritical: Iterable[str] = (),
    checked: Iterable[str] = (),
) -> Gate:
    quiet, probed = set(noncritical), set(checked)
    is_noncritical: Callable[[str], bool] = quiet.__contains__
    return Gate(graph(*nodes), is_noncritical, probed.__contains__)


# -- one dependency's condition -----------------------------------------------------------------

S, R, D, OK = Condition.STARTED, Condition.READY, Condition.DONE, Condition.SUCCEEDED
MET, PENDING, FAILED = Outcome.MET, Outcome.PENDING, Outcome.FAILED


@pytest.mark.parametrize(
    ("condition", "autorestart", "status", "ready", "outcome"),
    [
        # started: RUNNING, or ended for good (EXITED only ever follows RUNNING).
        (S, "false", Status("UNKNOWN"), False, (PENDING, "")),
        (S, "false", Status("STOPPED"), False, (PENDING, "")),
        (S, "false", Status("STARTING"), False, (PENDING, "")),
        (S, "false", Status("BACKOFF"), False, (PENDING, "")),
        (S, "false", Status("RUNNING"), False, (MET, "")),
        (S, "false", Status("STOPPING"), False, (PENDING, "")),
        (S, "false", Status("EXITED", 3), False, (MET, "")),
        (S, "unexpected", Status("EXITED", 3), False, (PENDING, "")),
        (S, "true", Status("EXITED", 0), False, (PENDING, "")),
        (S, "false", Status("FATAL"), False, (FAILED, "is FATAL")),
        # ready: RUNNING and ready, or a one-shot that finished well.
        (R, "true", Status("RUNNING"), False, (PENDING, "")),
        (R, "true", Status("RUNNING"), True, (MET, "")),
        (R, "true", Status("STARTING"), True, (PENDING, "")),
        (R, "false", Status("EXITED", 0), False, (MET, "")),
        (R, "false", Status("EXITED", 3), False, (FAILED, "exited 3")),
        (R, "unexpected", Status("EXITED", 3), False, (PENDING, "")),
        (R, "true", Status("FATAL"), False, (FAILED, "is FATAL")),
        # done: ended for good, any code.
        (D, "false", Status("RUNNING"), True, (PENDING, "")),
        (D, "false", Status("EXITED", 0), False, (MET, "")),
        (D, "false", Status("EXITED", 3), False, (MET, "")),
        (D, "false", Status("EXITED", -1), False, (MET, "")),
        (D, "unexpected", Status("EXITED", 0), False, (MET, "")),
        (D, "unexpected", Status("EXITED", 3), False, (PENDING, "")),
        (D, "false", Status("EXITED"), False, (PENDING, "")),
        (D, "false", Status("FATAL"), False, (FAILED, "is FATAL")),
        # succeeded: ended for good with an expected code.
        (OK, "false", Status("RUNNING"), True, (PENDING, "")),
        (OK, "false", Status("EXITED", 0), False, (MET, "")),
        (OK, "false", Status("EXITED", 3), False, (FAILED, "exited 3")),
        (OK, "false", Status("EXITED", -1), False, (FAILED, "was killed by a signal")),
        (OK, "false", Status("EXITED", None, False), False, (FAILED, "exited unexpectedly")),
        (OK, "false", Status("EXITED", 3, True), False, (MET, "")),
        (OK, "false", Status("EXITED", 0, False), False, (FAILED, "exited 0")),
        (OK, "unexpected", Status("EXITED", 0), False, (MET, "")),
        (OK, "unexpected", Status("EXITED", 3), False, (PENDING, "")),
        (OK, "false", Status("EXITED"), False, (PENDING, "")),
        (OK, "false", Status("FATAL"), False, (FAILED, "is FATAL")),
    ],
)
def test_judge(
    condition: Condition,
    autorestart: str,
    status: Status,
    ready: bool,
    outcome: tuple[Outcome, str],
) -> None:
    """Every condition against every state: met, not yet, or never (and why)."""
    assert judge(condition, Node("dep", autorestart=autorestart), status, ready) == outcome


def test_exitcodes_decide_without_supervisords_judgement() -> None:
    """Without ``expected``, the dependency's own exitcodes say whether it succeeded."""
    dep = Node("dep", autorestart="false", exitcodes=(0, 3))
    assert judge(OK, dep, Status("EXITED", 3), False) == (MET, "")
    assert judge(OK, dep, Status("EXITED", 1), False) == (FAILED, "exited 1")


# -- the examples -----------------------------------------------------------------------


def test_migrate_then_web() -> None:
    """web starts the moment migrate exits 0, never before, and only once."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    assert gate.held == {"web"}
    check(
        gate,
        [
            ("web STOPPED", ""),
            ("migrate STARTING", ""),
            ("migrate RUNNING", ""),
            ("migrate EXITED 0", "start web"),
            ("web STARTING", ""),
            ("web RUNNING", ""),
            # migrate run again by hand: web is not started (or restarted) again.
            ("migrate STARTING", ""),
            ("migrate EXITED 0", ""),
        ],
    )
    assert gate.held == set()


def test_migrate_exits_3() -> None:
    """web never starts; the failure names both, once; web stays WAITING with the chain."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(
        gate,
        [
            ("migrate RUNNING", ""),
            ("migrate EXITED 3", "fail: web waits for migrate, which exited 3"),
            ("migrate EXITED 3", ""),
            ("migrate FATAL", ""),
        ],
    )
    assert gate.waiting() == (
        Waiting("web", ("migrate (succeeded)",), "web waits for migrate, which exited 3"),
    )
    assert gate.waiting()[0].describe() == "never starts: web waits for migrate, which exited 3"


def test_ready_with_a_check() -> None:
    """redis:ready with a ready check waits for the check, not for RUNNING."""
    gate = gate_of(node("redis"), node("web", "redis:ready"), checked=["redis"])
    check(
        gate,
        [
            ("redis STARTING", ""),
            ("redis RUNNING", ""),
            ("redis unready", ""),
            ("redis ready", "start web"),
        ],
    )


def test_readiness_belongs_to_one_run() -> None:
    """A ready verdict from before a restart does not count for the next run."""
    gate = gate_of(node("redis"), node("web", "redis"), checked=["redis"])
    check(
        gate,
        [
            ("redis ready", ""),
            ("redis BACKOFF", ""),
            ("redis RUNNING", ""),
            ("redis ready", "start web"),
        ],
    )


def test_ready_without_a_check_is_running() -> None:
    """A program without a ready check is ready when RUNNING."""
    gate = gate_of(node("redis"), node("web", "redis"))
    check(gate, [("redis STARTING", ""), ("redis RUNNING", "start web")])


def test_chain_of_three() -> None:
    """migrate, then api once it succeeded, then web once api is ready."""
    gate = gate_of(one_shot("migrate"), node("api", "migrate"), node("web", "api"))
    check(
        gate,
        [
            ("migrate RUNNING", ""),
            ("migrate EXITED 0", "start api"),
            ("api STARTING", ""),
            ("api RUNNING", "start web"),
        ],
    )


def test_chain_of_three_fails_as_a_chain() -> None:
    """Every dependent on the chain is named, the far one through the near one."""
    gate = gate_of(one_shot("migrate"), node("api", "migrate"), node("web", "api"))
    step = feed(gate, "migrate EXITED 3")
    assert step.reason == (
        "api waits for migrate, which exited 3; "
        "web waits for api, which waits for migrate, which exited 3"
    )
    assert [blocked.chain for blocked in step.failed] == [
        ("api", "migrate"),
        ("web", "api", "migrate"),
    ]


def test_diamond() -> None:
    """api and jobs start together on db; web only once both are up."""
    gate = gate_of(node("db"), node("api", "db"), node("jobs", "db"), node("web", "api, jobs"))
    check(
        gate,
        [
            ("db RUNNING", "start api jobs"),
            ("api RUNNING", ""),
            ("jobs STARTING", ""),
            ("jobs RUNNING", "start web"),
        ],
    )


def test_a_group_as_dependency() -> None:
    """A group means every process of it, each with its own default condition."""
    gate = gate_of(
        one_shot("jobs:seed", group="jobs", program="seed"),
        node("jobs:cache", group="jobs", program="cache"),
        node("web", "jobs"),
    )
    check(
        gate,
        [
            ("jobs:cache RUNNING", ""),
            ("jobs:seed EXITED 0", "start web"),
        ],
    )


def test_numprocs_as_dependency() -> None:
    """A numprocs program means all its processes."""
    gate = gate_of(
        node("worker:worker_0", program="worker"),
        node("worker:worker_1", program="worker"),
        node("web", "worker:started"),
    )
    check(
        gate,
        [
            ("worker:worker_0 RUNNING", ""),
            ("worker:worker_1 STARTING", ""),
            ("worker:worker_1 RUNNING", "start web"),
        ],
    )


def test_numprocs_dependents_start_together_in_priority_order() -> None:
    """Everything released at once starts in priority order, then by name."""
    gate = gate_of(
        one_shot("migrate"),
        node("web:web_0", "migrate", program="web", priority=10),
        node("web:web_1", "migrate", program="web", priority=10),
        node("admin", "migrate", priority=5),
    )
    check(gate, [("migrate EXITED 0", "start admin web:web_0 web:web_1")])


def test_a_numprocs_dependent_is_named_by_its_program() -> None:
    """The chain names a numprocs program once, by its program name."""
    gate = gate_of(one_shot("migrate"), node("web:web_0", "migrate", program="web"))
    check(gate, [("migrate FATAL", "fail: web waits for migrate, which is FATAL")])


def test_all_conditions_must_hold_at_the_same_moment() -> None:
    """A dependency that went down again holds the dependent back until it is back up."""
    gate = gate_of(node("a"), node("b"), node("web", "a:started, b:started"))
    check(
        gate,
        [
            ("a RUNNING", ""),
            ("a BACKOFF", ""),
            ("b RUNNING", ""),
            ("a STARTING", ""),
            ("a RUNNING", "start web"),
        ],
    )


def test_a_restarting_dependency_is_not_a_failure() -> None:
    """An unexpected exit that supervisord restarts is waited out, not judged."""
    gate = gate_of(node("warm"), node("web", "warm:succeeded"))
    check(
        gate,
        [
            ("warm EXITED 3", ""),
            ("warm BACKOFF", ""),
            ("warm RUNNING", ""),
            ("warm EXITED 0", "start web"),
        ],
    )


# -- non-critical -------------------------------------------------------------------------------


def test_a_noncritical_dependency_skips_its_dependents() -> None:
    """flaky is non-critical: web and what waits for it are skipped once, and stay WAITING."""
    gate = gate_of(
        node("flaky"),
        node("web", "flaky"),
        node("nginx", "web"),
        noncritical=["flaky"],
    )
    step = feed(gate, "flaky FATAL")
    assert summary(step) == (
        "skip: nginx waits for web, which waits for flaky, which is FATAL; "
        "web waits for flaky, which is FATAL"
    )
    assert step.warning == (
        "not starting what depends on a non-critical failure (left WAITING): "
        "nginx waits for web, which waits for flaky, which is FATAL; "
        "web waits for flaky, which is FATAL"
    )
    assert step.reason == ""
    check(gate, [("flaky STARTING", ""), ("flaky RUNNING", "")])
    assert gate.held == {"web", "nginx"}
    assert [w.describe() for w in gate.waiting()] == [
        "never starts: nginx waits for web, which waits for flaky, which is FATAL",
        "never starts: web waits for flaky, which is FATAL",
    ]


def test_a_noncritical_link_anywhere_in_the_chain_forgives_it() -> None:
    """A non-critical dependent or intermediate forgives the chain through it; others fail."""
    gate = gate_of(
        one_shot("migrate"),
        node("api", "migrate"),
        node("web", "api"),
        node("admin", "migrate"),
        noncritical=["api"],
    )
    step = feed(gate, "migrate EXITED 3")
    assert step.reason == "admin waits for migrate, which exited 3"
    assert [blocked.namespec for blocked in step.skipped] == ["api", "web"]


def test_no_warning_without_a_skip() -> None:
    """A step with nothing skipped has nothing to warn about."""
    assert Step().warning == ""


# -- stop, someone else, autostart --------------------------------------------------------------


def test_a_stop_request_means_nothing_more_starts() -> None:
    """SIGTERM while web waits: web is never started, and nothing fails."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(
        gate,
        [
            ("migrate RUNNING", ""),
            ("stop", ""),
            ("migrate EXITED 0", ""),
            ("migrate FATAL", ""),
        ],
    )
    assert gate.held == set()
    assert gate.waiting() == ()


def test_a_process_started_by_someone_else_is_let_go() -> None:
    """supervisorctl start web: it is no longer held, and never started again by the gate."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(gate, [("web STARTING", ""), ("migrate EXITED 0", "")])
    assert gate.held == set()


def test_a_skipped_process_started_by_someone_else_is_let_go() -> None:
    """An operator may start a skipped program by hand; it then no longer waits."""
    gate = gate_of(node("flaky"), node("web", "flaky"), noncritical=["flaky"])
    check(
        gate,
        [("flaky FATAL", "skip: web waits for flaky, which is FATAL"), ("web RUNNING", "")],
    )
    assert gate.waiting() == ()


def test_autostart_false_is_never_started() -> None:
    """A program the user did not autostart is not held and not started."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate", autostart=False))
    assert gate.held == set()
    check(gate, [("migrate EXITED 0", "")])


def test_waiting_lists_only_what_is_still_unmet() -> None:
    """roled status: what each held process still waits for, by process and condition."""
    gate = gate_of(
        one_shot("migrate"),
        node("redis"),
        node("web", "migrate, redis"),
        node("nginx", "web:started"),
    )
    feed(gate, "redis RUNNING")
    assert [w.describe() for w in gate.waiting()] == [
        "waits for web (started)",
        "waits for migrate (succeeded)",
    ]


# -- reload -------------------------------------------------------------------------------------


def test_a_running_program_that_gains_a_dependency_keeps_running() -> None:
    """Dependencies gate starts only: nothing is held or started by the reload."""
    gate = gate_of(one_shot("migrate"), node("web"))
    check(gate, [("web RUNNING", ""), ("migrate RUNNING", "")])
    step = gate.reload(graph(one_shot("migrate"), node("web", "migrate")))
    assert summary(step) == ""
    assert gate.held == set()
    check(gate, [("migrate EXITED 0", "")])


def test_a_held_program_that_loses_its_dependencies_starts_now() -> None:
    """Its group is kept (only the gate changed), so roled starts it."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(gate, [("web STOPPED", ""), ("migrate RUNNING", "")])
    assert summary(gate.reload(graph(one_shot("migrate"), node("web")))) == "start web"
    assert gate.held == set()


def test_a_held_program_whose_dependencies_change_waits_for_the_new_ones() -> None:
    """Still held, judged against the new dependencies at once."""
    gate = gate_of(one_shot("migrate"), node("redis"), node("web", "migrate"))
    check(gate, [("redis RUNNING", "")])
    step = gate.reload(graph(one_shot("migrate"), node("redis"), node("web", "redis")))
    assert summary(step) == "start web"


def test_a_reload_adds_a_program_that_waits() -> None:
    """A new program with dependencies is held; a new one without is supervisord's to start."""
    gate = gate_of(one_shot("migrate"))
    check(gate, [("migrate RUNNING", "")])
    step = gate.reload(graph(one_shot("migrate"), node("web", "migrate"), node("other")))
    assert summary(step) == ""
    assert gate.held == {"web"}
    check(gate, [("migrate EXITED 0", "start web")])


def test_a_readded_group_starts_from_scratch() -> None:
    """A changed group is re-added by supervisord: its processes wait again."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(gate, [("migrate EXITED 0", "start web"), ("web RUNNING", "")])
    step = gate.reload(graph(one_shot("migrate"), node("web", "migrate")), readded=["web"])
    assert summary(step) == "start web"
    check(gate, [("web STARTING", "")])


def test_a_readded_group_forgets_the_old_run() -> None:
    """The old state of a re-added dependency does not count: it is judged afresh."""
    gate = gate_of(one_shot("migrate"), node("web", "migrate"))
    check(gate, [("migrate EXITED 0", "start web")])
    step = gate.reload(graph(one_shot("migrate"), node("web", "migrate")), ["migrate", "web"])
    assert summary(step) == ""
    assert gate.held == {"web"}
    check(gate, [("migrate RUNNING", ""), ("migrate EXITED 0", "start web")])


def test_a_reload_checks_skipped_programs_again() -> None:
    """After a reload a skipped program is judged again, and warned about again."""
    gate = gate_of(node("flaky"), node("web", "flaky"), noncritical=["flaky"])
    check(gate, [("flaky FATAL", "skip: web waits for flaky, which is FATAL")])
    step = gate.reload(graph(node("flaky"), node("web", "flaky")))
    assert summary(step) == "skip: web waits for flaky, which is FATAL"


def test_a_removed_program_is_forgotten() -> None:
    """A program the new config no longer has is neither held nor judged."""
    gate = gate_of(node("a"), node("web", "a"))
    check(gate, [("a RUNNING", "start web")])
    gate.reload(graph(node("web")))
    assert gate.held == set()


def test_a_failure_past_a_dependency_that_still_waits() -> None:
    """web waits for api (itself waiting, fine so far) and db, which fails: web is named."""
    gate = gate_of(node("slow"), node("api", "slow"), node("db"), node("web", "api, db"))
    check(gate, [("db FATAL", "fail: web waits for db, which is FATAL")])
    assert gate.held == {"api", "web"}
