"""Start in order (issue 14): real roled, real programs, the order read from the programs' own
stamps (``tests/programs/stamp.py``: monotonic time, name, event)."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from roled.supervisor import Unavailable
from tests.conftest import Layout, Roled, program, roled_next_to, wait_until

Start = Callable[..., Roled]


def stamped(out: Path, name: str, *args: str, **options: str) -> str:
    """A [program:NAME] section running stamp.py into out; options are further keys."""
    lines = [f"[program:{name}]", f"command={program('stamp', str(out), name, *args)}"]
    lines += [f"{key}={value}" for key, value in {"startsecs": "0", **options}.items()]
    return "\n".join(lines) + "\n\n"


def one_shot(out: Path, name: str, code: int = 0, delay: float = 0.3, **options: str) -> str:
    return stamped(
        out, name, "--exit", str(code), "--delay", str(delay), autorestart="false", **options
    )


def stamps(out: Path) -> list[tuple[float, str, str]]:
    """Every stamp so far: (time, program, event)."""
    if not out.exists():
        return []
    found = []
    for line in out.read_text().splitlines():
        when, name, event = line.split(" ", 2)
        found.append((float(when), name, event))
    return found


def first(out: Path, name: str, event: str) -> float | None:
    return next((t for t, n, e in stamps(out) if n == name and e == event), None)


def wait_stamp(out: Path, name: str, event: str, timeout: float = 20.0) -> float:
    found = wait_until(lambda: first(out, name, event), timeout, f"{name} {event} in {out}")
    assert isinstance(found, float)
    return found


def roled_command(
    layout: Layout, runtime: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return roled_next_to(runtime, "-c", str(layout.main), *args, **env)


def test_web_spawns_after_migrate_exits_0_never_before(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """The issue's example: web's first stamp comes after migrate's exit 0."""
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + one_shot(out, "migrate", delay=1.0)
        + stamped(out, "web", roled_depends_on="migrate")
    )
    roled = start_roled(layout)
    web = wait_stamp(out, "web", "start")
    assert web > wait_stamp(out, "migrate", "exit 0")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_migrate_exiting_3_never_starts_web_and_exits_1_naming_both(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + one_shot(out, "migrate", code=3)
        + stamped(out, "web", roled_depends_on="migrate")
    )
    roled = start_roled(layout)
    assert roled.wait() == 1
    assert "web waits for migrate, which exited 3" in roled.reason_line()
    assert first(out, "web", "start") is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dependency_on_ready_waits_for_the_server_to_answer(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """redis answers 2 s after it runs: web starts after that, not when redis is RUNNING."""
    out = short_tmp / "stamps"
    port = free_port()
    layout.write_main(
        "[supervisord]\n\n"
        + stamped(
            out,
            "redis",
            "--listen",
            str(port),
            "--delay",
            "2",
            roled_ready=f"tcp://127.0.0.1:{port}",
        )
        + stamped(out, "web", roled_depends_on="redis:ready")
    )
    roled = start_roled(layout)
    web = wait_stamp(out, "web", "start")
    assert web >= wait_stamp(out, "redis", "listening")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_a_chain_of_three_and_a_diamond_start_in_order(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + one_shot(out, "a")
        + one_shot(out, "b", roled_depends_on="a")
        + stamped(out, "c", roled_depends_on="b")
        + one_shot(out, "base")
        # RUNNING (started) one second after the spawn: their own start stamp is in by then.
        + stamped(out, "left", roled_depends_on="base", startsecs="1")
        + stamped(out, "right", roled_depends_on="base:done", startsecs="1")
        + stamped(out, "top", roled_depends_on="left:started, right:started")
    )
    roled = start_roled(layout)
    c, top = wait_stamp(out, "c", "start"), wait_stamp(out, "top", "start")
    assert wait_stamp(out, "a", "exit 0") < wait_stamp(out, "b", "start")
    assert wait_stamp(out, "b", "exit 0") < c
    base = wait_stamp(out, "base", "exit 0")
    left, right = wait_stamp(out, "left", "start"), wait_stamp(out, "right", "start")
    assert base < left < top
    assert base < right < top
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_numprocs_and_groups_are_waited_for_whole(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """app waits for both processes of a numprocs program and both programs of a group."""
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + stamped(
            out,
            "seed",
            "--exit",
            "0",
            "--delay",
            "0.5",
            autorestart="false",
            numprocs="2",
            process_name="%(program_name)s_%(process_num)d",
        )
        + one_shot(out, "s1", delay=0.2)
        + one_shot(out, "s2", delay=0.8)
        + "[group:setup]\nprograms=s1,s2\n\n"
        + stamped(out, "app", roled_depends_on="seed, setup")
    )
    roled = start_roled(layout)
    app = wait_stamp(out, "app", "start")
    exits = [t for t, n, e in stamps(out) if e == "exit 0"]
    assert len(exits) == 4
    assert max(exits) < app
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_sigterm_while_web_waits_exits_0_and_web_never_spawns(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """As PID 1; roled status shows web WAITING and what for, not ready and start-up not
    over, meanwhile."""
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + one_shot(out, "migrate", delay=60)
        + stamped(out, "web", roled_depends_on="migrate")
    )
    roled = start_roled(layout, pid1=True)
    wait_stamp(out, "migrate", "start")
    status = roled_command(layout, roled.runtime_dir, "status")
    assert status.returncode == 1, status.stderr
    assert "web      WAITING   waits for migrate (succeeded)" in status.stdout.splitlines()
    # Start-up is not over while web waits, though everything started so far runs.
    startup = roled_command(layout, roled.runtime_dir, "status", "--level", "startup")
    assert startup.returncode == 1, startup.stdout + startup.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert first(out, "web", "start") is None


def test_dependents_stop_before_what_they_depend_on(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """web (priority 1) depends on db (999): web gets its SIGTERM first, though supervisord
    alone would stop db first."""
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n"
        + stamped(out, "db")
        + stamped(out, "web", roled_depends_on="db:started", priority="1")
    )
    roled = start_roled(layout)
    # Both handle SIGTERM once they stamped their start (with startsecs=0, started is only
    # spawned: a SIGTERM before that kills the interpreter, and nothing is stamped).
    wait_stamp(out, "web", "start")
    wait_stamp(out, "db", "start")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    web, db = first(out, "web", "SIGTERM"), first(out, "db", "SIGTERM")
    assert web is not None
    assert db is not None
    assert web < db


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        ("roled_depends_on=web\n", "dependency cycle web -> web"),
        ("roled_depends_on=nosuch\n", "'nosuch' is not a program, group or process"),
        ("roled_depends_on=api\n", "'api' belongs to role 'backend', which is not selected"),
        ("roled_depends_on=db:done\nx=1\n", "can never hold: supervisord restarts 'db'"),
    ],
)
def test_a_bad_dependency_is_exit_2_in_one_line(
    layout: Layout, short_tmp: Path, web: str, expected: str
) -> None:
    """A cycle, an unknown name, an unselected role, a condition that cannot hold: one line
    naming file, section and key, by run and by check, and nothing started."""
    path = layout.role("web", f"[program:web]\ncommand=/bin/sleep 100\n{web}")
    layout.role("db", "[program:db]\ncommand=/bin/sleep 100\nautorestart=true\n")
    layout.role("backend", "[program:api]\ncommand=/bin/sleep 100\n")
    runtime = short_tmp / "rt"
    for args in ((), ("check",)):
        result = roled_command(layout, runtime, *args, ROLES="web,db")
        assert result.returncode == 2, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"roled: error: {path}: [program:web] roled_depends_on: ")
        assert expected in lines[0]
        assert not runtime.exists()


def test_check_print_and_roles_show_the_graph(layout: Layout, short_tmp: Path) -> None:
    layout.role("web", "[program:web]\ncommand=/bin/sleep 100\nroled_depends_on=migrate\n")
    layout.role("db", "[program:migrate]\ncommand=/bin/true\nautorestart=false\n")
    graph = [
        "dependencies (start order):",
        "  1  migrate",
        "  2  web  waits for migrate (succeeded)",
    ]
    printed = roled_command(layout, short_tmp / "rt", "check", "--print", ROLES="web,db")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[-3:] == [f"; {line}" for line in graph]
    listed = roled_command(layout, short_tmp / "rt", "roles", ROLES="web,db")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-3:] == graph


def test_a_reload_that_adds_a_dependency_keeps_the_program_running(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    out = short_tmp / "stamps"
    before = stamped(out, "db") + stamped(out, "web")
    layout.write_main("[supervisord]\n\n" + before)
    roled = start_roled(layout)
    wait_stamp(out, "web", "start")
    roled.wait_states({"db": "RUNNING", "web": "RUNNING"})
    layout.write_main(
        "[supervisord]\n\n" + stamped(out, "db") + stamped(out, "web", roled_depends_on="db")
    )
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reloaded:" in roled.stderr, what="the reload")
    assert roled.states() == {"db": "RUNNING", "web": "RUNNING"}
    assert [e for t, n, e in stamps(out) if n == "web"] == ["start"]
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_the_first_read_of_some_processes_agrees_with_a_full_read(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """At start-up roled reads only what supervisord starts itself (held-back programs are
    STOPPED): the reader gives what a full read gives of them, and a name supervisord does
    not know is an answer of the wrong shape."""
    out = short_tmp / "stamps"
    layout.write_main(
        "[supervisord]\n\n" + stamped(out, "db") + stamped(out, "web", roled_depends_on="db")
    )
    roled = start_roled(layout)
    wait_stamp(out, "web", "start")
    client = roled.client()
    full = {info.namespec: info for info in client.processes()}
    assert client.some_processes(["web", "db"]) == [full["web"], full["db"]]
    with pytest.raises(Unavailable, match="nosuch"):
        client.some_processes(["db", "nosuch"])
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
