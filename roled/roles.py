"""Roles: find them in the roles folder, parse ROLES, and select the requested ones.

A role is ``roles/NAME.conf`` or a folder ``roles/NAME/`` of ``*.conf`` files. Nothing here is
shell- or glob-expanded from user input, and no role may resolve outside the roles folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from roled.errors import RoledError

ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
ALL_ROLES = "*"
_SEPARATORS = re.compile(r"[,\s]+")
# Longer names than this are no role anyone wrote; refusing them keeps messages one line.
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Role:
    """A role and the files it is made of, in the order they are read."""

    name: str
    files: tuple[Path, ...]


def check_role_name(name: str) -> None:
    """Refuse a role name that could mean anything but one entry of the roles folder."""
    if len(name) > _MAX_NAME:
        raise RoledError(f"role name {name[:40]!r}... is too long ({len(name)} characters)")
    if not ROLE_NAME.match(name) or ".." in name:
        raise RoledError(
            f"invalid role name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, without '..'"
        )


def parse_roles(value: str) -> list[str]:
    """Split ROLES on commas and/or whitespace, drop empties and duplicates, keep the order."""
    names: list[str] = []
    for name in _SEPARATORS.split(value.strip()):
        if not name or name in names:
            continue
        if name != ALL_ROLES:
            check_role_name(name)
        names.append(name)
    return names


def _inside(path: Path, folder: Path) -> bool:
    """Whether path, with every link resolved, is within folder (itself resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(folder)


def _check_reachable(path: Path, role: str) -> None:
    """A link loop, a name too long, a folder we may not search: an error naming the path.

    A dangling link is left to the reading of the file, which names it.
    """
    try:
        os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RoledError(f"{path}: cannot read role {role!r}: {exc.strerror}") from exc


def discover_roles(roles_dir: Path) -> dict[str, Role]:
    """Every role in roles_dir, by name; entries whose names are not role names are skipped."""
    try:
        # realpath, not Path.resolve: before Python 3.13 that raises RuntimeError on a loop.
        folder = Path(os.path.realpath(roles_dir, strict=True))
        entries = sorted(os.listdir(folder))
    except OSError as exc:
        raise RoledError(f"{roles_dir}: cannot read roles folder: {exc.strerror}") from exc
    roles: dict[str, Role] = {}
    files: tuple[Path, ...]
    for entry in entries:
        path = folder / entry
        if entry.endswith(".conf") and ROLE_NAME.match(entry[: -len(".conf")]):
            name, files = entry[: -len(".conf")], (path,)
        elif ROLE_NAME.match(entry) and ".." not in entry:
            _check_reachable(path, entry)
            if not path.is_dir():
                continue
            name, files = entry, _role_folder_files(path)
        else:
            continue
        if name in roles:
            raise RoledError(f"role {name!r} is defined twice: {roles[name].files[0]} and {path}")
        for file in files:
            _check_reachable(file, name)
            if not _inside(file, folder):
                raise RoledError(
                    f"{file}: role {name!r} resolves outside the roles folder {folder}"
                )
        roles[name] = Role(name, files)
    return roles


def _role_folder_files(folder: Path) -> tuple[Path, ...]:
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise RoledError(f"{folder}: cannot read role folder: {exc.strerror}") from exc
    return tuple(folder / name for name in names if name.endswith(".conf"))


def select_roles(requested: list[str], available: dict[str, Role]) -> list[Role]:
    """The roles named in requested, in that order; ``*`` stands for every role."""
    unknown = [name for name in requested if name != ALL_ROLES and name not in available]
    if unknown:
        known = ", ".join(sorted(available)) or "none"
        listed = ", ".join(repr(name) for name in unknown)
        raise RoledError(f"unknown role {listed} (known roles: {known})")
    if ALL_ROLES in requested:
        return [available[name] for name in sorted(available)]
    return [available[name] for name in requested]
