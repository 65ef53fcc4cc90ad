"""The start gate's own cost: 200 programs started through it in a 10-level graph, against the
same 200 programs with no dependencies (``python -m bench.gate``). Pure, no processes: what
the gate adds to roled's loop per event, as a ratio and in microseconds."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

from roled.deps import Dependency, Node, build_graph
from roled.gate import Gate, Status

LEVELS = 10
WIDTH = 20
ROUNDS = 7


def table(fan_in: str) -> list[Node]:
    """``none``: no dependencies; ``one``: each on one program of the level before; ``all``:
    each on every program of the level before."""
    nodes = []
    for level in range(LEVELS):
        for i in range(WIDTH):
            before = [f"p{level - 1}_{j}" for j in range(WIDTH)] if level else []
            names = {"none": [], "one": before[i : i + 1], "all": before}[fan_in]
            nodes.append(Node(f"p{level}_{i}", depends_on=tuple(map(Dependency, names))))
    return nodes


def start_all(nodes: list[Node]) -> int:
    """Feed the gate what supervisord would report until everything runs; the events fed."""
    gate = Gate(build_graph(nodes))
    events = 0
    for node in nodes:
        gate.observe(node.namespec, Status("STOPPED"))
        events += 1
    due = [node.namespec for node in nodes if node.namespec not in gate.held]
    while due:
        started: list[str] = []
        for namespec in due:
            for state in ("STARTING", "RUNNING"):
                started.extend(gate.observe(namespec, Status(state)).start)
                events += 1
        due = started
    if gate.held:
        raise AssertionError(f"never started: {sorted(gate.held)}")
    return events


def timed(run: Callable[[], int]) -> tuple[float, int]:
    began = time.perf_counter()
    events = run()
    return time.perf_counter() - began, events


def main() -> None:
    baseline = table("none")
    for fan_in in ("one", "all"):
        nodes = table(fan_in)
        ratios, per_event = [], []
        for _ in range(ROUNDS):
            # Alternate, so that load on the machine hits both alike.
            plain, _ = timed(functools.partial(start_all, baseline))
            gated, events = timed(functools.partial(start_all, nodes))
            ratios.append(gated / plain)
            per_event.append(gated / events * 1e6)
        print(
            f"fan-in {fan_in}: {LEVELS} levels x {WIDTH}: median ratio to no dependencies "
            f"{statistics.median(ratios):.1f}x, {statistics.median(per_event):.0f} us per event"
        )


if __name__ == "__main__":
    main()
