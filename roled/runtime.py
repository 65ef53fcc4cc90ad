"""The runtime directory: created safely (0700, ours, no links), locked, and removed on exit.

It holds the assembled config, the control socket, the event FIFO, ``instance.json``, through
which ``roled status`` and ``roled ctl`` find a running instance, and ``programs.json``, what the
probe needs of the programs' config without loading supervisor's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from roled import log
from roled.errors import RoledError
from roled.model import Control, ProgramConfig

LOCK = "lock"
INSTANCE = "instance.json"
PROGRAMS = "programs.json"
SECRETS = "secrets.json"
# The scheduled programs' next and last runs, for ``roled status``.
JOBS = "jobs.json"
# The processes held back until their dependencies meet their conditions, for ``roled status``.
WAITING = "waiting.json"
_V = TypeVar("_V")


class NotRunning(Exception):
    """No live roled behind a runtime directory: it never ran there, or it is gone."""


@dataclass(frozen=True, slots=True)
class Instance:
    """What a running roled publishes for its own commands: pid and how to reach supervisord."""

    pid: int
    socket: str
    username: str | None
    password: str | None


# A runtime directory handed to supervisord's ``user=`` may be searched by that user's group (to
# reach the entries handed to it); nothing in it can be listed or created by anyone but roled.
HANDED_MODE = 0o710


def check_private_dir(path: Path, handed: bool = False) -> None:
    """Refuse a path that is a link, not a directory, not ours, or open to group or others
    (``handed``: but searchable by the group of supervisord's ``user=``)."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise RoledError(f"{path}: runtime directory: {exc.strerror}") from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise RoledError(f"{path}: runtime directory is not a real directory (a link or a file)")
    if info.st_uid != os.getuid():
        raise RoledError(
            f"{path}: runtime directory belongs to uid {info.st_uid}, not to uid {os.getuid()}"
        )
    if stat.S_IMODE(info.st_mode) not in ((0o700, HANDED_MODE) if handed else (0o700,)):
        raise RoledError(
            f"{path}: runtime directory has mode {stat.S_IMODE(info.st_mode):04o}, expected 0700"
        )


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
                shutil.rmtree(self.path, ignore_errors=True)
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
                shutil.rmtree(entry.path)
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

    def publish_programs(self, configs: Mapping[str, ProgramConfig]) -> None:
        """Let ``roled status`` judge the programs as the policy does, replaced in one rename.

        Failing to is a warning: the probe then judges with supervisor's defaults.
        """
        document = {
            name: {
                "autostart": config.autostart,
                "autorestart": config.autorestart,
                "exitcodes": list(config.exitcodes),
            }
            for name, config in configs.items()
        }
        try:
            self.replace(PROGRAMS, json.dumps(document))
        except RoledError as exc:
            log.warning(f"{exc}: roled status judges programs with supervisor's defaults")

    def publish_secrets(self, secrets: frozenset[str]) -> None:
        """Let ``roled status`` mask what roled masks. The file is as private as the config
        supervisord reads beside it, which holds the same values."""
        try:
            self.replace(SECRETS, json.dumps(sorted(secrets)))
        except RoledError as exc:
            log.warning(f"{exc}: roled status cannot mask secret values")

    def remove(self) -> None:
        """Delete the directory and release the lock; a directory already gone is fine.

        Does nothing unless acquire() succeeded: a refused path is someone else's.
        """
        if self._lock_fd is None:
            return
        try:
            shutil.rmtree(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # A tmpfs mounted on it (EBUSY), or its file system turned read-only (EROFS): a
            # clean stop stays clean; what could be removed is.
            shutil.rmtree(self.path, ignore_errors=True)
            log.warning(f"{self.path}: runtime directory left in place: {exc.strerror}")
        os.close(self._lock_fd)
        self._lock_fd = None


def instance_of(control: Control, pid: int) -> Instance:
    return Instance(pid, str(control.socket), control.username, control.password)


def read_instance(path: Path) -> Instance:
    """The instance published in a runtime directory, checked to be private and ours."""
    try:
        info = os.lstat(path)
    except FileNotFoundError as exc:
        raise NotRunning(f"{path}: no roled is running here (no runtime directory)") from exc
    except OSError as exc:
        raise RoledError(f"{path}: runtime directory: {exc.strerror}") from exc
    if info.st_uid != os.getuid() and not stat.S_ISLNK(info.st_mode):
        # Its socket and credentials are that user's: reading them would need their rights.
        raise RoledError(
            f"{path}: refused: that roled runs as uid {info.st_uid} and only that user may "
            f"query or control it (this is uid {os.getuid()}; e.g. docker exec -u {info.st_uid})"
        )
    check_private_dir(path, handed=True)
    try:
        data = json.loads((path / INSTANCE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotRunning(f"{path}: no roled is running here (it is starting or stopping)") from exc
    except (OSError, ValueError) as exc:
        raise RoledError(f"{path / INSTANCE}: cannot read: {exc}") from exc
    return Instance(int(data["pid"]), str(data["socket"]), data["username"], data["password"])


def read_programs(path: Path) -> dict[str, ProgramConfig]:
    """The programs' config a running roled published; none (defaults) when unreadable."""
    try:
        document = json.loads((path / PROGRAMS).read_text(encoding="utf-8"))
        return {
            str(name): ProgramConfig(
                autostart=_typed(entry["autostart"], bool),
                autorestart=_typed(entry["autorestart"], str),
                exitcodes=tuple(_typed(code, int) for code in _typed(entry["exitcodes"], list)),
            )
            for name, entry in _typed(document, dict).items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        # Gone while we asked (a stop), or not written yet: judged with supervisor's defaults.
        return {}


def read_secrets(path: Path) -> frozenset[str]:
    """The values a running roled masks; none when it published none."""
    try:
        document = json.loads((path / SECRETS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    return (
        frozenset(str(value) for value in document) if isinstance(document, list) else frozenset()
    )


def _typed(value: object, kind: type[_V]) -> _V:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def find_instance(path: Path) -> Instance:
    """The live roled of a runtime directory; one killed without clean-up counts as gone."""
    instance = read_instance(path)
    try:
        os.kill(instance.pid, 0)
    except ProcessLookupError as exc:
        raise NotRunning(f"{path}: roled (pid {instance.pid}) is gone") from exc
    except PermissionError:
        # Alive, under another uid after a pid was reused: not ours, so not our roled.
        raise NotRunning(f"{path}: roled (pid {instance.pid}) is gone") from None
    return instance
