"""Reading config files: only regular files are opened, everything else is named in one line."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from roled.assemble import read_regular
from roled.errors import RoledError
from roled.roles import discover_roles


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    """Its bytes, as they are."""
    path = tmp_path / "a.conf"
    path.write_bytes(b"[program:a]\n")
    assert read_regular(path, "role file") == b"[program:a]\n"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


def _missing(path: Path) -> Path:
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, "{path}: included file is not a regular file (a FIFO)"),
        (_socket, "{path}: included file is not a regular file (a socket)"),
        (_folder, "{path}: cannot read included file: Is a directory"),
        (_loop, "{path}: cannot read included file: Too many levels of symbolic links"),
        (_missing, "{path}: cannot read included file: No such file or directory"),
    ],
    ids=["fifo", "socket", "folder", "loop", "missing"],
)
def test_anything_else_is_named(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    """Refused from its stat, never opened: a FIFO's read would block forever."""
    path = make(tmp_path / "x.conf")
    with pytest.raises(RoledError) as info:
        read_regular(path, "included file")
    assert str(info.value) == message.format(path=path)


def test_a_device_is_refused() -> None:
    """/dev/zero never ends: it is refused, not read."""
    with pytest.raises(RoledError) as info:
        read_regular(Path("/dev/zero"), "included file")
    assert str(info.value) == "/dev/zero: included file is not a regular file (a character device)"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("loop.conf", "Too many levels of symbolic links"),
        ("x" * 300, "File name too long"),
    ],
    ids=["loop", "name too long"],
)
def test_a_role_entry_that_cannot_resolve_is_named(
    tmp_path: Path, target: str, reason: str
) -> None:
    """Discovery names the entry in one line instead of a traceback."""
    (tmp_path / "web.conf").write_text("[program:web]\ncommand=/bin/true\n")
    (tmp_path / "loop.conf").symlink_to(target)
    with pytest.raises(RoledError) as info:
        discover_roles(tmp_path)
    assert str(info.value) == f"{tmp_path / 'loop.conf'}: cannot read role 'loop': {reason}"


def test_a_roles_folder_in_a_loop_is_named(tmp_path: Path) -> None:
    """The folder itself: one line, not RuntimeError."""
    (tmp_path / "roles").symlink_to("roles")
    with pytest.raises(RoledError) as info:
        discover_roles(tmp_path / "roles")
    assert str(info.value) == (
        f"{tmp_path / 'roles'}: cannot read roles folder: Too many levels of symbolic links"
    )
