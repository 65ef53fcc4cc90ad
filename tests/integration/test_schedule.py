"""Scheduled programs (issue 15) for real: roled starts them over XML-RPC when due, logs each run,
skips overlaps, judges failures by ``roled_on_failure``, stops them like any program, and shows
their runs in ``roled status``."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Layout, Roled, clean_environ, program, roled_next_to, wait_until
from tests.integration.test_core import (
    marker as marker,  # noqa: PLC0414  (a fixture, used by name)
)
from tests.integration.test_core import processes_with
from tests.integration.test_unprivileged import (
    Sandboxed,
    _can_sandbox,
    write_layout,
)
from tests.integration.test_unprivileged import (
    base as base,  # noqa: PLC0414  (a fixture, used by name)
)
from tests.integration.test_unprivileged import (
    sandboxed as sandboxed,  # noqa: PLC0414  (a fixture, used by name)
)

Start = Callable[..., Roled]
SLEEPER = "[program:web]\ncommand=/bin/sleep 1000\nstartsecs=0\nstopwaitsecs=2\n"
# A job that prints the time it ran, so the test can see the spacing of runs.
STAMP = "/bin/sh -c 'echo tick $(date +%%s.%%N)'"


def sleep(seconds: float, marker: str) -> str:
    """A command that sleeps and carries marker on its command line (one process, no shell)."""
    return shlex.join([sys.executable, "-c", f"import time; time.sleep({seconds})", marker])


def job(name: str, command: str, schedule: str, *extra: str) -> str:
    lines = [f"[program:{name}]", f"command={command}", f"roled_schedule={schedule}", *extra]
    return "\n".join(lines) + "\n"


def status(roled: Roled, *args: str) -> subprocess.CompletedProcess[str]:
    """``roled status ARGS`` against this roled."""
    return roled_next_to(roled.runtime_dir, "status", *args, timeout=30)


def test_an_every_2s_job_runs_every_2s_and_its_lines_reach_stdout(
    layout: Layout, start_roled: Start
) -> None:
    """@every 2s: runs on a 2 s grid, each run logged with its exit, its output on stdout."""
    layout.role("web", SLEEPER + job("stamp", STAMP, "@every 2s"))
    roled = start_roled(layout, roles="web", pid1=True)
    wait_until(lambda: roled.stdout.count("tick ") >= 3, 30, "three runs")
    stamps = [float(value) for value in re.findall(r"tick (\d+\.\d+)", roled.stdout)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    # On the 2 s grid: a run may be skipped (logged) when a loaded machine made the previous
    # one look unfinished, but none comes off the grid.
    assert all(gap > 1.0 and abs(gap - 2 * round(gap / 2)) < 1.0 for gap in gaps), gaps
    assert "roled: INFO program 'stamp' run started (due " in roled.stderr
    assert re.search(r"program 'stamp' run ended: exit status 0 after \d+\.\ds", roled.stderr)
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


def test_a_job_not_due_yet_is_not_started_by_supervisord(
    layout: Layout, start_roled: Start
) -> None:
    """autostart=false is assembled in: a job with @every 1h does not run at start-up."""
    layout.role("web", SLEEPER + job("later", STAMP, "@every 1h", "autostart=true"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "later": "STOPPED"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr
    assert "tick" not in roled.stdout


def test_run_on_start_runs_at_once(layout: Layout, start_roled: Start) -> None:
    """roled_run_on_start=true: one run at start-up, logged as such."""
    layout.role("web", SLEEPER + job("now", STAMP, "@every 1h", "roled_run_on_start=true"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "program 'now' run ended" in roled.stderr, 20, "the run on start")
    assert "program 'now' run started (roled_run_on_start)" in roled.stderr
    assert roled.stdout.count("tick") == 1
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


def test_an_overlapping_run_is_skipped_and_logged(
    layout: Layout, start_roled: Start, marker: str
) -> None:
    """A run due while the previous one still runs is skipped, logged once with its age."""
    layout.role("web", SLEEPER + job("slow", sleep(3.5, marker), "@every 1s"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "program 'slow' skipped" in roled.stderr, 20, "a skipped run")
    skipped = re.findall(
        r"program 'slow' skipped: the previous run, started (\d+)s ago", roled.stderr
    )
    assert skipped[0] in {"1", "2"}, roled.stderr
    wait_until(lambda: "program 'slow' run ended" in roled.stderr, 20, "the slow run to end")
    # One process at a time, never two.
    assert len(processes_with(marker)) <= 1
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


def test_a_failing_run_warns_and_the_container_goes_on(layout: Layout, start_roled: Start) -> None:
    """Exit 3 not in exitcodes: a warning per run; roled keeps running; status stays fine."""
    layout.role("web", SLEEPER + job("flaky", program("exit_with", "3"), "@every 1s"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: roled.stderr.count("program 'flaky' run failed") >= 2, 20, "two failures")
    assert "WARNING program 'flaky' run failed: exit status 3 after" in roled.stderr
    assert "(exitcodes 0)" in roled.stderr
    assert roled.popen.poll() is None
    probe = status(roled)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


def test_a_failing_run_with_on_failure_exit_ends_the_container_with_1(
    layout: Layout, start_roled: Start
) -> None:
    """roled_on_failure=exit: the first failed run ends the container with 1 and a report."""
    layout.role(
        "web",
        SLEEPER + job("strict", program("exit_with", "3"), "@every 1s", "roled_on_failure=exit"),
    )
    roled = start_roled(layout, roles="web", pid1=True)
    assert roled.wait() == 1, roled.stderr
    assert "scheduled program 'strict' failed (exit status 3)" in roled.reason_line()
    # The failure report carries the run's last stderr lines.
    assert "exit_with: exiting with 3" in roled.report()


def test_sigterm_during_a_run_exits_0_and_leaves_nothing(
    layout: Layout, start_roled: Start, marker: str
) -> None:
    """A stop during a run stops it like any program: exit 0, the run logged, no survivor."""
    layout.role(
        "web",
        SLEEPER + job("long", sleep(1000, marker), "@every 1h", "roled_run_on_start=true"),
    )
    roled = start_roled(layout, roles="web", pid1=True)
    roled.wait_states({"web": "RUNNING", "long": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr
    assert re.search(r"program 'long' run stopped after \d+\.\ds", roled.stderr)
    assert "exiting with code 0" in roled.reason_line()
    assert processes_with(marker) == []


def test_status_shows_next_and_last_run(layout: Layout, start_roled: Start) -> None:
    """roled status: next run, the last run's result and duration; --json has the schedule."""
    layout.role("web", SLEEPER + job("beat", "/bin/true", "@every 1s"))
    roled = start_roled(layout, roles="web")

    def ran() -> bool:
        document = json.loads(status(roled, "--json").stdout or "{}")
        beat = [p for p in document.get("programs", []) if p["name"] == "beat"]
        return bool(beat) and beat[0].get("schedule", {}).get("last") is not None

    wait_until(ran, 20, "a run in roled status")
    document = json.loads(status(roled, "--json").stdout)
    beat = next(p for p in document["programs"] if p["name"] == "beat")
    web = next(p for p in document["programs"] if p["name"] == "web")
    assert "schedule" not in web
    schedule = beat["schedule"]
    assert schedule["expression"] == "@every 1s"
    assert schedule["timezone"] == "UTC"
    assert schedule["next_run"].endswith("+00:00")
    assert schedule["last"]["exitstatus"] == 0
    assert schedule["last"]["ok"] is True
    assert beat["ok"] is True
    text = status(roled)
    assert text.returncode == 0
    line = next(line for line in text.stdout.splitlines() if line.startswith("beat"))
    assert "next run " in line
    assert re.search(r"last run: (exit status 0|stopped) after [\d.]+s", line), line
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


def test_reload_applies_a_changed_schedule_and_keeps_a_run(
    layout: Layout, start_roled: Start, marker: str
) -> None:
    """SIGHUP: a changed schedule is due by its new rule; a run in progress is left running."""
    path = layout.role(
        "web",
        SLEEPER
        + job("long", sleep(1000, marker), "@every 1h", "roled_run_on_start=true")
        + job("stamp", STAMP, "@every 1h"),
    )
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "long": "RUNNING", "stamp": "STOPPED"})
    before = roled.client().process("long").pid
    # Only the last job's schedule changes: roled's keys are not in supervisord's config.
    head, _, tail = path.read_text().rpartition("roled_schedule=@every 1h")
    path.write_text(head + "roled_schedule=@every 1s" + tail)
    roled.send(signal.SIGHUP)
    wait_until(lambda: "tick" in roled.stdout, 20, "the rescheduled job to run")
    assert roled.client().process("long").pid == before
    assert roled.client().process("long").statename == "RUNNING"
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0, roled.stderr


BAD = {
    "bad expression": (
        "roled_schedule=61 * * * *\n",
        {},
        "[program:job] roled_schedule: '61 * * * *': minute 61 is out of range 0-59",
    ),
    "bad zone": (
        "roled_schedule=@daily\nroled_timezone=Europe/Berln\n",
        {},
        "[program:job] roled_timezone: unknown time zone 'Europe/Berln'",
    ),
    "bad TZ": (
        "roled_schedule=@daily\n",
        {"TZ": "Mars/Olympus"},
        "[program:job] roled_timezone is not set and TZ='Mars/Olympus' is not a zoneinfo name",
    ),
    "autorestart": (
        "roled_schedule=@daily\nautorestart=true\n",
        {},
        "[program:job] roled_schedule: a scheduled program cannot have autorestart=true",
    ),
    "numprocs": (
        "roled_schedule=@daily\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)s\n",
        {},
        "[program:job] roled_schedule: a scheduled program runs one process, not numprocs=2",
    ),
    "key without schedule": (
        "roled_on_failure=exit\n",
        {},
        "[program:job] roled_on_failure is set but roled_schedule is not",
    ),
}


@pytest.mark.parametrize("command", [(), ("check",)], ids=["run", "check"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_schedule_is_one_line_and_exit_2(
    layout: Layout, short_tmp: Path, case: str, command: tuple[str, ...]
) -> None:
    """A bad expression, zone or job setting: exit 2, one line naming file, section, key."""
    keys, env, expected = BAD[case]
    path = layout.role("web", SLEEPER + "[program:job]\ncommand=/bin/true\n" + keys)
    runtime = short_tmp / "rt"
    result = subprocess.run(
        [sys.executable, "-m", "roled", *command, "-c", str(layout.main)],
        env=clean_environ(ROLED_RUNTIME_DIR=str(runtime), ROLES="web", **env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"roled: error: {path}: {expected}"), lines[0]
    assert result.stdout == ""
    assert not runtime.exists()


@pytest.mark.skipif(not _can_sandbox(), reason="needs root, unshare --mount --pid, setpriv")
def test_a_job_runs_unprivileged_on_a_read_only_root(
    base: Path,
    sandboxed: Callable[..., Sandboxed],
) -> None:
    """uid 12345, read-only root, only /tmp writable: the job runs, SIGTERM gives 0."""
    main = write_layout(
        base,
        {
            "web": "[program:web]\ncommand=/bin/sleep 1000\nstartsecs=0\n"
            + job("stamp", STAMP, "@every 1s")
        },
    )
    run = sandboxed(main, "web")
    wait_until(lambda: run.stdout.count("tick") >= 2, 60, f"two runs; stderr:\n{run.stderr}")
    assert "program 'stamp' run ended: exit status 0" in run.stderr
    run.roled().send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr
