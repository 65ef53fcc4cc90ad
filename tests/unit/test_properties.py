"""Properties of the assembly on generated input, checked against supervisor's own loader.

For any input, roled either assembles exactly the programs supervisor reads from the same files,
or raises one RoledError whose one-line message names the culprit; nothing else may escape.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from supervisor.options import ServerOptions

from roled.arguments import build_parser
from roled.assemble import LISTENER, Assembly, Runtime
from roled.errors import RoledError
from roled.plan import build, selected_roles, settings_from
from roled.roles import ROLE_NAME, parse_roles
from tests.conftest import Layout

# Bounded so the whole suite stays well inside CI's limit on 2 cores.
FEW = settings(max_examples=60, deadline=None)
# What is compared between roled's assembly and supervisor's own reading of the files.
COMPARED = ("command", "priority", "autostart", "startsecs", "directory", "environment")


@contextmanager
def fresh_layout() -> Iterator[Layout]:
    """A throw-away layout: hypothesis runs many examples in one test function."""
    with tempfile.TemporaryDirectory(prefix="rp-") as folder:
        yield Layout(Path(folder) / "etc")


def assemble(layout: Layout, roles: str, **environ: str) -> Assembly:
    env = {"ROLES": roles, **environ}
    parsed = build_parser().parse_args(["-c", str(layout.main)])
    return build(settings_from(parsed, env), Runtime(layout.root / "rt", "secret"), env)


def supervisor_programs(layout: Layout, roles: str) -> dict[str, Any]:
    """What supervisor's own loader reads from the main config and the selected role files.

    The files are pulled in with supervisor's ``[include]``, the way users did before roled.
    """
    parsed = build_parser().parse_args(["-c", str(layout.main)])
    env = {"ROLES": roles}
    files = [
        str(path) for role in selected_roles(settings_from(parsed, env)) for path in role.files
    ]
    with tempfile.TemporaryDirectory(prefix="rs-") as folder:
        config = Path(folder) / "supervisord.conf"
        include = f"\n[include]\nfiles = {' '.join(files)}\n" if files else "\n"
        config.write_text(layout.main.read_text() + include)
        section = ServerOptions().read_config(str(config))
        return {
            process.name: process
            for group in section.process_group_configs
            for process in group.process_configs
        }


def roled_programs(assembly: Assembly, root: Path) -> dict[str, Any]:
    (root / "rt" / "logs").mkdir(parents=True, exist_ok=True)
    section = ServerOptions().read_config(_write(root / "assembled.conf", assembly.text))
    programs = {
        process.name: process
        for group in section.process_group_configs
        if group.name != LISTENER
        for process in group.process_configs
    }
    # By process name: process_name (with numprocs or without) renames a program's processes.
    processes = {process.namespec.rpartition(":")[2] for process in assembly.processes}
    assert set(programs) >= processes - {LISTENER}
    return programs


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def assert_one_line(exc: RoledError, *culprits: str) -> None:
    message = str(exc)
    assert "\n" not in message.strip(), message
    assert any(culprit in message for culprit in culprits), (message, culprits)


def same_programs(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert set(ours) == set(theirs)
    for name, config in ours.items():
        for key in COMPARED:
            assert getattr(config, key) == getattr(theirs[name], key), (name, key)


# -- role names -------------------------------------------------------------------------------

_NAME_CHARS = st.sampled_from([*list("aZ09_.-/*,; \t$`'\"é\\~?[]\x00"), "..", "../", "%"])


_NAME_PARTS = st.sampled_from(["a", "Z", "0", ".", "..", "-", "_", "/", "*"])


@FEW
@given(
    value=st.lists(_NAME_CHARS, max_size=30).map("".join)
    | st.lists(_NAME_PARTS, min_size=1, max_size=6).map("".join)
    | st.text(max_size=40)
)
def test_roles_parse_to_plain_names_or_one_line_error(value: str) -> None:
    """ROLES gives plain, unique names (or *), or one RoledError line: never a path or glob."""
    try:
        names = parse_roles(value)
    except RoledError as exc:
        assert_one_line(exc, "role name")
        return
    assert len(names) == len(set(names))
    for name in names:
        assert name == "*" or (ROLE_NAME.match(name) and ".." not in name), name
        assert "/" not in name


# -- role files made of valid programs ------------------------------------------------------

_VALUES = {
    "command": st.sampled_from(
        [
            "/bin/sleep 1",
            "/bin/sh -c 'echo a;b'",
            "/bin/echo %%d #x",
            "/bin/echo %(here)s",
            "/bin/echo %(program_name)s ; comment",
            "/bin/echo ü",
        ]
    ),
    "priority": st.integers(0, 999).map(str),
    "autostart": st.sampled_from(["true", "false", "yes", "0"]),
    "startsecs": st.integers(0, 5).map(str),
    "directory": st.sampled_from(["/tmp", "%(here)s", "/"]),
    "environment": st.sampled_from(['A="1"', 'A="x;y",B="#"', 'P="100%%"']),
}
_PROGRAM = st.fixed_dictionaries(
    {"command": _VALUES["command"]},
    optional={key: strategy for key, strategy in _VALUES.items() if key != "command"},
)
_NAMES = st.sampled_from(["a", "b", "c", "web-1", "x.y"])


@FEW
@given(
    files=st.lists(
        st.lists(st.tuples(_NAMES, _PROGRAM), min_size=0, max_size=3), min_size=1, max_size=3
    ),
    final_newline=st.booleans(),
)
def test_generated_programs_match_supervisors_own_reading(
    files: list[list[tuple[str, dict[str, str]]]], final_newline: bool
) -> None:
    """Valid programs spread over role files: the same programs and values as supervisor reads."""
    with fresh_layout() as layout:
        for index, programs in enumerate(files):
            text = "".join(
                f"[program:{name}]\n" + "".join(f"{k}={v}\n" for k, v in options.items())
                for name, options in programs
            )
            path = layout.roles / "web" / f"{index}.conf"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if final_newline else text.rstrip("\n"))
        names = [name for programs in files for name, _ in programs]
        if len(names) != len(set(names)):
            # The one thing roled refuses here is what supervisor would silently merge.
            with pytest.raises(RoledError) as info:
                assemble(layout, "web")
            assert_one_line(info.value, "appears twice", "is defined in both")
            return
        if not names:
            # supervisor would start and run nothing; roled refuses an empty selection.
            with pytest.raises(RoledError) as info:
                assemble(layout, "web")
            assert_one_line(info.value, "nothing to run")
            return
        assembly = assemble(layout, "web")
        same_programs(roled_programs(assembly, layout.root), supervisor_programs(layout, "web"))


def test_supervisor_silently_merges_a_duplicate_that_roled_refuses() -> None:
    """Negative control: supervisor merges two [program:a] of two files; roled refuses them."""
    with fresh_layout() as layout:
        layout.role("web", "[program:a]\ncommand=/bin/sleep 1\n", file="1.conf")
        layout.role("web", "[program:a]\ncommand=/bin/sleep 2\npriority=7\n", file="2.conf")
        merged = supervisor_programs(layout, "web")
        assert list(merged) == ["a"]
        assert merged["a"].command == "/bin/sleep 2"
        with pytest.raises(RoledError, match="defined in both"):
            assemble(layout, "web")


# -- arbitrary role files ----------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "[program:a]",
        "[program:b]",
        "[program:a b]",
        "[eventlistener:e]",
        "[group:g]",
        "[fcgi-program:f]",
        "[supervisord]",
        "[program:",
        "command=/bin/true",
        "command = /bin/sleep 1 ; x",
        "command=%(ENV_HOME)s",
        "command=%(ENV_ROLED_TEST_UNSET)s",
        "command=%(here)s/x",
        "events=PROCESS_STATE",
        "programs=a,b",
        "priority=-1",
        "numprocs=2",
        "process_name=%(program_name)s_%(process_num)d",
        "startsecs=",
        "autorestart=unexpected",
        "user=nobody",
        "nokey",
        "=value",
        "  continued",
        "%",
        "%%",
        "%(",
        "#",
        ";",
        "é",
        "\t",
        "\x00",
        "",
    ]
)


@FEW
@given(lines=st.lists(_TOKENS, max_size=12))
# Found by this test: a process_name renames the only process of a program.
@example(
    lines=["[program:a]", "command=/bin/true", "process_name=%(program_name)s_%(process_num)d"]
)
def test_any_role_file_assembles_or_fails_in_one_line(lines: list[str]) -> None:
    """Token soup as a role file: supervisor's programs, or one error naming the file."""
    with fresh_layout() as layout:
        path = layout.roles / "web.conf"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(lines))
        try:
            assembly = assemble(layout, "web", HOME="/root")
        except RoledError as exc:
            assert_one_line(exc, str(path))
            return
        theirs = _supervisor_or_none(layout)
        assert theirs is not None, f"roled accepted what supervisor refuses:\n{path.read_text()}"
        assert set(roled_programs(assembly, layout.root)) == set(theirs)


def _supervisor_or_none(layout: Layout) -> dict[str, Any] | None:
    try:
        return supervisor_programs(layout, "web")
    except (ValueError, KeyError):
        return None


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_as_a_role_file_fail_in_one_line_or_assemble(data: bytes) -> None:
    """Arbitrary bytes never escape as anything but a RoledError naming the file."""
    with fresh_layout() as layout:
        path = layout.roles / "web.conf"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        try:
            assemble(layout, "web")
        except RoledError as exc:
            assert_one_line(exc, str(path))


# -- common.conf ---------------------------------------------------------------------------------

_COMMON_VALUES = {
    "startsecs": st.sampled_from(["0", "3", "-1", "soon", ""]),
    "autorestart": st.sampled_from(["true", "unexpected", "maybe"]),
    "stopsignal": st.sampled_from(["TERM", "INT", "NOPE"]),
    "priority": st.sampled_from(["5", "x"]),
    "startsec": st.just("1"),
    "directory": st.sampled_from(["/tmp", "%(here)s", "/nonexistent-roled"]),
}


@FEW
@given(
    common=st.dictionaries(st.sampled_from(list(_COMMON_VALUES)), st.just(""), max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({key: _COMMON_VALUES[key] for key in keys})
    ),
    own_priority=st.booleans(),
)
def test_common_values_are_defaults_or_one_line_error(
    common: dict[str, str], own_priority: bool
) -> None:
    """common.conf keys become every program's defaults, or one error names common.conf."""
    with fresh_layout() as layout:
        layout.common("".join(f"{key}={value}\n" for key, value in common.items()))
        own = "priority=42\n" if own_priority else ""
        layout.role("web", f"[program:a]\ncommand=/bin/true\n{own}")
        try:
            assembly = assemble(layout, "web")
        except RoledError as exc:
            assert_one_line(exc, str(layout.common_path))
            return
        program = roled_programs(assembly, layout.root)["a"]
        if own_priority:
            assert program.priority == 42
        elif "priority" in common:
            assert program.priority == int(common["priority"])
        if "stopsignal" in common:
            assert program.stopsignal.name == f"SIG{common['stopsignal']}"


# -- settings --------------------------------------------------------------------------------


@FEW
@given(
    name=st.sampled_from(["ROLED_SHUTDOWN_TIMEOUT", "ROLED_KILL_GRACE", "ROLED_HANG_TIMEOUT"]),
    value=st.text(max_size=12)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-5, 5).map(str),
)
def test_seconds_settings_are_finite_and_non_negative_or_named(name: str, value: str) -> None:
    """A timeout from the environment is a finite number >= 0, or one error naming the variable."""
    with fresh_layout() as layout:
        layout.role("web", "[program:a]\ncommand=/bin/true\n")
        parsed = build_parser().parse_args(["-c", str(layout.main)])
        try:
            resolved = settings_from(parsed, {"ROLES": "web", name: value})
        except RoledError as exc:
            assert_one_line(exc, name)
            return
        seconds = {
            "ROLED_SHUTDOWN_TIMEOUT": resolved.shutdown_timeout,
            "ROLED_KILL_GRACE": resolved.kill_grace,
            "ROLED_HANG_TIMEOUT": resolved.hang_timeout,
        }[name]
        assert math.isfinite(seconds)
        assert seconds >= 0
        if value.strip() and re.fullmatch(r"\s*[0-9.]+\s*", value):
            assert seconds == float(value)
