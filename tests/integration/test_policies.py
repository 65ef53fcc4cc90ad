"""Exit policies and the failure report, with real programs under a real supervisord."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Layout, Roled, program, wait_until

Start = Callable[..., Roled]


def sleeper(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n{extra}"


def exits(
    name: str, code: int, delay: float = 0, extra: str = "", *, noise: int = 0, startsecs: int = 0
) -> str:
    command = program("exit_with", str(code), str(delay), str(noise))
    return f"[program:{name}]\ncommand={command}\nstartsecs={startsecs}\n{extra}"


def report_lines(roled: Roled) -> list[str]:
    """The failure report as printed on stderr, without roled's log prefix."""
    return [line.removeprefix("roled: INFO ") for line in roled.report().splitlines()]


def pid_changes(roled: Roled, name: str, times: int) -> Callable[[], bool]:
    seen: set[int] = set()

    def changed() -> bool:
        try:
            pid = roled.client().process(name).pid
        except Exception:
            return False
        if pid:
            seen.add(pid)
        return len(seen) > times

    return changed


def test_unexpected_exit_ends_the_container(layout: Layout, start_roled: Start) -> None:
    """Under 'unexpected', exit status 3 ends it although supervisord would restart the program."""
    layout.role("web", sleeper("web") + exits("worker", 3, 0.5, "autorestart=true\n"))
    roled = start_roled(layout, roles="web", env={"ROLED_EXIT_ON": "unexpected"})
    assert roled.wait() == 1
    # supervisord restarts it at once and forgets the status, so the status may not be named.
    assert roled.reason_line().startswith(
        "roled: INFO exiting with code 1: program 'worker' exited unexpectedly"
    )


def test_fatal_policy_lets_supervisord_restart_it(layout: Layout, start_roled: Start) -> None:
    """The negative control: under the default policy the same program is restarted, not fatal."""
    layout.role("web", sleeper("web") + exits("worker", 3, 0.5, "autorestart=true\n"))
    roled = start_roled(layout, roles="web")
    wait_until(pid_changes(roled, "worker", 2), what="worker to be restarted twice")
    assert roled.popen.poll() is None
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_any_exit_ends_the_container(layout: Layout, start_roled: Start) -> None:
    """Under 'any', even an expected exit of one program stops the rest and exits 1."""
    layout.role("web", sleeper("web") + exits("job", 0, 0.5, "autorestart=false\n"))
    roled = start_roled(layout, roles="web", env={"ROLED_EXIT_ON": "any"})
    assert roled.wait() == 1
    assert "program 'job' exited (exit status 0) and ROLED_EXIT_ON is 'any'" in roled.reason_line()


def test_noncritical_fatal_keeps_the_container(layout: Layout, start_roled: Start) -> None:
    """A FATAL non-critical program is a warning; the others keep running until asked to stop."""
    layout.role("web", sleeper("web") + exits("metrics", 3, extra="startretries=0\n", startsecs=1))
    roled = start_roled(layout, roles="web", env={"ROLED_NONCRITICAL": "metr*"})
    roled.wait_states({"web": "RUNNING", "metrics": "FATAL"})
    wait_until(lambda: "roled: WARNING program 'metrics' is FATAL" in roled.stderr)
    assert "non-critical" in roled.stderr
    assert roled.popen.poll() is None
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_main_exit_code_becomes_the_container_exit_code(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """ROLED_MAIN exiting 7: the others are stopped with SIGTERM and roled exits 7."""
    web_log = short_tmp / "web.log"
    layout.role(
        "app",
        sleeper("web", f"stdout_logfile={web_log}\n") + exits("app", 7, 1.0, "autorestart=false\n"),
    )
    roled = start_roled(layout, roles="app", env={"ROLED_MAIN": "app"})
    assert roled.wait() == 7
    assert "SIGTERM" in web_log.read_text()
    assert roled.reason_line() == (
        "roled: INFO exiting with code 7: main program 'app' exited (exit status 7)"
    )


def test_main_exit_0_is_a_clean_exit(layout: Layout, start_roled: Start) -> None:
    """ROLED_MAIN exiting 0 ends the container with 0 and no failure report."""
    layout.role("app", sleeper("web") + exits("app", 0, 0.5, "autorestart=false\n"))
    roled = start_roled(layout, roles="app", env={"ROLED_MAIN": "app"})
    assert roled.wait() == 0
    assert roled.last_line() == (
        "roled: INFO exiting with code 0: main program 'app' exited (exit status 0)"
    )


def test_restart_budget_catches_a_crash_loop(layout: Layout, start_roled: Start) -> None:
    """startsecs=0 never goes FATAL; more than 3 restarts within 60 s does, by the budget."""
    layout.role("web", sleeper("web") + exits("loop", 0, extra="autorestart=true\n"))
    roled = start_roled(layout, roles="web", env={"ROLED_MAX_RESTARTS": "3/60"})
    assert roled.wait() == 1
    assert roled.reason_line() == (
        "roled: INFO exiting with code 1: program 'loop' restarted 4 times within 60s "
        "(ROLED_MAX_RESTARTS is 3/60)"
    )


def test_exit_when_done_with_two_oneshots(layout: Layout, start_roled: Start) -> None:
    """Two one-shots that exit 0 make a batch container exit 0 once both are done."""
    layout.role(
        "batch",
        exits("first", 0, 0.2, "autorestart=false\n")
        + exits("second", 0, 1.0, "autorestart=false\n"),
    )
    roled = start_roled(layout, roles="batch", env={"ROLED_EXIT_WHEN_DONE": "true"})
    assert roled.wait() == 0
    assert roled.last_line() == "roled: INFO exiting with code 0: every program is done"
    assert "exited: second" in roled.stderr


def test_exit_when_done_with_a_failed_oneshot(layout: Layout, start_roled: Start) -> None:
    """Done, but one one-shot exited unexpectedly: exit 1 naming it."""
    layout.role(
        "batch",
        exits("first", 0, 0.2, "autorestart=false\n")
        + exits("second", 5, 0.5, "autorestart=false\n"),
    )
    roled = start_roled(layout, "--exit-when-done", roles="batch")
    assert roled.wait() == 1
    assert "every program is done, but 'second' failed" in roled.reason_line()


def test_failure_report_goes_to_the_termination_log(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """The report names the program, reason and last stderr line, on stderr and in the file."""
    termination = short_tmp / "termination-log"
    layout.role("web", sleeper("web"))
    layout.role("bad", exits("broken", 3, extra="startretries=0\n", startsecs=1))
    roled = start_roled(layout, roles="web,bad", env={"ROLED_TERMINATION_LOG": str(termination)})
    assert roled.wait() == 1
    text = termination.read_text()
    assert text.splitlines() == report_lines(roled)
    assert text.splitlines()[0] == "exiting with code 1: program 'broken' is FATAL"
    assert "program 'broken': FATAL: Exited too quickly" in text
    assert text.rstrip().endswith("exit_with: exiting with 3")


def test_failure_report_stays_within_4_kib(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """Megabytes of stderr still give a report of at most 4096 bytes ending in the last line."""
    termination = short_tmp / "termination-log"
    noisy = exits("noisy", 3, 0.2, "autorestart=false\n", noise=4000)
    layout.role("web", sleeper("web") + noisy)
    roled = start_roled(
        layout,
        roles="web",
        env={"ROLED_TERMINATION_LOG": str(termination), "ROLED_EXIT_ON": "unexpected"},
    )
    assert roled.wait() == 1
    data = termination.read_bytes()
    assert len(data) <= 4096
    assert b"program 'noisy' exited unexpectedly (exit status 3)" in data
    assert data.rstrip().endswith(b"exit_with: exiting with 3")


def test_report_says_when_stderr_is_not_kept(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A program whose stderr is NONE has no tail, and the report says so."""
    termination = short_tmp / "termination-log"
    layout.role(
        "bad",
        exits("broken", 3, extra="startretries=0\nstderr_logfile=NONE\n", startsecs=1),
    )
    roled = start_roled(layout, roles="bad", env={"ROLED_TERMINATION_LOG": str(termination)})
    assert roled.wait() == 1
    assert "stderr of 'broken': not kept (its log file is NONE)" in termination.read_text()


def test_report_has_the_tail_of_stderr_sent_to_the_console(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """stderr going to /dev/stderr passes through roled, which keeps its end for the report."""
    termination = short_tmp / "termination-log"
    layout.role(
        "bad",
        exits(
            "broken",
            3,
            extra="startretries=0\nstderr_logfile=/dev/stderr\nstderr_logfile_maxbytes=0\n",
            startsecs=1,
        ),
    )
    roled = start_roled(layout, roles="bad", env={"ROLED_TERMINATION_LOG": str(termination)})
    assert roled.wait() == 1
    assert termination.read_text().rstrip().endswith("exit_with: exiting with 3")


def test_config_error_reaches_the_termination_log(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A container that cannot start says why in the termination log too."""
    termination = short_tmp / "termination-log"
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="wbe", env={"ROLED_TERMINATION_LOG": str(termination)})
    assert roled.wait() == 2
    assert termination.read_text() == "roled: unknown role 'wbe' (known roles: web)\n"


def test_clean_stop_writes_no_report(layout: Layout, start_roled: Start, short_tmp: Path) -> None:
    """Exit 0 leaves the termination log alone."""
    termination = short_tmp / "termination-log"
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_TERMINATION_LOG": str(termination)})
    roled.wait_states({"web": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert not termination.exists()
