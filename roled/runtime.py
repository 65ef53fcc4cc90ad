"""The runtime directory: created safely (0700, ours, no links), locked, and removed on exit.

It holds the assembled config, the control socket, the event FIFO, roled's own socket and
``instance.json``, through which ``roled status`` and ``roled ctl`` find a running instance.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from roled import log
from roled.errors import RoledError
from roled.locate import (
    HANDED_MODE,
    INSTANCE,
    check_alive,
    check_ours,
    check_private_dir,
    read_instance_document,
)
from roled.model import Control

LOCK = "lock"
# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    _V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Instance:
    """What a running roled publishes for its own commands: pid and how to reach supervisord."""

    pid: int
    socket: str
    username: str | None
    password: str | None


class RuntimeDir:
    """A locked private directory; ``remove()`` deletes it on every exit path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def acquire(self) -> None:
        """Create or take over the directory; another live roled's directory is refused."""
        try:
            os.mkdir(self.path, 0o700)
            created = True
            # The umask may have taken bits away; the check below wants exactly 0700.
            os.chmod(self.path, 0o700)
        except FileExistsError:
            created = False
        except OSError as exc:
            raise RoledError(
                f"{self.path}: cannot create runtime directory: {exc.strerror}"
            ) from exc
        try:
            self._lock()
        except RoledError:
            # Out of inodes for the lock file, say: leave nothing behind of what roled made.
            if created:
                _rmtree(self.path, ignore_errors=True)
            raise

    def _lock(self) -> None:
        check_private_dir(self.path)
        try:
            fd = os.open(
                self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise RoledError(f"{self.path}: cannot create lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise RoledError(
                f"{self.path}: another roled is running with this runtime directory "
                "(set ROLED_RUNTIME_DIR to run a second one)"
            ) from exc
        self._lock_fd = fd
        self._clear_stale()

    def _clear_stale(self) -> None:
        # Left by a roled that was killed: nothing in it may be trusted or reused.
        for entry in os.scandir(self.path):
            if entry.name == LOCK:
                continue
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def write(self, name: str, text: str) -> Path:
        """Write a private file (0600) in the directory; a full disk is a clear error."""
        path = self.path / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise RoledError(f"{path}: cannot write runtime file: {exc.strerror}") from exc
        return path

    def replace(self, name: str, text: str) -> Path:
        """Swap a file's content in one rename, so supervisord never reads half a config."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / f".{name}.new")
        fresh = self.write(f".{name}.new", text)
        path = self.path / name
        try:
            os.replace(fresh, path)
        except OSError as exc:
            raise RoledError(f"{path}: cannot replace runtime file: {exc.strerror}") from exc
        return path

    def make_fifo(self, name: str) -> Path:
        return self._make(name, "FIFO", lambda path: os.mkfifo(path, 0o600))

    def make_dir(self, name: str) -> Path:
        return self._make(name, "folder", lambda path: os.mkdir(path, 0o700))

    def _make(self, name: str, what: str, make: Callable[[Path], None]) -> Path:
        path = self.path / name
        try:
            make(path)
        except OSError as exc:
            raise RoledError(f"{path}: cannot create {what}: {exc.strerror}") from exc
        return path

    def hand_to(self, uid: int, gid: int, paths: Iterable[Path]) -> None:
        """Give supervisord, which drops to uid before it opens its log, socket and FIFOs, those
        entries and a way in: the directory becomes searchable (not readable) by gid."""
        try:
            for path in paths:
                os.chown(path, uid, gid, follow_symlinks=False)
            os.chown(self.path, -1, gid)
            os.chmod(self.path, HANDED_MODE)
        except OSError as exc:
            raise RoledError(f"{self.path}: cannot hand to uid {uid}: {exc.strerror}") from exc

    def publish(self, instance: Instance) -> None:
        """Let ``roled status`` and ``roled ctl`` find this instance."""
        self.write(INSTANCE, json.dumps(asdict(instance)))

    def remove(self) -> None:
        """Delete the directory and release the lock; a directory already gone is fine.

        Does nothing unless acquire() succeeded: a refused path is someone else's.
        """
        if self._lock_fd is None:
            return
        try:
            _rmtree(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # A tmpfs mounted on it (EBUSY), or its file system turned read-only (EROFS): a
            # clean stop stays clean; what could be removed is.
            _rmtree(self.path, ignore_errors=True)
            log.warning(f"{self.path}: runtime directory left in place: {exc.strerror}")
        os.close(self._lock_fd)
        self._lock_fd = None


def _rmtree(path: str | Path, ignore_errors: bool = False) -> None:
    # shutil (with bz2, lzma and their libraries) only when roled removes a tree: at the end, or
    # after a roled that was killed. A module-level import would weigh on PID 1 for the whole run.
    import shutil  # noqa: PLC0415

    shutil.rmtree(path, ignore_errors=ignore_errors)


def instance_of(control: Control, pid: int) -> Instance:
    return Instance(pid, str(control.socket), control.username, control.password)


def read_instance(path: Path) -> Instance:
    """The instance published in a runtime directory, checked to be private and ours."""
    check_ours(path)
    data = read_instance_document(path)
    try:
        username, password = data["username"], data["password"]
        return Instance(
            _typed(data["pid"], int),
            _typed(data["socket"], str),
            None if username is None else _typed(username, str),
            None if password is None else _typed(password, str),
        )
    except (KeyError, TypeError) as exc:
        raise RoledError(f"{path / INSTANCE}: cannot read: {exc}") from exc


def _typed(value: object, kind: type[_V]) -> _V:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def find_instance(path: Path) -> Instance:
    """The live roled of a runtime directory; one killed without clean-up counts as gone."""
    instance = read_instance(path)
    check_alive(path, instance.pid)
    return instance
