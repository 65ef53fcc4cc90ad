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
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import supervisor

import roled
from roled.assemble import Control
from roled.supervisor import Client
from tests.conftest import PROGRAMS, clean_environ, program, wait_until

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


def _needed() -> list[Path]:
    """Everything the unprivileged roled must still read: interpreter, packages, test programs."""
    paths = {
        Path(sys.executable).resolve().parent.parent,
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix),
        Path(roled.__file__).resolve().parent,
        Path(supervisor.__file__).resolve().parent,
        Path(psutil.__file__).resolve().parent,
        PROGRAMS.resolve(),
    }
    return sorted(paths)


def _hidden_roots(needed: list[Path]) -> list[Path]:
    """Folders the sandbox covers with a fresh tmpfs: /tmp, and any the uid cannot traverse."""
    roots = {Path("/tmp")}
    for path in needed:
        for ancestor in reversed(path.parents):
            if ancestor != Path("/") and not os.stat(ancestor).st_mode & stat.S_IXOTH:
                roots.add(ancestor)
                break
    return sorted(roots)


def sandbox_script(base: Path, argv: list[str], env: dict[str, str]) -> str:
    """Shell lines run as root in new mount and PID namespaces, ending in exec of roled.

    What the sandbox covers (a fresh /tmp, a home folder closed to others) is re-bound where
    the interpreter or the packages live below it, so only what roled needs shows through.
    """
    needed = _needed()
    lines = ["set -e", "mount --bind / /", "mount -o remount,bind,ro /"]
    for index, root in enumerate(_hidden_roots(needed)):
        stash = base / f"stash{index}"
        stash.mkdir()
        children = sorted(
            {path.relative_to(root).parts[0] for path in needed if path.is_relative_to(root)}
        )
        lines.append(f"mount --bind {shlex.quote(str(root))} {stash}")
        lines.append(f"mount -t tmpfs -o mode=1777 tmpfs {shlex.quote(str(root))}")
        for child in children:
            target = shlex.quote(str(root / child))
            lines.append(f"mkdir -p {target} && mount --bind {stash / child} {target}")
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    command = shlex.join(argv)
    lines.append("cd /")
    lines.append(
        f"exec setpriv --reuid={UID} --regid={UID} --clear-groups env -i {assignments} {command}"
    )
    return "\n".join(lines) + "\n"


class Sandboxed:
    """The real roled run unprivileged in the sandbox, as PID 1 of its namespace."""

    def __init__(self, base: Path, main: Path, roles: str, extra_env: dict[str, str]) -> None:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLES": roles, **extra_env}
        argv = [sys.executable, "-m", "roled", "-c", str(main)]
        script = base / "sandbox.sh"
        script.write_text(sandbox_script(base, argv, env))
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


@pytest.fixture
def sandboxed(base: Path) -> Iterator[list[Sandboxed]]:
    started: list[Sandboxed] = []
    yield started
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
    base: Path, sandboxed: list[Sandboxed]
) -> None:
    """uid 12345, read-only root, only /tmp writable: RUNNING, then SIGTERM gives 0."""
    main = write_layout(
        base, {"web": f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n"}
    )
    run = Sandboxed(base, main, "web", {})
    sandboxed.append(run)
    run.wait_states({"web": "RUNNING"})
    tree = [run.roled(), *run.roled().children(recursive=True)]
    assert {process.uids().real for process in tree} == {UID}
    run.roled().send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr
    assert not any(process.is_running() for process in tree)
    assert "exiting with code 0" in run.reason_line()
    # roled's own code never raises here (a program's output may hold anything).
    assert str(Path(roled.__file__).parent) not in run.stderr, run.stderr


def test_unprivileged_read_only_fatal_gives_1(base: Path, sandboxed: list[Sandboxed]) -> None:
    """uid 12345, read-only root: a program that goes FATAL ends the container with 1."""
    main = write_layout(
        base, {"bad": f"[program:broken]\ncommand={program('exit_with', '3')}\nstartretries=0\n"}
    )
    run = Sandboxed(base, main, "bad", {})
    sandboxed.append(run)
    assert run.wait() == 1, run.stderr
    assert "program 'broken' is FATAL" in run.reason_line()


def test_sandbox_is_read_only_and_unprivileged(base: Path, sandboxed: list[Sandboxed]) -> None:
    """Negative control: in the sandbox the config folder cannot be written and uid is 12345."""
    probe = base / "probe.sh"
    probe.write_text(
        f"touch {base}/etc/x 2>/dev/null && echo WROTE-ETC; touch /tmp/x && echo WROTE-TMP; id -u\n"
    )
    probe.chmod(0o755)
    main = write_layout(base, {})
    script = sandbox_script(base, ["sh", str(probe)], {"PATH": "/usr/bin:/bin"})
    (base / "s.sh").write_text(script)
    result = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", str(base / "s.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert main.exists()
    assert result.stdout.split() == ["WROTE-TMP", str(UID)], result.stderr


def test_unprivileged_sample_runs(base: Path, sandboxed: list[Sandboxed]) -> None:
    """The README's sample runs unprivileged on a read-only root: every role RUNNING, exit 0."""
    sample = base / "sample"
    shutil.copytree(REPO / "samples" / "basic", sample)
    for path in [sample, *sample.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = Sandboxed(base, sample / "supervisor.conf", "web,worker", {"WEB_PORT": str(port)})
    sandboxed.append(run)
    run.wait_states({"web": "RUNNING", "queue": "RUNNING", "scheduler": "RUNNING"})
    run.roled().send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr
