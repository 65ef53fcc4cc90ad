"""Commands that read the configuration and start nothing: ``roled check``, ``roled roles``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from roled import deps, plan
from roled.assemble import read_role
from roled.errors import EXIT_OK, RoledError
from roled.locate import check_private_dir
from roled.model import Runtime
from roled.roles import Role, discover_roles, select_roles
from roled.settings import Settings


def check(settings: Settings, environ: Mapping[str, str], show: bool) -> int:
    """Validate everything a run would, with the same errors; ``show`` prints the config."""
    assembly = plan.build(settings, Runtime(settings.runtime_dir, plan.MASK), environ)
    if os.path.lexists(settings.runtime_dir):
        # A run would refuse it too; one that does not exist yet is created by the run.
        check_private_dir(settings.runtime_dir)
    if show:
        sys.stdout.write(plan.masked_text(assembly))
        # As INI comments, so that what is printed still loads as a config.
        graph = deps.render_graph(deps.graph_of(assembly.processes))
        sys.stdout.write("".join(f"; {line}\n" for line in graph.splitlines()))
    else:
        # A count, not the names: a large config has hundreds (roled roles lists them).
        count = len(assembly.programs)
        print(f"roled: config is valid: {count} program(s)", file=sys.stderr)
    return EXIT_OK


def list_roles(settings: Settings, environ: Mapping[str, str] | None = None) -> int:
    """Every role with its sections and files; ``*`` marks the ones ROLES selects."""
    layout = settings.layout
    if layout.roles_dir is None:
        print(f"no roles folder next to {layout.main}: roled runs it as-is")
        return EXIT_OK
    available = discover_roles(layout.roles_dir)
    requested = list(settings.roles or ())
    selected: set[str] = set()
    unknown: RoledError | None = None
    try:
        selected = {role.name for role in select_roles(requested, available)}
    except RoledError as exc:
        # Listed anyway: a mistyped ROLES is exactly when someone wants to see the roles.
        unknown = exc
    marked = f"* = selected by ROLES={','.join(requested)}" if requested else "ROLES is not set"
    print(f"roles in {layout.roles_dir} ({marked}):")
    for name in sorted(available):
        print(f"{'*' if name in selected else ' '} {name}")
        for line in _role_lines(available[name], layout.roles_dir):
            print(f"    {line}")
    if unknown is not None:
        raise unknown
    if selected and environ is not None:
        sys.stdout.write(_dependency_graph(settings, environ))
    return EXIT_OK


def _dependency_graph(settings: Settings, environ: Mapping[str, str]) -> str:
    """The selected roles' dependency graph (issue 14), or why it cannot be shown: listing the
    roles must work on a config that does not check."""
    try:
        assembly = plan.build(settings, Runtime(settings.runtime_dir, plan.MASK), environ)
    except RoledError as exc:
        return f"dependencies not shown: {exc}\n"
    return deps.render_graph(deps.graph_of(assembly.processes))


def _role_lines(role: Role, roles_dir: Path) -> list[str]:
    sections = read_role(role)
    if not sections:
        return ["(no sections)"]
    width = max(len(section.name) for section in sections)
    return [
        f"{section.name:<{width}}  {os.path.relpath(section.source, roles_dir)}"
        for section in sections
    ]
