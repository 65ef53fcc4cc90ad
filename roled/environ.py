"""A program's environment from ``roled_env_files``, ``environment=`` and ``*_FILE`` variables.

Pure but for reading files, which goes through an injected reader. Every value read from a file
is a secret; an error names the program's config and the path, never a value.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from roled.dotenv import NAME, parse_dotenv
from roled.errors import RoledError
from roled.secrets import Secrets

FILE_SUFFIX = "_FILE"
# A secret or an env file is small; a bigger file is a mistake (a log, a disk image).
MAX_FILE_SIZE = 1024 * 1024

# path -> text; raises OSError (with strerror) or UnicodeDecodeError.
Reader = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Environment:
    """What roled adds to a program's environment, the secrets among it and the files it read.

    ``values`` is the program's whole resolved environment= (its own values win over the env
    files). What roled writes for supervisord: ``from_files`` before the program's own
    ``environment=``, ``from_targets`` (each ``NAME`` a ``NAME_FILE`` set) after it. ``files``
    are the env files and ``*_FILE`` targets, in the order read, for the watcher. ``notes`` are
    warnings to log.
    """

    values: Mapping[str, str]
    secrets: Secrets
    files: tuple[str, ...]
    notes: tuple[str, ...] = ()
    from_files: Mapping[str, str] = field(default_factory=dict)
    from_targets: Mapping[str, str] = field(default_factory=dict)


def read_file(path: str) -> str:
    """A small regular file's UTF-8 text; never blocks on a FIFO or reads a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = os.read(fd, MAX_FILE_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_SIZE:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_SIZE // 1024} KiB")
    return data.decode("utf-8")


def resolve_environment(
    env_files: Sequence[str],
    explicit: Mapping[str, str],
    inherited: Mapping[str, str],
    origin: str,
    read: Reader = read_file,
) -> Environment:
    """A program's added environment: env files in order (a later file wins), then its own
    ``environment=`` (``explicit``) over them; then each ``NAME_FILE=/abs/path`` from any source
    (``inherited`` is what the program gets from supervisord) sets ``NAME`` to the file's content
    without trailing newlines, unless ``NAME`` already has a non-empty value.

    A ``NAME_FILE`` only ``inherited`` (the container's own environment) whose file cannot be read
    or passed on is skipped, not an error: such variables (SSL_CERT_FILE) are often set for other
    tools, and a setup that runs under supervisord must keep running under roled, as quietly.
    ``origin`` names the program's section, e.g. ``roles/web.conf: [program:web]``.
    """
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for path in env_files:
        text = _read(read, path, f"{origin} roled_env_files: {path}")
        found = parse_dotenv(text, path)
        for name, value in found.items():
            _check_passable(name, value, f"{origin} roled_env_files: {path}")
        values.update(found)
        secrets.update(v for k, v in found.items() if not k.endswith(FILE_SUFFIX))
    from_files = {k: v for k, v in values.items() if k not in explicit}
    values.update(explicit)
    seen = {**inherited, **values}
    files = list(env_files)
    notes: list[str] = []
    targets: dict[str, str] = {}
    for name in sorted(seen):
        target, path = name.removesuffix(FILE_SUFFIX), seen[name]
        if target == name or not target or not NAME.match(name) or not path.startswith("/"):
            continue
        if seen.get(target):
            # Kept apart from the official images' entrypoints, which refuse both: a setup that
            # runs under supervisord must keep running under roled.
            notes.append(f"{origin}: {target} is set, so {name} is not read")
            continue
        where = f"{origin}: {name}={path}"
        try:
            content = _read(read, path, where).rstrip("\n")
            if "\0" in content:
                raise RoledError(f"{where}: the file holds a NUL byte")
            _check_passable(target, content, where)
        except RoledError:
            if name in values:
                raise
            # Only the container's own environment names it: most likely for another tool
            # (SSL_CERT_FILE and a CA bundle), so a drop-in setup starts, and quietly.
            continue
        values[target] = targets[target] = content
        secrets.add(content)
        files.append(path)
    return Environment(values, Secrets.of(secrets), tuple(files), tuple(notes), from_files, targets)


def _check_passable(name: str, value: str, where: str) -> None:
    why = unpassable(value)
    if why is not None:
        raise RoledError(f"{where}: {name}: {why}, which supervisord's environment= cannot pass on")


def unpassable(value: str) -> str | None:
    """Why supervisord's ``environment=`` cannot carry ``value`` (None: it can).

    supervisor reads that key with a non-POSIX shlex (no escapes inside quotes, quote characters
    stripped from both ends of a value) in an INI file whose ``;`` and ``#`` after a blank start a
    comment, and whose values are single lines.
    """
    if "\n" in value or "\r" in value:
        return "the value spans lines"
    if '"' in value and "'" in value:
        return "the value holds both quote characters"
    if value[:1] in {"'", '"'} or value[-1:] in {"'", '"'}:
        return "the value starts or ends with a quote character"
    if any(value[i] in ";#" and value[i - 1].isspace() for i in range(1, len(value))):
        return "the value holds ';' or '#' after a blank"
    return None


def supervisor_environment(values: Mapping[str, str]) -> str:
    """``values`` (each passable) as supervisord's ``environment=`` text: quoted, ``%`` escaped."""
    return ",".join(f"{name}={_quote(value)}".replace("%", "%%") for name, value in values.items())


def _quote(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


def _read(read: Reader, path: str, where: str) -> str:
    try:
        return read(path)
    except OSError as exc:
        raise RoledError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RoledError(f"{where}: not UTF-8 text (byte {exc.start})") from exc
