"""Each program's environment from ``roled_env_files`` and ``*_FILE`` variables, written into the
``environment=`` supervisord gets; the planner's half of env files, secrets and watching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from supervisor.datatypes import dict_of_key_value_pairs
from supervisor.options import ServerOptions, UnhosedConfigParser

from roled.assemble import PROGRAM_PREFIXES, format_config
from roled.checks import notify_environment, program_checks
from roled.environ import (
    FILE_SUFFIX,
    Environment,
    Reader,
    read_file,
    resolve_environment,
    supervisor_environment,
)
from roled.model import Assembly, Runtime, Section

_EXPANSION_KEYS = frozenset({"environment", "numprocs", "numprocs_start", "process_name"})


def provide_environments(assembly: Assembly, environ: Mapping[str, str]) -> Assembly:
    """The assembly with every program's environment resolved; the secrets read, the files to
    watch and what ``roled check --print`` shows recorded on it. A file that cannot be read is a
    RoledError naming the program and the path."""
    inherited = {**environ, **_supervisord_environment(assembly.sections)}
    read = _cached_reader()
    sections: list[Section] = []
    secrets: set[str] = set()
    files: list[str] = []
    shown: dict[str, str] = {}
    warnings = list(assembly.warnings)
    for section in assembly.sections:
        env = _resolve(assembly, section, inherited, read)
        if env is None:
            sections.append(section)
            continue
        secrets |= env.secrets.values
        files.extend(path for path in env.files if path not in files)
        warnings.extend(note for note in env.notes if note not in warnings)
        if env.from_files or env.from_targets:
            own = section.options.get("environment", "")
            options = {
                **section.options,
                "environment": _text(env.from_files, own, env.from_targets),
            }
            mask = env.secrets.mask_environment
            shown[section.name] = _text(mask(env.from_files), own, mask(env.from_targets))
            sections.append(Section(section.name, options, section.source))
            continue
        sections.append(section)
    if not files and not secrets and len(warnings) == len(assembly.warnings):
        return assembly
    return replace(
        assembly,
        text=format_config(sections),
        sections=tuple(sections),
        warnings=tuple(warnings),
        secrets=frozenset(secrets),
        config_files=tuple(files),
        shown_environment=shown,
    )


def _text(before: Mapping[str, str], own: str, after: Mapping[str, str]) -> str:
    """``environment=``: env files' values, then the program's own (so they win), then the
    values of ``*_FILE`` variables (set only where the name had no value)."""
    parts = (supervisor_environment(before), own, supervisor_environment(after))
    return ",".join(part for part in parts if part)


def _cached_reader() -> Reader:
    """read_file, each path read once per plan: a CA bundle named by the container's own
    SSL_CERT_FILE concerns every program, and there may be a thousand."""
    texts: dict[str, str | OSError | UnicodeDecodeError] = {}

    def read(path: str) -> str:
        if path not in texts:
            try:
                texts[path] = read_file(path)
            except (OSError, UnicodeDecodeError) as exc:
                texts[path] = exc
        found = texts[path]
        if isinstance(found, str):
            return found
        raise found

    return read


def _resolve(
    assembly: Assembly, section: Section, inherited: Mapping[str, str], read: Reader
) -> Environment | None:
    """One program section's environment; None when nothing of it comes from a file."""
    if not section.name.startswith(PROGRAM_PREFIXES):
        return None
    own = assembly.roled_keys.get(section.name)
    env_files = own.values.get("roled_env_files", ()) if own is not None else ()
    assert isinstance(env_files, tuple)
    raw = section.options.get("environment", "")
    if (
        not env_files
        and FILE_SUFFIX not in raw
        and not any(n.endswith(FILE_SUFFIX) for n in inherited)
    ):
        # The common case costs no second reading of the section.
        return None
    origin = f"{section.source}: [{section.name}]"
    return resolve_environment(env_files, _own_environment(section), inherited, origin, read)


def _own_environment(section: Section) -> dict[str, str]:
    """The section's ``environment=`` as supervisor's loader expands and reads it (its first
    process's, for ``numprocs``); empty when the loader refuses the section, which validation
    then reports with its file."""
    if not section.options.get("environment"):
        return {}
    # Only what the expansion of environment= depends on: other keys name paths (log files in
    # a runtime directory that ``roled check`` never makes) that the loader would check.
    options = {key: value for key, value in section.options.items() if key in _EXPANSION_KEYS}
    probe = Section(section.name, {**options, "command": "/bin/true"}, section.source)
    parser = UnhosedConfigParser()
    parser.read_string(format_config([probe]))
    try:
        groups = ServerOptions().process_groups_from_parser(parser)
    except ValueError:
        return {}
    configs = [config for group in groups for config in group.process_configs]
    return dict(configs[0].environment or {}) if configs else {}


def _supervisord_environment(sections: tuple[Section, ...]) -> dict[str, str]:
    """``[supervisord] environment=``: every program inherits it."""
    for section in sections:
        if section.name == "supervisord":
            raw = section.options.get("environment", "")
            try:
                return dict(dict_of_key_value_pairs(raw)) if raw and "%" not in raw else {}
            except ValueError:
                return {}
    return {}


def provide_notify(assembly: Assembly, runtime: Runtime) -> Assembly:
    """The assembly with NOTIFY_SOCKET (and WATCHDOG_USEC for ``roled_alive=notify``) in the
    ``environment=`` of each program with a notify check, as systemd sets them.

    The socket is private to roled's uid: a program that runs as another user (``user=``)
    cannot send to it, which README says.
    """
    sections: list[Section] = []
    shown = dict(assembly.shown_environment)
    changed = False
    for section in assembly.sections:
        own = assembly.roled_keys.get(section.name)
        found = program_checks(own.values) if own is not None else None
        env = notify_environment(found, str(runtime.notify)) if found is not None else {}
        if not env:
            sections.append(section)
            continue
        added = supervisor_environment(env)
        before = section.options.get("environment", "")
        options = {**section.options, "environment": ",".join(p for p in (before, added) if p)}
        sections.append(Section(section.name, options, section.source))
        changed = True
        if section.name in shown:
            shown[section.name] = ",".join(p for p in (shown[section.name], added) if p)
    if not changed:
        return assembly
    return replace(
        assembly, text=format_config(sections), sections=tuple(sections), shown_environment=shown
    )
