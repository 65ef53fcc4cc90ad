"""Fixtures for the Docker tests: a private engine, a registry-free base image, the sample image."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

from .engine import (
    DockerUnavailable,
    Engine,
    build_arguments_from_environment,
    build_base_image,
    check_can_run_docker,
    repo_context,
    start_engine,
    stop_engine,
    wait_until,
)
from .samples import DOCKERFILE, REPO

# Every container the tests make carries it, so teardown finds leftovers of a failed test.
LABEL = "roled-test=1"
SAMPLE_TAG = "roled-sample:test"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A dockerd of our own, stopped by its PID at the end of the session."""
    try:
        check_can_run_docker()
    except DockerUnavailable as exc:
        skip_or_fail(f"Docker cannot run here: {exc}")
    started = start_engine()
    try:
        yield started
    finally:
        leftovers = started.run("ps", "-aq", "--filter", f"label={LABEL}", check=False)
        if leftovers.stdout.split():
            started.run("rm", "-f", *leftovers.stdout.split(), check=False, timeout=120)
        stop_engine(started)


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    """A Debian image made by debootstrap and docker import: no registry involved."""
    work = engine.base / "work"
    work.mkdir()
    started = time.monotonic()
    tag = build_base_image(engine, work)
    print(f"base image {tag} ready in {time.monotonic() - started:.1f}s")
    return tag


@pytest.fixture(scope="session")
def image(engine: Engine, base_image: str) -> str:
    """The sample image, built from the repository root as a user would build it."""
    started = time.monotonic()
    engine.run(
        "build",
        # pip inside the build reaches the package index; the engine has no bridge network.
        "--network=host",
        f"--file={DOCKERFILE.relative_to(REPO)}",
        f"--build-arg=BASE_IMAGE={base_image}",
        *build_arguments_from_environment(),
        f"--tag={SAMPLE_TAG}",
        "-",
        stdin=repo_context(REPO),
        timeout=900,
    )
    print(f"sample image built in {time.monotonic() - started:.1f}s")
    return SAMPLE_TAG


class Containers:
    """Starts containers of the sample image and removes every one of them at teardown."""

    def __init__(self, engine: Engine, image: str) -> None:
        self.engine = engine
        self.image = image
        self.started: list[str] = []

    def run(
        self,
        *options: str,
        roles: str,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (),
    ) -> str:
        """docker run -d the sample image for roles; options go before the image name."""
        name = f"roled-test-{uuid.uuid4().hex[:8]}"
        variables = {"ROLES": roles, **(env or {})}
        environment = [f"--env={key}={value}" for key, value in variables.items()]
        self.started.append(name)
        self.engine.run(
            "run",
            "--detach",
            f"--name={name}",
            f"--label={LABEL}",
            # The default: no network but loopback. A test that needs more says so.
            "--network=none",
            *environment,
            *options,
            self.image,
            *command,
        )
        return name

    def exec(self, container: str, *argv: str, timeout: float = 30) -> tuple[int, str]:
        result = self.engine.run("exec", container, *argv, check=False, timeout=timeout)
        return result.returncode, result.stdout + result.stderr

    def state(self, container: str) -> dict[str, object]:
        out = self.engine.run("inspect", "--format", "{{json .State}}", container).stdout
        state: dict[str, object] = json.loads(out)
        return state

    def restart_count(self, container: str) -> int:
        out = self.engine.run("inspect", "--format", "{{.RestartCount}}", container).stdout
        return int(out.strip())

    def logs(self, container: str) -> str:
        result = self.engine.run("logs", container, check=False)
        return result.stdout + result.stderr

    def wait_healthy(self, container: str, timeout: float) -> None:
        """Wait until `roled status` inside the container says every program is RUNNING."""
        last: list[str] = []

        def healthy() -> bool:
            if not self.state(container)["Running"]:
                return True  # reported below, with the logs
            code, out = self.exec(container, "roled", "status", timeout=15)
            last[:] = [f"roled status exited {code}: {out.strip()}"]
            # 1 (not every program RUNNING yet) and 3 (roled not up yet) may pass;
            # anything else (a usage error, no such command) never will.
            if code not in {0, 1, 3}:
                raise AssertionError(f"{container}: {last[0]}")
            return code == 0

        ok = wait_until(healthy, timeout, interval=0.5)
        state = self.state(container)
        if not ok or not state["Running"]:
            detail = last[0] if last else "never asked"
            message = (
                f"{container} not healthy within {timeout:g}s (running={state['Running']}, "
                f"exit={state['ExitCode']}); {detail}\nlogs:\n{self.logs(container)}"
            )
            raise AssertionError(message)

    def wait_exited(self, container: str, timeout: float) -> dict[str, object]:
        if not wait_until(lambda: not self.state(container)["Running"], timeout, interval=0.3):
            message = f"{container} still running after {timeout:g}s; logs:\n{self.logs(container)}"
            raise AssertionError(message)
        return self.state(container)

    def remove_all(self) -> None:
        if self.started:
            self.engine.run("rm", "--force", *self.started, check=False, timeout=120)


@pytest.fixture
def containers(engine: Engine, image: str) -> Iterator[Containers]:
    made = Containers(engine, image)
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture
def report_dir(engine: Engine) -> Path:
    """A host folder to bind-mount, writable by the image's non-root user."""
    path = engine.base / f"report-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    path.chmod(0o777)
    return path
