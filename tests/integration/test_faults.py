"""Faults around a running roled: its listener killed, its runtime directory deleted or full,
programs that close their output, fork hundreds of children, or come by the hundred.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import roled
from roled.assemble import LISTENER
from tests.conftest import Layout, Roled, clean_environ, program, spy_environ, wait_until

Start = Callable[..., Roled]
ROLED_PACKAGE = Path(roled.__file__).parent


def sleeper(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n{extra}\n"


def late_failure(name: str = "late") -> str:
    """A program started only on request, that then fails at once: a FATAL the test controls."""
    return (
        f"[program:{name}]\ncommand={program('exit_with', '3')}\n"
        "autostart=false\nstartretries=0\nstartsecs=1\n"
        # No log file: it would live in the runtime directory, which one test deletes.
        "stdout_logfile=NONE\nstderr_logfile=NONE\n"
    )


def start_over_rpc(roled: Roled, name: str) -> None:
    client = roled.client()
    try:
        client._call("supervisor.startProcess", name, False)
    finally:
        client.close()


def gone(processes: list[psutil.Process]) -> bool:
    return not any(process.is_running() and process.status() != "zombie" for process in processes)


def listener_pid(roled: Roled) -> int:
    return roled.client().process(LISTENER).pid


# -- roled's event listener ---------------------------------------------------------------------


def test_listener_killed_repeatedly_a_later_fatal_still_exits_1(
    layout: Layout, start_roled: Start
) -> None:
    """After its listener was SIGKILLed five times, roled still sees a FATAL and exits 1."""
    layout.role("web", sleeper("web") + late_failure())
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "late": "STOPPED"})
    for _ in range(5):
        before = int(wait_until(lambda: listener_pid(roled), what="a running listener"))  # type: ignore[arg-type]
        os.kill(before, signal.SIGKILL)
        wait_until(
            lambda before=before: listener_pid(roled) not in (0, before),  # type: ignore[misc]
            what="supervisord to restart the listener",
        )
    start_over_rpc(roled, "late")
    assert roled.wait(60) == 1
    assert roled.reason_line() == "roled: INFO exiting with code 1: program 'late' is FATAL"
    assert not roled.runtime_dir.exists()


def test_listener_stopped_for_good_fatal_is_seen_by_polling(
    layout: Layout, start_roled: Start
) -> None:
    """With no listener at all, the liveness check's full sync still finds the FATAL."""
    layout.role("web", sleeper("web") + late_failure())
    roled = start_roled(layout, "--hang-timeout", "2", roles="web")
    roled.wait_states({"web": "RUNNING", "late": "STOPPED"})
    client = roled.client()
    client._call("supervisor.stopProcess", LISTENER, True)
    start_over_rpc(roled, "late")
    assert roled.wait(60) == 1
    assert "'late' is FATAL" in roled.reason_line()


def test_stop_started_by_a_sync_keeps_polling_quickly(layout: Layout, start_roled: Start) -> None:
    """A FATAL found by the periodic sync stops everything well within the deadline.

    With no listener, states arrive only by sync; a stop started from a sync once waited for
    the next idle check (hang_timeout / 2 = 10 s here), past the 3 s deadline: exit 4.
    """
    layout.role("web", sleeper("web") + late_failure())
    roled = start_roled(layout, "--hang-timeout", "20", "--shutdown-timeout", "3", roles="web")
    roled.wait_states({"web": "RUNNING", "late": "STOPPED"})
    roled.client()._call("supervisor.stopProcess", LISTENER, True)
    start_over_rpc(roled, "late")
    assert roled.wait(60) == 1
    assert "'late' is FATAL" in roled.reason_line()


# -- the runtime directory deleted while running ---------------------------------------------


@pytest.mark.parametrize("end", ["fatal", "sigterm"])
def test_runtime_dir_deleted_while_running(layout: Layout, start_roled: Start, end: str) -> None:
    """rm -rf of the runtime directory: roled keeps supervising and exits 1 or 0 as it should."""
    layout.role("web", sleeper("web") + late_failure())
    roled = start_roled(layout, "--hang-timeout", "2", roles="web")
    roled.wait_states({"web": "RUNNING", "late": "STOPPED"})
    client = roled.client()
    # The test's own connection is made now: the socket's name is about to disappear.
    assert client.state() == "RUNNING"
    tree = roled.tree()[1:]
    shutil.rmtree(roled.runtime_dir)
    # Longer than the hang timeout: a roled that lost supervisord would have given up by now.
    with contextlib.suppress(subprocess.TimeoutExpired):
        roled.popen.wait(5)
    assert roled.popen.poll() is None, roled.stderr
    if end == "fatal":
        client._call("supervisor.startProcess", "late", False)
        assert roled.wait(60) == 1, roled.stderr
        assert "'late' is FATAL" in roled.reason_line()
    else:
        roled.send(signal.SIGTERM)
        assert roled.wait(60) == 0, roled.stderr
    assert gone(tree)
    assert not roled.runtime_dir.exists()
    # The next start on the same runtime directory is a clean one.
    again = start_roled(layout, roles="web", runtime_dir=roled.runtime_dir)
    again.wait_states({"web": "RUNNING", "late": "STOPPED"})
    again.send(signal.SIGTERM)
    assert again.wait() == 0


# -- a full filesystem at start -------------------------------------------------------------------


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(
    not _can_mount(), reason="unshare --mount and mount -t tmpfs are not permitted here"
)


def run_on_small_tmpfs(layout: Layout, mountpoint: Path, options: str, fill: bool) -> str:
    """Run roled with its runtime directory on a small tmpfs; its output and what is left."""
    runtime = mountpoint / "rt"
    roled = subprocess.list2cmdline([sys.executable, "-m", "roled", "-c", str(layout.main)])
    filler = f"dd if=/dev/zero of={mountpoint}/fill bs=4096 2>/dev/null; " if fill else ""
    script = (
        f"mount -t tmpfs -o {options},mode=0755 tmpfs {mountpoint} && "
        f"touch {mountpoint}/fill; {filler}"
        f"cd / && ROLED_RUNTIME_DIR={runtime} {roled}; "
        f"echo EXIT=$?; echo LEFT=$(ls -A {mountpoint})"
    )
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            script,
        ],
        # A supervisord that cannot bind its socket never answers: give up on it quickly.
        env=clean_environ(ROLES="web", ROLED_HANG_TIMEOUT="3"),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return result.stdout + result.stderr


@needs_mount
def test_full_filesystem_at_start_is_a_clear_error_and_leaves_nothing(
    layout: Layout, short_tmp: Path
) -> None:
    """Out of space or inodes at any step of start-up: exit 2 or 3, a clear reason, nothing left."""
    layout.role("web", "[program:a]\ncommand=/nonexistent/binary\nstartretries=0\n")
    mountpoint = short_tmp / "mnt"
    mountpoint.mkdir()
    outcomes: list[int] = []
    cases = [("size=64k", True)] + [
        (f"size=1m,nr_inodes={n}", False) for n in (3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 32)
    ]
    for options, fill in cases:
        output = run_on_small_tmpfs(layout, mountpoint, options, fill)
        code = int(output.split("EXIT=", 1)[1].split()[0])
        outcomes.append(code)
        assert "LEFT=fill\n" in output, (options, output)
        # supervisord may crash with its own traceback (exit 3); roled never does.
        assert str(ROLED_PACKAGE) not in output, (options, output)
        if code == 2:
            errors = [line for line in output.splitlines() if line.startswith("roled: error:")]
            assert len(errors) == 1, output
            assert "No space left on device" in errors[0], output
        elif code == 3:
            # supervisord crashed, or (no inode for its socket) loops without ever answering.
            last = [line for line in output.splitlines() if line.startswith("roled: ")][-1]
            assert last.startswith("roled: INFO exiting with code 3: supervisord "), output
            assert "failed to start" in last or "did not start answering" in last, output
        else:
            # Enough room: the run went as far as the failing program.
            assert code == 1, (options, output)
    assert outcomes[0] == 2
    assert 1 in outcomes, "no case had room enough to start"


# -- programs that misbehave ------------------------------------------------------------------


def test_program_closing_its_output_keeps_running_and_stops_cleanly(
    layout: Layout, start_roled: Start
) -> None:
    """A program that closes stdout and stderr stays RUNNING; SIGTERM stops it and exits 0."""
    layout.role("web", f"[program:mute]\ncommand={program('close_output')}\nstartsecs=0\n")
    roled = start_roled(layout, roles="web")
    roled.wait_states({"mute": "RUNNING"})
    pid = roled.client().process("mute").pid
    wait_until(
        lambda: (
            not {1, 2} & {f.fd for f in psutil.Process(pid).open_files()}
            and len(os.listdir(f"/proc/{pid}/fd")) <= 1
        ),
        what="the program to close its output",
    )
    assert roled.states() == {"mute": "RUNNING"}
    assert roled.client().process("mute").pid == pid
    tree = roled.tree()[1:]
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert gone(tree)


def test_program_with_500_children_stops_cleanly_and_leaves_nothing(
    layout: Layout, start_roled: Start
) -> None:
    """500 children orphaned by their parent's stop are swept; roled exits 0."""
    layout.role(
        "web",
        f"[program:forker]\ncommand={program('many_children', '500')}\nstartsecs=0\n"
        "stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n",
    )
    roled = start_roled(layout, "--kill-grace", "10", roles="web")
    wait_until(lambda: "ready 500" in roled.stdout, 120, "500 children")
    tree = roled.tree()[1:]
    assert len(tree) >= 500
    roled.send(signal.SIGTERM)
    assert roled.wait(120) == 0, roled.stderr[-3000:]
    assert gone(tree)


def test_500_programs_all_run_and_stop_cleanly(layout: Layout, start_roled: Start) -> None:
    """500 programs at once all reach RUNNING, and a SIGTERM stops every one: exit 0."""
    names = [f"p{index:03d}" for index in range(500)]
    layout.role(
        "web",
        "".join(
            f"[program:{name}]\ncommand=/bin/sleep 100000\nstartsecs=0\n"
            "stdout_logfile=NONE\nstderr_logfile=NONE\n"
            for name in names
        ),
    )
    roled = start_roled(layout, roles="web")
    roled.wait_states(dict.fromkeys(names, "RUNNING"), timeout=180)
    tree = roled.tree()[1:]
    assert len(tree) >= 500
    roled.send(signal.SIGTERM)
    assert roled.wait(180) == 0, roled.stderr[-3000:]
    assert gone(tree)
    assert not roled.runtime_dir.exists()


# -- a stop during start-up -------------------------------------------------------------------


def test_sigterm_while_supervisord_starts_exits_0(layout: Layout, short_tmp: Path) -> None:
    """A stop requested before supervisord is up is still a clean stop: exit 0, nothing left."""
    layout.role("web", sleeper("web"))
    spy, runtime = short_tmp / "spy", short_tmp / "rt"
    popen = subprocess.Popen(
        [sys.executable, "-m", "roled", "-c", str(layout.main)],
        env=clean_environ(ROLES="web", ROLED_RUNTIME_DIR=str(runtime), **spy_environ(spy)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The spy writes as supervisord's interpreter starts, before its signal handlers exist.
        wait_until(spy.exists, 60, "supervisord to start")
        popen.send_signal(signal.SIGTERM)
        _, stderr = popen.communicate(timeout=60)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(10)
    assert popen.returncode == 0, stderr
    assert not runtime.exists()
