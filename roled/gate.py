"""The start gate: which processes wait for their dependencies, which to start now, and which
never can, and why.

A pure state machine over the dependency graph of ``roled.deps``: it is told process states and
readiness, and answers with a ``Step``; it starts nothing and reads no clock.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from roled.deps import Condition, Edge, Graph, Node, start_levels

# States in which a held process has not been started by anyone yet.
UNSTARTED = frozenset({"STOPPED", "UNKNOWN"})


@dataclass(frozen=True, slots=True)
class Status:
    """A process's state as supervisord reports it (its name), with how it last exited.

    ``expected`` is supervisord's own judgement of an exit; without it, ``exitstatus`` and
    the process's exitcodes decide, and without either an exit is neither good nor bad yet.
    """

    state: str = "UNKNOWN"
    exitstatus: int | None = None
    expected: bool | None = None


class Outcome(enum.Enum):
    MET = "met"
    PENDING = "pending"
    FAILED = "failed"


def judge(condition: Condition, node: Node, status: Status, ready: bool) -> tuple[Outcome, str]:
    """Whether a dependency meets a condition now, may later, or never can (and why, as the
    end of "web waits for migrate, which ...")."""
    state = status.state
    if state == "FATAL":
        return Outcome.FAILED, "is FATAL"
    expected = status.expected
    if expected is None and status.exitstatus is not None:
        expected = status.exitstatus in node.exitcodes
    # For good: supervisord will not start it again by itself.
    final = state == "EXITED" and expected is not None and not node.restarts_after(expected)
    if condition is Condition.STARTED:
        # EXITED comes only after RUNNING, so a process that ended for good has started.
        return (Outcome.MET if state == "RUNNING" or final else Outcome.PENDING), ""
    if condition is Condition.DONE:
        return (Outcome.MET if final else Outcome.PENDING), ""
    if final and not expected:
        return Outcome.FAILED, _exit_text(status.exitstatus)
    if final:
        # A one-shot that finished well is ready: what `roled status --level ready` counts.
        return Outcome.MET, ""
    if condition is Condition.READY and state == "RUNNING" and ready:
        return Outcome.MET, ""
    return Outcome.PENDING, ""


def _exit_text(exitstatus: int | None) -> str:
    if exitstatus is None:
        return "exited unexpectedly"
    if exitstatus < 0:
        return "was killed by a signal"
    return f"exited {exitstatus}"


@dataclass(frozen=True, slots=True)
class Blocked:
    """A held process that can never start: the chain of namespecs from it to the dependency
    that failed, and the sentence that names them by label."""

    namespec: str
    chain: tuple[str, ...]
    label: str
    # "waits for api, which waits for migrate, which exited 3"
    tail: str

    @property
    def message(self) -> str:
        return f"{self.label} {self.tail}"


@dataclass(frozen=True, slots=True)
class Step:
    """What the gate asks for after an event.

    ``start``: processes to start now, in priority order. ``failed``: held processes that can
    never start, none of their chain non-critical (the container exits 1 with ``reason``).
    ``skipped``: the same with a non-critical process in the chain (one ``warning``; they stay
    WAITING until a reload).
    """

    start: tuple[str, ...] = ()
    failed: tuple[Blocked, ...] = ()
    skipped: tuple[Blocked, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(blocked.message for blocked in self.failed)

    @property
    def warning(self) -> str:
        if not self.skipped:
            return ""
        messages = "; ".join(blocked.message for blocked in self.skipped)
        return f"not starting what depends on a non-critical failure (left WAITING): {messages}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A held process for ``roled status``: the dependencies it still waits for, or why it
    never starts."""

    namespec: str
    on: tuple[str, ...]
    never: str = ""

    def describe(self) -> str:
        if self.never:
            return f"never starts: {self.never}"
        return f"waits for {', '.join(self.on)}"


class Gate:
    """Holds back every process that has dependencies (and the user's autostart) until each of
    them meets its condition, all at the same moment.

    Only held processes are ever started: a dependency that restarts after its dependents
    started does not restart them, and a process someone else started is let go.
    """

    __slots__ = (
        "_checked",
        "_conditions",
        "_dependents",
        "_depth",
        "_graph",
        "_held",
        "_never",
        "_noncritical",
        "_outcomes",
        "_ready",
        "_statuses",
    )

    def __init__(
        self,
        graph: Graph,
        noncritical: Callable[[str], bool] = lambda namespec: False,
        checked: Callable[[str], bool] = lambda namespec: False,
    ) -> None:
        """``noncritical`` and ``checked`` (has a ready check) take a namespec; a process
        without a ready check is ready when RUNNING."""
        self._graph = graph
        self._depth = start_levels(graph)
        self._dependents = graph.dependents()
        self._conditions = _conditions(graph)
        self._noncritical = noncritical
        self._checked = checked
        self._statuses: dict[str, Status] = {}
        self._ready: dict[str, bool] = {}
        self._held = self._gated(graph)
        self._never: dict[str, Blocked] = {}
        # Each dependency's outcome for each condition, until its state or readiness changes:
        # a dependency of many is judged once per change, not once per dependent.
        self._outcomes: dict[tuple[str, Condition], tuple[Outcome, str]] = {}

    @staticmethod
    def _gated(graph: Graph) -> set[str]:
        return {namespec for namespec in graph.edges if graph.nodes[namespec].autostart}

    @property
    def held(self) -> frozenset[str]:
        """The processes waiting (WAITING in ``roled status``, not ready at any level)."""
        return frozenset(self._held)

    def observe(self, namespec: str, status: Status) -> Step:
        """A process's state, from an event or a full read."""
        before = self._outcomes_of(namespec)
        self._statuses[namespec] = status
        self._forget(namespec)
        if status.state != "RUNNING":
            # Readiness belongs to one run of the process; a new run is checked again.
            self._ready.pop(namespec, None)
        if namespec in self._held and status.state not in UNSTARTED:
            # Started by someone else (supervisorctl start): no longer roled's to start.
            self._held.discard(namespec)
            self._never.pop(namespec, None)
        elif before == self._outcomes_of(namespec):
            return Step()
        return self._step(namespec)

    def set_ready(self, namespec: str, ready: bool) -> Step:
        """A ready check's verdict for a process."""
        before = self._outcomes_of(namespec)
        self._ready[namespec] = ready
        self._forget(namespec)
        if before == self._outcomes_of(namespec):
            return Step()
        return self._step(namespec)

    def stop(self) -> Step:
        """A stop request: whatever still waits is never started."""
        self._held.clear()
        self._never.clear()
        return Step()

    def reload(self, graph: Graph, readded: Iterable[str] = ()) -> Step:
        """A new config; ``readded`` are the groups supervisord removed and added again.

        A process new to the config, or of a re-added group, starts from scratch: held if it
        has dependencies. Any other keeps its place: one held stays held while it still has
        dependencies, and is started now if it has none left; one that runs keeps running,
        also when it gains dependencies (they gate starts only). Everything is checked again.
        """
        groups = set(readded)
        before = self._graph.nodes
        fresh = {
            namespec
            for namespec, node in graph.nodes.items()
            if namespec not in before or (node.group or namespec.partition(":")[0]) in groups
        }
        gated = self._gated(graph)
        kept = self._held & set(graph.nodes) - fresh
        released = sorted(n for n in kept - gated if graph.nodes[n].autostart)
        self._held = (gated & fresh) | (gated & kept)
        self._never = {}
        self._outcomes = {}
        self._graph = graph
        self._depth = start_levels(graph)
        self._dependents = graph.dependents()
        self._conditions = _conditions(graph)
        for namespec in list(self._statuses):
            if namespec not in graph.nodes or namespec in fresh:
                del self._statuses[namespec]
                self._ready.pop(namespec, None)
        step = self._step()
        return Step(self._ordered([*released, *step.start]), step.failed, step.skipped)

    def waiting(self) -> tuple[Waiting, ...]:
        """Every held process and what it waits for, by name."""
        return tuple(
            Waiting(
                namespec,
                tuple(f"{e.target} ({e.condition})" for e in self._unmet(namespec)),
                self._never[namespec].message if namespec in self._never else "",
            )
            for namespec in sorted(self._held)
        )

    # -- deciding -------------------------------------------------------------------------------

    def _step(self, changed: str | None = None) -> Step:
        """Judge the held processes a change may concern (all of them without one).

        Only the dependents of what changed are judged, then the dependents of any found
        blocked: a table of hundreds of programs costs each event a few edges, not all.
        They are judged in start order, so a blocked dependency is known before its
        dependents, whose chain then runs through it.
        """
        todo = set(self._held) if changed is None else set(self._dependents.get(changed, ()))
        heap = [(self._depth[namespec], namespec) for namespec in todo]
        heapq.heapify(heap)
        start: list[str] = []
        failed: list[Blocked] = []
        skipped: list[Blocked] = []
        while heap:
            _, namespec = heapq.heappop(heap)
            if namespec not in self._held or namespec in self._never:
                continue
            reason = self._blocked(namespec)
            if reason is not None:
                self._never[namespec] = reason
                forgiven = any(self._noncritical(member) for member in reason.chain)
                (skipped if forgiven else failed).append(reason)
                for dependent in self._dependents.get(namespec, set()) - todo:
                    todo.add(dependent)
                    heapq.heappush(heap, (self._depth[dependent], dependent))
            elif not self._unmet(namespec):
                start.append(namespec)
        self._held.difference_update(start)
        return Step(self._ordered(start), _sorted(failed), _sorted(skipped))

    def _ordered(self, namespecs: Iterable[str]) -> tuple[str, ...]:
        nodes = self._graph.nodes
        return tuple(sorted(set(namespecs), key=lambda n: (nodes[n].priority, n)))

    def _outcomes_of(self, namespec: str) -> list[tuple[Outcome, str]]:
        """What a process means to its dependents now: most events (STARTING, BACKOFF, a
        check passing again) change nothing for them, and then nothing is judged."""
        return [
            self._outcome(Edge(namespec, condition, namespec))
            for condition in self._conditions.get(namespec, ())
        ]

    def _forget(self, namespec: str) -> None:
        for condition in Condition:
            self._outcomes.pop((namespec, condition), None)

    def _outcome(self, edge: Edge) -> tuple[Outcome, str]:
        key = (edge.target, edge.condition)
        outcome = self._outcomes.get(key)
        if outcome is None:
            target = edge.target
            status = self._statuses.get(target, Status())
            ready = self._ready.get(target, not self._checked(target))
            outcome = judge(edge.condition, self._graph.nodes[target], status, ready)
            self._outcomes[key] = outcome
        return outcome

    def _unmet(self, namespec: str) -> list[Edge]:
        return [
            edge
            for edge in self._graph.edges.get(namespec, ())
            if edge.target in self._held or self._outcome(edge)[0] is not Outcome.MET
        ]

    def _blocked(self, namespec: str) -> Blocked | None:
        """Why a held process can never start: a dependency failed, or waits on one that did
        (already judged: dependencies are judged first)."""
        for edge in self._graph.edges.get(namespec, ()):
            target = edge.target
            inner = self._never.get(target)
            if inner is not None:
                return self._chain(namespec, inner.chain, f"{inner.label}, which {inner.tail}")
            if target in self._held:
                continue
            outcome, why = self._outcome(edge)
            if outcome is Outcome.FAILED:
                label = self._graph.nodes[target].label
                return self._chain(namespec, (target,), f"{label}, which {why}")
        return None

    def _chain(self, namespec: str, rest: tuple[str, ...], what: str) -> Blocked:
        label = self._graph.nodes[namespec].label
        return Blocked(namespec, (namespec, *rest), label, f"waits for {what}")


def _sorted(blocked: list[Blocked]) -> tuple[Blocked, ...]:
    return tuple(sorted(blocked, key=lambda b: b.namespec))


def _conditions(graph: Graph) -> dict[str, tuple[Condition, ...]]:
    """The conditions each process is awaited with."""
    found: dict[str, set[Condition]] = {}
    for edges in graph.edges.values():
        for edge in edges:
            found.setdefault(edge.target, set()).add(edge.condition)
    return {target: tuple(sorted(conditions)) for target, conditions in found.items()}
