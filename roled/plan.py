"""From settings to a validated supervisord config: what `roled check` does, and the planner
process that does it for a run, so PID 1 never loads supervisor's config machinery itself.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from roled import compat, deps, jobs, keys
from roled.arguments import build_parser, flags
from roled.assemble import (
    PROGRAM_PREFIXES,
    assemble,
    check_something_runs,
    format_config,
    read_main,
    read_role,
    validate,
)
from roled.errors import RoledError
from roled.model import Assembly, Process, Runtime, Section
from roled.policy import check_main
from roled.provide import provide_environments, provide_notify
from roled.roles import Role, discover_roles, parse_roles, select_roles
from roled.secrets import Secrets
from roled.settings import Settings, resolve


def read_roled(environ: Mapping[str, str]) -> Callable[[Path], Mapping[str, str]]:
    """The ``[roled]`` section of a main config, read as a run reads it (includes and all)."""
    return lambda path: read_main(path, environ).roled


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """A command's settings from its parsed flags, the environment and ``[roled]``."""
    settings = resolve(flags(args), environ, read_roled(environ), parse_roles)
    return replace(settings, supervisord=compat.overrides(args))


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
    main = replace(main, sections=compat.with_overrides(main.sections, settings.supervisord))
    roles = selected_roles(settings)
    assembly = assemble(settings.layout, main, roles, runtime, environ)
    assembly = provide_environments(assembly, environ)
    assembly = provide_notify(assembly, runtime)
    # The paths supervisord opens as another user (user=) are in the folder handed to it.
    runtime = replace(runtime, handed=assembly.handed_to is not None)
    processes, streams = validate(assembly, runtime, runtime_exists=runtime_exists)
    check_something_runs(assembly, roles, settings.layout.main)
    check_main(settings.rules, [process.namespec for process in processes])
    elsewhere = unselected_programs(settings, roles, processes)
    keys.check_whole(keys.Whole(processes, _origins(assembly), elsewhere))
    processes = jobs.settle_jobs(processes, environ, _origins(assembly))
    return replace(assembly, processes=processes, streams=streams)


def unselected_programs(
    settings: Settings, roles: list[Role], processes: tuple[Process, ...]
) -> tuple[deps.Elsewhere, ...]:
    """The programs of the roles not selected, so that a dependency on one names its role.

    Read only when a program has dependencies; a role file that cannot be read is skipped, as
    it is when not selected (it runs nowhere).
    """
    roles_dir = settings.layout.roles_dir
    if roles_dir is None or not any(deps.KEY in process.roled for process in processes):
        return ()
    chosen = {role.name for role in roles}
    found: list[deps.Elsewhere] = []
    for name, role in sorted(discover_roles(roles_dir).items()):
        if name in chosen:
            continue
        try:
            sections = read_role(role)
        except RoledError:
            continue
        for section in sections:
            kind, _, program = section.name.partition(":")
            if kind in {"program", "fcgi-program"}:
                found.append(deps.Elsewhere(program, name, program=program))
            elif kind == "group":
                members = (m.strip() for m in section.options.get("programs", "").split(","))
                found.extend(
                    deps.Elsewhere(f"{program}:{m}", name, group=program, program=m)
                    for m in members
                    if m
                )
    return tuple(found)


def _origins(assembly: Assembly) -> dict[str, str]:
    return {
        section.name.partition(":")[2]: f"{section.source}: [{section.name}]"
        for section in assembly.sections
        if section.name.startswith(PROGRAM_PREFIXES)
    }


MASK = "********"


def masked_text(assembly: Assembly) -> str:
    """The assembled config with every password masked, fit to print or paste anywhere.

    roled's own keys are shown in their program's section, though supervisord never gets them.
    Values read from env files and *_FILE files are masked wherever they appear.
    """
    text = format_config(
        Section(
            section.name,
            {
                **{
                    key: MASK if key == "password" else value
                    for key, value in section.options.items()
                },
                **_shown_environment(assembly, section.name),
                **_raw_keys(assembly, section.name),
            },
            section.source,
        )
        for section in assembly.sections
    )
    return Secrets.of(assembly.secrets).mask(text)


def _shown_environment(assembly: Assembly, name: str) -> dict[str, str]:
    shown = assembly.shown_environment.get(name)
    return {"environment": shown} if shown is not None else {}


def _raw_keys(assembly: Assembly, name: str) -> dict[str, str]:
    own = assembly.roled_keys.get(name)
    return dict(own.raw) if own is not None else {}


def plan(argv: list[str]) -> int:
    """The planner process: ``python -m roled.plan ARGS``, spoken to by ``roled.planning``.

    Reads the control password from stdin, announces ``RUNTIME <dir>`` once the settings are
    known, waits for ``GO`` (the directory and its log folder now exist), and writes ``OK
    <length>`` and the pickled (settings, assembly), or ``ERROR <message>`` for a user mistake.
    """
    environ = dict(os.environ)
    out = sys.stdout.buffer
    password = sys.stdin.readline().strip()
    try:
        settings = settings_from(build_parser().parse_args(argv), environ)
        out.write(f"RUNTIME {os.fsencode(settings.runtime_dir).hex()}\n".encode())
        out.flush()
        if sys.stdin.readline().strip() != "GO":
            return 0
        runtime = Runtime(settings.runtime_dir, password)
        assembly = build(settings, runtime, environ, runtime_exists=True)
    except RoledError as exc:
        out.write(f"ERROR {' '.join(str(exc).split())}\n".encode())
        return 2
    data = pickle.dumps((settings, assembly))
    out.write(f"OK {len(data)}\n".encode() + data)
    return 0


if __name__ == "__main__":
    raise SystemExit(plan(sys.argv[1:]))
