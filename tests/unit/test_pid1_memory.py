"""PID 1's memory: what the run command needs only at the end, on a rare path or never stays
out of it, and the few lines that replace those modules agree with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from roled.init import proc_stat
from roled.probes import which
from tests.conftest import wait_until

# Each is hundreds of KiB of PID 1's memory for the whole run: psutil (with subprocess) serves
# only the final sweep, shutil (with bz2 and lzma) only the runtime directory's removal,
# ctypes only the subreaper request (not as PID 1) and inotify (only for roled_watch),
# configparser only status and ctl; pickle.py and typing are never run; datetime only serves
# scheduled programs, traceback only roled's own bugs; base64 is two calls of binascii.
KEPT_OUT = (
    "psutil", "subprocess", "shutil", "bz2", "lzma", "ctypes", "configparser", "pickle", "typing",
    "datetime", "traceback", "base64",
)  # fmt: skip
IMPORT_RUN = """\
import sys
import roled.cli, roled.run
from roled.arguments import build_parser
build_parser().parse_args(["run"])
print(*sorted(sys.modules))
"""
IMPORT_PLAIN_RUN = """\
import sys
import roled.cli, roled.run
print(*sorted(sys.modules))
"""


def loaded_by(script: str) -> set[str]:
    """The modules a fresh interpreter holds after running script (which prints them)."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def test_run_command_keeps_heavy_modules_out() -> None:
    """Importing the run command and parsing its arguments loads none of the kept-out modules."""
    loaded = loaded_by(IMPORT_RUN)
    assert [name for name in KEPT_OUT if name in loaded] == []


def test_plain_run_keeps_argparse_out() -> None:
    """``roled`` with no flag (a container's usual CMD) parses nothing: argparse, and the
    locale tables gettext loads for its messages, never enter PID 1."""
    loaded = loaded_by(IMPORT_PLAIN_RUN)
    assert [name for name in ("argparse", "gettext", "locale") if name in loaded] == []


BURN_AND_STOP = (
    "import os, signal\nfor _ in range(3_000_000): pass\nos.kill(os.getpid(), signal.SIGSTOP)"
)


@pytest.fixture
def stopped_child(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Python that used some CPU, then stopped itself; its command name holds ") (", as
    proc(5)'s stat line allows."""
    odd = tmp_path / "a) b (c"
    odd.symlink_to(os.path.realpath(sys.executable))
    child = subprocess.Popen([str(odd), "-I", "-S", "-c", BURN_AND_STOP])
    try:
        wait_until(
            lambda: psutil.Process(child.pid).status() == psutil.STATUS_STOPPED,
            what="the child to stop itself",
        )
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


def test_proc_stat_reads_what_psutil_reads(stopped_child: subprocess.Popen[bytes]) -> None:
    """Parent and CPU time from /proc agree with psutil's, whatever the command name holds."""
    process = psutil.Process(stopped_child.pid)
    assert process.name() == "a) b (c"
    times = process.cpu_times()
    stat = proc_stat(stopped_child.pid)
    assert stat is not None
    assert stat.ppid == os.getpid()
    assert stat.cpu_seconds > 0
    assert stat.cpu_seconds == pytest.approx(times.user + times.system, abs=1e-9)


def test_proc_stat_of_a_process_that_is_gone() -> None:
    """A pid that does not exist is None, not an error."""
    child = subprocess.Popen(["true"])
    child.wait(timeout=10)
    assert proc_stat(child.pid) is None


@pytest.fixture
def path_dirs(tmp_path: Path) -> str:
    """Three folders on a PATH: one with a non-executable ``tool`` and a folder ``dir``, one
    with an executable ``tool``, one with another executable ``tool``."""
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    (first / "tool").write_text("")
    (first / "dir").mkdir()
    for folder in (second, third):
        (folder / "tool").write_text("#!/bin/sh\n")
        (folder / "tool").chmod(0o755)
    (third / "dir").write_text("#!/bin/sh\n")
    (third / "dir").chmod(0o755)
    return os.pathsep.join(str(folder) for folder in (first, second, third))


@pytest.mark.parametrize(
    "name",
    ["tool", "dir", "missing", "sh", "/bin/sh", "./tool", "/nonexistent/tool", "first/tool"],
)
@pytest.mark.parametrize("path", ["dirs", "", "/bin"])
def test_which_finds_what_shutil_which_finds(
    path_dirs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, path: str
) -> None:
    """The first executable file on PATH (not a folder, not a plain file), or a path as given."""
    monkeypatch.chdir(tmp_path)
    search = path_dirs if path == "dirs" else path
    assert which(name, search) == shutil.which(name, path=search)
