"""Health checks end to end (issue 13): real servers on 127.0.0.1, real programs, the real roled,
and ``roled status --level`` answering from what it published."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    Layout,
    Roled,
    program,
    roled_next_to,
    skip_or_fail,
    wait_until,
)

Start = Callable[..., Roled]
SLEEPER = "[program:{name}]\ncommand=/bin/sleep 1000\nstartsecs=0\nstopwaitsecs=2\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status(roled: Roled, *args: str) -> subprocess.CompletedProcess[str]:
    """``roled status ARGS`` against this roled."""
    return roled_next_to(roled.runtime_dir, "status", *args, timeout=30)


def level(roled: Roled, name: str) -> int:
    return status(roled, "--level", name).returncode


def checks_of(roled: Roled, name: str) -> list[dict[str, object]]:
    document = json.loads(status(roled, "--json").stdout)
    entry = next(p for p in document["programs"] if p["name"] == name)
    return list(entry["checks"])


def pid_of(roled: Roled, name: str) -> int:
    return roled.client().process(name).pid


def zombies(roled: Roled) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(roled.pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_ready_flips_when_the_server_answers(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """Not ready while the server does not answer (alive all along), ready once it does."""
    port, marker = free_port(), short_tmp / "listening"
    command = program("late_server", str(port), "2", str(marker))
    layout.write_main(
        f"[supervisord]\n[program:web]\ncommand={command}\nstartsecs=0\n"
        f"roled_ready=http://127.0.0.1:{port}/healthz\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"web": "RUNNING"})
    before = status(roled, "--level", "ready")
    assert not marker.exists(), "the test machine was too slow to see the server start"
    assert before.returncode == 1, before.stdout
    assert "its ready check (http http://127.0.0.1" in before.stdout
    assert level(roled, "alive") == 0
    assert level(roled, "startup") == 1
    wait_until(lambda: level(roled, "ready") == 0, timeout=20, what="ready")
    assert marker.exists()
    assert level(roled, "alive") == 0
    assert level(roled, "startup") == 0
    assert checks_of(roled, "web")[0]["state"] == "passing"
    assert "program 'web' is ready (HTTP 200 OK)" in roled.stderr


def test_alive_failure_restarts_only_that_program(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A failing alive check restarts its program (new pid); the other keeps its pid."""
    broken = short_tmp / "broken"
    layout.write_main(
        "[supervisord]\n"
        + SLEEPER.format(name="other")
        + SLEEPER.format(name="web")
        + f"roled_alive=exec:/bin/sh -c 'test ! -e {broken}'\nroled_check_period=0.2\n"
        "roled_check_threshold=2\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"web": "RUNNING", "other": "RUNNING"})
    web, other = pid_of(roled, "web"), pid_of(roled, "other")
    broken.touch()
    wait_until(lambda: pid_of(roled, "web") not in {0, web}, timeout=20, what="web restarted")
    broken.unlink()
    assert pid_of(roled, "other") == other
    assert roled.popen.poll() is None
    assert "failing (2 failures in a row; last: exit status 1); restarting it" in roled.stderr
    assert level(roled, "alive") == 0


def test_on_unhealthy_exit_ends_the_container_naming_the_check(
    layout: Layout, start_roled: Start
) -> None:
    """roled_on_unhealthy=exit: exit 1, and the report names the check and its output."""
    layout.write_main(
        "[supervisord]\n"
        + SLEEPER.format(name="web")
        + "roled_alive=exec:/bin/sh -c 'echo database unreachable; exit 3'\n"
        "roled_on_unhealthy=exit\nroled_check_period=0.2\nroled_check_threshold=2\n"
    )
    roled = start_roled(layout)
    assert roled.wait() == 1
    assert "failed its alive check exec:/bin/sh -c 'echo database unreachable; exit 3'" in (
        roled.reason_line()
    )
    assert "last: exit status 3" in roled.reason_line()
    assert "database unreachable" in roled.reason_line()


def test_notify_ready_and_watchdog_then_missing_keepalives(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """READY=1 makes the program ready, WATCHDOG=1 keeps it alive; without them it restarts."""
    stop = short_tmp / "stop"
    layout.write_main(
        "[supervisord]\n[program:svc]\n"
        f"command={program('notifier', '0.2', '0.1', str(stop))}\nstartsecs=0\n"
        "roled_ready=notify\nroled_alive=notify\nroled_check_period=1\n"
        "roled_check_threshold=2\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"svc": "RUNNING"})
    wait_until(lambda: level(roled, "ready") == 0, timeout=20, what="READY=1 counted")
    assert "notifier: WATCHDOG_USEC=1000000" in roled.stdout
    first = pid_of(roled, "svc")
    stop.touch()
    wait_until(lambda: pid_of(roled, "svc") not in {0, first}, timeout=20, what="a restart")
    assert "no WATCHDOG=1 within 1s); restarting it" in roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert not roled.runtime_dir.exists()


def test_notify_through_systemd_notify(layout: Layout, start_roled: Start) -> None:
    """systemd's own tool, run by the program's shell, is tied to the program by its parent."""
    tool = shutil.which("systemd-notify")
    if tool is None:
        skip_or_fail("systemd-notify is not installed (Debian's systemd package has it)")
    layout.write_main(
        "[supervisord]\n[program:svc]\n"
        f"command=/bin/sh -c '{tool} --ready; exec sleep 1000'\nstartsecs=0\n"
        "roled_ready=notify\n"
    )
    roled = start_roled(layout)
    wait_until(lambda: level(roled, "ready") == 0, timeout=20, what="READY=1 counted")


def test_log_line_makes_the_program_ready(layout: Layout, start_roled: Start) -> None:
    """log:REGEX: ready once a carried output line matches."""
    layout.write_main(
        "[supervisord]\n[program:web]\n"
        "command=/bin/sh -c 'sleep 1; echo booting; echo Listening on 8000; exec sleep 1000'\n"
        "startsecs=0\nroled_ready=log:Listening on \\d+\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: level(roled, "ready") == 0, timeout=20, what="the line matched")
    assert "line matched: Listening on 8000" in roled.stderr
    assert "Listening on 8000" in roled.stdout


def test_hanging_exec_is_killed_at_its_timeout(
    layout: Layout, start_roled: Start, marker: str
) -> None:
    """An exec check that hangs is killed at the timeout and reaped: no zombie, no survivor."""
    layout.write_main(
        "[supervisord]\n"
        + SLEEPER.format(name="web")
        + f"roled_ready=exec:{sys.executable} -c 'import time; time.sleep(1000)' {marker}\n"
        "roled_check_timeout=0.5\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"web": "RUNNING"})

    def timed_out() -> bool:
        found = checks_of(roled, "web")
        return "timed out after 0.5s" in str(found[0]["last_result"])

    wait_until(timed_out, timeout=20, what="a timed-out check")
    assert level(roled, "ready") == 1
    assert level(roled, "alive") == 0
    # Retried every second: each hanging command lives 0.5 s at most.
    hanging = [p for p in processes_with(marker) if p.create_time() < time.time() - 1.5]
    assert hanging == []
    assert zombies(roled) == []


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


@pytest.fixture
def marker(short_tmp: Path) -> Iterator[str]:
    """A word the check's command carries; whatever still carries it at teardown is killed."""
    word = f"roled-health-{short_tmp.name}"
    yield word
    for process in processes_with(word):
        process.kill()


def test_exec_printing_megabytes_passes_with_its_output_trimmed(
    layout: Layout, start_roled: Start
) -> None:
    """A check that prints megabytes costs roled reads, not memory; --json shows its end."""
    layout.write_main(
        "[supervisord]\n"
        + SLEEPER.format(name="web")
        + "roled_ready=exec:/bin/sh -c 'yes abcdefgh | head -c 5000000; echo; echo done'\n"
    )
    roled = start_roled(layout)
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: level(roled, "ready") == 0, timeout=30, what="ready")
    found = checks_of(roled, "web")[0]
    assert found["last_result"] == "exit status 0"
    output = str(found["last_output"])
    assert output.endswith("done")
    assert len(output) <= 2000
    assert psutil.Process(roled.pid).memory_info().rss < 64 * 2**20


def test_noncritical_flapping_program_stays_alive(layout: Layout, start_roled: Start) -> None:
    """A non-critical program that keeps failing never makes --level alive answer 1."""
    layout.write_main(
        "[supervisord]\n"
        + SLEEPER.format(name="web")
        + f"[program:flaky]\ncommand={program('exit_with', '1', '0.3')}\nstartretries=100\n"
    )
    roled = start_roled(layout, env={"ROLED_NONCRITICAL": "flaky"})
    wait_until(lambda: "success: web entered RUNNING" in roled.stderr, what="web RUNNING")
    answers = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        answers.append(level(roled, "alive"))
    assert len(answers) >= 3
    assert set(answers) == {0}
    assert level(roled, "ready") == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "roled_ready=http://db.internal:5432/",
            "[program:web] roled_ready: HOST must be an IP address or localhost",
        ),
        ("roled_alive=tcp://127.0.0.1:99999", "[program:web] roled_alive: expected a port"),
        ("roled_alive=log:ready", "[program:web] roled_alive: a log: check can only say"),
        ("roled_readyy=notify", "[program:web] roled_readyy: unknown roled key (did you mean"),
    ],
)
def test_bad_check_is_exit_2_one_line(
    layout: Layout, start_roled: Start, line: str, expected: str
) -> None:
    """A bad check or an unknown roled_ key: exit 2, one line naming file, section and key."""
    main = layout.write_main("[supervisord]\n" + SLEEPER.format(name="web") + line + "\n")
    roled = start_roled(layout)
    assert roled.wait() == 2
    lines = roled.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"roled: error: {main}: ")
    assert expected in lines[0]
    assert not roled.runtime_dir.exists()
