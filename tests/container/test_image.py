"""The sample image on a real Docker engine: roled as PID 1, stop, FATAL, read-only, --init."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .conftest import Containers
from .engine import Engine, wait_until
from .samples import WEB_PORT, role_programs

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10
EXIT_TIMEOUT = 60.0
BROKEN_ROLE = Path(__file__).parent / "roles" / "broken.conf"
# Mounted next to the sample roles, so ROLES=broken finds it like any other role.
BROKEN_MOUNT = f"--volume={BROKEN_ROLE}:/etc/supervisor/roles/broken.conf:ro"

WEB_REQUEST = (
    "import urllib.request; "
    f"r = urllib.request.urlopen('http://127.0.0.1:{WEB_PORT}/', timeout=5); "
    "print(r.status)"
)

INIT_MODES = [
    pytest.param((), id="roled-pid1"),
    # Docker's --init runs docker-init (tini) as PID 1 with roled as its child.
    pytest.param(("--init",), id="docker-init"),
]


def test_base_image_runs_python(engine: Engine, image: str) -> None:
    """The sample image is built and runs python3 without roled in the way."""
    result = engine.run(
        "run", "--rm", "--network=none", "--entrypoint=python3", image, "-c", "print(1)"
    )
    assert result.stdout.strip() == "1"


def test_roled_is_pid1_in_exec_form(engine: Engine, image: str) -> None:
    """The image's entry point is roled itself, not a shell that would swallow SIGTERM."""
    entrypoint = engine.run("inspect", "--format", "{{json .Config.Entrypoint}}", image).stdout
    assert entrypoint.strip() == '["roled"]'
    user = engine.run("inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user, "the image runs as root"
    assert user.split(":")[0] not in {"0", "root"}


def test_web_answers_on_loopback(containers: Containers) -> None:
    """ROLES=web: the web program serves on 127.0.0.1 inside the container and roled status is 0."""
    container = containers.run(roles="web")
    containers.wait_healthy(container, START_TIMEOUT)
    code, out = containers.exec(container, "python3", "-c", WEB_REQUEST)
    assert (code, out.strip()) == (0, "200")
    code, out = containers.exec(container, "roled", "status")
    assert code == 0, out


def test_worker_role_runs_only_worker_programs(containers: Containers) -> None:
    """ROLES=worker: the worker programs run and nothing listens on the web port."""
    container = containers.run(roles="worker")
    containers.wait_healthy(container, START_TIMEOUT)
    code, out = containers.exec(container, "python3", "-c", WEB_REQUEST)
    assert code != 0, out


@pytest.mark.parametrize("init", INIT_MODES)
def test_docker_stop_is_clean(containers: Containers, init: tuple[str, ...]) -> None:
    """docker stop: exit 0 well before Docker's SIGKILL, and every program's stop is logged."""
    container = containers.run(*init, roles="web,worker")
    containers.wait_healthy(container, START_TIMEOUT)
    started = time.monotonic()
    containers.engine.run("stop", f"--time={STOP_TIMEOUT}", container, timeout=STOP_TIMEOUT + 30)
    elapsed = time.monotonic() - started
    state = containers.state(container)
    logs = containers.logs(container)
    assert state["ExitCode"] == 0, logs
    assert elapsed < STOP_TIMEOUT * 0.7, f"stop took {elapsed:.1f}s\n{logs}"
    for program in role_programs("web") + role_programs("worker"):
        assert re.search(rf"stopped: {re.escape(program)} \(", logs), f"{program}:\n{logs}"


@pytest.mark.parametrize("init", INIT_MODES)
def test_fatal_program_exits_1(containers: Containers, init: tuple[str, ...]) -> None:
    """A program that goes FATAL makes the container exit 1 by itself, naming the program."""
    container = containers.run(*init, BROKEN_MOUNT, roles="broken")
    state = containers.wait_exited(container, EXIT_TIMEOUT)
    logs = containers.logs(container)
    assert state["ExitCode"] == 1, logs
    roled_lines = [line for line in logs.splitlines() if line.startswith("roled:")]
    assert roled_lines, logs
    assert "broken" in roled_lines[-1], logs


def test_restart_policy_restarts_after_fatal(containers: Containers) -> None:
    """With --restart on-failure:2, Docker restarts the FATAL container until RestartCount is 2."""
    container = containers.run("--restart=on-failure:2", BROKEN_MOUNT, roles="broken")

    def gave_up() -> bool:
        state = containers.state(container)
        return containers.restart_count(container) == 2 and state["Status"] == "exited"

    assert wait_until(gave_up, EXIT_TIMEOUT * 3, interval=0.5), containers.logs(container)
    assert containers.state(container)["ExitCode"] == 1


def test_read_only_root_and_uid_without_passwd_entry(containers: Containers) -> None:
    """--read-only --tmpfs /tmp --user 12345:0: every program gets to RUNNING; status works."""
    container = containers.run("--read-only", "--tmpfs=/tmp", "--user=12345:0", roles="web,worker")
    containers.wait_healthy(container, START_TIMEOUT)
    code, out = containers.exec(container, "id", "-u")
    assert out.strip() == "12345"
    code, out = containers.exec(container, "python3", "-c", WEB_REQUEST)
    assert (code, out.strip()) == (0, "200")


def test_termination_log_names_the_failed_program(containers: Containers, report_dir: Path) -> None:
    """ROLED_TERMINATION_LOG on a mounted folder: the report names the FATAL program."""
    container = containers.run(
        BROKEN_MOUNT,
        f"--volume={report_dir}:/report",
        roles="broken",
        env={"ROLED_TERMINATION_LOG": "/report/termination-log"},
    )
    state = containers.wait_exited(container, EXIT_TIMEOUT)
    assert state["ExitCode"] == 1, containers.logs(container)
    report = report_dir / "termination-log"
    assert report.is_file(), containers.logs(container)
    assert "broken" in report.read_text()
