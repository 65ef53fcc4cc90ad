"""``roled ctl`` refuses what would break roled's promises (reload), in one line, and passes
everything else to supervisorctl, its shell included (tail, maintail and clear: test_tail.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from roled.ctl import refusal
from tests.conftest import Layout, Roled, clean_environ, program

Start = Callable[..., Roled]


def sleeper(name: str) -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n"


def ctl(roled: Roled, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roled", "ctl", *args],
        env=clean_environ(ROLED_RUNTIME_DIR=str(roled.runtime_dir)),
        capture_output=True,
        text=True,
        timeout=30,
        input=stdin,
    )


def pids(roled: Roled) -> dict[str, int]:
    """supervisord's pid and each program's: what a restart behind roled's back would change."""
    processes = {info.namespec: info.pid for info in roled.client().processes()}
    return {"supervisord": roled.supervisord().pid, **processes}


@pytest.fixture
def running(layout: Layout, start_roled: Start) -> Roled:
    layout.role("web", sleeper("web") + sleeper("api"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    return roled


@pytest.mark.parametrize("args", [("reload",)])
def test_reload_is_refused_in_one_line(running: Roled, args: tuple[str, ...]) -> None:
    """Exit 2 with one line saying why and what to do instead; nothing is restarted."""
    before = pids(running)
    result = ctl(running, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"roled: error: {refusal(args[0])}\n"
    assert pids(running) == before


def test_the_shell_refuses_them_too(running: Roled) -> None:
    """In supervisorctl's shell, reload answers the refusal; clear is roled's; others work."""
    before = pids(running)
    result = ctl(running, stdin="reload\nclear web\nstatus\n")
    assert f"roled: error: {refusal('reload')}" in result.stdout
    assert "web: cleared" in result.stdout
    assert "web                              RUNNING" in result.stdout
    assert pids(running) == before


def test_shutdown_through_ctl_is_a_clean_stop(running: Roled) -> None:
    """supervisorctl shutdown stops every program and roled exits 0, as for SIGTERM."""
    result = ctl(running, "shutdown")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"roled: stopping (sent SIGTERM to roled, pid {running.pid})\n"
    assert running.wait() == 0
    assert "exiting with code 0" in running.reason_line()
    assert not running.runtime_dir.exists()


def test_shutdown_in_the_shell_asks_then_stops_cleanly(running: Roled) -> None:
    """The shell's shutdown asks first; "n" keeps everything running, "y" stops with 0."""
    before = pids(running)
    ctl(running, stdin="shutdown\nn\n")
    assert pids(running) == before
    result = ctl(running, stdin="shutdown\ny\n")
    assert "roled: stopping (sent SIGTERM to roled" in result.stdout
    assert running.wait() == 0


def test_sighup_is_what_reload_points_to(layout: Layout, running: Roled) -> None:
    """The refusal's advice works: SIGHUP applies a changed config without a restart."""
    web = pids(running)["web"]
    layout.role("web", sleeper("web") + sleeper("api") + sleeper("extra"))
    running.send(signal.SIGHUP)
    running.wait_states({"web": "RUNNING", "api": "RUNNING", "extra": "RUNNING"})
    assert pids(running)["web"] == web
