"""Each assembly rule of DESIGN.md, checked through supervisor's own config loader."""

from __future__ import annotations

import os
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions, UnhosedConfigParser

from roled.arguments import build_parser
from roled.errors import RoledError
from roled.model import LISTENER, Assembly, ProcessState, Runtime
from roled.plan import build, settings_from
from tests.conftest import Layout


def assemble_layout(
    layout: Layout, roles: str | None = None, environ: dict[str, str] | None = None, *args: str
) -> Assembly:
    env = dict(environ or {})
    if roles is not None:
        env["ROLES"] = roles
    parsed = build_parser().parse_args(["-c", str(layout.main), *args])
    settings = settings_from(parsed, env)
    return build(settings, Runtime(layout.root / "rt", "secret"), env)


def load(assembly: Assembly, runtime_root: Path) -> Any:
    """The assembled text as supervisord itself would read it."""
    (runtime_root / "rt" / "logs").mkdir(parents=True, exist_ok=True)
    options = ServerOptions()
    return options.read_config(StringIO(assembly.text))


def programs(assembly: Assembly, runtime_root: Path) -> dict[str, Any]:
    """Process configs by name, roled's own listener left out."""
    section = load(assembly, runtime_root)
    return {
        process.name: process
        for group in section.process_group_configs
        if group.name != LISTENER
        for process in group.process_configs
    }


def error_of(layout: Layout, roles: str | None = None, **environ: str) -> str:
    with pytest.raises(RoledError) as info:
        assemble_layout(layout, roles, environ)
    return str(info.value)


# Rule 1: supervisor's reader, never text concatenation.


def test_role_file_without_final_newline_does_not_corrupt_the_next(layout: Layout) -> None:
    """A role file ending without a newline leaves the next file's section intact."""
    layout.role("a", "[program:a]\ncommand=/bin/sleep 1", file="1.conf")
    (layout.roles / "a" / "1.conf").write_text("[program:a]\ncommand=/bin/sleep 1")
    layout.role("a", "[program:b]\ncommand=/bin/sleep 2\n", file="2.conf")
    found = programs(assemble_layout(layout, "a"), layout.root)
    assert found["a"].command == "/bin/sleep 1"
    assert found["b"].command == "/bin/sleep 2"


def test_role_as_file_and_role_as_folder(layout: Layout) -> None:
    """roles/NAME.conf and roles/NAME/*.conf are both roles."""
    layout.role("web", "[program:web]\ncommand=/bin/sleep 1\n")
    layout.role("worker", "[program:celery]\ncommand=/bin/sleep 2\n", file="celery.conf")
    layout.role("worker", "[program:beat]\ncommand=/bin/sleep 3\n", file="beat.conf")
    assert set(programs(assemble_layout(layout, "web,worker"), layout.root)) == {
        "web",
        "celery",
        "beat",
    }
    assert set(programs(assemble_layout(layout, "worker"), layout.root)) == {"celery", "beat"}


# Rule 2: common.conf keys are defaults for every program; the program's own value wins.


def test_common_keys_are_defaults_and_program_values_win(layout: Layout) -> None:
    """Every program of a multi-program file gets common's keys unless it sets its own."""
    layout.common("startsecs = 7\nstopwaitsecs = 3\n")
    layout.role(
        "web",
        """
        [program:a]
        command=/bin/sleep 1
        [program:b]
        command=/bin/sleep 1
        startsecs=2
        [fcgi-program:c]
        command=/bin/sleep 1
        socket=unix:///tmp/roled-test-c.sock
        """,
    )
    found = programs(assemble_layout(layout, "web"), layout.root)
    assert (found["a"].startsecs, found["a"].stopwaitsecs) == (7, 3)
    assert (found["b"].startsecs, found["b"].stopwaitsecs) == (2, 3)
    assert (found["c"].startsecs, found["c"].stopwaitsecs) == (7, 3)


def test_common_with_program_star_header(layout: Layout) -> None:
    """common.conf may also carry a [program:*] header."""
    layout.common("[program:*]\nstartsecs = 4\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assert programs(assemble_layout(layout, "web"), layout.root)["a"].startsecs == 4


def test_common_is_never_applied_to_event_listeners(layout: Layout) -> None:
    """An event listener's stdout is its protocol channel, so common's logfile stays off it."""
    layout.common("stdout_logfile = /dev/stdout\n")
    layout.role(
        "web",
        "[eventlistener:l]\ncommand=/bin/cat\nevents=PROCESS_STATE\n",
    )
    assembly = assemble_layout(layout, "web")
    listener = next(section for section in assembly.sections if section.name == "eventlistener:l")
    assert "stdout_logfile" not in listener.options


def test_common_unknown_key_is_an_error(layout: Layout) -> None:
    """A typo in common.conf is named, not silently ignored."""
    layout.common("stdout_logfle = /dev/stdout\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    message = error_of(layout, "web")
    assert "common.conf" in message
    assert "stdout_logfle" in message


def test_common_bad_value_names_common(layout: Layout) -> None:
    """A bad value in common.conf is blamed on common.conf."""
    layout.common("autorestart = maybe\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    message = error_of(layout, "web")
    assert message.startswith(str(layout.common_path))
    assert "maybe" in message


def test_common_with_other_section_is_an_error(layout: Layout) -> None:
    """common.conf holds defaults for programs, nothing else."""
    layout.common("[supervisord]\nloglevel=debug\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assert "[supervisord]" in error_of(layout, "web")


# Rule 3: role names, never expanded, never outside the roles folder.


@pytest.mark.parametrize("name", ["..", "../x", "/abs", "a/b", "w*", "we?", "$(id)", "-x", ".x"])
def test_invalid_role_names_are_refused(layout: Layout, name: str) -> None:
    """A role name is a plain name: no paths, globs or shell syntax."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assert "invalid role name" in error_of(layout, name)


def test_role_file_linking_outside_the_roles_folder_is_refused(layout: Layout) -> None:
    """A role that resolves outside the roles folder is refused."""
    outside = layout.root.parent / "outside.conf"
    outside.write_text("[program:evil]\ncommand=/bin/sleep 1\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    (layout.roles / "evil.conf").symlink_to(outside)
    assert "outside the roles folder" in error_of(layout, "web")


# Rule 4: ROLES parsing.


def test_roles_split_on_commas_and_spaces_deduplicated(layout: Layout) -> None:
    """ROLES takes commas and/or whitespace, and a repeated role counts once."""
    layout.role("a", "[program:a]\ncommand=/bin/sleep 1\n")
    layout.role("b", "[program:b]\ncommand=/bin/sleep 1\n")
    layout.role("c", "[program:c]\ncommand=/bin/sleep 1\n")
    assembly = assemble_layout(layout, " b, a  b,,")
    assert assembly.programs == ("b", "a")


def test_unknown_role_lists_known_roles(layout: Layout) -> None:
    """An unknown role is an error that lists the roles there are."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    layout.role("worker", "[program:b]\ncommand=/bin/sleep 1\n")
    assert error_of(layout, "web,wrker") == "unknown role 'wrker' (known roles: web, worker)"


def test_star_selects_every_role(layout: Layout) -> None:
    """``*`` selects every role, in name order."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    layout.role("worker", "[program:b]\ncommand=/bin/sleep 1\n", file="b.conf")
    assert assemble_layout(layout, "*").programs == ("a", "b")


def test_roles_unset_uses_default_roles(layout: Layout) -> None:
    """With ROLES unset, [roled] default_roles picks the roles."""
    layout.write_main("[supervisord]\n[roled]\ndefault_roles = worker\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    layout.role("worker", "[program:b]\ncommand=/bin/sleep 1\n")
    assert assemble_layout(layout, "").programs == ("b",)


def test_roles_unset_without_default_lists_roles(layout: Layout) -> None:
    """With ROLES unset and no default, the error lists the roles to choose from."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    layout.role("worker", "[program:b]\ncommand=/bin/sleep 1\n")
    message = error_of(layout)
    assert "ROLES is not set" in message
    assert "web, worker" in message


def test_no_roles_folder_runs_main_config_as_is(layout: Layout) -> None:
    """Without a roles folder the main config's own programs are the whole run."""
    layout.write_main("[supervisord]\n[program:solo]\ncommand=/bin/sleep 1\n")
    layout.common("startsecs = 9\n")
    found = programs(assemble_layout(layout), layout.root)
    assert list(found) == ["solo"]
    assert found["solo"].startsecs == 1


def test_each_process_keeps_the_startsecs_supervisord_reads(layout: Layout) -> None:
    """roled knows which state a start leaves a process in from the startsecs supervisord has."""
    layout.write_main("[supervisord]\n")
    layout.common("startsecs = 5\n")
    layout.role("web", "[program:quick]\ncommand=/bin/sleep 1\nstartsecs=0\n")
    layout.role("worker", "[program:slow]\ncommand=/bin/sleep 1\n")
    assembly = assemble_layout(layout, "web,worker")
    found = programs(assembly, layout.root)
    configs = assembly.configs()
    assert {name: config.startsecs for name, config in configs.items()} == {
        "quick": found["quick"].startsecs,
        "slow": found["slow"].startsecs,
    }
    assert {name: config.state_when_started() for name, config in configs.items()} == {
        "quick": ProcessState.RUNNING,
        "slow": ProcessState.STARTING,
    }
    # A read that finds them STARTING: only quick is as good as RUNNING; other states stand.
    assert {
        (name, state.name): config.presumed(state)
        for name, config in configs.items()
        for state in (ProcessState.STARTING, ProcessState.BACKOFF)
    } == {
        ("quick", "STARTING"): ProcessState.RUNNING,
        ("quick", "BACKOFF"): ProcessState.BACKOFF,
        ("slow", "STARTING"): ProcessState.STARTING,
        ("slow", "BACKOFF"): ProcessState.BACKOFF,
    }


# Rule 5: duplicate sections across files.


def test_duplicate_section_across_files_names_both(layout: Layout) -> None:
    """supervisor would merge the two silently; roled names both files."""
    first = layout.role("web", "[program:app]\ncommand=/bin/sleep 1\n")
    second = layout.role("worker", "[program:app]\ncommand=/bin/sleep 2\n")
    message = error_of(layout, "web,worker")
    assert str(first) in message
    assert str(second) in message
    assert "[program:app]" in message


def test_duplicate_section_within_a_file_is_an_error(layout: Layout) -> None:
    """A section repeated in one file is named with its line."""
    path = layout.role("web", "[program:a]\ncommand=/bin/a\n[program:a]\ncommand=/bin/b\n")
    assert error_of(layout, "web") == f"{path}, line 3: section [program:a] appears twice"


# Rule 6: %(here)s, relative includes, literal %.


def test_here_means_the_folder_of_the_file_it_was_written_in(layout: Layout) -> None:
    """%(here)s in a role folder's file is that folder, not the runtime directory."""
    layout.role("worker", "[program:a]\ncommand=/bin/sleep 1\ndirectory=%(here)s\n", file="a.conf")
    found = programs(assemble_layout(layout, "worker"), layout.root)
    assert found["a"].directory == str(layout.roles / "worker")


def test_here_with_percent_in_the_path_stays_literal(tmp_path: Path) -> None:
    """A folder named with % is escaped, so supervisor reads the path back exactly."""
    layout = Layout(tmp_path / "50%off")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\ndirectory=%(here)s\n")
    found = programs(assemble_layout(layout, "web"), layout.root)
    assert found["a"].directory == str(layout.roles)


def test_relative_include_resolves_against_the_main_config_folder(layout: Layout) -> None:
    """[include] files are read from where the main config is, and keep their %(here)s."""
    layout.write_main("[supervisord]\n[include]\nfiles = conf.d/*.conf\n")
    included = layout.root / "conf.d" / "extra.conf"
    included.parent.mkdir(parents=True)
    included.write_text("[program:extra]\ncommand=/bin/sleep 1\ndirectory=%(here)s\n")
    found = programs(assemble_layout(layout), layout.root)
    assert found["extra"].directory == str(included.parent)


def test_process_num_format_is_kept(layout: Layout) -> None:
    """supervisor's own expansions other than %(here)s reach supervisord untouched."""
    layout.role(
        "web",
        "[program:a]\ncommand=/bin/sleep 1\nnumprocs=2\n"
        "process_name=%(program_name)s_%(process_num)02d\n",
    )
    assert set(programs(assemble_layout(layout, "web"), layout.root)) == {"a_00", "a_01"}


def test_env_expansion_works(layout: Layout) -> None:
    """%(ENV_X)s keeps working."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep %(ENV_NAP)s\n")
    os.environ["NAP"] = "5"
    try:
        found = programs(assemble_layout(layout, "web", {"NAP": "5"}), layout.root)
    finally:
        del os.environ["NAP"]
    assert found["a"].command == "/bin/sleep 5"


def test_undefined_env_names_variable_and_file(layout: Layout) -> None:
    """An undefined %(ENV_X)s is an error naming the variable and the file."""
    path = layout.role("web", "[program:a]\ncommand=/bin/sleep %(ENV_NOPE_X)s\n")
    message = error_of(layout, "web")
    assert message == f"{path}: [program:a] command: environment variable 'NOPE_X' is not set"


def _program_environment_expands() -> bool:
    """Whether this supervisor expands %(ENV_X)s from the program's own environment= (4.3)."""
    parser = UnhosedConfigParser()
    parser.read_string("[program:a]\ncommand=/bin/sleep %(ENV_NAP)s\nenvironment=NAP=3\n")
    try:
        ServerOptions().processes_from_section(parser, "program:a", "a")
    except ValueError:
        return False
    return True


@pytest.mark.skipif(
    not _program_environment_expands(),
    reason="this supervisor reads ENV_ from its own process only",
)
def test_env_from_program_environment_counts_as_defined(layout: Layout) -> None:
    """A variable a program defines in its own environment= may be used in it."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep %(ENV_NAP)s\nenvironment=NAP=3\n")
    assert programs(assemble_layout(layout, "web"), layout.root)["a"].command == "/bin/sleep 3"


def test_escaped_percent_is_not_an_env_reference(layout: Layout) -> None:
    """%%(ENV_X)s is a literal, not a reference to an unset variable."""
    layout.role("web", "[program:a]\ncommand=/bin/echo %%(ENV_NOPE)s\n")
    found = programs(assemble_layout(layout, "web"), layout.root)
    assert found["a"].command == "/bin/echo %(ENV_NOPE)s"


# Rule 7: the config folder is only read.


def test_assembly_writes_nothing_into_the_config_folder(layout: Layout) -> None:
    """Assembling and validating leaves the config folder exactly as it was."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    before = sorted((str(path), path.stat().st_mtime_ns) for path in layout.root.rglob("*"))
    assemble_layout(layout, "web")
    after = sorted((str(path), path.stat().st_mtime_ns) for path in layout.root.rglob("*"))
    assert before == after


# Rule 8: what roled adds, and nothing else.


def test_roled_adds_a_private_socket_with_hashed_credentials(layout: Layout) -> None:
    """A 0700 unix socket in the runtime dir, user roled, password stored only as a hash."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assembly = assemble_layout(layout, "web")
    section = load(assembly, layout.root)
    (server,) = section.server_configs
    assert server["file"] == str(layout.root / "rt" / "supervisor.sock")
    assert server["chmod"] == 0o700
    assert server["username"] == "roled"
    assert server["password"].startswith("{SHA}")
    assert "secret" not in assembly.text
    assert assembly.control.password == "secret"


def test_supervisord_settings_fit_a_container(layout: Layout) -> None:
    """Foreground, pidfile and child logs in the runtime dir, log once into roled's FIFO."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    section = load(assemble_layout(layout, "web"), layout.root)
    assert section.nodaemon is True
    assert section.silent is True
    assert section.pidfile == str(layout.root / "rt" / "supervisord.pid")
    assert section.childlogdir == str(layout.root / "rt" / "logs")
    log = str(layout.root / "rt" / "logs" / "supervisord.log")
    assert (section.logfile, section.logfile_maxbytes) == (log, 0)


def test_user_log_file_is_kept(layout: Layout) -> None:
    """A real log file the user set stays theirs."""
    log = layout.root / "supervisord.log"
    layout.write_main(f"[supervisord]\nlogfile={log}\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assert load(assemble_layout(layout, "web"), layout.root).logfile == str(log)


def test_user_unix_http_server_is_reused(layout: Layout) -> None:
    """The user's own socket and credentials are how roled connects."""
    layout.write_main(
        f"[supervisord]\n[unix_http_server]\nfile={layout.root}/s.sock\nusername=u\npassword=p\n"
    )
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assembly = assemble_layout(layout, "web")
    assert (assembly.control.socket, assembly.control.username, assembly.control.password) == (
        layout.root / "s.sock",
        "u",
        "p",
    )
    assert assembly.text.count("[unix_http_server]") == 1


def test_roled_section_is_removed(layout: Layout) -> None:
    """supervisord never sees [roled]."""
    layout.write_main("[supervisord]\n[roled]\ndefault_roles=web\n")
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    assert "[roled]" not in assemble_layout(layout, "").text


def test_listener_is_roled_own_and_first_to_start(layout: Layout) -> None:
    """roled's listener subscribes to state changes and sorts before every program group."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\npriority=-999999\n")
    section = load(assemble_layout(layout, "web"), layout.root)
    first = sorted(section.process_group_configs)[0]
    assert first.name == LISTENER
    assert {event.__name__ for event in first.pool_events} == {
        "ProcessStateEvent",
        "SupervisorStateChangeEvent",
    }


# Rule 9: validation through supervisor's loader, errors naming file and section.


def test_bad_value_names_file_and_section(layout: Layout) -> None:
    """supervisor's own complaint, with the file and section it came from."""
    path = layout.role("web", "[program:a]\ncommand=/bin/sleep 1\nautorestart=maybe\n")
    message = error_of(layout, "web")
    assert message.startswith(f"{path}: [program:a] ")
    assert "maybe" in message


def test_program_without_command_is_named(layout: Layout) -> None:
    """A program with no command is named with its file."""
    path = layout.role("web", "[program:a]\nstartsecs=1\n")
    message = error_of(layout, "web")
    assert message.startswith(f"{path}: [program:a]")
    assert "command" in message


def test_group_naming_unknown_program_names_its_file(layout: Layout) -> None:
    """A group that names a program no selected role defines is blamed on its file."""
    path = layout.role("web", "[group:g]\nprograms=nothere\n")
    assert error_of(layout, "web").startswith(str(path))


def test_non_program_section_in_role_file_is_refused(layout: Layout) -> None:
    """Role files hold programs, listeners and groups, not global sections."""
    path = layout.role("web", "[supervisord]\nloglevel=debug\n")
    assert error_of(layout, "web").startswith(f"{path}: [supervisord] is not allowed")


def test_unparseable_file_names_file_and_line(layout: Layout) -> None:
    """A line that is not INI is named with its file and line."""
    path = layout.role("web", "[program:a]\ncommand=/bin/sleep 1\nthis is not ini\n")
    assert error_of(layout, "web") == f"{path}, line 3: cannot parse 'this is not ini'"


def test_not_utf8_names_file(layout: Layout) -> None:
    """Binary or non-UTF-8 files are named, not a traceback."""
    path = layout.role("web", "")
    path.write_bytes(b"[program:a]\ncommand=\xff\xfe\n")
    assert error_of(layout, "web").startswith(f"{path}: role file of 'web' is not UTF-8")


def test_unreadable_role_folder_is_named(layout: Layout) -> None:
    """A roles folder roled cannot list is named."""
    layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n")
    if os.getuid() == 0:
        pytest.skip("root reads any folder")
    layout.roles.chmod(0)
    try:
        assert "cannot read roles folder" in error_of(layout, "web")
    finally:
        layout.roles.chmod(stat.S_IRWXU)


def test_assembled_config_round_trips_every_value(layout: Layout) -> None:
    """Values with ;, # and continuation lines reach supervisord exactly as written."""
    layout.role(
        "web",
        '[program:a]\ncommand=/bin/sh -c \'echo a;b#c\'\nenvironment=A="1",\n  B="2"\n',
    )
    found = programs(assemble_layout(layout, "web"), layout.root)
    assert found["a"].command == "/bin/sh -c 'echo a;b#c'"
    assert found["a"].environment == {"A": "1", "B": "2"}


# Issue 5: program output without a file of its own goes through roled's FIFOs.


def test_output_without_a_file_of_its_own_goes_to_roled_fifos(layout: Layout) -> None:
    """Unset and console log files become per-process FIFOs; real files, NONE and AUTO stay."""
    own = layout.root / "own.log"
    layout.role(
        "web",
        "[program:unset]\ncommand=/bin/true\n"
        "[program:console]\ncommand=/bin/true\nstdout_logfile=/dev/stdout\n"
        "stderr_logfile=/proc/self/fd/2\n"
        f"[program:own]\ncommand=/bin/true\nstdout_logfile={own}\nstderr_logfile=NONE\n"
        "[program:merged]\ncommand=/bin/true\nredirect_stderr=true\n"
        "[program:many]\ncommand=/bin/true\nnumprocs=2\nprocess_name=many_%(process_num)d\n"
        "[program:auto]\ncommand=/bin/true\nstdout_logfile=AUTO\n",
    )
    found = programs(assemble_layout(layout, "web"), layout.root)
    logs = layout.root / "rt" / "logs"
    assert (found["unset"].stdout_logfile, found["unset"].stderr_logfile) == (
        str(logs / "unset.0.stdout"),
        str(logs / "unset.0.stderr"),
    )
    assert found["unset"].stdout_logfile_maxbytes == 0
    assert found["console"].stdout_logfile == str(logs / "console.0.stdout")
    assert found["console"].stderr_logfile == str(logs / "console.0.stderr")
    assert (found["own"].stdout_logfile, found["own"].stderr_logfile) == (str(own), None)
    assert (found["merged"].stdout_logfile, found["merged"].stderr_logfile) == (
        str(logs / "merged.0.stdout"),
        None,
    )
    assert found["many_1"].stdout_logfile == str(logs / "many.1.stdout")
    assert found["auto"].stderr_logfile == str(logs / "auto.0.stderr")
    assert found["auto"].stdout_logfile != str(logs / "auto.0.stdout")


def test_log_format_is_a_setting(layout: Layout) -> None:
    """--log-format, ROLED_LOG_FORMAT and [roled] log_format choose it; a typo is named."""
    layout.write_main("[supervisord]\n[roled]\nlog_format=prefix\n")
    parsed = build_parser().parse_args(["-c", str(layout.main)])
    assert settings_from(parsed, {}).log_format == "prefix"
    assert settings_from(parsed, {"ROLED_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(RoledError, match="ROLED_LOG_FORMAT: expected one of plain, prefix"):
        settings_from(parsed, {"ROLED_LOG_FORMAT": "xml"})
