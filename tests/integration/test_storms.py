"""roled as PID 1 under storms, and its exit codes as a table."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import Layout, Roled, program, wait_until
from tests.integration.test_pid1 import pytestmark as pid1_only
from tests.integration.test_pid1 import zombies_under

Start = Callable[..., Roled]
pytestmark = pid1_only


def test_thousand_orphans_leave_no_zombie(layout: Layout, start_roled: Start) -> None:
    """A program spawning 1,000 short-lived orphans leaves zero zombies behind."""
    maker = program("orphan_maker", "--count", "1000")
    layout.role(
        "web",
        f"[program:maker]\ncommand={maker}\nstartsecs=0\n"
        "stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n",
    )
    roled = start_roled(layout, roles="web", pid1=True)
    wait_until(lambda: "orphans made" in roled.stdout, timeout=120, what="1,000 orphans")
    pid1 = roled.pid
    wait_until(lambda: not zombies_under(pid1), what="every orphan to be reaped")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_signal_storm_keeps_the_exit_code(layout: Layout, start_roled: Start) -> None:
    """1,000 HUP, USR2 and CHLD signals neither crash roled nor change its stop's exit code."""
    layout.role("web", f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n")
    roled = start_roled(layout, roles="web", pid1=True)
    roled.wait_states({"web": "RUNNING"})
    pid1 = roled.pid
    storm = [signal.SIGHUP, signal.SIGUSR2, signal.SIGCHLD] * 334
    random.Random(7).shuffle(storm)
    for signum in storm[:1000]:
        psutil.Process(pid1).send_signal(signum)
    roled.wait_states({"web": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "Traceback" not in roled.stderr
    assert roled.last_line() == "roled: INFO exiting with code 0: stopped on request (SIGTERM)"


def _fatal(layout: Layout) -> list[str]:
    layout.role("web", f"[program:bad]\ncommand={program('exit_with', '9')}\nstartretries=0\n")
    return []


def _stubborn(layout: Layout) -> list[str]:
    command = program("print_signals", "--ignore", "SIGTERM")
    layout.role(
        "web",
        f"[program:web]\ncommand={command}\nstartsecs=0\nstopwaitsecs=600\n"
        "stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n",
    )
    return ["--shutdown-timeout", "1"]


def _polite(layout: Layout) -> list[str]:
    layout.role("web", f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n")
    return []


@pytest.mark.parametrize(
    ("make", "action", "code"),
    [
        (_polite, "sigterm", 0),
        (_fatal, "none", 1),
        (_polite, "kill-supervisord", 3),
        (_stubborn, "sigterm", 4),
    ],
    ids=["clean stop", "fatal", "supervisord killed", "deadline"],
)
def test_exit_codes_as_pid1(
    layout: Layout,
    start_roled: Start,
    make: Callable[[Layout], list[str]],
    action: str,
    code: int,
) -> None:
    """Exit codes 0, 1, 3 and 4 hold with roled as PID 1, and nothing is left running."""
    args = make(layout)
    roled = start_roled(layout, *args, roles="web", pid1=True)
    if action != "none":
        roled.wait_states({"web": "RUNNING"})
        if "stdout_logfile" in (layout.roles / "web.conf").read_text():
            wait_until(lambda: "ready" in roled.stdout, what="the program's ready line")
    tree = roled.tree()
    if action == "sigterm":
        roled.send(signal.SIGTERM)
    elif action == "kill-supervisord":
        roled.supervisord().kill()
    assert roled.wait(timeout=60) == code
    wait_until(
        lambda: not any(p.is_running() and p.status() != "zombie" for p in tree),
        what="the namespace to be empty",
    )
