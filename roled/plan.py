"""From settings to a validated supervisord config: what `roled check` does, and the planner
process that does it for a run, so PID 1 never loads supervisor's config machinery itself.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Mapping
from dataclasses import replace

from roled.assemble import (
    assemble,
    check_something_runs,
    format_config,
    read_main,
    validate,
)
from roled.cli import build_parser, settings_from
from roled.compat import with_overrides
from roled.errors import RoledError
from roled.model import Assembly, Runtime, Section
from roled.policy import check_main
from roled.roles import Role, discover_roles, select_roles
from roled.settings import Settings


def selected_roles(settings: Settings) -> list[Role]:
    """The roles a run would use; none when there is no roles folder (main config as-is)."""
    if settings.layout.roles_dir is None or settings.roles is None:
        return []
    available = discover_roles(settings.layout.roles_dir)
    if not settings.roles:
        known = ", ".join(sorted(available)) or "none"
        raise RoledError(
            f"ROLES is not set and {settings.layout.main} has no [roled] default_roles: "
            f"choose from {known} (or * for all)"
        )
    return select_roles(list(settings.roles), available)


def build(
    settings: Settings,
    runtime: Runtime,
    environ: Mapping[str, str],
    *,
    runtime_exists: bool = False,
) -> Assembly:
    """Read, assemble and validate the config a run would start supervisord with."""
    main = read_main(settings.layout.main, environ)
    main = replace(main, sections=with_overrides(main.sections, settings.supervisord))
    roles = selected_roles(settings)
    assembly = assemble(settings.layout, main, roles, runtime, environ)
    processes, streams = validate(assembly, runtime, runtime_exists=runtime_exists)
    check_something_runs(assembly, roles, settings.layout.main)
    check_main(settings.rules, assembly.programs)
    return replace(assembly, processes=processes, streams=streams)


MASK = "********"


def masked_text(assembly: Assembly) -> str:
    """The assembled config with every password masked, fit to print or paste anywhere."""
    return format_config(
        Section(
            section.name,
            {key: MASK if key == "password" else value for key, value in section.options.items()},
            section.source,
        )
        for section in assembly.sections
    )


def plan(argv: list[str]) -> int:
    """The planner process: ``python -m roled.plan ARGS``, spoken to by ``run.plan_in_child``.

    Reads the control password from stdin, announces ``RUNTIME <dir>`` once the settings are
    known, waits for ``GO`` (the directory and its log folder now exist), and writes the pickled
    (settings, assembly). A user mistake is one line on stderr and exit 2.
    """
    environ = dict(os.environ)
    password = sys.stdin.readline().strip()
    try:
        settings = settings_from(build_parser().parse_args(argv), environ)
        sys.stdout.buffer.write(f"RUNTIME {os.fsencode(settings.runtime_dir).hex()}\n".encode())
        sys.stdout.flush()
        if sys.stdin.readline().strip() != "GO":
            return 0
        runtime = Runtime(settings.runtime_dir, password)
        assembly = build(settings, runtime, environ, runtime_exists=True)
    except RoledError as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps((settings, assembly)))
    return 0


if __name__ == "__main__":
    raise SystemExit(plan(sys.argv[1:]))
