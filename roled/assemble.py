"""Main config + common.conf + role files -> one supervisord config, validated by supervisor.

Every file is parsed with supervisor's own INI reader and written back section by section, so a
file without a final newline cannot corrupt the next one. ``%(here)s`` is replaced by the folder
of the file it was written in, because the assembled file lives in the runtime directory.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import errno
import functools
import glob
import hashlib
import os
import pwd
import re
import shlex
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar

from supervisor.datatypes import (
    RestartUnconditionally,
    RestartWhenExitUnexpected,
    boolean,
    dict_of_key_value_pairs,
)
from supervisor.options import ServerOptions, UnhosedConfigParser, expand

from roled import deps, jobs, keys
from roled.errors import RoledError
from roled.locate import FORMAT_TOKEN, escape, with_here
from roled.logformat import SUPERVISORD
from roled.model import (
    CHANNELS,
    LISTENER,
    Assembly,
    Control,
    Layout,
    Process,
    ProgramConfig,
    RoledKeys,
    Runtime,
    Section,
    Stream,
    namespec,
)
from roled.policy import parse_bool
from roled.roles import Role

ROLED_SECTION = "roled"
CONTROL_USER = "roled"
PROGRAM_PREFIXES = ("program:", "fcgi-program:")
ROLE_PREFIXES = (*PROGRAM_PREFIXES, "eventlistener:", "group:")
STREAM_PREFIXES = (*PROGRAM_PREFIXES, "eventlistener:")
COMMON_HEADER = "program:*"
# Log "files" that mean the container's own streams: roled reads them through a FIFO instead.
CONSOLE_LOGS = frozenset(
    ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2", "/proc/self/fd/1", "/proc/self/fd/2"]
)
_SUPERVISOR_SUFFIX = re.compile(r" in section '[^']*' \(file: .*\)$")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_AUTORESTART = {RestartUnconditionally: "true", RestartWhenExitUnexpected: "unexpected"}


@dataclass(frozen=True, slots=True)
class MainConfig:
    """The main config read and its includes inlined, with its ``[roled]`` section set apart."""

    sections: tuple[Section, ...]
    roled: dict[str, str] = field(default_factory=dict)
    # Programs an included file changed: supervisor allows it silently; roled says so.
    warnings: tuple[str, ...] = ()


def stream_path(runtime: Runtime, program: str, channel: str) -> str:
    """A program's FIFO for one channel, one per process (``%(process_num)d``), escaped."""
    stem = program if _PLAIN_NAME.fullmatch(program) else _plain_stem(program)
    # supervisor expands a program's log file path twice, so a literal % is escaped twice.
    return escape(escape(str(runtime.logs / stem))) + f".%(process_num)d.{channel}"


def _plain_stem(name: str) -> str:
    # A program name may hold what a file name cannot; the hash keeps two such names apart.
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + f"-{digest}"


def read_text(path: Path, what: str) -> str:
    """A config file's text; unreadable, missing or non-UTF-8 files are named in the error."""
    data = read_regular(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RoledError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from exc


def read_regular(path: Path, what: str) -> bytes:
    """A regular file's bytes; anything else (a FIFO, a device, a socket) is an error naming it.

    A FIFO's read blocks until a writer comes, forever, and a device may never end: such a file
    is refused from its stat, before it is opened. It is opened non-blocking all the same and
    checked again, in case it was swapped between the two.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISREG(mode):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            with open(fd, "rb") as file:
                mode = os.fstat(fd).st_mode
                if stat.S_ISREG(mode):
                    return file.read()
    except OSError as exc:
        raise RoledError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if stat.S_ISDIR(mode):
        raise RoledError(f"{path}: cannot read {what}: {os.strerror(errno.EISDIR)}")
    raise RoledError(f"{path}: {what} is not a regular file ({_file_kind(mode)})")


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), f"mode {stat.filemode(mode)}")


def _parse_error(path: Path, exc: configparser.Error, line_offset: int = 0) -> RoledError:
    # Checked first: it subclasses ParsingError but (before Python 3.12) has no .errors.
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return RoledError(
            f"{path}, line {exc.lineno - line_offset}: a [section] header must come first"
        )
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        lineno, quoted = exc.errors[0]
        # configparser keeps the repr() of the offending line.
        line = ast.literal_eval(quoted) if quoted[:1] in "'\"" else quoted
        return RoledError(f"{path}, line {lineno - line_offset}: cannot parse {line.strip()!r}")
    if isinstance(exc, configparser.DuplicateSectionError):
        return RoledError(f"{path}, line {exc.lineno}: section [{exc.section}] appears twice")
    if isinstance(exc, configparser.DuplicateOptionError):
        return RoledError(
            f"{path}, line {exc.lineno}: key {exc.option!r} is set twice in [{exc.section}]"
        )
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RoledError(f"{path}: {first_line}")


def parse_ini(path: Path, text: str, *, line_offset: int = 0) -> list[Section]:
    """Sections of one file, ``%(here)s`` replaced by that file's folder."""
    # strict: supervisor would silently merge a repeated section or key; that is a bug source.
    parser = UnhosedConfigParser(strict=True, interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise _parse_error(path, exc, line_offset) from exc
    folder = path.parent.absolute()
    return [
        Section(
            name,
            {key: with_here(value, folder) for key, value in parser.items(name, raw=True)},
            path,
        )
        for name in parser.sections()
    ]


def read_sections(path: Path, what: str) -> list[Section]:
    """Parse one config file with supervisor's INI reader."""
    return parse_ini(path, read_text(path, what))


def _include_patterns(section: Section, environ: Mapping[str, str]) -> list[str]:
    files = section.options.get("files")
    if files is None:
        raise RoledError(f"{section.source}: [include] has no 'files' setting")
    expansions = {f"ENV_{key}": value for key, value in environ.items()}
    expansions["here"] = str(section.source.parent.absolute())
    try:
        expanded = expand(files, expansions, "include.files")
    except ValueError as exc:
        raise RoledError(f"{section.source}: [include] files: {exc}") from exc
    return [str(expanded_part) for expanded_part in expanded.split()]


def read_main(path: Path, environ: Mapping[str, str]) -> MainConfig:
    """The main config, then its ``[include]`` files, merged as supervisor merges them.

    supervisor reads the main file, then each included file in glob order into the same parser:
    a section seen again keeps its place and takes the later file's keys. That is how images add
    ``[supervisord] nodaemon=true`` in ``conf.d``; a program changed that way is warned about.
    """
    sections = read_sections(path, "main config")
    merged: dict[str, Section] = {}
    roled: dict[str, str] = {}
    includes: list[Section] = []
    for section in sections:
        if section.name == ROLED_SECTION:
            roled = section.options
        elif section.name == "include":
            includes.append(section)
        else:
            merged[section.name] = section
    warnings: list[str] = []
    base = path.parent.absolute()
    for include in includes:
        for pattern in _include_patterns(include, environ):
            for name in sorted(glob.glob(os.path.join(base, pattern))):
                for section in read_sections(Path(name), "included file"):
                    _merge(merged, section, warnings)
    if "supervisord" not in merged:
        raise RoledError(f"{path}: main config has no [supervisord] section")
    return MainConfig(tuple(merged.values()), roled, tuple(warnings))


def _merge(merged: dict[str, Section], section: Section, warnings: list[str]) -> None:
    earlier = merged.get(section.name)
    if earlier is None:
        merged[section.name] = section
        return
    if section.name.startswith(ROLE_PREFIXES):
        warnings.append(
            f"{section.source}: [{section.name}] changes the one in {earlier.source} "
            "(supervisor merges them; the later file wins)"
        )
    # The earlier section's place and file stay; the later file's keys win, as in supervisor.
    merged[section.name] = Section(
        section.name, {**earlier.options, **section.options}, earlier.source
    )


def read_common(path: Path) -> Section:
    """common.conf: bare ``key=value`` lines, or one ``[program:*]`` section, as defaults."""
    text = read_text(path, "common.conf")
    if _starts_with_section(text):
        sections = parse_ini(path, text)
    else:
        # Bare key=value lines: give them the header they lack, and keep line numbers true.
        sections = parse_ini(path, f"[{COMMON_HEADER}]\n{text}", line_offset=1)
    if not sections:
        return Section(COMMON_HEADER, {}, path)
    extra = [section.name for section in sections if section.name != COMMON_HEADER]
    if extra or len(sections) > 1:
        raise RoledError(
            f"{path}: common.conf holds bare key=value lines (or one [{COMMON_HEADER}] section), "
            f"not [{(extra or [sections[0].name])[0]}]"
        )
    common = sections[0]
    unknown = sorted(
        key for key in set(common.options) - program_keys() if not keys.is_roled_key(key)
    )
    if unknown:
        raise RoledError(f"{path}: unknown program setting {unknown[0]!r}")
    return common


def _starts_with_section(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped.startswith("[")
    return False


def read_role(role: Role) -> list[Section]:
    """A role's sections; only program, fcgi-program, eventlistener and group sections."""
    sections: list[Section] = []
    for path in role.files:
        for section in read_sections(path, f"role file of {role.name!r}"):
            if not section.name.startswith(ROLE_PREFIXES):
                raise RoledError(
                    f"{path}: [{section.name}] is not allowed in a role file "
                    "(only program, fcgi-program, eventlistener and group sections)"
                )
            sections.append(section)
    return sections


@functools.cache
def program_keys() -> frozenset[str]:
    """Every setting supervisor reads from a [program:x] section, asked of supervisor itself."""

    class Recorder(UnhosedConfigParser):  # type: ignore[misc]
        asked: ClassVar[set[str]] = set()

        def saneget(self, section: str, option: str, *args: object, **kwargs: object) -> object:
            self.asked.add(option)
            return super().saneget(section, option, *args, **kwargs)

    parser = Recorder()
    parser.read_string("[program:probe]\ncommand=/bin/true\n")
    ServerOptions().processes_from_section(parser, "program:probe", "probe")
    return frozenset(Recorder.asked)


def check_duplicates(sections: Iterable[Section]) -> None:
    """Two sections of the same name are an error naming both files."""
    seen: dict[str, Section] = {}
    for section in sections:
        first = seen.setdefault(section.name, section)
        if first is not section:
            raise RoledError(
                f"section [{section.name}] is defined in both {first.source} and {section.source}"
            )


def check_reserved(sections: Iterable[Section]) -> None:
    """A user's program, listener or group named like roled's own listener would never run:
    supervisord keeps only the first of two groups with one name (roled's listener starts
    first), and roled leaves that name out of every report."""
    for section in sections:
        kind, _, name = section.name.partition(":")
        if f"{kind}:".startswith(ROLE_PREFIXES) and name == LISTENER:
            raise RoledError(
                f"{section.source}: [{section.name}] uses the name {LISTENER!r}, "
                "reserved for roled's own event listener"
            )


def _supervisord_environment(sections: Iterable[Section]) -> set[str]:
    for section in sections:
        if section.name == "supervisord":
            return _environment_keys(section.options.get("environment", ""))
    return set()


def _environment_keys(raw: str) -> set[str]:
    try:
        return set(dict_of_key_value_pairs(raw))
    except ValueError:
        # supervisor reports the malformed value itself when the config is validated.
        return set()


def check_environment(
    sections: Iterable[Section], environ: Mapping[str, str], global_names: set[str]
) -> None:
    """Every ``%(ENV_X)s`` names a variable that is set, or the error names it and its file."""
    for section in sections:
        defined = set(environ) | global_names
        if section.name.startswith(ROLE_PREFIXES):
            defined |= _environment_keys(section.options.get("environment", ""))
        for key, value in section.options.items():
            for match in FORMAT_TOKEN.finditer(value):
                name = match.group("name") or ""
                if name.startswith("ENV_") and name[4:] not in defined:
                    raise RoledError(
                        f"{section.source}: [{section.name}] {key}: "
                        f"environment variable {name[4:]!r} is not set"
                    )


def _control(sections: Iterable[Section], runtime: Runtime, environ: Mapping[str, str]) -> Control:
    by_name = {section.name: section for section in sections}
    server = by_name.get("unix_http_server")
    if server is None:
        return Control(runtime.socket, CONTROL_USER, runtime.password)
    return _user_control(server, by_name.get("supervisorctl"), environ)


def _expanded(section: Section, key: str, environ: Mapping[str, str]) -> str | None:
    value = section.options.get(key)
    if value is None:
        return None
    expansions = {f"ENV_{name}": val for name, val in environ.items()}
    try:
        return str(expand(value, expansions, f"{section.name}.{key}"))
    except ValueError as exc:
        raise RoledError(f"{section.source}: [{section.name}] {key}: {exc}") from exc


def _user_control(section: Section, client: Section | None, environ: Mapping[str, str]) -> Control:
    socket = _expanded(section, "file", environ)
    if not socket:
        raise RoledError(f"{section.source}: [unix_http_server] has no 'file' setting")
    password = _expanded(section, "password", environ)
    if password is not None and password.startswith("{SHA}"):
        password = _plain_password(section, password, client, environ)
    return Control(
        Path(os.path.abspath(socket.strip())), _expanded(section, "username", environ), password
    )


def _plain_password(
    server: Section, hashed: str, client: Section | None, environ: Mapping[str, str]
) -> str:
    """The ``[supervisorctl]`` password that matches the server's ``{SHA}`` hash.

    supervisor compares the hash of what a client sends with it; supervisorctl sends its own
    section's plain password, and so does roled.
    """
    plain = None if client is None else _expanded(client, "password", environ)
    if plain is not None and hashlib.sha1(plain.encode()).hexdigest() == hashed[5:].lower():
        return plain
    where = "does not match it" if plain is not None else "is not set"
    raise RoledError(
        f"{server.source}: [unix_http_server] password is a {{SHA}} hash and the "
        f"[supervisorctl] password {where}: set [supervisorctl] password to the plain password "
        "(or remove [unix_http_server] and let roled make its own socket)"
    )


def _supervisord_section(section: Section, runtime: Runtime, environ: Mapping[str, str]) -> Section:
    options = dict(section.options)
    options["nodaemon"] = "true"
    # A configured pidfile is written where it says, with supervisord's pid, as supervisord
    # would: helper scripts and exit-on-failure listeners signal it.
    pidfile = options.get("pidfile")
    if pidfile is None or _is_device(pidfile, environ):
        # --pidfile /dev/null means "none": supervisord would unlink the device at exit.
        options["pidfile"] = escape(str(runtime.pidfile))
    options.setdefault("childlogdir", escape(str(runtime.logs)))
    if options.get("logfile", "/dev/stderr").strip() in CONSOLE_LOGS:
        # Once on roled's stderr, through a FIFO roled formats: a FIFO is never rotated (a device
        # would fail with "Illegal seek"), and silent stops the copy nodaemon prints on stdout.
        options["logfile"] = escape(str(runtime.supervisord_log))
        options["logfile_maxbytes"] = "0"
        options["logfile_backups"] = "0"
        options["silent"] = "true"
    if os.getuid() == 0 and "user" not in options and _root_has_name():
        # Without it supervisord logs a CRIT "running as root" line in every healthy container.
        options["user"] = "root"
    return Section(section.name, options, section.source)


def _expand_path(value: str, environ: Mapping[str, str]) -> str:
    expansions = {f"ENV_{key}": val for key, val in environ.items()}
    # Expansions only supervisor knows (program_name, ...) never make a device path.
    with contextlib.suppress(ValueError):
        value = str(expand(value, expansions, "logfile"))
    return value.strip()


def handed_to(sections: Iterable[Section], environ: Mapping[str, str]) -> tuple[int, int] | None:
    """The (uid, gid) of ``[supervisord] user=`` when roled runs as root and it is another user.

    supervisord drops to that user before it opens its log, socket, pidfile and the programs'
    FIFOs (supervisor's ``Supervisor.main``: set_uid_or_exit, then make_logger, then
    openhttpservers and write_pidfile): roled hands those to it (see ``run``).
    """
    if os.getuid() != 0:
        return None
    section = next((each for each in sections if each.name == "supervisord"), None)
    user = None if section is None else section.options.get("user")
    if user is None:
        return None
    name = _expand_path(user, environ)
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        return None  # supervisor names an unknown user itself when the config is validated.
    return None if entry.pw_uid == 0 else (entry.pw_uid, entry.pw_gid)


def _is_console(value: str, environ: Mapping[str, str]) -> bool:
    return _expand_path(value, environ) in CONSOLE_LOGS


def _is_device(value: str, environ: Mapping[str, str]) -> bool:
    path = _expand_path(value, environ)
    return os.path.exists(path) and not os.path.isfile(path)


def _with_streams(section: Section, runtime: Runtime, environ: Mapping[str, str]) -> Section:
    """A program's output that has no file of its own goes into FIFOs that roled reads.

    Unset, or a path meaning the container's stream (``/dev/stdout``), both mean "the container's
    log"; NONE, AUTO, syslog and real files stay the user's. An event listener's stdout is its
    protocol channel, so only an explicit console path there is taken over.
    """
    kind, _, name = section.name.partition(":")
    options = dict(section.options)
    for channel in CHANNELS:
        key = f"{channel}_logfile"
        value = options.get(key)
        if value is None and (kind == "eventlistener" and channel == "stdout"):
            continue
        if value is not None and not _is_console(value, environ):
            continue
        if channel == "stderr" and _redirects_stderr(options):
            # supervisor warns about a stderr file that redirect_stderr makes useless.
            options.pop(key, None)
            continue
        options[key] = stream_path(runtime, name, channel)
        options[f"{key}_maxbytes"] = "0"
        options[f"{key}_backups"] = "0"
    return Section(section.name, options, section.source)


def _redirects_stderr(options: Mapping[str, str]) -> bool:
    try:
        return bool(boolean(options.get("redirect_stderr", "false")))
    except ValueError:
        return False  # supervisor names the bad value when the config is validated.


def _root_has_name() -> bool:
    try:
        return pwd.getpwuid(0).pw_name == "root"
    except KeyError:
        return False


def _roled_sections(runtime: Runtime, main: Path, user_control: bool) -> list[Section]:
    added: list[Section] = []
    if not user_control:
        digest = hashlib.sha1(runtime.password.encode()).hexdigest()
        added.append(
            Section(
                "unix_http_server",
                {
                    "file": escape(str(runtime.socket)),
                    "chmod": "0700",
                    "username": CONTROL_USER,
                    # supervisor compares a {SHA} password with the hash of what clients send,
                    # so the plain password never appears in the file.
                    "password": "{SHA}" + digest,
                },
                main,
            )
        )
    command = escape(shlex.join([*runtime.listener_command, str(runtime.events)]))
    added.append(
        Section(
            f"eventlistener:{LISTENER}",
            {
                "command": command,
                "events": "PROCESS_STATE,SUPERVISOR_STATE_CHANGE",
                # Started first and stopped last, so that it sees every transition, also when
                # something else shuts supervisord down. (A FATAL still arrives at once: the
                # BACKOFF event before it keeps supervisord's loop turning.)
                "priority": "-2147483648",
                "buffer_size": "1024",
                "autorestart": "true",
                "startsecs": "0",
                "startretries": "1000000",
                "stdout_logfile": "NONE",
                "stderr_logfile": stream_path(runtime, LISTENER, "stderr"),
                "stderr_logfile_maxbytes": "0",
                "stderr_logfile_backups": "0",
            },
            main,
        )
    )
    return added


def _format(sections: Iterable[Section]) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(f"; from {section.source}")
        lines.append(f"[{section.name}]")
        for key, value in section.options.items():
            first, *rest = value.split("\n")
            lines.append(f"{key} = {first}")
            lines.extend(f"    {line}" for line in rest)
        lines.append("")
    return "\n".join(lines)


def format_config(sections: Iterable[Section]) -> str:
    """Sections as supervisord config text, each preceded by the file it came from."""
    return _format(sections)


def assemble(
    layout: Layout,
    main: MainConfig,
    roles: list[Role],
    runtime: Runtime,
    environ: Mapping[str, str],
) -> Assembly:
    """The supervisord config for the selected roles, checked but not yet validated."""
    common = read_common(layout.common) if layout.common is not None else None
    per_role = [(role, read_role(role)) for role in roles]
    role_sections = [section for _, sections in per_role for section in sections]
    user_sections = [*main.sections, *role_sections]
    check_duplicates(user_sections)
    check_reserved(user_sections)
    global_names = _supervisord_environment(main.sections)
    check_environment(user_sections, environ, global_names)
    if common is not None:
        check_environment([common], environ, global_names)
    check_jobs(user_sections)
    roled_keys = own_keys(main.sections, role_sections, common)
    main_sections = [without_own_keys(section) for section in main.sections]
    role_sections = [without_own_keys(section) for section in role_sections]
    if common is not None:
        common = without_own_keys(common)
        _validate_common(common)

    warnings = [
        *main.warnings,
        # Keys supervisord does not know pass silently, as under supervisord (only roled_*
        # keys, roled's own, are checked strictly).
        *_empty_role_warnings(per_role),
    ]
    if common is not None:
        role_sections = [_with_defaults(section, common) for section in role_sections]
    main_sections = as_jobs(main_sections, roled_keys)
    role_sections = as_jobs(role_sections, roled_keys)
    roled_keys = with_own_autostart([*main_sections, *role_sections], roled_keys)
    main_sections = as_gated(main_sections, roled_keys)
    role_sections = as_gated(role_sections, roled_keys)

    handed = handed_to(main_sections, environ)
    runtime = replace(runtime, handed=handed is not None)
    control = _control(main_sections, runtime, environ)
    user_control = any(section.name == "unix_http_server" for section in main_sections)
    sections: list[Section] = []
    for section in main_sections:
        if section.name == "supervisord":
            sections.insert(0, _supervisord_section(section, runtime, environ))
        else:
            sections.append(section)
    if not any(section.name.startswith("rpcinterface:") for section in sections):
        factory = "supervisor.rpcinterface:make_main_rpcinterface"
        sections.append(
            Section(
                "rpcinterface:supervisor",
                {"supervisor.rpcinterface_factory": factory},
                layout.main,
            )
        )
    sections.extend(role_sections)
    sections = [
        _with_streams(section, runtime, environ)
        if section.name.startswith(STREAM_PREFIXES)
        else section
        for section in sections
    ]
    sections.extend(_roled_sections(runtime, layout.main, user_control))
    check_duplicates(sections)
    programs = tuple(
        section.name.split(":", 1)[1]
        for section in sections
        if section.name.startswith(PROGRAM_PREFIXES)
    )
    return Assembly(
        _format(sections),
        tuple(sections),
        control,
        programs,
        tuple(warnings),
        roled_keys=roled_keys,
        handed_to=handed,
    )


def own_keys(
    main_sections: Iterable[Section], role_sections: Iterable[Section], common: Section | None
) -> dict[str, RoledKeys]:
    """roled's keys of every program section, parsed, by section name.

    common.conf's keys are defaults for role programs only (as its other keys are); the
    program's own value wins. A ``roled_*`` key in an event listener or group section is an
    error (no feature would ever read it); other sections (``[rpcinterface:x]`` takes any key)
    are supervisord's alone.
    """
    defaults = RoledKeys({}, {})
    if common is not None:
        raw = _own_options(common)
        defaults = RoledKeys(raw, keys.parse_keys(raw, f"{common.source}:", common=True))
    found: dict[str, RoledKeys] = {}
    for inherits, sections in ((False, main_sections), (True, role_sections)):
        for section in sections:
            raw = _own_options(section)
            origin = f"{section.source}: [{section.name}]"
            if not section.name.startswith(PROGRAM_PREFIXES):
                if raw and section.name.startswith(ROLE_PREFIXES):
                    raise RoledError(
                        f"{origin} {next(iter(raw))}: roled's keys belong in [program:x] "
                        "and [fcgi-program:x] sections"
                    )
                continue
            values = keys.parse_keys(raw, origin)
            if inherits:
                raw = {**defaults.raw, **raw}
                values = {**defaults.values, **values}
            if raw:
                found[section.name] = RoledKeys(raw, values)
    return found


def check_jobs(sections: Iterable[Section]) -> None:
    """Refuse a scheduled program supervisord would restart or run several of; on each
    section's own keys, since common.conf's ``autorestart`` is overridden for a job."""
    for section in sections:
        if section.name.startswith(PROGRAM_PREFIXES):
            jobs.check_scheduled(section.options, f"{section.source}: [{section.name}]")


def as_jobs(sections: Iterable[Section], roled_keys: Mapping[str, RoledKeys]) -> list[Section]:
    """Sections as supervisord gets them: a scheduled program waits for roled to start it."""
    scheduled = {name for name, own in roled_keys.items() if jobs.SCHEDULE in own.values}
    return [
        Section(section.name, {**section.options, **jobs.ASSEMBLED}, section.source)
        if section.name in scheduled
        else section
        for section in sections
    ]


def with_own_autostart(
    sections: Iterable[Section], roled_keys: Mapping[str, RoledKeys]
) -> dict[str, RoledKeys]:
    """roled's keys with each gated program's own autostart, if written (``deps.AUTOSTART``), read
    before ``as_gated`` tells supervisord false: roled starts it only if the user's was true."""
    found = dict(roled_keys)
    for section in sections:
        own = found.get(section.name)
        if own is None or deps.KEY not in own.values or "autostart" not in section.options:
            continue
        origin = f"{section.source}: [{section.name}] autostart"
        autostart = parse_bool(section.options.get("autostart", "true"), origin)
        found[section.name] = RoledKeys(own.raw, {**own.values, deps.AUTOSTART: autostart})
    return found


def as_gated(sections: Iterable[Section], roled_keys: Mapping[str, RoledKeys]) -> list[Section]:
    """Sections as supervisord gets them: a program with dependencies waits for roled."""
    gated: list[Section] = []
    for section in sections:
        own = roled_keys.get(section.name)
        if own is None or deps.KEY not in own.raw:
            gated.append(section)
            continue
        options = deps.gated_options({**section.options, deps.KEY: own.raw[deps.KEY]})
        del options[deps.KEY]
        gated.append(Section(section.name, options, section.source))
    return gated


def _own_options(section: Section) -> dict[str, str]:
    return {key: value for key, value in section.options.items() if keys.is_roled_key(key)}


def without_own_keys(section: Section) -> Section:
    """A section as supervisord gets it: roled's keys removed, so its loader never sees them."""
    if not section.name.startswith(PROGRAM_PREFIXES):
        return section
    if not any(keys.is_roled_key(key) for key in section.options):
        return section
    options = {key: value for key, value in section.options.items() if not keys.is_roled_key(key)}
    return Section(section.name, options, section.source)


def _runs_something(sections: Iterable[Section]) -> bool:
    return any(section.name.startswith(STREAM_PREFIXES) for section in sections)


def check_something_runs(assembly: Assembly, roles: list[Role], main: Path) -> None:
    """A selection with no program at all would start a supervisord that runs nothing, and
    ``roled status`` would call that healthy."""
    own = f"eventlistener:{LISTENER}"
    if _runs_something(section for section in assembly.sections if section.name != own):
        return
    if roles:
        named = "; ".join(f"{role.name!r} ({_role_files(role)})" for role in roles)
        raise RoledError(f"nothing to run: {main} and the roles define no program: {named}")
    raise RoledError(f"{main}: nothing to run: no program in it or its includes")


def _role_files(role: Role) -> str:
    return ", ".join(map(str, role.files)) or "no file"


def _empty_role_warnings(per_role: Iterable[tuple[Role, list[Section]]]) -> list[str]:
    return [
        f"role {role.name!r} defines no program ({_role_files(role)})"
        for role, sections in per_role
        if not _runs_something(sections)
    ]


def _with_defaults(section: Section, common: Section) -> Section:
    if not section.name.startswith(PROGRAM_PREFIXES):
        return section
    return Section(section.name, {**common.options, **section.options}, section.source)


def _parser(sections: Iterable[Section]) -> UnhosedConfigParser:
    parser = UnhosedConfigParser()
    parser.read_string(_format(sections))
    for section in sections:
        parser.section_to_file[section.name] = str(section.source)
    return parser


def _supervisor_message(exc: ValueError) -> str:
    return _SUPERVISOR_SUFFIX.sub("", " ".join(str(exc).split()))


def _validate_common(common: Section) -> None:
    probe = Section("program:common", {"command": "/bin/true", **common.options}, common.source)
    try:
        ServerOptions().process_groups_from_parser(_parser([probe]))
    except ValueError as exc:
        raise RoledError(f"{common.source}: {_supervisor_message(exc)}") from exc


def _without_owned(section: Section, runtime: Runtime) -> Section:
    # The runtime directory may not exist yet (roled check): its paths are roled's, not the
    # user's, so they are left out of what supervisor checks for existence.
    owned = {"pidfile": escape(str(runtime.pidfile)), "childlogdir": escape(str(runtime.logs))}
    return Section(
        section.name,
        {
            key: value
            for key, value in section.options.items()
            if not runtime.owns(value)
            and (section.name != "supervisord" or owned.get(key) != value)
        },
        section.source,
    )


def validate(
    assembly: Assembly, runtime: Runtime, *, runtime_exists: bool = False
) -> tuple[tuple[Process, ...], tuple[Stream, ...]]:
    """Load the assembled config with supervisor's own loader; errors name file and section.

    Returns the user's processes (roled's listener left out) as the loader sees them, and the
    FIFOs supervisord will write into. Those live in the runtime directory, whose folders
    supervisor wants to exist: without it (roled check) its paths are left out of the load.
    """
    options = _RecordingOptions()
    checked = [
        section if runtime_exists else _without_owned(section, runtime)
        for section in assembly.sections
    ]
    fp = StringIO(_format(checked))
    try:
        loaded = options.read_config(fp)
    except ValueError as exc:
        # One pass over everything is the fast path; only a failure pays for finding the
        # section (and so the file) it came from.
        _blame_section(options, checked)
        raise RoledError(_attribute(_supervisor_message(exc), assembly.sections)) from exc
    groups = loaded.process_group_configs
    processes = _processes(groups, options.sections, assembly.roled_keys)
    return processes, _streams(assembly.sections, groups, runtime)


class _RecordingOptions(ServerOptions):  # type: ignore[misc]
    """supervisor's loader, noting which section made each process: a group or ``numprocs``
    renames processes, and only the loader knows how."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}

    def processes_from_section(
        self, parser: Any, section: str, group_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        configs = super().processes_from_section(parser, section, group_name, *args, **kwargs)
        for config in configs:
            self.sections[namespec(group_name, config.name)] = section
        return configs


def _processes(
    groups: Iterable[Any],
    sections: Mapping[str, str] | None = None,
    roled_keys: Mapping[str, RoledKeys] | None = None,
) -> tuple[Process, ...]:
    found: list[Process] = []
    for group in groups:
        if group.name == LISTENER:
            continue
        for process in group.process_configs:
            spec = namespec(group.name, process.name)
            section = (sections or {}).get(spec, "")
            own = (roled_keys or {}).get(section)
            found.append(
                Process(
                    spec,
                    group.name,
                    group.priority,
                    process.stopwaitsecs,
                    ProgramConfig(
                        autostart=bool(process.autostart),
                        autorestart=_AUTORESTART.get(process.autorestart, "false"),
                        exitcodes=tuple(int(code) for code in process.exitcodes),
                        startsecs=int(process.startsecs),
                    ),
                    bool(process.redirect_stderr),
                    program=section.partition(":")[2],
                    roled=dict(own.values) if own is not None else {},
                    environment=dict(process.environment or {}),
                    directory=process.directory,
                    user=None if process.uid is None else str(process.uid),
                )
            )
    return tuple(found)


def _streams(
    sections: Iterable[Section], groups: Iterable[Any], runtime: Runtime
) -> tuple[Stream, ...]:
    """Every FIFO the config makes supervisord write into, with supervisor's process names
    (``numprocs`` gives one FIFO per process)."""
    streams: list[Stream] = []
    for section in sections:
        if section.name == "supervisord" and runtime.owns(section.options.get("logfile", "")):
            streams.append(Stream(SUPERVISORD, "", "stderr", runtime.supervisord_log))
    for group in groups:
        for config in group.process_configs:
            for channel in CHANNELS:
                path = getattr(config, f"{channel}_logfile", None)
                if isinstance(path, str) and Path(path).parent == runtime.logs:
                    spec = namespec(group.name, config.name)
                    streams.append(Stream(config.name, spec, channel, Path(path)))
    return tuple(streams)


def _blame_section(options: ServerOptions, sections: Iterable[Section]) -> None:
    """Load each program-like section alone; the first that fails is named with its file."""
    for section in sections:
        if section.name.startswith(ROLE_PREFIXES[:3]):
            try:
                options.process_groups_from_parser(_parser([section]))
            except ValueError as exc:
                raise RoledError(
                    f"{section.source}: [{section.name}] {_supervisor_message(exc)}"
                ) from exc


def _attribute(message: str, sections: Iterable[Section]) -> str:
    for section in sections:
        if f"[{section.name}]" in message or f"'{section.name}'" in message:
            return f"{section.source}: {message}"
    main = next(iter(sections)).source
    return f"{main}: {message}"
