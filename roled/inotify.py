"""inotify(7) through ctypes: a descriptor the main loop's selector waits on, readable when
something changed in a watched folder. It only says *that* something changed; what changed is
the watcher's (``roled.watch``) content comparison, so a missed or spurious event costs nothing
but a scan.
"""

from __future__ import annotations

import glob
import os

from roled.filekeys import is_glob

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# Everything that can change what a path in the folder resolves to or contains: writes, a
# rename over it (an editor's save, the kubelet's ..data swap), creation, deletion, chmod.
MASK = (
    0x00000002  # IN_MODIFY
    | 0x00000004  # IN_ATTRIB
    | 0x00000008  # IN_CLOSE_WRITE
    | 0x00000040  # IN_MOVED_FROM
    | 0x00000080  # IN_MOVED_TO
    | 0x00000100  # IN_CREATE
    | 0x00000200  # IN_DELETE
    | 0x00000400  # IN_DELETE_SELF
    | 0x00000800  # IN_MOVE_SELF
)
# Folders watched at most (each watch costs kernel memory; the kernel's own default limit per
# user is 8192): past it, the safety-net scans still see every change.
MAX_FOLDERS = 1024


class Inotify:
    """One inotify instance; ``open()`` gives None where inotify cannot be had."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self.fd = fd
        self._libc = libc
        self._folders: set[str] = set()

    @classmethod
    def open(cls) -> Inotify | None:
        # Imported only when a program watches files: PID 1 otherwise never carries ctypes.
        import ctypes  # noqa: PLC0415

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return None if fd < 0 else cls(fd, libc)

    def watch(self, patterns: list[str]) -> None:
        """Watch the folders that hold these paths (and what their links lead to) and every
        folder a watched folder holds; folders already watched are kept."""
        for folder in sorted(folders_of(patterns)):
            if folder in self._folders or len(self._folders) >= MAX_FOLDERS:
                continue
            if self._libc.inotify_add_watch(self.fd, os.fsencode(folder), MASK) >= 0:
                self._folders.add(folder)

    def drain(self) -> bool:
        """Read every pending event; whether there was any."""
        seen = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            except OSError:
                return seen
            if not data:
                return seen
            seen = True

    def close(self) -> None:
        os.close(self.fd)


def folders_of(patterns: list[str]) -> set[str]:
    """The folders whose changes can change what these paths (files, folders, globs) hold."""
    folders: set[str] = set()
    for pattern in patterns:
        paths = glob.glob(pattern) if is_glob(pattern) else [pattern]
        if is_glob(pattern):
            folders.add(_glob_base(pattern))
        for path in paths:
            for candidate in (path, os.path.realpath(path)):
                if os.path.isdir(candidate):
                    folders.update(_tree(candidate))
                folders.add(os.path.dirname(os.path.abspath(candidate)) or "/")
    return {folder for folder in folders if os.path.isdir(folder)}


def _glob_base(pattern: str) -> str:
    parts = []
    for part in pattern.split(os.sep):
        if is_glob(part):
            break
        parts.append(part)
    return os.sep.join(parts) or os.sep


def _tree(root: str, depth: int = 8) -> set[str]:
    found = {root}
    todo = [(root, 0)]
    while todo and len(found) < MAX_FOLDERS:
        folder, level = todo.pop()
        if level >= depth:
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and entry.path not in found:
                found.add(entry.path)
                found.add(os.path.realpath(entry.path))
                todo.append((entry.path, level + 1))
    return found
