"""Shared test helpers: config layouts on disk, and the real roled command run and torn down."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import psutil
import pytest

from roled.model import Control
from roled.supervisor import Client

PROGRAMS = Path(__file__).parent / "programs"
PYTHON = sys.executable


def program(name: str, *args: str, python: str = PYTHON, programs: Path = PROGRAMS) -> str:
    """A supervisord ``command=`` line running one of tests/programs with this interpreter."""
    return shlex.join([python, str(programs / f"{name}.py"), *args]).replace("%", "%%")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true: CI is set up to run every test."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true, but {reason}", pytrace=False)
    pytest.skip(reason)


def wait_until(
    condition: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> object:
    """Poll condition until it is truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Layout:
    """A config folder in the layout of DESIGN.md, written by the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.main = root / "supervisor.conf"
        self.roles = root / "roles"
        self.common_path = root / "common.conf"
        root.mkdir(parents=True, exist_ok=True)
        self.write_main("[supervisord]\n")

    def write_main(self, text: str) -> Path:
        self.main.write_text(textwrap.dedent(text))
        return self.main

    def common(self, text: str) -> Path:
        self.common_path.write_text(textwrap.dedent(text))
        return self.common_path

    def role(self, name: str, text: str, file: str | None = None) -> Path:
        """Write a role file: roles/NAME.conf, or roles/NAME/FILE when file is given."""
        path = self.roles / f"{name}.conf" if file is None else self.roles / name / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short private temp dir: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "etc")


def clean_environ(**extra: str) -> dict[str, str]:
    """The test's environment without any roled setting, plus extra."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ROLED_") and key != "ROLES"
    }
    env.update(extra)
    return env


def roled_next_to(
    runtime: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a roled command next to a running roled (its runtime directory given), the way
    docker exec would."""
    return subprocess.run(
        [sys.executable, "-m", "roled", *args],
        env=clean_environ(ROLED_RUNTIME_DIR=str(runtime), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class Roled:
    """The real roled command, optionally as PID 1 of a new PID namespace."""

    def __init__(
        self,
        layout: Layout,
        runtime_dir: Path,
        output_dir: Path,
        *args: str,
        roles: str | None = None,
        env: dict[str, str] | None = None,
        pid1: bool = False,
        wrapper: tuple[str, ...] = (),
        stdout_pipe: bool = False,
        python: str = PYTHON,
    ) -> None:
        self.runtime_dir = runtime_dir
        self.out_path = output_dir / "stdout.txt"
        self.err_path = output_dir / "stderr.txt"
        environ = clean_environ(ROLED_RUNTIME_DIR=str(runtime_dir), **(env or {}))
        if roles is not None:
            environ["ROLES"] = roles
        argv = [*wrapper, python, "-m", "roled", "-c", str(layout.main), *args]
        if pid1:
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
        with self.out_path.open("ab") as out, self.err_path.open("ab") as err:
            # A pipe nobody reads stands for a log collector that has stalled.
            self.popen = subprocess.Popen(
                argv,
                env=environ,
                stdout=subprocess.PIPE if stdout_pipe else out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.pid1 = pid1

    @property
    def pid(self) -> int:
        """roled's pid as seen from here (the child of unshare when it runs as PID 1)."""
        if not self.pid1:
            return self.popen.pid

        def child() -> int | None:
            children = psutil.Process(self.popen.pid).children()
            return children[0].pid if children else None

        return int(wait_until(child, what="roled to start in its namespace"))  # type: ignore[arg-type]

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""

    def reason_line(self) -> str:
        """roled's ``exiting with code N: reason`` line (a failure report may follow it)."""
        lines = [line for line in self.stderr.splitlines() if " exiting with code " in line]
        return lines[-1] if lines else ""

    def report(self) -> str:
        """What roled printed from its reason line on: the failure report, as on stderr."""
        text = self.stderr
        start = text.rfind("roled: INFO exiting with code ")
        return text[start:] if start >= 0 else ""

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"roled did not exit within {timeout}s:\n{self.stderr}") from None

    def client(self, timeout: float = 5.0) -> Client:
        data = json.loads((self.runtime_dir / "instance.json").read_text())
        control = Control(Path(data["socket"]), data["username"], data["password"])
        return Client(control, timeout)

    def states(self) -> dict[str, str]:
        return {info.namespec: info.statename for info in self.client().processes()}

    def wait_states(self, expected: dict[str, str], timeout: float = 20.0) -> None:
        def reached() -> bool:
            if not (self.runtime_dir / "instance.json").exists():
                return False
            try:
                return self.states() == expected
            except Exception:
                return False

        wait_until(reached, timeout, f"states {expected}; stderr:\n{self.stderr}")

    def supervisord(self) -> psutil.Process:
        def find() -> psutil.Process | None:
            for child in psutil.Process(self.pid).children():
                if {"supervisor.supervisord", "roled.spawned"} & set(child.cmdline()):
                    return child
            return None

        return wait_until(find, what="supervisord to start")  # type: ignore[return-value]

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL roled and everything under it."""
        processes = self.tree()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)
        if self.popen.poll() is None:
            self.popen.wait(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the test item, so fixtures can see whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_roled(short_tmp: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Roled]]:
    """Start the real roled command; whatever it leaves is killed at teardown.

    When the test failed, each roled's output is printed, so a failure in CI explains itself.
    """
    started: list[Roled] = []

    def start(
        layout: Layout, *args: str, runtime_dir: Path | None = None, **kwargs: object
    ) -> Roled:
        folder = short_tmp / str(len(started))
        folder.mkdir(mode=0o700)
        roled = Roled(layout, runtime_dir or folder / "rt", folder, *args, **kwargs)  # type: ignore[arg-type]
        started.append(roled)
        return roled

    yield start
    for roled in started:
        roled.kill()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for index, roled in enumerate(started):
            print(f"--- roled #{index} stderr (tail) ---\n{roled.stderr[-6000:]}")
            print(f"--- roled #{index} stdout (tail) ---\n{roled.stdout[-2000:]}")


SPY = PROGRAMS / "spy"


def spy_environ(marker: Path) -> dict[str, str]:
    """Variables that make every supervisord started below record itself in marker."""
    path = os.pathsep.join(filter(None, [str(SPY), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "ROLED_TEST_SPY": str(marker)}


def listening(processes: list[psutil.Process]) -> list[tuple[int, object]]:
    """(pid, address) of every TCP or UDP socket in LISTEN state held by these processes."""
    found: list[tuple[int, object]] = []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        found.extend(
            (process.pid, conn.laddr)
            for conn in connections
            if conn.status == psutil.CONN_LISTEN or not conn.raddr
        )
    return found
