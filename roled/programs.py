"""The program table: every process roled supervises, its last known state, and the one rule by
which a setting names processes (program, ``group:name``, group, process name, globs).

Pure: it is told states; it never asks supervisord.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from roled.model import DOWN, ProcessState


def names_of(namespec: str, group: str = "", program: str = "") -> tuple[str, ...]:
    """Every name a setting may use for a process, full name first.

    ``web`` (a one-process program) answers to ``web``. ``grp:app`` (program ``app`` of
    ``[group:grp]``, or process ``app`` of a ``numprocs`` program ``grp``) answers to
    ``grp:app``, ``grp`` and ``app``. ``program``, when known, is the process's section name
    (a ``numprocs`` program in a group is named by it too).
    """
    group = group or namespec.partition(":")[0]
    name = namespec.rpartition(":")[2]
    return tuple(dict.fromkeys(n for n in (namespec, group, program, name) if n))


def matches(pattern: str, namespec: str) -> bool:
    """Whether a name or glob from a setting names this process."""
    return any(fnmatch.fnmatchcase(name, pattern) for name in names_of(namespec))


def matching(pattern: str, namespecs: Iterable[str]) -> tuple[str, ...]:
    """The processes a name or glob names, in the order given."""
    return tuple(namespec for namespec in namespecs if matches(pattern, namespec))


@dataclass(frozen=True, slots=True)
class Change:
    """A process's state moved from ``before`` to ``after`` (as the table had it)."""

    namespec: str
    before: ProcessState
    after: ProcessState


class ProgramTable:
    """The processes of the config in force and the state each was last seen in.

    A process the config names but supervisord has not reported yet is UNKNOWN, so a verdict
    over "every program" never judges a partial table.
    """

    __slots__ = ("_groups", "_states")

    def __init__(self, processes: Mapping[str, str] | None = None) -> None:
        self._states: dict[str, ProcessState] = {}
        self._groups: dict[str, str] = {}
        self.expect(processes or {})

    def expect(self, processes: Mapping[str, str]) -> None:
        """Make the table the config's processes (namespec to group): new ones UNKNOWN, ones
        the config no longer has forgotten, states of the others kept."""
        self._states = {
            namespec: self._states.get(namespec, ProcessState.UNKNOWN) for namespec in processes
        }
        self._groups = dict(processes)

    def update(self, namespec: str, group: str, state: ProcessState) -> Change | None:
        """Record a state; the change, or None when it is the state already known."""
        before = self._states.get(namespec, ProcessState.UNKNOWN)
        known = namespec in self._states
        self._states[namespec] = state
        self._groups[namespec] = group
        if known and before == state:
            return None
        return Change(namespec, before, state)

    def state(self, namespec: str) -> ProcessState:
        return self._states.get(namespec, ProcessState.UNKNOWN)

    @property
    def states(self) -> Mapping[str, ProcessState]:
        return self._states

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, namespec: object) -> bool:
        return namespec in self._states

    def group(self, namespec: str) -> str:
        return self._groups.get(namespec, namespec.partition(":")[0])

    def in_groups(self, groups: Iterable[str]) -> tuple[str, ...]:
        wanted = set(groups)
        return tuple(namespec for namespec in self._states if self.group(namespec) in wanted)

    def up(self, namespecs: Iterable[str] | None = None) -> tuple[str, ...]:
        """The processes (of those given, or all) that are not down, sorted."""
        chosen = self._states if namespecs is None else namespecs
        return tuple(sorted(n for n in chosen if self.state(n) not in DOWN))

    def with_state(self, state: ProcessState) -> tuple[str, ...]:
        return tuple(sorted(n for n, s in self._states.items() if s == state))

    def forget(self, namespecs: Iterable[str]) -> None:
        for namespec in namespecs:
            self._states.pop(namespec, None)
            self._groups.pop(namespec, None)
