"""The real roled command with a real supervisord: selection, exit codes, signals, cleanup."""

from __future__ import annotations

import signal
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import Layout, Roled, program, wait_until

Start = Callable[..., Roled]


def sleeper(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n{extra}\n"


def web_worker(layout: Layout) -> None:
    layout.role("web", sleeper("web"))
    layout.role("worker", sleeper("celery"), file="celery.conf")
    layout.role("worker", sleeper("beat"), file="beat.conf")


def gone(processes: list[psutil.Process]) -> bool:
    return not any(process.is_running() and process.status() != "zombie" for process in processes)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [("web", {"web"}), ("worker", {"celery", "beat"}), ("web,worker", {"web", "celery", "beat"})],
)
def test_roles_select_exactly_their_programs(
    layout: Layout, start_roled: Start, roles: str, expected: set[str]
) -> None:
    """supervisord runs exactly the programs of the selected roles."""
    web_worker(layout)
    roled = start_roled(layout, roles=roles)
    roled.wait_states(dict.fromkeys(expected, "RUNNING"))
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_signals_stop_everything_and_exit_0(
    layout: Layout, start_roled: Start, signum: signal.Signals
) -> None:
    """TERM, INT and QUIT stop every program, remove the runtime dir, and exit 0."""
    web_worker(layout)
    roled = start_roled(layout, roles="web,worker")
    roled.wait_states({"web": "RUNNING", "celery": "RUNNING", "beat": "RUNNING"})
    tree = roled.tree()[1:]
    roled.send(signum)
    assert roled.wait() == 0
    assert gone(tree)
    assert not roled.runtime_dir.exists()
    assert (
        roled.last_line() == f"roled: INFO exiting with code 0: stopped on request ({signum.name})"
    )


def test_fatal_program_exits_1_and_stops_the_others(layout: Layout, start_roled: Start) -> None:
    """A program that goes FATAL ends the container with 1, naming it and supervisord's reason."""
    layout.role("web", sleeper("web"))
    layout.role("bad", f"[program:broken]\ncommand={program('exit_with', '3')}\nstartretries=0\n")
    roled = start_roled(layout, roles="web,bad")
    web = wait_until(lambda: _program_process(roled, "print_signals"), what="web to start")
    assert roled.wait() == 1
    assert gone([web])  # type: ignore[list-item]
    assert "roled: ERROR program 'broken' is FATAL: Exited too quickly" in roled.stderr
    assert roled.reason_line() == "roled: INFO exiting with code 1: program 'broken' is FATAL"
    assert roled.last_line() == "roled: INFO   exit_with: exiting with 3"
    assert not roled.runtime_dir.exists()


def _program_process(roled: Roled, marker: str) -> psutil.Process | None:
    """A process of this roled's tree (other tests may run the same programs) with marker."""
    for process in roled.tree():
        try:
            if any(marker in part for part in process.cmdline()):
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def test_program_that_cannot_spawn_is_fatal(layout: Layout, start_roled: Start) -> None:
    """A command that does not exist is FATAL with supervisord's spawn error."""
    layout.role("bad", "[program:missing]\ncommand=/nonexistent/binary\n")
    roled = start_roled(layout, roles="bad")
    assert roled.wait() == 1
    assert "'missing' is FATAL" in roled.stderr


def test_user_exit_on_fatal_listener_still_gives_1(layout: Layout, start_roled: Start) -> None:
    """A user's own listener that shuts supervisord down on FATAL does not hide the failure."""
    kill_listener = (
        "[eventlistener:quit_on_fatal]\n"
        "command=sh -c 'printf \"READY\\n\"; while read line; do kill -TERM $PPID; done'\n"
        "events=PROCESS_STATE_FATAL\n"
    )
    layout.write_main("[supervisord]\n" + kill_listener)
    layout.role("web", sleeper("web"))
    layout.role("bad", f"[program:broken]\ncommand={program('exit_with', '3')}\nstartretries=0\n")
    roled = start_roled(layout, roles="web,bad")
    assert roled.wait() == 1
    assert "'broken' is FATAL" in roled.reason_line()


def test_supervisord_killed_exits_3_and_leaves_nothing(layout: Layout, start_roled: Start) -> None:
    """supervisord dying is noticed, its programs are swept, and roled exits 3."""
    web_worker(layout)
    roled = start_roled(layout, "--kill-grace", "2", roles="web,worker")
    roled.wait_states({"web": "RUNNING", "celery": "RUNNING", "beat": "RUNNING"})
    tree = roled.tree()[1:]
    roled.supervisord().kill()
    assert roled.wait() == 3
    assert gone(tree)
    assert "supervisord exited on its own (killed by SIGKILL)" in roled.last_line()


def test_sigusr1_is_not_forwarded(layout: Layout, start_roled: Start) -> None:
    """SIGUSR1 would kill supervisord; roled logs it and keeps running."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    supervisord = roled.supervisord()
    roled.send(signal.SIGUSR1)
    wait_until(lambda: "SIGUSR1 ignored" in roled.stderr, what="the SIGUSR1 log line")
    assert supervisord.is_running()
    assert roled.states() == {"web": "RUNNING"}
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_sigusr2_is_forwarded_to_supervisord(layout: Layout, start_roled: Start) -> None:
    """SIGUSR2 reaches supervisord, which reopens its logs."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    roled.send(signal.SIGUSR2)
    wait_until(lambda: "received SIGUSR2" in roled.stderr, what="supervisord's SIGUSR2 line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_sighup_does_not_end_the_container(layout: Layout, start_roled: Start) -> None:
    """SIGHUP leaves every program running."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    pid = roled.client().process("web").pid
    roled.send(signal.SIGHUP)
    wait_until(lambda: "SIGHUP" in roled.stderr, what="the SIGHUP log line")
    assert roled.client().process("web").pid == pid
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_main_config_without_roles_runs_as_is(layout: Layout, start_roled: Start) -> None:
    """With no roles folder, roled is a drop-in supervisord that runs the main config."""
    layout.write_main("[supervisord]\n" + sleeper("solo"))
    roled = start_roled(layout)
    roled.wait_states({"solo": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_program_output_reaches_roled_stdout(layout: Layout, start_roled: Start) -> None:
    """A program logging to /dev/stdout shows on roled's stdout; supervisord's log on stderr."""
    layout.common("stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n")
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "ready" in roled.stdout, what="the program's ready line on stdout")
    assert "spawned: 'web'" in roled.stderr
    assert "spawned: 'web'" not in roled.stdout
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_healthy_run_prints_no_crit(layout: Layout, start_roled: Start) -> None:
    """A healthy run prints no CRIT (running as root, no HTTP auth) and no traceback."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    output = roled.stdout + roled.stderr
    assert "CRIT" not in output
    assert "Traceback" not in output


def test_sample_runs_and_serves_http(start_roled: Start, short_tmp: Path) -> None:
    """The README's sample: every role, a real HTTP server on loopback, clean stop."""
    sample = Layout.__new__(Layout)
    sample.main = Path(__file__).parents[2] / "samples" / "basic" / "supervisor.conf"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    roled = start_roled(sample, roles="web,worker", env={"WEB_PORT": str(port)})
    roled.wait_states({"web": "RUNNING", "queue": "RUNNING", "scheduler": "RUNNING"})

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(answers, what="the sample web server to answer")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_runtime_dir_is_removed_after_a_config_error(layout: Layout, start_roled: Start) -> None:
    """A config error starts nothing and leaves no runtime directory."""
    layout.role("web", "[program:a]\nautorestart=maybe\ncommand=/bin/true\n")
    roled = start_roled(layout, roles="web")
    assert roled.wait() == 2
    assert not roled.runtime_dir.exists()


def test_second_roled_on_the_same_runtime_dir_is_refused(
    layout: Layout, start_roled: Start
) -> None:
    """One live roled per runtime directory."""
    layout.role("web", sleeper("web"))
    first = start_roled(layout, roles="web")
    first.wait_states({"web": "RUNNING"})
    clash = start_roled(layout, roles="web", runtime_dir=first.runtime_dir)
    assert clash.wait() == 2
    assert "another roled is running" in clash.stderr
    assert first.runtime_dir.exists()
    first.send(signal.SIGTERM)
    assert first.wait() == 0
