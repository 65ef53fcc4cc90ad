"""Dependencies between programs (``roled_depends_on``): the key's parser, the graph of the
selected processes with its checks, the stop order it implies, and its text for the commands.

Pure: it is given processes and strings, and never reads a file or asks supervisord.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from roled.errors import RoledError
from roled.model import Process, ProgramConfig
from roled.programs import names_of

KEY = "roled_depends_on"
# Where the planner leaves a gated program's own autostart, when written, in ``Process.roled``
# (supervisord is told autostart=false): not a key anyone can write (no ``roled_`` prefix).
AUTOSTART = "autostart"


class Condition(str, enum.Enum):
    """What a dependency must reach before its dependents start."""

    STARTED = "started"  # RUNNING
    READY = "ready"  # RUNNING and its ready check passing
    DONE = "done"  # exited for good, any code
    SUCCEEDED = "succeeded"  # exited for good with a code in its exitcodes

    def __str__(self) -> str:
        return self.value


CONDITIONS = ", ".join(condition.value for condition in Condition)
# Conditions that wait for an end: meaningless on a program supervisord restarts forever.
FINISHING = frozenset({Condition.DONE, Condition.SUCCEEDED})
_NAME_PART = re.compile(r"[^\s:,]+")


@dataclass(frozen=True, slots=True)
class Dependency:
    """One ``NAME[:CONDITION]`` as written; no condition means the default of each process
    it names (``succeeded`` for a one-shot, ``ready`` otherwise)."""

    name: str
    condition: Condition | None = None

    def __str__(self) -> str:
        return self.name if self.condition is None else f"{self.name}:{self.condition}"


def parse_depends_on(value: str, origin: str) -> tuple[Dependency, ...]:
    """``roled_depends_on``: comma-separated ``NAME[:CONDITION]``.

    NAME is a program, a group, ``group:name`` or a process name; a final ``:WORD`` that is a
    condition is the condition (so ``grp:ready`` is group ``grp`` once ready; a program named
    ``ready`` in it is ``grp:ready:ready``). Errors start with ``origin`` (file, section, key).
    """
    items = [item.strip() for item in value.split(",")]
    if items == [""]:
        raise RoledError(f"{origin}: is empty; name at least one program (NAME[:CONDITION])")
    found: dict[str, Dependency] = {}
    for item in items:
        dependency = _parse_item(item, value, origin)
        if dependency.name in found:
            raise RoledError(f"{origin}: names {dependency.name!r} twice in {value!r}")
        found[dependency.name] = dependency
    return tuple(found.values())


def _parse_item(item: str, value: str, origin: str) -> Dependency:
    head, colon, last = item.rpartition(":")
    condition: Condition | None = None
    name = item
    if colon and last.lower() in {c.value for c in Condition}:
        name, condition = head, Condition(last.lower())
    parts = name.split(":")
    if len(parts) > 2 or not all(_NAME_PART.fullmatch(part) for part in parts):
        raise RoledError(
            f"{origin}: cannot read {item!r} in {value!r} (expected NAME[:CONDITION] with "
            f"NAME a program, group or group:name, CONDITION one of {CONDITIONS})"
        )
    return Dependency(name, condition)


# -- the graph ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """One selected process: what its dependencies and its dependents need to know of it.

    ``program`` is its section's name; ``autostart`` is the user's own (before the assembly
    rule turns it off for a program with dependencies).
    """

    namespec: str
    group: str = ""
    program: str = ""
    priority: int = 999
    autostart: bool = True
    autorestart: str = "unexpected"
    exitcodes: tuple[int, ...] = (0,)
    depends_on: tuple[Dependency, ...] = ()

    @property
    def label(self) -> str:
        """How messages name it: its program, or ``group:name`` inside a group."""
        group = self.group or self.namespec.partition(":")[0]
        program = self.program or self.namespec.rpartition(":")[2]
        return program if group == program else self.namespec

    def restarts_after(self, expected: bool) -> bool:
        """Whether supervisord starts it again after an exit like this one."""
        return ProgramConfig(autorestart=self.autorestart).restarts_after(expected)

    def default_condition(self) -> Condition:
        return Condition.SUCCEEDED if self.autorestart == "false" else Condition.READY


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A process of a role that is not selected, so that a name of it is explained."""

    namespec: str
    role: str
    group: str = ""
    program: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    """The dependent waits until ``target`` (a namespec) meets ``condition``; ``name`` is the
    name it wrote."""

    target: str
    condition: Condition
    name: str


@dataclass(frozen=True, slots=True)
class Graph:
    """The selected processes by namespec, and the edges of each one that has dependencies."""

    nodes: Mapping[str, Node] = field(default_factory=dict)
    edges: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)

    def dependents(self) -> dict[str, set[str]]:
        """For each process, the processes that wait for it."""
        found: dict[str, set[str]] = {namespec: set() for namespec in self.nodes}
        for dependent, edges in self.edges.items():
            for edge in edges:
                found.setdefault(edge.target, set()).add(dependent)
        return found


def build_graph(
    nodes: Iterable[Node],
    elsewhere: Iterable[Elsewhere] = (),
    origins: Mapping[str, str] | None = None,
) -> Graph:
    """Resolve every ``roled_depends_on`` of the selected processes, or refuse the config.

    One line each: a name no selected process answers to (naming the role it belongs to when
    one that is not selected has it), ``done``/``succeeded`` on a process supervisord restarts
    after every exit (``autorestart=true``), and a cycle. ``origins`` names each program's
    section (``FILE: [program:x]``) by program name, for the messages.
    """
    by_name: dict[str, list[Node]] = {}
    table = {node.namespec: node for node in nodes}
    for node in table.values():
        for name in names_of(node.namespec, node.group, node.program):
            by_name.setdefault(name, []).append(node)
    roles = {
        name: place.role
        for place in elsewhere
        for name in names_of(place.namespec, place.group, place.program)
    }
    edges: dict[str, tuple[Edge, ...]] = {}
    for node in table.values():
        if node.depends_on:
            where = _origin(node, origins)
            edges[node.namespec] = tuple(
                edge
                for dependency in node.depends_on
                for edge in _resolve(dependency, by_name, roles, where)
            )
    graph = Graph(table, edges)
    _check_cycles(graph, origins)
    return graph


def node_of(process: Process) -> Node:
    """A process as the graph sees it, with the user's own autostart."""
    depends_on = process.roled.get(KEY, ())
    # Not written: supervisor's default, true (what supervisord was told is the gate's false).
    autostart = process.roled.get(AUTOSTART, KEY in process.roled or process.config.autostart)
    return Node(
        process.namespec,
        process.group,
        process.program,
        process.priority,
        autostart is True,
        process.config.autorestart,
        process.config.exitcodes,
        depends_on if isinstance(depends_on, tuple) else (),
    )


def graph_of(
    processes: Iterable[Process],
    elsewhere: Iterable[Elsewhere] = (),
    origins: Mapping[str, str] | None = None,
) -> Graph:
    """The dependency graph of these processes (``build_graph`` on each one's ``node_of``)."""
    return build_graph((node_of(process) for process in processes), elsewhere, origins)


def _origin(node: Node, origins: Mapping[str, str] | None) -> str:
    program = node.program or node.label
    where = (origins or {}).get(program, f"[program:{program}]")
    return f"{where} {KEY}"


def _resolve(
    dependency: Dependency, by_name: Mapping[str, list[Node]], roles: Mapping[str, str], where: str
) -> list[Edge]:
    targets = by_name.get(dependency.name)
    if not targets:
        role = roles.get(dependency.name)
        if role is not None:
            raise RoledError(
                f"{where}: {dependency.name!r} belongs to role {role!r}, which is not selected"
            )
        raise RoledError(
            f"{where}: {dependency.name!r} is not a program, group or process of the selected "
            f"roles (a condition is one of {CONDITIONS})"
        )
    edges: list[Edge] = []
    for target in sorted(targets, key=lambda node: node.namespec):
        condition = dependency.condition or target.default_condition()
        if condition in FINISHING and target.autorestart == "true":
            raise RoledError(
                f"{where}: {str(dependency)!r} can never hold: supervisord restarts "
                f"{target.label!r} after every exit (autorestart=true); wait for it to be "
                "started or ready"
            )
        edges.append(Edge(target.namespec, condition, dependency.name))
    return edges


def _check_cycles(graph: Graph, origins: Mapping[str, str] | None) -> None:
    # Depth-first, in name order, so the cycle named is always the same one.
    done: set[str] = set()
    for start in sorted(graph.edges):
        path: list[str] = []
        cycle = _find_cycle(graph, start, path, set(), done)
        if cycle is not None:
            # A numprocs program's processes share its label: name the program once per step.
            labels = [graph.nodes[namespec].label for namespec in cycle]
            steps = [labels[0], *(b for a, b in itertools.pairwise(labels) if b != a)]
            text = " -> ".join(steps if len(steps) > 1 else steps * 2)
            where = _origin(graph.nodes[cycle[0]], origins)
            raise RoledError(f"{where}: dependency cycle {text}")


def _find_cycle(
    graph: Graph, namespec: str, path: list[str], on_path: set[str], done: set[str]
) -> list[str] | None:
    if namespec in on_path:
        return [*path[path.index(namespec) :], namespec]
    if namespec in done:
        return None
    path.append(namespec)
    on_path.add(namespec)
    for edge in graph.edges.get(namespec, ()):
        cycle = _find_cycle(graph, edge.target, path, on_path, done)
        if cycle is not None:
            return cycle
    path.pop()
    on_path.discard(namespec)
    done.add(namespec)
    return None


# -- stop order ---------------------------------------------------------------------------------


def stop_order(graph: Graph) -> list[list[str]]:
    """Levels of namespecs to stop one after the other: the reverse of the order they start.

    supervisord starts lower priorities first and a dependent starts after everything it
    depends on, so a dependent stops as early as the most urgent of what it (transitively)
    depends on would by its priority, and before it. With no dependency between two processes
    their priorities order them; where the two disagree the dependency wins.
    """
    dependents = graph.dependents()
    urgency: dict[str, int] = {}
    for namespec in graph.nodes:
        _urgency(graph, namespec, urgency, set())
    remaining = set(graph.nodes)
    levels: list[list[str]] = []
    while remaining:
        free = [n for n in remaining if not dependents.get(n, set()) & remaining]
        # Only a cycle leaves nothing free; build_graph refuses those, but a stop never hangs.
        candidates = free or list(remaining)
        top = max(urgency[n] for n in candidates)
        level = sorted(n for n in candidates if urgency[n] == top)
        levels.append(level)
        remaining.difference_update(level)
    return levels


def _urgency(graph: Graph, namespec: str, known: dict[str, int], visiting: set[str]) -> int:
    if namespec in known:
        return known[namespec]
    visiting.add(namespec)
    value = graph.nodes[namespec].priority
    for edge in graph.edges.get(namespec, ()):
        if edge.target not in visiting:
            value = max(value, _urgency(graph, edge.target, known, visiting))
    visiting.discard(namespec)
    known[namespec] = value
    return value


# -- start levels and the graph's text ----------------------------------------------------------


def start_levels(graph: Graph) -> dict[str, int]:
    """Each process's depth: 1 without dependencies, else one more than its deepest."""
    depth: dict[str, int] = {}

    def visit(namespec: str, visiting: frozenset[str]) -> int:
        if namespec not in depth:
            targets = [e.target for e in graph.edges.get(namespec, ()) if e.target not in visiting]
            inner = visiting | {namespec}
            depth[namespec] = 1 + max((visit(t, inner) for t in targets), default=0)
        return depth[namespec]

    for namespec in graph.nodes:
        visit(namespec, frozenset())
    return depth


def render_graph(graph: Graph) -> str:
    """The dependency graph as ``roled check --print`` and ``roled roles`` show it: the
    processes that take part, in start order, each with what it waits for. Empty without
    dependencies."""
    involved = set(graph.edges) | {e.target for edges in graph.edges.values() for e in edges}
    if not involved:
        return ""
    depth = start_levels(graph)
    order = sorted(involved, key=lambda namespec: (depth[namespec], namespec))
    width = max(len(namespec) for namespec in graph.edges)
    lines = ["dependencies (start order):"]
    for namespec in order:
        waits = ", ".join(f"{e.target} ({e.condition})" for e in graph.edges.get(namespec, ()))
        text = f"{namespec:<{width}}  waits for {waits}" if waits else namespec
        lines.append(f"  {depth[namespec]}  {text}".rstrip())
    return "\n".join(lines) + "\n"


# -- the assembly rule --------------------------------------------------------------------------


def gated_options(options: Mapping[str, str]) -> dict[str, str]:
    """A program section's options with the gate applied: a program with dependencies gets
    ``autostart=false``, so that supervisord does not start it itself; roled starts it over
    XML-RPC when its conditions hold, if the user's own autostart (read before this) was true.
    """
    gated = dict(options)
    if options.get(KEY, "").strip():
        gated["autostart"] = "false"
    return gated


def only_gate_changed(before: Mapping[str, str], after: Mapping[str, str]) -> bool:
    """Whether supervisord sees two versions of a program's section (as written, ``roled_*``
    keys included) differ only by what the gate did to autostart. Its group is then kept
    rather than re-added on a reload, so a running program that gains a dependency keeps
    running (and one that loses its last is started by roled, not by a re-added group)."""
    gate_differs = _for_supervisord(gated_options(before)) != _for_supervisord(gated_options(after))
    return gate_differs and _for_supervisord(before) == _for_supervisord(after)


def _for_supervisord(options: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in options.items() if not key.startswith("roled_")}
