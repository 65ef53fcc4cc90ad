"""Config files that are not what they seem: FIFOs, devices and link loops where a file belongs.

Each must be one line and exit 2, promptly: reading a FIFO blocks until a writer comes, forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Layout, clean_environ

GOOD = "[program:a]\ncommand=/bin/sleep 100\n"
# Generous for a loaded machine; a hang is forever.
TIMEOUT = 60


def run_isolated(layout: Layout, runtime: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """roled in a session of its own, so a hang is killed with every child it started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "roled", "-c", str(layout.main), *args],
        env=clean_environ(ROLED_RUNTIME_DIR=str(runtime), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"roled {' '.join(args)} hung on a non-regular file")
    return process.returncode, out, err


def _include_fifo(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.write_main("[supervisord]\n[include]\nfiles=conf.d/*.conf\n")
    (layout.root / "conf.d").mkdir()
    (layout.root / "conf.d" / "a.conf").write_text(GOOD)
    fifo = layout.root / "conf.d" / "b.conf"
    os.mkfifo(fifo)
    return fifo, {}


def _role_fifo(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.roles.mkdir(parents=True)
    fifo = layout.roles / "web.conf"
    os.mkfifo(fifo)
    return fifo, {"ROLES": "web"}


def _role_folder_fifo(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.role("worker", GOOD, file="a.conf")
    fifo = layout.roles / "worker" / "b.conf"
    os.mkfifo(fifo)
    return fifo, {"ROLES": "worker"}


def _role_link_to_fifo(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.roles.mkdir(parents=True)
    os.mkfifo(layout.roles / "pipe")
    link = layout.roles / "web.conf"
    link.symlink_to("pipe")
    return link, {"ROLES": "web"}


def _include_device(layout: Layout) -> tuple[Path, dict[str, str]]:
    # /dev/zero never ends: read whole, it would fill the memory.
    layout.write_main("[supervisord]\n[include]\nfiles=/dev/zero\n")
    return Path("/dev/zero"), {}


def _role_loop(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.role("web", GOOD)
    # Among roles not selected: discovery looks at every role.
    (layout.roles / "a.conf").symlink_to("b.conf")
    (layout.roles / "b.conf").symlink_to("a.conf")
    return layout.roles / "a.conf", {"ROLES": "web"}


def _role_folder_loop(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.role("web", GOOD)
    layout.role("worker", GOOD, file="a.conf")
    (layout.roles / "worker" / "b.conf").symlink_to("b.conf")
    return layout.roles / "worker" / "b.conf", {"ROLES": "web"}


def _role_dir_loop(layout: Layout) -> tuple[Path, dict[str, str]]:
    layout.role("web", GOOD)
    (layout.roles / "loop").symlink_to("loop")
    return layout.roles / "loop", {"ROLES": "web"}


CASES: dict[str, tuple[Callable[[Layout], tuple[Path, dict[str, str]]], str]] = {
    "include glob matches a FIFO": (_include_fifo, "is not a regular file (a FIFO)"),
    "role file is a FIFO": (_role_fifo, "is not a regular file (a FIFO)"),
    "role folder holds a FIFO": (_role_folder_fifo, "is not a regular file (a FIFO)"),
    "role file links to a FIFO": (_role_link_to_fifo, "is not a regular file (a FIFO)"),
    "include names a device": (_include_device, "is not a regular file (a character device)"),
    "role files link in a loop": (_role_loop, "Too many levels of symbolic links"),
    "role folder file links to itself": (_role_folder_loop, "Too many levels of symbolic links"),
    "role folder links to itself": (_role_dir_loop, "Too many levels of symbolic links"),
}


@pytest.mark.parametrize("command", [(), ("check",), ("roles",)], ids=["run", "check", "roles"])
@pytest.mark.parametrize("case", list(CASES))
def test_odd_file_is_one_line_and_exit_2(
    layout: Layout, short_tmp: Path, case: str, command: tuple[str, ...]
) -> None:
    """Exit 2 at once, one line naming the file and what it is; nothing started or left."""
    make, expected = CASES[case]
    path, env = make(layout)
    if command == ("roles",) and not env:
        pytest.skip("roled roles reads no include")
    runtime = short_tmp / "rt"
    code, out, err = run_isolated(layout, runtime, *command, **env)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"roled: error: {path}")
    assert expected in lines[0]
    assert "Traceback" not in err
    if command != ("roles",):
        assert out == ""
    assert not runtime.exists()
