"""roled as PID 1 under an arbitrary uid with no passwd entry, the root filesystem read-only and
only /tmp writable: the way OpenShift and ``runAsUser`` + ``readOnlyRootFilesystem`` run images.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from roled.assemble import Control
from roled.supervisor import Client
from tests.conftest import clean_environ, wait_until
from tests.portable import PortablePython

UID = 12345
REPO = Path(__file__).resolve().parents[2]


def _can_sandbox() -> bool:
    if not all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount")) or os.getuid():
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", "mount --bind / /"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_sandbox(), reason="needs root, unshare --mount --pid, setpriv and mount"
)


def _checkout_and_environment() -> list[Path]:
    """The checkout and the test's virtual environment, leaving out one inside the other."""
    folders = {REPO}
    if sys.prefix != sys.base_prefix:
        folders.add(Path(sys.prefix).resolve())
    return [
        folder
        for folder in sorted(folders)
        if not any(folder != other and folder.is_relative_to(other) for other in folders)
    ]


def sandbox_script(argv: list[str], env: dict[str, str]) -> str:
    """Shell lines run as root in new mount and PID namespaces, ending in exec of roled.

    The checkout and the test's virtual environment are hidden: roled runs from the portable
    copy, as it must wherever the checkout lives (even below a folder others cannot enter).
    """
    lines = ["set -e", "mount --bind / /", "mount -o remount,bind,ro /"]
    for hidden in _checkout_and_environment():
        lines.append(f"mount -t tmpfs -o mode=0700 tmpfs {shlex.quote(str(hidden))}")
    lines.append("mount -t tmpfs -o mode=1777 tmpfs /tmp")
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    command = shlex.join(argv)
    lines.append("cd /")
    lines.append(
        f"exec setpriv --reuid={UID} --regid={UID} --clear-groups env -i {assignments} {command}"
    )
    return "\n".join(lines) + "\n"


class Sandboxed:
    """The real roled run unprivileged in the sandbox, as PID 1 of its namespace."""

    def __init__(
        self,
        base: Path,
        portable: PortablePython,
        main: Path,
        roles: str,
        extra_env: dict[str, str],
    ) -> None:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLES": roles, **portable.env, **extra_env}
        argv = [portable.python, "-m", "roled", "-c", str(main)]
        script = base / "sandbox.sh"
        script.write_text(sandbox_script(argv, env))
        self.out = (base / "out.txt").open("w+b")
        self.err = (base / "err.txt").open("w+b")
        self.err_path = base / "err.txt"
        self.out_path = base / "out.txt"
        # stdout and stderr are root's files, as a container runtime's pipes are root's.
        self.popen = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "sh",
                str(script),
            ],
            env=clean_environ(),
            stdout=self.out,
            stderr=self.err,
            stdin=subprocess.DEVNULL,
        )

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def reason_line(self) -> str:
        """roled's ``exiting with code N: reason`` line (a failure report may follow it)."""
        lines = [line for line in self.stderr.splitlines() if " exiting with code " in line]
        return lines[-1] if lines else ""

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def roled(self) -> psutil.Process:
        def find() -> psutil.Process | None:
            for child in psutil.Process(self.popen.pid).children():
                with contextlib.suppress(psutil.Error):
                    if "roled" in child.cmdline():
                        return child
            return None

        return wait_until(find, 60, f"roled to start; stderr:\n{self.stderr}")  # type: ignore[return-value]

    def runtime(self) -> Path:
        """The runtime directory as seen from outside, through roled's own root."""
        return Path(f"/proc/{self.roled().pid}/root/tmp/roled-{UID}")

    def client(self) -> Client:
        runtime = self.runtime()
        data = json.loads((runtime / "instance.json").read_text())
        socket_path = runtime / Path(data["socket"]).name
        return Client(Control(socket_path, data["username"], data["password"]), 5)

    def wait_states(self, expected: dict[str, str]) -> None:
        def reached() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"roled exited {self.popen.returncode}:\n{self.stderr}")
            try:
                return {p.namespec: p.statename for p in self.client().processes()} == expected
            except Exception:
                return False

        wait_until(reached, 60, f"states {expected}; stderr:\n{self.stderr}")

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"roled did not exit:\n{self.stderr}") from None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(30)
        self.out.close()
        self.err.close()


@pytest.fixture
def base() -> Iterator[Path]:
    """A config folder outside /tmp (which the sandbox replaces), readable by the test uid."""
    path = Path(tempfile.mkdtemp(prefix="roled-unpriv-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


Start = Callable[..., Sandboxed]


@pytest.fixture
def sandboxed(base: Path, portable_python: PortablePython) -> Iterator[Start]:
    """Start roled in the sandbox from the portable copy; killed at teardown."""
    started: list[Sandboxed] = []

    def start(main: Path, roles: str, **env: str) -> Sandboxed:
        run = Sandboxed(base, portable_python, main, roles, env)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


def write_layout(base: Path, roles: dict[str, str]) -> Path:
    etc = base / "etc"
    (etc / "roles").mkdir(parents=True)
    main = etc / "supervisor.conf"
    main.write_text("[supervisord]\n")
    for name, text in roles.items():
        (etc / "roles" / f"{name}.conf").write_text(text)
    for path in [etc, etc / "roles", *etc.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return main


def test_unprivileged_read_only_runs_and_stops_with_0(
    base: Path, portable_python: PortablePython, sandboxed: Start
) -> None:
    """uid 12345, read-only root, only /tmp writable: RUNNING, then SIGTERM gives 0."""
    command = portable_python.program("print_signals")
    main = write_layout(base, {"web": f"[program:web]\ncommand={command}\nstartsecs=0\n"})
    run = sandboxed(main, "web")
    run.wait_states({"web": "RUNNING"})
    tree = [run.roled(), *run.roled().children(recursive=True)]
    assert {process.uids().real for process in tree} == {UID}
    run.roled().send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr
    assert not any(process.is_running() for process in tree)
    assert "exiting with code 0" in run.reason_line()
    # roled's own code never raises here (a program's output may hold anything).
    assert str(portable_python.root) not in run.stderr, run.stderr


def test_unprivileged_read_only_fatal_gives_1(
    base: Path, portable_python: PortablePython, sandboxed: Start
) -> None:
    """uid 12345, read-only root: a program that goes FATAL ends the container with 1."""
    command = portable_python.program("exit_with", "3")
    main = write_layout(base, {"bad": f"[program:broken]\ncommand={command}\nstartretries=0\n"})
    run = sandboxed(main, "bad")
    assert run.wait() == 1, run.stderr
    assert "program 'broken' is FATAL" in run.reason_line()


def test_sandbox_is_read_only_unprivileged_and_without_the_checkout(base: Path) -> None:
    """Negative control: in the sandbox the config folder and the checkout are out of reach."""
    probe = base / "probe.sh"
    probe.write_text(
        f"touch {base}/etc/x 2>/dev/null && echo WROTE-ETC; touch /tmp/x && echo WROTE-TMP\n"
        + "".join(
            f"ls {shlex.quote(str(folder))}/* >/dev/null 2>&1 && echo SAW {folder}\n"
            for folder in _checkout_and_environment()
        )
        + "id -u\n"
    )
    probe.chmod(0o755)
    main = write_layout(base, {})
    (base / "s.sh").write_text(sandbox_script(["sh", str(probe)], {"PATH": "/usr/bin:/bin"}))
    result = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", str(base / "s.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert main.exists()
    assert (REPO / "pyproject.toml").exists()
    assert result.stdout.split() == ["WROTE-TMP", str(UID)], result.stderr


def test_unprivileged_sample_runs(base: Path, sandboxed: Start) -> None:
    """The README's sample runs unprivileged on a read-only root: every role RUNNING, exit 0."""
    sample = base / "sample"
    shutil.copytree(REPO / "samples" / "basic", sample)
    for path in [sample, *sample.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = sandboxed(sample / "supervisor.conf", "web,worker", WEB_PORT=str(port))
    run.wait_states({"web": "RUNNING", "queue": "RUNNING", "scheduler": "RUNNING"})
    run.roled().send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr
