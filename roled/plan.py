"""From settings to a validated supervisord config: the part of a run that `roled check` shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from roled.assemble import Assembly, Runtime, Section, assemble, format_config, read_main, validate
from roled.errors import RoledError
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


def build(settings: Settings, runtime: Runtime, environ: Mapping[str, str]) -> Assembly:
    """Read, assemble and validate the config a run would start supervisord with."""
    main = read_main(settings.layout.main, environ)
    assembly = assemble(settings.layout, main, selected_roles(settings), runtime, environ)
    processes = validate(assembly, runtime)
    check_main(settings.rules, assembly.programs)
    return replace(assembly, processes=processes)


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
