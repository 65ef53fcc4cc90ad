"""roled_depends_on: the parser, the graph's checks, the stop order, its text, the assembly rule."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from supervisor.options import ServerOptions

from roled.deps import (
    Condition,
    Dependency,
    Edge,
    Elsewhere,
    Graph,
    Node,
    build_graph,
    gated_options,
    names_of,
    only_gate_changed,
    parse_depends_on,
    render_graph,
    start_levels,
    stop_order,
)
from roled.errors import RoledError

ORIGIN = "roles/web.conf: [program:web] roled_depends_on"


def node(namespec: str, deps: str = "", **fields: Any) -> Node:
    """A process; ``deps`` as written in roled_depends_on."""
    depends_on = parse_depends_on(deps, ORIGIN) if deps else ()
    return Node(namespec, depends_on=depends_on, **fields)


def one_shot(namespec: str, deps: str = "", **fields: Any) -> Node:
    return node(namespec, deps, autorestart="false", **fields)


def error_of(nodes: list[Node], elsewhere: tuple[Elsewhere, ...] = ()) -> str:
    with pytest.raises(RoledError) as info:
        build_graph(nodes, elsewhere)
    return str(info.value)


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("migrate", (Dependency("migrate"),)),
        ("migrate, redis:ready", (Dependency("migrate"), Dependency("redis", Condition.READY))),
        (
            " a:started ,b:done,c:succeeded ",
            (
                Dependency("a", Condition.STARTED),
                Dependency("b", Condition.DONE),
                Dependency("c", Condition.SUCCEEDED),
            ),
        ),
        ("grp:app", (Dependency("grp:app"),)),
        ("grp:app:done", (Dependency("grp:app", Condition.DONE),)),
        ("grp:ready", (Dependency("grp", Condition.READY),)),
        ("grp:ready:ready", (Dependency("grp:ready", Condition.READY),)),
        ("redis:Ready", (Dependency("redis", Condition.READY),)),
        ("web_1.x-y", (Dependency("web_1.x-y"),)),
    ],
)
def test_parse_depends_on(value: str, parsed: tuple[Dependency, ...]) -> None:
    """NAME[:CONDITION], comma-separated; a final condition word is the condition."""
    assert parse_depends_on(value, ORIGIN) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty; name at least one program (NAME[:CONDITION])"),
        ("  ", "is empty; name at least one program (NAME[:CONDITION])"),
        ("a,,b", "cannot read '' in 'a,,b'"),
        ("a,", "cannot read '' in 'a,'"),
        (":ready", "cannot read ':ready' in ':ready'"),
        ("grp:", "cannot read 'grp:' in 'grp:'"),
        ("a:b:c", "cannot read 'a:b:c' in 'a:b:c'"),
        ("a b", "cannot read 'a b' in 'a b'"),
        ("a:b:c:done", "cannot read 'a:b:c:done' in 'a:b:c:done'"),
        ("a, a:done", "names 'a' twice in 'a, a:done'"),
    ],
)
def test_parse_errors_name_the_key_and_value(value: str, message: str) -> None:
    """Every bad value is one line starting with the origin the caller gives."""
    with pytest.raises(RoledError) as info:
        parse_depends_on(value, ORIGIN)
    text = str(info.value)
    assert text.startswith(f"{ORIGIN}: {message}")
    assert "\n" not in text


def test_a_bad_item_lists_the_conditions() -> None:
    """The error for an unreadable item says what the syntax is."""
    with pytest.raises(RoledError, match="CONDITION one of started, ready, done, succeeded"):
        parse_depends_on("a b", ORIGIN)


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespec", "group", "program", "names"),
    [
        ("web", "", "", ("web",)),
        ("web", "web", "web", ("web",)),
        ("grp:app", "grp", "app", ("grp:app", "grp", "app")),
        ("worker:worker_0", "", "worker", ("worker:worker_0", "worker", "worker_0")),
        ("grp:worker_0", "grp", "worker", ("grp:worker_0", "grp", "worker", "worker_0")),
    ],
)
def test_names_of(namespec: str, group: str, program: str, names: tuple[str, ...]) -> None:
    """A process answers to its namespec, group, program and process name."""
    assert names_of(namespec, group, program) == names


# -- the graph ----------------------------------------------------------------------------------


def test_default_condition_is_succeeded_for_a_one_shot_and_ready_otherwise() -> None:
    """No condition: a one-shot must succeed, anything else be ready."""
    graph = build_graph([one_shot("migrate"), node("redis"), node("web", "migrate, redis")])
    assert graph.edges == {
        "web": (
            Edge("migrate", Condition.SUCCEEDED, "migrate"),
            Edge("redis", Condition.READY, "redis"),
        )
    }


def test_a_group_and_numprocs_name_every_process_with_its_own_default() -> None:
    """A group or numprocs program means all its processes, each with its own default."""
    graph = build_graph(
        [
            one_shot("jobs:seed", group="jobs", program="seed"),
            node("jobs:cache", group="jobs", program="cache"),
            node("worker:worker_0", program="worker"),
            node("worker:worker_1", program="worker"),
            node("web", "jobs, worker:started"),
        ]
    )
    assert graph.edges["web"] == (
        Edge("jobs:cache", Condition.READY, "jobs"),
        Edge("jobs:seed", Condition.SUCCEEDED, "jobs"),
        Edge("worker:worker_0", Condition.STARTED, "worker"),
        Edge("worker:worker_1", Condition.STARTED, "worker"),
    )


def test_a_process_name_and_group_name_pick_one_process() -> None:
    """``group:name`` and a numprocs process name name one process."""
    graph = build_graph(
        [
            node("worker:worker_0", program="worker"),
            node("worker:worker_1", program="worker"),
            node("a", "worker:worker_1"),
            node("b", "worker_0:started"),
        ]
    )
    assert graph.edges == {
        "a": (Edge("worker:worker_1", Condition.READY, "worker:worker_1"),),
        "b": (Edge("worker:worker_0", Condition.STARTED, "worker_0"),),
    }


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            [node("web", "api")],
            "[program:web] roled_depends_on: 'api' is not a program, group or process of the "
            "selected roles (a condition is one of started, ready, done, succeeded)",
        ),
        (
            [node("web", "migrate:sucess"), one_shot("migrate")],
            "[program:web] roled_depends_on: 'migrate:sucess' is not a program, group or process"
            " of the selected roles (a condition is one of started, ready, done, succeeded)",
        ),
        (
            [node("web", "redis:done"), node("redis", autorestart="true")],
            "[program:web] roled_depends_on: 'redis:done' can never hold: supervisord restarts "
            "'redis' after every exit (autorestart=true); wait for it to be started or ready",
        ),
        (
            [
                node("web", "jobs:succeeded"),
                one_shot("jobs:seed", group="jobs", program="seed"),
                node("jobs:tick", group="jobs", program="tick", autorestart="true"),
            ],
            "[program:web] roled_depends_on: 'jobs:succeeded' can never hold: supervisord "
            "restarts 'jobs:tick' after every exit (autorestart=true); wait for it to be started"
            " or ready",
        ),
        (
            [node("web", "api"), node("api", "web")],
            "[program:api] roled_depends_on: dependency cycle api -> web -> api",
        ),
        (
            [node("web", "web:started")],
            "[program:web] roled_depends_on: dependency cycle web -> web",
        ),
        (
            [node("a", "b"), node("b", "c"), node("c", "a"), node("d", "a")],
            "[program:a] roled_depends_on: dependency cycle a -> b -> c -> a",
        ),
        (
            [
                node("web:web_0", "api", program="web"),
                node("web:web_1", "api", program="web"),
                node("api", "web"),
            ],
            "[program:api] roled_depends_on: dependency cycle api -> web -> api",
        ),
        (
            [
                node("grp:a", "grp", group="grp", program="a"),
                node("grp:b", group="grp", program="b"),
            ],
            "[program:a] roled_depends_on: dependency cycle grp:a -> grp:a",
        ),
    ],
)
def test_graph_errors(nodes: list[Node], message: str) -> None:
    """Unknown name, a finish on a program restarted forever, a cycle: one line each."""
    assert error_of(nodes) == message


def test_a_name_of_a_role_not_selected_names_the_role() -> None:
    """A dependency on a program of a role that is not selected names that role."""
    elsewhere = (
        Elsewhere("api", "backend"),
        Elsewhere("queue:queue_0", "jobs", program="queue"),
    )
    assert error_of([node("web", "api")], elsewhere) == (
        "[program:web] roled_depends_on: 'api' belongs to role 'backend', which is not selected"
    )
    assert error_of([node("web", "queue:started")], elsewhere) == (
        "[program:web] roled_depends_on: 'queue' belongs to role 'jobs', which is not selected"
    )


def test_errors_name_the_file_and_section_given() -> None:
    """With origins, a whole-config error names the program's file and section."""
    with pytest.raises(RoledError) as info:
        build_graph([node("web", "api")], origins={"web": "roles/web.conf: [program:web]"})
    assert str(info.value).startswith("roles/web.conf: [program:web] roled_depends_on: 'api' ")


def test_done_and_succeeded_are_allowed_on_autorestart_unexpected() -> None:
    """A program restarted only after an unexpected exit can still finish for good."""
    graph = build_graph([node("warm"), node("web", "warm:succeeded"), node("cron", "warm:done")])
    assert graph.edges["web"] == (Edge("warm", Condition.SUCCEEDED, "warm"),)
    assert graph.edges["cron"] == (Edge("warm", Condition.DONE, "warm"),)


def test_diamond_is_not_a_cycle() -> None:
    """Two paths to the same dependency are fine."""
    graph = build_graph(
        [
            one_shot("migrate"),
            node("api", "migrate"),
            node("jobs", "migrate"),
            node("web", "api, jobs"),
        ]
    )
    assert sorted(graph.edges) == ["api", "jobs", "web"]


# -- stop order ---------------------------------------------------------------------------------


def order(nodes: list[Node]) -> list[list[str]]:
    return stop_order(build_graph(nodes))


def test_stop_order_without_dependencies_is_priority_highest_first() -> None:
    """No dependency: supervisord's own order, one level per priority."""
    assert order([node("a", priority=1), node("b", priority=999), node("c", priority=999)]) == [
        ["b", "c"],
        ["a"],
    ]


def test_dependents_stop_before_their_dependencies() -> None:
    """migrate-then-web: web stops first; a chain stops from its end."""
    assert order([one_shot("migrate"), node("web", "migrate")]) == [["web"], ["migrate"]]
    assert order([node("c", "b"), node("b", "a"), node("a")]) == [["c"], ["b"], ["a"]]


def test_diamond_stop_order() -> None:
    """web first, then api and jobs together, then what both depend on."""
    nodes = [node("db"), node("api", "db"), node("jobs", "db"), node("web", "api, jobs")]
    assert order(nodes) == [["web"], ["api", "jobs"], ["db"]]


def test_the_dependency_wins_over_priority() -> None:
    """a (priority 100) depends on b (200): a stops first, as early as b would."""
    nodes = [node("a", "b", priority=100), node("b", priority=200), node("c", priority=150)]
    # The reverse of how they start: c (150) and b (200) spawn by priority, a after b.
    assert order(nodes) == [["a"], ["b"], ["c"]]


def test_priority_orders_what_has_no_dependency_between() -> None:
    """Unrelated programs keep their priority order around a dependency pair."""
    nodes = [
        node("early", priority=1),
        node("late", priority=999),
        node("db", priority=10),
        node("web", "db", priority=500),
    ]
    assert order(nodes) == [["late"], ["web"], ["db"], ["early"]]


def test_groups_and_numprocs_stop_together_before_what_they_depend_on() -> None:
    """A numprocs program's processes share a level; their dependency follows."""
    nodes = [
        node("redis"),
        node("worker:worker_0", "redis", program="worker"),
        node("worker:worker_1", "redis", program="worker"),
    ]
    assert order(nodes) == [["worker:worker_0", "worker:worker_1"], ["redis"]]


def test_stop_order_survives_a_cycle() -> None:
    """A graph with a cycle (never built by build_graph) still stops everything."""
    graph = Graph(
        {"a": Node("a"), "b": Node("b", priority=5)},
        {"a": (Edge("b", Condition.READY, "b"),), "b": (Edge("a", Condition.READY, "a"),)},
    )
    assert stop_order(graph) == [["a"], ["b"]]
    assert start_levels(graph) == {"a": 2, "b": 1}


# -- the graph's text ---------------------------------------------------------------------------


def test_render_graph() -> None:
    """Processes that take part, in start order, each with what it waits for."""
    graph = build_graph(
        [
            one_shot("migrate"),
            node("redis"),
            node("lonely"),
            node("web", "migrate, redis:started"),
            node("nginx", "web"),
        ]
    )
    assert render_graph(graph) == (
        "dependencies (start order):\n"
        "  1  migrate\n"
        "  1  redis\n"
        "  2  web    waits for migrate (succeeded), redis (started)\n"
        "  3  nginx  waits for web (ready)\n"
    )


def test_render_graph_is_empty_without_dependencies() -> None:
    """Nothing to show: no section at all."""
    assert render_graph(build_graph([node("web")])) == ""


# -- the assembly rule --------------------------------------------------------------------------


def loaded(options: dict[str, str]) -> Any:
    """A [program:x] section's process config as supervisor's own loader reads it."""
    body = "\n".join(f"{k}={v}" for k, v in options.items() if not k.startswith("roled_"))
    text = f"[supervisord]\n[program:x]\n{body}\n"
    config = ServerOptions().read_config(StringIO(text))
    return config.process_group_configs[0].process_configs[0]


def test_a_program_with_dependencies_is_not_autostarted_by_supervisord() -> None:
    """autostart=false for supervisord; without dependencies the section is left alone."""
    written = {"command": "/bin/true", "autostart": "true", "roled_depends_on": "migrate"}
    assert gated_options(written) == {**written, "autostart": "false"}
    assert loaded(gated_options(written)).autostart is False
    plain = {"command": "/bin/true"}
    assert gated_options(plain) == plain
    assert loaded(gated_options(plain)).autostart is True


@pytest.mark.parametrize(
    ("before", "after", "only_gate"),
    [
        ({}, {"roled_depends_on": "db"}, True),
        ({"roled_depends_on": "db"}, {}, True),
        ({"roled_depends_on": "db"}, {"roled_depends_on": "cache"}, False),
        ({}, {"roled_depends_on": "db", "roled_ready": "tcp://127.0.0.1:1"}, True),
        ({}, {"roled_depends_on": "db", "startsecs": "3"}, False),
        ({"autostart": "false"}, {"autostart": "false", "roled_depends_on": "db"}, False),
        ({}, {}, False),
    ],
)
def test_only_gate_changed(before: dict[str, str], after: dict[str, str], only_gate: bool) -> None:
    """A reload keeps a group whose only change for supervisord is the gate's autostart."""
    command = {"command": "/bin/true"}
    assert only_gate_changed({**command, **before}, {**command, **after}) is only_gate
