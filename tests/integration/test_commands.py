"""The operator commands against real files and a real running roled: check, roles, status, ctl."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from tests.conftest import Layout, Roled, program, roled_next_to, wait_until
from tests.integration.test_bad_input import CASES, GOOD, run_roled

Start = Callable[..., Roled]


def sleeper(name: str) -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n"


def command(roled: Roled, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a roled command next to a running roled, the way docker exec would."""
    return run_roled_in(roled.runtime_dir, *args, timeout=timeout)


def run_roled_in(
    runtime: Path, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return roled_next_to(runtime, *args, timeout=timeout)


# -- check ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_check_fails_like_a_run(layout: Layout, short_tmp: Path, case: str) -> None:
    """check gives a run's exact one-line error and exit 2, and leaves no runtime directory."""
    make, expected = CASES[case]
    env = make(layout)
    runtime = short_tmp / "rt"
    ran = run_roled(layout, runtime, **env)
    checked = run_roled(layout, runtime, "check", **env)
    assert checked.returncode == ran.returncode == 2
    assert checked.stderr == ran.stderr
    assert expected in checked.stderr
    assert checked.stdout == ""
    assert not runtime.exists()


def test_check_refuses_a_runtime_dir_a_run_would_refuse(layout: Layout, short_tmp: Path) -> None:
    """A runtime directory open to others fails check as it would fail the run."""
    layout.role("web", GOOD)
    runtime = short_tmp / "rt"
    runtime.mkdir()
    runtime.chmod(0o755)
    result = run_roled(layout, runtime, "check", ROLES="web")
    assert result.returncode == 2
    assert "has mode 0755, expected 0700" in result.stderr


def test_check_starts_nothing(layout: Layout, short_tmp: Path) -> None:
    """A valid config passes check, and no program of it runs."""
    marker = short_tmp / "ran"
    layout.role("web", f"[program:touch]\ncommand=/usr/bin/touch {marker}\nstartsecs=0\n")
    runtime = short_tmp / "rt"
    result = run_roled(layout, runtime, "check", ROLES="web")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "roled: config is valid: 1 program(s)\n"
    assert not marker.exists()
    assert not runtime.exists()


def test_check_refuses_a_main_program_that_does_not_run(layout: Layout, short_tmp: Path) -> None:
    """ROLED_MAIN naming no selected program is a config error, in check and in a run."""
    layout.role("web", GOOD)
    env = {"ROLES": "web", "ROLED_MAIN": "b"}
    checked = run_roled(layout, short_tmp / "rt", "check", **env)
    ran = run_roled(layout, short_tmp / "rt", **env)
    assert checked.returncode == ran.returncode == 2
    assert checked.stderr == ran.stderr
    assert (
        "ROLED_MAIN: 'b' is not a program, group or process of the selected roles (processes: a)"
        in ran.stderr
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROLED_EXIT_ON": "sometimes"}, "ROLED_EXIT_ON: unknown exit policy 'sometimes'"),
        ({"ROLED_MAX_RESTARTS": "5"}, "ROLED_MAX_RESTARTS: expected RESTARTS/SECONDS"),
        ({"ROLED_EXIT_WHEN_DONE": "maybe"}, "ROLED_EXIT_WHEN_DONE: expected true or false"),
    ],
)
def test_bad_policy_is_a_config_error(
    layout: Layout, short_tmp: Path, env: dict[str, str], message: str
) -> None:
    """A policy setting that means nothing is one line and exit 2."""
    layout.role("web", GOOD)
    result = run_roled(layout, short_tmp / "rt", "check", ROLES="web", **env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"roled: error: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_print_loads_in_supervisor_and_masks_passwords(layout: Layout, short_tmp: Path) -> None:
    """--print is a config supervisor loads, with the user's own passwords masked."""
    layout.write_main(
        "[supervisord]\n"
        f"[unix_http_server]\nfile={short_tmp}/user.sock\nusername=u\npassword=hunter2-unix\n"
        "[inet_http_server]\nport=127.0.0.1:19001\nusername=u\npassword=hunter2-inet\n"
    )
    layout.role("web", GOOD)
    runtime = short_tmp / "rt"
    # The printed config points into the runtime directory, which supervisor wants to exist.
    runtime.mkdir(mode=0o700)
    (runtime / "logs").mkdir()
    result = run_roled(layout, runtime, "check", "--print", ROLES="web")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert result.stdout.count("password = ********") == 2
    loaded = ServerOptions().read_config(StringIO(result.stdout))
    assert sorted(group.name for group in loaded.process_group_configs) == ["a", "roled_events"]
    assert [server["password"] for server in loaded.server_configs] == ["********"] * 2


# -- roles ------------------------------------------------------------------------------------


def test_roles_lists_every_role_and_marks_the_selected(layout: Layout, short_tmp: Path) -> None:
    """Each role with its sections and files; * marks what ROLES selects."""
    layout.role("web", sleeper("web"))
    layout.role("worker", sleeper("celery"), file="celery.conf")
    layout.role("worker", sleeper("beat"), file="beat.conf")
    result = run_roled(layout, short_tmp / "rt", "roles", ROLES="worker")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"roles in {layout.roles} (* = selected by ROLES=worker):",
        "  web",
        "    program:web  web.conf",
        "* worker",
        "    program:beat    worker/beat.conf",
        "    program:celery  worker/celery.conf",
    ]


def test_roles_lists_even_when_roles_names_an_unknown_one(layout: Layout, short_tmp: Path) -> None:
    """A mistyped ROLES still shows the roles, then fails with the run's error."""
    layout.role("web", GOOD)
    result = run_roled(layout, short_tmp / "rt", "roles", ROLES="wbe")
    assert result.returncode == 2
    assert "  web" in result.stdout.splitlines()
    assert result.stderr == "roled: error: unknown role 'wbe' (known roles: web)\n"


# -- status -----------------------------------------------------------------------------------


def test_status_is_0_when_everything_runs(layout: Layout, start_roled: Start) -> None:
    """Every program RUNNING: exit 0, one line per program with its uptime."""
    layout.role("web", sleeper("web") + sleeper("api"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    result = command(roled, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["api", "RUNNING"], ["web", "RUNNING"]]
    assert all("uptime" in line for line in lines)


def test_status_json(layout: Layout, start_roled: Start) -> None:
    """--json gives the verdict and each program for machines."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    result = command(roled, "status", "--json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["code"] == 0
    assert document["pid"] == roled.pid
    assert [(entry["name"], entry["state"], entry["ok"]) for entry in document["programs"]] == [
        ("web", "RUNNING", True)
    ]


def test_status_is_1_while_starting(layout: Layout, start_roled: Start) -> None:
    """A program still in its startsecs is not ready yet: exit 1."""
    slow = f"[program:slow]\ncommand={program('print_signals')}\nstartsecs=600\n"
    layout.role("web", sleeper("web") + slow)
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "slow": "STARTING"})
    result = command(roled, "status")
    assert result.returncode == 1
    assert "slow  STARTING" in result.stdout


def test_status_is_1_in_backoff(layout: Layout, start_roled: Start) -> None:
    """A program failing to start (BACKOFF) is not ready: exit 1 each time it is asked."""
    crash = f"[program:crash]\ncommand={program('exit_with', '3')}\nstartsecs=5\nstartretries=50\n"
    layout.role("web", sleeper("web") + crash)
    roled = start_roled(layout, roles="web")
    wait_until(lambda: command(roled, "status").returncode != 3, what="roled to answer")
    seen: list[subprocess.CompletedProcess[str]] = []

    def backoff_seen() -> bool:
        seen.append(command(roled, "status"))
        return "crash  BACKOFF" in seen[-1].stdout

    wait_until(backoff_seen, what="status to show BACKOFF")
    assert {result.returncode for result in seen} == {1}


@pytest.mark.parametrize(
    ("code", "expected", "line"),
    [(0, 0, "migrate  EXITED    exit status 0 (expected)"), (4, 1, "exit status 4 (not expected)")],
)
def test_status_of_a_finished_oneshot(
    layout: Layout, start_roled: Start, code: int, expected: int, line: str
) -> None:
    """A one-shot (autorestart=false) that exited 0 is fine, with 4 it is not."""
    oneshot = f"[program:migrate]\ncommand={program('exit_with', str(code))}\nstartsecs=0\n"
    layout.role("web", sleeper("web") + oneshot + "autorestart=false\n")
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "migrate": "EXITED"})
    result = command(roled, "status")
    assert result.returncode == expected, result.stdout
    assert line in result.stdout
    # supervisorctl calls any EXITED program "not running", which is why status exists.
    assert command(roled, "ctl", "status").returncode == 3


def test_status_is_3_when_roled_is_gone(layout: Layout, start_roled: Start) -> None:
    """No roled (stopped, or killed leaving its directory behind): exit 3, the unreachable code."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    roled.kill()
    stale = command(roled, "status")
    assert stale.returncode == 3
    assert f"roled (pid {roled.pid}) is gone" in stale.stderr
    second = start_roled(layout, roles="web")
    second.wait_states({"web": "RUNNING"})
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    gone = command(second, "status")
    assert gone.returncode == 3
    assert "no roled is running here" in gone.stderr


@pytest.fixture
def stopped() -> Iterator[list[int]]:
    """Pids a test SIGSTOPs; each gets SIGCONT at teardown, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_status_never_hangs_on_a_stopped_supervisord(
    layout: Layout, start_roled: Start, stopped: list[int]
) -> None:
    """A SIGSTOPped supervisord makes status give up with 3 at its timeout, not hang (roled
    answers that supervisord did not, or is itself still waiting for it)."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_HANG_TIMEOUT": "600"})
    roled.wait_states({"web": "RUNNING"})
    supervisord = roled.supervisord()
    stopped.append(supervisord.pid)
    supervisord.suspend()
    # The bound is the subprocess timeout: a hang fails the test instead of blocking it.
    result = command(roled, "status", "--timeout", "0.5", timeout=20)
    assert result.returncode == 3
    assert "did not answer within 0.5s" in result.stderr


def test_status_refuses_another_users_runtime_dir(short_tmp: Path) -> None:
    """Another uid's roled is refused with a message saying whose it is."""
    if os.getuid() != 0:
        pytest.skip("needs root to make a directory owned by another uid")
    runtime = short_tmp / "rt"
    runtime.mkdir(mode=0o700)
    (runtime / "instance.json").write_text('{"pid": 1, "socket": "x", "username": null}')
    os.chown(runtime, 65534, 65534)
    for args in (["status"], ["ctl", "status"]):
        result = run_roled_in(runtime, *args)
        assert result.returncode == 2
        assert "refused: that roled runs as uid 65534 and only that user" in result.stderr


# -- ctl --------------------------------------------------------------------------------------


def test_ctl_status_and_stop_start_round_trip(layout: Layout, start_roled: Start) -> None:
    """ctl reaches the instance: status lists the programs, stop and start one of them."""
    layout.role("web", sleeper("web") + sleeper("api"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    listed = command(roled, "ctl", "status")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [line.split()[:2] for line in listed.stdout.splitlines() if "roled" not in line] == [
        ["api", "RUNNING"],
        ["web", "RUNNING"],
    ]
    assert command(roled, "ctl", "stop", "web").stdout == "web: stopped\n"
    roled.wait_states({"web": "STOPPED", "api": "RUNNING"})
    assert command(roled, "status").returncode == 1
    assert command(roled, "ctl", "start", "web").stdout == "web: started\n"
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_ctl_without_roled_is_3(short_tmp: Path) -> None:
    """ctl with nothing running says so and exits with the unreachable code."""
    result = run_roled_in(short_tmp / "rt", "ctl", "status")
    assert result.returncode == 3
    assert "no roled is running here" in result.stderr
