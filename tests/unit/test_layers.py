"""roled's modules import only downward through the layers of DESIGN.md, and never in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "roled"
# Lowest first. Modules that do not exist yet are allowed, so the table can lead the code.
LAYERS = {
    "data": {"__init__", "errors", "locate", "model"},
    "pure": {
        "settings", "roles", "policy", "lifecycle", "programs", "lines", "logformat",
        "schedule", "arguments", "keys", "jobs", "checks", "levels", "deps", "dotenv",
        "environ", "secrets", "filekeys", "compat", "gate", "tails",
    },
    "planner": {"plan", "ini", "assemble", "validate", "provide"},
    "effects": {
        "runtime", "init", "signals", "reaper", "rpc", "supervisor", "logs", "output", "log",
        "listener", "report", "planning", "spawned", "probes", "notify", "watch", "inotify",
        "requests", "statusview",
    },
    "commands": {"run", "status", "ctl", "commands", "check"},
    "entry": {"cli", "__main__"},
}  # fmt: skip
RANK = {module: rank for rank, modules in enumerate(LAYERS.values()) for module in modules}
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}
# supervisor's config loader (and what imports it) is the planner's alone: PID 1 and the probe
# stay small. ctl is the one exception: it runs supervisorctl, whose options live there too.
LOADER = "supervisor.options"
LOADER_ALLOWED = LAYERS["planner"] | {"ctl"}


def modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def imports(module: str) -> set[str]:
    """Every module a roled module imports, at its top or inside a function, by full name."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            # ``from roled import run`` imports the module roled.run.
            if node.module == "roled":
                found.update(f"roled.{alias.name}" for alias in node.names)
    return found


def roled_imports(module: str) -> set[str]:
    return {name.removeprefix("roled.") for name in imports(module) if name.startswith("roled.")}


def test_every_module_has_a_layer() -> None:
    """A new module is placed in the table before it is written."""
    assert [module for module in modules() if module not in RANK] == []


@pytest.mark.parametrize("module", modules())
def test_imports_go_only_downward(module: str) -> None:
    """A module imports from its own layer or below, never from a layer above it."""
    upward = sorted(
        f"{module} ({LAYER_OF[module]}) imports {target} ({LAYER_OF[target]})"
        for target in roled_imports(module)
        if target in RANK and RANK[target] > RANK[module]
    )
    assert upward == []


@pytest.mark.parametrize("module", modules())
def test_only_the_planner_imports_supervisors_config_loader(module: str) -> None:
    """supervisor.options is loaded by the planner process, never by PID 1 or the probe."""
    if module not in LOADER_ALLOWED:
        assert LOADER not in imports(module)


def test_no_import_cycle() -> None:
    """Following imports from any module never leads back to it."""
    graph = {module: roled_imports(module) & set(modules()) for module in modules()}
    cycles = []
    for start, targets in graph.items():
        path = [start]
        stack = [iter(sorted(targets))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                path.pop()
            elif child == start:
                cycles.append(" -> ".join([*path, start]))
            elif child not in path:
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    assert cycles == []
