"""How a command finds the running roled: the main config, its ``[roled] runtime_dir``, the
runtime directory's names and checks.

``roled status`` imports this and little else: it runs every few seconds in every pod, so
nothing here defines a dataclass or loads the command line's or supervisor's machinery.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from roled.errors import RoledError

# The settings table's names (``roled.settings``) for the two a command needs before it.
CONFIG_ENV = "ROLED_CONFIG"
RUNTIME_DIR_ENV = "ROLED_RUNTIME_DIR"
INSTANCE = "instance.json"
# Where roled looks after supervisord's own search list finds nothing: the Debian package's
# other name for its file, which roled has always accepted.
ROLED_SEARCH_ADDITIONS = ("/etc/supervisor/supervisor.conf",)
# Tests only: a folder standing for / in the search list, so that it can be tried for real.
SEARCH_ROOT_VARIABLE = "ROLED_TEST_SEARCH_ROOT"
# supervisor's %-expansion: %% or %(name)s, with an optional format.
FORMAT_TOKEN = re.compile(r"%%|%\((?P<name>[^)]*)\)(?P<spec>[-#0 +\d.]*[a-zA-Z])?")
# roled's own socket: ``roled status`` and ``roled ctl tail``, ``clear`` and ``maintail``.
REQUESTS = "roled.sock"
# A runtime directory handed to supervisord's ``user=`` may be searched by that user's group (to
# reach the entries handed to it); nothing in it can be listed or created by anyone but roled.
HANDED_MODE = 0o710
# How long ``roled status`` waits for an answer, by default.
DEFAULT_PROBE_TIMEOUT = 2.0
# The questions ``roled status --level`` answers: Kubernetes' three probes.
LEVELS = ("startup", "ready", "alive")
DEFAULT_LEVEL = "ready"


class NotRunning(Exception):
    """No live roled behind a runtime directory: it never ran there, or it is gone."""


def check_private_dir(path: str | os.PathLike[str], handed: bool = False) -> None:
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


def check_ours(path: str | os.PathLike[str]) -> None:
    """A runtime directory a command may use: it exists, is private, and is this uid's."""
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


def read_instance_document(path: str | os.PathLike[str]) -> dict[str, object]:
    """``instance.json`` of a runtime directory checked with ``check_ours``."""
    name = os.path.join(path, INSTANCE)
    try:
        with open(name, encoding="utf-8") as file:
            document = json.load(file)
    except FileNotFoundError as exc:
        raise NotRunning(f"{path}: no roled is running here (it is starting or stopping)") from exc
    except (OSError, ValueError) as exc:
        raise RoledError(f"{name}: cannot read: {exc}") from exc
    if not isinstance(document, dict):
        raise RoledError(f"{name}: cannot read: not an object")
    return document


def check_alive(path: str | os.PathLike[str], pid: int) -> None:
    """A roled killed without clean-up left its directory: that one counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError as exc:
        raise NotRunning(f"{path}: roled (pid {pid}) is gone") from exc
    except PermissionError:
        # Alive, under another uid after a pid was reused: not ours, so not our roled.
        raise NotRunning(f"{path}: roled (pid {pid}) is gone") from None


def escape(text: str) -> str:
    """Make text literal for supervisor's %-expansion."""
    return text.replace("%", "%%")


def with_here(value: str, folder: Path) -> str:
    """A config value with ``%(here)s`` made the folder of the file it was written in."""
    here = escape(str(folder))
    return FORMAT_TOKEN.sub(
        lambda m: here if m.group(0) == "%(here)s" else m.group(0),
        value,
    )


def search_paths(argv0: str, root: str = "/") -> tuple[str, ...]:
    """Where supervisord looks for its config without ``-c``, in its order, then roled's own.

    supervisord's list (``ServerOptions.searchpaths``) starts from the folder above its own
    executable's; roled, installed beside it, uses its own executable the same way.
    """
    here = os.path.dirname(os.path.dirname(argv0))
    supervisords = (
        os.path.join(here, "etc", "supervisord.conf"),
        os.path.join(here, "supervisord.conf"),
        "supervisord.conf",
        "etc/supervisord.conf",
        "/etc/supervisord.conf",
        "/etc/supervisor/supervisord.conf",
    )
    return tuple(
        os.path.join(root, path.lstrip("/")) if os.path.isabs(path) else path
        for path in (*supervisords, *ROLED_SEARCH_ADDITIONS)
    )


def default_search_paths(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The search list for this process: its own argv[0], and / unless a test says otherwise."""
    return search_paths(sys.argv[0], environ.get(SEARCH_ROOT_VARIABLE) or "/")


def find_config(paths: tuple[str, ...]) -> Path | None:
    """The first path that exists, made absolute (supervisord's own rule: exists, not is_file)."""
    for path in paths:
        if os.path.exists(path):
            return Path(os.path.abspath(path))
    return None


def default_runtime_dir(environ: Mapping[str, str]) -> Path:
    """``${TMPDIR:-/tmp}/roled-<uid>``."""
    return Path(environ.get("TMPDIR") or "/tmp") / f"roled-{os.getuid()}"


def find_main_config(flag: str | None, environ: Mapping[str, str]) -> Path:
    """-c, else ROLED_CONFIG, else the first that exists of supervisord's own search list."""
    explicit = flag or environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise RoledError(f"{path}: main config not found")
        return path
    paths = default_search_paths(environ)
    found = find_config(paths)
    if found is not None:
        return found
    tried = ", ".join(paths)
    raise RoledError(f"no main config: pass -c PATH or set ROLED_CONFIG (tried {tried})")


def locate_runtime_dir(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    read_roled: Callable[[Path], Mapping[str, str]],
) -> Path:
    """The runtime directory of a running roled, for ``roled status`` and ``roled ctl``.

    A probe must not fail on what a run needs: a main config that is missing or broken only
    means its ``[roled] runtime_dir`` cannot be used.
    """
    explicit = flags.get("runtime_dir") or environ.get(RUNTIME_DIR_ENV)
    if explicit:
        return Path(explicit)
    try:
        configured = read_roled(find_main_config(flags.get("config"), environ)).get("runtime_dir")
    except RoledError:
        configured = None
    return Path(configured) if configured else default_runtime_dir(environ)


def read_roled_section(path: Path) -> dict[str, str]:
    """The main config's ``[roled]`` section, read as the planner reads it but without loading
    supervisor's config machinery: how ``roled status`` and ``roled ctl`` find the runtime
    directory (``[roled]`` is only ever read from the main file, never from an include)."""
    # Only status and ctl read it: a run's PID 1 does not carry configparser.
    import configparser  # noqa: PLC0415

    # supervisor's INI reader is RawConfigParser with these comment prefixes.
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=True, interpolation=None
    )
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise RoledError(f"{path}: cannot read its [roled] section: {exc}") from exc
    if not parser.has_section("roled"):
        return {}
    folder = path.parent.absolute()
    return {key: with_here(value, folder) for key, value in parser.items("roled", raw=True)}
