"""Shutdown deadline, ordered parallel stops, supervisord dying or hanging, and leftovers swept."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from roled.lifecycle import REPEAT_INTERVAL
from tests.conftest import Layout, Roled, program, wait_until

Start = Callable[..., Roled]


def stubborn(name: str, stopwaitsecs: int, priority: int = 999) -> str:
    """A program that ignores SIGTERM, so only supervisord's or roled's SIGKILL ends it."""
    command = program("print_signals", "--ignore", "SIGTERM")
    return (
        f"[program:{name}]\ncommand={command}\nstartsecs=0\n"
        f"stopwaitsecs={stopwaitsecs}\npriority={priority}\n"
        "stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n"
    )


def wait_ready(roled: Roled, count: int = 1) -> None:
    """Wait until count programs printed their ready line (their handlers are installed)."""
    wait_until(lambda: roled.stdout.count("ready") >= count, what=f"{count} ready line(s)")


def polite(name: str, priority: int = 999) -> str:
    return (
        f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\npriority={priority}\n"
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_deadline_kills_what_is_left_and_exits_4(layout: Layout, start_roled: Start) -> None:
    """A program outliving the deadline is killed, named in the last line, and roled exits 4."""
    layout.role("web", stubborn("slowpoke", stopwaitsecs=600))
    roled = start_roled(layout, "--shutdown-timeout", "2", "--kill-grace", "1", roles="web")
    roled.wait_states({"slowpoke": "RUNNING"})
    wait_ready(roled)
    pid = roled.client().process("slowpoke").pid
    roled.send(signal.SIGTERM)
    # Bounded by deadline + grace plus a generous margin for a loaded machine.
    assert roled.wait(timeout=2 + 1 + 20) == 4, roled.stderr + roled.stdout
    assert not alive(pid)
    assert "shutdown deadline of 2s passed" in roled.last_line()
    assert "'slowpoke'" in roled.last_line()


def two_levels_of_20s(layout: Layout) -> None:
    """Two priority levels whose stop may take 20s each: 40s in the worst case."""
    layout.role(
        "web", polite("a", priority=1).replace("startsecs=0", "startsecs=0\nstopwaitsecs=20")
    )
    layout.role(
        "worker", polite("b", priority=2).replace("startsecs=0", "startsecs=0\nstopwaitsecs=20")
    )


def test_warning_when_worst_case_stop_exceeds_a_given_deadline(
    layout: Layout, start_roled: Start
) -> None:
    """Two priority levels of 20s each do not fit in 30s: one warning with both numbers."""
    two_levels_of_20s(layout)
    roled = start_roled(layout, "--shutdown-timeout", "30", roles="web,worker")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    warnings = [line for line in roled.stderr.splitlines() if "may take" in line]
    assert len(warnings) == 1
    assert "may take 40s" in warnings[0]
    assert "deadline of 30s" in warnings[0]


def test_default_deadline_grows_to_the_worst_stop_with_a_warning(
    layout: Layout, start_roled: Start
) -> None:
    """Without a given deadline, 40s of stopwaitsecs are allowed; the warning names the grace."""
    two_levels_of_20s(layout)
    roled = start_roled(layout, roles="web,worker")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    warnings = [line for line in roled.stderr.splitlines() if "may take" in line]
    assert len(warnings) == 1
    assert "may take 40s" in warnings[0]
    assert "more than the 30s an orchestrator gives by default" in warnings[0]


def test_default_deadline_lets_a_long_stopwaitsecs_finish(
    layout: Layout, start_roled: Start
) -> None:
    """stopwaitsecs=32 is the program's own stop, as under supervisord: exit 0, not 4 at 30s."""
    layout.role("web", stubborn("slowpoke", stopwaitsecs=32))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"slowpoke": "RUNNING"})
    wait_ready(roled)
    roled.send(signal.SIGTERM)
    assert roled.wait(timeout=32 + 30) == 0, roled.stderr
    assert "shutdown deadline" not in roled.stderr


def test_no_warning_when_the_stop_fits(layout: Layout, start_roled: Start) -> None:
    """Programs of one priority level stop together: 3 x 20s fit in 30s."""
    for name in ("a", "b", "c"):
        layout.role(name, polite(name).replace("startsecs=0", "startsecs=0\nstopwaitsecs=20"))
    roled = start_roled(layout, roles="a,b,c")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING", "c": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "may take" not in roled.stderr


def test_one_priority_level_stops_in_parallel(layout: Layout, start_roled: Start) -> None:
    """Three stubborn programs of one level take one stopwaitsecs, not three, within the deadline.

    supervisord alone would stop them one after another (3 x 4s = 12s > 8s) and miss it.
    """
    for name in ("a", "b", "c"):
        layout.role(name, stubborn(name, stopwaitsecs=4))
    roled = start_roled(layout, "--shutdown-timeout", "8", roles="a,b,c")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING", "c": "RUNNING"})
    wait_ready(roled, 3)
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert roled.last_line() == "roled: INFO exiting with code 0: stopped on request (SIGTERM)"


def test_priority_levels_stop_in_order(layout: Layout, start_roled: Start) -> None:
    """The highest priority number stops first, as in supervisord."""
    layout.role("db", polite("db", priority=1))
    layout.role("web", polite("web", priority=50))
    roled = start_roled(layout, roles="db,web")
    roled.wait_states({"db": "RUNNING", "web": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    stderr = roled.stderr
    assert stderr.index("stopped: web") < stderr.index("stopped: db")


def test_second_sigint_kills_at_once(layout: Layout, start_roled: Start) -> None:
    """A second SIGINT while stopping kills what is left and exits 4."""
    layout.role("web", stubborn("slowpoke", stopwaitsecs=600))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"slowpoke": "RUNNING"})
    wait_ready(roled)
    pid = roled.client().process("slowpoke").pid
    roled.send(signal.SIGINT)
    wait_until(lambda: "stopping all programs" in roled.stderr, what="the stop to begin")
    # A person's second Ctrl-C, not the same one delivered twice (see the test below).
    time.sleep(REPEAT_INTERVAL + 0.2)
    roled.send(signal.SIGINT)
    assert roled.wait(timeout=20) == 4
    assert not alive(pid)
    assert "a second SIGINT while stopping" in roled.last_line()


def test_sigint_delivered_twice_at_once_is_one_request(layout: Layout, start_roled: Start) -> None:
    """timeout -s INT signals roled and its process group: one Ctrl-C, a clean stop, exit 0."""
    layout.role("web", stubborn("slowpoke", stopwaitsecs=1))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"slowpoke": "RUNNING"})
    wait_ready(roled)
    roled.send(signal.SIGINT)
    # Taken, so the kernel cannot merge the two, and well inside REPEAT_INTERVAL.
    wait_until(lambda: "stopping all programs" in roled.stderr, what="the stop to begin")
    roled.send(signal.SIGINT)
    assert roled.wait() == 0


def test_repeated_sigterm_neither_restarts_nor_shortens_the_stop(
    layout: Layout, start_roled: Start
) -> None:
    """Three SIGTERMs make one stop, which lets supervisord's stopwaitsecs run its course."""
    layout.role("web", stubborn("slowpoke", stopwaitsecs=2))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"slowpoke": "RUNNING"})
    wait_ready(roled)
    for _ in range(3):
        roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert roled.stderr.count("stopping all programs") == 1
    assert "stopped: slowpoke (terminated by SIGKILL)" in roled.stderr


def test_double_forked_daemon_does_not_outlive_roled(
    layout: Layout, start_roled: Start, tmp_path: Path
) -> None:
    """A sleep that double-forked away from its program is swept when roled exits."""
    pidfile = tmp_path / "daemons"
    maker = program("orphan_maker", "--seconds", "600", "--pidfile", str(pidfile))
    layout.role("web", f"[program:maker]\ncommand={maker}\nstartsecs=0\n")
    roled = start_roled(layout, "--kill-grace", "1", roles="web")
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the daemon")
    daemon = int(pidfile.read_text().split()[0])
    assert alive(daemon)
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert not alive(daemon)


def test_supervisord_hang_is_noticed_and_exits_3(layout: Layout, start_roled: Start) -> None:
    """A SIGSTOPped supervisord stops answering: it is killed, programs swept, exit 3."""
    layout.role("web", polite("web"))
    roled = start_roled(layout, "--hang-timeout", "2", "--kill-grace", "1", roles="web")
    roled.wait_states({"web": "RUNNING"})
    web = roled.client().process("web").pid
    supervisord = roled.supervisord()
    supervisord.suspend()
    try:
        assert roled.wait(timeout=30) == 3
    finally:
        if supervisord.is_running():
            supervisord.resume()
    assert not alive(web)
    assert "supervisord stopped answering" in roled.last_line()


def test_supervisord_that_fails_to_start_exits_3(layout: Layout, start_roled: Start) -> None:
    """supervisord refusing to start (its socket path taken by a directory) is exit 3."""
    socket_dir = layout.root / "taken.sock"
    socket_dir.mkdir()
    layout.write_main(
        f"[supervisord]\n[unix_http_server]\nfile={socket_dir}\nusername=u\npassword=p\n"
    )
    layout.role("web", polite("web"))
    roled = start_roled(layout, "--hang-timeout", "5", roles="web")
    assert roled.wait(timeout=30) == 3
    assert "supervisord failed to start" in roled.last_line() or "did not start" in (
        roled.last_line()
    )


def test_env_of_the_process_tree_is_not_leaked(layout: Layout, start_roled: Start) -> None:
    """Nothing started by a run survives it (a last look at the whole machine)."""
    marker = f"roled-test-marker-{os.getpid()}"
    layout.role("web", polite("web").replace("startsecs=0", f"startsecs=0\nenvironment=M={marker}"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0

    def carries_marker(process: psutil.Process) -> bool:
        try:
            return process.environ().get("M") == marker
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            return False

    assert [p.pid for p in psutil.process_iter() if carries_marker(p)] == []
