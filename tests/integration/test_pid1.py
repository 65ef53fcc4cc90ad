"""roled as PID 1 of a new PID namespace: signals from outside, and orphans reaped."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import PROGRAMS, Layout, Roled, program, wait_until

Start = Callable[..., Roled]


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_unshare(), reason="unshare --pid --fork --mount-proc is not permitted here"
)


def zombies_under(pid: int) -> list[psutil.Process]:
    """Zombie children of pid (the namespace's PID 1, as seen from the host)."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_sigterm_from_outside_stops_pid1_with_0(layout: Layout, start_roled: Start) -> None:
    """SIGTERM sent to roled as PID 1 from the parent namespace stops it cleanly."""
    layout.role("web", f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n")
    roled = start_roled(layout, roles="web", pid1=True)
    wait_until(lambda: "supervisord is up" in roled.stderr, what="supervisord to be up")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert roled.last_line() == "roled: INFO exiting with code 0: stopped on request (SIGTERM)"


def test_orphaned_grandchildren_are_reaped(
    layout: Layout, start_roled: Start, tmp_path: Path
) -> None:
    """Orphans re-parented to roled (PID 1) are reaped: no zombie is left."""
    pidfile = tmp_path / "orphans"
    maker = program("orphan_maker", "--count", "20", "--pidfile", str(pidfile))
    layout.role("web", f"[program:maker]\ncommand={maker}\nstartsecs=0\n")
    roled = start_roled(layout, roles="web", pid1=True)
    wait_until(
        lambda: pidfile.exists() and len(pidfile.read_text().split()) == 20,
        what="20 orphans to be made",
    )
    pid1 = roled.pid
    # Orphans exit at once; give roled the chance to reap them, then look for zombies.
    wait_until(lambda: not zombies_under(pid1), what="every orphan to be reaped")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_zombie_check_detects_a_pid1_that_does_not_reap(tmp_path: Path) -> None:
    """Negative control: under a PID 1 that never reaps, the same orphans stay zombies."""
    pidfile = tmp_path / "orphans"
    maker = [sys.executable, str(PROGRAMS / "orphan_maker.py"), "--count", "5"]
    script = f"{subprocess.list2cmdline(maker)} --pidfile {pidfile} & exec sleep 600"
    popen = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script]
    )
    try:
        pid1 = int(
            wait_until(  # type: ignore[arg-type]
                lambda: [child.pid for child in psutil.Process(popen.pid).children()],
                what="the namespace's PID 1",
            )[0]
        )
        wait_until(lambda: len(zombies_under(pid1)) >= 5, what="zombies under a non-reaping PID 1")
    finally:
        popen.kill()
        popen.wait(10)


def test_pid1_keeps_end_only_modules_out_while_it_runs(layout: Layout, start_roled: Start) -> None:
    """As PID 1 with its program running, roled has loaded neither psutil nor bz2 and lzma
    (shutil's): they serve only the end, the sweep and the runtime directory's removal."""
    layout.role("web", f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n")
    roled = start_roled(layout, roles="web", pid1=True)
    roled.wait_states({"web": "RUNNING"})
    maps = Path(f"/proc/{roled.pid}/maps").read_text()
    libraries = {Path(line.split()[-1]).name.split(".")[0] for line in maps.splitlines()}
    assert sorted(libraries & {"_psutil_linux", "_bz2", "_lzma"}) == []
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
